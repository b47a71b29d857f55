//! Writes from Home Assistant, end to end: commands through the embedded broker to the service,
//! FC16 over real TCP to the simulator, read-back, state and the result topic.

use std::path::Path;
use std::time::Duration;

use inverter_monitor::config::{Config, InverterConfig};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use serde_json::{Value as Json, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::*;
use crate::helpers::*;

const DEVICE: &str = "inverter_monitor_2306178901";

/// The service on one simulated SG01LP1, with Home Assistant's view of it.
struct App {
    sim: SimHandle,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    prefix: String,
    base: String,
    ha: Observer,
}

impl App {
    async fn start(data: &Path, writes: bool, write_keys: &[&str]) -> Self {
        Self::start_with(data, writes, write_keys, SimConfig::new(SERIAL)).await
    }

    async fn start_with(data: &Path, writes: bool, write_keys: &[&str], sim: SimConfig) -> Self {
        let (prefix, base) = (unique("ha"), unique("im"));
        let ha = Observer::new(&[format!("{prefix}/device/+/config"), format!("{base}/#")]).await;
        let sim = spawn_sim(sim, profile()).await;
        let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
        inverter.profile = "deye_sg01lp1".into();
        inverter.interval = Duration::from_millis(200);
        inverter.request_pause = Duration::from_millis(1);
        inverter.writes = writes;
        inverter.write_keys = write_keys.iter().map(|k| k.to_string()).collect();
        let mut config = Config::new(vec![inverter]);
        config.mqtt = Some(mqtt_config(&prefix, &base, "service"));
        config.data_dir = data.to_path_buf();
        let cancel = CancellationToken::new();
        let running = service::start(config, Console::Quiet, &cancel).unwrap();
        let task = tokio::spawn(supervised(running));
        Self { sim, cancel, task, prefix, base, ha }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(8), self.task).await.expect("the service stops").unwrap();
    }

    /// The device discovery, once a poll has made the inverter known.
    async fn discovery(&mut self) -> Json {
        let topic = format!("{}/device/{DEVICE}/config", self.prefix);
        self.ha.wait_for("discovery", |m| m.topic == topic).await.json()
    }

    /// Waits for a state whose `key` reads `value`.
    async fn state_shows(&mut self, key: &str, value: Json) {
        let topic = format!("{}/house/state", self.base);
        let what = format!("state {key} = {value}");
        self.ha.wait_for(&what, |m| m.topic == topic && m.json()[key] == value).await;
    }

    async fn set(&self, key: &str, payload: &str) {
        self.ha.publish(&format!("{}/house/set/{key}", self.base), payload.as_bytes(), false).await;
    }

    /// The next write result for `key`.
    async fn result(&mut self, key: &str) -> Json {
        let topic = format!("{}/house/write_result", self.base);
        self.ha
            .wait_for(&format!("a write result for {key}"), |m| m.topic == topic && m.json()["key"] == key)
            .await
            .json()
    }
}

#[tokio::test]
async fn a_command_writes_once_reads_back_and_publishes_the_new_state() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    let config = app.discovery().await;
    let number = &config["cmps"]["max_sell_power_set"];
    assert_eq!(number["p"], json!("number"));
    assert_eq!(number["unique_id"], json!("2306178901_max_sell_power_set"));
    assert_eq!(number["default_entity_id"], json!("number.house_max_sell_power"));
    assert_eq!(number["command_topic"], json!(format!("{}/house/set/max_sell_power", app.base)));
    assert_eq!(number["entity_category"], json!("config"));
    assert_eq!(
        (&number["min"], &number["max"], &number["step"]),
        (&json!(0.0), &json!(16000.0), &json!(10.0))
    );
    assert_eq!(config["cmps"]["work_mode_set"]["p"], json!("select"));
    assert_eq!(config["cmps"]["solar_sell_set"]["default_entity_id"], json!("switch.house_solar_sell"));
    assert_eq!(config["cmps"]["program_1_start_time_set"]["p"], json!("text"));
    // The sensor keeps its unique_id and history, hidden for new installs.
    assert_eq!(config["cmps"]["max_sell_power"]["unique_id"], json!("2306178901_max_sell_power"));
    assert_eq!(config["cmps"]["max_sell_power"]["enabled_by_default"], json!(false));
    app.state_shows("max_sell_power", json!(5000)).await;

    app.set("max_sell_power", "3000").await;
    let result = app.result("max_sell_power").await;
    assert_eq!(
        result,
        json!({"key": "max_sell_power", "value": "3000", "outcome": "written", "old": 5000, "read_back": 3000})
    );
    assert_eq!(app.sim.sim.writes(), vec![(245, vec![3000])], "exactly one FC16 of register 245");
    app.state_shows("max_sell_power", json!(3000)).await;

    app.set("work_mode", "Zero export to CT").await;
    let result = app.result("work_mode").await;
    assert_eq!(result["read_back"], json!("Zero export to CT"));
    assert_eq!(app.sim.sim.writes()[1..], [(244, vec![2])]);
    app.state_shows("work_mode", json!("Zero export to CT")).await;
    app.stop().await;
}

