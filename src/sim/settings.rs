//! The inverter settings the simulated house obeys, read from the simulator's register image
//! through the profile, by key: battery currents, work mode and export limit, grid charging by
//! the time-of-use table.
//!
//! Reading by key rather than by address is what makes every family whose profile names these
//! settings react to writes, at whatever registers it keeps them; a family without them (micro,
//! string) gets [`Settings::default`], which limits nothing. This module only translates; the
//! rules live in [`super::house`], and it must not touch the house or the image.

use std::sync::Arc;

use super::house::{GridCharge, Settings, Slot};
use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};

/// The work mode that sells to the grid without the solar-sell switch; the zero-export modes
/// sell only with it.
const EXPORT_FIRST: &str = "Export first";

/// The settings image `regs` (registers from 0) holds for `profile`. `battery_series` is the
/// family's battery voltage multiple ([`super::Family::battery_series`]): an HV battery's
/// amperes carry that many times the power of the house's 48 V stack's.
pub(crate) fn read(profile: &Profile, regs: &[u16], battery_series: f64) -> Settings {
    let mut set = RegisterSet::new();
    set.insert(RegisterBlock { start: 0, values: regs.to_vec() });
    let image = Image { profile, set };
    let amps = |key: &str| image.number(key).map(|a| a * battery_series.max(1.0));
    Settings {
        max_charge_a: amps("battery_max_charge_current"),
        max_discharge_a: amps("battery_max_discharge_current"),
        export_limit_w: image.export_limit(),
        grid_charge: image.grid_charge(battery_series.max(1.0)),
    }
}

/// A register image and the profile that decodes it.
struct Image<'a> {
    profile: &'a Profile,
    set: RegisterSet,
}

impl Image<'_> {
    /// The value of `key`, if the profile has it and it decodes.
    fn value(&self, key: &str) -> Option<Value> {
        let index = self.profile.index_of(key)?;
        self.profile.readings[index].decode(&self.set).ok()
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.value(key)?.as_f64()
    }

    fn text(&self, key: &str) -> Option<Arc<str>> {
        match self.value(key)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    fn flag(&self, key: &str) -> Option<bool> {
        match self.value(key)? {
            Value::Bool(on) => Some(on),
            _ => None,
        }
    }

    /// The max sell power where selling is allowed (export first, or solar sell on), else 0;
    /// `None` when the profile has neither a work mode nor a max sell power.
    fn export_limit(&self) -> Option<f64> {
        let mode = self.text("work_mode");
        let sell = self.number("max_sell_power");
        if mode.is_none() && sell.is_none() {
            return None;
        }
        let selling = mode.is_none_or(|m| &*m == EXPORT_FIRST) || self.flag("solar_sell") == Some(true);
        Some(if selling { sell.unwrap_or(f64::INFINITY) } else { 0.0 })
    }

    /// Grid charging, when both grid charge and time of use are on and the table has slots.
    fn grid_charge(&self, battery_series: f64) -> Option<GridCharge> {
        let on = self.flag("grid_charge_enabled")? && self.flag("time_of_use_enabled")?;
        let current_a = self.number("grid_charge_current")? * battery_series;
        let slots: Vec<Slot> = (1..).map_while(|n| self.slot(n)).collect();
        (on && !slots.is_empty()).then_some(GridCharge { current_a, slots })
    }

    /// Time-of-use slot `n` (from 1), while the profile has one.
    fn slot(&self, n: u32) -> Option<Slot> {
        let start = self.number(&format!("program_{n}_start_time"))?;
        let source = self.text(&format!("program_{n}_charge_source"));
        Some(Slot {
            start_min: hhmm_minutes(start),
            soc: self.number(&format!("program_{n}_soc")).unwrap_or(100.0),
            grid: source.is_some_and(|s| s.to_ascii_lowercase().contains("grid")),
        })
    }
}

