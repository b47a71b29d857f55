//! The simulated house reacts to what is written to it, over real TCP: a low battery discharge
//! current caps the battery and the grid imports the rest; a zero export limit or a zero-export
//! work mode stops export at noon, PV is curtailed. The registers are found through the profile,
//! as a client would, and written with one FC16 each.

use chrono::TimeDelta;
use inverter_monitor::poller::{Poller, Snapshot};
use inverter_monitor::profile::{Profile, Value};
use inverter_monitor::protocol::{Request, Response};
use inverter_monitor::sim::{SimClock, SimConfig};
use inverter_monitor::transport::{Link, Transport};

use crate::helpers::*;

/// Writes `value` to `key`'s registers with one FC16, encoded by the profile. Only for keys
/// that own their registers whole: a bit field would need a read-modify-write.
async fn write(link: &mut Link, profile: &Profile, key: &str, value: Value) {
    let spec = &profile.readings[profile.index_of(key).unwrap()];
    assert!(spec.def.bit.is_none() && spec.def.mask.is_none(), "{key} shares its register");
    let mut regs = vec![0u16; 1000];
    spec.encode(&value, &mut regs).unwrap();
    let values = spec.def.registers.iter().map(|a| regs[usize::from(*a)]).collect();
    let request = Request::WriteMultiple { addr: spec.def.registers[0], values };
    assert!(matches!(link.call(&request).await.unwrap(), Ok(Response::Written { .. })), "{key}");
}

fn number(snapshot: &Snapshot, key: &str) -> f64 {
    snapshot.get(key).and_then(Value::as_f64).unwrap_or_else(|| panic!("{key} missing"))
}

/// A poll `minutes` after the last one.
async fn poll_after(minutes: i64, poller: &mut Poller, link: &mut Link, handle: &SimHandle) -> Snapshot {
    handle.sim.set_time(handle.sim.state().time + TimeDelta::minutes(minutes));
    poll(poller, link, &handle.sim).await
}

#[tokio::test]
async fn a_low_discharge_current_caps_the_battery_and_the_grid_imports_the_rest() {
    let sg01 = profile();
    let mut config = SimConfig::new(SERIAL);
    // 19:00 local: no sun, the evening load, a battery at 60 % carrying it.
    config.clock = SimClock::Fixed(noon() + TimeDelta::hours(7));
    let handle = spawn_sim(config, sg01.clone()).await;
    let (mut link, mut poller) = (link(handle.addr, fast_settings()), poller(sg01.clone()));

    let before = poll(&mut poller, &mut link, &handle.sim).await;
    assert_matches_model(&before, &handle.sim);
    assert!(number(&before, "battery_current") > 20.0, "the battery carries the evening");
    assert!(number(&before, "grid_power").abs() < 5.0, "and the grid is idle");

    write(&mut link, &sg01, "battery_max_discharge_current", Value::Number(10.0)).await;
    for _ in 0..3 {
        let after = poll_after(1, &mut poller, &mut link, &handle).await;
        assert_eq!(number(&after, "battery_max_discharge_current"), 10.0, "read back");
        let (amps, volts) = (number(&after, "battery_current"), number(&after, "battery_voltage"));
        assert!((9.9..=10.01).contains(&amps), "battery current {amps}, capped at 10 A");
        let (battery, load, grid) =
            (number(&after, "battery_power"), number(&after, "load_power"), number(&after, "grid_power"));
        assert!(battery <= 10.0 * volts + 1.0, "{battery} W at {volts} V");
        // No sun: what the battery no longer gives, the grid imports.
        assert_eq!(number(&after, "pv_power"), 0.0);
        assert!(
            grid > 500.0 && (grid - (load - battery)).abs() <= 3.0,
            "grid {grid}, load {load}, battery {battery}"
        );
    }
}

#[tokio::test]
async fn zero_export_stops_export_at_noon() {
    let sg01 = profile();
    let mut config = SimConfig::new(SERIAL);
    // A full battery at noon: the surplus can only go to the grid.
    config.house.initial_soc = 100.0;
    let handle = spawn_sim(config, sg01.clone()).await;
    let (mut link, mut poller) = (link(handle.addr, fast_settings()), poller(sg01.clone()));

    let selling = poll(&mut poller, &mut link, &handle.sim).await;
    assert_matches_model(&selling, &handle.sim);
    assert!(number(&selling, "grid_power") < -500.0, "a full battery at noon exports");

    // The export limit at 0: nothing goes out, PV is curtailed to what the house uses.
    write(&mut link, &sg01, "max_sell_power", Value::Number(0.0)).await;
    let capped = poll_after(1, &mut poller, &mut link, &handle).await;
    let exported = number(&capped, "grid_export_today");
    for _ in 0..3 {
        let after = poll_after(5, &mut poller, &mut link, &handle).await;
        assert!(number(&after, "grid_power") >= -1.0, "export {}", number(&after, "grid_power"));
        assert!(number(&after, "pv_power") < number(&selling, "pv_power") - 500.0, "PV curtailed");
        assert_eq!(number(&after, "grid_export_today"), exported, "the export counter stands still");
    }

    // Selling allowed again, then a zero-export work mode (solar sell is off): the same.
    write(&mut link, &sg01, "max_sell_power", Value::Number(5000.0)).await;
    let again = poll_after(1, &mut poller, &mut link, &handle).await;
    assert!(number(&again, "grid_power") < -500.0, "export resumes");
    write(&mut link, &sg01, "work_mode", Value::Text("Zero export to load".into())).await;
    let zero = poll_after(1, &mut poller, &mut link, &handle).await;
    assert_eq!(zero.get("work_mode"), Some(&Value::Text("Zero export to load".into())));
    assert!(number(&zero, "grid_power") >= -1.0, "export {}", number(&zero, "grid_power"));
}
