//! The time-of-use table as one command: all six slots at once, checked together and written
//! as one FC16 per register block (the times and powers, then the SOCs and charge sources on
//! SG01LP1), beside the per-slot entities.
//!
//! The payload on `<base>/<inverter>/set/time_of_use` is a JSON array of six slots; `time` is
//! required, the others keep what the inverter holds when left out:
//!
//! ```json
//! [{"time": "00:00", "power": 3000, "soc": 80, "charge_source": "Grid"}, {"time": "05:00"}, …]
//! ```

use serde::Deserialize;

use super::{Allowed, WriteError, check};
use crate::profile::{Profile, Value};

/// The command key a whole table is set under: no reading has it.
pub const KEY: &str = "time_of_use";

/// Slots in Deye's table.
const SLOTS: usize = 6;

/// One slot as the command gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Slot {
    time: String,
    power: Option<f64>,
    soc: Option<f64>,
    charge_source: Option<String>,
}

/// The readings (by index into `profile`) and values a table command sets, each checked as a
/// single command would be; the times must rise strictly from slot 1 to slot 6.
///
/// # Errors
/// [`WriteError::BadValue`] for a payload that is not six slots or a value a setting does not
/// take, [`WriteError::NotWritable`] for a slot reading not allowed, [`WriteError::Limit`] for
/// times out of order or a SOC below the shutdown SOC.
pub fn parse(
    profile: &Profile,
    allowed: &Allowed,
    payload: &str,
    latest: impl Fn(&str) -> Option<f64>,
) -> Result<Vec<(usize, Value)>, WriteError> {
    let slots: Vec<Slot> = serde_json::from_str(payload)
        .map_err(|e| WriteError::BadValue(format!("{KEY}: not a JSON array of slots: {e}")))?;
    if slots.len() != SLOTS {
        return Err(WriteError::BadValue(format!(
            "{KEY}: {} slots given, the table has {SLOTS}",
            slots.len()
        )));
    }
    let mut items = Vec::new();
    for (n, slot) in (1..).zip(&slots) {
        let fields = [
            ("start_time", Some(slot.time.clone())),
            ("power", slot.power.map(|p| p.to_string())),
            ("soc", slot.soc.map(|s| s.to_string())),
            ("charge_source", slot.charge_source.clone()),
        ];
        for (field, text) in fields {
            let Some(text) = text else { continue };
            let key = format!("program_{n}_{field}");
            let index = profile
                .index_of(&key)
                .filter(|_| allowed.permits(profile, &key))
                .ok_or_else(|| WriteError::NotWritable(key.clone()))?;
            let value = check::parse(&profile.readings[index], &text)?;
            if field == "soc" {
                check::live(&key, &value, &latest)?;
            }
            items.push((index, value));
        }
    }
    ascending(profile, &items)?;
    Ok(items)
}

/// Slot 1 at 00:00 and the times strictly rising, so slot 6 ends at midnight and no slot
/// spans it.
fn ascending(profile: &Profile, items: &[(usize, Value)]) -> Result<(), WriteError> {
    let times: Vec<f64> = items
        .iter()
        .filter(|(i, _)| profile.readings[*i].def.key.ends_with("_start_time"))
        .filter_map(|(_, v)| v.as_f64())
        .collect();
    if let Some(first) = times.first().filter(|t| **t != 0.0) {
        return Err(WriteError::Limit(format!(
            "{KEY}: slot 1 starts at {}, not 00:00: slot 1 starts the day, so slot 6 ends at midnight and no slot spans it",
            check::time_text(*first)
        )));
    }
    match times.windows(2).position(|w| w[1] <= w[0]) {
        Some(at) => Err(WriteError::Limit(format!(
            "{KEY}: slot {}'s start {} is not after slot {}'s {}",
            at + 2,
            check::time_text(times[at + 1]),
            at + 1,
            check::time_text(times[at])
        ))),
        None => Ok(()),
    }
}
