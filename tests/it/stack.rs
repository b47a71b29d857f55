//! Parallel stacks over real TCP: several inverters behind one simulated logger, told apart by
//! slave id, polled in turn over one connection; and the service wiring them from a config.

use std::time::Duration;

use inverter_monitor::config::{Config, HttpConfig, InverterConfig};
use inverter_monitor::poller::{self, Member, Poller, Update};
use inverter_monitor::profile::Profiles;
use inverter_monitor::transport::Event;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

fn member(name: &str, addr: std::net::SocketAddr, slave: u8) -> Member {
    let mut config = InverterConfig::new(name, "127.0.0.1", addr.port(), SERIAL);
    config.slave_id = slave;
    config.interval = Duration::from_millis(30);
    Member { poller: Poller::for_inverter(&config, &Profiles::builtin().unwrap()).unwrap(), slave }
}

/// Updates until each of `names` has been polled `polls` times, by name.
async fn collect(updates: &mut broadcast::Receiver<Update>, names: &[&str], polls: usize) -> Vec<Update> {
    let mut seen = Vec::new();
    let enough = |seen: &Vec<Update>| {
        names.iter().all(|n| seen.iter().filter(|u: &&Update| u.inverter() == *n).count() >= polls)
    };
    while !enough(&seen) {
        let update =
            tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.expect("an update in time");
        seen.push(update.unwrap());
    }
    seen
}

#[tokio::test]
async fn a_stack_shares_one_connection_and_each_inverter_is_itself() {
    let (addr, units, stop) = spawn_stack(&[(1, "2306178901"), (2, "2306178902")], "deye_sg04lp3").await;
    let (bus, mut updates) = broadcast::channel(64);
    let cancel = CancellationToken::new();
    let members = vec![member("master", addr, 1), member("second", addr, 2)];
    let task = tokio::spawn(poller::run_stack(members, link(addr, fast_settings()), bus, cancel.clone()));

    let seen = collect(&mut updates, &["master", "second"], 3).await;
    cancel.cancel();
    task.await.unwrap();
    stop.cancel();
    for update in &seen {
        let Update::Polled { snapshot, .. } = update else { panic!("every poll succeeds: {update:?}") };
        let (want_serial, unit) = if &*snapshot.inverter == "master" {
            ("2306178901", &units[0])
        } else {
            ("2306178902", &units[1])
        };
        assert_eq!(snapshot.get("inverter_serial").unwrap().to_string(), want_serial);
        assert_eq!(&*snapshot.identity, want_serial, "each is its own Home Assistant device");
        assert_eq!(snapshot.choice.profile, "deye_sg04lp3", "each detected its family itself");
        assert!(
            compare_with_model(&snapshot.profile, unit, |k| snapshot
                .get(k)
                .map(|v| serde_json::to_value(v).unwrap()))
                > 50
        );
        assert_eq!(snapshot.link.get(Event::Connect), 1, "one connection for the whole stack");
    }
}

#[tokio::test]
async fn a_member_nobody_answers_fails_alone() {
    let (addr, _units, stop) = spawn_stack(&[(1, "2306178901")], "deye_sg04lp3").await;
    let (bus, mut updates) = broadcast::channel(64);
    let cancel = CancellationToken::new();
    let members = vec![member("master", addr, 1), member("ghost", addr, 3)];
    let task = tokio::spawn(poller::run_stack(members, link(addr, fast_settings()), bus, cancel.clone()));

    let seen = collect(&mut updates, &["master", "ghost"], 2).await;
    cancel.cancel();
    task.await.unwrap();
    stop.cancel();
    for update in seen {
        match (update.inverter(), &update) {
            ("master", Update::Polled { .. }) => {}
            ("ghost", Update::Failed { failure, .. }) => {
                assert!(
                    failure.error.contains("the inverter did not answer the logger (05 00"),
                    "the logger's own words: {}",
                    failure.error
                );
            }
            _ => panic!("unexpected {update:?}"),
        }
    }
}

#[tokio::test]
async fn the_service_runs_a_configured_stack() {
    let (addr, _units, stop) = spawn_stack(&[(1, "2306178901"), (2, "2306178902")], "deye_sg04lp3").await;
    let inverter = |name: &str, slave: u8| {
        let mut config = InverterConfig::new(name, "127.0.0.1", addr.port(), SERIAL);
        (config.slave_id, config.interval, config.request_pause) =
            (slave, Duration::from_millis(30), Duration::from_millis(1));
        config
    };
    let mut config = Config::new(vec![inverter("master", 1), inverter("second", 2)]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    assert_eq!(config.stacks(), [vec![0, 1]]);
    let polled = service_until_polled(&config, 2, "both inverters of the stack polled").await;
    let serials: Vec<(String, bool)> = polled
        .iter()
        .map(|i| {
            let serial = reading(i, "inverter_serial").and_then(|v| v.as_str()).unwrap_or_default();
            (serial.to_string(), reading(i, "battery_max_charge_current").is_some())
        })
        .collect();
    let want = [("2306178901".to_string(), true), ("2306178902".to_string(), false)];
    assert_eq!(serials, want, "each its own serial; the settings on the master only");
    stop.cancel();
}
