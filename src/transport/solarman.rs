//! The Solarman V5 client: one request in flight, every answer matched to its question.
//!
//! It also learns what a logger tells about itself: the logger's own serial from the `06 00`
//! answer to a request with another serial (docs/protocol.md Q9), when it may; and whether the
//! logger speaks the AT text protocol instead of V5 (AT text and never a V5 frame). It must
//! not decide what to do with either beyond this connection: the [`Link`](super::Link) keeps
//! the serial and turns the AT text into its error.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed, FramedParts};

use super::{Counters, Error, Event};
use crate::protocol::codec::{Inbound, V5Codec};
use crate::protocol::v5::{self, Frame, control};
use crate::protocol::{Answer, Exception, LoggerError, Request, rtu};

/// The V5 codec plus a note of the AT text it skipped and whether any V5 frame arrived.
#[derive(Debug, Default)]
struct WatchfulCodec {
    /// The first AT line seen on this connection.
    at_text: Option<String>,
    /// True once a V5 frame came: from then on AT text is only junk (docs/protocol.md Q12).
    spoke_v5: bool,
}

impl Decoder for WatchfulCodec {
    type Item = Inbound<Frame>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if buf.first().is_some_and(|b| *b != v5::START) {
            let junk_end = buf.iter().position(|&b| b == v5::START).unwrap_or(buf.len());
            if junk_end == buf.len() && v5::could_become_at_text(buf) {
                return Ok(None);
            }
            if self.at_text.is_none() {
                self.at_text = v5::at_text(&buf[..junk_end]);
            }
        }
        let item = V5Codec.decode(buf)?;
        self.spoke_v5 |= matches!(item, Some(Inbound::Frame(_)));
        Ok(item)
    }
}

impl Encoder<Frame> for WatchfulCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, buf: &mut BytesMut) -> Result<(), Self::Error> {
        V5Codec.encode(frame, buf)
    }
}

/// What one exchange brought back.
enum Outcome {
    /// The answer to the request.
    Answer(Answer),
    /// The logger refused our serial (`06 00`) and named its own, which we may adopt.
    OwnSerial(u32),
}

