//! The write rules without an inverter: payloads, ranges, live limits, coalescing.

use std::time::Duration;

use tokio::time::Instant;

use super::check::{hhmm, live, parse};
use super::coalesce::{Coalescer, Timing};
use super::{Allowed, Command, WriteError};
use crate::profile::{Profile, Profiles, Value};

fn lp1() -> std::sync::Arc<Profile> {
    Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap()
}

fn parse_key(key: &str, payload: &str) -> Result<Value, WriteError> {
    let profile = lp1();
    parse(&profile.readings[profile.index_of(key).unwrap()], payload)
}

#[test]
fn numbers_keep_to_the_profile_range_and_step() {
    assert_eq!(parse_key("max_sell_power", "5000").unwrap(), Value::Number(5000.0));
    assert_eq!(parse_key("max_sell_power", " 5000.0 ").unwrap(), Value::Number(5000.0));
    assert!(matches!(parse_key("max_sell_power", "16010"), Err(WriteError::BadValue(_))));
    assert!(matches!(parse_key("max_sell_power", "-10"), Err(WriteError::BadValue(_))));
    assert!(matches!(parse_key("max_sell_power", "5005"), Err(WriteError::BadValue(_))));
    assert!(matches!(parse_key("max_sell_power", "lots"), Err(WriteError::BadValue(_))));
    assert!(matches!(parse_key("max_sell_power", "NaN"), Err(WriteError::BadValue(_))));
}

#[test]
fn selects_switches_and_times_take_their_own_forms() {
    assert_eq!(parse_key("work_mode", "Zero export to CT").unwrap(), Value::Text("Zero export to CT".into()));
    assert!(matches!(parse_key("work_mode", "Export everything"), Err(WriteError::BadValue(_))));
    assert_eq!(parse_key("solar_sell", "ON").unwrap(), Value::Bool(true));
    assert_eq!(parse_key("solar_sell", "off").unwrap(), Value::Bool(false));
    assert!(matches!(parse_key("solar_sell", "maybe"), Err(WriteError::BadValue(_))));
    assert_eq!(parse_key("program_2_start_time", "05:30").unwrap(), Value::Number(530.0));
    assert_eq!(parse_key("program_2_start_time", "23:59:00").unwrap(), Value::Number(2359.0));
    assert!(matches!(parse_key("program_2_start_time", "24:00"), Err(WriteError::BadValue(_))));
    assert_eq!(hhmm("7:05"), Some(705));
    assert_eq!(hhmm("07:60"), None);
    assert!(matches!(parse_key("pv1_power", "100"), Err(WriteError::NotWritable(_))));
}

#[test]
fn live_limits_refuse_what_the_inverter_cannot_take() {
    let latest = |key: &str| match key {
        "rated_power" => Some(5000.0),
        "battery_shutdown_soc" => Some(20.0),
        "program_1_start_time" => Some(0.0),
        "program_2_start_time" => Some(500.0),
        "program_3_start_time" => Some(900.0),
        _ => None,
    };
    assert!(live("max_sell_power", &Value::Number(5000.0), latest).is_ok());
    assert!(matches!(live("max_sell_power", &Value::Number(5010.0), latest), Err(WriteError::Limit(_))));
    assert!(live("program_4_soc", &Value::Number(20.0), latest).is_ok());
    assert!(matches!(live("program_4_soc", &Value::Number(15.0), latest), Err(WriteError::Limit(_))));
    assert!(live("program_2_start_time", &Value::Number(800.0), latest).is_ok());
    assert!(matches!(live("program_2_start_time", &Value::Number(900.0), latest), Err(WriteError::Limit(_))));
    assert!(matches!(live("program_2_start_time", &Value::Number(0.0), latest), Err(WriteError::Limit(_))));
    // Slot 1 starts the day: slot 6 ends at midnight and no slot spans it.
    assert!(live("program_1_start_time", &Value::Number(0.0), latest).is_ok());
    let Err(WriteError::Limit(reason)) = live("program_1_start_time", &Value::Number(100.0), latest) else {
        panic!("slot 1 away from 00:00")
    };
    assert!(reason.contains("01:00 is not 00:00"), "{reason}");
    // A neighbour whose time is not read refuses: slot 4's is unknown here.
    let Err(WriteError::Limit(reason)) = live("program_3_start_time", &Value::Number(1000.0), latest) else {
        panic!("slot 4 unknown")
    };
    assert!(reason.contains("`program_4_start_time` has not been read yet"), "{reason}");
    // Unknown limits refuse rather than guess.
    assert!(matches!(live("max_sell_power", &Value::Number(1.0), |_: &str| None), Err(WriteError::Limit(_))));
}

