//! The command line as a user runs it: the real binary, a simulator on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inverter_monitor::sim::SimConfig;

use crate::helpers::*;
use crate::process::{BIN, free_port, output_env, terminate, wait_for_port};

/// Runs the binary off the async runtime and returns (exit ok, stdout, stderr).
async fn run(args: Vec<String>) -> (bool, String, String) {
    let output =
        tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().unwrap()).await.unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn read_json_prints_every_reading_with_its_registers() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let logger = handle.addr.to_string();
    let (ok, stdout, stderr) =
        run(args(&["read", "--logger", &logger, "--serial", "2712345678", "--json"])).await;
    assert!(ok, "{stderr}");
    let readings: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(readings.len(), profile().readings.len());
    let by_key = |key: &str| readings.iter().find(|r| r["key"] == key).unwrap().clone();
    let import = by_key("grid_import_total");
    assert_eq!(import["registers"], serde_json::json!([78, 80]));
    assert_eq!(import["unit"], "kWh");
    assert!(import["value"].is_number());
    assert_eq!(by_key("running_state")["value"], "Normal");
    assert_eq!(by_key("inverter_serial")["value"], "2306178901");
    assert_eq!(by_key("grid_connected")["value"], true);
    assert_eq!(by_key("device_type")["name"], "Device type");
}

#[tokio::test]
async fn read_prints_a_table() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (ok, stdout, _) =
        run(args(&["read", "--logger", &handle.addr.to_string(), "--serial", "2712345678"])).await;
    assert!(ok);
    assert!(stdout.contains("[battery]") && stdout.contains("battery_soc"), "{stdout}");
    assert!(stdout.contains("159 readings in 3 reads"), "{stdout}");
}

/// Runs the binary with `env` set and NO_COLOR and COLUMNS otherwise unset; (ok, stdout, stderr).
async fn run_with(args: Vec<String>, env: &'static [(&'static str, &'static str)]) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(BIN);
        command.args(&args).env_remove("NO_COLOR").env_remove("COLUMNS").envs(env.iter().copied());
        command.output().unwrap()
    })
    .await
    .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn read_fits_columns_and_writes_no_escape_codes_with_no_color() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    // Without --serial `read` logs the serial it learns: stderr has a log line to colour.
    let (ok, stdout, stderr) = run_with(
        args(&["read", "--logger", &handle.addr.to_string()]),
        &[("NO_COLOR", "1"), ("COLUMNS", "60")],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("the logger's serial is 2712345678"), "{stderr}");
    assert!(!stdout.contains('\x1b') && !stderr.contains('\x1b'), "{stdout}{stderr}");
    for line in stdout.lines() {
        assert!(line.chars().count() <= 60, "{} columns: {line:?}", line.chars().count());
    }
    assert!(
        stdout.starts_with("profile deye_sg01lp1, detected from device type 0x0003 (2\n  MPPT"),
        "{stdout}"
    );
    assert!(!stdout.contains("battery_soc"), "no room for the key column at 60: {stdout}");
    assert!(stdout.contains(" Single-phase hybrid\n"), "values are whole: {stdout}");
    assert!(stdout.contains("159 readings in 3 reads"), "{stdout}");
}

#[tokio::test]
async fn read_into_a_pipe_keeps_whole_lines_and_writes_no_escape_codes() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (ok, stdout, stderr) = run_with(args(&["read", "--logger", &handle.addr.to_string()]), &[]).await;
    assert!(ok, "{stderr}");
    // Not a terminal: tracing would colour its lines by default, and the table clear nothing.
    assert!(stderr.contains("the logger's serial is 2712345678"), "{stderr}");
    assert!(!stdout.contains('\x1b') && !stderr.contains('\x1b'), "{stdout}{stderr}");
    assert!(!stdout.contains('…'), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  Communication board firmware ") && l.ends_with(" comm_board_firmware"))
    );
}

/// Runs `read` with stdout on a new pseudo-terminal, as at a user's terminal (one that does not
/// say its width), and returns what reached the terminal.
async fn read_on_a_terminal(logger: String, no_color: bool) -> String {
    use tokio::io::AsyncReadExt;
    use tokio_serial::SerialPort;
    let (mut master, slave) = tokio_serial::SerialStream::pair().unwrap();
    let tty = std::fs::OpenOptions::new().write(true).open(slave.name().unwrap()).unwrap();
    let mut command = Command::new(BIN);
    command.args(["read", "--logger", &logger, "--serial", "2712345678"]);
    command.env_remove("NO_COLOR").env_remove("COLUMNS").stdout(tty).stderr(Stdio::null());
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let mut child = command.spawn().unwrap();
    let (mut out, mut buf, deadline) = (Vec::new(), [0u8; 4096], Instant::now() + Duration::from_secs(30));
    // Read while it writes (a terminal's buffer is small); stop once it is gone and all is read.
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(300), master.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ if child.try_wait().unwrap().is_some() => break,
            _ => {}
        }
    }
    assert!(child.wait().unwrap().success());
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn read_on_a_terminal_is_coloured_unless_no_color_and_fits_80_columns() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let coloured = read_on_a_terminal(handle.addr.to_string(), false).await;
    assert!(coloured.contains("\x1b[1m[battery]\x1b[0m"), "{coloured}");
    let plain = read_on_a_terminal(handle.addr.to_string(), true).await;
    assert!(plain.contains("[battery]") && !plain.contains('\x1b'), "{plain}");
    for line in plain.lines() {
        assert!(line.trim_end_matches('\r').chars().count() <= 80, "{line:?}");
    }
}

