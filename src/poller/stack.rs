//! A parallel stack's poll loop: several inverters behind one logger or gateway, polled in
//! turn over one [`Link`], each addressed by its Modbus slave id ([`Link::unit`]).
//!
//! Each member keeps its own interval and its own [`Poller`] (profile, plausibility,
//! availability); only the connection and its counters are shared. The loop polls whichever
//! member is due first, so a slow member delays the others by one poll at most, never starves
//! them. Writes to the members that allow them go out between polls over the same link.

use chrono::{Local, Utc};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::writes::Writes;
use super::{Poller, Update, announce, next_after, recv};
use crate::transport::Link;
use crate::writes::WritePort;

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
    members: Vec<Member>,
    link: Link,
    bus: broadcast::Sender<Update>,
    cancel: CancellationToken,
) {
    run_stack_with_writes(members, link, bus, None, cancel).await;
}

/// [`run_stack`], also carrying out the commands of `writes` for the members it allows,
/// between polls and over the same link: one request in flight for the whole stack.
pub async fn run_stack_with_writes(
    mut members: Vec<Member>,
    mut link: Link,
    bus: broadcast::Sender<Update>,
    writes: Option<WritePort>,
    cancel: CancellationToken,
) {
    let mut writes = writes.map(Writes::new);
    let start = Instant::now();
    let mut due: Vec<Instant> = members.iter().map(|m| start + m.poller.start_after).collect();
    while let Some((i, at)) = due.iter().copied().enumerate().min_by_key(|(_, at)| *at) {
        let wake = writes
            .as_ref()
            .and_then(Writes::wake)
            .and_then(|(name, when)| Some((members.iter().position(|m| **m.poller.name() == *name)?, when)));
        let on_grid = crate::timer::aligned(at);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = sleep_until(on_grid) => super::lateness::record(on_grid.elapsed()),
            command = recv(writes.as_mut()) => {
                if let Some(writes) = writes.as_mut() { writes.take(command, Instant::now()); }
                continue;
            }
            () = sleep_until(wake.map_or(at, |(_, when)| when)), if wake.is_some_and(|(_, when)| when < at) => {
                if let (Some(writes), Some((w, _))) = (writes.as_mut(), wake) {
                    let member = &members[w];
                    let mut unit = link.unit(member.slave);
                    if writes.run_due(&member.poller, &mut unit, Instant::now()).await {
                        due[w] = Instant::now();
                    }
                }
                continue;
            }
        }
        let member = &mut members[i];
        let mut unit = link.unit(member.slave);
        let now = Utc::now();
        let outcome = tokio::select! {
            () = cancel.cancelled() => break,
            outcome = member.poller.poll_once(&mut unit, now, Local::now().naive_local()) => outcome,
        };
        let update = announce(&mut member.poller, &unit, outcome, now);
        if let Some(writes) = writes.as_mut() {
            writes.observe(&update);
        }
        super::clock::after_poll(&mut member.poller, &update, &mut unit).await;
        // No subscriber is fine: the service may run without sinks.
        let _ = bus.send(update);
        due[i] = next_after(at, member.poller.interval);
    }
    for member in &mut members {
        member.poller.save_totals();
    }
    tracing::debug!(inverters = members.len(), "stack poller stopped");
}
