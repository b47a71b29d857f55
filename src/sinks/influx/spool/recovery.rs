//! Opening after a stop of any kind: every segment cut after its last intact record, and the
//! committed position put back on a record boundary of a segment we still have.

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use super::batch::Cursor;
use super::committed::Position;
use super::record;
use super::segment::{self, Segment};

/// Every segment in `dir`, each cut after its last intact record; a new empty one when there
/// is none, numbered past the committed position.
pub(super) fn recover_all(dir: &Path, committed: Option<Position>) -> io::Result<VecDeque<Segment>> {
    let mut segments = VecDeque::new();
    for id in segment::list(dir)? {
        let (seg, cut) = segment::recover(dir, id)?;
        if cut > 0 {
            let file = segment::path(dir, id);
            tracing::warn!(file = %file.display(), bytes = cut, "cut a record torn by a crash off the InfluxDB spool");
        }
        segments.push_back(seg);
    }
    if segments.is_empty() {
        let id = committed.map_or(1, |p| p.segment + 1);
        segment::create(dir, id)?;
        segments.push_back(Segment { id, bytes: 0, records: 0 });
    }
    Ok(segments)
}

/// Where sending resumes: the committed position, on a record boundary of a segment we have.
pub(super) fn find_head(
    dir: &Path,
    segments: &VecDeque<Segment>,
    committed: Option<Position>,
) -> io::Result<Cursor> {
    let first = Cursor::start(segments[0].id);
    let Some(at) = committed else { return Ok(first) };
    match segments.iter().find(|s| s.id >= at.segment) {
        Some(seg) if seg.id == at.segment => {
            let head = record::scan(&segment::read(dir, seg.id, 0, at.offset.min(seg.bytes))?);
            Ok(Cursor {
                position: Position { segment: seg.id, offset: head.valid as u64 },
                index: head.records,
            })
        }
        // The committed segment was evicted: the next one is wholly unsent.
        Some(seg) => Ok(Cursor::start(seg.id)),
        // Every segment is older than the position: files were moved behind our back. Sending
        // them again is safer than losing them.
        None => Ok(first),
    }
}
