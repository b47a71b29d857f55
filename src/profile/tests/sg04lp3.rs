//! The SG04LP3 profile against a register table of one plausible house: a 12 kW three-phase LV
//! hybrid at 13:37 on a December day, PV on two strings, the battery discharging, the grid
//! importing on two phases and exporting on one. Registers and their meaning come from the
//! public maps (config/profiles/deye_sg04lp3.toml names the source of each); the values are
//! ours. Every reading of the profile must appear in `EXPECTED`, so a new reading without a
//! decode check fails here.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};

use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};
use crate::quality::{Quality, Rule};

/// What a reading must decode to.
#[derive(Debug, Clone, Copy)]
enum Want {
    N(f64),
    T(&'static str),
    B(bool),
}

use Want::{B, N, T};

/// The profile below its battery packs, which `super::packs` tests.
fn profile() -> std::sync::Arc<Profile> {
    super::builtin_without_packs("deye_sg04lp3")
}

/// Writes a 32-bit signed value as the inverter does: low word at `lo`, high word at `hi`.
fn put32(regs: &mut BTreeMap<u16, u16>, lo: u16, hi: u16, value: i32) {
    let [low, high] = super::words32(value.into());
    regs.insert(lo, low);
    regs.insert(hi, high);
}

/// The house, as raw registers.
fn house() -> BTreeMap<u16, u16> {
    let mut r = BTreeMap::new();
    let serial = super::ascii_words("2405011234");
    let words: &[(u16, u16)] = &[
        (0, 0x0500),
        (1, 1),
        (2, 0x0104),
        (11, 0x0000),
        (13, 0x1049),
        (14, 0x3002),
        (15, 0x0711),
        (16, 0x0000),
        (17, 0x1001),
        (18, 0x0203),
        (20, 0xd4c0), // 120000 × 0.1 W = 12 kW
        (21, 0x0001),
        (22, 0x0203), // 2 MPPTs, 3 phases
        (61, 60),
        (62, 24 << 8 | 12),
        (63, 4 << 8 | 13),
        (64, 37 << 8 | 5),
        (80, 1),
        (98, 1),
        (102, 280),
        (104, 20),
        (108, 185),
        (109, 150),
        (111, 1),
        (115, 10),
        (116, 30),
        (117, 20),
        (127, 25),
        (128, 40),
        (129, 0),
        (130, 1),
        (133, 0),
        (141, 0),
        (142, 2),
        (143, 12000),
        (145, 1),
        (146, 0x00ff),
        (148, 100),
        (149, 500),
        (150, 900),
        (151, 1300),
        (152, 1700),
        (153, 2200),
        (154, 5000),
        (155, 4000),
        (156, 3000),
        (157, 2000),
        (158, 1000),
        (159, 500),
        (166, 20),
        (167, 30),
        (168, 40),
        (169, 50),
        (170, 60),
        (171, 70),
        (172, 1),
        (173, 0),
        (174, 2),
        (175, 3),
        (176, 0x1d), // program mode bits (SS) above the charge source: masked off
        (177, 0),
        (191, 8000),
        (210, 5680),
        (211, 4700),
        (212, 150),
        (213, 140),
        (214, 67),
        (215, 5255),
        (216, (-29i16) as u16),
        (218, 200),
        (219, 190),
        (220, 0),
        (221, 0x0004),
        (223, 0),
        (340, 15600),
        (500, 2),
        (502, 201),
        (506, 0xdd06), // 187654 × 0.1
        (507, 0x0002),
        (514, 52),
        (515, 71),
        (516, 0xb26e), // 45678 × 0.1
        (517, 0),
        (518, 0x1170), // 70000 × 0.1
        (519, 1),
        (520, 84),
        (521, 123),
        (522, 0x9447), // 234567 × 0.1
        (523, 3),
        (524, 0x81cd), // 98765 × 0.1
        (525, 1),
        (526, 305),
        (527, 0x464e), // 345678 × 0.1
        (528, 5),
        (529, 183),
        (534, 0xe240), // 123456 × 0.1
        (535, 1),
        (536, 9),
        (537, 1234),
        (538, 0),
        (540, 1452),
        (541, 1387),
        (551, 1),
        (552, 0b0101), // inverter relay and grid relay closed
        (553, 0x0002), // alarm bit 1: fan
        (554, 0x4000), // alarm bit 30: battery loss
        (555, 0x1000), // F13
        (557, 0x0004), // F35
        (558, 0x8000), // F64
        (586, 1253),
        (587, 5252),
        (588, 66),
        (590, 1500),
        (591, 2856),
        (592, 280),
        (598, 2351),
        (599, 2362),
        (600, 2340),
        (609, 5001),
        (610, 512),
        (611, (-200i16) as u16),
        (612, 100),
        (613, 612),
        (614, (-250i16) as u16),
        (615, 150),
        (627, 2301),
        (628, 2305),
        (629, 2298),
        (630, 1000),
        (631, 980),
        (632, 1010),
        (638, 5000),
        (644, 2300),
        (645, 2301),
        (646, 2302),
        (655, 4999),
        (661, 2290),
        (662, 2291),
        (663, 2292),
        (676, 3452),
        (677, 87),
        (672, 3003),
        (678, 2981),
        (679, 65),
        (673, 1938),
    ];
    r.extend(words.iter().copied());
    r.extend((3..=7).zip(serial));
    let powers: &[(u16, u16, i32)] = &[
        (604, 700, 1180),
        (605, 701, -470),
        (606, 702, 225),
        (607, 703, 935),
        (616, 705, 1210),
        (617, 706, -455),
        (618, 707, 235),
        (619, 708, 990),
        (622, 687, 1200),
        (623, 688, -460),
        (624, 689, 230),
        (625, 690, 970),
        (633, 691, 2300),
        (634, 692, 2250),
        (635, 693, 2320),
        (636, 694, 6870),
        (640, 696, 300),
        (641, 697, 200),
        (642, 698, 100),
        (643, 699, 600),
        (650, 656, 3500),
        (651, 657, 1790),
        (652, 658, 2550),
        (653, 659, 7840),
        (664, 668, 100),
        (665, 669, 110),
        (666, 670, 120),
        (667, 671, 330),
    ];
    for &(lo, hi, value) in powers {
        put32(&mut r, lo, hi, value);
    }
    r
}

/// The registers as a poll would bring them: the profile's planned reads, unmapped gaps zero.
fn poll(profile: &Profile, table: &BTreeMap<u16, u16>) -> RegisterSet {
    let mut set = RegisterSet::new();
    for read in profile.plan() {
        let values =
            (read.start..read.start + read.count).map(|a| table.get(&a).copied().unwrap_or(0)).collect();
        set.insert(RegisterBlock { start: read.start, values });
    }
    set
}

const EXPECTED: &[(&str, Want)] = &[
    ("device_type", T("LV 3-phase hybrid")),
    ("modbus_address", N(1.0)),
    ("protocol_version", T("0.1.0.4")),
    ("inverter_serial", T("2405011234")),
    ("control_board_firmware", T("3.0.0.2-0.7.1.1-0.0.0.0")),
    ("comm_board_firmware", T("1.0.0.1-0.2.0.3-0.0.0.0")),
    ("mcu_firmware", T("1.0.4.9")),
    ("rated_power", N(12000.0)),
    ("mppts", N(2.0)),
    ("phases", N(3.0)),
    ("running_state", T("Normal")),
    ("power_on", B(true)),
    ("grid_connected", B(true)),
    ("inverter_relay", B(true)),
    ("generator_relay", B(false)),
    ("inverter_on_off", T("On")),
    ("clock_year", N(2024.0)),
    ("clock_month", N(12.0)),
    ("clock_day", N(4.0)),
    ("clock_hour", N(13.0)),
    ("clock_minute", N(37.0)),
    ("clock_second", N(5.0)),
    ("alarm_fan", B(true)),
    ("alarm_grid_phase", B(false)),
    ("alarm_meter_comms", B(false)),
    ("alarm_battery_loss", B(true)),
    ("alarm_parallel_comms", B(false)),
    ("fault_f7_dc_dc_soft_start", B(false)),
    ("fault_f10_auxiliary_power_supply", B(false)),
    ("fault_f13_working_mode_change", B(true)),
    ("fault_f18_ac_over_current", B(false)),
    ("fault_f19_tz_integ", B(false)),
    ("fault_f20_dc_over_current", B(false)),
    ("fault_f23_ac_leakage_current", B(false)),
    ("fault_f24_dc_insulation_impedance", B(false)),
    ("fault_f26_dc_busbar_imbalanced", B(false)),
    ("fault_f29_parallel_comms", B(false)),
    ("fault_f35_no_ac_grid", B(true)),
    ("fault_f42_ac_line_low_voltage", B(false)),
    ("fault_f47_ac_frequency", B(false)),
    ("fault_f56_dc_busbar_voltage_low", B(false)),
    ("fault_f63_arc_fault", B(false)),
    ("fault_f64_heat_sink_high_temperature", B(true)),
    ("pv1_voltage", N(345.2)),
    ("pv1_current", N(8.7)),
    ("pv1_power", N(3003.0)),
    ("pv2_voltage", N(298.1)),
    ("pv2_current", N(6.5)),
    ("pv2_power", N(1938.0)),
    ("pv3_voltage", N(0.0)),
    ("pv3_current", N(0.0)),
    ("pv3_power", N(0.0)),
    ("pv4_voltage", N(0.0)),
    ("pv4_current", N(0.0)),
    ("pv4_power", N(0.0)),
    ("pv_power", N(4941.0)),
    ("pv_energy_today", N(18.3)),
    ("pv_energy_total", N(12345.6)),
    ("battery_temperature", N(25.3)),
    ("battery_voltage", N(52.52)),
    ("battery_soc", N(66.0)),
    ("battery_power", N(1500.0)),
    ("battery_current", N(28.56)),
    ("battery_corrected_capacity", N(280.0)),
    ("battery_charge_today", N(5.2)),
    ("battery_discharge_today", N(7.1)),
    ("battery_charge_total", N(4567.8)),
    ("battery_discharge_total", N(7000.0)),
    ("bms_charge_voltage", N(56.8)),
    ("bms_discharge_voltage", N(47.0)),
    ("bms_charge_current_limit", N(150.0)),
    ("bms_discharge_current_limit", N(140.0)),
    ("bms_soc", N(67.0)),
    ("bms_voltage", N(52.55)),
    ("bms_current", N(-29.0)),
    ("bms_max_charge_current", N(200.0)),
    ("bms_max_discharge_current", N(190.0)),
    ("bms_alarm", N(0.0)),
    ("bms_fault", N(4.0)),
    ("bms_type", T("PYLON")),
    ("grid_voltage_l1", N(235.1)),
    ("grid_voltage_l2", N(236.2)),
    ("grid_voltage_l3", N(234.0)),
    ("grid_frequency", N(50.01)),
    ("grid_current_l1", N(5.12)),
    ("grid_current_l2", N(-2.0)),
    ("grid_current_l3", N(1.0)),
    ("grid_external_ct_current_l1", N(6.12)),
    ("grid_external_ct_current_l2", N(-2.5)),
    ("grid_external_ct_current_l3", N(1.5)),
    ("grid_power_l1", N(1200.0)),
    ("grid_power_l2", N(-460.0)),
    ("grid_power_l3", N(230.0)),
    ("grid_power", N(970.0)),
    ("grid_internal_ct_power_l1", N(1180.0)),
    ("grid_internal_ct_power_l2", N(-470.0)),
    ("grid_internal_ct_power_l3", N(225.0)),
    ("grid_internal_ct_power", N(935.0)),
    ("grid_external_ct_power_l1", N(1210.0)),
    ("grid_external_ct_power_l2", N(-455.0)),
    ("grid_external_ct_power_l3", N(235.0)),
    ("grid_external_ct_power", N(990.0)),
    ("grid_import_today", N(8.4)),
    ("grid_export_today", N(12.3)),
    ("grid_import_total", N(23456.7)),
    ("grid_export_total", N(9876.5)),
    ("inverter_voltage_l1", N(230.1)),
    ("inverter_voltage_l2", N(230.5)),
    ("inverter_voltage_l3", N(229.8)),
    ("inverter_current_l1", N(10.0)),
    ("inverter_current_l2", N(9.8)),
    ("inverter_current_l3", N(10.1)),
    ("inverter_power_l1", N(2300.0)),
    ("inverter_power_l2", N(2250.0)),
    ("inverter_power_l3", N(2320.0)),
    ("inverter_power", N(6870.0)),
    ("inverter_frequency", N(50.0)),
    ("load_voltage_l1", N(230.0)),
    ("load_voltage_l2", N(230.1)),
    ("load_voltage_l3", N(230.2)),
    ("load_power_l1", N(3500.0)),
    ("load_power_l2", N(1790.0)),
    ("load_power_l3", N(2550.0)),
    ("load_power", N(7840.0)),
    ("load_frequency", N(49.99)),
    ("ups_load_power_l1", N(300.0)),
    ("ups_load_power_l2", N(200.0)),
    ("ups_load_power_l3", N(100.0)),
    ("ups_load_power", N(600.0)),
    ("load_energy_today", N(30.5)),
    ("load_energy_total", N(34567.8)),
    ("generator_voltage_l1", N(229.0)),
    ("generator_voltage_l2", N(229.1)),
    ("generator_voltage_l3", N(229.2)),
    ("gen_port_power_l1", N(100.0)),
    ("gen_port_power_l2", N(110.0)),
    ("gen_port_power_l3", N(120.0)),
    ("gen_port_power", N(330.0)),
    ("generator_energy_today", N(0.9)),
    ("generator_energy_total", N(123.4)),
    ("active_energy_today", N(20.1)),
    ("active_energy_total", N(18765.4)),
    ("dc_transformer_temperature", N(45.2)),
    ("ac_radiator_temperature", N(38.7)),
    ("self_check_time", N(60.0)),
    ("battery_control_mode", T("Lithium")),
    ("battery_capacity", N(280.0)),
    ("zero_export_power", N(20.0)),
    ("battery_max_charge_current", N(185.0)),
    ("battery_max_discharge_current", N(150.0)),
    ("battery_operation_mode", T("Capacity")),
    ("battery_shutdown_soc", N(10.0)),
    ("battery_restart_soc", N(30.0)),
    ("battery_low_soc", N(20.0)),
    ("grid_charge_start_soc", N(25.0)),
    ("grid_charge_current", N(40.0)),
    ("generator_charge_enabled", B(false)),
    ("grid_charge_enabled", B(true)),
    ("gen_port_mode", T("Generator")),
    ("energy_pattern", T("Battery first")),
    ("work_mode", T("Zero export to CT")),
    ("max_sell_power", N(12000.0)),
    ("solar_sell", B(true)),
    ("time_of_use_enabled", B(true)),
    ("program_1_start_time", N(100.0)),
    ("program_2_start_time", N(500.0)),
    ("program_3_start_time", N(900.0)),
    ("program_4_start_time", N(1300.0)),
    ("program_5_start_time", N(1700.0)),
    ("program_6_start_time", N(2200.0)),
    ("program_1_power", N(5000.0)),
    ("program_2_power", N(4000.0)),
    ("program_3_power", N(3000.0)),
    ("program_4_power", N(2000.0)),
    ("program_5_power", N(1000.0)),
    ("program_6_power", N(500.0)),
    ("program_1_soc", N(20.0)),
    ("program_2_soc", N(30.0)),
    ("program_3_soc", N(40.0)),
    ("program_4_soc", N(50.0)),
    ("program_5_soc", N(60.0)),
    ("program_6_soc", N(70.0)),
    ("program_1_charge_source", T("Grid")),
    ("program_2_charge_source", T("None")),
    ("program_3_charge_source", T("Generator")),
    ("program_4_charge_source", T("Grid and generator")),
    ("program_5_charge_source", T("Grid")),
    ("program_6_charge_source", T("None")),
    ("grid_peak_shaving_power", N(8000.0)),
    ("max_solar_power", N(15600.0)),
];

impl Want {
    fn value(self) -> Value {
        match self {
            N(v) => super::n(v),
            T(text) => super::t(text),
            B(on) => super::b(on),
        }
    }
}

#[test]
fn every_reading_decodes_to_the_value_the_maps_give() {
    let profile = profile();
    let expected: Vec<(&str, Value)> = EXPECTED.iter().map(|(key, want)| (*key, want.value())).collect();
    super::assert_decodes_to(&profile, &poll(&profile, &house()), &expected);
}

#[test]
fn the_house_passes_every_plausibility_rule() {
    let profile = profile();
    let (readings, _) = profile.decode(&poll(&profile, &house()));
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(300));
    let now = Utc.with_ymd_and_hms(2024, 12, 4, 12, 37, 5).unwrap();
    let local = NaiveDate::from_ymd_opt(2024, 12, 4).unwrap().and_hms_opt(13, 37, 5).unwrap();
    let verdict = quality.filter(&profile, readings, now, local);
    assert!(verdict.rejected.is_empty(), "{:?}", verdict.rejected);
    let set = poll(&profile, &house());
    assert_eq!(Quality::zero_frame(&profile, &set), None);
}

