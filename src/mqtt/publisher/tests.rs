//! The publisher's rules without a broker: inputs in, effects out.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{Value as Json, json};

use super::*;
use crate::config::InverterConfig;
use crate::mqtt::connection::ConnEvent;
use crate::mqtt::ledger::Entry;
use crate::poller::PollFailure;
use crate::profile::Profiles;
use crate::sim::fixture;

const DEVICE_TOPIC: &str = "homeassistant/device/inverter_monitor_2306178901/config";

fn config() -> Config {
    Config::new(vec![InverterConfig::new("house", "127.0.0.1", 8899, 2_712_345_678)])
}

fn publisher(mode: &str, ledger: Ledger) -> Publisher {
    with_config(&config(), mode, ledger)
}

fn with_config(config: &Config, mode: &str, ledger: Ledger) -> Publisher {
    let mqtt: MqttConfig = toml::from_str(&format!("discovery = \"{mode}\"")).unwrap();
    Publisher::new(config, &mqtt, Topics::of(&mqtt), ledger)
}

fn polled(change: Option<Change>) -> Update {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    Update::Polled { snapshot: Arc::new(fixture::snapshot(profile, "house", at)), change }
}

fn failed(change: Option<Change>) -> Update {
    let failure = PollFailure {
        inverter: "house".into(),
        time: Utc.with_ymd_and_hms(2026, 11, 27, 10, 1, 0).unwrap(),
        error: "timed out".into(),
        consecutive_failures: 3,
        link: Default::default(),
    };
    Update::Failed { failure: Arc::new(failure), change }
}

fn connected(p: &mut Publisher) -> Vec<Effect> {
    p.on_event(ConnEvent::Connected, Instant::now())
}

/// The published messages as (topic, payload text).
fn published(effects: &[Effect]) -> Vec<(String, String)> {
    let text = |m: &Message| (m.topic.clone(), String::from_utf8_lossy(&m.payload).into_owned());
    effects.iter().filter_map(|e| if let Effect::Publish(m) = e { Some(text(m)) } else { None }).collect()
}

fn payload_of(effects: &[Effect], topic: &str) -> Option<String> {
    published(effects).into_iter().find(|(t, _)| t == topic).map(|(_, p)| p)
}

fn removed(effects: &[Effect]) -> Vec<String> {
    published(effects).into_iter().filter(|(_, p)| p.is_empty()).map(|(t, _)| t).collect()
}

#[test]
fn nothing_is_sent_while_the_broker_is_away_and_everything_once_it_is_back() {
    let mut p = publisher("device", Ledger::default());
    assert_eq!(p.on_update(polled(Some(Change::Online))), []);
    assert_eq!(p.on_command("anything", true), []);
    let effects = connected(&mut p);
    assert!(effects.contains(&Effect::Subscribe("homeassistant/status".into())));
    assert_eq!(payload_of(&effects, "inverter-monitor/status").as_deref(), Some("online"));
    assert!(payload_of(&effects, DEVICE_TOPIC).is_some(), "discovery of the inverter seen while away");
    assert_eq!(payload_of(&effects, "inverter-monitor/house/availability").as_deref(), Some("online"));
    assert!(payload_of(&effects, "inverter-monitor/house/state").unwrap().contains("battery_soc"));
}

#[test]
fn availability_goes_online_and_offline_and_is_restated_after_a_reconnect() {
    let mut p = publisher("device", Ledger::default());
    connected(&mut p);
    let availability = "inverter-monitor/house/availability";
    assert_eq!(
        payload_of(&p.on_update(polled(Some(Change::Online))), availability).as_deref(),
        Some("online")
    );
    assert_eq!(payload_of(&p.on_update(polled(None)), availability), None, "said once, not every poll");
    let effects = p.on_update(failed(Some(Change::Offline)));
    assert_eq!(payload_of(&effects, availability).as_deref(), Some("offline"));
    assert!(
        payload_of(&effects, "inverter-monitor/house/diagnostics")
            .unwrap()
            .contains("\"consecutive_failures\":3")
    );
    p.on_event(ConnEvent::Disconnected, Instant::now());
    assert_eq!(payload_of(&connected(&mut p), availability).as_deref(), Some("offline"));
}

