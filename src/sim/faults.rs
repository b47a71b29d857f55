//! Fault injection: what the simulator does wrong, and on which request.
//!
//! Every fault imitates something real loggers do (docs/protocol.md §3): answers split over TCP
//! writes (Q4), heartbeats glued to or in place of answers (Q1, Q3), junk before frames (Q12),
//! dropped connections (Q5), damaged frames, the double-CRC firmware bug (Q11), latency (Q15) and
//! AT text in place of V5 (Q12).

use std::time::Duration;

/// The faults a simulator injects; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Write every answer in two TCP writes.
    pub split: bool,
    /// Send a heartbeat carrying the request's own sequence byte before every second answer.
    pub heartbeat: bool,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Close the connection instead of answering every Nth request.
    pub drop_every: Option<u32>,
    /// Damage the Modbus CRC of every Nth answer.
    pub bad_crc_every: Option<u32>,
    /// Send junk bytes before every Nth answer.
    pub garbage_every: Option<u32>,
    /// Append `00 00` after every Modbus CRC, as some Deye firmware does.
    pub double_crc: bool,
    /// Answer every V5 request with an AT text banner and never a V5 frame, as loggers that
    /// speak the AT text protocol on port 8899 do (kbialek/deye-inverter-mqtt#206).
    pub at_text: bool,
}

/// What to do for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Close the connection without answering.
    pub drop: bool,
    /// Send a heartbeat first.
    pub heartbeat: bool,
    /// Send junk first.
    pub garbage: bool,
    /// Damage the CRC.
    pub bad_crc: bool,
    /// Split the answer.
    pub split: bool,
    /// Append the double CRC.
    pub double_crc: bool,
}

/// Junk seen on real V5 sockets: a micro-inverter logger's AT banner, then stray Modbus bytes
/// (docs/protocol.md Q12).
pub(crate) const JUNK: &[u8] = b"AT+YZCMPVER=MW3_16U_5406_2.27\r\n\r\n\xaa\x03\x0a\x00\xbe\x9c";

/// What an AT-text logger sends on port 8899 in place of a V5 answer (kbialek/deye-inverter-mqtt#206).
pub(crate) const AT_BANNER: &[u8] = b"AT+YZCMPVER=MW3_16U_5408_5.0B-S\r\n\r\n";

fn every(n: u64, every: Option<u32>) -> bool {
    every.is_some_and(|e| e > 0 && n.is_multiple_of(u64::from(e)))
}

impl Faults {
    /// The plan for the `n`th request (counting from 1 across all connections).
    pub fn plan(&self, n: u64) -> Plan {
        Plan {
            drop: every(n, self.drop_every),
            heartbeat: self.heartbeat && n.is_multiple_of(2),
            garbage: every(n, self.garbage_every),
            bad_crc: every(n, self.bad_crc_every),
            split: self.split,
            double_crc: self.double_crc,
        }
    }

    /// True when no fault is on.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_gets_the_fault() {
        let faults = Faults { drop_every: Some(3), bad_crc_every: Some(2), ..Faults::default() };
        let drops: Vec<bool> = (1..=6).map(|n| faults.plan(n).drop).collect();
        assert_eq!(drops, [false, false, true, false, false, true]);
        assert!(faults.plan(4).bad_crc && !faults.plan(5).bad_crc);
        assert!(Faults::default().is_clean() && !faults.is_clean());
    }

    #[test]
    fn junk_has_no_start_byte_that_could_be_mistaken_for_a_frame() {
        assert!(!JUNK.contains(&0xa5));
    }
}
