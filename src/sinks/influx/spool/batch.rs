//! Reading a batch: the oldest records from the committed position, within limits.

use super::committed::Position;
use super::record::{self, Record};

/// A place in the spool and the number of records before it in its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub(super) position: Position,
    pub(super) index: u64,
}

impl Cursor {
    /// The start of `segment`.
    pub(super) fn start(segment: u64) -> Self {
        Self { position: Position { segment, offset: 0 }, index: 0 }
    }
}

/// The oldest unacknowledged records, and where the spool stands once they are acknowledged.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// Pass to [`super::Spool::commit`] after the database took them.
    pub end: Cursor,
}

/// Fills a batch from one segment's bytes.
pub(super) struct Taker<'a> {
    pub(super) batch: &'a mut Batch,
    pub(super) bytes: &'a mut usize,
    pub(super) max_records: usize,
    pub(super) max_bytes: usize,
}

/// What [`Taker::take`] ended on.
pub(super) enum Take {
    /// The batch is full.
    Full,
    /// A damaged record at `batch.end`.
    Damaged,
    /// The segment is used up.
    More,
}

impl Taker<'_> {
    /// Takes records from `buf`, which starts at `batch.end`.
    pub(super) fn take(&mut self, buf: &[u8]) -> Take {
        let mut at = 0;
        while at < buf.len() {
            if self.batch.records.len() >= self.max_records {
                return Take::Full;
            }
            let record::Decoded::Record { time_ms, payload, len } = record::decode(&buf[at..]) else {
                return Take::Damaged;
            };
            if !self.batch.records.is_empty() && *self.bytes + payload.len() > self.max_bytes {
                return Take::Full;
            }
            *self.bytes += payload.len();
            self.batch.records.push(Record { time_ms, payload: payload.to_vec() });
            self.batch.end.position.offset += len as u64;
            self.batch.end.index += 1;
            at += len;
        }
        if self.batch.records.len() >= self.max_records { Take::Full } else { Take::More }
    }
}
