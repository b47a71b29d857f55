//! The publisher: poll updates in, MQTT messages out, and the republishing that keeps Home
//! Assistant in step after reconnects and restarts. It never awaits the broker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::connection::ConnEvent;
use super::discovery::{self, Component, Context, DeviceInfo};
use super::ledger::{Entry, Ledger};
use super::state::{Diagnostics, StateCache};
use super::switches::Switch;
use super::topics::Topics;
use super::{Outgoing, ServiceDevice};
use crate::config::{Config, DiscoveryMode, MqttConfig};
use crate::poller::{Change, Update};
use crate::profile::Profile;

/// Home Assistant asks for a short random delay before rediscovery, so restarts don't stampede.
const REDISCOVERY_DELAY: (u64, u64) = (500, 2500);

/// What one inverter looks like to Home Assistant, kept while the broker is away.
#[derive(Debug, Default)]
struct Inverter {
    device: Option<DeviceInfo>,
    profile: Option<std::sync::Arc<Profile>>,
    state: StateCache,
    diagnostics: Diagnostics,
    online: Option<bool>,
}

/// The channels the publisher listens to.
#[derive(Debug)]
pub struct Inputs {
    /// Poll updates.
    pub bus: broadcast::Receiver<Update>,
    /// What the connection reports.
    pub events: mpsc::Receiver<ConnEvent>,
    /// Switch commands from other tasks.
    pub commands: mpsc::Receiver<(String, bool)>,
    /// Messages other tasks publish.
    pub outgoing: mpsc::Receiver<Outgoing>,
    /// Shutdown.
    pub cancel: CancellationToken,
    /// Tells the connection task to stop once we are done.
    pub stop: CancellationToken,
}

/// Turns updates into messages; see the module docs.
#[derive(Debug)]
pub struct Publisher {
    client: AsyncClient,
    topics: Topics,
    mode: DiscoveryMode,
    ledger: Ledger,
    inverters: BTreeMap<String, Inverter>,
    switches: Vec<Switch>,
    states: watch::Sender<BTreeMap<String, bool>>,
    connected: bool,
    connected_flag: Arc<AtomicBool>,
    orphans_cleared: bool,
    rediscover_at: Option<Instant>,
    dropped: u64,
    devices: Vec<ServiceDevice>,
    messages: Option<broadcast::Sender<(String, Vec<u8>)>>,
    /// Retained messages of other tasks, republished after every connect.
    retained: BTreeMap<String, Vec<u8>>,
}

