//! A stand-in for Open-Meteo and OpenWeather over real HTTP (axum on a free loopback port). It
//! answers in the providers' shapes, built around the real time so the forecast covers "now",
//! or fails the way the test switched it to; it remembers what it was asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Cloud cover the fake reports now, %.
pub const CLOUD_NOW: f64 = 42.0;
/// Cloud cover of every forecast hour, %.
pub const CLOUD_HOURLY: f64 = 30.0;
/// Shortwave radiation of every forecast hour, W/m².
pub const SHORTWAVE: f64 = 500.0;

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// The provider's JSON.
    Good,
    /// 200 with a body that is not the provider's JSON.
    Malformed,
    /// The good answer, after this long.
    Slow(Duration),
    /// This status, with a body that echoes the request (as some proxies do).
    Status(u16),
}

/// The server; it stops when dropped.
pub struct FakeWeather {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Drop for FakeWeather {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeWeather {
    /// A server answering as `mode` says.
    pub async fn start(mode: Mode) -> Self {
        let (mode, seen) = (Arc::new(Mutex::new(mode)), Arc::new(Mutex::new(Vec::new())));
        let (now, log) = (mode.clone(), seen.clone());
        let app = Router::new().fallback(move |uri: Uri| {
            log.lock().unwrap().push(uri.to_string());
            let mode = *now.lock().unwrap();
            answer(mode, uri)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned());
            serve.await.unwrap();
        });
        Self { addr, mode, seen, stop, task: Some(task) }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers as `mode` from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The path and query of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops listening and waits until the port is closed.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

async fn answer(mode: Mode, uri: Uri) -> Response {
    match mode {
        Mode::Good => good(&uri),
        Mode::Malformed => {
            (StatusCode::OK, "{\"current\": {\"cloud_cover\": \"lots\"}, \"clouds\": []}").into_response()
        }
        Mode::Slow(wait) => {
            tokio::time::sleep(wait).await;
            good(&uri)
        }
        Mode::Status(code) => {
            let body = json!({"cod": code, "message": format!("Invalid API key for {uri}")});
            (StatusCode::from_u16(code).unwrap(), body.to_string()).into_response()
        }
    }
}

/// The provider's answer for the path of `uri`.
fn good(uri: &Uri) -> Response {
    let body = match uri.path() {
        "/v1/forecast" => open_meteo(),
        "/data/2.5/weather" => openweather(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// Open-Meteo's shape: today and tomorrow, hourly, in UTC; current values per quarter hour.
fn open_meteo() -> serde_json::Value {
    let now = Utc::now();
    let quarter = now.duration_trunc(TimeDelta::minutes(15)).unwrap();
    let midnight = now.duration_trunc(TimeDelta::days(1)).unwrap();
    let times: Vec<String> =
        (0..48).map(|h| (midnight + TimeDelta::hours(h)).format("%Y-%m-%dT%H:%M").to_string()).collect();
    json!({
        "latitude": -34.0, "longitude": 18.875, "generationtime_ms": 0.07, "utc_offset_seconds": 0,
        "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 112.0,
        "current_units": {"time": "iso8601", "interval": "seconds", "cloud_cover": "%"},
        "current": {"time": quarter.format("%Y-%m-%dT%H:%M").to_string(), "interval": 900, "cloud_cover": CLOUD_NOW},
        "hourly_units": {"time": "iso8601", "cloud_cover": "%", "shortwave_radiation": "W/m²"},
        "hourly": {"time": times, "cloud_cover": vec![CLOUD_HOURLY; 48], "shortwave_radiation": vec![SHORTWAVE; 48]}
    })
}

/// OpenWeather's current weather shape.
fn openweather() -> serde_json::Value {
    json!({
        "coord": {"lon": 18.85, "lat": -34.05},
        "weather": [{"id": 803, "main": "Clouds", "description": "broken clouds", "icon": "04d"}],
        "base": "stations", "main": {"temp": 295.1, "pressure": 1015, "humidity": 60},
        "visibility": 10000, "wind": {"speed": 5.1, "deg": 150}, "clouds": {"all": CLOUD_NOW},
        "dt": Utc::now().timestamp() - 120, "sys": {"country": "ZA"}, "timezone": 7200,
        "id": 3361025, "name": "Stellenbosch", "cod": 200
    })
}
