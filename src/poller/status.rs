//! What the [`Update`]s so far say about one inverter: its last good poll, its last failure,
//! failures in a row, and whether it counts as available.
//!
//! A plain fold over the bus. [`Statuses`] holds it once for every reader that needs "the
//! inverter as of now" (the metrics collector at scrape time, the web's status board): one fold
//! per update, whoever reads. It lives beside the updates it folds so that those readers depend
//! on the poller, never on each other.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Change, PollFailure, Snapshot, Update};
use crate::config::{Config, InverterConfig};
use crate::transport::Counters;

/// One inverter as the updates so far describe it.
#[derive(Debug, Clone)]
pub struct InverterStatus {
    /// The configured name.
    pub name: String,
    /// The logger serial: the `serial` label before the first good poll names the identity.
    pub logger_serial: u32,
    /// The poll interval.
    pub interval: Duration,
    /// The last successful poll.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The last failed poll.
    pub failure: Option<Arc<PollFailure>>,
    /// Failed polls in a row.
    pub consecutive_failures: u32,
    /// Whether the inverter counts as available; `None` until the poller has said.
    pub online: Option<bool>,
}

impl InverterStatus {
    /// An inverter that has not been polled yet.
    pub fn new(inverter: &InverterConfig) -> Self {
        Self {
            name: inverter.name.clone(),
            logger_serial: inverter.serial.unwrap_or_default(),
            interval: inverter.interval,
            snapshot: None,
            failure: None,
            consecutive_failures: 0,
            online: None,
        }
    }

    /// Every configured inverter, not polled yet, by name.
    pub fn all(config: &Config) -> BTreeMap<String, Self> {
        config.inverters.iter().map(|i| (i.name.clone(), Self::new(i))).collect()
    }

    /// Folds in one update about this inverter.
    pub fn record(&mut self, update: &Update) {
        let (Update::Polled { change, .. } | Update::Failed { change, .. }) = update;
        if let Some(change) = change {
            self.online = Some(*change == Change::Online);
        }
        match update {
            Update::Polled { snapshot, .. } => {
                self.snapshot = Some(snapshot.clone());
                self.consecutive_failures = 0;
            }
            Update::Failed { failure, .. } => {
                self.consecutive_failures = failure.consecutive_failures;
                self.failure = Some(failure.clone());
            }
        }
    }

    /// When the last successful poll started.
    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.snapshot.as_ref().map(|s| s.time)
    }

    /// The link's counters as the newest poll, good or failed, left them.
    pub fn link(&self) -> Option<&Counters> {
        match (&self.snapshot, &self.failure) {
            (Some(s), Some(f)) if f.time > s.time => Some(&f.link),
            (Some(s), _) => Some(&s.link),
            (None, Some(f)) => Some(&f.link),
            (None, None) => None,
        }
    }
}

/// Every configured inverter's status, shared: one task folds the updates in, readers take a
/// short read lock and never hold it across an `.await` (docs/style.md §9).
#[derive(Debug, Clone)]
pub struct Statuses(Arc<RwLock<BTreeMap<String, InverterStatus>>>);

impl Statuses {
    /// Every inverter of `config`, not polled yet.
    pub fn new(config: &Config) -> Self {
        Self(Arc::new(RwLock::new(InverterStatus::all(config))))
    }

    /// Folds in one update; one about an inverter that is not configured is ignored.
    pub fn record(&self, update: &Update) {
        let mut statuses = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(status) = statuses.get_mut(update.inverter()) {
            status.record(update);
        }
    }

    /// Reads every inverter's status, by name, under the lock; `f` must be quick.
    pub fn read<R>(&self, f: impl FnOnce(&BTreeMap<String, InverterStatus>) -> R) -> R {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::InverterConfig;
    use crate::profile::Profiles;
    use crate::transport::Counters;

    fn failed(consecutive_failures: u32, change: Option<Change>) -> Update {
        let failure = PollFailure {
            inverter: "house".into(),
            time: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
            error: "no answer within 5s".into(),
            consecutive_failures,
            link: Counters::default(),
        };
        Update::Failed { failure: Arc::new(failure), change }
    }

    fn polled(change: Option<Change>) -> Update {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 1, 0).unwrap();
        let snapshot = crate::sim::fixture::snapshot(profile, "house", at);
        Update::Polled { snapshot: Arc::new(snapshot), change }
    }

    #[test]
    fn failures_count_up_a_good_poll_clears_them_and_changes_set_availability() {
        let mut status = InverterStatus::new(&InverterConfig::new("house", "127.0.0.1", 8899, 42));
        assert_eq!((status.logger_serial, status.online, status.last_success()), (42, None, None));

        status.record(&failed(1, None));
        status.record(&failed(2, Some(Change::Offline)));
        assert_eq!((status.consecutive_failures, status.online), (2, Some(false)));
        assert_eq!(status.failure.as_ref().map(|f| f.error.as_str()), Some("no answer within 5s"));

        let update = polled(Some(Change::Online));
        assert_eq!(update.inverter(), "house");
        status.record(&update);
        assert_eq!((status.consecutive_failures, status.online), (0, Some(true)));
        assert_eq!(status.last_success(), Some(Utc.with_ymd_and_hms(2026, 11, 27, 10, 1, 0).unwrap()));
        assert!(status.failure.is_some(), "the last failure is kept for the page to explain");

        status.record(&polled(None));
        assert_eq!(status.online, Some(true), "no change announced, availability stays");
    }
}
