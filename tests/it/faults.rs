//! The client against the simulator over real TCP, for every fault the simulator can inject:
//! every poll must still decode to exactly what the house model put in the registers.

use std::time::Duration;

use inverter_monitor::profile::load::parse;
use inverter_monitor::sim::{Faults, SimConfig, SimWire};
use inverter_monitor::transport::{Event, Link, Target, Transport, Wire};

use crate::helpers::*;

/// Polls `polls` times over V5 through a simulator with `faults`; every poll must match the model.
async fn polls_survive(faults: Faults, polls: usize) -> Link {
    let config = SimConfig { faults, ..SimConfig::new(SERIAL) };
    polls_survive_on(config, Wire::Solarman { serial: SERIAL }, polls).await
}

#[tokio::test]
async fn a_clean_logger_gives_every_reading_in_three_reads_on_one_connection() {
    let link = polls_survive(Faults::default(), 3).await;
    let c = link.counters();
    assert_eq!(c.get(Event::Connect), 1, "one persistent connection");
    assert_eq!(c.iter().filter(|(e, n)| *e != Event::Connect && *n > 0).count(), 0, "{c:?}");
}

#[tokio::test]
async fn split_answers_are_reassembled() {
    let link = polls_survive(Faults { split: true, ..Faults::default() }, 2).await;
    assert_eq!(link.counters().get(Event::Retry), 0);
}

#[tokio::test]
async fn heartbeats_with_our_sequence_number_are_skipped() {
    let link = polls_survive(Faults { heartbeat: true, ..Faults::default() }, 2).await;
    assert!(link.counters().get(Event::Heartbeat) >= 2);
    assert_eq!(link.counters().get(Event::Retry), 0);
}

#[tokio::test]
async fn junk_before_frames_is_skipped() {
    let link = polls_survive(Faults { garbage_every: Some(2), ..Faults::default() }, 2).await;
    assert!(link.counters().get(Event::JunkBytes) >= 39);
    assert_eq!(link.counters().get(Event::Retry), 0);
}

#[tokio::test]
async fn the_double_crc_bug_is_tolerated() {
    let link = polls_survive(Faults { double_crc: true, ..Faults::default() }, 2).await;
    assert_eq!(link.counters().get(Event::DoubleCrc), 6);
}

#[tokio::test]
async fn a_damaged_crc_is_asked_again_and_never_decoded() {
    let link = polls_survive(Faults { bad_crc_every: Some(2), ..Faults::default() }, 3).await;
    let c = link.counters();
    assert!(c.get(Event::Crc) >= 3, "{c:?}");
    assert_eq!(c.get(Event::Crc), c.get(Event::Retry));
}

#[tokio::test]
async fn dropped_connections_are_reopened_and_the_request_sent_again() {
    let link = polls_survive(Faults { drop_every: Some(4), ..Faults::default() }, 3).await;
    let c = link.counters();
    assert!(c.get(Event::Closed) >= 2, "{c:?}");
    assert_eq!(c.get(Event::Connect), c.get(Event::Closed) + 1);
}

#[tokio::test]
async fn a_slow_logger_is_waited_for() {
    polls_survive(Faults { delay: Duration::from_millis(150), ..Faults::default() }, 1).await;
}

#[tokio::test]
async fn every_fault_at_once() {
    let faults = Faults {
        split: true,
        heartbeat: true,
        delay: Duration::from_millis(5),
        drop_every: Some(5),
        bad_crc_every: Some(3),
        garbage_every: Some(2),
        double_crc: true,
        // Not a fault a poll survives: a logger that speaks only AT text is the wrong protocol.
        at_text: false,
    };
    polls_survive(faults, 4).await;
}

/// A logger that answers after 400 ms, and a link that waits 100 ms and sends `retries` more.
async fn slower_than_the_timeout(retries: u32) -> (SimHandle, Link) {
    let config = SimConfig {
        faults: Faults { delay: Duration::from_millis(400), ..Faults::default() },
        ..SimConfig::new(SERIAL)
    };
    let handle = spawn_sim(config, profile()).await;
    let settings = inverter_monitor::transport::LinkSettings {
        read_timeout: Duration::from_millis(100),
        retries,
        ..fast_settings()
    };
    let link = link(handle.addr, settings);
    (handle, link)
}

