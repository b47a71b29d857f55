//! Sharding: one fleet's configuration split across `n` instances (`run --shard i/n`), each
//! polling the `[[inverter]]`s whose name hashes to its index (docs/scaling.md).
//!
//! This module owns which instance polls what, and everything a shard changes in the config:
//! the inverters it keeps, its own `data_dir` below the configured one, and whether it runs the
//! service-wide parts (weather, load control, switches). It must not do I/O, and the hash must
//! never change: a different hash would move every inverter to another instance on upgrade.
//!
//! The hash is FNV-1a 64 over the UTF-8 bytes of the inverter's `name` (the `[[inverter]]` key),
//! written out here so no crate update, platform or Rust release can alter it (std's
//! `DefaultHasher` promises no such thing). A parallel stack (inverters sharing one logger, see
//! the `stack` module) is one connection, so it moves whole: its master's name decides.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Config, stack};

/// The environment variable that sets `--shard` (Kubernetes builds it from the pod's index).
pub const SHARD_ENV: &str = "INVERTER_MONITOR_SHARD";

/// This instance's part of a fleet: index `index` of `count`, `index < count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A `--shard` value that cannot be used; it names the flag and the value, as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {given}: {reason}")]
pub struct ShardError {
    /// The value as given.
    given: String,
    /// Why it cannot be used.
    reason: &'static str,
}

impl Shard {
    /// Parses `INDEX/COUNT`, e.g. `0/3`: the first of three instances.
    ///
    /// # Errors
    /// [`ShardError`] naming `--shard` and the value.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let error = |reason| ShardError { given: text.to_string(), reason };
        let (index, count) =
            text.trim().split_once('/').ok_or_else(|| error("must be INDEX/COUNT, e.g. 0/3"))?;
        let index: u32 = index.trim().parse().map_err(|_| error("the index must be a whole number"))?;
        let count: u32 = count.trim().parse().map_err(|_| error("the count must be a whole number"))?;
        if count == 0 {
            return Err(error("the count must be at least 1"));
        }
        if index >= count {
            return Err(error("the index must be below the count (indices start at 0)"));
        }
        Ok(Self { index, count })
    }

    /// This instance's index, `0..count`.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many instances share the fleet.
    pub fn count(self) -> u32 {
        self.count
    }

    /// The shard of a fleet of `self.count` that polls the inverter (or stack master) `name`.
    pub fn of(self, name: &str) -> u32 {
        // The remainder is below `count`, a u32: the cast cannot truncate.
        (fnv1a64(name.as_bytes()) % u64::from(self.count)) as u32
    }

    /// True when this shard polls `name`.
    pub fn owns(self, name: &str) -> bool {
        self.of(name) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3): tiny, with
/// published test vectors, and the same everywhere, forever.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// What sharding did to a config: this shard, and what the other shards poll, so that what
/// moved to another instance is not mistaken for what was removed from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharding {
    /// This instance's shard.
    pub shard: Shard,
    /// The inverters of the whole config, this shard's and the others'.
    pub fleet: usize,
    /// The names of the inverters the other shards poll.
    pub elsewhere: std::collections::BTreeSet<String>,
    /// True when this shard runs weather, load control and the switches: the shard that polls
    /// the control inverter (`[control] inverter`, else the first), whose readings they need.
    pub service_parts: bool,
}

impl Sharding {
    /// True when another shard publishes the MQTT device kept under `key` in the discovery
    /// ledger: an inverter's name, or a service device (`@weather`, `@control`).
    pub fn publishes_elsewhere(&self, key: &str) -> bool {
        match key.strip_prefix('@') {
            Some(_) => !self.service_parts,
            None => self.elsewhere.contains(key),
        }
    }
}

impl Config {
    /// Keeps only what shard `shard` runs: the stacks whose master's name hashes to it, the
    /// service-wide parts when it polls the control inverter, and a `data_dir` of its own
    /// (`<data_dir>/shard-<index>`), so that instances on one disk never share a state file.
    /// Call it on a validated config.
    pub fn keep_shard(&mut self, shard: Shard) {
        let stacks = stack::stacks(&self.inverters);
        let mut mine = vec![false; self.inverters.len()];
        for group in stacks.iter().filter(|group| shard.owns(&self.inverters[group[0]].name)) {
            group.iter().for_each(|&i| mine[i] = true);
        }
        let control = self.control_inverter().map(|c| c.name.clone());
        let fleet = self.inverters.len();
        let (kept, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.inverters).into_iter().enumerate().partition(|(i, _)| mine[*i]);
        self.inverters = kept.into_iter().map(|(_, inverter)| inverter).collect();
        let service_parts = control.is_some_and(|c| self.inverters.iter().any(|i| i.name == c));
        let elsewhere = others.into_iter().map(|(_, inverter)| inverter.name).collect();
        if !service_parts {
            self.weather = None;
            self.consumers.clear();
            self.switches.clear();
        }
        self.data_dir = shard_dir(&self.data_dir, shard);
        if let Some(mqtt) = &mut self.mqtt {
            mqtt.shard = Some(shard);
        }
        self.sharding = Some(Arc::new(Sharding { shard, fleet, elsewhere, service_parts }));
    }
}

