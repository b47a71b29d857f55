//! `[influxdb]`, `[http]`, `[sentry]` and `[healthcheck]`: where readings go besides MQTT.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// Which InfluxDB write API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InfluxApi {
    /// InfluxDB 2.x/3.x and Cloud: `/api/v2/write?org=…&bucket=…` with `Token <token>`.
    V2,
    /// InfluxDB 1.8's forward-compatible endpoint (the Home Assistant InfluxDB add-on):
    /// `/api/v2/write?bucket=<db>/<rp>` with `Token <user>:<password>`.
    V1Compat,
    /// InfluxDB 1.x and VictoriaMetrics: `/write?db=<db>&rp=<rp>`.
    V1,
}

/// The InfluxDB sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the database.
    #[serde(default = "default_influx_url")]
    pub url: String,
    /// The API; default: `v2` when `bucket` is set, else `v1`.
    pub api: Option<InfluxApi>,
    /// v2: organisation.
    pub org: Option<String>,
    /// v2: bucket.
    pub bucket: Option<String>,
    /// v2: API token.
    pub token: Option<Secret>,
    /// v2: a file holding the token (Docker secrets); wins over `token`.
    pub token_file: Option<PathBuf>,
    /// v1: database.
    pub database: Option<String>,
    /// v1: user.
    pub username: Option<String>,
    /// v1: password.
    pub password: Option<Secret>,
    /// v1: a file holding the password; wins over `password`.
    pub password_file: Option<PathBuf>,
    /// v1: retention policy (default: the database's default).
    pub retention_policy: Option<String>,
    /// The measurement of inverter points; every reading is a field.
    #[serde(default = "default_measurement")]
    pub measurement: String,
    /// Extra tags on every point; inverter name and serial are always tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Largest size of the on-disk spool, in MB; when full the oldest points go first.
    #[serde(default = "default_spool_mb")]
    pub spool_max_mb: u64,
    /// Points per write request.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for one write.
    #[serde(default = "default_influx_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_influx_url() -> String {
    "http://localhost:8086".into()
}
fn default_measurement() -> String {
    "inverter".into()
}
fn default_spool_mb() -> u64 {
    100
}
fn default_batch() -> usize {
    5000
}
fn default_influx_timeout() -> Duration {
    Duration::from_secs(10)
}

impl InfluxConfig {
    /// The API in use.
    pub fn api(&self) -> InfluxApi {
        self.api.unwrap_or(if self.bucket.is_some() { InfluxApi::V2 } else { InfluxApi::V1 })
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Some(("url", format!("`{}` must start with http:// or https://", self.url)));
        }
        let missing =
            |key: &'static str| Some((key, format!("is required for api = \"{}\"", self.api_name())));
        match self.api() {
            InfluxApi::V2 if self.bucket.is_none() => return missing("bucket"),
            InfluxApi::V2 if self.org.is_none() => return missing("org"),
            InfluxApi::V1 | InfluxApi::V1Compat if self.database.is_none() => return missing("database"),
            _ => {}
        }
        if self.measurement.is_empty() {
            return Some(("measurement", "must not be empty".into()));
        }
        if self.spool_max_mb == 0 || self.batch == 0 {
            return Some(("spool_max_mb", "spool_max_mb and batch must be at least 1".into()));
        }
        None
    }

    fn api_name(&self) -> &'static str {
        match self.api() {
            InfluxApi::V2 => "v2",
            InfluxApi::V1Compat => "v1-compat",
            InfluxApi::V1 => "v1",
        }
    }
}

/// The HTTP server: /metrics, /healthz, /api/snapshot and the status page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8000))
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: default_listen() }
    }
}

/// Error reporting to Sentry; no DSN, no Sentry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentryConfig {
    /// The project DSN.
    pub dsn: Option<Secret>,
    /// The environment name shown in Sentry.
    pub environment: Option<String>,
}

/// A Healthchecks.io-style ping after each good poll cycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckConfig {
    /// The URL to GET; `/fail` is appended when a poll fails.
    pub ping_url: String,
    /// Shortest time between pings.
    #[serde(default = "default_ping_interval", with = "humantime_serde")]
    pub min_interval: Duration,
}

fn default_ping_interval() -> Duration {
    Duration::from_secs(60)
}
