//! `[weather]`: where the weather comes from, where the site is, and the PV array the clear-sky
//! estimate is scaled to. No `[weather]`, no weather task.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::sinks::read_secret;

/// The shortest `interval`: the providers refresh their data every 15 minutes at best, and
/// Open-Meteo's free tier asks for fewer than 10,000 calls a day.
pub const MIN_WEATHER_INTERVAL: Duration = Duration::from_secs(60);

/// Which weather service to ask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeatherProvider {
    /// Open-Meteo: no API key, current cloud cover plus an hourly forecast.
    #[default]
    OpenMeteo,
    /// OpenWeather's current weather (needs an API key): cloud cover now, no forecast.
    #[serde(rename = "openweather")]
    OpenWeather,
}

impl WeatherProvider {
    /// The name used in config, tags and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenMeteo => "open-meteo",
            Self::OpenWeather => "openweather",
        }
    }

    /// The public service's base URL.
    pub fn default_url(self) -> &'static str {
        match self {
            Self::OpenMeteo => "https://api.open-meteo.com",
            Self::OpenWeather => "https://api.openweathermap.org",
        }
    }
}

/// The weather task and the site it describes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherConfig {
    /// `open-meteo` (default, no key) or `openweather` (needs `api_key` or `api_key_file`).
    #[serde(default)]
    pub provider: WeatherProvider,
    /// The site's latitude in degrees, north positive (−90..=90).
    pub latitude: f64,
    /// The site's longitude in degrees, east positive (−180..=180).
    pub longitude: f64,
    /// Time between fetches (at least 1m); values older than three intervals are dropped.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// The provider's API key (OpenWeather; Open-Meteo's paid plans).
    pub api_key: Option<Secret>,
    /// A file holding the API key (Docker secrets); wins over `api_key`.
    pub api_key_file: Option<PathBuf>,
    /// The provider's base URL, for a self-hosted Open-Meteo (default: the public service).
    pub url: Option<String>,
    /// Longest wait for one answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The array's peak power in W (kWp × 1000); without it there is no PV estimate.
    pub pv_peak_power: Option<f64>,
    /// The panels' tilt from horizontal in degrees (0 flat, 90 vertical).
    #[serde(default = "default_tilt")]
    pub pv_tilt: f64,
    /// The direction the panels face, degrees from north clockwise (default: the equator).
    pub pv_azimuth: Option<f64>,
    /// The share of the panels' rated output that reaches the AC side (heat, wiring, inverter).
    #[serde(default = "default_efficiency")]
    pub pv_efficiency: f64,
}

fn default_interval() -> Duration {
    Duration::from_secs(600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_tilt() -> f64 {
    30.0
}
fn default_efficiency() -> f64 {
    0.85
}

impl WeatherConfig {
    /// The API key: from `api_key_file` if set, else `api_key`.
    ///
    /// # Errors
    /// The key file cannot be read.
    pub fn api_key(&self) -> std::io::Result<Option<Secret>> {
        read_secret(self.api_key_file.as_deref(), &self.api_key)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        self.url.as_deref().unwrap_or(self.provider.default_url())
    }

    /// Where the panels face: as configured, else towards the equator (north in the southern
    /// hemisphere, south in the northern), which is how fixed arrays are usually mounted.
    pub fn pv_azimuth(&self) -> f64 {
        self.pv_azimuth.unwrap_or(if self.latitude < 0.0 { 0.0 } else { 180.0 })
    }

    /// The first problem, as (key, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        let outside = |value: f64, range: std::ops::RangeInclusive<f64>| {
            (!range.contains(&value))
                .then(|| format!("{value} is outside {}..={}", range.start(), range.end()))
        };
        if let Some(reason) = outside(self.latitude, -90.0..=90.0) {
            return Some(("latitude", reason));
        }
        if let Some(reason) = outside(self.longitude, -180.0..=180.0) {
            return Some(("longitude", reason));
        }
        if self.interval < MIN_WEATHER_INTERVAL {
            return Some(("interval", format!("{:?} is too short; at least 1m", self.interval)));
        }
        if self.timeout.is_zero() {
            return Some(("timeout", "must be longer than 0s".into()));
        }
        if let Some(url) =
            self.url.as_ref().filter(|u| !u.starts_with("http://") && !u.starts_with("https://"))
        {
            return Some(("url", format!("`{url}` must start with http:// or https://")));
        }
        self.key_problem().or_else(|| self.array_problem())
    }

    /// A missing or unreadable API key.
    fn key_problem(&self) -> Option<(&'static str, String)> {
        if self.api_key_file.as_ref().is_some_and(|p| std::fs::metadata(p).is_err()) {
            return Some(("api_key_file", "cannot be read".into()));
        }
        let no_key = self.api_key.is_none() && self.api_key_file.is_none();
        (self.provider == WeatherProvider::OpenWeather && no_key)
            .then(|| ("api_key", "is required for provider = \"openweather\" (or api_key_file)".to_string()))
    }

    /// PV array values that make no physical sense.
    fn array_problem(&self) -> Option<(&'static str, String)> {
        if self.pv_peak_power.is_some_and(|w| !(w.is_finite() && w > 0.0)) {
            return Some(("pv_peak_power", "must be more than 0 W (kWp × 1000)".into()));
        }
        if !(0.0..=90.0).contains(&self.pv_tilt) {
            return Some(("pv_tilt", format!("{} is outside 0..=90 degrees", self.pv_tilt)));
        }
        if self.pv_azimuth.is_some_and(|a| !(0.0..=360.0).contains(&a)) {
            return Some(("pv_azimuth", "must be 0..=360 degrees from north, clockwise".into()));
        }
        if !(self.pv_efficiency > 0.0 && self.pv_efficiency <= 1.0) {
            return Some(("pv_efficiency", format!("{} is outside 0 (exclusive)..=1", self.pv_efficiency)));
        }
        None
    }
}
