//! Raw Modbus RTU end to end: over TCP to the simulator playing a transparent RS485 gateway,
//! and on a pseudo-terminal through the real serial code path (`protocol = "serial"`), with the
//! faults each transport meets. Every poll must decode to exactly what the house model put in
//! the registers.

use std::sync::Arc;

use inverter_monitor::config::{InverterConfig, Protocol};
use inverter_monitor::sim::{self, Faults, Pty, SimClock, SimConfig, SimWire, Simulator};
use inverter_monitor::transport::{Event, Link, Parity, SerialLine, Target, Transport, Wire};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::process::{BIN, terminate};

/// Polls `polls` times over RTU-over-TCP through a simulator with `faults`.
async fn rtu_over_tcp_survives(faults: Faults, polls: usize) -> Link {
    let config = SimConfig { wire: SimWire::RtuOverTcp, faults, ..SimConfig::new(SERIAL) };
    polls_survive_on(config, Wire::RtuOverTcp, polls).await
}

#[tokio::test]
async fn a_clean_gateway_gives_every_reading_on_one_connection() {
    let link = rtu_over_tcp_survives(Faults::default(), 2).await;
    let c = link.counters();
    assert_eq!(c.get(Event::Connect), 1);
    assert_eq!(c.iter().filter(|(e, n)| *e != Event::Connect && *n > 0).count(), 0, "{c:?}");
}

#[tokio::test]
async fn split_answers_from_a_gateway_are_reassembled() {
    let link = rtu_over_tcp_survives(Faults { split: true, ..Faults::default() }, 2).await;
    assert_eq!(link.counters().get(Event::Retry), 0);
}

#[tokio::test]
async fn junk_before_rtu_answers_is_skipped_without_a_retry() {
    let link = rtu_over_tcp_survives(Faults { garbage_every: Some(2), ..Faults::default() }, 2).await;
    let c = link.counters();
    assert!(c.get(Event::JunkBytes) >= 39, "{c:?}");
    assert_eq!(c.get(Event::Retry), 0, "{c:?}");
}

#[tokio::test]
async fn a_damaged_rtu_crc_is_asked_again_and_never_decoded() {
    let link = rtu_over_tcp_survives(Faults { bad_crc_every: Some(2), ..Faults::default() }, 3).await;
    let c = link.counters();
    assert!(c.get(Event::Crc) >= 3, "{c:?}");
    assert_eq!(c.get(Event::Crc), c.get(Event::Retry));
}

#[tokio::test]
async fn a_gateway_that_drops_the_connection_is_reconnected() {
    let link = rtu_over_tcp_survives(Faults { drop_every: Some(4), ..Faults::default() }, 3).await;
    let c = link.counters();
    assert!(c.get(Event::Closed) >= 2, "{c:?}");
    assert_eq!(c.get(Event::Connect), c.get(Event::Closed) + 1);
}

#[tokio::test]
async fn every_rtu_fault_at_once() {
    let faults = Faults {
        split: true,
        drop_every: Some(5),
        bad_crc_every: Some(3),
        garbage_every: Some(2),
        double_crc: true,
        ..Faults::default()
    };
    rtu_over_tcp_survives(faults, 3).await;
}

#[tokio::test]
async fn a_wrong_slave_id_gets_no_answer_and_fails_with_a_timeout() {
    let config = SimConfig { wire: SimWire::RtuOverTcp, ..SimConfig::new(SERIAL) };
    let handle = spawn_sim(config, profile()).await;
    let target =
        Target { host: "127.0.0.1".into(), port: handle.addr.port(), wire: Wire::RtuOverTcp, slave: 7 };
    let settings = inverter_monitor::transport::LinkSettings {
        read_timeout: std::time::Duration::from_millis(100),
        retries: 0,
        ..fast_settings()
    };
    let mut link = Link::new(target, settings);
    let request = inverter_monitor::protocol::Request::ReadHolding { addr: 0, count: 1 };
    let error = link.call(&request).await.unwrap_err();
    assert_eq!(error.to_string(), "no answer within 100ms");
}

/// A simulator serving RTU on a fresh pseudo-terminal; the path is the client's device.
struct PtySim {
    path: String,
    sim: Arc<Simulator>,
    stop: CancellationToken,
}

impl Drop for PtySim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn spawn_pty_sim(faults: Faults) -> PtySim {
    init_log();
    let config = SimConfig { faults, clock: SimClock::Fixed(noon()), ..SimConfig::new(SERIAL) };
    let sim = Arc::new(Simulator::new(config, profile()));
    let pty = Pty::open().unwrap();
    let path = pty.path().to_string();
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve_pty(pty, sim.clone(), stop.clone()));
    PtySim { path, sim, stop }
}

/// The inverter as a user configures it: `protocol = "serial"`, `device` = the pty.
fn serial_inverter(device: &str) -> InverterConfig {
    let mut inverter = InverterConfig::new("usb", "", 0, 0);
    inverter.protocol = Protocol::Serial;
    inverter.device = Some(device.into());
    inverter.baud = 9600;
    inverter
}

