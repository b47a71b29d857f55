use std::sync::Arc;

use chrono::TimeZone;

use super::*;
use crate::poller::PollFailure;
use crate::profile::Profiles;
use crate::quality::{Rejection, Rule};
use crate::sim::fixture;

fn profile() -> Arc<Profile> {
    Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// The simulator's registers at noon, as a recorded poll holds them.
fn poll(profile: &Profile) -> Poll {
    let blocks = fixture::blocks(&profile.plan(), &fixture::image(profile, at()));
    Poll {
        time: at(),
        local: at().naive_utc(),
        inverter: "house".into(),
        profile: profile.id().into(),
        identity: "1".into(),
        blocks,
        refused: Vec::new(),
        failed: None,
    }
}

fn polled(snapshot: Snapshot) -> Update {
    Update::Polled { snapshot: Arc::new(snapshot), change: None }
}

#[test]
fn the_default_is_the_energy_counters_and_power_flows_at_most_six() {
    let keys = default_keys(&profile());
    assert_eq!(keys.len(), DEFAULT_SERIES, "{keys:?}");
    assert_eq!(keys[0], "pv_energy_total");
    assert!(keys.iter().any(|k| k == "battery_power"), "{keys:?}");
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(unique, keys);
}

#[test]
fn a_point_holds_the_raw_decode_and_what_the_update_published() {
    let profile = profile();
    let mut snapshot = fixture::snapshot(profile.clone(), "house", at());
    let total = profile.index_of("pv_energy_total").unwrap();
    let raw = snapshot.get("pv_energy_total").and_then(|v| v.as_f64()).unwrap();
    snapshot.readings.retain(|r| r.index != total);
    snapshot.rejected.push(Rejection { index: Some(total), rule: Rule::MaxChange, reason: "spike".into() });
    let mut capture = Capture::new(None);
    capture.observe(&profile, &poll(&profile), None, &polled(snapshot.clone()));

    let series = capture.series();
    assert_eq!(series.len(), DEFAULT_SERIES);
    let total = &series[0];
    assert_eq!((total.key.as_str(), total.unit.as_deref()), ("pv_energy_total", Some("kWh")));
    let point = &total.points[0];
    assert_eq!((point.raw, point.published, point.rejected), (Some(raw), None, Some("max_change")));
    let power = series.iter().find(|s| s.key == "battery_power").unwrap();
    let published = snapshot.get("battery_power").and_then(|v| v.as_f64());
    assert_eq!(power.points[0].published, published);
    assert_eq!(power.points[0].raw, published, "accepted: raw and published agree");
    assert_eq!(power.points[0].rejected, None);
}

#[test]
fn a_poll_refused_whole_marks_every_series_it_read() {
    let profile = profile();
    let failure = PollFailure {
        inverter: "house".into(),
        time: at(),
        error: "poll rejected (zero_frame)".into(),
        consecutive_failures: 1,
        link: Default::default(),
    };
    let update = Update::Failed { failure: Arc::new(failure), change: None };
    let mut capture = Capture::new(Some(vec!["pv_energy_total".into(), "grid_power".into()]));
    capture.observe(&profile, &poll(&profile), Some("zero_frame"), &update);
    for series in capture.series() {
        let point = &series.points[0];
        assert!(point.raw.is_some() && point.published.is_none(), "{point:?}");
        assert_eq!(point.rejected, Some("zero_frame"));
    }
}

#[test]
fn a_key_the_profile_lacks_is_an_empty_series_not_a_missing_one() {
    let profile = profile();
    let mut capture = Capture::new(Some(vec!["no_such_reading".into()]));
    let snapshot = fixture::snapshot(profile.clone(), "house", at());
    capture.observe(&profile, &poll(&profile), None, &polled(snapshot));
    assert_eq!(capture.series().len(), 1);
    assert!(capture.series()[0].points.is_empty() && capture.series()[0].name.is_empty());
}

#[test]
fn whole_poll_names_only_a_rejected_poll() {
    let rejection = Rejection { index: None, rule: Rule::ZeroPoll, reason: String::new() };
    assert_eq!(whole_poll(&Err(PollError::Rejected(rejection))), Some("zero_poll"));
    assert_eq!(whole_poll(&Err(PollError::NothingRead("x".into()))), None);
}
