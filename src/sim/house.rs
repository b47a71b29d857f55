//! A plausible house behind a Deye single-phase hybrid inverter (SUN-5K-SG01LP1
//! class), owned here so the logger simulator has physically consistent values to
//! encode into Modbus registers.
//!
//! The model is pure and time-driven: every output is a function of the
//! parameters, the integrated state (SOC, energy counters, temperatures) and the
//! time. It must not do I/O, read the clock or use global randomness; noise comes
//! from a seeded hash of the time so runs are reproducible.

use std::f64::consts::PI;

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, Utc};

/// Fraction of DC PV power that reaches the AC side; the only loss the model has.
pub(crate) const INVERTER_EFFICIENCY: f64 = 0.97;

/// Longest integration step; short enough that SOC limits and counters stay smooth.
const STEP_S: i64 = 10;
/// Nameplate AC power of the default house: the output limit and the scale for inverter heating.
const RATED_W: f64 = 5000.0;
/// Below this a string is treated as dead: real MPPTs do not start on a trickle.
const MIN_PV_W: f64 = 5.0;
const SUNRISE_H: f64 = 6.0;
const SUNSET_H: f64 = 18.0;
/// East/west-ish orientation of the two strings, in hours of sun shift.
const STRING_SHIFT_H: [f64; 2] = [-0.25, 0.25];
/// Panel mismatch so the strings never report identical power.
const STRING_MISMATCH: [f64; 2] = [1.0, 0.98];
/// Maximum-power-point voltage at 25 °C; the strings have different panel counts.
const STRING_VMP: [f64; 2] = [410.0, 390.0];
/// Thermal time constant of battery and inverter, in minutes.
const THERMAL_TAU_MIN: f64 = 15.0;
/// "A year of use": pv, load, charge, discharge, import, export in kWh, chosen so
/// that they balance like the live counters do.
const YEAR_TOTALS_KWH: [f64; 6] = [7000.0, 5990.0, 2400.0, 2200.0, 1200.0, 1800.0];

// Noise channels, so different quantities never share a random sequence.
const CH_CLOUD: u64 = 1;
const CH_WEATHER: u64 = 2;
const CH_APPLIANCE: u64 = 3;
const CH_JITTER: u64 = 4;
const CH_PV_VOLT: u64 = 5;
const CH_GRID_V: u64 = 6;
const CH_GRID_F: u64 = 7;
const CH_FAST: u64 = 8;

/// Fixed parameters of the simulated house.
#[derive(Debug, Clone)]
pub struct HouseParams {
    /// Nameplate AC power, W: the output limit, the scale of inverter heating and of the
    /// appliance peaks (a 2 kW micro-inverter's house is smaller than a 5 kW hybrid's).
    pub rated_w: f64,
    /// Peak power per PV string, W.
    pub pv_peak_w: [f64; 2],
    /// Usable battery energy, Wh.
    pub battery_capacity_wh: f64,
    /// Charge power limit, W.
    pub max_charge_w: f64,
    /// Discharge power limit, W.
    pub max_discharge_w: f64,
    /// SOC % below which the battery stops discharging and the grid supplies.
    pub min_soc: f64,
    /// Always-on consumption, W.
    pub base_load_w: f64,
    /// Local time of the house; daily counters reset at its midnight.
    pub utc_offset: FixedOffset,
    /// Noise seed.
    pub seed: u64,
    /// SOC % at the start time.
    pub initial_soc: f64,
    /// A fixed cloud cover in % instead of the seeded weather: an overcast day on demand.
    pub cloud_cover: Option<f64>,
}

impl Default for HouseParams {
    fn default() -> Self {
        Self {
            rated_w: RATED_W,
            pv_peak_w: [3500.0, 3000.0],
            battery_capacity_wh: 10_240.0,
            max_charge_w: 5000.0,
            max_discharge_w: 5000.0,
            min_soc: 20.0,
            base_load_w: 350.0,
            // South Africa, where the original users live.
            utc_offset: FixedOffset::east_opt(2 * 3600).unwrap_or_else(|| Utc.fix()),
            seed: 1,
            initial_soc: 60.0,
            cloud_cover: None,
        }
    }
}

/// The inverter settings the house obeys, as written to its registers, in the house's units.
///
/// The default is an inverter that limits nothing beyond [`HouseParams`]: a house built without
/// settings behaves as it always did. The simulator reads these from its register image by key
/// (`super::settings`); the house only applies them, so every rule is testable without a wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settings {
    /// Battery charge current limit, A at the house's battery voltage; `None`: no limit.
    pub max_charge_a: Option<f64>,
    /// Battery discharge current limit, A at the house's battery voltage; `None`: no limit.
    pub max_discharge_a: Option<f64>,
    /// Most the house may export, W: the max sell power when selling is allowed, else 0;
    /// `None`: no limit. PV beyond it is curtailed.
    pub export_limit_w: Option<f64>,
    /// Grid charging by the time-of-use table; `None` when grid charge or time of use is off.
    pub grid_charge: Option<GridCharge>,
}

/// Charging the battery from the grid in the time-of-use slots that allow it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GridCharge {
    /// Grid charge current, A at the house's battery voltage.
    pub current_a: f64,
    /// The time-of-use slots in table order; each runs until the next one starts.
    pub slots: Vec<Slot>,
}

/// One time-of-use slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slot {
    /// Start, minutes after local midnight.
    pub start_min: u32,
    /// SOC %, the target the grid charges the battery up to.
    pub soc: f64,
    /// Whether the slot's charge source includes the grid.
    pub grid: bool,
}

impl GridCharge {
    /// The slot in force at `minute` of the local day: the last one started, and before the
    /// first start the last slot still runs from the day before, as on the inverter's table.
    fn slot_at(&self, minute: u32) -> Option<&Slot> {
        self.slots.iter().rev().find(|s| s.start_min <= minute).or_else(|| self.slots.last())
    }

    /// The SOC the grid charges up to now, if the slot in force charges from the grid.
    fn target(&self, hour: f64) -> Option<f64> {
        let minute = (hour * 60.0).floor().clamp(0.0, 1439.0) as u32;
        self.slot_at(minute).filter(|s| s.grid).map(|s| s.soc)
    }
}

