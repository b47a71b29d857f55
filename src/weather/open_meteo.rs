//! Open-Meteo's forecast API: current cloud cover and the hourly cloud cover and shortwave
//! radiation for today and tomorrow, all in UTC. No key (a key for its paid plans goes in
//! `apikey`). Shape as answered by `api.open-meteo.com` (docs: open-meteo.com/en/docs):
//!
//! ```text
//! GET /v1/forecast?latitude=-34.05&longitude=18.85&current=cloud_cover
//!     &hourly=cloud_cover,shortwave_radiation&forecast_days=2&timezone=UTC
//! {"latitude": -34.0, "longitude": 18.875, "utc_offset_seconds": 0, "timezone": "GMT", …,
//!  "current": {"time": "2026-11-27T10:00", "interval": 900, "cloud_cover": 42},
//!  "hourly": {"time": ["2026-11-27T00:00", …], "cloud_cover": [12, …],
//!             "shortwave_radiation": [0.0, …]}}
//! ```
//!
//! Times are local to `timezone` and have no offset, hence `timezone=UTC`. Shortwave radiation
//! is global horizontal irradiance, the mean of the hour before its stamp. A `null` (a model
//! gap) drops that hour; a missing field or an impossible value makes the answer malformed.

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::Url;
use serde::Deserialize;

use super::snapshot::{HourForecast, ProviderAnswer, Site};

#[derive(Deserialize)]
struct Answer {
    current: Current,
    hourly: Hourly,
}

#[derive(Deserialize)]
struct Current {
    time: String,
    /// `null` in a model gap: the forecast hour stands in.
    cloud_cover: Option<f64>,
}

#[derive(Deserialize)]
struct Hourly {
    time: Vec<String>,
    cloud_cover: Vec<Option<f64>>,
    shortwave_radiation: Vec<Option<f64>>,
}

/// The request URL under `base` for `site`, with `key` for the paid plans.
pub(super) fn url(base: &str, site: &Site, key: Option<&str>) -> Result<Url, String> {
    let mut url =
        Url::parse(&format!("{}/v1/forecast", base.trim_end_matches('/'))).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("latitude", &site.latitude.to_string())
        .append_pair("longitude", &site.longitude.to_string())
        .append_pair("current", "cloud_cover")
        .append_pair("hourly", "cloud_cover,shortwave_radiation")
        .append_pair("forecast_days", "2")
        .append_pair("timezone", "UTC");
    if let Some(key) = key {
        url.query_pairs_mut().append_pair("apikey", key);
    }
    Ok(url)
}

/// The observation in `body`.
///
/// # Errors
/// What is missing or wrong, for [`super::WeatherError::Malformed`].
pub(super) fn parse(body: &[u8]) -> Result<ProviderAnswer, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let hourly = &answer.hourly;
    let count = hourly.time.len();
    if hourly.cloud_cover.len() != count || hourly.shortwave_radiation.len() != count {
        return Err(format!(
            "hourly lists differ in length: {count} times, {} cloud_cover, {} shortwave_radiation",
            hourly.cloud_cover.len(),
            hourly.shortwave_radiation.len()
        ));
    }
    let mut forecast = Vec::with_capacity(count);
    for (i, time) in hourly.time.iter().enumerate() {
        let Some(cloud) = hourly.cloud_cover[i] else { continue };
        let shortwave = hourly.shortwave_radiation[i].map(|w| irradiance(w, i)).transpose()?;
        let cloud_cover_pct = percent(cloud, &format!("hourly.cloud_cover[{i}]"))?;
        forecast.push(HourForecast { at: utc(time)?, cloud_cover_pct, shortwave_w_m2: shortwave });
    }
    let observed_at = utc(&answer.current.time)?;
    let cloud_cover_pct = match answer.current.cloud_cover {
        Some(cloud) => percent(cloud, "current.cloud_cover")?,
        None => forecast
            .iter()
            .rev()
            .find(|h| h.at <= observed_at)
            .filter(|h| observed_at - h.at < chrono::TimeDelta::hours(1))
            .map(|h| h.cloud_cover_pct)
            .ok_or("current.cloud_cover is null and no forecast hour covers it")?,
    };
    Ok(ProviderAnswer { observed_at, cloud_cover_pct, forecast })
}

