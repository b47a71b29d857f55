//! Stream codecs: find frames in a byte stream that splits, glues and corrupts them.
//!
//! A logger may deliver a response in two TCP segments, glue a heartbeat to it, or precede it
//! with junk (docs/protocol.md Q1–Q4, Q12). The V5 decoder returns `None` until a frame is complete,
//! skips junk up to the next 0xA5, and on a damaged frame drops one byte and resynchronises
//! (docs/style.md §3). What it skips comes out as [`Inbound::Skipped`], so the client can count it;
//! it never ends the stream, because one bad frame must not cost the connection.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{Error, mbap, rtu, v5};

/// What a codec found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<F> {
    /// A whole, checked frame.
    Frame(F),
    /// Bytes dropped to get back in step, and why.
    Skipped {
        /// How many bytes were dropped.
        bytes: usize,
        /// What was wrong with them.
        reason: Error,
    },
}

/// Finds V5 frames in a byte stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct V5Codec;

impl Decoder for V5Codec {
    type Item = Inbound<v5::Frame>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(&first) = buf.first() else { return Ok(None) };
        if first != v5::START {
            let junk = buf.iter().position(|&b| b == v5::START).unwrap_or(buf.len());
            let _ = buf.split_to(junk);
            return Ok(Some(Inbound::Skipped { bytes: junk, reason: Error::StartByte { actual: first } }));
        }
        match v5::Frame::decode(buf) {
            Ok(None) => Ok(None),
            Ok(Some((frame, used))) => {
                let _ = buf.split_to(used);
                Ok(Some(Inbound::Frame(frame)))
            }
            Err(reason) => {
                // Drop only the start byte: a real frame may begin inside what we refused.
                let _ = buf.split_to(1);
                Ok(Some(Inbound::Skipped { bytes: 1, reason }))
            }
        }
    }
}

impl Encoder<v5::Frame> for V5Codec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: v5::Frame, buf: &mut BytesMut) -> Result<(), Self::Error> {
        frame.encode(buf);
        Ok(())
    }
}

/// Finds Modbus TCP frames in a byte stream. TCP does not corrupt bytes, so a bad header means
/// the stream is out of step: that is an error that ends the connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct MbapCodec;

impl Decoder for MbapCodec {
    type Item = mbap::Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match mbap::Frame::decode(buf) {
            Ok(None) => Ok(None),
            Ok(Some((frame, used))) => {
                let _ = buf.split_to(used);
                Ok(Some(frame))
            }
            Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
}

impl Encoder<mbap::Frame> for MbapCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: mbap::Frame, buf: &mut BytesMut) -> Result<(), Self::Error> {
        frame.encode(buf);
        Ok(())
    }
}

/// Finds Modbus RTU answers in a raw byte stream: an RS485 gateway's TCP socket or a serial port.
///
/// RTU has no envelope and no length field: an answer is framed by its function code (0x03 and
/// 0x04: five bytes plus the byte count; 0x10: eight; an exception, code | 0x80: five) and
/// trusted by its CRC. Junk on a bus or a socket can look like a header, so the codec is told
/// which answer it waits for ([`RtuCodec::expect`]): bytes that cannot start that answer are
/// skipped and reported as [`Inbound::Skipped`], and a candidate whose CRC fails costs one byte,
/// so a real answer that begins inside it is still found. A whole frame for our slave with a
/// bad CRC comes out as `Skipped` with [`Error::Crc`]: most likely our answer, damaged.
#[derive(Debug, Default, Clone, Copy)]
pub struct RtuCodec {
    expected: Option<RtuExpected>,
}

/// The answer an [`RtuCodec`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RtuExpected {
    slave: u8,
    function: u8,
    /// Length of a normal answer frame: slave, PDU, CRC.
    len: usize,
    /// The byte count a read answer carries; `None` for writes.
    byte_count: Option<u8>,
}

/// An exception answer: slave, function | 0x80, code, CRC.
const RTU_EXCEPTION_LEN: usize = 5;

