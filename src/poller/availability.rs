//! Availability: an inverter goes unavailable after N failed polls in a row, and comes back at
//! the next good one. A state machine told each outcome; it returns the change to announce.

/// A change of availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The inverter answers again (or for the first time).
    Online,
    /// The inverter has failed N polls in a row.
    Offline,
}

impl Change {
    /// The payload Home Assistant expects on an availability topic.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// Counts failed polls in a row against a threshold.
#[derive(Debug, Clone)]
pub struct Availability {
    threshold: u32,
    failures: u32,
    online: Option<bool>,
}

impl Availability {
    /// Unavailable after `threshold` failures in a row (at least 1).
    pub fn new(threshold: u32) -> Self {
        Self { threshold: threshold.max(1), failures: 0, online: None }
    }

    /// Records one poll; returns the change to announce, if any.
    pub fn record(&mut self, ok: bool) -> Option<Change> {
        self.failures = if ok { 0 } else { self.failures.saturating_add(1) };
        let online = if ok {
            true
        } else if self.failures >= self.threshold {
            false
        } else {
            return None;
        };
        if self.online == Some(online) {
            return None;
        }
        self.online = Some(online);
        Some(if online { Change::Online } else { Change::Offline })
    }

    /// Failed polls in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `Some(true)` online, `Some(false)` offline, `None` before the first verdict.
    pub fn is_online(&self) -> Option<bool> {
        self.online
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_offline_after_the_threshold_and_back_at_the_next_success() {
        let mut a = Availability::new(3);
        assert_eq!(a.record(true), Some(Change::Online));
        assert_eq!(a.record(true), None);
        assert_eq!((a.record(false), a.record(false)), (None, None));
        assert_eq!(a.record(false), Some(Change::Offline));
        assert_eq!(a.record(false), None);
        assert_eq!(a.failures(), 4);
        assert_eq!(a.record(true), Some(Change::Online));
        assert_eq!(a.is_online(), Some(true));
    }

    #[test]
    fn an_inverter_that_never_answered_goes_offline_too() {
        let mut a = Availability::new(2);
        assert_eq!(a.record(false), None);
        assert_eq!(a.record(false), Some(Change::Offline));
    }
}