#[test]
fn a_component_the_new_configuration_dropped_is_removed_from_the_device() {
    let mut ledger = Ledger::default();
    let old = Entry {
        topics: vec![DEVICE_TOPIC.into()],
        components: Arc::new(BTreeMap::from([
            ("battery_soc".into(), "sensor".into()),
            ("retired".into(), "binary_sensor".into()),
        ])),
        ..Entry::default()
    };
    ledger.set("house", Some(old));
    let mut p = publisher("device", ledger);
    connected(&mut p);
    let effects = p.on_update(polled(Some(Change::Online)));
    let payload: Json = serde_json::from_str(&payload_of(&effects, DEVICE_TOPIC).unwrap()).unwrap();
    assert_eq!(
        payload["cmps"]["retired"],
        json!({"p": "binary_sensor"}),
        "Home Assistant removes a bare stub"
    );
    assert_eq!(payload["cmps"]["battery_soc"]["p"], json!("sensor"));
    let entry = p.ledger.get("house").unwrap();
    assert!(!entry.components.contains_key("retired"), "announced once, then forgotten");
    let again: Json =
        serde_json::from_str(&payload_of(&p.on_timer_now_rediscover(), DEVICE_TOPIC).unwrap()).unwrap();
    assert!(again["cmps"].get("retired").is_none());
}

#[test]
fn per_entity_topics_the_new_configuration_dropped_are_emptied() {
    let stale = "homeassistant/sensor/inverter_monitor_2306178901/retired/config";
    let kept = "homeassistant/sensor/inverter_monitor_2306178901/battery_soc/config";
    let mut ledger = Ledger::default();
    ledger.set("house", Some(Entry { topics: vec![stale.into(), kept.into()], ..Entry::default() }));
    let mut p = publisher("entity", ledger);
    connected(&mut p);
    let effects = p.on_update(polled(None));
    assert_eq!(removed(&effects), [stale]);
    assert!(payload_of(&effects, kept).unwrap().contains("\"device\""));
    assert!(!p.ledger.get("house").unwrap().topics.contains(&stale.to_string()));
}

#[test]
fn orphans_are_cleared_once_on_the_first_connect() {
    let mut ledger = Ledger::default();
    let garage = "homeassistant/device/inverter_monitor_99/config";
    ledger.set("garage", Some(Entry { topics: vec![garage.into()], ..Entry::default() }));
    let weather = Entry { retained: vec!["inverter-monitor/weather/state".into()], ..Entry::default() };
    ledger.set("@weather", Some(weather));
    let mut p = publisher("device", ledger);
    let mut gone = removed(&connected(&mut p));
    gone.sort();
    assert_eq!(
        gone,
        [
            garage,
            "inverter-monitor/garage/availability",
            "inverter-monitor/garage/diagnostics",
            "inverter-monitor/garage/state",
            "inverter-monitor/weather/state",
        ]
    );
    assert_eq!(p.ledger.orphans(&[]), Vec::<String>::new());
    p.on_event(ConnEvent::Disconnected, Instant::now());
    assert_eq!(removed(&connected(&mut p)), Vec::<String>::new());
}

/// After a reshard, a device another shard now publishes is forgotten here, never removed
/// from Home Assistant (which would race the other shard's announcement); one that left the
/// config is removed as ever.
#[test]
fn a_shard_removes_only_what_left_the_fleet() {
    // house on shard 1 of 2 with the service parts; garage and barn on shard 0.
    let fleet = ["house", "garage", "barn"].map(|n| InverterConfig::new(n, n, 8899, 2_712_345_678));
    let mut config = Config::new(fleet.to_vec());
    config.keep_shard(crate::config::Shard::parse("0/2").unwrap());
    assert_eq!(config.inverters.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["garage", "barn"]);
    let mut ledger = Ledger::default();
    for name in ["house", "gone", "@weather"] {
        let topic = format!("homeassistant/device/{name}/config");
        ledger.set(name, Some(Entry { topics: vec![topic], ..Entry::default() }));
    }
    let mut p = with_config(&config, "device", ledger);
    let mut gone = removed(&connected(&mut p));
    gone.sort();
    assert_eq!(
        gone,
        [
            "homeassistant/device/gone/config",
            "inverter-monitor/gone/availability",
            "inverter-monitor/gone/diagnostics",
            "inverter-monitor/gone/state",
        ]
    );
    assert_eq!(p.ledger.get("house"), None, "forgotten: shard 1 keeps its own ledger of it");
    assert_eq!(p.ledger.get("@weather"), None);
}

