//! The poll loop's side of writes: commands wait in a [`Coalescer`] per inverter and go out
//! between polls over the loop's own transport, one request in flight per logger.
//!
//! [`Writes`] is what a loop (one inverter, or a parallel stack) holds: the command channel,
//! where results go, and a [`Writer`] per inverter with writes on. A writer keeps the latest
//! snapshot for the live limits, gates each command on the inverter's identity and the allowed
//! keys, runs [`exec::execute`], and reports the result (audit log at info, counter, result
//! channel). The rules themselves live in [`crate::writes`]; this module only sequences them.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Poller, Snapshot, Update};
use crate::profile::{ReadingSpec, Value};
use crate::transport::Transport;
use crate::writes::coalesce::Coalescer;
use crate::writes::{
    Allowed, Command, Outcome, WriteCounters, WriteError, WritePort, WriteResult, check, exec, table,
};

/// A loop's writes: commands in, results out, a writer per inverter that takes them.
#[derive(Debug)]
pub(super) struct Writes {
    commands: Option<mpsc::Receiver<Command>>,
    results: mpsc::Sender<WriteResult>,
    counters: WriteCounters,
    writers: BTreeMap<String, Writer>,
}

impl Writes {
    /// The writes of `port`.
    pub(super) fn new(port: WritePort) -> Self {
        let writers = port.allowed.into_iter().map(|(name, allowed)| {
            let writer = Writer {
                allowed,
                coalescer: Coalescer::new(port.timing),
                latest: None,
                keys_checked: false,
                unread: false,
            };
            (name, writer)
        });
        Self {
            commands: Some(port.commands),
            results: port.results,
            counters: port.counters,
            writers: writers.collect(),
        }
    }

    /// The next command; never ready once the sender is gone.
    pub(super) async fn recv(&mut self) -> Command {
        if let Some(commands) = &mut self.commands {
            match commands.recv().await {
                Some(command) => return command,
                None => self.commands = None,
            }
        }
        std::future::pending().await
    }

    /// Which inverter's waiting command may go out first, and when.
    pub(super) fn wake(&self) -> Option<(&str, Instant)> {
        let due = self.writers.iter().filter_map(|(name, w)| Some((name.as_str(), w.coalescer.next_due()?)));
        due.min_by_key(|(_, at)| *at)
    }

    /// Queues `command` at `now` with its inverter's writer; a command for an inverter without
    /// writes is refused at once, and one it replaces is counted as superseded.
    pub(super) fn take(&mut self, command: Command, now: Instant) {
        tracing::debug!(inverter = %command.inverter, key = %command.key, payload = %command.payload, "write command queued");
        let Some(writer) = self.writers.get_mut(&command.inverter) else {
            let reason = format!("writes are off for `{}`", command.inverter);
            let result = result_of(&command, Outcome::Refused, Some(reason), None);
            self.report(&command, result);
            return;
        };
        if let Some(old) = writer.coalescer.push(command, now) {
            self.counters.count(&result_of(&old, Outcome::Superseded, None, None));
        }
    }

    /// Remembers a successful poll of the inverter it is about.
    pub(super) fn observe(&mut self, update: &Update) {
        if let (Update::Polled { snapshot, .. }, Some(writer)) =
            (update, self.writers.get_mut(update.inverter()))
        {
            writer.observe(snapshot);
        }
    }

    /// Carries out the command of `poller`'s inverter due at `now`, if any; true when
    /// something was written, so the loop polls that inverter at once and every sink sees the
    /// read-back state.
    pub(super) async fn run_due<T: Transport>(
        &mut self,
        poller: &Poller,
        transport: &mut T,
        now: Instant,
    ) -> bool {
        let Some(writer) = self.writers.get_mut(&**poller.name()) else { return false };
        let Some(command) = writer.coalescer.take_due(now) else { return false };
        let result = match writer.carry_out(poller, transport, &command).await {
            Ok(done) => {
                let outcome = match (done.written, done.kept) {
                    (true, true) => Outcome::Written,
                    (true, false) => Outcome::NotKept,
                    (false, _) => Outcome::Unchanged,
                };
                result_of(&command, outcome, None, Some(done))
            }
            Err(e @ WriteError::Link(_)) => result_of(&command, Outcome::Failed, Some(e.to_string()), None),
            Err(e) => result_of(&command, Outcome::Refused, Some(e.to_string()), None),
        };
        // A write that went out, or may have, changed what the live limits must be checked
        // against: until a poll has read it, the next command waits.
        let unread = matches!(result.outcome, Outcome::Written | Outcome::NotKept | Outcome::Failed);
        writer.unread |= unread;
        self.report(&command, result);
        unread
    }

    /// The audit line, the counter, and the result topic.
    fn report(&self, command: &Command, result: WriteResult) {
        audit(command, &result);
        self.counters.count(&result);
        // A full result queue loses a result message, never a write.
        let _ = self.results.try_send(result);
    }
}

/// One inverter's pending writes and what checking them needs.
#[derive(Debug)]
struct Writer {
    allowed: Allowed,
    coalescer: Coalescer,
    latest: Option<Arc<Snapshot>>,
    keys_checked: bool,
    /// A write went out (or may have) since `latest` was read.
    unread: bool,
}

