//! No secret in the log: the real binary at debug level, with every secret set the ways a
//! Docker user sets them (environment variables and `*_file`s), while everything that uses a
//! secret fails and logs about it: one inverter polls, the other is unreachable.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};

use inverter_monitor::sim::SimConfig;

use crate::helpers::*;
use crate::process::{free_port, healthcheck_until, spawn_logged, stop, wait_for_port};

const MQTT_PASSWORD: &str = "mqtt-pw-from-env-71c2";
const INFLUX_TOKEN: &str = "influx-token-from-file-5d0e";
const SENTRY_KEY: &str = "abcdef0123456789sentrykey";
const PING_UUID: &str = "ping-uuid-from-file-9b3f";
const WEATHER_KEY: &str = "openweather-key-from-file-3a7c";
const HTTP_TOKEN: &str = "http-token-from-file-6e1f0a2b";
const HTTP_TOKEN_INLINE: &str = "http-token-from-env-8d4c7e19";

/// A server that refuses every request with 401 and remembers (path and query, Authorization)
/// of each.
async fn refusing() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        log.lock().unwrap().push((uri.to_string(), auth));
        async { StatusCode::UNAUTHORIZED }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test]
async fn secrets_from_the_environment_and_files_never_reach_the_log() {
    let (server, seen) = refusing().await;
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{text}\n")).unwrap();
        path.display().to_string()
    };
    let token_file = file("influx_token", INFLUX_TOKEN.into());
    let dsn_file = file("sentry_dsn", format!("http://{SENTRY_KEY}@{server}/7"));
    let ping_file = file("ping_url", format!("http://{server}/{PING_UUID}"));
    let key_file = file("weather_key", WEATHER_KEY.into());
    let http_token_file = file("http_token", HTTP_TOKEN.into());
    let http = format!("127.0.0.1:{}", free_port());
    let config = format!(
        r#"data_dir = "{data}"
[[inverter]]
name = "house"
host = "127.0.0.1"
port = {logger}
serial = 2712345678
interval = "1s"
request_pause = "1ms"
[[inverter]]
name = "garage"
host = "127.0.0.1"
port = {closed}
serial = 2712345678
interval = "1s"
connect_timeout = "200ms"
unavailable_after = 1
[mqtt]
host = "127.0.0.1"
port = {broker}
username = "inverter"
[influxdb]
url = "http://{server}"
org = "home"
bucket = "solar"
token_file = "{token_file}"
[sentry]
dsn_file = "{dsn_file}"
[healthcheck]
ping_url_file = "{ping_file}"
[weather]
provider = "openweather"
latitude = -34.05
longitude = 18.85
url = "http://{server}"
api_key_file = "{key_file}"
[http]
listen = "{http}"
token_file = "{http_token_file}"
"#,
        data = dir.path().display(),
        logger = sim.addr.port(),
        closed = free_port(),
        broker = free_port(),
    );
    let path = dir.path().join("inverter-monitor.toml");
    std::fs::write(&path, config).unwrap();
    // The inline token is overridden by the file; it must not show either.
    let env = [
        ("INVERTER_MONITOR__MQTT__PASSWORD", MQTT_PASSWORD.to_string()),
        ("INVERTER_MONITOR__HTTP__TOKEN", HTTP_TOKEN_INLINE.to_string()),
    ];
    let child = spawn_logged(&dir, &["run", "--config", path.to_str().unwrap()], &env);
    wait_for_port(&http);
    let (_, stderr) = healthcheck_until(&format!("http://{http}/healthz"), false).await;
    assert!(stderr.contains("HTTP 503") && stderr.contains("no good poll"), "{stderr}");
    let used =
        |path: &str, auth: &str| seen.lock().unwrap().iter().any(|(p, a)| p.contains(path) && a == auth);
    tokio::time::timeout(Duration::from_secs(15), async {
        while !(used("/api/v2/write", &format!("Token {INFLUX_TOKEN}"))
            && used(PING_UUID, "")
            && used(&format!("appid={WEATHER_KEY}"), ""))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the secrets from files were not used: {:?}", seen.lock().unwrap()));
    assert!(
        seen.lock().unwrap().iter().any(|(p, _)| p.starts_with("/api/7/")),
        "the DSN from its file is used"
    );
    http_token_is_used(&http).await;
    let log = stop(child, &dir).await;
    assert!(log.contains("poll failed") && log.contains("MQTT broker unreachable"), "{log}");
    assert!(log.contains("weather") && log.contains("401"), "the refused weather fetch is logged: {log}");
    for secret in
        [MQTT_PASSWORD, INFLUX_TOKEN, SENTRY_KEY, PING_UUID, WEATHER_KEY, HTTP_TOKEN, HTTP_TOKEN_INLINE]
    {
        assert!(!log.contains(secret), "the log shows a secret: {secret}\n{log}");
    }
}

/// The HTTP token from its file opens the page, in a header and in the query; the inline one,
/// overridden, does not.
async fn http_token_is_used(http: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let status =
        |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status().as_u16() };
    let page = format!("http://{http}/");
    assert_eq!(status(client.get(&page).bearer_auth(HTTP_TOKEN)).await, 200);
    assert_eq!(status(client.get(&page).bearer_auth(HTTP_TOKEN_INLINE)).await, 401);
    assert_eq!(status(client.get(format!("{page}?token={HTTP_TOKEN}"))).await, 303);
    assert_eq!(status(client.get(format!("{page}?token={HTTP_TOKEN_INLINE}"))).await, 401);
}
