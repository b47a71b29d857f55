//! The spool as the two tasks share it: each call that may touch the disk runs on tokio's
//! blocking pool (an `fsync` can take tens of milliseconds on an SD card, and must not stall the
//! runtime), holds the lock only for that call, and publishes the new depth. A caught-up drain's
//! peek and commit need no disk ([`Spool::peek_fresh`], [`Spool::commit_in_memory`]): they run
//! on the runtime thread when the lock is free at once, which spares two trips to the pool (each
//! a wake-up of a pool thread and one of the runtime) per poll: the position they acknowledge is
//! stored by the next append, which runs on the pool anyway.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::handle::Stats;
use super::spool::{Batch, Cursor, Spool, SpoolError};

/// The spool behind a lock, with the stats it updates.
#[derive(Debug, Clone)]
pub(super) struct SharedSpool {
    dir: PathBuf,
    spool: Arc<Mutex<Spool>>,
    stats: Arc<Stats>,
}

impl SharedSpool {
    /// Shares `spool`, publishing to `stats`.
    pub(super) fn new(spool: Spool, stats: Arc<Stats>) -> Self {
        stats.set_spool(spool.depth(), spool.dropped());
        Self { dir: spool.dir().to_path_buf(), spool: Arc::new(Mutex::new(spool)), stats }
    }

    /// Appends one line with its time in Unix milliseconds.
    ///
    /// # Errors
    /// [`SpoolError`] when the disk refuses.
    pub(super) async fn append(&self, time_ms: i64, line: String) -> Result<(), SpoolError> {
        self.run(move |spool| spool.append(&[(time_ms, line.as_bytes())])).await
    }

    /// The oldest records, see [`Spool::peek`].
    ///
    /// # Errors
    /// [`SpoolError`] when a segment cannot be read.
    pub(super) async fn peek(&self, max_records: usize, max_bytes: usize) -> Result<Batch, SpoolError> {
        if let Some(batch) = self.at_once(|spool| spool.peek_fresh(max_records, max_bytes)) {
            return Ok(batch);
        }
        self.run(move |spool| spool.peek(max_records, max_bytes)).await
    }

    /// Acknowledges up to `end`, see [`Spool::commit`].
    ///
    /// # Errors
    /// [`SpoolError`] when the position cannot be stored.
    pub(super) async fn commit(&self, end: Cursor) -> Result<(), SpoolError> {
        if self.at_once(|spool| spool.commit_in_memory(end).then_some(())).is_some() {
            return Ok(());
        }
        self.run(move |spool| spool.commit(end)).await
    }

    /// Flushes to disk.
    ///
    /// # Errors
    /// [`SpoolError`] when the disk refuses.
    pub(super) async fn sync(&self) -> Result<(), SpoolError> {
        self.run(|spool| spool.sync()).await
    }

    /// `call` on this thread if the lock is free at once, for calls that never touch the disk;
    /// `None` when the lock is taken (a call on the pool holds it) or `call` declines.
    fn at_once<T>(&self, call: impl FnOnce(&mut Spool) -> Option<T>) -> Option<T> {
        // A poisoned lock goes the long way, where `run` recovers it.
        let mut spool = self.spool.try_lock().ok()?;
        let out = call(&mut spool)?;
        self.stats.set_spool(spool.depth(), spool.dropped());
        Some(out)
    }

    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let (spool, stats) = (self.spool.clone(), self.stats.clone());
        let task = tokio::task::spawn_blocking(move || {
            let mut spool = spool.lock().unwrap_or_else(PoisonError::into_inner);
            let out = call(&mut spool);
            stats.set_spool(spool.depth(), spool.dropped());
            out
        });
        match task.await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down under us; the spool on disk is consistent anyway.
            Err(e) => Err(SpoolError {
                dir: self.dir.clone(),
                action: "waiting for the disk",
                source: std::io::Error::other(e),
            }),
        }
    }
}
