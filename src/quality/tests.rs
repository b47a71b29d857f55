use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::profile::{RegisterBlock, Value, load::parse};

const PROFILE: &str = r#"
[profile]
id = "t"
manufacturer = "Deye"
model = "M"
zero_poll = ["soc", "battery_voltage"]
zero_poll_unless = { key = "battery_mode", value = "No battery" }

[[reading]]
key = "soc"
name = "SOC"
group = "battery"
registers = [184]
kind = "u16"
min = 0
max = 100
max_change = 25

[[reading]]
key = "battery_voltage"
name = "Battery voltage"
group = "battery"
registers = [183]
kind = "u16"
scale = 0.01

[[reading]]
key = "pv_total"
name = "PV total"
group = "energy"
registers = [96, 97]
kind = "u32"
word_order = "low_first"
scale = 0.1
unit = "kWh"
device_class = "energy"
state_class = "total_increasing"
counter = "total"
max_change = 50

[[reading]]
key = "pv_today"
name = "PV today"
group = "energy"
registers = [108]
kind = "u16"
scale = 0.1
unit = "kWh"
device_class = "energy"
state_class = "total_increasing"
counter = "daily"

[[reading]]
key = "battery_mode"
name = "Battery mode"
group = "battery"
registers = [213]
kind = "u16"
device_class = "enum"
enum = { 0 = "Voltage", 1 = "Capacity", 2 = "No battery" }
"#;

fn profile() -> Profile {
    parse(PROFILE, "t.toml", Some("t")).unwrap()
}

fn at(day: u32, hour: u32, minute: u32) -> (DateTime<Utc>, NaiveDateTime) {
    let local = NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(hour, minute, 0).unwrap();
    (Utc.from_utc_datetime(&local), local)
}

fn reading(index: usize, value: f64) -> Reading {
    Reading { index, value: Value::Number(value) }
}

fn run(
    q: &mut Quality,
    p: &Profile,
    (now, local): (DateTime<Utc>, NaiveDateTime),
    readings: &[(usize, f64)],
) -> Filtered {
    q.filter(p, readings.iter().map(|(i, v)| reading(*i, *v)).collect(), now, local)
}

fn quality(p: &Profile) -> Quality {
    Quality::new(p.readings.len(), std::time::Duration::from_secs(300))
}

#[test]
fn out_of_range_is_rejected_with_the_reason() {
    let p = profile();
    let v = run(&mut quality(&p), &p, at(1, 12, 0), &[(0, 140.0), (1, 52.0)]);
    assert_eq!(v.accepted, vec![reading(1, 52.0)]);
    assert_eq!(v.rejected[0].rule, Rule::Range);
    assert_eq!(v.rejected[0].reason, "140 is above the maximum 100");
}

#[test]
fn soc_jump_is_rejected_then_a_consistent_new_level_is_accepted() {
    let p = profile();
    let mut q = quality(&p);
    assert!(run(&mut q, &p, at(1, 12, 0), &[(0, 60.0)]).rejected.is_empty());
    let jump = run(&mut q, &p, at(1, 12, 1), &[(0, 95.0)]);
    assert_eq!(jump.rejected[0].rule, Rule::MaxChange);
    // The original value comes back: it is accepted, the spike was a spike.
    assert!(run(&mut q, &p, at(1, 12, 2), &[(0, 61.0)]).rejected.is_empty());
    // A real step (a BMS recalibration) is rejected twice, then becomes the baseline.
    assert_eq!(run(&mut q, &p, at(1, 12, 3), &[(0, 95.0)]).rejected.len(), 1);
    assert_eq!(run(&mut q, &p, at(1, 12, 4), &[(0, 96.0)]).rejected.len(), 1);
    let third = run(&mut q, &p, at(1, 12, 5), &[(0, 96.0)]);
    assert_eq!((third.rebaselined, third.accepted), (vec![0], vec![reading(0, 96.0)]));
    assert!(run(&mut q, &p, at(1, 12, 6), &[(0, 97.0)]).rejected.is_empty());
}

#[test]
fn a_stale_reference_does_not_reject_a_change() {
    let p = profile();
    let mut q = quality(&p);
    run(&mut q, &p, at(1, 12, 0), &[(0, 20.0)]);
    assert!(run(&mut q, &p, at(1, 15, 0), &[(0, 90.0)]).rejected.is_empty());
}

