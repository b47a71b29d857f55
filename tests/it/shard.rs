//! Sharding over real TCP and a real broker: two instances of one config, each polling its
//! half of a fleet of simulated loggers and publishing to one broker, side by side.

use std::collections::BTreeSet;
use std::time::Duration;

use inverter_monitor::config::{Config, HttpConfig, InverterConfig, Shard};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use tokio_util::sync::CancellationToken;

use crate::broker::{Observer, mqtt_config, unique};
use crate::helpers::*;
use crate::process::{output, output_env};

/// Lone inverters by name and inverter serial. Of two shards, FNV-1a puts house and shed on
/// shard 1, garage and barn on shard 0 (pinned in the unit tests).
const LONE: [(&str, &str); 4] =
    [("house", "2306170001"), ("garage", "2306170002"), ("shed", "2306170003"), ("barn", "2306170004")];

/// A stack on one logger: master north (shard 0) and roof, which alone would be shard 1's.
const STACK: [(&str, &str); 2] = [("north", "2306170011"), ("roof", "2306170012")];

fn fast(mut inverter: InverterConfig) -> InverterConfig {
    inverter.interval = Duration::from_millis(200);
    inverter.request_pause = Duration::from_millis(1);
    inverter
}

/// GET `path` of a shard's HTTP server, as text.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    reqwest::get(format!("http://{addr}{path}")).await.unwrap().text().await.unwrap()
}

