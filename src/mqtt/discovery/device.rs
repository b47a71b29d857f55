//! The Home Assistant device of an inverter, and the origin block naming this service.

use serde_json::{Value as Json, json};

use crate::poller::Snapshot;
use crate::profile::Value;

/// Who published the discovery: this service.
pub fn origin() -> Json {
    json!({
        "name": "inverter-monitor",
        "sw": env!("CARGO_PKG_VERSION"),
        "url": env!("CARGO_PKG_REPOSITORY"),
    })
}

/// What Home Assistant shows about an inverter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The configured name: the device name in HA and part of every topic.
    pub inverter: String,
    /// The identity that prefixes every unique_id: [`Snapshot::identity`] for an inverter.
    pub serial: String,
    /// Manufacturer, from the profile.
    pub manufacturer: String,
    /// Model: the profile's family, refined by the device-type reading.
    pub model: String,
    /// Firmware versions, joined.
    pub sw_version: Option<String>,
}

impl DeviceInfo {
    /// Reads the device facts out of a snapshot; its identity the poller resolved.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let header = &snapshot.profile.header;
        let text = |key: &String| snapshot.get(key).map(Value::to_string).filter(|t| !t.is_empty());
        let model = match header.device.model.as_ref().and_then(text) {
            Some(kind) => format!("{} ({kind})", header.model),
            None => header.model.clone(),
        };
        let firmware: Vec<String> = header.device.firmware.iter().filter_map(text).collect();
        Self {
            inverter: snapshot.inverter.to_string(),
            serial: snapshot.identity.to_string(),
            manufacturer: header.manufacturer.clone(),
            model,
            sw_version: (!firmware.is_empty()).then(|| firmware.join(" / ")),
        }
    }

    /// The discovery object id of the device.
    pub fn object_id(&self) -> String {
        format!("inverter_monitor_{}", self.serial)
    }

    /// The `dev` block.
    pub fn block(&self) -> Json {
        let mut block = json!({
            "identifiers": [self.object_id()],
            "name": self.inverter,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial_number": self.serial,
        });
        if let Some(sw) = &self.sw_version {
            block["sw_version"] = json!(sw);
        }
        block
    }
}
