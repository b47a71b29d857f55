//! Recording while the service runs: `[record]` appends one line per poll over real TCP to the
//! simulator, every line whole on disk at shutdown, and no secret in it.

use std::time::Duration;

use inverter_monitor::config::{Config, InverterConfig, MqttConfig, RecordConfig, Secret};
use inverter_monitor::record;
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use tokio_util::sync::CancellationToken;

use crate::broker::broker;
use crate::helpers::*;

#[tokio::test]
async fn the_service_records_every_poll_whole_and_without_secrets() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("day.jsonl");
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.interval = Duration::from_millis(50);
    inverter.request_pause = Duration::from_millis(1);
    let mut config = Config::new(vec![inverter]);
    config.data_dir = dir.path().to_path_buf();
    config.record = Some(RecordConfig { path: out.clone(), rotate: false });
    config.mqtt = Some(MqttConfig {
        host: broker().ip().to_string(),
        port: broker().port(),
        username: Some("homeassistant".into()),
        password: Some(Secret::new("pa55-never-recorded".into())),
        ..MqttConfig::default()
    });
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let task = tokio::spawn(supervised(running));
    let lines = || std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
    until("three recorded polls", || lines() >= 3).await;
    cancel.cancel();
    task.await.unwrap();

    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    assert!(!text.contains("pa55-never-recorded"), "no secret in a recording");
    let polls = record::read(&out).unwrap();
    assert!(polls.len() >= 3, "{} polls", polls.len());
    let plan = profile().plan();
    for poll in &polls {
        assert_eq!((poll.inverter.as_str(), poll.profile.as_str()), ("house", "deye_sg01lp1"));
        assert!(
            !poll.identity.is_empty() && poll.identity != "house",
            "the inverter's serial: {}",
            poll.identity
        );
        for block in &plan {
            let values = poll.registers(block.start, block.count);
            assert!(values.is_some(), "planned read {}+{} recorded", block.start, block.count);
        }
    }
    assert!(polls.windows(2).all(|w| w[0].time < w[1].time), "in poll order");
    // Exactly the registers the simulator serves: before decoding, nothing judged or scaled.
    for block in &polls[0].blocks {
        for (addr, value) in (block.start..).zip(&block.values) {
            assert_eq!(Some(*value), sim.sim.register(addr), "register {addr}");
        }
    }
}

/// The commands as a user runs them: `record` until SIGTERM, with every poll so far whole on
/// disk, then `replay --fast` of what it wrote, with its report.
#[tokio::test]
async fn record_until_sigterm_then_replay_the_file() {
    use crate::process::{BIN, output, terminate};
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let toml = format!(
        "data_dir = {:?}\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {}\nserial = {SERIAL}\nprofile = \"deye_sg01lp1\"\ninterval = \"1s\"\nrequest_pause = \"1ms\"\n",
        dir.path().join("data"),
        sim.addr.port()
    );
    std::fs::write(&config, toml).unwrap();
    let out = dir.path().join("day.jsonl");
    let (config, out_arg) = (config.to_str().unwrap().to_string(), out.to_str().unwrap().to_string());
    let mut child = std::process::Command::new(BIN)
        .args(["record", "--config", &config, "--out", &out_arg])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = || std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
    until("two recorded polls", || lines() >= 2).await;
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "record stops cleanly on SIGTERM");
    let polls = record::read(&out).unwrap();
    assert!(polls.len() >= 2);

    let (ok, stdout, stderr) = output(&["replay", &out_arg, "--config", &config, "--fast"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("polls replayed:    {} (0 without a snapshot)", polls.len())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("to Home Assistant: {} state messages", polls.len())), "{stdout}");
}
