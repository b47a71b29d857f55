//! The one typed configuration, layered: defaults → TOML file → environment variables, and in
//! a Home Assistant add-on the Supervisor's options and MQTT service ([`addon`], [`layers`]).
//!
//! `INVERTER_MONITOR__SECTION__KEY=value` overrides `[section] key`; inverters are a list, so
//! they take an index: `INVERTER_MONITOR__INVERTER__0__HOST=192.168.1.60`. Raw numbers become
//! `Duration`s here and nowhere else. Every error names the file and the key (docs/style.md §14).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub mod addon;
mod control;
pub(crate) mod layers;
mod mqtt;
mod secret;
mod shard;
mod sinks;
pub(crate) mod stack;
mod weather;

pub use addon::{Addon, AddonLayers};
pub use control::{ConsumerConfig, ControlConfig, Hours};
pub use layers::Sources;
pub use mqtt::{DiscoveryMode, MqttConfig, PayloadShape, SwitchConfig};
pub use secret::Secret;
pub use shard::{SHARD_ENV, Shard, ShardError, Sharding};
pub use sinks::{HealthPingsConfig, HttpConfig, InfluxApi, InfluxConfig, PeerNet, SentryConfig};
pub use weather::{MIN_WEATHER_INTERVAL, WeatherConfig, WeatherProvider};

use crate::profile::Profiles;
use crate::transport::{LinkSettings, Parity, SerialLine, Target, Wire};

/// The prefix of environment variables that override the file.
pub const ENV_PREFIX: &str = "INVERTER_MONITOR";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or a value has the wrong type.
    #[error("{file}: {reason}")]
    Load {
        /// The file.
        file: String,
        /// Why, naming the key (from config-rs, with list keys written `inverter[0].serial`).
        reason: String,
    },
    /// A value is of the right type but not usable.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// The key, e.g. `inverter[0].serial`.
        key: String,
        /// Why.
        reason: String,
    },
    /// In add-on mode, the Supervisor did not hand over an MQTT broker.
    #[error("Home Assistant Supervisor, GET {url}: {reason}")]
    Supervisor {
        /// The URL asked.
        url: String,
        /// Why there is no broker.
        reason: String,
    },
}

/// The service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The inverters to poll.
    #[serde(rename = "inverter", default)]
    pub inverters: Vec<InverterConfig>,
    /// A directory of extra profiles; a file with a built-in id replaces it.
    pub profiles_dir: Option<PathBuf>,
    /// Where the service keeps what must survive restarts.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The MQTT broker and Home Assistant discovery; no `[mqtt]`, no MQTT.
    pub mqtt: Option<MqttConfig>,
    /// Switches whose state we follow and which we may command.
    #[serde(rename = "switch", default)]
    pub switches: Vec<SwitchConfig>,
    /// Load control settings shared by every consumer.
    #[serde(default)]
    pub control: ControlConfig,
    /// Loads under automatic control.
    #[serde(rename = "consumer", default)]
    pub consumers: Vec<ConsumerConfig>,
    /// InfluxDB; no `[influxdb]`, no database.
    pub influxdb: Option<InfluxConfig>,
    /// The HTTP server; no `[http]`, no server.
    pub http: Option<HttpConfig>,
    /// Sentry error reporting.
    #[serde(default)]
    pub sentry: SentryConfig,
    /// Health-check pings, under the key users know: `[healthcheck]`.
    #[serde(rename = "healthcheck")]
    pub health_pings: Option<HealthPingsConfig>,
    /// Weather, sun position and the PV estimate; no `[weather]`, no weather.
    pub weather: Option<WeatherConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Recording every poll's raw registers; no `[record]`, no recording.
    pub record: Option<RecordConfig>,
    /// The profiles loaded and checked by [`Config::validate`], so the service does not load
    /// them (and read `profiles_dir`) a second time, nor a different set.
    #[serde(skip)]
    validated_profiles: Option<Profiles>,
    /// This instance's shard and what the others poll, after [`Config::keep_shard`]; set by
    /// the command line, never by the file (one file serves every shard).
    #[serde(skip)]
    pub sharding: Option<std::sync::Arc<Sharding>>,
}

