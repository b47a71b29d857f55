//! Exponential smoothing over irregular time steps: one passing cloud or kettle must not switch
//! a 3 kW load, and a missed poll must not weigh more than a minute's worth.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A value smoothed with time constant `tau`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Smoothed {
    tau: Duration,
    value: Option<(f64, DateTime<Utc>)>,
}

impl Smoothed {
    /// Nothing seen yet.
    pub(crate) fn new(tau: Duration) -> Self {
        Self { tau, value: None }
    }

    /// Adds the sample `x` taken at `at`; returns the smoothed value.
    pub(crate) fn add(&mut self, x: f64, at: DateTime<Utc>) -> f64 {
        let next = match self.value {
            Some((last, then)) if at > then => {
                let dt = (at - then).as_seconds_f64();
                let tau = self.tau.as_secs_f64().max(f64::MIN_POSITIVE);
                // The weight of a sample grows with the time it stands for.
                last + (x - last) * (1.0 - (-dt / tau).exp())
            }
            Some((last, _)) => last,
            None => x,
        };
        self.value = Some((next, at));
        next
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_step_is_followed_with_the_time_constant() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut s = Smoothed::new(Duration::from_secs(300));
        assert_eq!(s.add(0.0, t0), 0.0);
        // After one time constant a step of 1000 is 63 % through, however it was sampled.
        let coarse = s.add(1000.0, t0 + TimeDelta::seconds(300));
        let mut fine = Smoothed::new(Duration::from_secs(300));
        fine.add(0.0, t0);
        let mut last = 0.0;
        for i in 1..=30 {
            last = fine.add(1000.0, t0 + TimeDelta::seconds(10 * i));
        }
        assert!((coarse - 632.1).abs() < 0.1, "{coarse}");
        assert!((last - coarse).abs() < 0.1, "{last} vs {coarse}");
        assert_eq!(s.add(5000.0, t0), coarse, "a sample from the past is ignored");
    }
}
