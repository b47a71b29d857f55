//! Fault days: a whole recorded day ([`crate::record`]'s line format) made by stepping the
//! simulated house one poll interval at a time, with the faults real loggers show injected on
//! purpose, so `replay` can prove on whole days that none of them reaches Home Assistant.
//!
//! Sans I/O and without sleeping: [`Day::polls`] returns the [`Poll`]s, the caller writes them
//! (`inverter-monitor simulate --record-day`, docs/cli.md). Deterministic: the same [`Day`]
//! (profile, date, interval, offset, faults, seed) gives the same polls, byte for byte. The
//! registers of a poll are the simulator's image, the very registers its TCP server would serve,
//! read in the profile's read plan; this module must not decode or judge them.
//!
//! The day runs from 00:00 to 24:00 UTC of [`Day::date`]: the host's day, for a host in UTC.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeDelta, Utc};

use super::house::HouseParams;
use super::{SimClock, SimConfig, Simulator};
use crate::profile::{Counter, Kind, Profile, ReadBlock, StateClass};
use crate::record::Poll;

/// The logger's inverter serial in a fault day, as the simulator reports it.
const SERIAL: u32 = 2_712_345_678;
/// Below this much PV power, W, a PV-powered logger is dark (`dark-night`).
pub const DARK_W: f64 = 1.0;
/// What a recorded poll says when the logger did not answer: a read timeout of the link's
/// default 5 s, as `record` writes one.
const NO_ANSWER: &str = "no answer within 5s";
/// The first polls carry no fault: the very first has no baseline to be judged by.
const CLEAN_START: usize = 10;
/// The inverter's clock offset `midnight-utc` uses when none is given: far enough from UTC that
/// its midnight and its night fall in the middle of the UTC day.
const MIDNIGHT_UTC_OFFSET_H: i32 = 10;
/// How far a `counter-back` total steps down, in raw counts (10 kWh at 0.1 kWh a count).
const STEP_BACK: u32 = 100;

/// Why a fault day cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DayError {
    /// `dark-night` on a profile whose logger does not sleep.
    #[error(
        "dark-night: the logger of {0} does not sleep at night (its profile has no `logger_sleeps_at_night`: a battery keeps it up); use a PV-only family such as deye_micro or deye_string"
    )]
    NotPvOnly(String),
    /// `midnight-utc` with the inverter's clock at UTC.
    #[error(
        "midnight-utc: the inverter's clock must be off UTC (--utc-offset), or its midnight is the host's"
    )]
    ClockAtUtc,
    /// An interval of zero, or one that does not fit a day.
    #[error("the interval must be between 1 s and a day")]
    Interval,
    /// A fault name that is not one.
    #[error("unknown fault `{0}`: spikes, zero-frames, counter-back, midnight-utc, dark-night or all")]
    UnknownFault(String),
    /// The profile lacks what a fault needs.
    #[error("{fault}: profile {profile} has no {what}")]
    Unfit {
        /// The fault.
        fault: &'static str,
        /// The profile id.
        profile: String,
        /// What it lacks.
        what: &'static str,
    },
}

/// The faults a fault day injects; all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFaults {
    /// 65535 spikes: once a measurement's register reads 0xFFFF (out of its range), once each
    /// word of a 32-bit total counter does (a jump of thousands of kWh), as a logger does that
    /// passes on a half-updated or failed read as all ones (ha-solarman#581).
    pub spikes: bool,
    /// Zero frames: once every block of a poll reads 0, once the block holding the profile's
    /// `zero_poll` readings does, as a logger that answers before the inverter did
    /// (kellerza/sunsynk#398).
    pub zero_frames: bool,
    /// A counter jumping back: a total counter reads 10 kWh lower for one poll, then recovers,
    /// as an inverter's read that raced its own update (ha-solarman#729).
    pub counter_back: bool,
    /// Midnight by the inverter's clock while the host runs in UTC: the inverter's clock (and
    /// the `local` of each poll) is at the day's UTC offset, so its daily counters start over at
    /// its midnight, in the middle of the host's day, not at the host's.
    pub midnight_utc: bool,
    /// A logger going dark at night, for the PV-only families: from sunset to sunrise (PV under
    /// [`DARK_W`]) no poll is answered, each recorded as failed, as a micro's or string
    /// inverter's PV-powered logger does.
    pub dark_night: bool,
}

impl DayFaults {
    /// Every fault.
    pub const ALL: Self =
        Self { spikes: true, zero_frames: true, counter_back: true, midnight_utc: true, dark_night: true };
}

impl FromStr for DayFaults {
    type Err = DayError;

