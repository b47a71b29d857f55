//! Every topic the service uses, in one place.
//!
//! ```text
//! <base>/status                          online/offline, retained; the service's last will
//! <base>/<inverter>/availability         online/offline, retained; offline after N failed polls
//! <base>/<inverter>/state                retained JSON of the latest accepted readings
//! <base>/<inverter>/diagnostics          retained JSON of the service's own statistics
//! <prefix>/status                        Home Assistant's birth message: online → rediscover
//! <prefix>/device/<id>/config            device-based discovery (default)
//! <prefix>/<component>/<node>/<key>/config  per-entity discovery
//! ```

/// Topic names for one broker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    base: String,
}

impl Topics {
    /// Topics under discovery prefix `prefix` and base topic `base`.
    pub fn new(prefix: &str, base: &str) -> Self {
        Self { prefix: prefix.to_string(), base: base.to_string() }
    }

    /// The service's availability, carried by its last will.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// Home Assistant's birth and last-will topic.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// An inverter's availability.
    pub fn availability(&self, inverter: &str) -> String {
        format!("{}/{inverter}/availability", self.base)
    }

    /// An inverter's state JSON.
    pub fn state(&self, inverter: &str) -> String {
        format!("{}/{inverter}/state", self.base)
    }

    /// An inverter's diagnostics JSON.
    pub fn diagnostics(&self, inverter: &str) -> String {
        format!("{}/{inverter}/diagnostics", self.base)
    }

    /// The device-based discovery topic of device `object_id`.
    pub fn device_config(&self, object_id: &str) -> String {
        format!("{}/device/{object_id}/config", self.prefix)
    }

    /// The per-entity discovery topic.
    pub fn entity_config(&self, component: &str, node_id: &str, object_id: &str) -> String {
        format!("{}/{component}/{node_id}/{object_id}/config", self.prefix)
    }
}

/// Keeps `[a-zA-Z0-9_-]`, maps everything else to `_`: what discovery ids and entity ids allow.
pub fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = Topics::new("homeassistant", "inverter-monitor");
        assert_eq!(t.status(), "inverter-monitor/status");
        assert_eq!(t.state("house"), "inverter-monitor/house/state");
        assert_eq!(
            t.device_config("inverter_monitor_2306178901"),
            "homeassistant/device/inverter_monitor_2306178901/config"
        );
        assert_eq!(t.entity_config("sensor", "n", "k"), "homeassistant/sensor/n/k/config");
        assert_eq!(sanitize("SN 12/3"), "SN_12_3");
    }
}
