//! Wiring: one poller task per inverter, a broadcast bus, the sinks, supervision and a clean
//! shutdown.
//!
//! This module owns the lifetime of the service: [`start`] builds every part from the config
//! (one start function per sink, in `wiring`), [`Running::wait`] supervises the tasks until
//! shutdown. It must not hold any sink's logic; a sink is a module with a `spawn` or a `run`.
//!
//! A task that ends before shutdown stops the whole service with an error naming it (see the
//! `supervisor` module for why it is not restarted in place).

mod console;
mod supervisor;
mod wiring;

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::mqtt::MqttHandle;
use crate::poller::Update;
use crate::profile::ProfileError;
use crate::sinks::influx::{InfluxError, InfluxHandle};
use crate::weather::WeatherHandle;
use crate::writes::WriteCounters;

pub use supervisor::{TaskCause, TaskError};

use supervisor::Supervisor;
use wiring::Wiring;

/// How long tasks get to finish after shutdown is asked for.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Where the console sink prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// Print a table after every poll (the demo; `run` on a terminal).
    Table,
    /// Print nothing; logs only.
    Quiet,
}

/// Why the service could not start, or stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A profile does not load.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The MQTT settings cannot be used (the password file, say).
    #[error("MQTT")]
    Mqtt(#[source] std::io::Error),
    /// The InfluxDB settings or its spool cannot be used.
    #[error("InfluxDB")]
    Influx(#[from] InfluxError),
    /// The weather settings cannot be used (the key file, say).
    #[error(transparent)]
    Weather(#[from] crate::weather::WeatherError),
    /// The HTTP server cannot listen.
    #[error("HTTP: cannot listen on {addr}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// A task ended before shutdown.
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// A started service: its tasks, and the door to its switches when MQTT is on.
#[derive(Debug)]
pub struct Running {
    tasks: Supervisor,
    /// Follow and command switches, publish and listen (present when `[mqtt]` is configured).
    pub mqtt: Option<MqttHandle>,
    /// Where the HTTP server listens (present when `[http]` is configured).
    pub http: Option<std::net::SocketAddr>,
    /// The InfluxDB sink's counters (present when `[influxdb]` is configured).
    pub influx: Option<InfluxHandle>,
    /// Weather, sun and PV estimate, for control and MQTT (present when `[weather]` is
    /// configured).
    pub weather: Option<WeatherHandle>,
}

/// Starts the pollers and sinks of `config`; they run until `cancel`.
///
/// The config goes with the start: every task takes what it needs. It holds every profile
/// loaded, for the pollers' detection; a poller keeps the set only until its family is known,
/// so once they all know it the families not in use are freed (hundreds of KiB with the
/// built-in ones), whoever started the service.
///
/// # Errors
/// A profile that does not load, or MQTT, InfluxDB, weather or HTTP settings that cannot be used.
pub fn start(config: Config, console: Console, cancel: &CancellationToken) -> Result<Running, ServiceError> {
    let config = &config;
    let profiles = config.profiles()?;
    // A fleet's sinks may fall behind for a moment (ten thousand discovery payloads in the
    // first interval): a bus sized with the fleet keeps them from skipping polls, still bounded.
    let capacity = BUS.max(config.inverters.len() / 8);
    let (mut running, bus, writes) = sinks(config, console, cancel, capacity)?;
    let mqtt = running.mqtt.clone();
    let mut wiring = Wiring { config, bus, tasks: &mut running.tasks, cancel };
    wiring.start_pollers(&profiles, mqtt.as_ref().zip(writes))?;
    Ok(running)
}

/// The sun at the configured site (`[weather]` latitude and longitude) for the pollers' night
/// rule: down while below [`crate::poller::LOW_SUN_DEG`]. `None` without a location: the rule
/// then falls back to what the last poll saw (module `poller::night`).
pub fn sun_down(config: &Config) -> Option<crate::poller::SunDown> {
    let (latitude, longitude) = config.weather.as_ref().map(|w| (w.latitude, w.longitude))?;
    Some(std::sync::Arc::new(move |at| {
        // A time SPA cannot place is no reason to call it day.
        crate::weather::sun::angles(latitude, longitude, at)
            .is_none_or(|(elevation, _)| elevation < crate::poller::LOW_SUN_DEG)
    }))
}

/// Updates the bus holds for a sink that is behind, at least; an eighth of the inverters for
/// a fleet.
const BUS: usize = 64;

/// Starts the sinks of `config` without its pollers, and returns the bus they listen to: for
/// `replay`, which feeds it recorded polls. `capacity` is the bus's.
///
/// # Errors
/// As [`start`].
pub fn start_sinks(
    config: &Config,
    console: Console,
    cancel: &CancellationToken,
    capacity: usize,
) -> Result<(Running, broadcast::Sender<Update>), ServiceError> {
    let (running, bus, _) = sinks(config, console, cancel, capacity)?;
    Ok((running, bus))
}

/// Every part of [`start`] but the pollers; and the write counters, when writes are on.
fn sinks(
    config: &Config,
    console: Console,
    cancel: &CancellationToken,
    capacity: usize,
) -> Result<(Running, broadcast::Sender<Update>, Option<WriteCounters>), ServiceError> {
    let (bus, _) = broadcast::channel::<Update>(capacity);
    let mut tasks = Supervisor::new(cancel);
    let mut wiring = Wiring { config, bus: bus.clone(), tasks: &mut tasks, cancel };
    if console == Console::Table {
        wiring.start_console();
    }
    let mqtt = wiring.start_mqtt()?;
    let weather = wiring.start_weather(mqtt.as_ref())?;
    let control = wiring.start_control(mqtt.as_ref(), weather.as_ref());
    let influx = wiring.start_influx(weather.as_ref())?;
    let writes = config.inverters.iter().any(|i| i.writes).then(WriteCounters::default);
    let sources =
        wiring::sources(config, mqtt.as_ref(), influx.as_ref(), weather.as_ref(), control, writes.clone());
    let http = wiring.start_http(sources)?;
    wiring.start_pings();
    Ok((Running { tasks, mqtt, http, influx, weather }, bus, writes))
}

impl Running {
    /// Supervises the tasks until the token given to [`start`] is cancelled or one of them ends
    /// on its own; then stops them all and waits for them under [`SHUTDOWN_DEADLINE`].
    ///
    /// # Errors
    /// [`TaskError`] naming the task that returned, failed or panicked before shutdown.
    pub async fn wait(self) -> Result<(), TaskError> {
        self.tasks.wait().await
    }

    /// Supervises one more task, `name`, beside the service's own: an embedding program's
    /// work, or a test's probe. Like theirs, its end before shutdown stops the service.
    pub fn supervise(&mut self, name: &str, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(name, task);
    }
}

/// Runs the service until `cancel`, then waits for its tasks under a deadline.
///
/// # Errors
/// A profile that does not load, settings that cannot be used, or a task that ended before
/// shutdown.
pub async fn run(config: Config, console: Console, cancel: CancellationToken) -> Result<(), ServiceError> {
    start(config, console, &cancel)?.wait().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::InverterConfig;

    #[test]
    fn the_sun_is_down_by_the_configured_site_and_unknown_without_one() {
        let mut config = Config::new(vec![InverterConfig::new("micro", "127.0.0.1", 8899, 1)]);
        assert!(sun_down(&config).is_none(), "no location: the poller falls back");
        // Stellenbosch, UTC+2: the sun high at 10:00 UTC in June, down at 20:00 UTC.
        config.weather = Some(toml::from_str("latitude = -34.05\nlongitude = 18.85").unwrap());
        let down = sun_down(&config).unwrap();
        assert!(!down(Utc.with_ymd_and_hms(2026, 6, 21, 10, 0, 0).unwrap()));
        assert!(down(Utc.with_ymd_and_hms(2026, 6, 21, 20, 0, 0).unwrap()));
        // 16:00 UTC is 18:00 there, after the winter sunset at about 17:45.
        assert!(down(Utc.with_ymd_and_hms(2026, 6, 21, 16, 0, 0).unwrap()));
    }
}
