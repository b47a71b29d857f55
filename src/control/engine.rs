//! The decision core: consumer states in, decisions with reasons out. Pure: time comes in as an
//! argument, commands go out as values, so tests run simulated days in milliseconds.
//!
//! Order of say: manual override, fresh data, inverter alarms (never shed while one is set: the
//! original tool's rule), the rules of [`super::rules`], minimum on/off times, then priorities
//! (one start per step, highest priority first; house-wide sheds one per step, lowest first).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::observation::{Observation, Outlook};
use super::rules::{self, Cause, Smooth, Verdict};
use super::smooth::Smoothed;
use crate::config::{ConsumerConfig, ControlConfig};

/// How long a sent command stands for the plug's state before the plug must confirm it.
const CONFIRM: TimeDelta = TimeDelta::seconds(60);
/// Longest gap between steps counted as runtime: a service that was down did not see the load.
const MAX_GAP: Duration = Duration::from_secs(600);
/// How far back the house's own peak load is remembered: a kettle or a stove comes back.
const PEAK_WINDOW: TimeDelta = TimeDelta::minutes(30);

/// What a decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Turn on.
    Start,
    /// Turn off.
    Stop,
    /// Already as wanted.
    Stay,
    /// A change is wanted or possible but held back (minimum time, priority, manual, no data).
    Wait,
}

impl Action {
    /// The word in MQTT state and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Stay => "stay",
            Self::Wait => "wait",
        }
    }
}

/// One consumer's decision at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The consumer.
    pub consumer: String,
    /// Its state as known before the decision.
    pub state: Option<bool>,
    /// What the rules want.
    pub want: bool,
    /// What happens now.
    pub action: Action,
    /// Why, for people.
    pub reason: String,
    /// Time on today (the inverter's day).
    pub runtime_today: Duration,
    /// Whether automatic control is on for it.
    pub automatic: bool,
}

impl Decision {
    /// The command to send, if any.
    pub fn command(&self) -> Option<bool> {
        match self.action {
            Action::Start => Some(true),
            Action::Stop => Some(false),
            Action::Stay | Action::Wait => None,
        }
    }
}

/// What the engine keeps per consumer.
#[derive(Debug, Clone)]
struct Slot {
    config: ConsumerConfig,
    automatic: bool,
    observed: Option<bool>,
    /// A command sent and not yet confirmed: its value, when, and `since` before it.
    commanded: Option<Command>,
    since: Option<DateTime<Utc>>,
    runtime: Duration,
    day: Option<NaiveDate>,
}

/// A command waiting for the plug to confirm it.
#[derive(Debug, Clone, Copy)]
struct Command {
    on: bool,
    sent: DateTime<Utc>,
    since_before: Option<DateTime<Utc>>,
}

impl Slot {
    /// A command stands for the state for [`CONFIRM`]; then the plug's report is right again.
    fn state(&self, at: DateTime<Utc>) -> Option<bool> {
        match self.commanded {
            Some(c) if at - c.sent < CONFIRM => Some(c.on),
            _ => self.observed,
        }
    }

    /// Forgets a command the plug did not confirm in time (the broker was down, the plug
    /// offline): its minimum time never started, and the next step decides and sends again.
    fn expire(&mut self, at: DateTime<Utc>) {
        if let Some(c) = self.commanded.filter(|c| at - c.sent >= CONFIRM) {
            tracing::warn!(consumer = %self.config.name, on = c.on, "the plug did not confirm the command within {}s; deciding again", CONFIRM.num_seconds());
            self.commanded = None;
            self.since = c.since_before;
        }
    }

    fn min_time(&self, on: bool) -> Duration {
        if on { self.config.min_on } else { self.config.min_off }
    }
}

/// The engine: one per service, fed every poll of the controlled inverter.
#[derive(Debug, Clone)]
pub struct Engine {
    slots: Vec<Slot>,
    surplus: Smoothed,
    grid: Smoothed,
    load: Smoothed,
    /// The house's own load (controlled loads left out) over the last [`PEAK_WINDOW`].
    base_loads: std::collections::VecDeque<(DateTime<Utc>, f64)>,
    /// When the last step ran: the runtime of the loads that are on grows by the time since.
    last_step: Option<DateTime<Utc>>,
}

/// A change a consumer is cleared for by its rules and minimum times, before priorities.
struct Pending {
    slot: usize,
    verdict: Verdict,
}

