//! The Modbus TCP envelope (MBAP header) used by Ethernet loggers such as the LSE-3 (port 502).
//!
//! ```text
//! offset  size  field                (big-endian)
//! 0       2     transaction id: echoed by the server, checked by us
//! 2       2     protocol id: 0 for Modbus
//! 4       2     length: bytes that follow (unit id + PDU)
//! 6       1     unit id (the slave id)
//! 7       n     PDU (see `pdu`), no CRC: TCP checks the bytes
//! ```
//! Source: Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Error;

/// Bytes before the unit id.
pub(crate) const HEADER_LEN: usize = 6;
/// The largest length field: unit id + the largest PDU (253 bytes).
pub(crate) const MAX_LENGTH: u16 = 254;

/// One Modbus TCP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Transaction id.
    pub transaction: u16,
    /// Unit (slave) id.
    pub unit: u8,
    /// The PDU.
    pub pdu: Bytes,
}

impl Frame {
    /// Appends the frame to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(HEADER_LEN + 1 + self.pdu.len());
        buf.put_u16(self.transaction);
        buf.put_u16(0);
        buf.put_u16(self.pdu.len() as u16 + 1);
        buf.put_u8(self.unit);
        buf.put_slice(&self.pdu);
    }

    /// Reads one frame from the start of `buf`; `Ok(None)` while it is incomplete.
    ///
    /// # Errors
    /// [`Error::MbapProtocol`] or [`Error::MbapLength`]: on TCP these mean the stream is out of
    /// step, and the connection must be dropped.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, Error> {
        if buf.len() < HEADER_LEN + 1 {
            return Ok(None);
        }
        let mut header = &buf[..HEADER_LEN + 1];
        let transaction = header.get_u16();
        let protocol = header.get_u16();
        let length = header.get_u16();
        let unit = header.get_u8();
        if protocol != 0 {
            return Err(Error::MbapProtocol(protocol));
        }
        if !(2..=MAX_LENGTH).contains(&length) {
            return Err(Error::MbapLength(length));
        }
        let total = HEADER_LEN + usize::from(length);
        if buf.len() < total {
            return Ok(None);
        }
        let pdu = Bytes::copy_from_slice(&buf[HEADER_LEN + 1..total]);
        Ok(Some((Self { transaction, unit, pdu }, total)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Read 1 holding register at 0x00B8 from unit 1, transaction 0x0102.
    const REQUEST: [u8; 12] = [
        0x01, 0x02, // transaction id
        0x00, 0x00, // protocol: Modbus
        0x00, 0x06, // 6 bytes follow
        0x01, // unit id
        0x03, 0x00, 0xb8, 0x00, 0x01, // PDU: read 1 register at 0xB8
    ];

    #[test]
    fn frame_round_trips_through_fixed_bytes() {
        let frame =
            Frame { transaction: 0x0102, unit: 1, pdu: Bytes::from_static(&[0x03, 0x00, 0xb8, 0x00, 0x01]) };
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        assert_eq!(&buf[..], REQUEST);
        assert_eq!(Frame::decode(&REQUEST), Ok(Some((frame, REQUEST.len()))));
    }

    #[test]
    fn short_input_waits() {
        assert_eq!(Frame::decode(&[]), Ok(None));
        assert_eq!(Frame::decode(&REQUEST[..6]), Ok(None));
        assert_eq!(Frame::decode(&REQUEST[..11]), Ok(None));
    }

    #[test]
    fn foreign_headers_are_errors() {
        let mut other = REQUEST;
        other[3] = 1;
        assert_eq!(Frame::decode(&other), Err(Error::MbapProtocol(1)));
        let mut long = REQUEST;
        long[4] = 0x10;
        assert_eq!(Frame::decode(&long), Err(Error::MbapLength(0x1006)));
    }
}
