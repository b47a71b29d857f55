//! Memory and CPU of the real service, in two modes, against the baseline in
//! `benches/footprint-baseline.toml`:
//!
//! - **all**: every sink on. The release binary polls the simulator every second, publishes to
//!   Mosquitto, decides for two consumers, fetches the weather from a local stand-in, writes to
//!   VictoriaMetrics (InfluxDB line protocol) and serves HTTP.
//! - **mqtt**: MQTT only (Home Assistant discovery and state), nothing else configured.
//!
//! This bench samples the service's resident memory and CPU time from /proc and prints each
//! figure with its ratio to the baseline of the same feature set; a figure more than 15 % worse
//! is flagged `REGRESSED`. Run with `cargo bench --bench footprint` (and with
//! `--no-default-features`, and with `--target x86_64-unknown-linux-musl` for the image's static
//! build); it takes ~2.5 min. FOOTPRINT_MODES=all or =mqtt runs one mode.
//! A sink whose server is not installed (Debian packages mosquitto, victoria-metrics) is left
//! off, and the output says so. docs/performance.md explains the figures.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inverter_monitor::profile::Profiles;
use inverter_monitor::sim::{self, SimConfig, Simulator};

use common::{Server, free_port, start, wait_for};

const POLLS: u64 = 60;
const WARM_UP: u64 = 5;
/// A figure this much worse than its baseline is reported as a regression.
const TOLERANCE: f64 = 1.15;
const BASELINE: &str = include_str!("footprint-baseline.toml");

/// A stand-in Open-Meteo on a free port: a thread answering every request with today's shape.
fn open_meteo() -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let now = chrono::Utc::now();
            let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
            let times: Vec<String> = (0..48)
                .map(|h| format!("\"{}\"", (midnight + chrono::TimeDelta::hours(h)).format("%Y-%m-%dT%H:%M")))
                .collect();
            let body = format!(
                r#"{{"current":{{"time":"{}","interval":900,"cloud_cover":30}},"hourly":{{"time":[{}],"cloud_cover":[{}],"shortwave_radiation":[{}]}}}}"#,
                now.format("%Y-%m-%dT%H:00"),
                times.join(","),
                vec!["30"; 48].join(","),
                vec!["400"; 48].join(",")
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    port
}

/// Resident KiB of `pid`, and its RssAnon and RssFile lines.
fn memory(pid: u32) -> (u64, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    };
    let split = format!(
        "RssAnon {:.1} MiB, RssFile {:.1} MiB",
        kib("RssAnon:").unwrap_or(0) as f64 / 1024.0,
        kib("RssFile:").unwrap_or(0) as f64 / 1024.0
    );
    (kib("VmRSS:").unwrap_or(0), split)
}

/// CPU time of `pid` two ways: the nanoseconds its live threads ran (schedstat, exact), and
/// utime + stime in 10 ms ticks (which also counts threads that have ended); and its threads.
fn cpu(pid: u32) -> (u64, u64, BTreeSet<String>) {
    let mut ns = 0;
    let mut threads = BTreeSet::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        threads.insert(task.file_name().to_string_lossy().into_owned());
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split_whitespace().collect();
    let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (ns, ticks, threads)
}

/// What one mode measured.
struct Figures {
    rss_mib: f64,
    cpu_ms_per_poll: f64,
}

/// The servers one mode needs, the config that points the service at them, and what is on.
struct Setup {
    config: String,
    sinks: Vec<&'static str>,
    _servers: Vec<Server>,
}

