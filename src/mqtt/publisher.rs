//! The publisher: poll updates in, MQTT messages out, and the republishing that keeps Home
//! Assistant in step after reconnects and restarts.
//!
//! It is sans-I/O, as rumqttc's `state.rs` is beside its event loop. [`Publisher`] is a plain
//! state machine: each input (`on_update`, `on_event`, `on_command`, `on_outgoing`, `on_timer`,
//! `shutdown`) takes what happened (and `now` where time matters) and returns the [`Effect`]s
//! to carry out: messages to publish, topics to subscribe, messages to hand to other tasks. It
//! never touches the broker, a channel or the clock, so every rule here is unit-tested without
//! a broker. [`task`] is the thin loop around it: it awaits the inputs, sleeps until
//! [`Publisher::next_timer`], and hands each effect to the rumqttc client with `try_publish`
//! (it never waits). A full queue drops a message, counted by [`Publisher::dropped`], unless
//! it is one that must arrive (`Message::keep`: discovery, removals, availability): those come
//! back through [`Publisher::on_refused`] and are sent again, paced by [`pace`].
//!
//! ```text
//! poll bus ─┐                                   ┌─> client.try_publish / try_subscribe
//! ConnEvent ┼─> task ─> Publisher::on_…(…) ─> Vec<Effect> ─> task ─┼─> switch states (watch)
//! commands ─┤            (state, ledger)                          └─> service devices (broadcast)
//! outgoing ─┘
//! ```
//!
//! The discovery pass (what to announce, what a new configuration dropped, orphans) lives in
//! [`announce`]; how it is fed through the client's bounded queue, in [`pace`].

mod announce;
mod pace;
pub(crate) mod task;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rumqttc::QoS;
use tokio::time::Instant;

use super::connection::ConnEvent;
use super::discovery::DeviceInfo;
use super::ledger::Ledger;
use super::state::{StateCache, diagnostics_bytes};
use super::switches::Switch;
use super::topics::Topics;
use super::{Outgoing, ServiceDevice};
use crate::config::{Config, DiscoveryMode, MqttConfig};
use crate::poller::{Change, InverterStatus, Snapshot, Update};
use crate::profile::Profile;
use crate::writes::Allowed;

/// Home Assistant asks for a short random delay before rediscovery, so restarts don't stampede.
const REDISCOVERY_DELAY: RangeInclusive<Duration> = Duration::from_millis(500)..=Duration::from_millis(2500);

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The topic.
    pub topic: String,
    /// The payload; empty on a retained topic removes it.
    pub payload: Vec<u8>,
    /// Whether the broker keeps it for later subscribers.
    pub retain: bool,
    /// The quality of service.
    pub qos: QoS,
    /// It must arrive (retained config, a removal, availability): refused for a full queue,
    /// it goes back to [`Publisher::on_refused`] instead of being dropped.
    pub keep: bool,
}

/// What the publisher asks its task to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Publish a message (only ever asked for while connected).
    Publish(Message),
    /// Subscribe to a topic.
    Subscribe(String),
    /// Hand a message on a service device's topic to the tasks listening.
    Deliver {
        /// The topic.
        topic: String,
        /// The payload.
        payload: Vec<u8>,
    },
    /// A setting command for the write router, stamped with the identity its entity was
    /// announced with.
    Write(crate::writes::Command),
    /// A switch reported its state.
    SwitchState {
        /// The switch.
        name: String,
        /// On or off.
        on: bool,
    },
    /// Say goodbye to the broker.
    Disconnect,
}

/// What one inverter looks like to Home Assistant, kept while the broker is away.
#[derive(Debug)]
struct Inverter {
    device: Option<DeviceInfo>,
    profile: Option<Arc<Profile>>,
    state: StateCache,
    /// The inverter as the updates say (availability, the diagnostics' facts).
    status: InverterStatus,
    /// What Home Assistant may set, with writes on; `None`: no writable entity, no command
    /// topic subscribed.
    writes: Option<Allowed>,
}

