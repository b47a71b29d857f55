//! The committed position: every record before it was acknowledged by the database.
//!
//! ```text
//! file `committed`, 20 bytes
//! offset  size  field
//! 0       8     segment id, u64 little-endian
//! 8       8     byte offset in that segment, u64 little-endian (a record boundary)
//! 16      4     CRC-32 (IEEE) of bytes 0..16
//! ```
//!
//! Written whole to `committed.tmp` and renamed over `committed`: after a crash the file holds
//! either an old position or the new one, never a mix. An old position only means points are
//! sent again, which InfluxDB absorbs (a point with the same measurement, tags and time
//! overwrites itself); an unreadable one means the whole spool is sent again.
//!
//! So most stores are [`Durability::Lazy`]: write and rename, no fsync, and the kernel writes
//! it back within seconds. Two fsyncs a poll were most of the sink's CPU (docs/performance.md),
//! and they bought only fewer duplicates after a power cut. The spool stores a position at most
//! every `STORE_EVERY` (10 s), with the next append, while it keeps up, and at once when it
//! stops; a crash sends the points acknowledged since the last store again. A store before
//! segments are deleted, and at shutdown, is [`Durability::Now`]: the file, renamed, then the
//! directory.

use std::io::{self, Write};
use std::path::Path;

use super::segment;

const FILE: &str = "committed";
const TEMP: &str = "committed.tmp";

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The segment id.
    pub segment: u64,
    /// Bytes into the segment.
    pub offset: u64,
}

/// The stored position; `None` when there is none yet or it is unreadable (logged).
pub(super) fn load(dir: &Path) -> Option<Position> {
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).ok()?;
    let position = decode(&bytes);
    if position.is_none() {
        tracing::warn!(file = %path.display(), "spool position unreadable; sending the whole spool again");
    }
    position
}

/// Whether a store must be on disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Atomic, but left to the kernel's write-back: a crash may bring back an older position.
    Lazy,
    /// Atomic and on disk (file and directory fsynced) when this returns.
    Now,
}

/// Stores `position` atomically, and durably when `durability` says so.
///
/// # Errors
/// The file cannot be written, synced or renamed.
pub(super) fn store(dir: &Path, position: Position, durability: Durability) -> io::Result<()> {
    let temp = dir.join(TEMP);
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(&encode(position))?;
    if durability == Durability::Now {
        file.sync_all()?;
    }
    std::fs::rename(&temp, dir.join(FILE))?;
    match durability {
        Durability::Now => segment::sync_dir(dir),
        Durability::Lazy => Ok(()),
    }
}

fn encode(position: Position) -> [u8; 20] {
    let mut out = [0; 20];
    out[..8].copy_from_slice(&position.segment.to_le_bytes());
    out[8..16].copy_from_slice(&position.offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Position> {
    let bytes: &[u8; 20] = bytes.try_into().ok()?;
    let crc = u32::from_le_bytes(bytes[16..].try_into().ok()?);
    if crc != crc32fast::hash(&bytes[..16]) {
        return None;
    }
    Some(Position {
        segment: u64::from_le_bytes(bytes[..8].try_into().ok()?),
        offset: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let at = Position { segment: 7, offset: 1234 };
        store(dir.path(), at, Durability::Now).unwrap();
        assert_eq!(load(dir.path()), Some(at));
        let later = Position { segment: 7, offset: 2000 };
        store(dir.path(), later, Durability::Lazy).unwrap();
        assert_eq!(load(dir.path()), Some(later), "a lazy store is read back like any other");
        assert!(!dir.path().join(TEMP).exists(), "renamed, not left beside");
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        bytes[3] ^= 0x10;
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        assert_eq!(load(dir.path()), None);
        std::fs::write(dir.path().join(FILE), &bytes[..19]).unwrap();
        assert_eq!(load(dir.path()), None, "a short file is no position");
    }
}
