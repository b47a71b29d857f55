//! The intake task: poll updates off the bus and into the spool, one point per successful poll.
//! It never waits on the database, only on the local disk; if it still falls behind, the bus
//! drops the oldest updates for it, and those are counted and logged.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::handle::Stats;
use super::inverter::InverterPoints;
use super::shared::SharedSpool;
use crate::poller::{Snapshot, Update};

/// What the intake needs.
#[derive(Debug)]
pub(super) struct Intake {
    pub(super) points: InverterPoints,
    pub(super) spool: SharedSpool,
    pub(super) stats: Arc<Stats>,
    /// Tells the drain there is something new.
    pub(super) wake: Arc<Notify>,
}

impl Intake {
    /// Runs until `cancel` or until the bus closes, then flushes the spool.
    pub(super) async fn run(self, mut bus: broadcast::Receiver<Update>, cancel: CancellationToken) {
        loop {
            let update = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                update = bus.recv() => update,
            };
            match update {
                Ok(Update::Polled { snapshot, .. }) => self.take(&snapshot).await,
                Ok(Update::Failed { .. }) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "InfluxDB sink fell behind the poll bus; those polls are not stored"
                    );
                    Stats::add(&self.stats.lagged, missed);
                }
                Err(RecvError::Closed) => break,
            }
        }
        if let Err(e) = self.spool.sync().await {
            tracing::error!("InfluxDB spool not flushed at shutdown: {e}");
        }
    }

    /// Spools the point of `snapshot`.
    async fn take(&self, snapshot: &Snapshot) {
        let point = self.points.point(snapshot);
        let Some(line) = point.to_line() else {
            tracing::debug!(inverter = %snapshot.inverter, "no reading to write to InfluxDB");
            return;
        };
        match self.spool.append(point.time.timestamp_millis(), line).await {
            Ok(()) => {
                Stats::add(&self.stats.spooled, 1);
                self.wake.notify_one();
            }
            Err(e) => tracing::error!(inverter = %snapshot.inverter, "point not stored for InfluxDB: {e}"),
        }
    }
}
