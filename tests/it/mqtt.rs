//! Home Assistant over a real MQTT broker: discovery, state, availability, last will, republish
//! after Home Assistant's birth and after the connection dies, and switch commands.

use std::path::Path;
use std::time::Duration;

use inverter_monitor::config::{
    Config, ConsumerConfig, DiscoveryMode, InverterConfig, MqttConfig, PayloadShape, SwitchConfig,
    WeatherConfig,
};
use inverter_monitor::mqtt::MqttHandle;
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::{SimClock, SimConfig};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::*;
use crate::helpers::*;

mod control;
mod pace;
mod weather;

const DEVICE: &str = "inverter_monitor_2306178901";

struct App {
    sim: SimHandle,
    cancel: CancellationToken,
    switches: Option<MqttHandle>,
    prefix: String,
    base: String,
    task: JoinHandle<()>,
}

impl App {
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(8), self.task).await.expect("the service stops").unwrap();
    }

    fn device_topic(&self) -> String {
        format!("{}/device/{DEVICE}/config", self.prefix)
    }
}

struct Setup {
    broker: std::net::SocketAddr,
    tls: Option<[std::path::PathBuf; 3]>,
    mode: DiscoveryMode,
    switches: Vec<SwitchConfig>,
    consumers: Vec<ConsumerConfig>,
    weather: Option<WeatherConfig>,
    clock: SimClock,
    prefix: String,
    base: String,
}

impl Setup {
    fn new(broker: std::net::SocketAddr) -> Self {
        Self {
            broker,
            tls: None,
            mode: DiscoveryMode::Device,
            switches: Vec::new(),
            consumers: Vec::new(),
            weather: None,
            clock: SimClock::Real,
            prefix: unique("ha"),
            base: unique("im"),
        }
    }

    async fn start(&self, data_dir: &Path, profiles_dir: Option<&Path>, name: &str) -> App {
        let sim = spawn_sim(SimConfig { clock: self.clock, ..SimConfig::new(SERIAL) }, profile()).await;
        let mut inverter = InverterConfig::new(name, "127.0.0.1", sim.addr.port(), SERIAL);
        inverter.interval = Duration::from_millis(100);
        inverter.request_pause = Duration::from_millis(1);
        let mqtt = MqttConfig {
            host: self.broker.ip().to_string(),
            port: self.broker.port(),
            discovery_prefix: self.prefix.clone(),
            base_topic: self.base.clone(),
            discovery: self.mode,
            client_id: Some(unique("service")),
            tls: self.tls.is_some(),
            ca_file: self.tls.as_ref().map(|[ca, _, _]| ca.clone()),
            client_cert: self.tls.as_ref().map(|[_, cert, _]| cert.clone()),
            client_key: self.tls.as_ref().map(|[_, _, key]| key.clone()),
            ..MqttConfig::default()
        };
        let mut config = Config::new(vec![inverter]);
        config.mqtt = Some(mqtt);
        config.switches = self.switches.clone();
        config.consumers = self.consumers.clone();
        config.weather = self.weather.clone();
        config.data_dir = data_dir.to_path_buf();
        config.profiles_dir = profiles_dir.map(Path::to_path_buf);
        let cancel = CancellationToken::new();
        let running = service::start(config, Console::Quiet, &cancel).unwrap();
        let switches = running.mqtt.clone();
        let task = tokio::spawn(supervised(running));
        App { sim, cancel, switches, prefix: self.prefix.clone(), base: self.base.clone(), task }
    }
}

