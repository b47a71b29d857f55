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
//! Written whole to `committed.tmp`, fsynced, renamed over `committed`, and the directory
//! fsynced: after a crash the file holds either the old position or the new one, never a mix.
//! An old position only means points are sent again, which InfluxDB absorbs (a point with the
//! same measurement, tags and time overwrites itself).

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

/// Stores `position` atomically and durably.
///
/// # Errors
/// The file cannot be written, synced or renamed.
pub(super) fn store(dir: &Path, position: Position) -> io::Result<()> {
    let temp = dir.join(TEMP);
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(&encode(position))?;
    file.sync_all()?;
    std::fs::rename(&temp, dir.join(FILE))?;
    segment::sync_dir(dir)
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
        store(dir.path(), at).unwrap();
        assert_eq!(load(dir.path()), Some(at));
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        bytes[3] ^= 0x10;
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        assert_eq!(load(dir.path()), None);
        std::fs::write(dir.path().join(FILE), &bytes[..19]).unwrap();
        assert_eq!(load(dir.path()), None, "a short file is no position");
    }
}
