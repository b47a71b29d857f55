//! A fleet's discovery through a client queue far smaller than it: Home Assistant's birth
//! republishes every inverter's config at once, and every one must reach the broker.

use std::collections::BTreeSet;
use std::time::Duration;

use inverter_monitor::config::{Config, InverterConfig, MqttConfig};
use inverter_monitor::service::{self, Console};
use tokio_util::sync::CancellationToken;

use crate::broker::*;
use crate::fleet::spawn_fleet;
use crate::helpers::*;

const FLEET: u32 = 50;

/// Waits until the observer has seen a device config on every one of `FLEET` topics; `live`:
/// only ones sent while it was subscribed, not the broker's retained copies.
async fn every_device(ha: &mut Observer, prefix: &str, live: bool, what: &str) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    while topics.len() < FLEET as usize {
        let seen = ha
            .wait_for(&format!("{what}: {} of {FLEET} device configs", topics.len()), |m| {
                m.topic.starts_with(&format!("{prefix}/device/"))
                    && !m.payload.is_empty()
                    && !(live && m.retain)
            })
            .await;
        topics.insert(seen.topic);
    }
    topics
}

#[tokio::test]
async fn a_birth_republishes_a_whole_fleet_through_a_small_client_queue() {
    let (addr, fleet, stop) = spawn_fleet(FLEET).await;
    let inverters = (0..FLEET as usize)
        .map(|i| {
            let serial = fleet.logger_serial(i as u32).unwrap();
            let mut config = InverterConfig::new(&format!("inv{i:02}"), "127.0.0.1", addr.port(), serial);
            (config.interval, config.request_pause) = (Duration::from_secs(2), Duration::from_millis(1));
            config
        })
        .collect();
    let (prefix, base) = (unique("ha"), unique("im"));
    let mut ha = Observer::new(&[format!("{prefix}/device/+/config")]).await;
    let mut config = Config::new(inverters);
    config.mqtt = Some(MqttConfig {
        // Eight messages: a republish of 50 inverters (config, availability, state,
        // diagnostics each) overflows it many times over.
        queue_capacity: Some(8),
        ..mqtt_config(&prefix, &base, "service")
    });
    let data = tempfile::tempdir().unwrap();
    config.data_dir = data.path().to_path_buf();
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let task = tokio::spawn(supervised(running));

    let first = every_device(&mut ha, &prefix, false, "first discovery").await;
    // A second Home Assistant subscribed now counts only what is sent from here on.
    let mut late = Observer::new(&[format!("{prefix}/device/+/config")]).await;
    ha.publish(&format!("{prefix}/status"), b"online", false).await;
    let again = every_device(&mut late, &prefix, true, "rediscovery after the birth").await;
    assert_eq!(first, again, "the same {FLEET} devices, every one announced again");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(8), task).await.expect("the service stops").unwrap();
    stop.cancel();
}