/// Turns inputs into effects; see the module docs.
#[derive(Debug)]
pub(crate) struct Publisher {
    topics: Topics,
    mode: DiscoveryMode,
    ledger: Ledger,
    inverters: BTreeMap<String, Inverter>,
    switches: Vec<Switch>,
    devices: Vec<ServiceDevice>,
    connected: bool,
    orphans_cleared: bool,
    /// This shard and what the others publish: their devices are not orphans here.
    sharding: Option<Arc<crate::config::Sharding>>,
    rediscover_at: Option<Instant>,
    rediscovery_delay: RangeInclusive<Duration>,
    dropped: u64,
    /// The discovery pass and the refused messages waiting for room.
    pace: pace::Pace,
    /// Retained messages of other tasks, republished after every connect.
    retained: BTreeMap<String, Vec<u8>>,
    /// Effects of the input being handled, handed back when it is done.
    out: Vec<Effect>,
}

impl Publisher {
    /// A publisher for the inverters and switches of `config`, remembering in `ledger`.
    pub(crate) fn new(config: &Config, mqtt: &MqttConfig, topics: Topics, ledger: Ledger) -> Self {
        let inverters = config.inverters.iter().map(|i| {
            // A reading no longer accepted leaves the state after three intervals.
            let state = StateCache::new(i.interval * 3);
            let status = InverterStatus::new(i);
            (
                i.name.clone(),
                Inverter { device: None, profile: None, state, status, writes: i.write_allowance() },
            )
        });
        Self {
            topics,
            mode: mqtt.discovery,
            ledger,
            inverters: inverters.collect(),
            switches: config.all_switches().into_iter().map(Switch::new).collect(),
            devices: Vec::new(),
            connected: false,
            orphans_cleared: false,
            sharding: config.sharding.clone(),
            rediscover_at: None,
            rediscovery_delay: REDISCOVERY_DELAY,
            dropped: 0,
            pace: pace::Pace::default(),
            retained: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    /// Adds the service's own devices.
    pub(crate) fn with_devices(mut self, devices: Vec<ServiceDevice>) -> Self {
        self.devices = devices;
        self
    }

    #[cfg(test)]
    /// Draws the delay before rediscovery after Home Assistant's birth from `range`.
    pub(crate) fn with_rediscovery_delay(mut self, range: RangeInclusive<Duration>) -> Self {
        self.rediscovery_delay = range;
        self
    }

    /// True between a `Connected` and a `Disconnected`.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    /// When [`Publisher::on_timer`] wants to run.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        match (self.rediscover_at, self.pace.resume_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    #[cfg(test)]
    /// Messages the client refused so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Counts a message the client refused (its queue is full), and returns the count.
    pub(crate) fn on_dropped(&mut self) -> u64 {
        self.dropped += 1;
        self.dropped
    }

    /// A poll update: state, diagnostics, availability, and discovery when the device or the
    /// profile (its readings) changed.
    pub(crate) fn on_update(&mut self, update: Update) -> Vec<Effect> {
        let Some(inverter) = self.inverters.get_mut(update.inverter()) else { return self.done() };
        inverter.status.record(&update);
        match update {
            Update::Polled { snapshot, change } => self.polled(&snapshot, change),
            Update::Failed { failure, change } => {
                self.availability_changed(&failure.inverter, change);
                self.publish_diagnostics(&failure.inverter);
            }
        }
        self.done()
    }

    fn polled(&mut self, snapshot: &Arc<Snapshot>, change: Option<Change>) {
        let Some(inverter) = self.inverters.get_mut(&*snapshot.inverter) else { return };
        inverter.state.update(snapshot);
        let device = DeviceInfo::from_snapshot(snapshot);
        let new_device = inverter.device.as_ref() != Some(&device);
        // The poller swaps the profile's Arc when the readings change (battery packs found).
        let new_profile = !inverter.profile.as_ref().is_some_and(|p| Arc::ptr_eq(p, &snapshot.profile));
        inverter.device = Some(device);
        inverter.profile = Some(snapshot.profile.clone());
        let name = snapshot.inverter.to_string();
        if new_device || new_profile {
            if self.pace.busy() {
                // Behind a pass or refused messages: announced in its turn, built then.
                self.pace.pending.insert(name.clone());
            } else {
                self.publish_discovery(&name);
            }
        }
        self.availability_changed(&name, change);
        self.publish_state(&name);
    }

    /// What the connection reports, at `now`.
    pub(crate) fn on_event(&mut self, event: ConnEvent, now: Instant) -> Vec<Effect> {
        match event {
            ConnEvent::Connected => self.connected(now),
            ConnEvent::Disconnected => self.connected = false,
            ConnEvent::Message { topic, payload, .. } if topic == self.topics.ha_status() => {
                if &payload[..] == b"online" {
                    let delay = rand::rng().random_range(self.rediscovery_delay.clone());
                    tracing::info!("Home Assistant came online; republishing discovery in {delay:?}");
                    self.rediscover_at = Some(now + delay);
                }
            }
            ConnEvent::Message { topic, payload, .. }
                if self.devices.iter().any(|d| d.listen.contains(&topic)) =>
            {
                self.out.push(Effect::Deliver { topic, payload: payload.to_vec() });
            }
            ConnEvent::Message { topic, retained: true, .. } if self.topics.parse_set(&topic).is_some() => {
                // A retained setting would be written again at every connect, long after
                // whoever sent it meant it: a setting is applied only when it is sent.
                tracing::warn!(%topic, "ignored a retained setting command; clear it with `mosquitto_pub -r -n -t {topic}`");
            }
            ConnEvent::Message { topic, payload, .. } if self.topics.parse_set(&topic).is_some() => {
                self.write_command(topic, &payload);
            }
            ConnEvent::Message { topic, payload, .. } => self.switch_state(&topic, &payload),
        }
        self.done()
    }

    /// The timer of [`Publisher::next_timer`] at `now`: rediscovery once it is due, else the
    /// next step of a paced pass.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Vec<Effect> {
        if self.rediscover_at.is_some_and(|at| at <= now) {
            self.rediscover_at = None;
            self.republish_all(now);
        } else if self.pace.resume_at.is_some_and(|at| at <= now) {
            self.step(now);
        }
        self.done()
    }

    /// A message another task publishes; retained ones again after every connect.
    pub(crate) fn on_outgoing(&mut self, out: Outgoing) -> Vec<Effect> {
        if out.retain {
            self.retained.insert(out.topic.clone(), out.payload.clone());
        }
        let qos = if out.retain { QoS::AtLeastOnce } else { QoS::AtMostOnce };
        self.publish(&out.topic, out.payload, out.retain, qos);
        self.done()
    }

    /// Turns switch `name` on or off, if it is configured, its command can be built, and the
    /// broker is there (a command is never queued for later: it would be stale).
    pub(crate) fn on_command(&mut self, name: &str, on: bool) -> Vec<Effect> {
        let Some(switch) = self.switches.iter().find(|s| s.config().name == name) else {
            tracing::warn!(switch = name, "ignored a command for a switch that is not configured");
            return self.done();
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
        self.done()
    }

    /// True when the discovery ledger has changes its task should write soon ([`Publisher::flush_ledger`]).
    pub(crate) fn ledger_dirty(&self) -> bool {
        self.ledger.is_dirty()
    }

    /// Writes the discovery ledger's changes: batched by the task, one write for a burst.
    pub(crate) fn flush_ledger(&mut self) {
        self.ledger.flush();
    }

    /// The goodbye: offline on the service's status, then DISCONNECT; the ledger is written.
    pub(crate) fn shutdown(&mut self) -> Vec<Effect> {
        self.ledger.flush();
        self.publish(&self.topics.status(), b"offline".to_vec(), true, QoS::AtLeastOnce);
        if self.connected {
            self.out.push(Effect::Disconnect);
        }
        self.done()
    }

    fn done(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    fn connected(&mut self, now: Instant) {
        self.connected = true;
        self.subscribe();
        self.publish(&self.topics.status(), b"online".to_vec(), true, QoS::AtLeastOnce);
        self.clear_orphans();
        self.republish_all(now);
    }

    fn subscribe(&mut self) {
        let mut topics = vec![self.topics.ha_status()];
        topics.extend(self.switches.iter().map(|s| s.config().state_topic.clone()));
        topics.extend(self.devices.iter().flat_map(|d| d.listen.iter().cloned()));
        let writing = self.inverters.iter().filter(|(_, i)| i.writes.is_some());
        topics.extend(writing.map(|(name, _)| self.topics.set_filter(name)));
        topics.sort();
        topics.dedup();
        self.out.extend(topics.into_iter().map(Effect::Subscribe));
    }

    /// A setting command for an inverter with writes on whose entities have been announced:
    /// handed to the write router with the identity they carry. Others are not ours.
    fn write_command(&mut self, topic: String, payload: &[u8]) {
        let Some((name, key)) = self.topics.parse_set(&topic) else { return };
        let inverter = self.inverters.get(name).filter(|i| i.writes.is_some());
        let Some(device) = inverter.and_then(|i| i.device.as_ref()) else {
            tracing::debug!(%topic, "ignored a setting command: writes are off or nothing is announced yet");
            return;
        };
        let command = crate::writes::Command {
            inverter: name.to_string(),
            key: key.to_string(),
            payload: String::from_utf8_lossy(payload).into_owned(),
            identity: device.serial.clone(),
            topic: topic.clone(),
        };
        self.out.push(Effect::Write(command));
    }

    fn switch_state(&mut self, topic: &str, payload: &[u8]) {
        for switch in self.switches.iter_mut().filter(|s| s.config().state_topic == topic) {
            match switch.on_state(payload) {
                Ok(on) => self.out.push(Effect::SwitchState { name: switch.config().name.clone(), on }),
                Err(e) => tracing::warn!("ignored: {e}"),
            }
        }
    }

    fn availability_changed(&mut self, name: &str, change: Option<Change>) {
        if let Some(change) = change {
            self.publish_availability(name, change);
        }
    }

    fn publish_availability(&mut self, name: &str, change: Change) {
        let payload = change.as_str().as_bytes().to_vec();
        // Only sent on a change: lost, it would stay wrong until the next one.
        self.keep(&self.topics.availability(name), payload);
    }

    fn publish_state(&mut self, name: &str) {
        if let Some(inverter) = self.inverters.get(name).filter(|i| !i.state.is_empty()) {
            let payload = inverter.state.to_json_bytes();
            self.publish(&self.topics.state(name), payload, true, QoS::AtMostOnce);
        }
        self.publish_diagnostics(name);
    }

    fn publish_diagnostics(&mut self, name: &str) {
        if let Some(inverter) = self.inverters.get(name) {
            let payload = diagnostics_bytes(&inverter.status);
            self.publish(&self.topics.diagnostics(name), payload, true, QoS::AtMostOnce);
        }
    }

    /// Asks for a message, while connected; what happens while away is republished on connect.
    fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool, qos: QoS) {
        if self.connected {
            let message = Message { topic: topic.to_string(), payload, retain, qos, keep: false };
            self.out.push(Effect::Publish(message));
        }
    }

    /// Asks for a retained message that must arrive, while connected: a full queue hands it
    /// back to [`Publisher::on_refused`] to be sent again.
    fn keep(&mut self, topic: &str, payload: Vec<u8>) {
        if self.connected {
            // A refused older message on the topic must not be resent after this one.
            self.pace.refused.retain(|m| m.topic != topic);
            let message = Message {
                topic: topic.to_string(),
                payload,
                retain: true,
                qos: QoS::AtLeastOnce,
                keep: true,
            };
            self.out.push(Effect::Publish(message));
        }
    }
}

#[cfg(test)]
mod tests;
