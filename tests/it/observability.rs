//! Sentry and health-check pings from the real binary, against a real HTTP server in the test
//! standing in for sentry.io and healthchecks.io; and no secret in the logs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Uri};
use inverter_monitor::sim::SimConfig;

use crate::helpers::*;
use crate::process::{spawn_logged, stop};

type Seen = Arc<Mutex<Vec<(Method, String, String)>>>;

/// An HTTP server that answers 200 to everything and remembers what it was sent.
async fn recorder() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let log = log.clone();
        async move {
            let path = uri.to_string();
            log.lock().unwrap().push((method, path.clone(), String::from_utf8_lossy(&body).to_string()));
            // Failing pings make the service log the failure: the URL must not be in that line.
            let status = if path.starts_with("/ping") { 500 } else { 200 };
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

async fn wait_until(what: &str, seen: &Seen, want: impl Fn(&(Method, String, String)) -> bool) {
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while !seen.lock().unwrap().iter().any(&want) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    found.await.unwrap_or_else(|_| panic!("never saw {what}: {:?}", seen.lock().unwrap()));
}

fn config(logger_port: u16, hooks: std::net::SocketAddr) -> String {
    format!(
        r#"
[[inverter]]
name = "house"
host = "127.0.0.1"
port = {logger_port}
serial = 2712345678
interval = "1s"
request_pause = "1ms"
connect_timeout = "200ms"
unavailable_after = 1

[mqtt]
host = "127.0.0.1"
port = 1
username = "inverter"
password = "s3cret-mqtt-password"

[sentry]
dsn = "http://0123456789abcdef@{hooks}/42"

[healthcheck]
ping_url = "http://{hooks}/ping/xyz"
min_interval = "1h"
"#
    )
}

/// Starts `run` with `text` as its config.
fn spawn_run(dir: &tempfile::TempDir, text: &str) -> std::process::Child {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, format!("data_dir = \"{}\"\n{text}", dir.path().display())).unwrap();
    spawn_logged(dir, &["run", "--config", path.to_str().unwrap()], &[])
}

#[tokio::test]
async fn an_unavailable_inverter_reaches_sentry_and_pings_fail_and_no_secret_is_logged() {
    let (hooks, seen) = recorder().await;
    let closed = crate::process::free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run(&dir, &config(closed, hooks));
    wait_until("a Sentry envelope", &seen, |(m, uri, body)| {
        m == Method::POST && uri.starts_with("/api/42/envelope") && body.contains("inverter unavailable")
    })
    .await;
    wait_until("a /fail ping", &seen, |(m, uri, _)| m == Method::GET && uri == "/ping/xyz/fail").await;
    let log = stop(child, &dir).await;
    // Only errors become events; info and warnings travel as their breadcrumbs.
    let levels: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, uri, _)| uri.starts_with("/api/42/envelope"))
        .flat_map(|(_, _, body)| {
            body.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).collect::<Vec<_>>()
        })
        .filter(|item| item.get("platform").is_some())
        // Sentry leaves out the level when it is the default, error.
        .map(|event| event.get("level").and_then(|l| l.as_str()).unwrap_or("error").to_string())
        .collect();
    assert!(!levels.is_empty() && levels.iter().all(|l| l == "error"), "event levels: {levels:?}");
    assert!(log.contains("inverter unavailable"), "{log}");
    assert!(log.contains("health-check ping failed"), "the failing ping was logged");
    let envelopes: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, u, _)| u.starts_with("/api"))
        .map(|(_, _, b)| b.clone())
        .collect();
    for secret in ["s3cret-mqtt-password", "0123456789abcdef", "/ping/xyz"] {
        assert!(!log.contains(secret), "the log shows a secret: {secret}");
        assert!(envelopes.iter().all(|e| !e.contains(secret)), "Sentry got a secret: {secret}");
    }
}

#[tokio::test]
async fn a_good_poll_pings_the_health_check() {
    let (hooks, seen) = recorder().await;
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run(&dir, &config(sim.addr.port(), hooks));
    wait_until("a success ping", &seen, |(m, uri, _)| m == Method::GET && uri == "/ping/xyz").await;
    stop(child, &dir).await;
    let pings = seen.lock().unwrap().iter().filter(|(_, uri, _)| uri.starts_with("/ping")).count();
    assert_eq!(pings, 1, "at most one ping per min_interval");
}