/// The state directory of `shard` below the configured `data_dir`. It carries the index only:
/// a pod keeps its volume and its index when the count changes.
fn shard_dir(data_dir: &std::path::Path, shard: Shard) -> PathBuf {
    data_dir.join(format!("shard-{}", shard.index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{InverterConfig, MqttConfig, SwitchConfig};

    #[test]
    fn fnv1a64_matches_the_published_vectors() {
        // From the FNV reference test suite (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_land_where_they_always_have() {
        // Pinned: a change here moves users' inverters to other instances on upgrade.
        assert_eq!(fnv1a64(b"house"), 0x4d3e_3b7b_4e55_c31b);
        let names = ["house", "garage", "barn", "master", "second", "shed"];
        let of = |count: &str| names.map(|n| Shard::parse(count).unwrap().of(n));
        assert_eq!(of("0/1"), [0, 0, 0, 0, 0, 0]);
        assert_eq!(of("0/2"), [1, 0, 0, 1, 1, 1]);
        assert_eq!(of("0/3"), [1, 0, 0, 1, 0, 2]);
    }

    /// house, garage and roof alone; master and second, a stack on one logger.
    fn fleet() -> Config {
        let stacked = |name: &str, slave: u8| {
            let mut inverter = InverterConfig::new(name, "10.0.0.9", 8899, 1);
            inverter.slave_id = slave;
            inverter
        };
        let inverters = vec![
            InverterConfig::new("house", "10.0.0.1", 8899, 1),
            stacked("master", 1),
            InverterConfig::new("garage", "10.0.0.2", 8899, 1),
            stacked("second", 2),
            InverterConfig::new("roof", "10.0.0.3", 8899, 1),
        ];
        let mut config = Config::new(inverters);
        config.mqtt = Some(MqttConfig { client_id: Some("im".into()), ..MqttConfig::default() });
        config.switches.push(SwitchConfig::plain("boiler", "b/state", "b/set"));
        config
    }

    fn names(config: &Config) -> Vec<&str> {
        config.inverters.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn shards_partition_the_fleet_and_a_stack_moves_whole() {
        let whole = fleet();
        let shards: Vec<Config> = (0..3)
            .map(|i| {
                let mut config = whole.clone();
                config.keep_shard(Shard::parse(&format!("{i}/3")).unwrap());
                config
            })
            .collect();
        // `second` alone would hash to shard 0; its master's name takes it to shard 1.
        assert_eq!(Shard::parse("0/3").unwrap().of("second"), 0);
        assert_eq!(names(&shards[0]), ["garage", "roof"]);
        assert_eq!(names(&shards[1]), ["house", "master", "second"]);
        assert!(names(&shards[2]).is_empty(), "more shards than the fleet needs: one idles");
        assert_eq!(shards[1].stacks(), [vec![0], vec![1, 2]], "the stack is still one connection");
        for (i, shard) in shards.iter().enumerate() {
            let sharding = shard.sharding.as_ref().unwrap();
            assert_eq!(sharding.fleet, 5);
            assert_eq!(sharding.elsewhere.len() + shard.inverters.len(), 5);
            assert!(shard.inverters.iter().all(|inv| !sharding.elsewhere.contains(&inv.name)));
            assert_eq!(shard.data_dir, whole.data_dir.join(format!("shard-{i}")), "a data_dir of its own");
            let mqtt = shard.mqtt.as_ref().unwrap();
            assert_eq!(mqtt.client_id(), format!("im-shard-{i}"), "one client id per shard");
        }
        assert_eq!(
            Vec::from_iter(&shards[0].sharding.as_ref().unwrap().elsewhere),
            ["house", "master", "second"]
        );
    }

    #[test]
    fn the_shard_of_the_control_inverter_runs_the_service_parts() {
        let mut shards = [fleet(), fleet()];
        shards[0].keep_shard(Shard::parse("0/3").unwrap());
        shards[1].keep_shard(Shard::parse("1/3").unwrap());
        let [other, owner] = shards;
        // No `[control] inverter`: the first configured, house, on shard 1.
        assert!(owner.sharding.as_ref().unwrap().service_parts);
        assert_eq!(owner.switches.len(), 1);
        assert!(!other.sharding.as_ref().unwrap().service_parts);
        assert!(other.switches.is_empty() && other.weather.is_none() && other.consumers.is_empty());
        let (owner, other) = (owner.sharding.unwrap(), other.sharding.unwrap());
        assert!(other.publishes_elsewhere("@weather") && other.publishes_elsewhere("house"));
        assert!(!other.publishes_elsewhere("garage") && !other.publishes_elsewhere("removed"));
        assert!(!owner.publishes_elsewhere("@control") && owner.publishes_elsewhere("roof"));
    }

    #[test]
    fn a_bad_shard_names_the_flag_and_why() {
        let message = |text: &str| Shard::parse(text).unwrap_err().to_string();
        assert_eq!(message("3/2"), "--shard 3/2: the index must be below the count (indices start at 0)");
        assert_eq!(message("2/2"), "--shard 2/2: the index must be below the count (indices start at 0)");
        assert_eq!(message("0/0"), "--shard 0/0: the count must be at least 1");
        assert_eq!(message("1"), "--shard 1: must be INDEX/COUNT, e.g. 0/3");
        assert_eq!(message("a/3"), "--shard a/3: the index must be a whole number");
        assert_eq!(message("-1/3"), "--shard -1/3: the index must be a whole number");
        assert_eq!(Shard::parse(" 1/3 ").unwrap().to_string(), "1/3");
        assert_eq!(Shard::parse("0/1").unwrap().count(), 1);
    }
}