#[tokio::test]
async fn discovery_state_and_availability_are_retained_for_a_late_home_assistant() {
    let setup = Setup::new(broker());
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;
    // Wait until the service has published a state, then arrive as Home Assistant would.
    // Diagnostics are the last message of a poll: once one is out, all the others are retained.
    let mut early = Observer::new(&[format!("{}/house/diagnostics", app.base)]).await;
    early.wait_for("a poll's last message", |_| true).await;
    let mut ha = Observer::new(&[format!("{}/device/+/config", app.prefix), format!("{}/#", app.base)]).await;

    let [device, state, availability, status, diagnostics] = [
        app.device_topic(),
        format!("{}/house/state", app.base),
        format!("{}/house/availability", app.base),
        format!("{}/status", app.base),
        format!("{}/house/diagnostics", app.base),
    ];
    let seen = ha
        .collect(&[device.clone(), state.clone(), availability.clone(), status.clone(), diagnostics.clone()])
        .await;
    assert!(seen.values().all(|m| m.retain), "everything a late Home Assistant needs is retained");

    let config = seen[&device].json();
    let cmps = config["cmps"].as_object().unwrap();
    for spec in &profile().readings {
        assert!(cmps.contains_key(&spec.def.key), "{} missing from discovery", spec.def.key);
    }
    assert_eq!(config["dev"]["name"], json!("house"));
    assert_eq!(config["cmps"]["battery_soc"]["unique_id"], json!("2306178901_battery_soc"));
    assert_eq!(config["o"]["name"], json!("inverter-monitor"));

    let state = seen[&state].json();
    let expected = app.sim.sim.expected();
    let soc = expected.iter().find(|(k, _)| *k == "battery_soc").unwrap().1.as_f64().unwrap();
    assert_eq!(state["battery_soc"], json!(soc as i64));
    assert_eq!(state["running_state"], json!("Normal"));
    assert_eq!(state["grid_connected"], json!(true));
    assert_eq!(&seen[&availability].payload[..], b"online");
    assert_eq!(&seen[&status].payload[..], b"online");
    let diagnostics = seen[&diagnostics].json();
    assert_eq!(diagnostics["consecutive_failures"], json!(0));
    assert!(diagnostics["link"]["connect"].as_u64().unwrap() >= 1);
    app.stop().await;
}

#[tokio::test]
async fn per_entity_discovery_for_older_home_assistant() {
    let mut setup = Setup::new(broker());
    setup.mode = DiscoveryMode::Entity;
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::new(&[format!("{}/+/{DEVICE}/+/config", setup.prefix)]).await;
    let app = setup.start(data.path(), None, "house").await;
    let mut topics = std::collections::BTreeSet::new();
    while topics.len() < profile().readings.len() {
        let m = ha.wait_for("entity discovery", |_| true).await;
        let config = m.json();
        assert_eq!(config["device"]["identifiers"], json!([DEVICE]));
        assert!(config["unique_id"].as_str().unwrap().starts_with("2306178901_"));
        topics.insert(m.topic);
    }
    assert!(topics.contains(&format!("{}/sensor/{DEVICE}/battery_soc/config", app.prefix)));
    assert!(topics.contains(&format!("{}/binary_sensor/{DEVICE}/grid_connected/config", app.prefix)));
    app.stop().await;
}

