use chrono::TimeZone;

use super::*;

const ARRAY: PvArray = PvArray { peak_w: 5000.0, tilt_deg: 30.0, azimuth_deg: 0.0, efficiency: 0.85 };
const SITE: Site = Site { latitude: -34.05, longitude: 18.85, array: Some(ARRAY) };

/// Solar noon at the site on 21 December 2026.
fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 21, 10, 42, 42).unwrap()
}

fn hours(from: DateTime<Utc>, count: i64, cloud: f64, shortwave: Option<f64>) -> Vec<HourForecast> {
    (0..count)
        .map(|h| HourForecast {
            at: from + TimeDelta::hours(h),
            cloud_cover_pct: cloud,
            shortwave_w_m2: shortwave,
        })
        .collect()
}

fn snapshot(cloud: f64, forecast: Vec<HourForecast>) -> WeatherSnapshot {
    let observation = ProviderAnswer { observed_at: noon(), cloud_cover_pct: cloud, forecast };
    WeatherSnapshot::new(SITE, WeatherProvider::OpenMeteo, observation, noon()).unwrap()
}

#[test]
fn a_clear_noon_gives_the_model_power_and_the_rest_of_the_day() {
    let s = snapshot(0.0, Vec::new());
    assert_eq!((s.at, s.fetched_at), (noon(), noon()));
    assert!((s.sun.elevation_deg - 79.37).abs() < 0.1, "{:?}", s.sun);
    let (elevation, azimuth) = (s.sun.elevation_deg, s.sun.azimuth_deg);
    let want = estimate::pv_power(&ARRAY, elevation, azimuth, estimate::clear_sky_ghi(elevation), noon());
    assert_eq!(s.expected_pv_w, Some(want));
    assert!((3900.0..4300.0).contains(&want), "{want}");
    // About half of the clear day's 33.3 kWh is left at solar noon.
    let left = s.expected_pv_remaining_wh.unwrap();
    assert!((15_500.0..17_500.0).contains(&left), "{left}");
}

#[test]
fn without_an_array_there_is_no_estimate_but_there_is_a_sun() {
    let config: WeatherConfig = toml::from_str("latitude = -34.05\nlongitude = 18.85").unwrap();
    let site = Site::from_config(&config);
    assert_eq!(site.array, None);
    let observation = ProviderAnswer { observed_at: noon(), cloud_cover_pct: 10.0, forecast: Vec::new() };
    let s = WeatherSnapshot::new(site, WeatherProvider::OpenMeteo, observation, noon()).unwrap();
    assert_eq!((s.expected_pv_w, s.expected_pv_remaining_wh), (None, None));
    assert!(s.sun.elevation_deg > 79.0);
}

#[test]
fn moving_a_snapshot_moves_the_sun_not_the_clouds() {
    let s = snapshot(40.0, Vec::new());
    let later = s.at_time(noon() + TimeDelta::hours(4)).unwrap();
    assert_eq!((later.fetched_at, later.cloud_cover_pct), (noon(), 40.0));
    assert!(later.sun.elevation_deg < s.sun.elevation_deg - 30.0, "{:?}", later.sun);
    assert!(later.expected_pv_w.unwrap() < s.expected_pv_w.unwrap());
    assert!(later.expected_pv_remaining_wh.unwrap() < s.expected_pv_remaining_wh.unwrap());
    let night = s.at_time(noon() + TimeDelta::hours(10)).unwrap();
    assert_eq!((night.expected_pv_w, night.expected_pv_remaining_wh), (Some(0.0), Some(0.0)));
}

#[test]
fn the_forecast_keeps_the_current_hour_and_the_next_24() {
    let midnight = Utc.with_ymd_and_hms(2026, 12, 21, 0, 0, 0).unwrap();
    let s = snapshot(0.0, hours(midnight, 48, 0.0, Some(500.0)));
    let kept: Vec<DateTime<Utc>> = s.forecast.iter().map(|h| h.at).collect();
    assert_eq!(kept.first(), Some(&Utc.with_ymd_and_hms(2026, 12, 21, 10, 0, 0).unwrap()));
    assert_eq!(kept.last(), Some(&Utc.with_ymd_and_hms(2026, 12, 22, 10, 0, 0).unwrap()));
    assert_eq!(kept.len(), 25, "10:00 today to 10:00 tomorrow, which is before 10:42 tomorrow");
}

