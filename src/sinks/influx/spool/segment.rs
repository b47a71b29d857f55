//! Segment files: `<id>.seg` in the spool directory, records appended back to back. Naming,
//! listing, and reopening with the torn tail of a crash cut off.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record;

/// File name suffix of segments.
const SUFFIX: &str = ".seg";

/// What the spool knows about one segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    /// Its number: segments are read in this order.
    pub id: u64,
    /// Bytes of intact records.
    pub bytes: u64,
    /// Intact records.
    pub records: u64,
}

/// The path of segment `id`; zero-padded so a directory listing sorts oldest first.
pub(super) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SUFFIX}"))
}

/// The ids of the segments in `dir`, oldest first.
///
/// # Errors
/// The directory cannot be read.
pub(super) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let id = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)).and_then(|n| n.parse::<u64>().ok());
        ids.extend(id);
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Opens segment `id` after a stop of any kind: keeps its intact records and cuts off anything
/// after them (a record torn by a crash or power loss). Returns the segment and the bytes cut.
///
/// # Errors
/// The file cannot be read or truncated.
pub(super) fn recover(dir: &Path, id: u64) -> io::Result<(Segment, u64)> {
    let path = path(dir, id);
    let bytes = std::fs::read(&path)?;
    let scan = record::scan(&bytes);
    let cut = (bytes.len() - scan.valid) as u64;
    if cut > 0 {
        let file = OpenOptions::new().write(true).open(&path)?;
        file.set_len(scan.valid as u64)?;
        file.sync_all()?;
    }
    Ok((Segment { id, bytes: scan.valid as u64, records: scan.records }, cut))
}

/// Creates the empty segment `id` and makes its name durable.
///
/// # Errors
/// The file exists or cannot be created.
pub(super) fn create(dir: &Path, id: u64) -> io::Result<File> {
    let file = OpenOptions::new().append(true).create_new(true).open(path(dir, id))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Opens segment `id` for appending.
///
/// # Errors
/// The file cannot be opened.
pub(super) fn open_append(dir: &Path, id: u64) -> io::Result<File> {
    OpenOptions::new().append(true).open(path(dir, id))
}

/// Reads bytes `from..to` of segment `id`.
///
/// # Errors
/// The file cannot be read, or is shorter than `to`.
pub(super) fn read(dir: &Path, id: u64, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path(dir, id))?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0; usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX)];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Cuts segment `id` to `len` bytes, durably.
///
/// # Errors
/// The file cannot be truncated.
pub(super) fn truncate(dir: &Path, id: u64, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path(dir, id))?;
    file.set_len(len)?;
    file.sync_all()
}

/// Deletes segment `id`; a segment already gone is fine.
///
/// # Errors
/// The file exists and cannot be removed.
pub(super) fn remove(dir: &Path, id: u64) -> io::Result<()> {
    match std::fs::remove_file(path(dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes creations, renames and removals in `dir` durable.
///
/// # Errors
/// The directory cannot be opened or synced.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
