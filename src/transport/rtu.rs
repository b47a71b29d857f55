//! The Modbus RTU client: raw RTU frames, with CRC and without an envelope, over a transparent
//! RS485 gateway's TCP socket (Elfin EW11, Waveshare, USR-TCP232) or a local serial port (a USB
//! RS485 adapter).
//!
//! It owns the RTU exchange: the silence a serial line needs before a request, sending the frame,
//! and finding the answer among junk ([`RtuCodec`]). It must not connect, retry or time out:
//! that is [`Link`](super::Link)'s, for every transport alike. Opening a serial port
//! ([`open`]) is here so that `Link` only picks the way in.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until};
use tokio_util::codec::Framed;

use super::{Counters, Error, Event};
use crate::protocol::codec::{Inbound, RtuCodec};
use crate::protocol::{Answer, Request, rtu};

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit (8N1, what Deye and Sunsynk use).
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// A local serial port and its line settings; 8 data bits and no flow control, always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialLine {
    /// The device, e.g. `/dev/ttyUSB0`.
    pub device: String,
    /// Bits per second.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
}

impl SerialLine {
    /// The silence that must precede a request: 3.5 character times of 11 bits (Modbus over
    /// Serial Line v1.02 §2.5.1.1), and never less than the 1.75 ms the spec fixes above
    /// 19200 baud, where a character time is too short for UARTs to time reliably.
    pub fn silence(&self) -> Duration {
        let chars = Duration::from_micros(3_500 * 11 * 1_000 / u64::from(self.baud.max(1)));
        chars.max(Duration::from_micros(1_750))
    }
}