impl Publisher {
    /// A publisher for the inverters and switches of `config`.
    pub fn new(
        config: &Config,
        mqtt: &MqttConfig,
        client: AsyncClient,
        topics: Topics,
        states: watch::Sender<BTreeMap<String, bool>>,
        connected_flag: Arc<AtomicBool>,
    ) -> Self {
        let inverters = config
            .inverters
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    Inverter {
                        // A reading no longer accepted leaves the state after three intervals.
                        state: StateCache::new(i.interval * 3),
                        ..Inverter::default()
                    },
                )
            })
            .collect();
        Self {
            client,
            topics,
            mode: mqtt.discovery,
            ledger: Ledger::load(&config.data_dir),
            inverters,
            switches: config.all_switches().into_iter().map(Switch::new).collect(),
            states,
            connected: false,
            connected_flag,
            orphans_cleared: false,
            rediscover_at: None,
            dropped: 0,
            devices: Vec::new(),
            messages: None,
            retained: BTreeMap::new(),
        }
    }

    /// Adds the service's own devices, whose command messages go to `messages`.
    pub fn with_devices(
        mut self,
        devices: Vec<ServiceDevice>,
        messages: broadcast::Sender<(String, Vec<u8>)>,
    ) -> Self {
        self.devices = devices;
        self.messages = Some(messages);
        self
    }

    /// Runs until `inputs.cancel`, then says offline and disconnects.
    pub async fn run(mut self, mut inputs: Inputs) {
        let mut bus_open = true;
        loop {
            let rediscover = self.rediscover_at;
            tokio::select! {
                () = inputs.cancel.cancelled() => break,
                update = inputs.bus.recv(), if bus_open => match update {
                    Ok(update) => self.on_update(update),
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("MQTT publisher skipped {n} poll updates"),
                    Err(broadcast::error::RecvError::Closed) => bus_open = false,
                },
                Some(event) = inputs.events.recv() => self.on_event(event),
                Some((name, on)) = inputs.commands.recv() => self.command(&name, on),
                Some(out) = inputs.outgoing.recv() => self.on_outgoing(out),
                () = sleep_until(rediscover.unwrap_or_else(Instant::now)), if rediscover.is_some() => {
                    self.rediscover_at = None;
                    self.republish_all();
                }
            }
        }
        self.shutdown();
        inputs.stop.cancel();
    }

    fn on_update(&mut self, update: Update) {
        match update {
            Update::Polled { snapshot, change } => {
                let Some(inverter) = self.inverters.get_mut(&*snapshot.inverter) else { return };
                inverter.state.update(&snapshot);
                inverter.diagnostics.polled(&snapshot);
                let device = DeviceInfo::from_snapshot(&snapshot);
                let new_device = inverter.device.as_ref() != Some(&device);
                inverter.device = Some(device);
                inverter.profile = Some(snapshot.profile.clone());
                let name = snapshot.inverter.to_string();
                if new_device {
                    self.publish_discovery(&name);
                }
                self.availability_changed(&name, change);
                self.publish_state(&name);
            }
            Update::Failed { failure, change } => {
                let name = failure.inverter.to_string();
                let Some(inverter) = self.inverters.get_mut(&name) else { return };
                inverter.diagnostics.failed(&failure);
                self.availability_changed(&name, change);
                self.publish_diagnostics(&name);
            }
        }
    }

    fn availability_changed(&mut self, name: &str, change: Option<Change>) {
        let Some(change) = change else { return };
        if let Some(inverter) = self.inverters.get_mut(name) {
            inverter.online = Some(change == Change::Online);
        }
        self.publish(
            &self.topics.availability(name),
            change.as_str().as_bytes().to_vec(),
            true,
            QoS::AtLeastOnce,
        );
    }

    fn on_event(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Connected => {
                self.connected = true;
                self.connected_flag.store(true, Ordering::Relaxed);
                self.subscribe();
                self.publish(&self.topics.status(), b"online".to_vec(), true, QoS::AtLeastOnce);
                self.clear_orphans();
                self.republish_all();
            }
            ConnEvent::Disconnected => {
                self.connected = false;
                self.connected_flag.store(false, Ordering::Relaxed);
            }
            ConnEvent::Message { topic, payload } if topic == self.topics.ha_status() => {
                if &payload[..] == b"online" {
                    let delay = rand::rng().random_range(REDISCOVERY_DELAY.0..=REDISCOVERY_DELAY.1);
                    tracing::info!("Home Assistant came online; republishing discovery in {delay} ms");
                    self.rediscover_at = Some(Instant::now() + Duration::from_millis(delay));
                }
            }
            ConnEvent::Message { topic, payload }
                if self.devices.iter().any(|d| d.listen.contains(&topic)) =>
            {
                if let Some(messages) = &self.messages {
                    // Nobody listening (yet) is fine: retained commands come again on reconnect.
                    let _ = messages.send((topic, payload.to_vec()));
                }
            }
            ConnEvent::Message { topic, payload } => self.switch_state(&topic, &payload),
        }
    }

    fn on_outgoing(&mut self, out: Outgoing) {
        if out.retain {
            self.retained.insert(out.topic.clone(), out.payload.clone());
        }
        let qos = if out.retain { QoS::AtLeastOnce } else { QoS::AtMostOnce };
        self.publish(&out.topic, out.payload, out.retain, qos);
    }

    fn subscribe(&mut self) {
        let mut topics = vec![self.topics.ha_status()];
        topics.extend(self.switches.iter().map(|s| s.config().state_topic.clone()));
        topics.extend(self.devices.iter().flat_map(|d| d.listen.iter().cloned()));
        topics.sort();
        topics.dedup();
        for topic in topics {
            if let Err(e) = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                tracing::warn!(%topic, "cannot subscribe: {e}");
            }
        }
    }

    fn switch_state(&mut self, topic: &str, payload: &[u8]) {
        for switch in self.switches.iter_mut().filter(|s| s.config().state_topic == topic) {
            match switch.on_state(payload) {
                Ok(on) => {
                    let name = switch.config().name.clone();
                    self.states.send_modify(|states| {
                        states.insert(name, on);
                    });
                }
                Err(e) => tracing::warn!("ignored: {e}"),
            }
        }
    }

    fn command(&mut self, name: &str, on: bool) {
        let Some(switch) = self.switches.iter().find(|s| s.config().name == name) else {
            tracing::warn!(switch = name, "ignored a command for a switch that is not configured");
            return;
        };
        match switch.command(on) {
            Ok(payload) if self.connected => {
                tracing::info!(switch = name, on, "switch command sent");
                let topic = switch.config().command_topic.clone();
                self.publish(&topic, payload, false, QoS::AtLeastOnce);
            }
            Ok(_) => tracing::warn!(switch = name, on, "switch command not sent: the broker is unreachable"),
            Err(e) => tracing::warn!("switch command not sent: {e}"),
        }
    }

    fn republish_all(&mut self) {
        for device in self.devices.clone() {
            self.publish_components(&device.key, &device.device, &device.components);
            if let Some(mut entry) =
                self.ledger.get(&device.key).cloned().filter(|e| e.retained != device.retained)
            {
                entry.retained = device.retained.clone();
                self.ledger.set(&device.key, Some(entry));
            }
        }
        for (topic, payload) in self.retained.clone() {
            self.publish(&topic, payload, true, QoS::AtLeastOnce);
        }
        let names: Vec<String> = self.inverters.keys().cloned().collect();
        for name in names {
            let Some(inverter) = self.inverters.get(&name) else { continue };
            if inverter.device.is_none() {
                continue;
            }
            let online = inverter.online;
            self.publish_discovery(&name);
            if let Some(online) = online {
                let change = if online { Change::Online } else { Change::Offline };
                self.publish(
                    &self.topics.availability(&name),
                    change.as_str().as_bytes().to_vec(),
                    true,
                    QoS::AtLeastOnce,
                );
            }
            self.publish_state(&name);
        }
    }

    fn publish_state(&mut self, name: &str) {
        if let Some(inverter) = self.inverters.get(name).filter(|i| !i.state.is_empty()) {
            let payload = inverter.state.to_json().to_string().into_bytes();
            self.publish(&self.topics.state(name), payload, true, QoS::AtMostOnce);
        }
        self.publish_diagnostics(name);
    }

    fn publish_diagnostics(&mut self, name: &str) {
        if let Some(inverter) = self.inverters.get(name) {
            let payload = inverter.diagnostics.to_json().to_string().into_bytes();
            self.publish(&self.topics.diagnostics(name), payload, true, QoS::AtMostOnce);
        }
    }

    /// Publishes the discovery of inverter `name` and clears what it no longer has.
    fn publish_discovery(&mut self, name: &str) {
        let Some(inverter) = self.inverters.get(name) else { return };
        let (Some(device), Some(profile)) = (inverter.device.clone(), inverter.profile.clone()) else {
            return;
        };
        let components = discovery::components(&profile, &Context { device: &device, topics: &self.topics });
        self.publish_components(name, &device, &components);
    }

    /// Publishes the discovery of `device` (ledger key `name`) and clears what it no longer has.
    fn publish_components(&mut self, name: &str, device: &DeviceInfo, components: &[Component]) {
        if !self.connected {
            return;
        }
        let ctx = Context { device, topics: &self.topics };
        let previous = self.ledger.get(name).cloned().unwrap_or_default();
        let current: BTreeMap<String, String> =
            components.iter().map(|c| (c.id.clone(), c.platform.as_str().to_string())).collect();
        let messages = match self.mode {
            DiscoveryMode::Device => {
                let topic = self.topics.device_config(&device.object_id());
                let removed: Vec<(String, String)> = match previous.topics.contains(&topic) {
                    true => previous
                        .components
                        .iter()
                        .filter(|(id, _)| !current.contains_key(*id))
                        .map(|(i, p)| (i.clone(), p.clone()))
                        .collect(),
                    false => Vec::new(),
                };
                vec![(topic, payload_bytes(&discovery::device_payload(&ctx, components, &removed)))]
            }
            DiscoveryMode::Entity => discovery::entity_payloads(&ctx, components)
                .into_iter()
                .map(|(t, p)| (t, payload_bytes(&p)))
                .collect(),
        };
        let topics: Vec<String> = messages.iter().map(|(t, _)| t.clone()).collect();
        for stale in previous.topics.iter().filter(|t| !topics.contains(t)) {
            self.publish(stale, Vec::new(), true, QoS::AtLeastOnce);
        }
        for (topic, payload) in messages {
            self.publish(&topic, payload, true, QoS::AtLeastOnce);
        }
        let retained = previous.retained;
        self.ledger.set(name, Some(Entry { topics, components: current, retained }));
    }

    /// Removes from Home Assistant the inverters that are no longer configured.
    fn clear_orphans(&mut self) {
        if self.orphans_cleared {
            return;
        }
        self.orphans_cleared = true;
        let configured: Vec<String> =
            self.inverters.keys().cloned().chain(self.devices.iter().map(|d| d.key.clone())).collect();
        for name in self.ledger.orphans(&configured) {
            let entry = self.ledger.get(&name).cloned().unwrap_or_default();
            // Service devices (`@control`, `@weather`) name their retained topics in the ledger.
            let inverter_topics = match name.starts_with('@') {
                true => {
                    tracing::info!(device = %name, "removing a device no longer configured");
                    Vec::new()
                }
                false => {
                    tracing::info!(inverter = %name, "removing the entities of an inverter no longer configured");
                    vec![
                        self.topics.state(&name),
                        self.topics.diagnostics(&name),
                        self.topics.availability(&name),
                    ]
                }
            };
            for topic in entry.topics.iter().chain(&inverter_topics).chain(&entry.retained) {
                self.publish(topic, Vec::new(), true, QoS::AtLeastOnce);
            }
            self.ledger.set(&name, None);
        }
    }

    fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool, qos: QoS) {
        if !self.connected {
            return;
        }
        if let Err(e) = self.client.try_publish(topic, qos, retain, payload) {
            self.dropped += 1;
            tracing::warn!(%topic, dropped = self.dropped, "MQTT message dropped: {e}");
        }
    }

    fn shutdown(&mut self) {
        self.publish(&self.topics.status(), b"offline".to_vec(), true, QoS::AtLeastOnce);
        if self.connected {
            let _ = self.client.try_disconnect();
        }
    }
}

fn payload_bytes(payload: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap_or_default()
}
