//! The sun as seen from the site: elevation and azimuth at an instant (NREL's SPA, ±0.0003°,
//! through `solar-positioning`), and sunrise and sunset of the local solar day. Pure: the time
//! is an argument, so tests pin it.
//!
//! "Local day" is the day in local mean solar time, UTC + longitude / 15 h: it needs no time
//! zone in the config, and its midnight falls within about an hour of the civil one, when the
//! sun is down everywhere but near the poles.

use chrono::{DateTime, Days, FixedOffset, Offset, Utc};
use solar_positioning::{Horizon, Location, RefractionCorrection, SolarEvents, SolarPositions, delta_t};

/// Where the sun is, and when it rises and sets on the local day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SunPosition {
    /// Degrees above the horizon, with standard refraction; negative at night.
    pub elevation_deg: f64,
    /// Degrees from north, clockwise: 90 east, 180 south, 270 west.
    pub azimuth_deg: f64,
    /// Sunrise on the local day; `None` when the sun does not rise (polar day or night).
    pub sunrise: Option<DateTime<Utc>>,
    /// Sunset on the local day; `None` when the sun does not set (polar day or night).
    pub sunset: Option<DateTime<Utc>>,
}

impl SunPosition {
    /// The sun at `at` seen from `latitude`, `longitude` (degrees); `None` only outside the
    /// years SPA covers (−2000 to 6000) or for coordinates off the globe.
    pub fn at(latitude: f64, longitude: f64, at: DateTime<Utc>) -> Option<Self> {
        let (elevation_deg, azimuth_deg) = angles(latitude, longitude, at)?;
        let zone = solar_zone(longitude);
        let location = Location { latitude, longitude };
        let delta_t = delta_t::estimate_from_date_like(&at).ok()?;
        let day = at.with_timezone(&zone).date_naive();
        let events =
            SolarEvents::new().for_date(day, &zone, location, delta_t, Horizon::SunriseSunset).ok()?;
        Some(Self {
            elevation_deg,
            azimuth_deg,
            sunrise: events.rises.first().map(|t| t.with_timezone(&Utc)),
            sunset: events.sets.last().map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// Elevation and azimuth in degrees at `at`, without rise and set (cheaper, for integrating
/// over a day); `None` as for [`SunPosition::at`].
pub(crate) fn angles(latitude: f64, longitude: f64, at: DateTime<Utc>) -> Option<(f64, f64)> {
    let delta_t = delta_t::estimate_from_date_like(&at).ok()?;
    let location = Location { latitude, longitude };
    let refraction = Some(RefractionCorrection::standard());
    let position = SolarPositions::new().at(&at, location, 0.0, delta_t, refraction).ok()?;
    Some((position.elevation_angle(), position.azimuth()))
}

/// Local mean solar time at `longitude`: UTC + 4 minutes per degree east.
fn solar_zone(longitude: f64) -> FixedOffset {
    // |longitude| ≤ 180 gives at most ±12 h, always a valid offset; UTC if it ever were not.
    let seconds = (longitude.clamp(-180.0, 180.0) * 240.0).round() as i32;
    FixedOffset::east_opt(seconds).unwrap_or(Utc.fix())
}

/// The end of the local solar day that contains `at` (its next local mean solar midnight).
pub(crate) fn end_of_day(longitude: f64, at: DateTime<Utc>) -> DateTime<Utc> {
    let zone = solar_zone(longitude);
    let local = at.with_timezone(&zone);
    let midnight = local.date_naive().checked_add_days(Days::new(1)).and_then(|d| d.and_hms_opt(0, 0, 0));
    midnight
        .and_then(|m| m.and_local_timezone(zone).single())
        .map_or(at + chrono::TimeDelta::days(1), |m| m.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    /// Stellenbosch, the example site.
    const LAT: f64 = -34.05;
    const LON: f64 = 18.85;

    /// The highest elevation on the UTC day of `day`, scanning minute by minute.
    fn highest(day: DateTime<Utc>) -> (f64, DateTime<Utc>) {
        (0..24 * 60)
            .map(|m| day + TimeDelta::minutes(m))
            .map(|t| (angles(LAT, LON, t).unwrap().0, t))
            .fold((f64::MIN, day), |best, x| if x.0 > best.0 { x } else { best })
    }

    #[test]
    fn noon_elevation_is_ninety_minus_latitude_minus_declination() {
        // June solstice: declination +23.44°, so 90 − |−34.05 − 23.44| = 32.51°, plus about
        // 0.03° of refraction. Solar noon: 12:00 − 18.85 × 4 min − equation of time
        // (−1.8 min on 21 June) = 10:46 UTC.
        let (elevation, when) = highest(Utc.with_ymd_and_hms(2026, 6, 21, 0, 0, 0).unwrap());
        assert!((elevation - 32.54).abs() < 0.05, "{elevation}");
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 10, 46, 24).unwrap();
        assert!((when - noon).num_seconds().abs() <= 120, "{when}");
        // March equinox (20 March 2026, 14:46 UTC): at the site's noon, four hours earlier, the
        // declination is still −0.07° (it rises 0.4° a day), so 90 − (34.05 − 0.07) = 56.02°,
        // plus 0.01° of refraction.
        let (elevation, _) = highest(Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap());
        assert!((elevation - 56.03).abs() < 0.03, "{elevation}");
    }

    #[test]
    fn the_sun_is_north_at_noon_in_the_south_and_below_the_horizon_at_midnight() {
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 10, 46, 0).unwrap();
        let (_, azimuth) = angles(LAT, LON, noon).unwrap();
        assert!(!(1.0..359.0).contains(&azimuth), "due north at solar noon: {azimuth}");
        let midnight = Utc.with_ymd_and_hms(2026, 6, 21, 22, 46, 0).unwrap();
        let (elevation, _) = angles(LAT, LON, midnight).unwrap();
        // Lower culmination: |φ + δ| − 90 = |−34.05 + 23.44| − 90 = −79.39°.
        assert!((elevation + 79.39).abs() < 0.1, "{elevation}");
    }

    #[test]
    fn a_december_day_at_34_south_lasts_14_h_25_min_around_solar_noon() {
        // cos ω₀ = (sin −0.833° − sin φ sin δ) / (cos φ cos δ) with φ = −34.05°, δ = −23.44°:
        // (−0.01454 − 0.2227) / 0.7603 = −0.3121, ω₀ = 108.19°, day = 2ω₀/15 = 14.43 h.
        let sun = SunPosition::at(LAT, LON, Utc.with_ymd_and_hms(2026, 12, 21, 9, 0, 0).unwrap()).unwrap();
        let (rise, set) = (sun.sunrise.unwrap(), sun.sunset.unwrap());
        let length = (set - rise).num_seconds() as f64 / 60.0;
        assert!((length - 865.5).abs() < 3.0, "{length} min");
        // Midway is solar noon: 12:00 − 75.4 min − equation of time (+1.9 min) = 10:42.7 UTC.
        let noon = rise + (set - rise) / 2;
        let want = Utc.with_ymd_and_hms(2026, 12, 21, 10, 42, 42).unwrap();
        assert!((noon - want).num_seconds().abs() < 90, "{noon}");
    }

    #[test]
    fn polar_night_has_no_sunrise() {
        let sun = SunPosition::at(78.2, 15.6, Utc.with_ymd_and_hms(2026, 12, 21, 12, 0, 0).unwrap()).unwrap();
        assert_eq!((sun.sunrise, sun.sunset), (None, None));
        assert!(sun.elevation_deg < 0.0);
    }

    #[test]
    fn the_local_day_ends_at_local_mean_solar_midnight() {
        // 18.85° east: local midnight is 75.4 min before 00:00 UTC.
        let at = Utc.with_ymd_and_hms(2026, 12, 21, 9, 0, 0).unwrap();
        assert_eq!(end_of_day(LON, at), Utc.with_ymd_and_hms(2026, 12, 21, 22, 44, 36).unwrap());
        let late = Utc.with_ymd_and_hms(2026, 12, 21, 23, 0, 0).unwrap();
        assert_eq!(end_of_day(LON, late), Utc.with_ymd_and_hms(2026, 12, 22, 22, 44, 36).unwrap());
    }
}
