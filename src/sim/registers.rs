//! From the house model to register values: what the simulated inverter reports, by key.
//!
//! The mapping is written against the physical model, not against decoding, so a test that
//! compares decoded readings with these values checks encode, protocol and decode together.

use std::sync::Arc;

use chrono::{Datelike, Timelike};

use super::house::{HouseState, INVERTER_EFFICIENCY};
use crate::profile::{Profile, Value};

/// The value the simulated inverter reports for each key of the SG01LP1 profile it knows;
/// keys of other profiles, or not listed, read as their default.
pub(crate) fn values(state: &HouseState, local: chrono::NaiveDateTime) -> Vec<(&'static str, Value)> {
    let n = Value::Number;
    let grid_current = state.grid_power / state.grid_voltage.max(1.0);
    let load_current = state.load_power / state.grid_voltage.max(1.0);
    let inverter_current = state.inverter_power / state.grid_voltage.max(1.0);
    let mut values = vec![
        ("pv1_power", n(state.pv_power[0])),
        ("pv2_power", n(state.pv_power[1])),
        // A register on some families (string: 82-83), derived from the inputs on others.
        ("pv_power", n(state.pv_power[0] + state.pv_power[1])),
        ("pv1_voltage", n(state.pv_voltage[0])),
        ("pv2_voltage", n(state.pv_voltage[1])),
        ("pv1_current", n(state.pv_current[0])),
        ("pv2_current", n(state.pv_current[1])),
        ("pv_energy_today", n(state.pv_energy_today)),
        ("pv_energy_total", n(state.pv_energy_total)),
        // The AC energy the inverter generated: the panels' yield after conversion.
        ("active_energy_today", n(state.pv_energy_today * INVERTER_EFFICIENCY)),
        ("active_energy_total", n(state.pv_energy_total * INVERTER_EFFICIENCY)),
        ("battery_temperature", n(state.battery_temperature)),
        ("battery_voltage", n(state.battery_voltage)),
        ("battery_soc", n(state.battery_soc)),
        ("battery_power", n(state.battery_power)),
        ("battery_current", n(state.battery_current)),
        ("battery_charge_today", n(state.battery_charge_today)),
        ("battery_charge_total", n(state.battery_charge_total)),
        ("battery_discharge_today", n(state.battery_discharge_today)),
        ("battery_discharge_total", n(state.battery_discharge_total)),
        ("bms_soc", n(state.battery_soc)),
        ("bms_voltage", n(state.battery_voltage)),
        ("bms_current", n(state.battery_current.round())),
        ("grid_frequency", n(state.grid_frequency)),
        ("grid_voltage_l1", n(state.grid_voltage)),
        ("grid_voltage", n(state.grid_voltage)),
        ("grid_current_l1", n(grid_current)),
        ("grid_power_l1", n(state.grid_power)),
        ("grid_power", n(state.grid_power)),
        ("grid_external_ct_power_l1", n(state.grid_power)),
        ("grid_external_ct_power", n(state.grid_power)),
        ("grid_external_ct_current_l1", n(grid_current)),
        ("grid_import_today", n(state.grid_import_today)),
        ("grid_import_total", n(state.grid_import_total)),
        ("grid_export_today", n(state.grid_export_today)),
        ("grid_export_total", n(state.grid_export_total)),
        ("inverter_voltage_l1", n(state.grid_voltage)),
        ("inverter_voltage", n(state.grid_voltage)),
        ("inverter_current_l1", n(inverter_current)),
        ("inverter_power_l1", n(state.inverter_power)),
        ("inverter_power", n(state.inverter_power)),
        ("inverter_frequency", n(state.grid_frequency)),
        ("load_voltage_l1", n(state.grid_voltage)),
        ("load_current_l1", n(load_current)),
        ("load_power_l1", n(state.load_power)),
        ("load_power", n(state.load_power)),
        ("load_frequency", n(state.grid_frequency)),
        ("load_energy_today", n(state.load_energy_today)),
        ("load_energy_total", n(state.load_energy_total)),
        ("dc_transformer_temperature", n(state.dc_temperature)),
        ("ac_radiator_temperature", n(state.ac_temperature)),
    ];
    values.extend(clock(local));
    values
}

