//! A logger simulator: a TCP server speaking Solarman V5, Modbus TCP or raw RTU (or raw RTU on a
//! pseudo-terminal, [`Pty`]) whose registers come from a time-driven house model ([`house`]),
//! with fault injection ([`faults`]); and whole recorded days with faults, for `replay`
//! ([`day`]).
//!
//! It reuses the protocol codecs, so the tests that matter for the protocol also check bytes
//! against fixed vectors (docs/protocol.md §2.6); the simulator's job is to be a faithful, nasty peer.

pub mod day;
pub(crate) mod family;
pub(crate) mod faults;
pub mod finder;
pub mod fixture;
mod fleet;
pub(crate) mod house;
mod pty;
pub(crate) mod registers;
mod server;
mod settings;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

pub use family::Family;
pub use faults::Faults;
pub use finder::answer_discovery;
pub use fleet::Fleet;
pub use pty::{Pty, PtyError, serve_pty};
pub use server::{serve, serve_fleet, serve_stack};

use crate::profile::{Profile, RegisterBlock, RegisterSet, Value};
use house::{House, HouseParams, HouseState};

/// Registers the simulated inverter serves at least: 0..IMAGE_SIZE, more when the profile maps
/// registers beyond (battery packs at 10000 and up); reads beyond are refused.
pub const IMAGE_SIZE: usize = 1000;

/// Which envelope the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimWire {
    /// Solarman V5, as Wi-Fi loggers on port 8899.
    Solarman,
    /// Modbus TCP, as Ethernet loggers on port 502.
    ModbusTcp,
    /// Raw Modbus RTU over TCP, as a transparent RS485 gateway.
    RtuOverTcp,
}

/// Where the simulator's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimClock {
    /// The wall clock.
    Real,
    /// A time set by the test, moved with [`Simulator::set_time`].
    Fixed(DateTime<Utc>),
}

/// How to build a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The logger serial it answers to.
    pub serial: u32,
    /// The inverter serial it reports.
    pub inverter_serial: String,
    /// The Modbus slave id it answers to.
    pub slave: u8,
    /// The envelope.
    pub wire: SimWire,
    /// The faults.
    pub faults: Faults,
    /// The house.
    pub house: HouseParams,
    /// The clock.
    pub clock: SimClock,
    /// Registers whose reads are refused with an illegal-address exception.
    pub refuse: Vec<u16>,
    /// (register, largest value): a write above is kept as that value, as an inverter that
    /// clamps a setting to what its firmware allows.
    pub clamp: Vec<(u16, u16)>,
}

impl SimConfig {
    /// A clean V5 simulator for logger `serial`.
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            inverter_serial: "2306178901".into(),
            slave: 1,
            wire: SimWire::Solarman,
            faults: Faults::default(),
            house: HouseParams::default(),
            clock: SimClock::Real,
            refuse: Vec::new(),
            clamp: Vec::new(),
        }
    }
}

/// The simulated logger and inverter, shared by all connections.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    profile: Arc<Profile>,
    family: Family,
    base: Vec<u16>,
    house: Mutex<House>,
    now: Mutex<Option<DateTime<Utc>>>,
    written: Mutex<BTreeMap<u16, u16>>,
    /// Every FC16 served, in order: what the write tests count.
    write_log: Mutex<Vec<(u16, Vec<u16>)>>,
    /// How far the inverter's own clock is off the house's: drifted by tests, set by a write
    /// of the clock registers, as a real inverter's clock is.
    clock_offset: Mutex<TimeDelta>,
    requests: AtomicU64,
}

impl Simulator {
    /// A simulator serving `profile`, its house fitted to the profile's family ([`Family`]).
    pub fn new(mut config: SimConfig, profile: Arc<Profile>) -> Self {
        let start = match config.clock {
            SimClock::Real => Utc::now(),
            SimClock::Fixed(at) => at,
        };
        let family = Family::of(&profile, &config.house);
        config.house = family.fit(config.house);
        let base = base_image(&profile, &family, &config.inverter_serial);
        let mut house = House::new(config.house.clone(), start);
        house.set_settings(settings::read(&profile, &base, family.battery_series));
        Self {
            house: Mutex::new(house),
            now: Mutex::new(matches!(config.clock, SimClock::Fixed(_)).then_some(start)),
            config,
            profile,
            family,
            base,
            written: Mutex::new(BTreeMap::new()),
            write_log: Mutex::new(Vec::new()),
            clock_offset: Mutex::new(TimeDelta::zero()),
            requests: AtomicU64::new(0),
        }
    }

    /// Registers served: reads beyond are refused.
    pub fn size(&self) -> usize {
        self.base.len()
    }

    /// The family the simulator plays.
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Moves a fixed clock (no effect on a real one).
    pub fn set_time(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if now.is_some() {
            *now = Some(at);
        }
    }

    /// The house as of now: what a correct client must decode.
    pub fn state(&self) -> HouseState {
        let now = self.time();
        let mut house = self.house.lock().unwrap_or_else(PoisonError::into_inner);
        house.advance(now);
        house.state().clone()
    }

