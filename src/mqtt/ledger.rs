//! What discovery we published, kept on disk, so entities of a removed inverter or register are
//! removed from Home Assistant even across restarts.
//!
//! The file (`<data_dir>/mqtt-discovery.json`) maps each inverter name to the discovery topics
//! and components last published. It is written atomically (temp file + rename). A missing or
//! unreadable file is an empty ledger: the worst case is an orphan entity, never a crash.
//!
//! A fleet of thousands of inverters must not make it quadratic: [`Ledger::set`] only marks
//! the ledger dirty, and its owner writes it with [`Ledger::flush`] a few seconds later and at
//! shutdown (the publisher's task does), so a burst of discoveries is one write, not one
//! growing file per inverter. And inverters of one profile announce the same components: the
//! map is held once and shared ([`Entry::components`]), not once per inverter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What was published for one inverter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Every config topic published (one in device mode, one per entity otherwise).
    pub topics: Vec<String>,
    /// Component id → platform, as last published.
    #[serde(with = "shared")]
    pub components: Arc<BTreeMap<String, String>>,
    /// Retained state topics of a service device, emptied with it when it goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<String>,
}

/// The on-disk record of published discovery.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Entry>,
    /// Every distinct component map in `entries`, for [`Ledger::set`] to share.
    shapes: Vec<Arc<BTreeMap<String, String>>>,
    /// Changed since it was last written.
    dirty: bool,
}

impl Ledger {
    /// Loads the ledger from `data_dir`, or starts empty.
    pub(crate) fn load(data_dir: &Path) -> Self {
        let path = data_dir.join("mqtt-discovery.json");
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), "discovery ledger unreadable, starting empty: {e}");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        let mut ledger = Self { path: Some(path), ..Self::default() };
        for (name, entry) in entries {
            ledger.insert(name, entry);
        }
        ledger
    }

    /// What was last published for `inverter`.
    pub(crate) fn get(&self, inverter: &str) -> Option<&Entry> {
        self.entries.get(inverter)
    }

    /// Inverters in the ledger that are not in `configured`.
    pub(crate) fn orphans(&self, configured: &[String]) -> Vec<String> {
        // A set: a fleet's ten thousand names against ten thousand entries is no quadratic scan.
        let configured: std::collections::HashSet<&str> = configured.iter().map(String::as_str).collect();
        self.entries.keys().filter(|name| !configured.contains(name.as_str())).cloned().collect()
    }

    /// Records what was published for `inverter` (`None`: removed), and saves.
    pub(crate) fn set(&mut self, inverter: &str, entry: Option<Entry>) {
        if self.entries.get(inverter) == entry.as_ref() {
            return;
        }
        match entry {
            Some(entry) => self.insert(inverter.to_string(), entry),
            None => {
                self.entries.remove(inverter);
            }
        }
        self.dirty = true;
    }

    /// Keeps `entry`, its component map shared with an equal one already held.
    fn insert(&mut self, inverter: String, mut entry: Entry) {
        match self.shapes.iter().find(|shape| **shape == entry.components) {
            Some(shape) => entry.components = shape.clone(),
            None => self.shapes.push(entry.components.clone()),
        }
        self.entries.insert(inverter, entry);
        // A shape no entry holds any more (a profile gone) is dropped; the count stays small.
        self.shapes.retain(|shape| Arc::strong_count(shape) > 1);
    }

    /// True when [`Ledger::set`] changed something not yet written.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the ledger when it changed since the last write.
    pub(crate) fn flush(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        if let Err(e) = self.save() {
            tracing::warn!("cannot save the discovery ledger: {e}");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        crate::state_file::write(path, &self.entries)
    }
}

/// (De)serialises a shared map as the map itself: the file does not know it is shared.
mod shared {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Map = BTreeMap<String, String>;

    pub(super) fn serialize<S: Serializer>(map: &Arc<Map>, serializer: S) -> Result<S::Ok, S::Error> {
        map.as_ref().serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<Map>, D::Error> {
        Map::deserialize(deserializer).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_finds_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::load(dir.path());
        let entry = Entry {
            topics: vec!["t".into()],
            components: Arc::new([("a".into(), "sensor".into())].into()),
            ..Entry::default()
        };
        ledger.set("house", Some(entry.clone()));
        ledger.set("garage", Some(Entry::default()));
        assert!(
            ledger.is_dirty() && Ledger::load(dir.path()).get("house").is_none(),
            "written at flush only"
        );
        ledger.flush();
        assert!(!ledger.is_dirty());
        let reloaded = Ledger::load(dir.path());
        assert_eq!(reloaded.get("house"), Some(&entry));
        assert_eq!(reloaded.orphans(&["house".into()]), vec!["garage".to_string()]);
        std::fs::write(dir.path().join("mqtt-discovery.json"), "not json").unwrap();
        assert_eq!(Ledger::load(dir.path()).get("house"), None);
    }

    #[test]
    fn inverters_announcing_the_same_components_share_one_map() {
        let mut ledger = Ledger::default();
        let components = || Arc::new(BTreeMap::from([("a".to_string(), "sensor".to_string())]));
        for name in ["one", "two", "three"] {
            ledger.set(name, Some(Entry { components: components(), ..Entry::default() }));
        }
        let (one, three) = (ledger.get("one").unwrap(), ledger.get("three").unwrap());
        assert!(Arc::ptr_eq(&one.components, &three.components));
        assert_eq!(ledger.shapes.len(), 1);
        ledger.set("one", Some(Entry::default()));
        assert_eq!(ledger.shapes.len(), 2, "the empty map is a shape of its own");
    }
}
