//! The InfluxDB sink against real databases: VictoriaMetrics over `/api/v2/write` and `/write`,
//! InfluxDB 1.6 over `/write`. Every point of a poll arrives once with the simulator's values,
//! through an outage, through a `kill -9` of the service, and past a batch the database refuses.

mod databases;
pub mod fake;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use inverter_monitor::config::{Config, InfluxConfig, InverterConfig};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use inverter_monitor::sinks::influx::spool::{Limits, Spool};
use inverter_monitor::sinks::influx::{InfluxHandle, SPOOL_DIR};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use databases::{Influxd, VictoriaMetrics};
use fake::FakeInflux;

/// Time between polls in the in-process tests.
const INTERVAL: Duration = Duration::from_millis(150);

/// The service, polling a simulator, with its InfluxDB sink.
struct App {
    sim: SimHandle,
    cancel: CancellationToken,
    influx: InfluxHandle,
    task: JoinHandle<()>,
}

impl App {
    /// Starts the service with `[influxdb]` from `influx_toml`, keeping its spool in `data`.
    async fn start(influx_toml: &str, data: &Path) -> Self {
        let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
        let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
        inverter.interval = INTERVAL;
        inverter.request_pause = Duration::from_millis(1);
        let mut config = Config::new(vec![inverter]);
        config.data_dir = data.to_path_buf();
        let influx: InfluxConfig = toml::from_str(influx_toml).unwrap();
        config.influxdb = Some(influx);
        let cancel = CancellationToken::new();
        let running = service::start(config, Console::Quiet, &cancel).unwrap();
        let influx = running.influx.clone().expect("the sink runs");
        let task = tokio::spawn(supervised(running));
        App { sim, cancel, influx, task }
    }

    /// Successful polls so far, from the simulator's count of requests (three per poll).
    fn polls(&self) -> u64 {
        self.sim.sim.requests() / 3
    }

    /// Stops polling (the simulator goes away), waits until every polled point is written,
    /// then stops the service; returns the number of points, and the simulator to compare with.
    async fn finish(self) -> (u64, SimHandle) {
        self.sim.stop.cancel();
        let influx = self.influx.clone();
        // Settled: nothing waits and nothing new came in for a few poll intervals.
        let mut quiet = 0;
        let mut last = u64::MAX;
        until("every point written", || {
            let spooled = influx.points_spooled();
            let settled = spooled == influx.points_written() + influx.points_rejected()
                && influx.spool_points() == 0
                && spooled == last;
            last = spooled;
            quiet = if settled { quiet + 1 } else { 0 };
            quiet >= 4
        })
        .await;
        let polls = self.polls();
        let points = influx.points_spooled();
        assert!(points == polls || points + 1 == polls, "{points} points from {polls} polls");
        assert_eq!(influx.lagged_updates(), 0, "the sink kept up with the bus");
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(6), self.task)
            .await
            .expect("the service stops in time")
            .unwrap();
        (points, self.sim)
    }
}

/// The simulator's value of numeric reading `key`, and the tolerance of its register.
fn expected(sim: &SimHandle, key: &str) -> (f64, f64) {
    let value = sim.sim.expected().into_iter().find(|(k, _)| *k == key).unwrap().1.as_f64().unwrap();
    let scale = profile().readings[profile().index_of(key).unwrap()].def.scale;
    (value, scale / 2.0 + 1e-6)
}

/// Checks VictoriaMetrics holds exactly `count` points with distinct times and the simulator's
/// values, tagged as configured.
async fn assert_exactly(vm: &VictoriaMetrics, sim: &SimHandle, count: u64) {
    let samples = vm.wait_for("inverter_battery_soc", count as usize).await;
    assert_eq!(samples.len() as u64, count, "each point exactly once");
    let mut times: Vec<i64> = samples.iter().map(|s| s.1).collect();
    times.dedup();
    assert_eq!(times.len() as u64, count, "distinct timestamps");
    let labels = &samples[0].0;
    assert_eq!(labels["inverter"], json!("house"));
    assert_eq!(labels["serial"], json!("2306178901"));
    assert_eq!(labels["site"], json!("home"));
    for key in ["battery_soc", "pv1_power", "grid_import_total"] {
        let (want, tolerance) = expected(sim, key);
        let samples = vm.wait_for(&format!("inverter_{key}"), count as usize).await;
        assert_eq!(samples.len() as u64, count, "{key}");
        for (_, _, got) in samples {
            assert!((got - want).abs() <= tolerance, "{key}: stored {got}, simulator says {want}");
        }
    }
    let connected = vm.wait_for("inverter_grid_connected", count as usize).await;
    assert!(connected.iter().all(|s| s.2 == 1.0), "booleans arrive as booleans");
}

