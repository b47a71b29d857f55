//! Weather and the sun: cloud cover from a provider, the sun's position computed here, and from
//! both a clear-sky estimate of what the PV array should give. It informs; it decides nothing
//! (the control engine does, and must work without it).
//!
//! ```text
//! provider ──HTTP──▶ client ──ProviderAnswer──▶ task ──WeatherSnapshot──▶ WeatherHandle
//! (open_meteo,        (redacts the key)      (every interval,          latest(now), subscribe(),
//!  openweather)                               retry with backoff)       counters
//!                         sun + estimate: pure functions of the site, the sky and the time
//! ```
//!
//! - [`snapshot`](mod@snapshot): the public data; a snapshot is moved to any instant with
//!   [`WeatherSnapshot::at_time`], since the sun moves between fetches.
//! - [`sun`]: elevation, azimuth, sunrise and sunset (NREL SPA via `solar-positioning`).
//! - [`estimate`]: the clear-sky PV model, with its sources.
//! - `open_meteo`, `openweather`: request URLs and answer shapes; `client`: one fetch, with
//!   every failure classified and the API key kept out of every text.
//! - `handle`, `task`: the shared state and the fetch loop.
//!
//! A provider that is down or answers nonsense is logged and counted; the last good values stay
//! for [`STALE_AFTER_INTERVALS`] intervals, then are gone (unavailable, never zero or frozen).
//! More in `docs/weather.md`.

pub mod estimate;
pub(crate) mod publish;
pub mod snapshot;
pub(crate) mod sun;

mod client;
mod error;
mod handle;
mod open_meteo;
mod openweather;
mod task;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use crate::config::WeatherProvider;
pub use client::WeatherClient;
pub use error::{FailureKind, WeatherError};
pub use estimate::PvArray;
pub use handle::{Latest, STALE_AFTER_INTERVALS, WeatherHandle};
pub use snapshot::{HourForecast, ProviderAnswer, Site, WeatherSnapshot};
pub use sun::SunPosition;
pub use task::Schedule;

use crate::config::WeatherConfig;

/// Starts the weather task in `tasks`: a fetch at once, then every `config.interval`, until
/// `cancel`.
///
/// # Errors
/// [`WeatherError::Setup`] when the key file, the URL or the HTTP client cannot be used.
pub fn spawn(
    config: &WeatherConfig,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> Result<WeatherHandle, WeatherError> {
    let client = WeatherClient::new(config)?;
    let handle = WeatherHandle::new(Site::from_config(config), config.provider, config.interval);
    tracing::info!(
        provider = config.provider.as_str(),
        url = client.url(),
        interval = ?config.interval,
        pv_estimate = config.pv_peak_power.is_some(),
        "fetching weather"
    );
    tasks.spawn(task::run(client, handle.clone(), config.interval, cancel));
    Ok(handle)
}
