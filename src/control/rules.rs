//! What one consumer should be, from the house, the weather and its own settings, before minimum
//! times and priorities have their say. Eligibility comes first (hours, runtime, battery floor,
//! outage, grid import), then the decision (off-peak top-up, weather, surplus).

use std::time::Duration;

use chrono::Timelike;

use super::observation::{Observation, Outlook};
use crate::config::ConsumerConfig;

/// W below the rating plus the import limit that a start must leave free.
const RATING_HEADROOM: f64 = 200.0;

/// Whether a verdict is about the house as a whole (the battery, the grid, the sun), so that
/// consumers take turns by priority, or about this consumer alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Shared: battery, grid, surplus, weather.
    House,
    /// This consumer's own settings: hours, runtime limits, off-peak top-up.
    Own,
}

/// What the rules want for one consumer, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// On or off.
    pub on: bool,
    /// Whose business it is.
    pub cause: Cause,
    /// For people: the rule and the figures that decided.
    pub reason: String,
}

impl Verdict {
    fn new(on: bool, cause: Cause, reason: String) -> Self {
        Self { on, cause, reason }
    }
}

/// The house as smoothed over the last minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Smooth {
    /// PV minus load, W.
    pub surplus: f64,
    /// Grid power, + import, W.
    pub grid: f64,
    /// House load without the controlled loads that are on, W.
    pub base_load: f64,
    /// House load, W.
    pub load: f64,
    /// The highest base load of the last half hour, W.
    pub base_peak: f64,
}

/// The rules for consumer `c`, which is `on` now (unknown counts as off) and ran `runtime` today.
pub(crate) fn verdict(
    c: &ConsumerConfig,
    on: bool,
    obs: &Observation,
    smooth: &Smooth,
    outlook: Option<&Outlook>,
    runtime: Duration,
) -> Verdict {
    let time = obs.local.time();
    if let Some(hours) = c.allowed_hours.filter(|h| !h.contains(time)) {
        return Verdict::new(false, Cause::Own, format!("outside its allowed hours {hours}"));
    }
    if let Some(max) = c.max_daily_runtime.filter(|max| runtime >= *max) {
        return Verdict::new(
            false,
            Cause::Own,
            format!("ran {} today, its maximum is {}", span(runtime), span(max)),
        );
    }
    if let Some(verdict) = battery(c, on, obs, smooth) {
        return verdict;
    }
    if let (Some(min), Some(window)) = (c.min_daily_runtime, c.off_peak)
        && window.contains(time)
        && runtime < min
        && obs.grid_up
    {
        let reason = format!("off-peak top-up ({window}): ran {} of its {} today", span(runtime), span(min));
        return Verdict::new(true, Cause::Own, reason);
    }
    if let Some(verdict) = grid(c, on, obs, smooth) {
        return verdict;
    }
    if let Some(outlook) = outlook
        && let Some(verdict) = weather(c, on, obs, smooth, outlook)
    {
        return verdict;
    }
    match (c.surplus_start, c.stop_threshold()) {
        (Some(start), Some(stop)) => surplus(on, smooth.surplus, start, stop),
        _ if obs.soc >= c.min_soc => Verdict::new(
            true,
            Cause::House,
            format!("battery {} ≥ {}, no grid import", pct(obs.soc), pct(c.min_soc)),
        ),
        _ => Verdict::new(
            true,
            Cause::House,
            format!(
                "battery {} < {}, but the PV covers the house (surplus {})",
                pct(obs.soc),
                pct(c.min_soc),
                watts(smooth.surplus)
            ),
        ),
    }
}

/// The battery floor with its hysteresis band, and the reserve a run of `min_on` needs.
fn battery(c: &ConsumerConfig, on: bool, obs: &Observation, smooth: &Smooth) -> Option<Verdict> {
    let off = |reason| Some(Verdict::new(false, Cause::House, reason));
    if on {
        if obs.soc < c.min_soc && smooth.surplus < 0.0 {
            return off(format!(
                "battery {} < {} and the house draws {} more than the PV gives",
                pct(obs.soc),
                pct(c.min_soc),
                watts(-smooth.surplus)
            ));
        }
        return None;
    }
    let resume = c.min_soc + c.soc_hysteresis;
    if obs.soc < resume {
        return off(format!(
            "battery {} < {} (floor {} + {} hysteresis)",
            pct(obs.soc),
            pct(resume),
            pct(c.min_soc),
            pct(c.soc_hysteresis)
        ));
    }
    let capacity = obs.battery_capacity_wh?;
    let after = obs.soc - c.power * c.min_on.as_secs_f64() / 3600.0 / capacity * 100.0;
    (after < c.min_soc).then(|| {
        Verdict::new(
            false,
            Cause::House,
            format!(
                "a {} run would take the battery from {} to {}, below {}",
                span(c.min_on),
                pct(obs.soc),
                pct(after),
                pct(c.min_soc)
            ),
        )
    })
}

