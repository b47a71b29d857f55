//! `[mqtt]` and `[[switch]]`: the broker, Home Assistant discovery, and the switches we command.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// How Home Assistant learns about entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    /// One retained config per inverter on `<prefix>/device/<id>/config` (HA 2024.12 and later).
    #[default]
    Device,
    /// One retained config per entity on `<prefix>/<component>/<node>/<object>/config`.
    Entity,
}

/// The MQTT broker and how we appear in Home Assistant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host.
    #[serde(default = "default_host")]
    pub host: String,
    /// Broker port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// A file holding the password (Docker secrets); wins over `password`.
    pub password_file: Option<PathBuf>,
    /// TLS to the broker (rustls with ring).
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA(s) that signed the broker's certificate; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// The client id; default `inverter-monitor-<hostname>`.
    pub client_id: Option<String>,
    /// Home Assistant's discovery prefix.
    #[serde(default = "default_prefix")]
    pub discovery_prefix: String,
    /// Our topics start with this.
    #[serde(default = "default_base")]
    pub base_topic: String,
    /// Device-based (default) or per-entity discovery.
    #[serde(default)]
    pub discovery: DiscoveryMode,
    /// MQTT keep-alive.
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// The shard this instance is, set by [`super::Config::keep_shard`]: it makes the client id
    /// and the service's status topic its own, as every shard shares the broker.
    #[serde(skip)]
    pub shard: Option<super::Shard>,
    /// The client's request queue, in messages; `None`: the default. Not a setting: tests
    /// shrink it to make a fleet's discovery overflow it.
    #[doc(hidden)]
    #[serde(skip)]
    pub queue_capacity: Option<usize>,
}

fn default_host() -> String {
    "localhost".into()
}
fn default_port() -> u16 {
    1883
}
fn default_prefix() -> String {
    "homeassistant".into()
}
fn default_base() -> String {
    "inverter-monitor".into()
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            client_id: None,
            discovery_prefix: default_prefix(),
            base_topic: default_base(),
            discovery: DiscoveryMode::Device,
            keep_alive: default_keep_alive(),
            shard: None,
            queue_capacity: None,
        }
    }
}

impl MqttConfig {
    /// The client id, with the host name filled in; a shard's ends in `-shard-<index>`: two
    /// clients with one id throw each other off the broker, and shards on one host (or with
    /// `client_id` in the one shared file) would have one.
    pub fn client_id(&self) -> String {
        let id = self.client_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host: String =
                host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            format!("inverter-monitor-{}", if host.is_empty() { "local" } else { &host })
        });
        match self.shard {
            Some(shard) => format!("{id}-shard-{}", shard.index()),
            None => id,
        }
    }

    /// The password: from `password_file` if set, else `password`.
    ///
    /// # Errors
    /// The password file cannot be read.
    pub fn password(&self) -> std::io::Result<Option<Secret>> {
        match &self.password_file {
            Some(path) => Ok(Some(Secret::new(std::fs::read_to_string(path)?.trim_end().to_string()))),
            None => Ok(self.password.clone()),
        }
    }

    /// TLS keys that cannot work together or files that cannot be read.
    fn tls_problem(&self) -> Option<(&'static str, String)> {
        let files = [
            ("ca_file", &self.ca_file),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ];
        for (key, file) in files {
            match file {
                Some(_) if !self.tls => return Some((key, "applies with tls = true only".into())),
                Some(path) if std::fs::metadata(path).is_err() => {
                    return Some((key, format!("{} cannot be read", path.display())));
                }
                _ => {}
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Some(("client_key", "client_cert and client_key go together".into()));
        }
        None
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        let topic_ok =
            |t: &str| !t.is_empty() && !t.contains(['+', '#']) && !t.starts_with('/') && !t.ends_with('/');
        if self.host.trim().is_empty() {
            return Some(("host", "must name the broker".into()));
        }
        if let Some(problem) = self.tls_problem() {
            return Some(problem);
        }
        if !topic_ok(&self.discovery_prefix) {
            return Some(("discovery_prefix", format!("`{}` is not a topic prefix", self.discovery_prefix)));
        }
        if !topic_ok(&self.base_topic) {
            return Some(("base_topic", format!("`{}` is not a topic prefix", self.base_topic)));
        }
        if self.password_file.as_ref().is_some_and(|p| std::fs::metadata(p).is_err()) {
            return Some(("password_file", "cannot be read".into()));
        }
        None
    }
}

/// The payload shapes of the switches we command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadShape {
    /// `ON` / `OFF`: Home Assistant MQTT switches, Tasmota, Shelly.
    #[default]
    Plain,
    /// `{"state": "ON"}`: zigbee2mqtt.
    Json,
    /// The original tool's switch bank: `{"switches": [1,0,…]}` in, `{"state": […]}` out.
    Bank,
}

/// A switch entity whose state we follow and which we may command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// A short name.
    pub name: String,
    /// Where the switch reports its state.
    pub state_topic: String,
    /// Where it takes commands.
    pub command_topic: String,
    /// The payload shape.
    #[serde(default)]
    pub payload: PayloadShape,
    /// The position in a bank (`payload = "bank"` only).
    pub index: Option<usize>,
    /// The command that turns it on, when the plug wants another word than the shape's
    /// (Shelly: `on`); states are read without regard to case.
    pub payload_on: Option<String>,
    /// The command that turns it off (Shelly: `off`).
    pub payload_off: Option<String>,
}

impl SwitchConfig {
    /// A plain ON/OFF switch on `state_topic` and `command_topic`.
    pub fn plain(name: &str, state_topic: &str, command_topic: &str) -> Self {
        Self {
            name: name.into(),
            state_topic: state_topic.into(),
            command_topic: command_topic.into(),
            payload: PayloadShape::Plain,
            index: None,
            payload_on: None,
            payload_off: None,
        }
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        if self.name.is_empty() {
            return Some(("name", "must not be empty".into()));
        }
        if self.state_topic.is_empty() || self.state_topic.contains(['+', '#']) {
            return Some(("state_topic", "must be a plain topic".into()));
        }
        if self.command_topic.is_empty() || self.command_topic.contains(['+', '#']) {
            return Some(("command_topic", "must be a plain topic".into()));
        }
        match (self.payload, self.index) {
            (PayloadShape::Bank, None) => Some(("index", "a bank switch needs its index in the bank".into())),
            (PayloadShape::Plain | PayloadShape::Json, Some(_)) => {
                Some(("index", "index applies to payload = \"bank\" only".into()))
            }
            (PayloadShape::Bank, _) if self.payload_on.is_some() || self.payload_off.is_some() => {
                Some(("payload_on", "a bank is commanded with its whole state, not a word".into()))
            }
            _ => None,
        }
    }
}
