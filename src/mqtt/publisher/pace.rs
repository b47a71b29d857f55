//! Pacing retained config messages through the client's bounded queue, so a fleet's discovery
//! is never lost to a full queue.
//!
//! After a connect or Home Assistant's birth every inverter is announced again (each up to
//! ~100 KB). Handed to the client at once, thousands of them overflow its queue. So the pass
//! keeps only the *names* still to announce ([`Pace::pending`], bounded by the configured
//! inverters) and builds each inverter's payloads when its turn comes, a step of at most
//! [`STEP_BYTES`] at a time; the next step runs from [`Publisher::next_timer`] at once. A
//! message that must arrive (discovery, a removal, availability: `Message::keep`) and that the
//! client refuses comes back through [`Publisher::on_refused`] and is sent again after
//! [`RETRY`], before anything new. State and diagnostics are not kept: the next poll replaces
//! them, so a full queue drops them (counted), as before.
//!
//! It must not hold N payloads: only the names pending, one step's refusals and the effects of
//! the step being handed over.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::{Effect, Message, Publisher};

/// How many payload bytes one step hands over: memory stays bounded whatever the fleet.
pub(super) const STEP_BYTES: usize = 256 * 1024;

/// How long refused messages wait for the client's queue to drain before they are sent again.
pub(super) const RETRY: Duration = Duration::from_millis(100);

/// The discovery pass in progress and the messages the client refused.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// Inverters still to announce, by name.
    pub(super) pending: BTreeSet<String>,
    /// Kept messages the client refused, oldest first; sent again before anything new.
    pub(super) refused: VecDeque<Message>,
    /// When the next step runs.
    pub(super) resume_at: Option<Instant>,
    /// The republish pass running, for its one log line.
    pass: Option<Pass>,
}

/// What one pass did, logged once when it is done.
#[derive(Debug)]
struct Pass {
    started: Instant,
    announced: usize,
    paced: bool,
}

impl Pace {
    /// True while messages wait: new discovery must queue behind them (by name) rather than
    /// pile more payloads onto a full queue.
    pub(super) fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.refused.is_empty()
    }
}

impl Publisher {
    /// Starts a pass announcing `names` at `now`; one already running restarts (never two
    /// lists: an inverter is pending once).
    pub(super) fn start_pass(&mut self, names: impl IntoIterator<Item = String>, now: Instant) {
        if self.pace.pass.is_some() {
            tracing::debug!("a new discovery pass restarts the one in progress");
        }
        self.pace.pending = names.into_iter().collect();
        self.pace.pass = Some(Pass { started: now, announced: 0, paced: false });
        self.step(now);
    }

    /// A kept message the client refused (its queue is full), at `now`: it is sent again
    /// after [`RETRY`]. A topic the client can never take is dropped instead, counted.
    pub(crate) fn on_refused(&mut self, message: Message, now: Instant) {
        if !rumqttc::valid_topic(&message.topic) {
            let dropped = self.on_dropped();
            tracing::warn!(topic = %message.topic, dropped, "MQTT message dropped: invalid topic");
            return;
        }
        self.pace.refused.push_back(message);
        self.pace.resume_at = Some(now + RETRY);
        if let Some(pass) = &mut self.pace.pass {
            pass.paced = true;
        }
    }

    /// One step at `now`: the refused messages again, then inverters pending, up to
    /// [`STEP_BYTES`]. When a step had nothing left to send, the pass is done and logged.
    pub(super) fn step(&mut self, now: Instant) {
        self.pace.resume_at = None;
        if !self.connected {
            // The reconnect starts a new pass; the refused messages wait for it.
            return;
        }
        let start = self.out.len();
        let mut sent = 0;
        while sent < STEP_BYTES {
            let Some(message) = self.pace.refused.pop_front() else { break };
            sent += message.payload.len();
            self.out.push(Effect::Publish(message));
        }
        while sent < STEP_BYTES {
            let Some(name) = self.pace.pending.pop_first() else { break };
            let before = self.out.len();
            self.republish_inverter(&name);
            sent += payload_bytes(&self.out[before..]);
            if let Some(pass) = &mut self.pace.pass {
                pass.announced += 1;
            }
        }
        if self.out.len() > start || self.pace.busy() {
            // Once more at once: what is left, or to see that nothing came back refused.
            self.pace.resume_at = Some(now);
        } else if let Some(pass) = self.pace.pass.take() {
            log_done(&pass, now);
        }
    }
}

/// The payload bytes of the publishes among `effects`.
fn payload_bytes(effects: &[Effect]) -> usize {
    effects.iter().map(|e| if let Effect::Publish(m) = e { m.payload.len() } else { 0 }).sum()
}

/// The pass's one line: how many inverters, and whether it had to wait for the queue.
fn log_done(pass: &Pass, now: Instant) {
    let Pass { started, announced, paced } = pass;
    if *paced {
        let took = now.saturating_duration_since(*started);
        tracing::info!(
            "announced discovery of {announced} inverters, paced over {took:.1?}: the MQTT client's queue was full"
        );
    } else {
        tracing::info!("announced discovery of {announced} inverters");
    }
}
