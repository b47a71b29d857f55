//! The simulated house fitted to a profile's family, so `simulate --profile <id>` serves any
//! family consistently: the device-type code and layout word detection reads, a house sized to
//! the family's ratings, no battery where the family has none, HV battery voltages, and
//! three-phase readings split per phase from the house totals.
//!
//! Everything here is read from the profile itself (its `device_types`, its keys and their
//! ranges), never from a list of known families, so a profile added later is served too.

use std::sync::Arc;

use super::house::HouseParams;
use crate::profile::detect::{self, DeviceType};
use crate::profile::{Profile, Value};

/// PV strings the house model has.
const HOUSE_STRINGS: u8 = 2;

/// Highest string voltage of the house, V (ten-odd panels in series, on a cold bright day).
const HOUSE_STRING_MAX_V: f64 = 450.0;

/// Lowest battery voltage of the house, V (a 48 V LV stack).
const LV_BATTERY_MIN_V: f64 = 48.0;

/// Battery packs the house's battery is made of, where the family reports packs.
const HOUSE_PACKS: u8 = 2;

/// Per-phase readings and how a house total divides over three phases.
const PHASES: &[(&str, [&str; 3], Split)] = &[
    ("grid_voltage", ["grid_voltage_l1", "grid_voltage_l2", "grid_voltage_l3"], Split::Same),
    ("grid_power", ["grid_power_l1", "grid_power_l2", "grid_power_l3"], Split::Watts),
    ("grid_current", ["grid_current_l1", "grid_current_l2", "grid_current_l3"], Split::Share),
    (
        "grid_external_ct_power",
        ["grid_external_ct_power_l1", "grid_external_ct_power_l2", "grid_external_ct_power_l3"],
        Split::Watts,
    ),
    (
        "grid_external_ct_current",
        ["grid_external_ct_current_l1", "grid_external_ct_current_l2", "grid_external_ct_current_l3"],
        Split::Share,
    ),
    ("inverter_voltage", ["inverter_voltage_l1", "inverter_voltage_l2", "inverter_voltage_l3"], Split::Same),
    ("inverter_current", ["inverter_current_l1", "inverter_current_l2", "inverter_current_l3"], Split::Share),
    ("inverter_power", ["inverter_power_l1", "inverter_power_l2", "inverter_power_l3"], Split::Watts),
    ("load_voltage", ["load_voltage_l1", "load_voltage_l2", "load_voltage_l3"], Split::Same),
    ("load_current", ["load_current_l1", "load_current_l2", "load_current_l3"], Split::Share),
    ("load_power", ["load_power_l1", "load_power_l2", "load_power_l3"], Split::Watts),
];

/// How a total divides over phases.
#[derive(Debug, Clone, Copy)]
enum Split {
    /// Every phase shows the value (a voltage).
    Same,
    /// Whole watts, the remainder on L1, so the phases sum to the total exactly.
    Watts,
    /// A third each (a current).
    Share,
}

/// What the simulator must be to look like a profile's family.
#[derive(Debug, Clone)]
pub struct Family {
    /// The device-type code in register 0: the profile's first `device_types` entry.
    pub code: Option<u16>,
    /// MPPTs reported: the house's strings, at most the profile's PV inputs.
    pub mppts: u8,
    /// Phases: 3 when the profile maps `_l3` readings.
    pub phases: u8,
    /// Whether the family has a battery: the profile maps `battery_soc`.
    pub battery: bool,
    /// Battery voltage multiple: 1 for LV, more for an HV family whose `battery_voltage`
    /// minimum lies above an LV stack's voltage.
    pub battery_series: f64,
    /// Nameplate power: the house's default, lowered to fit the family's power ranges.
    pub rated_w: f64,
    /// Largest string power: a fifth below the family's `pv1_power` maximum.
    pub string_w: f64,
    /// PV voltage multiple: below 1 where the family's `pv1_voltage` maximum is below a
    /// house string's (a micro-inverter has one panel per input); currents rise to match.
    pub pv_volts: f64,
    /// Battery packs reported: the house's, where the profile maps packs and a battery.
    pub packs: u8,
    /// The device-type reading's text for `code`, when the profile has one.
    device_type: Option<Arc<str>>,
    /// Version readings (firmware) and their register counts: a version spread over several
    /// registers shows every one, so the house's one-register versions are padded to match.
    versions: Vec<(String, usize)>,
}

