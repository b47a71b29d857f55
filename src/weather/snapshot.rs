//! What the weather task hands out: the provider's cloud cover and forecast, with the sun and
//! the PV estimate for one instant. A snapshot is plain data (every field public, so the control
//! engine's tests can write one by hand); [`WeatherSnapshot::at_time`] moves it to another
//! instant, because the sun moves between fetches and the clouds are assumed not to.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::estimate::{self, PvArray};
use super::sun::SunPosition;
use crate::config::{WeatherConfig, WeatherProvider};

/// How far ahead a snapshot keeps the forecast.
pub const FORECAST_HORIZON: TimeDelta = TimeDelta::hours(24);

/// The place and the array the estimate is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Latitude in degrees, north positive.
    pub latitude: f64,
    /// Longitude in degrees, east positive.
    pub longitude: f64,
    /// The PV array; without it there is no estimate.
    pub array: Option<PvArray>,
}

impl Site {
    /// The site `config` describes.
    pub fn from_config(config: &WeatherConfig) -> Self {
        let array = config.pv_peak_power.map(|peak_w| PvArray {
            peak_w,
            tilt_deg: config.pv_tilt,
            azimuth_deg: config.pv_azimuth(),
            efficiency: config.pv_efficiency,
        });
        Self { latitude: config.latitude, longitude: config.longitude, array }
    }
}

/// One hour of the provider's forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourForecast {
    /// The hour, as the provider stamps it.
    pub at: DateTime<Utc>,
    /// Cloud cover at `at`, 0–100 %.
    pub cloud_cover_pct: f64,
    /// Mean global horizontal irradiance over the hour before `at`, W/m², where given.
    pub shortwave_w_m2: Option<f64>,
}

/// What one good answer from a provider says.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderAnswer {
    /// When the provider's current values are for.
    pub observed_at: DateTime<Utc>,
    /// Cloud cover now, 0–100 %.
    pub cloud_cover_pct: f64,
    /// The hourly forecast, oldest first; empty when the provider has none.
    pub forecast: Vec<HourForecast>,
}

/// The weather and the sun at one instant, with the PV estimate when the array is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherSnapshot {
    /// The instant the sun and the estimates are for.
    pub at: DateTime<Utc>,
    /// When the provider's answer arrived; the snapshot ages from here.
    pub fetched_at: DateTime<Utc>,
    /// When the provider's current values are for (its own time stamp).
    pub observed_at: DateTime<Utc>,
    /// Who answered.
    pub provider: WeatherProvider,
    /// Where, and which array.
    pub site: Site,
    /// Cloud cover at the last fetch, 0–100 %.
    pub cloud_cover_pct: f64,
    /// The sun at `at`.
    pub sun: SunPosition,
    /// Expected AC power of the array at `at`, W; `None` without `pv_peak_power`.
    pub expected_pv_w: Option<f64>,
    /// Expected energy from `at` to the end of the local day, Wh; `None` without `pv_peak_power`.
    pub expected_pv_remaining_wh: Option<f64>,
    /// The forecast from the hour of `at` up to [`FORECAST_HORIZON`] ahead.
    pub forecast: Vec<HourForecast>,
}

impl WeatherSnapshot {
    /// The snapshot of `observation` from `provider`, fetched at `fetched_at`, for that instant;
    /// `None` only when the sun cannot be computed for it (see [`SunPosition::at`]).
    pub fn new(
        site: Site,
        provider: WeatherProvider,
        observation: ProviderAnswer,
        fetched_at: DateTime<Utc>,
    ) -> Option<Self> {
        let ProviderAnswer { observed_at, cloud_cover_pct, forecast } = observation;
        let sun = SunPosition::at(site.latitude, site.longitude, fetched_at)?;
        let snapshot = Self {
            at: fetched_at,
            fetched_at,
            observed_at,
            provider,
            site,
            cloud_cover_pct,
            sun,
            expected_pv_w: None,
            expected_pv_remaining_wh: None,
            forecast,
        };
        snapshot.at_time(fetched_at)
    }