impl RtuCodec {
    /// Waits for the answer of `slave` to `request` from now on.
    pub fn expect(&mut self, slave: u8, request: &super::Request) {
        let reads = matches!(request, super::Request::ReadHolding { .. } | super::Request::ReadInput { .. });
        let pdu = request.response_len();
        self.expected = Some(RtuExpected {
            slave,
            function: request.function(),
            len: 1 + pdu + 2,
            byte_count: reads.then(|| (pdu - 2) as u8),
        });
    }

    /// Why `buf[at..]` cannot start the expected answer, or `None` when it can.
    fn refuse(expected: RtuExpected, buf: &[u8], at: usize) -> Option<Error> {
        let function = *buf.get(at + 1)?;
        if function == expected.function | 0x80 {
            return None;
        }
        if function != expected.function {
            return Some(Error::FunctionMismatch { expected: expected.function, actual: function });
        }
        match (expected.byte_count, buf.get(at + 2)) {
            (Some(count), Some(&actual)) if actual != count => {
                Some(Error::ByteCount { expected: usize::from(count), actual: usize::from(actual) })
            }
            _ => None,
        }
    }

    /// True when a frame of our slave with the expected function starts after `buf[0]`.
    fn ours_later(expected: RtuExpected, buf: &[u8]) -> bool {
        (1..buf.len()).any(|at| buf[at] == expected.slave && Self::refuse(expected, buf, at).is_none())
    }
}

impl Decoder for RtuCodec {
    type Item = Inbound<bytes::Bytes>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(expected) = self.expected else {
            // Nothing asked: whatever comes is not an answer.
            return Ok(skip_all(buf));
        };
        if let Some(reason) = Self::refuse(expected, buf, 0) {
            // One skip for a run of junk: counted once, logged once.
            let junk = 1 + (1..buf.len()).take_while(|&at| Self::refuse(expected, buf, at).is_some()).count();
            let _ = buf.split_to(junk);
            return Ok(Some(Inbound::Skipped { bytes: junk, reason }));
        }
        if buf.len() < 2 {
            return Ok(None);
        }
        let len = if buf[1] & 0x80 != 0 { RTU_EXCEPTION_LEN } else { expected.len };
        if buf.len() < len {
            // Junk shaped like a header for another slave must not hold up our answer behind it.
            if buf[0] != expected.slave && Self::ours_later(expected, buf) {
                return Ok(Some(skip_one(
                    buf,
                    Error::SlaveMismatch { expected: expected.slave, actual: buf[0] },
                )));
            }
            return Ok(None);
        }
        match rtu::check_crc(&buf[..len]) {
            Ok(_) => {
                self.expected = None;
                Ok(Some(Inbound::Frame(buf.split_to(len).freeze())))
            }
            // Another slave's header with a bad CRC is junk; ours is our answer, damaged.
            Err(_) if buf[0] != expected.slave => {
                Ok(Some(skip_one(buf, Error::SlaveMismatch { expected: expected.slave, actual: buf[0] })))
            }
            Err(reason) => Ok(Some(skip_one(buf, reason))),
        }
    }
}

impl Encoder<bytes::Bytes> for RtuCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: bytes::Bytes, buf: &mut BytesMut) -> Result<(), Self::Error> {
        buf.extend_from_slice(&frame);
        Ok(())
    }
}

/// Finds Modbus RTU requests in a raw byte stream: what the simulator hears on a gateway's
/// socket or a pseudo-terminal. Reads are eight bytes, a write 0x10 nine plus its byte count;
/// anything else, or a bad CRC, costs one byte.
#[derive(Debug, Default, Clone, Copy)]
pub struct RtuRequestCodec;

