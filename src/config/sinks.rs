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
    /// Point times are cut down to a multiple of this (default 1s: InfluxDB compresses whole
    /// seconds best; use e.g. "1ms" when polling faster than once a second).
    #[serde(default = "default_precision", with = "humantime_serde")]
    pub precision: Duration,
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
fn default_precision() -> Duration {
    Duration::from_secs(1)
}

/// Tags the sink always sets itself.
const RESERVED_TAGS: [&str; 2] = ["inverter", "serial"];

impl InfluxConfig {
    /// The API in use.
    pub fn api(&self) -> InfluxApi {
        self.api.unwrap_or(if self.bucket.is_some() { InfluxApi::V2 } else { InfluxApi::V1 })
    }

    /// The v2 token: from `token_file` if set, else `token`.
    ///
    /// # Errors
    /// The token file cannot be read.
    pub fn token(&self) -> std::io::Result<Option<Secret>> {
        read_secret(self.token_file.as_deref(), &self.token)
    }

    /// The v1 password: from `password_file` if set, else `password`.
    ///
    /// # Errors
    /// The password file cannot be read.
    pub fn password(&self) -> std::io::Result<Option<Secret>> {
        read_secret(self.password_file.as_deref(), &self.password)
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
        if self.spool_max_mb == 0 || self.batch == 0 {
            return Some(("spool_max_mb", "spool_max_mb and batch must be at least 1".into()));
        }
        if self.precision.is_zero() || self.precision > Duration::from_secs(3600) {
            return Some(("precision", format!("{:?} must be between 1ns and 1h", self.precision)));
        }
        for (key, file) in [("token_file", &self.token_file), ("password_file", &self.password_file)] {
            if file.as_ref().is_some_and(|p| std::fs::metadata(p).is_err()) {
                return Some((key, "cannot be read".into()));
            }
        }
        if let Some(reason) = name_problem(&self.measurement) {
            return Some(("measurement", format!("`{}` {reason}", self.measurement)));
        }
        self.tags_problem()
    }

    /// The first unusable extra tag.
    fn tags_problem(&self) -> Option<(&'static str, String)> {
        for (key, value) in &self.tags {
            if RESERVED_TAGS.contains(&key.as_str()) {
                return Some((
                    "tags",
                    format!("`{key}` is set by the sink itself (inverter name and serial)"),
                ));
            }
            if let Some(reason) = name_problem(key).or_else(|| name_problem(value)) {
                return Some(("tags", format!("`{key}` = `{value}`: {reason}")));
            }
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

/// A secret from `file` (trailing whitespace trimmed: files end in a newline) or `inline`.
pub(super) fn read_secret(
    file: Option<&std::path::Path>,
    inline: &Option<Secret>,
) -> std::io::Result<Option<Secret>> {
    match file {
        Some(path) => Ok(Some(Secret::new(std::fs::read_to_string(path)?.trim_end().to_string()))),
        None => Ok(inline.clone()),
    }
}

/// Why a measurement, tag key or tag value cannot be written to InfluxDB as it is, if it cannot.
/// Line breaks and backslashes are not representable the same way by every InfluxDB version
/// (docs/influxdb.md); a leading `#` would comment the line out.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.contains(['\\', '\n', '\r']) {
        Some("must not contain a backslash or a line break")
    } else if name.starts_with('#') {
        Some("must not start with `#`")
    } else {
        None
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
    /// A file holding the DSN (Docker secrets); read at load time, wins over `dsn`.
    pub dsn_file: Option<PathBuf>,
    /// The environment name shown in Sentry.
    pub environment: Option<String>,
}

/// A Healthchecks.io-style ping after good polls (at most every `min_interval`), `/fail` after
/// failed ones (at once when the state changes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthPingsConfig {
    /// The URL to GET; `/fail` is appended when a poll fails. Its path is a credential.
    /// Empty only until `ping_url_file` is read; validation refuses it empty.
    #[serde(default)]
    pub ping_url: Secret,
    /// A file holding the URL (Docker secrets); read at load time, wins over `ping_url`.
    pub ping_url_file: Option<PathBuf>,
    /// Shortest time between pings.
    #[serde(default = "default_ping_interval", with = "humantime_serde")]
    pub min_interval: Duration,
}

fn default_ping_interval() -> Duration {
    Duration::from_secs(60)
}

impl SentryConfig {
    /// Reads `dsn_file` into `dsn`, so the rest of the service sees one value.
    pub(super) fn read_secret_file(&mut self) -> Option<(&'static str, String)> {
        match read_secret(self.dsn_file.as_deref(), &self.dsn) {
            Ok(dsn) => self.dsn = dsn,
            Err(e) => return Some(("dsn_file", format!("cannot be read: {e}"))),
        }
        None
    }
}

impl HealthPingsConfig {
    /// Reads `ping_url_file` into `ping_url` and insists on one of them.
    pub(super) fn read_secret_file(&mut self) -> Option<(&'static str, String)> {
        match read_secret(self.ping_url_file.as_deref(), &Some(self.ping_url.clone())) {
            Ok(Some(url)) => self.ping_url = url,
            Ok(None) => {}
            Err(e) => return Some(("ping_url_file", format!("cannot be read: {e}"))),
        }
        if self.ping_url.expose().is_empty() {
            return Some(("ping_url", "missing: set ping_url or ping_url_file".into()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn influx(extra: &str) -> InfluxConfig {
        toml::from_str(&format!("database = \"db\"\n{extra}")).unwrap()
    }

    #[test]
    fn influx_defaults_keep_whole_seconds_and_a_100_mb_spool() {
        let config = influx("");
        assert_eq!(config.problem(), None);
        assert_eq!(config.precision, Duration::from_secs(1));
        assert_eq!(config.spool_max_mb, 100);
        assert_eq!(config.measurement, "inverter");
        assert_eq!(influx("precision = \"1ms\"").precision, Duration::from_millis(1));
    }

    #[test]
    fn influx_names_that_cannot_be_written_faithfully_are_refused() {
        let key = |extra: &str| influx(extra).problem().map(|(key, _)| key);
        assert_eq!(key("tags = { inverter = \"x\" }"), Some("tags"), "the sink sets it itself");
        assert_eq!(key("tags = { site = \"\" }"), Some("tags"));
        assert_eq!(key("tags = { 'a\\\\b' = \"x\" }"), Some("tags"));
        assert_eq!(key("tags = { site = \"two\\nlines\" }"), Some("tags"));
        assert_eq!(key("measurement = \"#x\""), Some("measurement"));
        assert_eq!(key("measurement = \"\""), Some("measurement"));
        assert_eq!(key("precision = \"0s\""), Some("precision"));
        assert_eq!(key("token_file = \"/nonexistent/token\""), Some("token_file"));
        assert_eq!(key("tags = { site = \"home, sweet home\" }"), None, "escaping handles commas and spaces");
    }
}
