//! `[control]` and `[[consumer]]`: the loads the service switches, and the policy it follows.
//!
//! The defaults reproduce the original tool's three rules (off below 40 % SOC with a negative
//! smoothed surplus; off below 45 % with the grid down and the battery giving ≥ 500 W; off while
//! the inverter imports from the grid), now with hysteresis and minimum on/off times.

use std::fmt;
use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use serde::Deserialize;

use super::{PayloadShape, SwitchConfig};

/// Settings shared by every consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Decide and publish, but send no command (the start value of the "Dry run" switch in HA).
    #[serde(default)]
    pub dry_run: bool,
    /// The inverter whose readings drive the decisions; default the first one.
    pub inverter: Option<String>,
    /// Time constant of the smoothing of surplus, load and grid power.
    #[serde(default = "default_smoothing", with = "humantime_serde")]
    pub smoothing: Duration,
    /// Usable battery energy in Wh; default: the profile's `battery_capacity` (Ah) × 51.2 V.
    pub battery_capacity: Option<f64>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { dry_run: false, inverter: None, smoothing: default_smoothing(), battery_capacity: None }
    }
}

fn default_smoothing() -> Duration {
    Duration::from_secs(300)
}

/// One load under automatic control.
///
/// The plug's keys repeat `[[switch]]`'s instead of flattening a `SwitchConfig` in: serde
/// cannot combine `flatten` with `deny_unknown_fields`, and a typo in a consumer must be an
/// error that names it. [`ConsumerConfig::switch`] turns them back into one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// A short name: part of topics and entity ids.
    pub name: String,
    /// Where the plug reports its state.
    pub state_topic: String,
    /// Where it takes commands.
    pub command_topic: String,
    /// The payload shape, as for `[[switch]]`.
    #[serde(default)]
    pub payload: PayloadShape,
    /// The position in a bank (`payload = "bank"` only).
    pub index: Option<usize>,
    /// The command word for on, as for `[[switch]]` (Shelly: `on`).
    pub payload_on: Option<String>,
    /// The command word for off (Shelly: `off`).
    pub payload_off: Option<String>,
    /// W the load draws when on.
    pub power: f64,
    /// Lower sheds last and starts first.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Shortest run once started.
    #[serde(default = "default_min_time", with = "humantime_serde")]
    pub min_on: Duration,
    /// Shortest rest once stopped.
    #[serde(default = "default_min_time", with = "humantime_serde")]
    pub min_off: Duration,
    /// Battery % below which the load is shed (while the house draws more than the PV gives).
    #[serde(default = "default_min_soc")]
    pub min_soc: f64,
    /// Percentage points above `min_soc` the battery must reach before the load starts again.
    #[serde(default = "default_soc_hysteresis")]
    pub soc_hysteresis: f64,
    /// Battery % below which the load is shed during a grid outage when the battery works hard.
    #[serde(default = "default_outage_soc")]
    pub outage_soc: f64,
    /// Battery W that counts as working hard during an outage.
    #[serde(default = "default_outage_battery_draw")]
    pub outage_battery_draw: f64,
    /// Smoothed grid import in W above which the load is shed (the inverter draws from the grid).
    #[serde(default = "default_grid_import_limit")]
    pub grid_import_limit: f64,
    /// W of smoothed PV surplus needed to start; set, the load runs on surplus only.
    pub surplus_start: Option<f64>,
    /// Smoothed surplus in W (its own draw included) below which a surplus-driven load stops;
    /// default `surplus_start - power`: the surplus that started it is gone.
    pub surplus_stop: Option<f64>,
    /// Longest run per day.
    #[serde(default, with = "humantime_serde")]
    pub max_daily_runtime: Option<Duration>,
    /// Shortest run per day, made up inside `off_peak` from the grid if the sun did not provide it.
    #[serde(default, with = "humantime_serde")]
    pub min_daily_runtime: Option<Duration>,
    /// The cheap-tariff window for `min_daily_runtime`, e.g. `"22:00-05:00"`.
    pub off_peak: Option<Hours>,
    /// When the load may run at all, e.g. `"06:00-22:00"`.
    pub allowed_hours: Option<Hours>,
    /// Whether automatic control starts enabled (the HA switch keeps the choice afterwards).
    #[serde(default = "default_true")]
    pub automatic: bool,
}

fn default_priority() -> u32 {
    1
}
fn default_min_time() -> Duration {
    Duration::from_secs(600)
}
fn default_min_soc() -> f64 {
    40.0
}
fn default_soc_hysteresis() -> f64 {
    5.0
}
fn default_outage_soc() -> f64 {
    45.0
}
fn default_outage_battery_draw() -> f64 {
    500.0
}
fn default_grid_import_limit() -> f64 {
    100.0
}
fn default_true() -> bool {
    true
}