#[test]
fn write_keys_narrow_what_may_be_set() {
    let profile = lp1();
    let all = Allowed::new(&[]);
    assert!(all.permits(&profile, "work_mode"));
    assert!(!all.permits(&profile, "pv1_power"));
    let some = Allowed::new(&["max_sell_power".into(), "nonsense".into()]);
    assert!(some.permits(&profile, "max_sell_power"));
    assert!(!some.permits(&profile, "work_mode"));
    assert_eq!(some.unknown(&profile), vec!["nonsense".to_string()]);
}

fn command(key: &str, payload: &str) -> Command {
    Command {
        inverter: "house".into(),
        key: key.into(),
        payload: payload.into(),
        topic: format!("im/house/set/{key}"),
        identity: "2306178901".into(),
    }
}

#[test]
fn the_latest_value_wins_after_the_settle_time_and_keys_wait_their_turn() {
    let timing = Timing {
        settle: Duration::from_millis(1500),
        per_key: Duration::from_secs(5),
        global: Duration::from_secs(1),
    };
    let mut c = Coalescer::new(timing);
    let t0 = Instant::now();
    for n in 0..30u64 {
        let replaced =
            c.push(command("max_sell_power", &(n * 100).to_string()), t0 + Duration::from_millis(10 * n));
        assert_eq!(replaced.is_some(), n > 0);
    }
    let last = t0 + Duration::from_millis(290);
    assert_eq!(c.next_due(), Some(last + timing.settle));
    assert_eq!(c.take_due(last + Duration::from_millis(1499)), None);
    let sent = c.take_due(last + timing.settle).unwrap();
    assert_eq!(sent.payload, "2900");
    assert!(c.is_empty());
    // The same key again at once waits for its interval; another key for the global one.
    let at = last + timing.settle;
    c.push(command("max_sell_power", "100"), at);
    c.push(command("work_mode", "Export first"), at);
    assert_eq!(c.next_due(), Some(at + timing.settle));
    assert_eq!(c.take_due(at + timing.settle).unwrap().key, "work_mode");
    assert_eq!(c.take_due(at + timing.settle + Duration::from_secs(2)), None);
    assert_eq!(c.take_due(at + timing.per_key).unwrap().key, "max_sell_power");
}

#[test]
fn a_time_of_use_table_is_checked_as_a_whole() {
    use super::table;
    let profile = lp1();
    let all = Allowed::new(&[]);
    let latest = |key: &str| (key == "battery_shutdown_soc").then_some(20.0);
    let slot = |time: &str, soc: u32| {
        format!(r#"{{"time": "{time}", "power": 3000, "soc": {soc}, "charge_source": "Grid"}}"#)
    };
    let table = |slots: &[String]| format!("[{}]", slots.join(","));
    let times = ["00:00", "05:00", "09:00", "16:00", "20:00", "23:00"];
    let good: Vec<String> = times.iter().map(|t| slot(t, 50)).collect();
    let items = table::parse(&profile, &all, &table(&good), latest).unwrap();
    assert_eq!(items.len(), 24);
    let (index, value) = &items[4];
    assert_eq!(
        (profile.readings[*index].def.key.as_str(), value),
        ("program_2_start_time", &Value::Number(500.0))
    );

    let bad = |slots: &[String]| table::parse(&profile, &all, &table(slots), latest);
    assert!(matches!(bad(&good[..5]), Err(WriteError::BadValue(_))), "six slots or none");
    let mut backwards = good.clone();
    backwards[3] = slot("08:00", 50);
    let Err(WriteError::Limit(reason)) = bad(&backwards) else { panic!("times must rise") };
    assert!(reason.contains("slot 4's start 08:00 is not after slot 3's 09:00"), "{reason}");
    let mut late_start = good.clone();
    late_start[0] = slot("01:00", 50);
    let Err(WriteError::Limit(reason)) = bad(&late_start) else { panic!("slot 1 at 00:00") };
    assert!(reason.contains("slot 1 starts at 01:00, not 00:00"), "{reason}");
    let mut low = good.clone();
    low[0] = slot("00:00", 10);
    assert!(matches!(bad(&low), Err(WriteError::Limit(_))), "SOC below the shutdown SOC");
    let mut odd = good.clone();
    odd[1] = r#"{"time": "05:00", "colour": "red"}"#.into();
    assert!(matches!(bad(&odd), Err(WriteError::BadValue(_))));
    let only_times = Allowed::new(
        &times.iter().enumerate().map(|(n, _)| format!("program_{}_start_time", n + 1)).collect::<Vec<_>>(),
    );
    assert!(matches!(
        table::parse(&profile, &only_times, &table(&good), latest),
        Err(WriteError::NotWritable(_))
    ));
}