/// `read` of the logger at `logger` with `RUST_LOG` set: its stderr, after it succeeded.
async fn read_logging(logger: &str, rust_log: &str) -> String {
    let serial = SERIAL.to_string();
    let (ok, _, stderr) =
        output_env(&["read", "--logger", logger, "--serial", &serial], &[("RUST_LOG", rust_log)]).await;
    assert!(ok, "{stderr}");
    stderr
}

#[tokio::test]
async fn rust_log_filters_by_target_and_a_filter_it_cannot_read_is_named_not_obeyed() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let logger = handle.addr.to_string();
    let everything = read_logging(&logger, "info").await;
    assert!(
        everything.contains("inverter_monitor::transport::link") && everything.contains("detected"),
        "{everything}"
    );
    let poller_only = read_logging(&logger, "inverter_monitor::poller=info,warn").await;
    assert!(poller_only.contains("inverter_monitor::poller::detection"), "{poller_only}");
    assert!(!poller_only.contains("transport::link"), "only the poller's lines: {poller_only}");
    // A span filter is refused, with a warning, and the command's own level applies: `info`
    // would have shown the transport's line.
    let span = read_logging(&logger, "info,[poll_once{inverter=read}]=trace").await;
    assert!(span.contains("warning: RUST_LOG is ignored, `info,[poll_once{inverter=read}]=trace`"), "{span}");
    assert!(span.contains("filters by span or field"), "{span}");
    assert!(!span.contains("transport::link"), "RUST_LOG was not obeyed: {span}");
}

#[tokio::test]
async fn read_fails_clearly_when_nothing_listens() {
    let logger = format!("127.0.0.1:{}", free_port());
    let (ok, _, stderr) = run(args(&["read", "--logger", &logger, "--serial", "1"])).await;
    assert!(!ok);
    let detecting = format!(
        "error: reading {logger} failed: cannot choose the profile: reading the device type (registers 0-22) \
         failed: cannot connect to {logger}: "
    );
    assert!(stderr.starts_with(&detecting), "{stderr}");
    assert_eq!(stderr.matches("cannot connect").count(), 1, "the cause prints once: {stderr}");
    let named = run(args(&["read", "--logger", &logger, "--serial", "1", "--profile", "deye_sg01lp1"])).await;
    assert!(
        named.2.starts_with(&format!("error: reading {logger} failed: cannot connect to {logger}")),
        "{}",
        named.2
    );
}

#[tokio::test]
async fn read_fails_clearly_when_the_logger_answers_garbage() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let logger = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {
                    let _ = socket.write_all(b"AT+YZCMPVER=MW3_16U_5406_2.27\r\n\r\n").await;
                }
            });
        }
    });
    let (ok, _, stderr) =
        run(args(&["read", "--logger", &logger, "--serial", "1", "--timeout", "200ms"])).await;
    assert!(!ok);
    // Text and never a V5 frame: the logger speaks another protocol, and the error says so.
    assert!(stderr.contains("answers the AT text protocol, not Solarman V5"), "{stderr}");
}

#[tokio::test]
async fn check_config_accepts_the_example_and_names_the_bad_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/inverter-monitor.toml");
    let (ok, stdout, _) = run(args(&["check-config", example])).await;
    assert!(ok && stdout.contains("ok (1 inverter(s): house)"), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[inverter]]\nname = \"house\"\nhost = \"h\"\n").unwrap();
    let (ok, stdout, stderr) = run(args(&["check-config", bad.to_str().unwrap()])).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("inverter house: no serial; it will be learned from the logger"), "{stdout}");
    std::fs::write(&bad, "[[inverter]]\nname = \"house\"\nhost = \"h\"\nslave_id = 0\n").unwrap();
    let (ok, _, stderr) = run(args(&["check-config", bad.to_str().unwrap()])).await;
    assert!(!ok);
    assert!(stderr.contains("bad.toml: inverter[0].slave_id: 0 is outside"), "{stderr}");
}

