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

/// The first retry after a failure: soon enough that one lost answer costs a minute, not an
/// interval; the wait then doubles up to the interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(60);

/// When to fetch next.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    failures: u32,
}

impl Schedule {
    /// Fetches every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, failures: 0 }
    }

    /// The wait after a fetch that succeeded (`ok`) or failed.
    pub fn after(&mut self, ok: bool) -> Duration {
        if ok {
            self.failures = 0;
            return self.interval;
        }
        let wait = FIRST_RETRY.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        wait.min(self.interval)
    }

    /// Failed fetches in a row.
    pub fn failures(&self) -> u32 {
        self.failures
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
        next = started + schedule.after(ok);
    }
}

/// Publishes or counts `result`, logging once per change of state; true when it was good.
fn store(
    handle: &WeatherHandle,
    result: Result<super::Observation, super::WeatherError>,
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
        let waits: Vec<u64> = (0..6).map(|_| s.after(false).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        assert_eq!(s.failures(), 6);
        assert_eq!(s.after(true), Duration::from_secs(600));
        assert_eq!(s.after(false), Duration::from_secs(60), "a success starts over");
        for _ in 0..100 {
            s.after(false);
        }
        assert_eq!(s.after(false), Duration::from_secs(600), "no overflow after many failures");
    }

    #[test]
    fn short_intervals_retry_at_the_interval() {
        let mut s = Schedule::new(Duration::from_millis(200));
        assert_eq!(s.after(false), Duration::from_millis(200));
        assert_eq!(s.after(true), Duration::from_millis(200));
    }
}