#[tokio::test]
async fn a_bad_value_writes_nothing_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    app.state_shows("max_sell_power", json!(5000)).await;
    // Inside the profile's range, above the simulated inverter's 5 kW rating.
    app.set("max_sell_power", "6000").await;
    let result = app.result("max_sell_power").await;
    assert_eq!(result["outcome"], json!("refused"));
    assert!(result["reason"].as_str().unwrap().contains("rated power"), "{result}");
    // Off the step, on another key so the per-key interval does not hold it.
    app.set("program_1_power", "1005").await;
    let result = app.result("program_1_power").await;
    assert_eq!(result["outcome"], json!("refused"));
    assert!(result["reason"].as_str().unwrap().contains("multiple of 10"), "{result}");
    app.set("work_mode", "Sell everything").await;
    assert_eq!(app.result("work_mode").await["outcome"], json!("refused"));
    app.set("pv1_power", "100").await;
    assert_eq!(app.result("pv1_power").await["outcome"], json!("refused"));
    assert!(app.sim.sim.writes().is_empty(), "a refused command writes nothing");
    app.stop().await;
}

#[tokio::test]
async fn thirty_rapid_commands_write_at_most_twice_and_the_last_value_wins() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    app.state_shows("max_sell_power", json!(5000)).await;
    for n in 1..=30 {
        app.set("max_sell_power", &(n * 100).to_string()).await;
    }
    let topic = format!("{}/house/write_result", app.base);
    app.ha.wait_for("the last value written", |m| m.topic == topic && m.json()["value"] == "3000").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = app.sim.sim.writes();
    assert!((1..=2).contains(&writes.len()), "{writes:?}");
    assert_eq!(writes.last(), Some(&(245, vec![3000])));
    app.state_shows("max_sell_power", json!(3000)).await;
    app.stop().await;
}

#[tokio::test]
async fn a_value_the_inverter_does_not_keep_is_reported_as_not_kept() {
    let data = tempfile::tempdir().unwrap();
    // An inverter whose firmware caps the export limit (register 245) at 2500 W.
    let sim = SimConfig { clamp: vec![(245, 2500)], ..SimConfig::new(SERIAL) };
    let mut app = App::start_with(data.path(), true, &[], sim).await;
    app.state_shows("max_sell_power", json!(5000)).await;
    app.set("max_sell_power", "3000").await;
    let result = app.result("max_sell_power").await;
    assert_eq!((&result["outcome"], &result["read_back"]), (&json!("not_kept"), &json!(2500)), "{result}");
    assert_eq!(app.sim.sim.writes(), [(245, vec![3000])], "one FC16 went out");
    app.state_shows("max_sell_power", json!(2500)).await;
    app.stop().await;
}

#[tokio::test]
async fn an_unchanged_value_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    app.state_shows("max_sell_power", json!(5000)).await;
    app.set("max_sell_power", "5000").await;
    let result = app.result("max_sell_power").await;
    assert_eq!(result["outcome"], json!("unchanged"));
    assert_eq!(result["read_back"], json!(5000));
    assert!(app.sim.sim.writes().is_empty());
    // The drift sensor's value: the simulated clock stands at 2026-11-27 12:00, the host's
    // does not, and without clock_sync nothing sets it.
    let diagnostics = format!("{}/house/diagnostics", app.base);
    let seen = app.ha.wait_for("diagnostics", |m| m.topic == diagnostics).await.json();
    let local = chrono::Local::now().naive_local();
    let noon = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(12, 0, 0).unwrap();
    let expected = (noon - local).as_seconds_f64();
    assert!((seen["clock_drift_s"].as_f64().unwrap() - expected).abs() < 60.0, "{seen}");
    app.stop().await;
}

#[tokio::test]
async fn bit_fields_keep_their_other_bits() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    // Time of use off, on Monday, Wednesday, Friday and Sunday; slot 1 charging from neither
    // source, with bits above its mask set as the inverter may keep them.
    app.sim.sim.poke(248, 0b1010_1010);
    app.sim.sim.poke(274, 0xFF00);
    app.state_shows("time_of_use_friday", json!(true)).await;

    app.set("time_of_use_enabled", "ON").await;
    assert_eq!(app.result("time_of_use_enabled").await["read_back"], json!(true));
    app.set("program_1_charge_source", "Grid").await;
    assert_eq!(app.result("program_1_charge_source").await["read_back"], json!("Grid"));
    app.set("time_of_use_friday", "OFF").await;
    assert_eq!(app.result("time_of_use_friday").await["outcome"], json!("written"));
    let writes = app.sim.sim.writes();
    assert_eq!(writes, vec![(248, vec![0b1010_1011]), (274, vec![0xFF01]), (248, vec![0b1000_1011])]);
    app.state_shows("time_of_use_monday", json!(true)).await;
    app.stop().await;
}

