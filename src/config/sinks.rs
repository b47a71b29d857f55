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

/// The HTTP server: /metrics, /healthz, /api/snapshot and the status page, and who may use them.
///
/// Three fences, each off by default except the limits: `allow` (which peers may connect at
/// all: the add-on sets it to the ingress proxy), `token` (what a request must carry) and the
/// server limits (what a connection may cost). Enforced by the `web` module, not here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Peers that may connect, as addresses or networks (`192.168.1.0/24`); empty: everyone.
    #[serde(default)]
    pub allow: Vec<PeerNet>,
    /// Peers whose requests need no token: proxies that authenticate users themselves (the
    /// add-on sets Home Assistant's ingress proxy, so the sidebar works with a token set).
    #[serde(default)]
    pub trusted: Vec<PeerNet>,
    /// The token every request to a path not in `open` must carry; none: no token asked.
    pub token: Option<Secret>,
    /// A file holding the token (Docker secrets); read at load time, wins over `token`.
    pub token_file: Option<PathBuf>,
    /// Paths answered without the token.
    #[serde(default = "default_open")]
    pub open: Vec<String>,
    /// Connections served at once; beyond it the longest-idle connection is closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; beyond it: 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Longest wait for a request head, from the connection's start or the previous answer:
    /// it also closes kept-alive connections left idle.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8000))
}
fn default_open() -> Vec<String> {
    // The image's HEALTHCHECK (`inverter-monitor healthcheck`) sends no token.
    vec!["/healthz".into()]
}
fn default_max_connections() -> usize {
    64
}
fn default_max_header_bytes() -> usize {
    8 * 1024
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Shortest token accepted: shorter ones can be guessed over the LAN.
pub(super) const MIN_TOKEN_LEN: usize = 16;

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            allow: Vec::new(),
            trusted: Vec::new(),
            token: None,
            token_file: None,
            open: default_open(),
            max_connections: default_max_connections(),
            max_header_bytes: default_max_header_bytes(),
            header_timeout: default_header_timeout(),
        }
    }
}

impl HttpConfig {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self { listen, ..Self::default() }
    }

    /// Whether `peer` may connect.
    pub fn allows(&self, peer: std::net::IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(peer))
    }

    /// Whether `peer`'s requests need no token.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(peer))
    }

    /// Whether `path` is answered without the token: exactly one of `open`, no normalising.
    pub fn is_open(&self, path: &str) -> bool {
        self.open.iter().any(|open| open == path)
    }

    /// Reads `token_file` into `token`, so the rest of the service sees one value.
    pub(super) fn read_secret_file(&mut self) -> Option<(&'static str, String)> {
        match read_secret(self.token_file.as_deref(), &self.token) {
            Ok(token) => self.token = token,
            Err(e) => return Some(("token_file", format!("cannot be read: {e}"))),
        }
        None
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(token) = &self.token {
            let token = token.expose();
            // The token travels in a header and a query string: only characters neither encodes.
            let safe = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
            if token.chars().count() < MIN_TOKEN_LEN || !token.chars().all(safe) {
                return Some((
                    "token",
                    format!(
                        "must be at least {MIN_TOKEN_LEN} characters of A-Z, a-z, 0-9, `-._~` \
                         (e.g. from `openssl rand -hex 32`)"
                    ),
                ));
            }
        }
        if let Some(path) = self.open.iter().find(|p| !p.starts_with('/') || p.contains(['?', '#'])) {
            return Some(("open", format!("`{path}` is not a path such as \"/metrics\"")));
        }
        if !(1..=10_000).contains(&self.max_connections) {
            return Some(("max_connections", "must be between 1 and 10000".into()));
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) {
            return Some(("max_header_bytes", "must be between 1024 and 1048576".into()));
        }
        if self.header_timeout < Duration::from_millis(100) || self.header_timeout > Duration::from_secs(600)
        {
            return Some((
                "header_timeout",
                format!("{:?} must be between 100ms and 10m", self.header_timeout),
            ));
        }
        None
    }
}

/// An address or a network in `[http] allow`: `172.30.32.2`, `192.168.1.0/24`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PeerNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl PeerNet {
    /// Whether `peer` is in this network; an IPv4 peer seen on an IPv6 socket
    /// (`::ffff:a.b.c.d`) counts as the IPv4 address it is.
    pub fn contains(&self, peer: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let masked = |bits: u128, width: u8| match self.prefix {
            0 => 0,
            p => bits >> (width - p),
        };
        match (self.addr, peer.to_canonical()) {
            (V4(net), V4(peer)) => masked(u32::from(net).into(), 32) == masked(u32::from(peer).into(), 32),
            (V6(net), V6(peer)) => masked(u128::from(net), 128) == masked(u128::from(peer), 128),
            _ => false,
        }
    }
}