impl Family {
    /// The family of `profile`, for a house with `params`.
    pub fn of(profile: &Profile, params: &HouseParams) -> Self {
        let code = profile.header.device_types.first().copied();
        let max = |key: &str| profile.index_of(key).and_then(|i| profile.readings[i].def.max);
        let min = |key: &str| profile.index_of(key).and_then(|i| profile.readings[i].def.min);
        // Keep a fifth of headroom below the smallest power ceiling the family declares.
        let ceiling = ["rated_power", "inverter_power", "load_power"]
            .iter()
            .filter_map(|key| max(key))
            .filter(|m| *m > 0.0)
            .fold(f64::INFINITY, f64::min);
        let rated_w = params.rated_w.min(0.8 * ceiling);
        let string_w = max("pv1_power").filter(|m| *m > 0.0).map_or(f64::INFINITY, |m| 0.8 * m);
        let pv_volts =
            max("pv1_voltage").filter(|m| *m > 0.0).map_or(1.0, |m| (0.8 * m / HOUSE_STRING_MAX_V).min(1.0));
        // An HV family's battery_voltage minimum lies above an LV stack: put LV stacks in series.
        let battery_series = min("battery_voltage").map_or(1.0, |v| (v / LV_BATTERY_MIN_V).ceil().max(1.0));
        let device_type = code.and_then(|code| {
            let spec = &profile.readings[profile.index_of("device_type")?];
            spec.options.iter().find(|(raw, _)| *raw == i64::from(code)).map(|(_, text)| text.clone())
        });
        let battery = profile.index_of("battery_soc").is_some();
        Self {
            code,
            mppts: HOUSE_STRINGS.min(detect::pv_inputs(profile).max(1)),
            phases: detect::phases(profile),
            battery,
            packs: if battery { HOUSE_PACKS.min(profile.packs_mapped()) } else { 0 },
            battery_series,
            rated_w,
            string_w,
            pv_volts,
            device_type,
            versions: profile
                .readings
                .iter()
                .filter(|r| r.def.kind == crate::profile::Kind::Version && r.def.registers.len() > 1)
                .map(|r| (r.def.key.clone(), r.def.registers.len()))
                .collect(),
        }
    }

    /// `params` sized to the family: smaller strings and loads for a smaller inverter, no
    /// battery flows without a battery. The default house fits SG01LP1 unchanged.
    pub fn fit(&self, mut params: HouseParams) -> HouseParams {
        let scale = (self.rated_w / params.rated_w).min(1.0);
        params.rated_w = self.rated_w;
        params.pv_peak_w = params.pv_peak_w.map(|w| (w * scale).min(self.string_w));
        params.base_load_w *= scale;
        if !self.battery {
            params.max_charge_w = 0.0;
            params.max_discharge_w = 0.0;
        }
        params
    }

    /// The house's fixed facts ([`super::registers::fixed`]) as this family reports them: its
    /// MPPTs, phases, rating and device type, and firmware versions padded to the registers the
    /// family spreads them over. Each key once.
    pub fn facts(&self, mut values: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        for (key, value) in &mut values {
            let family = match *key {
                "mppts" => Some(Value::Number(f64::from(self.mppts))),
                "phases" => Some(Value::Number(f64::from(self.phases))),
                "rated_power" => Some(Value::Number(self.rated_w.round())),
                "device_type" => match (&self.device_type, self.code) {
                    (Some(text), _) => Some(Value::Text(text.clone())),
                    (None, Some(code)) => Some(Value::Number(f64::from(code))),
                    (None, None) => None,
                },
                _ => self.padded_version(key, value),
            };
            if let Some(family) = family {
                *value = family;
            }
        }
        values
    }

