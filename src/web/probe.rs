//! The client side of `/healthz`, for `inverter-monitor healthcheck`: Docker's HEALTHCHECK runs
//! it inside images that have no shell and no curl.
//!
//! Not the `[healthcheck]` pings to an outside watcher: those are `sinks::pings`.

use std::time::Duration;

/// Why the service is not healthy, as far as the probe can tell.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing answered in time: the service is down, starting, or stuck.
    #[error("{url}: no answer: {cause}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why, from the HTTP client.
        cause: String,
    },
    /// The service answered and says it is not healthy.
    #[error("{url}: HTTP {status}: {body}")]
    Unhealthy {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The verdict's explanation.
        body: String,
    },
}

/// GETs `url` and returns the body of a 2xx answer.
///
/// # Errors
/// [`ProbeError`]: no answer within `timeout`, or a non-2xx status.
pub async fn probe(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let unreachable = |e: reqwest::Error| ProbeError::Unreachable { url: url.into(), cause: e.to_string() };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(timeout).build().map_err(unreachable)?;
    let response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(ProbeError::Unhealthy { url: url.into(), status: status.as_u16(), body })
    }
}