#[test]
fn home_assistants_birth_brings_rediscovery_after_the_delay() {
    let delay = Duration::from_millis(700);
    let mut p = publisher("device", Ledger::default()).with_rediscovery_delay(delay..=delay);
    connected(&mut p);
    p.on_update(polled(Some(Change::Online)));
    let birth = |payload: &'static str| ConnEvent::Message {
        topic: "homeassistant/status".into(),
        payload: payload.into(),
        retained: false,
    };
    let now = Instant::now();
    assert_eq!(p.on_event(birth("offline"), now), []);
    assert_eq!(p.next_timer(), None, "only online asks for rediscovery");
    assert_eq!(p.on_event(birth("online"), now), []);
    assert_eq!(p.next_timer(), Some(now + delay));
    assert_eq!(p.on_timer(now + delay / 2), [], "not before the delay");
    let effects = p.on_timer(now + delay);
    assert!(payload_of(&effects, DEVICE_TOPIC).is_some());
    assert_eq!(payload_of(&effects, "inverter-monitor/house/availability").as_deref(), Some("online"));
    assert_eq!(p.next_timer(), Some(now + delay), "one more step, to see that nothing came back refused");
    assert_eq!(p.on_timer(now + delay), [], "nothing did: the pass is done");
    assert_eq!(p.next_timer(), None);
}

#[test]
fn other_tasks_retained_messages_are_republished_after_a_reconnect() {
    let mut p = publisher("device", Ledger::default());
    connected(&mut p);
    let out = |topic: &str, payload: &str, retain| Outgoing {
        topic: topic.into(),
        payload: payload.into(),
        retain,
    };
    let effects = p.on_outgoing(out("im/weather/state", "{\"a\":1}", true));
    assert!(matches!(&effects[..], [Effect::Publish(Message { retain: true, qos: QoS::AtLeastOnce, .. })]));
    p.on_outgoing(out("im/ping", "x", false));
    p.on_event(ConnEvent::Disconnected, Instant::now());
    assert_eq!(p.on_outgoing(out("im/weather/state", "{\"a\":2}", true)), [], "away: kept, not sent");
    let effects = connected(&mut p);
    assert_eq!(payload_of(&effects, "im/weather/state").as_deref(), Some("{\"a\":2}"), "the latest one");
    assert_eq!(payload_of(&effects, "im/ping"), None, "not retained, not repeated");
}

#[test]
fn service_device_commands_are_delivered_and_switch_states_reported() {
    let topics = Topics::new("homeassistant", "inverter-monitor");
    let mut config = config();
    config.consumers = vec![crate::config::ConsumerConfig::new("pool_pump", 800.0)];
    let device = crate::control::entities::device(&topics, &config.consumers);
    let mut p = with_config(&config, "device", Ledger::default()).with_devices(vec![device]);
    let effects = connected(&mut p);
    assert!(effects.contains(&Effect::Subscribe("inverter-monitor/control/dry_run/set".into())));
    assert!(
        payload_of(&effects, "homeassistant/device/inverter_monitor_inverter-monitor_control/config")
            .is_some()
    );
    let message = ConnEvent::Message {
        topic: "inverter-monitor/control/dry_run/set".into(),
        payload: "ON".into(),
        retained: false,
    };
    let expected =
        Effect::Deliver { topic: "inverter-monitor/control/dry_run/set".into(), payload: b"ON".to_vec() };
    assert_eq!(p.on_event(message, Instant::now()), [expected]);
    let plug =
        ConnEvent::Message { topic: "plugs/pool_pump/state".into(), payload: "ON".into(), retained: true };
    assert_eq!(
        p.on_event(plug, Instant::now()),
        [Effect::SwitchState { name: "pool_pump".into(), on: true }]
    );
}

