//! Starting simulators on free ports and checking decoded readings against the house model.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use inverter_monitor::poller::{Poller, Snapshot};
use inverter_monitor::profile::{Profile, Profiles, Value};
use inverter_monitor::sim::{self, SimClock, SimConfig, Simulator};
use inverter_monitor::transport::{Link, LinkSettings, Target, Wire};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The logger serial every test simulator answers to.
pub const SERIAL: u32 = 2_712_345_678;

/// Logs to the test output when `TEST_LOG` is set.
pub fn init_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_test_writer().try_init();
    }
}

/// 12:00 local in the simulated house (UTC+2): the sun is up, so PV is not zero.
pub fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
}

/// The built-in SG01LP1 profile.
pub fn profile() -> Arc<Profile> {
    Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap()
}

/// A running simulator: its address, its model, and the token that stops it.
pub struct SimHandle {
    pub addr: std::net::SocketAddr,
    pub sim: Arc<Simulator>,
    pub stop: CancellationToken,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A simulator on a free loopback port, with a clock fixed at local noon unless set.
pub async fn spawn_sim(config: SimConfig, profile: Arc<Profile>) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_sim_on(listener, config, profile)
}

/// A simulator on `listener`.
pub fn spawn_sim_on(listener: TcpListener, mut config: SimConfig, profile: Arc<Profile>) -> SimHandle {
    init_log();
    if config.clock == SimClock::Real {
        config.clock = SimClock::Fixed(noon());
    }
    let addr = listener.local_addr().unwrap();
    let sim = Arc::new(Simulator::new(config, profile));
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve(listener, sim.clone(), stop.clone()));
    SimHandle { addr, sim, stop }
}

/// A stack of `slaves` behind one logger on a free port; each inverter has its own serial.
pub async fn spawn_stack(
    slaves: &[(u8, &str)],
    profile: &str,
) -> (std::net::SocketAddr, Vec<Arc<Simulator>>, CancellationToken) {
    init_log();
    let profile = Profiles::builtin().unwrap().get(profile).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let units: Vec<Arc<Simulator>> = slaves
        .iter()
        .map(|(slave, serial)| {
            let config = SimConfig {
                slave: *slave,
                inverter_serial: (*serial).into(),
                clock: SimClock::Fixed(noon()),
                ..SimConfig::new(SERIAL)
            };
            Arc::new(Simulator::new(config, profile.clone()))
        })
        .collect();
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve_stack(listener, units.clone(), stop.clone()));
    (addr, units, stop)
}

/// Polls `polls` times through a simulator of `config` (its wire, its faults) over a link of
/// `wire`; every poll must match the model. The link comes back for its counters.
pub async fn polls_survive_on(config: SimConfig, wire: Wire, polls: usize) -> Link {
    let profile = profile();
    let handle = spawn_sim(config, profile.clone()).await;
    let target = Target { host: "127.0.0.1".into(), port: handle.addr.port(), wire, slave: 1 };
    let mut link = Link::new(target, fast_settings());
    let mut poller = poller(profile);
    for _ in 0..polls {
        let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
        assert_matches_model(&snapshot, &handle.sim);
    }
    link
}

/// Fast link settings for tests: no pause, short timeouts.
pub fn fast_settings() -> LinkSettings {
    LinkSettings {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        pause: Duration::from_millis(1),
        retries: 2,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    }
}

/// A V5 link to `addr`.
pub fn link(addr: std::net::SocketAddr, settings: LinkSettings) -> Link {
    let target = Target {
        host: addr.ip().to_string(),
        port: addr.port(),
        wire: Wire::Solarman { serial: SERIAL },
        slave: 1,
    };
    Link::new(target, settings)
}

/// A poller for `profile` that polls every minute.
pub fn poller(profile: Arc<Profile>) -> Poller {
    Poller::new("test", profile, Duration::from_secs(60), 3)
}

/// One poll at the simulator's time.
pub async fn poll(poller: &mut Poller, link: &mut Link, sim: &Simulator) -> Snapshot {
    let now = sim.state().time;
    let local = now.with_timezone(&sim.config().house.utc_offset).naive_local();
    poller.poll_once(link, now, local).await.unwrap()
}

