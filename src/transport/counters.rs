//! Counts of what happened on a logger link, by kind, kept for metrics and diagnostics.

/// One kind of event on a link. Stable names: they become metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A TCP connect failed or timed out.
    ConnectFailure,
    /// A connection was opened (the first one included).
    Connect,
    /// No answer within the read timeout.
    Timeout,
    /// The logger closed the connection.
    Closed,
    /// Another I/O error.
    Io,
    /// A V5 frame with a bad checksum.
    Checksum,
    /// A Modbus frame with a bad CRC.
    Crc,
    /// Another malformed or mismatched frame.
    Malformed,
    /// A frame from another logger serial.
    SerialMismatch,
    /// Bytes skipped to get back in step (counted in bytes).
    JunkBytes,
    /// A response to an earlier request, skipped.
    StaleFrame,
    /// An unsolicited heartbeat.
    Heartbeat,
    /// Another unsolicited frame (handshake, data, info, report).
    Unsolicited,
    /// An answer with the Deye double-CRC bug.
    DoubleCrc,
    /// A Modbus exception answer.
    Exception,
    /// A logger error answer (`05 00`, `06 00`).
    LoggerError,
    /// A request sent again after a failure.
    Retry,
}

impl Event {
    /// Every kind, in a stable order.
    pub const ALL: [Event; 17] = [
        Self::ConnectFailure,
        Self::Connect,
        Self::Timeout,
        Self::Closed,
        Self::Io,
        Self::Checksum,
        Self::Crc,
        Self::Malformed,
        Self::SerialMismatch,
        Self::JunkBytes,
        Self::StaleFrame,
        Self::Heartbeat,
        Self::Unsolicited,
        Self::DoubleCrc,
        Self::Exception,
        Self::LoggerError,
        Self::Retry,
    ];

    /// The name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectFailure => "connect_failure",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::Io => "io",
            Self::Checksum => "checksum",
            Self::Crc => "crc",
            Self::Malformed => "malformed",
            Self::SerialMismatch => "serial_mismatch",
            Self::JunkBytes => "junk_bytes",
            Self::StaleFrame => "stale_frame",
            Self::Heartbeat => "heartbeat",
            Self::Unsolicited => "unsolicited",
            Self::DoubleCrc => "double_crc",
            Self::Exception => "exception",
            Self::LoggerError => "logger_error",
            Self::Retry => "retry",
        }
    }
}

/// A counter per [`Event`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    counts: [u64; Event::ALL.len()],
}

impl Counters {
    /// Counts one event.
    pub fn add(&mut self, event: Event) {
        self.add_n(event, 1);
    }

    /// Counts `n` events.
    pub fn add_n(&mut self, event: Event, n: u64) {
        self.counts[event as usize] += n;
    }

    /// The count of `event`.
    pub fn get(&self, event: Event) -> u64 {
        self.counts[event as usize]
    }

    /// Every kind with its count.
    pub fn iter(&self) -> impl Iterator<Item = (Event, u64)> + '_ {
        Event::ALL.iter().map(|e| (*e, self.get(*e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_slot() {
        let mut c = Counters::default();
        for (n, e) in Event::ALL.iter().enumerate() {
            c.add_n(*e, n as u64 + 1);
        }
        for (n, (e, count)) in c.iter().enumerate() {
            assert_eq!((e, count), (Event::ALL[n], n as u64 + 1));
        }
    }
}
