//! Recordings: every poll's raw register blocks, one JSON line per poll, for replaying a day
//! (`inverter-monitor replay`) or attaching it to a bug report.
//!
//! This module owns the line format ([`Poll`], sans I/O: [`Poll::to_line`] and [`Poll::parse`])
//! and the small task that appends lines to a file ([`write`]). It must not decode or judge
//! anything: a line holds the registers exactly as read, before decoding and plausibility, so a
//! replay runs them through the same code the service ran. It holds no secrets: no password,
//! token or key ever reaches a poller, and the logger's serial is no secret.
//!
//! A line looks like
//! `{"time":"2026-06-01T12:00:00Z","local":"2026-06-01T14:00:00","inverter":"deye",
//! "profile":"deye_sg01lp1","identity":"2305178010","blocks":[{"start":0,"values":[…]}],
//! "refused":[{"start":600,"count":8,"modbus":2}]}`; a poll the logger did not answer has no
//! blocks and says why: `…,"blocks":[],"failed":"no answer within 5s"}`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::profile::ReadBlock;
/// Consecutive registers from `start`, as read: the profile's own block, recorded as
/// `{"start": …, "values": […]}`.
pub use crate::profile::RegisterBlock as Block;
use crate::protocol::{Exception, ExceptionCode, LoggerError};

/// How many recorded polls may wait for the writer before new ones are dropped (with a
/// warning): a poll a minute never comes near it; a stuck disk must not stall the pollers.
pub const QUEUE: usize = 256;

/// Why a recording cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// A line is not a recorded poll.
    #[error("line {line}: not a recorded poll: {cause}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// Why.
        #[source]
        cause: serde_json::Error,
    },
}

/// One poll as read from the inverter: one line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poll {
    /// When the poll started (UTC).
    pub time: DateTime<Utc>,
    /// The house's wall clock at the poll: the inverter's own clock when the profile maps it and
    /// this poll read it, else the host's local time. Daily counters reset by it.
    pub local: NaiveDateTime,
    /// The inverter's configured name.
    pub inverter: String,
    /// The profile id in use.
    pub profile: String,
    /// The inverter's identity (its serial, else the logger's, else its name).
    pub identity: String,
    /// The blocks read, registers exactly as the inverter answered.
    #[serde(default)]
    pub blocks: Vec<Block>,
    /// The reads the inverter or logger refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
    /// Why the poll read nothing at all, when the logger did not answer (a timeout, a refused
    /// connect, a logger asleep at night); `blocks` is then empty. Absent on every poll that
    /// read something, and in recordings made before failed polls were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// A read that was answered with "no": a Modbus exception code, or the logger's two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// First register asked for.
    pub start: u16,
    /// How many.
    pub count: u16,
    /// The Modbus exception code, when the inverter refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus: Option<u8>,
    /// The logger's error bytes, when the logger answered in the inverter's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<[u8; 2]>,
}

impl Refused {
    /// The refusal of `block` with `exception`, as recorded.
    pub fn of(block: ReadBlock, exception: Exception) -> Self {
        let (modbus, logger) = match exception {
            Exception::Modbus(code) => (Some(code.code()), None),
            Exception::Logger(error) => (None, Some(error.to_bytes())),
        };
        Self { start: block.start, count: block.count, modbus, logger }
    }

    /// The exception the read was answered with.
    pub fn exception(&self) -> Exception {
        match (self.modbus, self.logger) {
            (_, Some(bytes)) => Exception::Logger(LoggerError::from_bytes(bytes)),
            (Some(code), None) => Exception::Modbus(ExceptionCode::from(code)),
            (None, None) => Exception::Modbus(ExceptionCode::IllegalDataAddress),
        }
    }
}

impl Poll {
    /// The poll as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising plain numbers, strings and dates cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads one line; `number` (1-based) names it in the error.
    ///
    /// # Errors
    /// [`RecordError::Line`] when it is not a recorded poll.
    pub fn parse(line: &str, number: usize) -> Result<Self, RecordError> {
        serde_json::from_str(line).map_err(|cause| RecordError::Line { line: number, cause })
    }

