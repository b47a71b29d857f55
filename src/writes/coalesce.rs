//! When a command may go out: the latest value per key wins once the key has been quiet for
//! the settle time (a slider dragged across 30 values writes once), a key is written at most
//! once per `per_key`, and the inverter at most once per `global`. A state machine fed with
//! the time, so the rules are tested without sleeping.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Command;

/// The timing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a key must be quiet before its latest value goes out.
    pub settle: Duration,
    /// Least time between two writes of one key.
    pub per_key: Duration,
    /// Least time between two writes to the inverter.
    pub global: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            settle: Duration::from_millis(1500),
            per_key: Duration::from_secs(5),
            global: Duration::from_secs(1),
        }
    }
}

/// Commands waiting to go out, and when each key last went.
#[derive(Debug, Default)]
pub struct Coalescer {
    timing: Timing,
    pending: BTreeMap<String, (Command, Instant)>,
    last_key: BTreeMap<String, Instant>,
    last_any: Option<Instant>,
}

impl Coalescer {
    /// A coalescer with `timing`.
    pub fn new(timing: Timing) -> Self {
        Self { timing, ..Self::default() }
    }

    /// Takes `command` at `now`; returns the command of the same key it replaces, if any.
    pub fn push(&mut self, command: Command, now: Instant) -> Option<Command> {
        self.pending.insert(command.key.clone(), (command, now)).map(|(old, _)| old)
    }

    /// When the earliest waiting command may go out.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|(key, (_, at))| self.due_at(key, *at)).min()
    }

    /// The command that may go out at `now`, recorded as gone.
    pub fn take_due(&mut self, now: Instant) -> Option<Command> {
        let key = self
            .pending
            .iter()
            .filter(|(key, (_, at))| self.due_at(key, *at) <= now)
            .min_by_key(|(key, (_, at))| self.due_at(key, *at))
            .map(|(key, _)| key.clone())?;
        let (command, _) = self.pending.remove(&key)?;
        self.last_key.insert(key, now);
        self.last_any = Some(now);
        Some(command)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn due_at(&self, key: &str, received: Instant) -> Instant {
        let settled = received + self.timing.settle;
        let key_free = self.last_key.get(key).map(|at| *at + self.timing.per_key);
        let any_free = self.last_any.map(|at| at + self.timing.global);
        [Some(settled), key_free, any_free].into_iter().flatten().max().unwrap_or(settled)
    }
}