    /// What the inverter reports by key, as of now, including the fixed facts; a key appears
    /// once, with the family's value where it overrides the house's.
    pub fn expected(&self) -> Vec<(&'static str, Value)> {
        let state = self.state();
        let mut values = self.family.facts(registers::fixed(&self.config.inverter_serial));
        values.extend(self.family.adjust(registers::values(&state, self.local(state.time))));
        values
    }

    /// Requests served so far, over all connections.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn time(&self) -> DateTime<Utc> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner).unwrap_or_else(Utc::now)
    }

    /// The inverter's wall clock at `at`: the house's, off by the clock offset.
    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        self.house_local(at) + self.clock_offset()
    }

    fn house_local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.config.house.utc_offset).naive_local()
    }

    /// Moves the inverter's clock by `by`, as a drifting quartz or a logger pushing its own time.
    pub fn drift_clock(&self, by: TimeDelta) {
        *self.clock_offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// How far the inverter's clock is off the house's.
    pub fn clock_offset(&self) -> TimeDelta {
        *self.clock_offset.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write that covered every clock register sets the clock: the time written becomes the
    /// offset from the house's, and the registers tick on from there instead of standing still.
    fn take_clock_write(&self) {
        let registers: Vec<u16> = self
            .profile
            .header
            .clock
            .iter()
            .filter_map(|k| self.profile.index_of(k))
            .flat_map(|i| self.profile.readings[i].def.registers.clone())
            .collect();
        let covered = {
            let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            !registers.is_empty() && registers.iter().all(|a| written.contains_key(a))
        };
        if !covered {
            return;
        }
        let mut set = RegisterSet::new();
        set.insert(RegisterBlock { start: 0, values: self.image() });
        let time = self.profile.clock(|index| self.profile.readings[index].decode(&set).ok()?.as_f64());
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        registers.iter().for_each(|a| {
            written.remove(a);
        });
        if let Some(time) = time {
            *self.clock_offset.lock().unwrap_or_else(PoisonError::into_inner) =
                time - self.house_local(self.time());
        }
    }

    /// The register image as of now.
    fn image(&self) -> Vec<u16> {
        let state = self.state();
        let mut regs = self.base.clone();
        let values = self.family.adjust(registers::values(&state, self.local(state.time)));
        registers::apply(&self.profile, &values, &mut regs);
        for (addr, value) in self.written.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            regs[usize::from(*addr)] = *value;
        }
        regs
    }

    /// Every write served so far, as (first register, values), in order.
    pub fn writes(&self) -> Vec<(u16, Vec<u16>)> {
        self.write_log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The holding register `addr` as a read would serve it now.
    pub fn register(&self, addr: u16) -> Option<u16> {
        self.image().get(usize::from(addr)).copied()
    }

    /// Sets register `addr` as if the inverter's own display had: not logged as a write, but
    /// obeyed like one.
    pub fn poke(&self, addr: u16, value: u16) {
        self.state();
        self.written.lock().unwrap_or_else(PoisonError::into_inner).insert(addr, value);
        self.obey_settings();
    }

    fn write(&self, addr: u16, values: &[u16]) {
        self.write_log.lock().unwrap_or_else(PoisonError::into_inner).push((addr, values.to_vec()));
        // The house runs up to the write under the settings in force until then.
        self.state();
        {
            let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            for (offset, value) in values.iter().enumerate() {
                let at = addr + offset as u16;
                let most = self.config.clamp.iter().find(|(a, _)| *a == at).map_or(u16::MAX, |(_, m)| *m);
                written.insert(at, (*value).min(most));
            }
        }
        self.take_clock_write();
        self.obey_settings();
    }

    /// Hands the house the settings the image now holds. They are read from the fixed registers
    /// and the writes alone, never from the house's own values, so this needs no house state.
    fn obey_settings(&self) {
        let mut regs = self.base.clone();
        for (addr, value) in self.written.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            if let Some(reg) = regs.get_mut(usize::from(*addr)) {
                *reg = *value;
            }
        }
        let settings = settings::read(&self.profile, &regs, self.family.battery_series);
        self.house.lock().unwrap_or_else(PoisonError::into_inner).set_settings(settings);
    }
}

/// Registers to serve for `profile`: [`IMAGE_SIZE`], or up to its highest mapped register.
fn image_size(profile: &Profile) -> usize {
    let highest = profile.addresses().max().map_or(0, |a| usize::from(a) + 1);
    highest.max(IMAGE_SIZE)
}

/// The registers that do not change with the house: defaults, the fixed facts as `family`
/// reports them, and its device-type code.
fn base_image(profile: &Profile, family: &Family, serial: &str) -> Vec<u16> {
    let mut base = registers::defaults(profile, image_size(profile));
    registers::apply(profile, &family.facts(registers::fixed(serial)), &mut base);
    family.stamp(profile, &mut base);
    base
}