    /// The registers `count` from `start`, when one recorded block holds them all.
    pub fn registers(&self, start: u16, count: u16) -> Option<&[u16]> {
        self.blocks.iter().find_map(|b| {
            let from = usize::from(start.checked_sub(b.start)?);
            b.values.get(from..from + usize::from(count))
        })
    }
}

/// Every poll in the recording at `path`, in file order; blank lines are skipped.
///
/// # Errors
/// The file cannot be read, or a line is not a recorded poll.
pub fn read(path: &Path) -> Result<Vec<Poll>, RecordError> {
    let text =
        std::fs::read_to_string(path).map_err(|cause| RecordError::Io { path: path.to_path_buf(), cause })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Poll::parse(line, i + 1))
        .collect()
}

/// Where the polls of `day` go: `path` itself without rotation, else `path.YYYY-MM-DD` (the UTC
/// date of the poll), so a day's file is whole and old days can be deleted by name.
pub fn file_for(path: &Path, day: NaiveDate, rotate: bool) -> PathBuf {
    if !rotate {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}", day.format("%Y-%m-%d")));
    PathBuf::from(name)
}

/// The sending end the pollers hold: a recorded poll is offered, never waited for.
#[derive(Debug, Clone)]
pub struct Tap(mpsc::Sender<Poll>);

impl Tap {
    /// A tap and the receiver [`write`] drains.
    pub fn new() -> (Self, mpsc::Receiver<Poll>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self(tx), rx)
    }

    /// Hands `poll` to the writer; when it is QUEUE polls behind, the poll is dropped with a
    /// warning rather than stalling the poller.
    pub fn offer(&self, poll: Poll) {
        if let Err(e) = self.0.try_send(poll) {
            tracing::warn!("recording: a poll was not recorded ({e})");
        }
    }
}

/// Appends every poll from `polls` to `path` (rotated daily when `rotate`) until `cancel`,
/// then writes what is still queued and returns. Each line is written and flushed on its own:
/// a Ctrl-C, a SIGTERM or a crash loses no poll that was handed over.
///
/// The writes are blocking file appends of a few kilobytes a minute, done in place: cheaper
/// than a thread hop, and the runtime is not held up measurably.
///
/// # Errors
/// [`RecordError::Io`] when a file cannot be opened or written.
pub async fn write(
    path: PathBuf,
    rotate: bool,
    mut polls: mpsc::Receiver<Poll>,
    cancel: CancellationToken,
) -> Result<(), RecordError> {
    let mut out = Output { path, rotate, open: None };
    loop {
        let poll = tokio::select! {
            poll = polls.recv() => poll,
            () = cancel.cancelled() => break,
        };
        let Some(poll) = poll else { return Ok(()) };
        out.append(&poll)?;
    }
    // Shutdown: the polls already handed over are written too.
    polls.close();
    while let Ok(poll) = polls.try_recv() {
        out.append(&poll)?;
    }
    Ok(())
}

/// The file being written, reopened when the day changes.
struct Output {
    path: PathBuf,
    rotate: bool,
    open: Option<(PathBuf, std::fs::File)>,
}

impl Output {
    fn append(&mut self, poll: &Poll) -> Result<(), RecordError> {
        let wanted = file_for(&self.path, poll.time.date_naive(), self.rotate);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| RecordError::Io { path, cause }
        };
        if self.open.as_ref().is_none_or(|(path, _)| *path != wanted) {
            if let Some(dir) = wanted.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            let file =
                std::fs::OpenOptions::new().create(true).append(true).open(&wanted).map_err(io(&wanted))?;
            tracing::info!(file = %wanted.display(), "recording polls");
            self.open = Some((wanted.clone(), file));
        }
        if let Some((path, file)) = self.open.as_mut() {
            let mut line = poll.to_line();
            line.push('\n');
            // One write per line: the line is whole on disk or absent, and File is unbuffered.
            file.write_all(line.as_bytes()).map_err(io(path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