    /// A comma-separated list: `spikes,zero-frames,counter-back,midnight-utc,dark-night`, or
    /// `all`; empty for none.
    fn from_str(text: &str) -> Result<Self, DayError> {
        let mut faults = Self::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "spikes" => faults.spikes = true,
                "zero-frames" => faults.zero_frames = true,
                "counter-back" => faults.counter_back = true,
                "midnight-utc" => faults.midnight_utc = true,
                "dark-night" => faults.dark_night = true,
                "all" => faults = Self::ALL,
                other => return Err(DayError::UnknownFault(other.to_string())),
            }
        }
        Ok(faults)
    }
}

/// One injected fault, at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Register `0` of a measurement reads 0xFFFF.
    Spike(u16),
    /// One word (this register) of a 32-bit total counter reads 0xFFFF.
    CounterSpike(u16),
    /// The block from this register reads all zeros.
    ZeroBlock(u16),
    /// Every block reads zeros.
    ZeroFrame,
    /// The total counter of these registers (low word first) reads 10 kWh lower.
    CounterBack(u16, u16),
}

/// A fault day: its polls, and which fault is at which poll.
#[derive(Debug, Clone)]
pub struct FaultDay {
    /// One poll per interval, in time order.
    pub polls: Vec<Poll>,
    /// (index into `polls`, the fault there), in order.
    pub injected: Vec<(usize, Fault)>,
}

/// What day to make.
#[derive(Debug, Clone)]
pub struct Day {
    /// The family served.
    pub profile: Arc<Profile>,
    /// The UTC day recorded.
    pub date: NaiveDate,
    /// Time between polls.
    pub interval: TimeDelta,
    /// The inverter's clock offset from UTC; `None`: UTC, or +10:00 with `midnight-utc`.
    pub utc_offset: Option<FixedOffset>,
    /// The faults.
    pub faults: DayFaults,
    /// Seeds the house's noise and where the faults go.
    pub seed: u64,
    /// The inverter's name in the recording.
    pub inverter: String,
}

impl Day {
    /// A clean day of `profile` on `date`: a poll a minute, the inverter's clock at UTC.
    pub fn new(profile: Arc<Profile>, date: NaiveDate) -> Self {
        Self {
            profile,
            date,
            interval: TimeDelta::seconds(60),
            utc_offset: None,
            faults: DayFaults::default(),
            seed: 1,
            inverter: "house".into(),
        }
    }

    /// The inverter's clock offset from UTC.
    pub fn offset(&self) -> FixedOffset {
        let utc = Utc.fix();
        let default =
            FixedOffset::east_opt(MIDNIGHT_UTC_OFFSET_H * 3600).filter(|_| self.faults.midnight_utc);
        self.utc_offset.or(default).unwrap_or(utc)
    }

    /// The day's polls and where the faults are.
    ///
    /// # Errors
    /// [`DayError`] when the faults do not fit the profile or the interval the day.
    pub fn polls(&self) -> Result<FaultDay, DayError> {
        self.check()?;
        let sim = self.simulator();
        // Once: a day is up to 86,400 polls of the same plan.
        let plan = self.profile.plan();
        let start = self.start();
        let count = (TimeDelta::days(1).num_seconds() / self.interval.num_seconds()) as usize;
        let mut polls: Vec<Poll> =
            (0..count).map(|i| self.poll(&sim, &plan, start + self.interval * i as i32)).collect();
        let injected = self.inject(&mut polls)?;
        Ok(FaultDay { polls, injected })
    }

    /// The faults fit the profile and the interval the day.
    fn check(&self) -> Result<(), DayError> {
        let seconds = self.interval.num_seconds();
        if !(1..=86_400).contains(&seconds) {
            return Err(DayError::Interval);
        }
        if self.faults.dark_night && !self.profile.header.logger_sleeps_at_night {
            return Err(DayError::NotPvOnly(self.profile.id().to_string()));
        }
        if self.faults.midnight_utc && self.offset().local_minus_utc() == 0 {
            return Err(DayError::ClockAtUtc);
        }
        Ok(())
    }

