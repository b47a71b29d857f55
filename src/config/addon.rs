//! Home Assistant add-on mode: the Supervisor's `/data/options.json` and its MQTT service become
//! config layers, so one binary serves the add-on and the standalone container without a shell.
//!
//! The add-on's options have the shape of the TOML file (`inverter` is the list of
//! `[[inverter]]` tables, `mqtt` the `[mqtt]` table, …), so a section is passed through as it
//! is, including sections this module has never heard of. Two layers come out:
//! - *facts* (below the TOML file): `data_dir = "/data"`, the ingress port and the peers allowed
//!   on it (the ingress proxy, trusted without a token, and the container's own health check),
//!   the profiles folder
//!   of `addon_config` when it exists, and the broker the Supervisor hands over;
//! - *options* (above it): what the user set, with empty values dropped, since the Supervisor
//!   and the UI write `""` and `{}` for options left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::{ConfigError, Secret};

/// Overrides the path of the options file (tests; the Supervisor always uses the default).
pub const OPTIONS_ENV: &str = "INVERTER_MONITOR_OPTIONS";
/// Where the Supervisor writes the user's options.
pub const OPTIONS_FILE: &str = "/data/options.json";
/// Overrides the Supervisor's base URL (tests).
pub const SUPERVISOR_URL_ENV: &str = "SUPERVISOR_URL";
/// The token the Supervisor gives every add-on; its presence says "add-on".
pub const TOKEN_ENV: &str = "SUPERVISOR_TOKEN";
/// The port Home Assistant's ingress proxy talks to (the default `ingress_port`).
pub const INGRESS_PORT: u16 = 8099;
/// The Supervisor's ingress proxy: in the add-on, the only peer besides the container itself
/// that may connect, as Home Assistant add-ons do (an `[http] allow` in the add-on TOML replaces
/// the list, so it must name this proxy again), and one that
/// needs no `[http] token`: Home Assistant has logged the user in.
pub const INGRESS_PROXY: &str = "172.30.32.2";
/// The container itself: the image's HEALTHCHECK asks `http://127.0.0.1:8099/healthz`.
pub const CONTAINER_LOOPBACK: &str = "127.0.0.1";
/// The add-on's persistent, backed-up folder.
pub const DATA_DIR: &str = "/data";
/// Profile overrides in the `addon_config` folder (`/addon_configs/<slug>/profiles` on the host).
pub const PROFILES_DIR: &str = "/config/profiles";

/// Running as an add-on: where the options are and how to ask the Supervisor.
#[derive(Debug, Clone)]
pub struct Addon {
    /// The options file.
    pub options_file: PathBuf,
    /// The Supervisor's base URL.
    pub supervisor: String,
    token: Secret,
}

/// The two layers an add-on adds, and where the broker came from (for the log).
#[derive(Debug, Clone)]
pub struct AddonLayers {
    /// The options file, named in errors.
    pub options_file: PathBuf,
    /// Facts of the add-on's environment, below the TOML file.
    pub facts: Value,
    /// The user's options, above it.
    pub options: Value,
    /// `host:port` of the broker the Supervisor handed over; `None` when the options name one.
    pub supervisor_broker: Option<String>,
}

/// The Supervisor's answer to `GET /services/mqtt`, `data` part.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttService {
    /// Broker host, `core-mosquitto` for the Mosquitto add-on.
    pub host: String,
    /// Broker port: documented as a string, served as a number.
    #[serde(deserialize_with = "lenient_port")]
    pub port: u16,
    /// User name for add-ons.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
    /// TLS to the broker.
    #[serde(default)]
    pub ssl: bool,
}

impl Addon {
    /// Add-on mode when the options file exists and the Supervisor's token is set.
    pub fn detect(env: &HashMap<String, String>) -> Option<Self> {
        let options_file = PathBuf::from(env.get(OPTIONS_ENV).map_or(OPTIONS_FILE, String::as_str));
        let token = env.get(TOKEN_ENV).filter(|t| !t.is_empty())?;
        options_file.is_file().then(|| Self {
            options_file,
            supervisor: env.get(SUPERVISOR_URL_ENV).map_or("http://supervisor", String::as_str).to_string(),
            token: Secret::new(token.clone()),
        })
    }