/// The inverters a shard's /api/snapshot shows with readings.
async fn polled(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(&get(addr, "/api/snapshot").await).unwrap();
    let inverters = json["inverters"].as_array().unwrap();
    let with_readings = inverters.iter().filter(|i| i["readings"].as_array().is_some_and(|r| !r.is_empty()));
    with_readings.map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn two_shards_of_one_config_partition_the_fleet_on_one_broker() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut sims = Vec::new();
    let mut inverters = Vec::new();
    for (name, serial) in LONE {
        let sim =
            spawn_sim(SimConfig { inverter_serial: serial.into(), ..SimConfig::new(SERIAL) }, profile())
                .await;
        inverters.push(fast(InverterConfig::new(name, "127.0.0.1", sim.addr.port(), SERIAL)));
        sims.push(sim);
    }
    let (stack_addr, units, stop_stack) =
        spawn_stack(&[(1, STACK[0].1), (2, STACK[1].1)], "deye_sg01lp1").await;
    for (slave, (name, _)) in (1..).zip(STACK) {
        let mut inverter = InverterConfig::new(name, "127.0.0.1", stack_addr.port(), SERIAL);
        inverter.slave_id = slave;
        inverters.push(fast(inverter));
    }
    let (prefix, base) = (unique("ha"), unique("im"));
    let mut config = Config::new(inverters);
    // One file for every shard, client id included: each shard must still be its own client.
    config.mqtt = Some(mqtt_config(&prefix, &base, "fleet"));
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));

    let mut watch = Observer::new(&[format!("{base}/+/state"), format!("{base}/status/#")]).await;
    let cancel = CancellationToken::new();
    let mut shards = Vec::new();
    for index in 0..2 {
        let mut mine = config.clone();
        mine.keep_shard(Shard::parse(&format!("{index}/2")).unwrap());
        let running = service::start(mine.clone(), Console::Quiet, &cancel).unwrap();
        let http = running.http.unwrap();
        shards.push((mine, http, tokio::spawn(supervised(running))));
    }

    // Every inverter reaches the broker, and each shard's status is its own and online.
    let mut topics: Vec<String> =
        LONE.iter().chain(&STACK).map(|(name, _)| format!("{base}/{name}/state")).collect();
    topics.extend((0..2).map(|i| format!("{base}/status/shard-{i}")));
    let seen = watch.collect(&topics).await;
    for i in 0..2 {
        assert_eq!(&seen[&format!("{base}/status/shard-{i}")].payload[..], b"online");
    }

    let want = [BTreeSet::from(["garage", "barn", "north", "roof"]), BTreeSet::from(["house", "shed"])]
        .map(|set| set.into_iter().map(String::from).collect::<BTreeSet<String>>());
    for ((mine, _, _), want) in shards.iter().zip(&want) {
        let configured: BTreeSet<String> = mine.inverters.iter().map(|i| i.name.clone()).collect();
        assert_eq!(&configured, want, "the stack goes whole with its master");
    }
    for ((mine, http, task), want) in shards.iter().zip(&want) {
        let shard = mine.sharding.as_ref().unwrap().shard;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while &polled(*http).await != want {
            assert!(tokio::time::Instant::now() < deadline, "shard {shard} never polled {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let metrics = get(*http, "/metrics").await;
        assert!(metrics.contains(&format!("inverter_monitor_shard_index {}", shard.index())), "{metrics}");
        assert!(metrics.contains("inverter_monitor_shards 2"));
        promtool(&metrics);
        assert!(metrics.contains("inverter_monitor_mqtt_connected 1"), "both shards stay connected");
        // None twice: a shard counts polls of its own inverters only.
        let counted: BTreeSet<String> = ["house", "garage", "shed", "barn", "north", "roof"]
            .into_iter()
            .filter(|name| metrics.contains(&format!("inverter_monitor_polls_total{{inverter=\"{name}\"")))
            .map(String::from)
            .collect();
        assert_eq!(&counted, want, "shard {shard} polled only its own");
        let page = get(*http, "/").await;
        assert!(
            page.contains(&format!(
                "Shard <b>{shard}</b>: this instance polls {} of the fleet's 6",
                want.len()
            ))
        );
        assert!(!task.is_finished(), "shard {shard} still runs");
    }
    assert_ne!(shards[0].0.data_dir, shards[1].0.data_dir, "each shard keeps its state apart");
    // Every logger was asked (a stack's logger counts its requests on its first unit).
    assert!(sims.iter().all(|s| s.sim.requests() > 0) && units[0].requests() > 0);
    cancel.cancel();
    for (_, _, task) in shards {
        task.await.unwrap();
    }
    stop_stack.cancel();
}

#[tokio::test]
async fn check_config_lists_what_a_shard_polls_and_a_bad_shard_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.toml");
    let fleet: String = LONE
        .iter()
        .map(|(name, _)| format!("[[inverter]]\nname = \"{name}\"\nhost = \"{name}.lan\"\nserial = 1\n"))
        .collect();
    std::fs::write(&file, fleet).unwrap();
    let file = file.to_str().unwrap();

    let (ok, stdout, stderr) = output(&["check-config", file, "--shard", "0/2"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ok (4 inverter(s): house, garage, shed, barn)"), "{stdout}");
    assert!(stdout.contains("shard 0/2: polls 2 of 4 inverter(s): garage, barn"), "{stdout}");
    assert!(stdout.contains("weather, load control and switches run on another shard"), "{stdout}");
    // The environment variable Kubernetes sets says the same as the flag.
    let (ok, stdout, _) = output_env(&["check-config", file], &[("INVERTER_MONITOR_SHARD", "1/2")]).await;
    assert!(ok && stdout.contains("shard 1/2: polls 2 of 4 inverter(s): house, shed"), "{stdout}");
    assert!(stdout.contains("weather, load control and switches run here"), "{stdout}");

    for command in
        [vec!["check-config", file, "--shard", "3/2"], vec!["run", "--config", file, "--shard", "3/2"]]
    {
        let (ok, _, stderr) = output(&command).await;
        assert!(!ok, "{command:?} accepted 3/2");
        assert!(stderr.contains("--shard 3/2: the index must be below the count"), "{command:?}: {stderr}");
    }
}

/// More shards than inverters: the shard with none stays up, healthy, says what it is, and
/// stops cleanly when asked.
#[tokio::test]
async fn a_shard_with_nothing_to_poll_stays_up_and_healthy() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    config.keep_shard(Shard::parse("0/2").unwrap());
    assert!(config.inverters.is_empty(), "house is shard 1's");
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let http = running.http.unwrap();
    let task = tokio::spawn(supervised(running));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = reqwest::get(format!("http://{http}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(get(http, "/").await.contains("this instance polls 0 of the fleet's 1 inverters"));
    assert!(!task.is_finished(), "the idle shard is still running");
    cancel.cancel();
    task.await.unwrap();
}
