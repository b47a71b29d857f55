use std::collections::BTreeSet;

use serde_json::{Value as Json, json};

use super::*;
use crate::profile::Profiles;

/// A component's config as Home Assistant reads it.
fn config(c: &Component) -> serde_json::Map<String, Json> {
    match serde_json::to_value(&c.config).unwrap() {
        Json::Object(map) => map,
        other => panic!("{other}"),
    }
}

/// Keys Home Assistant's MQTT sensor and binary_sensor accept (ours are a subset).
const KNOWN: &[&str] = &[
    "name",
    "unique_id",
    "default_entity_id",
    "state_topic",
    "value_template",
    "unit_of_measurement",
    "device_class",
    "state_class",
    "options",
    "suggested_display_precision",
    "icon",
    "entity_category",
    "availability",
    "availability_mode",
    "payload_on",
    "payload_off",
    "enabled_by_default",
    "p",
];

/// The simulator's SG01LP1 as the example config names it: `house`.
pub(super) fn device() -> DeviceInfo {
    DeviceInfo {
        inverter: "house".into(),
        serial: "2306178901".into(),
        manufacturer: "Deye".into(),
        model: "SUN-xK-SG01LP1 (Single-phase hybrid)".into(),
        model_id: Some("deye_sg01lp1".into()),
        sw_version: Some("1.1.5.3 / 1.0.2.7".into()),
    }
}

pub(super) fn sg01() -> std::sync::Arc<Profile> {
    Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap()
}

#[test]
fn every_register_of_the_profile_has_a_valid_entity() {
    let (device, topics, profile) = (device(), Topics::new("homeassistant", "inverter-monitor"), sg01());
    let ctx = Context { device: &device, topics: &topics };
    let components = components(&profile, &ctx);
    for spec in &profile.readings {
        assert!(components.iter().any(|c| c.id == spec.def.key), "{} has no entity", spec.def.key);
    }
    let mut unique_ids = BTreeSet::new();
    for c in &components {
        let config = config(c);
        for key in config.keys() {
            assert!(KNOWN.contains(&key.as_str()), "{}: unknown key {key}", c.id);
        }
        let unique_id = config["unique_id"].as_str().unwrap();
        assert!(unique_ids.insert(unique_id.to_string()), "{unique_id} twice");
        assert_eq!(unique_id, format!("2306178901_{}", c.id));
        assert!(
            config["default_entity_id"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}.house_", c.platform.as_str()))
        );
        assert_ne!(
            config.get("entity_category"),
            Some(&json!("config")),
            "{}: HA refuses config on sensors",
            c.id
        );
        assert!(!config.contains_key("object_id"));
    }
}

#[test]
fn platforms_and_classes_are_what_home_assistant_accepts() {
    let (device, topics, profile) = (device(), Topics::new("homeassistant", "inverter-monitor"), sg01());
    let ctx = Context { device: &device, topics: &topics };
    let components = components(&profile, &ctx);
    let get = |id: &str| config(components.iter().find(|c| c.id == id).unwrap());
    let energy = get("pv_energy_total");
    assert_eq!(
        (&energy["device_class"], &energy["state_class"], &energy["unit_of_measurement"]),
        (&json!("energy"), &json!("total_increasing"), &json!("kWh"))
    );
    let power = get("battery_power");
    assert_eq!((&power["device_class"], &power["state_class"]), (&json!("power"), &json!("measurement")));
    let state = get("running_state");
    assert_eq!(state["device_class"], json!("enum"));
    assert!(state["options"].as_array().unwrap().contains(&json!("Normal")));
    assert!(!state.contains_key("state_class") && !state.contains_key("unit_of_measurement"));
    let flag = components.iter().find(|c| c.id == "grid_connected").unwrap();
    assert_eq!(
        (flag.platform, &get("grid_connected")["device_class"]),
        (Platform::BinarySensor, &json!("connectivity"))
    );
    assert_eq!(get("inverter_serial")["entity_category"], json!("diagnostic"));
    assert_eq!(get("dc_transformer_temperature")["entity_category"], json!("diagnostic"));
    assert_eq!(get("work_mode")["entity_category"], json!("diagnostic"));
    assert!(!get("battery_soc").contains_key("entity_category"));
    assert_eq!(get("battery_soc")["availability_mode"], json!("all"));
    // The service's own statistics only need the service: a dead logger still shows its failures.
    assert_eq!(
        get("monitor_consecutive_failures")["availability"],
        json!([{"topic": "inverter-monitor/status"}])
    );
}

