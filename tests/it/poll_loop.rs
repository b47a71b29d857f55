//! The poll loop's timing on paused time: when it polls, how it catches up after a slow poll,
//! when it declares the inverter offline. Minutes of schedule pass in microseconds.
//!
//! Paused time cannot wait on a socket (tokio would jump the clock while the OS holds the
//! answer), so the loop reads the simulator's own register image in-process here; the wire and
//! the reconnects are tested over real TCP in `service.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use inverter_monitor::poller::{self, Change, Poller, Update};
use inverter_monitor::protocol::{Answer, Request, Response};
use inverter_monitor::sim::fixture;
use inverter_monitor::transport::{Counters, Error, Transport};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const INTERVAL: Duration = Duration::from_secs(10);

/// Answers reads from the simulator's register image; can be made slow, or silent.
struct Image {
    registers: Vec<u16>,
    counters: Counters,
    /// Every call takes this long (of paused time).
    delay: Duration,
    /// While set, every call times out.
    silent: Arc<AtomicBool>,
}

impl Transport for Image {
    async fn call(&mut self, request: &Request) -> Result<Answer, Error> {
        tokio::time::sleep(self.delay).await;
        if self.silent.load(Ordering::SeqCst) {
            return Err(Error::Timeout(Duration::from_secs(5)));
        }
        let (addr, count) = match *request {
            Request::ReadHolding { addr, count } | Request::ReadInput { addr, count } => (addr, count),
            ref other => panic!("the poller only reads: {other:?}"),
        };
        let range = usize::from(addr)..usize::from(addr) + usize::from(count);
        Ok(Ok(Response::Registers(self.registers[range].to_vec())))
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// The poll loop over `transport`, every [`INTERVAL`], offline after 3 failures.
fn start(transport: Image) -> (broadcast::Receiver<Update>, CancellationToken) {
    let (bus, updates) = broadcast::channel(64);
    let cancel = CancellationToken::new();
    let poller = Poller::new("house", profile(), INTERVAL, 3);
    tokio::spawn(poller::run(poller, transport, INTERVAL, bus, cancel.clone()));
    (updates, cancel)
}

fn image(delay: Duration) -> (Image, Arc<AtomicBool>) {
    let silent = Arc::new(AtomicBool::new(false));
    let registers = fixture::image(&profile(), noon());
    (Image { registers, counters: Counters::default(), delay, silent: silent.clone() }, silent)
}

/// The next update and how long after `start` it came, on the paused clock.
async fn next(updates: &mut broadcast::Receiver<Update>, start: Instant) -> (Update, Duration) {
    let update = updates.recv().await.unwrap();
    (update, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn polls_start_every_interval_without_drift() {
    let (transport, _) = image(Duration::from_millis(300));
    let started = Instant::now();
    let (mut updates, cancel) = start(transport);
    for n in 0..6u32 {
        let (update, at) = next(&mut updates, started).await;
        assert!(matches!(update, Update::Polled { .. }), "{update:?}");
        // Three reads of 300 ms each: every poll ends 900 ms after its start, and starts on the
        // interval, not on the previous end.
        assert_eq!(at, INTERVAL * n + Duration::from_millis(900), "poll {n}");
    }
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_poll_longer_than_the_interval_does_not_cause_a_burst() {
    let (transport, _) = image(Duration::from_secs(9));
    let started = Instant::now();
    let (mut updates, cancel) = start(transport);
    let ends: Vec<Duration> = ends(&mut updates, started, 3).await;
    // Each poll takes 27 s: the next one starts an interval after the late end, not at once.
    assert_eq!(ends, [27, 64, 101].map(Duration::from_secs));
    cancel.cancel();
}

/// When the next `n` updates came.
async fn ends(updates: &mut broadcast::Receiver<Update>, started: Instant, n: usize) -> Vec<Duration> {
    let mut ends = Vec::new();
    for _ in 0..n {
        ends.push(next(updates, started).await.1);
    }
    ends
}

#[tokio::test(start_paused = true)]
async fn the_inverter_goes_offline_at_the_third_failure_and_back_at_the_first_answer() {
    let (transport, silent) = image(Duration::ZERO);
    let started = Instant::now();
    let (mut updates, cancel) = start(transport);
    let (first, _) = next(&mut updates, started).await;
    assert!(matches!(first, Update::Polled { change: Some(Change::Online), .. }), "{first:?}");
    silent.store(true, Ordering::SeqCst);
    let mut changes = Vec::new();
    for _ in 0..3 {
        let (update, at) = next(&mut updates, started).await;
        let Update::Failed { change, .. } = update else { panic!("a failure: {update:?}") };
        changes.push((change, at));
    }
    let secs = Duration::from_secs;
    assert_eq!(changes, [(None, secs(10)), (None, secs(20)), (Some(Change::Offline), secs(30))]);
    silent.store(false, Ordering::SeqCst);
    let (back, at) = next(&mut updates, started).await;
    assert!(matches!(back, Update::Polled { change: Some(Change::Online), .. }), "{back:?}");
    assert_eq!(at, secs(40));
    cancel.cancel();
}
