//! The poll loop's side of writes: commands wait in a [`Coalescer`] and go out between polls
//! over the poller's own transport, one request in flight per logger.
//!
//! [`Writer`] holds the latest snapshot for the live limits, gates each command on the
//! inverter's identity and the allowed keys, runs [`exec::execute`], and reports the result
//! (audit log at info, counter, result channel). The rules themselves live in
//! [`crate::writes`]; this module only sequences them.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Poller, Snapshot, Update};
use crate::profile::Value;
use crate::transport::Transport;
use crate::writes::coalesce::Coalescer;
use crate::writes::{Command, Outcome, WriteError, WritePort, WriteResult, check, exec};

/// One inverter's pending writes and what checking them needs.
#[derive(Debug)]
pub(super) struct Writer {
    port: WritePort,
    coalescer: Coalescer,
    latest: Option<Arc<Snapshot>>,
    closed: bool,
    keys_checked: bool,
}

impl Writer {
    /// A writer taking commands from `port`.
    pub(super) fn new(port: WritePort) -> Self {
        let coalescer = Coalescer::new(port.timing);
        Self { port, coalescer, latest: None, closed: false, keys_checked: false }
    }

    /// When a waiting command may go out.
    pub(super) fn wake(&self) -> Option<Instant> {
        self.coalescer.next_due()
    }

    /// The next command; never ready once the sender is gone.
    pub(super) async fn recv(&mut self) -> Command {
        if !self.closed {
            match self.port.commands.recv().await {
                Some(command) => return command,
                None => self.closed = true,
            }
        }
        std::future::pending().await
    }

    /// Queues `command`; the one of the same key it replaces is counted as superseded.
    pub(super) fn take(&mut self, command: Command, now: Instant) {
        tracing::debug!(inverter = %command.inverter, key = %command.key, payload = %command.payload, "write command queued");
        if let Some(old) = self.coalescer.push(command, now) {
            let result = result_of(&old, Outcome::Superseded, None, None);
            self.port.counters.count(&result);
        }
    }

    /// Remembers a successful poll: the live limits and the identity gate read it.
    pub(super) fn observe(&mut self, update: &Update) {
        if let Update::Polled { snapshot, .. } = update {
            if !self.keys_checked {
                self.keys_checked = true;
                let unknown = self.port.allowed.unknown(&snapshot.profile);
                if !unknown.is_empty() {
                    tracing::warn!(inverter = %snapshot.inverter, profile = snapshot.profile.id(), keys = ?unknown, "write_keys names readings this profile cannot write; they are ignored");
                }
            }
            self.latest = Some(snapshot.clone());
        }
    }

    /// Carries out the command due at `now`, if any; true when something was written, so the
    /// loop polls at once and every sink sees the read-back state.
    pub(super) async fn run_due<T: Transport>(
        &mut self,
        poller: &Poller,
        transport: &mut T,
        now: Instant,
    ) -> bool {
        let Some(command) = self.coalescer.take_due(now) else { return false };
        let result = match self.carry_out(poller, transport, &command).await {
            Ok(done) => {
                let outcome = if done.written { Outcome::Written } else { Outcome::Unchanged };
                result_of(&command, outcome, None, Some(done))
            }
            Err(e @ WriteError::Link(_)) => result_of(&command, Outcome::Failed, Some(e.to_string()), None),
            Err(e) => result_of(&command, Outcome::Refused, Some(e.to_string()), None),
        };
        audit(&command, &result);
        self.port.counters.count(&result);
        // A full result queue loses a result message, never a write.
        let _ = self.port.results.try_send(result.clone());
        result.outcome == Outcome::Written
    }

    /// The gates, the checks, then the write; see the module docs.
    async fn carry_out<T: Transport>(
        &self,
        poller: &Poller,
        transport: &mut T,
        command: &Command,
    ) -> Result<Done, WriteError> {
        if command.inverter != **poller.name() {
            return Err(WriteError::Identity(format!(
                "the command is for `{}`, not `{}`",
                command.inverter,
                poller.name()
            )));
        }
        let latest = self.latest.as_ref().filter(|s| s.identity == poller.identity).ok_or_else(|| {
            WriteError::Identity("the inverter's identity is not known yet: no poll has succeeded".into())
        })?;
        let profile = &latest.profile;
        let spec = profile
            .index_of(&command.key)
            .filter(|_| self.port.allowed.permits(profile, &command.key))
            .map(|i| &profile.readings[i])
            .ok_or_else(|| WriteError::NotWritable(command.key.clone()))?;
        let value = check::parse(spec, &command.payload)?;
        check::live(&command.key, &value, |key| latest.get(key).and_then(Value::as_f64))?;
        let done = exec::execute(spec, &value, transport).await?;
        Ok(Done {
            old: exec::shown(spec, &done.old),
            read_back: exec::shown(spec, &done.read_back),
            written: done.written,
        })
    }
}

/// A write's values, as shown.
#[derive(Debug)]
struct Done {
    old: Value,
    read_back: Value,
    written: bool,
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
    let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "-".to_string(), ToString::to_string);
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