/// Power limits for one step, W, from the parameters and the settings at the battery's voltage.
#[derive(Debug, Clone, Copy)]
struct Limits {
    charge_w: f64,
    discharge_w: f64,
    /// W the grid adds to the battery's charge, and the SOC it charges up to.
    grid_charge: Option<(f64, f64)>,
}

impl Limits {
    /// `wh_per_pct` is the power that moves the SOC by 1 % in this step.
    fn new(p: &HouseParams, settings: &Settings, soc: f64, hour: f64, wh_per_pct: f64) -> Self {
        let cap = |limit_w: f64, amps: Option<f64>, sign: f64| {
            amps.map_or(limit_w, |a| {
                // Discharging lowers the SOC and with it the voltage the current is reported at
                // after the step: convert at the step's end so the reported current stays within.
                let end = if sign > 0.0 { soc - a * open_circuit_v(soc) / wh_per_pct.max(1.0) } else { soc };
                limit_w.min(amps_to_w(a.max(0.0), end.max(0.0), sign))
            })
        };
        let grid_charge = settings.grid_charge.as_ref().and_then(|g| {
            let target = g.target(hour)?;
            (soc < target).then_some((amps_to_w(g.current_a.max(0.0), soc, -1.0), target))
        });
        Self {
            charge_w: cap(p.max_charge_w.max(0.0), settings.max_charge_a, -1.0),
            discharge_w: cap(p.max_discharge_w.max(0.0), settings.max_discharge_a, 1.0),
            grid_charge,
        }
    }
}

/// Everything the inverter would report at one instant, in physical units.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseState {
    /// Instant this state describes.
    pub time: DateTime<Utc>,
    /// W per string.
    pub pv_power: [f64; 2],
    /// V per string; 0 at night.
    pub pv_voltage: [f64; 2],
    /// A per string; power / voltage.
    pub pv_current: [f64; 2],
    /// W, house consumption.
    pub load_power: f64,
    /// W, + discharging / − charging (Deye convention).
    pub battery_power: f64,
    /// A, same sign as power.
    pub battery_current: f64,
    /// V, 48..57 depending on SOC and current.
    pub battery_voltage: f64,
    /// %, whole percent like the inverter reports.
    pub battery_soc: f64,
    /// °C.
    pub battery_temperature: f64,
    /// W, + import / − export.
    pub grid_power: f64,
    /// V, around 230.
    pub grid_voltage: f64,
    /// Hz, around 50.
    pub grid_frequency: f64,
    /// W, signed AC output of the inverter.
    pub inverter_power: f64,
    /// °C, DC side heat sink.
    pub dc_temperature: f64,
    /// °C, AC side heat sink.
    pub ac_temperature: f64,
    /// kWh produced by PV since local midnight.
    pub pv_energy_today: f64,
    /// kWh produced by PV ever.
    pub pv_energy_total: f64,
    /// kWh consumed since local midnight.
    pub load_energy_today: f64,
    /// kWh consumed ever.
    pub load_energy_total: f64,
    /// kWh into the battery since local midnight.
    pub battery_charge_today: f64,
    /// kWh into the battery ever.
    pub battery_charge_total: f64,
    /// kWh out of the battery since local midnight.
    pub battery_discharge_today: f64,
    /// kWh out of the battery ever.
    pub battery_discharge_total: f64,
    /// kWh imported since local midnight.
    pub grid_import_today: f64,
    /// kWh imported ever.
    pub grid_import_total: f64,
    /// kWh exported since local midnight.
    pub grid_export_today: f64,
    /// kWh exported ever.
    pub grid_export_total: f64,
}

/// The house: parameters plus the integrated state (SOC, counters).
#[derive(Debug, Clone)]
pub(crate) struct House {
    params: HouseParams,
    /// Unrounded SOC; the state only shows whole percent.
    soc: f64,
    /// Local day number of `state.time`, to detect midnight.
    day: i64,
    state: HouseState,
    /// What the outside world does to the house: loads switched by load control, outages.
    outside: Outside,
    /// What the inverter was told to do: current limits, export limit, grid charging.
    settings: Settings,
}

/// Conditions set from outside the model.
#[derive(Debug, Clone, Copy)]
struct Outside {
    /// W of switched consumer loads on top of the house's own.
    extra_load_w: f64,
    /// Whether the grid is there.
    grid_up: bool,
}

/// Instantaneous power flows, W, the part of the state everything else derives from.
#[derive(Debug, Clone, Copy)]
struct Flows {
    pv: [f64; 2],
    load: f64,
    battery: f64,
    grid: f64,
}

impl House {
    /// A house at `start` with counters that look like a year of use (totals start at plausible non-zero values, e.g. pv total 7000 kWh).
    pub(crate) fn new(params: HouseParams, start: DateTime<Utc>) -> Self {
        // Simulate from local midnight so the *_today counters are plausible too.
        let midnight = local_midnight(start, params.utc_offset);
        let mut house = Self {
            soc: params.initial_soc.clamp(0.0, 100.0),
            day: local_day(midnight, params.utc_offset),
            state: initial_state(&params, midnight),
            params,
            outside: Outside { extra_load_w: 0.0, grid_up: true },
            settings: Settings::default(),
        };
        house.advance(start);
        // The warm-up moved the SOC; the caller asked for this SOC *now*.
        house.soc = house.params.initial_soc.clamp(0.0, 100.0);
        house.resample();
        house
    }

    /// Obeys `settings` from now on; the instantaneous values show them at once, as a poll
    /// right after a write would see on the inverter.
    pub(crate) fn set_settings(&mut self, settings: Settings) {
        if settings != self.settings {
            self.settings = settings;
            self.resample();
        }
    }

    /// Recomputes the instantaneous values at the current time without integrating.
    fn resample(&mut self) {
        let t = self.state.time;
        let flows = Flows::at(&self.params, t, self.soc, step_hours(), self.outside, &self.settings);
        self.refresh(t, &flows, 0.0);
    }

