//! Load control end to end over a real broker: plug states in, commands out, and Home
//! Assistant's switches for automatic control and dry run.

use std::time::Duration;

use chrono::TimeZone;
use inverter_monitor::config::ConsumerConfig;
use inverter_monitor::sim::SimClock;
use serde_json::json;

use super::Setup;
use crate::broker::*;

fn consumer(setup: &Setup, name: &str, min_soc: f64) -> ConsumerConfig {
    ConsumerConfig {
        state_topic: format!("{}/plugs/{name}", setup.base),
        command_topic: format!("{}/plugs/{name}/set", setup.base),
        min_soc,
        soc_hysteresis: 1.0,
        // Whole seconds would make the test wait; the rules still decide every poll.
        min_on: Duration::ZERO,
        min_off: Duration::ZERO,
        grid_import_limit: 10_000.0,
        ..ConsumerConfig::new(name, 2000.0)
    }
}

#[tokio::test]
async fn plug_states_in_commands_out_and_home_assistant_switches_honoured() {
    let mut setup = Setup::new(broker());
    // 19:00 in the simulated house: no sun, the evening peak, so the house runs on its battery.
    setup.clock = SimClock::Fixed(chrono::Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap());
    // The simulated battery starts at 60 %: above the geyser's floor, below the pool's.
    setup.consumers = vec![consumer(&setup, "geyser", 40.0), consumer(&setup, "pool", 95.0)];
    let base = setup.base.clone();
    let control = format!("{base}/control");
    let mut ha = Observer::new(&[
        format!("{base}/plugs/+/set"),
        format!("{control}/state"),
        format!("{}/device/+/config", setup.prefix),
    ])
    .await;
    ha.publish(&format!("{base}/plugs/geyser"), b"OFF", true).await;
    ha.publish(&format!("{base}/plugs/pool"), b"ON", true).await;
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;

    let device =
        ha.wait_for("the load control device", |m| m.topic.ends_with("_control/config")).await.json();
    assert_eq!(device["dev"]["name"], "Load control");
    let cmps = device["cmps"].as_object().unwrap();
    for id in ["dry_run", "geyser_automatic", "geyser_decision", "geyser_wanted", "pool_runtime_today"] {
        assert!(cmps.contains_key(id), "{id} missing: {:?}", cmps.keys());
    }

    // The shed comes first: nothing starts in a step where the house sheds.
    let first = ha.wait_for("a command", |m| m.topic.contains("/plugs/")).await;
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        (format!("{base}/plugs/pool/set").as_str(), &b"OFF"[..])
    );
    let second = ha.wait_for("a command", |m| m.topic.contains("/plugs/")).await;
    assert_eq!(
        (second.topic.as_str(), &second.payload[..]),
        (format!("{base}/plugs/geyser/set").as_str(), &b"ON"[..])
    );
    ha.publish(&format!("{base}/plugs/geyser"), b"ON", true).await;
    ha.publish(&format!("{base}/plugs/pool"), b"OFF", true).await;
    let state = ha
        .wait_for("the plugs followed", |m| {
            m.topic == format!("{control}/state")
                && m.json()["consumers"]["geyser"]["action"] == "stay"
                && m.json()["consumers"]["pool"]["action"] == "stay"
        })
        .await
        .json();
    let geyser = &state["consumers"]["geyser"];
    assert_eq!(
        (geyser["automatic"].clone(), geyser["state"].clone(), geyser["wanted"].clone()),
        (json!("ON"), json!("ON"), json!("ON"))
    );
    assert!(geyser["decision"].as_str().unwrap().starts_with("keep on: battery 60 % ≥ 40 %"), "{geyser}");
    assert!(
        state["consumers"]["pool"]["reason"].as_str().unwrap().contains("(floor 95 % + 1 % hysteresis)"),
        "{state}"
    );

    // Garbage on a command topic is ignored; automatic off hands the geyser to the user.
    ha.publish(&format!("{control}/geyser/automatic/set"), b"maybe", false).await;
    ha.publish(&format!("{control}/geyser/automatic/set"), b"OFF", true).await;
    ha.wait_for("manual geyser", |m| {
        m.topic == format!("{control}/state")
            && m.json()["consumers"]["geyser"]["decision"] == "wait: automatic control is off"
    })
    .await;
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.path().join("control.json")).unwrap()).unwrap();
    assert_eq!(saved["automatic"]["geyser"], json!(false));

    // Dry run: the pool is switched on by hand, the rules want it off, nothing is sent.
    ha.publish(&format!("{control}/dry_run/set"), b"ON", true).await;
    ha.wait_for("dry run on", |m| m.topic == format!("{control}/state") && m.json()["dry_run"] == "ON").await;
    ha.publish(&format!("{base}/plugs/pool"), b"ON", true).await;
    let dry = ha
        .wait_for("a dry-run decision", |m| {
            m.topic.ends_with("plugs/pool/set")
                || (m.topic == format!("{control}/state")
                    && m.json()["consumers"]["pool"]["decision"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("would switch off")))
        })
        .await;
    assert_eq!(dry.topic, format!("{control}/state"), "dry run sent a command");
    assert!(!app.task.is_finished());
    app.stop().await;
    for topic in ["plugs/geyser", "plugs/pool", "control/geyser/automatic/set", "control/dry_run/set"] {
        ha.publish(&format!("{base}/{topic}"), b"", true).await;
    }
}

#[tokio::test]
async fn removing_every_consumer_removes_the_device_and_its_retained_state() {
    let mut setup = Setup::new(broker());
    setup.consumers = vec![consumer(&setup, "geyser", 40.0)];
    let state = format!("{}/control/state", setup.base);
    let mut ha = Observer::new(&[format!("{}/device/+/config", setup.prefix), state.clone()]).await;
    let data = tempfile::tempdir().unwrap();
    let app = setup.start(data.path(), None, "house").await;
    let device = ha.wait_for("the load control device", |m| m.topic.ends_with("_control/config")).await.topic;
    ha.wait_for("its state", |m| m.topic == state && !m.payload.is_empty()).await;
    app.stop().await;

    setup.consumers.clear();
    let app = setup.start(data.path(), None, "house").await;
    ha.wait_for("the device removed", |m| m.topic == device && m.payload.is_empty()).await;
    ha.wait_for("its state removed", |m| m.topic == state && m.payload.is_empty()).await;
    app.stop().await;
}