impl TryFrom<String> for PeerNet {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("`{text}` is not an IP address or a network such as 192.168.1.0/24");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.as_str(), None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
            None => width,
        };
        // An IPv4-mapped entry (`::ffff:172.30.32.2`, `::ffff:10.0.0.0/104`) means its IPv4
        // network; its prefix counts the 96 mapping bits, which the IPv4 form has not.
        match addr.to_canonical() {
            std::net::IpAddr::V4(v4) if addr.is_ipv6() => {
                let prefix = prefix.checked_sub(96).ok_or_else(bad)?;
                Ok(Self { addr: v4.into(), prefix })
            }
            canonical => Ok(Self { addr: canonical, prefix }),
        }
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

    fn http(text: &str) -> HttpConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn http_defaults_leave_healthz_open_and_fit_a_raspberry_pi() {
        let config = http("");
        assert_eq!(config.problem(), None);
        assert_eq!(config.open, ["/healthz"], "the image's HEALTHCHECK sends no token");
        assert!(config.token.is_none() && config.allow.is_empty());
        assert_eq!((config.max_connections, config.max_header_bytes), (64, 8192));
        assert_eq!(config.header_timeout, Duration::from_secs(10));
    }

    #[test]
    fn http_values_that_cannot_work_are_refused_by_key() {
        let key = |text: &str| http(text).problem().map(|(key, _)| key);
        assert_eq!(key("token = \"short\""), Some("token"), "guessable");
        assert_eq!(key("token = \"0123456789abcdef&x=1\""), Some("token"), "not query-safe");
        assert_eq!(key("token = \"0123456789abcdef\""), None);
        assert_eq!(key("open = [\"metrics\"]"), Some("open"));
        assert_eq!(key("max_connections = 0"), Some("max_connections"));
        assert_eq!(key("max_header_bytes = 100"), Some("max_header_bytes"));
        assert_eq!(key("header_timeout = \"0s\""), Some("header_timeout"));
        assert!(toml::from_str::<HttpConfig>("allow = [\"192.168.1.0/33\"]").is_err());
        assert!(toml::from_str::<HttpConfig>("allow = [\"example.com\"]").is_err());
        let mut missing = http("token_file = \"/nonexistent/token\"");
        assert_eq!(missing.read_secret_file().map(|(key, _)| key), Some("token_file"));
    }

    #[test]
    fn allow_matches_addresses_and_networks_of_either_family() {
        let config = http("allow = [\"172.30.32.2\", \"192.168.1.0/24\", \"fd00::/8\"]");
        let allows = |ip: &str| config.allows(ip.parse().unwrap());
        assert!(allows("172.30.32.2") && !allows("172.30.32.1"));
        assert!(allows("192.168.1.200") && !allows("192.168.2.1"));
        assert!(allows("::ffff:172.30.32.2"), "an IPv4 peer on an IPv6 socket");
        assert!(allows("fd12::1") && !allows("fe80::1"));
        assert!(http("allow = [\"0.0.0.0/0\"]").allows("10.1.2.3".parse().unwrap()));
        assert!(http("").allows("10.1.2.3".parse().unwrap()), "empty: everyone");
        assert!(!http("").trusts("127.0.0.1".parse().unwrap()), "empty: no one");
        assert!(http("trusted = [\"172.30.32.2\"]").trusts("172.30.32.2".parse().unwrap()));
    }

    #[test]
    fn an_ipv4_mapped_entry_is_its_ipv4_network_and_no_wider() {
        // Once a mapped entry kept its 128-bit prefix: a debug build panicked in the accept
        // loop, a release build let every IPv4 peer in.
        let config = http("allow = [\"::ffff:172.30.32.2\"]\ntrusted = [\"::ffff:10.0.0.0/104\"]");
        assert!(config.allows("172.30.32.2".parse().unwrap()));
        assert!(!config.allows("10.9.9.9".parse().unwrap()));
        assert!(config.trusts("10.1.2.3".parse().unwrap()) && !config.trusts("11.0.0.1".parse().unwrap()));
        assert!(toml::from_str::<HttpConfig>("allow = [\"::ffff:10.0.0.0/64\"]").is_err(), "wider than IPv4");
    }
}