    /// Integrates from the last time to `now` in steps of at most 10 s (so a jump of days works, and is still fast: a day should take well under 50 ms). Time going backwards is ignored.
    pub(crate) fn advance(&mut self, now: DateTime<Utc>) {
        while self.state.time < now {
            let next =
                self.state.time.checked_add_signed(TimeDelta::seconds(STEP_S)).map_or(now, |t| t.min(now));
            let dt_h = (next - self.state.time).as_seconds_f64() / 3600.0;
            self.step(next, dt_h);
        }
    }

    /// The current state (after the last advance).
    pub(crate) fn state(&self) -> &HouseState {
        &self.state
    }

    #[cfg(test)]
    /// The parameters.
    pub(crate) fn params(&self) -> &HouseParams {
        &self.params
    }

    #[cfg(test)]
    /// Switched consumer loads draw `watts` on top of the house's own load from now on.
    pub(crate) fn set_extra_load(&mut self, watts: f64) {
        self.outside.extra_load_w = watts.max(0.0);
    }

    #[cfg(test)]
    /// The grid goes away (`false`) or comes back: the battery then carries the house alone.
    pub(crate) fn set_grid_up(&mut self, up: bool) {
        self.outside.grid_up = up;
    }

    #[cfg(test)]
    /// Whether the grid is there.
    pub(crate) fn grid_up(&self) -> bool {
        self.outside.grid_up
    }

    /// One integration step ending at `next`, using the flows sampled there.
    fn step(&mut self, next: DateTime<Utc>, dt_h: f64) {
        let day = local_day(next, self.params.utc_offset);
        if day != self.day {
            reset_today(&mut self.state);
            self.day = day;
        }
        let flows = Flows::at(&self.params, next, self.soc, dt_h, self.outside, &self.settings);
        let delta = -flows.battery * dt_h / capacity_wh(&self.params) * 100.0;
        self.soc = (self.soc + delta).clamp(0.0, 100.0);
        add_energy(&mut self.state, &flows, dt_h);
        self.refresh(next, &flows, dt_h);
    }

    /// Rewrites the instantaneous fields; `dt_h` only drives the thermal lag.
    fn refresh(&mut self, t: DateTime<Utc>, flows: &Flows, dt_h: f64) {
        let p = &self.params;
        let s = &mut self.state;
        s.time = t;
        set_pv(s, p, t, flows);
        set_battery(s, self.soc, flows);
        set_grid(s, p, t, flows);
        set_temperatures(s, p, t, dt_h);
    }
}

impl Flows {
    /// Samples PV and load at `t` and dispatches the battery given the SOC and the settings.
    fn at(
        p: &HouseParams,
        t: DateTime<Utc>,
        soc: f64,
        dt_h: f64,
        outside: Outside,
        settings: &Settings,
    ) -> Self {
        let hour = local_hour(t, p.utc_offset);
        let minutes = epoch_minutes(t);
        let cloud = match p.cloud_cover {
            // Kasten and Czeplak's attenuation, the one the weather estimate uses too.
            Some(cover) => 1.0 - 0.75 * (cover / 100.0).clamp(0.0, 1.0).powf(3.4),
            None => cloud_factor(p.seed, minutes),
        };
        let pv = [0, 1].map(|i| string_power(p.pv_peak_w[i], hour + STRING_SHIFT_H[i], cloud, i));
        let load = load_w(p, hour, minutes) + outside.extra_load_w;
        let limits =
            Limits::new(p, settings, soc, hour, capacity_wh(p) / 100.0 / dt_h.max(f64::MIN_POSITIVE));
        let (battery, grid) = dispatch(p, &limits, soc, pv[0] + pv[1], load, dt_h);
        let mut flows = Self { pv, load, battery, grid };
        flows.clip_to_rating(p.rated_w);
        if let Some(limit) = settings.export_limit_w {
            flows.limit_export(limit);
        }
        if !outside.grid_up {
            flows.island(soc, capacity_wh(p) / 100.0 / dt_h.max(f64::MIN_POSITIVE));
        }
        flows
    }

    /// Without a grid the battery covers any import down to empty, and export is curtailed.
    fn island(&mut self, soc: f64, wh_per_pct: f64) {
        let available = soc.max(0.0) * wh_per_pct;
        self.battery = (self.battery + self.grid.max(0.0)).min(available);
        self.grid = 0.0;
    }

    /// Keeps the AC output within the inverter rating, as the real one does with
    /// its oversized 6.5 kWp array: first by discharging less, then by curtailing
    /// PV; the grid covers whatever the inverter no longer delivers.
    fn clip_to_rating(&mut self, rated_w: f64) {
        let pv_ac = (self.pv[0] + self.pv[1]) * INVERTER_EFFICIENCY;
        let excess = pv_ac + self.battery - rated_w;
        if excess <= 0.0 {
            return;
        }
        let less_discharge = excess.min(self.battery.max(0.0));
        self.battery -= less_discharge;
        let curtail = excess - less_discharge;
        let scale = if pv_ac > 0.0 { ((pv_ac - curtail) / pv_ac).clamp(0.0, 1.0) } else { 1.0 };
        self.pv = self.pv.map(|w| w * scale);
        self.grid += excess;
    }

    /// Keeps export within `limit_w` by curtailing PV, as zero export and the max sell power
    /// do on the inverter: the battery already took what it could, so the rest is not produced.
    fn limit_export(&mut self, limit_w: f64) {
        let excess = -self.grid - limit_w.max(0.0);
        if excess <= 0.0 {
            return;
        }
        let pv_ac = (self.pv[0] + self.pv[1]) * INVERTER_EFFICIENCY;
        let curtail = excess.min(pv_ac);
        let scale = if pv_ac > 0.0 { ((pv_ac - curtail) / pv_ac).clamp(0.0, 1.0) } else { 1.0 };
        self.pv = self.pv.map(|w| w * scale);
        self.grid += curtail;
    }

    /// Powers feeding the counters, in the order of `counters`: pv, load,
    /// charge, discharge, import, export (W, each non-negative).
    fn counter_powers(&self) -> [f64; 6] {
        let pv = self.pv[0] + self.pv[1];
        let (b, g) = (self.battery, self.grid);
        [pv, self.load, (-b).max(0.0), b.max(0.0), g.max(0.0), (-g).max(0.0)]
    }
}

