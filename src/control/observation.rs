//! What load control needs to know about the house, taken from one poll, and from the weather.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::poller::{PowerFlows, Snapshot};
use crate::profile::Value;
use crate::weather::WeatherSnapshot;

/// Nominal voltage of a 16-cell LiFePO4 bank: turns the inverter's Ah setting into Wh.
const NOMINAL_BATTERY_V: f64 = 51.2;
/// Below this grid voltage the grid counts as down (the original tool's threshold).
const GRID_DOWN_V: f64 = 90.0;

/// The house at one poll, in W with Deye's signs (battery + discharging, grid + importing).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// When the poll started.
    pub at: DateTime<Utc>,
    /// The inverter's wall clock: allowed hours and daily runtimes go by it.
    pub local: NaiveDateTime,
    /// Battery state of charge, %.
    pub soc: f64,
    /// PV power.
    pub pv: f64,
    /// House load, controlled loads included.
    pub load: f64,
    /// Grid power, + import.
    pub grid: f64,
    /// Battery power, + discharging.
    pub battery: f64,
    /// Whether the grid is there.
    pub grid_up: bool,
    /// The first alarm or fault flag that is set, by its display name.
    pub alarm: Option<String>,
    /// Usable battery energy in Wh, when known.
    pub battery_capacity_wh: Option<f64>,
    /// The inverter's rated AC power, W, when known: beyond it the grid supplies the house.
    pub rated_power: Option<f64>,
}

impl Observation {
    /// The observation in `snapshot`; `capacity_wh` overrides the profile's battery capacity.
    ///
    /// # Errors
    /// The keys of the readings a decision needs that this poll did not bring.
    pub fn from_snapshot(snapshot: &Snapshot, capacity_wh: Option<f64>) -> Result<Self, String> {
        let flows = PowerFlows::of(snapshot);
        let number = |key: &str| snapshot.get(key).and_then(Value::as_f64);
        let (soc, pv, load, grid, battery) = match flows {
            PowerFlows {
                battery_soc: Some(soc),
                pv: Some(pv),
                load: Some(load),
                grid: Some(grid),
                battery: Some(battery),
            } => (soc, pv, load, grid, battery),
            _ => {
                let missing = [
                    ("battery_soc", flows.battery_soc),
                    ("pv power", flows.pv),
                    ("load_power", flows.load),
                    ("grid_power", flows.grid),
                    ("battery_power", flows.battery),
                ];
                let names: Vec<&str> = missing.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
                return Err(format!("this poll has no {}", names.join(", ")));
            }
        };
        let grid_up = match snapshot.get("grid_connected") {
            Some(Value::Bool(up)) => *up,
            _ => number("grid_voltage").is_none_or(|v| v >= GRID_DOWN_V),
        };
        let alarm = snapshot
            .iter()
            .find(|(spec, value)| {
                matches!(spec.def.group.as_str(), "alarms" | "faults") && **value == Value::Bool(true)
            })
            .map(|(spec, _)| spec.def.name.clone());
        let from_profile = number("battery_capacity").filter(|ah| *ah > 0.0).map(|ah| ah * NOMINAL_BATTERY_V);
        Ok(Self {
            at: snapshot.time,
            local: snapshot.local,
            soc,
            pv,
            load,
            grid,
            battery,
            grid_up,
            alarm,
            battery_capacity_wh: capacity_wh.or(from_profile),
            rated_power: number("rated_power").filter(|w| *w > 0.0),
        })
    }

    /// PV minus load: what would go to the battery or the grid.
    pub fn surplus(&self) -> f64 {
        self.pv - self.load
    }
}

/// What the weather says about the PV to come; absent when the weather is unknown or stale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    /// Expected PV power now, W.
    pub pv_now_w: f64,
    /// Expected PV energy from now to the end of the day, Wh.
    pub pv_remaining_wh: f64,
    /// Hours of daylight left today.
    pub daylight_left_h: f64,
    /// Cloud cover, %.
    pub cloud_cover: f64,
}

impl Outlook {
    /// The outlook of a weather snapshot taken for `at`; `None` without a PV array to estimate.
    pub fn from_weather(weather: &WeatherSnapshot, at: DateTime<Utc>) -> Option<Self> {
        let daylight_left_h = match weather.sun.sunset {
            Some(sunset) => ((sunset - at).as_seconds_f64() / 3600.0).max(0.0),
            // The sun does not set today: up all day (polar day) or not at all (polar night).
            None if weather.sun.elevation_deg > 0.0 => 24.0,
            None => 0.0,
        };
        Some(Self {
            pv_now_w: weather.expected_pv_w?,
            pv_remaining_wh: weather.expected_pv_remaining_wh?,
            daylight_left_h,
            cloud_cover: weather.cloud_cover_pct,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::profile::{Profiles, Reading};
    use crate::sim::fixture;

    fn snapshot() -> Snapshot {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        fixture::snapshot(profile, "house", Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap())
    }

    fn set(snapshot: &mut Snapshot, key: &str, value: Value) {
        let index = snapshot.profile.index_of(key).unwrap();
        snapshot.readings.retain(|r| r.index != index);
        snapshot.readings.push(Reading { index, value });
    }

    #[test]
    fn a_poll_of_the_simulator_gives_a_whole_observation() {
        let snapshot = snapshot();
        let obs = Observation::from_snapshot(&snapshot, None).unwrap();
        assert_eq!(obs.soc, snapshot.get("battery_soc").and_then(Value::as_f64).unwrap());
        assert!(obs.grid_up);
        assert_eq!(obs.alarm, None);
        let ah = snapshot.get("battery_capacity").and_then(Value::as_f64).unwrap();
        assert_eq!(obs.battery_capacity_wh, Some(ah * NOMINAL_BATTERY_V));
        assert_eq!(
            Observation::from_snapshot(&snapshot, Some(7000.0)).unwrap().battery_capacity_wh,
            Some(7000.0)
        );
    }

    #[test]
    fn alarms_outages_and_missing_readings_are_seen() {
        let mut snapshot = snapshot();
        set(&mut snapshot, "alarm_fan", Value::Bool(true));
        set(&mut snapshot, "grid_connected", Value::Bool(false));
        let obs = Observation::from_snapshot(&snapshot, None).unwrap();
        assert_eq!(obs.alarm.as_deref(), Some("Alarm fan"));
        assert!(!obs.grid_up);
        let soc = snapshot.profile.index_of("battery_soc").unwrap();
        snapshot.readings.retain(|r| r.index != soc);
        assert_eq!(Observation::from_snapshot(&snapshot, None).unwrap_err(), "this poll has no battery_soc");
    }
}
