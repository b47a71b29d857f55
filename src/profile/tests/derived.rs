//! Derived readings (`kind = "sum"` / `"product"`): loading, decoding, planning, encoding and
//! plausibility, each against a small profile written here.

use chrono::{TimeZone, Utc};

use crate::profile::load::parse;
use crate::profile::{DecodeError, EncodeError, Profile, ReadBlock, RegisterBlock, RegisterSet, Value};
use crate::quality::{Quality, Rule};

use super::HEADER;

/// Two strings with power registers, a voltage and a current, and readings derived from them.
const READINGS: &str = r#"
[[reading]]
key = "pv1_power"
name = "PV1 power"
group = "pv"
registers = [186]
kind = "u16"
unit = "W"
min = 0
max = 20000

[[reading]]
key = "pv2_power"
name = "PV2 power"
group = "pv"
registers = [187]
kind = "u16"
unit = "W"
min = 0
max = 20000

[[reading]]
key = "pv1_voltage"
name = "PV1 voltage"
group = "pv"
registers = [109]
kind = "u16"
scale = 0.1
unit = "V"

[[reading]]
key = "pv1_current"
name = "PV1 current"
group = "pv"
registers = [110]
kind = "u16"
scale = 0.01
unit = "A"

[[reading]]
key = "pv_power"
name = "PV power"
group = "pv"
kind = "sum"
of = ["pv1_power", "pv2_power"]
unit = "W"
device_class = "power"
state_class = "measurement"
min = 0
max = 25000
max_change = 10000

[[reading]]
key = "pv1_dc_power"
name = "PV1 DC power"
group = "pv"
kind = "product"
of = ["pv1_voltage", "pv1_current"]
unit = "W"
"#;

fn profile() -> Profile {
    parse(&format!("{HEADER}{READINGS}"), "t.toml", Some("t")).unwrap()
}

fn reason(extra: &str) -> String {
    parse(&format!("{HEADER}{READINGS}{extra}"), "t.toml", Some("t")).unwrap_err().to_string()
}

/// A poll of the registers the test profile maps: PV1/PV2 power, PV1 voltage and current.
fn poll(pv1: u16, pv2: u16, volts_x10: u16, amps_x100: u16) -> RegisterSet {
    let mut set = RegisterSet::new();
    set.insert(RegisterBlock { start: 109, values: vec![volts_x10, amps_x100] });
    set.insert(RegisterBlock { start: 186, values: vec![pv1, pv2] });
    set
}

fn value(p: &Profile, regs: &RegisterSet, key: &str) -> Option<Value> {
    let (readings, errors) = p.decode(regs);
    assert!(errors.is_empty(), "{errors:?}");
    let index = p.index_of(key).unwrap();
    readings.into_iter().find(|r| r.index == index).map(|r| r.value)
}

#[test]
fn a_sum_adds_its_inputs_and_a_product_multiplies_them() {
    let p = profile();
    let regs = poll(1200, 834, 3915, 1234);
    assert_eq!(value(&p, &regs, "pv_power"), Some(Value::Number(2034.0)));
    // 391.5 V x 12.34 A = 4831.11 W: decimals are the inputs' (1 + 2), not float noise.
    assert_eq!(value(&p, &regs, "pv1_dc_power"), Some(Value::Number(4831.11)));
    assert_eq!(p.readings[p.index_of("pv1_dc_power").unwrap()].decimals, 3);
}

#[test]
fn a_derived_reading_is_left_out_when_an_input_is_missing_or_out_of_range() {
    let p = profile();
    let mut only_voltage = RegisterSet::new();
    only_voltage.insert(RegisterBlock { start: 109, values: vec![3915, 1234] });
    assert_eq!(value(&p, &only_voltage, "pv_power"), None, "PV power registers were not read");
    assert_eq!(value(&p, &only_voltage, "pv1_dc_power"), Some(Value::Number(4831.11)));
    // 0xFFFF in one string is above its max: the sum must not pass 65535 W off as plausible.
    assert_eq!(value(&p, &poll(0xFFFF, 834, 0, 0), "pv_power"), None);
    let spec = &p.readings[p.index_of("pv_power").unwrap()];
    assert_eq!(spec.derive(&p.readings, &[]), Err(DecodeError::Input("pv1_power".into())));
}

#[test]
fn the_planner_reads_no_register_for_a_derived_reading() {
    let p = profile();
    assert_eq!(p.addresses().count(), 4);
    assert_eq!(p.plan(), vec![ReadBlock { start: 109, count: 2 }, ReadBlock { start: 186, count: 2 }]);
}

#[test]
fn a_derived_reading_can_be_neither_decoded_nor_encoded_from_registers() {
    let p = profile();
    let spec = &p.readings[p.index_of("pv_power").unwrap()];
    assert_eq!(spec.decode(&poll(1, 2, 3, 4)), Err(DecodeError::Derived));
    let mut regs = vec![0u16; 300];
    assert_eq!(spec.encode(&Value::Number(5.0), &mut regs), Err(EncodeError::Derived("pv_power".into())));
    assert!(regs.iter().all(|r| *r == 0));
    // The simulator writes the inputs and skips the derived key.
    let values = [("pv_power", Value::Number(9.0)), ("pv1_power", Value::Number(7.0))];
    crate::sim::registers::apply(&p, &values, &mut regs);
    assert_eq!(regs[186], 7);
    assert_eq!(regs.iter().filter(|r| **r != 0).count(), 1);
}