    /// Reads the options and, unless they name a broker, asks the Supervisor for its MQTT service.
    ///
    /// # Errors
    /// The options file cannot be read or is not JSON ([`ConfigError::Load`]), or the
    /// Supervisor has no MQTT service for us ([`ConfigError::Supervisor`]).
    pub async fn layers(&self) -> Result<AddonLayers, ConfigError> {
        let file = self.options_file.display().to_string();
        let load = |reason: String| ConfigError::Load { file: file.clone(), reason };
        let text = std::fs::read_to_string(&self.options_file).map_err(|e| load(e.to_string()))?;
        let options: Value = serde_json::from_str(&text).map_err(|e| load(format!("not JSON: {e}")))?;
        let options = prune(options).unwrap_or_else(|| json!({}));
        let service = match options.pointer("/mqtt/host") {
            Some(_) => None,
            None => Some(self.mqtt_service().await?),
        };
        let profiles = Path::new(PROFILES_DIR);
        Ok(AddonLayers::new(
            self.options_file.clone(),
            options,
            service.as_ref(),
            profiles.is_dir().then_some(profiles),
        ))
    }

    /// `GET <supervisor>/services/mqtt` with the add-on's token.
    async fn mqtt_service(&self) -> Result<MqttService, ConfigError> {
        let url = format!("{}/services/mqtt", self.supervisor.trim_end_matches('/'));
        let failed = |reason: String| ConfigError::Supervisor { url: url.clone(), reason };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let response = client
            .get(&url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(e.to_string()))?;
        parse_service(status.as_u16(), &body).map_err(failed)
    }
}

impl AddonLayers {
    /// The layers from pruned `options`, the Supervisor's broker and the profiles folder.
    pub fn new(
        options_file: PathBuf,
        options: Value,
        service: Option<&MqttService>,
        profiles_dir: Option<&Path>,
    ) -> Self {
        let mut facts = json!({
            "data_dir": DATA_DIR,
            "http": {
                "listen": format!("0.0.0.0:{INGRESS_PORT}"),
                "allow": [INGRESS_PROXY, CONTAINER_LOOPBACK],
                "trusted": [INGRESS_PROXY],
            },
        });
        if let Some(dir) = profiles_dir {
            facts["profiles_dir"] = json!(dir);
        }
        if let Some(service) = service {
            let mut mqtt = json!({ "host": service.host, "port": service.port, "tls": service.ssl });
            if let Some(user) = &service.username {
                mqtt["username"] = json!(user);
            }
            if let Some(password) = &service.password {
                mqtt["password"] = json!(password.expose());
            }
            facts["mqtt"] = mqtt;
        }
        let supervisor_broker = service.map(|s| format!("{}:{}", s.host, s.port));
        Self { options_file, facts, options, supervisor_broker }
    }
}

impl AddonLayers {
    /// Drops the Supervisor's broker login when a higher layer (the TOML in the add-on's
    /// config folder, the environment) named another broker: it is for the Supervisor's broker
    /// only, and must never be sent to another host.
    pub fn keep_supervisor_login_home(&self, config: &mut super::Config) {
        let (Some(home), Some(mqtt)) = (&self.supervisor_broker, config.mqtt.as_mut()) else { return };
        if format!("{}:{}", mqtt.host, mqtt.port) == *home {
            return;
        }
        let given = |key: &str| self.facts.pointer(&format!("/mqtt/{key}")).and_then(Value::as_str);
        if given("username").is_some() && mqtt.username.as_deref() == given("username") {
            mqtt.username = None;
        }
        if given("password").is_some() && mqtt.password.as_ref().map(|p| p.expose()) == given("password") {
            mqtt.password = None;
        }
    }
}

/// The MQTT service out of a Supervisor answer, or why there is none.
fn parse_service(status: u16, body: &str) -> Result<MqttService, String> {
    let answer: Value =
        serde_json::from_str(body).map_err(|e| format!("HTTP {status}, not a Supervisor answer: {e}"))?;
    if answer["result"] == "ok" {
        return serde_json::from_value(answer["data"].clone())
            .map_err(|e| format!("HTTP {status}, the MQTT service is incomplete: {e}"));
    }
    let why = answer["message"].as_str().or(answer["result"].as_str()).unwrap_or("no answer");
    Err(format!("HTTP {status}: {why}; install the Mosquitto broker add-on, or set the mqtt options"))
}

/// A port given as `1883` or `"1883"`.
fn lenient_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Port::deserialize(deserializer)? {
        Port::Number(port) => Ok(port),
        Port::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// `value` without nulls, empty strings, empty lists and empty tables, at any depth; `None`
/// when nothing is left. An option left empty must not hide the TOML file's value below it.
pub fn prune(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(prune).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: Map<String, Value> =
                map.into_iter().filter_map(|(k, v)| prune(v).map(|v| (k, v))).collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests;
