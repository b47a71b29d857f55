//! One poll of one inverter as one point: every reading a field, the inverter's name and serial
//! as tags.
//!
//! Numbers are always float fields, even whole ones: InfluxDB fixes a field's type on its first
//! write, and a reading that is `65` today and `65.5` tomorrow must not conflict with itself.
//! Flags are boolean fields; enum options, serials and firmware versions are string fields.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::BTreeMap;

use super::line::{FieldValue, Point};
use crate::config::InfluxConfig;
use crate::poller::Snapshot;
use crate::profile::Value;

/// Turns snapshots into points the way the configuration says.
#[derive(Debug, Clone)]
pub struct InverterPoints {
    measurement: String,
    tags: BTreeMap<String, String>,
    precision: TimeDelta,
}

impl InverterPoints {
    /// Points of `influx.measurement` with `influx.tags`.
    pub fn new(influx: &InfluxConfig) -> Self {
        Self {
            measurement: influx.measurement.clone(),
            tags: influx.tags.clone(),
            precision: TimeDelta::from_std(influx.precision).unwrap_or(TimeDelta::seconds(1)),
        }
    }

    /// The point of `snapshot`.
    pub fn point(&self, snapshot: &Snapshot) -> Point {
        let mut tags = self.tags.clone();
        tags.insert("inverter".into(), snapshot.inverter.to_string());
        tags.insert("serial".into(), snapshot.identity.to_string());
        let fields = snapshot.iter().map(|(spec, value)| (spec.def.key.clone(), field(value))).collect();
        Point {
            measurement: self.measurement.clone(),
            tags,
            fields,
            time: truncate(snapshot.time, self.precision),
        }
    }
}

/// A reading as a field value.
fn field(value: &Value) -> FieldValue {
    match value {
        Value::Number(n) => FieldValue::Float(*n),
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Text(t) => FieldValue::Text(t.to_string()),
    }
}

/// `time` cut down to a multiple of `precision` (whole seconds by default).
pub(super) fn truncate(time: DateTime<Utc>, precision: TimeDelta) -> DateTime<Utc> {
    time.duration_trunc(precision).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::profile::{Profile, Profiles};

    /// A snapshot of the simulated house at local noon plus 750 ms.
    fn snapshot() -> Snapshot {
        let profile: Arc<Profile> = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap() + TimeDelta::milliseconds(750);
        crate::sim::fixture::snapshot(profile, "house", at)
    }

    fn points(precision: &str) -> InverterPoints {
        let influx: InfluxConfig = toml::from_str(&format!(
            "database = \"db\"\nprecision = \"{precision}\"\ntags = {{ site = \"home\" }}"
        ))
        .unwrap();
        InverterPoints::new(&influx)
    }

    #[test]
    fn every_reading_is_a_field_and_name_serial_and_extra_tags_are_tags() {
        let snapshot = snapshot();
        let point = points("1s").point(&snapshot);
        assert_eq!(point.measurement, "inverter");
        let tags: Vec<(&str, &str)> = point.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(tags, [("inverter", "house"), ("serial", "2306178901"), ("site", "home")]);
        assert_eq!(point.fields.len(), snapshot.readings.len());
        let field = |key: &str| point.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(
            field("battery_soc"),
            FieldValue::Float(snapshot.get("battery_soc").unwrap().as_f64().unwrap())
        );
        assert_eq!(field("grid_connected"), FieldValue::Bool(true));
        assert_eq!(field("running_state"), FieldValue::Text("Normal".into()));
        assert!(
            point.fields.iter().all(|(_, v)| !matches!(v, FieldValue::Integer(_))),
            "numbers are floats, so a field's type never changes"
        );
    }

    #[test]
    fn times_are_cut_to_the_configured_precision() {
        let snapshot = snapshot();
        assert_eq!(points("1s").point(&snapshot).time, Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap());
        assert_eq!(points("1ms").point(&snapshot).time, snapshot.time);
        let line = points("1s").point(&snapshot).to_line().unwrap();
        assert!(line.ends_with(" 1795773600000000000"), "{}", &line[line.len() - 30..]);
    }
}
