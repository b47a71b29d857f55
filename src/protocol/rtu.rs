//! The Modbus RTU frame that travels inside a V5 frame: slave id, PDU, CRC-16/MODBUS.
//!
//! ```text
//! offset  size  field
//! 0       1     slave id (Deye: 1)
//! 1       n     PDU (see `pdu`)
//! 1+n     2     CRC-16/MODBUS over bytes 0..1+n, low byte first
//! ```
//! Source: Modbus over Serial Line v1.02 §2.5.1.2; docs/protocol.md §2.6 (CRC rules) and Q11: some
//! Deye firmware appends `00 00` after the CRC, the CRC of a frame that already ends in its CRC.

use bytes::{BufMut, BytesMut};
use crc::{CRC_16_MODBUS, Crc};

use super::{Answer, Error, Request};

/// CRC-16/MODBUS: poly 0x8005 reflected, init 0xFFFF (check value 0x4B37).
pub const MODBUS_CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// The CRC-16/MODBUS of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    MODBUS_CRC.checksum(bytes)
}

/// A decoded RTU answer and whether the double-CRC firmware bug was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtuAnswer {
    /// The response or exception.
    pub answer: Answer,
    /// True when two `00 00` bytes followed the CRC (docs/protocol.md Q11).
    pub double_crc: bool,
}

/// Appends the RTU frame of `request` for `slave`.
pub fn encode_request(slave: u8, request: &Request, buf: &mut BytesMut) {
    let start = buf.len();
    buf.put_u8(slave);
    request.encode(buf);
    append_crc(buf, start);
}

/// Appends the RTU frame of `answer` to `request`; `double_crc` imitates the Deye bug.
pub fn encode_answer(slave: u8, request: &Request, answer: &Answer, double_crc: bool, buf: &mut BytesMut) {
    let start = buf.len();
    buf.put_u8(slave);
    request.encode_answer(answer, buf);
    append_crc(buf, start);
    if double_crc {
        // The CRC over a frame that ends in its own CRC is 0: the bug appends exactly that.
        append_crc(buf, start);
    }
}

fn append_crc(buf: &mut BytesMut, start: usize) {
    let crc = crc16(&buf[start..]);
    buf.put_u16_le(crc);
}

/// Reads a request frame: what the simulator receives.
///
/// # Errors
/// [`Error::Crc`] on a bad CRC, or any error of [`Request::decode`].
pub fn decode_request(frame: &[u8]) -> Result<(u8, Request), Error> {
    let body = check_crc(frame)?;
    Ok((body[0], Request::decode(&body[1..])?))
}

/// Reads the answer of `slave` to `request`.
///
/// # Errors
/// A wrong slave id, a bad CRC, a wrong length or any mismatch of [`Request::decode_answer`].
pub fn decode_answer(slave: u8, request: &Request, frame: &[u8]) -> Result<RtuAnswer, Error> {
    let expected = expected_len(request, frame)?;
    let double_crc = match frame.len() - expected {
        0 => false,
        2 if frame[expected..] == [0, 0] => true,
        _ => return Err(Error::ModbusLength { len: frame.len(), expected }),
    };
    let body = check_crc(&frame[..expected])?;
    if body[0] != slave {
        return Err(Error::SlaveMismatch { expected: slave, actual: body[0] });
    }
    let answer = request.decode_answer(&body[1..])?;
    Ok(RtuAnswer { answer, double_crc })
}

/// The length of the answer frame, from the request and the function code received.
fn expected_len(request: &Request, frame: &[u8]) -> Result<usize, Error> {
    if frame.len() < 5 {
        return Err(Error::ModbusLength { len: frame.len(), expected: 5 });
    }
    let expected = if frame[1] & 0x80 != 0 { 5 } else { 3 + request.response_len() };
    if frame.len() < expected {
        return Err(Error::ModbusLength { len: frame.len(), expected });
    }
    Ok(expected)
}

