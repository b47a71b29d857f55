//! One weather fetch as one point of measurement `weather`: cloud cover, the sun and the PV
//! estimate as float fields, the provider and the configured extra tags as tags. An estimate
//! that is not configured is left out, never written as 0.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::inverter::truncate;
use super::line::{FieldValue, Point};
use crate::config::InfluxConfig;
use crate::weather::WeatherSnapshot;

/// The measurement weather points go to.
pub(crate) const MEASUREMENT: &str = "weather";

/// Turns weather snapshots into points the way the configuration says.
#[derive(Debug, Clone)]
pub(crate) struct WeatherPoints {
    tags: BTreeMap<String, String>,
    precision: TimeDelta,
}

impl WeatherPoints {
    /// Points with `influx.tags`, times cut to `influx.precision`.
    pub(crate) fn new(influx: &InfluxConfig) -> Self {
        Self {
            tags: influx.tags.clone(),
            precision: TimeDelta::from_std(influx.precision).unwrap_or(TimeDelta::seconds(1)),
        }
    }

    /// The point of `snapshot`, at its time.
    pub(crate) fn point(&self, snapshot: &WeatherSnapshot) -> Point {
        let mut point = Point::new(MEASUREMENT, truncate(snapshot.at, self.precision));
        point.tags = self.tags.clone();
        let fields = [
            ("cloud_cover", Some(snapshot.cloud_cover_pct)),
            ("sun_elevation", Some(snapshot.sun.elevation_deg)),
            ("sun_azimuth", Some(snapshot.sun.azimuth_deg)),
            ("expected_pv_power", snapshot.expected_pv_w),
            ("expected_pv_energy_remaining", snapshot.expected_pv_remaining_wh),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                point = point.field(key, FieldValue::Float(value));
            }
        }
        point.tag("provider", snapshot.provider.as_str())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::weather::{ProviderAnswer, PvArray, Site, WeatherProvider};

    fn snapshot(array: Option<PvArray>) -> WeatherSnapshot {
        let at = Utc.with_ymd_and_hms(2026, 12, 21, 10, 42, 42).unwrap() + TimeDelta::milliseconds(300);
        let site = Site { latitude: -34.05, longitude: 18.85, array };
        let observation = ProviderAnswer { observed_at: at, cloud_cover_pct: 42.0, forecast: Vec::new() };
        WeatherSnapshot::new(site, WeatherProvider::OpenMeteo, observation, at).unwrap()
    }

    fn points() -> WeatherPoints {
        WeatherPoints::new(&toml::from_str("database = \"db\"\ntags = { site = \"home\" }").unwrap())
    }

    #[test]
    fn a_fetch_is_one_point_with_the_provider_and_extra_tags() {
        let array = PvArray { peak_w: 5000.0, tilt_deg: 30.0, azimuth_deg: 0.0, efficiency: 0.85 };
        let s = snapshot(Some(array));
        let line = points().point(&s).to_line().unwrap();
        let want = format!(
            "weather,provider=open-meteo,site=home cloud_cover=42,sun_elevation={},sun_azimuth={},\
             expected_pv_power={},expected_pv_energy_remaining={} 1797849762000000000",
            s.sun.elevation_deg,
            s.sun.azimuth_deg,
            s.expected_pv_w.unwrap(),
            s.expected_pv_remaining_wh.unwrap()
        );
        assert_eq!(line, want);
    }

    #[test]
    fn estimates_that_are_not_configured_are_left_out() {
        let point = points().point(&snapshot(None));
        let keys: Vec<&str> = point.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["cloud_cover", "sun_elevation", "sun_azimuth"]);
    }
}
