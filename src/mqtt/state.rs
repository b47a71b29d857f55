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

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, SecondsFormat, Utc};
#[cfg(test)]
use serde_json::{Map, Value as Json, json};

use crate::poller::{InverterStatus, Snapshot};
use crate::profile::{ReadingSpec, Value};
use crate::quality::Rule;
use crate::transport::Event;

/// The values the state JSON is made of: the latest poll, which the inverter's status holds
/// anyway (so this costs a pointer), and the few readings it lacks whose last good value is
/// younger than `keep`. A fleet of ten thousand inverters keeps ten thousand of these, so no
/// map of every reading by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct StateCache {
    latest: Option<Arc<Snapshot>>,
    /// Readings the latest poll did not accept, with their last good value and its time.
    kept: Vec<(String, Value, DateTime<Utc>)>,
    keep: chrono::Duration,
    /// While nothing is kept: the latest poll's readings by position, in key order. Sorted when
    /// the readings change, not every poll (a poll with the same readings keeps it).
    order: Vec<u16>,
}

impl StateCache {
    /// A cache whose readings stay `keep` after their last good value.
    pub(crate) fn new(keep: std::time::Duration) -> Self {
        Self { keep: chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX), ..Self::default() }
    }

    /// Takes a new poll: what the last one had and this one lacks is kept while young enough.
    pub(crate) fn update(&mut self, snapshot: &Arc<Snapshot>) {
        // The common poll: the same readings as the last one and nothing kept. Then nothing can
        // lack. The same profile and the same reading indices in order mean the same keys, for
        // integer compares instead of ~150 string ones (another profile takes the long way).
        if self.kept.is_empty()
            && self.latest.as_ref().is_some_and(|last| {
                Arc::ptr_eq(&last.profile, &snapshot.profile)
                    && last.readings.iter().map(|r| r.index).eq(snapshot.readings.iter().map(|r| r.index))
            })
        {
            self.latest = Some(snapshot.clone());
            return;
        }
        fn key<'a>((spec, _): (&'a ReadingSpec, &'a Value)) -> &'a str {
            spec.def.key.as_str()
        }
        let present: HashSet<&str> = snapshot.iter().map(key).collect();
        let mut kept = std::mem::take(&mut self.kept);
        if let Some(last) = self.latest.take() {
            let lacking = last.iter().filter(|(spec, _)| !present.contains(spec.def.key.as_str()));
            kept.extend(lacking.map(|(spec, value)| (spec.def.key.clone(), value.clone(), last.time)));
        }
        kept.retain(|(key, _, at)| !present.contains(key.as_str()) && snapshot.time - *at <= self.keep);
        self.order.clear();
        if kept.is_empty() {
            let keys: Vec<&str> = snapshot.iter().map(key).collect();
            self.order = (0..u16::try_from(keys.len()).unwrap_or(0)).collect();
            self.order.sort_by_key(|&i| keys[usize::from(i)]);
        }
        self.kept = kept;
        self.latest = Some(snapshot.clone());
    }

    /// True before the first poll.
    pub(crate) fn is_empty(&self) -> bool {
        self.latest.is_none()
    }

    /// The state JSON, written straight into bytes: the same text as `to_json().to_string()`
    /// without a `Value` tree of ~150 entries built and dropped every poll.
    pub(crate) fn to_json_bytes(&self) -> Vec<u8> {
        let Some(latest) = &self.latest else { return b"{}".to_vec() };
        fn entry<'a>(latest: &'a Snapshot, r: &'a crate::profile::Reading) -> (&'a str, &'a Value) {
            (latest.profile.readings[r.index].def.key.as_str(), &r.value)
        }
        let entries: Vec<(&str, &Value)> = if self.kept.is_empty()
            && self.order.len() == latest.readings.len()
        {
            self.order.iter().map(|&i| entry(latest, &latest.readings[usize::from(i)])).collect()
        } else {
            let kept = self.kept.iter().map(|(key, value, _)| (key.as_str(), value));
            let mut entries: Vec<_> = latest.readings.iter().map(|r| entry(latest, r)).chain(kept).collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries
        };
        // A reading named `time` would win over the poll's time, as in `to_json`.
        let time = (!entries.iter().any(|(key, _)| *key == "time"))
            .then(|| latest.time.to_rfc3339_opts(SecondsFormat::Secs, true));
        let mut out = Vec::with_capacity(32 * (entries.len() + 1));
        match write_json(&entries, time.as_deref(), &mut out) {
            Ok(()) => out,
            // serde_json writes every Value into a Vec (NaN as null): this cannot happen.
            Err(_) => b"{}".to_vec(),
        }
    }

    /// How many readings the state JSON holds, `time` not counted.
    pub(crate) fn len(&self) -> usize {
        self.latest.as_ref().map_or(0, |latest| latest.iter().count()) + self.kept.len()
    }

    /// The state JSON as a tree: what [`Self::to_json_bytes`] must write, for the tests.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Json {
        let mut map = Map::new();
        let Some(latest) = &self.latest else { return Json::Object(map) };
        map.insert("time".into(), json!(latest.time.to_rfc3339_opts(SecondsFormat::Secs, true)));
        let values = latest.iter().map(|(spec, value)| (&spec.def.key, value));
        for (key, value) in values.chain(self.kept.iter().map(|(key, value, _)| (key, value))) {
            map.insert(key.clone(), serde_json::to_value(value).unwrap_or(Json::Null));
        }
        Json::Object(map)
    }
}

