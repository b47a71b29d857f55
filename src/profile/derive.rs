//! Derived readings: values computed from other readings of the same poll instead of read from
//! registers (`kind = "sum"` or `kind = "product"`, docs/profiles.md).
//!
//! Deye reports the power of each PV input but, on most families, not their total; a micro or
//! string inverter reports a string's voltage and current but not its power. A derived reading
//! closes such gaps in the profile data, so a key like `pv_power` means the same on every family.
//!
//! This module owns three steps: checking a derived definition ([`check`]), resolving the keys it
//! names into reading indices when the profile loads ([`resolve`]), and computing the value after
//! the register readings of a poll are decoded ([`ReadingSpec::derive`]). It must not touch
//! registers: a derived reading has none, so the planner never reads for it and the simulator
//! never encodes it. Plausibility (`quality`) judges the result like any other reading.

use super::def::{Kind, ReadingDef};
use super::{DecodeError, Reading, ReadingSpec, Value};

/// Decimals a derived value is rounded to at most (as for scaled readings).
const MAX_DECIMALS: u32 = 6;

/// Checks one definition's shape: a derived kind names its inputs in `of` and reads no
/// registers; a register kind names no inputs.
///
/// # Errors
/// The reason, for [`super::ProfileError::Reading`].
pub(super) fn check(def: &ReadingDef) -> Result<(), String> {
    if !def.kind.is_derived() {
        if def.of.is_empty() {
            return Ok(());
        }
        return Err("`of` applies to the derived kinds sum and product only".into());
    }
    if !def.registers.is_empty() {
        return Err("a derived reading (sum, product) is computed from `of` and reads no registers".into());
    }
    match (def.kind, def.of.len()) {
        (Kind::Sum, 0) => return Err("a sum names at least one reading in `of`".into()),
        (Kind::Product, n) if n != 2 => {
            return Err(format!("a product names exactly two readings in `of`, got {n}"));
        }
        _ => {}
    }
    let raw_rules = def.word_order.is_some()
        || def.sign_magnitude
        || def.bit.is_some()
        || def.mask.is_some()
        || def.options.is_some()
        || def.scale_when.is_some();
    if raw_rules || def.scale != 1.0 || def.offset != 0.0 {
        return Err(
            "a derived reading takes no word_order, sign_magnitude, scale, scale_when, offset, bit, mask or enum".into(),
        );
    }
    Ok(())
}

/// Resolves the `of` keys of every derived reading into indices and sets its decimals: those of
/// its inputs (the most of them for a sum, their total for a product).
///
/// Inputs must stand above the derived reading in the file. Decoding runs in file order, so
/// they are decoded by the time it is computed, and no cycle can form.
///
/// # Errors
/// The derived reading's key and the reason.
pub(super) fn resolve(readings: &mut [ReadingSpec]) -> Result<(), (String, String)> {
    for at in 0..readings.len() {
        if !readings[at].def.kind.is_derived() {
            continue;
        }
        let (above, rest) = readings.split_at_mut(at);
        let spec = &mut rest[0];
        let inputs = inputs(&spec.def, above).map_err(|reason| (spec.def.key.clone(), reason))?;
        let decimals = inputs.iter().map(|&i| u32::from(above[i].decimals));
        let decimals = match spec.def.kind {
            Kind::Product => decimals.sum::<u32>(),
            _ => decimals.max().unwrap_or(0),
        };
        spec.decimals = decimals.min(MAX_DECIMALS) as u8;
        spec.inputs = inputs;
    }
    Ok(())
}

/// The indices in `above` of the readings `def` names, each numeric, once, and for a sum in
/// the sum's unit (adding W to kW would be silently wrong).
fn inputs(def: &ReadingDef, above: &[ReadingSpec]) -> Result<Vec<usize>, String> {
    let mut inputs = Vec::with_capacity(def.of.len());
    for key in &def.of {
        let index = above
            .iter()
            .position(|r| r.def.key == *key)
            .ok_or_else(|| format!("`of` names `{key}`, which is not a reading above this one"))?;
        let input = &above[index].def;
        if !input.kind.is_integer() || input.bit.is_some() || input.options.is_some() {
            return Err(format!("`of` names `{key}`, which is not a number"));
        }
        if def.kind == Kind::Sum && input.unit != def.unit {
            let unit = |u: &Option<String>| u.clone().unwrap_or_else(|| "no unit".into());
            return Err(format!("`{key}` is in {}, the sum in {}", unit(&input.unit), unit(&def.unit)));
        }
        if inputs.contains(&index) {
            return Err(format!("`of` names `{key}` twice"));
        }
        inputs.push(index);
    }
    Ok(inputs)
}

impl ReadingSpec {
    /// Computes this derived reading from `decoded`, the readings of this poll decoded so far
    /// (in profile order, indices into `specs`).
    ///
    /// An input that was not read, or that lies outside its own `min`/`max`, leaves the value
    /// out: a garbage word in one string must not hide inside a plausible-looking sum.
    ///
    /// # Errors
    /// [`DecodeError::Input`] naming the first input that is missing or out of range.
    pub fn derive(&self, specs: &[ReadingSpec], decoded: &[Reading]) -> Result<Value, DecodeError> {
        let mut values = self.inputs.iter().map(|&index| {
            let at = decoded.binary_search_by_key(&index, |r| r.index).ok();
            let value = at.and_then(|at| decoded[at].value.as_f64());
            value
                .filter(|v| specs[index].def.out_of_range(*v).is_none())
                .ok_or_else(|| DecodeError::Input(specs[index].def.key.clone()))
        });
        let value = match self.def.kind {
            Kind::Product => values.try_fold(1.0, |acc, v| v.map(|v| acc * v))?,
            _ => values.try_fold(0.0, |acc, v| v.map(|v| acc + v))?,
        };
        Ok(Value::Number(self.round(value)))
    }
}
