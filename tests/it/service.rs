//! The poll loop over real TCP: updates on the bus, availability when the logger goes away and
//! comes back, and a clean stop.

use std::time::Duration;

use inverter_monitor::config::{Config, HttpConfig, InverterConfig};
use inverter_monitor::poller::{self, Change, Poller, Update};
use inverter_monitor::service::{self, Console, ServiceError, TaskError};
use inverter_monitor::sim::SimConfig;
use inverter_monitor::sinks::influx::InfluxError;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// The next update, or a failure after a generous bound (never a sleep "to let it start").
async fn next(updates: &mut broadcast::Receiver<Update>) -> Update {
    tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.expect("an update in time").unwrap()
}

fn change(update: &Update) -> Option<Change> {
    match update {
        Update::Polled { change, .. } | Update::Failed { change, .. } => *change,
    }
}

/// A listener on `addr` that may be re-bound right after the previous one closed.
fn rebind(addr: std::net::SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(16).unwrap()
}

#[tokio::test]
async fn availability_follows_the_logger_away_and_back() {
    let addr = rebind("127.0.0.1:0".parse().unwrap()).local_addr().unwrap();
    let handle = spawn_sim_on(rebind(addr), SimConfig::new(SERIAL), profile());
    let (bus, mut updates) = broadcast::channel(16);
    let cancel = CancellationToken::new();
    let poller = Poller::new("house", profile(), Duration::from_millis(50), 3);
    let task = tokio::spawn(poller::run(
        poller,
        link(addr, fast_settings()),
        Duration::from_millis(50),
        bus,
        cancel.clone(),
    ));

    let first = next(&mut updates).await;
    assert!(matches!(first, Update::Polled { .. }), "{first:?}");
    assert_eq!(change(&first), Some(Change::Online));

    drop(handle);
    let mut failures = 0;
    loop {
        let update = next(&mut updates).await;
        if let Update::Failed { failure, change } = &update {
            failures += 1;
            assert_eq!(failure.consecutive_failures, failures);
            if failures < 3 {
                assert_eq!(*change, None, "not unavailable before the third failure");
            } else {
                assert_eq!(*change, Some(Change::Offline));
                break;
            }
        }
    }

    let _back = spawn_sim_on(rebind(addr), SimConfig::new(SERIAL), profile());
    loop {
        let update = next(&mut updates).await;
        if let Update::Polled { change, snapshot } = &update {
            assert_eq!(*change, Some(Change::Online));
            assert!(snapshot.link.get(inverter_monitor::transport::Event::ConnectFailure) >= 1);
            break;
        }
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the poller stops when asked").unwrap();
}

#[tokio::test]
async fn the_service_runs_until_cancelled() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter =
        inverter_monitor::config::InverterConfig::new("house", "127.0.0.1", handle.addr.port(), SERIAL);
    inverter.interval = Duration::from_millis(20);
    inverter.request_pause = Duration::from_millis(1);
    let config = inverter_monitor::config::Config::new(vec![inverter]);
    let cancel = CancellationToken::new();
    let service = tokio::spawn(inverter_monitor::service::run(
        config,
        inverter_monitor::service::Console::Quiet,
        cancel.clone(),
    ));
    // The simulator counts requests: three per poll. Wait for two polls, then stop.
    tokio::time::timeout(Duration::from_secs(10), async {
        while handle.sim.requests() < 6 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the service polls");
    cancel.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(6), service).await;
    stopped.expect("the service stops within its deadline").unwrap().unwrap();
}

/// The loaded profiles stay in memory only while a poller may still need them: once the
/// inverter's family is detected, the other families are freed (hundreds of KiB on a Pi).
#[tokio::test]
async fn families_not_in_use_are_freed_once_detection_is_done() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    // A config as loaded from a file: validated, its profiles kept for the service.
    let mut inverter = InverterConfig::new("house", "127.0.0.1", handle.addr.port(), SERIAL);
    inverter.interval = Duration::from_secs(1);
    assert_eq!(inverter.profile, "auto");
    let mut config = Config::new(vec![inverter]);
    config.validate("test.toml").unwrap();
    let loaded = config.profiles().unwrap();
    let weak: Vec<(String, std::sync::Weak<_>)> = loaded
        .ids()
        .map(|id| (id.to_string(), std::sync::Arc::downgrade(&loaded.get(id).unwrap())))
        .collect();
    drop(loaded);
    assert!(weak.len() > 1 && weak.iter().all(|(_, w)| w.strong_count() > 0), "the config holds them all");
    // `start`, not `run`: whoever starts the service, the config goes with the start.
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let alive =
        || weak.iter().filter(|(_, w)| w.strong_count() > 0).map(|(id, _)| id.clone()).collect::<Vec<_>>();
    until("only the detected family in memory", || alive() == ["deye_sg01lp1"]).await;
    cancel.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(6), running.wait()).await;
    stopped.expect("the service stops within its deadline").unwrap();
}

