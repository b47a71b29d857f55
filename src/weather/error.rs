//! Why the weather could not be had. Every URL in here is the redacted one, and every text
//! from the network has had the API key cut out, so an error can be logged as it is.

use std::time::Duration;

/// A weather failure; fetch failures carry the (redacted) URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WeatherError {
    /// The task cannot start: a key file, the URL or the HTTP client.
    #[error("weather: {0}")]
    Setup(String),
    /// No connection, or it broke.
    #[error("weather: {url}: unreachable: {reason}")]
    Unreachable {
        /// The URL, key redacted.
        url: String,
        /// What the network said.
        reason: String,
    },
    /// No whole answer within the configured timeout.
    #[error("weather: {url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL, key redacted.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// An answer other than 2xx (401: a wrong key; 429: too many calls).
    #[error("weather: {url}: HTTP {status}: {body}")]
    Status {
        /// The URL, key redacted.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body, on one line.
        body: String,
    },
    /// A 2xx answer that is not what the provider's API describes.
    #[error("weather: {url}: malformed answer: {reason}")]
    Malformed {
        /// The URL, key redacted.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// The kinds of failed fetch, as counted and labelled in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// See [`WeatherError::Unreachable`].
    Unreachable,
    /// See [`WeatherError::Timeout`].
    Timeout,
    /// See [`WeatherError::Status`].
    HttpStatus,
    /// See [`WeatherError::Malformed`].
    Malformed,
}

impl FailureKind {
    /// Every kind, in metric order.
    pub const ALL: [Self; 4] = [Self::Unreachable, Self::Timeout, Self::HttpStatus, Self::Malformed];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::HttpStatus => "http_status",
            Self::Malformed => "malformed",
        }
    }
}

impl WeatherError {
    /// The kind of a failed fetch; `None` for [`WeatherError::Setup`].
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Setup(_) => None,
            Self::Unreachable { .. } => Some(FailureKind::Unreachable),
            Self::Timeout { .. } => Some(FailureKind::Timeout),
            Self::Status { .. } => Some(FailureKind::HttpStatus),
            Self::Malformed { .. } => Some(FailureKind::Malformed),
        }
    }
}