/// Opens `line` as an async serial port: the "connect" of a serial transport.
///
/// # Errors
/// [`Error::Open`] naming the device: absent, busy, or not a serial port.
pub(crate) fn open(line: &SerialLine) -> Result<tokio_serial::SerialStream, Error> {
    use tokio_serial::{SerialPort, SerialPortBuilderExt};
    let parity = match line.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits =
        if line.stop_bits == 2 { tokio_serial::StopBits::Two } else { tokio_serial::StopBits::One };
    tokio_serial::new(&line.device, line.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .and_then(|port| {
            // RTU has no transaction ids: a late answer left in the driver from before a reopen
            // (the link reopens after a timeout) must not pass for the answer to the next request.
            port.clear(tokio_serial::ClearBuffer::Input)?;
            Ok(port)
        })
        .map_err(|e| Error::Open { device: line.device.clone(), cause: e.to_string() })
}

/// A Modbus RTU client over any byte stream: a `TcpStream` to a gateway, a serial port, or a
/// `tokio::io::duplex` in tests. One request in flight (`&mut self`).
#[derive(Debug)]
pub(crate) struct RtuClient<S> {
    framed: Framed<S, RtuCodec>,
    slave: u8,
    silence: Duration,
    /// When the line was last heard or written; the silence counts from here.
    last_activity: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RtuClient<S> {
    /// Wraps `stream`, addressing Modbus slave `slave`, keeping `silence` before each request
    /// (zero for a gateway: it times its own serial side).
    pub(crate) fn new(stream: S, slave: u8, silence: Duration) -> Self {
        Self { framed: Framed::new(stream, RtuCodec::default()), slave, silence, last_activity: None }
    }

    /// Addresses Modbus slave `slave` from the next request on (an inverter of a stack).
    pub(crate) fn set_slave(&mut self, slave: u8) {
        self.slave = slave;
    }

    /// The stream back, for a probe that looks at what came (`probe`).
    pub(crate) fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// Sends `request` and waits for its answer, skipping junk and answers of another shape.
    ///
    /// # Errors
    /// I/O errors, a closed stream, a damaged answer (CRC), or an answer from another slave.
    /// Timeouts are the caller's: this waits for as long as it is polled.
    pub(crate) async fn call(&mut self, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        request.validate()?;
        if let Some(last) = self.last_activity {
            sleep_until(last + self.silence).await;
        }
        // Bytes left from an earlier request can only be stale: drop them (docs/style.md §5).
        self.framed.read_buffer_mut().clear();
        self.framed.codec_mut().expect(self.slave, request);
        let mut frame = BytesMut::with_capacity(9 + 2 * 123);
        rtu::encode_request(self.slave, request, &mut frame);
        let sent = self.framed.send(frame.freeze()).await;
        self.last_activity = Some(Instant::now());
        sent?;
        loop {
            let inbound = self.framed.next().await.ok_or(Error::Closed)??;
            self.last_activity = Some(Instant::now());
            match inbound {
                Inbound::Skipped { bytes, reason } => {
                    counters.add_n(Event::JunkBytes, bytes as u64);
                    // A whole frame of our slave with a bad CRC: our answer, damaged.
                    if let crate::protocol::Error::Crc { .. } = reason {
                        return Err(reason.into());
                    }
                    tracing::trace!(bytes, %reason, "skipped bytes on the RTU line");
                }
                Inbound::Frame(frame) => {
                    return Ok(rtu::decode_answer(self.slave, request, &frame)?.answer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;
    use crate::protocol::{Exception, ExceptionCode, Response};

    const SOC: Request = Request::ReadHolding { addr: 0xb8, count: 1 };
    const SOC_REQUEST: [u8; 8] = [0x01, 0x03, 0x00, 0xb8, 0x00, 0x01, 0x04, 0x2f];
    const SOC_ANSWER: [u8; 7] = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74];

    /// One call against a peer that checks the request bytes and writes `replies` one by one.
    async fn exchange(replies: Vec<Vec<u8>>) -> (Result<Answer, Error>, Counters) {
        let (client_side, mut gateway) = duplex(1024);
        let mut client = RtuClient::new(client_side, 1, Duration::ZERO);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 8];
            gateway.read_exact(&mut request).await.unwrap();
            assert_eq!(request, SOC_REQUEST);
            for reply in replies {
                gateway.write_all(&reply).await.unwrap();
                gateway.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            gateway
        });
        let mut counters = Counters::default();
        let result = client.call(&SOC, &mut counters).await;
        drop(peer.await.unwrap());
        (result, counters)
    }

    #[tokio::test]
    async fn answers_the_worked_example() {
        let (answer, counters) = exchange(vec![SOC_ANSWER.to_vec()]).await;
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
        assert_eq!(counters.get(Event::JunkBytes), 0);
    }

    #[tokio::test]
    async fn junk_before_and_an_answer_split_in_three_still_answer() {
        let junk = b"\x00\x00AT\r\n\x07\x03".to_vec();
        let parts =
            vec![junk.clone(), SOC_ANSWER[..2].to_vec(), SOC_ANSWER[2..5].to_vec(), SOC_ANSWER[5..].to_vec()];
        let (answer, counters) = exchange(parts).await;
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
        assert_eq!(counters.get(Event::JunkBytes), junk.len() as u64);
    }

    #[tokio::test]
    async fn a_bad_crc_is_an_error_not_a_reading() {
        let mut damaged = SOC_ANSWER;
        damaged[4] = 0x42;
        let (answer, _) = exchange(vec![damaged.to_vec()]).await;
        assert!(matches!(answer, Err(Error::Protocol(crate::protocol::Error::Crc { .. }))), "{answer:?}");
    }

    #[tokio::test]
    async fn an_exception_is_an_answer() {
        let (answer, _) = exchange(vec![vec![0x01, 0x83, 0x02, 0xc0, 0xf1]]).await;
        assert_eq!(answer.unwrap(), Err(Exception::Modbus(ExceptionCode::IllegalDataAddress)));
    }

    #[tokio::test]
    async fn an_answer_of_another_shape_is_skipped_and_another_slave_is_an_error() {
        let mut two_registers = BytesMut::new();
        let read2 = Request::ReadHolding { addr: 0xb8, count: 2 };
        rtu::encode_answer(1, &read2, &Ok(Response::Registers(vec![1, 2])), false, &mut two_registers);
        let (answer, counters) = exchange(vec![two_registers.to_vec(), SOC_ANSWER.to_vec()]).await;
        assert_eq!(answer.unwrap(), Ok(Response::Registers(vec![65])));
        assert_eq!(counters.get(Event::JunkBytes), two_registers.len() as u64);

        let mut slave2 = BytesMut::new();
        rtu::encode_answer(2, &SOC, &Ok(Response::Registers(vec![65])), false, &mut slave2);
        let (answer, _) = exchange(vec![slave2.to_vec()]).await;
        let message = answer.unwrap_err().to_string();
        assert_eq!(message, "Modbus slave mismatch: expected 1, got 2");
    }

    #[tokio::test]
    async fn a_closed_stream_is_closed() {
        let (client_side, mut gateway): (DuplexStream, DuplexStream) = duplex(64);
        let mut client = RtuClient::new(client_side, 1, Duration::ZERO);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 8];
            gateway.read_exact(&mut request).await.unwrap();
        });
        let result = client.call(&SOC, &mut Counters::default()).await;
        peer.await.unwrap();
        assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_line_is_quiet_for_the_silence_before_each_request() {
        let line = SerialLine { device: "/dev/null".into(), baud: 9600, parity: Parity::None, stop_bits: 1 };
        assert_eq!(line.silence(), Duration::from_micros(4_010));
        assert_eq!(SerialLine { baud: 115_200, ..line.clone() }.silence(), Duration::from_micros(1_750));
        let (client_side, mut device) = duplex(1024);
        let mut client = RtuClient::new(client_side, 1, line.silence());
        let peer = tokio::spawn(async move {
            let mut stamps = Vec::new();
            for _ in 0..2 {
                let mut request = [0u8; 8];
                device.read_exact(&mut request).await.unwrap();
                stamps.push(Instant::now());
                device.write_all(&SOC_ANSWER).await.unwrap();
            }
            stamps
        });
        let mut counters = Counters::default();
        client.call(&SOC, &mut counters).await.unwrap().unwrap();
        let answered = Instant::now();
        client.call(&SOC, &mut counters).await.unwrap().unwrap();
        let stamps = peer.await.unwrap();
        assert!(stamps[1] - answered >= line.silence(), "{:?}", stamps[1] - answered);
    }
}
