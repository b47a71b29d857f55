//! `Profile::narrowed`: the same profile with fewer readings, every index rebuilt.

use crate::profile::load::parse;
use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};

use super::HEADER;

/// A battery with a zero-poll rule, a setting, a derived power and a firmware-scaled counter.
fn profile() -> Profile {
    let text = format!(
        r#"{HEADER}zero_poll = ["soc", "voltage"]
[[reading]]
key = "build"
name = "Build"
group = "identity"
registers = [15]
kind = "version"

[[reading]]
key = "low_soc"
name = "Low SOC"
group = "settings"
registers = [107]
kind = "u16"

[[reading]]
key = "soc"
name = "SOC"
group = "battery"
registers = [184]
kind = "u16"

[[reading]]
key = "voltage"
name = "Voltage"
group = "battery"
registers = [183]
kind = "u16"
scale = 0.1
unit = "V"

[[reading]]
key = "current"
name = "Current"
group = "battery"
registers = [191]
kind = "s16"
scale = 0.1
unit = "A"

[[reading]]
key = "power"
name = "Power"
group = "battery"
kind = "product"
of = ["voltage", "current"]

[[reading]]
key = "energy"
name = "Energy"
group = "energy"
registers = [529]
kind = "u16"
scale = 0.1
scale_when = {{ key = "build", at_least = 0x1098, scale = 1 }}
"#
    );
    parse(&text, "t.toml", Some("t")).unwrap()
}

fn keys(p: &Profile) -> Vec<&str> {
    p.readings.iter().map(|r| r.def.key.as_str()).collect()
}

fn registers() -> RegisterSet {
    let mut values = vec![0u16; 600];
    for (addr, value) in [(15, 0x1098), (107, 20), (183, 512), (184, 80), (191, 30), (529, 7)] {
        values[addr] = value;
    }
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 0, values });
    regs
}

#[test]
fn dropping_a_group_rebuilds_every_index() {
    let full = profile();
    let follower = full.narrowed(|r| r.def.group != "settings");
    assert_eq!(follower.id(), full.id());
    assert_eq!(keys(&follower), ["build", "soc", "voltage", "current", "power", "energy"]);
    // The product's inputs and the zero-poll rule point at the readings' new places.
    let power = &follower.readings[follower.index_of("power").unwrap()];
    assert_eq!(power.inputs, [follower.index_of("voltage").unwrap(), follower.index_of("current").unwrap()]);
    assert_eq!(follower.zero_poll, [1, 2]);
    assert!(!follower.addresses().any(|a| a == 107), "the setting is not read any more");
    // Decoding the narrowed profile gives the same values under the new indices.
    let (readings, errors) = follower.decode(&registers());
    assert!(errors.is_empty(), "{errors:?}");
    let value = |key: &str| {
        readings.iter().find(|r| follower.readings[r.index].def.key == key).map(|r| r.value.clone())
    };
    assert_eq!(value("power"), Some(Value::Number(153.6)));
    assert_eq!(value("energy"), Some(Value::Number(7.0)), "build 1098: whole kWh");
}

#[test]
fn what_depends_on_a_dropped_reading_goes_with_it() {
    let full = profile();
    let without_current = full.narrowed(|r| r.def.key != "current");
    assert_eq!(keys(&without_current), ["build", "low_soc", "soc", "voltage", "energy"]);
    // Without the build register the energy's scale is unknown: it goes rather than guess.
    let without_build = full.narrowed(|r| r.def.key != "build");
    assert!(without_build.index_of("energy").is_none());
    // Half a zero-poll rule would reject polls the whole rule accepts: it is left out.
    let without_voltage = full.narrowed(|r| r.def.key != "voltage");
    assert!(without_voltage.zero_poll.is_empty() && without_voltage.header.zero_poll.is_empty());
    // Keeping everything changes nothing.
    let all = full.narrowed(|_| true);
    assert_eq!(keys(&all), keys(&full));
    assert_eq!(all.zero_poll, full.zero_poll);
    assert_eq!(all.plan(), full.plan());
}
