//! A fleet in one process: the release binary polls N simulated loggers (`simulate --fleet N`,
//! a process of its own) at a 60 s interval and publishes to Mosquitto, for N = 1, 100, 1,000
//! and 10,000, while this bench reads the service's resident memory and CPU time from /proc,
//! the broker's count of received messages from `$SYS`, and the largest poll lateness from
//! the service's own summary line. It prints one row per N, so each figure's growth shows.
//!
//! Run with `cargo bench --bench fleet`; each N takes two intervals (the first polls every
//! inverter once and announces it to Home Assistant; the second is measured), so the default
//! run takes about nine minutes. `FLEET_SIZES=1,100` picks the Ns, `FLEET_INTERVAL=20s` the
//! interval (a quick run). Without Mosquitto (Debian package `mosquitto`) MQTT is left off and
//! the output says so.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, free_port, sample, start, wait_for};

const FIRST_SERIAL: u32 = 2_712_345_678;
const USER_HZ: f64 = 100.0;

/// One row of the table.
struct Row {
    size: u32,
    rss_max_kib: u64,
    rss_end_kib: u64,
    cpu_ms: f64,
    polls: u64,
    publishes: Option<u64>,
    window: Duration,
    lateness_ms: f64,
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet: measured by `cargo bench --bench fleet` only");
        return;
    }
    let sizes: Vec<u32> = std::env::var("FLEET_SIZES")
        .unwrap_or_else(|_| "1,100,1000,10000".into())
        .split(',')
        .map(|n| n.trim().replace('_', "").parse().expect("FLEET_SIZES: numbers, comma-separated"))
        .collect();
    let interval = std::env::var("FLEET_INTERVAL")
        .map(|i| humantime::parse_duration(&i).expect("FLEET_INTERVAL: a duration such as 60s"))
        .unwrap_or(Duration::from_secs(60));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "fleet: {cores} cores, interval {interval:?}, profile deye_sg01lp1 (149 readings, 3 reads a poll)"
    );
    let rows: Vec<Row> = sizes.iter().map(|&n| measure(n, interval)).collect();
    println!(
        "fleet: {:>6} | {:>12} | {:>13} | {:>10} | {:>14} | {:>11} | {:>15}",
        "N", "RSS max MiB", "KiB/inverter", "CPU % core", "CPU ms/poll", "MQTT msg/s", "max lateness ms"
    );
    // Memory per inverter as the slope from the smallest N: the process's own base cancels.
    let base = rows.iter().min_by_key(|r| r.size).map_or((0, 0), |r| (r.size, r.rss_end_kib));
    for row in &rows {
        let secs = row.window.as_secs_f64();
        let per_inverter = match row.size.checked_sub(base.0).filter(|n| *n > 0) {
            Some(more) => format!("{:.1}", row.rss_end_kib.saturating_sub(base.1) as f64 / f64::from(more)),
            None => "base".into(),
        };
        let publishes = row.publishes.map_or("no MQTT".into(), |p| format!("{:.1}", p as f64 / secs));
        println!(
            "fleet: {:>6} | {:>12.1} | {:>13} | {:>10.1} | {:>14.3} | {:>11} | {:>15.1}",
            row.size,
            row.rss_max_kib as f64 / 1024.0,
            per_inverter,
            row.cpu_ms / secs / 10.0,
            row.cpu_ms / row.polls.max(1) as f64,
            publishes,
            row.lateness_ms,
        );
    }
    println!(
        "fleet: CPU per poll counts everything (idle wake-ups, MQTT, logging) over the polls of the measured interval; 10 ms tick resolution"
    );
}

