//! The supervisor on paused time: the tasks here only wait on timers and tokens, so tokio can
//! jump the clock instead of the tests sleeping through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;

/// A task that runs until `cancel`, and records that it was let finish.
fn until_cancelled(
    cancel: &CancellationToken,
    stopped: &Arc<AtomicBool>,
) -> impl Future<Output = ()> + use<> {
    let (cancel, stopped) = (cancel.child_token(), stopped.clone());
    async move {
        cancel.cancelled().await;
        stopped.store(true, Ordering::SeqCst);
    }
}

/// A supervisor with one well-behaved task beside whatever the test adds.
fn with_a_neighbour(cancel: &CancellationToken) -> (Supervisor, Arc<AtomicBool>) {
    let mut supervisor = Supervisor::new(cancel);
    let stopped = Arc::new(AtomicBool::new(false));
    supervisor.spawn("neighbour", until_cancelled(cancel, &stopped));
    (supervisor, stopped)
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_stops_the_service_with_its_name_and_message() {
    let cancel = CancellationToken::new();
    let (mut supervisor, neighbour) = with_a_neighbour(&cancel);
    supervisor.spawn("sink", async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        panic!("reading out of range");
    });
    let error = supervisor.wait().await.unwrap_err();
    assert!(
        matches!(&error, TaskError::Panicked { task, message } if task == "sink" && message == "reading out of range"),
        "{error}"
    );
    assert!(cancel.is_cancelled() && neighbour.load(Ordering::SeqCst), "the others were stopped cleanly");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_early_is_named() {
    let cancel = CancellationToken::new();
    let (mut supervisor, neighbour) = with_a_neighbour(&cancel);
    supervisor.spawn("poller house", tokio::time::sleep(Duration::from_secs(5)));
    let error = supervisor.wait().await.unwrap_err();
    assert_eq!(error.to_string(), "task `poller house` ended on its own before shutdown");
    assert!(neighbour.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_task_error_keeps_its_cause() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    supervisor.spawn_with("http", OnEnd::Fail, async { Err(std::io::Error::other("address in use").into()) });
    let error = supervisor.wait().await.unwrap_err();
    assert_eq!(error.to_string(), "task `http` failed");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("address in use"));
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_group_carries_the_group_name() {
    let cancel = CancellationToken::new();
    let (mut supervisor, neighbour) = with_a_neighbour(&cancel);
    let member = Arc::new(AtomicBool::new(false));
    supervisor.spawn_group("mqtt", |set| {
        set.spawn(until_cancelled(&cancel, &member));
        set.spawn(async { panic!("bad packet") });
    });
    let error = supervisor.wait().await.unwrap_err();
    assert!(
        matches!(&error, TaskError::Panicked { task, message } if task == "mqtt" && message == "bad packet"),
        "{error}"
    );
    assert!(neighbour.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_group_lets_every_member_finish_on_shutdown() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    let (first, last) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    supervisor.spawn_group("influxdb", |set| {
        set.spawn(until_cancelled(&cancel, &first));
        // The drain finishes its write after the intake has stopped: the group must wait for it.
        let (token, last) = (cancel.child_token(), last.clone());
        set.spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            last.store(true, Ordering::SeqCst);
        });
    });
    cancel.cancel();
    supervisor.wait().await.unwrap();
    assert!(first.load(Ordering::SeqCst) && last.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn an_empty_group_is_not_a_task_that_ended() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    supervisor.spawn_group("control", |_| ());
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        stop.cancel();
    });
    supervisor.wait().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_console_that_finishes_stops_the_service_cleanly() {
    let cancel = CancellationToken::new();
    let (mut supervisor, neighbour) = with_a_neighbour(&cancel);
    supervisor.spawn_with("console", OnEnd::Stop, async { Ok(()) });
    supervisor.wait().await.unwrap();
    assert!(cancel.is_cancelled() && neighbour.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_console_that_fails_is_still_a_failure() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    supervisor.spawn_with("console", OnEnd::Stop, async { Err(std::io::Error::other("disk full").into()) });
    let error = supervisor.wait().await.unwrap_err();
    assert_eq!(error.task(), "console");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_shutdown_is_left_after_the_deadline() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    supervisor.spawn("stubborn", std::future::pending());
    cancel.cancel();
    let started = Instant::now();
    supervisor.wait().await.unwrap();
    // On paused time the five seconds pass at once: this test takes microseconds.
    assert_eq!(started.elapsed(), SHUTDOWN_DEADLINE);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ends_as_shutdown_begins_is_not_an_early_end() {
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(&cancel);
    // It sees the cancel and returns at once, so its end and the cancel are ready together.
    let token = cancel.clone();
    supervisor.spawn("poller house", async move { token.cancel() });
    supervisor.wait().await.unwrap();
}
