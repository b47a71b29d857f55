//! The SG01HP3 profile against a register table: every reading decoded and its value checked.
//!
//! Register meanings are from the public maps named in `config/profiles/deye_sg01hp3.toml`; the
//! values are made up to look like a 25 kW house in the afternoon, with a control board on
//! build 1098 (energy in whole kWh).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};

/// The control-board build register (15) and the first build that counts energy in kWh.
const BUILD: u16 = 15;
const KWH_BUILD: u16 = 0x1098;

/// The profile below its battery packs, which `super::packs` tests.
fn profile() -> Arc<Profile> {
    super::builtin_without_packs("deye_sg01hp3")
}

/// One poll's worth of registers, 0 to 799, every one read.
struct Table(Vec<u16>);

impl Table {
    fn new() -> Self {
        Self(vec![0; 800])
    }

    fn set(&mut self, addr: u16, raw: i32) -> &mut Self {
        self.0[usize::from(addr)] = raw as u16;
        self
    }

    /// A 32-bit value split over a low and a high word, which need not be adjacent.
    fn set32(&mut self, lo: u16, hi: u16, raw: i64) -> &mut Self {
        let [low, high] = super::words32(raw);
        self.set(lo, i32::from(low));
        self.set(hi, i32::from(high))
    }

    fn ascii(&mut self, first: u16, text: &str) -> &mut Self {
        for (addr, word) in (first..).zip(super::ascii_words(text)) {
            self.set(addr, i32::from(word));
        }
        self
    }

    fn registers(&self) -> RegisterSet {
        let mut set = RegisterSet::new();
        set.insert(RegisterBlock { start: 0, values: self.0.clone() });
        set
    }
}

fn house() -> Table {
    let mut t = Table::new();
    // Identity: type 6, protocol 0105, firmware MAIN 3002-1098-1E08, HMI 2001-C048, 25 kW, 2 MPPT, 3 phases.
    t.set(0, 6).set(1, 1).set(2, 0x0105).ascii(3, "2405123456");
    t.set(14, 0x3002).set(BUILD, i32::from(KWH_BUILD)).set(11, 0x1E08);
    t.set(17, 0x2001).set(18, 0xC048).set(16, 0);
    t.set32(20, 21, 250_000).set(22, 0x0203);
    // Status, clock 2024-12-04 13:30:15, alarms and faults.
    t.set(500, 2).set(552, 0b0100).set(80, 1);
    t.set(62, 24 << 8 | 12).set(63, 4 << 8 | 13).set(64, 30 << 8 | 15);
    t.set32(553, 554, 1 << 2 | 1 << 30);
    t.set(555, 1 << 12).set(556, 1 << 3).set(558, 0x8000);
    // PV: two strings at 10 W per bit, PV5 on the SUN-80K address.
    t.set(676, 6120).set(677, 105).set(678, 5980).set(679, 98);
    t.set(672, 640).set(673, 580).set(727, 100);
    t.set(529, 42).set32(534, 535, 70_000);
    // Battery 1 charging at 2 kW, battery 2 discharging.
    t.set(586, 1253).set(587, 5120).set(588, 76).set(590, -200).set(591, -391).set(592, 98);
    t.set(589, 80).set(593, 5100).set(594, 150).set(595, 75).set(596, 1240);
    t.set(514, 12).set(515, 9).set32(516, 517, 3100).set32(518, 519, 2900);
    // BMS.
    t.set(210, 5760).set(211, 4500).set(212, 25).set(213, 25).set(214, 77).set(215, 5125);
    t.set(216, -39).set(217, 1230).set(218, 30).set(219, 30).set(224, 98).set(226, 100);
    // Grid: 40 kW import in total, more than one S16 word holds; the internal CT reads -500 W.
    t.set(609, 5001).set(598, 2301).set(599, 2312).set(600, 2298);
    t.set(610, 435).set(611, -120).set(613, 500).set(614, 510).set(615, 520);
    t.set32(622, 687, 15_000).set32(623, 688, 14_000).set32(624, 689, 11_000).set32(625, 690, 40_000);
    t.set32(604, 700, -500).set32(607, 703, -500);
    t.set32(616, 705, 15_000).set32(617, 706, 14_000).set32(618, 707, 11_000).set32(619, 708, 40_000);
    t.set(520, 5).set(521, 20).set32(522, 523, 2062).set32(524, 525, 5327);
    // Inverter output, UPS port, load.
    t.set(627, 2300).set(628, 2310).set(629, 2290).set(630, 1000).set(631, 1010).set(632, 990);
    t.set32(633, 691, 2300).set32(634, 692, 2330).set32(635, 693, 2270).set32(636, 694, 6900).set(638, 5000);
    t.set32(640, 696, 300).set32(641, 697, 200).set32(642, 698, 100).set32(643, 699, 600);
    t.set(644, 2300).set(645, 2305).set(646, 2295).set(655, 5000);
    t.set32(650, 656, 1200).set32(651, 657, 800).set32(652, 658, 500).set32(653, 659, 2500);
    t.set(526, 30).set32(527, 528, 2942);
    // GEN port with a generator on L1, electronics temperatures.
    t.set(661, 2200).set32(664, 668, 1000).set32(667, 671, 1000).set(536, 3).set32(537, 538, 120);
    t.set(540, 1350).set(541, 1420);
    // Settings.
    t.set(61, 60).set(98, 1).set(102, 100).set(108, 50).set(109, 50).set(111, 1);
    t.set(115, 10).set(116, 30).set(117, 20).set(127, 40).set(128, 40).set(130, 1);
    t.set(141, 1).set(142, 2).set(143, 2500).set(145, 1).set(146, 0xFF);
    for (n, time) in [0, 500, 1000, 1500, 2000, 2300].into_iter().enumerate() {
        t.set(148 + n as u16, time).set(154 + n as u16, 2500).set(166 + n as u16, 20 + 10 * n as i32);
    }
    // Program 1: bits 0-1 say grid; bit 2 (SS's program mode) must not leak into the source.
    t.set(172, 0b101).set(191, 1000).set(340, 3000);
    t
}