fn v2(url: &str, token: &str) -> String {
    format!(
        "url = \"{url}\"\norg = \"home\"\nbucket = \"solar\"\ntoken = \"{token}\"\nprecision = \"1ms\"\n\
         tags = {{ site = \"home\" }}"
    )
}

fn v1(url: &str) -> String {
    format!("url = \"{url}\"\ndatabase = \"db\"\nprecision = \"1ms\"\ntags = {{ site = \"home\" }}")
}

#[tokio::test]
async fn victoria_metrics_gets_every_reading_over_the_v2_api() {
    let mut vm = VictoriaMetrics::new();
    vm.start().await;
    let data = tempfile::tempdir().unwrap();
    let app = App::start(&v2(&vm.url(), "unused"), data.path()).await;
    until("three points written", || app.influx.points_written() >= 3).await;
    let (count, sim) = app.finish().await;
    assert_exactly(&vm, &sim, count).await;
}

#[tokio::test]
async fn victoria_metrics_gets_every_reading_over_v1_write() {
    let mut vm = VictoriaMetrics::new();
    vm.start().await;
    let data = tempfile::tempdir().unwrap();
    let app = App::start(&v1(&vm.url()), data.path()).await;
    until("three points written", || app.influx.points_written() >= 3).await;
    let (count, sim) = app.finish().await;
    assert_exactly(&vm, &sim, count).await;
}

#[tokio::test]
async fn influxdb_1_6_gets_every_reading_with_its_type_over_v1_write() {
    let db = Influxd::start().await;
    let data = tempfile::tempdir().unwrap();
    let app = App::start(&v1(&db.url()), data.path()).await;
    until("three points written", || app.influx.points_written() >= 3).await;
    let (count, sim) = app.finish().await;
    let (soc, tolerance) = expected(&sim, "battery_soc");

    let rows = db
        .rows("SELECT battery_soc, grid_connected, running_state, inverter, serial, site FROM inverter")
        .await;
    assert_eq!(rows.len() as u64, count, "every point, once");
    for row in &rows {
        assert!((row[1].as_f64().unwrap() - soc).abs() <= tolerance, "{row:?}");
        assert_eq!(
            row[2..],
            [json!(true), json!("Normal"), json!("house"), json!("2306178901"), json!("home")]
        );
    }
    let fields = db.rows("SHOW FIELD KEYS FROM inverter").await;
    let kind = |key: &str| fields.iter().find(|f| f[0] == json!(key)).map(|f| f[1].clone());
    assert_eq!(kind("battery_soc"), Some(json!("float")));
    assert_eq!(kind("grid_connected"), Some(json!("boolean")));
    assert_eq!(kind("running_state"), Some(json!("string")));
    assert_eq!(fields.len(), profile().readings.len(), "every reading is a field");
}

#[tokio::test]
async fn an_outage_loses_nothing_and_duplicates_nothing() {
    let mut vm = VictoriaMetrics::new();
    vm.start().await;
    let data = tempfile::tempdir().unwrap();
    let app = App::start(&v2(&vm.url(), "unused"), data.path()).await;
    until("two points written", || app.influx.points_written() >= 2).await;

    vm.stop().await;
    let before = app.polls();
    until("five polls while the database is down", || app.polls() >= before + 5).await;
    until("points waiting in the spool", || app.influx.spool_points() >= 3).await;
    assert!(app.influx.oldest_point_age(chrono::Utc::now()).is_some());
    assert!(app.influx.last_error().is_some(), "the failure is visible to metrics");

    vm.start().await;
    until("the spool drained", || app.influx.spool_points() == 0).await;
    assert_eq!(app.influx.last_error(), None);
    let (count, sim) = app.finish().await;
    assert_exactly(&vm, &sim, count).await;
}

/// The real binary with `run --config`, killable with `kill -9`.
struct Service(Child);

