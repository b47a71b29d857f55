//! The state JSON of an inverter (the public feed) and its diagnostics JSON.
//!
//! The state holds the latest accepted value of every reading: a reading rejected this poll
//! keeps its last good value for a while (three poll intervals), then leaves the JSON, and one
//! never accepted is absent: Home Assistant shows both as unknown, never a frozen value.
//!
//! Keys come out in alphabetical order, `time` among them:
//!
//! ```json
//! {"battery_soc": 65, "grid_connected": true, "grid_power": -1200, "running_state": "Normal", "time": "2026-11-27T10:00:00Z"}
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as Json, json};

use crate::poller::{PollFailure, Snapshot};
use crate::profile::Value;

/// The latest accepted values of one inverter, each with when it was accepted.
#[derive(Debug, Clone, Default)]
pub(crate) struct StateCache {
    values: BTreeMap<String, (Value, DateTime<Utc>)>,
    time: Option<DateTime<Utc>>,
    keep: chrono::Duration,
}

impl StateCache {
    /// A cache that keeps a value no longer accepted for `keep` (three poll intervals).
    pub(crate) fn new(keep: std::time::Duration) -> Self {
        Self { keep: chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX), ..Self::default() }
    }

    /// Takes in the accepted readings of a snapshot, and forgets values accepted too long ago.
    pub(crate) fn update(&mut self, snapshot: &Snapshot) {
        for (spec, value) in snapshot.iter() {
            self.values.insert(spec.def.key.clone(), (value.clone(), snapshot.time));
        }
        let keep = self.keep;
        self.values.retain(|_, (_, at)| snapshot.time - *at <= keep);
        self.time = Some(snapshot.time);
    }

    /// True before the first successful poll.
    pub(crate) fn is_empty(&self) -> bool {
        self.time.is_none()
    }

    /// The state JSON.
    pub(crate) fn to_json(&self) -> Json {
        let mut map = Map::new();
        if let Some(time) = self.time {
            map.insert("time".into(), json!(time.to_rfc3339_opts(SecondsFormat::Secs, true)));
        }
        for (key, (value, _)) in &self.values {
            map.insert(key.clone(), serde_json::to_value(value).unwrap_or(Json::Null));
        }
        Json::Object(map)
    }
}

/// The service's statistics for one inverter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Diagnostics {
    poll_duration_ms: Option<u128>,
    last_success: Option<DateTime<Utc>>,
    consecutive_failures: u32,
    link: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
}

impl Diagnostics {
    /// Records a successful poll.
    pub(crate) fn polled(&mut self, snapshot: &Snapshot) {
        self.poll_duration_ms = Some(snapshot.duration.as_millis());
        self.last_success = Some(snapshot.time);
        self.consecutive_failures = 0;
        self.link = snapshot.link.iter().map(|(e, n)| (e.as_str(), n)).collect();
        self.rejected = snapshot.rejected_total.clone();
    }

    /// Records a failed poll.
    pub(crate) fn failed(&mut self, failure: &PollFailure) {
        self.consecutive_failures = failure.consecutive_failures;
        self.link = failure.link.iter().map(|(e, n)| (e.as_str(), n)).collect();
    }

    /// The diagnostics JSON; every counter is present, zero or not, so templates never miss.
    pub(crate) fn to_json(&self) -> Json {
        let link: Map<String, Json> = crate::transport::Event::ALL
            .iter()
            .map(|e| (e.as_str().to_string(), json!(self.link.get(e.as_str()).copied().unwrap_or(0))))
            .collect();
        let rejected: Map<String, Json> = crate::quality::Rule::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), json!(self.rejected.get(r.as_str()).copied().unwrap_or(0))))
            .collect();
        json!({
            "poll_duration_ms": self.poll_duration_ms,
            "last_success": self.last_success.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "consecutive_failures": self.consecutive_failures,
            "link": link,
            "rejected": rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::profile::Profiles;
    use crate::sim::fixture;

    #[test]
    fn a_reading_no_longer_accepted_keeps_its_value_briefly_then_leaves() {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let soc = profile.index_of("battery_soc").unwrap();
        let without_soc = |at| {
            let mut snapshot = fixture::snapshot(profile.clone(), "house", at);
            snapshot.readings.retain(|r| r.index != soc);
            snapshot
        };
        let mut cache = StateCache::new(Duration::from_secs(180));
        cache.update(&fixture::snapshot(profile.clone(), "house", t0));
        cache.update(&without_soc(t0 + TimeDelta::minutes(1)));
        assert!(cache.to_json()["battery_soc"].is_number(), "a rejected reading keeps its last good value");
        cache.update(&without_soc(t0 + TimeDelta::minutes(4)));
        assert!(
            cache.to_json().get("battery_soc").is_none(),
            "after three intervals it is unknown, not frozen"
        );
        assert!(cache.to_json()["grid_power"].is_number());
    }
}