/// Clear-sky-ish PV fraction 0..1 of peak at a local time of day (sun from ~06:00 to ~18:00, peak at noon), without clouds. Public so tests elsewhere can reason about it.
pub(crate) fn sun_fraction(local_hour: f64) -> f64 {
    let h = local_hour.rem_euclid(24.0);
    if !(SUNRISE_H..SUNSET_H).contains(&h) {
        return 0.0;
    }
    let x = (h - SUNRISE_H) / (SUNSET_H - SUNRISE_H);
    // The 1.5 power narrows the bell like air mass does in the morning/evening.
    (PI * x).sin().clamp(0.0, 1.0).powf(1.5)
}

/// DC power of one string, never above its peak.
fn string_power(peak: f64, hour: f64, cloud: f64, index: usize) -> f64 {
    let p = peak.max(0.0) * sun_fraction(hour) * cloud * STRING_MISMATCH[index];
    if p < MIN_PV_W { 0.0 } else { p }
}

/// Cloud attenuation in [0.3, 1]: smooth over ~30 min, with a day-scale
/// "weather" term so some days are clear and some overcast.
fn cloud_factor(seed: u64, minutes: f64) -> f64 {
    let weather = smooth_noise(seed, CH_WEATHER, minutes, 1440.0);
    let depth = 0.7 * (0.3 + 0.7 * weather);
    // Squaring biases towards clear sky, as passing clouds are the exception.
    1.0 - depth * smooth_noise(seed, CH_CLOUD, minutes, 30.0).powi(2)
}

/// House consumption: base, morning and evening appliance peaks, jitter.
fn load_w(p: &HouseParams, hour: f64, minutes: f64) -> f64 {
    let peak = window(hour, 6.5, 8.5).max(window(hour, 17.5, 21.5));
    // Kettle, geyser and stove come and go on a ~10 min scale, up to ~2.5 kW.
    let size = p.rated_w / RATED_W;
    let appliances = size * peak * (1200.0 + 1300.0 * smooth_noise(p.seed, CH_APPLIANCE, minutes, 10.0));
    let jitter = 60.0 * (smooth_noise(p.seed, CH_JITTER, minutes, 2.0) - 0.5);
    (p.base_load_w + appliances + jitter).max(0.0)
}

/// A sin² bump that is 0 outside `start..end` and 1 in its middle.
fn window(hour: f64, start: f64, end: f64) -> f64 {
    if hour <= start || hour >= end {
        return 0.0;
    }
    (PI * (hour - start) / (end - start)).sin().powi(2)
}

/// Splits the AC surplus or deficit between battery and grid; returns
/// (battery W, grid W) in Deye signs. Limits use the energy left for this step
/// so SOC lands exactly on 100 % or `min_soc` instead of overshooting. The
/// battery's share is capped by `limits`; the grid takes the rest either way.
fn dispatch(p: &HouseParams, limits: &Limits, soc: f64, pv: f64, load: f64, dt_h: f64) -> (f64, f64) {
    let wh_per_pct = capacity_wh(p) / 100.0 / dt_h.max(f64::MIN_POSITIVE);
    let surplus = pv * INVERTER_EFFICIENCY - load;
    if let Some((grid_w, target)) = limits.grid_charge {
        // A grid-charge slot: the battery holds and takes the surplus plus the grid charge,
        // up to the slot's SOC; the grid also carries the whole load.
        let room_w = (target.min(100.0) - soc).max(0.0) * wh_per_pct;
        let charge = (surplus.max(0.0) + grid_w).min(limits.charge_w).min(room_w);
        return (0.0 - charge, charge - surplus);
    }
    if surplus >= 0.0 {
        let room_w = (100.0 - soc).max(0.0) * wh_per_pct;
        let charge = surplus.min(limits.charge_w).min(room_w);
        // `0.0 -` rather than negation so an idle battery reports +0, not -0.
        return (0.0 - charge, charge - surplus);
    }
    let deficit = -surplus;
    let avail_w = (soc - p.min_soc).max(0.0) * wh_per_pct;
    let discharge = deficit.min(limits.discharge_w).min(avail_w);
    (discharge, deficit - discharge)
}

/// PV powers plus the MPP voltage and current of each string.
fn set_pv(s: &mut HouseState, p: &HouseParams, t: DateTime<Utc>, f: &Flows) {
    let ambient = ambient_c(local_hour(t, p.utc_offset));
    let wobble = 2.0 * signed_noise(p.seed, CH_PV_VOLT, epoch_minutes(t), 3.0);
    s.pv_power = f.pv;
    s.pv_voltage = [0, 1].map(|i| string_voltage(i, f.pv[i], p.pv_peak_w[i], ambient) + wobble);
    for (i, v) in s.pv_voltage.iter_mut().enumerate() {
        // A dead string shows no voltage, so its current is 0 rather than 0/0.
        if f.pv[i] <= 0.0 {
            *v = 0.0;
        }
        s.pv_current[i] = if *v > 0.0 { f.pv[i] / *v } else { 0.0 };
    }
}

/// MPP voltage of a string: it sags as modules heat up and at low light.
fn string_voltage(index: usize, power: f64, peak: f64, ambient: f64) -> f64 {
    let irradiance = (power / peak.max(1.0)).clamp(0.0, 1.0);
    let module_c = ambient + 30.0 * irradiance;
    let thermal = 1.0 - 0.0035 * (module_c - 25.0);
    STRING_VMP[index] * thermal * (0.9 + 0.1 * irradiance.sqrt())
}

/// Battery electrics: open-circuit voltage from SOC, ±1 V from internal resistance.
fn set_battery(s: &mut HouseState, soc: f64, f: &Flows) {
    s.battery_voltage = terminal_v(soc, f.battery);
    s.battery_current = f.battery / s.battery_voltage;
    s.battery_power = f.battery;
    s.battery_soc = soc.round();
    s.load_power = f.load;
}

/// Open-circuit voltage of the 48 V stack at `soc`.
fn open_circuit_v(soc: f64) -> f64 {
    48.0 + 8.0 * soc / 100.0
}

/// Terminal voltage at `soc` while `battery_w` flows (+ discharging): 10 mΩ of internal
/// resistance make discharging sag the voltage and charging lift it, by at most 1 V.
fn terminal_v(soc: f64, battery_w: f64) -> f64 {
    let open_circuit = open_circuit_v(soc);
    let sag = (battery_w / open_circuit * 0.01).clamp(-1.0, 1.0);
    (open_circuit - sag).clamp(48.0, 57.0)
}

