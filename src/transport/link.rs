//! One persistent, self-healing connection to one logger.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use super::modbus_tcp::MbapClient;
use super::probe::Verdict;
use super::rtu::{RtuClient, SerialLine};
use super::solarman::V5Client;
use super::{Counters, Error, Event, LoggerBook, Transport};
use crate::backoff::Backoff;
use crate::protocol::{Answer, Exception, Request};

/// Which envelope the logger speaks, and for a serial port, which port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// Solarman V5 on port 8899, with the logger's serial.
    Solarman {
        /// The logger (not inverter) serial; 0 when not configured: the link learns it.
        serial: u32,
    },
    /// Modbus TCP on port 502.
    ModbusTcp,
    /// Raw Modbus RTU frames over TCP: a transparent RS485 gateway.
    RtuOverTcp,
    /// Modbus RTU on a local serial port; `host` and `port` are unused.
    Serial(SerialLine),
    /// Not known yet: probed at the first connect (V5, then Modbus TCP, then raw RTU), then
    /// used like a configured wire; kept in the link's [`LoggerBook`] when it has one.
    Auto {
        /// The logger's serial, when configured; else V5 learns it.
        serial: Option<u32>,
    },
}

impl Wire {
    /// The config's `protocol` value for this wire; none for `serial` and `auto`, which are
    /// not found by probing.
    pub fn protocol(&self) -> Option<&'static str> {
        match self {
            Self::Solarman { .. } => Some("solarman"),
            Self::ModbusTcp => Some("modbus-tcp"),
            Self::RtuOverTcp => Some("rtu-over-tcp"),
            Self::Serial(_) | Self::Auto { .. } => None,
        }
    }

    /// The wire a [`Wire::protocol`] name stands for, V5 with `serial` (none: one to learn).
    fn of_protocol(name: &str, serial: Option<u32>) -> Option<Self> {
        match name {
            "solarman" => Some(Self::Solarman { serial: serial.unwrap_or(0) }),
            "modbus-tcp" => Some(Self::ModbusTcp),
            "rtu-over-tcp" => Some(Self::RtuOverTcp),
            _ => None,
        }
    }
}

/// Where a logger is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Envelope.
    pub wire: Wire,
    /// Modbus slave (unit) id of the inverter, 1 for Deye.
    pub slave: u8,
}

