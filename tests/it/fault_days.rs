//! Fault days (issue [10], "done means"): days made by the simulator's generator with every
//! fault injected, replayed with `--fast` through the service's own pipeline to the embedded
//! broker. What Home Assistant receives is captured and checked against the recording: no
//! counter decreases but the daily ones at the inverter's midnight, nothing outside its range,
//! no false zero, the same values twice, a restart that takes no spike or step back, and a
//! PV-only logger's night that is no outage and logs one line at each end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use inverter_monitor::config::{Config, InverterConfig};
use inverter_monitor::profile::{Counter, Profile, Profiles, RegisterBlock, RegisterSet};
use inverter_monitor::record::Poll;
use inverter_monitor::replay::{self, Pace, Report};
use inverter_monitor::sim::day::{Day, Fault, FaultDay};
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::broker::*;

fn profile(id: &str) -> Arc<Profile> {
    Profiles::builtin().unwrap().get(id).unwrap()
}

/// A fault day of `id` on the June solstice.
fn fault_day(id: &str, faults: &str) -> FaultDay {
    let day = Day { faults: faults.parse().unwrap(), ..Day::new(profile(id), solstice()) };
    day.polls().unwrap()
}

fn solstice() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 21).unwrap()
}

fn config_with_mqtt(data_dir: &std::path::Path, base: &str, prefix: &str) -> Config {
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, 1)]);
    config.data_dir = data_dir.to_path_buf();
    config.mqtt = Some(mqtt_config(prefix, base, "faultday"));
    config
}

/// What one replay sent to Home Assistant, and what it logged.
struct Published {
    report: Report,
    states: Vec<Json>,
    availability: Vec<String>,
    /// Device discovery messages.
    discovery: usize,
    log: String,
}

/// A log written to memory: the replay runs on this test's thread (a current-thread runtime),
/// so a thread-local subscriber sees every line of it and nothing of other tests.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One broker topic base per test, its observer, and its data dir.
struct Rig {
    config: Config,
    observer: Observer,
    state: String,
    availability: String,
    discovery: String,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = unique("im");
        let prefix = unique("ha");
        let (state, availability) = (format!("{base}/house/state"), format!("{base}/house/availability"));
        let filter = format!("{prefix}/device/+/config");
        let observer = Observer::new(&[state.clone(), availability.clone(), filter]).await;
        let config = config_with_mqtt(dir.path(), &base, &prefix);
        Self { config, observer, state, availability, discovery: format!("{prefix}/device/"), _dir: dir }
    }

    /// Replays `polls` at --fast (continuing from the last replay's totals with `resume`) and
    /// collects every state message it published, in order, with the availability between.
    async fn replay(&mut self, polls: &[Poll], resume: bool) -> Published {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let (config, polls, cancel) = (&self.config, polls.to_vec(), CancellationToken::new());
        let options = replay::Options { resume, capture: None };
        let report = replay::replay(config, polls, Pace::Fast, cancel, options).await.unwrap();
        drop(guard);
        let (mut states, mut availability, mut discovery) = (Vec::new(), Vec::new(), 0);
        while states.len() < report.state_messages {
            let (state, avail, device) = (&self.state, &self.availability, &self.discovery);
            let ours =
                |s: &Seen| s.topic == *state || s.topic == *avail || s.topic.starts_with(device.as_str());
            let seen = self.observer.wait_for("a state message", ours).await;
            if seen.topic == self.state {
                states.push(seen.json());
            } else if seen.topic == self.availability {
                availability.push(String::from_utf8_lossy(&seen.payload).to_string());
            } else {
                discovery += 1;
            }
        }
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        Published { report, states, availability, discovery, log }
    }
}

/// The recorded poll at each time stamp.
fn by_time(polls: &[Poll]) -> HashMap<DateTime<Utc>, &Poll> {
    polls.iter().map(|p| (p.time, p)).collect()
}

fn time_of(state: &Json) -> DateTime<Utc> {
    state["time"].as_str().unwrap().parse().unwrap()
}

/// The recorded registers of `poll`, decoded: what the inverter really said.
fn raw(profile: &Profile, poll: &Poll) -> HashMap<String, f64> {
    let mut regs = RegisterSet::new();
    for block in &poll.blocks {
        regs.insert(RegisterBlock { start: block.start, values: block.values.clone() });
    }
    let (readings, _) = profile.decode(&regs);
    readings
        .iter()
        .filter_map(|r| Some((profile.readings[r.index].def.key.clone(), r.value.as_f64()?)))
        .collect()
}

