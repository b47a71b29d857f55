//! Replay: a poll recorded from the simulator over real TCP, made into a day with faults,
//! replayed through the service's sinks to the embedded broker: no spike and no step back reaches
//! Home Assistant, nothing outside its range, the same values twice, a whole day with --fast.

use std::time::Duration;

use inverter_monitor::config::{Config, InverterConfig};
use inverter_monitor::poller::Poller;
use inverter_monitor::profile::Counter;
use inverter_monitor::record::{self, Poll};
use inverter_monitor::replay::{self, Pace, Report};
use inverter_monitor::sim::SimConfig;
use tokio_util::sync::CancellationToken;

use crate::broker::*;
use crate::helpers::*;

/// One poll of the simulator, recorded by a poller's tap over real TCP.
pub(crate) async fn recorded_poll() -> Poll {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (tap, mut polls) = record::Tap::new();
    let mut poller = Poller::new("house", profile(), Duration::from_secs(60), 3).recording(tap);
    let mut link = link(sim.addr, fast_settings());
    poll(&mut poller, &mut link, &sim.sim).await;
    polls.try_recv().expect("the poll was recorded")
}

/// The key and the two registers (low word first) of the profile's first total counter.
fn total_counter() -> (String, u16, u16) {
    let profile = profile();
    let spec = profile.readings.iter().find(|r| r.def.counter == Some(Counter::Total)).unwrap();
    (spec.def.key.clone(), spec.def.registers[0], spec.def.registers[1])
}

pub(crate) fn set(poll: &mut Poll, addr: u16, value: u16) {
    let block =
        poll.blocks.iter_mut().find(|b| addr >= b.start && usize::from(addr - b.start) < b.values.len());
    let block = block.expect("the counter is recorded");
    block.values[usize::from(addr - block.start)] = value;
}

fn get(poll: &Poll, addr: u16) -> u16 {
    poll.registers(addr, 1).unwrap()[0]
}

/// `n` polls a minute apart, the total counter rising 0.1 kWh a poll; at poll 10 its high word
/// jumps (+6553.6 kWh, a 65535-style spike), at poll 20 it reads 0 (a counter jumping back).
pub(crate) fn faulty_day(first: &Poll, n: usize) -> Vec<Poll> {
    let (_, low, high) = total_counter();
    let base = u32::from(get(first, high)) << 16 | u32::from(get(first, low));
    (0..n)
        .map(|i| {
            let mut poll = first.clone();
            poll.time = first.time + chrono::Duration::minutes(i as i64);
            poll.local = first.local + chrono::Duration::minutes(i as i64);
            let mut value = base + i as u32;
            if i == 10 {
                value += 1 << 16;
            }
            if i == 20 {
                value = 0;
            }
            set(&mut poll, low, value as u16);
            set(&mut poll, high, (value >> 16) as u16);
            poll
        })
        .collect()
}

fn config_with_mqtt(data_dir: &std::path::Path, base: &str) -> Config {
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    config.data_dir = data_dir.to_path_buf();
    config.mqtt = Some(mqtt_config(&unique("ha"), base, "replay"));
    config
}

/// The state messages one replay publishes, in order.
async fn states(observer: &mut Observer, topic: &str, report: &Report) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    for _ in 0..report.state_messages {
        seen.push(observer.wait_for("a state message", |s| s.topic == topic).await.json());
    }
    seen
}

#[tokio::test]
async fn a_faulty_day_reaches_home_assistant_without_a_spike_and_the_same_twice() {
    let day = faulty_day(&recorded_poll().await, 30);
    let dir = tempfile::tempdir().unwrap();
    let base = unique("im");
    let topic = format!("{base}/house/state");
    let config = config_with_mqtt(dir.path(), &base);
    let mut observer = Observer::new(std::slice::from_ref(&topic)).await;

    let first = replay::run(&config, day.clone(), Pace::Fast, CancellationToken::new()).await.unwrap();
    let published = states(&mut observer, &topic, &first).await;
    let second = replay::run(&config, day.clone(), Pace::Fast, CancellationToken::new()).await.unwrap();
    let again = states(&mut observer, &topic, &second).await;

    assert_eq!(first.polls, 30);
    assert_eq!(first.state_messages, 30 - first.failed);
    assert_eq!(first.rejected.get("max_change"), Some(&1), "the spike: {first}");
    assert_eq!(first.rejected.get("counter_backwards"), Some(&1), "the step back: {first}");
    assert!(first.counters_checked > 0);
    assert_eq!(Report { elapsed: first.elapsed, ..second.clone() }, first, "the same report twice");
    assert_eq!(published, again, "the same values twice");

    let (key, _, _) = total_counter();
    let profile = profile();
    let mut last = 0.0;
    for state in &published {
        let value = state[&key].as_f64().expect("the counter is always there, never unavailable");
        assert!(value >= last, "{key} went from {last} to {value}");
        assert!(value > 0.0, "no false zero");
        last = value;
        for spec in &profile.readings {
            if let Some(v) = state.get(&spec.def.key).and_then(serde_json::Value::as_f64) {
                assert_eq!(spec.def.out_of_range(v), None, "{} published out of range", spec.def.key);
            }
        }
    }
    let base_value = published[0][&key].as_f64().unwrap();
    assert!(last - base_value < 3.0 + 1e-6, "{key} rose {} kWh in 30 minutes", last - base_value);
}

/// A whole day with `--fast`: every poll replayed, nothing paced. How long it takes is a
/// figure for the replay report and the notes (release build), not a test on a shared machine.
#[tokio::test]
async fn a_day_at_60_s_replays_whole_with_fast() {
    let day = faulty_day(&recorded_poll().await, 1440);
    let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    let report = replay::run(&config, day, Pace::Fast, CancellationToken::new()).await.unwrap();
    assert_eq!(report.polls, 1440);
    assert_eq!(report.state_messages, 1440);
}

#[tokio::test]
async fn speed_keeps_the_recorded_gaps_shortened() {
    let day = faulty_day(&recorded_poll().await, 3);
    let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    // Two gaps of a minute at 600×: 200 ms.
    let report = replay::run(&config, day, Pace::Speed(600.0), CancellationToken::new()).await.unwrap();
    assert!(report.elapsed >= Duration::from_millis(200), "paced: {:?}", report.elapsed);
}
