//! The durable queue between the poller and the database: every point is on disk before it is
//! sent, and leaves only once the database acknowledged it.
//!
//! Layout of the spool directory (`<data_dir>/influx-spool/`):
//!
//! ```text
//! 00000000000000000001.seg   records, back to back (record.rs: length | CRC-32 | time | line)
//! 00000000000000000002.seg   a new segment starts when the last one passes Limits::segment_bytes
//! committed                  the first unacknowledged record (committed.rs), replaced atomically
//! ```
//!
//! - **Append**: frames are written to the last segment with one `write`, then `fdatasync`; a
//!   failed write is cut back off, so no half frame sits before later records.
//! - **Read**: [`Spool::peek`] returns the oldest records from the committed position;
//!   [`Spool::commit`] moves that position past them and deletes segments that are wholly
//!   behind it. The position is stored (an atomic rename, see committed.rs) at most every
//!   [`STORE_EVERY`], by the next append or commit that goes to the disk anyway; fsynced before
//!   segments are deleted, and at shutdown.
//! - **Caught up**: a drain that keeps up sends each append's records right after they are
//!   written. [`Spool::peek_fresh`] serves those from the bytes just written and synced, and
//!   [`Spool::commit_in_memory`] acknowledges them when that needs no disk, so the shared spool
//!   runs both on the runtime thread instead of two trips to the blocking pool a poll, at every
//!   interval: the position they acknowledge is stored by the next append.
//! - **Crash**: on [`Spool::open`] every segment is scanned and cut at its first torn or damaged
//!   frame. Only the record being appended at the moment of a crash can be torn, and it had not
//!   been acknowledged to anyone. A crash between an acknowledgement and the commit sends a
//!   batch twice; InfluxDB overwrites identical points.
//! - **Cap**: before an append that would pass [`Limits::max_bytes`], whole segments are dropped
//!   oldest first, counted in [`Spool::dropped`] and logged.
//!
//! Invariant: the committed position is always in the first segment; the last segment is the
//! one appended to.

mod batch;
mod committed;
mod record;
mod recovery;
mod segment;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use batch::{Batch, Cursor};
use batch::{Take, Taker};
use committed::Durability;
pub use committed::Position;
pub use record::Record;
use recovery::{find_head, recover_all};
use segment::Segment;

/// How long an acknowledged position may live only in memory before it is stored. A crash
/// within it sends those points again, which InfluxDB absorbs (committed.rs); the kernel's own
/// write-back of a lazily stored file leaves a power cut the same window (30 s by default).
pub const STORE_EVERY: Duration = Duration::from_secs(10);

/// The most bytes of one append kept in memory for [`Spool::peek_fresh`].
const FRESH_MAX: usize = 64 << 10;

/// Size limits of a spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes the segments may take together.
    pub max_bytes: u64,
    /// A segment this large is closed and a new one started; it is also what one eviction drops.
    pub segment_bytes: u64,
}

impl Limits {
    /// A cap of `max_bytes`, evicted in steps of about 1/32 of it (4 KiB to 4 MiB).
    pub fn new(max_bytes: u64) -> Self {
        Self { max_bytes, segment_bytes: (max_bytes / 32).clamp(4096, 4 << 20) }
    }
}

/// Why the spool failed: the disk said no.
#[derive(Debug, thiserror::Error)]
#[error("spool {}: {action}: {source}", dir.display())]
pub struct SpoolError {
    /// The spool directory.
    pub dir: PathBuf,
    /// What we were doing.
    pub action: &'static str,
    /// What the file system said.
    #[source]
    pub source: io::Error,
}

/// How much is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Unacknowledged records.
    pub records: u64,
    /// Bytes they take on disk.
    pub bytes: u64,
    /// Time of the oldest, Unix milliseconds.
    pub oldest_ms: Option<i64>,
}