    /// 00:00 UTC of the day.
    fn start(&self) -> DateTime<Utc> {
        self.date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    /// The simulator on a fixed clock at the day's start, its house at the inverter's offset.
    fn simulator(&self) -> Simulator {
        let house = HouseParams { utc_offset: self.offset(), seed: self.seed, ..HouseParams::default() };
        let config = SimConfig { clock: SimClock::Fixed(self.start()), house, ..SimConfig::new(SERIAL) };
        Simulator::new(config, self.profile.clone())
    }

    /// The poll at `time`: the image read in `plan`, or no answer while a sleeping logger is dark.
    fn poll(&self, sim: &Simulator, plan: &[ReadBlock], time: DateTime<Utc>) -> Poll {
        sim.set_time(time);
        let state = sim.state();
        let dark = self.faults.dark_night && state.pv_power.iter().sum::<f64>() < DARK_W;
        let blocks = if dark { Vec::new() } else { super::fixture::blocks(plan, &sim.image()) };
        Poll {
            time,
            local: sim.local(time),
            inverter: self.inverter.clone(),
            profile: self.profile.id().to_string(),
            identity: sim.config().inverter_serial.clone(),
            blocks,
            refused: Vec::new(),
            failed: dark.then(|| NO_ANSWER.to_string()),
        }
    }

    /// Puts the register faults into `polls`, spread over the answered polls.
    fn inject(&self, polls: &mut [Poll]) -> Result<Vec<(usize, Fault)>, DayError> {
        let faults = self.register_faults()?;
        let answered: Vec<usize> =
            (0..polls.len()).filter(|&i| i >= CLEAN_START && polls[i].failed.is_none()).collect();
        let slot = answered.len() / (faults.len() + 1);
        let mut injected = Vec::with_capacity(faults.len());
        for (n, fault) in faults.into_iter().enumerate() {
            // A seeded nudge within the first third of its slot keeps the faults apart.
            let nudge = (super::house::splitmix64(self.seed ^ n as u64) % (slot as u64 / 3).max(1)) as usize;
            let Some(&at) = answered.get(slot * (n + 1) + nudge) else { continue };
            apply(&mut polls[at], fault);
            injected.push((at, fault));
        }
        Ok(injected)
    }

    /// The register faults asked for, in the order they go into the day.
    fn register_faults(&self) -> Result<Vec<Fault>, DayError> {
        let mut faults = Vec::new();
        let unfit = |fault, what| DayError::Unfit { fault, profile: self.profile.id().to_string(), what };
        let counter = total_counter(&self.profile);
        if self.faults.spikes {
            let (low, high) = counter.ok_or_else(|| unfit("spikes", "32-bit total counter"))?;
            let spiked =
                spiked_measurement(&self.profile).ok_or_else(|| unfit("spikes", "u16 measurement"))?;
            faults.extend([Fault::Spike(spiked), Fault::CounterSpike(high), Fault::CounterSpike(low)]);
        }
        if self.faults.zero_frames {
            let block = zero_poll_block(&self.profile).ok_or_else(|| unfit("zero-frames", "zero_poll"))?;
            faults.extend([Fault::ZeroFrame, Fault::ZeroBlock(block)]);
        }
        if self.faults.counter_back {
            let (low, high) = counter.ok_or_else(|| unfit("counter-back", "32-bit total counter"))?;
            faults.push(Fault::CounterBack(low, high));
        }
        Ok(faults)
    }
}

/// `fault` done to `poll`'s registers.
fn apply(poll: &mut Poll, fault: Fault) {
    match fault {
        Fault::Spike(addr) | Fault::CounterSpike(addr) => set(poll, addr, u16::MAX),
        Fault::ZeroBlock(start) => {
            poll.blocks.iter_mut().filter(|b| b.start == start).for_each(|b| b.values.fill(0));
        }
        Fault::ZeroFrame => poll.blocks.iter_mut().for_each(|b| b.values.fill(0)),
        Fault::CounterBack(low, high) => {
            let word = |a| poll.registers(a, 1).map_or(0, |r| u32::from(r[0]));
            let value = (word(high) << 16 | word(low)).saturating_sub(STEP_BACK);
            set(poll, low, value as u16);
            set(poll, high, (value >> 16) as u16);
        }
    }
}

/// Sets register `addr` of `poll`, where a recorded block holds it.
fn set(poll: &mut Poll, addr: u16, value: u16) {
    for block in &mut poll.blocks {
        if let Some(slot) = addr.checked_sub(block.start).and_then(|i| block.values.get_mut(usize::from(i))) {
            *slot = value;
        }
    }
}

/// The registers (low word first) of the profile's first 32-bit total counter.
fn total_counter(profile: &Profile) -> Option<(u16, u16)> {
    let def = profile
        .readings
        .iter()
        .map(|r| &r.def)
        .find(|d| d.counter == Some(Counter::Total) && d.registers.len() == 2)?;
    Some((def.registers[0], def.registers[1]))
}

/// The register of a one-register unsigned measurement (a voltage, a power) that 0xFFFF puts
/// out of its range.
fn spiked_measurement(profile: &Profile) -> Option<u16> {
    let def = profile.readings.iter().map(|r| &r.def).find(|d| {
        let spike = f64::from(u16::MAX) * d.scale + d.offset;
        d.kind == Kind::U16
            && d.state_class == Some(StateClass::Measurement)
            && d.options.is_none()
            && d.bit.is_none()
            && d.mask.is_none()
            && d.registers.len() == 1
            && d.max.is_some_and(|max| spike > max)
    })?;
    Some(def.registers[0])
}

/// The start of the planned read holding the profile's first `zero_poll` reading.
fn zero_poll_block(profile: &Profile) -> Option<u16> {
    let addr = *profile.readings.get(*profile.zero_poll.first()?)?.def.registers.first()?;
    profile.plan().into_iter().find(|b| b.contains(addr)).map(|b| b.start)
}

#[cfg(test)]
mod tests;
