//! One start function per sink: each reads its section of the config, subscribes to the bus and
//! hands its tasks to the supervisor under a name.
//!
//! This module owns the order of the start and what each sink is given (the MQTT handle for
//! load control and weather, the weather for InfluxDB, everything for the status page). It must
//! not run anything itself: tasks go to the [`Supervisor`], which judges how they end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::supervisor::{OnEnd, Supervisor};
use super::{ServiceError, console};
use crate::config::{Config, InverterConfig};
use crate::control::view::ControlView;
use crate::mqtt::MqttHandle;
use crate::poller::{self, Member, Poller, Statuses, Update};
use crate::profile::Profiles;
use crate::sinks::influx::InfluxHandle;
use crate::sinks::metrics::{MetricSource, Metrics, ScrapeSources};
use crate::transport::Link;
use crate::weather::WeatherHandle;
use crate::web::WebState;
use crate::web::board::StatusBoard;
use crate::writes::coalesce::Timing;
use crate::writes::{Allowed, Command, WriteCounters, WritePort, WriteResult};

/// What every start function needs: the config, the bus, the tasks and the shutdown token.
pub(super) struct Wiring<'a> {
    pub(super) config: &'a Config,
    pub(super) bus: broadcast::Sender<Update>,
    pub(super) tasks: &'a mut Supervisor,
    pub(super) cancel: &'a CancellationToken,
}

