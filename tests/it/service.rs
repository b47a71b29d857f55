//! The poll loop over real TCP: updates on the bus, availability when the logger goes away and
//! comes back, and a clean stop.

use std::time::Duration;

use inverter_monitor::poller::{self, Change, Poller, Update};
use inverter_monitor::sim::SimConfig;
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
