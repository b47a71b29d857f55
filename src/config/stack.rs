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
///
/// Each inverter's [`Place`] is made once, so a fleet of thousands compares small keys, not
/// freshly built targets, against each group's master.
pub(crate) fn stacks(inverters: &[InverterConfig]) -> Vec<Vec<usize>> {
    let places: Vec<Place> = inverters.iter().map(InverterConfig::place).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, place) in places.iter().enumerate() {
        match groups.iter_mut().find(|g| places[g[0]].shares_connection(place)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// Where an inverter's connection goes, as far as grouping cares.
#[derive(Debug, PartialEq, Eq)]
enum Where {
    /// A serial line, by device.
    Device(String),
    /// A network address: the host lowercased, and the port.
    Net(String, u16),
}

/// An inverter's connection and what tells it apart behind one port: its V5 logger serial (when
/// it names one) and its slave id.
#[derive(Debug)]
struct Place {
    at: Where,
    v5: Option<u32>,
    slave: u8,
}

impl Place {
    /// True when `other` is reached over the same connection (a member of the same stack),
    /// unless it is another V5 logger behind the same port: both name a logger serial, the
    /// serials differ, and both are the same slave id (the first of its own logger).
    fn shares_connection(&self, other: &Self) -> bool {
        let another_logger =
            matches!((self.v5, other.v5), (Some(a), Some(b)) if a != b) && self.slave == other.slave;
        self.at == other.at && !(matches!(self.at, Where::Net(..)) && another_logger)
    }
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

    /// Where this inverter's connection goes, for [`stacks`].
    fn place(&self) -> Place {
        let target = self.target();
        let v5 = match target.wire {
            Wire::Solarman { serial } => Some(serial).filter(|s| *s != 0),
            Wire::Auto { serial } => serial,
            _ => None,
        };
        let at = match target.wire {
            Wire::Serial(line) => Where::Device(line.device),
            _ => Where::Net(target.host.to_ascii_lowercase(), target.port),
        };
        Place { at, v5, slave: self.slave_id }
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