/// `[record]`: every poll's raw registers appended to a file, one JSON line a poll
/// (docs/configuration.md, "Recording").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// The file; with `rotate`, each UTC day goes to `path.YYYY-MM-DD`.
    pub path: PathBuf,
    /// A file per day (the default), so no file grows without end.
    #[serde(default = "yes")]
    pub rotate: bool,
}

fn yes() -> bool {
    true
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A log filter: a level (`info`, `debug`) or `target=level` directives
    /// (`inverter_monitor=debug,info`). `RUST_LOG` wins.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: default_level(), format: LogFormat::Text }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// A directory of its own under the temp dir, for a configuration made in code; created only
/// when something is written there.
fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("inverter-monitor-{}-{n}", std::process::id()))
}

fn default_level() -> String {
    "info".into()
}

/// Parses a log filter, as `log.level` and `RUST_LOG` hold it: a level (`info`, `debug`, `off`,
/// `0`-`5`) or comma-separated `target=level` directives, a target matching itself and the
/// modules below it. Blank items are skipped. Span and field filters (`[span{field=value}]`)
/// are refused: EnvFilter reads them with a regex engine that the image's build leaves out
/// (docs/performance.md), and tracing's `Targets` would take some of them for a target that
/// matches nothing.
///
/// # Errors
/// Why the text is not a filter, for the user to read.
pub fn log_filter(directives: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    let items: Vec<&str> = directives.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
    if items.is_empty() {
        return Err("it names no level".into());
    }
    for item in &items {
        if item.contains(['[', '{']) {
            return Err(format!("`{item}` filters by span or field; only target=level directives are read"));
        }
        if item.ends_with('=') {
            return Err(format!("`{item}` names no level"));
        }
    }
    items.join(",").parse().map_err(|e| format!("{e}"))
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How an inverter's logger is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Solarman V5 (Wi-Fi loggers, port 8899).
    Solarman,
    /// Modbus TCP (Ethernet loggers, port 502).
    ModbusTcp,
    /// Raw Modbus RTU over TCP: a transparent RS485 gateway (Elfin EW11, Waveshare, USR-TCP232).
    /// Gateways listen on whatever port they were set to, so `port` is required.
    RtuOverTcp,
    /// Modbus RTU on a local serial port (`device`): a USB RS485 adapter.
    Serial,
    /// Found out at the first connect: V5, Modbus TCP, then raw RTU, each asked for register 0
    /// on `port` (default 8899); remembered in `data_dir/loggers.json`. The default.
    #[default]
    Auto,
}

/// One inverter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverterConfig {
    /// A short name: shown in Home Assistant and used in topics.
    pub name: String,
    /// The logger's host name or IP; not used with `protocol = "serial"`.
    #[serde(default)]
    pub host: String,
    /// The logger's port; 8899 for Solarman, 502 for Modbus TCP, required for RTU over TCP.
    pub port: Option<u16>,
    /// The serial port, e.g. `/dev/ttyUSB0` (`protocol = "serial"` only).
    pub device: Option<String>,
    /// The serial line's speed (`protocol = "serial"` only).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The serial line's parity (`protocol = "serial"` only).
    #[serde(default)]
    pub parity: Parity,
    /// The serial line's stop bits, 1 or 2 (`protocol = "serial"` only).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// The logger's serial (Solarman only; on the logger's sticker). Left out or 0 (the
    /// add-on form's empty value), it is learned from the logger's first answer and kept in
    /// `<data_dir>/loggers.json`; given, it is pinned.
    pub serial: Option<u32>,
    /// Solarman, Modbus TCP, RTU over TCP, or serial.
    #[serde(default)]
    pub protocol: Protocol,
    /// The register profile, or `"auto"` (the default): detected from the device-type register.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Time between polls.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Modbus slave id of the inverter.
    #[serde(default = "default_slave")]
    pub slave_id: u8,
    /// Longest wait for a TCP connect.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for an answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Quiet time between requests.
    #[serde(default = "default_pause", with = "humantime_serde")]
    pub request_pause: Duration,
    /// Resends of a request whose answer was lost or damaged (2: up to three sends).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Largest read in registers, for loggers that time out on long reads.
    pub max_read: Option<u16>,
    /// Failed polls in a row before the inverter is reported unavailable.
    #[serde(default = "default_unavailable_after")]
    pub unavailable_after: u32,
    /// Read and publish the `settings` readings. Default: yes, except on the second and later
    /// inverters of a parallel stack, whose settings follow the master's.
    pub settings: Option<bool>,
    /// Let Home Assistant change this inverter's settings (docs/writes.md). Off by default:
    /// with it off no writable entity is announced and no command topic is subscribed.
    #[serde(default)]
    pub writes: bool,
    /// With `writes`, only these readings may be set; empty: every writable reading.
    #[serde(default)]
    pub write_keys: Vec<String>,
    /// Set the inverter's clock to the host's local time when it drifts (docs/writes.md).
    #[serde(default)]
    pub clock_sync: bool,
    /// With `clock_sync`, the drift that makes a sync.
    #[serde(default = "default_clock_drift", with = "humantime_serde")]
    pub clock_drift: Duration,
}