fn clock(local: chrono::NaiveDateTime) -> [(&'static str, Value); 6] {
    let n = |v: u32| Value::Number(f64::from(v));
    [
        ("clock_year", Value::Number(f64::from(local.year()))),
        ("clock_month", n(local.month())),
        ("clock_day", n(local.day())),
        ("clock_hour", n(local.hour())),
        ("clock_minute", n(local.minute())),
        ("clock_second", n(local.second())),
    ]
}

/// Facts about the simulated inverter that do not change: identity, settings, status.
pub(crate) fn fixed(serial: &str) -> Vec<(&'static str, Value)> {
    let n = Value::Number;
    let t = |s: &str| Value::Text(Arc::from(s));
    vec![
        ("device_type", t("Single-phase hybrid")),
        ("modbus_address", n(1.0)),
        ("protocol_version", t("0.1.0.2")),
        ("inverter_serial", t(serial)),
        ("control_board_firmware", t("1.1.5.3")),
        ("comm_board_firmware", t("1.0.2.7")),
        ("rated_power", n(5000.0)),
        ("mppts", n(2.0)),
        ("phases", n(1.0)),
        ("running_state", t("Normal")),
        ("grid_connected", Value::Bool(true)),
        ("inverter_on_off", t("On")),
        ("battery_capacity", n(200.0)),
        // The SUN-5K-SG01LP1's own 120 A: at the stack's 48 V and up that is above the
        // house's 5 kW battery limit, so the starting settings bind nothing.
        ("battery_max_charge_current", n(120.0)),
        ("battery_max_discharge_current", n(120.0)),
        ("battery_shutdown_soc", n(10.0)),
        ("battery_restart_soc", n(30.0)),
        ("battery_low_soc", n(20.0)),
        ("bms_charge_voltage", n(56.8)),
        ("bms_discharge_voltage", n(47.0)),
        ("bms_charge_current_limit", n(100.0)),
        ("bms_discharge_current_limit", n(100.0)),
        ("bms_max_charge_current", n(100.0)),
        ("bms_max_discharge_current", n(100.0)),
        ("battery_control_mode", t("Lithium")),
        ("battery_operation_mode", t("Capacity")),
        ("energy_pattern", t("Load first")),
        ("max_sell_power", n(5000.0)),
        ("max_solar_power", n(6500.0)),
    ]
}

/// A register image of `size` registers with every reading at its default: zero clamped into
/// its valid range, the first enum option, flags off, empty text.
pub(crate) fn defaults(profile: &Profile, size: usize) -> Vec<u16> {
    let mut regs = vec![0u16; size];
    for spec in &profile.readings {
        let value = match (&spec.options.first(), spec.def.bit, spec.def.kind.is_integer()) {
            (_, Some(_), _) => Value::Bool(false),
            (Some((_, text)), _, _) => Value::Text(text.clone()),
            (None, None, true) => {
                Value::Number(0f64.clamp(spec.def.min.unwrap_or(f64::MIN), spec.def.max.unwrap_or(f64::MAX)))
            }
            (None, None, false) => Value::Text(Arc::from("")),
        };
        let _ = spec.encode(&value, &mut regs);
    }
    regs
}

/// Writes `values` into `regs` for the readings `profile` has; unknown keys are skipped, so
/// the simulator serves any profile. Derived readings are skipped too: they have no registers,
/// the inverter reports their inputs.
pub(crate) fn apply(profile: &Profile, values: &[(&str, Value)], regs: &mut [u16]) {
    for (key, value) in values {
        if let Some(index) = profile.index_of(key).filter(|i| !profile.readings[*i].def.kind.is_derived()) {
            let _ = profile.readings[index].encode(value, regs);
        }
    }
}
