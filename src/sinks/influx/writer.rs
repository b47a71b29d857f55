//! One write request and what its answer means. The HTTP call is thin; [`classify`] is the
//! table of answers (ecosystem.md §1.2), pure so it is tested without a server:
//!
//! | answer | verdict | the drain then |
//! |---|---|---|
//! | 2xx | [`WriteOutcome::Written`] | commits the batch |
//! | 400, 422 | [`WriteOutcome::BadData`] | drops the batch, counted: sending it again cannot help |
//! | 401, 403 | [`WriteOutcome::Unauthorized`] | keeps it, backs off, says so loudly |
//! | 413 | [`WriteOutcome::TooLarge`] | halves the batch |
//! | 429, 503 | [`WriteOutcome::Busy`] | waits as long as `Retry-After` says |
//! | other, no answer | [`WriteOutcome::Failed`] | keeps it, backs off 1 s → 60 s |

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use super::endpoint::{Auth, Endpoint};
use crate::http_client::{error_chain, excerpt};

/// The longest `Retry-After` honoured: a broken header must not stall the sink for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What a write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// The database has the points.
    Written,
    /// The database refused the points for good (bad line protocol, field type conflict,
    /// outside the retention period).
    BadData(String),
    /// The credentials were refused.
    Unauthorized(String),
    /// The request body was too large.
    TooLarge,
    /// The database is overloaded; wait this long (or our own backoff when not said).
    Busy(Option<Duration>),
    /// No answer, or an answer that may change on retry (5xx, 404 database not found yet).
    Failed(String),
}

/// The HTTP client bound to one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    client: reqwest::Client,
    endpoint: Endpoint,
}

impl Writer {
    /// A writer to `endpoint` whose requests give up after `timeout`.
    ///
    /// # Errors
    /// The TLS stack cannot be set up.
    pub(crate) fn new(endpoint: Endpoint, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self { client: crate::http_client::client(timeout)?, endpoint })
    }

    /// Where writes go (for logs; it holds no credentials).
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.endpoint.url
    }

    /// Sends `body` (lines separated by newlines) and judges the answer.
    pub(crate) async fn write(&self, body: Vec<u8>) -> WriteOutcome {
        let request = self
            .client
            .post(self.endpoint.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body);
        let request = match &self.endpoint.auth {
            Auth::None => request,
            Auth::Token(value) => request.header(AUTHORIZATION, value.clone()),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after =
                    response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(String::from);
                let body = response.text().await.unwrap_or_default();
                classify(status, retry_after.as_deref(), &body, Utc::now())
            }
            Err(e) => WriteOutcome::Failed(error_chain(&e)),
        }
    }
}

/// The verdict on an answer with `status`, its `Retry-After` header and `body`, received `now`.
pub(crate) fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> WriteOutcome {
    let reason = || format!("HTTP {status}: {}", excerpt(body));
    match status {
        200..=299 => WriteOutcome::Written,
        400 | 422 => WriteOutcome::BadData(reason()),
        401 | 403 => WriteOutcome::Unauthorized(reason()),
        413 => WriteOutcome::TooLarge,
        429 | 503 => WriteOutcome::Busy(retry_after.and_then(|v| parse_retry_after(v, now))),
        _ => WriteOutcome::Failed(reason()),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
    }

    #[test]
    fn every_answer_has_its_verdict() {
        let judge = |status| classify(status, None, "{\"error\":\"x\"}", now());
        assert_eq!(judge(204), WriteOutcome::Written);
        assert_eq!(judge(200), WriteOutcome::Written);
        assert_eq!(judge(400), WriteOutcome::BadData("HTTP 400: {\"error\":\"x\"}".into()));
        assert!(matches!(judge(422), WriteOutcome::BadData(_)));
        assert!(matches!(judge(401), WriteOutcome::Unauthorized(_)));
        assert!(matches!(judge(403), WriteOutcome::Unauthorized(_)));
        assert_eq!(judge(413), WriteOutcome::TooLarge);
        assert_eq!(judge(429), WriteOutcome::Busy(None));
        assert_eq!(judge(503), WriteOutcome::Busy(None));
        assert!(matches!(judge(500), WriteOutcome::Failed(_)));
        assert!(matches!(judge(404), WriteOutcome::Failed(_)), "database not created yet: keep the points");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_is_capped() {
        assert_eq!(classify(429, Some("7"), "", now()), WriteOutcome::Busy(Some(Duration::from_secs(7))));
        let date = "Fri, 27 Nov 2026 10:00:30 GMT";
        assert_eq!(classify(503, Some(date), "", now()), WriteOutcome::Busy(Some(Duration::from_secs(30))));
        assert_eq!(parse_retry_after("Fri, 27 Nov 2026 09:00:00 GMT", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn error_bodies_are_shortened_to_one_line() {
        let long = format!("line one\nline two {}", "x".repeat(1000));
        let WriteOutcome::Failed(reason) = classify(500, None, &long, now()) else { panic!() };
        assert!(reason.starts_with("HTTP 500: line one line two x"));
        assert!(reason.chars().count() < 320);
    }
}
