//! Home Assistant over MQTT: discovery for every reading, state, availability, and the switches
//! we command.
//!
//! Two tasks (STYLE 9): [`connection`] owns the broker connection and only polls it; the
//! [`publisher`] turns poll updates into messages, never waits on the broker (a full queue
//! drops a message, counted), keeps the latest state while the broker is away, and republishes
//! discovery, availability and state on every connect and on Home Assistant's birth message.
//! It must not decide what to switch: it only carries commands.

pub mod connection;
pub mod discovery;
pub mod ledger;
pub mod publisher;
pub mod state;
pub mod switches;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MqttConfig};
use crate::poller::Update;
use topics::Topics;

/// What other tasks hold to follow and command switches.
#[derive(Debug, Clone)]
pub struct SwitchHandle {
    commands: mpsc::Sender<(String, bool)>,
    states: watch::Receiver<BTreeMap<String, bool>>,
    connected: Arc<AtomicBool>,
}

impl SwitchHandle {
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
}

/// Starts the MQTT tasks in `tasks`; they end after `cancel` with offline and DISCONNECT.
///
/// # Errors
/// The password file cannot be read.
pub fn spawn(
    config: &Config,
    mqtt: &MqttConfig,
    bus: broadcast::Receiver<Update>,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> std::io::Result<SwitchHandle> {
    let topics = Topics::new(&mqtt.discovery_prefix, &mqtt.base_topic);
    let (client, eventloop) = connection::connect(mqtt, &topics)?;
    let (events_tx, events) = mpsc::channel(256);
    let (commands_tx, commands) = mpsc::channel(64);
    let (states_tx, states) = watch::channel(BTreeMap::new());
    let stop = CancellationToken::new();
    let broker = format!("{}:{}", mqtt.host, mqtt.port);
    tasks.spawn(connection::drive(eventloop, events_tx, stop.clone(), broker));
    let connected = Arc::new(AtomicBool::new(false));
    let publisher = publisher::Publisher::new(config, mqtt, client, topics, states_tx, connected.clone());
    let inputs = publisher::Inputs { bus, events, commands, cancel, stop };
    tasks.spawn(publisher.run(inputs));
    Ok(SwitchHandle { commands: commands_tx, states, connected })
}
