use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::profile::Profiles;
use crate::sim::fixture;

fn micro() -> Arc<crate::profile::Profile> {
    Profiles::builtin().unwrap().get("deye_micro").unwrap()
}

fn value(snapshot: &Snapshot, key: &str) -> Option<f64> {
    snapshot.get(key).and_then(Value::as_f64)
}

/// The micro's last poll at dusk (the fixture's house is at UTC+2: 16:30 UTC is 18:30 there,
/// after its sunset), with a day's production on the daily counter.
fn dusk() -> Arc<Snapshot> {
    let at = Utc.with_ymd_and_hms(2026, 6, 21, 16, 30, 0).unwrap();
    let mut snapshot = fixture::snapshot(micro(), "micro", at);
    let daily = snapshot.profile.index_of("pv_energy_today").unwrap();
    snapshot.readings.retain(|r| r.index != daily);
    snapshot.readings.push(Reading { index: daily, value: Value::Number(4.2) });
    Arc::new(snapshot)
}

#[test]
fn asleep_keeps_the_counters_reads_no_sun_power_and_leaves_the_rest_unknown() {
    let last = dusk();
    let total = value(&last, "pv_energy_total").unwrap();
    assert!(total > 0.0);
    let night = asleep(&last, last.time + TimeDelta::hours(3), Counters::default());
    assert_eq!(value(&night, "pv_energy_total"), Some(total), "a total keeps its value");
    assert_eq!(value(&night, "pv_energy_today"), Some(4.2), "before the inverter's midnight");
    assert_eq!(value(&night, "pv_power"), Some(0.0));
    assert_eq!(value(&night, "inverter_power"), Some(0.0));
    assert_eq!(value(&night, "grid_voltage"), None, "unknown, not frozen");
    assert_eq!(value(&night, "rated_power"), None, "a fact, not sun power");
    for key in ["inverter_serial", "device_type", "control_board_firmware", "comm_board_firmware"] {
        assert_eq!(night.get(key), last.get(key), "{key}: the device is the same at night");
        assert!(night.get(key).is_some(), "{key}");
    }
    assert_eq!(night.time, last.time + TimeDelta::hours(3));
    assert_eq!(night.local, last.local + TimeDelta::hours(3), "the inverter's clock runs on");

    // 18:30 + 6 h is past the inverter's midnight: the daily counter starts over.
    let after_midnight = asleep(&last, last.time + TimeDelta::hours(6), Counters::default());
    assert_eq!(value(&after_midnight, "pv_energy_today"), Some(0.0));
    assert_eq!(value(&after_midnight, "pv_energy_total"), Some(total));
}

#[test]
fn without_a_location_night_is_a_dark_logger_after_a_sunless_poll_for_at_most_the_longest_night() {
    let last = dusk();
    assert_eq!(sun_power(&last), 0.0);
    let mut night = Night::new(None);
    night.saw("micro", &last);
    let later = |h| last.time + TimeDelta::hours(h);
    assert!(night.failed("micro", later(1), Counters::default(), &"no answer").is_some());
    assert!(night.dark.is_some());
    assert!(night.failed("micro", later(19), Counters::default(), &"no answer").is_none(), "an outage");
    assert!(night.dark.is_none(), "the night ended");

    // At noon the micro made power: a logger gone then is a real failure.
    let noon =
        Arc::new(fixture::snapshot(micro(), "micro", Utc.with_ymd_and_hms(2026, 6, 21, 10, 0, 0).unwrap()));
    assert!(sun_power(&noon) > NEAR_ZERO_W, "{}", sun_power(&noon));
    let mut day = Night::new(None);
    day.saw("micro", &noon);
    assert!(day.failed("micro", noon.time + TimeDelta::minutes(1), Counters::default(), &"x").is_none());
}

#[test]
fn with_a_location_the_sun_decides_and_a_hybrid_never_sleeps() {
    let last = dusk();
    let up: SunDown = Arc::new(|_| false);
    let mut night = Night::new(Some(up));
    night.saw("micro", &last);
    assert!(
        night.failed("micro", last.time, Counters::default(), &"x").is_none(),
        "the sun is up: an outage"
    );
    let down: SunDown = Arc::new(|_| true);
    let mut night = Night::new(Some(down.clone()));
    night.saw("micro", &last);
    let asleep = night.failed("micro", last.time, Counters::default(), &"x").unwrap();
    assert_eq!(value(&asleep, "pv_power"), Some(0.0));
    night.saw("micro", &last);
    assert!(night.dark.is_none(), "back");

    let hybrid = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let mut night = Night::new(Some(down));
    night.saw("house", &Arc::new(fixture::snapshot(hybrid, "house", last.time)));
    assert!(night.failed("house", last.time, Counters::default(), &"x").is_none(), "its logger never sleeps");
}
