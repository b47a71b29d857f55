//! Figures computed by hand (and checked with an independent script using NOAA's simpler sun
//! formulas), not read back from the code under test.

use chrono::TimeZone;

use super::*;

/// 5 kWp facing north at 30°, as on a Stellenbosch roof.
const ARRAY: PvArray = PvArray { peak_w: 5000.0, tilt_deg: 30.0, azimuth_deg: 0.0, efficiency: 0.85 };
const SITE: (f64, f64) = (-34.05, 18.85);

fn close(got: f64, want: f64, tolerance: f64) {
    assert!((got - want).abs() <= tolerance, "got {got}, want {want} ± {tolerance}");
}

#[test]
fn haurwitz_clear_sky_irradiance() {
    // 1098 · 1 · e^−0.057 and 1098 · 0.5 · e^−0.114.
    close(clear_sky_ghi(90.0), 1037.164, 0.001);
    close(clear_sky_ghi(30.0), 489.850, 0.001);
    assert_eq!(clear_sky_ghi(0.0), 0.0);
    assert_eq!(clear_sky_ghi(-12.0), 0.0, "nothing at night");
}

#[test]
fn kasten_czeplak_cloud_attenuation() {
    assert_eq!(cloud_factor(0.0), 1.0);
    assert_eq!(cloud_factor(100.0), 0.25);
    close(cloud_factor(50.0), 1.0 - 0.75 * 0.5f64.powf(3.4), 1e-12);
    close(cloud_factor(50.0), 0.92895, 0.00001);
    assert_eq!(cloud_factor(120.0), 0.25, "out-of-range answers are clamped");
}

#[test]
fn erbs_diffuse_fraction_and_the_sun_earth_distance() {
    close(diffuse_fraction(0.1), 0.991, 1e-9);
    close(diffuse_fraction(0.5), 0.65915, 1e-5);
    assert_eq!(diffuse_fraction(0.9), 0.165);
    close(diffuse_fraction(0.22), diffuse_fraction(0.2201), 0.001);
    // 1361 · (1 + 0.033 · cos(2π · 355 / 365)): the Earth is nearest the sun in early January.
    close(extraterrestrial(355), 1405.249, 0.001);
    close(extraterrestrial(182), 1316.089, 0.001);
}

#[test]
fn a_flat_array_sees_the_ground_irradiance() {
    let flat = PvArray { tilt_deg: 0.0, ..ARRAY };
    for (ghi, elevation) in [(800.0, 60.0), (300.0, 20.0), (50.0, 3.0)] {
        close(plane_of_array(ghi, elevation, 123.0, &flat, 100), ghi, 1e-9);
    }
}

#[test]
fn an_array_facing_the_sun_gets_beam_diffuse_and_ground_light() {
    // Sun at 60° due north on 21 December; array tilted 30° to the north, so square to it.
    // GHI 890.33, kt = 890.33 / (1405.25 · 0.866) = 0.7316, diffuse share 0.2013,
    // beam normal 821.1, diffuse on the plane 179.2 · 0.933, ground 0.2 · 890.3 · 0.067.
    let ghi = clear_sky_ghi(60.0);
    close(ghi, 890.325, 0.001);
    close(plane_of_array(ghi, 60.0, 0.0, &ARRAY, 355), 1000.256, 0.001);
    let facing_away = PvArray { azimuth_deg: 180.0, ..ARRAY };
    close(plane_of_array(ghi, 60.0, 0.0, &facing_away, 355), 589.700, 0.001);
    // Half cloud: 827.07 on the ground, more of it diffuse.
    close(plane_of_array(ghi * cloud_factor(50.0), 60.0, 0.0, &ARRAY, 355), 915.158, 0.001);
    let at = Utc.with_ymd_and_hms(2026, 12, 21, 10, 0, 0).unwrap();
    close(pv_power(&ARRAY, 60.0, 0.0, ghi, at), 4251.086, 0.001);
}

#[test]
fn the_beam_is_capped_near_the_horizon() {
    // A provider's hourly mean can be far above what the low sun allows at one instant.
    let poa = plane_of_array(400.0, 0.5, 0.0, &PvArray { tilt_deg: 90.0, ..ARRAY }, 1);
    assert!(poa <= extraterrestrial(1) + 400.0, "{poa}");
}

/// Power at 0 %, 5 %, … 100 % cloud with the sun at `elevation`, `azimuth`.
fn by_cloud(elevation: f64, azimuth: f64) -> Vec<f64> {
    let at = Utc.with_ymd_and_hms(2026, 12, 21, 10, 0, 0).unwrap();
    let power =
        |cloud: f64| pv_power(&ARRAY, elevation, azimuth, clear_sky_ghi(elevation) * cloud_factor(cloud), at);
    (0..=20).map(|i| power(f64::from(i) * 5.0)).collect()
}

#[test]
fn more_cloud_never_means_more_power_while_the_sun_shines_on_the_array() {
    for (elevation, azimuth) in [(75.0, 10.0), (30.0, 100.0), (8.0, 300.0), (3.0, 60.0)] {
        let powers = by_cloud(elevation, azimuth);
        assert!(powers.windows(2).all(|w| w[1] <= w[0] + 1e-9), "{powers:?}");
        assert!(powers[20] < powers[0] * 0.5, "overcast is well under clear: {powers:?}");
    }
}

#[test]
fn an_array_with_the_sun_behind_it_gains_a_little_under_thin_cloud() {
    // Low sun in the west-south-west behind a north-facing array: no beam reaches it, and thin
    // cloud turns some beam into diffuse light it does see (Erbs + isotropic sky). Real, and
    // small: at most 6 %, against a 60 % loss under full overcast.
    let powers = by_cloud(8.0, 250.0);
    let most = powers.iter().copied().fold(0.0, f64::max);
    assert!(most > powers[0] && most < powers[0] * 1.06, "{powers:?}");
    assert!(powers[20] < powers[0] * 0.45, "{powers:?}");
}

#[test]
fn a_clear_december_day_gives_33_kwh_from_5_kwp() {
    // The independent script's day total with 1-minute steps: 33,343 Wh.
    let clear = |_: DateTime<Utc>, elevation: f64| clear_sky_ghi(elevation);
    let midnight = Utc.with_ymd_and_hms(2026, 12, 20, 22, 44, 36).unwrap();
    let day = remaining_energy_wh(&ARRAY, SITE, midnight, clear);
    close(day, 33_343.0, 33_343.0 * 0.002);
    let morning = remaining_energy_wh(&ARRAY, SITE, midnight + TimeDelta::hours(8), clear);
    let afternoon = remaining_energy_wh(&ARRAY, SITE, midnight + TimeDelta::hours(14), clear);
    assert!(day > morning && morning > afternoon && afternoon > 0.0, "{day} {morning} {afternoon}");
    let night = remaining_energy_wh(&ARRAY, SITE, midnight + TimeDelta::hours(21), clear);
    assert_eq!(night, 0.0, "after sunset nothing is left");
    let dark = remaining_energy_wh(&ARRAY, SITE, midnight, |_, _| 0.0);
    assert_eq!(dark, 0.0);
}