/// The power `amps` make at `soc`, discharging (`sign` 1) or charging (-1): taken at the
/// terminal voltage of `amps` at the open-circuit voltage, which the capped power sags less,
/// so the current the house then reports never exceeds `amps`.
fn amps_to_w(amps: f64, soc: f64, sign: f64) -> f64 {
    amps * terminal_v(soc, sign * amps * open_circuit_v(soc))
}

/// Grid side: power, voltage (export pushes it up) and frequency.
fn set_grid(s: &mut HouseState, p: &HouseParams, t: DateTime<Utc>, f: &Flows) {
    let minutes = epoch_minutes(t);
    let fast = signed_noise(p.seed, CH_FAST, minutes, 1.0 / 6.0);
    let v = 232.0 + 2.5 * signed_noise(p.seed, CH_GRID_V, minutes, 7.0) + 0.5 * fast;
    s.grid_voltage = (v - 0.0003 * f.grid).clamp(228.0, 236.0);
    let hz = 50.0 + 0.03 * signed_noise(p.seed, CH_GRID_F, minutes, 3.0) + 0.01 * fast;
    s.grid_frequency = hz.clamp(49.95, 50.05);
    s.grid_power = f.grid;
    s.inverter_power = (f.pv[0] + f.pv[1]) * INVERTER_EFFICIENCY + f.battery;
}

/// Temperatures relax towards targets that rise with power and the time of day.
fn set_temperatures(s: &mut HouseState, p: &HouseParams, t: DateTime<Utc>, dt_h: f64) {
    let ambient = ambient_c(local_hour(t, p.utc_offset));
    let rated = p.rated_w.max(1.0);
    let dc_load = (s.pv_power[0] + s.pv_power[1] + s.battery_power.abs()) / rated;
    let ac_load = s.inverter_power.abs() / rated;
    let battery = 20.0 + 0.3 * (ambient - 20.0) + 6.0 * s.battery_power.abs() / rated;
    s.battery_temperature = relax(s.battery_temperature, battery, dt_h);
    s.dc_temperature = relax(s.dc_temperature, ambient + 8.0 + 18.0 * dc_load, dt_h);
    s.ac_temperature = relax(s.ac_temperature, ambient + 6.0 + 20.0 * ac_load, dt_h);
}

/// First-order lag, exact for any step length so big jumps stay stable.
fn relax(current: f64, target: f64, dt_h: f64) -> f64 {
    let k = 1.0 - (-dt_h * 60.0 / THERMAL_TAU_MIN).exp();
    current + (target - current) * k
}

/// Outdoor temperature: coolest around 03:00, warmest around 15:00.
fn ambient_c(hour: f64) -> f64 {
    20.0 + 6.0 * (PI * (hour - 9.0) / 12.0).sin()
}

/// The today/total counter pairs in the order of `Flows::counter_powers`.
fn counters(s: &mut HouseState) -> [(&mut f64, &mut f64); 6] {
    [
        (&mut s.pv_energy_today, &mut s.pv_energy_total),
        (&mut s.load_energy_today, &mut s.load_energy_total),
        (&mut s.battery_charge_today, &mut s.battery_charge_total),
        (&mut s.battery_discharge_today, &mut s.battery_discharge_total),
        (&mut s.grid_import_today, &mut s.grid_import_total),
        (&mut s.grid_export_today, &mut s.grid_export_total),
    ]
}

/// Adds one step of energy to every counter; powers are non-negative, so totals only grow.
fn add_energy(s: &mut HouseState, f: &Flows, dt_h: f64) {
    for ((today, total), w) in counters(s).into_iter().zip(f.counter_powers()) {
        let kwh = w.max(0.0) * dt_h / 1000.0;
        *today += kwh;
        *total += kwh;
    }
}

/// Local midnight: the daily counters start over.
fn reset_today(s: &mut HouseState) {
    for (today, _) in counters(s) {
        *today = 0.0;
    }
}

/// A state with a year of history and nothing flowing yet; `refresh` fills the rest.
fn initial_state(p: &HouseParams, time: DateTime<Utc>) -> HouseState {
    let ambient = ambient_c(local_hour(time, p.utc_offset));
    let [pv, load, charge, discharge, import, export] = YEAR_TOTALS_KWH;
    HouseState {
        time,
        pv_power: [0.0; 2],
        pv_voltage: [0.0; 2],
        pv_current: [0.0; 2],
        load_power: 0.0,
        battery_power: 0.0,
        battery_current: 0.0,
        battery_voltage: 48.0 + 8.0 * p.initial_soc.clamp(0.0, 100.0) / 100.0,
        battery_soc: p.initial_soc.clamp(0.0, 100.0).round(),
        battery_temperature: 20.0 + 0.3 * (ambient - 20.0),
        grid_power: 0.0,
        grid_voltage: 232.0,
        grid_frequency: 50.0,
        inverter_power: 0.0,
        dc_temperature: ambient + 8.0,
        ac_temperature: ambient + 6.0,
        pv_energy_today: 0.0,
        pv_energy_total: pv,
        load_energy_today: 0.0,
        load_energy_total: load,
        battery_charge_today: 0.0,
        battery_charge_total: charge,
        battery_discharge_today: 0.0,
        battery_discharge_total: discharge,
        grid_import_today: 0.0,
        grid_import_total: import,
        grid_export_today: 0.0,
        grid_export_total: export,
    }
}

/// Battery capacity guarded against zero, which would make SOC infinite.
fn capacity_wh(p: &HouseParams) -> f64 {
    p.battery_capacity_wh.max(1.0)
}

/// The nominal step in hours, used when sampling without integrating.
fn step_hours() -> f64 {
    STEP_S as f64 / 3600.0
}

/// Seconds since the epoch in the house's local time.
fn local_seconds(t: DateTime<Utc>, offset: FixedOffset) -> i64 {
    t.timestamp() + i64::from(offset.local_minus_utc())
}

/// Days since the epoch in local time; changes exactly at local midnight.
fn local_day(t: DateTime<Utc>, offset: FixedOffset) -> i64 {
    local_seconds(t, offset).div_euclid(86_400)
}

