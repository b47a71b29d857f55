//! Finding Solarman loggers on the LAN by their local UDP discovery (docs/protocol.md Q13).
//!
//! A logger's Wi-Fi module listens on UDP port 48899. Sent the probe `WIFIKIT-214028-READ`, it
//! answers with one datagram `IP,MAC,SERIAL`, for example `192.168.1.20,402A8F39E514,2712345678`
//! (pysolarmanv5 `utils/solarman_scan.py`; kbialek/deye-inverter-mqtt#141 shows one in a log).
//!
//! The module owns the probe, the parsing of answers ([`parse_answer`], [`Collector`]: sans I/O)
//! and one small async runner ([`discover`]) that sends the probe and collects answers until a
//! deadline. It must not print: the command line decides what a person sees.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

/// The probe every Solarman logger answers.
pub const PROBE: &[u8] = b"WIFIKIT-214028-READ";

/// The UDP port loggers listen on for the probe.
pub const PORT: u16 = 48899;

/// Where the probe goes by default: every host on the local IPv4 network.
pub const BROADCAST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), PORT);

/// How often the probe is sent while waiting: UDP may lose a datagram, and a logger busy
/// with its cloud upload may miss one.
const RESEND_EVERY: Duration = Duration::from_secs(1);

/// One logger that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logger {
    /// The IP the logger gives for itself.
    pub ip: Ipv4Addr,
    /// Its MAC address: twelve upper-case hex digits, as loggers send it.
    pub mac: String,
    /// The logger (not inverter) serial: what `serial` in the config wants.
    pub serial: u32,
}

impl Logger {
    /// The MAC with colons, for people.
    pub fn mac_pretty(&self) -> String {
        let pairs: Vec<&str> =
            self.mac.as_bytes().chunks(2).filter_map(|pair| std::str::from_utf8(pair).ok()).collect();
        pairs.join(":")
    }

    /// A ready `[[inverter]]` block for this logger, named `name`.
    pub fn config_block(&self, name: &str) -> String {
        format!(
            "[[inverter]]\nname = \"{name}\"\nhost = \"{}\"\nserial = {}\nprofile = \"auto\"\n",
            self.ip, self.serial
        )
    }
}

/// Why an answer was not taken for a logger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not text.
    #[error("not text")]
    NotText,
    /// Not three comma-separated fields.
    #[error("{0} fields, expected IP,MAC,SERIAL")]
    Fields(usize),
    /// The first field is not an IPv4 address.
    #[error("`{0}` is not an IPv4 address")]
    Ip(String),
    /// The second field is not a MAC address.
    #[error("`{0}` is not a MAC address (12 hex digits)")]
    Mac(String),
    /// The third field is not a V5 logger serial.
    #[error("`{0}` is not a logger serial (a number 1..=4294967295)")]
    Serial(String),
}

/// Why discovery could not run at all. No answer is not an error: it is an empty [`Found`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The UDP socket could not be opened.
    #[error("cannot open a UDP socket: {0}")]
    Bind(std::io::Error),
    /// The probe could not be sent.
    #[error("cannot send the probe to {target}: {cause}")]
    Send {
        /// Where it was going.
        target: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// Receiving failed.
    #[error("cannot receive answers: {0}")]
    Receive(std::io::Error),
}

/// Reads one answer `IP,MAC,SERIAL`. Trailing whitespace and NULs are allowed, nothing else.
///
/// # Errors
/// [`AnswerError`] naming the first field that is wrong.
pub fn parse_answer(datagram: &[u8]) -> Result<Logger, AnswerError> {
    let text = std::str::from_utf8(datagram).map_err(|_| AnswerError::NotText)?;
    let text = text.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
    let fields: Vec<&str> = text.split(',').collect();
    let [ip, mac, serial] = fields[..] else { return Err(AnswerError::Fields(fields.len())) };
    let ip = ip.parse().map_err(|_| AnswerError::Ip(ip.into()))?;
    Ok(Logger { ip, mac: parse_mac(mac)?, serial: parse_serial(serial)? })
}

