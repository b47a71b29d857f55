//! Carrying out one checked write over a [`Transport`]: read the register(s), skip when the
//! inverter already holds the value, else one FC16 of the whole register(s), then read back.
//!
//! Bit fields are read-modify-written: the value is encoded into the registers just read, so
//! the other bits keep what the inverter holds (`ReadingSpec::encode` changes only the
//! reading's own bits). Always FC16, never FC06: some Deye registers refuse FC06
//! (kellerza/sunsynk#655). A failed step stops: nothing more is written.

use super::WriteError;
use super::check::time_text;
use crate::profile::{ReadingSpec, RegisterBlock, RegisterSet, Value, WriteForm};
use crate::protocol::{Request, Response};
use crate::transport::Transport;

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The value before.
    pub old: Value,
    /// True when an FC16 went out; false when the value was already there.
    pub written: bool,
    /// The value read back after the write (the old one when nothing was written).
    pub read_back: Value,
}

/// Sets `spec` to `value` over `transport`; see the module docs.
///
/// # Errors
/// [`WriteError::Link`] when a read or the write fails or is refused, or the value cannot be
/// encoded; nothing more is written after the first failure.
pub async fn execute<T: Transport>(
    spec: &ReadingSpec,
    value: &Value,
    transport: &mut T,
) -> Result<Executed, WriteError> {
    let start =
        spec.def.registers.iter().copied().min().ok_or_else(|| link("the reading has no registers"))?;
    let count = spec.def.registers.len() as u16;
    let before = read(transport, start, count).await?;
    let old = decode(spec, start, &before)?;
    let mut image = vec![0u16; usize::from(start) + before.len()];
    image[usize::from(start)..].copy_from_slice(&before);
    spec.encode(value, &mut image).map_err(|e| link(&e.to_string()))?;
    let after = image[usize::from(start)..].to_vec();
    if after == before {
        return Ok(Executed { old: old.clone(), written: false, read_back: old });
    }
    match transport.call(&Request::WriteMultiple { addr: start, values: after }).await {
        Ok(Ok(Response::Written { .. })) => {}
        Ok(Ok(Response::Registers(_))) => return Err(link("the write was answered as a read")),
        Ok(Err(exception)) => return Err(link(&format!("the inverter refused the write: {exception}"))),
        Err(e) => return Err(link(&format!("the write failed: {e}"))),
    }
    let back = read(transport, start, count).await?;
    Ok(Executed { old, written: true, read_back: decode(spec, start, &back)? })
}

/// How a value of `spec` reads in results and logs: slot times as `HH:MM`.
pub fn shown(spec: &ReadingSpec, value: &Value) -> Value {
    match (spec.def.write_form(), value) {
        (Some(WriteForm::Time), Value::Number(n)) => Value::Text(time_text(*n)),
        _ => value.clone(),
    }
}

async fn read<T: Transport>(transport: &mut T, addr: u16, count: u16) -> Result<Vec<u16>, WriteError> {
    match transport.call(&Request::ReadHolding { addr, count }).await {
        Ok(Ok(Response::Registers(values))) if values.len() == usize::from(count) => Ok(values),
        Ok(Ok(_)) => Err(link("the read came back with the wrong shape")),
        Ok(Err(exception)) => Err(link(&format!("the inverter refused the read: {exception}"))),
        Err(e) => Err(link(&format!("the read failed: {e}"))),
    }
}

fn decode(spec: &ReadingSpec, start: u16, values: &[u16]) -> Result<Value, WriteError> {
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start, values: values.to_vec() });
    spec.decode(&regs).map_err(|e| link(&e.to_string()))
}

fn link(why: &str) -> WriteError {
    WriteError::Link(why.to_string())
}
