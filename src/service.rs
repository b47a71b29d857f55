//! Wiring: one poller task per inverter, a broadcast bus, the sinks, and a clean shutdown.

use std::io::IsTerminal;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use std::sync::Arc;

use crate::mqtt::MqttHandle;
use crate::poller::{self, Poller, Update};
use crate::profile::ProfileError;
use crate::report;
use crate::sinks::influx::InfluxHandle;
use crate::sinks::metrics::{MetricSource, Metrics, ScrapeSources};
use crate::transport::Link;
use crate::weather::WeatherHandle;
use crate::web::WebState;
use crate::web::board::StatusBoard;

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

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A profile does not load.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The MQTT settings cannot be used (the password file, say).
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// The InfluxDB settings or its spool cannot be used.
    #[error("InfluxDB: {0}")]
    Influx(String),
    /// The weather settings cannot be used (the key file, say).
    #[error(transparent)]
    Weather(#[from] crate::weather::WeatherError),
    /// The HTTP server cannot listen.
    #[error("HTTP: cannot listen on {addr}: {cause}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
}

/// A started service: its tasks, and the door to its switches when MQTT is on.
#[derive(Debug)]
pub struct Running {
    tasks: JoinSet<()>,
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
/// # Errors
/// A profile that does not load, or MQTT, InfluxDB, weather or HTTP settings that cannot be used.
pub fn start(config: &Config, console: Console, cancel: &CancellationToken) -> Result<Running, ServiceError> {
    let profiles = config.profiles()?;
    let (bus, _) = broadcast::channel::<Update>(64);
    let mut tasks = JoinSet::new();
    if console == Console::Table {
        tasks.spawn(print_tables(bus.subscribe(), cancel.child_token()));
    }
    let mqtt = match &config.mqtt {
        Some(mqtt) => {
            tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), discovery = ?mqtt.discovery, "publishing to MQTT");
            let topics = crate::mqtt::topics::Topics::new(&mqtt.discovery_prefix, &mqtt.base_topic);
            let mut devices = Vec::new();
            if let Some(weather) = &config.weather {
                devices.push(crate::weather::publish::device(&topics, weather));
            }
            if !config.consumers.is_empty() {
                devices.push(crate::control::entities::device(&topics, &config.consumers));
            }
            let handle =
                crate::mqtt::spawn(config, mqtt, bus.subscribe(), devices, &mut tasks, cancel.child_token())
                    .map_err(|e| ServiceError::Mqtt(e.to_string()))?;
            Some(handle)
        }
        None => None,
    };
    let weather = match &config.weather {
        Some(weather) => Some(crate::weather::spawn(weather, &mut tasks, cancel.child_token())?),
        None => None,
    };
    if let (Some(weather), Some(handle), Some(settings)) = (&weather, &mqtt, &config.mqtt) {
        let publish = crate::weather::publish::run(
            weather.clone(),
            handle.clone(),
            crate::mqtt::topics::Topics::of(settings),
            cancel.child_token(),
        );
        tasks.spawn(publish);
    }
    let outlook = match &weather {
        Some(weather) => crate::control::adapter::weather_outlook(weather.clone()),
        None => crate::control::adapter::no_outlook(),
    };
    let control = crate::control::adapter::spawn(
        config,
        mqtt.as_ref(),
        outlook,
        bus.subscribe(),
        &mut tasks,
        cancel.child_token(),
    );
    let influx = match &config.influxdb {
        Some(influx) => {
            let fetches = weather.as_ref().map(WeatherHandle::subscribe);
            let handle = crate::sinks::influx::spawn(
                config,
                influx,
                bus.subscribe(),
                fetches,
                &mut tasks,
                cancel.child_token(),
            )
            .map_err(|e| ServiceError::Influx(e.to_string()))?;
            Some(handle)
        }
        None => None,
    };
    let spool = influx.clone().map(|handle| Arc::new(handle) as Arc<dyn MetricSource>);
    let sources = ScrapeSources {
        mqtt_connected: mqtt.as_ref().map(MqttHandle::connected),
        spool,
        weather: weather.clone(),
        control,
    };
    let http = match &config.http {
        Some(http) => Some(start_http(config, http, sources, &bus, &mut tasks, cancel)?),
        None => None,
    };
    if let Some(pings) = &config.health_pings {
        tasks.spawn(crate::sinks::pings::run(pings.clone(), bus.subscribe(), cancel.child_token()));
    }
    for inverter in &config.inverters {
        let poller = Poller::for_inverter(inverter, &profiles)?;
        let link = Link::new(inverter.target(), inverter.link_settings());
        tasks.spawn(poller::run(poller, link, inverter.interval, bus.clone(), cancel.child_token()));
    }
    Ok(Running { tasks, mqtt, http, influx, weather })
}

/// Binds the HTTP server and starts it with the task that keeps its view of the inverters.
fn start_http(
    config: &Config,
    http: &crate::config::HttpConfig,
    sources: ScrapeSources,
    bus: &broadcast::Sender<Update>,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
) -> Result<std::net::SocketAddr, ServiceError> {
    let addr = http.listen;
    let listen = |cause| ServiceError::Http { addr, cause };
    let listener = crate::web::bind(addr).map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    let board = Arc::new(StatusBoard::new(config, chrono::Utc::now()));
    let (weather, control) = (sources.weather.clone(), sources.control.clone());
    let metrics = Arc::new(Metrics::new(config, sources));
    tasks.spawn(crate::web::board::follow(
        board.clone(),
        metrics.clone(),
        bus.subscribe(),
        cancel.child_token(),
    ));
    let state = WebState { board, metrics, weather, control };
    let token = cancel.child_token();
    tasks.spawn(crate::web::serve(listener, state, http.clone(), token));
    tracing::info!(%bound, "HTTP: status page, /metrics, /healthz, /api/snapshot");
    Ok(bound)
}

impl Running {
    /// Waits for `cancel`, then for the tasks to finish under [`SHUTDOWN_DEADLINE`].
    pub async fn wait(mut self, cancel: CancellationToken) {
        cancel.cancelled().await;
        tracing::info!("shutting down");
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_DEADLINE, drain).await.is_err() {
            tracing::warn!("tasks did not stop within {SHUTDOWN_DEADLINE:?}; leaving anyway");
        }
    }
}

/// Runs the service until `cancel`, then waits for its tasks under a deadline.
///
/// # Errors
/// A profile that does not load, or MQTT settings that cannot be used.
pub async fn run(config: Config, console: Console, cancel: CancellationToken) -> Result<(), ServiceError> {
    start(&config, console, &cancel)?.wait(cancel).await;
    Ok(())
}

/// The console sink: a table per successful poll, a line per failure.
async fn print_tables(mut updates: broadcast::Receiver<Update>, cancel: CancellationToken) {
    let clear = std::io::stdout().is_terminal();
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = updates.recv() => update,
        };
        match update {
            Ok(Update::Polled { snapshot, .. }) => {
                // On a terminal the table redraws in place: a live view, not a scroll.
                let prefix = if clear { "\x1b[2J\x1b[H" } else { "" };
                println!("{prefix}{}", report::table(&snapshot));
            }
            Ok(Update::Failed { failure, .. }) => {
                println!(
                    "{}: poll failed ({} in a row): {}",
                    failure.inverter, failure.consecutive_failures, failure.error
                );
            }
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!("console skipped {n} updates"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
