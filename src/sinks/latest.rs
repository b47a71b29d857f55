//! The latest state of every inverter, kept for the HTTP side: the last snapshot, the last
//! failure, poll counts, and 24 hours of power history in one-minute buckets.
//!
//! One task feeds it from the bus; readers take a short read lock and never hold it across an
//! `.await` (STYLE 9).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::config::Config;
use crate::poller::{Change, PollFailure, PowerFlows, Snapshot, Update};

/// One-minute buckets kept: 24 hours.
pub const HISTORY_MINUTES: usize = 24 * 60;

/// Average power flows over one minute, in W (Deye signs: battery + discharge, grid + import).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    /// PV power, all strings.
    pub pv: f32,
    /// House load.
    pub load: f32,
    /// Battery power.
    pub battery: f32,
    /// Grid power.
    pub grid: f32,
    count: u32,
}

/// The power history of an inverter.
#[derive(Debug, Clone, Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Adds a snapshot's power flows to its minute's average. A poll that lacks one of them
    /// (rejected, not read) adds nothing: a gap, never a false zero.
    pub fn record(&mut self, snapshot: &Snapshot) {
        let flows = PowerFlows::of(snapshot);
        let (Some(pv), Some(load), Some(battery), Some(grid)) =
            (flows.pv, flows.load, flows.battery, flows.grid)
        else {
            return;
        };
        let point = [pv, load, battery, grid].map(|w| w as f32);
        let minute = snapshot.time.timestamp().div_euclid(60) * 60;
        match self.samples.back_mut() {
            Some(last) if last.minute == minute => last.add(point),
            _ => {
                self.samples.push_back(Sample {
                    minute,
                    pv: 0.0,
                    load: 0.0,
                    battery: 0.0,
                    grid: 0.0,
                    count: 0,
                });
                if let Some(last) = self.samples.back_mut() {
                    last.add(point);
                }
            }
        }
        while self.samples.len() > HISTORY_MINUTES
            || self.samples.front().is_some_and(|s| s.minute < minute - 86_400)
        {
            self.samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }
}

impl Sample {
    /// Folds one more poll into the running average.
    fn add(&mut self, [pv, load, battery, grid]: [f32; 4]) {
        let n = self.count as f32;
        let avg = |old: f32, new: f32| (old * n + new) / (n + 1.0);
        self.pv = avg(self.pv, pv);
        self.load = avg(self.load, load);
        self.battery = avg(self.battery, battery);
        self.grid = avg(self.grid, grid);
        self.count += 1;
    }
}

/// What the HTTP side knows about one inverter.
#[derive(Debug, Clone)]
pub struct InverterView {
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
    /// Whether the inverter counts as available.
    pub online: Option<bool>,
    /// Power history.
    pub history: History,
}

impl InverterView {
    /// When the last successful poll started.
    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.snapshot.as_ref().map(|s| s.time)
    }
}

/// The latest state of every configured inverter.
#[derive(Debug)]
pub struct Latest {
    started: DateTime<Utc>,
    inverters: RwLock<BTreeMap<String, InverterView>>,
}

impl Latest {
    /// An empty store for the inverters of `config`, started at `now`.
    pub fn new(config: &Config, now: DateTime<Utc>) -> Self {
        let inverters = config
            .inverters
            .iter()
            .map(|i| {
                let view = InverterView {
                    name: i.name.clone(),
                    logger_serial: i.serial.unwrap_or_default(),
                    interval: i.interval,
                    snapshot: None,
                    failure: None,
                    consecutive_failures: 0,
                    online: None,
                    history: History::default(),
                };
                (i.name.clone(), view)
            })
            .collect();
        Self { started: now, inverters: RwLock::new(inverters) }
    }

    /// When the service started.
    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// Takes in one update.
    pub fn record(&self, update: &Update) {
        let mut inverters = self.inverters.write().unwrap_or_else(PoisonError::into_inner);
        let (name, change) = match update {
            Update::Polled { snapshot, change } => (&*snapshot.inverter, change),
            Update::Failed { failure, change } => (&*failure.inverter, change),
        };
        let Some(view) = inverters.get_mut(name) else { return };
        if let Some(change) = change {
            view.online = Some(*change == Change::Online);
        }
        match update {
            Update::Polled { snapshot, .. } => {
                view.history.record(snapshot);
                view.snapshot = Some(snapshot.clone());
                view.consecutive_failures = 0;
            }
            Update::Failed { failure, .. } => {
                view.consecutive_failures = failure.consecutive_failures;
                view.failure = Some(failure.clone());
            }
        }
    }

    /// Reads every inverter under the lock; `f` must be quick.
    pub fn read<R>(&self, f: impl FnOnce(&BTreeMap<String, InverterView>) -> R) -> R {
        f(&self.inverters.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Feeds `latest` and `metrics` from the bus until `cancel`.
pub async fn follow(
    latest: Arc<Latest>,
    metrics: Arc<Metrics>,
    mut bus: broadcast::Receiver<Update>,
    cancel: CancellationToken,
) {
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = bus.recv() => update,
        };
        match update {
            Ok(update) => {
                metrics.record(&update);
                latest.record(&update);
            }
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("status page skipped {n} updates"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
