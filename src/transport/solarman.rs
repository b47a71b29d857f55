//! The Solarman V5 client: one request in flight, every answer matched to its question.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::{Counters, Error, Event};
use crate::protocol::codec::{Inbound, V5Codec};
use crate::protocol::v5::{Frame, control};
use crate::protocol::{Answer, Exception, LoggerError, Request, rtu};

/// A V5 client over any byte stream: a `TcpStream` in service, a `tokio::io::duplex` in tests.
#[derive(Debug)]
pub(crate) struct V5Client<S> {
    framed: Framed<S, V5Codec>,
    serial: u32,
    slave: u8,
    seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> V5Client<S> {
    /// Wraps `stream` for the logger with `serial`, addressing Modbus slave `slave`.
    /// `first_seq` is random in service, so late replies to an earlier connection don't match.
    pub(crate) fn new(stream: S, serial: u32, slave: u8, first_seq: u8) -> Self {
        Self { framed: Framed::new(stream, V5Codec), serial, slave, seq: first_seq }
    }

    /// The stream back, for a probe that looks at what came (`probe`).
    pub(crate) fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// Sends `request` and waits for its answer, skipping heartbeats, junk and stale replies.
    ///
    /// # Errors
    /// I/O errors, a closed connection, a damaged answer (checksum, CRC), or an answer from
    /// another logger. Timeouts are the caller's: this waits for as long as it is polled.
    pub(crate) async fn call(&mut self, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        request.validate()?;
        // Bytes left from an earlier request can only be stale: drop them (docs/style.md §5).
        self.framed.read_buffer_mut().clear();
        self.seq = self.seq.wrapping_add(1);
        let mut rtu = BytesMut::with_capacity(8 + 2 * 123);
        rtu::encode_request(self.slave, request, &mut rtu);
        self.framed.send(Frame::request(self.seq, self.serial, &rtu)).await?;
        let junk_before = counters.get(Event::JunkBytes);
        loop {
            let inbound = self.framed.next().await.ok_or(Error::Closed)??;
            if let Some(answer) = self.accept(inbound, request, counters)? {
                // Log once per answer, not per skipped byte: back in step is the news.
                let skipped = counters.get(Event::JunkBytes) - junk_before;
                if skipped > 0 {
                    tracing::debug!(skipped, "back in step after skipping junk bytes");
                }
                return Ok(answer);
            }
        }
    }

    /// Decides what one inbound item means for the request in flight.
    fn accept(
        &self,
        inbound: Inbound<Frame>,
        request: &Request,
        counters: &mut Counters,
    ) -> Result<Option<Answer>, Error> {
        let frame = match inbound {
            Inbound::Skipped { bytes, reason } => {
                counters.add_n(Event::JunkBytes, bytes as u64);
                // A checksum error means a whole frame arrived damaged, most likely ours.
                return match reason {
                    crate::protocol::Error::Checksum { .. } => Err(reason.into()),
                    _ => Ok(None),
                };
            }
            Inbound::Frame(frame) => frame,
        };
        match frame.control {
            control::RESPONSE if frame.seq_client == self.seq => {}
            control::RESPONSE => {
                counters.add(Event::StaleFrame);
                return Ok(None);
            }
            control::HEARTBEAT => {
                counters.add(Event::Heartbeat);
                return Ok(None);
            }
            _ => {
                counters.add(Event::Unsolicited);
                return Ok(None);
            }
        }
        self.answer(&frame, request, counters).map(Some)
    }

    /// Reads the answer out of a response that carries our sequence number.
    fn answer(&self, frame: &Frame, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        if frame.serial != self.serial {
            return Err(crate::protocol::Error::SerialMismatch {
                expected: self.serial,
                actual: frame.serial,
            }
            .into());
        }
        let payload = frame.response_payload()?;
        if payload.frame_type != 0x02 {
            return Err(crate::protocol::Error::FrameType { actual: payload.frame_type }.into());
        }
        if let [a, b] = payload.modbus[..] {
            return Ok(Err(Exception::Logger(LoggerError::from_bytes([a, b]))));
        }
        let decoded = rtu::decode_answer(self.slave, request, &payload.modbus).inspect_err(|e| {
            tracing::debug!(error = %e, modbus = %hex(&payload.modbus), "answer rejected");
        })?;
        if decoded.double_crc {
            counters.add(Event::DoubleCrc);
        }
        Ok(decoded.answer)
    }
}

/// Bytes as spaced hex, for debug logs of frames we refused.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;
    use crate::protocol::Response;
    use crate::protocol::v5::tests::{HEARTBEAT, SOC_REQUEST, SOC_RESPONSE};

    const SOC: Request = Request::ReadHolding { addr: 0xb8, count: 1 };

    /// Runs one call against a peer that checks the request bytes and answers with `reply`.
    async fn exchange(reply: Vec<u8>) -> (Result<Answer, Error>, Counters) {
        let (client_side, mut logger) = duplex(1024);
        let mut client = V5Client::new(client_side, 2_712_345_678, 1, 0x40);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 36];
            logger.read_exact(&mut request).await.unwrap();
            assert_eq!(request, SOC_REQUEST);
            logger.write_all(&reply).await.unwrap();
            logger
        });
        let mut counters = Counters::default();
        let result = client.call(&SOC, &mut counters).await;
        drop(peer.await.unwrap());
        (result, counters)
    }

    #[tokio::test]
    async fn answers_the_worked_example() {
        let (answer, _) = exchange(SOC_RESPONSE.to_vec()).await;
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
    }

    #[tokio::test]
    async fn skips_a_heartbeat_carrying_our_sequence_and_a_stale_reply() {
        let mut stale = SOC_RESPONSE;
        stale[5] = 0x40; // the previous request's sequence byte
        stale[32] = stale[32].wrapping_sub(1); // keep the checksum right
        let (answer, counters) = exchange([&HEARTBEAT[..], &stale[..], &SOC_RESPONSE[..]].concat()).await;
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
        assert_eq!((counters.get(Event::Heartbeat), counters.get(Event::StaleFrame)), (1, 1));
    }

    #[tokio::test]
    async fn a_damaged_answer_is_an_error_not_a_reading() {
        let mut damaged = SOC_RESPONSE;
        damaged[29] = 0x42; // the register's low byte changes: the checksum no longer adds up
        let (answer, counters) = exchange(damaged.to_vec()).await;
        assert!(matches!(answer, Err(Error::Protocol(crate::protocol::Error::Checksum { .. }))));
        assert_eq!(counters.get(Event::JunkBytes), 1);
    }

    #[tokio::test]
    async fn a_keep_alive_frame_type_is_not_an_answer() {
        let mut keep_alive = SOC_RESPONSE;
        keep_alive[11] = 0x00;
        keep_alive[32] = keep_alive[32].wrapping_sub(2);
        let (answer, _) = exchange(keep_alive.to_vec()).await;
        assert_eq!(
            answer.unwrap_err().to_string(),
            "V5 response has frame type 0x00, expected 0x02 (inverter)"
        );
    }

    #[tokio::test]
    async fn another_loggers_answer_names_its_serial() {
        let mut other = SOC_RESPONSE;
        other[7] = 0x4f;
        other[32] = other[32].wrapping_add(1);
        let (answer, _) = exchange(other.to_vec()).await;
        let message = answer.unwrap_err().to_string();
        assert!(message.contains("the logger says it is 2712345679"), "{message}");
    }
}
