//! Weather and the sun: cloud cover from a provider, the sun's position computed here, and from
//! both a clear-sky estimate of what the PV array should give. It informs; it decides nothing
//! (the control engine does, and must work without it).
//!
//! - [`snapshot`](mod@snapshot): the public data; a snapshot is moved to any instant with
//!   [`WeatherSnapshot::at_time`], since the sun moves between fetches.
//! - [`sun`]: elevation, azimuth, sunrise and sunset (NREL SPA via `solar-positioning`).
//! - [`estimate`]: the clear-sky PV model, with its sources.

pub mod estimate;
pub mod snapshot;
pub mod sun;

pub use crate::config::WeatherProvider;
pub use estimate::PvArray;
pub use snapshot::{HourForecast, Observation, Site, WeatherSnapshot};
pub use sun::SunPosition;