use super::{b, n, t};

fn expected() -> Vec<(String, Value)> {
    let fixed = [
        ("device_type", t("HV 3-phase hybrid")),
        ("modbus_address", n(1.0)),
        ("protocol_version", t("0.1.0.5")),
        ("inverter_serial", t("2405123456")),
        ("control_board_firmware", t("3.0.0.2-1.0.9.8-1.e.0.8")),
        ("control_board_build", t("1.0.9.8")),
        ("comm_board_firmware", t("2.0.0.1-c.0.4.8-0.0.0.0")),
        ("rated_power", n(25000.0)),
        ("mppts", n(2.0)),
        ("phases", n(3.0)),
        ("running_state", t("Normal")),
        ("grid_connected", b(true)),
        ("generator_relay", b(false)),
        ("inverter_on_off", t("On")),
        ("clock_year", n(2024.0)),
        ("clock_month", n(12.0)),
        ("clock_day", n(4.0)),
        ("clock_hour", n(13.0)),
        ("clock_minute", n(30.0)),
        ("clock_second", n(15.0)),
        ("alarm_fan", b(false)),
        ("alarm_grid_phase", b(true)),
        ("alarm_meter_comms", b(false)),
        ("alarm_battery_loss", b(true)),
        ("alarm_parallel_comms", b(false)),
        ("fault_f7_dc_dc_soft_start", b(false)),
        ("fault_f10_auxiliary_power_supply", b(false)),
        ("fault_f13_working_mode_change", b(true)),
        ("fault_f18_ac_over_current", b(false)),
        ("fault_f19_tz_integ", b(false)),
        ("fault_f20_dc_over_current", b(true)),
        ("fault_f23_ac_leakage_current", b(false)),
        ("fault_f64_heat_sink_high_temperature", b(true)),
        ("pv1_voltage", n(612.0)),
        ("pv1_current", n(10.5)),
        ("pv2_voltage", n(598.0)),
        ("pv2_current", n(9.8)),
        ("pv3_voltage", n(0.0)),
        ("pv3_current", n(0.0)),
        ("pv4_voltage", n(0.0)),
        ("pv4_current", n(0.0)),
        ("pv1_power", n(6400.0)),
        ("pv2_power", n(5800.0)),
        ("pv3_power", n(0.0)),
        ("pv4_power", n(0.0)),
        ("pv5_power", n(1000.0)),
        ("pv6_power", n(0.0)),
        ("pv7_power", n(0.0)),
        ("pv8_power", n(0.0)),
        ("pv_power", n(13200.0)),
        ("pv_energy_today", n(42.0)),
        ("pv_energy_total", n(70000.0)),
        ("battery_temperature", n(25.3)),
        ("battery_voltage", n(512.0)),
        ("battery_soc", n(76.0)),
        ("battery_power", n(-2000.0)),
        ("battery_current", n(-3.91)),
        ("battery_corrected_capacity", n(98.0)),
        ("battery_2_soc", n(80.0)),
        ("battery_2_voltage", n(510.0)),
        ("battery_2_current", n(1.5)),
        ("battery_2_power", n(750.0)),
        ("battery_2_temperature", n(24.0)),
        ("battery_charge_today", n(12.0)),
        ("battery_discharge_today", n(9.0)),
        ("battery_charge_total", n(3100.0)),
        ("battery_discharge_total", n(2900.0)),
        ("bms_charge_voltage", n(576.0)),
        ("bms_discharge_voltage", n(450.0)),
        ("bms_charge_current_limit", n(25.0)),
        ("bms_discharge_current_limit", n(25.0)),
        ("bms_soc", n(77.0)),
        ("bms_voltage", n(512.5)),
        ("bms_current", n(-3.9)),
        ("bms_temperature", n(23.0)),
        ("bms_max_charge_current", n(30.0)),
        ("bms_max_discharge_current", n(30.0)),
        ("bms_alarm", n(0.0)),
        ("bms_fault", n(0.0)),
        ("bms_type", t("PYLON")),
        ("bms_soh", n(98.0)),
        ("bms_rated_capacity", n(100.0)),
        ("grid_frequency", n(50.01)),
        ("grid_voltage_l1", n(230.1)),
        ("grid_voltage_l2", n(231.2)),
        ("grid_voltage_l3", n(229.8)),
        ("grid_current_l1", n(4.35)),
        ("grid_current_l2", n(-1.2)),
        ("grid_current_l3", n(0.0)),
        ("grid_external_ct_current_l1", n(5.0)),
        ("grid_external_ct_current_l2", n(5.1)),
        ("grid_external_ct_current_l3", n(5.2)),
        ("grid_power_l1", n(15000.0)),
        ("grid_power_l2", n(14000.0)),
        ("grid_power_l3", n(11000.0)),
        ("grid_power", n(40000.0)),
        ("grid_internal_ct_power_l1", n(-500.0)),
        ("grid_internal_ct_power_l2", n(0.0)),
        ("grid_internal_ct_power_l3", n(0.0)),
        ("grid_internal_ct_power", n(-500.0)),
        ("grid_external_ct_power_l1", n(15000.0)),
        ("grid_external_ct_power_l2", n(14000.0)),
        ("grid_external_ct_power_l3", n(11000.0)),
        ("grid_external_ct_power", n(40000.0)),
        ("grid_import_today", n(5.0)),
        ("grid_export_today", n(20.0)),
        ("grid_import_total", n(2062.0)),
        ("grid_export_total", n(5327.0)),
        ("inverter_voltage_l1", n(230.0)),
        ("inverter_voltage_l2", n(231.0)),
        ("inverter_voltage_l3", n(229.0)),
        ("inverter_current_l1", n(10.0)),
        ("inverter_current_l2", n(10.1)),
        ("inverter_current_l3", n(9.9)),
        ("inverter_power_l1", n(2300.0)),
        ("inverter_power_l2", n(2330.0)),
        ("inverter_power_l3", n(2270.0)),
        ("inverter_power", n(6900.0)),
        ("inverter_frequency", n(50.0)),
        ("ups_load_power_l1", n(300.0)),
        ("ups_load_power_l2", n(200.0)),
        ("ups_load_power_l3", n(100.0)),
        ("ups_load_power", n(600.0)),
        ("load_voltage_l1", n(230.0)),
        ("load_voltage_l2", n(230.5)),
        ("load_voltage_l3", n(229.5)),
        ("load_power_l1", n(1200.0)),
        ("load_power_l2", n(800.0)),
        ("load_power_l3", n(500.0)),
        ("load_power", n(2500.0)),
        ("load_frequency", n(50.0)),
        ("load_energy_today", n(30.0)),
        ("load_energy_total", n(2942.0)),
        ("generator_voltage_l1", n(220.0)),
        ("generator_voltage_l2", n(0.0)),
        ("generator_voltage_l3", n(0.0)),
        ("gen_port_power_l1", n(1000.0)),
        ("gen_port_power_l2", n(0.0)),
        ("gen_port_power_l3", n(0.0)),
        ("gen_port_power", n(1000.0)),
        ("generator_energy_today", n(3.0)),
        ("generator_energy_total", n(120.0)),
        ("dc_transformer_temperature", n(35.0)),
        ("ac_radiator_temperature", n(42.0)),
        ("self_check_time", n(60.0)),
        ("battery_control_mode", t("Lithium")),
        ("battery_capacity", n(100.0)),
        ("battery_max_charge_current", n(50.0)),
        ("battery_max_discharge_current", n(50.0)),
        ("battery_operation_mode", t("Capacity")),
        ("battery_shutdown_soc", n(10.0)),
        ("battery_restart_soc", n(30.0)),
        ("battery_low_soc", n(20.0)),
        ("grid_charge_start_soc", n(40.0)),
        ("grid_charge_current", n(40.0)),
        ("generator_charge_enabled", b(false)),
        ("grid_charge_enabled", b(true)),
        ("energy_pattern", t("Load first")),
        ("work_mode", t("Zero export to CT")),
        ("max_sell_power", n(25000.0)),
        ("solar_sell", b(true)),
        ("time_of_use_enabled", b(true)),
        ("grid_peak_shaving_power", n(10000.0)),
        ("max_solar_power", n(30000.0)),
        ("program_1_charge_source", t("Grid")),
    ];
    let mut e: Vec<(String, Value)> = fixed.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (i, time) in [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2300.0].into_iter().enumerate() {
        let k = |what: &str| format!("program_{}_{what}", i + 1);
        e.push((k("start_time"), n(time)));
        e.push((k("power"), n(25000.0)));
        e.push((k("soc"), n(20.0 + 10.0 * i as f64)));
        if i > 0 {
            e.push((k("charge_source"), t("None")));
        }
    }
    e
}