/// Checks the trailing CRC and returns the bytes before it.
///
/// # Errors
/// [`Error::Crc`] on a mismatch, [`Error::ModbusLength`] below four bytes.
pub(crate) fn check_crc(frame: &[u8]) -> Result<&[u8], Error> {
    if frame.len() < 4 {
        return Err(Error::ModbusLength { len: frame.len(), expected: 4 });
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let actual = u16::from_le_bytes([crc[0], crc[1]]);
    let expected = crc16(body);
    if actual != expected {
        return Err(Error::Crc { expected, actual });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Exception, ExceptionCode, Response};

    const SOC: Request = Request::ReadHolding { addr: 0x00b8, count: 1 };

    fn bytes(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn crc_matches_the_catalogue_and_an_outside_calculator() {
        assert_eq!(crc16(b"123456789"), 0x4b37);
        // ecosystem.md: 01 03 00 00 00 0A → CRC 0xCDC5, sent as C5 CD.
        assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0a]), 0xcdc5);
    }

    #[test]
    fn read_request_matches_protocol_md() {
        // docs/protocol.md §2.6: read holding register 0x00B8 (SOC).
        let frame = bytes(|b| encode_request(1, &SOC, b));
        assert_eq!(frame, [0x01, 0x03, 0x00, 0xb8, 0x00, 0x01, 0x04, 0x2f]);
        assert_eq!(decode_request(&frame), Ok((1, SOC)));
    }

    #[test]
    fn write_request_matches_protocol_md() {
        let write = Request::WriteMultiple { addr: 245, values: vec![4200] };
        let frame = bytes(|b| encode_request(1, &write, b));
        let expected = [
            0x01, // slave
            0x10, // write multiple
            0x00, 0xf5, // register 245
            0x00, 0x01, // one register
            0x02, // two bytes follow
            0x10, 0x68, // 4200
            0xbe, 0xdb, // CRC, low byte first
        ];
        assert_eq!(frame, expected);
        let echo = [0x01, 0x10, 0x00, 0xf5, 0x00, 0x01, 0x11, 0xfb];
        let answer = decode_answer(1, &write, &echo).unwrap();
        assert_eq!(answer.answer, Ok(Response::Written { addr: 245, count: 1 }));
    }

    #[test]
    fn soc_answer_matches_protocol_md() {
        let frame = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74];
        let answer = decode_answer(1, &SOC, &frame).unwrap();
        assert_eq!(answer, RtuAnswer { answer: Ok(Response::Registers(vec![65])), double_crc: false });
        let encoded = bytes(|b| encode_answer(1, &SOC, &Ok(Response::Registers(vec![65])), false, b));
        assert_eq!(encoded, frame);
    }

    #[test]
    fn double_crc_is_stripped_and_reported() {
        let frame = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74, 0x00, 0x00];
        let answer = decode_answer(1, &SOC, &frame).unwrap();
        assert!(answer.double_crc);
        assert_eq!(answer.answer, Ok(Response::Registers(vec![65])));
        let encoded = bytes(|b| encode_answer(1, &SOC, &answer.answer, true, b));
        assert_eq!(encoded, frame);
    }

    #[test]
    fn exception_matches_protocol_md() {
        let frame = [0x01, 0x83, 0x02, 0xc0, 0xf1];
        let answer = decode_answer(1, &SOC, &frame).unwrap();
        assert_eq!(answer.answer, Err(Exception::Modbus(ExceptionCode::IllegalDataAddress)));
    }

    #[test]
    fn bad_crc_wrong_slave_and_short_frames_are_errors() {
        let bad_crc = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x75];
        assert_eq!(decode_answer(1, &SOC, &bad_crc), Err(Error::Crc { expected: 0x7478, actual: 0x7578 }));
        let other_slave = bytes(|b| encode_answer(2, &SOC, &Ok(Response::Registers(vec![1])), false, b));
        assert_eq!(
            decode_answer(1, &SOC, &other_slave),
            Err(Error::SlaveMismatch { expected: 1, actual: 2 })
        );
        assert_eq!(
            decode_answer(1, &SOC, &[0x01, 0x03, 0x02, 0x00, 0x41, 0x78]),
            Err(Error::ModbusLength { len: 6, expected: 7 })
        );
        let trailing = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74, 0x00, 0x01];
        assert_eq!(decode_answer(1, &SOC, &trailing), Err(Error::ModbusLength { len: 9, expected: 7 }));
        assert!(decode_answer(1, &SOC, &[]).is_err());
    }
}