impl Service {
    /// Runs `run --config config`; its log goes to `service.log` beside the config.
    fn start(config: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("service.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_inverter-monitor"))
            .args(["run", "--config", &config.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self(child)
    }

    fn signal(&mut self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.0.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Waits (off the runtime) for the process to end, for at most 8 s.
    async fn exited(&mut self) -> std::process::ExitStatus {
        for _ in 0..160 {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not exit");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The times of the points waiting in the spool under `data`, opened as the service would.
fn spooled_times(data: &Path) -> Vec<i64> {
    let mut spool = Spool::open(&data.join(SPOOL_DIR), Limits::new(100_000_000)).unwrap();
    spool.peek(usize::MAX, usize::MAX).unwrap().records.iter().map(|r| r.time_ms).collect()
}

#[tokio::test]
async fn a_kill_9_during_an_outage_keeps_the_spool_and_the_restart_delivers_it_once() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut vm = VictoriaMetrics::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("inverter-monitor.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {}\n\
             serial = {SERIAL}\ninterval = \"1s\"\nrequest_pause = \"1ms\"\n\n[influxdb]\n{}\n",
            sim.addr.port(),
            v1(&vm.url())
        ),
    )
    .unwrap();

    let mut service = Service::start(&config);
    until("four polls with the database down", || sim.sim.requests() >= 12).await;
    service.signal("-9");
    service.exited().await;
    let spooled = spooled_times(&data);
    assert!(spooled.len() >= 3, "the spool survived kill -9 with {} points", spooled.len());

    vm.start().await;
    let polls_before = sim.sim.requests() / 3;
    let mut service = Service::start(&config);
    until("two more polls", || sim.sim.requests() / 3 >= polls_before + 2).await;
    vm.wait_for("inverter_battery_soc", spooled.len() + 2).await;
    service.signal("-TERM");
    assert!(service.exited().await.success(), "a clean stop on SIGTERM");

    let stored = vm.samples("inverter_battery_soc").await;
    let times: Vec<i64> = stored.iter().map(|s| s.1).collect();
    let mut distinct = times.clone();
    distinct.dedup();
    assert_eq!(distinct, times, "no point arrived twice");
    for t in &spooled {
        assert!(times.contains(t), "spooled point at {t} ms was delivered");
    }
    assert!(times.len() > spooled.len(), "the new points arrived too");
    let left = spooled_times(&data);
    let polls = sim.sim.requests() / 3;
    assert!(
        (times.len() + left.len()) as u64 + 2 >= polls,
        "{} stored + {} still spooled from {polls} polls (at most the poll cut by kill -9 and the one cut by the stop are missing)",
        times.len(),
        left.len()
    );
}

#[tokio::test]
async fn a_refused_batch_is_dropped_and_counted_and_later_points_still_go() {
    let server = FakeInflux::start(|n| if n == 0 { 400 } else { 204 }).await;
    let data = tempfile::tempdir().unwrap();
    let app = App::start(&v2(&server.url(), "s3cret"), data.path()).await;
    until("a later batch written", || app.influx.points_written() >= 1).await;
    assert_eq!(app.influx.batches_rejected(), 1);
    assert!(app.influx.points_rejected() >= 1);

    let requests = server.requests();
    assert_eq!(requests[0].target, "/api/v2/write?org=home&bucket=solar&precision=ns");
    assert_eq!(requests[0].header("authorization"), Some("Token s3cret"));
    let first = requests[0].body.lines().last().unwrap().to_string();
    let later = requests[1].body.lines().next().unwrap();
    assert!(first.starts_with("inverter,inverter=house,serial=2306178901,site=home "), "{first}");
    assert_ne!(first, later, "the refused batch is not sent again");
    app.finish().await;
}

#[tokio::test]
async fn v1_compat_and_v1_send_the_documented_requests() {
    let server = FakeInflux::start(|_| 204).await;
    let data = tempfile::tempdir().unwrap();
    let compat = format!(
        "url = \"{}\"\napi = \"v1-compat\"\ndatabase = \"homeassistant\"\nretention_policy = \"autogen\"\n\
         username = \"ha\"\npassword = \"pw\"",
        server.url()
    );
    let app = App::start(&compat, data.path()).await;
    until("one write", || app.influx.points_written() >= 1).await;
    app.finish().await;
    let plain =
        format!("url = \"{}/\"\ndatabase = \"db\"\nusername = \"user\"\npassword = \"pass\"", server.url());
    let app = App::start(&plain, data.path()).await;
    until("one write", || app.influx.points_written() >= 1).await;
    app.finish().await;

    let requests = server.requests();
    let compat = &requests[0];
    assert_eq!(compat.target, "/api/v2/write?bucket=homeassistant%2Fautogen&precision=ns");
    assert_eq!(compat.header("authorization"), Some("Token ha:pw"));
    let plain = requests.last().unwrap();
    assert_eq!(plain.target, "/write?db=db&precision=ns");
    assert_eq!(plain.header("authorization"), Some("Basic dXNlcjpwYXNz"), "user:pass in base64");
    assert_eq!(plain.header("content-type"), Some("text/plain; charset=utf-8"));
}
