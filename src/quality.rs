//! Plausibility: readings the inverter could not really have meant are rejected, never zeroed.
//!
//! Rules come from the profile (docs/profiles.md): the valid range of each reading, its largest
//! plausible change per poll, counters that only rise (daily ones may fall back at midnight), and
//! whole-poll rules: the battery reporting 0 % and 0 V at once (the original tool's rule), or an
//! all-zero read block where the battery lives (a logger answering before the inverter has data). This module keeps no
//! global state: the poller owns one [`Quality`] per inverter and passes time in.
//!
//! A step change that is real would be rejected forever by a naive delta rule, so a value that is
//! rejected three polls in a row, each time consistent with the last rejected one, is taken as
//! the new baseline.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

use crate::profile::{Counter, Profile, Reading, RegisterSet};

/// Consistent rejections after which a value becomes the new baseline.
const REBASELINE_AFTER: u8 = 3;
/// Read blocks at least this long that are all zero mean "no data", not a reading.
const ZERO_BLOCK_MIN: usize = 8;
/// Minutes either side of local midnight in which a daily counter may fall back: the inverter's
/// clock is not ours.
const MIDNIGHT_SLACK_MIN: u32 = 30;

/// Which rule rejected something; stable names for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Outside the reading's min/max.
    Range,
    /// Changed more than max_change since the last accepted value.
    MaxChange,
    /// A counter went backwards.
    CounterBackwards,
    /// An enum reading held a value with no text.
    UnknownOption,
    /// Every reading named by the profile's `zero_poll` was zero.
    ZeroPoll,
    /// A whole read block was zero.
    ZeroFrame,
}

impl Rule {
    /// Every rule, in a stable order.
    pub const ALL: [Rule; 6] = [
        Self::Range,
        Self::MaxChange,
        Self::CounterBackwards,
        Self::UnknownOption,
        Self::ZeroPoll,
        Self::ZeroFrame,
    ];

    /// The rule's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::MaxChange => "max_change",
            Self::CounterBackwards => "counter_backwards",
            Self::UnknownOption => "unknown_option",
            Self::ZeroPoll => "zero_poll",
            Self::ZeroFrame => "zero_frame",
        }
    }
}

/// A rejected reading, or a rejected poll when `index` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The reading's index in the profile; `None` for whole-poll rules.
    pub index: Option<usize>,
    /// The rule.
    pub rule: Rule,
    /// Why, in words, with the values involved.
    pub reason: String,
}

/// What [`Quality::filter`] let through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filtered {
    /// Readings that passed, in profile order.
    pub accepted: Vec<Reading>,
    /// Readings that did not.
    pub rejected: Vec<Rejection>,
    /// Readings accepted as a new baseline after consistent rejections.
    pub rebaselined: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Accepted {
    value: f64,
    at: DateTime<Utc>,
    local: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, Default)]
struct Strikes {
    count: u8,
    last: f64,
}

/// Per-inverter plausibility state: the last accepted value of each reading.
#[derive(Debug, Clone)]
pub struct Quality {
    last: Vec<Option<Accepted>>,
    strikes: Vec<Strikes>,
    stale_after: chrono::Duration,
}

