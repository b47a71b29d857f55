//! A fleet of simulated V5 loggers behind one TCP port, told apart by the logger serial each
//! request frame carries: `simulate --fleet N`.
//!
//! It exists so one process can stand in for thousands of loggers when the service is measured
//! polling a fleet (benches/fleet.rs). It owns the numbering of the fleet (logger serials
//! `first..first + N`, an inverter serial of its own for each) and the wire side of a request
//! addressed to a member. It must stay cheap per logger: no task, thread or register image per
//! logger. Every member shares one [`Simulator`] (one house, one profile, one set of written
//! settings, one fault plan); only the inverter serial in the answer is the member's own, so
//! Home Assistant ids and Influx tags differ per logger. A write to one member therefore
//! changes every member: the fleet is a load generator, not a set of independent houses.
//!
//! One port keyed by serial needs one listener and one socket per connected client, where
//! consecutive ports would need one listener per logger as well (twice the file descriptors).

use std::sync::Arc;

use super::{Simulator, registers};
use crate::profile::Value;

/// N loggers sharing one simulated house; see the module docs.
#[derive(Debug)]
pub struct Fleet {
    sim: Arc<Simulator>,
    first: u32,
    size: u32,
}

impl Fleet {
    /// `size` loggers numbered from `sim`'s logger serial up, sharing `sim`'s house.
    pub fn new(sim: Arc<Simulator>, size: u32) -> Self {
        let first = sim.config().serial;
        // Serials are u32 on the wire: the fleet ends where they do.
        let size = size.min(u32::MAX - first).max(1);
        Self { sim, first, size }
    }

    /// How many loggers it plays.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The simulator every member shares.
    pub fn simulator(&self) -> &Arc<Simulator> {
        &self.sim
    }

    /// The logger serial of member `index` (0-based), if there is such a member.
    pub fn logger_serial(&self, index: u32) -> Option<u32> {
        (index < self.size).then(|| self.first + index)
    }

    /// Whether `serial` is a member's logger serial.
    pub fn has(&self, serial: u32) -> bool {
        serial.checked_sub(self.first).is_some_and(|i| i < self.size)
    }

    /// The inverter serial the member with logger serial `serial` reports: `SIM` and seven
    /// digits of its index, ten characters as a Deye serial is.
    pub fn inverter_serial(&self, serial: u32) -> String {
        format!("SIM{:07}", serial.wrapping_sub(self.first) % 10_000_000)
    }

    /// Writes member `serial`'s own inverter serial into `image`, a register image of the
    /// shared simulator.
    pub(super) fn stamp(&self, serial: u32, image: &mut [u16]) {
        let own = Value::Text(Arc::from(self.inverter_serial(serial).as_str()));
        registers::apply(&self.sim.profile, &[("inverter_serial", own)], image);
    }
}