impl Engine {
    /// An engine for `consumers`, knowing nothing of their states yet.
    pub fn new(control: &ControlConfig, consumers: &[ConsumerConfig]) -> Self {
        let slots = consumers
            .iter()
            .map(|c| Slot {
                config: c.clone(),
                automatic: c.automatic,
                observed: None,
                commanded: None,
                since: None,
                runtime: Duration::ZERO,
                day: None,
            })
            .collect();
        let tau = control.smoothing;
        Self {
            slots,
            surplus: Smoothed::new(tau),
            grid: Smoothed::new(tau),
            load: Smoothed::new(tau),
            base_loads: std::collections::VecDeque::new(),
            last_step: None,
        }
    }

    /// The consumers, in configuration order.
    pub fn consumers(&self) -> impl Iterator<Item = &ConsumerConfig> {
        self.slots.iter().map(|s| &s.config)
    }

    /// The plug of `name` reported `on` at `at`.
    pub fn observe(&mut self, name: &str, on: bool, at: DateTime<Utc>) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.config.name == name) else { return };
        let before = slot.state(at);
        if slot.commanded.is_some_and(|c| c.on == on) {
            // Confirmed: the minimum time that started with the command stands.
            slot.commanded = None;
        } else if before != Some(on) {
            // Switched by hand or by something else, or first heard of after a start: its
            // minimum times count from now, since nobody knows since when it has been so.
            slot.since = Some(at);
        }
        slot.observed = Some(on);
    }

    /// A command was sent to `name` at `at`.
    pub fn sent(&mut self, name: &str, on: bool, at: DateTime<Utc>) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.config.name == name) {
            let since_before = slot.since;
            if slot.state(at) != Some(on) {
                slot.since = Some(at);
            }
            slot.commanded = Some(Command { on, sent: at, since_before });
        }
    }

    /// Turns automatic control of `name` on or off; false if there is no such consumer.
    pub fn set_automatic(&mut self, name: &str, on: bool) -> bool {
        self.slots.iter_mut().find(|s| s.config.name == name).map(|s| s.automatic = on).is_some()
    }

    /// Time on during the inverter's day `day`, for keeping across restarts.
    pub fn runtime(&self, name: &str) -> Option<(NaiveDate, Duration)> {
        let slot = self.slots.iter().find(|s| s.config.name == name)?;
        Some((slot.day?, slot.runtime))
    }

    /// Restores the runtime a previous run counted on `day`; a step on another day resets it.
    pub fn restore_runtime(&mut self, name: &str, day: NaiveDate, runtime: Duration) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.config.name == name) {
            slot.day = Some(day);
            slot.runtime = runtime;
        }
    }

    /// Whether automatic control of `name` is on.
    pub fn automatic(&self, name: &str) -> Option<bool> {
        self.slots.iter().find(|s| s.config.name == name).map(|s| s.automatic)
    }

    /// Decides for every consumer at `at`, from a poll's observation (or why there is none)
    /// and the weather's outlook when it is known.
    pub fn step(
        &mut self,
        at: DateTime<Utc>,
        observation: Result<&Observation, &str>,
        outlook: Option<&Outlook>,
    ) -> Vec<Decision> {
        for slot in &mut self.slots {
            slot.expire(at);
        }
        self.account(at, observation.ok().map(|o| o.local.date()));
        let inputs = observation.map(|obs| (obs, self.smooth(obs)));
        let mut decisions = Vec::with_capacity(self.slots.len());
        let mut pending = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let state = slot.state(at);
            let hold = |reason: String| (state.unwrap_or(false), Action::Wait, reason);
            let (want, action, reason) = match &inputs {
                _ if !slot.automatic => hold("automatic control is off".into()),
                Err(why) => hold(format!("holding: {why}")),
                Ok((obs, _)) if obs.alarm.is_some() => hold(format!(
                    "the inverter reports {}: loads are not switched while it does",
                    obs.alarm.as_deref().unwrap_or_default()
                )),
                Ok((obs, smooth)) => {
                    let v =
                        rules::verdict(&slot.config, state == Some(true), obs, smooth, outlook, slot.runtime);
                    match gate(slot, state, &v, at) {
                        Some(wait) => (v.on, Action::Wait, wait),
                        None if state == Some(v.on) => (v.on, Action::Stay, v.reason),
                        None => {
                            let action = if v.on { Action::Start } else { Action::Stop };
                            let reason = v.reason.clone();
                            pending.push(Pending { slot: i, verdict: v });
                            (pending[pending.len() - 1].verdict.on, action, reason)
                        }
                    }
                }
            };
            decisions.push(Decision {
                consumer: slot.config.name.clone(),
                state,
                want,
                action,
                reason,
                runtime_today: slot.runtime,
                automatic: slot.automatic,
            });
        }
        self.take_turns(&pending, &mut decisions);
        decisions
    }

    /// Adds runtime since the last step and starts a new count on a new day.
    fn account(&mut self, at: DateTime<Utc>, day: Option<NaiveDate>) {
        let since =
            self.last_step.replace(at).map(|last| (at - last).to_std().unwrap_or_default().min(MAX_GAP));
        for slot in &mut self.slots {
            if let Some(since) = since
                && slot.state(at) == Some(true)
            {
                slot.runtime += since;
            }
            if let Some(day) = day
                && slot.day != Some(day)
            {
                if slot.day.is_some() {
                    slot.runtime = Duration::ZERO;
                }
                slot.day = Some(day);
            }
        }
    }

    /// Feeds the smoothers; the base load leaves out the controlled loads that are on.
    fn smooth(&mut self, obs: &Observation) -> Smooth {
        let controlled: f64 =
            self.slots.iter().filter(|s| s.state(obs.at) == Some(true)).map(|s| s.config.power).sum();
        let load = self.load.add(obs.load, obs.at);
        self.base_loads.push_back((obs.at, (obs.load - controlled).max(0.0)));
        while self.base_loads.front().is_some_and(|(t, _)| obs.at - *t > PEAK_WINDOW) {
            self.base_loads.pop_front();
        }
        Smooth {
            base_peak: self.base_loads.iter().map(|(_, w)| *w).fold(0.0, f64::max),
            surplus: self.surplus.add(obs.surplus(), obs.at),
            grid: self.grid.add(obs.grid, obs.at),
            base_load: (load - controlled).max(0.0),
            load,
        }
    }

    /// Priorities: one start per step, the highest priority first, and none while the house is
    /// shedding; house-wide sheds one per step, the lowest priority first.
    fn take_turns(&self, pending: &[Pending], decisions: &mut [Decision]) {
        let rank = |p: &Pending| (self.slots[p.slot].config.priority, p.slot);
        let house_stops: Vec<&Pending> =
            pending.iter().filter(|p| !p.verdict.on && p.verdict.cause == Cause::House).collect();
        let first_stop = house_stops.iter().copied().max_by_key(|p| rank(p)).map(|p| p.slot);
        let first_start = match first_stop {
            Some(_) => None,
            None => pending.iter().filter(|p| p.verdict.on).min_by_key(|p| rank(p)).map(|p| p.slot),
        };
        for p in pending {
            let d = &mut decisions[p.slot];
            let turn = match (p.verdict.on, p.verdict.cause) {
                (false, Cause::Own) => continue,
                (false, Cause::House) => first_stop,
                (true, _) => first_start.or(first_stop),
            };
            if turn == Some(p.slot) {
                continue;
            }
            let Some(other) = turn.map(|i| &self.slots[i].config) else { continue };
            let how = if first_stop.is_some() { "sheds first" } else { "starts first" };
            d.action = Action::Wait;
            d.reason = format!(
                "wants {} ({}); {} (priority {}) {how}",
                if p.verdict.on { "on" } else { "off" },
                p.verdict.reason,
                other.name,
                other.priority
            );
        }
    }
}

/// Minimum on/off times: a reason to wait, or `None` when the change may happen.
fn gate(slot: &Slot, state: Option<bool>, v: &Verdict, at: DateTime<Utc>) -> Option<String> {
    let (current, since) = (state?, slot.since?);
    if current == v.on {
        return None;
    }
    let min = slot.min_time(current);
    let elapsed = (at - since).to_std().unwrap_or_default();
    (elapsed < min).then(|| {
        let word = |on: bool| if on { "on" } else { "off" };
        format!(
            "wants {} ({}); {} for {} of its {} minimum",
            word(v.on),
            v.reason,
            word(current),
            rules::span(elapsed),
            rules::span(min)
        )
    })
}
