//! What the sink tells the rest of the service: counters and the spool's depth, shared as
//! atomics so metrics read them without waiting on the sink.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::spool::Depth;
use crate::sinks::metrics::MetricSource;

/// `oldest_ms` when the spool is empty.
const NONE: i64 = i64::MIN;

/// The shared counters; the sink's tasks write, [`InfluxHandle`] reads.
#[derive(Debug)]
pub(super) struct Stats {
    spool_points: AtomicU64,
    spool_bytes: AtomicU64,
    oldest_ms: AtomicI64,
    pub(super) spooled: AtomicU64,
    pub(super) written: AtomicU64,
    dropped: AtomicU64,
    pub(super) batches_rejected: AtomicU64,
    pub(super) points_rejected: AtomicU64,
    pub(super) lagged: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    pub(super) fn new() -> Self {
        Self {
            spool_points: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            oldest_ms: AtomicI64::new(NONE),
            spooled: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            batches_rejected: AtomicU64::new(0),
            points_rejected: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Publishes the spool's depth and its count of dropped points.
    pub(super) fn set_spool(&self, depth: Depth, dropped: u64) {
        self.spool_points.store(depth.records, Ordering::Relaxed);
        self.spool_bytes.store(depth.bytes, Ordering::Relaxed);
        self.oldest_ms.store(depth.oldest_ms.unwrap_or(NONE), Ordering::Relaxed);
        self.dropped.store(dropped, Ordering::Relaxed);
    }

    /// Points waiting in the spool.
    pub(super) fn waiting(&self) -> u64 {
        self.spool_points.load(Ordering::Relaxed)
    }

    /// Adds `n` to `counter`.
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Remembers the latest failure (`None`: writes work again).
    pub(super) fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }
}

/// A cheap, clonable view of the InfluxDB sink, for metrics and health.
#[derive(Debug, Clone)]
pub struct InfluxHandle {
    pub(super) stats: Arc<Stats>,
}

impl InfluxHandle {
    /// Points waiting in the spool.
    pub fn spool_points(&self) -> u64 {
        self.stats.waiting()
    }

    /// Bytes the waiting points take on disk.
    pub fn spool_bytes(&self) -> u64 {
        self.stats.spool_bytes.load(Ordering::Relaxed)
    }

    /// How old the oldest waiting point is at `now`; `None` when nothing waits.
    pub fn oldest_point_age(&self, now: DateTime<Utc>) -> Option<Duration> {
        let oldest = self.stats.oldest_ms.load(Ordering::Relaxed);
        (oldest != NONE)
            .then(|| (now.timestamp_millis() - oldest).max(0).unsigned_abs())
            .map(Duration::from_millis)
    }

    /// Points taken off the bus into the spool since start.
    pub fn points_spooled(&self) -> u64 {
        self.stats.spooled.load(Ordering::Relaxed)
    }

    /// Points the database acknowledged since start.
    pub fn points_written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Points dropped by the spool since start: the oldest, when it was full.
    pub fn points_dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Batches the database refused as bad data (400), dropped.
    pub fn batches_rejected(&self) -> u64 {
        self.stats.batches_rejected.load(Ordering::Relaxed)
    }

    /// Points in those batches.
    pub fn points_rejected(&self) -> u64 {
        self.stats.points_rejected.load(Ordering::Relaxed)
    }

    /// Poll updates the sink missed because it fell behind the bus.
    pub fn lagged_updates(&self) -> u64 {
        self.stats.lagged.load(Ordering::Relaxed)
    }

    /// The latest write failure, until a write succeeds again.
    pub fn last_error(&self) -> Option<String> {
        self.stats.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl MetricSource for InfluxHandle {
    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let age = self.oldest_point_age(Utc::now()).map_or(0.0, |a| a.as_secs_f64());
        vec![
            (
                "inverter_monitor_influx_spool_points",
                "Points waiting in the InfluxDB spool",
                self.spool_points() as f64,
            ),
            (
                "inverter_monitor_influx_spool_bytes",
                "Bytes the waiting points take on disk",
                self.spool_bytes() as f64,
            ),
            (
                "inverter_monitor_influx_spool_oldest_age_seconds",
                "Age of the oldest waiting point (0: none)",
                age,
            ),
        ]
    }

    fn counters(&self) -> Vec<(&'static str, &'static str, f64)> {
        vec![
            (
                "inverter_monitor_influx_points_written",
                "Points InfluxDB acknowledged since start",
                self.points_written() as f64,
            ),
            (
                "inverter_monitor_influx_points_dropped",
                "Points dropped by the full spool since start",
                self.points_dropped() as f64,
            ),
            (
                "inverter_monitor_influx_batches_rejected",
                "Batches InfluxDB refused as bad data since start",
                self.batches_rejected() as f64,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_handle_reads_what_the_tasks_publish() {
        let stats = Arc::new(Stats::new());
        let handle = InfluxHandle { stats: stats.clone() };
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        assert_eq!(handle.oldest_point_age(now), None);
        stats.set_spool(Depth { records: 3, bytes: 900, oldest_ms: Some(now.timestamp_millis() - 2500) }, 7);
        Stats::add(&stats.written, 5);
        stats.set_error(Some("HTTP 500".into()));
        assert_eq!(handle.spool_points(), 3);
        assert_eq!(handle.spool_bytes(), 900);
        assert_eq!(handle.oldest_point_age(now), Some(Duration::from_millis(2500)));
        assert_eq!(handle.points_dropped(), 7);
        assert_eq!(handle.points_written(), 5);
        assert_eq!(handle.last_error().as_deref(), Some("HTTP 500"));
        assert_eq!((handle.gauges().len(), handle.counters().len()), (3, 3));
    }
}
