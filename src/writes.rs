//! Writes from Home Assistant: a setting's command, checked, coalesced, and carried out between
//! polls over the poller's own connection (docs/writes.md).
//!
//! The module owns the rules that keep a write from hurting the inverter, as plain functions
//! and state machines without I/O: what a payload means and whether the profile allows it
//! ([`check`]), whether the live readings allow it ([`check::live`]), and when a command may go
//! out ([`coalesce`]: latest wins after a settle time, one write per key per interval, a global
//! rate). [`exec`] is the one async step: read, skip when unchanged, one FC16 of the whole
//! register(s), read back. The poll loop (`poller::run`) drives it through a [`WritePort`];
//! MQTT only carries commands in and results out (`mqtt::writes`). Nothing here opens a
//! connection or subscribes to anything; it sits in the core layer beside the poller and
//! imports only profiles, the protocol and the transport trait.

pub mod check;
pub mod clock;
pub mod coalesce;
pub mod exec;
pub mod table;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::profile::Profile;

/// A request to set one reading of one inverter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The inverter, as named in the configuration (and in the command topic).
    pub inverter: String,
    /// The reading's key.
    pub key: String,
    /// The payload as Home Assistant sent it (`5000`, `Export first`, `ON`, `05:30`).
    pub payload: String,
    /// The topic it came on: the audit log names who asked.
    pub topic: String,
    /// The identity (`Snapshot::identity`, the inverter's serial) the entity was announced
    /// with: the poll loop refuses the command unless its inverter still has it.
    pub identity: String,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written and read back as asked.
    Written,
    /// Written, but the read-back is not what was asked: the inverter clamped or ignored it.
    NotKept,
    /// The inverter already held the value: nothing was written.
    Unchanged,
    /// A rule refused it: nothing was written.
    Refused,
    /// The inverter or the link failed: nothing more was written.
    Failed,
    /// A later command for the same key replaced it before it went out.
    Superseded,
}

impl Outcome {
    /// As the metrics label and the result JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Written => "written",
            Self::NotKept => "not_kept",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
        }
    }
}

/// What became of a command: published on `<base>/<inverter>/write_result` and logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteResult {
    /// The inverter.
    #[serde(skip)]
    pub inverter: String,
    /// The reading's key.
    pub key: String,
    /// The payload asked for.
    pub value: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The value before the write, as read just before it (for a table, by reading key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    /// The value read back after the write: what the inverter holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back: Option<serde_json::Value>,
}

/// Why a command was refused or failed; the text goes to the result topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// The key is not writable here (not in the profile, or not in `write_keys`).
    #[error("`{0}` is not writable on this inverter")]
    NotWritable(String),
    /// The payload is not a value of this setting.
    #[error("{0}")]
    BadValue(String),
    /// The live readings forbid it.
    #[error("{0}")]
    Limit(String),
    /// The command is not for this inverter, or its identity is not known yet.
    #[error("{0}")]
    Identity(String),
    /// The inverter refused or the link failed.
    #[error("{0}")]
    Link(String),
}

/// Which keys one inverter lets Home Assistant set: `writes = true`, narrowed by `write_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    keys: Vec<String>,
}

impl Allowed {
    /// Every writable reading when `keys` is empty, else only those.
    pub fn new(keys: &[String]) -> Self {
        Self { keys: keys.to_vec() }
    }

    /// True when `key` of `profile` is writable and allowed.
    pub fn permits(&self, profile: &Profile, key: &str) -> bool {
        let writable = profile.readings.iter().any(|r| r.def.key == key && r.def.write.is_some());
        writable && (self.keys.is_empty() || self.keys.iter().any(|k| k == key))
    }

    /// The keys named in `write_keys` that `profile` cannot write.
    pub fn unknown(&self, profile: &Profile) -> Vec<String> {
        unknown_keys(profile, &self.keys)
    }
}

/// Those of `keys` that are not writable readings of `profile`.
pub fn unknown_keys(profile: &Profile, keys: &[String]) -> Vec<String> {
    let writable = |key: &String| profile.readings.iter().any(|r| r.def.key == *key && r.def.write.is_some());
    keys.iter().filter(|k| !writable(k)).cloned().collect()
}

/// (inverter, key, outcome): what a write counter counts.
type CountKey = (String, String, Outcome);

/// Writes counted by inverter, key and outcome, read by `/metrics` at scrape time.
#[derive(Debug, Clone, Default)]
pub struct WriteCounters {
    counts: Arc<Mutex<BTreeMap<CountKey, u64>>>,
}

impl WriteCounters {
    /// Counts one result.
    pub fn count(&self, result: &WriteResult) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((result.inverter.clone(), result.key.clone(), result.outcome)).or_default() += 1;
    }

    /// Every count so far, as (inverter, key, outcome, count).
    pub fn snapshot(&self) -> Vec<(String, String, Outcome, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().map(|((i, k, o), n)| (i.clone(), k.clone(), *o, *n)).collect()
    }
}

/// What a poll loop needs to take writes: its commands, where results go, what it allows.
#[derive(Debug)]
pub struct WritePort {
    /// Commands for the inverters of this loop (one, or a parallel stack's).
    pub commands: mpsc::Receiver<Command>,
    /// Results, for the result topic.
    pub results: mpsc::Sender<WriteResult>,
    /// The keys each inverter of the loop lets be set, by name; one not named takes none.
    pub allowed: BTreeMap<String, Allowed>,
    /// The counters `/metrics` reads.
    pub counters: WriteCounters,
    /// The timing rules.
    pub timing: coalesce::Timing,
}
