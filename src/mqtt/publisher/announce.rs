//! The discovery pass: announcing every device after a connect or Home Assistant's birth, the
//! ledger diff that removes what a new configuration dropped, and clearing orphans (devices in
//! the ledger that are no longer configured). Part of the sans-I/O [`Publisher`]: it only asks
//! for messages.

use std::collections::BTreeMap;

use rumqttc::QoS;
use serde::Serialize;
use tokio::time::Instant;

use super::Publisher;
use crate::config::DiscoveryMode;
use crate::mqtt::discovery::{self, Component, Context, DeviceInfo};
use crate::mqtt::ledger::Entry;
use crate::poller::Change;

impl Publisher {
    /// Everything again at `now`: service devices, other tasks' retained messages, and each
    /// inverter seen so far with its discovery, availability and state, in a paced pass.
    pub(super) fn republish_all(&mut self, now: Instant) {
        for device in self.devices.clone() {
            self.publish_components(&device.key, &device.device, &device.components);
            self.remember_retained(&device.key, &device.retained);
        }
        for (topic, payload) in self.retained.clone() {
            self.publish(&topic, payload, true, QoS::AtLeastOnce);
        }
        let seen: Vec<String> =
            self.inverters.iter().filter(|(_, i)| i.device.is_some()).map(|(name, _)| name.clone()).collect();
        self.start_pass(seen, now);
    }

    /// An inverter's discovery, availability (when known) and state.
    pub(super) fn republish_inverter(&mut self, name: &str) {
        self.publish_discovery(name);
        if let Some(online) = self.inverters.get(name).and_then(|i| i.status.online) {
            self.publish_availability(name, if online { Change::Online } else { Change::Offline });
        }
        self.publish_state(name);
    }

    /// Records the retained topics of service device `key`, emptied should it be removed.
    fn remember_retained(&mut self, key: &str, retained: &[String]) {
        if let Some(mut entry) = self.ledger.get(key).cloned().filter(|e| e.retained != retained) {
            entry.retained = retained.to_vec();
            self.ledger.set(key, Some(entry));
        }
    }

    /// Publishes the discovery of inverter `name` and clears what it no longer has.
    pub(super) fn publish_discovery(&mut self, name: &str) {
        let Some(inverter) = self.inverters.get(name) else { return };
        let (Some(device), Some(profile)) = (inverter.device.clone(), inverter.profile.clone()) else {
            return;
        };
        let ctx = Context { device: &device, topics: &self.topics };
        let components = match &inverter.writes {
            Some(allowed) => {
                discovery::components_with_writes(&profile, &ctx, |key| allowed.permits(&profile, key))
            }
            None => discovery::components(&profile, &ctx),
        };
        self.publish_components(name, &device, &components);
    }

    /// Publishes the discovery of `device` (ledger key `name`) and clears what it no longer has:
    /// in device mode the gone components as `{"p": …}` stubs, in either mode the config topics
    /// published before and not now as empty retained messages.
    fn publish_components(&mut self, name: &str, device: &DeviceInfo, components: &[Component]) {
        if !self.connected {
            return;
        }
        let previous = self.ledger.get(name).cloned().unwrap_or_default();
        let current: BTreeMap<String, String> =
            components.iter().map(|c| (c.id.clone(), c.platform.as_str().to_string())).collect();
        let messages = self.discovery_messages(device, components, &previous, &current);
        let topics: Vec<String> = messages.iter().map(|(t, _)| t.clone()).collect();
        for stale in previous.topics.iter().filter(|t| !topics.contains(t)) {
            self.keep(stale, Vec::new());
        }
        for (topic, payload) in messages {
            self.keep(&topic, payload);
        }
        let retained = previous.retained;
        self.ledger.set(name, Some(Entry { topics, components: current.into(), retained }));
    }

    /// The (topic, payload) discovery messages of `device` in the configured mode.
    fn discovery_messages(
        &self,
        device: &DeviceInfo,
        components: &[Component],
        previous: &Entry,
        current: &BTreeMap<String, String>,
    ) -> Vec<(String, Vec<u8>)> {
        let ctx = Context { device, topics: &self.topics };
        match self.mode {
            DiscoveryMode::Device => {
                let topic = self.topics.device_config(&device.object_id());
                let removed = removed_components(&topic, previous, current);
                let payload = discovery::device_payload(&ctx, components, &removed);
                json(&topic, &payload).map(|bytes| (topic, bytes)).into_iter().collect()
            }
            DiscoveryMode::Entity => discovery::entity_payloads(&ctx, components)
                .into_iter()
                .filter_map(|(topic, payload)| json(&topic, &payload).map(|bytes| (topic, bytes)))
                .collect(),
        }
    }

    /// Removes from Home Assistant the devices that are no longer configured, once per run.
    pub(super) fn clear_orphans(&mut self) {
        if self.orphans_cleared {
            return;
        }
        self.orphans_cleared = true;
        let configured: Vec<String> =
            self.inverters.keys().cloned().chain(self.devices.iter().map(|d| d.key.clone())).collect();
        for name in self.ledger.orphans(&configured) {
            // Another shard publishes it now (the fleet was resharded): only forget it here.
            if self.sharding.as_ref().is_some_and(|s| s.publishes_elsewhere(&name)) {
                tracing::info!(device = %name, "published by another shard now");
                self.ledger.set(&name, None);
                continue;
            }
            let entry = self.ledger.get(&name).cloned().unwrap_or_default();
            let inverter_topics = self.orphan_topics(&name);
            for topic in entry.topics.iter().chain(&inverter_topics).chain(&entry.retained) {
                self.keep(topic, Vec::new());
            }
            self.ledger.set(&name, None);
        }
    }

    /// The retained topics of orphan `name` beyond its discovery: an inverter's state,
    /// diagnostics and availability; a service device (`@control`, `@weather`) names its own
    /// in the ledger.
    fn orphan_topics(&self, name: &str) -> Vec<String> {
        if name.starts_with('@') {
            tracing::info!(device = %name, "removing a device no longer configured");
            return Vec::new();
        }
        tracing::info!(inverter = %name, "removing the entities of an inverter no longer configured");
        vec![self.topics.state(name), self.topics.diagnostics(name), self.topics.availability(name)]
    }
}

/// The components `previous` announced on `topic` that `current` no longer has, as (id,
/// platform): stubs only where this device's message announced them, the one HA reads.
fn removed_components(
    topic: &String,
    previous: &Entry,
    current: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    if !previous.topics.contains(topic) {
        return Vec::new();
    }
    let gone = previous.components.iter().filter(|(id, _)| !current.contains_key(*id));
    gone.map(|(id, platform)| (id.clone(), platform.clone())).collect()
}

/// A discovery payload as bytes. Our payloads are plain structs of strings, which always
/// serialize; should one ever not, it is logged and left out rather than sent half-made.
fn json(topic: &str, payload: &impl Serialize) -> Option<Vec<u8>> {
    serde_json::to_vec(payload)
        .inspect_err(|e| tracing::error!(%topic, "discovery payload not serializable: {e}"))
        .ok()
}