impl Target {
    /// `host:port`, or the serial device, for messages.
    pub fn addr(&self) -> String {
        match &self.wire {
            Wire::Serial(line) => line.device.clone(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Timing of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// Longest wait for a TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for an answer. A logger error takes ~2.1 s (docs/protocol.md Q15).
    pub read_timeout: Duration,
    /// Quiet time between requests; fast bursts upset some loggers (docs/protocol.md Q7).
    pub pause: Duration,
    /// How often a request whose answer was lost or damaged is sent again.
    pub retries: u32,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            pause: Duration::from_millis(100),
            retries: 2,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
enum Client {
    Solarman(V5Client<TcpStream>),
    ModbusTcp(MbapClient<TcpStream>),
    RtuOverTcp(RtuClient<TcpStream>),
    Serial(RtuClient<tokio_serial::SerialStream>),
}

impl Client {
    async fn call(&mut self, slave: u8, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        match self {
            Self::Solarman(c) => {
                c.set_slave(slave);
                c.call(request, counters).await
            }
            Self::ModbusTcp(c) => {
                c.set_slave(slave);
                c.call(request, counters).await
            }
            Self::RtuOverTcp(c) => {
                c.set_slave(slave);
                c.call(request, counters).await
            }
            Self::Serial(c) => {
                c.set_slave(slave);
                c.call(request, counters).await
            }
        }
    }

    /// A V5 link that brought AT text and no V5 frame has a protocol problem, not a slow logger.
    fn explain(&self, error: Error, addr: String) -> Error {
        match (self, &error) {
            (Self::Solarman(c), Error::Timeout(_) | Error::Closed) => match c.at_text_only() {
                Some(text) => Error::AtText { addr, text: text.to_string() },
                None => error,
            },
            _ => error,
        }
    }
}

/// A persistent connection that reconnects by itself.
#[derive(Debug)]
pub struct Link {
    target: Target,
    settings: LinkSettings,
    client: Option<Client>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    last_sent: Option<Instant>,
    counters: Counters,
    rng: SmallRng,
    /// The V5 serial the logger told us (or the book remembered), used when none is configured.
    learned: Option<u32>,
    /// Where a learned serial is kept across restarts.
    book: Option<LoggerBook>,
}

impl Link {
    /// A link to `target`; nothing connects until the first call.
    pub fn new(target: Target, settings: LinkSettings) -> Self {
        let backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
        Self {
            target,
            settings,
            client: None,
            backoff,
            retry_at: None,
            last_sent: None,
            counters: Counters::default(),
            rng: SmallRng::from_os_rng(),
            learned: None,
            book: None,
        }
    }

    /// Keeps what the link learns of its logger in `book` (a V5 serial when none is configured,
    /// the protocol `auto` found) and starts with what it remembers. A configured serial is
    /// never replaced by the book's.
    pub fn with_book(mut self, book: LoggerBook) -> Self {
        if matches!(self.target.wire, Wire::Solarman { serial: 0 } | Wire::Auto { serial: None }) {
            match book.serial(&self.target.addr()) {
                Ok(serial) => self.learned = serial,
                Err(e) => tracing::warn!("{e}; the logger's serial will be learned again"),
            }
        }
        self.book = Some(book);
        self
    }

    /// The V5 serial learned from the logger, if none was configured and one was learned.
    pub fn learned_serial(&self) -> Option<u32> {
        self.learned
    }

    /// Keeps the serial the V5 client adopted, for the next connection and the next start.
    fn note_serial(&mut self) {
        let Some(Client::Solarman(client)) = &self.client else { return };
        let serial = client.serial();
        if !matches!(self.target.wire, Wire::Solarman { serial: 0 }) || self.learned == Some(serial) {
            return;
        }
        self.learned = Some(serial);
        if let Some(book) = &self.book
            && let Err(e) = book.remember_serial(&self.target.addr(), serial)
        {
            tracing::warn!("{e}; the serial is learned again after a restart");
        }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A view of this connection that addresses Modbus slave `slave`: how the inverters of a
    /// parallel stack share one logger or gateway, one request in flight for all of them.
    pub fn unit(&mut self, slave: u8) -> Unit<'_> {
        Unit { link: self, slave }
    }

    /// One try: connect if needed, wait the pause, send to `slave`, wait for the answer.
    async fn attempt(&mut self, slave: u8, request: &Request) -> Result<Answer, Error> {
        self.ensure_connected().await?;
        if let Some(last) = self.last_sent {
            sleep_until(crate::timer::aligned(last + self.settings.pause)).await;
        }
        let Self { client, counters, settings, .. } = self;
        let Some(client) = client.as_mut() else { return Err(Error::Closed) };
        let result = timeout(settings.read_timeout, client.call(slave, request, counters)).await;
        let result = result
            .unwrap_or(Err(Error::Timeout(settings.read_timeout)))
            .map_err(|e| client.explain(e, self.target.addr()));
        self.last_sent = Some(Instant::now());
        self.note_serial();
        result
    }

    async fn ensure_connected(&mut self) -> Result<(), Error> {
        if self.client.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(at) = self.retry_at.filter(|at| *at > now) {
            return Err(Error::Backoff { failures: self.backoff.failures(), retry_in: at - now });
        }
        let error = match self.connect().await {
            Ok(client) => {
                self.attach(client);
                return Ok(());
            }
            Err(error) => error,
        };
        let delay = self.backoff.fail(self.rng.random());
        self.retry_at = Some(Instant::now() + delay);
        Err(error)
    }

    /// Opens the way in for the target's wire; `auto` is found out first, once.
    async fn connect(&mut self) -> Result<Client, Error> {
        match self.target.wire.clone() {
            Wire::Auto { serial } => {
                let (wire, client) = self.detect(serial).await?;
                self.target.wire = wire;
                Ok(client)
            }
            wire => self.open(wire).await,
        }
    }

    /// The wire that answers a read of register 0: remembered, or probed in order on throwaway
    /// connections. A connect failure ends the probe (the host is down, not the envelope wrong).
    async fn detect(&mut self, serial: Option<u32>) -> Result<(Wire, Client), Error> {
        let addr = self.target.addr();
        let known = self.book.as_ref().and_then(|book| {
            book.protocol(&addr)
                .inspect_err(|e| tracing::warn!("{e}; probing the logger again"))
                .ok()
                .flatten()
        });
        if let Some(wire) = known.and_then(|name| Wire::of_protocol(&name, serial)) {
            let client = self.open(wire.clone()).await?;
            return Ok((wire, client));
        }
        // V5 first, the common case: without a serial the logger's refusal names its own.
        let candidates = [Wire::Solarman { serial: serial.unwrap_or(0) }, Wire::ModbusTcp, Wire::RtuOverTcp];
        let mut at_text = None;
        for wire in candidates {
            let stream = self.connect_tcp().await?;
            let (slave, seed, wait) = (self.target.slave, self.rng.random(), self.settings.read_timeout);
            match super::probe::probe(stream, &wire, slave, seed, wait).await {
                Verdict::Spoken => {
                    tracing::info!(%addr, ?wire, "auto: the logger answered; remembered for the next start");
                    if let (Some(book), Some(name)) = (&self.book, wire.protocol())
                        && let Err(e) = book.remember_protocol(&addr, name)
                    {
                        tracing::warn!("{e}; the logger is probed again at the next start");
                    }
                    let client = self.open(wire.clone()).await?;
                    return Ok((wire, client));
                }
                Verdict::AtText(banner) => at_text = Some(banner),
                Verdict::No => {}
            }
        }
        if let Some(banner) = at_text {
            return Err(Error::AtText { addr, text: banner });
        }
        Err(Error::Undetected { addr, tried: "solarman, modbus-tcp, rtu-over-tcp".into() })
    }

    /// Opens the way in for `wire`: a TCP connection, or the serial port.
    async fn open(&mut self, wire: Wire) -> Result<Client, Error> {
        let slave = self.target.slave;
        Ok(match wire {
            // No serial configured: the one learned before, else the logger's first answer tells.
            Wire::Solarman { serial: 0 } => {
                let serial = self.learned.unwrap_or(0);
                let client = V5Client::new(self.connect_tcp().await?, serial, slave, self.rng.random());
                Client::Solarman(client.learning())
            }
            Wire::Solarman { serial } => {
                Client::Solarman(V5Client::new(self.connect_tcp().await?, serial, slave, self.rng.random()))
            }
            Wire::ModbusTcp => {
                Client::ModbusTcp(MbapClient::new(self.connect_tcp().await?, slave, self.rng.random()))
            }
            // The gateway times its own serial side: no silence on the socket.
            Wire::RtuOverTcp => {
                Client::RtuOverTcp(RtuClient::new(self.connect_tcp().await?, slave, Duration::ZERO))
            }
            Wire::Serial(line) => {
                Client::Serial(RtuClient::new(super::rtu::open(&line)?, slave, line.silence()))
            }
            // `connect` resolves auto before it opens anything.
            Wire::Auto { .. } => {
                return Err(Error::Undetected { addr: self.target.addr(), tried: "nothing".into() });
            }
        })
    }

    async fn connect_tcp(&self) -> Result<TcpStream, Error> {
        let addr = self.target.addr();
        let connected = timeout(
            self.settings.connect_timeout,
            TcpStream::connect((self.target.host.as_str(), self.target.port)),
        )
        .await;
        match connected {
            Ok(Ok(stream)) => {
                // Small request frames must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(cause)) => Err(Error::Connect { addr, cause }),
            Err(_) => Err(Error::ConnectTimeout { addr, after: self.settings.connect_timeout }),
        }
    }

    fn attach(&mut self, client: Client) {
        self.backoff.reset();
        self.retry_at = None;
        self.counters.add(Event::Connect);
        self.client = Some(client);
    }

    fn count_answer(&mut self, answer: &Answer) {
        match answer {
            Err(Exception::Modbus(_)) => self.counters.add(Event::Exception),
            Err(Exception::Logger(_)) => self.counters.add(Event::LoggerError),
            Ok(_) => {}
        }
    }

    /// Sends `request` to `slave`, retrying what was lost or damaged.
    async fn call_slave(&mut self, slave: u8, request: &Request) -> Result<Answer, Error> {
        let mut retries = 0;
        loop {
            let error = match self.attempt(slave, request).await {
                Ok(answer) => {
                    self.count_answer(&answer);
                    return Ok(answer);
                }
                Err(error) => error,
            };
            if let Some(event) = error.event() {
                self.counters.add(event);
            }
            if error.needs_reconnect() {
                self.client = None;
            }
            // A write is sent once: a lost answer does not say the write was lost, and a
            // second FC16 may change what the first did (docs/writes.md). The writer reads
            // back to learn what the inverter holds.
            let once = matches!(request, Request::WriteMultiple { .. });
            if once || !error.is_retryable() || retries >= self.settings.retries {
                return Err(error);
            }
            retries += 1;
            self.counters.add(Event::Retry);
        }
    }
}

impl Transport for Link {
    async fn call(&mut self, request: &Request) -> Result<Answer, Error> {
        self.call_slave(self.target.slave, request).await
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// One inverter of a parallel stack, seen through the connection it shares ([`Link::unit`]).
/// The counters are the connection's: every member sees the same.
#[derive(Debug)]
pub struct Unit<'a> {
    link: &'a mut Link,
    slave: u8,
}

impl Transport for Unit<'_> {
    async fn call(&mut self, request: &Request) -> Result<Answer, Error> {
        self.link.call_slave(self.slave, request).await
    }

    fn counters(&self) -> &Counters {
        &self.link.counters
    }
}
