//! The ready Home Assistant dashboards (`ha/dashboards/*.yaml`) name only entities discovery
//! creates: every entity id in them, in a card or in a comment telling users what to swap in,
//! is one an SG01LP1 named `house` is announced with, writes on. A renamed key, a typo or
//! another inverter's name in a dashboard fails here instead of as a card saying "Entity not
//! available" in a user's Home Assistant.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::Platform;
use super::tests::announced_with_writes;

/// The dashboards, under `ha/dashboards/`.
const DASHBOARDS: [&str; 2] = ["inverter-monitor.yaml", "sunsynk-power-flow-card.yaml"];

/// Every platform discovery announces an inverter's entities on.
const PLATFORMS: [Platform; 6] = [
    Platform::Sensor,
    Platform::BinarySensor,
    Platform::Number,
    Platform::Select,
    Platform::Switch,
    Platform::Text,
];

/// A dashboard's text and its parsed YAML.
fn dashboard(name: &str) -> (String, Json) {
    let path = format!("{}/ha/dashboards/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let yaml = parse(name, &text);
    (text, yaml)
}

/// Whether `text` starts like an entity id of one of our platforms, for any inverter.
fn is_entity_like(text: &str) -> bool {
    PLATFORMS.iter().any(|p| text.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('.')))
}

/// The entity ids in a dashboard: every string value of the parsed YAML that looks like one
/// (whatever the inverter's name), and every `<platform>.house_<key>` word of the raw text,
/// comments included. A `.house_` prefix on its own (as in "replace `switch.house_`") is not one.
fn entity_ids(text: &str, yaml: &Json) -> BTreeSet<String> {
    fn strings<'a>(value: &'a Json, out: &mut Vec<&'a str>) {
        match value {
            Json::String(s) => out.push(s),
            Json::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Json::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut values = Vec::new();
    strings(yaml, &mut values);
    let ours: Vec<String> = PLATFORMS.iter().map(|p| format!("{}.house_", p.as_str())).collect();
    let words = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| ours.iter().any(|prefix| w.starts_with(prefix.as_str())) && !w.ends_with('_'));
    values.into_iter().filter(|v| is_entity_like(v)).chain(words).map(str::to_string).collect()
}

/// The ids of `ids` discovery does not announce.
fn unknown(ids: &BTreeSet<String>, announced: &[String]) -> Vec<String> {
    ids.iter().filter(|id| !announced.contains(id)).cloned().collect()
}

fn parse(name: &str, text: &str) -> Json {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_entity_the_dashboards_name_is_announced_with_writes_on() {
    let announced = announced_with_writes();
    for name in DASHBOARDS {
        let (text, yaml) = dashboard(name);
        let views = yaml["views"].as_array().unwrap_or_else(|| panic!("{name}: no views"));
        assert!(!views.is_empty(), "{name}: no views");
        let ids = entity_ids(&text, &yaml);
        // Both name dozens; a scan that found few has stopped seeing them.
        assert!(ids.len() >= 40, "{name}: only {ids:?}");
        assert_eq!(unknown(&ids, &announced), Vec::<String>::new(), "{name} names entities discovery lacks");
    }
}

#[test]
fn the_settings_view_uses_every_writable_platform() {
    let (text, yaml) = dashboard("inverter-monitor.yaml");
    let ids = entity_ids(&text, &yaml);
    for platform in [Platform::Number, Platform::Select, Platform::Switch, Platform::Text] {
        let prefix = format!("{}.house_", platform.as_str());
        assert!(ids.iter().any(|id| id.starts_with(&prefix)), "no {prefix}… in inverter-monitor.yaml");
    }
}

#[test]
fn an_id_discovery_does_not_create_is_caught() {
    let announced = announced_with_writes();
    let text = "cards:\n  - entity: sensor.house_battery_soc\n  - entity: sensor.house_no_such_reading\n  \
                - entity: sensor.garage_battery_soc\n# or number.house_typo, but not `switch.house_`\n";
    let ids = entity_ids(text, &parse("snippet", text));
    assert_eq!(
        unknown(&ids, &announced),
        ["number.house_typo", "sensor.garage_battery_soc", "sensor.house_no_such_reading"]
    );
}
