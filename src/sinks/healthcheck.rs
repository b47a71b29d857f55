//! Healthchecks.io-style pings: a GET of `ping_url` after good polls, at most every
//! `min_interval`, and of `ping_url/fail` when a poll fails. A change between good and failed is
//! pinged at once, so the dashboard turns red or green with the first poll that says so.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::HealthcheckConfig;
use crate::poller::Update;

/// Whether to ping now, and which URL: a state machine told each outcome and the time.
#[derive(Debug, Clone)]
pub struct Pinger {
    url: String,
    min_interval: Duration,
    last: Option<(Instant, bool)>,
}

impl Pinger {
    /// Pings `url`, at most every `min_interval` while nothing changes.
    pub fn new(config: &HealthcheckConfig) -> Self {
        Self {
            url: config.ping_url.trim_end_matches('/').to_string(),
            min_interval: config.min_interval,
            last: None,
        }
    }

    /// The URL to ping for a poll that succeeded (`ok`) or failed at `now`, if any.
    pub fn on_poll(&mut self, ok: bool, now: Instant) -> Option<String> {
        let due = match self.last {
            None => true,
            Some((at, was_ok)) => was_ok != ok || now.duration_since(at) >= self.min_interval,
        };
        if !due {
            return None;
        }
        self.last = Some((now, ok));
        Some(if ok { self.url.clone() } else { format!("{}/fail", self.url) })
    }
}

/// Pings as polls happen until `cancel`.
pub async fn run(config: HealthcheckConfig, mut bus: broadcast::Receiver<Update>, cancel: CancellationToken) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(e) => return tracing::error!("health-check pings disabled: {e}"),
    };
    let mut pinger = Pinger::new(&config);
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = bus.recv() => update,
        };
        let ok = match update {
            Ok(Update::Polled { .. }) => true,
            Ok(Update::Failed { .. }) => false,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(url) = pinger.on_poll(ok, Instant::now()) {
            // A slow ping endpoint must not hold up the next poll's ping: it has its own timeout.
            if let Err(e) = client.get(&url).send().await.and_then(reqwest::Response::error_for_status) {
                tracing::warn!("health-check ping failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_at_most_every_interval_and_at_once_on_a_change() {
        let config =
            HealthcheckConfig { ping_url: "http://hc/abc/".into(), min_interval: Duration::from_secs(60) };
        let mut pinger = Pinger::new(&config);
        let t0 = Instant::now();
        assert_eq!(pinger.on_poll(true, t0).as_deref(), Some("http://hc/abc"));
        assert_eq!(pinger.on_poll(true, t0 + Duration::from_secs(10)), None);
        assert_eq!(
            pinger.on_poll(false, t0 + Duration::from_secs(20)).as_deref(),
            Some("http://hc/abc/fail")
        );
        assert_eq!(pinger.on_poll(false, t0 + Duration::from_secs(30)), None);
        assert_eq!(pinger.on_poll(true, t0 + Duration::from_secs(40)).as_deref(), Some("http://hc/abc"));
        assert_eq!(pinger.on_poll(true, t0 + Duration::from_secs(100)).as_deref(), Some("http://hc/abc"));
    }
}