#[tokio::test]
async fn an_inverter_named_like_a_service_device_fails_check_config_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weather.toml");
    std::fs::write(&file, "[[inverter]]\nname = \"weather\"\nhost = \"h\"\nserial = 1\n").unwrap();
    let file = file.to_str().unwrap();
    for command in [vec!["check-config", file], vec!["run", "--config", file]] {
        let (ok, _, stderr) = run(args(&command)).await;
        assert!(!ok, "{command:?} accepted it");
        assert!(
            stderr.contains("weather.toml: inverter[0].name: `weather` is reserved"),
            "{command:?}: {stderr}"
        );
    }
}

#[test]
fn simulate_serves_read_with_fault_flags() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut sim = Command::new(BIN)
        .args([
            "simulate",
            "--listen",
            &listen,
            "--split",
            "--heartbeat",
            "--double-crc",
            "--garbage-every",
            "2",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(&listen);
    let output = Command::new(BIN)
        .args(["read", "--logger", &listen, "--serial", "2712345678", "--json"])
        .output()
        .unwrap();
    terminate(&sim);
    assert!(sim.wait().unwrap().success(), "simulate exits cleanly on SIGTERM");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let readings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(readings.len(), 159);
}

#[test]
fn the_bare_binary_runs_the_demo_and_stops_on_sigterm() {
    let mut demo = Command::new(BIN).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("demo · deye_sg01lp1 · "), "{first}");
    let table: Vec<String> = lines
        .by_ref()
        .take_while(|l| !l.as_ref().unwrap().contains("battery_soc"))
        .map(Result::unwrap)
        .collect();
    assert!(table.iter().any(|l| l.contains("pv1_power")), "{table:?}");
    terminate(&demo);
    let started = Instant::now();
    assert!(demo.wait().unwrap().success());
    assert!(started.elapsed() < Duration::from_secs(6));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut demo.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("demo over. Your own logger: `inverter-monitor discover`"), "{stderr}");
    assert!(stderr.contains("demo: the status page is at http://127.0.0.1:"), "{stderr}");
}

#[test]
fn the_demo_serves_the_status_page_of_the_simulated_house() {
    let http = format!("127.0.0.1:{}", free_port());
    let mut demo = Command::new(BIN)
        .args(["demo", "--http", &http, "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    // The first table means the first poll went into the page's board too.
    assert!(lines.next().unwrap().unwrap().starts_with("demo · "));
    wait_for_port(&http);
    let mut socket = std::net::TcpStream::connect(&http).unwrap();
    std::io::Write::write_all(&mut socket, b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    std::io::Read::read_to_string(&mut socket, &mut page).unwrap();
    terminate(&demo);
    assert!(demo.wait().unwrap().success());
    assert!(page.contains("<svg") && page.contains("demo"), "the power flow of the demo inverter: {page}");
    assert!(page.contains("deye_sg01lp1"), "the detected profile");
}

#[cfg(feature = "demo-broker")]
#[tokio::test]
async fn demo_mqtt_runs_a_broker_that_home_assistant_can_watch() {
    use crate::broker::Observer;
    use crate::process::{spawn_logged, stop};
    let dir = tempfile::tempdir().unwrap();
    let mqtt = format!("127.0.0.1:{}", free_port());
    // The demo's own log filter, as a user sees it: a blank RUST_LOG counts as unset.
    let demo =
        spawn_logged(&dir, &["demo", "--mqtt", &mqtt, "--interval", "1s"], &[("RUST_LOG", String::new())]);
    tokio::task::spawn_blocking({
        let mqtt = mqtt.clone();
        move || wait_for_port(&mqtt)
    })
    .await
    .unwrap();
    let filters = ["homeassistant/device/+/config".to_string(), "inverter-monitor/demo/state".to_string()];
    let mut ha = Observer::at(mqtt.parse().unwrap(), &filters).await;
    let config = ha.wait_for("the demo's discovery config", |m| m.topic.ends_with("/config")).await;
    let config = config.json();
    assert_eq!(config["dev"]["name"], "demo");
    let soc = &config["cmps"]["battery_soc"];
    assert_eq!(soc["state_topic"], "inverter-monitor/demo/state", "{soc}");
    let state = ha.wait_for("a state", |m| m.topic == "inverter-monitor/demo/state").await.json();
    assert!(state["battery_soc"].is_number(), "{state}");
    drop(ha);
    let log = stop(demo, &dir).await;
    let hint = format!("demo: MQTT broker on {mqtt}; try mosquitto_sub -h 127.0.0.1 -p ");
    assert!(log.contains(&hint), "{log}");
    // The readiness probe's bare connect, a watcher that left and the broker's own shutdown are
    // errors to rumqttd, and noise to someone trying the demo.
    assert!(!log.contains("rumqttd"), "{log}");
}

#[cfg(not(feature = "demo-broker"))]
#[tokio::test]
async fn demo_mqtt_without_the_broker_feature_says_how_to_get_it() {
    let mqtt = format!("127.0.0.1:{}", free_port());
    let (ok, _, stderr) = run(args(&["demo", "--mqtt", &mqtt])).await;
    assert!(!ok);
    assert!(stderr.contains("--features demo-broker"), "{stderr}");
}
