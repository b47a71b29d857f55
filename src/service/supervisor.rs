//! Supervision: every task of the service runs under a name, and the first one to end before
//! shutdown is noticed, logged (an error, so Sentry hears of it) and stops the service.
//!
//! This module owns the task set and the rule for a task that ends early. It must not know what
//! a task does: sinks and pollers are started by the caller and handed over as futures, or, for
//! modules that spawn their own tasks into a `JoinSet`, as a named group.
//!
//! # A task that ends early stops the service
//! No task of the service is meant to end before shutdown: pollers, sinks and the HTTP server
//! all loop until cancelled. One that returns, fails or panics is a bug or a broken environment,
//! and restarting it in-process would hide the first and rarely cure the second (a panicking
//! sink would panic again on the same reading). So the supervisor cancels the rest, lets them
//! finish under the shutdown deadline (MQTT still says offline, InfluxDB still flushes its
//! spool) and returns a [`TaskError`] naming the task; `run` exits non-zero, and the process
//! supervisor that started it (the add-on watchdog, Docker's or systemd's restart policy)
//! starts the whole service again from a clean state. Nothing runs half-working in silence.
//!
//! The one exception is a task started with [`OnEnd::Stop`]: the console table, whose reader
//! (a pipe into `head`, say) may go away. Its end stops the service cleanly, with success.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::SHUTDOWN_DEADLINE;
use crate::http_client::error_chain;

/// The cause a task gives when it returns an error.
pub type TaskCause = Box<dyn std::error::Error + Send + Sync>;

/// What a supervised task returns.
type TaskResult = Result<(), TaskCause>;

/// Why the service stopped before it was asked to: which task ended, and how.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The task returned although nothing asked it to stop.
    #[error("task `{task}` ended on its own before shutdown")]
    Returned {
        /// The task's name.
        task: String,
    },
    /// The task returned an error.
    #[error("task `{task}` failed")]
    Failed {
        /// The task's name.
        task: String,
        /// Its error.
        #[source]
        cause: TaskCause,
    },
    /// The task panicked.
    #[error("task `{task}` panicked: {message}")]
    Panicked {
        /// The task's name.
        task: String,
        /// The panic's message.
        message: String,
    },
}

impl TaskError {
    /// The name of the task that ended.
    pub fn task(&self) -> &str {
        match self {
            Self::Returned { task } | Self::Failed { task, .. } | Self::Panicked { task, .. } => task,
        }
    }
}

/// What a task's end before shutdown means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnEnd {
    /// The service failed: stop it with a [`TaskError`] (every task but the console).
    Fail,
    /// Its work is over: stop the service cleanly (the console, when stdout is closed).
    Stop,
}

/// A named task.
#[derive(Debug)]
struct Task {
    name: String,
    on_end: OnEnd,
}

/// The service's tasks, by name, and the token that stops them all.
#[derive(Debug)]
pub(super) struct Supervisor {
    tasks: JoinSet<TaskResult>,
    names: HashMap<tokio::task::Id, Task>,
    cancel: CancellationToken,
}

impl Supervisor {
    /// An empty set whose tasks stop on `cancel` (and which cancels it when one ends early).
    pub(super) fn new(cancel: &CancellationToken) -> Self {
        Self { tasks: JoinSet::new(), names: HashMap::new(), cancel: cancel.clone() }
    }

    /// Runs `task` as `name`; its end before shutdown fails the service.
    pub(super) fn spawn(&mut self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn_with(name, OnEnd::Fail, async move {
            task.await;
            Ok(())
        });
    }

    /// Runs `task` as `name`, with `on_end` saying what its end before shutdown means.
    pub(super) fn spawn_with(
        &mut self,
        name: impl Into<String>,
        on_end: OnEnd,
        task: impl Future<Output = TaskResult> + Send + 'static,
    ) {
        let id = self.tasks.spawn(task).id();
        self.names.insert(id, Task { name: name.into(), on_end });
    }

    /// Lets `start` spawn a module's tasks into a set of their own, supervised as one task
    /// called `name`: modules take a `JoinSet<()>`, and the group is what has a name.
    pub(super) fn spawn_group<R>(
        &mut self,
        name: impl Into<String>,
        start: impl FnOnce(&mut JoinSet<()>) -> R,
    ) -> R {
        let mut group = JoinSet::new();
        let started = start(&mut group);
        // A module may have nothing to run (load control without consumers): an empty group
        // would "end" at once.
        if !group.is_empty() {
            self.spawn_with(name, OnEnd::Fail, run_group(group, self.cancel.clone()));
        }
        started
    }

