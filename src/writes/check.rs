//! What a payload means for a writable reading, and whether the profile and the live readings
//! allow it. Pure functions: the tests call them without an inverter.
//!
//! The live rules are keyed by reading keys, so they apply to every family whose profile uses
//! those keys: `max_sell_power` at most `rated_power`; `program_N_soc` at least
//! `battery_shutdown_soc`; `program_N_start_time` strictly after slot N−1's and before slot
//! N+1's, and slot 1 at 00:00, so the six slots run in order through the day and none spans
//! midnight (slot 6 ends there).

use std::sync::Arc;

use super::WriteError;
use crate::profile::{ReadingSpec, Value, WriteForm};

/// Slots of Deye's time-of-use table.
const SLOTS: u8 = 6;

/// The value `payload` asks `spec` to take, within the profile's range, step and options.
///
/// # Errors
/// [`WriteError::NotWritable`] for a read-only reading, [`WriteError::BadValue`] naming what
/// the setting takes.
pub fn parse(spec: &ReadingSpec, payload: &str) -> Result<Value, WriteError> {
    let def = &spec.def;
    let (Some(form), Some(write)) = (def.write_form(), def.write.as_ref()) else {
        return Err(WriteError::NotWritable(def.key.clone()));
    };
    let text = payload.trim();
    let bad = |why: String| WriteError::BadValue(format!("{}: `{text}` {why}", def.key));
    match form {
        WriteForm::Switch => on_off(text).map(Value::Bool).ok_or_else(|| bad("is not ON or OFF".into())),
        WriteForm::Select => spec
            .options
            .iter()
            .find(|(_, option)| option.eq_ignore_ascii_case(text))
            .map(|(_, option)| Value::Text(option.clone()))
            .ok_or_else(|| {
                let options: Vec<&str> = spec.options.iter().map(|(_, o)| &**o).collect();
                bad(format!("is not one of {}", options.join(", ")))
            }),
        WriteForm::Time => {
            hhmm(text).map(|t| Value::Number(f64::from(t))).ok_or_else(|| bad("is not a time HH:MM".into()))
        }
        WriteForm::Number => {
            let value: f64 = text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| bad("is not a number".into()))?;
            let (min, max) = (write.min.unwrap_or(f64::MIN), write.max.unwrap_or(f64::MAX));
            if !(min..=max).contains(&value) {
                return Err(bad(format!("is outside {min}..={max}")));
            }
            if let Some(step) = write.step {
                let steps = (value - min) / step;
                if (steps - steps.round()).abs() > 1e-6 {
                    return Err(bad(format!("is not {min} plus a multiple of {step}")));
                }
            }
            Ok(Value::Number(value))
        }
    }
}

/// `ON`/`OFF` in any case, as Home Assistant's switches send, and `1`/`0`, `true`/`false`.
fn on_off(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Some(true),
        "off" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// `HH:MM` (or `HH:MM:SS`, as Home Assistant's time entities send) as Deye's `HHMM`.
pub fn hhmm(text: &str) -> Option<u16> {
    let mut parts = text.split(':');
    let hour: u16 = parts.next()?.parse().ok()?;
    let minute: u16 = parts.next()?.parse().ok()?;
    let second_ok = parts.next().is_none_or(|s| s.parse::<u16>().is_ok_and(|s| s < 60));
    (hour < 24 && minute < 60 && second_ok && parts.next().is_none()).then_some(hour * 100 + minute)
}

/// `HHMM` as `HH:MM`: how a slot time is shown and how the read-back reads.
pub fn time_text(hhmm: f64) -> Arc<str> {
    let raw = hhmm.max(0.0) as u32;
    format!("{:02}:{:02}", raw / 100, raw % 100).into()
}

/// Whether the live readings allow `key` to take `value`; `latest` looks a reading up in the
/// latest snapshot. A rule whose reading is not known yet refuses: no guessing on the inverter.
///
/// # Errors
/// [`WriteError::Limit`] saying which rule.
pub fn live(key: &str, value: &Value, latest: impl Fn(&str) -> Option<f64>) -> Result<(), WriteError> {
    let Some(value) = value.as_f64() else { return Ok(()) };
    let need = |other: &str| {
        latest(other).ok_or_else(|| WriteError::Limit(format!("{key}: `{other}` has not been read yet")))
    };
    if key == "max_sell_power" {
        let rated = need("rated_power")?;
        if value > rated {
            return Err(WriteError::Limit(format!("{key}: {value} W is above the rated power {rated} W")));
        }
    }
    if let Some(slot) = slot_of(key, "_soc") {
        let shutdown = need("battery_shutdown_soc")?;
        if value < shutdown {
            return Err(WriteError::Limit(format!(
                "{key}: {value} % is below the battery shutdown SOC {shutdown} % (slot {slot})"
            )));
        }
    }
    if let Some(slot) = slot_of(key, "_start_time") {
        ascending(key, slot, value, need)?;
    }
    Ok(())
}

/// Slot 1 at 00:00; slot N's start after slot N−1's and before slot N+1's, as read (a
/// neighbour not read yet refuses, through `need`).
fn ascending(
    key: &str,
    slot: u8,
    value: f64,
    need: impl Fn(&str) -> Result<f64, WriteError>,
) -> Result<(), WriteError> {
    let time = |n: u8| need(&format!("program_{n}_start_time"));
    let refuse = |why: String| Err(WriteError::Limit(format!("{key}: {} {why}", time_text(value))));
    if slot == 1 && value != 0.0 {
        return refuse(
            "is not 00:00: slot 1 starts the day, so slot 6 ends at midnight and no slot spans it".into(),
        );
    }
    if slot > 1 {
        let before = time(slot - 1)?;
        if value <= before {
            return refuse(format!("is not after slot {}'s start {}", slot - 1, time_text(before)));
        }
    }
    if slot < SLOTS {
        let after = time(slot + 1)?;
        if value >= after {
            return refuse(format!("is not before slot {}'s start {}", slot + 1, time_text(after)));
        }
    }
    Ok(())
}

/// N of `program_N<suffix>`.
fn slot_of(key: &str, suffix: &str) -> Option<u8> {
    let n: u8 = key.strip_prefix("program_")?.strip_suffix(suffix)?.parse().ok()?;
    (1..=SLOTS).contains(&n).then_some(n)
}
