//! The one task that owns the broker connection: it only polls rumqttc's event loop, reports
//! connects, disconnects and messages to the publisher, and backs off between reconnects.
//!
//! rumqttc reconnects on the next `poll()` after an error, at once and forever: without our own
//! backoff a missing broker would spin (bytebeamio/rumqtt#703). Clean sessions lose
//! subscriptions, so the publisher re-subscribes on every `Connected` (rumqtt#250).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::topics::Topics;
use crate::backoff::Backoff;
use crate::config::MqttConfig;

/// Largest MQTT packet in either direction: a device discovery payload of ~150 entities is
/// ~100 KiB, far over rumqttc's 10 KiB default (rumqtt#884).
pub(crate) const MAX_PACKET: usize = 1024 * 1024;
/// rumqttc's request queue; we never await on it (`try_publish`), so this bounds memory.
const REQUEST_CAPACITY: usize = 4096;

/// What the connection tells the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnEvent {
    /// A CONNACK: (re)subscribe and republish everything.
    Connected,
    /// The connection is gone; messages are not delivered until the next `Connected`.
    Disconnected,
    /// A message on a subscribed topic.
    Message {
        /// The topic.
        topic: String,
        /// The payload.
        payload: Bytes,
        /// Delivered from the broker's store (a retained message), not sent just now.
        retained: bool,
    },
}

/// The client (for publishing) and the event loop (for [`drive`]).
///
/// # Errors
/// The password file, CA file or client certificate cannot be read or used.
pub(crate) fn connect(config: &MqttConfig, topics: &Topics) -> std::io::Result<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(config.client_id(), config.host.clone(), config.port);
    if config.tls {
        let tls = tls_config(config).map_err(std::io::Error::other)?;
        options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    options.set_keep_alive(config.keep_alive);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    options.set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
    if let Some(user) = &config.username {
        let password = config.password()?.map(|p| p.expose().to_string()).unwrap_or_default();
        options.set_credentials(user.clone(), password);
    }
    Ok(AsyncClient::new(options, config.queue_capacity.unwrap_or(REQUEST_CAPACITY)))
}

/// A rustls client config with ring: the broker verified against `ca_file` (or the system's
/// roots), and a client certificate when one is configured.
fn tls_config(config: &MqttConfig) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &config.ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("mqtt.ca_file: {e}"))? {
                roots
                    .add(cert.map_err(|e| format!("mqtt.ca_file: {e}"))?)
                    .map_err(|e| format!("mqtt.ca_file: {e}"))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder.with_platform_verifier().map_err(|e| format!("system roots: {e}"))?,
    };
    match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("mqtt.client_cert: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("mqtt.client_key: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("mqtt.client_cert: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// After our DISCONNECT went out: keeps reading until the broker closes the connection (or
/// [`LINGER`] passes). Dropping the socket at once, with the broker's answers still unread,
/// makes the kernel reset the connection, and a broker that sees the reset may discard the
/// last messages it had not read yet.
async fn linger(mut eventloop: EventLoop) {
    let _ = tokio::time::timeout(LINGER, async { while eventloop.poll().await.is_ok() {} }).await;
}

/// The longest wait for the broker to close after our DISCONNECT.
const LINGER: Duration = Duration::from_secs(2);

/// Polls `eventloop` until a DISCONNECT went out or `stop` is cancelled while disconnected.
pub(crate) async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::Sender<ConnEvent>,
    stop: CancellationToken,
    broker: String,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut rng = SmallRng::from_os_rng();
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            () = stop.cancelled(), if backoff.failures() > 0 => return,
        };
        let report = match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tracing::info!(%broker, "MQTT connected");
                ConnEvent::Connected
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                ConnEvent::Message { topic: p.topic, payload: p.payload, retained: p.retain }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return linger(eventloop).await,
            Ok(_) => continue,
            Err(e) => {
                let delay = backoff.fail(rng.random());
                tracing::warn!(%broker, "MQTT broker unreachable ({e}); retrying in {delay:.1?}; polling goes on");
                let _ = events.send(ConnEvent::Disconnected).await;
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        if events.send(report).await.is_err() {
            return;
        }
    }
}
