//! A real MQTT broker for the tests: an embedded rumqttd, or the broker named by
//! `MQTT_TEST_BROKER=host:port` (CI points it at Mosquitto). Plus an observer client and a TCP
//! proxy that can cut the service's connection, as a network or broker restart would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The broker's address: started once per test binary.
pub fn broker() -> SocketAddr {
    static BROKER: OnceLock<SocketAddr> = OnceLock::new();
    *BROKER.get_or_init(|| match std::env::var("MQTT_TEST_BROKER") {
        Ok(addr) => addr.parse().expect("MQTT_TEST_BROKER is host:port"),
        Err(_) => embedded(),
    })
}

fn embedded() -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 5000,
        max_payload_size: 2 * 1024 * 1024,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let router = rumqttd::RouterConfig {
        max_connections: 1000,
        max_outgoing_packet_count: 1000,
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        ..Default::default()
    };
    let config =
        rumqttd::Config { router, v4: Some([("1".to_string(), server)].into()), ..Default::default() };
    std::thread::spawn(move || {
        if let Err(e) = rumqttd::Broker::new(config).start() {
            panic!("embedded broker: {e}");
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "the embedded broker never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
    addr
}

/// A unique topic prefix per test, so tests share one broker without seeing each other.
pub fn unique(name: &str) -> String {
    format!("{name}{}", rand::random::<u32>())
}

/// The service's MQTT settings for the test broker: discovery under `prefix`, its own topics
/// under `base`, and a client id of its own starting with `client`.
pub fn mqtt_config(prefix: &str, base: &str, client: &str) -> inverter_monitor::config::MqttConfig {
    inverter_monitor::config::MqttConfig {
        host: broker().ip().to_string(),
        port: broker().port(),
        discovery_prefix: prefix.to_string(),
        base_topic: base.to_string(),
        client_id: Some(unique(client)),
        ..Default::default()
    }
}

/// A message seen by the observer.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| panic!("{}: not JSON ({e})", self.topic))
    }
}

/// A plain MQTT client that records what it sees and can publish.
pub struct Observer {
    pub client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Observer {
    /// Connects and subscribes to `filters`, returning once the broker acknowledged them.
    pub async fn new(filters: &[String]) -> Self {
        Self::at(broker(), filters).await
    }

    /// Like [`Observer::new`], on the broker at `addr`.
    pub async fn at(addr: SocketAddr, filters: &[String]) -> Self {
        let mut options = MqttOptions::new(unique("observer"), addr.ip().to_string(), addr.port());
        options.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, seen) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        for filter in filters {
            client.subscribe(filter.clone(), QoS::AtLeastOnce).await.unwrap();
        }
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Seen { topic: p.topic, payload: p.payload, retain: p.retain });
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for _ in filters {
            tokio::time::timeout(Duration::from_secs(10), subscribed.recv()).await.expect("SUBACK").unwrap();
        }
        Self { client, seen }
    }

    /// The next message matching `want`, within 15 s.
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&Seen) -> bool) -> Seen {
        let mut skipped = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let seen = self.seen.recv().await.expect("observer alive");
                if want(&seen) {
                    return seen;
                }
                let payload =
                    String::from_utf8_lossy(&seen.payload[..seen.payload.len().min(40)]).to_string();
                skipped.push(format!("{} {payload:?} retain={}", seen.topic, seen.retain));
            }
        });
        match found.await {
            Ok(seen) => seen,
            Err(_) => panic!("never saw {what}; skipped meanwhile:\n{}", skipped.join("\n")),
        }
    }

    /// The first message on each of `topics` (for a new subscriber: the retained one), waiting
    /// until every one has been seen; retained messages arrive in no particular order.
    pub async fn collect(&mut self, topics: &[String]) -> std::collections::HashMap<String, Seen> {
        let mut found = std::collections::HashMap::new();
        while topics.iter().any(|t| !found.contains_key(t)) {
            let missing: Vec<&String> = topics.iter().filter(|t| !found.contains_key(*t)).collect();
            let seen = self.wait_for(&format!("{missing:?}"), |m| topics.contains(&m.topic)).await;
            found.entry(seen.topic.clone()).or_insert(seen);
        }
        found
    }

    /// Publishes `payload` on `topic`.
    pub async fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client.publish(topic, QoS::AtLeastOnce, retain, payload.to_vec()).await.unwrap();
    }
}

/// A TCP proxy in front of the broker that can refuse or cut connections.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    current: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    /// A proxy to the broker; `open` says whether it lets connections through yet.
    pub async fn start(open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(open));
        let current = Arc::new(Mutex::new(CancellationToken::new()));
        let (gate, cut) = (open.clone(), current.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    continue; // dropped at once: like a broker that is not there
                }
                let token = cut.lock().unwrap().clone();
                tokio::spawn(pipe(client, token));
            }
        });
        Self { addr, open, current }
    }

    /// Lets connections through (or not).
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }

    /// Cuts every open connection, as a network failure or a broker restart does.
    pub fn cut(&self) {
        let mut current = self.current.lock().unwrap();
        current.cancel();
        *current = CancellationToken::new();
    }
}

async fn pipe(mut client: TcpStream, cut: CancellationToken) {
    let Ok(mut upstream) = TcpStream::connect(broker()).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        () = cut.cancelled() => {}
    }
}
