//! What a poll produces, and the updates sinks subscribe to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Change;
use crate::profile::{Profile, ReadBlock, Reading, ReadingSpec, Value};
use crate::protocol::Exception;
use crate::quality::Rejection;
use crate::transport::Counters;

/// The accepted readings of one poll of one inverter, with what it took to get them.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The inverter's configured name.
    pub inverter: Arc<str>,
    /// The profile the readings index into.
    pub profile: Arc<Profile>,
    /// When the poll started.
    pub time: DateTime<Utc>,
    /// Accepted readings, in profile order.
    pub readings: Vec<Reading>,
    /// Readings rejected by plausibility this poll.
    pub rejected: Vec<Rejection>,
    /// Reads the inverter refused this poll.
    pub refused: Vec<(ReadBlock, Exception)>,
    /// How long the poll took.
    pub duration: Duration,
    /// How many reads it made.
    pub reads: usize,
    /// The link's counters after the poll.
    pub link: Counters,
    /// Rejections so far, by rule.
    pub rejected_total: BTreeMap<&'static str, u64>,
    /// The inverter's serial as last read (kept when a poll misses its registers): the device
    /// identity every sink uses, so it never flips between polls.
    pub serial: Option<Arc<str>>,
}

/// One reading as the public JSON feed shows it.
#[derive(Debug, Serialize)]
pub struct ReadingView<'a> {
    /// The profile key.
    pub key: &'a str,
    /// The display name.
    pub name: &'a str,
    /// The value.
    pub value: &'a Value,
    /// The unit, if any.
    pub unit: Option<&'a str>,
    /// Decimal register addresses the reading came from.
    pub registers: &'a [u16],
}

impl Snapshot {
    /// Each accepted reading with its definition.
    pub fn iter(&self) -> impl Iterator<Item = (&ReadingSpec, &Value)> {
        self.readings.iter().map(|r| (&self.profile.readings[r.index], &r.value))
    }

    /// The value of the reading with `key`, if it was accepted.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.iter().find(|(spec, _)| spec.def.key == key).map(|(_, v)| v)
    }

    /// The readings as `{key, name, value, unit, registers}` objects.
    pub fn views(&self) -> Vec<ReadingView<'_>> {
        self.iter()
            .map(|(spec, value)| ReadingView {
                key: &spec.def.key,
                name: &spec.def.name,
                value,
                unit: spec.def.unit.as_deref(),
                registers: &spec.def.registers,
            })
            .collect()
    }
}

/// A poll that produced no snapshot.
#[derive(Debug, Clone)]
pub struct PollFailure {
    /// The inverter's configured name.
    pub inverter: Arc<str>,
    /// When the poll started.
    pub time: DateTime<Utc>,
    /// Why it failed, in words.
    pub error: String,
    /// Failed polls in a row, this one included.
    pub consecutive_failures: u32,
    /// The link's counters after the poll.
    pub link: Counters,
}

/// What pollers broadcast to sinks.
#[derive(Debug, Clone)]
pub enum Update {
    /// A poll succeeded.
    Polled {
        /// The snapshot.
        snapshot: Arc<Snapshot>,
        /// A change of availability to announce.
        change: Option<Change>,
    },
    /// A poll failed.
    Failed {
        /// What went wrong.
        failure: Arc<PollFailure>,
        /// A change of availability to announce.
        change: Option<Change>,
    },
}