#[tokio::test]
async fn write_keys_narrow_the_entities_and_the_commands() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &["max_sell_power"]).await;
    let config = app.discovery().await;
    let settable: Vec<&String> =
        config["cmps"].as_object().unwrap().keys().filter(|k| k.ends_with("_set")).collect();
    assert_eq!(settable, ["max_sell_power_set"]);
    app.state_shows("max_sell_power", json!(5000)).await;
    app.set("work_mode", "Zero export to CT").await;
    assert_eq!(app.result("work_mode").await["outcome"], json!("refused"));
    assert!(app.sim.sim.writes().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn with_writes_off_there_are_no_writable_entities_and_commands_go_nowhere() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), false, &[]).await;
    let config = app.discovery().await;
    let cmps = config["cmps"].as_object().unwrap();
    assert!(cmps.keys().all(|k| !k.ends_with("_set")), "no writable entity");
    assert!(cmps.values().all(|c| c.get("command_topic").is_none()), "no command topic");
    assert!(cmps["max_sell_power"].get("enabled_by_default").is_none(), "the sensor stays as it was");
    app.state_shows("max_sell_power", json!(5000)).await;
    app.set("max_sell_power", "3000").await;
    // Several polls later: nothing written, no result.
    let topic = format!("{}/house/write_result", app.base);
    let polls = format!("{}/house/diagnostics", app.base);
    for _ in 0..10 {
        let seen = app.ha.wait_for("a poll or a result", |m| m.topic == polls || m.topic == topic).await;
        assert_ne!(seen.topic, topic, "no write result with writes off");
    }
    assert!(app.sim.sim.writes().is_empty());
    app.stop().await;
}