/// Twelve hex digits, optionally in pairs separated by `:` or `-`, upper-cased.
fn parse_mac(field: &str) -> Result<String, AnswerError> {
    let digits: String = field.chars().filter(|c| *c != ':' && *c != '-').collect();
    let separators = field.len() - digits.len();
    if digits.len() != 12 || !digits.chars().all(|c| c.is_ascii_hexdigit()) || !matches!(separators, 0 | 5) {
        return Err(AnswerError::Mac(field.into()));
    }
    Ok(digits.to_ascii_uppercase())
}

fn parse_serial(field: &str) -> Result<u32, AnswerError> {
    let valid = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| field.parse::<u32>().ok())
        .flatten()
        .filter(|serial| *serial != 0)
        .ok_or_else(|| AnswerError::Serial(field.into()))
}

/// A datagram that was not an answer, with who sent it and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The sender.
    pub from: SocketAddr,
    /// The datagram, as text where it is text, escaped where not.
    pub text: String,
    /// What was wrong.
    pub reason: AnswerError,
}

/// What came back: each logger once, in order of first answer, and what was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The loggers.
    pub loggers: Vec<Logger>,
    /// Answers that were not `IP,MAC,SERIAL`.
    pub malformed: Vec<Malformed>,
}

/// Collects answers as they arrive: sans I/O, so parsing and de-duplication are tested alone.
#[derive(Debug, Default)]
pub struct Collector {
    found: Found,
}

impl Collector {
    /// Takes one datagram from `from`. A logger that answers twice (the probe is resent) is
    /// listed once; an echo of our own probe (seen on some networks) is ignored.
    pub fn take(&mut self, from: SocketAddr, datagram: &[u8]) {
        if datagram == PROBE {
            return;
        }
        match parse_answer(datagram) {
            Ok(logger) if self.found.loggers.contains(&logger) => {}
            Ok(logger) => self.found.loggers.push(logger),
            Err(reason) => {
                let text = String::from_utf8_lossy(datagram).escape_debug().to_string();
                tracing::debug!(%from, text, %reason, "discovery: not a logger's answer");
                self.found.malformed.push(Malformed { from, text, reason });
            }
        }
    }

    /// Everything collected.
    pub fn finish(self) -> Found {
        self.found
    }
}

/// Sends the probe to `target` and collects answers for `wait`.
///
/// # Errors
/// [`Error`] when the socket cannot be opened or used; silence is an empty [`Found`].
pub async fn discover(target: SocketAddr, wait: Duration) -> Result<Found, Error> {
    let socket = open_socket(target).await?;
    let deadline = Instant::now() + wait;
    let mut next_probe = Instant::now();
    let mut collector = Collector::default();
    let mut buf = [0u8; 512];
    loop {
        // Checked before every receive, so a stream of datagrams cannot outlast the wait.
        if Instant::now() >= deadline {
            return Ok(collector.finish());
        }
        if Instant::now() >= next_probe {
            socket.send_to(PROBE, target).await.map_err(|cause| Error::Send { target, cause })?;
            next_probe += RESEND_EVERY;
        }
        match timeout_at(next_probe.min(deadline), socket.recv_from(&mut buf)).await {
            Ok(Ok((len, from))) => collector.take(from, &buf[..len]),
            // An ICMP "port unreachable" from a target that has no logger: silence, not failure.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(Err(e)) => return Err(Error::Receive(e)),
            Err(_) => {}
        }
    }
}

/// A UDP socket on the family of `target`; an IPv4 one may broadcast (harmless for one address).
async fn open_socket(target: SocketAddr) -> Result<UdpSocket, Error> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await.map_err(Error::Bind)?;
    if target.is_ipv4() {
        socket.set_broadcast(true).map_err(Error::Bind)?;
    }
    Ok(socket)
}