#[test]
fn detection_codes_and_device_are_the_lv_three_phase_ones() {
    let profile = profile();
    assert_eq!(profile.header.device_types, vec![5, 0x0500]);
    assert_eq!(profile.header.clock.len(), 6);
    assert_eq!(profile.zero_poll.len(), 2);
    // Settings 60..=499 are read-write registers: the HA `config` category, nothing else.
    for spec in &profile.readings {
        let config = spec.def.entity_category == Some(crate::profile::EntityCategory::Config);
        let setting = spec.def.group == "settings";
        assert!(config == setting || spec.def.key == "inverter_on_off", "{}", spec.def.key);
    }
    // A few reads cover the whole map: 0-117, 127-223, 340, 500-624, 627-707.
    assert!(profile.plan().len() <= 5, "{:?}", profile.plan());
}

/// The S16 overflow (kellerza/sunsynk#666, ha-solarman#822): the inverter pairs a fresh low
/// word with a stale high word around a sign change, so a 32-bit power reads its true value
/// ± 65536 W for one poll. Users see 65533 W spikes. The ranges reject every such glitch on a
/// phase, and a total, the sum of its phases, is left out rather than built from a glitch.
#[test]
fn s16_overflow_spikes_are_rejected_and_real_values_pass() {
    let profile = profile();
    let now = Utc.with_ymd_and_hms(2024, 12, 4, 12, 37, 5).unwrap();
    let local = NaiveDate::from_ymd_opt(2024, 12, 4).unwrap().and_hms_opt(13, 37, 5).unwrap();
    let mut table = house();
    // The values users reported: −3 W with a high word of 0 (65533 W); +3 W with 0xFFFF.
    table.insert(623, (-3i16) as u16);
    table.insert(688, 0);
    table.insert(651, 3);
    table.insert(657, 0xffff);
    // Real values near the ends of the ranges pass: a 19 kW phase, 41 kW over three phases.
    put32(&mut table, 622, 687, -19_000);
    for (lo, hi) in [(633, 691), (634, 692), (635, 693)] {
        put32(&mut table, lo, hi, 13_700);
    }
    let (readings, errors) = profile.decode(&poll(&profile, &table));
    assert!(errors.is_empty(), "{errors:?}");
    let value = |key: &str| {
        let index = profile.index_of(key).unwrap();
        readings.iter().find(|r| r.index == index).map(|r| r.value.as_f64().unwrap())
    };
    assert_eq!(value("grid_power_l2"), Some(65533.0), "the glitch decodes as users saw it");
    assert_eq!(value("load_power_l2"), Some(-65533.0));
    // A sum never takes an out-of-range input: the totals of the glitching phases are left out.
    assert_eq!((value("grid_power"), value("load_power")), (None, None));
    assert_eq!(value("inverter_power"), Some(41_100.0));
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(300));
    let verdict = quality.filter(&profile, readings, now, local);
    let rejected: Vec<(&str, Rule)> = verdict
        .rejected
        .iter()
        .map(|r| (profile.readings[r.index.unwrap()].def.key.as_str(), r.rule))
        .collect();
    assert_eq!(rejected, vec![("grid_power_l2", Rule::Range), ("load_power_l2", Rule::Range)]);
    let accepted = |key: &str| verdict.accepted.iter().any(|r| profile.readings[r.index].def.key == key);
    for key in ["grid_power_l1", "inverter_power", "grid_external_ct_power", "grid_power_l3"] {
        assert!(accepted(key), "{key} was rejected");
    }
}

