//! The thin task around the sans-I/O [`Publisher`]: it awaits the inputs and the timer, feeds
//! them in, and carries out the effects with the rumqttc client, never waiting on the broker.
//! It must not decide anything: every rule is in the publisher, where tests reach it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rumqttc::{AsyncClient, ClientError, QoS, Request};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{Effect, Message, Publisher};
use crate::mqtt::Outgoing;
use crate::mqtt::connection::ConnEvent;
use crate::poller::Update;

/// The channels the publisher listens to.
#[derive(Debug)]
pub(crate) struct Inputs {
    /// Poll updates.
    pub bus: broadcast::Receiver<Update>,
    /// What the connection reports.
    pub events: mpsc::Receiver<ConnEvent>,
    /// Switch commands from other tasks.
    pub commands: mpsc::Receiver<(String, bool)>,
    /// Messages other tasks publish.
    pub outgoing: mpsc::Receiver<Outgoing>,
    /// Shutdown.
    pub cancel: CancellationToken,
    /// Tells the connection task to stop once we are done.
    pub stop: CancellationToken,
}

/// Where the effects go besides the broker.
#[derive(Debug)]
pub(crate) struct Outputs {
    /// The client: publishes and subscriptions.
    pub client: AsyncClient,
    /// Every switch's last known state.
    pub states: watch::Sender<BTreeMap<String, bool>>,
    /// Messages on the service devices' topics, for the tasks listening.
    pub messages: broadcast::Sender<(String, Vec<u8>)>,
    /// Setting commands, for the write router.
    pub writes: broadcast::Sender<crate::writes::Command>,
    /// True while connected, read by the metrics at scrape time.
    pub connected: Arc<AtomicBool>,
}

/// How long the discovery ledger's changes wait to be written: a fleet's discoveries over these
/// seconds become one write of the file instead of one per inverter.
const LEDGER_FLUSH_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs until `inputs.cancel`, then says offline and disconnects; the ledger is written then.
pub(crate) async fn run(mut publisher: Publisher, mut inputs: Inputs, outputs: Outputs) {
    let mut bus_open = true;
    let mut flush_at: Option<Instant> = None;
    loop {
        let timer = publisher.next_timer();
        let effects = tokio::select! {
            () = inputs.cancel.cancelled() => break,
            update = inputs.bus.recv(), if bus_open => match update {
                Ok(update) => publisher.on_update(update),
                Err(e) => {
                    bus_open = bus_still_open(e);
                    Vec::new()
                }
            },
            Some(event) = inputs.events.recv() => {
                let effects = publisher.on_event(event, Instant::now());
                outputs.connected.store(publisher.is_connected(), Ordering::Relaxed);
                effects
            }
            Some((name, on)) = inputs.commands.recv() => publisher.on_command(&name, on),
            Some(out) = inputs.outgoing.recv() => publisher.on_outgoing(out),
            () = sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => publisher.on_timer(Instant::now()),
            () = sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                flush_at = None;
                publisher.flush_ledger();
                Vec::new()
            }
        };
        carry_out(&mut publisher, &outputs, effects);
        if flush_at.is_none() && publisher.ledger_dirty() {
            flush_at = Some(Instant::now() + LEDGER_FLUSH_DELAY);
        }
    }
    let effects = publisher.shutdown();
    carry_out(&mut publisher, &outputs, effects);
    inputs.stop.cancel();
}

/// Whether the poll bus is still open after `e`: a lag loses updates (the next one carries the
/// whole state again), a close ends them.
fn bus_still_open(e: broadcast::error::RecvError) -> bool {
    match e {
        broadcast::error::RecvError::Lagged(n) => {
            tracing::warn!("MQTT publisher skipped {n} poll updates");
            true
        }
        broadcast::error::RecvError::Closed => false,
    }
}

/// Carries out `effects` in order.
pub(crate) fn carry_out(publisher: &mut Publisher, outputs: &Outputs, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Publish(message) => publish(publisher, &outputs.client, message),
            Effect::Subscribe(topic) => {
                if let Err(e) = outputs.client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(%topic, "cannot subscribe: {e}");
                }
            }
            // Nobody listening (yet) is fine: retained commands come again on reconnect.
            Effect::Deliver { topic, payload } => {
                let _ = outputs.messages.send((topic, payload));
            }
            // Nobody listening means writes are off for every inverter.
            Effect::Write(command) => {
                let _ = outputs.writes.send(command);
            }
            Effect::SwitchState { name, on } => outputs.states.send_modify(|states| {
                states.insert(name, on);
            }),
            Effect::Disconnect => {
                if let Err(e) = outputs.client.try_disconnect() {
                    tracing::debug!("no DISCONNECT sent: {e}");
                }
            }
        }
    }
}

/// Hands one message to the client. A full queue hands a kept message back to the publisher
/// (its payload taken back from the refusal, not copied before) and drops any other, counted.
fn publish(publisher: &mut Publisher, client: &AsyncClient, message: Message) {
    let Message { topic, payload, retain, qos, keep } = message;
    let refused = match client.try_publish(topic.as_str(), qos, retain, payload) {
        Ok(()) => return,
        Err(
            ClientError::TryRequest(Request::Publish(refused))
            | ClientError::Request(Request::Publish(refused)),
        ) if keep => refused,
        Err(e) => {
            let dropped = publisher.on_dropped();
            tracing::warn!(%topic, dropped, "MQTT message dropped: {e}");
            return;
        }
    };
    let payload = Vec::from(refused.payload);
    publisher.on_refused(Message { topic, payload, retain, qos, keep }, Instant::now());
}