impl ConsumerConfig {
    /// A consumer with every default, for tests and examples.
    pub fn new(name: &str, power: f64) -> Self {
        Self {
            name: name.into(),
            state_topic: format!("plugs/{name}/state"),
            command_topic: format!("plugs/{name}/set"),
            payload: PayloadShape::Plain,
            index: None,
            payload_on: None,
            payload_off: None,
            power,
            priority: default_priority(),
            min_on: default_min_time(),
            min_off: default_min_time(),
            min_soc: default_min_soc(),
            soc_hysteresis: default_soc_hysteresis(),
            outage_soc: default_outage_soc(),
            outage_battery_draw: default_outage_battery_draw(),
            grid_import_limit: default_grid_import_limit(),
            surplus_start: None,
            surplus_stop: None,
            max_daily_runtime: None,
            min_daily_runtime: None,
            off_peak: None,
            allowed_hours: None,
            automatic: true,
        }
    }

    /// The switch this consumer is: followed and commanded like any `[[switch]]`.
    pub fn switch(&self) -> SwitchConfig {
        SwitchConfig {
            name: self.name.clone(),
            state_topic: self.state_topic.clone(),
            command_topic: self.command_topic.clone(),
            payload: self.payload,
            index: self.index,
            payload_on: self.payload_on.clone(),
            payload_off: self.payload_off.clone(),
        }
    }

    /// The surplus below which a running surplus-driven load stops.
    pub fn stop_threshold(&self) -> Option<f64> {
        self.surplus_start.map(|start| self.surplus_stop.unwrap_or(start - self.power))
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        let valid_name = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Some(("name", format!("`{}` must be letters, digits, `_` or `-`", self.name)));
        }
        if let Some(problem) = self.switch().problem() {
            return Some(problem);
        }
        if !(self.power.is_finite() && self.power > 0.0) {
            return Some(("power", format!("{} W: must be the load's draw in W, above 0", self.power)));
        }
        let percent = |v: f64| (0.0..=100.0).contains(&v);
        if !percent(self.min_soc) {
            return Some(("min_soc", format!("{} is not a percentage", self.min_soc)));
        }
        if !(0.0..=50.0).contains(&self.soc_hysteresis) {
            return Some((
                "soc_hysteresis",
                format!("{} must be 0..=50 percentage points", self.soc_hysteresis),
            ));
        }
        if !percent(self.outage_soc) {
            return Some(("outage_soc", format!("{} is not a percentage", self.outage_soc)));
        }
        if let (Some(start), Some(stop)) = (self.surplus_start, self.stop_threshold())
            && stop >= start
        {
            return Some(("surplus_stop", format!("{stop} W must be below surplus_start ({start} W)")));
        }
        if let (Some(min), Some(max)) = (self.min_daily_runtime, self.max_daily_runtime)
            && min > max
        {
            return Some(("min_daily_runtime", "must not exceed max_daily_runtime".into()));
        }
        if self.min_daily_runtime.is_some() && self.off_peak.is_none() {
            return Some(("off_peak", "min_daily_runtime needs the window to make it up in".into()));
        }
        None
    }
}

/// A daily window of local time, `"HH:MM-HH:MM"`; it may wrap past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First minute inside.
    pub start: NaiveTime,
    /// First minute outside.
    pub end: NaiveTime,
}

impl Hours {
    /// Whether `time` is inside the window.
    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}–{:02}:{:02}",
            self.start.hour(),
            self.start.minute(),
            self.end.hour(),
            self.end.minute()
        )
    }
}

impl std::str::FromStr for Hours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a window like \"06:00-22:00\"");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let hours = Self { start: time(start)?, end: time(end)? };
        if hours.start == hours.end {
            return Err(format!("`{text}` is an empty window"));
        }
        Ok(hours)
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn windows_parse_and_may_wrap_midnight() {
        let day: Hours = "06:00-22:00".parse().unwrap();
        assert!(day.contains(at(6, 0)) && day.contains(at(21, 59)));
        assert!(!day.contains(at(22, 0)) && !day.contains(at(5, 59)));
        let night: Hours = "22:30 - 05:00".parse().unwrap();
        assert!(night.contains(at(23, 0)) && night.contains(at(4, 59)) && !night.contains(at(12, 0)));
        assert_eq!(night.to_string(), "22:30–05:00");
        assert_eq!("6-22".parse::<Hours>().unwrap_err(), "`6-22` is not a window like \"06:00-22:00\"");
        assert!("10:00-10:00".parse::<Hours>().is_err());
    }

    #[test]
    fn the_stop_threshold_defaults_to_the_start_minus_the_load() {
        let mut pump = ConsumerConfig::new("pump", 1200.0);
        assert_eq!(pump.stop_threshold(), None);
        pump.surplus_start = Some(1500.0);
        assert_eq!(pump.stop_threshold(), Some(300.0));
        pump.surplus_stop = Some(1600.0);
        assert_eq!(pump.problem().unwrap().0, "surplus_stop");
    }
}