/// Asserts that every value the house model put in the registers decoded to itself, within the
/// resolution of its register, and that every reading of the profile was accepted.
pub fn assert_matches_model(snapshot: &Snapshot, sim: &Simulator) {
    assert!(snapshot.rejected.is_empty(), "rejected: {:?}", snapshot.rejected);
    assert_eq!(snapshot.readings.len(), snapshot.profile.readings.len(), "every reading decoded");
    let got = |key: &str| snapshot.get(key).map(|v| serde_json::to_value(v).unwrap());
    let checked = compare_with_model(&snapshot.profile, sim, got);
    assert!(checked >= 70, "only {checked} readings compared with the model");
}

/// Asserts that every value the house put in the registers of `profile` decoded, as `got` tells
/// it (JSON, as `read --json` and the snapshot both show values), to itself within the
/// resolution of its register; returns how many readings were compared.
pub fn compare_with_model(profile: &Profile, sim: &Simulator, got: impl Fn(&str) -> Option<Json>) -> usize {
    let id = profile.id();
    let mut compared = 0;
    for (key, want) in sim.expected() {
        let Some(index) = profile.index_of(key) else { continue };
        // A derived value carries its inputs' rounding; its inputs are compared, its arithmetic
        // is tested in src/profile/tests.
        if profile.readings[index].def.kind.is_derived() {
            continue;
        }
        let got = got(key).unwrap_or_else(|| panic!("{id} {key} missing"));
        match (got.as_f64(), &want) {
            (Some(got), Value::Number(want)) => {
                let scale = profile.readings[index].def.scale;
                assert!(
                    (got - want).abs() <= scale / 2.0 + 1e-6,
                    "{id} {key}: decoded {got}, the house says {want}"
                );
            }
            _ => assert_eq!(got, serde_json::to_value(&want).unwrap(), "{id} {key}"),
        }
        compared += 1;
    }
    compared
}

/// Waits until `done` (checked every 50 ms, for at most 30 s).
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Runs `promtool check metrics` on `text` and returns its report, failing on any finding but
/// one: the issue names energy in kilowatt-hours, as the inverter and Home Assistant do, and
/// promtool's lint prefers base units (joules, seconds) and says so for names with "hours".
/// Anything else (a parse error included) fails.
pub fn promtool(text: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed for this test: apt-get install prometheus");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let report =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let other: Vec<&str> =
        report.lines().filter(|l| !l.ends_with("use base unit \"seconds\" instead of \"hours\"")).collect();
    assert!(other.is_empty(), "promtool: {other:?}");
    report
}

/// Supervises a started service until its token is cancelled, and panics with the task's name
/// and reason when one ends before: a test's `JoinHandle` then finishes early, and
/// `is_finished` means something.
pub async fn supervised(running: inverter_monitor::service::Running) {
    if let Err(e) = running.wait().await {
        panic!("the service stopped on its own: {e}: {:?}", std::error::Error::source(&e));
    }
}

/// Runs the service of `config` (which must serve HTTP) until `/api/snapshot` shows `count`
/// inverters with a serial read, stops it, and returns those inverters' JSON, in the order
/// the snapshot lists them; fails after 10 s as `what`.
pub async fn service_until_polled(
    config: &inverter_monitor::config::Config,
    count: usize,
    what: &str,
) -> Vec<Json> {
    use inverter_monitor::service::{self, Console};
    let cancel = CancellationToken::new();
    let running = service::start(config.clone(), Console::Quiet, &cancel).unwrap();
    let url = format!("http://{}/api/snapshot", running.http.unwrap());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let polled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let json: Json = reqwest::get(&url).await.unwrap().json().await.unwrap();
            let polled: Vec<Json> = json["inverters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| reading(i, "inverter_serial").is_some())
                .cloned()
                .collect();
            if polled.len() == count {
                break polled;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect(what);
    cancel.cancel();
    running.wait().await.unwrap();
    polled
}

/// The value of reading `key` in one inverter of `/api/snapshot`.
pub fn reading<'a>(inverter: &'a Json, key: &str) -> Option<&'a Json> {
    inverter["readings"].as_array()?.iter().find(|r| r["key"] == key).map(|r| &r["value"])
}
