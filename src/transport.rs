//! Async clients that carry Modbus requests to a logger and bring the answers back: Solarman
//! V5, Modbus TCP, and raw Modbus RTU over a gateway's TCP socket or a local serial port.
//!
//! One persistent connection per logger ([`Link`]): connect and read timeouts, at most one
//! request in flight (`&mut self`), a pause between requests, reconnects with exponential
//! backoff and jitter, retries of requests whose answer was lost or damaged, and a count of
//! every kind of trouble ([`Counters`]). It must not know what a register means.

pub(crate) mod counters;
pub(crate) mod link;
pub mod loggers;
pub(crate) mod modbus_tcp;
mod probe;
pub(crate) mod rtu;
pub(crate) mod solarman;

use std::future::Future;
use std::time::Duration;

pub use counters::{Counters, Event};
pub use link::{Link, LinkSettings, Target, Unit, Wire};
pub use loggers::LoggerBook;
pub use rtu::{Parity, SerialLine};

use crate::protocol::{self, Answer, Request};

/// A request that did not get an answer. Answers that say "no" (exceptions) are not errors:
/// they are the inner `Result` of [`Answer`] (docs/style.md §6).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connect failed.
    #[error("cannot connect to {addr}: {cause}")]
    Connect {
        /// host:port.
        addr: String,
        /// Why (kept out of the error chain: the message already says it).
        cause: std::io::Error,
    },
    /// The TCP connect took too long.
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// host:port.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// The serial port could not be opened.
    #[error("cannot open serial port {device}: {cause}")]
    Open {
        /// The device path.
        device: String,
        /// Why: absent, busy, no permission, not a serial port.
        cause: String,
    },
    /// `protocol = "auto"`: nothing answered the probe read of register 0.
    #[error(
        "{addr} answered none of {tried} to a read of register 0; set `protocol` (and `port`), see docs/configuration.md"
    )]
    Undetected {
        /// host:port.
        addr: String,
        /// The protocols tried, in order.
        tried: String,
    },
    /// Connects are paused after failures.
    #[error("logger unreachable ({failures} failed connects); next attempt in {retry_in:.1?}")]
    Backoff {
        /// Consecutive failed connects.
        failures: u32,
        /// Time until the next attempt.
        retry_in: Duration,
    },
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The logger closed the connection.
    #[error("the logger closed the connection")]
    Closed,
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame that could not be trusted.
    #[error(transparent)]
    Protocol(#[from] protocol::Error),
    /// The logger answered in AT text and never in V5 or Modbus: another protocol, not a
    /// damaged frame.
    #[error(
        "the logger at {addr} answers the AT text protocol, not Solarman V5 or Modbus (it said \
         `{text}`): update the logger's firmware, or wire the inverter's RS485 port to a gateway or \
         a USB RS485 adapter (docs/install.md); if port 502 answers, set protocol = \"modbus-tcp\""
    )]
    AtText {
        /// host:port.
        addr: String,
        /// The first AT line it sent, e.g. `AT+YZCMPVER=MW3_16U_5408_5.0B-S`.
        text: String,
    },
}

impl Error {
    /// The counter this error feeds, if any.
    pub fn event(&self) -> Option<Event> {
        Some(match self {
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Open { .. }
            | Self::Undetected { .. } => Event::ConnectFailure,
            Self::Backoff { .. } => return None,
            Self::Timeout(_) => Event::Timeout,
            Self::Closed => Event::Closed,
            Self::Io(_) => Event::Io,
            Self::Protocol(protocol::Error::Checksum { .. }) => Event::Checksum,
            Self::Protocol(protocol::Error::Crc { .. }) => Event::Crc,
            Self::Protocol(protocol::Error::SerialMismatch { .. }) => Event::SerialMismatch,
            Self::Protocol(_) | Self::AtText { .. } => Event::Malformed,
        })
    }

    /// True when sending the request again may succeed: the answer was lost or damaged.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Closed | Self::Io(_) => true,
            Self::Protocol(e) => {
                !matches!(e, protocol::Error::SerialMismatch { .. } | protocol::Error::Count { .. })
            }
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Open { .. }
            | Self::Undetected { .. }
            | Self::AtText { .. }
            | Self::Backoff { .. } => false,
        }
    }

    /// True when the connection can no longer be trusted and must be opened anew.
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Closed | Self::Io(_) | Self::AtText { .. })
    }
}

/// Something that carries Modbus requests to an inverter: what the poller needs.
pub trait Transport: Send {
    /// Sends `request` and returns its answer.
    ///
    /// # Errors
    /// [`Error`] when no trustworthy answer came back.
    fn call(&mut self, request: &Request) -> impl Future<Output = Result<Answer, Error>> + Send;

    /// What has happened on this transport so far.
    fn counters(&self) -> &Counters;
}