/// Every rule of "done means" but the restart, over the states one replay published.
fn assert_faithful(profile: &Profile, polls: &[Poll], states: &[Json]) {
    let recorded = by_time(polls);
    let local = |state: &Json| -> NaiveDateTime { recorded[&time_of(state)].local };
    for spec in &profile.readings {
        let (key, def) = (&spec.def.key, &spec.def);
        let mut last: Option<(f64, NaiveDateTime)> = None;
        for state in states {
            let Some(value) = state.get(key).and_then(Json::as_f64) else { continue };
            assert_eq!(def.out_of_range(value), None, "{key} = {value} published at {}", state["time"]);
            let at = local(state);
            if let (Some(counter), Some((before, then))) = (def.counter, last) {
                let midnight = then.date() != at.date();
                let allowed = counter == Counter::Daily && midnight;
                assert!(value >= before || allowed, "{key} went from {before} to {value} at {at}");
            }
            if def.counter == Some(Counter::Total) && last.is_some_and(|(before, _)| before > 0.0) {
                assert!(value > 0.0, "{key} published as 0 at {at} after {last:?}: a false zero");
            }
            if value == 0.0 && def.device_class.as_deref() == Some("power") {
                let poll = recorded[&time_of(state)];
                let raw = raw(profile, poll).get(key).copied();
                let night = poll.failed.is_some();
                let rejected = raw.is_some_and(|r| def.out_of_range(r).is_some());
                assert!(
                    night || rejected || raw.is_none_or(|r| r == 0.0),
                    "{key} published 0 W at {at} while the inverter read {raw:?}"
                );
            }
            last = Some((value, at));
        }
    }
}

#[tokio::test]
async fn a_micro_fault_day_reaches_home_assistant_faithfully_and_the_same_twice() {
    let day = fault_day("deye_micro", "all");
    let mut rig = Rig::new().await;
    let first = rig.replay(&day.polls, false).await;
    let second = rig.replay(&day.polls, false).await;

    assert_eq!(first.report.polls, 1440);
    let rejected = |rule: &str| first.report.rejected.get(rule).copied().unwrap_or(0);
    assert_eq!(rejected("range"), 2, "the measurement and the counter's high word: {}", first.report);
    assert_eq!(rejected("max_change"), 1, "the counter's low word: {}", first.report);
    assert_eq!(rejected("counter_backwards"), 1, "{}", first.report);
    assert_eq!(rejected("zero_frame"), 2, "{}", first.report);
    assert_faithful(&profile("deye_micro"), &day.polls, &first.states);
    assert_eq!(first.states, second.states, "the same recording publishes the same values");
    assert_eq!(Report { elapsed: first.report.elapsed, ..second.report.clone() }, first.report);
    // What the lead measures (release build): a day at --fast.
    println!("a micro fault day replayed with --fast in {:?}", first.report.elapsed);
}

#[tokio::test]
async fn a_hybrid_fault_day_with_the_inverters_midnight_off_utc_reaches_home_assistant_faithfully() {
    let day = fault_day("deye_sg01lp1", "spikes,zero-frames,counter-back,midnight-utc");
    let mut rig = Rig::new().await;
    let seen = rig.replay(&day.polls, false).await;
    assert_eq!(seen.report.polls, 1440);
    assert_eq!(seen.report.rejected.values().sum::<u64>(), 6, "every fault, once: {}", seen.report);
    assert_faithful(&profile("deye_sg01lp1"), &day.polls, &seen.states);
    // The daily counters did start over, at the inverter's midnight (14:00 UTC).
    let today: Vec<f64> = seen.states.iter().filter_map(|s| s["pv_energy_today"].as_f64()).collect();
    let resets = today.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(resets, 1, "one midnight in the day");
    assert!(seen.availability.iter().all(|a| a == "online"), "{:?}", seen.availability);
}

/// The day split at the poll of `fault`: the first part replayed, then the rest resumed with
/// the same data dir; and the rest alone, as a restart that kept nothing would take it.
async fn restart_at(fault: impl Fn(&Fault) -> bool, key: &str) -> (Published, Published, Published, f64) {
    let day = fault_day("deye_micro", "all");
    let at = day.injected.iter().find(|(_, f)| fault(f)).unwrap().0;
    let mut rig = Rig::new().await;
    let before = rig.replay(&day.polls[..at], false).await;
    let kept = before.states.iter().rev().find_map(|s| s[key].as_f64()).unwrap();
    let after = rig.replay(&day.polls[at..], true).await;
    let mut fresh = Rig::new().await;
    let forgetful = fresh.replay(&day.polls[at..], false).await;
    (before, after, forgetful, kept)
}

