//! SG01LP1 completed against the original tool's field map: active energy (60, 63-64) and the
//! derived `pv_power`, decoded from a register table and from the simulator.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::profile::{Profile, Reading, RegisterBlock, RegisterSet, Value};
use crate::quality::{Quality, Rule};

fn sg01lp1() -> std::sync::Arc<Profile> {
    super::builtin("deye_sg01lp1")
}

/// Registers 0-199 all zero but for the device type (3) and `set`.
fn table(set: &[(u16, u16)]) -> RegisterSet {
    let mut values = vec![0u16; 200];
    values[0] = 3;
    for &(addr, value) in set {
        values[usize::from(addr)] = value;
    }
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 0, values });
    regs
}

fn get(p: &Profile, readings: &[Reading], key: &str) -> Option<Value> {
    let index = p.index_of(key).unwrap();
    readings.iter().find(|r| r.index == index).map(|r| r.value.clone())
}

#[test]
fn active_energy_and_pv_power_decode() {
    let p = sg01lp1();
    // 60: 12.3 kWh today; 63 (low) + 64 (high) = 0x0001_86A0 = 100000 → 10000.0 kWh.
    // 186-189: the four PV inputs, 1500 + 1250 + 40 + 0 W.
    let regs = table(&[(60, 123), (63, 0x86a0), (64, 0x0001), (186, 1500), (187, 1250), (188, 40)]);
    let (readings, errors) = p.decode(&regs);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(get(&p, &readings, "active_energy_today"), Some(Value::Number(12.3)));
    assert_eq!(get(&p, &readings, "active_energy_total"), Some(Value::Number(10000.0)));
    assert_eq!(get(&p, &readings, "pv_power"), Some(Value::Number(2790.0)));
    let total = &p.readings[p.index_of("active_energy_total").unwrap()];
    assert_eq!(total.def.registers, vec![63, 64]);
    // The registers were already read (0-116): still three reads per poll.
    assert_eq!(p.plan().len(), 3);
}

#[test]
fn a_negative_active_energy_is_out_of_range_never_a_counter_value() {
    let p = sg01lp1();
    let mut quality = Quality::new(p.readings.len(), Duration::from_secs(180));
    let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let local = t0.naive_utc();
    let today = p.index_of("active_energy_today").unwrap();
    let total = p.index_of("active_energy_total").unwrap();
    let only = |regs: &RegisterSet| -> Vec<Reading> {
        p.decode(regs).0.into_iter().filter(|r| r.index == today || r.index == total).collect()
    };
    let first = quality.filter(&p, only(&table(&[(60, 50), (63, 1000)])), t0, local);
    assert_eq!(first.accepted.len(), 2, "{:?}", first.rejected);
    // Signed words: 0xFFFF is -0.1 kWh, not 6553.5 or 429 million; the range rule rejects it
    // before the counter rules could take it as a value.
    let garbage = only(&table(&[(60, 0xffff), (63, 0xffff), (64, 0xffff)]));
    assert_eq!(garbage.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), vec![Value::Number(-0.1); 2]);
    let t1 = t0 + chrono::Duration::seconds(60);
    let verdict = quality.filter(&p, garbage, t1, local);
    assert!(verdict.accepted.is_empty());
    assert!(verdict.rejected.iter().all(|r| r.rule == Rule::Range), "{:?}", verdict.rejected);
    // A lifetime total that falls is a counter going backwards; the daily one may not fall at noon.
    let t2 = t1 + chrono::Duration::seconds(60);
    let verdict = quality.filter(&p, only(&table(&[(60, 40), (63, 999)])), t2, local);
    assert_eq!(verdict.rejected.len(), 2);
    assert!(verdict.rejected.iter().all(|r| r.rule == Rule::CounterBackwards), "{:?}", verdict.rejected);
}

#[test]
fn the_simulator_serves_active_energy_and_pv_power_adds_up() {
    let p = sg01lp1();
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 10, 30, 0).unwrap();
    let snapshot = crate::sim::fixture::snapshot(p.clone(), "sim", at);
    let number = |key: &str| snapshot.get(key).and_then(Value::as_f64).unwrap();
    let strings: f64 = (1..=4).map(|i| number(&format!("pv{i}_power"))).sum();
    assert!(strings > 100.0, "a June morning has sun: {strings} W");
    assert_eq!(number("pv_power"), strings);
    // The inverter's AC generation is the panels' yield after conversion losses.
    let efficiency = crate::sim::house::INVERTER_EFFICIENCY;
    assert!((number("active_energy_total") - number("pv_energy_total") * efficiency).abs() <= 0.1);
    assert!(number("active_energy_today") <= number("pv_energy_today"));
    assert_eq!(snapshot.readings.len(), p.readings.len(), "every reading decodes");
}
