//! Exponential backoff with jitter: how long to wait after each failure in a row.
//!
//! One implementation for every retry loop in the service: logger reconnects (transport), the
//! MQTT broker, InfluxDB writes and weather fetches. It is a plain state machine: it owns the
//! count of failures and nothing else. It never sleeps, reads a clock or draws a random number;
//! the caller passes the jitter in and does the waiting, so tests pin both.

use std::time::Duration;

/// Retry pacing: the delay doubles after each failure up to a cap, with ±20 % jitter so
/// several clients do not hammer a server (a logger, a broker, a database) that just came back
/// in step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `initial`, never waits more than `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, failures: 0 }
    }

    /// Records a failure; returns how long to wait before the next attempt. `jitter` in [0, 1)
    /// comes from the caller, so tests can pin it.
    pub(crate) fn fail(&mut self, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doubling = 2f64.powi(self.failures.saturating_sub(1).min(30) as i32);
        let base = (self.initial.as_secs_f64() * doubling).min(self.max.as_secs_f64());
        Duration::from_secs_f64(base * (0.8 + 0.4 * jitter.clamp(0.0, 1.0)))
    }

    /// Records a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<u64> = (0..8).map(|_| b.fail(0.5).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.failures(), 8);
        b.reset();
        assert_eq!(b.fail(0.5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(b.fail(0.0), Duration::from_secs(8));
        b.reset();
        assert_eq!(b.fail(1.0), Duration::from_secs(12));
    }
}
