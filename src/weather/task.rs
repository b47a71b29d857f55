//! The weather task: fetch at once, then every interval; after a failure retry sooner, backing
//! off up to the interval; tell subscribers when the last good answer goes stale. [`Schedule`]
//! decides when; the loop only sleeps, fetches and watches for shutdown (docs/style.md §8).

use std::time::Duration;

use chrono::Utc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::client::WeatherClient;
use super::handle::WeatherHandle;
use super::snapshot::WeatherSnapshot;
use crate::backoff::Backoff;

/// The first retry after a failure: soon enough that one lost answer costs a minute, not an
/// interval; the wait then doubles (1, 2, 4 … min, each ±20 % jitter) up to the interval.
pub(super) const FIRST_RETRY: Duration = Duration::from_secs(60);

/// When to fetch next: every interval while the provider answers, sooner after a failure.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    backoff: Backoff,
}

impl Schedule {
    /// Fetches every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, backoff: Backoff::new(FIRST_RETRY, interval) }
    }

    /// The wait after a fetch that succeeded (`ok`) or failed. `jitter` in [0, 1) spreads the
    /// retries of several services that lost the same provider; the wait never exceeds the
    /// interval, so a failure never delays the next fetch beyond a success's.
    pub fn after(&mut self, ok: bool, jitter: f64) -> Duration {
        if ok {
            self.backoff.reset();
            return self.interval;
        }
        self.backoff.fail(jitter).min(self.interval)
    }

    /// Failed fetches in a row.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }
}

/// Fetches with `client` into `handle` every `interval` until `cancel`.
pub(super) async fn run(
    client: WeatherClient,
    handle: WeatherHandle,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut schedule = Schedule::new(interval);
    let mut next = Instant::now();
    let mut stale_at: Option<Instant> = None;
    loop {
        let stale = async {
            match stale_at {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = stale => {
                stale_at = None;
                handle.expire();
                tracing::warn!(after = ?handle.stale_after(), "weather: no good answer for too long; weather is unavailable");
                continue;
            }
            () = sleep_until(next) => {}
        }
        let started = Instant::now();
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            result = client.fetch() => result,
        };
        let ok = store(&handle, result, schedule.failures());
        if ok {
            stale_at = Some(Instant::now() + handle.stale_after());
        }
        next = started + schedule.after(ok, rand::random());
    }
}

/// Publishes or counts `result`, logging once per change of state; true when it was good.
fn store(
    handle: &WeatherHandle,
    result: Result<super::ProviderAnswer, super::WeatherError>,
    failures_before: u32,
) -> bool {
    let observation = match result {
        Ok(observation) => observation,
        Err(e) => {
            handle.fail(&e);
            tracing::warn!(failures = failures_before + 1, "{e}");
            return false;
        }
    };
    let cloud = observation.cloud_cover_pct;
    match WeatherSnapshot::new(handle.site(), handle.provider(), observation, Utc::now()) {
        Some(snapshot) => {
            if failures_before > 0 {
                tracing::info!(failures = failures_before, "weather: the provider answers again");
            }
            tracing::debug!(cloud, expected_pv_w = ?snapshot.expected_pv_w, "weather fetched");
            handle.publish(snapshot);
            true
        }
        // Only for a clock outside the years SPA covers.
        None => {
            tracing::error!("weather: the sun's position cannot be computed for this time");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_retry_after_a_minute_doubling_up_to_the_interval() {
        let mut s = Schedule::new(Duration::from_secs(600));
        let waits: Vec<u64> = (0..6).map(|_| s.after(false, 0.5).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        assert_eq!(s.failures(), 6);
        assert_eq!(s.after(true, 0.5), Duration::from_secs(600));
        assert_eq!(s.after(false, 0.5), Duration::from_secs(60), "a success starts over");
        for _ in 0..100 {
            s.after(false, 0.5);
        }
        assert_eq!(s.after(false, 0.5), Duration::from_secs(600), "no overflow after many failures");
    }

    #[test]
    fn retries_are_jittered_but_never_beyond_the_interval() {
        let mut s = Schedule::new(Duration::from_secs(600));
        assert_eq!(s.after(false, 0.0), Duration::from_secs(48), "first retry, 20 % early");
        assert_eq!(s.after(false, 1.0), Duration::from_secs(144), "second retry, 20 % late");
        let capped: Vec<u64> = (0..4).map(|_| s.after(false, 1.0).as_secs()).collect();
        assert_eq!(capped, [288, 576, 600, 600], "jitter does not push a retry past the interval");
        assert_eq!(s.after(true, 1.0), Duration::from_secs(600), "a success waits the interval, unjittered");
    }

    #[test]
    fn short_intervals_retry_at_the_interval() {
        let mut s = Schedule::new(Duration::from_millis(200));
        assert_eq!(s.after(false, 0.5), Duration::from_millis(200));
        assert_eq!(s.after(true, 0.5), Duration::from_millis(200));
    }
}
