//! The write router: setting commands from MQTT to the poll loop of their inverter, and each
//! result back to `<base>/<inverter>/write_result`. It only carries: the poll loop checks and
//! decides (`crate::writes`).

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
    let mut messages = mqtt.messages();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            message = messages.recv() => match message {
                Ok((topic, payload)) => route(&mqtt, &inverters, topic, &payload),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "write router fell behind: {n} MQTT messages were not seen");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(result) = results.recv() => publish(&mqtt, &result).await,
        }
    }
}

/// Hands a setting command to its inverter's poll loop; anything else is not ours.
fn route(
    mqtt: &MqttHandle,
    inverters: &BTreeMap<String, mpsc::Sender<Command>>,
    topic: String,
    payload: &[u8],
) {
    let Some((inverter, key)) = mqtt.topics().parse_set(&topic) else { return };
    let Some(sender) = inverters.get(inverter) else { return };
    let command = Command {
        inverter: inverter.to_string(),
        key: key.to_string(),
        payload: String::from_utf8_lossy(payload).into_owned(),
        topic: topic.clone(),
    };
    if let Err(e) = sender.try_send(command) {
        tracing::warn!(%topic, "write command dropped: {e}");
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