/// Reads `--target`: `ADDR` or `ADDR:PORT`, where ADDR is an IP address or a host name.
///
/// # Errors
/// The host name does not resolve, or the port is not a number.
pub async fn resolve_target(target: &str) -> std::io::Result<SocketAddr> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = target.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, PORT));
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{port}` is not a port"))
            })?;
            (host, port)
        }
        None => (target, PORT),
    };
    let mut addrs = tokio::net::lookup_host((host, port)).await?;
    addrs
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("`{host}` has no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        "10.0.0.5:48899".parse().unwrap()
    }

    #[test]
    fn a_loggers_answer_is_read_field_by_field() {
        let logger = parse_answer(b"192.168.178.150,402a8f39e514,2799381839").unwrap();
        assert_eq!(logger.ip, Ipv4Addr::new(192, 168, 178, 150));
        assert_eq!((logger.mac.as_str(), logger.serial), ("402A8F39E514", 2_799_381_839));
        assert_eq!(logger.mac_pretty(), "40:2A:8F:39:E5:14");
        assert_eq!(parse_answer(b"10.0.0.5,40:2A:8F:39:E5:14,7\r\n\0").unwrap().serial, 7);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(parse_answer(b"+ok"), Err(AnswerError::Fields(1)));
        assert_eq!(parse_answer(b"a,b,c,d"), Err(AnswerError::Fields(4)));
        assert_eq!(parse_answer(b"10.0.0,402A8F39E514,1"), Err(AnswerError::Ip("10.0.0".into())));
        assert_eq!(parse_answer(b"10.0.0.5,402A8F39E5,1"), Err(AnswerError::Mac("402A8F39E5".into())));
        assert_eq!(parse_answer(b"10.0.0.5,402A8F39E51G,1"), Err(AnswerError::Mac("402A8F39E51G".into())));
        assert_eq!(parse_answer(b"10.0.0.5,40:2A8F39E514,1"), Err(AnswerError::Mac("40:2A8F39E514".into())));
        for serial in ["", "0", "-1", "+5", "4294967296", "D2521224150A0"] {
            let datagram = format!("10.0.0.5,402A8F39E514,{serial}");
            assert_eq!(parse_answer(datagram.as_bytes()), Err(AnswerError::Serial(serial.into())));
        }
        assert_eq!(parse_answer(&[0xff, 0xfe]), Err(AnswerError::NotText));
    }

    #[test]
    fn the_collector_lists_each_logger_once_and_keeps_the_junk_apart() {
        let mut collector = Collector::default();
        collector.take(from(), b"10.0.0.5,402A8F39E514,2712345678");
        collector.take(from(), PROBE);
        collector.take(from(), b"hello\x01");
        collector.take(from(), b"10.0.0.5,402A8F39E514,2712345678");
        collector.take(from(), b"10.0.0.6,402A8F39E515,2712345679");
        let found = collector.finish();
        let serials: Vec<u32> = found.loggers.iter().map(|l| l.serial).collect();
        assert_eq!(serials, [2_712_345_678, 2_712_345_679]);
        assert_eq!(found.malformed.len(), 1);
        assert_eq!(found.malformed[0].text, "hello\\u{1}");
        assert_eq!(found.malformed[0].reason, AnswerError::Fields(1));
    }

    #[test]
    fn the_config_block_is_ready_to_paste() {
        let logger = parse_answer(b"10.0.0.5,402A8F39E514,2712345678").unwrap();
        let block = logger.config_block("inverter");
        let parsed: toml::Value = toml::from_str(&block).unwrap();
        assert_eq!(parsed["inverter"][0]["host"].as_str(), Some("10.0.0.5"));
        assert_eq!(parsed["inverter"][0]["serial"].as_integer(), Some(2_712_345_678));
        assert_eq!(parsed["inverter"][0]["profile"].as_str(), Some("auto"));
    }

    #[tokio::test]
    async fn targets_take_a_default_port() {
        assert_eq!(resolve_target("10.0.0.5").await.unwrap(), "10.0.0.5:48899".parse().unwrap());
        assert_eq!(resolve_target("10.0.0.5:7").await.unwrap(), "10.0.0.5:7".parse().unwrap());
        assert_eq!(resolve_target("localhost:7").await.unwrap().port(), 7);
        assert!(resolve_target("localhost:x").await.is_err());
    }
}
