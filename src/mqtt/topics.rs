//! Every topic the service uses, in one place.
//!
//! ```text
//! <base>/status                          online/offline, retained; the service's last will
//! <base>/status/shard-<i>                the same, of shard i when sharded (`run --shard i/n`)
//! <base>/<inverter>/availability         online/offline, retained; offline after N failed polls
//! <base>/<inverter>/state                retained JSON of the latest accepted readings
//! <base>/<inverter>/diagnostics          retained JSON of the service's own statistics
//! <base>/<inverter>/set/<key>            Home Assistant's setting commands (only with writes on);
//!                                        `time_of_use` takes the whole table as JSON
//! <base>/<inverter>/write_result         JSON of each write command's outcome, not retained
//! <base>/weather/state                   retained JSON of the weather device's sensors
//! <base>/weather/availability            online/offline, retained; offline once stale
//! <base>/control/state                   retained JSON of the load-control device's entities
//! <base>/control/dry_run/set             Home Assistant's dry-run switch commands
//! <base>/control/<consumer>/automatic/set  Home Assistant's automatic-control switch commands
//! <prefix>/status                        Home Assistant's birth message: online → rediscover
//! <prefix>/device/<id>/config            device-based discovery (default)
//! <prefix>/<component>/<node>/<key>/config  per-entity discovery
//! ```
//!
//! An inverter's topics sit beside the service devices' under `<base>`, so an inverter may not
//! be named like a service device ([`SERVICE_DEVICES`]; the configuration refuses it). Every
//! topic the service owns is formatted here and nowhere else; a switch's or a plug's topics
//! are the user's, from the configuration.

use crate::config::MqttConfig;

/// The `<base>/<segment>` of each service device: names no inverter may take.
pub(crate) const SERVICE_DEVICES: [&str; 2] = [WEATHER, CONTROL];
/// The weather device's segment, also part of its identity.
pub(crate) const WEATHER: &str = "weather";
/// The load-control device's segment, also part of its identity.
pub(crate) const CONTROL: &str = "control";

/// Topic names for one broker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    base: String,
    /// The service's availability: one topic per instance, so a shard that dies marks its own
    /// inverters unavailable, not the other shards'.
    status: String,
}

impl Topics {
    /// Topics under discovery prefix `prefix` and base topic `base`.
    pub fn new(prefix: &str, base: &str) -> Self {
        Self { prefix: prefix.to_string(), base: base.to_string(), status: format!("{base}/status") }
    }

    /// The topics of a broker configuration; a shard's status topic is its own.
    pub fn of(mqtt: &MqttConfig) -> Self {
        let topics = Self::new(&mqtt.discovery_prefix, &mqtt.base_topic);
        match mqtt.shard {
            Some(shard) => Self { status: format!("{}/shard-{}", topics.status, shard.index()), ..topics },
            None => topics,
        }
    }

    /// The base topic, which also names the service's own devices.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The service's availability, carried by its last will.
    pub fn status(&self) -> String {
        self.status.clone()
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

    /// Where Home Assistant sets reading `key` of an inverter (with writes on).
    pub fn set(&self, inverter: &str, key: &str) -> String {
        format!("{}/{inverter}/set/{key}", self.base)
    }

    /// The filter of every setting command of an inverter.
    pub fn set_filter(&self, inverter: &str) -> String {
        format!("{}/{inverter}/set/+", self.base)
    }

    /// The (inverter, key) a setting command's topic names, when it is one.
    pub fn parse_set<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str)> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let (inverter, key) = rest.split_once("/set/")?;
        (!inverter.contains('/') && !key.contains('/') && !key.is_empty()).then_some((inverter, key))
    }

    /// Where each write command's outcome is published.
    pub fn write_result(&self, inverter: &str) -> String {
        format!("{}/{inverter}/write_result", self.base)
    }

    /// The weather device's state JSON.
    pub fn weather_state(&self) -> String {
        format!("{}/{WEATHER}/state", self.base)
    }

    /// The weather provider's availability.
    pub fn weather_availability(&self) -> String {
        format!("{}/{WEATHER}/availability", self.base)
    }

    /// The load-control device's state JSON, which all its entities read.
    pub fn control_state(&self) -> String {
        format!("{}/{CONTROL}/state", self.base)
    }

    /// Where Home Assistant turns load control's dry run on or off.
    pub fn control_dry_run(&self) -> String {
        format!("{}/{CONTROL}/dry_run/set", self.base)
    }

    /// Where Home Assistant turns automatic control of `consumer` on or off.
    pub fn control_automatic(&self, consumer: &str) -> String {
        format!("{}/{CONTROL}/{consumer}/automatic/set", self.base)
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

/// Keeps `[a-zA-Z0-9_-]`, maps everything else to `_`. It lives with the identity it shapes
/// (the poller resolves that), so the poller needs nothing from `mqtt`.
pub(crate) use crate::poller::sanitize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = Topics::new("homeassistant", "inverter-monitor");
        assert_eq!(t.status(), "inverter-monitor/status");
        let shard = crate::config::Shard::parse("2/3").unwrap();
        let sharded = MqttConfig { shard: Some(shard), ..MqttConfig::default() };
        assert_eq!(Topics::of(&sharded).status(), "inverter-monitor/status/shard-2");
        assert_eq!(
            Topics::of(&sharded).state("house"),
            "inverter-monitor/house/state",
            "no other topic moves"
        );
        assert_eq!(t.state("house"), "inverter-monitor/house/state");
        assert_eq!(
            t.device_config("inverter_monitor_2306178901"),
            "homeassistant/device/inverter_monitor_2306178901/config"
        );
        assert_eq!(t.entity_config("sensor", "n", "k"), "homeassistant/sensor/n/k/config");
        assert_eq!(sanitize("SN 12/3"), "SN_12_3");
        assert_eq!(t.weather_state(), "inverter-monitor/weather/state");
        assert_eq!(t.control_automatic("pool_pump"), "inverter-monitor/control/pool_pump/automatic/set");
    }

    #[test]
    fn an_inverter_named_like_a_service_device_would_share_its_topics() {
        let t = Topics::new("homeassistant", "im");
        for name in SERVICE_DEVICES {
            assert!(t.state(name) == t.weather_state() || t.state(name) == t.control_state(), "{name}");
        }
    }
}
