//! The CPU cost of load control per poll: reading the observation out of a full SG01LP1
//! snapshot and one engine step for four consumers, with a weather outlook.
//!
//! Run with `cargo bench --bench control`; figures are per poll on the machine that runs them.

use std::hint::black_box;

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use inverter_monitor::config::{ConsumerConfig, ControlConfig};
use inverter_monitor::control::{Engine, Observation, Outlook};
use inverter_monitor::profile::Profiles;
use inverter_monitor::sim::fixture;

fn step(c: &mut Criterion) {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let snapshot = fixture::snapshot(profile, "house", at);
    let consumers: Vec<ConsumerConfig> = ["geyser", "pool", "ev", "heater"]
        .iter()
        .enumerate()
        .map(|(i, name)| ConsumerConfig {
            priority: i as u32,
            ..ConsumerConfig::new(name, 1000.0 + 500.0 * i as f64)
        })
        .collect();
    let mut engine = Engine::new(&ControlConfig::default(), &consumers);
    for c in &consumers {
        engine.observe(&c.name, false, at - TimeDelta::hours(1));
    }
    let outlook =
        Outlook { pv_now_w: 3000.0, pv_remaining_wh: 15_000.0, daylight_left_h: 6.0, cloud_cover: 30.0 };
    let mut now = at;
    c.bench_function("control/observation_and_step_4_consumers", |b| {
        b.iter(|| {
            now += TimeDelta::seconds(60);
            let mut obs = Observation::from_snapshot(black_box(&snapshot), None).unwrap();
            obs.at = now;
            black_box(engine.step(now, Ok(&obs), Some(&outlook)))
        })
    });
}

criterion_group!(benches, step);
criterion_main!(benches);
