//! The safety net under the entity builder: the discovery payloads of the simulator's inverter,
//! the weather device and the load-control device, as Home Assistant receives them, compared
//! with payloads captured before the builder existed (`tests/fixtures/discovery/*.json`).
//!
//! Key order is free (Home Assistant reads JSON objects), keys and values are not: a changed
//! value here is a changed entity in every user's Home Assistant. To accept a deliberate change,
//! run with `UPDATE_GOLDEN=1` and review the fixture's diff.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use serde_json::{Value as Json, json};

use super::*;
use crate::config::{ConsumerConfig, WeatherConfig};
use crate::mqtt::ServiceDevice;
use crate::profile::Profiles;
use crate::sim::fixture;

/// The version appears in the origin and service devices; it must not break the fixture.
fn unversioned(mut json: Json) -> Json {
    let version = json!(env!("CARGO_PKG_VERSION"));
    match &mut json {
        Json::Object(map) => {
            for (_, value) in map.iter_mut() {
                *value = if *value == version { json!("VERSION") } else { unversioned(value.take()) };
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| *v = unversioned(v.take())),
        _ => {}
    }
    json
}

fn compare(name: &str, actual: Json) {
    let actual = unversioned(actual);
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/discovery/{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
    }
    let expected: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(actual == expected, "{name}: discovery changed; see the module docs\n{actual:#}");
}

/// Both discovery modes of a device: the one device message and the per-entity messages.
fn payloads(device: &DeviceInfo, components: &[Component], topics: &Topics) -> Json {
    let ctx = Context { device, topics };
    let removed = [("gone".to_string(), "sensor".to_string())];
    let entities: serde_json::Map<String, Json> = entity_payloads(&ctx, components)
        .into_iter()
        .map(|(topic, payload)| (topic, serde_json::to_value(payload).unwrap()))
        .collect();
    json!({
        "device": {
            "topic": topics.device_config(&device.object_id()),
            "payload": serde_json::to_value(device_payload(&ctx, components, &removed)).unwrap(),
        },
        "entities": entities,
    })
}

fn topics() -> Topics {
    Topics::new("homeassistant", "inverter-monitor")
}

fn service(device: &ServiceDevice) -> Json {
    let mut json = payloads(&device.device, &device.components, &topics());
    json["listen"] = json!(device.listen);
    json["retained"] = json!(device.retained);
    json
}

#[test]
fn the_simulated_inverter_is_announced_as_before() {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let snapshot = fixture::snapshot(profile.clone(), "house", at);
    let device = DeviceInfo::from_snapshot(&snapshot);
    let ctx = Context { device: &device, topics: &topics() };
    compare("inverter", payloads(&device, &components(&profile, &ctx), &topics()));
}

#[test]
fn the_weather_device_is_announced_as_before() {
    let text = "latitude = -34.05\nlongitude = 18.85\npv_peak_power = 5000\n";
    let config: WeatherConfig = toml::from_str(text).unwrap();
    compare("weather", service(&crate::weather::publish::device(&topics(), &config)));
}

#[test]
fn the_load_control_device_is_announced_as_before() {
    let consumers = [ConsumerConfig::new("pool_pump", 800.0), ConsumerConfig::new("ev-charger", 2300.0)];
    compare("control", service(&crate::control::entities::device(&topics(), &consumers)));
}