#[test]
fn forecast_irradiance_wins_then_forecast_clouds_then_the_current_ones() {
    let midnight = Utc.with_ymd_and_hms(2026, 12, 21, 0, 0, 0).unwrap();
    let remaining = |cloud: f64, forecast| snapshot(cloud, forecast).expected_pv_remaining_wh.unwrap();
    let clear = remaining(0.0, Vec::new());
    assert_eq!(remaining(0.0, hours(midnight, 48, 0.0, Some(0.0))), 0.0, "a dark forecast is believed");
    let overcast_forecast = remaining(0.0, hours(midnight, 48, 100.0, None));
    let overcast_now = remaining(100.0, Vec::new());
    assert!((overcast_forecast - overcast_now).abs() < 1e-6, "{overcast_forecast} {overcast_now}");
    assert!(overcast_now < clear * 0.5, "{overcast_now} {clear}");
    // The current cloud cover fills the hours the forecast does not reach.
    let partial = remaining(100.0, hours(midnight, 13, 0.0, None));
    assert!(overcast_now < partial && partial < clear, "{partial}");
    // Cloud cover alone still leaves the "now" figure on the current observation.
    let s = snapshot(0.0, hours(midnight, 48, 100.0, None));
    assert_eq!(s.expected_pv_w, snapshot(0.0, Vec::new()).expected_pv_w);
}

#[test]
fn clouds_are_read_at_the_hour_before_and_irradiance_at_the_hour_after() {
    let ten = Utc.with_ymd_and_hms(2026, 12, 21, 10, 0, 0).unwrap();
    let forecast = vec![
        HourForecast { at: ten, cloud_cover_pct: 10.0, shortwave_w_m2: Some(600.0) },
        HourForecast { at: ten + TimeDelta::hours(1), cloud_cover_pct: 20.0, shortwave_w_m2: Some(700.0) },
    ];
    let at = |minutes| ten + TimeDelta::minutes(minutes);
    assert_eq!(cloud_at(&forecast, at(0)), Some(10.0));
    assert_eq!(cloud_at(&forecast, at(59)), Some(10.0));
    assert_eq!(cloud_at(&forecast, at(60)), Some(20.0));
    assert_eq!(cloud_at(&forecast, at(120)), None);
    assert_eq!(shortwave_at(&forecast, at(0)).map(|(_, w)| w), Some(600.0), "the mean of 09:00–10:00");
    assert_eq!(shortwave_at(&forecast, at(1)).map(|(_, w)| w), Some(700.0));
    assert_eq!(shortwave_at(&forecast, at(60)).map(|(_, w)| w), Some(700.0));
    assert_eq!(shortwave_at(&forecast, at(61)), None);
}

#[test]
fn hourly_means_near_sunset_are_shaped_by_the_sun_not_read_as_a_beam_from_the_horizon() {
    // A west-facing array and a forecast whose hourly means are the clear sky's own: the
    // estimate from the forecast must match the clear-sky estimate, also in the last hour,
    // where a mean paired with the sun of one instant used to give ~0.8 kWh instead of ~0.05.
    let west = PvArray { azimuth_deg: 270.0, ..ARRAY };
    let site = Site { array: Some(west), ..SITE };
    let start = Utc.with_ymd_and_hms(2026, 12, 21, 0, 0, 0).unwrap();
    let forecast: Vec<HourForecast> = (1..=24)
        .map(|h| {
            let end = start + TimeDelta::hours(h);
            HourForecast {
                at: end,
                cloud_cover_pct: 0.0,
                shortwave_w_m2: Some(clear_sky_mean(SITE.latitude, SITE.longitude, end)),
            }
        })
        .collect();
    let sunset = SunPosition::at(SITE.latitude, SITE.longitude, noon()).unwrap().sunset.unwrap();
    for before in [300, 120, 50, 20] {
        let at = sunset - TimeDelta::minutes(before);
        let with = |forecast: Vec<HourForecast>| {
            let observation = ProviderAnswer { observed_at: at, cloud_cover_pct: 0.0, forecast };
            let s = WeatherSnapshot::new(site, WeatherProvider::OpenMeteo, observation, at).unwrap();
            (s.expected_pv_remaining_wh.unwrap(), s.expected_pv_w.unwrap())
        };
        let (from_forecast, _) = with(forecast.clone());
        let (clear, _) = with(Vec::new());
        let tolerance = 0.10 * clear + 20.0;
        assert!(
            (from_forecast - clear).abs() <= tolerance,
            "{before} min before sunset: {from_forecast:.0} Wh from the forecast, {clear:.0} Wh clear"
        );
    }
}

#[test]
fn no_beam_from_the_horizon() {
    // 2° up, a GHI a mean could bring: all of it is diffuse, so a panel facing the sun gets no
    // more than the sky gives.
    let west = PvArray { azimuth_deg: 270.0, tilt_deg: 30.0, ..ARRAY };
    let poa = estimate::plane_of_array(150.0, 2.0, 245.0, &west, 355);
    assert!(poa <= 150.0, "{poa}");
}