#[test]
fn device_payload_carries_device_origin_and_every_component() {
    let (device, topics, profile) = (device(), Topics::new("homeassistant", "inverter-monitor"), sg01());
    let ctx = Context { device: &device, topics: &topics };
    let components = components(&profile, &ctx);
    let removed = vec![("gone".to_string(), "sensor".to_string())];
    let payload = serde_json::to_value(device_payload(&ctx, &components, &removed)).unwrap();
    assert_eq!(payload["dev"]["identifiers"], json!(["inverter_monitor_2306178901"]));
    assert_eq!(payload["dev"]["name"], json!("house"));
    assert_eq!(payload["dev"]["sw_version"], json!("1.1.5.3 / 1.0.2.7"));
    assert_eq!(payload["o"]["name"], json!("inverter-monitor"));
    assert_eq!(payload["cmps"].as_object().unwrap().len(), components.len() + 1);
    assert_eq!(payload["cmps"]["gone"], json!({"p": "sensor"}));
    assert_eq!(payload["cmps"]["battery_soc"]["p"], json!("sensor"));
    let size = payload.to_string().len();
    assert!(size < crate::mqtt::connection::MAX_PACKET / 4, "{size} bytes");
}

#[test]
fn entity_payloads_each_carry_the_device() {
    let (device, topics, profile) = (device(), Topics::new("ha", "im"), sg01());
    let ctx = Context { device: &device, topics: &topics };
    let components = components(&profile, &ctx);
    let messages = entity_payloads(&ctx, &components);
    assert_eq!(messages.len(), components.len());
    let (topic, payload) = (&messages[0].0, serde_json::to_value(&messages[0].1).unwrap());
    assert_eq!(topic, "ha/sensor/inverter_monitor_2306178901/device_type/config");
    assert_eq!(payload["device"]["identifiers"], json!(["inverter_monitor_2306178901"]));
    assert_eq!(payload["origin"]["name"], json!("inverter-monitor"));
}

/// Every entity id discovery suggests for [`device`] with every write allowed: what docs and
/// dashboards may name.
pub(super) fn announced_with_writes() -> Vec<String> {
    let (device, topics, profile) = (device(), Topics::new("homeassistant", "inverter-monitor"), sg01());
    let ctx = Context { device: &device, topics: &topics };
    super::components_with_writes(&profile, &ctx, |_| true)
        .into_iter()
        .map(|c| c.config.default_entity_id)
        .collect()
}

#[test]
fn every_entity_docs_predbat_names_is_announced_with_writes_on() {
    // Every platform whose ids the page may name for the inverter `house`.
    const PLATFORMS: [&str; 5] = ["sensor", "number", "select", "switch", "text"];
    let announced = announced_with_writes();
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/predbat.md")).unwrap();
    // The template sensors the page itself defines in Home Assistant.
    let defined = [
        "sensor.house_battery_capacity_kwh",
        "sensor.house_battery_soc_kwh",
        "sensor.house_battery_max_charge_rate",
        "sensor.house_battery_max_discharge_rate",
        "sensor.house_charge_rate",
        "sensor.house_discharge_rate",
        "sensor.house_inverter_time",
    ];
    let named: Vec<&str> = page
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| PLATFORMS.iter().any(|p| w.starts_with(&format!("{p}.house_"))))
        .filter(|w| !w.ends_with('_'))
        .collect();
    assert!(named.len() >= 15, "{named:?}");
    for id in named.into_iter().filter(|id| !defined.contains(id)) {
        assert!(announced.iter().any(|a| a == id), "docs/predbat.md names {id}, which is not announced");
    }
}