/// A V5 client over any byte stream: a `TcpStream` in service, a `tokio::io::duplex` in tests.
#[derive(Debug)]
pub(crate) struct V5Client<S> {
    framed: Framed<S, WatchfulCodec>,
    serial: u32,
    /// May the client adopt the serial a logger names? Not when the user pinned one.
    learn: bool,
    slave: u8,
    seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> V5Client<S> {
    /// Wraps `stream` for the logger with `serial`, addressing Modbus slave `slave`.
    /// `first_seq` is random in service, so late replies to an earlier connection don't match.
    pub(crate) fn new(stream: S, serial: u32, slave: u8, first_seq: u8) -> Self {
        // A V5 request is 36 bytes and an answer at most ~290; `Framed::new` would allocate 8 KiB
        // for each direction, 16 KiB per connection, most of a fleet's memory per inverter.
        // The buffers grow should a frame ever need it.
        let mut parts = FramedParts::new::<Frame>(stream, WatchfulCodec::default());
        (parts.read_buf, parts.write_buf) = (BytesMut::with_capacity(512), BytesMut::with_capacity(64));
        let framed = Framed::from_parts(parts);
        Self { framed, serial, learn: false, slave, seq: first_seq }
    }

    /// Lets the client adopt the serial the logger names when it refuses ours: the serial was
    /// not configured (0), or was learned earlier and may have changed with the logger.
    pub(crate) fn learning(mut self) -> Self {
        self.learn = true;
        self
    }

    /// The serial the client sends now: the one it was made with, or the one it learned.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    /// The AT line this connection brought instead of any V5 frame, if it did.
    pub(crate) fn at_text_only(&self) -> Option<&str> {
        let codec = self.framed.codec();
        codec.at_text.as_deref().filter(|_| !codec.spoke_v5)
    }

    /// Addresses Modbus slave `slave` from the next request on (an inverter of a stack).
    pub(crate) fn set_slave(&mut self, slave: u8) {
        self.slave = slave;
    }

    /// The stream back, for a probe that looks at what came (`probe`).
    pub(crate) fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// Sends `request` and waits for its answer, skipping heartbeats, junk and stale replies.
    /// A logger that refuses our serial and names its own gets the request once more with
    /// that serial, when the client may learn it.
    ///
    /// # Errors
    /// I/O errors, a closed connection, a damaged answer (checksum, CRC), or an answer from
    /// another logger. Timeouts are the caller's: this waits for as long as it is polled.
    pub(crate) async fn call(&mut self, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        request.validate()?;
        let actual = match self.exchange(request, counters).await? {
            Outcome::Answer(answer) => return Ok(answer),
            Outcome::OwnSerial(actual) => actual,
        };
        counters.add(Event::SerialMismatch);
        self.adopt(actual);
        match self.exchange(request, counters).await? {
            Outcome::Answer(answer) => Ok(answer),
            // A logger that refuses the serial it just named is not one to argue with.
            Outcome::OwnSerial(actual) => Err(self.mismatch(actual)),
        }
    }

    /// Takes the serial the logger named, and says so once: the Link keeps it from now on.
    fn adopt(&mut self, serial: u32) {
        if self.serial == 0 {
            tracing::info!(
                "the logger's serial is {serial}; using it (add `serial = {serial}` to the config to pin it)"
            );
        } else {
            tracing::warn!(
                "the logger now says its serial is {serial}, not {} as learned before; using it",
                self.serial
            );
        }
        self.serial = serial;
    }

    fn mismatch(&self, actual: u32) -> Error {
        crate::protocol::Error::SerialMismatch { expected: self.serial, actual }.into()
    }

    /// One request sent, one answer (or the logger's own serial) back.
    async fn exchange(&mut self, request: &Request, counters: &mut Counters) -> Result<Outcome, Error> {
        // Bytes left from an earlier request can only be stale: drop them (docs/style.md §5).
        self.framed.read_buffer_mut().clear();
        self.seq = self.seq.wrapping_add(1);
        let mut rtu = BytesMut::with_capacity(8 + 2 * 123);
        rtu::encode_request(self.slave, request, &mut rtu);
        self.framed.send(Frame::request(self.seq, self.serial, &rtu)).await?;
        let junk_before = counters.get(Event::JunkBytes);
        loop {
            let inbound = self.framed.next().await.ok_or(Error::Closed)??;
            if let Some(outcome) = self.accept(inbound, request, counters)? {
                // Log once per answer, not per skipped byte: back in step is the news.
                let skipped = counters.get(Event::JunkBytes) - junk_before;
                if skipped > 0 {
                    tracing::debug!(skipped, "back in step after skipping junk bytes");
                }
                return Ok(outcome);
            }
        }
    }

    /// Decides what one inbound item means for the request in flight.
    fn accept(
        &self,
        inbound: Inbound<Frame>,
        request: &Request,
        counters: &mut Counters,
    ) -> Result<Option<Outcome>, Error> {
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
    fn answer(&self, frame: &Frame, request: &Request, counters: &mut Counters) -> Result<Outcome, Error> {
        let payload = frame.response_payload()?;
        if frame.serial != self.serial {
            // Only the `06 00` refusal names the logger's own serial (Q9); any other frame
            // with a foreign serial is someone else's answer.
            let refused = payload.modbus[..] == LoggerError::SerialNotMatched.to_bytes();
            if self.learn && refused && frame.serial != 0 {
                return Ok(Outcome::OwnSerial(frame.serial));
            }
            return Err(self.mismatch(frame.serial));
        }
        if payload.frame_type != 0x02 {
            return Err(crate::protocol::Error::FrameType { actual: payload.frame_type }.into());
        }
        if let [a, b] = payload.modbus[..] {
            return Ok(Outcome::Answer(Err(Exception::Logger(LoggerError::from_bytes([a, b])))));
        }
        let decoded = rtu::decode_answer(self.slave, request, &payload.modbus).inspect_err(|e| {
            tracing::debug!(error = %e, modbus = %hex(&payload.modbus), "answer rejected");
        })?;
        if decoded.double_crc {
            counters.add(Event::DoubleCrc);
        }
        Ok(Outcome::Answer(decoded.answer))
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

    /// The `06 00` refusal a logger with serial 2712345678 sends to a request with sequence `seq`.
    fn refusal(seq: u8) -> Vec<u8> {
        let times = crate::protocol::v5::LoggerTimes::default();
        let modbus = LoggerError::SerialNotMatched.to_bytes();
        let mut buf = BytesMut::new();
        Frame::response([seq, 1], 2_712_345_678, times, &modbus).encode(&mut buf);
        buf.to_vec()
    }

    #[tokio::test]
    async fn without_a_serial_it_learns_the_loggers_and_asks_again() {
        let (client_side, mut logger) = duplex(1024);
        let mut client = V5Client::new(client_side, 0, 1, 0x3f).learning();
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 36];
            logger.read_exact(&mut request).await.unwrap();
            assert_eq!(request[7..11], [0, 0, 0, 0], "the first request carries serial 0");
            logger.write_all(&refusal(request[5])).await.unwrap();
            logger.read_exact(&mut request).await.unwrap();
            assert_eq!(request, SOC_REQUEST, "the second carries the logger's serial");
            logger.write_all(&SOC_RESPONSE).await.unwrap();
            logger
        });
        let mut counters = Counters::default();
        let answer = client.call(&SOC, &mut counters).await;
        drop(peer.await.unwrap());
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
        assert_eq!((client.serial(), counters.get(Event::SerialMismatch)), (2_712_345_678, 1));
    }