/// Decodes `table` and returns every reading's value by key; any decode error fails the test.
fn decode(table: &Table) -> BTreeMap<String, Value> {
    let profile = profile();
    let (readings, errors) = profile.decode(&table.registers());
    assert!(errors.is_empty(), "decode errors: {errors:?}");
    readings.into_iter().map(|r| (profile.readings[r.index].def.key.clone(), r.value)).collect()
}

#[test]
fn every_reading_decodes_to_its_value() {
    let expected = expected();
    let expected: Vec<(&str, Value)> = expected.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    super::assert_decodes_to(&profile(), &house().registers(), &expected);
}

/// Daily and lifetime energy registers (low and high word) of the profile.
const DAILY: [u16; 7] = [514, 515, 520, 521, 526, 529, 536];
const TOTALS: [(u16, u16); 7] =
    [(516, 517), (518, 519), (522, 523), (524, 525), (527, 528), (534, 535), (537, 538)];

/// The house with the same energy as `house()`, as a control board before build 1098 counts
/// it: 0.1 kWh per bit, ten times the raw value.
fn house_on_build_1095() -> Table {
    let mut old = house();
    old.set(BUILD, 0x1095);
    for addr in DAILY {
        let raw = i32::from(old.0[usize::from(addr)]);
        old.set(addr, raw * 10);
    }
    for (lo, hi) in TOTALS {
        let raw = i64::from(old.0[usize::from(lo)]) | i64::from(old.0[usize::from(hi)]) << 16;
        old.set32(lo, hi, raw * 10);
    }
    old
}

