//! InfluxDB: every reading, through a durable on-disk spool, written when the database is up.
//!
//! Two tasks (docs/style.md §9), joined by the [`spool`]:
//!
//! ```text
//! poll bus ──▶ intake ──append + fsync──▶ spool (disk) ──peek──▶ drain ──POST──▶ InfluxDB
//!              (one point per poll)           ▲                    │
//!                                             └──── commit ◀───────┘ (only once acknowledged)
//! ```
//!
//! - [`line`](mod@line): the generic [`line::Point`] and its line-protocol text, escaped per the reference;
//!   [`inverter`] makes one point per poll of an inverter, [`weather`] one per weather fetch.
//! - [`spool`]: append-only segment files of checksummed records and a committed position,
//!   with a size cap that drops the oldest points, counted. A crash at any moment costs at most
//!   the point being appended.
//! - [`endpoint`] and [`writer`]: the v2, v1-compat (InfluxDB 1.8, the Home Assistant add-on)
//!   and v1 write APIs over reqwest, and the meaning of each answer; [`pacing`] turns answers
//!   into commit, drop, smaller batches or backoff.
//!
//! Why line protocol by hand and our own spool: `docs/influxdb.md`. The sink never blocks the
//! poll bus: a database that is down only makes the spool grow.

pub(crate) mod endpoint;
pub mod inverter;
pub(crate) mod line;
pub(crate) mod pacing;
pub mod spool;
pub(crate) mod weather;
pub(crate) mod writer;

mod drain;
mod handle;
mod intake;
mod shared;

use std::sync::Arc;

use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use handle::InfluxHandle;

use crate::config::{Config, InfluxConfig};
use crate::poller::Update;
use crate::weather::Latest;
use endpoint::{Endpoint, EndpointError};
use handle::Stats;
use shared::SharedSpool;
use spool::{Limits, Spool, SpoolError};
use writer::Writer;

/// The spool's directory under `data_dir`.
pub const SPOOL_DIR: &str = "influx-spool";

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// The URL or the credentials cannot be used.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The HTTP client cannot be built.
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The spool cannot be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Starts the intake and drain tasks in `tasks`: a point per poll from `bus`, and a point per
/// good fetch from `weather` when it is configured. Points left in the spool by an earlier run
/// are sent first, oldest first. On `cancel` the intake stops taking updates and flushes the
/// spool, and the drain finishes the write in flight.
///
/// # Errors
/// [`InfluxError`] when the URL, a secret file, the HTTP client or the spool cannot be used.
pub fn spawn(
    config: &Config,
    influx: &InfluxConfig,
    bus: broadcast::Receiver<Update>,
    weather: Option<watch::Receiver<Latest>>,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> Result<InfluxHandle, InfluxError> {
    let writer = Writer::new(Endpoint::new(influx)?, influx.timeout).map_err(InfluxError::Client)?;
    let dir = config.data_dir.join(SPOOL_DIR);
    let spool = Spool::open(&dir, Limits::new(influx.spool_max_mb.saturating_mul(1_000_000)))?;
    let stats = Arc::new(Stats::new());
    let spool = SharedSpool::new(spool, stats.clone());
    tracing::info!(url = %writer.url(), spool = %dir.display(), waiting = stats.waiting(), "writing to InfluxDB");
    let wake = Arc::new(Notify::new());
    let intake = intake::Intake {
        points: inverter::InverterPoints::new(influx),
        weather_points: weather::WeatherPoints::new(influx),
        spool: spool.clone(),
        stats: stats.clone(),
        wake: wake.clone(),
    };
    let drain =
        drain::Drain { spool, writer, stats: stats.clone(), wake, pacing: pacing::Pacing::new(influx.batch) };
    tasks.spawn(intake.run(bus, weather, cancel.clone()));
    tasks.spawn(drain.run(cancel));
    Ok(InfluxHandle { stats })
}