fn default_profile() -> String {
    crate::profile::AUTO.into()
}
fn default_baud() -> u32 {
    9600
}
fn default_stop_bits() -> u8 {
    1
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_slave() -> u8 {
    1
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_pause() -> Duration {
    Duration::from_millis(100)
}
fn default_retries() -> u32 {
    2
}
fn default_clock_drift() -> Duration {
    Duration::from_secs(30)
}
fn default_unavailable_after() -> u32 {
    3
}

impl InverterConfig {
    /// An inverter with every default, for the demo and for `read`.
    pub fn new(name: &str, host: &str, port: u16, serial: u32) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            port: Some(port),
            device: None,
            baud: default_baud(),
            parity: Parity::None,
            stop_bits: default_stop_bits(),
            serial: Some(serial),
            protocol: Protocol::Solarman,
            profile: default_profile(),
            interval: default_interval(),
            slave_id: default_slave(),
            connect_timeout: default_timeout(),
            read_timeout: default_timeout(),
            request_pause: default_pause(),
            retries: default_retries(),
            max_read: None,
            unavailable_after: default_unavailable_after(),
            settings: None,
            writes: false,
            write_keys: Vec::new(),
            clock_sync: false,
            clock_drift: default_clock_drift(),
        }
    }

    /// Where the logger is and how to talk to it. Serial 0 means "learn it".
    pub fn target(&self) -> Target {
        let (wire, port) = match self.protocol {
            Protocol::Solarman => (Wire::Solarman { serial: self.serial.unwrap_or_default() }, 8899),
            Protocol::ModbusTcp => (Wire::ModbusTcp, 502),
            // Validation makes `port` required: 0 is never dialled.
            Protocol::RtuOverTcp => (Wire::RtuOverTcp, 0),
            Protocol::Serial => (Wire::Serial(self.serial_line()), 0),
            Protocol::Auto => (Wire::Auto { serial: self.serial.filter(|s| *s != 0) }, 8899),
        };
        Target { host: self.host.clone(), port: self.port.unwrap_or(port), wire, slave: self.slave_id }
    }

    /// The serial port and its line settings (meaningful with `protocol = "serial"`).
    pub fn serial_line(&self) -> SerialLine {
        SerialLine {
            device: self.device.clone().unwrap_or_default(),
            baud: self.baud,
            parity: self.parity,
            stop_bits: self.stop_bits,
        }
    }

    /// The link's timing.
    pub fn link_settings(&self) -> LinkSettings {
        LinkSettings {
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            pause: self.request_pause,
            retries: self.retries,
            ..LinkSettings::default()
        }
    }

    /// The reads for `profile`, honouring this inverter's `max_read`.
    pub fn plan(&self, profile: &crate::profile::Profile) -> Vec<crate::profile::ReadBlock> {
        profile.plan_within(self.max_read)
    }
}

