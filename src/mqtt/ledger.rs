//! What discovery we published, kept on disk, so entities of a removed inverter or register are
//! removed from Home Assistant even across restarts.
//!
//! The file (`<data_dir>/mqtt-discovery.json`) maps each inverter name to the discovery topics
//! and components last published. It is written atomically (temp file + rename). A missing or
//! unreadable file is an empty ledger: the worst case is an orphan entity, never a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What was published for one inverter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Every config topic published (one in device mode, one per entity otherwise).
    pub topics: Vec<String>,
    /// Component id → platform, as last published.
    pub components: BTreeMap<String, String>,
    /// Retained state topics of a service device, emptied with it when it goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<String>,
}

/// The on-disk record of published discovery.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Entry>,
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
        Self { path: Some(path), entries }
    }

    /// What was last published for `inverter`.
    pub(crate) fn get(&self, inverter: &str) -> Option<&Entry> {
        self.entries.get(inverter)
    }

    /// Inverters in the ledger that are not in `configured`.
    pub(crate) fn orphans(&self, configured: &[String]) -> Vec<String> {
        self.entries.keys().filter(|name| !configured.contains(name)).cloned().collect()
    }

    /// Records what was published for `inverter` (`None`: removed), and saves.
    pub(crate) fn set(&mut self, inverter: &str, entry: Option<Entry>) {
        if self.entries.get(inverter) == entry.as_ref() {
            return;
        }
        match entry {
            Some(entry) => self.entries.insert(inverter.to_string(), entry),
            None => self.entries.remove(inverter),
        };
        if let Err(e) = self.save() {
            tracing::warn!("cannot save the discovery ledger: {e}");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        crate::state_file::write(path, &self.entries)
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
            components: [("a".into(), "sensor".into())].into(),
            ..Entry::default()
        };
        ledger.set("house", Some(entry.clone()));
        ledger.set("garage", Some(Entry::default()));
        let reloaded = Ledger::load(dir.path());
        assert_eq!(reloaded.get("house"), Some(&entry));
        assert_eq!(reloaded.orphans(&["house".into()]), vec!["garage".to_string()]);
        std::fs::write(dir.path().join("mqtt-discovery.json"), "not json").unwrap();
        assert_eq!(Ledger::load(dir.path()).get("house"), None);
    }
}