#[test]
fn quality_judges_a_derived_value_like_any_reading() {
    let p = profile();
    let mut quality = Quality::new(p.readings.len(), std::time::Duration::from_secs(180));
    let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let local = t0.naive_utc();
    let index = p.index_of("pv_power").unwrap();
    let (readings, _) = p.decode(&poll(1000, 1000, 0, 0));
    let first = quality.filter(&p, readings, t0, local);
    assert!(first.accepted.iter().any(|r| r.index == index));
    // Each string is within its range, but the sum jumps by 20 kW in one poll.
    let (readings, _) = p.decode(&poll(11000, 11000, 0, 0));
    let t1 = t0 + chrono::Duration::seconds(60);
    let second = quality.filter(&p, readings, t1, local);
    assert!(!second.accepted.iter().any(|r| r.index == index));
    let rejection = second.rejected.iter().find(|r| r.index == Some(index)).unwrap();
    assert_eq!(rejection.rule, Rule::MaxChange);
    // ... and a sum above its own max is out of range.
    let (readings, _) = p.decode(&poll(13000, 13000, 0, 0));
    let third = quality.filter(&p, readings, t1 + chrono::Duration::seconds(60), local);
    let rejection = third.rejected.iter().find(|r| r.index == Some(index)).unwrap();
    assert_eq!(rejection.rule, Rule::Range);
}

#[test]
fn broken_derived_readings_are_refused_with_the_reason() {
    let r = "\n[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\n";
    let cases = [
        ("kind = \"sum\"\nunit = \"W\"\n", "a sum names at least one reading in `of`"),
        (
            "kind = \"product\"\nof = [\"pv1_voltage\"]\n",
            "a product names exactly two readings in `of`, got 1",
        ),
        (
            "kind = \"sum\"\nregisters = [5]\nof = [\"pv1_power\"]\nunit = \"W\"\n",
            "a derived reading (sum, product) is computed from `of` and reads no registers",
        ),
        (
            "kind = \"sum\"\nof = [\"nope\"]\nunit = \"W\"\n",
            "`of` names `nope`, which is not a reading above this one",
        ),
        (
            "kind = \"sum\"\nof = [\"pv1_power\", \"pv1_voltage\"]\nunit = \"W\"\n",
            "`pv1_voltage` is in V, the sum in W",
        ),
        (
            "kind = \"sum\"\nof = [\"pv1_power\", \"pv1_power\"]\nunit = \"W\"\n",
            "`of` names `pv1_power` twice",
        ),
        (
            "kind = \"sum\"\nof = [\"pv1_power\"]\nunit = \"W\"\nscale = 0.1\n",
            "a derived reading takes no word_order, sign_magnitude, scale, scale_when, offset, bit, mask or enum",
        ),
        (
            "kind = \"sum\"\nof = [\"pv1_power\"]\nunit = \"W\"\nscale_when = { key = \"pv1_power\", at_least = 1, scale = 10 }\n",
            "a derived reading takes no word_order, sign_magnitude, scale, scale_when, offset, bit, mask or enum",
        ),
        (
            "kind = \"u16\"\nregisters = [5]\nof = [\"pv1_power\"]\n",
            "`of` applies to the derived kinds sum and product only",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(reason(&format!("{r}{body}")), format!("t.toml: reading `x`: {want}"), "{body}");
    }
    // An input must stand above: a reading below, or the reading itself, would need a second pass.
    let forward = format!(
        "{HEADER}[[reading]]\nkey = \"s\"\nname = \"S\"\ngroup = \"g\"\nkind = \"sum\"\nof = [\"a\"]\n\
         [[reading]]\nkey = \"a\"\nname = \"A\"\ngroup = \"g\"\nregisters = [1]\nkind = \"u16\"\n"
    );
    let err = parse(&forward, "t.toml", Some("t")).unwrap_err().to_string();
    assert_eq!(err, "t.toml: reading `s`: `of` names `a`, which is not a reading above this one");
}

#[test]
fn an_enum_or_flag_cannot_be_an_input() {
    let body = "[[reading]]\nkey = \"e\"\nname = \"E\"\ngroup = \"g\"\nregisters = [1]\nkind = \"u16\"\nbit = 0\n\
                [[reading]]\nkey = \"s\"\nname = \"S\"\ngroup = \"g\"\nkind = \"sum\"\nof = [\"e\"]\n";
    let err = parse(&format!("{HEADER}{body}"), "t.toml", Some("t")).unwrap_err().to_string();
    assert_eq!(err, "t.toml: reading `s`: `of` names `e`, which is not a number");
}
