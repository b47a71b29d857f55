//! The weather task against a real HTTP server in the test (never the internet): good answers
//! become snapshots; malformed, slow, refused and missing answers are counted by kind, the last
//! good values stay and then go stale; the API key never shows; and through the service the
//! values reach InfluxDB and /metrics.

pub mod fake;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound, Utc};
use inverter_monitor::config::{Config, HttpConfig, InverterConfig, WeatherConfig};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use inverter_monitor::weather::{
    self, FailureKind, SunPosition, WeatherHandle, WeatherProvider, WeatherSnapshot,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::helpers::{SERIAL, init_log, profile, promtool, spawn_sim, supervised, until};
use crate::influx::fake::FakeInflux;
use fake::{CLOUD_HOURLY, CLOUD_NOW, FakeWeather, Mode, SHORTWAVE};

const KEY: &str = "k3y-s3cret";

/// A running weather task; it stops when dropped.
struct Task {
    handle: WeatherHandle,
    cancel: CancellationToken,
    _tasks: JoinSet<()>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// `[weather]` for the site with a 5 kWp array, asking `fake`, plus `extra` keys.
fn config(fake: &str, extra: &str) -> WeatherConfig {
    let text =
        format!("latitude = -34.05\nlongitude = 18.85\npv_peak_power = 5000\nurl = \"{fake}\"\n{extra}");
    toml::from_str(&text).unwrap()
}

fn start(config: &WeatherConfig) -> Task {
    init_log();
    let (mut tasks, cancel) = (JoinSet::new(), CancellationToken::new());
    let handle = weather::spawn(config, &mut tasks, cancel.clone()).unwrap();
    Task { handle, cancel, _tasks: tasks }
}

/// The first good snapshot (10 s at most).
async fn first(handle: &WeatherHandle) -> Arc<WeatherSnapshot> {
    let mut fetches = handle.subscribe();
    let wait = fetches.wait_for(Option::is_some);
    let snapshot = tokio::time::timeout(Duration::from_secs(10), wait).await.expect("a good fetch in time");
    snapshot.unwrap().clone().unwrap()
}

/// Waits for the first failed fetch of `kind` and returns the error text.
async fn failure(handle: &WeatherHandle, kind: FailureKind) -> String {
    until(kind.as_str(), || handle.fetches_failed(kind) >= 1).await;
    handle.last_error().expect("the failure is kept")
}

#[tokio::test]
async fn an_open_meteo_answer_becomes_a_snapshot_with_forecast_and_estimate() {
    let fake = FakeWeather::start(Mode::Good).await;
    let task = start(&config(&fake.url(), ""));
    let s = first(&task.handle).await;
    assert_eq!(
        fake.requests(),
        ["/v1/forecast?latitude=-34.05&longitude=18.85&current=cloud_cover\
          &hourly=cloud_cover%2Cshortwave_radiation&forecast_days=2&timezone=UTC"]
    );
    assert_eq!((s.provider, s.cloud_cover_pct), (WeatherProvider::OpenMeteo, CLOUD_NOW));
    assert!((Utc::now() - s.fetched_at).num_seconds() < 10);
    assert!((24..=25).contains(&s.forecast.len()), "{}", s.forecast.len());
    assert!(
        s.forecast.iter().all(|h| h.cloud_cover_pct == CLOUD_HOURLY && h.shortwave_w_m2 == Some(SHORTWAVE))
    );
    let sun = SunPosition::at(-34.05, 18.85, s.at).unwrap();
    assert_eq!(s.sun, sun);
    // The rest of the day is integrated on the forecast's 500 W/m² hourly means, shaped by the
    // clear sky within each hour, not on the cloud cover.
    let array = s.site.array.unwrap();
    let shaped = |t: chrono::DateTime<Utc>, elevation: f64| {
        let trunc = t.duration_trunc(chrono::TimeDelta::hours(1)).unwrap();
        let end = if trunc == t { t } else { trunc + chrono::TimeDelta::hours(1) };
        let mean = weather::snapshot::clear_sky_mean(-34.05, 18.85, end);
        let clear = weather::estimate::clear_sky_ghi(elevation);
        if mean < 1.0 { 0.0 } else { clear * (SHORTWAVE / mean).min(weather::snapshot::CLEAR_SKY_INDEX_MAX) }
    };
    let on_forecast = weather::estimate::remaining_energy_wh(&array, (-34.05, 18.85), s.at, shaped);
    let remaining = s.expected_pv_remaining_wh.unwrap();
    assert!((remaining - on_forecast).abs() < 1e-6, "{remaining} {on_forecast}");
    // "Now" is on the current cloud cover.
    let ghi =
        weather::estimate::clear_sky_ghi(sun.elevation_deg) * weather::estimate::cloud_factor(CLOUD_NOW);
    let now = weather::estimate::pv_power(&array, sun.elevation_deg, sun.azimuth_deg, ghi, s.at);
    assert_eq!(s.expected_pv_w, Some(now));
    let latest = task.handle.latest(Utc::now()).expect("fresh");
    assert_eq!((latest.cloud_cover_pct, task.handle.fetches_ok()), (CLOUD_NOW, 1));
}

#[tokio::test]
async fn an_openweather_answer_has_clouds_no_forecast_and_carries_the_key() {
    let fake = FakeWeather::start(Mode::Good).await;
    let task = start(&config(&fake.url(), &format!("provider = \"openweather\"\napi_key = \"{KEY}\"")));
    let s = first(&task.handle).await;
    assert_eq!(fake.requests(), [format!("/data/2.5/weather?lat=-34.05&lon=18.85&appid={KEY}")]);
    assert_eq!((s.provider, s.cloud_cover_pct), (WeatherProvider::OpenWeather, CLOUD_NOW));
    assert!(s.forecast.is_empty());
    assert!((s.fetched_at - s.observed_at).num_seconds() >= 119, "dt is the provider's time");
    assert!(s.expected_pv_w.is_some() && s.expected_pv_remaining_wh.is_some());
}

#[tokio::test]
async fn a_malformed_answer_is_counted_the_last_good_one_kept_then_dropped_after_3_intervals() {
    let fake = FakeWeather::start(Mode::Good).await;
    let task = start(&config(&fake.url(), "interval = \"300ms\""));
    first(&task.handle).await;
    fake.set(Mode::Malformed);
    let mut fetches = task.handle.subscribe();
    let error = failure(&task.handle, FailureKind::Malformed).await;
    assert!(error.contains("malformed answer: invalid type"), "{error}");
    let good = task.handle.last_success().unwrap();
    // One interval after the good fetch, two before it goes stale: the good values must be there.
    let kept = task.handle.latest(Utc::now()).expect("the last good values stay after a failure");
    assert_eq!((kept.cloud_cover_pct, kept.fetched_at), (CLOUD_NOW, good), "the last good values stay");
    let stale = tokio::time::timeout(Duration::from_secs(5), fetches.wait_for(Option::is_none));
    stale.await.expect("the weather goes stale").unwrap();
    let age = Utc::now() - good;
    assert!(age.num_milliseconds() >= 900, "not before 3 intervals: {age}");
    assert!(task.handle.latest(Utc::now()).is_none());
    assert!(task.handle.fetches_failed(FailureKind::Malformed) >= 2, "it keeps trying");
    fake.set(Mode::Good);
    first(&task.handle).await;
    assert!(task.handle.latest(Utc::now()).is_some(), "and is back with the next good answer");
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let fake = FakeWeather::start(Mode::Slow(Duration::from_secs(3))).await;
    let task = start(&config(&fake.url(), "timeout = \"200ms\""));
    let error = failure(&task.handle, FailureKind::Timeout).await;
    assert!(error.ends_with("no answer within 200ms"), "{error}");
    assert_eq!((task.handle.fetches_ok(), task.handle.latest(Utc::now())), (0, None));
}

#[tokio::test]
async fn a_refused_key_is_an_http_error_that_does_not_show_the_key() {
    let fake = FakeWeather::start(Mode::Status(401)).await;
    let task = start(&config(&fake.url(), &format!("provider = \"openweather\"\napi_key = \"{KEY}\"")));
    let error = failure(&task.handle, FailureKind::HttpStatus).await;
    assert!(fake.requests()[0].contains(KEY), "the key was sent, and the answer echoed it");
    assert!(error.contains("HTTP 401") && error.contains("Invalid API key"), "{error}");
    assert!(!error.contains(KEY), "{error}");
    assert!(error.contains("appid=%5Bredacted%5D") && error.contains("appid=[redacted]"), "{error}");
}

#[tokio::test]
async fn a_stopped_server_is_unreachable() {
    let fake = FakeWeather::start(Mode::Good).await;
    let url = fake.url();
    fake.stop().await;
    let task = start(&config(&url, ""));
    let error = failure(&task.handle, FailureKind::Unreachable).await;
    assert!(error.contains(&format!("{url}/v1/forecast?")) && error.contains("unreachable"), "{error}");
    assert_eq!(task.handle.fetches_failed(FailureKind::Timeout), 0);
}

#[tokio::test]
async fn through_the_service_weather_reaches_influxdb_and_metrics() {
    let fake = FakeWeather::start(Mode::Good).await;
    let influx = FakeInflux::start(|_| 204).await;
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL)]);
    config.data_dir = data.path().to_path_buf();
    config.weather = Some(self::config(&fake.url(), ""));
    config.influxdb =
        Some(toml::from_str(&format!("url = \"{}\"\ndatabase = \"db\"", influx.url())).unwrap());
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let (http, handle) = (running.http.unwrap(), running.weather.clone().unwrap());
    let service = tokio::spawn(supervised(running));

    let written = || {
        influx
            .requests()
            .iter()
            .flat_map(|r| r.body.lines().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    until("a weather point in InfluxDB", || written().iter().any(|l| l.starts_with("weather,"))).await;
    let line = written().into_iter().find(|l| l.starts_with("weather,")).unwrap();
    let s = handle.subscribe().borrow().clone().unwrap();
    let want = format!(
        "weather,provider=open-meteo cloud_cover=42,sun_elevation={},sun_azimuth={},expected_pv_power={},\
         expected_pv_energy_remaining={} {}000000000",
        s.sun.elevation_deg,
        s.sun.azimuth_deg,
        s.expected_pv_w.unwrap(),
        s.expected_pv_remaining_wh.unwrap(),
        s.at.timestamp()
    );
    assert_eq!(line, want);

    let client = inverter_monitor::http_client::client(Duration::from_secs(5)).unwrap();
    let text = client.get(format!("http://{http}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
    };
    assert_eq!(value("inverter_monitor_weather_cloud_cover_percent"), CLOUD_NOW);
    assert_eq!(value("inverter_monitor_weather_fetches_total{result=\"ok\"}"), 1.0);
    assert_eq!(value("inverter_monitor_weather_fetches_total{result=\"timeout\"}"), 0.0);
    let sun = SunPosition::at(-34.05, 18.85, Utc::now()).unwrap();
    assert!((value("inverter_monitor_weather_sun_elevation_degrees") - sun.elevation_deg).abs() < 0.5);
    assert!(value("inverter_monitor_weather_expected_pv_watts") >= 0.0);
    assert!(value("inverter_monitor_weather_expected_pv_remaining_watt_hours") >= 0.0);
    promtool(&text);
    cancel.cancel();
    service.await.unwrap();
}