#[test]
fn total_counters_never_go_backwards_and_do_not_spike() {
    let p = profile();
    let mut q = quality(&p);
    run(&mut q, &p, at(1, 12, 0), &[(2, 7000.0)]);
    let back = run(&mut q, &p, at(1, 12, 1), &[(2, 6999.9)]);
    assert_eq!(back.rejected[0].rule, Rule::CounterBackwards);
    let spike = run(&mut q, &p, at(1, 12, 2), &[(2, 13_000.0)]);
    assert_eq!(spike.rejected[0].rule, Rule::MaxChange);
    assert!(run(&mut q, &p, at(1, 12, 3), &[(2, 7000.2)]).rejected.is_empty());
    // Counters compare with the last value however old it is: hours later it is still a total.
    let later = run(&mut q, &p, at(1, 20, 0), &[(2, 7000.1)]);
    assert_eq!(later.rejected[0].rule, Rule::CounterBackwards);
}

#[test]
fn daily_counters_reset_at_midnight_only() {
    let p = profile();
    let mut q = quality(&p);
    run(&mut q, &p, at(1, 15, 0), &[(3, 12.5)]);
    let afternoon = run(&mut q, &p, at(1, 15, 1), &[(3, 0.0)]);
    assert_eq!(afternoon.rejected[0].rule, Rule::CounterBackwards);
    run(&mut q, &p, at(1, 23, 50), &[(3, 20.0)]);
    // The inverter's clock runs a few minutes ahead of ours: a reset at 23:55 is fine.
    assert!(run(&mut q, &p, at(1, 23, 55), &[(3, 0.0)]).rejected.is_empty());
    assert!(run(&mut q, &p, at(2, 0, 5), &[(3, 0.1)]).rejected.is_empty());
}

#[test]
fn zero_soc_and_voltage_reject_the_whole_poll() {
    let p = profile();
    let zero = [reading(0, 0.0), reading(1, 0.0), reading(2, 7000.0)];
    assert_eq!(Quality::zero_poll(&p, &zero).unwrap().reason, "soc and battery_voltage all read 0");
    let fine = [reading(0, 0.0), reading(1, 48.2)];
    assert_eq!(Quality::zero_poll(&p, &fine), None);
    let mode = |text: &str| Reading { index: 4, value: Value::Text(text.into()) };
    let no_battery = [reading(0, 0.0), reading(1, 0.0), mode("No battery")];
    assert_eq!(Quality::zero_poll(&p, &no_battery), None, "without a battery 0 % and 0 V are real");
    let with_battery = [reading(0, 0.0), reading(1, 0.0), mode("Capacity")];
    assert!(Quality::zero_poll(&p, &with_battery).is_some());
}

#[test]
fn an_all_zero_block_where_the_battery_lives_rejects_the_poll() {
    let p = profile();
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 150, values: vec![0; 54] });
    assert_eq!(Quality::zero_frame(&p, &regs).unwrap().reason, "registers 150..=203 all read 0");
    // A block of settings that are all unused is a reading, not a dead logger.
    let mut settings = RegisterSet::new();
    settings.insert(RegisterBlock { start: 250, values: vec![0; 30] });
    assert_eq!(Quality::zero_frame(&p, &settings), None);
    let mut short = RegisterSet::new();
    short.insert(RegisterBlock { start: 183, values: vec![0; 5] });
    assert_eq!(Quality::zero_frame(&p, &short), None);
}

#[test]
fn text_and_flags_pass_untouched() {
    let p = profile();
    let r = Reading { index: 0, value: Value::Text("Normal".into()) };
    let v = quality(&p).filter(&p, vec![r.clone()], at(1, 1, 1).0, at(1, 1, 1).1);
    assert_eq!(v.accepted, vec![r]);
}

#[test]
fn totals_are_kept_and_restored_for_total_counters_only() {
    let p = profile();
    let mut running = quality(&p);
    run(&mut running, &p, at(1, 12, 0), &[(0, 60.0), (2, 1234.5), (3, 7.0)]);
    let kept = running.totals(&p);
    assert_eq!(kept, BTreeMap::from([("pv_total".to_string(), 1234.5)]), "daily counters reset anyway");

    let mut restarted = quality(&p);
    let mut foreign = kept.clone();
    foreign.insert("soc".into(), 1.0);
    foreign.insert("gone".into(), 1.0);
    restarted.restore_totals(&p, &foreign, at(1, 12, 0).0);
    // A day later (stale for any other reading), a step back and a spike are still rejected.
    let back = run(&mut restarted, &p, at(2, 12, 0), &[(2, 1200.0), (0, 10.0)]);
    assert_eq!(back.rejected.iter().map(|r| r.rule).collect::<Vec<_>>(), [Rule::CounterBackwards]);
    assert_eq!(back.accepted, vec![reading(0, 10.0)], "only totals are restored");
    let spike = run(&mut restarted, &p, at(2, 12, 1), &[(2, 7788.0)]);
    assert_eq!(spike.rejected[0].rule, Rule::MaxChange);
    assert!(run(&mut restarted, &p, at(2, 12, 2), &[(2, 1240.0)]).rejected.is_empty());
}
