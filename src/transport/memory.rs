//! What `protocol = "auto"` found, kept in `<data_dir>/transport.json` so the next start does
//! not probe again: one entry per logger address, `{"192.168.1.50:8899": "solarman"}`.
//!
//! It owns the file's format and nothing else: probing is [`Link`](super::Link)'s. A file that
//! cannot be read is as good as none (the logger is probed again); one that cannot be written
//! costs a warning, never a poll.

use std::collections::BTreeMap;
use std::path::Path;

use super::Wire;

/// What the file holds; nothing when it cannot be read.
fn load(file: &Path) -> BTreeMap<String, String> {
    std::fs::read(file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

/// The wire remembered for `addr`; V5 with the configured `serial`, else one to learn.
pub(super) fn recall(file: &Path, addr: &str, serial: Option<u32>) -> Option<Wire> {
    match load(file).get(addr)?.as_str() {
        "solarman" => Some(Wire::Solarman { serial: serial.unwrap_or(0) }),
        "modbus-tcp" => Some(Wire::ModbusTcp),
        "rtu-over-tcp" => Some(Wire::RtuOverTcp),
        _ => None,
    }
}

/// Remembers that `addr` answered on `wire`.
pub(super) fn remember(file: &Path, addr: &str, wire: &Wire) {
    let Some(name) = wire.protocol() else { return };
    let mut known = load(file);
    known.insert(addr.to_string(), name.to_string());
    if let Err(e) = crate::state_file::write(file, &known) {
        tracing::warn!(file = %file.display(), "cannot remember the detected protocol: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_wire_comes_back_with_the_configured_serial() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("transport.json");
        assert_eq!(recall(&file, "h:8899", Some(1)), None);
        remember(&file, "h:8899", &Wire::Solarman { serial: 7 });
        remember(&file, "g:502", &Wire::RtuOverTcp);
        assert_eq!(recall(&file, "h:8899", Some(9)), Some(Wire::Solarman { serial: 9 }));
        let learning = Some(Wire::Solarman { serial: 0 });
        assert_eq!(recall(&file, "h:8899", None), learning, "without one, V5 learns it from the logger");
        assert_eq!(recall(&file, "g:502", None), Some(Wire::RtuOverTcp));
        std::fs::write(&file, "not json").unwrap();
        assert_eq!(recall(&file, "g:502", None), None, "a damaged file means probing again");
    }
}
