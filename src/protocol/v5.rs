//! The Solarman V5 envelope that Wi-Fi loggers wrap around Modbus RTU (TCP port 8899).
//!
//! ```text
//! offset  size  field                      (all little-endian)
//! 0       1     start 0xA5
//! 1       2     payload length n
//! 3       2     control code (0x4510 request, 0x1510 response, 0x4710 heartbeat, ...)
//! 5       1     sequence, client byte: echoed by the logger, checked by us
//! 6       1     sequence, logger byte: the logger's own counter, not checked
//! 7       4     logger serial (u32)
//! 11      n     payload
//! 11+n    1     checksum: sum of bytes 1..11+n, mod 256
//! 12+n    1     end 0x15
//! ```
//! Request payload: frame type 0x02, sensor type u16, three u32 time fields (all 0), RTU frame.
//! Response payload: frame type, status, total working time, power-on time, offset time (u32
//! each), then the RTU frame, or two bytes of logger error. Source: docs/protocol.md §2.1–2.6.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Error;

/// First byte of every frame.
pub const START: u8 = 0xa5;
/// Last byte of every frame.
pub const END: u8 = 0x15;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 11;
/// Header plus checksum and end byte: wire length = payload length + 13.
pub const OVERHEAD: usize = HEADER_LEN + 2;
/// The largest payload we accept; a 125-register answer needs 271 bytes. A larger length is
/// junk that happens to start with 0xA5, and waiting for it would stall the stream.
pub const MAX_PAYLOAD: usize = 1024;
/// Bytes of a request payload before the RTU frame.
pub const REQUEST_PREFIX: usize = 15;
/// Bytes of a response payload before the RTU frame.
pub const RESPONSE_PREFIX: usize = 14;

/// V5 control codes (docs/protocol.md §2.5). A response code is its request's code − 0x3000.
pub mod control {
    /// Handshake (logger → server mode).
    pub const HANDSHAKE: u16 = 0x4110;
    /// Data push (logger → server mode).
    pub const DATA: u16 = 0x4210;
    /// Logger info: firmware, IP, SSID.
    pub const INFO: u16 = 0x4310;
    /// A Modbus RTU request from a client.
    pub const REQUEST: u16 = 0x4510;
    /// The logger's unsolicited heartbeat, about every two minutes.
    pub const HEARTBEAT: u16 = 0x4710;
    /// Report.
    pub const REPORT: u16 = 0x4810;
    /// The logger's answer to [`REQUEST`].
    pub const RESPONSE: u16 = REQUEST - 0x3000;
    /// Every request-side code; each has a response code 0x3000 lower.
    pub const REQUESTS: [u16; 6] = [HANDSHAKE, DATA, INFO, REQUEST, HEARTBEAT, REPORT];

    /// True for the codes the V5 protocol defines, in either direction.
    pub fn is_known(code: u16) -> bool {
        REQUESTS.iter().any(|&request| code == request || code == request - 0x3000)
    }
}

/// How answers of the AT text protocol begin: `+ok`, `+ERR=…`, or an `AT+…` line (the logger's
/// Wi-Fi module speaking its configuration protocol; kbialek/deye-inverter-mqtt#123, #206).
pub const AT_MARKERS: [&[u8]; 3] = [b"AT+", b"+ok", b"+ERR"];

/// The longest AT line [`at_text`] quotes: enough for a firmware banner, not a flood.
const AT_QUOTE_MAX: usize = 64;

/// The first line of `junk` when it is AT text, for an error message.
///
/// Only the start of the junk counts: AT text inside binary noise is noise. The caller decides
/// what it means, because some V5 loggers push an `AT+YZCMPVER=…` banner and then answer in V5
/// all the same (docs/protocol.md Q12): AT text is proof of the wrong protocol only when no V5
/// frame follows.
pub fn at_text(junk: &[u8]) -> Option<String> {
    if !AT_MARKERS.iter().any(|marker| junk.starts_with(marker)) {
        return None;
    }
    let line = junk.iter().take_while(|b| b.is_ascii_graphic() || **b == b' ').take(AT_QUOTE_MAX);
    Some(line.map(|b| char::from(*b)).collect())
}

/// True while `junk` could still grow into the start of AT text: wait for more bytes before
/// judging it, or a banner split over two TCP reads goes unrecognised.
pub fn could_become_at_text(junk: &[u8]) -> bool {
    !junk.is_empty() && AT_MARKERS.iter().any(|marker| junk.len() < marker.len() && marker.starts_with(junk))
}

/// One V5 frame of any control code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The control code.
    pub control: u16,
    /// The client's sequence byte (echoed in responses).
    pub seq_client: u8,
    /// The logger's own sequence byte.
    pub seq_logger: u8,
    /// The logger serial.
    pub serial: u32,
    /// Everything between header and checksum.
    pub payload: Bytes,
}

