//! Home Assistant MQTT discovery: what each reading becomes, under one device per inverter, and
//! the payloads that carry the service's own devices (weather, load control) too.
//!
//! The shape: every entity is a typed [`Entity`] (see [`entity`]) made by [`Context::entity`],
//! which fills the identity every entity shares; [`sensor`], [`binary_sensor`] and
//! [`diagnostics`] make an inverter's, `weather::publish` and `control::entities` their own
//! devices'. [`device_payload`] and [`entity_payloads`] wrap them with the device and origin
//! blocks for the two discovery modes. This module only describes; the publisher sends.
//!
//! Current conventions (ecosystem.md §2): `default_entity_id` (never the retired `object_id`),
//! an origin block, `has_entity_name` naming (the name is the entity part only), no
//! `entity_category: config` on sensors, availability from both the service and the inverter.

mod binary_sensor;
mod device;
mod diagnostics;
pub(crate) mod entity;
mod sensor;
pub(crate) mod writable;

use std::collections::BTreeMap;

use serde::Serialize;

pub(crate) use device::{DeviceBlock, DeviceInfo, Origin};
pub(crate) use entity::{Entity, Platform};

use super::topics::{Topics, sanitize};
use crate::profile::Profile;

/// One entity: its component id within the device, its platform, and its config.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The id within the device (the profile key, or `monitor_…`).
    pub id: String,
    /// The platform.
    pub platform: Platform,
    /// The entity config, without `p` and without the device block.
    pub config: Entity,
}

/// What every entity of a device shares.
#[derive(Debug, Clone)]
pub(crate) struct Context<'a> {
    /// The device.
    pub device: &'a DeviceInfo,
    /// The topics.
    pub topics: &'a Topics,
}

impl Context<'_> {
    /// A new entity with the fields every entity has: name, unique_id, default_entity_id.
    pub(crate) fn entity(&self, platform: Platform, key: &str, name: &str) -> Entity {
        // Entity ids allow `[a-z0-9_]` only: a `-` in a name becomes `_`.
        let entity = sanitize(&format!("{}_{key}", self.device.inverter)).to_lowercase().replace('-', "_");
        Entity {
            name: name.to_string(),
            unique_id: format!("{}_{key}", self.device.serial),
            default_entity_id: format!("{}.{entity}", platform.as_str()),
            ..Entity::default()
        }
    }

    /// A component `key` of `platform`, with `build` filling its config past the identity.
    pub(crate) fn component(
        &self,
        platform: Platform,
        key: &str,
        name: &str,
        build: impl FnOnce(Entity) -> Entity,
    ) -> Component {
        Component { id: key.to_string(), platform, config: build(self.entity(platform, key, name)) }
    }

    /// Available only while both the service and the inverter are (availability_mode all).
    fn inverter_availability(&self, entity: Entity) -> Entity {
        entity.available_with_all(vec![self.topics.status(), self.topics.availability(&self.device.inverter)])
    }
}

/// Every entity of an inverter: one per reading, then the service's own diagnostics.
pub(crate) fn components(profile: &Profile, ctx: &Context<'_>) -> Vec<Component> {
    let readings = profile.readings.iter().map(|spec| match spec.def.bit {
        Some(_) => binary_sensor::component(spec, ctx),
        None => sensor::component(spec, ctx),
    });
    readings.chain(diagnostics::components(ctx)).collect()
}

/// [`components`], plus the writable entity of each reading `writable` allows; the sensor of
/// such a reading is announced disabled by default ([`writable`] says why it stays).
pub(crate) fn components_with_writes(
    profile: &Profile,
    ctx: &Context<'_>,
    writable: impl Fn(&str) -> bool,
) -> Vec<Component> {
    let mut all = components(profile, ctx);
    let settable: Vec<Component> = profile
        .readings
        .iter()
        .filter(|spec| writable(&spec.def.key))
        .filter_map(|spec| writable::component(spec, ctx))
        .collect();
    let ids: std::collections::HashSet<&str> = settable.iter().map(|s| s.id.as_str()).collect();
    for component in &mut all {
        if ids.contains(writable::id(&component.id).as_str()) {
            component.config.enabled_by_default = Some(false);
        }
    }
    all.extend(settable);
    all
}

/// A component in the device payload: its config with its platform, or only the platform of
/// one that is gone (Home Assistant then removes it).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Cmp<'a> {
    /// A current component.
    Present {
        /// Its platform.
        p: Platform,
        /// Its config.
        #[serde(flatten)]
        config: &'a Entity,
    },
    /// A component published before and gone now.
    Removed {
        /// Its platform, as the ledger remembers it.
        p: &'a str,
    },
}

/// The device-based discovery payload: `{"dev": …, "o": …, "cmps": {id: …}}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DevicePayload<'a> {
    /// The device block.
    pub dev: DeviceBlock,
    /// Who published it.
    pub o: Origin,
    /// Every component, by id.
    pub cmps: BTreeMap<&'a str, Cmp<'a>>,
}

/// A per-entity discovery payload: the config with the device and origin blocks.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EntityPayload<'a> {
    /// The config.
    #[serde(flatten)]
    pub config: &'a Entity,
    /// The device block.
    pub device: DeviceBlock,
    /// Who published it.
    pub origin: Origin,
}

/// The device-based discovery payload: device, origin and every component, plus `{"p": …}`
/// stubs for components that were published before and are gone now (HA removes those).
pub(crate) fn device_payload<'a>(
    ctx: &Context<'_>,
    components: &'a [Component],
    removed: &'a [(String, String)],
) -> DevicePayload<'a> {
    let present =
        components.iter().map(|c| (c.id.as_str(), Cmp::Present { p: c.platform, config: &c.config }));
    let gone = removed.iter().map(|(id, platform)| (id.as_str(), Cmp::Removed { p: platform }));
    DevicePayload { dev: ctx.device.block(), o: Origin::ours(), cmps: present.chain(gone).collect() }
}

/// The per-entity discovery messages: (topic, payload) for each component.
pub(crate) fn entity_payloads<'a>(
    ctx: &Context<'_>,
    components: &'a [Component],
) -> Vec<(String, EntityPayload<'a>)> {
    let node = ctx.device.object_id();
    let payload = |c: &'a Component| EntityPayload {
        config: &c.config,
        device: ctx.device.block(),
        origin: Origin::ours(),
    };
    components
        .iter()
        .map(|c| (ctx.topics.entity_config(c.platform.as_str(), &node, &c.id), payload(c)))
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden;

#[cfg(test)]
mod dashboards;