#[tokio::test]
async fn a_logger_slower_than_the_timeout_fails_the_poll_with_a_timeout() {
    let (_handle, mut link) = slower_than_the_timeout(1).await;
    let now = noon();
    let error = poller(profile()).poll_once(&mut link, now, now.naive_utc()).await.unwrap_err();
    assert_eq!(error.to_string(), "no answer within 100ms");
    assert_eq!(link.counters().get(Event::Timeout), 2);
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_not_sent_again() {
    let (handle, mut link) = slower_than_the_timeout(2).await;
    let write = inverter_monitor::protocol::Request::WriteMultiple { addr: 245, values: vec![3000] };
    let error = link.call(&write).await.unwrap_err();
    assert_eq!(error.to_string(), "no answer within 100ms");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handle.sim.writes().len(), 1, "one FC16, not one per retry: {:?}", handle.sim.writes());
    assert_eq!((link.counters().get(Event::Timeout), link.counters().get(Event::Retry)), (1, 0));
}

#[tokio::test]
async fn a_wrong_serial_is_reported_with_the_loggers_real_one() {
    let handle = spawn_sim(SimConfig::new(SERIAL + 1), profile()).await;
    let mut link = link(handle.addr, fast_settings());
    let now = noon();
    let error = poller(profile()).poll_once(&mut link, now, now.naive_utc()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "logger serial mismatch: expected 2712345678, the logger says it is 2712345679 (set serial = 2712345679)"
    );
}

#[tokio::test]
async fn modbus_tcp_reads_the_same_values() {
    let profile = profile();
    let config = SimConfig { wire: SimWire::ModbusTcp, ..SimConfig::new(SERIAL) };
    let handle = spawn_sim(config, profile.clone()).await;
    let target =
        Target { host: "127.0.0.1".into(), port: handle.addr.port(), wire: Wire::ModbusTcp, slave: 1 };
    let mut link = Link::new(target, fast_settings());
    let snapshot = poll(&mut poller(profile), &mut link, &handle.sim).await;
    assert_matches_model(&snapshot, &handle.sim);
}

#[tokio::test]
async fn a_refused_bridged_read_is_split_into_the_runs_it_bridged() {
    let text = r#"
[profile]
id = "gappy"
manufacturer = "Deye"
model = "M"
max_gap = 40

[[reading]]
key = "a"
name = "A"
group = "g"
registers = [184]
kind = "u16"

[[reading]]
key = "b"
name = "B"
group = "g"
registers = [210]
kind = "u16"
"#;
    let profile = std::sync::Arc::new(parse(text, "gappy.toml", Some("gappy")).unwrap());
    let config = SimConfig { refuse: vec![200], ..SimConfig::new(SERIAL) };
    let handle = spawn_sim(config, profile.clone()).await;
    let mut link = link(handle.addr, fast_settings());
    let mut poller = poller(profile);
    assert_eq!(poller.plan().len(), 1, "184..=210 is one bridged read");
    let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
    assert_eq!(snapshot.readings.len(), 2);
    assert_eq!(poller.plan().len(), 2, "the plan remembers the split");
    assert_eq!(link.counters().get(Event::Exception), 1);
}

#[tokio::test]
async fn reads_beyond_the_inverters_registers_are_an_answer_not_a_failure() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut link = link(handle.addr, fast_settings());
    let request = inverter_monitor::protocol::Request::ReadHolding { addr: 2000, count: 4 };
    let answer = link.call(&request).await.unwrap();
    assert!(answer.is_err(), "{answer:?}");
}

#[tokio::test]
async fn daily_counters_reset_at_the_inverters_midnight_whatever_the_hosts_time_zone() {
    use chrono::{TimeDelta, TimeZone, Utc};
    use inverter_monitor::profile::Value;
    use inverter_monitor::sim::SimClock;

    // 23:58 in the house (UTC+2) is 21:58 UTC: a host on UTC is nowhere near its own midnight.
    let before = Utc.with_ymd_and_hms(2026, 11, 27, 21, 58, 0).unwrap();
    let config = SimConfig { clock: SimClock::Fixed(before), ..SimConfig::new(SERIAL) };
    let handle = spawn_sim(config, profile()).await;
    let mut link = link(handle.addr, fast_settings());
    let mut poller = poller(profile());
    let load_today =
        |s: &inverter_monitor::poller::Snapshot| s.get("load_energy_today").and_then(Value::as_f64);
    let first = poller.poll_once(&mut link, before, before.naive_utc()).await.unwrap();
    let after = before + TimeDelta::minutes(4);
    handle.sim.set_time(after);
    let second = poller.poll_once(&mut link, after, after.naive_utc()).await.unwrap();
    assert!(second.rejected.is_empty(), "rejected: {:?}", second.rejected);
    let (yesterday, today) = (load_today(&first).unwrap(), load_today(&second).unwrap());
    assert!(today < yesterday, "the daily counter reset: {yesterday} -> {today}");
}
