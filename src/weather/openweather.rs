//! OpenWeather's current weather (API 2.5, the free plan): cloud cover now, no forecast. The key
//! travels in the query string as `appid`, so the URL is a secret (see `client.rs`).
//!
//! ```text
//! GET /data/2.5/weather?lat=-34.05&lon=18.85&appid=<key>
//! {"coord": {"lon": 18.85, "lat": -34.05}, "weather": [{"id": 803, "main": "Clouds", …}],
//!  "main": {"temp": 295.1, …}, "clouds": {"all": 75}, "dt": 1795773600, "cod": 200, …}
//! ```

use chrono::DateTime;
use reqwest::Url;
use serde::Deserialize;

use super::open_meteo::percent;
use super::snapshot::{ProviderAnswer, Site};

#[derive(Deserialize)]
struct Answer {
    clouds: Clouds,
    dt: i64,
}

#[derive(Deserialize)]
struct Clouds {
    all: f64,
}

/// The request URL under `base` for `site` with `key`.
pub(super) fn url(base: &str, site: &Site, key: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(&format!("{}/data/2.5/weather", base.trim_end_matches('/'))).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("lat", &site.latitude.to_string())
        .append_pair("lon", &site.longitude.to_string())
        .append_pair("appid", key);
    Ok(url)
}

/// The observation in `body`.
///
/// # Errors
/// What is missing or wrong, for [`super::WeatherError::Malformed`].
pub(super) fn parse(body: &[u8]) -> Result<ProviderAnswer, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let observed_at =
        DateTime::from_timestamp(answer.dt, 0).ok_or(format!("dt = {} is not a time", answer.dt))?;
    Ok(ProviderAnswer {
        observed_at,
        cloud_cover_pct: percent(answer.clouds.all, "clouds.all")?,
        forecast: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    const ANSWER: &str = r#"{"coord":{"lon":18.85,"lat":-34.05},
        "weather":[{"id":803,"main":"Clouds","description":"broken clouds","icon":"04d"}],
        "base":"stations","main":{"temp":295.1,"pressure":1015,"humidity":60},"visibility":10000,
        "wind":{"speed":5.1,"deg":150},"clouds":{"all":75},"dt":1795773600,
        "sys":{"country":"ZA","sunrise":1795748000,"sunset":1795799000},"timezone":7200,
        "id":3361025,"name":"Stellenbosch","cod":200}"#;

    #[test]
    fn current_clouds_and_their_time() {
        let o = parse(ANSWER.as_bytes()).unwrap();
        assert_eq!(o.cloud_cover_pct, 75.0);
        assert_eq!(o.observed_at, Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap());
        assert!(o.forecast.is_empty());
        assert!(parse(br#"{"dt":1795773600}"#).unwrap_err().contains("missing field `clouds`"));
        assert!(parse(ANSWER.replace("75", "-1").as_bytes()).unwrap_err().contains("clouds.all = -1"));
    }

    #[test]
    fn the_key_goes_in_appid() {
        let site = Site { latitude: -34.05, longitude: 18.85, array: None };
        let url = url("https://api.openweathermap.org", &site, "abc123").unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.openweathermap.org/data/2.5/weather?lat=-34.05&lon=18.85&appid=abc123"
        );
    }
}