#[test]
fn setting_commands_are_subscribed_and_delivered_only_with_writes_on() {
    let sent = |retained: bool| ConnEvent::Message {
        topic: "inverter-monitor/house/set/max_sell_power".into(),
        payload: "3000".into(),
        retained,
    };
    let command = || sent(false);
    let set = Effect::Subscribe("inverter-monitor/house/set/+".into());
    let mut off = publisher("device", Ledger::default());
    let effects = connected(&mut off);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Subscribe(t) if t.contains("/set/"))), "{effects:?}");
    assert!(off.on_event(command(), Instant::now()).is_empty(), "no command is handed on");
    let discovery = payload_of(&off.on_update(polled(Some(Change::Online))), DEVICE_TOPIC).unwrap();
    assert!(!discovery.contains("command_topic"));

    let mut config = config();
    config.inverters[0].writes = true;
    let mut on = with_config(&config, "device", Ledger::default());
    assert!(connected(&mut on).contains(&set));
    assert!(on.on_event(command(), Instant::now()).is_empty(), "nothing announced yet: no entity asked");
    let discovery: Json =
        serde_json::from_str(&payload_of(&on.on_update(polled(Some(Change::Online))), DEVICE_TOPIC).unwrap())
            .unwrap();
    let want = Effect::Write(crate::writes::Command {
        inverter: "house".into(),
        key: "max_sell_power".into(),
        payload: "3000".into(),
        topic: "inverter-monitor/house/set/max_sell_power".into(),
        identity: "2306178901".into(),
    });
    assert_eq!(on.on_event(command(), Instant::now()), [want], "stamped with the announced identity");
    assert_eq!(on.on_event(sent(true), Instant::now()), [], "a retained command is never acted on");
    assert_eq!(
        discovery["cmps"]["max_sell_power_set"]["command_topic"],
        json!("inverter-monitor/house/set/max_sell_power")
    );
    assert_eq!(discovery["cmps"]["max_sell_power_set"]["retain"], json!(false));
    assert_eq!(
        discovery["cmps"]["program_1_start_time_set"]["pattern"],
        json!("^([01][0-9]|2[0-3]):[0-5][0-9]$")
    );
    assert_eq!(discovery["cmps"]["solar_sell_set"]["state_on"], json!("ON"));
}

#[test]
fn shutdown_says_offline_and_disconnects_only_when_connected() {
    let mut p = publisher("device", Ledger::default());
    assert_eq!(p.shutdown(), []);
    connected(&mut p);
    let effects = p.shutdown();
    assert_eq!(payload_of(&effects, "inverter-monitor/status").as_deref(), Some("offline"));
    assert_eq!(effects.last(), Some(&Effect::Disconnect));
}

/// A real client whose event loop is never polled: its queue of `capacity` fills and stays full.
fn outputs_with_queue(capacity: usize) -> (task::Outputs, rumqttc::EventLoop) {
    let (client, eventloop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("t", "127.0.0.1", 1), capacity);
    let (states, _) = tokio::sync::watch::channel(Default::default());
    let (messages, _) = tokio::sync::broadcast::channel(1);
    let writes = tokio::sync::broadcast::channel(1).0;
    (task::Outputs { client, states, messages, writes, connected: Default::default() }, eventloop)
}

fn publishes(effects: &[Effect], keep: bool) -> Vec<Message> {
    let kept = |e: &Effect| {
        if let Effect::Publish(m) = e { Some(m.clone()).filter(|m| m.keep == keep) } else { None }
    };
    effects.iter().filter_map(kept).collect()
}

