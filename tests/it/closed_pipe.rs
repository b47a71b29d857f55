//! `inverter-monitor … | head`: every command that prints stops quietly, with success, when the
//! reader of its stdout has gone, instead of panicking with "failed printing to stdout".
//!
//! Each test hands the binary a pipe whose read end is already closed (or closes it after the
//! first line), so the first write after that fails with EPIPE every time: no race with the
//! reader.

use std::io::{BufRead, BufReader, PipeReader, PipeWriter};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use inverter_monitor::sim::SimConfig;

use crate::helpers::*;
use crate::process::BIN;

/// Runs the binary with `args`, its stdout the write end of `pipe`; returns its output once it
/// has exited (within `limit`, or the test fails).
fn run_into(args: &[&str], stdout: PipeWriter, limit: Duration) -> Output {
    let child = Command::new(BIN).args(args).stdout(stdout).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < limit, "{args:?} took {:?}", started.elapsed());
    output
}

/// Asserts a quiet, successful exit: no panic, no error, nothing said about the pipe.
fn assert_quiet(args: &[&str], output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{args:?}: {stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{args:?}: {stderr}");
}

/// A pipe whose reader is already gone.
fn closed_pipe() -> PipeWriter {
    let (reader, writer): (PipeReader, PipeWriter) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[tokio::test]
async fn read_and_read_json_stop_quietly_on_a_closed_pipe() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let logger = sim.addr.to_string();
    for json in [false, true] {
        let mut args = vec!["read", "--logger", &logger, "--serial", "2712345678"];
        args.extend(json.then_some("--json"));
        let before = sim.sim.requests();
        let owned: Vec<String> = args.iter().map(ToString::to_string).collect();
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = owned.iter().map(String::as_str).collect();
            run_into(&args, closed_pipe(), Duration::from_secs(20))
        })
        .await
        .unwrap();
        assert_quiet(&args, &output);
        assert!(sim.sim.requests() > before, "{args:?} read the logger before it printed");
    }
}

#[test]
fn check_config_stops_quietly_on_a_closed_pipe() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/inverter-monitor.toml");
    let args = ["check-config", example];
    assert_quiet(&args, &run_into(&args, closed_pipe(), Duration::from_secs(20)));
}

#[test]
fn the_demo_stops_quietly_when_its_reader_goes_after_the_first_line() {
    let (reader, writer) = std::io::pipe().unwrap();
    let args = ["demo", "--interval", "100ms"];
    let child = Command::new(BIN).args(args).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(reader).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("demo · deye_sg01lp1 · "), "{first}");
    // `| head -1`: the reader has its line and goes; the next table meets a closed pipe.
    drop(lines);
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "the demo went on for {:?}", started.elapsed());
    assert_quiet(&args, &output);
}

#[tokio::test]
async fn healthcheck_stops_quietly_on_a_closed_pipe() {
    use inverter_monitor::config::{Config, HttpConfig, InverterConfig};
    use inverter_monitor::service::{self, Console};
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.request_pause = Duration::from_millis(1);
    let mut config = Config::new(vec![inverter]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let url = format!("http://{}/healthz", running.http.unwrap());
    let service = tokio::spawn(supervised(running));
    // Healthy once the first poll is in: only then does the command print.
    for _ in 0..200 {
        if inverter_monitor::web::probe(&url, Duration::from_secs(1)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = ["healthcheck".to_string(), "--url".to_string(), url];
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_into(&args, closed_pipe(), Duration::from_secs(20));
        assert_quiet(&args, &output);
    });
    output.await.unwrap();
    cancel.cancel();
    service.await.unwrap();
}