impl Wiring<'_> {
    /// The console table: its end (stdout closed) stops the service cleanly.
    pub(super) fn start_console(&mut self) {
        let task = console::print_tables(self.bus.subscribe(), self.cancel.child_token());
        self.tasks.spawn_with("console", OnEnd::Stop, async move { Ok(task.await?) });
    }

    /// MQTT, with the service devices (weather, load control) it announces for others.
    pub(super) fn start_mqtt(&mut self) -> Result<Option<MqttHandle>, ServiceError> {
        let Some(mqtt) = &self.config.mqtt else { return Ok(None) };
        tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), discovery = ?mqtt.discovery, "publishing to MQTT");
        let topics = crate::mqtt::topics::Topics::of(mqtt);
        let mut devices = Vec::new();
        if let Some(weather) = &self.config.weather {
            devices.push(crate::weather::publish::device(&topics, weather));
        }
        if !self.config.consumers.is_empty() {
            devices.push(crate::control::entities::device(&topics, &self.config.consumers));
        }
        let (config, bus, cancel) = (self.config, self.bus.subscribe(), self.cancel.child_token());
        let handle = self
            .tasks
            .spawn_group("mqtt", |set| crate::mqtt::spawn(config, mqtt, topics, bus, devices, set, cancel))
            .map_err(ServiceError::Mqtt)?;
        Ok(Some(handle))
    }

    /// The weather task, and its MQTT device's state when MQTT is on.
    pub(super) fn start_weather(
        &mut self,
        mqtt: Option<&MqttHandle>,
    ) -> Result<Option<WeatherHandle>, ServiceError> {
        let Some(settings) = &self.config.weather else { return Ok(None) };
        let cancel = self.cancel.child_token();
        let weather =
            self.tasks.spawn_group("weather", |set| crate::weather::spawn(settings, set, cancel))?;
        if let Some(handle) = mqtt {
            let publish =
                crate::weather::publish::run(weather.clone(), handle.clone(), self.cancel.child_token());
            self.tasks.spawn("weather to MQTT", publish);
        }
        Ok(Some(weather))
    }

    /// Load control, when there are consumers and MQTT to switch them.
    pub(super) fn start_control(
        &mut self,
        mqtt: Option<&MqttHandle>,
        weather: Option<&WeatherHandle>,
    ) -> Option<ControlView> {
        let outlook = match weather {
            Some(weather) => crate::control::adapter::weather_outlook(weather.clone()),
            None => crate::control::adapter::no_outlook(),
        };
        let (config, bus, cancel) = (self.config, self.bus.subscribe(), self.cancel.child_token());
        self.tasks.spawn_group("load control", |set| {
            crate::control::adapter::spawn(config, mqtt, outlook, bus, set, cancel)
        })
    }

    /// The InfluxDB sink, with weather points when weather is on.
    pub(super) fn start_influx(
        &mut self,
        weather: Option<&WeatherHandle>,
    ) -> Result<Option<InfluxHandle>, ServiceError> {
        let Some(influx) = &self.config.influxdb else { return Ok(None) };
        let fetches = weather.map(WeatherHandle::subscribe);
        let (config, bus, cancel) = (self.config, self.bus.subscribe(), self.cancel.child_token());
        let handle = self.tasks.spawn_group("influxdb", |set| {
            crate::sinks::influx::spawn(config, influx, bus, fetches, set, cancel)
        })?;
        Ok(Some(handle))
    }

    /// Binds the HTTP server and starts it with the task that keeps its view of the inverters.
    pub(super) fn start_http(&mut self, sources: ScrapeSources) -> Result<Option<SocketAddr>, ServiceError> {
        let Some(http) = &self.config.http else { return Ok(None) };
        let addr = http.listen;
        let listen = |cause| ServiceError::Http { addr, cause };
        let listener = crate::web::bind(addr).map_err(listen)?;
        let bound = listener.local_addr().map_err(listen)?;
        let statuses = Statuses::new(self.config);
        let data_dir = self.config.data_dir.clone();
        let board = Arc::new(StatusBoard::load(statuses.clone(), chrono::Utc::now(), &data_dir));
        let (weather, control) = (sources.weather.clone(), sources.control.clone());
        let metrics = Arc::new(Metrics::new(statuses.clone(), sources));
        let follow = crate::web::board::follow(
            statuses,
            board.clone(),
            metrics.clone(),
            self.bus.subscribe(),
            self.cancel.child_token(),
        );
        self.tasks.spawn("status view", follow);
        let keep = crate::web::board::keep(board.clone(), data_dir, self.cancel.child_token());
        self.tasks.spawn("status page history", keep);
        let shard = self.config.sharding.clone();
        let state = WebState { board, metrics, weather, control, shard };
        let serve = crate::web::serve(listener, state, http.clone(), self.cancel.child_token());
        self.tasks.spawn("http server", serve);
        tracing::info!(%bound, "HTTP: status page, /metrics, /healthz, /api/snapshot");
        Ok(Some(bound))
    }

    /// Health-check pings, when configured.
    pub(super) fn start_pings(&mut self) {
        if let Some(settings) = &self.config.health_pings {
            let pings =
                crate::sinks::pings::run(settings.clone(), self.bus.subscribe(), self.cancel.child_token());
            self.tasks.spawn("health-check pings", pings);
        }
    }

    /// One poller per inverter, last: every sink has subscribed by now. The inverters of a
    /// parallel stack share one connection and one task.
    /// With `writes` (MQTT and the counters, when an inverter has writes on), each such
    /// inverter's poll loop takes commands, routed from MQTT by one task.
    pub(super) fn start_pollers(
        &mut self,
        profiles: &Profiles,
        writes: Option<(&MqttHandle, WriteCounters)>,
    ) -> Result<(), ServiceError> {
        let inverters = &self.config.inverters;
        let tap = self.start_recorder();
        let data_dir = &self.config.data_dir;
        let sun = super::sun_down(self.config);
        let record = |poller: Poller| {
            let poller = poller.keeping_totals(data_dir).with_sun(sun.clone());
            match &tap {
                Some(tap) => poller.recording(tap.clone()),
                None => poller,
            }
        };
        if inverters.is_empty() {
            // A shard with nothing to poll (more shards than stacks) stays up and idle: the
            // sinks end when the bus's last sender goes, so one is held until shutdown.
            let (bus, cancel) = (self.bus.clone(), self.cancel.child_token());
            self.tasks.spawn("idle shard", async move {
                cancel.cancelled().await;
                drop(bus);
            });
        }
        let mut router = writes.map(|(mqtt, counters)| Router::new(mqtt.clone(), counters));
        let stacks = self.config.stacks();
        // A fleet gets one summary line, not one line per inverter at start and every minute.
        let loud = inverters.len() < poller::lateness::LOUD_FROM;
        let started = |inverter: &InverterConfig, poller: Poller, k: usize| {
            poller.log_start(inverter, loud);
            let poller = poller.starting_after(spread(inverter.interval, k, stacks.len()));
            if loud { poller } else { poller.in_fleet() }
        };
        for (k, stack) in stacks.iter().enumerate() {
            let master = &inverters[stack[0]];
            let book = crate::transport::LoggerBook::new(&self.config.data_dir);
            let link = Link::new(master.target(), master.link_settings()).with_book(book);
            let (bus, cancel) = (self.bus.clone(), self.cancel.child_token());
            if let [only] = stack[..] {
                let poller = Poller::configured(&inverters[only], profiles)?;
                let poller = record(started(&inverters[only], poller, k));
                let port = router.as_mut().and_then(|r| r.port(&[&inverters[only]]));
                let run = poller::run_with_writes(poller, link, master.interval, bus, port, cancel);
                self.tasks.spawn(format!("poller {}", master.name), run);
                continue;
            }
            let mut members = Vec::with_capacity(stack.len());
            for &i in stack {
                // The stack's default: settings on the master only.
                let inverter = &InverterConfig {
                    settings: Some(inverters[i].shows_settings(i == stack[0])),
                    ..inverters[i].clone()
                };
                let poller = record(started(inverter, Poller::configured(inverter, profiles)?, k));
                members.push(Member { poller, slave: inverter.slave_id });
            }
            let names: Vec<&str> = stack.iter().map(|&i| inverters[i].name.as_str()).collect();
            tracing::info!(logger = %master.target().addr(), inverters = ?names, "a parallel stack: one connection, polled in turn");
            let stacked: Vec<&InverterConfig> = stack.iter().map(|&i| &inverters[i]).collect();
            let port = router.as_mut().and_then(|r| r.port(&stacked));
            let run = poller::run_stack_with_writes(members, link, bus, port, cancel);
            self.tasks.spawn(format!("poller {}", names.join("+")), run);
        }
        if !loud {
            tracing::info!(
                inverters = inverters.len(),
                connections = stacks.len(),
                "polling a fleet; each poll loop's first poll spread over its interval"
            );
        }
        let every = inverters.iter().map(|i| i.interval).max().unwrap_or_default().max(LATENESS_EVERY);
        let report = poller::lateness::report(every, !loud, self.cancel.child_token());
        self.tasks.spawn("poll lateness", report);
        if let Some(router) = router.filter(|r| !r.inverters.is_empty()) {
            let run = crate::mqtt::writes::run(
                router.mqtt,
                router.inverters,
                router.results,
                self.cancel.child_token(),
            );
            self.tasks.spawn("write router", run);
        }
        Ok(())
    }
}

