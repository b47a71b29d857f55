//! The simulator's answer to local discovery: a UDP socket that answers the probe
//! `WIFIKIT-214028-READ` with `IP,MAC,SERIAL`, as a logger's Wi-Fi module does on port 48899.
//!
//! It answers only the exact probe, and only from the address it was given: tests run it on
//! 127.0.0.1 and never broadcast. It must not answer anything else, so a client that sends the
//! wrong probe finds nothing, as it would on a real network.

use std::net::{IpAddr, Ipv4Addr};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::discover::PROBE;

/// The simulated logger's MAC: a locally administered address (second bit of the first byte
/// set), so it can never be a real device's.
pub const MAC: &str = "02AB5C000001";

/// The answer for a logger at `ip` with `serial`.
pub fn answer(ip: Ipv4Addr, serial: u32) -> String {
    format!("{ip},{MAC},{serial}")
}

/// Answers the discovery probe on `socket` with `serial` until `cancel`.
///
/// The IP in the answer is the socket's own; a socket on every address (0.0.0.0) answers
/// with 127.0.0.1, the one address it surely has.
///
/// # Errors
/// Only a receive error the socket cannot recover from.
pub async fn answer_discovery(
    socket: UdpSocket,
    serial: u32,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let ip = match socket.local_addr()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        _ => Ipv4Addr::LOCALHOST,
    };
    let reply = answer(ip, serial);
    let mut buf = [0u8; 512];
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, from) = match received {
            Ok(received) => received,
            // A previous reply's "port unreachable" is the asker's problem, not ours.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        if &buf[..len] != PROBE {
            tracing::debug!(%from, "simulator: ignored a datagram that is not the discovery probe");
            continue;
        }
        if let Err(e) = socket.send_to(reply.as_bytes(), from).await {
            tracing::debug!(%from, "simulator: discovery answer not sent: {e}");
        }
    }
}
