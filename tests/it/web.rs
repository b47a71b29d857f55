//! The HTTP side over real TCP: health, metrics (validated by promtool), the snapshot API, and
//! the status page in a real headless Chromium.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use inverter_monitor::config::{Config, HttpConfig, InverterConfig};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

struct App {
    sim: SimHandle,
    http: SocketAddr,
    cancel: CancellationToken,
    /// The service's data dir: the status page keeps its history there.
    _data: tempfile::TempDir,
}

async fn start() -> App {
    start_polling_every(Duration::from_millis(100)).await
}

async fn start_polling_every(interval: Duration) -> App {
    start_in(interval, tempfile::tempdir().unwrap()).await
}

/// The service polling the simulator every `interval`, keeping its state in `data`.
async fn start_in(interval: Duration, data: tempfile::TempDir) -> App {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.interval = interval;
    inverter.request_pause = Duration::from_millis(1);
    let config = config_in(vec![inverter], data.path());
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let http = running.http.unwrap();
    tokio::spawn(supervised(running));
    App { sim, http, cancel, _data: data }
}

/// A config serving HTTP on a free loopback port, keeping its state in `data_dir`.
fn config_in(inverters: Vec<InverterConfig>, data_dir: &std::path::Path) -> Config {
    let mut config = Config::new(inverters);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    config.data_dir = data_dir.to_path_buf();
    config
}

impl Drop for App {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn get(app: &App, path: &str) -> (u16, String) {
    get_from(app.http, path).await
}

async fn get_from(http: SocketAddr, path: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{http}{path}")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits until the service has polled at least once.
async fn polled(app: &App) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, body) = get(app, "/api/snapshot").await;
            if body.contains("battery_soc") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a poll within 10 s");
}

#[tokio::test]
async fn healthz_is_200_while_polls_succeed_and_503_with_a_reason_when_they_stop() {
    // Healthy means a good poll within 3 intervals. At 100 ms a debug-build poll on a loaded
    // machine can outlast that window and make "healthy" flaky; 1 s keeps the judgement the
    // test's subject, at the cost of ~3 s waiting for the 503.
    let app = start_polling_every(Duration::from_secs(1)).await;
    polled(&app).await;
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["inverters"][0]["name"], "house");

    app.sim.stop.cancel();
    let unhealthy = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, body) = get(&app, "/healthz").await;
            if status == 503 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let body: serde_json::Value =
        serde_json::from_str(&unhealthy.await.expect("503 after 3 intervals")).unwrap();
    assert_eq!(body["status"], "unhealthy");
    let reason = body["inverters"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("no good poll for"), "{reason}");
}

#[tokio::test]
async fn metrics_carry_every_numeric_reading_and_pass_promtool() {
    let app = start().await;
    polled(&app).await;
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    let soc =
        app.sim.sim.expected().into_iter().find(|(k, _)| *k == "battery_soc").unwrap().1.as_f64().unwrap();
    assert!(
        text.contains(&format!(
            "inverter_battery_soc_percent{{inverter=\"house\",serial=\"2306178901\"}} {soc:.1}"
        )),
        "{text}"
    );
    assert!(text.contains("# TYPE inverter_pv_energy_kilowatt_hours_total counter"));
    assert!(text.contains("inverter_battery_power_watts{"));
    assert!(text.contains("inverter_grid_connected{inverter=\"house\",serial=\"2306178901\"} 1"));
    assert!(text.contains(
        "inverter_monitor_link_events_total{inverter=\"house\",serial=\"2306178901\",kind=\"crc\"} 0"
    ));
    assert!(text.contains("inverter_monitor_polls_total{inverter=\"house\",outcome=\"ok\"}"));
    assert!(text.contains("inverter_monitor_poll_duration_seconds_bucket{"));
    assert!(text.contains("inverter_monitor_last_success_timestamp_seconds{"));

    let report = promtool(&text);
    assert!(report.lines().count() <= 16, "only the *_hours names are linted: {report}");
}

#[tokio::test]
async fn the_snapshot_api_and_the_status_page_show_the_simulators_values() {
    let app = start().await;
    polled(&app).await;
    let (_, body) = get(&app, "/api/snapshot").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let readings = json["inverters"][0]["readings"].as_array().unwrap();
    assert_eq!(readings.len(), profile().readings.len());
    let chosen = &json["inverters"][0]["profile"];
    assert_eq!(
        chosen,
        &serde_json::json!({"id": "deye_sg01lp1", "model": "SUN-xK-SG01LP1", "detected": true,
            "device_type": 3, "mppts": 2, "phases": 1}),
        "the default profile = \"auto\" detected the simulator's family"
    );
    let (status, page) = get(&app, "/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("profile deye_sg01lp1, detected from device type 0x0003 (2 MPPT, 1 phase)"),
        "{page}"
    );
    for needle in ["<svg", "Battery", "Grid", "Load", "./api/snapshot", "./metrics"] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(!page.contains("href=\"/") && !page.contains("src=\"/"), "only relative links, for ingress");
}

/// Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`); its stdout and stderr.
async fn chromium(url: String, args: Vec<String>) -> (String, String) {
    let profile_dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile_dir.path().display()))
            .args(["--enable-logging=stderr", "--v=0", "--hide-scrollbars"])
            .args(args)
            .arg(&url)
            .output()
    })
    .await
    .unwrap()
    .expect("chromium is needed for this test: apt-get install chromium");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed: {log}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), log)
}

