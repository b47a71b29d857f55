//! Parallel stacks: several `[[inverter]]`s behind one logger or RS485 gateway, told apart by
//! their Modbus slave id. They share one connection (one request in flight for all of them,
//! docs/protocol.md §2), so they must agree on everything the connection is made of.
//!
//! One `host:port` may also front many V5 loggers, told apart by the logger serial in every
//! frame (a fleet behind one port, as `simulate --fleet N` plays it). Such inverters are not a
//! stack: each has a configured serial of its own and the same slave id, and each gets its own
//! connection. An inverter with another serial *and* another slave id is still read as a stack
//! member that disagrees with its master, and refused, since that is the likelier mistake.

use super::InverterConfig;
use crate::transport::Wire;

/// The inverters that share a connection, as indices into the configured list, each group in
/// configuration order; the first of a group is its master. A lone inverter is a group of one.
pub(crate) fn stacks(inverters: &[InverterConfig]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, inverter) in inverters.iter().enumerate() {
        match groups.iter_mut().find(|g| inverters[g[0]].shares_connection(inverter)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The first disagreement inside a stack, as (index, field, reason): members need distinct
/// slave ids and the same protocol, logger serial, serial line and connection timing.
pub(super) fn problem(inverters: &[InverterConfig]) -> Option<(usize, &'static str, String)> {
    for group in stacks(inverters) {
        let master = &inverters[group[0]];
        for (n, &i) in group.iter().enumerate().skip(1) {
            let member = &inverters[i];
            let with =
                format!("inverter[{}] (`{}`), which is on {} too", group[0], master.name, member.endpoint());
            if let Some(&first) = group[..n].iter().find(|&&j| inverters[j].slave_id == member.slave_id) {
                let reason = format!(
                    "{} is inverter[{first}]'s slave id too; the inverters of a parallel stack need one each \
                     (set them on each inverter's display: Advanced > Parallel > Modbus SN)",
                    member.slave_id
                );
                return Some((i, "slave_id", reason));
            }
            if let Some(field) = member.differs(master) {
                let reason = format!(
                    "differs from {with}; the inverters of a stack share one connection, so set `{field}` alike"
                );
                return Some((i, field, reason));
            }
        }
    }
    None
}

impl InverterConfig {
    /// `host:port` as this inverter is reached, for messages and for grouping.
    pub(super) fn endpoint(&self) -> String {
        self.target().addr()
    }

    /// True when `other` is reached at the same address (a member of the same stack), unless
    /// it is another logger behind the same port (see the module docs).
    fn shares_connection(&self, other: &Self) -> bool {
        let (mine, theirs) = (self.target(), other.target());
        match (&mine.wire, &theirs.wire) {
            (Wire::Serial(a), Wire::Serial(b)) => a.device == b.device,
            (Wire::Serial(_), _) | (_, Wire::Serial(_)) => false,
            _ => {
                mine.host.eq_ignore_ascii_case(&theirs.host)
                    && mine.port == theirs.port
                    && !self.another_logger(other)
            }
        }
    }

    /// True when `other` is another V5 logger behind the same port: both name a logger serial,
    /// the serials differ, and both are the same slave id (the first of its own logger).
    fn another_logger(&self, other: &Self) -> bool {
        let v5 = |i: &Self| match i.target().wire {
            Wire::Solarman { serial } => Some(serial).filter(|s| *s != 0),
            Wire::Auto { serial } => serial,
            _ => None,
        };
        matches!((v5(self), v5(other)), (Some(a), Some(b)) if a != b) && self.slave_id == other.slave_id
    }

    /// The first connection setting `other` has otherwise.
    fn differs(&self, other: &Self) -> Option<&'static str> {
        let fields: [(&'static str, bool); 9] = [
            ("protocol", self.protocol == other.protocol),
            ("serial", self.serial == other.serial),
            ("baud", self.baud == other.baud),
            ("parity", self.parity == other.parity),
            ("stop_bits", self.stop_bits == other.stop_bits),
            ("connect_timeout", self.connect_timeout == other.connect_timeout),
            ("read_timeout", self.read_timeout == other.read_timeout),
            ("request_pause", self.request_pause == other.request_pause),
            ("retries", self.retries == other.retries),
        ];
        fields.into_iter().find(|(_, same)| !same).map(|(field, _)| field)
    }

    /// Whether this inverter's `settings` readings are read and published: as configured, else
    /// on the master of a stack only, whose settings the others follow.
    pub fn shows_settings(&self, master: bool) -> bool {
        self.settings.unwrap_or(master)
    }
}
