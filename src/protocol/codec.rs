//! Stream codecs: find frames in a byte stream that splits, glues and corrupts them.
//!
//! A logger may deliver a response in two TCP segments, glue a heartbeat to it, or precede it
//! with junk (docs/protocol.md Q1–Q4, Q12). The V5 decoder returns `None` until a frame is complete,
//! skips junk up to the next 0xA5, and on a damaged frame drops one byte and resynchronises
//! (docs/style.md §3). What it skips comes out as [`Inbound::Skipped`], so the client can count it;
//! it never ends the stream, because one bad frame must not cost the connection.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{Error, mbap, v5};

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
