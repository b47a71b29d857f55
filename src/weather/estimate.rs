//! A clear-sky estimate of PV output: what the array should give now, and how much energy is
//! left in the day. Pure functions of the sun, the sky and the array; time is an argument.
//!
//! ```text
//! elevation ──Haurwitz──▶ clear-sky GHI ──× Kasten–Czeplak(cloud)──▶ GHI ─┐   (or the provider's
//!                                                                         │    shortwave radiation)
//! GHI ──Erbs──▶ beam + diffuse ──Liu–Jordan, tilt, azimuth──▶ plane-of-array irradiance
//! plane-of-array ──× peak power / 1000 W/m² × efficiency──▶ expected PV power
//! ```
//!
//! Sources (docs/weather.md has the formulas and their limits):
//! - Haurwitz (1945): GHI = 1098 · cos z · exp(−0.057 / cos z) W/m², z the zenith angle.
//! - Kasten & Czeplak (1980): GHI / GHI_clear = 1 − 0.75 · (cloud fraction)^3.4.
//! - Erbs, Klein & Duffie (1982): the diffuse fraction of GHI from the clearness index.
//! - Liu & Jordan (1963): isotropic sky and ground (albedo 0.2) on a tilted plane.
//! - Spencer's approximation of the Sun–Earth distance: G_on = 1361 · (1 + 0.033 cos(2πn/365)).

use chrono::{DateTime, Datelike, TimeDelta, Utc};

use super::sun;

/// The solar constant in W/m² (Kopp & Lean 2011).
pub const SOLAR_CONSTANT: f64 = 1361.0;

/// The share of light the ground reflects: the usual 0.2 for grass, soil and roofs.
pub const ALBEDO: f64 = 0.2;

/// Irradiance at standard test conditions, W/m²: the array's peak power is rated at this.
pub const STC_IRRADIANCE: f64 = 1000.0;

/// The step of the energy integral: a clear day's total is within 0.01 % of 1-minute steps,
/// and a whole day costs 144 sun positions, well under a millisecond.
pub const STEP: TimeDelta = TimeDelta::minutes(10);

/// A PV array: how big it is and which way it faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PvArray {
    /// Peak power in W at 1000 W/m² (kWp × 1000).
    pub peak_w: f64,
    /// Tilt from horizontal, degrees.
    pub tilt_deg: f64,
    /// The direction it faces, degrees from north clockwise.
    pub azimuth_deg: f64,
    /// The share of rated output that reaches the AC side.
    pub efficiency: f64,
}

/// Global horizontal irradiance under a clear sky at sun `elevation_deg`, W/m² (Haurwitz).
pub fn clear_sky_ghi(elevation_deg: f64) -> f64 {
    let cos_z = elevation_deg.to_radians().sin();
    if cos_z <= 0.0 { 0.0 } else { 1098.0 * cos_z * (-0.057 / cos_z).exp() }
}

/// The share of clear-sky GHI left under `cloud_cover_pct` % cloud (Kasten–Czeplak): 1 when
/// clear, 0.25 when overcast.
pub fn cloud_factor(cloud_cover_pct: f64) -> f64 {
    let fraction = (cloud_cover_pct / 100.0).clamp(0.0, 1.0);
    1.0 - 0.75 * fraction.powf(3.4)
}

/// Extraterrestrial irradiance on a plane facing the sun on day `day_of_year`, W/m².
pub fn extraterrestrial(day_of_year: u32) -> f64 {
    let angle = std::f64::consts::TAU * f64::from(day_of_year) / 365.0;
    SOLAR_CONSTANT * (1.0 + 0.033 * angle.cos())
}

/// The diffuse share of GHI at clearness index `kt` (GHI over extraterrestrial horizontal),
/// after Erbs, Klein and Duffie.
pub fn diffuse_fraction(kt: f64) -> f64 {
    if kt <= 0.22 {
        1.0 - 0.09 * kt
    } else if kt <= 0.80 {
        0.9511 - 0.1604 * kt + 4.388 * kt.powi(2) - 16.638 * kt.powi(3) + 12.336 * kt.powi(4)
    } else {
        0.165
    }
}

/// Irradiance on the array's plane, W/m², from `ghi` with the sun at `elevation_deg`,
/// `azimuth_deg` on `day_of_year`.
pub fn plane_of_array(
    ghi: f64,
    elevation_deg: f64,
    azimuth_deg: f64,
    array: &PvArray,
    day_of_year: u32,
) -> f64 {
    let cos_z = elevation_deg.to_radians().sin();
    if cos_z <= 0.0 || ghi <= 0.0 {
        return 0.0;
    }
    let outside = extraterrestrial(day_of_year);
    // pvlib's guards: the clearness index is taken with cos z of at least 0.065 and at most 1,
    // and below 3° of elevation all light counts as diffuse; otherwise beam / cos z grows
    // without bound near the horizon.
    let kt = (ghi / (outside * cos_z.max(0.065))).min(1.0);
    let diffuse = if elevation_deg < 3.0 { ghi } else { ghi * diffuse_fraction(kt) };
    let beam_normal = ((ghi - diffuse) / cos_z).min(outside);
    let (tilt, zenith) = (array.tilt_deg.to_radians(), (90.0 - elevation_deg).to_radians());
    let cos_incidence = zenith.cos() * tilt.cos()
        + zenith.sin() * tilt.sin() * (azimuth_deg - array.azimuth_deg).to_radians().cos();
    beam_normal * cos_incidence.max(0.0)
        + diffuse * (1.0 + tilt.cos()) / 2.0
        + ALBEDO * ghi * (1.0 - tilt.cos()) / 2.0
}

/// The array's AC output in W with the sun at `elevation_deg`, `azimuth_deg` and `ghi` W/m²
/// on the ground at `at`.
pub fn pv_power(array: &PvArray, elevation_deg: f64, azimuth_deg: f64, ghi: f64, at: DateTime<Utc>) -> f64 {
    let poa = plane_of_array(ghi, elevation_deg, azimuth_deg, array, at.ordinal());
    array.peak_w * poa / STC_IRRADIANCE * array.efficiency
}

/// Energy in Wh from `from` to the end of the local solar day at `latitude`, `longitude`, with
/// `ghi(t, elevation)` the irradiance expected at `t`: midpoint sums over [`STEP`]s.
pub fn remaining_energy_wh(
    array: &PvArray,
    (latitude, longitude): (f64, f64),
    from: DateTime<Utc>,
    ghi: impl Fn(DateTime<Utc>, f64) -> f64,
) -> f64 {
    let end = sun::end_of_day(longitude, from);
    let mut energy = 0.0;
    let mut start = from;
    while start < end {
        let step = STEP.min(end - start);
        let middle = start + step / 2;
        if let Some((elevation, azimuth)) = sun::angles(latitude, longitude, middle).filter(|(e, _)| *e > 0.0)
        {
            let hours = step.num_milliseconds() as f64 / 3_600_000.0;
            energy += pv_power(array, elevation, azimuth, ghi(middle, elevation), middle) * hours;
        }
        start += step;
    }
    energy
}

#[cfg(test)]
mod tests;
