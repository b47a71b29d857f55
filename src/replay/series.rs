//! Series for `replay --svg`: for a few chosen readings, per replayed poll, what the registers
//! said (the raw decoded value, before plausibility) against what reached Home Assistant.
//!
//! This module owns which readings are drawn ([`Capture::new`], [`default_keys`]) and how one
//! poll becomes one [`Point`] per series. It must not decode or judge on its own: the raw value
//! comes from the profile's own [`Profile::decode`] of the recorded registers, the published
//! value and the rejections from the very [`Update`] the sinks receive (and, for a whole poll
//! refused, the rule the poller named). A replay without `--svg` builds no [`Capture`] and pays
//! nothing for it.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::poller::{PollError, Snapshot, Update};
use crate::profile::{Profile, RegisterSet};
use crate::record::Poll;

/// The most series drawn by default: six small panels stay readable on one screen.
pub const DEFAULT_SERIES: usize = 6;

/// Readings worth a panel first when a profile has them: the counters the Energy dashboard
/// sums, then the power flows a person looks at first.
const PREFERRED: [&str; 7] = [
    "pv_energy_total",
    "grid_import_total",
    "pv_energy_today",
    "pv1_power",
    "battery_power",
    "grid_power",
    "load_power",
];

/// One poll of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// When the poll started (UTC, as recorded).
    pub time: DateTime<Utc>,
    /// The house's wall clock at the poll, as recorded.
    pub local: NaiveDateTime,
    /// What the registers said, decoded by the profile; `None` when not read or not a number.
    pub raw: Option<f64>,
    /// The value the poll handed to Home Assistant; `None` when rejected or not read.
    pub published: Option<f64>,
    /// The name of the plausibility rule that rejected the raw value (or the whole poll), if
    /// one did: as in the report and the metrics.
    pub rejected: Option<&'static str>,
}

/// One reading of one inverter over the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The inverter's configured name.
    pub inverter: String,
    /// The reading's key.
    pub key: String,
    /// The reading's display name; empty when the profile has no such key.
    pub name: String,
    /// The unit, if any.
    pub unit: Option<String>,
    /// One point per replayed poll of the inverter (none when the profile lacks the key).
    pub points: Vec<Point>,
}

/// The series being collected during one replay.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// The keys asked for (`--svg-keys`); `None`: [`default_keys`] of each inverter's profile.
    keys: Option<Vec<String>>,
    series: Vec<Series>,
}

/// The rule of a poll rejected as a whole (`zero_frame`, `zero_poll`), for [`Capture::observe`]:
/// the update a sink sees carries only the words.
pub fn whole_poll(outcome: &Result<Snapshot, PollError>) -> Option<&'static str> {
    match outcome {
        Err(PollError::Rejected(rejection)) => Some(rejection.rule.as_str()),
        _ => None,
    }
}

/// The readings drawn when none are named: the preferred ones the profile has, then its total
/// and daily counters in profile order, at most [`DEFAULT_SERIES`].
pub fn default_keys(profile: &Profile) -> Vec<String> {
    let counters = profile.readings.iter().filter(|r| r.def.counter.is_some()).map(|r| r.def.key.as_str());
    let mut keys: Vec<String> = Vec::new();
    for key in PREFERRED.into_iter().filter(|k| profile.index_of(k).is_some()).chain(counters) {
        if keys.len() < DEFAULT_SERIES && !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    keys
}

impl Capture {
    /// A capture of `keys` (`None`: each profile's [`default_keys`]).
    pub fn new(keys: Option<Vec<String>>) -> Self {
        Self { keys, series: Vec::new() }
    }

    /// The series so far, in the order first seen: by inverter, then as chosen.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Takes in one replayed poll: `poll` as recorded, decoded with `profile` (the poller's, the
    /// one the snapshot indexes into), `whole` the rule that refused the poll as a whole, and
    /// `update` what the sinks got for it.
    pub fn observe(&mut self, profile: &Profile, poll: &Poll, whole: Option<&'static str>, update: &Update) {
        if !self.series.iter().any(|s| s.inverter == poll.inverter) {
            self.start(profile, &poll.inverter);
        }
        let raw = raw_values(profile, poll);
        let snapshot = match update {
            Update::Polled { snapshot, .. } => Some(snapshot),
            Update::Failed { .. } => None,
        };
        for series in self.series.iter_mut().filter(|s| s.inverter == poll.inverter) {
            let Some(index) = profile.index_of(&series.key) else { continue };
            let raw = raw.iter().find(|(i, _)| *i == index).map(|(_, v)| *v);
            let published = snapshot.and_then(|s| s.get(&series.key)).and_then(|v| v.as_f64());
            let rejected = match snapshot {
                Some(s) => s.rejected.iter().find(|r| r.index == Some(index)).map(|r| r.rule.as_str()),
                None => whole.filter(|_| raw.is_some()),
            };
            series.points.push(Point { time: poll.time, local: poll.local, raw, published, rejected });
        }
    }

    /// The series of a newly seen inverter, one per chosen key; a key its profile lacks keeps
    /// an empty series, so the picture says so rather than leaving it out silently.
    fn start(&mut self, profile: &Profile, inverter: &str) {
        let keys = self.keys.clone().unwrap_or_else(|| default_keys(profile));
        for key in keys {
            let def = profile.index_of(&key).map(|i| &profile.readings[i].def);
            if def.is_none() {
                tracing::warn!(inverter, key, profile = profile.id(), "--svg-keys: no such reading");
            }
            self.series.push(Series {
                inverter: inverter.to_string(),
                name: def.map(|d| d.name.clone()).unwrap_or_default(),
                unit: def.and_then(|d| d.unit.clone()),
                key,
                points: Vec::new(),
            });
        }
    }
}

/// Every numeric reading the recorded registers decode to, by profile index: the profile's
/// own decode, before any plausibility rule.
fn raw_values(profile: &Profile, poll: &Poll) -> Vec<(usize, f64)> {
    let mut regs = RegisterSet::new();
    for block in &poll.blocks {
        regs.insert(block.clone());
    }
    let (readings, _) = profile.decode(&regs);
    readings.into_iter().filter_map(|r| Some((r.index, r.value.as_f64()?))).collect()
}

#[cfg(test)]
mod tests;