fn setup(mode: &str, dir: &std::path::Path, logger: u16) -> Setup {
    let (mqtt_port, vm_port, http_port) = (free_port(), free_port(), free_port());
    let all = mode == "all";
    let mut servers = Vec::new();
    let mut sinks = Vec::new();
    let mut config = format!(
        "data_dir = \"{}\"\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {logger}\nserial = 2712345678\ninterval = \"1s\"\n",
        dir.display()
    );
    if all {
        config.push_str(&format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\n"));
        sinks.push("http (metrics, status page)");
    }
    if let Some(mosquitto) = start("mosquitto", &["-p".into(), mqtt_port.to_string()]) {
        servers.push(mosquitto);
        wait_for(mqtt_port);
        config.push_str(&format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n"));
        sinks.push("mqtt (Mosquitto)");
        if all {
            for (name, surplus) in [("geyser", ""), ("pool", "surplus_start = 1200\n")] {
                config.push_str(&format!(
                    "[[consumer]]\nname = \"{name}\"\nstate_topic = \"plugs/{name}\"\ncommand_topic = \"plugs/{name}/set\"\npower = 1000\n{surplus}"
                ));
            }
            sinks.push("load control (2 consumers)");
        }
    }
    if !all {
        return Setup { config, sinks, _servers: servers };
    }
    let vm_args = [
        format!("-httpListenAddr=127.0.0.1:{vm_port}"),
        format!("-storageDataPath={}", dir.join("vm").display()),
    ];
    if let Some(victoria) = start("victoria-metrics", &vm_args) {
        servers.push(victoria);
        wait_for(vm_port);
        config.push_str(&format!(
            "[influxdb]\nurl = \"http://127.0.0.1:{vm_port}\"\napi = \"v1\"\ndatabase = \"inverter\"\n"
        ));
        sinks.push("influxdb (VictoriaMetrics)");
    }
    config.push_str(&format!(
        "[weather]\nlatitude = -34.05\nlongitude = 18.85\npv_peak_power = 6500\nurl = \"http://127.0.0.1:{}\"\n",
        open_meteo()
    ));
    sinks.push("weather (a local Open-Meteo stand-in)");
    Setup { config, sinks, _servers: servers }
}

/// Runs the service in `mode` against the simulator until it has polled [`POLLS`] times after
/// [`WARM_UP`], and measures it.
fn measure(mode: &str, simulator: &Simulator, logger: u16) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(mode, dir.path(), logger);
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &setup.config).unwrap();
    let mut service = Command::new(env!("CARGO_BIN_EXE_inverter-monitor"))
        .args(["run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = service.id();
    let per_poll = 3; // reads per poll of the SG01LP1 profile
    let polls = || simulator.requests() / per_poll;
    let first = polls();
    let deadline = Instant::now() + Duration::from_secs(WARM_UP + POLLS + 30);
    while polls() < first + WARM_UP {
        assert!(Instant::now() < deadline, "the service does not poll");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ns_start, ticks_start, threads_start) = cpu(pid);
    let polls_start = polls();
    let mut rss = Vec::new();
    while polls() < polls_start + POLLS && Instant::now() < deadline {
        rss.push(memory(pid).0);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (ns_end, ticks_end, threads_end) = cpu(pid);
    let done = polls() - polls_start;
    let (rss_end, split) = memory(pid);
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = service.wait();
    let per_poll = |ms: f64| ms / done.max(1) as f64;
    let exact_ms = ns_end.saturating_sub(ns_start) as f64 / 1e6;
    let ticks_ms = (ticks_end - ticks_start) as f64 * 10.0; // USER_HZ is 100 on Linux
    // A thread that ended took its schedstat with it: then only the ticks count it all.
    let ended = threads_start.difference(&threads_end).count();
    let cpu_ms_per_poll = if ended == 0 { per_poll(exact_ms) } else { per_poll(ticks_ms) };
    let max = *rss.iter().max().unwrap_or(&rss_end).max(&rss_end);
    println!("footprint [{mode}]: sinks on: {}", setup.sinks.join(", "));
    println!("footprint [{mode}]: {done} polls of 149 readings, 1 s apart, after {WARM_UP} warm-up polls");
    println!(
        "footprint [{mode}]: resident memory min {:.1} MiB, max {:.1} MiB, at the end {:.1} MiB ({split})",
        *rss.iter().min().unwrap_or(&0) as f64 / 1024.0,
        max as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!(
        "footprint [{mode}]: CPU {:.3} ms per poll (schedstat {exact_ms:.1} ms, ticks {ticks_ms:.0} ms, over {done} polls{})",
        cpu_ms_per_poll,
        if ended == 0 { String::new() } else { format!("; {ended} threads ended, so ticks") }
    );
    Figures { rss_mib: max as f64 / 1024.0, cpu_ms_per_poll }
}

/// The baseline figure `key` of `mode` for this build's features and libc, when the file has one.
fn baseline(mode: &str, key: &str) -> Option<f64> {
    let table: toml::Table = BASELINE.parse().ok()?;
    let features = if cfg!(feature = "demo-broker") { "default-features" } else { "no-default-features" };
    // The image's static musl build has figures of its own (no shared glibc pages, its malloc).
    let libc = if cfg!(target_env = "musl") { "-musl" } else { "" };
    let value = table.get(&format!("{features}{libc}"))?.get(mode)?.get(key)?;
    value.as_float().or_else(|| value.as_integer().map(|i| i as f64))
}

/// Prints `value` against its baseline; true when it regressed.
fn compare(mode: &str, what: &str, key: &str, value: f64, unit: &str) -> bool {
    let Some(base) = baseline(mode, key) else {
        println!("footprint [{mode}]: {what} {value:.3} {unit}; no baseline for this mode and feature set");
        return false;
    };
    let ratio = value / base;
    let regressed = ratio > TOLERANCE;
    let verdict = if regressed { "REGRESSED (more than 15 % worse)" } else { "ok" };
    println!(
        "footprint [{mode}]: {what} {value:.3} {unit} = {ratio:.2} x baseline {base:.3} {unit}: {verdict}"
    );
    regressed
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: measured by `cargo bench --bench footprint` only");
        return;
    }
    let simulator = Arc::new(Simulator::new(
        SimConfig::new(2_712_345_678),
        Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap(),
    ));
    let cancel = tokio_util::sync::CancellationToken::new();
    // The simulator on a thread of its own; this one sleeps between samples.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let logger = listener.local_addr().unwrap().port();
    let serve = (simulator.clone(), cancel.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = sim::serve(listener, serve.0, serve.1).await;
        });
    });
    let modes = std::env::var("FOOTPRINT_MODES").unwrap_or_else(|_| "all,mqtt".into());
    let machine =
        BASELINE.parse::<toml::Table>().ok().and_then(|t| t.get("machine")?.as_str().map(String::from));
    println!("footprint: baseline taken on {}", machine.as_deref().unwrap_or("an unnamed machine"));
    let mut regressed = Vec::new();
    for mode in modes.split(',').map(str::trim).filter(|m| ["all", "mqtt"].contains(m)) {
        let figures = measure(mode, &simulator, logger);
        if compare(mode, "resident memory (max)", "rss_mib", figures.rss_mib, "MiB") {
            regressed.push(format!("{mode} memory"));
        }
        if compare(mode, "CPU per poll", "cpu_ms_per_poll", figures.cpu_ms_per_poll, "ms") {
            regressed.push(format!("{mode} CPU"));
        }
    }
    cancel.cancel();
    if regressed.is_empty() {
        println!("footprint: no figure regressed against the baseline");
    } else {
        println!("footprint: REGRESSED against the baseline: {}", regressed.join(", "));
    }
}