impl Config {
    /// A configuration of `inverters` with every other setting at its default (no MQTT), its
    /// state in a fresh directory under the temp dir ([`scratch_dir`]): the demo's and the
    /// tests' files never land in the working directory, and two of them never share one.
    pub fn new(inverters: Vec<InverterConfig>) -> Self {
        Self {
            inverters,
            profiles_dir: None,
            data_dir: scratch_dir(),
            mqtt: None,
            switches: Vec::new(),
            control: ControlConfig::default(),
            consumers: Vec::new(),
            influxdb: None,
            http: None,
            sentry: SentryConfig::default(),
            health_pings: None,
            weather: None,
            log: LogConfig::default(),
            record: None,
            validated_profiles: None,
            sharding: None,
        }
    }

    /// Checks what types cannot: names, serials, ranges, profiles; keeps the profiles it loaded
    /// for [`Config::profiles`].
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&mut self, file: &str) -> Result<(), ConfigError> {
        self.validated_profiles = Some(self.check(file)?);
        Ok(())
    }

    fn check(&self, file: &str) -> Result<Profiles, ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid { file: file.into(), key, reason };
        if self.inverters.is_empty() {
            return Err(invalid("inverter".into(), "no [[inverter]] is configured".into()));
        }
        if let Err(reason) = log_filter(&self.log.level) {
            return Err(invalid(
                "log.level".into(),
                format!("`{}` is not a log filter: {reason}", self.log.level),
            ));
        }
        let profiles = match &self.profiles_dir {
            Some(dir) => {
                Profiles::with_dir(dir).map_err(|e| invalid("profiles_dir".into(), e.to_string()))?
            }
            None => Profiles::builtin().map_err(|e| invalid("profiles_dir".into(), e.to_string()))?,
        };
        for (i, inverter) in self.inverters.iter().enumerate() {
            let key = |field: &str| format!("inverter[{i}].{field}");
            if let Some((field, reason)) = inverter.problem(&profiles) {
                return Err(invalid(key(field), reason));
            }
            if self.inverters[..i].iter().any(|other| other.name == inverter.name) {
                return Err(invalid(key("name"), format!("`{}` is used by another inverter", inverter.name)));
            }
        }
        if let Some((i, field, reason)) = stack::problem(&self.inverters) {
            return Err(invalid(format!("inverter[{i}].{field}"), reason));
        }
        if let Some((i, field, reason)) = self.writes_problem() {
            return Err(invalid(format!("inverter[{i}].{field}"), reason));
        }
        if let Some((field, reason)) = self.mqtt.as_ref().and_then(MqttConfig::problem) {
            return Err(invalid(format!("mqtt.{field}"), reason));
        }
        if let Some((field, reason)) = self.influxdb.as_ref().and_then(InfluxConfig::problem) {
            return Err(invalid(format!("influxdb.{field}"), reason));
        }
        if let Some((field, reason)) = self.http.as_ref().and_then(HttpConfig::problem) {
            return Err(invalid(format!("http.{field}"), reason));
        }
        if let Some((field, reason)) = self.weather.as_ref().and_then(WeatherConfig::problem) {
            return Err(invalid(format!("weather.{field}"), reason));
        }
        if let Some(Err(e)) = self.sentry.dsn.as_ref().map(|dsn| dsn.expose().parse::<sentry::types::Dsn>()) {
            return Err(invalid("sentry.dsn".into(), format!("not a Sentry DSN: {e}")));
        }
        if !self.switches.is_empty() && self.mqtt.is_none() {
            return Err(invalid(
                "switch".into(),
                "switches are followed and commanded over MQTT: add an [mqtt] section".into(),
            ));
        }
        for (i, switch) in self.switches.iter().enumerate() {
            if let Some((field, reason)) = switch.problem() {
                return Err(invalid(format!("switch[{i}].{field}"), reason));
            }
            if self.switches[..i].iter().any(|other| other.name == switch.name) {
                return Err(invalid(
                    format!("switch[{i}].name"),
                    format!("`{}` is used by another switch", switch.name),
                ));
            }
        }
        self.validate_control(file)?;
        Ok(profiles)
    }

    /// Writes come from Home Assistant, so they need MQTT; in a parallel stack they and the
    /// clock sync go to the master, whose settings the others follow, unless a member says
    /// `settings = true`. As (index, key, reason).
    fn writes_problem(&self) -> Option<(usize, &'static str, String)> {
        if let Some(first) = self.inverters.iter().position(|i| i.writes)
            && self.mqtt.is_none()
        {
            let reason = "writes come from Home Assistant over MQTT: add an [mqtt] section";
            return Some((first, "writes", reason.into()));
        }
        let followers = stack::stacks(&self.inverters).into_iter().flat_map(|g| g.into_iter().skip(1));
        for i in followers.filter(|&i| self.inverters[i].settings != Some(true)) {
            let inverter = &self.inverters[i];
            let key = match (inverter.writes, inverter.clock_sync) {
                (true, _) => "writes",
                (false, true) => "clock_sync",
                (false, false) => continue,
            };
            let reason = format!(
                "this inverter's settings follow its stack's master: set {key} on the master, \
                 or settings = true here too if this one's are its own"
            );
            return Some((i, key, reason));
        }
        None
    }

    /// Checks `[control]` and `[[consumer]]`.
    fn validate_control(&self, file: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid { file: file.into(), key, reason };
        if let Some(name) = &self.control.inverter
            && !self.inverters.iter().any(|i| &i.name == name)
        {
            return Err(invalid("control.inverter".into(), format!("no [[inverter]] is named `{name}`")));
        }
        if self.control.battery_capacity.is_some_and(|wh| !(wh.is_finite() && wh > 0.0)) {
            return Err(invalid("control.battery_capacity".into(), "must be the usable energy in Wh".into()));
        }
        if !self.consumers.is_empty() && self.mqtt.is_none() {
            return Err(invalid(
                "consumer".into(),
                "consumers are followed and commanded over MQTT: add an [mqtt] section".into(),
            ));
        }
        for (i, consumer) in self.consumers.iter().enumerate() {
            if let Some((field, reason)) = consumer.problem() {
                return Err(invalid(format!("consumer[{i}].{field}"), reason));
            }
            let taken = self.switches.iter().any(|s| s.name == consumer.name)
                || self.consumers[..i].iter().any(|c| c.name == consumer.name);
            if taken {
                return Err(invalid(
                    format!("consumer[{i}].name"),
                    format!("`{}` is used by another consumer or switch", consumer.name),
                ));
            }
        }
        Ok(())
    }

    /// Every switch the MQTT side follows: the `[[switch]]`es, then each consumer's plug.
    pub fn all_switches(&self) -> Vec<SwitchConfig> {
        self.switches.iter().cloned().chain(self.consumers.iter().map(ConsumerConfig::switch)).collect()
    }

    /// The inverters that share a connection (parallel stacks), as indices into `inverters`;
    /// the first of each group is its master, a lone inverter a group of one.
    pub fn stacks(&self) -> Vec<Vec<usize>> {
        stack::stacks(&self.inverters)
    }

    /// The inverter whose readings drive load control.
    pub fn control_inverter(&self) -> Option<&InverterConfig> {
        match &self.control.inverter {
            Some(name) => self.inverters.iter().find(|i| &i.name == name),
            None => self.inverters.first(),
        }
    }

    /// The profiles this configuration can use.
    ///
    /// # Errors
    /// A profile in `profiles_dir` that does not load.
    pub fn profiles(&self) -> Result<Profiles, crate::profile::ProfileError> {
        if let Some(profiles) = &self.validated_profiles {
            return Ok(profiles.clone());
        }
        match &self.profiles_dir {
            Some(dir) => Profiles::with_dir(dir),
            None => Profiles::builtin(),
        }
    }
}

