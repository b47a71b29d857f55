//! deye_micro: a register table with the public maps' semantics (values ours), decoded and
//! every reading asserted; plausibility fitted to a 2 kW microinverter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};
use crate::quality::{Quality, Rule};

/// Registers 0..=`last`, zero but for `set`.
pub(super) fn table(last: u16, set: &[(u16, u16)]) -> RegisterSet {
    let mut values = vec![0u16; usize::from(last) + 1];
    for &(addr, value) in set {
        values[usize::from(addr)] = value;
    }
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 0, values });
    regs
}

/// Ten ASCII characters as registers 3-7, high byte first.
pub(super) fn serial(text: &str) -> Vec<(u16, u16)> {
    (3..).zip(super::ascii_words(text)).collect()
}

/// Decodes `regs` and asserts that every reading of `p` decoded to the value `expected` names,
/// no more and no fewer, and that plausibility accepts them all.
pub(super) fn assert_table(p: &Profile, regs: &RegisterSet, expected: &[(&str, Value)]) {
    super::assert_decodes_to(p, regs, expected);
    let (readings, _) = p.decode(regs);
    let t = Utc.with_ymd_and_hms(2025, 6, 14, 11, 30, 5).unwrap();
    let verdict =
        Quality::new(p.readings.len(), Duration::from_secs(180)).filter(p, readings, t, t.naive_utc());
    assert!(verdict.rejected.is_empty(), "{:?}", verdict.rejected);
    assert!(Quality::zero_poll(p, &verdict.accepted).is_none());
}

fn micro() -> Arc<Profile> {
    super::builtin("deye_micro")
}

fn regs() -> RegisterSet {
    let mut set = vec![
        (0, 0x0400),
        (1, 1),
        (2, 0x0102),
        (8, 1),
        (9, 3),
        (13, 0x2033),
        (14, 0x1005),
        (16, 20000), // rated power, 0.1 W: 2000 W
        (18, 0x0401),
        (21, 60),
        (22, 25 << 8 | 6),
        (23, 14 << 8 | 11),
        (24, 30 << 8 | 5),
        (27, 2530),
        (28, 1840),
        (29, 5150),
        (30, 4750),
        (34, 5020),
        (35, 40),
        (39, 1950),
        (40, 1000),
        (43, 1),
        (46, 1),
        (47, 1),
        (49, 1),
        (59, 2),
        (60, 35),
        (62, 312),
        (63, 10000),
        (65, 10),
        (66, 9),
        (67, 8),
        (68, 8),
        (69, 2600),
        (71, 2500),
        (73, 2341),
        (74, 0xffff), // PV3 total, low word first: 0x0001_FFFF = 131071 → 13107.1 kWh
        (75, 1),
        (76, 35),
        (77, 2400),
        (79, 5001),
        (80, 8000),
        (86, 7925),
        (90, 4550), // (4550 - 1000) × 0.01 = 35.5 °C
        (101, 0b100),
        (103, 1 << 10),
        (109, 352),
        (110, 62),
        (111, 348),
        (112, 60),
        (115, 341),
        (116, 58),
    ];
    set.extend(serial("2412345678"));
    table(120, &set)
}