impl Wiring<'_> {
    /// The recorder, with `[record]`: the pollers get its tap; the writer drains it until
    /// shutdown, then writes what is queued.
    fn start_recorder(&mut self) -> Option<crate::record::Tap> {
        let settings = self.config.record.as_ref()?;
        let (tap, polls) = crate::record::Tap::new();
        let write =
            crate::record::write(settings.path.clone(), settings.rotate, polls, self.cancel.child_token());
        self.tasks.spawn_with("recorder", OnEnd::Fail, async move { Ok(write.await?) });
        Some(tap)
    }
}

/// The shortest period of the poll lateness summary.
const LATENESS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// When poll loop `k` of `loops` polls first: spread evenly over `interval`, so a fleet's polls
/// (and the sinks' work, and the files written per inverter) do not all fall at one instant.
fn spread(interval: std::time::Duration, k: usize, loops: usize) -> std::time::Duration {
    let (k, loops) = (u32::try_from(k).unwrap_or(u32::MAX), u32::try_from(loops.max(1)).unwrap_or(u32::MAX));
    interval / loops * k
}

/// The write router being wired: one command channel per inverter with writes on.
struct Router {
    mqtt: MqttHandle,
    counters: WriteCounters,
    inverters: BTreeMap<String, mpsc::Sender<Command>>,
    results: mpsc::Receiver<WriteResult>,
    results_tx: mpsc::Sender<WriteResult>,
}

impl Router {
    fn new(mqtt: MqttHandle, counters: WriteCounters) -> Self {
        let (results_tx, results) = mpsc::channel(64);
        Self { mqtt, counters, inverters: BTreeMap::new(), results, results_tx }
    }

    /// The write port of one poll loop's `inverters`, when one of them has writes on: one
    /// command channel for the loop, each inverter with writes routed to it.
    fn port(&mut self, inverters: &[&InverterConfig]) -> Option<WritePort> {
        let allowed: BTreeMap<String, Allowed> =
            inverters.iter().filter_map(|i| Some((i.name.clone(), i.write_allowance()?))).collect();
        if allowed.is_empty() {
            return None;
        }
        let (commands_tx, commands) = mpsc::channel(64);
        for name in allowed.keys() {
            self.inverters.insert(name.clone(), commands_tx.clone());
            tracing::info!(inverter = %name, "writes from Home Assistant are on");
        }
        Some(WritePort {
            commands,
            results: self.results_tx.clone(),
            allowed,
            counters: self.counters.clone(),
            timing: Timing::default(),
        })
    }
}

/// What the metrics and the status page read from the other sinks, the write counters and
/// the shard of `config`.
pub(super) fn sources(
    config: &Config,
    mqtt: Option<&MqttHandle>,
    influx: Option<&InfluxHandle>,
    weather: Option<&WeatherHandle>,
    control: Option<ControlView>,
    writes: Option<WriteCounters>,
) -> ScrapeSources {
    ScrapeSources {
        mqtt_connected: mqtt.map(MqttHandle::connected),
        spool: influx.map(|handle| Arc::new(handle.clone()) as Arc<dyn MetricSource>),
        weather: weather.cloned(),
        control,
        writes,
        shard: config.sharding.as_ref().map(|s| s.shard),
    }
}
