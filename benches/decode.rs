//! The CPU cost of a poll, without the network: finding frames in a byte stream, decoding the
//! Modbus answers, and turning a full SG01LP1 register snapshot into checked readings.
//!
//! Run with `cargo bench`; figures are per iteration on the machine that runs them.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::Decoder;

use inverter_monitor::profile::{Profile, Profiles, RegisterBlock, RegisterSet};
use inverter_monitor::protocol::codec::{Inbound, V5Codec};
use inverter_monitor::protocol::v5::{Frame, LoggerTimes};
use inverter_monitor::protocol::{Request, Response, rtu};
use inverter_monitor::quality::Quality;
use inverter_monitor::sim::fixture;

/// The register image the simulator serves at local noon.
fn image(profile: &Profile) -> Vec<u16> {
    fixture::image(profile, Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap())
}

/// The V5 answer frames to the profile's plan, as bytes on the wire.
fn answers(profile: &Profile, regs: &[u16]) -> Vec<(Request, BytesMut)> {
    profile
        .plan()
        .iter()
        .map(|block| {
            let request = Request::ReadHolding { addr: block.start, count: block.count };
            let from = usize::from(block.start);
            let answer = Ok(Response::Registers(regs[from..from + usize::from(block.count)].to_vec()));
            let mut modbus = BytesMut::new();
            rtu::encode_answer(1, &request, &answer, false, &mut modbus);
            let mut wire = BytesMut::new();
            Frame::response([1, 1], 2_712_345_678, LoggerTimes::default(), &modbus).encode(&mut wire);
            (request, wire)
        })
        .collect()
}

fn frame_decode(c: &mut Criterion) {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let regs = image(&profile);
    let full = {
        let request = Request::ReadHolding { addr: 150, count: 125 };
        answers(&profile, &regs).into_iter().find(|(r, _)| *r == request).unwrap()
    };
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(full.1.len() as u64));
    group.bench_function("v5_codec_and_rtu_125_registers", |b| {
        b.iter(|| {
            let mut buf = full.1.clone();
            let Some(Inbound::Frame(frame)) = V5Codec.decode(&mut buf).unwrap() else { panic!("no frame") };
            let payload = frame.response_payload().unwrap();
            black_box(rtu::decode_answer(1, &full.0, &payload.modbus).unwrap())
        })
    });
    group.finish();
}

fn snapshot_decode(c: &mut Criterion) {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let regs = image(&profile);
    let wire = answers(&profile, &regs);
    let set = fixture::register_set(&profile, &regs);
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    c.bench_function("profile_decode_149_readings", |b| {
        b.iter(|| black_box(profile.decode(black_box(&set))))
    });
    c.bench_function("poll_cpu_path_3_frames_to_checked_readings", |b| {
        let mut quality = Quality::new(profile.readings.len(), Duration::from_secs(180));
        b.iter(|| {
            let mut set = RegisterSet::new();
            for (request, bytes) in &wire {
                let mut buf = bytes.clone();
                let Some(Inbound::Frame(frame)) = V5Codec.decode(&mut buf).unwrap() else {
                    panic!("no frame")
                };
                let payload = frame.response_payload().unwrap();
                let Ok(Response::Registers(values)) =
                    rtu::decode_answer(1, request, &payload.modbus).unwrap().answer
                else {
                    panic!("no registers")
                };
                let Request::ReadHolding { addr, .. } = request else { unreachable!() };
                set.insert(RegisterBlock { start: *addr, values });
            }
            let (readings, _) = profile.decode(&set);
            black_box(quality.filter(&profile, readings, now, now.naive_utc()))
        })
    });
}

criterion_group!(benches, frame_decode, snapshot_decode);
criterion_main!(benches);