/// `entries`, sorted by key, as one JSON object, `time` in its sorted place among them: what
/// serde_json writes for such a map, with the keys copied instead of escaped byte by byte:
/// profile keys are `[a-z][a-z0-9_]*`, which the profile loader enforces, so none needs it.
fn write_json(
    entries: &[(&str, &Value)],
    time: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    fn key(out: &mut Vec<u8>, key: &str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{key}");
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    }
    out.push(b'{');
    let mut time = time;
    for (n, (name, value)) in entries.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        if let Some(t) = time.filter(|_| *name > "time") {
            key(out, "time");
            serde_json::to_writer(&mut *out, t)?;
            out.push(b',');
            time = None;
        }
        key(out, name);
        serde_json::to_writer(&mut *out, value)?;
    }
    if let Some(t) = time {
        if !entries.is_empty() {
            out.push(b',');
        }
        key(out, "time");
        serde_json::to_writer(&mut *out, t)?;
    }
    out.push(b'}');
    Ok(())
}

/// The diagnostics JSON of an inverter, from what the updates so far say about it; every
/// counter is present, zero or not, so templates never miss. Fields and counters in key order,
/// as a map of them prints.
#[derive(Debug, serde::Serialize)]
struct Diagnostics {
    clock_drift_s: Option<f64>,
    consecutive_failures: u32,
    last_success: Option<String>,
    #[serde(serialize_with = "as_map")]
    link: [(&'static str, u64); Event::ALL.len()],
    poll_duration_ms: Option<u128>,
    #[serde(serialize_with = "as_map")]
    rejected: [(&'static str, u64); Rule::ALL.len()],
}

/// The link's events and the plausibility rules by name: the order their maps print in, found
/// once instead of sorting the names into a map every poll.
static EVENTS_BY_NAME: LazyLock<[Event; Event::ALL.len()]> =
    LazyLock::new(|| by_name(Event::ALL, Event::as_str));
static RULES_BY_NAME: LazyLock<[Rule; Rule::ALL.len()]> = LazyLock::new(|| by_name(Rule::ALL, Rule::as_str));

/// `all`, sorted by `name`.
fn by_name<T: Copy, const N: usize>(mut all: [T; N], name: fn(T) -> &'static str) -> [T; N] {
    all.sort_by_key(|&t| name(t));
    all
}

/// Pairs of (name, count), already in name order, as a JSON object.
fn as_map<S: serde::Serializer, const N: usize>(
    pairs: &[(&'static str, u64); N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(name, count)| (name, count)))
}

impl Diagnostics {
    fn of(status: &InverterStatus) -> Self {
        let snapshot = status.snapshot.as_deref();
        let counts = status.link();
        let link = EVENTS_BY_NAME.map(|e| (e.as_str(), counts.map_or(0, |l| l.get(e))));
        let rejected = RULES_BY_NAME.map(|r| {
            (r.as_str(), snapshot.and_then(|s| s.rejected_total.get(r.as_str()).copied()).unwrap_or(0))
        });
        Self {
            clock_drift_s: snapshot.and_then(Snapshot::clock_drift).map(f64::round),
            consecutive_failures: status.consecutive_failures,
            last_success: status.last_success().map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            link,
            poll_duration_ms: snapshot.map(|s| s.duration.as_millis()),
            rejected,
        }
    }
}

/// The diagnostics JSON, written straight into bytes (no `Value` tree per poll).
pub(crate) fn diagnostics_bytes(status: &InverterStatus) -> Vec<u8> {
    // A struct of numbers, strings and maps of them always serializes.
    serde_json::to_vec(&Diagnostics::of(status)).unwrap_or_else(|_| b"{}".to_vec())
}

/// The diagnostics JSON as a tree, for the tests.
#[cfg(test)]
pub(crate) fn diagnostics_json(status: &InverterStatus) -> Json {
    serde_json::to_value(Diagnostics::of(status)).unwrap_or(Json::Null)
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
            Arc::new(snapshot)
        };
        let mut cache = StateCache::new(Duration::from_secs(180));
        cache.update(&Arc::new(fixture::snapshot(profile.clone(), "house", t0)));
        cache.update(&without_soc(t0 + TimeDelta::minutes(1)));
        assert!(cache.to_json()["battery_soc"].is_number(), "a rejected reading keeps its last good value");
        cache.update(&without_soc(t0 + TimeDelta::minutes(4)));
        assert!(
            cache.to_json().get("battery_soc").is_none(),
            "after three intervals it is unknown, not frozen"
        );
        assert!(cache.to_json()["grid_power"].is_number());
    }

    #[test]
    fn a_poll_of_the_same_readings_replaces_the_last_and_a_returning_one_is_no_longer_kept() {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let soc = profile.index_of("battery_soc").unwrap();
        let poll = |minute: i64, soc_value: Option<f64>| {
            let mut snapshot = fixture::snapshot(profile.clone(), "house", t0 + TimeDelta::minutes(minute));
            match soc_value {
                Some(v) => snapshot
                    .readings
                    .iter_mut()
                    .filter(|r| r.index == soc)
                    .for_each(|r| r.value = Value::Number(v)),
                None => snapshot.readings.retain(|r| r.index != soc),
            }
            Arc::new(snapshot)
        };
        let mut cache = StateCache::new(Duration::from_secs(180));
        cache.update(&poll(0, Some(40.0)));
        cache.update(&poll(1, Some(41.0)));
        assert_eq!(cache.to_json()["battery_soc"], 41.0, "the newest poll's value");
        assert!(cache.kept.is_empty());
        cache.update(&poll(2, None));
        assert_eq!(cache.to_json()["battery_soc"], 41.0, "kept from the last poll");
        cache.update(&poll(3, Some(43.0)));
        assert!(cache.kept.is_empty(), "back in the poll, no longer kept");
        assert_eq!(cache.to_json()["battery_soc"], 43.0);
        cache.update(&poll(4, Some(44.0)));
        assert_eq!(String::from_utf8(cache.to_json_bytes()).unwrap(), cache.to_json().to_string());
        assert_eq!(cache.to_json()["battery_soc"], 44.0);
        // A poll that brings no reading at all keeps every one of the last poll's.
        let mut empty = fixture::snapshot(profile.clone(), "house", t0 + TimeDelta::minutes(5));
        empty.readings.clear();
        cache.update(&Arc::new(empty));
        assert_eq!(cache.to_json()["battery_soc"], 44.0);
        assert_eq!(String::from_utf8(cache.to_json_bytes()).unwrap(), cache.to_json().to_string());
    }

    #[test]
    fn the_state_bytes_are_the_state_json_to_the_byte() {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let mut cache = StateCache::new(Duration::from_secs(180));
        assert_eq!(cache.to_json_bytes(), b"{}", "nothing polled yet");
        let mut snapshot = fixture::snapshot(profile, "house", t0);
        // Keys before and after `time`, fractions, text and flags all come out alike.
        snapshot.readings[0].value = Value::Number(-12.25);
        snapshot.readings[1].value = Value::Text("Normal \"mode\"".into());
        snapshot.readings[2].value = Value::Bool(true);
        let mut next = snapshot.clone();
        cache.update(&Arc::new(snapshot));
        let text = String::from_utf8(cache.to_json_bytes()).unwrap();
        assert_eq!(text, cache.to_json().to_string());
        assert!(text.contains("\"time\":\"2026-11-27T10:00:00Z\""), "{text}");
        assert!(cache.to_json().as_object().unwrap().len() > 100, "a whole poll is compared");
        assert_eq!(cache.len(), cache.to_json().as_object().unwrap().len() - 1, "time not counted");
        // A reading the next poll lacks is kept from the last: it is written in its place too.
        next.readings.remove(5);
        next.time = t0 + TimeDelta::minutes(1);
        cache.update(&Arc::new(next));
        assert_eq!(cache.kept.len(), 1);
        assert_eq!(String::from_utf8(cache.to_json_bytes()).unwrap(), cache.to_json().to_string());
    }

    #[test]
    fn diagnostics_follow_the_newest_poll_and_keep_every_counter() {
        use crate::transport::{Counters, Event};
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let inverter = crate::config::InverterConfig::new("house", "127.0.0.1", 8899, 1);
        let mut status = InverterStatus::new(&inverter);
        let empty = diagnostics_json(&status);
        assert_eq!(
            (empty["poll_duration_ms"].clone(), empty["link"]["connect"].clone()),
            (json!(null), json!(0))
        );
        let mut snapshot = fixture::snapshot(profile, "house", t0);
        snapshot.duration = Duration::from_millis(208);
        snapshot.link.add(Event::Connect);
        snapshot.rejected_total.insert("range", 2);
        status
            .record(&crate::poller::Update::Polled { snapshot: std::sync::Arc::new(snapshot), change: None });
        let mut link = Counters::default();
        link.add_n(Event::Connect, 3);
        let failure = crate::poller::PollFailure {
            inverter: "house".into(),
            time: t0 + TimeDelta::minutes(1),
            error: "no answer within 5s".into(),
            consecutive_failures: 1,
            link,
        };
        status.record(&crate::poller::Update::Failed { failure: std::sync::Arc::new(failure), change: None });
        let json = diagnostics_json(&status);
        assert_eq!(json["poll_duration_ms"], json!(208));
        assert_eq!(json["last_success"], json!("2026-11-27T10:00:00Z"));
        assert_eq!(json["consecutive_failures"], json!(1));
        assert_eq!(json["link"]["connect"], json!(3), "the failed poll is the newer");
        assert_eq!(json["rejected"]["range"], json!(2));
        let rules = json["rejected"].as_object().unwrap().len();
        assert_eq!(rules, crate::quality::Rule::ALL.len(), "every rule, zero or not");
        // What is published: the same JSON, keys in order as a map prints them.
        let bytes = String::from_utf8(diagnostics_bytes(&status)).unwrap();
        assert_eq!(bytes, json.to_string());
        assert!(bytes.starts_with("{\"clock_drift_s\":7200.0,\"consecutive_failures\":1,"), "{bytes}");
    }
}
