//! A parallel stack's poll loop: several inverters behind one logger or gateway, polled in
//! turn over one [`Link`], each addressed by its Modbus slave id ([`Link::unit`]).
//!
//! Each member keeps its own interval and its own [`Poller`] (profile, plausibility,
//! availability); only the connection and its counters are shared. The loop polls whichever
//! member is due first, so a slow member delays the others by one poll at most, never starves
//! them.

use chrono::{Local, Utc};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{Poller, Update, announce, next_after};
use crate::transport::Link;

/// One inverter of a stack: its poller and the slave id it answers to.
#[derive(Debug)]
pub struct Member {
    /// The inverter's poller.
    pub poller: Poller,
    /// Its Modbus slave id.
    pub slave: u8,
}

/// Polls every member over `link` at its own interval until `cancel`, announcing each outcome
/// on `bus`.
pub async fn run_stack(
    mut members: Vec<Member>,
    mut link: Link,
    bus: broadcast::Sender<Update>,
    cancel: CancellationToken,
) {
    let start = Instant::now();
    let mut due: Vec<Instant> = vec![start; members.len()];
    while let Some((i, at)) = due.iter().copied().enumerate().min_by_key(|(_, at)| *at) {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = sleep_until(at) => {}
        }
        let member = &mut members[i];
        let mut unit = link.unit(member.slave);
        let now = Utc::now();
        let outcome = tokio::select! {
            () = cancel.cancelled() => break,
            outcome = member.poller.poll_once(&mut unit, now, Local::now().naive_local()) => outcome,
        };
        let update = announce(&mut member.poller, &unit, outcome, now);
        // No subscriber is fine: the service may run without sinks.
        let _ = bus.send(update);
        due[i] = next_after(at, member.poller.interval);
    }
    tracing::debug!(inverters = members.len(), "stack poller stopped");
}