#[tokio::test]
async fn a_restart_right_before_a_step_back_or_a_spike_rejects_it() {
    let key = "pv_energy_total";
    for (fault, rule) in [
        ((|f: &Fault| matches!(f, Fault::CounterBack(..))) as fn(&Fault) -> bool, "counter_backwards"),
        (|f: &Fault| matches!(f, Fault::CounterSpike(a) if *a == 63), "max_change"),
    ] {
        let (_, after, forgetful, kept) = restart_at(fault, key).await;
        assert_eq!(after.report.rejected.get(rule), Some(&1), "{rule} after the restart: {}", after.report);
        for state in &after.states {
            if let Some(value) = state[key].as_f64() {
                assert!(value >= kept && value - kept < 5.0, "{key}: {kept} kept, then {value} published");
            }
        }
        // Without the kept totals, the same first poll is taken: the test can fail.
        assert_eq!(forgetful.report.rejected.get(rule), None, "{rule}: {}", forgetful.report);
        let taken = forgetful.states[0][key].as_f64().unwrap();
        assert!((taken - kept).abs() >= 5.0, "{rule}: the fault itself, {taken} against {kept}");
    }
}

#[tokio::test]
async fn a_pv_only_logger_asleep_at_night_is_no_outage_and_logs_one_line_at_each_end() {
    let day = fault_day("deye_micro", "midnight-utc,dark-night");
    let dark: Vec<&Poll> = day.polls.iter().filter(|p| p.failed.is_some()).collect();
    assert!(dark.len() > 600, "a night of polls: {}", dark.len());
    let mut rig = Rig::new().await;
    let seen = rig.replay(&day.polls, false).await;

    assert!(!seen.availability.iter().any(|a| a == "offline"), "{:?}", seen.availability);
    assert_eq!(seen.discovery, 1, "the device is announced once, not again at dusk or dawn");
    assert_eq!(seen.report.state_messages, 1440, "a state message for every poll, asleep or not");
    assert_eq!(seen.report.night, dark.len(), "the report counts the polls the night rule published");
    let recorded = by_time(&day.polls);
    let asleep: Vec<&Json> = seen.states.iter().filter(|s| recorded[&time_of(s)].failed.is_some()).collect();
    assert_eq!(asleep.len(), dark.len());
    let dusk = seen.states.iter().take_while(|s| recorded[&time_of(s)].failed.is_none()).last().unwrap();
    let total = dusk["pv_energy_total"].as_f64().unwrap();
    for state in &asleep {
        assert_eq!(state["pv_energy_total"].as_f64(), Some(total), "the total keeps its last value");
        assert_eq!(state["pv_power"].as_f64(), Some(0.0), "0 W while dark at night");
        assert!(
            state
                .get("grid_voltage")
                .is_none_or(|_| time_of(state) - time_of(dusk) <= chrono::TimeDelta::minutes(3))
        );
    }
    assert_faithful(&profile("deye_micro"), &day.polls, &seen.states);
    assert_eq!(seen.log.matches("the logger is dark").count(), 1, "{}", seen.log);
    assert_eq!(seen.log.matches("the logger is back").count(), 1, "{}", seen.log);
    assert!(!seen.log.contains("poll failed") && !seen.log.contains("unavailable"), "{}", seen.log);
}

#[test]
fn simulate_record_day_writes_the_generators_day_and_replay_fast_says_how_long_it_took() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("day.jsonl");
    let bin = crate::process::BIN;
    let status = std::process::Command::new(bin)
        .args(["simulate", "--record-day"])
        .arg(&out)
        .args(["--profile", "deye_micro", "--date", "2026-06-21", "--fault", "all", "--interval", "10m"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let written = inverter_monitor::record::read(&out).unwrap();
    let day = Day {
        faults: "all".parse().unwrap(),
        interval: chrono::TimeDelta::minutes(10),
        ..Day::new(profile("deye_micro"), solstice())
    };
    assert_eq!(written, day.polls().unwrap().polls, "the generator's day, in record's own lines");

    let config = dir.path().join("c.toml");
    let text = format!(
        "data_dir = {:?}\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nserial = 1\n",
        dir.path()
    );
    std::fs::write(&config, text).unwrap();
    let replayed = std::process::Command::new(bin)
        .arg("replay")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .arg("--fast")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(report.contains("polls replayed:    144 ") && report.contains("took:"), "{report}");
}

#[tokio::test]
async fn a_poll_the_logger_does_not_answer_is_recorded_as_failed_with_why() {
    // A port nothing listens on: the logger is away (or asleep).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], crate::process::free_port()));
    let (tap, mut polls) = inverter_monitor::record::Tap::new();
    let mut poller = inverter_monitor::poller::Poller::new(
        "micro",
        profile("deye_micro"),
        std::time::Duration::from_secs(60),
        3,
    )
    .recording(tap);
    let mut link = crate::helpers::link(addr, crate::helpers::fast_settings());
    let now = Utc::now();
    assert!(poller.poll_once(&mut link, now, now.naive_utc()).await.is_err());
    let recorded = polls.try_recv().expect("the failed poll was recorded");
    assert_eq!((recorded.time, recorded.profile.as_str(), recorded.blocks.len()), (now, "deye_micro", 0));
    let why = recorded.failed.expect("it says why");
    assert!(why.contains("127.0.0.1"), "{why}");
}
