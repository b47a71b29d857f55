//! What the weather task tells the rest of the service: the latest snapshot (moved to the
//! instant asked for, and gone once stale), a channel that changes with each fetch, and the
//! fetch counters, read at scrape time without waiting on the task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::error::{FailureKind, WeatherError};
use super::snapshot::{Site, WeatherSnapshot};
use super::sun::SunPosition;
use crate::config::WeatherProvider;

/// How many intervals a good fetch stays usable: one or two lost fetches are bridged, and after
/// that the weather is unavailable, so control falls back to rules that do not need it.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// The latest good snapshot (`None` before the first, and once stale), as sent on each change.
pub type Latest = Option<Arc<WeatherSnapshot>>;

/// The state the task writes and the handles read.
#[derive(Debug)]
struct Shared {
    site: Site,
    provider: WeatherProvider,
    stale_after: Duration,
    latest: watch::Sender<Latest>,
    ok: AtomicU64,
    failed: [AtomicU64; FailureKind::ALL.len()],
    last_error: Mutex<Option<String>>,
}

/// A cheap, clonable view of the weather task.
#[derive(Debug, Clone)]
pub struct WeatherHandle {
    shared: Arc<Shared>,
}

impl WeatherHandle {
    /// A handle for `site`, fetched from `provider` every `interval`, with nothing fetched yet.
    pub(super) fn new(site: Site, provider: WeatherProvider, interval: Duration) -> Self {
        let shared = Shared {
            site,
            provider,
            stale_after: interval.saturating_mul(STALE_AFTER_INTERVALS),
            latest: watch::Sender::new(None),
            ok: AtomicU64::new(0),
            failed: Default::default(),
            last_error: Mutex::new(None),
        };
        Self { shared: Arc::new(shared) }
    }

    /// The latest good weather with the sun and estimates for `now`; `None` before the first
    /// good fetch and once the last one is older than [`STALE_AFTER_INTERVALS`] intervals.
    pub fn latest(&self, now: DateTime<Utc>) -> Option<Arc<WeatherSnapshot>> {
        let snapshot = self.shared.latest.borrow().clone()?;
        let stale_after = TimeDelta::from_std(self.shared.stale_after).unwrap_or(TimeDelta::MAX);
        if now - snapshot.fetched_at > stale_after {
            return None;
        }
        snapshot.at_time(now).map(Arc::new)
    }

    /// A receiver that sees each good fetch, and `None` when the weather goes stale; its
    /// snapshots are for the time of their fetch ([`WeatherSnapshot::at_time`] moves them).
    pub fn subscribe(&self) -> watch::Receiver<Latest> {
        self.shared.latest.subscribe()
    }

    /// The sun at `now`: computed here, so it never goes stale.
    pub fn sun(&self, now: DateTime<Utc>) -> Option<SunPosition> {
        SunPosition::at(self.shared.site.latitude, self.shared.site.longitude, now)
    }

    /// The site and array.
    pub fn site(&self) -> Site {
        self.shared.site
    }

    /// The provider asked.
    pub fn provider(&self) -> WeatherProvider {
        self.shared.provider
    }

    /// How long a good fetch stays usable.
    pub fn stale_after(&self) -> Duration {
        self.shared.stale_after
    }

    /// Good fetches since start.
    pub fn fetches_ok(&self) -> u64 {
        self.shared.ok.load(Ordering::Relaxed)
    }

    /// Failed fetches of `kind` since start.
    pub fn fetches_failed(&self, kind: FailureKind) -> u64 {
        self.shared.failed[kind as usize].load(Ordering::Relaxed)
    }

    /// The latest failure, until a fetch succeeds again (redacted, ready to show).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Publishes a good fetch.
    pub(super) fn publish(&self, snapshot: WeatherSnapshot) {
        self.shared.ok.fetch_add(1, Ordering::Relaxed);
        self.set_error(None);
        self.shared.latest.send_replace(Some(Arc::new(snapshot)));
    }

    /// Counts a failed fetch.
    pub(super) fn fail(&self, error: &WeatherError) {
        if let Some(kind) = error.kind() {
            self.shared.failed[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.set_error(Some(error.to_string()));
    }

    /// Tells subscribers the weather is stale.
    pub(super) fn expire(&self) {
        self.shared.latest.send_replace(None);
    }

    fn set_error(&self, error: Option<String>) {
        *self.shared.last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }
}