/// The time fields of a response, as the logger reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoggerTimes {
    /// Seconds the logger has been in operation.
    pub total_working: u32,
    /// Seconds since the logger powered on.
    pub power_on: u32,
    /// Logger timestamp minus total working time.
    pub offset: u32,
}

/// The parsed payload of a 0x1510 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePayload {
    /// Frame type: 0x02 inverter, 0x01 logger, 0x00 keep-alive.
    pub frame_type: u8,
    /// Status: 0x01 real-time data.
    pub status: u8,
    /// The logger's clocks.
    pub times: LoggerTimes,
    /// The RTU frame, or two bytes of logger error.
    pub modbus: Bytes,
}

/// The V5 checksum: the low byte of the sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

impl Frame {
    /// Appends the whole frame to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.reserve(self.payload.len() + OVERHEAD);
        buf.put_u8(START);
        buf.put_u16_le(self.payload.len() as u16);
        buf.put_u16_le(self.control);
        buf.put_u8(self.seq_client);
        buf.put_u8(self.seq_logger);
        buf.put_u32_le(self.serial);
        buf.put_slice(&self.payload);
        let sum = checksum(&buf[start + 1..]);
        buf.put_u8(sum);
        buf.put_u8(END);
    }

    /// Reads one frame from the start of `buf`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete (docs/style.md §2), and the frame with the number
    /// of bytes it took otherwise. Checks run in wire order, so junk that starts with 0xA5 is
    /// usually refused by its control code before we wait for a length it made up.
    ///
    /// # Errors
    /// [`Error::StartByte`], [`Error::UnknownControlCode`], [`Error::LengthTooLarge`],
    /// [`Error::EndByte`] or [`Error::Checksum`].
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, Error> {
        let Some(&first) = buf.first() else { return Ok(None) };
        if first != START {
            return Err(Error::StartByte { actual: first });
        }
        if buf.len() < 5 {
            return Ok(None);
        }
        let control = u16::from_le_bytes([buf[3], buf[4]]);
        if !control::is_known(control) {
            return Err(Error::UnknownControlCode { actual: control });
        }
        let length = usize::from(u16::from_le_bytes([buf[1], buf[2]]));
        if length > MAX_PAYLOAD {
            return Err(Error::LengthTooLarge { length, max: MAX_PAYLOAD });
        }
        let total = length + OVERHEAD;
        if buf.len() < total {
            return Ok(None);
        }
        if buf[total - 1] != END {
            return Err(Error::EndByte { actual: buf[total - 1] });
        }
        let expected = checksum(&buf[1..total - 2]);
        if buf[total - 2] != expected {
            return Err(Error::Checksum { expected, actual: buf[total - 2] });
        }
        let mut header = &buf[5..HEADER_LEN];
        let frame = Self {
            control,
            seq_client: header.get_u8(),
            seq_logger: header.get_u8(),
            serial: header.get_u32_le(),
            payload: Bytes::copy_from_slice(&buf[HEADER_LEN..HEADER_LEN + length]),
        };
        Ok(Some((frame, total)))
    }

    /// A 0x4510 request carrying the RTU frame `rtu`.
    pub fn request(seq: u8, serial: u32, rtu: &[u8]) -> Self {
        let mut payload = BytesMut::with_capacity(REQUEST_PREFIX + rtu.len());
        payload.put_u8(0x02); // frame type: solar inverter
        payload.put_u16_le(0); // sensor type
        payload.put_bytes(0, 12); // total working, power-on and offset time
        payload.put_slice(rtu);
        Self { control: control::REQUEST, seq_client: seq, seq_logger: 0, serial, payload: payload.freeze() }
    }

    /// A 0x1510 response carrying `modbus` (an RTU frame or two bytes of logger error).
    pub fn response(seq: [u8; 2], serial: u32, times: LoggerTimes, modbus: &[u8]) -> Self {
        let mut payload = BytesMut::with_capacity(RESPONSE_PREFIX + modbus.len());
        payload.put_u8(0x02); // frame type: solar inverter
        payload.put_u8(0x01); // status: real-time data
        payload.put_u32_le(times.total_working);
        payload.put_u32_le(times.power_on);
        payload.put_u32_le(times.offset);
        payload.put_slice(modbus);
        Self {
            control: control::RESPONSE,
            seq_client: seq[0],
            seq_logger: seq[1],
            serial,
            payload: payload.freeze(),
        }
    }

    /// A heartbeat as a logger sends it unsolicited; `seq` is the last client sequence it saw.
    pub fn heartbeat(seq: [u8; 2], serial: u32) -> Self {
        Self {
            control: control::HEARTBEAT,
            seq_client: seq[0],
            seq_logger: seq[1],
            serial,
            payload: Bytes::from_static(&[0x00]),
        }
    }

    /// The RTU frame of a request payload.
    ///
    /// # Errors
    /// [`Error::ShortPayload`] when the payload is shorter than its prefix.
    pub fn request_rtu(&self) -> Result<&[u8], Error> {
        self.payload
            .get(REQUEST_PREFIX..)
            .ok_or(Error::ShortPayload { len: self.payload.len(), min: REQUEST_PREFIX })
    }

    /// Parses the payload of a response.
    ///
    /// # Errors
    /// [`Error::ShortPayload`] when the payload is shorter than its 14-byte prefix.
    pub fn response_payload(&self) -> Result<ResponsePayload, Error> {
        if self.payload.len() < RESPONSE_PREFIX {
            return Err(Error::ShortPayload { len: self.payload.len(), min: RESPONSE_PREFIX });
        }
        let mut prefix = &self.payload[..RESPONSE_PREFIX];
        Ok(ResponsePayload {
            frame_type: prefix.get_u8(),
            status: prefix.get_u8(),
            times: LoggerTimes {
                total_working: prefix.get_u32_le(),
                power_on: prefix.get_u32_le(),
                offset: prefix.get_u32_le(),
            },
            modbus: self.payload.slice(RESPONSE_PREFIX..),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// docs/protocol.md §2.6: read register 0x00B8 of logger 2712345678 with sequence byte 0x41.
    pub(crate) const SOC_REQUEST: [u8; 36] = [
        0xa5, // start
        0x17, 0x00, // payload length 23 = 15 + 8
        0x10, 0x45, // control code 0x4510, request
        0x41, 0x00, // sequence: client 0x41, logger 0
        0x4e, 0x1c, 0xab, 0xa1, // logger serial 2712345678
        0x02, // frame type: solar inverter
        0x00, 0x00, // sensor type
        0x00, 0x00, 0x00, 0x00, // total working time
        0x00, 0x00, 0x00, 0x00, // power-on time
        0x00, 0x00, 0x00, 0x00, // offset time
        0x01, 0x03, 0x00, 0xb8, 0x00, 0x01, 0x04, 0x2f, // RTU: read 1 register at 0xB8
        0x55, // checksum
        0x15, // end
    ];

    /// docs/protocol.md §2.6: the answer, SOC = 65.
    pub(crate) const SOC_RESPONSE: [u8; 34] = [
        0xa5, // start
        0x15, 0x00, // payload length 21 = 14 + 7
        0x10, 0x15, // control code 0x1510, response
        0x41, 0x07, // sequence: our 0x41 echoed, the logger's own 0x07
        0x4e, 0x1c, 0xab, 0xa1, // logger serial 2712345678
        0x02, // frame type: solar inverter
        0x01, // status: real-time data
        0x39, 0x42, 0x7a, 0x00, // total working time 8012345 s
        0x39, 0x30, 0x00, 0x00, // power-on time 12345 s
        0xa7, 0x5f, 0xdc, 0x67, // offset time 1742495655
        0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74, // RTU: 1 register, 0x0041
        0x15, // checksum
        0x15, // end
    ];

    /// docs/protocol.md §2.6: a heartbeat from the same logger.
    pub(crate) const HEARTBEAT: [u8; 14] =
        [0xa5, 0x01, 0x00, 0x10, 0x47, 0x40, 0x08, 0x4e, 0x1c, 0xab, 0xa1, 0x00, 0x56, 0x15];

    /// docs/protocol.md §2.3 (pysolarmanv5#6): a logger error frame, `05 00` in place of Modbus.
    pub(crate) const LOGGER_ERROR: [u8; 29] = [
        0xa5, 0x10, 0x00, 0x10, 0x15, 0x00, 0x0d, 0x55, 0xb1, 0xeb, 0x8a, 0x02, 0x01, 0x75, 0xb8, 0x06, 0x00,
        0xc2, 0x02, 0x00, 0x00, 0x21, 0xeb, 0x84, 0x62, 0x05, 0x00, 0xae, 0x15,
    ];

    const TIMES: LoggerTimes =
        LoggerTimes { total_working: 8_012_345, power_on: 12_345, offset: 1_742_495_655 };

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn request_encodes_to_the_worked_example() {
        let rtu = [0x01, 0x03, 0x00, 0xb8, 0x00, 0x01, 0x04, 0x2f];
        assert_eq!(encode(&Frame::request(0x41, 2_712_345_678, &rtu)), SOC_REQUEST);
    }

    #[test]
    fn response_decodes_field_by_field() {
        let (frame, used) = Frame::decode(&SOC_RESPONSE).unwrap().unwrap();
        assert_eq!(used, SOC_RESPONSE.len());
        assert_eq!((frame.control, frame.seq_client, frame.seq_logger), (0x1510, 0x41, 0x07));
        assert_eq!(frame.serial, 2_712_345_678);
        let payload = frame.response_payload().unwrap();
        assert_eq!((payload.frame_type, payload.status, payload.times), (2, 1, TIMES));
        assert_eq!(&payload.modbus[..], [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74]);
        let rtu = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74];
        assert_eq!(encode(&Frame::response([0x41, 0x07], 2_712_345_678, TIMES, &rtu)), SOC_RESPONSE);
    }

    #[test]
    fn request_decodes_to_its_rtu_frame() {
        let (frame, _) = Frame::decode(&SOC_REQUEST).unwrap().unwrap();
        assert_eq!(frame.request_rtu().unwrap(), &SOC_REQUEST[26..34]);
    }

    #[test]
    fn heartbeat_and_logger_error_are_frames() {
        let (beat, _) = Frame::decode(&HEARTBEAT).unwrap().unwrap();
        assert_eq!(beat, Frame::heartbeat([0x40, 0x08], 2_712_345_678));
        assert_eq!(encode(&beat), HEARTBEAT);
        let (error, _) = Frame::decode(&LOGGER_ERROR).unwrap().unwrap();
        assert_eq!(error.serial, 0x8aeb_b155);
        assert_eq!(&error.response_payload().unwrap().modbus[..], [0x05, 0x00]);
    }

    #[test]
    fn incomplete_input_is_not_yet_an_error() {
        assert_eq!(Frame::decode(&[]), Ok(None));
        assert_eq!(Frame::decode(&SOC_RESPONSE[..1]), Ok(None));
        assert_eq!(Frame::decode(&SOC_RESPONSE[..SOC_RESPONSE.len() - 1]), Ok(None));
    }

    #[test]
    fn damaged_frames_are_typed_errors() {
        let mut bad_sum = SOC_RESPONSE;
        bad_sum[32] = 0x16;
        assert_eq!(Frame::decode(&bad_sum), Err(Error::Checksum { expected: 0x15, actual: 0x16 }));
        let mut bad_end = SOC_RESPONSE;
        bad_end[33] = 0x00;
        assert_eq!(Frame::decode(&bad_end), Err(Error::EndByte { actual: 0 }));
        assert_eq!(Frame::decode(&[0x00]), Err(Error::StartByte { actual: 0 }));
        let junk = [0xa5, 0xff, 0xff, 0x10, 0x15];
        assert_eq!(Frame::decode(&junk), Err(Error::LengthTooLarge { length: 0xffff, max: 1024 }));
        let odd = [0xa5, 0x01, 0x00, 0x99, 0x99];
        assert_eq!(Frame::decode(&odd), Err(Error::UnknownControlCode { actual: 0x9999 }));
    }

    #[test]
    fn at_text_is_recognised_by_its_start_only() {
        let banner = b"AT+YZCMPVER=MW3_16U_5408_5.0B-S\r\n\r\n";
        assert_eq!(at_text(banner).as_deref(), Some("AT+YZCMPVER=MW3_16U_5408_5.0B-S"));
        assert_eq!(at_text(b"+ok=01030204423AB50000\r\n").as_deref(), Some("+ok=01030204423AB50000"));
        assert_eq!(at_text(b"+ERR=-1\r\n\r\n").as_deref(), Some("+ERR=-1"));
        assert_eq!(at_text(b"\xaa\x03AT+X"), None, "text inside binary noise is noise");
        assert_eq!(at_text(&[0x01, 0x03, 0x08]), None);
        assert_eq!(at_text(&[b'A'; 200][..]), None);
        let long = [&b"AT+"[..], &[b'X'; 200][..]].concat();
        assert_eq!(at_text(&long).map(|t| t.len()), Some(64));
    }

    #[test]
    fn a_marker_split_over_reads_is_waited_for() {
        assert!(could_become_at_text(b"A") && could_become_at_text(b"AT") && could_become_at_text(b"+E"));
        assert!(!could_become_at_text(b"AT+") && !could_become_at_text(b"x") && !could_become_at_text(b""));
    }

    #[test]
    fn short_response_payload_is_an_error() {
        let frame = Frame { payload: Bytes::from_static(&[2, 1]), ..Frame::heartbeat([0, 0], 1) };
        assert_eq!(frame.response_payload(), Err(Error::ShortPayload { len: 2, min: 14 }));
    }
}
