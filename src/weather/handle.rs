//! What the weather task tells the rest of the service: the latest snapshot (moved to the
//! instant asked for, and gone once stale), a channel that changes with each fetch, and the
//! fetch counters, read at scrape time without waiting on the task.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// `last_ok_ns` before the first good fetch.
const NEVER: i64 = i64::MIN;

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
    /// When the last good answer arrived, Unix ns; [`NEVER`] before the first.
    last_ok_ns: AtomicI64,
    failed: [AtomicU64; FailureKind::ALL.len()],
    last_error: Mutex<Option<String>>,
    /// The last snapshot moved by [`WeatherHandle::latest`]: moving one integrates the rest of
    /// the day's sun, milliseconds of CPU that a poll every few seconds must not pay each time.
    moved: Mutex<Option<Arc<WeatherSnapshot>>>,
}

/// How long a moved snapshot serves: the sun moves a quarter of a degree a minute.
const MOVED_FOR: TimeDelta = TimeDelta::seconds(60);

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
            last_ok_ns: AtomicI64::new(NEVER),
            failed: Default::default(),
            last_error: Mutex::new(None),
            moved: Mutex::new(None),
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
        let mut moved = self.shared.moved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = moved
            .as_ref()
            .filter(|m| m.fetched_at == snapshot.fetched_at && now >= m.at && now - m.at < MOVED_FOR)
        {
            return Some(cached.clone());
        }
        let fresh = Arc::new(snapshot.at_time(now)?);
        *moved = Some(fresh.clone());
        Some(fresh)
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

    /// When the last good answer arrived, stale or not; `None` before the first.
    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        let ns = self.shared.last_ok_ns.load(Ordering::Relaxed);
        (ns != NEVER).then(|| DateTime::from_timestamp_nanos(ns))
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
        // Past the year 2262 nanoseconds overflow; "never" is the honest answer then.
        let ns = snapshot.fetched_at.timestamp_nanos_opt().unwrap_or(NEVER);
        self.shared.last_ok_ns.store(ns, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::weather::ProviderAnswer;

    fn handle() -> WeatherHandle {
        let site = Site { latitude: -34.05, longitude: 18.85, array: None };
        WeatherHandle::new(site, WeatherProvider::OpenMeteo, Duration::from_secs(600))
    }

    fn fetched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 21, 10, 0, 0).unwrap()
    }

    fn publish(handle: &WeatherHandle) {
        let observation =
            ProviderAnswer { observed_at: fetched(), cloud_cover_pct: 42.0, forecast: Vec::new() };
        let snapshot =
            WeatherSnapshot::new(handle.site(), handle.provider(), observation, fetched()).unwrap();
        handle.publish(snapshot);
    }

    #[test]
    fn the_latest_fetch_is_moved_to_now_and_gone_after_three_intervals() {
        let handle = handle();
        assert!(handle.latest(fetched()).is_none(), "nothing before the first fetch");
        assert_eq!(handle.last_success(), None);
        publish(&handle);
        let later = fetched() + TimeDelta::minutes(29);
        let s = handle.latest(later).unwrap();
        assert_eq!((s.at, s.fetched_at, s.cloud_cover_pct), (later, fetched(), 42.0));
        assert_eq!(Some(s.sun), handle.sun(later), "the sun is for now, not for the fetch");
        assert!(handle.latest(fetched() + TimeDelta::minutes(30)).is_some());
        assert!(handle.latest(fetched() + TimeDelta::minutes(30) + TimeDelta::milliseconds(1)).is_none());
        assert!(handle.sun(fetched() + TimeDelta::hours(5)).is_some(), "the sun never goes stale");
        assert_eq!(handle.last_success(), Some(fetched()));
    }

    #[test]
    fn a_moved_snapshot_serves_a_minute_then_moves_again() {
        let handle = handle();
        publish(&handle);
        let first = handle.latest(fetched()).unwrap();
        let soon = handle.latest(fetched() + TimeDelta::seconds(59)).unwrap();
        assert!(Arc::ptr_eq(&first, &soon), "polls within a minute share one computation");
        let later = handle.latest(fetched() + TimeDelta::seconds(60)).unwrap();
        assert_eq!(later.at, fetched() + TimeDelta::seconds(60));
        let before = handle.latest(fetched() - TimeDelta::seconds(1)).unwrap();
        assert_eq!(before.at, fetched() - TimeDelta::seconds(1), "never a snapshot from the future");
    }

    #[test]
    fn failures_are_counted_by_kind_and_expiry_tells_subscribers() {
        let handle = handle();
        let mut fetches = handle.subscribe();
        publish(&handle);
        assert!(fetches.has_changed().unwrap());
        assert!(fetches.borrow_and_update().is_some());
        let timeout = WeatherError::Timeout { url: "u".into(), timeout: Duration::from_secs(10) };
        handle.fail(&timeout);
        handle.fail(&timeout);
        handle.fail(&WeatherError::Malformed { url: "u".into(), reason: "r".into() });
        let counts: Vec<u64> = FailureKind::ALL.iter().map(|k| handle.fetches_failed(*k)).collect();
        assert_eq!(counts, [0, 2, 0, 1]);
        assert_eq!(handle.last_error().as_deref(), Some("weather: u: malformed answer: r"));
        handle.expire();
        assert!(fetches.has_changed().unwrap());
        assert!(fetches.borrow_and_update().is_none());
        publish(&handle);
        assert_eq!((handle.fetches_ok(), handle.last_error()), (2, None), "a good fetch clears the error");
    }
}