fn console_errors(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect()
}

/// The page in Chromium: no console errors, the simulator's numbers in the picture, and
/// screenshots at a phone's and a desktop's width. They go to a temporary directory, or to
/// docs/images/ (status-phone.png, status-desktop.png) with `UPDATE_SCREENSHOTS=1`.
/// A sunny day's history as the status page saves it, ending now: PV by day, a morning and an
/// evening peak of load, the battery taking the surplus and giving it back; and 29 days of
/// energy before today.
fn a_sunny_day() -> serde_json::Value {
    let now = chrono::Utc::now().timestamp().div_euclid(60) * 60;
    let rows: Vec<serde_json::Value> = (0..24 * 60)
        .rev()
        .map(|ago| {
            let minute = now - ago * 60;
            let hour = (minute.rem_euclid(86_400)) as f64 / 3600.0;
            let pv = (5500.0 * ((hour - 6.0) / 12.0 * std::f64::consts::PI).sin()).max(0.0);
            let peak = |at: f64, w: f64| if (hour - at).abs() < 1.0 { w } else { 0.0 };
            let load = 450.0 + peak(7.5, 1800.0) + peak(19.0, 2200.0);
            let battery = (load - pv).clamp(-3000.0, 3000.0);
            serde_json::json!([minute, pv.round(), load, battery.round(), (load - pv - battery).round(), 12])
        })
        .collect();
    let today = chrono::Local::now().date_naive();
    let days: serde_json::Map<String, serde_json::Value> = (1..30)
        .map(|ago| {
            let pv = 8.0 + 14.0 * ((ago * 7 % 11) as f64 / 10.0);
            let day = today - chrono::Duration::days(ago);
            (day.to_string(), serde_json::json!([pv, 11.0 + (ago % 4) as f64, 2.0, pv - 9.0, 6.0, 5.5]))
        })
        .collect();
    serde_json::json!({ "inverters": { "house": rows }, "days": { "house": days } })
}

#[tokio::test]
async fn the_status_page_renders_in_headless_chromium_without_console_errors() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("history.json"), a_sunny_day().to_string()).unwrap();
    let app = start_in(Duration::from_millis(100), data).await;
    polled(&app).await;
    let expected = app.sim.sim.expected();
    let number = |key: &str| expected.iter().find(|(k, _)| *k == key).unwrap().1.as_f64().unwrap();
    let url = format!("http://{}/", app.http);
    let (dom, log) = chromium(url.clone(), vec!["--dump-dom".into()]).await;
    assert!(dom.contains(&format!("{:.0} %", number("battery_soc"))), "the picture shows the SOC: {dom}");
    assert!(dom.contains(&format!("{:.2} kW", number("load_power") / 1000.0)), "and the load: {dom}");
    assert!(dom.contains(&format!("PV<b>{:.1} kWh</b>", number("pv_energy_today"))), "and today's PV: {dom}");
    assert!(dom.contains("<polyline") && dom.contains("<polygon"), "the chart and the arrows rendered");
    assert_eq!(dom.matches("<rect").count(), 60, "30 days of PV and load bars: 29 seeded and today");
    assert!(console_errors(&log).is_empty(), "console errors: {:?}", console_errors(&log));

    let into_docs = std::env::var_os("UPDATE_SCREENSHOTS").is_some();
    let shots = tempfile::tempdir().unwrap();
    let dir = if into_docs {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images")
    } else {
        shots.path().to_path_buf()
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (name, size) in [("status-phone.png", "390,1200"), ("status-desktop.png", "1280,960")] {
        let path = dir.join(name);
        let args = vec![format!("--screenshot={}", path.display()), format!("--window-size={size}")];
        let (_, log) = chromium(url.clone(), args).await;
        assert!(console_errors(&log).is_empty(), "console errors at {size}: {:?}", console_errors(&log));
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name} is a picture of something");
    }
}

/// The 24 h chart is kept in the data dir: a second service on the same dir, which cannot
/// poll at all, draws the first one's history.
#[tokio::test]
async fn the_24_hour_chart_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    (inverter.interval, inverter.request_pause) = (Duration::from_millis(100), Duration::from_millis(1));
    let cancel = CancellationToken::new();
    let running =
        service::start(config_in(vec![inverter.clone()], data.path()), Console::Quiet, &cancel).unwrap();
    let http = running.http.unwrap();
    let drawn = |page: &str| page.contains("<polyline") && !page.contains("points=\"\"");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !drawn(&get_from(http, "/").await.1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a poll in the chart within 10 s");
    cancel.cancel();
    running.wait().await.unwrap();
    assert!(data.path().join("history.json").exists(), "saved at shutdown");

    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    inverter.port = Some(nowhere);
    let cancel = CancellationToken::new();
    let running = service::start(config_in(vec![inverter], data.path()), Console::Quiet, &cancel).unwrap();
    let (_, page) = get_from(running.http.unwrap(), "/").await;
    assert!(page.contains("No successful poll yet"), "the second service has not polled: {page}");
    assert!(drawn(&page), "yet it draws the first one's history: {page}");
    cancel.cancel();
    running.wait().await.unwrap();
}
