//! How late polls start: the time between when a poll was due and when its loop got to it.
//!
//! A poll loop sleeps until its next poll is due; if the runtime is busy (thousands of
//! inverters in one process, a slow sink hogging a worker) the wake-up comes late, and a
//! growing lateness is the first sign the process has more inverters than it can carry. This
//! module owns the process-wide tally every poll loop feeds ([`record`]), the figure the
//! metrics expose ([`largest`]) and the periodic summary line ([`report`]). It must not
//! change when polls run: it only watches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Inverters from which the summary is logged at info; a smaller setup logs it at debug,
/// since a line a minute says nothing a single inverter's own log lines do not.
pub const LOUD_FROM: usize = 10;

/// Lateness since start, and over the window the summary line reports.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    largest_us: AtomicU64,
    window_largest_us: AtomicU64,
    window_polls: AtomicU64,
}

impl Tally {
    const fn new() -> Self {
        Self {
            largest_us: AtomicU64::new(0),
            window_largest_us: AtomicU64::new(0),
            window_polls: AtomicU64::new(0),
        }
    }

    fn record(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.largest_us.fetch_max(us, Ordering::Relaxed);
        self.window_largest_us.fetch_max(us, Ordering::Relaxed);
        self.window_polls.fetch_add(1, Ordering::Relaxed);
    }

    fn largest(&self) -> Duration {
        Duration::from_micros(self.largest_us.load(Ordering::Relaxed))
    }

    /// (polls, largest lateness) since the last call, and a fresh window.
    fn take_window(&self) -> (u64, Duration) {
        let polls = self.window_polls.swap(0, Ordering::Relaxed);
        (polls, Duration::from_micros(self.window_largest_us.swap(0, Ordering::Relaxed)))
    }
}

/// The one tally of the process: every poll loop of the service feeds it.
static TALLY: Tally = Tally::new();

/// Notes that a poll started `late` after it was due.
pub(crate) fn record(late: Duration) {
    TALLY.record(late);
}

/// The largest lateness of any poll since the process started.
pub fn largest() -> Duration {
    TALLY.largest()
}

/// Logs, every `every` until `cancel`, how many polls started and the largest lateness among
/// them: one line for the whole fleet, at info when `loud`, else at debug.
pub async fn report(every: Duration, loud: bool, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (polls, late) = TALLY.take_window();
        let (late_ms, ever_ms) = (late.as_secs_f64() * 1e3, largest().as_secs_f64() * 1e3);
        if loud {
            tracing::info!(
                polls,
                largest_lateness_ms = late_ms,
                largest_since_start_ms = ever_ms,
                "polls in the last {every:?}"
            );
        } else {
            tracing::debug!(
                polls,
                largest_lateness_ms = late_ms,
                largest_since_start_ms = ever_ms,
                "polls in the last {every:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_restarts_but_the_largest_since_start_stays() {
        let tally = Tally::new();
        tally.record(Duration::from_millis(40));
        tally.record(Duration::from_millis(3));
        assert_eq!(tally.take_window(), (2, Duration::from_millis(40)));
        tally.record(Duration::from_millis(5));
        assert_eq!(tally.take_window(), (1, Duration::from_millis(5)), "a new window forgets the 40 ms");
        assert_eq!(tally.largest(), Duration::from_millis(40));
        assert_eq!(tally.take_window(), (0, Duration::ZERO));
    }
}