impl InverterConfig {
    /// The first problem with this inverter, as (field, reason).
    fn problem(&self, profiles: &Profiles) -> Option<(&'static str, String)> {
        let valid_name = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Some((
                "name",
                format!(
                    "`{}` must be non-empty letters, digits, `_` or `-` (it becomes part of MQTT topics)",
                    self.name
                ),
            ));
        }
        if crate::mqtt::topics::SERVICE_DEVICES.contains(&self.name.as_str()) {
            let reason = format!(
                "`{0}` is reserved: the service's own {0} device publishes on `<base_topic>/{0}/…`",
                self.name
            );
            return Some(("name", reason));
        }
        if let Some(problem) = self.way_in_problem() {
            return Some(problem);
        }
        if self.port == Some(0) {
            return Some(("port", "must be 1..=65535".into()));
        }
        if self.interval < Duration::from_secs(1) {
            return Some(("interval", format!("{:?} is too short; at least 1s", self.interval)));
        }
        if !(1..=247).contains(&self.slave_id) {
            return Some(("slave_id", format!("{} is outside 1..=247", self.slave_id)));
        }
        if self.max_read.is_some_and(|m| !(1..=125).contains(&m)) {
            return Some(("max_read", "must be 1..=125".into()));
        }
        if let Some(reason) = self.profile_problem(profiles) {
            return Some(("profile", reason));
        }
        if let Some(reason) = self.write_keys_problem(profiles) {
            return Some(("write_keys", reason));
        }
        self.clock_problem(profiles)
    }

    /// `clock_sync` needs a profile that maps the clock (with `auto`, a detected profile
    /// without one is simply not synced), and a threshold of a second or more.
    fn clock_problem(&self, profiles: &Profiles) -> Option<(&'static str, String)> {
        if self.clock_drift < Duration::from_secs(1) {
            return Some(("clock_drift", format!("{:?} is too short; at least 1s", self.clock_drift)));
        }
        let profile = profiles.get(&self.profile).ok().filter(|_| self.clock_sync)?;
        profile
            .header
            .clock
            .is_empty()
            .then(|| ("clock_sync", format!("profile {} does not map the inverter's clock", profile.id())))
    }

    /// What Home Assistant may set on this inverter; `None` with writes off.
    pub fn write_allowance(&self) -> Option<crate::writes::Allowed> {
        self.writes.then(|| crate::writes::Allowed::new(&self.write_keys))
    }

    /// `write_keys` needs `writes`, and with a named profile each key must be one of its
    /// writable readings; with `auto` the poller checks them once the family is known.
    fn write_keys_problem(&self, profiles: &Profiles) -> Option<String> {
        if self.write_keys.is_empty() {
            return None;
        }
        if !self.writes {
            return Some("write_keys narrows writes, which are off: add writes = true".into());
        }
        let profile = profiles.get(&self.profile).ok()?;
        let unknown = crate::writes::unknown_keys(&profile, &self.write_keys);
        (!unknown.is_empty())
            .then(|| format!("{} is not a writable reading of profile {}", unknown.join(", "), profile.id()))
    }

    /// What is wrong with how the inverter is reached: host and port, or the serial port.
    fn way_in_problem(&self) -> Option<(&'static str, String)> {
        if self.protocol != Protocol::Serial {
            if self.host.trim().is_empty() {
                return Some(("host", "must name the logger's IP or host name".into()));
            }
            if self.protocol == Protocol::RtuOverTcp && self.port.is_none() {
                let reason =
                    "missing: the RS485 gateway's TCP port (often 502, 8899 or 4196; see its web page)";
                return Some(("port", reason.into()));
            }
            return None;
        }
        if self.device.as_deref().is_none_or(|d| d.trim().is_empty()) {
            return Some((
                "device",
                "missing: the serial port of the RS485 adapter, e.g. /dev/ttyUSB0".into(),
            ));
        }
        if !(300..=4_000_000).contains(&self.baud) {
            return Some((
                "baud",
                format!("{} is outside 300..=4000000 (Deye and Sunsynk use 9600)", self.baud),
            ));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Some(("stop_bits", format!("{} must be 1 or 2", self.stop_bits)));
        }
        None
    }

    /// A named profile must exist; `auto` needs every device-type code to pick one profile.
    fn profile_problem(&self, profiles: &Profiles) -> Option<String> {
        if self.profile != crate::profile::AUTO {
            return profiles.get(&self.profile).err().map(|e| e.to_string());
        }
        let conflicts: Vec<String> = profiles
            .conflicts()
            .into_iter()
            .map(|(code, ids)| format!("{code:#06x} is claimed by {}", ids.join(" and ")))
            .collect();
        (!conflicts.is_empty()).then(|| {
            format!(
                "\"auto\" cannot choose: {}; name the profile, or give the profiles different device_types",
                conflicts.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests;
