//! deye_string: a register table with the public maps' semantics (values ours), decoded and
//! every reading asserted.

use std::sync::Arc;

use crate::profile::{Profile, RegisterSet};

use super::micro::{assert_table, serial, table};

fn string() -> Arc<Profile> {
    super::builtin("deye_string")
}

/// The low and high word of a 32-bit value, as a low-word-first pair at `addr`.
fn pair(addr: u16, value: i64) -> [(u16, u16); 2] {
    let [lo, hi] = super::words32(value);
    [(addr, lo), (addr + 1, hi)]
}

fn regs() -> RegisterSet {
    let mut set = vec![
        (0, 0x0200),
        (1, 1),
        (2, 0x0101),
        (8, 3),
        (9, 2),
        (13, 0x1234),
        (14, 0x2345),
        (18, 0x0203),
        (21, 30),
        (22, 26 << 8 | 12),
        (23, 4 << 8 | 13),
        (24, 5 << 8 | 59),
        (43, 1),
        (59, 2),
        (60, 456),
        (62, 600),
        (70, 4012),
        (71, 4020),
        (72, 4008),
        (73, 2315),
        (74, 2322),
        (75, 2310),
        (76, 172),
        (77, 170),
        (78, 0xfffe), // s16: -0.2 A on L3
        (79, 4998),
        (90, 1452), // (1452 - 1000) × 0.1 = 45.2 °C
        (91, 1530),
        (101, 0b10),
        (103, 1 << 12),
        (104, 1 << 3),
        (106, 1 << 15),
        (109, 6123),
        (110, 102),
        (111, 5987),
        (112, 98),
        (200, 1234),
        (205, 2345),
        (208, 12),
    ];
    for (addr, value) in [
        (16, 120_000),
        (63, 987_654),
        (80, 120_000),
        (82, 121_128),
        (84, 118_000),
        (86, 117_500),
        (88, -1500),
        (198, 3120),
        (201, 45_678),
        (203, -8500),
        (206, 74_565),
        (209, 3210),
    ] {
        set.extend(pair(addr, value));
    }
    set.extend(serial("2211223344"));
    table(210, &set)
}

#[test]
fn a_string_register_table_decodes_to_every_value() {
    use super::{b, n, t};
    let expected = [
        ("device_type", t("String inverter")),
        ("modbus_address", n(1.0)),
        ("protocol_version", t("0.1.0.1")),
        ("inverter_serial", t("2211223344")),
        ("rated_phase", t("Three-phase")),
        ("chip_type", t("GD32F103")),
        ("control_board_firmware", t("1.2.3.4")),
        ("comm_board_firmware", t("2.3.4.5")),
        ("rated_power", n(12000.0)),
        ("mppts", n(2.0)),
        ("phases", n(3.0)),
        ("running_state", t("Normal")),
        ("inverter_on_off", t("On")),
        ("self_check_time", n(30.0)),
        ("clock_year", n(2026.0)),
        ("clock_month", n(12.0)),
        ("clock_day", n(4.0)),
        ("clock_hour", n(13.0)),
        ("clock_minute", n(5.0)),
        ("clock_second", n(59.0)),
        ("uptime", n(600.0)),
        ("alarm_fan", b(true)),
        ("alarm_grid_phase", b(false)),
        ("alarm_meter_comms", b(false)),
        ("fault_f7_dc_dc_soft_start", b(false)),
        ("fault_f10_auxiliary_power_supply", b(false)),
        ("fault_f13_working_mode_change", b(true)),
        ("fault_f18_ac_over_current", b(false)),
        ("fault_f19_tz_integ", b(false)),
        ("fault_f20_dc_over_current", b(true)),
        ("fault_f23_ac_leakage_current", b(false)),
        ("fault_f64_heat_sink_high_temperature", b(true)),
        ("pv1_voltage", n(612.3)),
        ("pv1_current", n(10.2)),
        ("pv1_power", n(6245.46)),
        ("pv2_voltage", n(598.7)),
        ("pv2_current", n(9.8)),
        ("pv2_power", n(5867.26)),
        ("pv3_voltage", n(0.0)),
        ("pv3_current", n(0.0)),
        ("pv3_power", n(0.0)),
        ("pv4_voltage", n(0.0)),
        ("pv4_current", n(0.0)),
        ("pv4_power", n(0.0)),
        ("pv_power", n(12112.8)),
        ("pv_energy_today", n(45.6)),
        ("pv_energy_total", n(98765.4)),
        ("grid_voltage_l1", n(231.5)),
        ("grid_voltage_l2", n(232.2)),
        ("grid_voltage_l3", n(231.0)),
        ("grid_voltage_l12", n(401.2)),
        ("grid_voltage_l23", n(402.0)),
        ("grid_voltage_l31", n(400.8)),
        ("grid_frequency", n(49.98)),
        ("inverter_current_l1", n(17.2)),
        ("inverter_current_l2", n(17.0)),
        ("inverter_current_l3", n(-0.2)),
        ("inverter_power", n(11750.0)),
        ("operating_power", n(12000.0)),
        ("inverter_apparent_power", n(11800.0)),
        ("inverter_reactive_power", n(-150.0)),
        ("radiator_temperature", n(45.2)),
        ("igbt_temperature", n(53.0)),
        ("load_power", n(3120.0)),
        ("load_energy_today", n(12.34)),
        ("load_energy_total", n(4567.8)),
        ("grid_power", n(-8500.0)),
        ("grid_export_today", n(23.45)),
        ("grid_export_total", n(7456.5)),
        ("grid_import_today", n(0.12)),
        ("grid_import_total", n(321.0)),
    ];
    assert_table(&string(), &regs(), &expected);
}

#[test]
fn a_string_inverter_is_read_in_two_requests_and_detected_by_its_codes() {
    let p = string();
    assert_eq!(p.header.device_types, vec![2], "0x0200 is claimed by no family: the sources disagree");
    // 0-116, then the meter block 198-210.
    assert_eq!(p.plan().len(), 2, "{:?}", p.plan());
    assert!(p.index_of("battery_soc").is_none());
}