/// Runs the fleet of `size` for two intervals and measures the second.
fn measure(size: u32, interval: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let (sim_port, mqtt_port) = (free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_inverter-monitor");
    let _sim = Server(
        Command::new(bin)
            .args(["simulate", "--fleet", &size.to_string(), "--serial", &FIRST_SERIAL.to_string()])
            .args(["--listen", &format!("127.0.0.1:{sim_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(sim_port);
    let conf = dir.path().join("mosquitto.conf");
    // $SYS every second: the received-publish count is read at both ends of the window.
    std::fs::write(&conf, format!("listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nsys_interval 1\n"))
        .unwrap();
    let mosquitto = start("mosquitto", &["-c".into(), conf.display().to_string()]);
    let mut config = format!("data_dir = \"{}\"\n", dir.path().display());
    if mosquitto.is_some() {
        wait_for(mqtt_port);
        config.push_str(&format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n"));
    }
    for i in 0..size {
        config.push_str(&format!(
            "[[inverter]]\nname = \"inv{i:05}\"\nhost = \"127.0.0.1\"\nport = {sim_port}\nserial = {}\nprofile = \"deye_sg01lp1\"\ninterval = \"{}s\"\n",
            FIRST_SERIAL + i,
            interval.as_secs()
        ));
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut service = Command::new(bin)
        .args(["run", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "warn,inverter_monitor::poller::lateness=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = service.id();
    let summaries = follow_summaries(service.stderr.take().unwrap());
    let summary = |n: usize| {
        let deadline = Instant::now() + interval * 3 + Duration::from_secs(120);
        loop {
            if let Some(line) = summaries.lock().unwrap().get(n - 1).cloned() {
                return line;
            }
            assert!(Instant::now() < deadline, "N = {size}: no poll summary line {n}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    summary(1);
    let (_, ticks_start) = sample(pid);
    let (started, received_start) = (Instant::now(), received(mqtt_port, mosquitto.is_some()));
    let mut rss_max = 0;
    while summaries.lock().unwrap().len() < 2 && started.elapsed() < interval * 2 + Duration::from_secs(60) {
        rss_max = rss_max.max(sample(pid).0);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rss_end, ticks_end) = sample(pid);
    let window = started.elapsed();
    let received_end = received(mqtt_port, mosquitto.is_some());
    let (polls, lateness_ms) = summary(2);
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = service.wait();
    drop(mosquitto);
    let row = Row {
        size,
        rss_max_kib: rss_max.max(rss_end),
        rss_end_kib: rss_end,
        cpu_ms: (ticks_end - ticks_start) as f64 / USER_HZ * 1000.0,
        polls,
        publishes: received_start.zip(received_end).map(|(a, b)| b.saturating_sub(a)),
        window,
        lateness_ms,
    };
    println!("fleet: N = {size} done: {polls} polls in {window:.0?}");
    row
}

/// Reads the service's log on a thread and keeps each summary line's (polls, largest lateness).
fn follow_summaries(stderr: std::process::ChildStderr) -> Arc<Mutex<Vec<(u64, f64)>>> {
    let found = Arc::new(Mutex::new(Vec::new()));
    let keep = found.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let field =
                |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name)?.parse::<f64>().ok());
            if let (Some(polls), Some(late)) = (field("polls="), field("largest_lateness_ms=")) {
                keep.lock().unwrap().push((polls as u64, late));
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("fleet: service: {line}");
            }
        }
    });
    found
}

/// The messages Mosquitto has received so far, from `$SYS` (none without MQTT): publishes, and
/// a keep-alive ping a minute. (Mosquitto 2.0's `publish/messages/received` stays at 0.)
fn received(port: u16, mqtt: bool) -> Option<u64> {
    if !mqtt {
        return None;
    }
    let out = Command::new("mosquitto_sub")
        .args(["-p", &port.to_string(), "-C", "1", "-W", "5", "-t", "$SYS/broker/messages/received"])
        .output()
        .inspect_err(|e| eprintln!("fleet: mosquitto_sub: {e}"))
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let why = String::from_utf8_lossy(&out.stderr);
    text.trim().parse().inspect_err(|e| eprintln!("fleet: `{}` from $SYS: {e} {why}", text.trim())).ok()
}