#[tokio::test]
async fn a_full_client_queue_drops_state_but_hands_discovery_back_to_be_sent_again() {
    let (outputs, _eventloop) = outputs_with_queue(2);
    let mut p = publisher("device", Ledger::default());
    p.on_update(polled(Some(Change::Online)));
    let now = Instant::now();
    let effects = p.on_event(ConnEvent::Connected, now);
    assert_eq!(effects[0], Effect::Subscribe("homeassistant/status".into()), "one subscription, first");
    let (kept, dropped) = (publishes(&effects, true), publishes(&effects, false));
    assert!(kept.iter().any(|m| m.topic == DEVICE_TOPIC), "discovery must arrive");
    assert!(kept.iter().any(|m| m.topic == "inverter-monitor/house/availability"), "availability too");
    assert!(dropped.iter().any(|m| m.topic == "inverter-monitor/house/state"), "state may be dropped");
    assert_eq!(dropped[0].topic, "inverter-monitor/status", "the status is the one message that fits");
    task::carry_out(&mut p, &outputs, effects);
    assert_eq!(p.dropped(), dropped.len() as u64 - 1, "the subscription and one message fit");
    let at = p.next_timer().expect("a retry is due");
    assert!(at >= now + pace::RETRY, "it waits for room");
    assert_eq!(p.on_timer(at - pace::RETRY / 2), [], "not before");
    let again = p.on_timer(at);
    assert_eq!(publishes(&again, true), kept, "the refused discovery again, whole and in order");
    assert_eq!(publishes(&again, false), [], "not the state: the next poll replaces it");
}

impl Publisher {
    /// Rediscovery, due now.
    fn on_timer_now_rediscover(&mut self) -> Vec<Effect> {
        self.rediscover_at = Some(Instant::now());
        self.on_timer(Instant::now())
    }
}

#[test]
fn a_profile_with_more_readings_is_announced_and_fewer_removes_the_rest() {
    // The poller narrows the profile when the battery pack count changes: the same device, a
    // different profile Arc, and discovery must follow both ways.
    let full = Profiles::builtin().unwrap().get("deye_sg04lp3").unwrap();
    let (none, two) = (Arc::new(full.with_packs(0)), Arc::new(full.with_packs(2)));
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let update = |profile: &Arc<Profile>| Update::Polled {
        snapshot: Arc::new(fixture::snapshot(profile.clone(), "house", at)),
        change: None,
    };
    let components = |effects: &[Effect]| -> Option<Json> {
        let payload: Json = serde_json::from_str(&payload_of(effects, DEVICE_TOPIC)?).unwrap();
        Some(payload["cmps"].clone())
    };
    let mut p = publisher("device", Ledger::default());
    connected(&mut p);
    let first = components(&p.on_update(update(&none))).expect("the first poll announces the device");
    assert!(first.get("battery_pack1_voltage").is_none());
    assert!(first.get("battery_pack_count").is_some(), "the count is an ordinary reading");
    let more = components(&p.on_update(update(&two))).expect("a new profile is announced");
    assert_eq!(more["battery_pack2_soc"]["p"], json!("sensor"));
    assert!(more["battery_pack2_soc"]["unique_id"].is_string(), "{}", more["battery_pack2_soc"]);
    assert!(more.get("battery_pack3_soc").is_none());
    assert_eq!(components(&p.on_update(update(&two))), None, "the same profile again: nothing to announce");
    let fewer = components(&p.on_update(update(&none))).expect("fewer readings are announced too");
    assert_eq!(fewer["battery_pack2_soc"], json!({"p": "sensor"}), "Home Assistant removes a bare stub");
}

/// A publisher for a fleet of `n` inverters, `inv00`…, each polled once as its own device.
fn fleet(n: usize) -> Publisher {
    let inverters =
        (0..n).map(|i| InverterConfig::new(&format!("inv{i:02}"), "127.0.0.1", 8899, 1)).collect();
    let mut p = with_config(&Config::new(inverters), "device", Ledger::default());
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    for i in 0..n {
        let mut snapshot = fixture::snapshot(profile.clone(), &format!("inv{i:02}"), at);
        snapshot.identity = format!("SIM{i:07}").into();
        p.on_update(Update::Polled { snapshot: Arc::new(snapshot), change: Some(Change::Online) });
    }
    p
}

