//! The CPU cost of the sinks per poll: turning one full SG01LP1 snapshot (149 readings) into a
//! line of line protocol, as the InfluxDB intake does before each spool append, and into the
//! Prometheus text of `/metrics`.
//!
//! Run with `cargo bench --bench sinks`; figures are per iteration on the machine that runs them.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use inverter_monitor::config::{Config, InfluxConfig, InverterConfig};
use inverter_monitor::poller::{Change, Snapshot, Statuses, Update};
use inverter_monitor::profile::Profiles;
use inverter_monitor::sim::fixture;
use inverter_monitor::sinks::influx::inverter::InverterPoints;
use inverter_monitor::sinks::metrics::{Metrics, ScrapeSources};

/// The simulated house at local noon (plus 750 ms), decoded as a poll would.
fn snapshot() -> Snapshot {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap() + TimeDelta::milliseconds(750);
    fixture::snapshot(profile, "house", at)
}

fn points() -> InverterPoints {
    let influx: InfluxConfig = toml::from_str("database = \"db\"\ntags = { site = \"home\" }").unwrap();
    InverterPoints::new(&influx)
}

fn snapshot_to_line(c: &mut Criterion) {
    let snapshot = snapshot();
    let points = points();
    let line = points.point(&snapshot).to_line().unwrap();
    let mut group = c.benchmark_group("influx");
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("snapshot_to_line_149_fields", |b| {
        b.iter(|| black_box(points.point(black_box(&snapshot)).to_line()))
    });
    group.bench_function("snapshot_to_point_149_fields", |b| {
        b.iter(|| black_box(points.point(black_box(&snapshot))))
    });
    let point = points.point(&snapshot);
    group.bench_function("point_to_line_149_fields", |b| {
        let mut out = String::with_capacity(line.len());
        b.iter(|| {
            out.clear();
            black_box(point.encode(&mut out));
        })
    });
    group.finish();
}

/// The metrics of one inverter after one poll.
fn metrics_after_one_poll() -> Metrics {
    let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 8899, 2_712_345_678)]);
    let statuses = Statuses::new(&config);
    let metrics = Metrics::new(statuses.clone(), ScrapeSources::default());
    let update = Update::Polled { snapshot: Arc::new(snapshot()), change: Some(Change::Online) };
    statuses.record(&update);
    metrics.record(&update);
    metrics
}

fn snapshot_to_prometheus_text(c: &mut Criterion) {
    let metrics = metrics_after_one_poll();
    let text = metrics.render();
    let mut group = c.benchmark_group("prometheus");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("render_149_readings_and_own_metrics", |b| b.iter(|| black_box(metrics.render())));
    group.finish();
}

criterion_group!(benches, snapshot_to_line, snapshot_to_prometheus_text);
criterion_main!(benches);
