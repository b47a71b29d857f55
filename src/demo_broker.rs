//! The demo's embedded MQTT broker (`demo --mqtt`): rumqttd in-process, so Home Assistant or
//! `mosquitto_sub` can watch the simulated house with nothing else installed.
//!
//! This module owns parsing the `--mqtt` argument, starting the broker on its own threads and
//! waiting until it accepts connections. It must not be used by `run`: the service talks to the
//! user's broker, and a broker of its own would only cost memory. rumqttd is behind the
//! `demo-broker` cargo feature (on by default); without it [`start`] says how to get it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// How long the broker may take to accept its first connection.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binary was built with `--no-default-features`.
    #[error(
        "this binary was built without the embedded MQTT broker; rebuild with \
         `--features demo-broker` or point a config's [mqtt] at a broker of your own"
    )]
    NotBuilt,
    /// The address is taken or not ours.
    // The OS's reason is the source: the error chain prints it once, after this.
    #[error("the MQTT broker cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// rumqttd refused its configuration or could not start a thread.
    #[error("the embedded MQTT broker failed: {0}")]
    Broker(String),
    /// rumqttd's listener never answered.
    #[error("the embedded MQTT broker did not accept connections on {0} within {READY_WITHIN:?}")]
    NotReady(SocketAddr),
}

/// Parses `--mqtt`: a bare port means 127.0.0.1 (nothing outside this machine sees the demo);
/// `ADDR:PORT`, e.g. `0.0.0.0:1883`, lets Home Assistant on another machine connect.
pub fn parse_listen(arg: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = arg.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    arg.parse().map_err(|_| format!("`{arg}` is neither a port nor an ADDR:PORT"))
}

/// The address a client on this machine dials to reach a broker listening on `listen`.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        let loopback = match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        return SocketAddr::new(loopback, listen.port());
    }
    listen
}

/// Starts the broker on `listen` (port 0 picks a free one) and returns once it accepts
/// connections, with the address it listens on. It runs on threads of its own until the process
/// exits: the demo has no reason to stop it earlier.
pub fn start(listen: SocketAddr) -> Result<SocketAddr, Error> {
    let listen = claim(listen)?;
    broker::spawn(listen)?;
    wait_ready(local_address(listen))?;
    Ok(listen)
}

/// Binds `listen` once, so a taken port is a clear error here rather than a log line from
/// rumqttd's thread, and so port 0 becomes a real one. The socket is closed again for rumqttd,
/// which binds by itself; another process taking the port in between is a race a demo accepts.
fn claim(listen: SocketAddr) -> Result<SocketAddr, Error> {
    let socket =
        std::net::TcpListener::bind(listen).map_err(|source| Error::Listen { addr: listen, source })?;
    socket.local_addr().map_err(|source| Error::Listen { addr: listen, source })
}

fn wait_ready(addr: SocketAddr) -> Result<(), Error> {
    let deadline = Instant::now() + READY_WITHIN;
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() >= deadline {
            return Err(Error::NotReady(addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(feature = "demo-broker")]
mod broker {
    use std::net::SocketAddr;

    use super::Error;

    /// rumqttd with one MQTT 3.1.1 listener and limits a demo never reaches; no TLS, no
    /// authentication (the default address is loopback), no metrics or console.
    fn config(listen: SocketAddr) -> rumqttd::Config {
        let connections = rumqttd::ConnectionSettings {
            connection_timeout_ms: 5000,
            // Discovery configs are a few kB each; 1 MiB leaves room for any client.
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = rumqttd::ServerSettings {
            name: "demo".into(),
            listen,
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        // Small segments: the router keeps this much per topic filter in memory.
        let router = rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            ..Default::default()
        };
        rumqttd::Config { router, v4: Some([("demo".to_string(), server)].into()), ..Default::default() }
    }

    /// Runs the broker on a thread of its own; rumqttd starts its router and listener threads
    /// from there and blocks that thread while they run.
    pub(super) fn spawn(listen: SocketAddr) -> Result<(), Error> {
        let config = config(listen);
        std::thread::Builder::new()
            .name("demo-broker".into())
            .spawn(move || {
                if let Err(e) = rumqttd::Broker::new(config).start() {
                    tracing::error!("the embedded MQTT broker stopped: {e}");
                }
            })
            .map(drop)
            .map_err(|e| Error::Broker(e.to_string()))
    }
}

#[cfg(not(feature = "demo-broker"))]
mod broker {
    use std::net::SocketAddr;

    use super::Error;

    /// Without the feature there is nothing to start.
    pub(super) fn spawn(_listen: SocketAddr) -> Result<(), Error> {
        Err(Error::NotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        assert_eq!(parse_listen("1883"), Ok("127.0.0.1:1883".parse().unwrap()));
    }

    #[test]
    fn an_address_is_taken_as_given() {
        assert_eq!(parse_listen("0.0.0.0:1884"), Ok("0.0.0.0:1884".parse().unwrap()));
        assert_eq!(parse_listen("[::1]:1885"), Ok("[::1]:1885".parse().unwrap()));
        assert!(parse_listen("localhost").unwrap_err().contains("neither a port"));
        assert!(parse_listen("70000").is_err());
    }

    #[test]
    fn an_unspecified_address_is_dialled_on_loopback() {
        assert_eq!(local_address("0.0.0.0:1883".parse().unwrap()), "127.0.0.1:1883".parse().unwrap());
        assert_eq!(local_address("[::]:1883".parse().unwrap()), "[::1]:1883".parse().unwrap());
        assert_eq!(local_address("192.0.2.1:1883".parse().unwrap()), "192.0.2.1:1883".parse().unwrap());
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = start(addr).unwrap_err();
        assert!(matches!(error, Error::Listen { .. }), "{error}");
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }

    #[cfg(feature = "demo-broker")]
    #[test]
    fn the_broker_accepts_connections_on_a_free_port() {
        let addr = start("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        std::net::TcpStream::connect(addr).unwrap();
    }

    #[cfg(not(feature = "demo-broker"))]
    #[test]
    fn without_the_feature_the_error_says_how_to_get_it() {
        let error = start("127.0.0.1:0".parse().unwrap()).unwrap_err();
        assert!(error.to_string().contains("--features demo-broker"), "{error}");
    }
}