#[test]
fn builds_before_1098_count_energy_in_tenths() {
    let old = house_on_build_1095();
    assert_eq!(old.0[529], 420, "the table itself holds tenths");
    let got = decode(&old);
    assert_eq!(got["pv_energy_today"], n(42.0));
    assert_eq!(got["pv_energy_total"], n(70000.0));
    assert_eq!(got["grid_import_today"], n(5.0));
    assert_eq!(got["grid_export_total"], n(5327.0));
    // Power is not an energy counter: it keeps its scale on every build.
    assert_eq!(got["pv1_power"], n(6400.0));
    // A later build keeps the new unit: 0x1122 is above 0x1098.
    let mut later = house();
    later.set(BUILD, 0x1122);
    assert_eq!(decode(&later)["pv_energy_total"], n(70000.0));
}

#[test]
fn every_energy_counter_follows_the_firmware_build() {
    let profile = profile();
    for spec in profile.readings.iter().filter(|s| s.def.counter.is_some()) {
        let when = spec.def.scale_when.as_ref();
        assert!(
            when.is_some_and(|w| w.register == BUILD && w.holds(KWH_BUILD) && !w.holds(KWH_BUILD - 1)),
            "`{}` must switch scale at build 1098",
            spec.def.key
        );
    }
}

#[test]
fn the_simulator_writes_what_decoding_reads_on_either_build() {
    // Encoding picks the scale from the build register already in the image, as decoding does.
    let profile = profile();
    let spec = &profile.readings[profile.index_of("pv_energy_total").unwrap()];
    for (build, raw) in [(0x1095u16, 12_345u32), (KWH_BUILD, 1_235)] {
        let mut regs = vec![0u16; 800];
        regs[usize::from(BUILD)] = build;
        spec.encode(&n(1234.5), &mut regs).unwrap();
        assert_eq!(u32::from(regs[534]) | u32::from(regs[535]) << 16, raw, "build {build:#x}");
        let mut set = RegisterSet::new();
        set.insert(RegisterBlock { start: 0, values: regs });
        let back = if build == KWH_BUILD { 1235.0 } else { 1234.5 };
        assert_eq!(spec.decode(&set).unwrap(), n(back));
    }
}