#[tokio::test]
async fn home_assistant_birth_triggers_a_republish() {
    let setup = Setup::new(broker());
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::new(&[format!("{}/device/+/config", setup.prefix)]).await;
    let app = setup.start(data.path(), None, "house").await;
    ha.wait_for("first discovery", |m| m.topic == app.device_topic()).await;
    ha.publish(&format!("{}/status", app.prefix), b"online", false).await;
    let again = ha.wait_for("rediscovery", |m| m.topic == app.device_topic()).await;
    assert!(again.json()["cmps"]["battery_soc"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn a_dead_connection_fires_the_last_will_and_the_reconnect_republishes_everything() {
    let proxy = Proxy::start(true).await;
    let setup = Setup::new(proxy.addr);
    let data = tempfile::tempdir().unwrap();
    let mut ha =
        Observer::new(&[format!("{}/device/+/config", setup.prefix), format!("{}/#", setup.base)]).await;
    let app = setup.start(data.path(), None, "house").await;
    let status = format!("{}/status", app.base);
    ha.wait_for("online", |m| m.topic == status && &m.payload[..] == b"online").await;
    ha.wait_for("discovery", |m| m.topic == app.device_topic()).await;

    proxy.cut();
    ha.wait_for("the last will", |m| m.topic == status && &m.payload[..] == b"offline").await;
    // The service reconnects by itself (as after a broker restart) and republishes it all,
    // live (not retained deliveries: this observer was subscribed all along).
    let wanted = [
        status.clone(),
        app.device_topic(),
        format!("{}/house/availability", app.base),
        format!("{}/house/state", app.base),
    ];
    let again = ha.collect(&wanted).await;
    assert_eq!(&again[&status].payload[..], b"online");
    assert!(again[&app.device_topic()].json()["cmps"]["battery_soc"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn polling_goes_on_without_a_broker_and_the_latest_state_follows_when_it_appears() {
    let proxy = Proxy::start(false).await;
    let setup = Setup::new(proxy.addr);
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while app.sim.sim.requests() < 9 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("polls go on while the broker is away");
    let mut ha =
        Observer::new(&[format!("{}/device/+/config", app.prefix), format!("{}/house/state", app.base)])
            .await;
    proxy.set_open(true);
    ha.wait_for("discovery once the broker is there", |m| m.topic == app.device_topic()).await;
    let state = ha.wait_for("state", |m| m.topic.ends_with("/house/state")).await.json();
    assert!(state["battery_soc"].is_number());
    app.stop().await;
}

#[tokio::test]
async fn a_clean_stop_says_offline() {
    let setup = Setup::new(broker());
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::new(&[format!("{}/status", setup.base)]).await;
    let app = setup.start(data.path(), None, "house").await;
    ha.wait_for("online", |m| &m.payload[..] == b"online").await;
    app.stop().await;
    ha.wait_for("offline on stop", |m| &m.payload[..] == b"offline").await;
}

#[tokio::test]
async fn removed_readings_and_inverters_leave_home_assistant() {
    let setup = Setup::new(broker());
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::new(&[format!("{}/device/+/config", setup.prefix)]).await;
    let profiles = tempfile::tempdir().unwrap();
    let full =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles/deye_sg01lp1.toml"))
            .unwrap();

    let first = setup.start(data.path(), None, "house").await;
    ha.wait_for("discovery", |m| m.topic == first.device_topic() && !m.payload.is_empty()).await;
    first.stop().await;

    // A release drops a reading: the next discovery asks Home Assistant to remove it. (Not one
    // a derived reading names: pv_power sums the pvN_power readings.)
    let cut = full.replacen("key = \"pv4_voltage\"", "key = \"pv4_voltage_gone\"", 1);
    std::fs::write(profiles.path().join("deye_sg01lp1.toml"), cut).unwrap();
    let second = setup.start(data.path(), Some(profiles.path()), "house").await;
    let update = ha.wait_for("discovery without pv4_voltage", |m| {
        m.topic == second.device_topic() && m.json()["cmps"]["pv4_voltage"] == json!({"p": "sensor"})
    });
    update.await;
    second.stop().await;

    // The inverter is renamed (removed from the config): its old device is cleared.
    let third = setup.start(data.path(), None, "garage").await;
    ha.wait_for("the old device removed", |m| m.topic == third.device_topic() && m.payload.is_empty()).await;
    third.stop().await;
}

#[tokio::test]
async fn switch_states_are_followed_commands_sent_and_garbage_ignored() {
    let mut setup = Setup::new(broker());
    let topic = |s: &str| format!("{}/{s}", setup.base);
    setup.switches = vec![
        SwitchConfig {
            payload: PayloadShape::Plain,
            index: None,
            ..SwitchConfig::plain("geyser", &topic("geyser/state"), &topic("geyser/set"))
        },
        SwitchConfig {
            payload: PayloadShape::Json,
            index: None,
            ..SwitchConfig::plain("pump", &topic("pump/state"), &topic("pump/set"))
        },
        SwitchConfig {
            payload: PayloadShape::Bank,
            index: Some(2),
            ..SwitchConfig::plain("bank2", &topic("state/bank"), &topic("control/bank"))
        },
    ];
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::new(&[
        format!("{}/+/set", setup.base),
        format!("{}/control/bank", setup.base),
        format!("{}/status", setup.base),
    ])
    .await;
    let app = setup.start(data.path(), None, "house").await;
    ha.wait_for("online", |m| &m.payload[..] == b"online").await;
    let switches = app.switches.clone().unwrap();
    let mut states = switches.states();

    for garbage in [&b"maybe"[..], b"\xff\xfe", b""] {
        ha.publish(&topic("geyser/state"), garbage, false).await;
    }
    ha.publish(&topic("pump/state"), b"{\"state\":", false).await;
    ha.publish(&topic("state/bank"), br#"{"switches":"no"}"#, false).await;
    ha.publish(&topic("geyser/state"), b"ON", false).await;
    ha.publish(&topic("pump/state"), br#"{"state":"OFF","linkquality":80}"#, false).await;
    ha.publish(&topic("state/bank"), br#"{"switches":[1,1,0,1]}"#, false).await;
    tokio::time::timeout(Duration::from_secs(10), states.wait_for(|s| s.len() == 3)).await.unwrap().unwrap();
    assert_eq!(
        (switches.state("geyser"), switches.state("pump"), switches.state("bank2")),
        (Some(true), Some(false), Some(false))
    );

    switches.command("geyser", false).await.unwrap();
    assert_eq!(&ha.wait_for("geyser command", |m| m.topic.ends_with("geyser/set")).await.payload[..], b"OFF");
    switches.command("pump", true).await.unwrap();
    assert_eq!(
        ha.wait_for("pump command", |m| m.topic.ends_with("pump/set")).await.json(),
        json!({"state": "ON"})
    );
    switches.command("bank2", true).await.unwrap();
    let bank = ha.wait_for("bank command", |m| m.topic.ends_with("control/bank")).await;
    assert_eq!(bank.json(), json!({"state": [1, 1, 1, 1]}));
    assert!(!app.task.is_finished(), "garbage did not stop the service");
    app.stop().await;
}

/// Runs `openssl` with `args` in `dir`; the test needs the openssl command (Debian: openssl).
fn openssl(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        status.expect("the openssl command is needed: apt-get install openssl").success(),
        "openssl {args:?}"
    );
}

/// A test CA, a broker certificate for 127.0.0.1 and a client certificate, all signed by it.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca"];
    openssl(dir, &[&["req", "-x509"][..], &ec, &ca].concat());
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        let (key, csr, pem, subject) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("/CN={name}"));
        openssl(dir, &[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &subject]].concat());
        let sign = [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
        ];
        openssl(dir, &[&sign[..], &["-days", "2", "-extfile", ext]].concat());
    }
}

/// A Mosquitto with a plain listener (for the observer) and a TLS one that requires a client
/// certificate (for the service); killed on drop. `user root` keeps it from dropping to a user
/// that cannot read the private temp dir when the tests run as root (as CI does).
struct TlsBroker {
    child: std::process::Child,
    plain: std::net::SocketAddr,
    tls: std::net::SocketAddr,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_broker(dir: &Path) -> TlsBroker {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (plain, tls) = (port(), port());
    let d = dir.display();
    let conf = format!(
        "user root\nper_listener_settings false\nallow_anonymous true\nlistener {} 127.0.0.1\nlistener {} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n",
        plain.port(),
        tls.port()
    );
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| Path::new(p).exists());
    let binary = binary.expect("mosquitto is needed for the TLS test: apt-get install mosquitto");
    let child = std::process::Command::new(binary)
        .args(["-c", dir.join("mosquitto.conf").to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(tls).is_err() || std::net::TcpStream::connect(plain).is_err() {
        assert!(std::time::Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsBroker { child, plain, tls }
}

#[tokio::test]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let broker = tls_broker(certs.path());
    let mut setup = Setup::new(broker.tls);
    setup.tls = Some(["ca.pem", "client.pem", "client.key"].map(|f| certs.path().join(f)));
    let data = tempfile::tempdir().unwrap();
    let mut ha = Observer::at(broker.plain, &[format!("{}/device/+/config", setup.prefix)]).await;
    let app = setup.start(data.path(), None, "house").await;
    let discovery = ha.wait_for("discovery over TLS", |m| m.topic == app.device_topic()).await;
    assert!(discovery.json()["cmps"]["battery_soc"].is_object());
    app.stop().await;
}
