//! Healthchecks.io-style pings: a GET of `ping_url` while every inverter's latest poll is good,
//! at most every `min_interval`, and of `ping_url/fail` while any inverter's latest poll failed.
//! A change between the two is pinged at once, so the dashboard turns red or green with the first
//! poll that says so. The URL's path is a credential: it is never logged.
//!
//! Configured as `[healthcheck]` (the key users know). These pings go out to a watcher; the
//! other health check, `/healthz` and the `inverter-monitor healthcheck` command that probes it
//! (`web::probe`), answers whoever asks in. The two share nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::HealthPingsConfig;
use crate::poller::Update;

/// Whether to ping now, and which URL: a state machine told each outcome and the time.
#[derive(Debug, Clone)]
pub(crate) struct Pinger {
    url: String,
    min_interval: Duration,
    latest: BTreeMap<String, bool>,
    last: Option<(Instant, bool)>,
}

impl Pinger {
    /// Pings `ping_url`, at most every `min_interval` while nothing changes.
    pub(crate) fn new(config: &HealthPingsConfig) -> Self {
        let url = config.ping_url.expose().trim_end_matches('/').to_string();
        Self { url, min_interval: config.min_interval, latest: BTreeMap::new(), last: None }
    }

    /// The URL to ping after inverter `name`'s poll succeeded (`ok`) or failed at `now`, if any.
    pub(crate) fn on_poll(&mut self, name: &str, ok: bool, now: Instant) -> Option<String> {
        self.latest.insert(name.to_string(), ok);
        let all_ok = self.latest.values().all(|ok| *ok);
        let due = match self.last {
            None => true,
            Some((at, was_ok)) => was_ok != all_ok || now.duration_since(at) >= self.min_interval,
        };
        if !due {
            return None;
        }
        self.last = Some((now, all_ok));
        Some(if all_ok { self.url.clone() } else { format!("{}/fail", self.url) })
    }
}

/// Pings as polls happen until `cancel`.
pub(crate) async fn run(
    config: HealthPingsConfig,
    mut bus: broadcast::Receiver<Update>,
    cancel: CancellationToken,
) {
    let client = match crate::http_client::client(Duration::from_secs(10)) {
        Ok(client) => client,
        Err(e) => return tracing::error!("health-check pings disabled: {e}"),
    };
    let mut pinger = Pinger::new(&config);
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = bus.recv() => update,
        };
        let update = match update {
            Ok(update) => update,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let ok = matches!(update, Update::Polled { .. });
        if let Some(url) = pinger.on_poll(update.inverter(), ok, Instant::now()) {
            // reqwest puts the URL in its errors; the URL is the secret, so it goes.
            if let Err(e) = client.get(&url).send().await.and_then(reqwest::Response::error_for_status) {
                tracing::warn!("health-check ping failed: {}", e.without_url());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn pinger() -> Pinger {
        let url = Secret::new("http://hc/abc/".into());
        Pinger::new(&HealthPingsConfig {
            ping_url: url,
            ping_url_file: None,
            min_interval: Duration::from_secs(60),
        })
    }

    #[test]
    fn pings_at_most_every_interval_and_at_once_on_a_change() {
        let mut pinger = pinger();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(pinger.on_poll("house", true, t0).as_deref(), Some("http://hc/abc"));
        assert_eq!(pinger.on_poll("house", true, at(10)), None);
        assert_eq!(pinger.on_poll("house", false, at(20)).as_deref(), Some("http://hc/abc/fail"));
        assert_eq!(pinger.on_poll("house", false, at(30)), None);
        assert_eq!(pinger.on_poll("house", true, at(40)).as_deref(), Some("http://hc/abc"));
        assert_eq!(pinger.on_poll("house", true, at(100)).as_deref(), Some("http://hc/abc"));
    }

    #[test]
    fn one_failing_inverter_keeps_the_check_failed_without_flapping() {
        let mut pinger = pinger();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(pinger.on_poll("house", true, t0).as_deref(), Some("http://hc/abc"));
        assert_eq!(pinger.on_poll("garage", false, at(1)).as_deref(), Some("http://hc/abc/fail"));
        assert_eq!(pinger.on_poll("house", true, at(2)), None, "house is fine, garage still failed");
        assert_eq!(pinger.on_poll("garage", false, at(3)), None);
        assert_eq!(pinger.on_poll("garage", true, at(4)).as_deref(), Some("http://hc/abc"));
    }
}
