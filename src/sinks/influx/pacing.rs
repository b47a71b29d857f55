//! How the drain reacts to each write's verdict: a state machine told the verdict and the
//! jitter, returning what to do (docs/style.md §7). It owns the batch size and the backoff.

use std::time::Duration;

use super::writer::WriteOutcome;
use crate::backoff::Backoff;

/// First wait after a failed write.
pub(crate) const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What to do with the batch just sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// It is stored: commit it and go on.
    Commit,
    /// It will never be taken: commit it as dropped, count it, go on.
    Drop,
    /// Send a smaller batch now (the limit was lowered).
    Shrink,
    /// Keep it and try again after this long.
    Retry(Duration),
}

/// Batch size and backoff between writes.
#[derive(Debug, Clone)]
pub(crate) struct Pacing {
    backoff: Backoff,
    limit: usize,
    max: usize,
}

impl Pacing {
    /// Batches of at most `max` points.
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self { backoff: Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX), limit: max, max }
    }

    /// How many points the next batch may hold.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Failed attempts in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The step after `verdict` on a batch of `sent` points; `jitter` in [0, 1).
    pub(crate) fn on(&mut self, verdict: &WriteOutcome, sent: usize, jitter: f64) -> Step {
        match verdict {
            WriteOutcome::Written => {
                self.backoff.reset();
                // Grow back after a 413, a step at a time, in case the limit was a passing one.
                self.limit = self.limit.saturating_mul(2).min(self.max);
                Step::Commit
            }
            WriteOutcome::BadData(_) => {
                self.backoff.reset();
                Step::Drop
            }
            WriteOutcome::TooLarge if sent > 1 => {
                self.limit = (sent / 2).max(1);
                Step::Shrink
            }
            // One point alone is too large: no batch size will ever get it in.
            WriteOutcome::TooLarge => Step::Drop,
            WriteOutcome::Busy(Some(wait)) => {
                let ours = self.backoff.fail(jitter);
                Step::Retry((*wait).max(ours.min(BACKOFF_INITIAL)))
            }
            WriteOutcome::Busy(None) | WriteOutcome::Unauthorized(_) | WriteOutcome::Failed(_) => {
                Step::Retry(self.backoff.fail(jitter))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Step {
        Step::Retry(Duration::from_secs(s))
    }

    #[test]
    fn failures_back_off_from_one_second_to_a_minute_and_success_resets() {
        let mut p = Pacing::new(100);
        let failed = WriteOutcome::Failed("connection refused".into());
        let waits: Vec<Step> = (0..8).map(|_| p.on(&failed, 10, 0.5)).collect();
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(8), secs(16), secs(32), secs(60), secs(60)]);
        assert_eq!(p.on(&WriteOutcome::Written, 10, 0.5), Step::Commit);
        assert_eq!(p.on(&failed, 10, 0.5), secs(1));
    }

    #[test]
    fn refused_credentials_keep_the_points_and_back_off() {
        let mut p = Pacing::new(100);
        assert_eq!(p.on(&WriteOutcome::Unauthorized("HTTP 401".into()), 10, 0.5), secs(1));
        assert_eq!(p.on(&WriteOutcome::Unauthorized("HTTP 401".into()), 10, 0.5), secs(2));
    }

    #[test]
    fn bad_data_is_dropped_without_waiting() {
        let mut p = Pacing::new(100);
        assert_eq!(p.on(&WriteOutcome::BadData("HTTP 400".into()), 10, 0.5), Step::Drop);
    }

    #[test]
    fn too_large_halves_the_batch_then_grows_back() {
        let mut p = Pacing::new(100);
        assert_eq!(p.on(&WriteOutcome::TooLarge, 100, 0.5), Step::Shrink);
        assert_eq!(p.limit(), 50);
        assert_eq!(p.on(&WriteOutcome::TooLarge, 50, 0.5), Step::Shrink);
        assert_eq!(p.limit(), 25);
        assert_eq!(p.on(&WriteOutcome::Written, 25, 0.5), Step::Commit);
        assert_eq!(p.limit(), 50);
        assert_eq!(p.on(&WriteOutcome::Written, 50, 0.5), Step::Commit);
        assert_eq!(p.on(&WriteOutcome::Written, 100, 0.5), Step::Commit);
        assert_eq!(p.limit(), 100, "never above the configured batch");
        assert_eq!(p.on(&WriteOutcome::TooLarge, 1, 0.5), Step::Drop, "a single point too large is dropped");
    }

    #[test]
    fn busy_honours_retry_after_or_backs_off() {
        let mut p = Pacing::new(100);
        assert_eq!(p.on(&WriteOutcome::Busy(Some(Duration::from_secs(7))), 10, 0.5), secs(7));
        assert_eq!(p.on(&WriteOutcome::Busy(None), 10, 0.5), secs(2));
        assert_eq!(
            p.on(&WriteOutcome::Busy(Some(Duration::ZERO)), 10, 0.5),
            secs(1),
            "`Retry-After: 0` still waits a little, never spins"
        );
    }
}
