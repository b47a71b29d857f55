//! What the service learned about its loggers and keeps across restarts:
//! `<data_dir>/loggers.json`, one object per logger keyed by `host:port`.
//!
//! ```json
//! { "192.168.1.20:8899": { "serial": 2712345678, "protocol": "solarman" } }
//! ```
//!
//! It owns the file, the learned V5 serial and the protocol `auto` found in it. Keys it does not know are kept as they
//! are, so other learned facts can live in the same object. It must not decide whether a
//! learned fact is used: a configured value always wins (the [`Link`](super::Link) decides).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value};

/// The file's name in the data dir.
pub const FILE: &str = "loggers.json";

/// Serialises read-modify-write of the file between the pollers of one process.
static WRITING: Mutex<()> = Mutex::new(());

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not a JSON object of objects.
    #[error("{path} is not a JSON object of loggers: {cause}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: serde_json::Error,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// The learned facts about every logger, in `<data_dir>/loggers.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerBook {
    path: PathBuf,
}

impl LoggerBook {
    /// The book in `data_dir`; nothing is read until asked.
    pub fn new(data_dir: &Path) -> Self {
        Self { path: data_dir.join(FILE) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The serial learned for the logger at `addr` (`host:port`), if any.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed.
    pub fn serial(&self, addr: &str) -> Result<Option<u32>, Error> {
        let loggers = self.load()?;
        let serial = loggers.get(addr).and_then(|logger| logger.get("serial")).and_then(Value::as_u64);
        Ok(serial.and_then(|s| u32::try_from(s).ok()).filter(|s| *s != 0))
    }

    /// Records `serial` for the logger at `addr`, keeping everything else in the file.
    ///
    /// # Errors
    /// The file cannot be read, parsed or written.
    pub fn remember_serial(&self, addr: &str, serial: u32) -> Result<(), Error> {
        self.remember(addr, "serial", serial.into())
    }

    /// The protocol (`protocol = "…"` value) `auto` found for the logger at `addr`, if any.
    ///
    /// # Errors
    /// The file exists but cannot be read or is not a JSON object.
    pub fn protocol(&self, addr: &str) -> Result<Option<String>, Error> {
        let loggers = self.load()?;
        Ok(loggers.get(addr).and_then(|l| l.get("protocol")).and_then(Value::as_str).map(str::to_string))
    }

    /// Keeps the protocol `auto` found for the logger at `addr`.
    ///
    /// # Errors
    /// The file cannot be read, parsed or written.
    pub fn remember_protocol(&self, addr: &str, protocol: &str) -> Result<(), Error> {
        self.remember(addr, "protocol", protocol.into())
    }

    /// Sets `field` of the logger at `addr`, keeping every other fact in the file.
    fn remember(&self, addr: &str, field: &str, value: Value) -> Result<(), Error> {
        let _writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
        let mut loggers = self.load()?;
        let logger = loggers.entry(addr).or_insert_with(|| Value::Object(Map::new()));
        if !logger.is_object() {
            *logger = Value::Object(Map::new());
        }
        if let Value::Object(fields) = logger {
            fields.insert(field.into(), value);
        }
        crate::state_file::write(&self.path, &loggers)
            .map_err(|cause| Error::Write { path: self.path.clone(), cause })
    }

    /// The file's loggers; none when there is no file yet.
    fn load(&self) -> Result<Map<String, Value>, Error> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(cause) => return Err(Error::Read { path: self.path.clone(), cause }),
        };
        serde_json::from_slice(&bytes).map_err(|cause| Error::Parse { path: self.path.clone(), cause })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_is_kept_per_logger_and_other_facts_survive() {
        let dir = tempfile::tempdir().unwrap();
        let book = LoggerBook::new(dir.path());
        assert_eq!(book.serial("10.0.0.5:8899").unwrap(), None, "no file yet");
        std::fs::write(book.path(), r#"{"10.0.0.5:8899": {"max_read": 16}}"#).unwrap();
        book.remember_serial("10.0.0.5:8899", 2_712_345_678).unwrap();
        book.remember_serial("10.0.0.6:8899", 1).unwrap();
        assert_eq!(book.serial("10.0.0.5:8899").unwrap(), Some(2_712_345_678));
        assert_eq!(book.serial("10.0.0.6:8899").unwrap(), Some(1));
        assert_eq!(book.serial("10.0.0.7:8899").unwrap(), None);
        let file: Value = serde_json::from_slice(&std::fs::read(book.path()).unwrap()).unwrap();
        assert_eq!(file["10.0.0.5:8899"]["max_read"], 16, "a fact this module does not own is kept");
        book.remember_protocol("10.0.0.5:8899", "rtu-over-tcp").unwrap();
        assert_eq!(book.protocol("10.0.0.5:8899").unwrap().as_deref(), Some("rtu-over-tcp"));
        assert_eq!(book.serial("10.0.0.5:8899").unwrap(), Some(2_712_345_678), "the serial stays beside it");
        assert_eq!(book.protocol("10.0.0.6:8899").unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_book() {
        let dir = tempfile::tempdir().unwrap();
        let book = LoggerBook::new(dir.path());
        std::fs::write(book.path(), "[1, 2").unwrap();
        assert!(matches!(book.serial("a:1"), Err(Error::Parse { .. })));
        assert!(book.remember_serial("a:1", 5).is_err(), "a damaged file is not overwritten blindly");
    }
}
