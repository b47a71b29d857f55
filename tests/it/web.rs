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
}

async fn start() -> App {
    start_polling_every(Duration::from_millis(100)).await
}

async fn start_polling_every(interval: Duration) -> App {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.interval = interval;
    inverter.request_pause = Duration::from_millis(1);
    let mut config = Config::new(vec![inverter]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    let cancel = CancellationToken::new();
    let running = service::start(&config, Console::Quiet, &cancel).unwrap();
    let http = running.http.unwrap();
    tokio::spawn(supervised(running));
    App { sim, http, cancel }
}

impl Drop for App {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn get(app: &App, path: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{}{path}", app.http)).await.unwrap();
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

#[tokio::test]
async fn the_status_page_renders_in_headless_chromium_without_console_errors() {
    let app = start().await;
    polled(&app).await;
    let soc =
        app.sim.sim.expected().into_iter().find(|(k, _)| *k == "battery_soc").unwrap().1.as_f64().unwrap();
    let url = format!("http://{}/", app.http);
    let profile_dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile_dir.path().display()))
            .args(["--enable-logging=stderr", "--v=0", "--dump-dom", &url])
            .output()
    })
    .await
    .unwrap()
    .expect("chromium is needed for this test: apt-get install chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {log}");
    assert!(dom.contains(&format!("{soc:.0} %")), "the page shows the simulator's SOC {soc}: {dom}");
    assert!(dom.contains("<polyline"), "the chart rendered");
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
}
