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
    /// The values before, one per reading written.
    pub old: Vec<Value>,
    /// True when an FC16 went out; false when every value was already there.
    pub written: bool,
    /// The values read back after the write (the old ones when nothing was written).
    pub read_back: Vec<Value>,
    /// True when every value read back is the one asked for.
    pub kept: bool,
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
    execute_all(&[(spec, value.clone())], transport).await
}

/// Sets several readings at once: every register block they cover is read first, the values
/// are encoded into what was read, and each block that changed goes out as one FC16 of the
/// whole block, in address order; then every block is read back. A failed read writes
/// nothing; a failed write stops before the next block.
///
/// # Errors
/// [`WriteError::Link`], as [`execute`].
pub async fn execute_all<T: Transport>(
    items: &[(&ReadingSpec, Value)],
    transport: &mut T,
) -> Result<Executed, WriteError> {
    let blocks = blocks(items.iter().flat_map(|(spec, _)| spec.def.registers.iter().copied()));
    let end = blocks.last().map(|(start, count)| usize::from(*start) + usize::from(*count));
    let mut image = vec![0u16; end.ok_or_else(|| link("nothing to write"))?];
    let before = read_blocks(transport, &blocks, &mut image).await?;
    let old = decode_all(items, &before)?;
    for (spec, value) in items {
        spec.encode(value, &mut image).map_err(|e| link(&e.to_string()))?;
    }
    let mut written = false;
    for (block, &(start, count)) in before.blocks().iter().zip(&blocks) {
        let after = &image[usize::from(start)..usize::from(start) + usize::from(count)];
        if after != block.values.as_slice() {
            write(transport, start, after.to_vec()).await?;
            written = true;
        }
    }
    if !written {
        return Ok(Executed { read_back: old.clone(), old, written, kept: true });
    }
    let back = read_blocks(transport, &blocks, &mut image).await?;
    let read_back = decode_all(items, &back)?;
    let kept = items.iter().zip(&read_back).all(|((_, asked), got)| same(asked, got));
    Ok(Executed { old, written, read_back, kept })
}

/// True when `got` is `asked`, numbers within the rounding of a register.
fn same(asked: &Value, got: &Value) -> bool {
    match (asked.as_f64(), got.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6 * a.abs().max(1.0),
        _ => asked == got,
    }
}

/// The runs of consecutive addresses in `addresses`, as (start, count), in address order.
fn blocks(addresses: impl Iterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut sorted: Vec<u16> = addresses.collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut blocks: Vec<(u16, u16)> = Vec::new();
    for address in sorted {
        match blocks.last_mut() {
            Some((start, count)) if *start + *count == address => *count += 1,
            _ => blocks.push((address, 1)),
        }
    }
    blocks
}

async fn read_blocks<T: Transport>(
    transport: &mut T,
    blocks: &[(u16, u16)],
    image: &mut [u16],
) -> Result<RegisterSet, WriteError> {
    let mut set = RegisterSet::new();
    for &(start, count) in blocks {
        let values = read(transport, start, count).await?;
        image[usize::from(start)..usize::from(start) + values.len()].copy_from_slice(&values);
        set.insert(RegisterBlock { start, values });
    }
    Ok(set)
}

async fn write<T: Transport>(transport: &mut T, addr: u16, values: Vec<u16>) -> Result<(), WriteError> {
    match transport.call(&Request::WriteMultiple { addr, values }).await {
        Ok(Ok(Response::Written { .. })) => Ok(()),
        Ok(Ok(Response::Registers(_))) => Err(link("the write was answered as a read")),
        Ok(Err(exception)) => Err(link(&format!("the inverter refused the write: {exception}"))),
        Err(e) => Err(link(&format!("the write failed: {e}"))),
    }
}

fn decode_all(items: &[(&ReadingSpec, Value)], regs: &RegisterSet) -> Result<Vec<Value>, WriteError> {
    items.iter().map(|(spec, _)| spec.decode(regs).map_err(|e| link(&e.to_string()))).collect()
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

fn link(why: &str) -> WriteError {
    WriteError::Link(why.to_string())
}