impl Quality {
    /// State for a profile of `readings` readings. A last value older than `stale_after` is no
    /// reference for max_change (after an outage anything may have changed).
    pub fn new(readings: usize, stale_after: std::time::Duration) -> Self {
        Self {
            last: vec![None; readings],
            strikes: vec![Strikes::default(); readings],
            stale_after: chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Whole-poll rule on raw registers: an all-zero read block that holds a `zero_poll`
    /// reading. Blocks of settings may legitimately be all zero (no BMS, programs unused), but
    /// the block with the battery's SOC and voltage never is.
    pub fn zero_frame(profile: &Profile, regs: &RegisterSet) -> Option<Rejection> {
        let watched =
            |addr: &u16| profile.zero_poll.iter().any(|i| profile.readings[*i].def.registers.contains(addr));
        let block = regs.blocks().iter().find(|b| {
            let end = b.start as usize + b.values.len();
            b.values.len() >= ZERO_BLOCK_MIN
                && b.values.iter().all(|v| *v == 0)
                && (b.start..end as u16).any(|a| watched(&a))
        })?;
        Some(Rejection {
            index: None,
            rule: Rule::ZeroFrame,
            reason: format!(
                "registers {}..={} all read 0",
                block.start,
                block.start as usize + block.values.len() - 1
            ),
        })
    }

    /// Whole-poll rule on readings: every reading named by `zero_poll` is zero.
    pub fn zero_poll(profile: &Profile, readings: &[Reading]) -> Option<Rejection> {
        if profile.zero_poll.is_empty() || Self::exempt(profile, readings) {
            return None;
        }
        let zero =
            |index: &usize| readings.iter().any(|r| r.index == *index && r.value.as_f64() == Some(0.0));
        if !profile.zero_poll.iter().all(zero) {
            return None;
        }
        Some(Rejection {
            index: None,
            rule: Rule::ZeroPoll,
            reason: format!("{} all read 0", profile.header.zero_poll.join(" and ")),
        })
    }

    /// True while the profile's `zero_poll_unless` reading shows its text (no battery fitted).
    fn exempt(profile: &Profile, readings: &[Reading]) -> bool {
        let Some(unless) = &profile.header.zero_poll_unless else { return false };
        let Some(index) = profile.index_of(&unless.key) else { return false };
        readings.iter().any(|r| r.index == index && r.value.to_string() == unless.value)
    }

    /// Applies the per-reading rules; `local` is the wall-clock time of the house.
    pub fn filter(
        &mut self,
        profile: &Profile,
        readings: Vec<Reading>,
        now: DateTime<Utc>,
        local: NaiveDateTime,
    ) -> Filtered {
        let mut verdict = Filtered { accepted: Vec::with_capacity(readings.len()), ..Filtered::default() };
        // Once per poll, not a date subtraction per reading.
        let fresh_since = now.checked_sub_signed(self.stale_after).unwrap_or(DateTime::<Utc>::MIN_UTC);
        for reading in readings {
            let Some(value) = reading.value.as_f64() else {
                verdict.accepted.push(reading);
                continue;
            };
            match self.judge(profile, reading.index, value, now, fresh_since, local) {
                Judgement::Accept => verdict.accepted.push(reading),
                Judgement::Rebaseline => {
                    verdict.rebaselined.push(reading.index);
                    verdict.accepted.push(reading);
                }
                Judgement::Reject(rejection) => verdict.rejected.push(rejection),
            }
        }
        verdict
    }

    fn judge(
        &mut self,
        profile: &Profile,
        index: usize,
        value: f64,
        now: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
        local: NaiveDateTime,
    ) -> Judgement {
        let def = &profile.readings[index].def;
        if let Some(reason) = def.out_of_range(value) {
            return Judgement::Reject(Rejection { index: Some(index), rule: Rule::Range, reason });
        }
        // A last value older than `stale_after` is no base, unless it is a counter's.
        let last = self.last[index].filter(|l| l.at >= fresh_since || def.counter.is_some());
        let verdict = last.and_then(|last| {
            let jump = def.max_change.filter(|max| (value - last.value).abs() > *max).map(|max| {
                (
                    Rule::MaxChange,
                    format!("changed from {} to {value}, more than {max} in one poll", last.value),
                )
            });
            let backwards = match def.counter {
                Some(Counter::Total) => value < last.value,
                Some(Counter::Daily) => value < last.value && !near_midnight(last.local, local),
                None => false,
            };
            let back = backwards.then(|| {
                (Rule::CounterBackwards, format!("counter went back from {} to {value}", last.value))
            });
            back.or(jump)
        });
        match verdict {
            None => {
                self.accept(index, value, now, local);
                Judgement::Accept
            }
            Some((rule, reason)) => self.strike(index, value, now, local, def.max_change, rule, reason),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn strike(
        &mut self,
        index: usize,
        value: f64,
        now: DateTime<Utc>,
        local: NaiveDateTime,
        max_change: Option<f64>,
        rule: Rule,
        reason: String,
    ) -> Judgement {
        let strikes = &mut self.strikes[index];
        let consistent =
            strikes.count > 0 && max_change.is_none_or(|max| (value - strikes.last).abs() <= max);
        strikes.count = if consistent { strikes.count + 1 } else { 1 };
        strikes.last = value;
        if strikes.count >= REBASELINE_AFTER {
            self.accept(index, value, now, local);
            return Judgement::Rebaseline;
        }
        Judgement::Reject(Rejection { index: Some(index), rule, reason })
    }

    /// The last accepted value of every total counter (`counter = "total"`), by reading key:
    /// what a restart must not forget.
    pub fn totals(&self, profile: &Profile) -> BTreeMap<String, f64> {
        let total = |i: &usize| profile.readings.get(*i).filter(|r| r.def.counter == Some(Counter::Total));
        (0..self.last.len()).filter_map(|i| Some((total(&i)?.def.key.clone(), self.last[i]?.value))).collect()
    }

    /// Takes `totals` (from [`Quality::totals`] before a restart, kept at `at`) as the last
    /// accepted values of the total counters that have none yet, so the first polls after a
    /// restart are judged as the running service would have judged them: a spike or a step
    /// back is rejected, not taken as the new baseline. Keys the profile lacks are ignored.
    pub fn restore_totals(&mut self, profile: &Profile, totals: &BTreeMap<String, f64>, at: DateTime<Utc>) {
        for (key, value) in totals {
            let Some(index) = profile.index_of(key) else { continue };
            let total = profile.readings[index].def.counter == Some(Counter::Total);
            if let Some(slot @ None) = self.last.get_mut(index).filter(|_| total) {
                *slot = Some(Accepted { value: *value, at, local: at.naive_utc() });
            }
        }
    }

    fn accept(&mut self, index: usize, value: f64, now: DateTime<Utc>, local: NaiveDateTime) {
        self.last[index] = Some(Accepted { value, at: now, local });
        self.strikes[index] = Strikes::default();
    }
}

enum Judgement {
    Accept,
    Rebaseline,
    Reject(Rejection),
}

/// True when a daily counter may have been reset between `then` and `now`: the date changed,
/// or `now` is close enough to midnight that the inverter's clock may already be past it.
fn near_midnight(then: NaiveDateTime, now: NaiveDateTime) -> bool {
    let minutes = now.hour() * 60 + now.minute();
    now.date() != then.date() || !(MIDNIGHT_SLACK_MIN..24 * 60 - MIDNIGHT_SLACK_MIN).contains(&minutes)
}

#[cfg(test)]
mod tests;
