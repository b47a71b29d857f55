//! The real binary as a Home Assistant add-on: options from a file, the broker from a small HTTP
//! server standing in for the Supervisor, the status page on the ingress port, the Docker
//! health check against it, and no secret in a debug log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use inverter_monitor::sim::SimConfig;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::helpers::*;
use crate::process::{free_port, healthcheck, healthcheck_until, spawn_logged, stop, wait_for_port};

const TOKEN: &str = "supervisor-token-0f9a";
const BROKER_PASSWORD: &str = "Eeghoh7ohK-broker";
const INFLUX_PASSWORD: &str = "influx-s3cret-in-options";

/// A Supervisor that answers `/services/mqtt` with `broker` and remembers the tokens it saw.
async fn supervisor(broker: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = tokens.clone();
    let fixture = include_str!("../fixtures/addon/mqtt-service.json")
        .replace("core-mosquitto", &broker.ip().to_string())
        .replace("\"1883\"", &format!("\"{}\"", broker.port()))
        .replace("Eeghoh7ohK", BROKER_PASSWORD);
    let app = Router::new().route(
        "/services/mqtt",
        get(move |headers: HeaderMap| {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            seen.lock().unwrap().push(auth.to_string());
            let fixture = fixture.clone();
            async move { fixture }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, tokens)
}

/// A broker that only listens: returns the bytes of the first MQTT CONNECT it receives.
async fn first_connect(listener: tokio::net::TcpListener) -> Vec<u8> {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut bytes = vec![0u8; 512];
    let n = socket.read(&mut bytes).await.unwrap();
    bytes.truncate(n);
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_addon_takes_its_broker_from_the_supervisor_and_serves_ingress() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let broker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (supervisor, tokens) = supervisor(broker.local_addr().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let options = json!({
        "inverter": [{"name": "house", "host": "127.0.0.1", "port": sim.addr.port(), "serial": SERIAL,
                      "interval": "1s", "request_pause": "1ms"}],
        "mqtt": {"base_topic": "solar"},
        "influxdb": {"url": format!("http://127.0.0.1:{}", free_port()), "api": "v1",
                     "database": "solar", "username": "im", "password": INFLUX_PASSWORD},
        "consumer": [], "sentry": {}, "healthcheck": {}, "log": {"level": "debug"}
    });
    std::fs::write(dir.path().join("options.json"), options.to_string()).unwrap();
    let ingress = format!("127.0.0.1:{}", free_port());
    let env = [
        ("INVERTER_MONITOR_OPTIONS", dir.path().join("options.json").display().to_string()),
        ("SUPERVISOR_TOKEN", TOKEN.to_string()),
        ("SUPERVISOR_URL", supervisor),
        ("INVERTER_MONITOR_CONFIG", dir.path().join("absent.toml").display().to_string()),
        // The facts say /data and the ingress port; a test may not use either.
        ("INVERTER_MONITOR__DATA_DIR", dir.path().display().to_string()),
        ("INVERTER_MONITOR__HTTP__LISTEN", ingress.clone()),
    ];
    let child = spawn_logged(&dir, &["run"], &env);
    let connect = tokio::time::timeout(Duration::from_secs(15), first_connect(broker)).await;
    let connect = connect.expect("the service connects to the Supervisor's broker");
    assert!(contains(&connect, "addons") && contains(&connect, BROKER_PASSWORD), "{connect:?}");
    assert!(contains(&connect, "solar/status"), "the options' base_topic is used: {connect:?}");
    assert_eq!(*tokens.lock().unwrap(), [format!("Bearer {TOKEN}")]);
    wait_for_port(&ingress);
    let url = format!("http://{ingress}/healthz");
    let (stdout, _) = healthcheck_until(&url, true).await;
    assert!(stdout.contains("\"status\":\"ok\""), "{stdout}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let page = reqwest::get(format!("http://{ingress}/")).await.unwrap().text().await.unwrap();
    assert!(page.contains("<h2>house</h2>") && page.contains("href=\"./metrics\""), "{page}");
    let log = stop(child, &dir).await;
    assert!(log.contains("running as a Home Assistant add-on"), "{log}");
    for secret in [TOKEN, BROKER_PASSWORD, INFLUX_PASSWORD] {
        assert!(!log.contains(secret), "the log shows a secret: {secret}\n{log}");
    }
    let (ok, _, stderr) = healthcheck(&url).await;
    assert!(!ok && stderr.contains("no answer"), "a stopped service is not healthy: {stderr}");
}

#[tokio::test]
async fn without_a_broker_from_the_supervisor_the_addon_says_what_to_install() {
    let app = Router::new().route(
        "/services/mqtt",
        get(|| async {
            (axum::http::StatusCode::BAD_REQUEST, include_str!("../fixtures/addon/mqtt-service-missing.json"))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let supervisor = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("options.json");
    std::fs::write(&options, r#"{"inverter": [{"name": "h", "host": "h", "serial": 1}], "mqtt": {}}"#)
        .unwrap();
    let env = [
        ("INVERTER_MONITOR_OPTIONS", options.display().to_string()),
        ("SUPERVISOR_TOKEN", TOKEN.to_string()),
        ("SUPERVISOR_URL", supervisor.clone()),
    ];
    let child = spawn_logged(&dir, &["run"], &env);
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap().status).await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(!status.success());
    assert_eq!(
        log.trim(),
        format!(
            "error: Home Assistant Supervisor, GET {supervisor}/services/mqtt: HTTP 400: No service for mqtt; \
             install the Mosquitto broker add-on, or set the mqtt options"
        )
    );
}
