//! Wire formats, sans I/O: bytes in, values out.
//!
//! Owns the Solarman V5 envelope ([`v5`]), the Modbus request/response model ([`pdu`]), the
//! Modbus RTU frame with its CRC ([`rtu`]), the Modbus TCP header ([`mbap`]) and the stream
//! codecs that find frame boundaries in a byte stream ([`codec`]). It must not do I/O and must
//! not know what a register means: that is `profile`'s job.
//!
//! The facts behind every layout here are in `docs/protocol.md`, which cites its sources.

pub mod codec;
pub(crate) mod error;
pub(crate) mod mbap;
pub(crate) mod pdu;
pub mod rtu;
pub mod v5;

pub use error::{Error, Exception, ExceptionCode, LoggerError};
pub use pdu::{Request, Response};

/// What a logger answered to one request: a response, or an exception that is itself an answer.
///
/// The outer `Result` of every call carries only failures (I/O, timeouts, framing); this inner
/// one carries answers that say "no" (docs/style.md §6).
pub type Answer = Result<Response, Exception>;