/// A glitch of a total's own register (a large swing across zero, or firmware writing garbage)
/// cannot reach the total: the totals are sums of their phases and their registers are not read.
#[test]
fn a_glitching_total_register_does_not_matter() {
    let profile = profile();
    let mut table = house();
    // Every total register with a glitch inside its old ±45000 W range.
    for (lo, hi) in [(625, 690), (607, 703), (619, 708), (636, 694), (643, 699), (653, 659), (667, 671)] {
        put32(&mut table, lo, hi, 30_000 - 65_536);
    }
    for addr in [625, 690, 607, 703, 619, 708, 636, 694, 643, 699, 653, 659, 667, 671] {
        assert!(!profile.addresses().any(|a| a == addr), "register {addr} is still mapped");
    }
    let expected: Vec<(&str, Value)> = EXPECTED.iter().map(|(key, want)| (*key, want.value())).collect();
    super::assert_decodes_to(&profile, &poll(&profile, &table), &expected);
}

/// Ranges alone are the rule on a phase: a 32-bit power whose range spans less than 65536 W
/// cannot hold both a real value and that value's glitch (true value ± 65536 W). The totals read
/// no register of their own: each is the sum of its three phases (docs/profiles.md, "The S16
/// overflow").
#[test]
fn split_power_ranges_leave_no_room_for_a_glitch() {
    let profile = profile();
    // The powers whose high word sits far from the low word (622 + 687): the ones that glitch.
    let split = |s: &&crate::profile::ReadingSpec| matches!(s.def.registers[..], [lo, hi] if hi > lo + 1);
    let mut phases = 0;
    for spec in profile.readings.iter().filter(split) {
        let key = spec.def.key.as_str();
        let (min, max) = (spec.def.min.unwrap(), spec.def.max.unwrap());
        assert!(["_l1", "_l2", "_l3"].iter().any(|l| key.ends_with(l)), "{key} is a split total");
        assert!(max - min < 65536.0, "{key}: range {min}..{max}");
        phases += 1;
    }
    // Seven three-phase sets: grid, internal CT, external CT, inverter, load, UPS, generator.
    assert_eq!(phases, 21, "the set of split 32-bit powers changed");
    assert_eq!(super::three_phase_totals(&profile), 7);
}