#[tokio::test]
async fn serial_reads_every_reading_from_a_pseudo_terminal() {
    let handle = spawn_pty_sim(Faults::default());
    let inverter = serial_inverter(&handle.path);
    let target = inverter.target();
    let line = SerialLine { device: handle.path.clone(), baud: 9600, parity: Parity::None, stop_bits: 1 };
    assert_eq!(target.wire, Wire::Serial(line));
    let mut link = Link::new(target, fast_settings());
    let mut poller = poller(profile());
    for _ in 0..2 {
        let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
        assert_matches_model(&snapshot, &handle.sim);
    }
    assert_eq!(link.counters().get(Event::Connect), 1, "the port stays open between polls");
}

#[tokio::test]
async fn serial_survives_junk_split_answers_bad_crcs_and_silence() {
    let faults = Faults {
        split: true,
        garbage_every: Some(2),
        bad_crc_every: Some(3),
        // On a serial line a dropped "connection" is an answer that never comes.
        drop_every: Some(5),
        ..Faults::default()
    };
    let handle = spawn_pty_sim(faults);
    let settings = inverter_monitor::transport::LinkSettings {
        read_timeout: std::time::Duration::from_millis(300),
        ..fast_settings()
    };
    let mut link = Link::new(serial_inverter(&handle.path).target(), settings);
    let mut poller = poller(profile());
    for _ in 0..3 {
        let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
        assert_matches_model(&snapshot, &handle.sim);
    }
    let c = link.counters();
    assert!(c.get(Event::Crc) >= 1 && c.get(Event::Timeout) >= 1 && c.get(Event::JunkBytes) >= 39, "{c:?}");
    // A timeout reopens the port: the serial "reconnect".
    assert_eq!(c.get(Event::Connect), c.get(Event::Timeout) + 1, "{c:?}");
}

#[tokio::test]
async fn a_missing_serial_device_is_named_in_the_error_and_backs_off() {
    let mut link = Link::new(serial_inverter("/dev/no-such-adapter").target(), fast_settings());
    let request = inverter_monitor::protocol::Request::ReadHolding { addr: 0, count: 1 };
    let error = link.call(&request).await.unwrap_err().to_string();
    assert!(error.starts_with("cannot open serial port /dev/no-such-adapter: "), "{error}");
    let again = link.call(&request).await.unwrap_err().to_string();
    assert!(again.starts_with("logger unreachable (1 failed connects)"), "{again}");
    assert_eq!(link.counters().get(Event::ConnectFailure), 1);
}

/// Runs the binary off the async runtime: (exit ok, stdout, stderr).
async fn run(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new(BIN).args(&args).output().unwrap())
            .await
            .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// `read --json` output: every reading of the SG01LP1 profile, battery SOC among them.
fn assert_every_reading(stdout: &str) {
    let readings: Vec<serde_json::Value> = serde_json::from_str(stdout).unwrap();
    assert_eq!(readings.len(), profile().readings.len());
    assert!(readings.iter().any(|r| r["key"] == "battery_soc" && r["value"].is_number()), "{stdout}");
}

#[tokio::test]
async fn read_over_rtu_over_tcp_through_junk() {
    let config = SimConfig {
        wire: SimWire::RtuOverTcp,
        faults: Faults { garbage_every: Some(2), split: true, ..Faults::default() },
        ..SimConfig::new(SERIAL)
    };
    let handle = spawn_sim(config, profile()).await;
    let logger = handle.addr.to_string();
    let (ok, stdout, stderr) =
        run(&["read", "--protocol", "rtu-over-tcp", "--logger", &logger, "--json"]).await;
    assert!(ok, "{stderr}");
    assert_every_reading(&stdout);
}

#[tokio::test]
async fn read_over_serial_from_simulate_pty() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRS485");
    let mut simulator = std::process::Command::new(BIN)
        .args(["simulate", "--pty", link.to_str().unwrap(), "--garbage-every", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = simulator.stdout.take().unwrap();
    let device = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line.trim().to_string()
    })
    .await
    .unwrap();
    assert!(device.starts_with("/dev/"), "simulate --pty prints the device: {device:?}");
    assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some(device.as_str()));
    let through_link = link.to_str().unwrap();
    let (ok, stdout, stderr) =
        run(&["read", "--protocol", "serial", "--device", through_link, "--baud", "19200", "--json"]).await;
    terminate(&simulator);
    let _ = tokio::task::spawn_blocking(move || simulator.wait()).await;
    assert!(ok, "{stderr}");
    assert_every_reading(&stdout);
    assert!(!link.exists(), "the simulator removes its link when it stops");
}

#[tokio::test]
async fn read_says_what_a_serial_read_is_missing() {
    let (ok, _, stderr) = run(&["read", "--protocol", "serial"]).await;
    assert!(!ok);
    assert_eq!(stderr.trim(), "error: --device is required for --protocol serial, e.g. /dev/ttyUSB0");
    let (ok, _, stderr) = run(&["read", "--protocol", "rtu-over-tcp"]).await;
    assert!(!ok);
    assert_eq!(stderr.trim(), "error: --logger HOST:PORT is required, the logger's or the gateway's address");
    let (ok, _, stderr) = run(&["read", "--protocol", "serial", "--device", "/dev/no-such-adapter"]).await;
    assert!(!ok);
    assert!(stderr.contains("cannot open serial port /dev/no-such-adapter"), "{stderr}");
}
