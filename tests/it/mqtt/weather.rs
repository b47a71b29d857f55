//! The weather in Home Assistant over a real broker: a "Weather" device, its state, and its
//! availability when the provider answers nonsense.

use std::time::Duration;

use inverter_monitor::config::WeatherConfig;

use super::Setup;
use crate::broker::*;
use crate::weather::fake::{CLOUD_NOW, FakeWeather, Mode};

fn weather(url: &str) -> WeatherConfig {
    let text = format!(
        "latitude = -34.05\nlongitude = 18.85\npv_peak_power = 5000\nurl = \"{url}\"\ntimeout = \"2s\"\n"
    );
    toml::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_weather_device_shows_the_sky_the_sun_and_the_expected_pv() {
    let fake = FakeWeather::start(Mode::Good).await;
    let mut setup = Setup::new(broker());
    setup.weather = Some(weather(&fake.url()));
    let base = setup.base.clone();
    let mut ha =
        Observer::new(&[format!("{}/device/+/config", setup.prefix), format!("{base}/weather/#")]).await;
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;
    let device = ha.wait_for("the weather device", |m| m.topic.ends_with("_weather/config")).await.json();
    assert_eq!(device["dev"]["name"], "Weather");
    let cmps = device["cmps"].as_object().unwrap();
    for id in ["cloud_cover", "sun_elevation", "expected_pv_power", "expected_pv_energy_remaining", "sunset"]
    {
        assert!(cmps.contains_key(id), "{id} missing: {:?}", cmps.keys());
    }
    let online = ha.wait_for("weather availability", |m| m.topic.ends_with("weather/availability")).await;
    assert_eq!(&online.payload[..], b"online");
    let state = ha
        .wait_for("a state with the sky", |m| {
            m.topic.ends_with("weather/state") && m.json().get("cloud_cover").is_some()
        })
        .await
        .json();
    assert_eq!(state["cloud_cover"], CLOUD_NOW);
    let elevation = state["sun_elevation"].as_f64().unwrap();
    assert!((-90.0..=90.0).contains(&elevation), "{state}");
    assert!(state["expected_pv_power"].as_f64().unwrap() >= 0.0);
    assert!(state["sunrise"].as_str().unwrap() < state["sunset"].as_str().unwrap());
    app.stop().await;
    fake.stop().await;
}

#[tokio::test]
async fn a_provider_answering_nonsense_leaves_only_the_sun() {
    let fake = FakeWeather::start(Mode::Malformed).await;
    let mut setup = Setup::new(broker());
    setup.weather = Some(weather(&fake.url()));
    let base = setup.base.clone();
    let mut ha = Observer::new(&[format!("{base}/weather/#")]).await;
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;
    let offline = ha.wait_for("weather availability", |m| m.topic.ends_with("weather/availability")).await;
    assert_eq!(&offline.payload[..], b"offline");
    let state = ha.wait_for("a state", |m| m.topic.ends_with("weather/state")).await.json();
    assert!(state.get("sun_elevation").is_some() && state.get("cloud_cover").is_none(), "{state}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!app.task.is_finished(), "a bad provider does not stop the service");
    app.stop().await;
    fake.stop().await;
}