impl Writer {
    /// Keeps the snapshot for the live limits; the first one tells whether `write_keys` fits
    /// the profile (with `auto`, only now known).
    fn observe(&mut self, snapshot: &Arc<Snapshot>) {
        if !self.keys_checked {
            self.keys_checked = true;
            let unknown = self.allowed.unknown(&snapshot.profile);
            if !unknown.is_empty() {
                tracing::warn!(inverter = %snapshot.inverter, profile = snapshot.profile.id(), keys = ?unknown, "write_keys names readings this profile cannot write; they are ignored");
            }
        }
        self.latest = Some(snapshot.clone());
        self.unread = false;
    }

    /// The gates, the checks, then the write; see the module docs.
    async fn carry_out<T: Transport>(
        &self,
        poller: &Poller,
        transport: &mut T,
        command: &Command,
    ) -> Result<Done, WriteError> {
        if self.unread {
            return Err(WriteError::Limit(
                "the last write has not been read back by a poll yet; send it again after the next poll"
                    .into(),
            ));
        }
        let latest = self.gate(poller, command)?;
        let items = self.checked(latest, command)?;
        let done = exec::execute_all(&items, transport).await?;
        Ok(Done::of(&items, &done, command.key == table::KEY))
    }

    /// The identity gate: the command names this inverter, and the identity (serial) its
    /// entity was announced with is the one this inverter has now, so a swapped inverter at
    /// the same address takes no command meant for the old one. Returns the latest snapshot,
    /// for the live limits.
    fn gate(&self, poller: &Poller, command: &Command) -> Result<&Arc<Snapshot>, WriteError> {
        if command.inverter != **poller.name() {
            let reason = format!("the command is for `{}`, not `{}`", command.inverter, poller.name());
            return Err(WriteError::Identity(reason));
        }
        if command.identity != *poller.identity {
            let reason = format!(
                "the entity belongs to `{}`, but this inverter is now `{}`",
                command.identity, poller.identity
            );
            return Err(WriteError::Identity(reason));
        }
        self.latest.as_ref().filter(|s| s.identity == poller.identity).ok_or_else(|| {
            WriteError::Identity("the inverter's identity is not known yet: no poll has succeeded".into())
        })
    }

    /// The readings and values `command` sets, each allowed and checked against the profile
    /// and the live readings of `latest`: one, or a whole time-of-use table.
    fn checked<'s>(
        &self,
        latest: &'s Snapshot,
        command: &Command,
    ) -> Result<Vec<(&'s ReadingSpec, Value)>, WriteError> {
        let profile = &latest.profile;
        let live = |key: &str| latest.get(key).and_then(Value::as_f64);
        if command.key == table::KEY {
            let items = table::parse(profile, &self.allowed, &command.payload, live)?;
            return Ok(items.into_iter().map(|(i, v)| (&profile.readings[i], v)).collect());
        }
        let spec = profile
            .index_of(&command.key)
            .filter(|_| self.allowed.permits(profile, &command.key))
            .map(|i| &profile.readings[i])
            .ok_or_else(|| WriteError::NotWritable(command.key.clone()))?;
        let value = check::parse(spec, &command.payload)?;
        check::live(&command.key, &value, live)?;
        Ok(vec![(spec, value)])
    }
}

/// A write's values, as shown.
#[derive(Debug)]
struct Done {
    old: serde_json::Value,
    read_back: serde_json::Value,
    written: bool,
    kept: bool,
}

impl Done {
    /// The values of `done` for `items`: the one value, or a table's by reading key.
    fn of(items: &[(&ReadingSpec, Value)], done: &exec::Executed, table: bool) -> Self {
        let shown = |values: &[Value]| -> serde_json::Value {
            let mut pairs =
                items.iter().zip(values).map(|((spec, _), v)| (spec.def.key.clone(), json(spec, v)));
            match table {
                true => serde_json::Value::Object(pairs.collect()),
                false => pairs.next().map_or(serde_json::Value::Null, |(_, v)| v),
            }
        };
        Self {
            old: shown(&done.old),
            read_back: shown(&done.read_back),
            written: done.written,
            kept: done.kept,
        }
    }
}

/// A value of `spec` as results show it: slot times as `HH:MM`.
fn json(spec: &ReadingSpec, value: &Value) -> serde_json::Value {
    serde_json::to_value(exec::shown(spec, value)).unwrap_or(serde_json::Value::Null)
}

fn result_of(command: &Command, outcome: Outcome, reason: Option<String>, done: Option<Done>) -> WriteResult {
    let (old, read_back) = done.map_or((None, None), |d| (Some(d.old), Some(d.read_back)));
    WriteResult {
        inverter: command.inverter.clone(),
        key: command.key.clone(),
        value: command.payload.clone(),
        outcome,
        reason,
        old,
        read_back,
    }
}

/// Every write at info: who asked, the old value, the new one, the read-back, the result.
fn audit(command: &Command, result: &WriteResult) {
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map_or_else(|| "-".to_string(), ToString::to_string);
    tracing::info!(
        inverter = %command.inverter,
        topic = %command.topic,
        key = %command.key,
        old = %show(&result.old),
        new = %command.payload,
        read_back = %show(&result.read_back),
        outcome = result.outcome.as_str(),
        reason = result.reason.as_deref().unwrap_or(""),
        "write",
    );
}
