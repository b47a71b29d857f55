//! The drain task: the oldest spooled points to the database in batches, committed only once
//! acknowledged. [`Pacing`] decides what each answer means; this loop only sends, commits,
//! sleeps and watches for shutdown (docs/style.md §8).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::handle::Stats;
use super::pacing::{Pacing, Step};
use super::shared::SharedSpool;
use super::spool::{Batch, Record};
use super::writer::{WriteOutcome, Writer};

/// The most line-protocol bytes in one request: well under InfluxDB 1.x's default
/// `max-body-size` of 25 MB, whatever the configured batch.
pub(super) const MAX_BATCH_BYTES: usize = 4 << 20;

/// How long a write in flight at shutdown may still take: less than the service's deadline, so
/// its acknowledgement is committed before the process ends.
const FINISH_GRACE: Duration = Duration::from_secs(4);

/// What the drain needs.
#[derive(Debug)]
pub(super) struct Drain {
    pub(super) spool: SharedSpool,
    pub(super) writer: Writer,
    pub(super) stats: Arc<Stats>,
    /// Rung by the intake after each append.
    pub(super) wake: Arc<Notify>,
    pub(super) pacing: Pacing,
}

impl Drain {
    /// Runs until `cancel`, finishing a write in flight.
    pub(super) async fn run(mut self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let wait = match self.spool.peek(self.pacing.limit(), MAX_BATCH_BYTES).await {
                Ok(batch) if batch.records.is_empty() => {
                    if self.idle(&cancel).await {
                        continue;
                    }
                    break;
                }
                Ok(batch) => self.deliver(batch, &cancel).await,
                Err(e) => {
                    tracing::error!("InfluxDB spool unreadable: {e}");
                    self.retry_after(&WriteOutcome::Failed(e.to_string()), 0)
                }
            };
            let go_on = match wait {
                Some(wait) => tokio::select! {
                    () = cancel.cancelled() => false,
                    () = tokio::time::sleep(wait) => true,
                },
                // Sent and committed to the last point: no peek (a trip to the blocking pool)
                // to learn the spool is empty. An append since has rung the bell, so the wait
                // ends at once; a stale count only costs that peek.
                None if self.stats.waiting() == 0 => self.idle(&cancel).await,
                None => true,
            };
            if !go_on {
                break;
            }
        }
    }

    /// Waits for the intake's next append; false on shutdown.
    async fn idle(&self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => false,
            () = self.wake.notified() => true,
        }
    }

    /// Sends `batch` and settles it; returns how long to wait before the next attempt.
    async fn deliver(&mut self, batch: Batch, cancel: &CancellationToken) -> Option<Duration> {
        let count = batch.records.len();
        let verdict = self.send(&batch.records, cancel).await;
        let recovering = self.pacing.failures() > 0;
        match self.pacing.on(&verdict, count, rand::random()) {
            Step::Commit => self.written(batch, recovering).await,
            Step::Drop => self.refused(batch, &verdict).await,
            Step::Shrink => {
                let limit = self.pacing.limit();
                tracing::warn!(
                    points = count,
                    limit,
                    "InfluxDB: batch too large; sending fewer points at a time"
                );
            }
            Step::Retry(wait) => return Some(self.log_retry(&verdict, wait)),
        }
        None
    }

    /// The database has `batch`.
    async fn written(&self, batch: Batch, recovering: bool) {
        let count = batch.records.len() as u64;
        // The database took it: say so before the spool shrinks, so whoever sees the spool
        // drained never sees the old error beside it.
        Stats::add(&self.stats.written, count);
        self.stats.set_error(None);
        self.commit(batch).await;
        if recovering {
            tracing::info!(points = count, waiting = self.stats.waiting(), "InfluxDB takes writes again");
        }
    }

    /// The database will never take `batch`: it goes, counted.
    async fn refused(&self, batch: Batch, verdict: &WriteOutcome) {
        let count = batch.records.len() as u64;
        self.commit(batch).await;
        Stats::add(&self.stats.batches_rejected, 1);
        Stats::add(&self.stats.points_rejected, count);
        tracing::error!(points = count, "InfluxDB refused a batch for good; dropped it: {}", reason(verdict));
    }

    /// Sends `records`; on shutdown the write in flight gets [`FINISH_GRACE`] to complete.
    async fn send(&self, records: &[Record], cancel: &CancellationToken) -> WriteOutcome {
        let write = self.writer.write(body(records));
        tokio::pin!(write);
        tokio::select! {
            verdict = &mut write => verdict,
            () = cancel.cancelled() => tokio::time::timeout(FINISH_GRACE, write)
                .await
                .unwrap_or_else(|_| WriteOutcome::Failed("shutting down".into())),
        }
    }

    async fn commit(&self, batch: Batch) {
        if let Err(e) = self.spool.commit(batch.end).await {
            // The points are in; after a restart they may be sent once more, which is harmless.
            tracing::error!("InfluxDB spool position not stored: {e}");
        }
    }

    /// The wait after a failed attempt, from the pacing.
    fn retry_after(&mut self, verdict: &WriteOutcome, count: usize) -> Option<Duration> {
        match self.pacing.on(verdict, count, rand::random()) {
            Step::Retry(wait) => Some(wait),
            _ => None,
        }
    }

    /// Records and logs a failed write; returns `wait`.
    fn log_retry(&self, verdict: &WriteOutcome, wait: Duration) -> Duration {
        let why = reason(verdict);
        let waiting = self.stats.waiting();
        match verdict {
            WriteOutcome::Unauthorized(_) => {
                tracing::error!(waiting, retry_in = ?wait, "InfluxDB refused our credentials; points are kept: {why}");
            }
            _ => tracing::warn!(waiting, retry_in = ?wait, "InfluxDB write failed; points are kept: {why}"),
        }
        self.stats.set_error(Some(why));
        wait
    }
}

/// The lines of `records`, one per line.
fn body(records: &[Record]) -> Vec<u8> {
    let mut body = Vec::with_capacity(records.iter().map(|r| r.payload.len() + 1).sum());
    for record in records {
        body.extend_from_slice(&record.payload);
        body.push(b'\n');
    }
    body
}

/// A verdict in words, for logs and the handle.
fn reason(verdict: &WriteOutcome) -> String {
    match verdict {
        WriteOutcome::Written => "written".into(),
        WriteOutcome::BadData(why) | WriteOutcome::Unauthorized(why) | WriteOutcome::Failed(why) => {
            why.clone()
        }
        WriteOutcome::TooLarge => "HTTP 413: request too large".into(),
        WriteOutcome::Busy(_) => "HTTP 429/503: the database is busy".into(),
    }
}
