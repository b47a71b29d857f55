//! Night for PV-only inverters: a microinverter's or string inverter's logger runs off the PV
//! side and stops answering from sunset to sunrise (the profile says so with
//! `logger_sleeps_at_night`). That is no outage, and Home Assistant must not see one.
//!
//! The rule, one for every sink: while the logger does not answer and it is night, each poll
//! becomes a snapshot built from the last good one, in which
//! - every energy counter keeps its last value (a daily one starts over at 0 at the inverter's
//!   midnight, by its clock run on from the last poll), so a total never goes
//!   unavailable → 0 → total and never poisons the long-term statistics;
//! - the power the inverter makes from the sun ([`ReadingDef::reads_zero_at_night`]) reads 0 W;
//! - the device's identity (the profile's serial, model and firmware readings) is kept: it does
//!   not change overnight, and without it Home Assistant would be sent the device anew twice a
//!   day;
//! - everything else (voltages, temperatures, status) is left out, so it goes unknown, never
//!   frozen;
//! - availability is not touched: the inverter stays online.
//!
//! A night snapshot is an ordinary `Update::Polled` (every sink takes it unchanged) that made no
//! reads: `reads == 0` tells it from a poll.
//!
//! "Night": with a site location (`[weather]` latitude and longitude) the sun is below
//! [`LOW_SUN_DEG`]; without one, the last good poll before the logger went dark made at most
//! [`NEAR_ZERO_W`] (the sun was setting), and the night lasts at most [`LONGEST_NIGHT`]. A logger
//! that vanishes in daylight is a real failure and goes unavailable as any other.
//!
//! The log says it twice a night: once when the logger goes dark, once when it is back. This
//! module owns that state; it must not judge a reading (the logger said nothing to judge).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::Snapshot;
use crate::profile::{Counter, Reading, ReadingDef, Value};
use crate::transport::Counters;

/// Below this sun elevation, degrees, a PV-powered logger may be asleep: at dawn and dusk the
/// panels cannot keep it up well before the sun is on the horizon.
pub const LOW_SUN_DEG: f64 = 6.0;
/// Without a location: a last poll at or below this much sun power, W, was at sunset.
pub const NEAR_ZERO_W: f64 = 100.0;
/// Without a location: a dark logger is asleep for at most this long, then it is an outage
/// (the longest night at 60° latitude).
pub const LONGEST_NIGHT: TimeDelta = TimeDelta::hours(18);

/// Tells whether the sun is down (below [`LOW_SUN_DEG`]) at the site at an instant; built by
/// the service from the configured location, since the sun's position is not the poller's.
pub type SunDown = Arc<dyn Fn(DateTime<Utc>) -> bool + Send + Sync>;

/// One inverter's night: the last good snapshot, and since when the logger is dark.
#[derive(Default)]
pub(super) struct Night {
    sun: Option<SunDown>,
    last: Option<Arc<Snapshot>>,
    dark: Option<Dark>,
}

impl std::fmt::Debug for Night {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Night").field("located", &self.sun.is_some()).field("dark", &self.dark).finish()
    }
}

/// The logger is dark at night: since when, and how many polls it slept through.
#[derive(Debug, Clone, Copy)]
struct Dark {
    since: DateTime<Utc>,
    polls: u64,
}

impl Night {
    /// Knows night by `sun` when the site is known, else by the fallback.
    pub(super) fn new(sun: Option<SunDown>) -> Self {
        Self { sun, ..Self::default() }
    }

    /// A good poll: remembered when its profile's logger sleeps at night; logs the logger's
    /// return once when it was dark.
    pub(super) fn saw(&mut self, name: &str, snapshot: &Arc<Snapshot>) {
        if let Some(dark) = self.dark.take() {
            let hours = (snapshot.time - dark.since).num_minutes() as f64 / 60.0;
            tracing::info!(inverter = %name, polls = dark.polls, "the logger is back after {hours:.1} h asleep");
        }
        if snapshot.profile.header.logger_sleeps_at_night {
            self.last = Some(snapshot.clone());
        }
    }

    /// A poll the logger did not answer at `now`: the night snapshot to publish in its place
    /// while it is night, else `None` (a failure like any other).
    pub(super) fn failed(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        link: Counters,
        error: &dyn std::fmt::Display,
    ) -> Option<Snapshot> {
        let last = self.last.as_ref()?;
        if !self.is_night(last, now) {
            if let Some(dark) = self.dark.take() {
                tracing::warn!(inverter = %name, polls = dark.polls, "the logger is still dark and it is day: no longer asleep, an outage");
            }
            return None;
        }
        let dark = self.dark.get_or_insert_with(|| {
            tracing::info!(inverter = %name, "the logger is dark and the sun is down: asleep until sunrise; totals keep their values, sun power reads 0 W ({error})");
            Dark { since: now, polls: 0 }
        });
        dark.polls += 1;
        Some(asleep(last, now, link))
    }

    /// Whether it is night at `now` for a logger whose last good poll was `last`.
    fn is_night(&self, last: &Snapshot, now: DateTime<Utc>) -> bool {
        match &self.sun {
            Some(sun_down) => sun_down(now),
            None => now - last.time <= LONGEST_NIGHT && sun_power(last) <= NEAR_ZERO_W,
        }
    }
}

/// The most sun power, W, of `snapshot`'s readings that read 0 at night.
fn sun_power(snapshot: &Snapshot) -> f64 {
    snapshot
        .readings
        .iter()
        .filter(|r| snapshot.profile.readings[r.index].def.reads_zero_at_night())
        .filter_map(|r| r.value.as_f64())
        .fold(0.0, |most, w| most.max(w.abs()))
}

/// The snapshot the night rule publishes at `now` in place of a poll, from the `last` good one.
pub(super) fn asleep(last: &Snapshot, now: DateTime<Utc>, link: Counters) -> Snapshot {
    // The inverter's clock runs on from its last reading; its midnight starts the daily ones.
    let local = last.local + (now - last.time);
    let new_day = local.date() != last.local.date();
    let readings = last
        .readings
        .iter()
        .filter_map(|r| {
            let def = &last.profile.readings[r.index].def;
            if is_device_key(&last.profile, &def.key) {
                return Some(r.clone());
            }
            let value = night_value(def, &r.value, new_day)?;
            Some(Reading { index: r.index, value })
        })
        .collect();
    Snapshot {
        time: now,
        local,
        readings,
        rejected: Vec::new(),
        refused: Vec::new(),
        duration: std::time::Duration::ZERO,
        reads: 0,
        link,
        inverter: last.inverter.clone(),
        profile: last.profile.clone(),
        choice: last.choice.clone(),
        identity: last.identity.clone(),
        rejected_total: last.rejected_total.clone(),
    }
}

/// Whether `key` names the device in `profile`'s header: its serial, model or firmware.
fn is_device_key(profile: &crate::profile::Profile, key: &str) -> bool {
    profile.header.device.keys().any(|k| k == key)
}

/// What reading `def`, last read as `value`, shows while the logger sleeps; `None`: unknown.
fn night_value(def: &ReadingDef, value: &Value, new_day: bool) -> Option<Value> {
    match def.counter {
        Some(Counter::Total) => Some(value.clone()),
        Some(Counter::Daily) if new_day => Some(Value::Number(0.0)),
        Some(Counter::Daily) => Some(value.clone()),
        None if def.reads_zero_at_night() => Some(Value::Number(0.0)),
        None => None,
    }
}

#[cfg(test)]
mod tests;
