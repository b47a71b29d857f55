//! Home Assistant over MQTT: discovery for every reading, state, availability, and the switches
//! we command.
//!
//! Two tasks (docs/style.md §9): [`connection`] owns the broker connection and only polls it; the
//! [`publisher`] turns poll updates into messages, never waits on the broker (a full queue
//! drops a message, counted), keeps the latest state while the broker is away, and republishes
//! discovery, availability and state on every connect and on Home Assistant's birth message.
//! The publisher is sans-I/O: its state machine returns the messages to send and a thin task
//! ([`publisher::task`]) sends them. It must not decide what to switch: it only carries
//! commands.
//!
//! Home Assistant identity lives here: every topic in [`topics`], every entity in
//! [`discovery`] (one typed builder for inverters and the service's own devices), what was
//! announced in [`ledger`]. An inverter's identity itself is resolved once, by its poller
//! (`Snapshot::identity`).

pub(crate) mod connection;
pub(crate) mod discovery;
pub(crate) mod ledger;
pub(crate) mod publisher;
pub(crate) mod state;
pub(crate) mod switches;
pub(crate) mod topics;
pub mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MqttConfig};
use crate::poller::Update;
use discovery::{Component, DeviceInfo};
use topics::Topics;

/// A device of the service itself (load control, weather): entities fixed at start, so the
/// publisher can announce them after every connect and remove what a new configuration drops.
#[derive(Debug, Clone)]
pub struct ServiceDevice {
    /// Its key in the discovery ledger; starts with `@` so it never meets an inverter name.
    pub key: String,
    /// The device block.
    pub device: DeviceInfo,
    /// Its entities.
    pub components: Vec<Component>,
    /// Topics whose messages [`MqttHandle::messages`] hands over (its entities' commands).
    pub listen: Vec<String>,
    /// The retained topics its task publishes, emptied when the device is removed.
    pub retained: Vec<String>,
}

/// A message the MQTT task should publish for another task.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Retained messages are kept and republished after every connect.
    pub retain: bool,
}

/// What other tasks hold to follow and command switches, and to publish and listen.
#[derive(Debug, Clone)]
pub struct MqttHandle {
    commands: mpsc::Sender<(String, bool)>,
    outgoing: mpsc::Sender<Outgoing>,
    messages: broadcast::Sender<(String, Vec<u8>)>,
    writes: broadcast::Sender<crate::writes::Command>,
    states: watch::Receiver<BTreeMap<String, bool>>,
    connected: Arc<AtomicBool>,
    topics: Topics,
}

impl MqttHandle {
    /// True while the broker connection is up: a flag the metrics read at scrape time.
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    /// The last known state of switch `name`.
    pub fn state(&self, name: &str) -> Option<bool> {
        self.states.borrow().get(name).copied()
    }

    /// Every known switch state.
    pub fn states(&self) -> watch::Receiver<BTreeMap<String, bool>> {
        self.states.clone()
    }

    /// Asks for switch `name` to be turned `on` or off.
    ///
    /// # Errors
    /// The MQTT task has stopped.
    pub async fn command(&self, name: &str, on: bool) -> Result<(), mpsc::error::SendError<(String, bool)>> {
        self.commands.send((name.to_string(), on)).await
    }

    /// Publishes `payload` on `topic`, now if connected; retained ones again after reconnects.
    ///
    /// # Errors
    /// The MQTT task has stopped.
    pub async fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), mpsc::error::SendError<Outgoing>> {
        self.outgoing.send(Outgoing { topic, payload, retain }).await
    }

    /// Messages on the `listen` topics of the service devices, as (topic, payload).
    pub fn messages(&self) -> broadcast::Receiver<(String, Vec<u8>)> {
        self.messages.subscribe()
    }

    /// Setting commands from Home Assistant (`<base>/<inverter>/set/<key>`), for inverters
    /// with writes on.
    pub fn write_commands(&self) -> broadcast::Receiver<crate::writes::Command> {
        self.writes.subscribe()
    }

    /// The topics of this broker connection: where other tasks publish and listen.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }
}

/// Starts the MQTT tasks in `tasks` on `topics` (those of `mqtt`, which the service devices
/// were built with); they end after `cancel` with offline and DISCONNECT.
///
/// # Errors
/// The password file cannot be read.
pub fn spawn(
    config: &Config,
    mqtt: &MqttConfig,
    topics: Topics,
    bus: broadcast::Receiver<Update>,
    devices: Vec<ServiceDevice>,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> std::io::Result<MqttHandle> {
    let (client, eventloop) = connection::connect(mqtt, &topics)?;
    let (events_tx, events) = mpsc::channel(256);
    let (commands_tx, commands) = mpsc::channel(64);
    let (outgoing_tx, outgoing) = mpsc::channel(64);
    let (messages, _) = broadcast::channel(64);
    let (writes, _) = broadcast::channel(64);
    let (states_tx, states) = watch::channel(BTreeMap::new());
    let stop = CancellationToken::new();
    let broker = format!("{}:{}", mqtt.host, mqtt.port);
    tasks.spawn(connection::drive(eventloop, events_tx, stop.clone(), broker));
    let connected = Arc::new(AtomicBool::new(false));
    let publisher =
        publisher::Publisher::new(config, mqtt, topics.clone(), ledger::Ledger::load(&config.data_dir))
            .with_devices(devices);
    let inputs = publisher::task::Inputs { bus, events, commands, outgoing, cancel, stop };
    let outputs = publisher::task::Outputs {
        client,
        states: states_tx,
        messages: messages.clone(),
        writes: writes.clone(),
        connected: connected.clone(),
    };
    tasks.spawn(publisher::task::run(publisher, inputs, outputs));
    Ok(MqttHandle {
        commands: commands_tx,
        outgoing: outgoing_tx,
        messages,
        writes,
        states,
        connected,
        topics,
    })
}