/// A grid outage while the battery works hard, and import from the grid while it is up.
fn grid(c: &ConsumerConfig, on: bool, obs: &Observation, smooth: &Smooth) -> Option<Verdict> {
    let off = |reason| Some(Verdict::new(false, Cause::House, reason));
    if !obs.grid_up {
        if on && obs.soc < c.outage_soc && obs.battery >= c.outage_battery_draw {
            return off(format!(
                "grid down, battery {} < {} and giving {}",
                pct(obs.soc),
                pct(c.outage_soc),
                watts(obs.battery)
            ));
        }
        let resume = c.outage_soc + c.soc_hysteresis;
        if !on && obs.soc < resume {
            return off(format!("grid down and battery {} < {}", pct(obs.soc), pct(resume)));
        }
        return None;
    }
    if smooth.grid > c.grid_import_limit {
        return off(format!(
            "the house draws {} from the grid (limit {})",
            watts(smooth.grid),
            watts(c.grid_import_limit)
        ));
    }
    // Past the inverter's rating the grid supplies the rest, and the load is shed once that is
    // more than the import limit. Judged by the house's peak of the last half hour: by its
    // average, a load starts between two kettles, imports at the next, is shed for it and
    // starts again after min_off, in a cycle. RATING_HEADROOM keeps start and shed apart.
    let peak = smooth.base_peak.max(smooth.base_load);
    let rated = obs
        .rated_power
        .filter(|rated| !on && peak + c.power > rated + c.grid_import_limit - RATING_HEADROOM)?;
    off(format!(
        "with the house's peak of {} it would need {} of the inverter's {}",
        watts(peak),
        watts(peak + c.power),
        watts(rated)
    ))
}

/// The weather's say: no morning start the PV of the rest of the day cannot pay back, no
/// surplus start on a sun break under a cloudy sky.
fn weather(c: &ConsumerConfig, on: bool, obs: &Observation, smooth: &Smooth, o: &Outlook) -> Option<Verdict> {
    if on {
        return None;
    }
    let off = |reason| Some(Verdict::new(false, Cause::House, reason));
    if let Some(start) = c.surplus_start {
        if o.pv_now_w < start {
            return off(format!(
                "cloud cover {} expects {} of PV now, below the {} it needs",
                pct(o.cloud_cover),
                watts(o.pv_now_w),
                watts(start)
            ));
        }
        return None;
    }
    let capacity = obs.battery_capacity_wh?;
    if obs.local.hour() >= 12 {
        return None;
    }
    let run_wh = c.power * c.min_on.as_secs_f64() / 3600.0;
    let house_wh = smooth.base_load * o.daylight_left_h;
    let evening = obs.soc + (o.pv_remaining_wh - house_wh - run_wh) / capacity * 100.0;
    let needed = c.min_soc + c.soc_hysteresis;
    (evening < needed).then(|| {
        Verdict::new(
            false,
            Cause::House,
            format!(
                "expected PV for the rest of today ({}) would leave the battery at {} by sunset with this load, below {}",
                energy(o.pv_remaining_wh),
                pct(evening.max(0.0)),
                pct(needed)
            ),
        )
    })
}

/// A surplus-driven load: on above `start`, off below `stop` (its own draw included).
fn surplus(on: bool, surplus: f64, start: f64, stop: f64) -> Verdict {
    let reason = match (on, surplus) {
        (false, s) if s >= start => {
            return Verdict::new(true, Cause::House, format!("surplus {} ≥ {}", watts(s), watts(start)));
        }
        (false, s) => format!("surplus {} < {} needed to start", watts(s), watts(start)),
        (true, s) if s >= stop => {
            return Verdict::new(
                true,
                Cause::House,
                format!("surplus {} ≥ {} to keep running", watts(s), watts(stop)),
            );
        }
        (true, s) => format!("surplus {} < {}: the sun that started it is gone", watts(s), watts(stop)),
    };
    Verdict::new(false, Cause::House, reason)
}

/// `3.2 kW`, `640 W`.
pub(crate) fn watts(w: f64) -> String {
    if w.abs() >= 1000.0 { format!("{:.1} kW", w / 1000.0) } else { format!("{w:.0} W") }
}

/// `12.4 kWh`, `640 Wh`.
fn energy(wh: f64) -> String {
    if wh.abs() >= 1000.0 { format!("{:.1} kWh", wh / 1000.0) } else { format!("{wh:.0} Wh") }
}

/// `42 %`.
fn pct(p: f64) -> String {
    format!("{p:.0} %")
}

/// `1h05`, `10 min`.
pub(crate) fn span(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    if minutes >= 60 { format!("{}h{:02}", minutes / 60, minutes % 60) } else { format!("{minutes} min") }
}