/// A stack of two SG04LP3 behind one simulated logger, polled by one loop that takes writes
/// for the master only, as the configuration's default has it.
#[tokio::test]
async fn in_a_stack_a_write_goes_to_the_master_over_the_shared_link_and_not_to_the_others() {
    use std::collections::BTreeMap;

    use inverter_monitor::poller::{self, Member, Poller};
    use inverter_monitor::profile::Profiles;
    use inverter_monitor::writes::coalesce::Timing;
    use inverter_monitor::writes::{Allowed, Command, Outcome, WriteCounters, WritePort};
    use tokio::sync::{broadcast, mpsc};

    let profiles = Profiles::builtin().unwrap();
    let (addr, units, _stop) = spawn_stack(&[(1, "2306178901"), (2, "2306178902")], "deye_sg04lp3").await;
    let member = |name: &str, slave: u8| {
        let mut config = InverterConfig::new(name, "127.0.0.1", addr.port(), SERIAL);
        (config.slave_id, config.interval, config.profile) =
            (slave, Duration::from_millis(50), "deye_sg04lp3".into());
        Member { poller: Poller::for_inverter(&config, &profiles).unwrap(), slave }
    };
    let (commands_tx, commands) = mpsc::channel(8);
    let (results_tx, mut results) = mpsc::channel(8);
    let timing = Timing { settle: Duration::from_millis(100), ..Timing::default() };
    let port = WritePort {
        commands,
        results: results_tx,
        allowed: BTreeMap::from([("master".to_string(), Allowed::new(&[]))]),
        counters: WriteCounters::default(),
        timing,
    };
    let (bus, mut updates) = broadcast::channel(64);
    let cancel = CancellationToken::new();
    let members = vec![member("master", 1), member("second", 2)];
    let task = tokio::spawn(poller::run_stack_with_writes(
        members,
        link(addr, fast_settings()),
        bus,
        Some(port),
        cancel.clone(),
    ));
    // Both polled once, so the master's identity and limits are known.
    let mut polled = std::collections::BTreeSet::new();
    while polled.len() < 2 {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.unwrap().unwrap();
        if matches!(update, poller::Update::Polled { .. }) {
            polled.insert(update.inverter().to_string());
        }
    }
    let command = |inverter: &str, identity: &str| Command {
        inverter: inverter.into(),
        key: "max_sell_power".into(),
        payload: "2000".into(),
        topic: format!("im/{inverter}/set/max_sell_power"),
        identity: identity.into(),
    };
    let mut next_result =
        async || tokio::time::timeout(Duration::from_secs(10), results.recv()).await.unwrap().unwrap();
    commands_tx.send(command("second", "2306178902")).await.unwrap();
    let refused = next_result().await;
    assert_eq!((refused.inverter.as_str(), refused.outcome), ("second", Outcome::Refused));
    // The identity gate: an entity announced for another serial does not set the master.
    commands_tx.send(command("master", "2306178902")).await.unwrap();
    let refused = next_result().await;
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(refused.reason.as_deref().unwrap().contains("belongs to `2306178902`"), "{refused:?}");
    commands_tx.send(command("master", "2306178901")).await.unwrap();
    let written = next_result().await;
    assert_eq!(written.outcome, Outcome::Written, "{written:?}");
    assert_eq!(units[0].writes(), vec![(143, vec![2000])], "one FC16 to the master's register 143");
    assert!(units[1].writes().is_empty(), "nothing to the other member");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_time_of_use_table_is_written_as_one_fc16_per_register_block() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::start(data.path(), true, &[]).await;
    // Slot 1's charge source keeps the bits above its mask.
    app.sim.sim.poke(274, 0xFF00);
    app.state_shows("program_1_charge_source", json!("None")).await;
    let table = json!([
        {"time": "00:00", "power": 3000, "soc": 80, "charge_source": "Grid"},
        {"time": "05:00", "power": 2500, "soc": 70},
        {"time": "09:00", "power": 2000, "soc": 60},
        {"time": "16:00", "power": 1500, "soc": 50},
        {"time": "20:00", "power": 1000, "soc": 40},
        {"time": "23:00", "power": 500, "soc": 30},
    ]);
    app.set("time_of_use", &table.to_string()).await;
    let result = app.result("time_of_use").await;
    assert_eq!(result["outcome"], json!("written"), "{result}");
    assert_eq!(result["read_back"]["program_4_start_time"], json!("16:00"));
    assert_eq!(result["read_back"]["program_1_charge_source"], json!("Grid"));
    let writes = app.sim.sim.writes();
    let times_and_powers = vec![0, 500, 900, 1600, 2000, 2300, 3000, 2500, 2000, 1500, 1000, 500];
    assert_eq!(writes, vec![(250, times_and_powers), (268, vec![80, 70, 60, 50, 40, 30, 0xFF01])]);
    app.state_shows("program_6_soc", json!(30)).await;

    // Out of order: refused whole, nothing written.
    let mut backwards = table.clone();
    backwards[2]["time"] = json!("04:00");
    tokio::time::sleep(Duration::from_secs(5)).await; // the per-key interval
    app.set("time_of_use", &backwards.to_string()).await;
    let result = app.result("time_of_use").await;
    assert_eq!(result["outcome"], json!("refused"), "{result}");
    assert_eq!(app.sim.sim.writes().len(), 2);
    app.stop().await;
}

/// The simulated inverter's clock stands at noon of 2026-11-27 while the host's runs on: a
/// drifting clock, set once and then left alone.
#[tokio::test]
async fn a_drifting_clock_gets_exactly_one_sync() {
    use chrono::{Datelike, Local, Timelike};
    use inverter_monitor::poller::{self, Poller};
    use inverter_monitor::profile::Profiles;
    use tokio::sync::broadcast;

    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut config = InverterConfig::new("house", "127.0.0.1", handle.addr.port(), SERIAL);
    (config.profile, config.clock_sync, config.interval) =
        ("deye_sg01lp1".into(), true, Duration::from_millis(100));
    let poller = Poller::for_inverter(&config, &Profiles::builtin().unwrap()).unwrap();
    let (bus, mut updates) = broadcast::channel(64);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(poller::run(
        poller,
        link(handle.addr, fast_settings()),
        config.interval,
        bus,
        cancel.clone(),
    ));
    let mut polls = 0;
    while polls < 20 {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.unwrap().unwrap();
        polls += usize::from(matches!(update, poller::Update::Polled { .. }));
    }
    cancel.cancel();
    task.await.unwrap();
    let writes = handle.sim.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let (addr, values) = &writes[0];
    assert_eq!((*addr, values.len()), (22, 3), "one FC16 of registers 22 to 24");
    let now = Local::now();
    assert_eq!(values[0], ((now.year() as u16 - 2000) << 8) | now.month() as u16);
    assert_eq!(values[1] >> 8, now.day() as u16);
    let set =
        i64::from(values[1] & 0xFF) * 3600 + i64::from(values[2] >> 8) * 60 + i64::from(values[2] & 0xFF);
    let host = i64::from(now.num_seconds_from_midnight());
    assert!((host - set).rem_euclid(86_400) < 60, "set to the host's local time: {set} vs {host}");
}
