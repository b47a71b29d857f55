//! The status board: what the status page and `/healthz` know about every inverter. Each
//! inverter's [`InverterStatus`] (last snapshot, last failure, failures in a row, availability),
//! read from the shared [`Statuses`], and 24 hours of power history in one-minute buckets, which
//! only the board keeps.
//!
//! It is web state: nothing outside `web` reads it. [`follow`] feeds the statuses, the board and
//! the metrics from the bus; readers take a short read lock and never hold it across an `.await`
//! (docs/style.md §9).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::poller::{InverterStatus, PowerFlows, Snapshot, Statuses, Update};
use crate::sinks::metrics::Metrics;

/// One-minute buckets kept: 24 hours.
pub(crate) const HISTORY_MINUTES: usize = 24 * 60;

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
#[derive(Debug, Clone, Copy)]
pub struct InverterView<'a> {
    /// The inverter as the updates so far describe it.
    pub status: &'a InverterStatus,
    /// Power history.
    pub history: &'a History,
}

/// The status of every configured inverter, with its power history.
#[derive(Debug)]
pub struct StatusBoard {
    started: DateTime<Utc>,
    statuses: Statuses,
    histories: RwLock<BTreeMap<String, History>>,
}

impl StatusBoard {
    /// A board over `statuses` with no history yet, started at `now`.
    pub fn new(statuses: Statuses, now: DateTime<Utc>) -> Self {
        Self { started: now, statuses, histories: RwLock::default() }
    }

    /// When the service started.
    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// Adds a good poll's power flows to its inverter's history.
    pub fn record(&self, update: &Update) {
        if let Update::Polled { snapshot, .. } = update {
            let mut histories = self.histories.write().unwrap_or_else(PoisonError::into_inner);
            histories.entry(snapshot.inverter.to_string()).or_default().record(snapshot);
        }
    }

    /// Every configured inverter, by name, under the locks; `f` must be quick.
    pub fn read<R>(&self, f: impl FnOnce(Vec<InverterView<'_>>) -> R) -> R {
        self.statuses.read(|statuses| {
            let histories = self.histories.read().unwrap_or_else(PoisonError::into_inner);
            let none = History::default();
            let views = statuses
                .values()
                .map(|status| InverterView { status, history: histories.get(&status.name).unwrap_or(&none) })
                .collect();
            f(views)
        })
    }
}

/// Feeds `statuses`, `board` and `metrics` from the bus until `cancel`.
pub(crate) async fn follow(
    statuses: Statuses,
    board: Arc<StatusBoard>,
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
                statuses.record(&update);
                metrics.record(&update);
                board.record(&update);
            }
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("status page skipped {n} updates"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