impl Decoder for RtuRequestCodec {
    type Item = Inbound<bytes::Bytes>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(&function) = buf.get(1) else { return Ok(None) };
        let len = match function {
            0x03 | 0x04 => 8,
            0x10 => match buf.get(6) {
                Some(&count) => 9 + usize::from(count),
                None => return Ok(None),
            },
            other => return Ok(Some(skip_one(buf, Error::UnsupportedFunction(other)))),
        };
        if buf.len() < len {
            return Ok(None);
        }
        match rtu::check_crc(&buf[..len]) {
            Ok(_) => Ok(Some(Inbound::Frame(buf.split_to(len).freeze()))),
            Err(reason) => Ok(Some(skip_one(buf, reason))),
        }
    }
}

fn skip_one<F>(buf: &mut BytesMut, reason: Error) -> Inbound<F> {
    let _ = buf.split_to(1);
    Inbound::Skipped { bytes: 1, reason }
}

fn skip_all<F>(buf: &mut BytesMut) -> Option<Inbound<F>> {
    let bytes = buf.len();
    let first = *buf.first()?;
    buf.clear();
    Some(Inbound::Skipped { bytes, reason: Error::UnexpectedBytes { first } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::v5::tests::{HEARTBEAT, SOC_RESPONSE};
    use proptest::prelude::*;

    fn decode_all(stream: &[u8]) -> Vec<Inbound<v5::Frame>> {
        let mut buf = BytesMut::from(stream);
        let mut out = Vec::new();
        while let Some(item) = V5Codec.decode(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    fn frames(items: &[Inbound<v5::Frame>]) -> Vec<v5::Frame> {
        items
            .iter()
            .filter_map(|i| match i {
                Inbound::Frame(f) => Some(f.clone()),
                Inbound::Skipped { .. } => None,
            })
            .collect()
    }

    fn soc() -> v5::Frame {
        v5::Frame::decode(&SOC_RESPONSE).unwrap().unwrap().0
    }

    #[test]
    fn empty_one_byte_and_one_short_leave_the_buffer_alone() {
        for len in [0, 1, SOC_RESPONSE.len() - 1] {
            let mut buf = BytesMut::from(&SOC_RESPONSE[..len]);
            assert_eq!(V5Codec.decode(&mut buf).unwrap(), None);
            assert_eq!(buf.len(), len);
        }
    }

    #[test]
    fn two_frames_in_one_read() {
        let stream = [&SOC_RESPONSE[..], &SOC_RESPONSE[..]].concat();
        assert_eq!(frames(&decode_all(&stream)), vec![soc(), soc()]);
    }

    #[test]
    fn heartbeat_glued_to_a_response() {
        let stream = [&HEARTBEAT[..], &SOC_RESPONSE[..]].concat();
        let found = frames(&decode_all(&stream));
        assert_eq!(found[0].control, v5::control::HEARTBEAT);
        assert_eq!(found[1], soc());
    }

    #[test]
    fn garbage_prefix_is_skipped_and_counted() {
        let stream = [&b"AT+YZCMPVER=MW3_16U_5406_2.27\r\n\r\n"[..], &SOC_RESPONSE[..]].concat();
        let items = decode_all(&stream);
        assert_eq!(items[0], Inbound::Skipped { bytes: 33, reason: Error::StartByte { actual: b'A' } });
        assert_eq!(frames(&items), vec![soc()]);
    }

    #[test]
    fn a_corrupt_frame_costs_itself_not_the_next_one() {
        let mut bad = SOC_RESPONSE;
        bad[30] ^= 0xff; // inside the register data: the checksum no longer adds up
        let stream = [&bad[..], &SOC_RESPONSE[..]].concat();
        let items = decode_all(&stream);
        assert!(matches!(items[0], Inbound::Skipped { reason: Error::Checksum { .. }, .. }));
        assert_eq!(frames(&items), vec![soc()]);
    }

    #[test]
    fn double_crc_frame_is_still_one_frame() {
        let rtu = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74, 0x00, 0x00];
        let frame = v5::Frame::response([0x41, 0], 1, v5::LoggerTimes::default(), &rtu);
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        assert_eq!(frames(&decode_all(&buf)), vec![frame]);
    }

    const SOC: crate::protocol::Request = crate::protocol::Request::ReadHolding { addr: 0xb8, count: 1 };
    /// docs/protocol.md §2.6: slave 1 answers SOC = 65.
    const SOC_RTU: [u8; 7] = [0x01, 0x03, 0x02, 0x00, 0x41, 0x78, 0x74];

    fn rtu_all(codec: &mut RtuCodec, stream: &[u8]) -> Vec<Inbound<bytes::Bytes>> {
        let mut buf = BytesMut::from(stream);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    fn expecting_soc() -> RtuCodec {
        let mut codec = RtuCodec::default();
        codec.expect(1, &SOC);
        codec
    }

    fn rtu_frames(items: &[Inbound<bytes::Bytes>]) -> Vec<Vec<u8>> {
        items
            .iter()
            .filter_map(|i| match i {
                Inbound::Frame(f) => Some(f.to_vec()),
                Inbound::Skipped { .. } => None,
            })
            .collect()
    }

    fn skipped(items: &[Inbound<bytes::Bytes>]) -> usize {
        items.iter().map(|i| if let Inbound::Skipped { bytes, .. } = i { *bytes } else { 0 }).sum()
    }

    #[test]
    fn rtu_answers_are_framed_by_their_function_code() {
        assert_eq!(rtu_frames(&rtu_all(&mut expecting_soc(), &SOC_RTU)), vec![SOC_RTU.to_vec()]);
        let exception = [0x01, 0x83, 0x02, 0xc0, 0xf1];
        assert_eq!(rtu_frames(&rtu_all(&mut expecting_soc(), &exception)), vec![exception.to_vec()]);
        let mut codec = RtuCodec::default();
        let echo = [0x01, 0x10, 0x00, 0xf5, 0x00, 0x01, 0x11, 0xfb];
        codec.expect(1, &crate::protocol::Request::WriteMultiple { addr: 245, values: vec![4200] });
        assert_eq!(rtu_frames(&rtu_all(&mut codec, &echo)), vec![echo.to_vec()]);
    }

    #[test]
    fn rtu_junk_before_an_answer_is_skipped_and_counted_even_when_it_looks_like_a_header() {
        // The banner of a V5 logger, then a stray header of another slave claiming 10 bytes.
        let junk = b"AT+YZCMPVER=MW3_16U_5406_2.27\r\n\xaa\x03\x02\x00";
        let items = rtu_all(&mut expecting_soc(), &[&junk[..], &SOC_RTU[..]].concat());
        assert_eq!(rtu_frames(&items), vec![SOC_RTU.to_vec()]);
        assert_eq!(skipped(&items), junk.len());
    }

    #[test]
    fn rtu_a_bad_crc_costs_one_byte_and_says_crc() {
        let mut bad = SOC_RTU;
        bad[6] ^= 0x5a;
        let items = rtu_all(&mut expecting_soc(), &bad);
        assert!(matches!(items[0], Inbound::Skipped { bytes: 1, reason: Error::Crc { .. } }), "{items:?}");
        assert!(rtu_frames(&items).is_empty());
        // A good answer behind the damaged one is still found.
        let items = rtu_all(&mut expecting_soc(), &[&bad[..], &SOC_RTU[..]].concat());
        assert_eq!(rtu_frames(&items), vec![SOC_RTU.to_vec()]);
    }

    #[test]
    fn rtu_an_answer_of_another_shape_is_junk_and_another_slave_is_a_frame() {
        // Two registers where one was asked: not our answer.
        let other_shape = [0x01, 0x03, 0x04, 0x00, 0x41, 0x00, 0x42];
        let items = rtu_all(&mut expecting_soc(), &[&other_shape[..], &SOC_RTU[..]].concat());
        assert_eq!(rtu_frames(&items), vec![SOC_RTU.to_vec()]);
        let mut slave2 = BytesMut::new();
        crate::protocol::rtu::encode_answer(
            2,
            &SOC,
            &Ok(crate::protocol::Response::Registers(vec![1])),
            false,
            &mut slave2,
        );
        assert_eq!(rtu_frames(&rtu_all(&mut expecting_soc(), &slave2)), vec![slave2.to_vec()]);
    }

    #[test]
    fn rtu_bytes_nobody_asked_for_are_skipped() {
        let items = rtu_all(&mut RtuCodec::default(), &SOC_RTU);
        assert_eq!(items, vec![Inbound::Skipped { bytes: 7, reason: Error::UnexpectedBytes { first: 1 } }]);
        // After an answer the codec expects nothing until told.
        let mut codec = expecting_soc();
        let items = rtu_all(&mut codec, &[&SOC_RTU[..], &SOC_RTU[..]].concat());
        assert_eq!((rtu_frames(&items).len(), skipped(&items)), (1, 7));
    }

    #[test]
    fn rtu_requests_are_framed_for_the_simulator() {
        let read = [0x01, 0x03, 0x00, 0xb8, 0x00, 0x01, 0x04, 0x2f];
        let write = [0x01, 0x10, 0x00, 0xf5, 0x00, 0x01, 0x02, 0x10, 0x68, 0xbe, 0xdb];
        let mut buf = BytesMut::from(&[&b"\x00\x07"[..], &read[..], &write[..]].concat()[..]);
        let mut found = Vec::new();
        while let Some(item) = RtuRequestCodec.decode(&mut buf).unwrap() {
            found.push(item);
        }
        assert_eq!(skipped(&found), 2);
        assert_eq!(rtu_frames(&found), vec![read.to_vec(), write.to_vec()]);
    }

    proptest! {
        #[test]
        fn rtu_any_split_and_any_junk_still_yield_the_answer(
            junk in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..7,
        ) {
            let stream = [&junk[..], &SOC_RTU[..]].concat();
            let cut = junk.len() + cut;
            let mut codec = expecting_soc();
            let mut buf = BytesMut::from(&stream[..cut]);
            let mut found = Vec::new();
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                found.push(item);
            }
            buf.extend_from_slice(&stream[cut..]);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                found.push(item);
            }
            // Random junk holding a CRC-valid frame of the asked shape is a 1 in 65536 chance per
            // candidate: not in 256 cases of at most 40 bytes.
            prop_assert_eq!(rtu_frames(&found), vec![SOC_RTU.to_vec()]);
            prop_assert_eq!(skipped(&found), junk.len());
        }

        #[test]
        fn rtu_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut codec = expecting_soc();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Some(_item) = codec.decode(&mut buf).unwrap() {}
            let mut buf = BytesMut::from(&bytes[..]);
            while let Some(_item) = RtuRequestCodec.decode(&mut buf).unwrap() {}
        }
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_decodes_to_the_same_frames(cuts in proptest::collection::vec(0usize..82, 0..6)) {
            let stream = [&SOC_RESPONSE[..], &HEARTBEAT[..], &SOC_RESPONSE[..]].concat();
            let mut cuts = cuts;
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut buf = BytesMut::new();
            let mut found = Vec::new();
            let mut from = 0;
            for cut in cuts {
                buf.extend_from_slice(&stream[from..cut.max(from)]);
                from = cut.max(from);
                while let Some(item) = V5Codec.decode(&mut buf).unwrap() {
                    found.push(item);
                }
            }
            prop_assert_eq!(frames(&found).len(), 3);
            prop_assert!(found.iter().all(|i| matches!(i, Inbound::Frame(_))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Some(_item) = V5Codec.decode(&mut buf).unwrap() {}
            let _ = MbapCodec.decode(&mut BytesMut::from(&bytes[..]));
        }

        #[test]
        fn junk_before_a_frame_never_hides_it(junk in proptest::collection::vec(any::<u8>().prop_filter("no start byte", |b| *b != 0xa5), 0..64)) {
            let stream = [&junk[..], &SOC_RESPONSE[..]].concat();
            prop_assert_eq!(frames(&decode_all(&stream)), vec![soc()]);
        }
    }
}
