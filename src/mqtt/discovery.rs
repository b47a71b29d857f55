//! Home Assistant MQTT discovery: what each reading becomes, under one device per inverter.
//!
//! Current conventions (ecosystem.md §2): `default_entity_id` (never the retired `object_id`),
//! an origin block, `has_entity_name` naming (the name is the entity part only), no
//! `entity_category: config` on sensors, availability from both the service and the inverter.

mod binary_sensor;
mod device;
mod diagnostics;
mod sensor;

use serde_json::{Map, Value as Json, json};

pub use device::{DeviceInfo, origin};

use super::topics::{Topics, sanitize};
use crate::profile::Profile;

/// One entity: its component id within the device, its platform, and its config.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The id within the device (the profile key, or `monitor_…`).
    pub id: String,
    /// `sensor` or `binary_sensor`.
    pub platform: &'static str,
    /// The entity config, without `p` and without the device block.
    pub config: Map<String, Json>,
}

/// What every entity of an inverter shares.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The device.
    pub device: &'a DeviceInfo,
    /// The topics.
    pub topics: &'a Topics,
}

impl Context<'_> {
    /// The fields every entity has: name, unique_id, default_entity_id.
    pub fn identity(&self, platform: &str, key: &str, name: &str) -> Map<String, Json> {
        let mut config = Map::new();
        config.insert("name".into(), json!(name));
        config.insert("unique_id".into(), json!(format!("{}_{key}", self.device.serial)));
        // Entity ids allow `[a-z0-9_]` only: a `-` in a name becomes `_`.
        let entity = sanitize(&format!("{}_{key}", self.device.inverter)).to_lowercase().replace('-', "_");
        config.insert("default_entity_id".into(), json!(format!("{platform}.{entity}")));
        config
    }

    /// Available only while both the service and the inverter are (availability_mode all).
    fn inverter_availability(&self, config: &mut Map<String, Json>) {
        let availability = json!([
            {"topic": self.topics.status()},
            {"topic": self.topics.availability(&self.device.inverter)},
        ]);
        config.insert("availability".into(), availability);
        config.insert("availability_mode".into(), json!("all"));
    }
}

/// Every entity of an inverter: one per reading, then the service's own diagnostics.
pub fn components(profile: &Profile, ctx: &Context<'_>) -> Vec<Component> {
    let readings = profile.readings.iter().map(|spec| match spec.def.bit {
        Some(_) => binary_sensor::component(spec, ctx),
        None => sensor::component(spec, ctx),
    });
    readings.chain(diagnostics::components(ctx)).collect()
}

/// The device-based discovery payload: device, origin and every component, plus `{"p": …}`
/// stubs for components that were published before and are gone now (HA removes those).
pub fn device_payload(ctx: &Context<'_>, components: &[Component], removed: &[(String, String)]) -> Json {
    let mut cmps = Map::new();
    for c in components {
        let mut config = c.config.clone();
        config.insert("p".into(), json!(c.platform));
        cmps.insert(c.id.clone(), Json::Object(config));
    }
    for (id, platform) in removed {
        cmps.insert(id.clone(), json!({"p": platform}));
    }
    json!({"dev": ctx.device.block(), "o": origin(), "cmps": cmps})
}

/// The per-entity discovery messages: (topic, payload) for each component.
pub fn entity_payloads(ctx: &Context<'_>, components: &[Component]) -> Vec<(String, Json)> {
    let node = ctx.device.object_id();
    components
        .iter()
        .map(|c| {
            let mut config = c.config.clone();
            config.insert("device".into(), ctx.device.block());
            config.insert("origin".into(), origin());
            (ctx.topics.entity_config(c.platform, &node, &c.id), Json::Object(config))
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden;
