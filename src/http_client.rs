//! The one way the service builds HTTP clients (InfluxDB, health checks, weather): reqwest on
//! rustls with ring, so there is one TLS stack and no OpenSSL; and error text for logs.

use std::time::Duration;

/// How much of an error body goes into a log line.
const MAX_EXCERPT: usize = 300;

/// The longest wait for a TCP connect, whatever the request timeout: a host that does not
/// answer a SYN in 5 s is down, and waiting longer only delays the retry.
const MAX_CONNECT: Duration = Duration::from_secs(5);

/// A client whose requests give up after `timeout`.
///
/// # Errors
/// The TLS stack cannot be set up.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider (no OpenSSL, one rustls): pick ring.
    // Another part of the service may have installed it first, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(MAX_CONNECT)).build()
}

/// An error with its causes, `: `-separated (reqwest's own message leaves them out).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of an answer's body, on one line, for an error message.
pub fn excerpt(body: &str) -> String {
    let one_line = body.trim().replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(MAX_EXCERPT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        let long = format!("line one\nline two {}", "x".repeat(1000));
        let text = excerpt(&long);
        assert!(text.starts_with("line one line two x"));
        assert_eq!(text.chars().count(), MAX_EXCERPT + 1);
        assert_eq!(excerpt(" short \n"), "short");
    }

    #[test]
    fn the_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("request failed")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(error_chain(&Outer(std::io::Error::other("refused"))), "request failed: refused");
    }
}