#[test]
fn device_types_cover_the_hv_codes_of_the_maps() {
    assert_eq!(profile().header.device_types, [6, 7, 8, 0x0600, 0x0601]);
}

#[test]
fn the_map_is_read_in_a_few_requests() {
    // 0-117, 127-226, 340, 500-624, 627-730: the high words (687-708) and PV5-8 (727-730)
    // ride along with the low words instead of costing reads of their own.
    let plan = profile().plan();
    assert!(plan.iter().all(|b| b.count <= 125));
    assert_eq!(plan.len(), 5, "plan: {plan:?}");
}

#[test]
fn a_firmware_update_between_polls_keeps_every_counter_accepted() {
    use crate::quality::Quality;
    let profile = profile();
    let local = chrono::NaiveDate::from_ymd_opt(2024, 12, 4).unwrap().and_hms_opt(13, 30, 15).unwrap();
    let now = chrono::Utc::now();
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(600));
    let mut poll = |table: &Table, minutes: i64| {
        let (readings, errors) = profile.decode(&table.registers());
        assert!(errors.is_empty(), "{errors:?}");
        let at = chrono::Duration::minutes(minutes);
        quality.filter(&profile, readings, now + at, local + at).rejected
    };
    // The house passes every range and rule on the old build, and after the update to 1098 the
    // raw energy words fall tenfold while every counter carries on from where it was.
    assert_eq!(poll(&house_on_build_1095(), 0), []);
    assert_eq!(poll(&house(), 1), []);
    // Ignoring the build would read a tenth of the lifetime counters: backwards, so rejected.
    let mut unaware = house();
    unaware.set(BUILD, 0x1095);
    let rejected = poll(&unaware, 2);
    let total_keys: BTreeSet<&str> =
        rejected.iter().filter_map(|r| r.index).map(|i| profile.readings[i].def.key.as_str()).collect();
    assert!(
        total_keys.contains("pv_energy_total") && total_keys.contains("grid_import_total"),
        "{rejected:?}"
    );
}

