//! The battery-pack block of the three-phase profiles (registers 10002 and 10040 on): its
//! layout, its values, and that only the packs present are read.

use chrono::{TimeZone, Utc};

use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};
use crate::quality::{Quality, Rule};

/// The families with packs.
const FAMILIES: [&str; 2] = ["deye_sg04lp3", "deye_sg01hp3"];

/// Registers per pack, and pack 1's voltage.
const STRIDE: u16 = 38;
const PACK1: u16 = 10040;

/// Registers 10000 to 10599 with a count of 2, two packs of values and an empty pack 3, as
/// kellerza/sunsynk#650 shows them: pack 2 at 53.1 V, −6.5 A, 27.5 °C, 43.3 %, 21 cycles.
fn packs() -> RegisterSet {
    let mut values = vec![0u16; 600];
    values[2] = 2;
    for (pack, [volts, amps, temp, soc, soh, cycles]) in
        [(1u16, [532, -60i16 as u16, 1280, 440, 990, 23]), (2, [531, -65i16 as u16, 1275, 433, 1000, 21])]
    {
        let at = usize::from(PACK1 + STRIDE * (pack - 1) - 10000);
        for (offset, raw) in [(0, volts), (1, amps), (2, temp), (7, soc), (8, soh), (16, cycles)] {
            values[at + offset] = raw;
        }
    }
    let mut set = RegisterSet::new();
    set.insert(RegisterBlock { start: 10000, values });
    set
}

fn decoded(profile: &Profile, regs: &RegisterSet) -> Vec<(String, Value)> {
    let (readings, errors) = profile.decode(regs);
    assert!(errors.is_empty(), "{errors:?}");
    readings.into_iter().map(|r| (profile.readings[r.index].def.key.clone(), r.value)).collect()
}

#[test]
fn fifteen_packs_lie_38_registers_apart() {
    for id in FAMILIES {
        let profile = super::builtin(id);
        assert_eq!(profile.packs_mapped(), 15, "{id}");
        assert_eq!(profile.header.pack_count.as_deref(), Some("battery_pack_count"));
        let at = |key: &str| profile.readings[profile.index_of(key).unwrap()].def.registers[0];
        assert_eq!(at("battery_pack_count"), 10002);
        for pack in 1..=15u16 {
            let base = PACK1 + STRIDE * (pack - 1);
            let key = |what: &str| format!("battery_pack{pack}_{what}");
            let offsets =
                [("voltage", 0), ("current", 1), ("temperature", 2), ("soc", 7), ("soh", 8), ("cycles", 16)];
            for (what, offset) in offsets {
                assert_eq!(at(&key(what)), base + offset, "{id} {}", key(what));
                let def = &profile.readings[profile.index_of(&key(what)).unwrap()].def;
                assert_eq!((def.pack, def.group.as_str()), (Some(pack as u8), "bms"));
                assert!(def.name.starts_with(&format!("Battery pack {pack} ")), "{}", def.name);
            }
        }
        // The addresses Wilk33/deye-solarman-ha-addon and kellerza/sunsynk#650 name outright.
        assert_eq!(at("battery_pack2_voltage"), 10078);
        assert_eq!(at("battery_pack4_cycles"), 10170);
        assert_eq!(at("battery_pack14_voltage"), 10534);
    }
}

#[test]
fn the_packs_present_decode_to_what_their_bms_reports() {
    for id in FAMILIES {
        let profile = super::builtin(id).with_packs(2);
        let got = decoded(&profile, &packs());
        let n = |v: f64| Value::Number(v);
        let want = [
            ("battery_pack_count", n(2.0)),
            ("battery_pack1_voltage", n(53.2)),
            ("battery_pack1_current", n(-6.0)),
            ("battery_pack1_temperature", n(28.0)),
            ("battery_pack1_soc", n(44.0)),
            ("battery_pack1_soh", n(99.0)),
            ("battery_pack1_cycles", n(23.0)),
            ("battery_pack2_voltage", n(53.1)),
            ("battery_pack2_current", n(-6.5)),
            ("battery_pack2_temperature", n(27.5)),
            ("battery_pack2_soc", n(43.3)),
            ("battery_pack2_soh", n(100.0)),
            ("battery_pack2_cycles", n(21.0)),
        ];
        let want: Vec<(String, Value)> = want.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(got, want, "{id}: the registers below 10000 were not read, packs 3 and on not mapped");
    }
}

#[test]
fn only_the_count_and_the_packs_present_are_read() {
    for id in FAMILIES {
        let full = super::builtin(id);
        let high = |p: &Profile| p.addresses().filter(|a| *a >= 10000).max();
        assert_eq!(high(&full.with_packs(0)), Some(10002), "{id}: no packs, only the count");
        assert_eq!(high(&full.with_packs(2)), Some(PACK1 + STRIDE + 16), "{id}: up to pack 2's cycles");
        assert_eq!(high(&full.with_packs(15)), Some(PACK1 + 14 * STRIDE + 16));
        // The count and pack 1 and 2 bridge their gaps: one read.
        let reads = full.with_packs(2).plan().into_iter().filter(|b| b.start >= 10000).count();
        assert_eq!(reads, 1, "{id}");
    }
}

#[test]
fn an_empty_pack_slot_is_rejected_not_published() {
    // A count above the packs fitted reads an empty slot: −100 °C and 0 V. The temperature's
    // range catches it.
    let profile = super::builtin("deye_sg04lp3").with_packs(3);
    let (readings, _) = profile.decode(&packs());
    let now = Utc.with_ymd_and_hms(2024, 12, 4, 12, 0, 0).unwrap();
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(300));
    let verdict = quality.filter(&profile, readings, now, now.naive_utc());
    let rejected: Vec<(&str, Rule)> = verdict
        .rejected
        .iter()
        .map(|r| (profile.readings[r.index.unwrap()].def.key.as_str(), r.rule))
        .collect();
    assert_eq!(rejected, [("battery_pack3_temperature", Rule::Range)]);
}