#[test]
fn a_micro_register_table_decodes_to_every_value() {
    use super::{b, n, t};
    let expected = [
        ("device_type", t("Microinverter")),
        ("modbus_address", n(1.0)),
        ("protocol_version", t("0.1.0.2")),
        ("inverter_serial", t("2412345678")),
        ("channel_mode", t("By MPPT count")),
        ("chip_type", t("GD32F303")),
        ("control_board_firmware", t("2.0.3.3")),
        ("comm_board_firmware", t("1.0.0.5")),
        ("rated_power", n(2000.0)),
        ("mppts", n(4.0)),
        ("phases", n(1.0)),
        ("running_state", t("Normal")),
        ("inverter_on_off", t("On")),
        ("self_check_time", n(60.0)),
        ("clock_year", n(2025.0)),
        ("clock_month", n(6.0)),
        ("clock_day", n(14.0)),
        ("clock_hour", n(11.0)),
        ("clock_minute", n(30.0)),
        ("clock_second", n(5.0)),
        ("alarm_fan", b(false)),
        ("alarm_grid_phase", b(true)),
        ("alarm_meter_comms", b(false)),
        ("fault_f1_dc_over_voltage", b(false)),
        ("fault_f2_dc_bus_over_voltage", b(false)),
        ("fault_f3_dc_bus_uneven_voltage", b(false)),
        ("fault_f4_dc_bus_under_voltage", b(false)),
        ("fault_f5_dc_bus2_uneven_voltage", b(false)),
        ("fault_f6_dc_a_over_current", b(false)),
        ("fault_f7_dc_b_over_current", b(false)),
        ("fault_f8_dc_input_disturbance", b(false)),
        ("fault_f9_grid_over_current", b(false)),
        ("fault_f10_igbt_over_current", b(false)),
        ("fault_f11_grid_disturbance", b(true)),
        ("fault_f12_arc_self_test", b(false)),
        ("fault_f13_arc_fault", b(false)),
        ("fault_f14_grid_current_sampling", b(false)),
        ("pv1_voltage", n(35.2)),
        ("pv1_current", n(6.2)),
        ("pv1_power", n(218.24)),
        ("pv2_voltage", n(34.8)),
        ("pv2_current", n(6.0)),
        ("pv2_power", n(208.8)),
        ("pv3_voltage", n(0.0)),
        ("pv3_current", n(0.0)),
        ("pv3_power", n(0.0)),
        ("pv4_voltage", n(34.1)),
        ("pv4_current", n(5.8)),
        ("pv4_power", n(197.78)),
        ("pv_power", n(624.82)),
        ("pv_energy_today", n(3.5)),
        ("pv_energy_total", n(1000.0)),
        ("pv1_energy_today", n(1.0)),
        ("pv2_energy_today", n(0.9)),
        ("pv3_energy_today", n(0.8)),
        ("pv4_energy_today", n(0.8)),
        ("pv1_energy_total", n(260.0)),
        ("pv2_energy_total", n(250.0)),
        ("pv3_energy_total", n(13107.1)),
        ("pv4_energy_total", n(240.0)),
        ("grid_voltage", n(234.1)),
        ("grid_frequency", n(50.01)),
        ("inverter_current", n(3.5)),
        ("inverter_power", n(792.5)),
        ("operating_power", n(800.0)),
        ("uptime", n(312.0)),
        ("radiator_temperature", n(35.5)),
        ("grid_voltage_upper_limit", n(253.0)),
        ("grid_voltage_lower_limit", n(184.0)),
        ("grid_frequency_upper_limit", n(51.5)),
        ("grid_frequency_lower_limit", n(47.5)),
        ("over_frequency_derating_start", n(50.2)),
        ("over_frequency_derating_rate", n(40.0)),
        ("power_factor_setting", n(0.95)),
        ("active_power_regulation", n(100.0)),
        ("island_protection", b(true)),
        ("soft_start", b(true)),
        ("gfdi", b(false)),
        ("over_frequency_derating", b(true)),
        ("riso", b(false)),
    ];
    assert_table(&micro(), &regs(), &expected);
}

#[test]
fn a_micro_is_read_in_one_request_and_detected_by_its_codes() {
    let p = micro();
    assert_eq!(p.header.device_types, vec![4, 0x0400]);
    // Everything lies in 0-116: no battery, no BMS, no settings above 50.
    assert_eq!(p.plan().len(), 1, "{:?}", p.plan());
    assert!(p.index_of("battery_soc").is_none());
}

#[test]
fn ranges_fit_a_two_kilowatt_micro() {
    let p = micro();
    let t = Utc.with_ymd_and_hms(2025, 6, 14, 11, 30, 5).unwrap();
    let key = |i: usize| p.readings[i].def.key.as_str();
    // A hybrid's 400 V string, or 0xFFFF in the AC power words, cannot come from a micro.
    let garbage = table(120, &[(0, 4), (73, 2300), (79, 5000), (86, 0xffff), (109, 4100), (110, 80)]);
    let (readings, _) = p.decode(&garbage);
    let verdict =
        Quality::new(p.readings.len(), Duration::from_secs(180)).filter(&p, readings, t, t.naive_utc());
    let mut rejected: Vec<(&str, Rule)> =
        verdict.rejected.iter().map(|r| (key(r.index.unwrap()), r.rule)).collect();
    rejected.sort_by_key(|(k, _)| *k);
    assert_eq!(rejected, vec![("inverter_power", Rule::Range), ("pv1_voltage", Rule::Range)]);
    // PV1 power and the total are left out, not computed from an implausible voltage.
    assert!(verdict.accepted.iter().all(|r| !matches!(key(r.index), "pv1_power" | "pv_power")));
}