#[test]
fn a_32_bit_word_pair_out_of_step_is_rejected_per_phase() {
    // kellerza/sunsynk#398: low word already negative (-16 W), high word still 0.
    use crate::quality::Quality;
    let profile = profile();
    let mut spiky = house();
    spiky.set32(622, 687, 0xFFF0);
    let (readings, _) = profile.decode(&spiky.registers());
    let index = profile.index_of("grid_power_l1").unwrap();
    assert!(readings.iter().any(|r| r.index == index && r.value == n(65520.0)));
    let local = chrono::NaiveDate::from_ymd_opt(2024, 12, 4).unwrap().and_hms_opt(13, 30, 15).unwrap();
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(600));
    let verdict = quality.filter(&profile, readings, chrono::Utc::now(), local);
    assert!(verdict.rejected.iter().any(|r| r.index == Some(index)), "{:?}", verdict.rejected);
}

#[test]
fn a_glitching_total_register_does_not_matter() {
    // A total's range (±90000 W) holds a torn 32-bit word: 40 kW read with a stale high word of
    // 0xFFFF is 40000 − 65536 = −25536 W, a plausible export. The totals are sums of their
    // phases, so garbage in their old registers changes nothing.
    use crate::quality::Quality;
    let profile = profile();
    let mut glitchy = house();
    for (lo, hi) in [(625, 690), (607, 703), (619, 708), (636, 694), (643, 699), (653, 659), (667, 671)] {
        glitchy.set32(lo, hi, 40_000 - 65_536);
        assert!(!profile.addresses().any(|a| a == lo || a == hi), "{lo}/{hi} still mapped");
    }
    let expected = expected();
    let expected: Vec<(&str, Value)> = expected.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    super::assert_decodes_to(&profile, &glitchy.registers(), &expected);
    let local = chrono::NaiveDate::from_ymd_opt(2024, 12, 4).unwrap().and_hms_opt(13, 30, 15).unwrap();
    let mut quality = Quality::new(profile.readings.len(), std::time::Duration::from_secs(600));
    let (readings, _) = profile.decode(&glitchy.registers());
    assert_eq!(quality.filter(&profile, readings, chrono::Utc::now(), local).rejected, []);
    assert_eq!(super::three_phase_totals(&profile), 7);
}

#[test]
fn a_glitching_phase_leaves_its_total_out() {
    // The sum never takes an out-of-range input, so a torn phase cannot become a torn total.
    let mut spiky = house();
    spiky.set32(650, 656, 0xFFF0);
    let got = decode(&spiky);
    assert_eq!(got["load_power_l1"], n(65520.0));
    assert!(!got.contains_key("load_power"), "{:?}", got.get("load_power"));
    assert_eq!(got["grid_power"], n(40000.0));
}
