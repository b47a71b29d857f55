//! The weather in Home Assistant: a "Weather" device whose sensors read one retained JSON on
//! `<base>/weather/state`. The sun's sensors need only the service; the provider's (cloud
//! cover, expected PV) also need `<base>/weather/availability`, which turns offline once the
//! last good fetch is [`super::STALE_AFTER_INTERVALS`] intervals old.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;

use super::{FailureKind, WeatherHandle};
use crate::config::WeatherConfig;
use crate::mqtt::discovery::{Component, Context, DeviceInfo, Entity, Platform};
use crate::mqtt::topics::Topics;
use crate::mqtt::{MqttHandle, ServiceDevice};

/// The ledger key of the weather device.
pub(crate) const DEVICE_KEY: &str = "@weather";
/// How often the sun's position and the expected PV are brought up to date between fetches.
const EVERY: Duration = Duration::from_secs(60);
/// How often to look for the first answer of the provider.
const FIRST_ANSWER_POLL: Duration = Duration::from_millis(250);

/// The device and its sensors; the PV estimates only with a configured array.
pub(crate) fn device(topics: &Topics, config: &WeatherConfig) -> ServiceDevice {
    let model = format!("{} and sun position", config.provider.as_str());
    let device = DeviceInfo::service(topics, crate::mqtt::topics::WEATHER, "Weather", model);
    let ctx = Context { device: &device, topics };
    let measurement = |unit: &str, icon: &str| {
        let (unit, icon) = (unit.to_string(), icon.to_string());
        move |e: Entity| e.unit(&unit).state_class("measurement").icon(&icon)
    };
    let timestamp = |e: Entity| e.class("timestamp");
    let mut components = vec![
        sensor(&ctx, "cloud_cover", "Cloud cover", true, measurement("%", "mdi:weather-cloudy")),
        sensor(&ctx, "sun_elevation", "Sun elevation", false, measurement("°", "mdi:weather-sunny")),
        sensor(&ctx, "sun_azimuth", "Sun azimuth", false, measurement("°", "mdi:compass-outline")),
        sensor(&ctx, "sunrise", "Sunrise", false, timestamp),
        sensor(&ctx, "sunset", "Sunset", false, timestamp),
    ];
    if config.pv_peak_power.is_some() {
        components.push(sensor(&ctx, "expected_pv_power", "Expected PV power", true, |e| {
            e.unit("W").class("power").state_class("measurement")
        }));
        let name = "Expected PV energy remaining today";
        components.push(sensor(&ctx, "expected_pv_energy_remaining", name, true, |e| Entity {
            suggested_display_precision: Some(1),
            ..e.unit("kWh").class("energy")
        }));
    }
    let retained = vec![topics.weather_state(), topics.weather_availability()];
    ServiceDevice { key: DEVICE_KEY.into(), device, components, listen: Vec::new(), retained }
}

/// A sensor reading `key` of the state JSON; a `provider` value also needs the provider.
fn sensor(
    ctx: &Context<'_>,
    key: &str,
    name: &str,
    provider: bool,
    extra: impl FnOnce(Entity) -> Entity,
) -> Component {
    let topics = ctx.topics;
    let mut availability = vec![topics.status()];
    if provider {
        availability.push(topics.weather_availability());
    }
    ctx.component(Platform::Sensor, key, name, |e| {
        let e = e.reads(topics.weather_state(), format!("{{{{ value_json.{key} }}}}"));
        extra(e.available_with_all(availability))
    })
}

/// The state JSON at `now`; the provider's values are absent once stale.
fn state(weather: &WeatherHandle, now: DateTime<Utc>) -> (Json, bool) {
    let mut state = Map::new();
    if let Some(sun) = weather.sun(now) {
        state.insert("sun_elevation".into(), json!(round(sun.elevation_deg, 1)));
        state.insert("sun_azimuth".into(), json!(round(sun.azimuth_deg, 1)));
        state.insert("sunrise".into(), json!(sun.sunrise.map(|t| t.to_rfc3339())));
        state.insert("sunset".into(), json!(sun.sunset.map(|t| t.to_rfc3339())));
    }
    let latest = weather.latest(now);
    if let Some(w) = &latest {
        state.insert("cloud_cover".into(), json!(round(w.cloud_cover_pct, 0)));
        if let Some(pv) = w.expected_pv_w {
            state.insert("expected_pv_power".into(), json!(round(pv, 0)));
        }
        if let Some(wh) = w.expected_pv_remaining_wh {
            state.insert("expected_pv_energy_remaining".into(), json!(round(wh / 1000.0, 2)));
        }
    }
    (Json::Object(state), latest.is_some())
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Publishes the weather every minute and at each fetch until `cancel`.
pub(crate) async fn run(weather: WeatherHandle, mqtt: MqttHandle, cancel: CancellationToken) {
    let topics = mqtt.topics().clone();
    let mut fetches = weather.subscribe();
    let mut online = None;
    loop {
        // Availability waits for the first answer, good or bad: no offline flicker at start.
        let attempted =
            weather.fetches_ok() > 0 || FailureKind::ALL.iter().any(|k| weather.fetches_failed(*k) > 0);
        let (state, available) = state(&weather, Utc::now());
        if attempted && online != Some(available) {
            online = Some(available);
            let word = if available { "online" } else { "offline" };
            let _ = mqtt.publish(topics.weather_availability(), word.as_bytes().to_vec(), true).await;
        }
        if attempted {
            let _ = mqtt.publish(topics.weather_state(), state.to_string().into_bytes(), true).await;
        }
        let wait = if attempted { EVERY } else { FIRST_ANSWER_POLL };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            changed = fetches.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pv: Option<f64>) -> WeatherConfig {
        let text = format!(
            "latitude = -34.05\nlongitude = 18.85\n{}",
            pv.map(|w| format!("pv_peak_power = {w}\n")).unwrap_or_default()
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_sun_needs_only_the_service_and_the_estimates_need_an_array() {
        let topics = Topics::new("homeassistant", "im");
        let bare = device(&topics, &config(None));
        let ids: Vec<&str> = bare.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["cloud_cover", "sun_elevation", "sun_azimuth", "sunrise", "sunset"]);
        let full = device(&topics, &config(Some(5000.0)));
        assert_eq!(full.components.len(), 7);
        let cloud = &full.components[0].config;
        assert_eq!(cloud.availability[1].topic, "im/weather/availability");
        assert_eq!(cloud.unique_id, "im_weather_cloud_cover");
        assert_eq!(full.components[1].config.availability.len(), 1);
        assert_eq!(full.components[6].config.unit_of_measurement.as_deref(), Some("kWh"));
    }
}