    /// Waits for its token's cancel or for a task to end first, then stops and drains every
    /// task under [`SHUTDOWN_DEADLINE`].
    ///
    /// # Errors
    /// [`TaskError`] for the first task that ended before shutdown (unless it was an
    /// [`OnEnd::Stop`] task that simply returned).
    pub(super) async fn wait(mut self) -> Result<(), TaskError> {
        let cancel = self.cancel.clone();
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Ok(()),
            Some(joined) = self.tasks.join_next_with_id() => {
                // A poller that saw the cancel may be joined before the cancel is: that is
                // shutdown, not an early end.
                if cancel.is_cancelled() {
                    self.stopped(joined);
                    Ok(())
                } else {
                    self.ended_early(joined)
                }
            }
        };
        cancel.cancel();
        tracing::info!("shutting down");
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.drain()).await.is_err() {
            tracing::warn!("tasks did not stop within {SHUTDOWN_DEADLINE:?}; leaving anyway");
        }
        outcome
    }

    /// Judges a task that ended before shutdown, and logs it.
    fn ended_early(
        &mut self,
        joined: Result<(tokio::task::Id, TaskResult), JoinError>,
    ) -> Result<(), TaskError> {
        let (task, result) = self.named(joined);
        let error = match result {
            Ok(()) if task.on_end == OnEnd::Stop => {
                tracing::info!(task = %task.name, "task finished; stopping the service");
                return Ok(());
            }
            Ok(()) => TaskError::Returned { task: task.name },
            Err(Ending::Failed(cause)) => TaskError::Failed { task: task.name, cause },
            Err(Ending::Panicked(message)) => TaskError::Panicked { task: task.name, message },
        };
        tracing::error!(task = error.task(), "{}; stopping the service", error_chain(&error));
        Err(error)
    }

    /// Joins every task that is left, logging the ones that fail while they stop.
    async fn drain(&mut self) {
        while let Some(joined) = self.tasks.join_next_with_id().await {
            self.stopped(joined);
        }
    }

    /// Logs a task that failed or panicked while it stopped: shutdown goes on regardless.
    fn stopped(&mut self, joined: Result<(tokio::task::Id, TaskResult), JoinError>) {
        let (task, result) = self.named(joined);
        match result {
            Ok(()) => {}
            Err(Ending::Failed(cause)) => {
                tracing::error!(task = %task.name, "task failed while stopping: {}", error_chain(&*cause));
            }
            Err(Ending::Panicked(message)) => {
                tracing::error!(task = %task.name, "task panicked while stopping: {message}");
            }
        }
    }

    /// The task behind a join, and how it ended.
    fn named(
        &mut self,
        joined: Result<(tokio::task::Id, TaskResult), JoinError>,
    ) -> (Task, Result<(), Ending>) {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result.map_err(Ending::Failed)),
            Err(e) => (e.id(), Err(Ending::from_join(e))),
        };
        let task = self.names.remove(&id).unwrap_or(Task { name: format!("task {id}"), on_end: OnEnd::Fail });
        (task, result)
    }
}

/// How a task ended, other than by returning `Ok`.
enum Ending {
    Failed(TaskCause),
    Panicked(String),
}

impl Ending {
    /// A join error is a panic, or an abort (which only shutdown does: `Running` is dropped).
    fn from_join(e: JoinError) -> Self {
        match e.try_into_panic() {
            Ok(payload) => Self::Panicked(crate::panics::message(payload.as_ref()).to_string()),
            Err(e) => Self::Failed(Box::new(e)),
        }
    }
}

/// Runs a module's tasks as one: returns as soon as one of them ends before `cancel` (the
/// supervisor then stops everything), re-raises a member's panic so the group's name carries
/// it, and after `cancel` lets every member finish.
async fn run_group(mut group: JoinSet<()>, cancel: CancellationToken) -> TaskResult {
    while let Some(joined) = group.join_next().await {
        match joined {
            Ok(()) if !cancel.is_cancelled() => return Ok(()),
            Ok(()) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(Box::new(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