    /// `value` padded with `-0.0.0.0` to the registers of version reading `key`, if it is one.
    fn padded_version(&self, key: &str, value: &Value) -> Option<Value> {
        let (_, words) = self.versions.iter().find(|(k, _)| k == key)?;
        let Value::Text(text) = value else { return None };
        Some(Value::Text(format!("{text}{}", "-0.0.0.0".repeat(words - 1)).into()))
    }

    /// The house's values as this family reports them: HV battery voltages, and per-phase
    /// readings split from the totals on a three-phase family.
    pub fn adjust(&self, mut values: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        let series = self.battery_series;
        let unchanged = series == 1.0 && self.pv_volts == 1.0;
        for (key, value) in values.iter_mut().filter(|_| !unchanged) {
            if let Value::Number(v) = value {
                match *key {
                    "battery_voltage" | "bms_voltage" => *v *= series,
                    "battery_current" | "bms_current" => *v = (*v / series * 100.0).round() / 100.0,
                    "pv1_voltage" | "pv2_voltage" => *v *= self.pv_volts,
                    "pv1_current" | "pv2_current" => *v = (*v / self.pv_volts * 10.0).round() / 10.0,
                    _ => {}
                }
            }
        }
        if self.phases == 3 {
            let totals: Vec<(&str, [&'static str; 3], Split, f64)> = PHASES
                .iter()
                .filter_map(|(total, keys, split)| {
                    let value = values.iter().find(|(k, _)| k == &keys[0] || k == total)?;
                    Some((*total, *keys, *split, value.1.as_f64()?))
                })
                .collect();
            for (_, keys, split, total) in totals {
                values.retain(|(k, _)| !keys.contains(k));
                values.extend(keys.iter().zip(divide(total, split)).map(|(k, v)| (*k, Value::Number(v))));
            }
        }
        if self.packs > 0 {
            let packs = self.pack_values(&values);
            values.extend(packs);
        }
        values
    }

    /// The pack count and each pack's BMS data, from the house battery in `values` (already
    /// as this family reports it): packs in parallel share the voltage, their currents sum to
    /// the battery's, their SOCs lie around the house's.
    fn pack_values(&self, values: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
        let battery = |key: &str| values.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.as_f64());
        let (Some(volts), Some(amps), Some(soc), Some(temp)) = (
            battery("battery_voltage"),
            battery("battery_current"),
            battery("battery_soc"),
            battery("battery_temperature"),
        ) else {
            return Vec::new();
        };
        let n = Value::Number;
        let mut out = vec![("battery_pack_count", n(f64::from(self.packs)))];
        let currents = split_tenths(amps, self.packs);
        for (pack, current) in (1..=self.packs).zip(currents) {
            let Some(keys) = PACK_KEYS.get(usize::from(pack) - 1) else { break };
            let spread = f64::from(pack) - 1.5;
            out.extend([
                (keys[0], n((volts * 10.0).round() / 10.0)),
                (keys[1], n(current)),
                (keys[2], n(((temp + spread) * 10.0).round() / 10.0)),
                (keys[3], n(((soc - spread).clamp(0.0, 100.0) * 10.0).round() / 10.0)),
                (keys[4], n(100.0 - f64::from(pack))),
                (keys[5], n(120.0 + 5.0 * f64::from(pack))),
            ]);
        }
        out
    }

    /// Writes the device-type code, and the layout word where the profile maps no reading of
    /// its own, into `regs`.
    pub fn stamp(&self, profile: &Profile, regs: &mut [u16]) {
        let Some(code) = self.code else { return };
        if let Some(first) = regs.first_mut() {
            *first = code;
        }
        let layout = DeviceType { code, mppts: None, phases: None }.layout_register();
        if !profile.addresses().any(|a| a == layout)
            && let Some(word) = regs.get_mut(usize::from(layout))
        {
            *word = DeviceType::layout_word(self.mppts, self.phases);
        }
    }
}

/// The keys of the packs the house can have: voltage, current, temperature, SOC, SOH, cycles.
const PACK_KEYS: [[&str; 6]; HOUSE_PACKS as usize] = [
    [
        "battery_pack1_voltage",
        "battery_pack1_current",
        "battery_pack1_temperature",
        "battery_pack1_soc",
        "battery_pack1_soh",
        "battery_pack1_cycles",
    ],
    [
        "battery_pack2_voltage",
        "battery_pack2_current",
        "battery_pack2_temperature",
        "battery_pack2_soc",
        "battery_pack2_soh",
        "battery_pack2_cycles",
    ],
];

/// `total` amperes over `parts` packs in steps of 0.1 A, the remainder on the first, so the
/// parts sum to the total as the BMS would report it.
fn split_tenths(total: f64, parts: u8) -> Vec<f64> {
    let tenths = (total * 10.0).round();
    let each = (tenths / f64::from(parts.max(1))).trunc();
    let first = tenths - each * f64::from(parts.max(1) - 1);
    std::iter::once(first)
        .chain(std::iter::repeat_n(each, usize::from(parts.max(1) - 1)))
        .map(|t| t / 10.0)
        .collect()
}

/// `total` over three phases.
fn divide(total: f64, split: Split) -> [f64; 3] {
    match split {
        Split::Same => [total; 3],
        Split::Share => [total / 3.0; 3],
        Split::Watts => {
            let total = total.round();
            let each = (total / 3.0).trunc();
            [total - 2.0 * each, each, each]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profiles;

    #[test]
    fn the_default_house_fits_sg01lp1_unchanged() {
        let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let family = Family::of(&sg01, &HouseParams::default());
        assert_eq!((family.code, family.mppts, family.phases, family.battery), (Some(3), 2, 1, true));
        assert_eq!((family.battery_series, family.rated_w), (1.0, 5000.0));
        let fitted = family.fit(HouseParams::default());
        assert_eq!((fitted.pv_peak_w, fitted.max_charge_w), (HouseParams::default().pv_peak_w, 5000.0));
        let facts = super::super::registers::fixed("2306178901");
        assert_eq!(family.facts(facts.clone()), facts, "the house's facts are SG01LP1's own");
    }

    #[test]
    fn packs_share_the_voltage_and_their_currents_sum_to_the_battery() {
        let lp3 = Profiles::builtin().unwrap().get("deye_sg04lp3").unwrap();
        let family = Family::of(&lp3, &HouseParams::default());
        assert_eq!(family.packs, 2);
        let n = Value::Number;
        let house = vec![
            ("battery_voltage", n(52.37)),
            ("battery_current", n(-23.47)),
            ("battery_soc", n(64.0)),
            ("battery_temperature", n(21.0)),
        ];
        let values = family.adjust(house);
        let get = |key: &str| values.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.as_f64()).unwrap();
        assert_eq!(get("battery_pack_count"), 2.0);
        assert_eq!((get("battery_pack1_voltage"), get("battery_pack2_voltage")), (52.4, 52.4));
        assert_eq!(get("battery_pack1_current") + get("battery_pack2_current"), -23.5);
        assert_eq!((get("battery_pack1_soc"), get("battery_pack2_soc")), (64.5, 63.5));
        assert_eq!(split_tenths(-23.47, 2), [-11.8, -11.7]);
        let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        assert_eq!(Family::of(&sg01, &HouseParams::default()).packs, 0, "no packs mapped, none served");
    }

    #[test]
    fn three_phases_sum_to_the_total_and_share_the_voltage() {
        assert_eq!(divide(1001.4, Split::Watts), [335.0, 333.0, 333.0]);
        assert_eq!(divide(-1000.0, Split::Watts).iter().sum::<f64>(), -1000.0);
        assert_eq!(divide(230.5, Split::Same), [230.5; 3]);
        assert_eq!(divide(3.0, Split::Share), [1.0; 3]);
    }
}