/// Minutes after midnight of a time written as HHMM (the inverter's 2359 is 23:59).
fn hhmm_minutes(hhmm: f64) -> u32 {
    let hhmm = hhmm.clamp(0.0, 2359.0) as u32;
    (hhmm / 100).min(23) * 60 + (hhmm % 100).min(59)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profiles;
    use crate::sim::registers;

    fn profile(id: &str) -> Arc<Profile> {
        Profiles::builtin().unwrap().get(id).unwrap()
    }

    /// The image a fresh simulator of `profile` starts with: defaults and the fixed facts.
    fn start_image(profile: &Profile) -> Vec<u16> {
        let mut regs = registers::defaults(profile, 1000);
        registers::apply(profile, &registers::fixed("2306178901"), &mut regs);
        regs
    }

    fn set(profile: &Profile, regs: &mut [u16], key: &str, value: Value) {
        let index = profile.index_of(key).unwrap();
        profile.readings[index].encode(&value, regs).unwrap();
    }

    #[test]
    fn sg01lp1_starts_selling_at_its_limits_without_grid_charge() {
        let sg01 = profile("deye_sg01lp1");
        let settings = read(&sg01, &start_image(&sg01), 1.0);
        assert_eq!(settings.max_charge_a, Some(120.0));
        assert_eq!(settings.max_discharge_a, Some(120.0));
        assert_eq!(settings.export_limit_w, Some(5000.0));
        assert_eq!(settings.grid_charge, None);
    }

    #[test]
    fn families_without_the_settings_limit_nothing() {
        for id in ["deye_micro", "deye_string"] {
            let family = profile(id);
            assert_eq!(read(&family, &start_image(&family), 1.0), Settings::default(), "{id}");
        }
    }

    #[test]
    fn zero_export_modes_sell_only_with_solar_sell() {
        let sg01 = profile("deye_sg01lp1");
        let mut regs = start_image(&sg01);
        set(&sg01, &mut regs, "work_mode", Value::Text("Zero export to CT".into()));
        assert_eq!(read(&sg01, &regs, 1.0).export_limit_w, Some(0.0));
        set(&sg01, &mut regs, "solar_sell", Value::Bool(true));
        set(&sg01, &mut regs, "max_sell_power", Value::Number(1200.0));
        assert_eq!(read(&sg01, &regs, 1.0).export_limit_w, Some(1200.0));
    }

    #[test]
    fn grid_charge_needs_both_switches_and_reads_the_slots() {
        let lp3 = profile("deye_sg04lp3");
        let mut regs = start_image(&lp3);
        set(&lp3, &mut regs, "grid_charge_current", Value::Number(40.0));
        set(&lp3, &mut regs, "grid_charge_enabled", Value::Bool(true));
        assert_eq!(read(&lp3, &regs, 1.0).grid_charge, None, "time of use is off");
        set(&lp3, &mut regs, "time_of_use_enabled", Value::Bool(true));
        set(&lp3, &mut regs, "program_2_start_time", Value::Number(130.0));
        set(&lp3, &mut regs, "program_2_soc", Value::Number(80.0));
        set(&lp3, &mut regs, "program_2_charge_source", Value::Text("Grid and generator".into()));
        let charge = read(&lp3, &regs, 2.0).grid_charge.unwrap();
        assert_eq!(charge.current_a, 80.0, "an HV battery's amperes in the house's 48 V terms");
        assert_eq!(charge.slots.len(), 6);
        assert_eq!(charge.slots[1], Slot { start_min: 90, soc: 80.0, grid: true });
        assert!(!charge.slots[0].grid);
    }

    #[test]
    fn hhmm_reads_as_minutes() {
        assert_eq!(hhmm_minutes(0.0), 0);
        assert_eq!(hhmm_minutes(130.0), 90);
        assert_eq!(hhmm_minutes(2359.0), 1439);
        assert_eq!(hhmm_minutes(99999.0), 1439);
    }
}
