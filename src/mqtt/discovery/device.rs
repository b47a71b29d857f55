//! The Home Assistant device of an inverter or of the service itself, and the origin block
//! naming this service.

use serde::Serialize;

use crate::mqtt::topics::{Topics, sanitize};
use crate::poller::Snapshot;
use crate::profile::Value;

/// Who published the discovery: this service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Origin {
    name: &'static str,
    sw: &'static str,
    url: &'static str,
}

impl Origin {
    /// This service, at this version.
    pub(crate) fn ours() -> Self {
        Self { name: "inverter-monitor", sw: env!("CARGO_PKG_VERSION"), url: env!("CARGO_PKG_REPOSITORY") }
    }
}

/// The `dev` (or `device`) block of a discovery payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceBlock {
    identifiers: [String; 1],
    name: String,
    manufacturer: String,
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
    serial_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sw_version: Option<String>,
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
    /// Model id: the profile in use (detected or configured), so the device page tells which
    /// register map decodes it.
    pub model_id: Option<String>,
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
            model_id: Some(snapshot.profile.id().to_string()),
            sw_version: (!firmware.is_empty()).then(|| firmware.join(" / ")),
        }
    }

    /// A device of the service itself, `kind` being its [`crate::mqtt::topics::SERVICE_DEVICES`]
    /// segment: its identity is `<base>_<kind>`, so two services on one broker differ.
    pub fn service(topics: &Topics, kind: &str, name: &str, model: String) -> Self {
        Self {
            inverter: name.into(),
            serial: format!("{}_{kind}", sanitize(topics.base())),
            manufacturer: "inverter-monitor".into(),
            model,
            model_id: None,
            sw_version: Some(env!("CARGO_PKG_VERSION").into()),
        }
    }

    /// The discovery object id of the device.
    pub fn object_id(&self) -> String {
        format!("inverter_monitor_{}", self.serial)
    }

    /// The `dev` block.
    pub fn block(&self) -> DeviceBlock {
        DeviceBlock {
            identifiers: [self.object_id()],
            name: self.inverter.clone(),
            manufacturer: self.manufacturer.clone(),
            model: self.model.clone(),
            model_id: self.model_id.clone(),
            serial_number: self.serial.clone(),
            sw_version: self.sw_version.clone(),
        }
    }
}