/// `2026-11-27T10:00` in UTC.
fn utc(time: &str) -> Result<DateTime<Utc>, String> {
    NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M")
        .map(|t| t.and_utc())
        .map_err(|e| format!("time `{time}`: {e}"))
}

/// A cloud cover, which must be 0–100 %.
pub(super) fn percent(value: f64, what: &str) -> Result<f64, String> {
    if (0.0..=100.0).contains(&value) { Ok(value) } else { Err(format!("{what} = {value} is not 0–100 %")) }
}

/// An irradiance, which must be 0–1500 W/m² (the solar constant is 1361).
fn irradiance(value: f64, i: usize) -> Result<f64, String> {
    if (0.0..=1500.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("hourly.shortwave_radiation[{i}] = {value} is not 0–1500 W/m²"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A real answer's shape, cut to three hours.
    const ANSWER: &str = r#"{"latitude":-34.0,"longitude":18.875,"generationtime_ms":0.06,
        "utc_offset_seconds":0,"timezone":"GMT","timezone_abbreviation":"GMT","elevation":112.0,
        "current_units":{"time":"iso8601","interval":"seconds","cloud_cover":"%"},
        "current":{"time":"2026-11-27T10:00","interval":900,"cloud_cover":42},
        "hourly_units":{"time":"iso8601","cloud_cover":"%","shortwave_radiation":"W/m²"},
        "hourly":{"time":["2026-11-27T00:00","2026-11-27T01:00","2026-11-27T02:00"],
                  "cloud_cover":[12,null,100],"shortwave_radiation":[0.0,0.0,null]}}"#;

    #[test]
    fn the_request_asks_for_what_the_estimate_needs() {
        let site = Site { latitude: -34.05, longitude: 18.85, array: None };
        let url = url("https://api.open-meteo.com/", &site, None).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.open-meteo.com/v1/forecast?latitude=-34.05&longitude=18.85&current=cloud_cover\
             &hourly=cloud_cover%2Cshortwave_radiation&forecast_days=2&timezone=UTC"
        );
        let paid = super::url("http://meteo.local:8080", &site, Some("k&y")).unwrap();
        assert!(paid.as_str().starts_with("http://meteo.local:8080/v1/forecast?"));
        assert!(paid.as_str().ends_with("&apikey=k%26y"));
    }

    #[test]
    fn an_answer_becomes_an_observation_and_null_hours_are_skipped() {
        let o = parse(ANSWER.as_bytes()).unwrap();
        assert_eq!(o.observed_at, Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap());
        assert_eq!(o.cloud_cover_pct, 42.0);
        let hours: Vec<(u32, f64, Option<f64>)> = o
            .forecast
            .iter()
            .map(|h| (chrono::Timelike::hour(&h.at), h.cloud_cover_pct, h.shortwave_w_m2))
            .collect();
        assert_eq!(hours, [(0, 12.0, Some(0.0)), (2, 100.0, None)]);
    }

    #[test]
    fn malformed_answers_say_what_is_wrong() {
        let reason = |body: &str| parse(body.as_bytes()).unwrap_err();
        assert!(reason("<html>busy</html>").contains("expected value"));
        assert!(
            reason(&ANSWER.replace("\"cloud_cover\":42", "\"cloud_cover\":142"))
                .contains("current.cloud_cover = 142")
        );
        assert!(reason(&ANSWER.replace("[12,null,100]", "[12,null]")).contains("differ in length"));
        assert!(reason(&ANSWER.replace("2026-11-27T02:00", "tomorrow")).contains("time `tomorrow`"));
        assert!(
            reason(&ANSWER.replace("[0.0,0.0,null]", "[-5,0.0,null]")).contains("shortwave_radiation[0]")
        );
        assert!(reason(&ANSWER.replace("\"current\":", "\"now\":")).contains("missing field `current`"));
        assert!(reason(&ANSWER.replace("\"cloud_cover\":42", "\"cloud_cover\":null")).contains("is null"));
    }

    #[test]
    fn a_null_current_cloud_cover_takes_the_forecast_hour() {
        let answer = ANSWER
            .replace("\"time\":\"2026-11-27T10:00\"", "\"time\":\"2026-11-27T02:15\"")
            .replace("\"cloud_cover\":42", "\"cloud_cover\":null");
        let o = parse(answer.as_bytes()).unwrap();
        assert_eq!(o.cloud_cover_pct, 100.0, "the hour from 02:00");
    }
}
