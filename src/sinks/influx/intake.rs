//! The intake task: poll updates off the bus and into the spool, one point per successful poll,
//! and one point per good weather fetch. It never waits on the database, only on the local
//! disk; if it still falls behind, the bus drops the oldest updates for it, and those are
//! counted and logged.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::handle::Stats;
use super::inverter::InverterPoints;
use super::line::Point;
use super::shared::SharedSpool;
use super::weather::WeatherPoints;
use crate::poller::{Snapshot, Update};
use crate::weather::{Latest, WeatherSnapshot};

/// What the intake needs.
#[derive(Debug)]
pub(super) struct Intake {
    pub(super) points: InverterPoints,
    pub(super) weather_points: WeatherPoints,
    pub(super) spool: SharedSpool,
    pub(super) stats: Arc<Stats>,
    /// Tells the drain there is something new.
    pub(super) wake: Arc<Notify>,
}

impl Intake {
    /// Runs until `cancel` or until the bus closes, then flushes the spool. `weather` (when
    /// configured) changes with each good fetch.
    pub(super) async fn run(
        self,
        mut bus: broadcast::Receiver<Update>,
        mut weather: Option<watch::Receiver<Latest>>,
        cancel: CancellationToken,
    ) {
        loop {
            let update = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                fetched = next_weather(&mut weather) => {
                    if let Some(snapshot) = fetched {
                        self.take_weather(&snapshot).await;
                    }
                    continue;
                }
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
        self.store(&self.points.point(snapshot), &snapshot.inverter).await;
    }

    /// Spools the point of a weather fetch.
    async fn take_weather(&self, snapshot: &WeatherSnapshot) {
        self.store(&self.weather_points.point(snapshot), "weather").await;
    }

    /// Appends `point` of `source` (an inverter's name, or "weather") to the spool.
    async fn store(&self, point: &Point, source: &str) {
        let Some(line) = point.to_line() else {
            tracing::debug!(source, "no value to write to InfluxDB");
            return;
        };
        match self.spool.append(point.time.timestamp_millis(), line).await {
            Ok(()) => {
                Stats::add(&self.stats.spooled, 1);
                self.wake.notify_one();
            }
            Err(e) => tracing::error!(source, "point not stored for InfluxDB: {e}"),
        }
    }
}

/// The next good weather fetch; `None` when the weather went stale. Never completes without
/// weather, or once the weather task is gone.
async fn next_weather(weather: &mut Option<watch::Receiver<Latest>>) -> Option<Arc<WeatherSnapshot>> {
    let Some(receiver) = weather else { return std::future::pending().await };
    if receiver.changed().await.is_err() {
        *weather = None;
        return std::future::pending().await;
    }
    receiver.borrow_and_update().clone()
}
