//! What a poll produces, and the updates sinks subscribe to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::Change;
use crate::profile::{Choice, Profile, ReadBlock, Reading, ReadingSpec, Value};
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
    /// How that profile was chosen: detected or configured, and what the inverter said.
    pub choice: Arc<Choice>,
    /// When the poll started.
    pub time: DateTime<Utc>,
    /// The inverter's wall clock at the poll (the host's when the profile maps no clock).
    pub local: NaiveDateTime,
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
    /// The label that names this inverter for ever: Home Assistant's unique_id prefix, the
    /// InfluxDB `serial` tag and the Prometheus `serial` label. See [`identity`]; every sink
    /// reads it here and none computes its own, so they can never disagree.
    pub identity: Arc<str>,
}

/// The identity of an inverter, resolved once by its poller: the inverter's serial; without
/// one (a profile that maps none) the logger's serial; without that (a Modbus TCP gateway has
/// none, `0`) the configured name, never a `0` two inverters would share. Characters that are
/// not `[a-zA-Z0-9_-]` become `_`, as discovery ids allow.
///
/// Unique ids are forever: changing these rules renames every user's entities and series.
pub fn identity(serial: Option<&str>, logger_serial: u32, inverter: &str) -> Arc<str> {
    let label = match (serial, logger_serial) {
        (Some(serial), _) => serial.to_string(),
        (None, 0) => inverter.to_string(),
        (None, logger) => logger.to_string(),
    };
    sanitize(&label).into()
}

/// Keeps `[a-zA-Z0-9_-]`, maps everything else to `_`: what Home Assistant's discovery ids and
/// entity ids allow.
pub fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
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

    /// How far the inverter's clock, as this poll read it, is off the host's local time when
    /// the poll started, in seconds (positive: ahead); `None` when the profile maps no clock or
    /// this poll did not read it.
    pub fn clock_drift(&self) -> Option<f64> {
        let inverter = super::inverter_clock(&self.profile, &self.readings)?;
        let host = self.time.with_timezone(&chrono::Local).naive_local();
        Some((inverter - host).as_seconds_f64())
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

impl Update {
    /// The inverter the update is about.
    pub fn inverter(&self) -> &str {
        match self {
            Self::Polled { snapshot, .. } => &snapshot.inverter,
            Self::Failed { failure, .. } => &failure.inverter,
        }
    }
}

/// The four power flows a person looks at first, from the well-known profile keys, in W with
/// Deye's signs (battery + discharging, grid + importing). `None` where the reading is missing
/// (not mapped, not read, or rejected): never a false zero.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PowerFlows {
    /// PV power of all strings that reported one.
    pub pv: Option<f64>,
    /// Battery state of charge, %.
    pub battery_soc: Option<f64>,
    /// Battery power.
    pub battery: Option<f64>,
    /// Grid power.
    pub grid: Option<f64>,
    /// House load.
    pub load: Option<f64>,
}

/// The PV string power keys; their sum is the PV power.
const PV_KEYS: [&str; 4] = ["pv1_power", "pv2_power", "pv3_power", "pv4_power"];

impl PowerFlows {
    /// The flows of `snapshot`.
    pub fn of(snapshot: &Snapshot) -> Self {
        let number = |key: &str| snapshot.get(key).and_then(Value::as_f64);
        let strings: Vec<f64> = PV_KEYS.iter().filter_map(|k| number(k)).collect();
        Self {
            pv: (!strings.is_empty()).then(|| strings.iter().sum()),
            battery_soc: number("battery_soc"),
            battery: number("battery_power"),
            grid: number("grid_power"),
            load: number("load_power"),
        }
    }
}

/// Which way `watts` flows: `positive` above +50 W, `negative` below −50 W, idle in between
/// (the dead band ha-solarman uses for its battery state).
pub fn direction(watts: f64, positive: &'static str, negative: &'static str) -> &'static str {
    match watts {
        w if w > 50.0 => positive,
        w if w < -50.0 => negative,
        _ => "idle",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::profile::Profiles;
    use crate::sim::fixture;

    #[test]
    fn flows_sum_the_strings_and_leave_missing_readings_unknown() {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let mut snapshot = fixture::snapshot(profile.clone(), "house", at);
        let pv: f64 = PV_KEYS.iter().filter_map(|k| snapshot.get(k).and_then(Value::as_f64)).sum();
        let flows = PowerFlows::of(&snapshot);
        assert_eq!(flows.pv, Some(pv));
        assert!(flows.battery_soc.is_some() && flows.grid.is_some() && flows.load.is_some());
        let grid = profile.index_of("grid_power").unwrap();
        snapshot.readings.retain(|r| r.index != grid);
        assert_eq!(PowerFlows::of(&snapshot).grid, None, "a rejected reading is unknown, not 0 W");
    }

    #[test]
    fn identity_falls_back_from_inverter_serial_to_logger_serial_to_name() {
        assert_eq!(&*identity(Some("2306178901"), 2_712_345_678, "house"), "2306178901");
        assert_eq!(&*identity(Some("SN 12/3"), 0, "house"), "SN_12_3", "sanitised");
        assert_eq!(&*identity(None, 2_712_345_678, "house"), "2712345678");
        assert_eq!(&*identity(None, 0, "garage-2"), "garage-2", "never a shared 0");
    }

    #[test]
    fn direction_has_a_dead_band_of_50_watts() {
        assert_eq!(direction(120.0, "import", "export"), "import");
        assert_eq!(direction(-51.0, "import", "export"), "export");
        assert_eq!(direction(50.0, "import", "export"), "idle");
    }
}