    /// The same weather at `now`: the sun, the estimates and the forecast window recomputed,
    /// the clouds as last fetched. `None` as for [`WeatherSnapshot::new`].
    pub fn at_time(&self, now: DateTime<Utc>) -> Option<Self> {
        let site = self.site;
        let sun = SunPosition::at(site.latitude, site.longitude, now)?;
        let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        let forecast: Vec<HourForecast> =
            self.forecast.iter().filter(|h| h.at >= hour && h.at < now + FORECAST_HORIZON).copied().collect();
        let clear = estimate::clear_sky_ghi(sun.elevation_deg);
        let expected_pv_w = site.array.map(|array| {
            let ghi = clear * estimate::cloud_factor(self.cloud_cover_pct);
            estimate::pv_power(&array, sun.elevation_deg, sun.azimuth_deg, ghi, now)
        });
        let expected_pv_remaining_wh = site.array.map(|array| {
            let means = std::cell::RefCell::new(Vec::<(DateTime<Utc>, f64)>::new());
            let sky = |t: DateTime<Utc>, elevation: f64| {
                let hourly = shortwave_at(&forecast, t).map(|(end, mean)| {
                    // The hour's mean, shaped like the clear sky within it: paired with the sun
                    // of one instant, a mean near sunrise reads as a beam from the horizon.
                    let cached = means.borrow().iter().find(|(e, _)| *e == end).map(|(_, m)| *m);
                    let clear_mean = match cached {
                        Some(m) => m,
                        None => {
                            let m = clear_sky_mean(site.latitude, site.longitude, end);
                            means.borrow_mut().push((end, m));
                            m
                        }
                    };
                    let clear = estimate::clear_sky_ghi(elevation);
                    if clear_mean < 1.0 { 0.0 } else { clear * (mean / clear_mean).min(CLEAR_SKY_INDEX_MAX) }
                });
                hourly.unwrap_or_else(|| {
                    let cloud = cloud_at(&forecast, t).unwrap_or(self.cloud_cover_pct);
                    estimate::clear_sky_ghi(elevation) * estimate::cloud_factor(cloud)
                })
            };
            estimate::remaining_energy_wh(&array, (site.latitude, site.longitude), now, sky)
        });
        Some(Self { at: now, sun, expected_pv_w, expected_pv_remaining_wh, forecast, ..self.clone() })
    }
}

/// The forecast cloud cover for instant `t`: the hour stamped at or before it (cloud cover is
/// an instantaneous value).
fn cloud_at(forecast: &[HourForecast], t: DateTime<Utc>) -> Option<f64> {
    forecast.iter().find(|h| h.at <= t && t < h.at + TimeDelta::hours(1)).map(|h| h.cloud_cover_pct)
}

/// The forecast irradiance for instant `t` as (end of its hour, the hour's mean): the hour
/// stamped at or after it (Open-Meteo's shortwave radiation is the mean of the hour before its
/// stamp).
fn shortwave_at(forecast: &[HourForecast], t: DateTime<Utc>) -> Option<(DateTime<Utc>, f64)> {
    let hour = forecast.iter().find(|h| h.at - TimeDelta::hours(1) < t && t <= h.at)?;
    Some((hour.at, hour.shortwave_w_m2?))
}

/// The highest clear-sky index (forecast mean over clear-sky mean) believed: above it, the
/// clear-sky model misjudged the hour, and the sky is not brighter than clear.
pub const CLEAR_SKY_INDEX_MAX: f64 = 1.3;

/// The clear-sky GHI averaged over the hour ending at `end`, from six ten-minute midpoints.
pub fn clear_sky_mean(latitude: f64, longitude: f64, end: DateTime<Utc>) -> f64 {
    let samples = (0..6).map(|i| end - TimeDelta::minutes(55 - 10 * i));
    let sum: f64 = samples
        .filter_map(|t| super::sun::angles(latitude, longitude, t))
        .map(|(elevation, _)| estimate::clear_sky_ghi(elevation))
        .sum();
    sum / 6.0
}

#[cfg(test)]
mod tests;