    #[tokio::test]
    async fn a_pinned_serial_is_not_replaced() {
        let (client_side, mut logger) = duplex(1024);
        let mut client = V5Client::new(client_side, 2_712_345_679, 1, 0x40);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 36];
            logger.read_exact(&mut request).await.unwrap();
            logger.write_all(&refusal(request[5])).await.unwrap();
            logger
        });
        let answer = client.call(&SOC, &mut Counters::default()).await;
        drop(peer.await.unwrap());
        let message = answer.unwrap_err().to_string();
        assert!(message.contains("expected 2712345679, the logger says it is 2712345678"), "{message}");
        assert_eq!(client.serial(), 2_712_345_679);
    }

    #[tokio::test]
    async fn at_text_without_a_v5_frame_is_noted_and_with_one_is_junk() {
        let (client_side, mut logger) = duplex(1024);
        let mut client = V5Client::new(client_side, 2_712_345_678, 1, 0x3f);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 36];
            logger.read_exact(&mut request).await.unwrap();
            // A banner split mid-marker must still be recognised.
            logger.write_all(b"A").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            logger.write_all(b"T+YZCMPVER=MW3_16U_5408_5.0B-S\r\n\r\n").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            logger
        });
        let mut counters = Counters::default();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), client.call(&SOC, &mut counters));
        assert!(waited.await.is_err(), "no V5 answer: the call waits until the caller's timeout");
        assert_eq!(client.at_text_only(), Some("AT+YZCMPVER=MW3_16U_5408_5.0B-S"));
        let mut logger = peer.await.unwrap();
        let answered = tokio::spawn(async move {
            let mut request = [0u8; 36];
            logger.read_exact(&mut request).await.unwrap();
            logger.write_all(&SOC_RESPONSE).await.unwrap();
            logger
        });
        let _ = client.call(&SOC, &mut counters).await;
        drop(answered.await.unwrap());
        assert_eq!(client.at_text_only(), None, "a logger that speaks V5 at all is a V5 logger");
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
