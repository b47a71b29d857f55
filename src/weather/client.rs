//! One fetch from the configured provider, and what its failure was. The HTTP call is thin;
//! the providers' files build the URL and read the answer.
//!
//! OpenWeather's key travels in the query string, and reqwest puts the URL in its errors, so:
//! errors are built from reqwest's message *without* the URL, the URL they name is one built
//! with `[redacted]` in the key's place, and any text from the network (an error body that
//! echoes the request, say) has the key cut out before it goes anywhere.

use std::time::Duration;

use reqwest::Url;

use super::error::WeatherError;
use super::snapshot::{ProviderAnswer, Site};
use super::{open_meteo, openweather};
use crate::config::{Secret, WeatherConfig, WeatherProvider};
use crate::http_client::{error_chain, excerpt};

/// What stands in for the key in URLs and texts that may be shown.
const REDACTED: &str = "[redacted]";

/// A client for the configured provider and site; its `Debug` shows the redacted URL only.
#[derive(Clone)]
pub struct WeatherClient {
    http: reqwest::Client,
    provider: WeatherProvider,
    /// The request URL, key included: never shown.
    request: Url,
    /// The same URL with the key redacted: for logs and errors.
    shown: String,
    /// The key as sent, raw and percent-encoded, for cutting out of texts.
    key: Option<(Secret, Secret)>,
    timeout: Duration,
}

impl std::fmt::Debug for WeatherClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeatherClient").field("url", &self.shown).field("timeout", &self.timeout).finish()
    }
}

impl WeatherClient {
    /// A client for `config`, reading the key file now.
    ///
    /// # Errors
    /// [`WeatherError::Setup`]: an unreadable key file, a missing OpenWeather key, a bad URL or
    /// an HTTP client that cannot be built.
    pub fn new(config: &WeatherConfig) -> Result<Self, WeatherError> {
        let key = config.api_key().map_err(|e| WeatherError::Setup(format!("reading api_key_file: {e}")))?;
        let key = key.filter(|k| !k.expose().is_empty());
        let site = Site::from_config(config);
        let build = |key: Option<&str>| -> Result<Url, WeatherError> {
            let base = config.base_url();
            match config.provider {
                WeatherProvider::OpenMeteo => open_meteo::url(base, &site, key),
                WeatherProvider::OpenWeather => {
                    let key = key.ok_or_else(|| "provider = \"openweather\" needs api_key".to_string());
                    key.and_then(|key| openweather::url(base, &site, key))
                }
            }
            .map_err(|e| WeatherError::Setup(format!("url `{base}`: {e}")))
        };
        let request = build(key.as_ref().map(Secret::expose))?;
        let shown = build(key.as_ref().map(|_| REDACTED))?.to_string();
        let key = key.map(|k| {
            let encoded = Secret::new(percent_encoded(k.expose()));
            (k, encoded)
        });
        let http = crate::http_client::client(config.timeout)
            .map_err(|e| WeatherError::Setup(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self { http, provider: config.provider, request, shown, key, timeout: config.timeout })
    }

    /// The request URL with the key redacted.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Asks the provider once.
    ///
    /// # Errors
    /// [`WeatherError`] of the kind the failure was; its text holds no key.
    pub async fn fetch(&self) -> Result<ProviderAnswer, WeatherError> {
        let response = self.http.get(self.request.clone()).send().await.map_err(|e| self.failed(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.failed(e))?;
        if !status.is_success() {
            // Redacted before it is cut: a cut inside the key would leave its first part.
            let body = excerpt(&self.redact(&String::from_utf8_lossy(&body)));
            return Err(WeatherError::Status { url: self.shown.clone(), status: status.as_u16(), body });
        }
        let observation = match self.provider {
            WeatherProvider::OpenMeteo => open_meteo::parse(&body),
            WeatherProvider::OpenWeather => openweather::parse(&body),
        };
        observation.map_err(|reason| WeatherError::Malformed {
            url: self.shown.clone(),
            reason: self.redact(&reason),
        })
    }

    /// The error for a request that got no (whole) answer.
    fn failed(&self, error: reqwest::Error) -> WeatherError {
        let url = self.shown.clone();
        if error.is_timeout() {
            return WeatherError::Timeout { url, timeout: self.timeout };
        }
        WeatherError::Unreachable { url, reason: self.redact(&error_chain(&error.without_url())) }
    }

    /// `text` with the key, raw or percent-encoded, replaced by `[redacted]`.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some((raw, encoded)) => text.replace(raw.expose(), REDACTED).replace(encoded.expose(), REDACTED),
            None => text.to_string(),
        }
    }
}

/// `text` as it appears in a query string (`+` → `%2B`, space → `+`).
fn percent_encoded(text: &str) -> String {
    let Ok(mut url) = Url::parse("http://x/") else { return text.to_string() };
    url.query_pairs_mut().append_pair("k", text);
    url.query().unwrap_or_default().trim_start_matches("k=").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(toml: &str) -> WeatherClient {
        WeatherClient::new(&toml::from_str(toml).unwrap()).unwrap()
    }

    #[test]
    fn the_shown_url_has_no_key() {
        let c = client("provider = \"openweather\"\nlatitude = 1\nlongitude = 2\napi_key = \"s3cr+t/key\"");
        assert_eq!(
            c.url(),
            "https://api.openweathermap.org/data/2.5/weather?lat=1&lon=2&appid=%5Bredacted%5D"
        );
        assert!(c.request.as_str().ends_with("appid=s3cr%2Bt%2Fkey"), "{}", c.request);
        assert_eq!(
            c.redact("GET /weather?appid=s3cr%2Bt%2Fkey said s3cr+t/key"),
            "GET /weather?appid=[redacted] said [redacted]"
        );
        assert!(!format!("{c:?}").contains("s3cr"), "{c:?}");
    }

    #[test]
    fn open_meteo_needs_no_key_and_a_missing_openweather_key_is_a_setup_error() {
        let c = client("latitude = 1\nlongitude = 2\nurl = \"http://127.0.0.1:1/\"");
        assert!(c.url().starts_with("http://127.0.0.1:1/v1/forecast?latitude=1&longitude=2&"), "{}", c.url());
        let config = toml::from_str("provider = \"openweather\"\nlatitude = 1\nlongitude = 2").unwrap();
        let error = WeatherClient::new(&config).unwrap_err();
        assert!(error.to_string().contains("needs api_key"), "{error}");
        assert_eq!(error.kind(), None);
    }
}