/// The device config topics among `effects`.
fn device_configs(effects: &[Effect]) -> Vec<String> {
    let config = |(t, _): &(String, String)| t.starts_with("homeassistant/device/") && t.ends_with("/config");
    published(effects).into_iter().filter(config).map(|(t, _)| t).collect()
}

#[test]
fn a_fleets_pass_goes_out_in_bounded_steps_and_a_new_pass_restarts_it() {
    let mut p = fleet(50);
    let now = Instant::now();
    let first = p.on_event(ConnEvent::Connected, now);
    let sent = device_configs(&first).len();
    assert!(sent > 0 && sent < 50, "one step holds a bounded part of the fleet: {sent}");
    let bytes: usize = publishes(&first, true).iter().map(|m| m.payload.len()).sum();
    assert!(bytes < 2 * pace::STEP_BYTES, "{bytes}");
    assert_eq!(p.pace.pending.len(), 50 - sent, "names wait, not payloads");
    assert_eq!(p.next_timer(), Some(now), "the next step follows at once");

    // Home Assistant's birth mid-pass: the pass restarts, each inverter pending once.
    p.rediscover_at = Some(now);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut effects = p.on_timer(now);
    assert_eq!(p.pace.pending.len(), 50 - device_configs(&effects).len(), "restarted, not duplicated");
    while !effects.is_empty() {
        for topic in device_configs(&effects) {
            *seen.entry(topic).or_default() += 1;
        }
        effects = p.on_timer(p.next_timer().expect("the pass goes on until it is done"));
    }
    assert_eq!(seen.len(), 50, "every device announced");
    assert!(seen.values().all(|&n| n == 1), "once each in the new pass: {seen:?}");
    assert_eq!(p.next_timer(), None, "done");
}

#[test]
fn a_poll_behind_refused_messages_queues_its_inverter_by_name() {
    let mut p = fleet(3);
    let now = Instant::now();
    let effects = p.on_event(ConnEvent::Connected, now);
    while p.next_timer().is_some() {
        p.on_timer(now);
    }
    for message in publishes(&effects, true) {
        p.on_refused(message, now);
    }
    // A new profile for inv01 while the refused wait: only its name is kept.
    let profile = Profiles::builtin().unwrap().get("deye_sg04lp3").unwrap();
    let mut snapshot =
        fixture::snapshot(profile, "inv01", Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap());
    snapshot.identity = "SIM0000001".into();
    let update = p.on_update(Update::Polled { snapshot: Arc::new(snapshot), change: None });
    assert_eq!(device_configs(&update), [] as [String; 0], "not built now");
    assert_eq!(p.pace.pending.iter().collect::<Vec<_>>(), ["inv01"]);
    let mut configs = Vec::new();
    while let Some(at) = p.next_timer() {
        configs.extend(device_configs(&p.on_timer(at)));
    }
    assert_eq!(configs.len(), 4, "the three refused, then inv01 in its turn: {configs:?}");
    assert!(configs[3].contains("SIM0000001"), "{configs:?}");
}

#[test]
fn a_newer_availability_supersedes_a_refused_one() {
    let mut p = publisher("device", Ledger::default());
    p.on_update(polled(Some(Change::Online)));
    let now = Instant::now();
    let effects = p.on_event(ConnEvent::Connected, now);
    while p.next_timer().is_some() {
        p.on_timer(now);
    }
    let availability = "inverter-monitor/house/availability";
    for message in publishes(&effects, true) {
        p.on_refused(message, now);
    }
    let offline = p.on_update(failed(Some(Change::Offline)));
    assert_eq!(payload_of(&offline, availability).as_deref(), Some("offline"));
    let again = p.on_timer(now + pace::RETRY);
    assert!(payload_of(&again, DEVICE_TOPIC).is_some(), "the refused discovery is resent");
    assert_eq!(payload_of(&again, availability), None, "not the stale online");
}