/// Local hour of day in [0, 24).
fn local_hour(t: DateTime<Utc>, offset: FixedOffset) -> f64 {
    let secs = local_seconds(t, offset).rem_euclid(86_400) as f64;
    (secs + f64::from(t.timestamp_subsec_nanos()) * 1e-9) / 3600.0
}

/// The UTC instant of the local midnight that starts `t`'s local day.
fn local_midnight(t: DateTime<Utc>, offset: FixedOffset) -> DateTime<Utc> {
    let secs = local_day(t, offset) * 86_400 - i64::from(offset.local_minus_utc());
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// Minutes since the epoch; the noise clock, independent of time zone.
fn epoch_minutes(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 60_000.0
}

/// The splitmix64 finaliser: a cheap, well-mixed 64-bit hash.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform value in [0, 1) for one lattice point of one channel.
fn lattice(seed: u64, channel: u64, index: i64) -> f64 {
    let h = splitmix64(splitmix64(seed ^ splitmix64(channel)) ^ index as u64);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Value noise in [0, 1]: lattice points every `period` minutes, smoothstep in
/// between, so the value depends only on time and never jumps.
fn smooth_noise(seed: u64, channel: u64, minutes: f64, period: f64) -> f64 {
    let x = minutes / period;
    let k = x.floor();
    let f = x - k;
    let (a, b) = (lattice(seed, channel, k as i64), lattice(seed, channel, k as i64 + 1));
    a + (b - a) * f * f * (3.0 - 2.0 * f)
}

/// `smooth_noise` mapped to [-1, 1].
fn signed_noise(seed: u64, channel: u64, minutes: f64, period: f64) -> f64 {
    2.0 * smooth_noise(seed, channel, minutes, period) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// 2024-06-10 local (+02:00) midnight.
    fn local_midnight_utc() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 9, 22, 0, 0).unwrap()
    }

    fn house_at(start: DateTime<Utc>) -> House {
        House::new(HouseParams::default(), start)
    }

    /// Runs `steps` advances of `step_s` seconds, calling `check(prev, next, house)`.
    fn run(house: &mut House, steps: usize, step_s: i64, mut check: impl FnMut(&HouseState, &House)) {
        for _ in 0..steps {
            let prev = house.state().clone();
            house.advance(prev.time + TimeDelta::seconds(step_s));
            check(&prev, house);
        }
    }

    fn totals(s: &HouseState) -> [f64; 6] {
        [
            s.pv_energy_total,
            s.load_energy_total,
            s.battery_charge_total,
            s.battery_discharge_total,
            s.grid_import_total,
            s.grid_export_total,
        ]
    }

    #[test]
    fn sun_fraction_shape() {
        assert_eq!(sun_fraction(0.0), 0.0);
        assert_eq!(sun_fraction(5.9), 0.0);
        assert_eq!(sun_fraction(18.0), 0.0);
        assert!((sun_fraction(12.0) - 1.0).abs() < 1e-12);
        assert!((sun_fraction(9.0) - sun_fraction(15.0)).abs() < 1e-12);
        assert!(sun_fraction(9.0) < sun_fraction(11.0));
        assert_eq!(sun_fraction(f64::NAN), 0.0);
        assert_eq!(sun_fraction(36.0), sun_fraction(12.0));
    }

    #[test]
    fn pv_zero_at_local_midnight_and_positive_at_noon() {
        let midnight = local_midnight_utc();
        let s = house_at(midnight).state().clone();
        assert_eq!(s.pv_power, [0.0, 0.0]);
        assert_eq!(s.pv_voltage, [0.0, 0.0]);
        assert_eq!(s.pv_current, [0.0, 0.0]);
        let noon = house_at(midnight + TimeDelta::hours(12)).state().clone();
        for i in 0..2 {
            // Clouds never take more than 70 %, so noon is always well lit.
            assert!(noon.pv_power[i] > 0.25 * HouseParams::default().pv_peak_w[i]);
            assert!((300.0..=420.0).contains(&noon.pv_voltage[i]), "{:?}", noon.pv_voltage);
            assert!((noon.pv_current[i] * noon.pv_voltage[i] - noon.pv_power[i]).abs() < 1e-6);
        }
        assert_ne!(noon.pv_power[0], noon.pv_power[1]);
    }

    #[test]
    fn utc_offset_moves_the_sun() {
        let utc_noon = Utc.with_ymd_and_hms(2024, 6, 10, 12, 0, 0).unwrap();
        let params =
            HouseParams { utc_offset: FixedOffset::east_opt(12 * 3600).unwrap(), ..Default::default() };
        // Local midnight in +12:00: no sun, while +02:00 sees 14:00.
        assert_eq!(House::new(params, utc_noon).state().pv_power, [0.0, 0.0]);
        assert!(house_at(utc_noon).state().pv_power[0] > 0.0);
    }

    #[test]
    fn clouds_are_bounded_and_change_slowly() {
        let start = epoch_minutes(local_midnight_utc());
        for m in 0..20_000 {
            let (a, b) = (cloud_factor(1, start + m as f64), cloud_factor(1, start + m as f64 + 1.0));
            assert!((0.3..=1.0).contains(&a));
            assert!((a - b).abs() / a.min(b) < 0.4, "cloud step {a} -> {b}");
        }
    }

    #[test]
    fn load_has_evening_peak_and_is_never_negative() {
        let p = HouseParams::default();
        let base = epoch_minutes(local_midnight_utc());
        assert!(load_w(&p, 19.5, base) > load_w(&p, 3.0, base) + 1000.0);
        for m in 0..1440 {
            let w = load_w(&p, m as f64 / 60.0, base + m as f64);
            assert!((0.0..=p.base_load_w + 2600.0).contains(&w), "{w}");
        }
        let zero = HouseParams { base_load_w: 0.0, ..Default::default() };
        assert!(load_w(&zero, 3.0, base) >= 0.0);
    }

    #[test]
    fn three_days_invariants() {
        let mut house = house_at(local_midnight_utc() + TimeDelta::hours(12));
        let p = house.params().clone();
        let mut resets = 0;
        run(&mut house, 3 * 8640, 10, |prev, h| {
            let s = h.state();
            assert!((0.0..=100.0).contains(&h.soc));
            // Starting above min_soc, discharge must stop at it.
            assert!(h.soc >= p.min_soc - 1.0, "soc {}", h.soc);
            for (a, b) in totals(prev).iter().zip(totals(s)) {
                assert!(b >= *a, "total decreased");
            }
            for i in 0..2 {
                assert!(s.pv_power[i] <= p.pv_peak_w[i] && s.pv_power[i] >= 0.0);
            }
            assert!((48.0..=57.0).contains(&s.battery_voltage));
            assert!((228.0..=236.0).contains(&s.grid_voltage));
            assert!((49.95..=50.05).contains(&s.grid_frequency));
            let midnight = local_day(s.time, p.utc_offset) != local_day(prev.time, p.utc_offset);
            assert_eq!(s.load_energy_today < prev.load_energy_today, midnight);
            resets += usize::from(midnight);
            assert!(s.battery_discharge_today <= s.battery_discharge_total);
        });
        assert_eq!(resets, 3);
    }

    #[test]
    fn power_balance_at_every_instant() {
        let mut house = house_at(local_midnight_utc());
        run(&mut house, 2 * 8640, 10, |_, h| {
            let s = h.state();
            let pv = s.pv_power[0] + s.pv_power[1];
            assert!((s.inverter_power - (pv * INVERTER_EFFICIENCY + s.battery_power)).abs() < 1.0);
            assert!((s.inverter_power + s.grid_power - s.load_power).abs() < 1.0);
            assert!((s.battery_current * s.battery_voltage - s.battery_power).abs() < 1.0);
            assert!(s.inverter_power <= RATED_W + 1e-6, "{}", s.inverter_power);
            // The battery never charges from the grid nor discharges into it.
            assert!(!(s.battery_power < -1.0 && s.grid_power > 1.0));
            assert!(!(s.battery_power > 1.0 && s.grid_power < -1.0));
        });
    }

    #[test]
    fn energy_balances_over_a_day_and_matches_soc() {
        let mut house = house_at(local_midnight_utc() + TimeDelta::minutes(1));
        let (before, soc_before) = (totals(house.state()), house.soc);
        house.advance(house.state().time + TimeDelta::days(1));
        let after = totals(house.state());
        let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        let sources = d[0] * INVERTER_EFFICIENCY + d[4] + d[3];
        let sinks = d[1] + d[5] + d[2];
        assert!(d[0] > 5.0 && d[1] > 5.0, "a day should see real energy: {d:?}");
        assert!((sources - sinks).abs() < 0.02 * sinks, "{sources} vs {sinks}");
        let stored_kwh = (house.soc - soc_before) / 100.0 * house.params().battery_capacity_wh / 1000.0;
        assert!((stored_kwh - (d[2] - d[3])).abs() < 0.01, "{stored_kwh} vs {d:?}");
    }

    #[test]
    fn battery_stops_at_min_soc_and_grid_takes_over() {
        let params = HouseParams { initial_soc: 23.0, ..Default::default() };
        let evening = local_midnight_utc() + TimeDelta::hours(18);
        let mut house = House::new(params, evening);
        let mut grid_took_over = false;
        run(&mut house, 6 * 360, 10, |_, h| {
            let s = h.state();
            assert!(h.soc >= 20.0 - 1e-9, "soc {}", h.soc);
            grid_took_over |= s.grid_power > 100.0 && s.battery_power == 0.0;
        });
        assert!(grid_took_over);
        assert_eq!(house.state().battery_soc, 20.0);
    }

    #[test]
    fn battery_never_exceeds_full() {
        let params = HouseParams { initial_soc: 98.0, base_load_w: 0.0, ..Default::default() };
        let mut house = House::new(params, local_midnight_utc() + TimeDelta::hours(10));
        let mut exported_when_full = false;
        run(&mut house, 4 * 360, 10, |_, h| {
            assert!(h.soc <= 100.0);
            exported_when_full |= h.soc >= 100.0 - 1e-9 && h.state().grid_power < -100.0;
        });
        assert!(exported_when_full);
    }

    #[test]
    fn deterministic_and_step_pattern_independent() {
        let start = local_midnight_utc() + TimeDelta::hours(5);
        let (mut a, mut b, mut c) = (house_at(start), house_at(start), house_at(start));
        let end = start + TimeDelta::days(2);
        a.advance(end);
        b.advance(end);
        assert_eq!(a.state(), b.state());
        // One big jump integrates in the same 10 s steps as many small advances.
        run(&mut c, 2 * 8640, 10, |_, _| {});
        assert_eq!(a.state(), c.state());
        let other = House::new(HouseParams { seed: 2, ..Default::default() }, start);
        assert_ne!(other.state(), house_at(start).state());
    }

    #[test]
    fn new_starts_at_start_with_history() {
        let start = local_midnight_utc() + TimeDelta::hours(15);
        let s = house_at(start).state().clone();
        assert_eq!(s.time, start);
        assert_eq!(s.battery_soc, 60.0);
        assert!(s.pv_energy_total >= 7000.0 && s.pv_energy_today > 1.0);
        assert!(s.load_energy_today > 1.0);
    }

    #[test]
    fn going_back_in_time_changes_nothing() {
        let start = local_midnight_utc() + TimeDelta::hours(8);
        let mut house = house_at(start);
        house.advance(start + TimeDelta::hours(2));
        let before = house.state().clone();
        house.advance(start);
        house.advance(start + TimeDelta::hours(1));
        assert_eq!(house.state(), &before);
        house.advance(before.time);
        assert_eq!(house.state(), &before);
    }

    /// A house at `start` obeying `settings`.
    fn obeying(params: HouseParams, start: DateTime<Utc>, settings: Settings) -> House {
        let mut house = House::new(params, start);
        house.set_settings(settings);
        house
    }

    fn pv_total(s: &HouseState) -> f64 {
        s.pv_power[0] + s.pv_power[1]
    }

    #[test]
    fn settings_that_bind_nothing_change_nothing() {
        // SG01LP1's settings as a fresh simulator starts: 120 A both ways, 5 kW export, no grid charge.
        let start = local_midnight_utc();
        let settings = Settings {
            max_charge_a: Some(120.0),
            max_discharge_a: Some(120.0),
            export_limit_w: Some(5000.0),
            grid_charge: None,
        };
        let (mut plain, mut set) = (house_at(start), obeying(HouseParams::default(), start, settings));
        run(&mut plain, 2 * 8640, 10, |_, _| {});
        run(&mut set, 2 * 8640, 10, |_, _| {});
        assert_eq!(plain.state(), set.state());
    }

    #[test]
    fn discharge_current_caps_the_battery_and_the_grid_covers_the_rest() {
        let evening = local_midnight_utc() + TimeDelta::hours(19);
        let settings = Settings { max_discharge_a: Some(10.0), ..Default::default() };
        let before = house_at(evening).state().clone();
        assert!(before.battery_current > 20.0, "the house discharges hard at 19:00: {before:?}");
        let mut house = obeying(HouseParams::default(), evening, settings);
        let mut both = 0;
        run(&mut house, 360, 10, |_, h| {
            let s = h.state();
            assert!(s.battery_current <= 10.0 + 1e-9, "{}", s.battery_current);
            assert!((s.inverter_power + s.grid_power - s.load_power).abs() < 1.0);
            both +=
                usize::from(s.battery_current > 9.9 && s.grid_power > s.load_power - s.battery_power - 1.0);
        });
        assert!(both > 300, "the battery gave its 10 A and the grid the rest: {both}");
    }

    #[test]
    fn charge_current_caps_the_battery_and_the_surplus_is_exported() {
        let noon = local_midnight_utc() + TimeDelta::hours(12);
        let params = HouseParams { initial_soc: 40.0, ..Default::default() };
        let settings = Settings { max_charge_a: Some(5.0), ..Default::default() };
        let mut house = obeying(params, noon, settings);
        run(&mut house, 360, 10, |_, h| {
            let s = h.state();
            assert!(s.battery_current >= -5.0 - 1e-9, "{}", s.battery_current);
            assert!(s.battery_current < -4.9 && s.grid_power < -500.0, "{s:?}");
        });
    }

    #[test]
    fn export_limit_curtails_pv() {
        let noon = local_midnight_utc() + TimeDelta::hours(12);
        let full = HouseParams { initial_soc: 100.0, ..Default::default() };
        let free = House::new(full.clone(), noon).state().clone();
        assert!(free.grid_power < -1000.0, "a full battery at noon exports: {free:?}");
        for limit in [0.0, 700.0] {
            let mut house =
                obeying(full.clone(), noon, Settings { export_limit_w: Some(limit), ..Default::default() });
            assert!(pv_total(house.state()) < pv_total(&free) - 500.0, "PV curtailed");
            run(&mut house, 360, 10, |_, h| {
                let s = h.state();
                assert!(s.grid_power >= -limit - 1e-6, "limit {limit}: {}", s.grid_power);
                assert!(
                    (s.inverter_power - (pv_total(s) * INVERTER_EFFICIENCY + s.battery_power)).abs() < 1.0
                );
                assert!((s.inverter_power + s.grid_power - s.load_power).abs() < 1.0);
            });
            assert!((house.state().grid_power + limit).abs() < 1.0, "exports up to the limit");
        }
    }

    #[test]
    fn grid_charges_in_a_grid_slot_up_to_its_soc() {
        let slot = |hour: u32, soc: f64, grid: bool| Slot { start_min: hour * 60, soc, grid };
        let charge = GridCharge { current_a: 40.0, slots: vec![slot(0, 80.0, true), slot(5, 20.0, false)] };
        let params = HouseParams { initial_soc: 30.0, ..Default::default() };
        let one_am = local_midnight_utc() + TimeDelta::hours(1);
        let mut house = obeying(params, one_am, Settings { grid_charge: Some(charge), ..Default::default() });
        let mut reached = false;
        // 01:00 to 05:00: charging from the grid at 40 A until 80 %, then holding.
        run(&mut house, 4 * 360 - 1, 10, |_, h| {
            let s = h.state();
            assert!(h.soc <= 80.2, "{}", h.soc);
            assert!(s.battery_current >= -40.0 - 1e-9, "{}", s.battery_current);
            if h.soc < 79.0 {
                assert!(s.battery_current < -39.0 && s.grid_power > s.load_power + 1500.0, "{s:?}");
            }
            reached |= h.soc >= 79.9;
        });
        assert!(reached, "soc {}", house.soc);
        // From 05:00 the slot charges from nothing: the battery carries the load again.
        run(&mut house, 60, 10, |_, h| assert!(h.state().battery_power > 0.0, "{:?}", h.state()));
    }

    #[test]
    fn the_slot_in_force_is_the_last_started_and_wraps_past_midnight() {
        let slot = |start_min: u32, soc: f64| Slot { start_min, soc, grid: true };
        let table =
            GridCharge { current_a: 1.0, slots: vec![slot(60, 10.0), slot(600, 20.0), slot(1200, 30.0)] };
        assert_eq!(table.slot_at(0).map(|s| s.soc), Some(30.0), "before the first start, yesterday's last");
        assert_eq!(table.slot_at(60).map(|s| s.soc), Some(10.0));
        assert_eq!(table.slot_at(599).map(|s| s.soc), Some(10.0));
        assert_eq!(table.slot_at(1439).map(|s| s.soc), Some(30.0));
        assert_eq!(GridCharge { current_a: 1.0, slots: vec![] }.target(12.0), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_steps_keep_invariants(
            steps in prop::collection::vec(1i64..7200, 1..30),
            soc in 0.0f64..100.0,
            hour in 0i64..24,
        ) {
            let params = HouseParams { initial_soc: soc, ..Default::default() };
            let mut house = House::new(params, local_midnight_utc() + TimeDelta::hours(hour));
            for secs in steps {
                let prev = totals(house.state());
                house.advance(house.state().time + TimeDelta::seconds(secs));
                for (a, b) in prev.iter().zip(totals(house.state())) {
                    prop_assert!(b >= *a);
                }
                prop_assert!((0.0..=100.0).contains(&house.soc));
                prop_assert!((0.0..=100.0).contains(&house.state().battery_soc));
            }
        }
    }
}
