//! The write router: setting commands from the publisher to the poll loop of their inverter,
//! and each result back to `<base>/<inverter>/write_result`. It only carries: the publisher
//! stamps each command with the identity its entity was announced with, and the poll loop
//! checks and decides (`crate::writes`).

use std::collections::BTreeMap;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::MqttHandle;
use crate::writes::{Command, WriteResult};

/// Routes until `cancel`: `inverters` maps an inverter's name to its poll loop's commands.
pub async fn run(
    mqtt: MqttHandle,
    inverters: BTreeMap<String, mpsc::Sender<Command>>,
    mut results: mpsc::Receiver<WriteResult>,
    cancel: CancellationToken,
) {
    let mut commands = mqtt.write_commands();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            command = commands.recv() => match command {
                Ok(command) => route(&inverters, command),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "write router fell behind: {n} setting commands were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(result) = results.recv() => publish(&mqtt, &result).await,
        }
    }
}

/// Hands a setting command to its inverter's poll loop.
fn route(inverters: &BTreeMap<String, mpsc::Sender<Command>>, command: Command) {
    let Some(sender) = inverters.get(&command.inverter) else { return };
    let topic = command.topic.clone();
    if let Err(e) = sender.try_send(command) {
        tracing::warn!(%topic, "setting command dropped: {e}");
    }
}

async fn publish(mqtt: &MqttHandle, result: &WriteResult) {
    let topic = mqtt.topics().write_result(&result.inverter);
    match serde_json::to_vec(result) {
        Ok(payload) => {
            // The MQTT task has stopped only at shutdown.
            let _ = mqtt.publish(topic, payload, false).await;
        }
        Err(e) => tracing::warn!("write result not published: {e}"),
    }
}