/// The durable queue; see the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    segments: VecDeque<Segment>,
    active: File,
    head: Cursor,
    oldest_ms: Option<i64>,
    dropped: u64,
    /// Where the last append starts, its frames and how many, while they fit [`FRESH_MAX`].
    fresh: Option<(Cursor, Vec<u8>, u64)>,
    /// The position the `committed` file holds (or will, once the kernel writes it back).
    stored: Position,
    /// When `stored` was written.
    stored_at: Instant,
    /// [`STORE_EVERY`]; the tests shorten it.
    store_every: Duration,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, cutting off whatever a crash left torn.
    ///
    /// # Errors
    /// [`SpoolError`] when the directory or a segment cannot be read or repaired.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, SpoolError> {
        let fail = |action| move |source| SpoolError { dir: dir.to_path_buf(), action, source };
        std::fs::create_dir_all(dir).map_err(fail("creating the directory"))?;
        let committed = committed::load(dir);
        let segments = recover_all(dir, committed).map_err(fail("recovering segments"))?;
        let head = find_head(dir, &segments, committed).map_err(fail("finding the committed position"))?;
        let last = segments.back().expect("at least one segment").id;
        let active = segment::open_append(dir, last).map_err(fail("opening the last segment"))?;
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limits,
            segments,
            active,
            head,
            oldest_ms: None,
            dropped: 0,
            fresh: None,
            stored: committed.unwrap_or_default(),
            stored_at: Instant::now(),
            store_every: STORE_EVERY,
        };
        spool.settle(committed)?;
        Ok(spool)
    }

    /// Appends records of (time in Unix milliseconds, line) and makes them durable, dropping the
    /// oldest records first when the cap would be passed. A record larger than the whole cap is
    /// dropped itself. Drops are counted in [`Spool::dropped`] and logged.
    ///
    /// # Errors
    /// [`SpoolError`] when the disk refuses; nothing of this call is then in the spool.
    pub fn append(&mut self, records: &[(i64, &[u8])]) -> Result<(), SpoolError> {
        let (frames, count, first_ms) = self.frames(records);
        if count == 0 {
            return Ok(());
        }
        self.make_room(frames.len() as u64)?;
        self.roll_if_full()?;
        let last = *self.segments.back().expect("at least one segment");
        let start =
            Cursor { position: Position { segment: last.id, offset: last.bytes }, index: last.records };
        let was_empty = self.depth().records == 0;
        self.write_active(&frames, count)?;
        // The append is on the disk's side already: a due position rides along, so that the
        // caught-up drain's commits never need the disk.
        self.store_if_due()?;
        if was_empty {
            // The oldest record is the first one just written: no need to read it back.
            self.oldest_ms = first_ms;
        } else if self.oldest_ms.is_none() {
            self.refresh_oldest()?;
        }
        self.fresh = (frames.len() <= FRESH_MAX).then_some((start, frames, count));
        Ok(())
    }

    /// [`Spool::peek`] without the disk, when the unacknowledged records are exactly those of
    /// the last append: they are served from the bytes that append wrote and synced. `None`
    /// when anything else is waiting (then [`Spool::peek`] reads the segments).
    pub fn peek_fresh(&self, max_records: usize, max_bytes: usize) -> Option<Batch> {
        let (start, frames, count) = self.fresh.as_ref()?;
        let last = self.segments.back()?;
        let last_written =
            last.id == start.position.segment && last.bytes == start.position.offset + frames.len() as u64;
        // The head may still sit at the end of the segment before (a roll since it was reached).
        if !last_written || self.depth().records != *count {
            return None;
        }
        let mut batch = Batch { records: Vec::new(), end: *start };
        let mut bytes = 0;
        match (Taker { batch: &mut batch, bytes: &mut bytes, max_records, max_bytes }).take(frames) {
            Take::Damaged => None,
            Take::Full | Take::More => Some(batch),
        }
    }

    /// [`Spool::commit`] when it needs no disk: `end` acknowledges everything in the only
    /// segment. The position stays in memory until the next append (or a commit on the disk, or
    /// shutdown) stores it. False, with nothing changed, when it needs the disk.
    pub fn commit_in_memory(&mut self, end: Cursor) -> bool {
        if end.position <= self.head.position {
            return true;
        }
        let last = self.segments.back().expect("at least one segment");
        let drains =
            self.segments.len() == 1 && end.position == Position { segment: last.id, offset: last.bytes };
        if !drains {
            return false;
        }
        self.head = end;
        self.oldest_ms = None;
        true
    }

    /// Up to `max_records` of the oldest unacknowledged records, and no more than `max_bytes` of
    /// lines unless one record alone is larger. A record found damaged (the disk changed under
    /// us since it was written) is dropped with the rest of its segment, counted and logged.
    ///
    /// # Errors
    /// [`SpoolError`] when a segment cannot be read.
    pub fn peek(&mut self, max_records: usize, max_bytes: usize) -> Result<Batch, SpoolError> {
        let mut batch = Batch { records: Vec::new(), end: self.head };
        let mut bytes = 0;
        let mut damaged = Vec::new();
        for seg in &self.segments {
            if seg.id != batch.end.position.segment {
                batch.end = Cursor::start(seg.id);
            }
            let from = batch.end.position.offset;
            if from >= seg.bytes {
                continue;
            }
            let buf = segment::read(&self.dir, seg.id, from, seg.bytes).map_err(self.fail("reading"))?;
            let mut taker = Taker { batch: &mut batch, bytes: &mut bytes, max_records, max_bytes };
            match taker.take(&buf) {
                Take::Full => break,
                Take::Damaged => damaged.push(batch.end),
                Take::More => {}
            }
        }
        for at in damaged {
            self.cut(at)?;
        }
        Ok(batch)
    }

    /// Marks everything before `end` (from [`Spool::peek`]) as acknowledged, and deletes
    /// segments wholly behind it. The position reaches the disk for sure only when segments go
    /// (a crash may otherwise bring back an older one: points sent twice, never lost). A stale `end` (the records were evicted meanwhile) is
    /// ignored.
    ///
    /// # Errors
    /// [`SpoolError`] when the position cannot be stored or a segment removed.
    pub fn commit(&mut self, end: Cursor) -> Result<(), SpoolError> {
        if end.position <= self.head.position {
            return Ok(());
        }
        self.head = end;
        let done = self.advance_past_finished();
        if !done.is_empty() {
            // Durable before a segment goes: a crash must not bring back a position inside it.
            self.store(Durability::Now)?;
        } else {
            self.store_if_due()?;
        }
        self.remove(done)?;
        self.refresh_oldest()
    }

    /// Flushes the last segment and the committed position to disk (appends already flush
    /// their records; this is for shutdown, so a clean restart sends nothing twice).
    ///
    /// # Errors
    /// [`SpoolError`] when the disk refuses.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.active.sync_all().map_err(self.fail("syncing"))?;
        self.store(Durability::Now)
    }

    /// Stores the acknowledged position, without an fsync, when it moved and the stored one is
    /// older than [`STORE_EVERY`].
    fn store_if_due(&mut self) -> Result<(), SpoolError> {
        if self.head.position != self.stored && self.stored_at.elapsed() >= self.store_every {
            self.store(Durability::Lazy)?;
        }
        Ok(())
    }

    /// Stores the acknowledged position.
    fn store(&mut self, durability: Durability) -> Result<(), SpoolError> {
        committed::store(&self.dir, self.head.position, durability)
            .map_err(self.fail("storing the position"))?;
        self.stored = self.head.position;
        self.stored_at = Instant::now();
        Ok(())
    }

    /// What is waiting to be sent.
    pub fn depth(&self) -> Depth {
        let records: u64 = self.segments.iter().map(|s| s.records).sum();
        Depth {
            records: records - self.head.index,
            bytes: self.total_bytes() - self.head.position.offset,
            oldest_ms: self.oldest_ms,
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records dropped since [`Spool::open`]: evicted by the cap, too large, or damaged.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(io::Error) -> SpoolError + use<> {
        let dir = self.dir.clone();
        move |source| SpoolError { dir, action, source }
    }

    /// After opening: drops what was wholly sent and puts a stale position file back in step.
    fn settle(&mut self, committed: Option<Position>) -> Result<(), SpoolError> {
        let done = self.advance_past_finished();
        if committed.is_some_and(|at| at != self.head.position) {
            // Else records appended after a cut below the stale position would count as sent.
            self.store(Durability::Now)?;
        }
        self.stored = self.head.position;
        self.remove(done)?;
        self.refresh_oldest()
    }

    /// Deletes the segment files `ids`.
    fn remove(&self, ids: Vec<u64>) -> Result<(), SpoolError> {
        for id in ids {
            segment::remove(&self.dir, id).map_err(self.fail("removing a sent segment"))?;
        }
        Ok(())
    }

    /// The frames of `records`, how many, and the first one's time; a record larger than the
    /// cap is dropped, counted.
    fn frames(&mut self, records: &[(i64, &[u8])]) -> (Vec<u8>, u64, Option<i64>) {
        let largest = self.limits.max_bytes.min(record::MAX_PAYLOAD as u64);
        let mut frames = Vec::new();
        let mut count = 0;
        let mut first_ms = None;
        for &(time_ms, payload) in records {
            if record::frame_len(payload.len()) as u64 > largest {
                tracing::warn!(
                    bytes = payload.len(),
                    "a point larger than the whole InfluxDB spool was dropped"
                );
                self.dropped += 1;
                continue;
            }
            record::encode(time_ms, payload, &mut frames);
            count += 1;
            first_ms = first_ms.or(Some(time_ms));
        }
        (frames, count, first_ms)
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Evicts the oldest segments until `need` more bytes fit under the cap.
    fn make_room(&mut self, need: u64) -> Result<(), SpoolError> {
        let mut lost = 0;
        while self.total_bytes() > 0 && self.total_bytes() + need > self.limits.max_bytes {
            lost += self.evict_oldest()?;
        }
        if lost > 0 {
            self.dropped += lost;
            let cap_mb = self.limits.max_bytes / 1_000_000;
            tracing::warn!(
                dropped = lost,
                dropped_total = self.dropped,
                cap_mb,
                "InfluxDB spool is full: dropped the oldest points"
            );
        }
        Ok(())
    }

    /// Deletes the first segment; returns how many unacknowledged records went with it.
    fn evict_oldest(&mut self) -> Result<u64, SpoolError> {
        if self.segments.len() == 1 {
            self.roll()?;
        }
        let oldest = self.segments.pop_front().expect("two segments after a roll");
        segment::remove(&self.dir, oldest.id).map_err(self.fail("evicting a segment"))?;
        let lost = oldest.records - self.head.index;
        self.head = Cursor::start(self.segments[0].id);
        self.refresh_oldest()?;
        Ok(lost)
    }

    fn roll_if_full(&mut self) -> Result<(), SpoolError> {
        let last = self.segments.back().expect("at least one segment");
        if last.bytes >= self.limits.segment_bytes { self.roll() } else { Ok(()) }
    }

    /// Starts a new last segment; the current one was synced by its last append.
    fn roll(&mut self) -> Result<(), SpoolError> {
        let id = self.segments.back().expect("at least one segment").id + 1;
        self.active = segment::create(&self.dir, id).map_err(self.fail("creating a segment"))?;
        self.segments.push_back(Segment { id, bytes: 0, records: 0 });
        Ok(())
    }

    fn write_active(&mut self, frames: &[u8], count: u64) -> Result<(), SpoolError> {
        let last = *self.segments.back().expect("at least one segment");
        if let Err(e) = self.active.write_all(frames).and_then(|()| self.active.sync_data()) {
            // Leave no half frame behind: recovery would cut every later record with it.
            let _ = segment::truncate(&self.dir, last.id, last.bytes);
            return Err(self.fail("appending")(e));
        }
        let last = self.segments.back_mut().expect("at least one segment");
        last.bytes += frames.len() as u64;
        last.records += count;
        Ok(())
    }

    /// Drops the segments wholly behind the head from memory; returns their ids for deletion.
    fn advance_past_finished(&mut self) -> Vec<u64> {
        let mut done = Vec::new();
        while let Some(&front) = self.segments.front() {
            let head = self.head.position;
            let finished = front.id < head.segment
                || (front.id == head.segment && head.offset >= front.bytes && self.segments.len() > 1);
            if !finished {
                break;
            }
            self.segments.pop_front();
            done.push(front.id);
            if head.segment == front.id {
                self.head = Cursor::start(self.segments[0].id);
            }
        }
        done
    }

    /// Cuts the segment of `at` at `at`, losing the damaged rest of it.
    fn cut(&mut self, at: Cursor) -> Result<(), SpoolError> {
        let Some(seg) = self.segments.iter_mut().find(|s| s.id == at.position.segment) else { return Ok(()) };
        let lost = seg.records - at.index;
        tracing::warn!(
            segment = seg.id,
            offset = at.position.offset,
            lost,
            "InfluxDB spool damaged on disk: dropping the rest of the segment"
        );
        seg.bytes = at.position.offset;
        seg.records = at.index;
        self.dropped += lost;
        self.fresh = None;
        let id = seg.id;
        segment::truncate(&self.dir, id, at.position.offset).map_err(self.fail("cutting a damaged segment"))
    }

    /// Reads the time of the first unacknowledged record.
    fn refresh_oldest(&mut self) -> Result<(), SpoolError> {
        self.oldest_ms = None;
        for seg in &self.segments {
            let from = if seg.id == self.head.position.segment { self.head.position.offset } else { 0 };
            if from < seg.bytes {
                let header = segment::read(&self.dir, seg.id, from, from + record::HEADER as u64)
                    .map_err(self.fail("reading"))?;
                self.oldest_ms = Some(record::time_of(&header));
                break;
            }
        }
        Ok(())
    }
}

impl Drop for Spool {
    /// Stores a position that lived only in memory, so a clean stop sends nothing twice. The
    /// service's shutdown already did with [`Spool::sync`]; this covers every other owner.
    fn drop(&mut self) {
        if self.head.position != self.stored {
            let _ = committed::store(&self.dir, self.head.position, Durability::Lazy);
        }
    }
}

#[cfg(test)]
mod tests;
