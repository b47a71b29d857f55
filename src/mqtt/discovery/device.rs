//! The Home Assistant device of an inverter, and the origin block naming this service.

use serde_json::{Value as Json, json};

use crate::mqtt::topics::sanitize;
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
    /// The inverter's serial (or the logger's when the profile has none): the identifier.
    pub serial: String,
    /// Manufacturer, from the profile.
    pub manufacturer: String,
    /// Model: the profile's family, refined by the device-type reading.
    pub model: String,
    /// Firmware versions, joined.
    pub sw_version: Option<String>,
}

impl DeviceInfo {
    /// Reads the device facts out of a snapshot, falling back to the logger serial, and to the
    /// inverter's name for a Modbus TCP logger without one (never a shared `0`).
    pub fn from_snapshot(snapshot: &Snapshot, logger_serial: u32) -> Self {
        let header = &snapshot.profile.header;
        let text = |key: &String| snapshot.get(key).map(Value::to_string).filter(|t| !t.is_empty());
        let fallback = || match logger_serial {
            0 => snapshot.inverter.to_string(),
            serial => serial.to_string(),
        };
        let serial = snapshot.serial.as_ref().map(|s| s.to_string()).unwrap_or_else(fallback);
        let model = match header.device.model.as_ref().and_then(text) {
            Some(kind) => format!("{} ({kind})", header.model),
            None => header.model.clone(),
        };
        let firmware: Vec<String> = header.device.firmware.iter().filter_map(text).collect();
        Self {
            inverter: snapshot.inverter.to_string(),
            serial: sanitize(&serial),
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
