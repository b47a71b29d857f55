//! Arbitrary bytes through the V5 stream codec and, for every frame found, the response
//! payload and Modbus RTU decoders: nothing may panic, and the codec must always make progress.

#![no_main]

use bytes::BytesMut;
use inverter_monitor::protocol::codec::{Inbound, MbapCodec, V5Codec};
use inverter_monitor::protocol::{Request, rtu};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let request = Request::ReadHolding { addr: 0x96, count: u16::from(data.first().copied().unwrap_or(1) % 125 + 1) };
    loop {
        let before = buf.len();
        match V5Codec.decode(&mut buf) {
            Ok(Some(Inbound::Frame(frame))) => {
                if let Ok(payload) = frame.response_payload() {
                    let _ = rtu::decode_answer(1, &request, &payload.modbus);
                }
                let _ = frame.request_rtu().map(rtu::decode_request);
            }
            Ok(Some(Inbound::Skipped { bytes, .. })) => assert!(bytes > 0),
            Ok(None) => break,
            Err(_) => unreachable!("the V5 codec never fails the stream"),
        }
        assert!(buf.len() < before, "the codec must consume input when it returns an item");
    }
    let _ = MbapCodec.decode(&mut BytesMut::from(data));
});