/// A service with an HTTP server, polling a simulator every 20 ms.
fn polling_service(sim: &SimHandle) -> (inverter_monitor::service::Running, CancellationToken) {
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.interval = Duration::from_millis(20);
    inverter.request_pause = Duration::from_millis(1);
    let mut config = Config::new(vec![inverter]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    let cancel = CancellationToken::new();
    (service::start(config, Console::Quiet, &cancel).unwrap(), cancel)
}

/// Waits until the simulator has answered `n` requests.
async fn requests(sim: &inverter_monitor::sim::Simulator, n: u64) {
    while sim.requests() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_task_that_panics_stops_the_whole_service_and_is_named() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (mut running, cancel) = polling_service(&sim);
    let http = running.http.unwrap();
    let probe_sim = sim.sim.clone();
    running.supervise("probe", async move {
        // Two polls in, as a sink would on a reading it cannot handle.
        requests(&probe_sim, 6).await;
        panic!("cannot handle this reading");
    });
    let ended = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    let error = ended.expect("a dead task ends wait").unwrap_err();
    assert!(
        matches!(&error, TaskError::Panicked { task, message } if task == "probe" && message == "cannot handle this reading"),
        "{error}"
    );
    assert!(cancel.is_cancelled(), "the other tasks were told to stop");
    assert!(tokio::net::TcpStream::connect(http).await.is_err(), "and the HTTP server has stopped");
    let after = sim.sim.requests();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.sim.requests(), after, "and so have the pollers");
}

#[tokio::test]
async fn a_task_that_returns_early_fails_run_with_its_name() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (mut running, _) = polling_service(&sim);
    let probe_sim = sim.sim.clone();
    // A task that does its work once and returns, as a sink whose input closed would.
    running.supervise("probe", async move { requests(&probe_sim, 3).await });
    let error = tokio::time::timeout(Duration::from_secs(10), running.wait()).await.unwrap().unwrap_err();
    assert_eq!(error.task(), "probe");
    let reported = ServiceError::from(error);
    assert_eq!(reported.to_string(), "task `probe` ended on its own before shutdown");
}

#[tokio::test]
async fn start_errors_keep_their_causes() {
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    config.mqtt = Some(inverter_monitor::config::MqttConfig {
        username: Some("ha".into()),
        password_file: Some("/nonexistent/mqtt-password".into()),
        ..Default::default()
    });
    let error = service::start(config.clone(), Console::Quiet, &CancellationToken::new()).unwrap_err();
    let ServiceError::Mqtt(cause) = &error else { panic!("{error:?}") };
    assert_eq!(cause.kind(), std::io::ErrorKind::NotFound, "the io::Error itself, not its text");

    config.mqtt = None;
    config.influxdb = Some(toml::from_str("url = \"not a url\"\ndatabase = \"db\"").unwrap());
    let error = service::start(config, Console::Quiet, &CancellationToken::new()).unwrap_err();
    assert!(matches!(&error, ServiceError::Influx(InfluxError::Endpoint(_))), "{error:?}");
    let chain = anyhow::Error::from(error);
    assert!(format!("{chain:#}").starts_with("InfluxDB: url `not a url`"), "{chain:#}");
}
