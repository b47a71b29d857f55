//! Memory and CPU of the real service with every sink on: the release binary polls the
//! simulator every second, publishes to Mosquitto, decides for two consumers, fetches the
//! weather from a local stand-in, writes to VictoriaMetrics (InfluxDB line protocol) and serves
//! HTTP, while this bench samples its resident memory and CPU time from
//! /proc. Run with `cargo bench --bench footprint`; it prints the figures and takes ~75 s.
//! A sink whose server is not installed (Debian packages mosquitto, victoria-metrics) is left
//! off, and the output says so.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inverter_monitor::profile::Profiles;
use inverter_monitor::sim::{self, SimConfig, Simulator};

use common::{free_port, sample, start, wait_for};

const POLLS: u64 = 60;
const WARM_UP: u64 = 5;

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

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: measured by `cargo bench --bench footprint` only");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let logger = listener.local_addr().unwrap();
    let simulator = Arc::new(Simulator::new(
        SimConfig::new(2_712_345_678),
        Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap(),
    ));
    let cancel = tokio_util::sync::CancellationToken::new();
    runtime.spawn(sim::serve(listener, simulator.clone(), cancel.clone()));

    let dir = tempfile::tempdir().unwrap();
    let (mqtt_port, vm_port, http_port) = (free_port(), free_port(), free_port());
    // FOOTPRINT_SINKS=mqtt,influx,weather (the default: all) picks sinks, to see what each one
    // costs; load control comes with mqtt.
    let wanted = std::env::var("FOOTPRINT_SINKS").unwrap_or_else(|_| "mqtt,influx,weather".into());
    let mosquitto =
        wanted.contains("mqtt").then(|| start("mosquitto", &["-p".into(), mqtt_port.to_string()])).flatten();
    let vm_args = [
        format!("-httpListenAddr=127.0.0.1:{vm_port}"),
        format!("-storageDataPath={}", dir.path().join("vm").display()),
    ];
    let victoria = wanted.contains("influx").then(|| start("victoria-metrics", &vm_args)).flatten();
    let mut config = format!(
        "data_dir = \"{}\"\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {}\nserial = 2712345678\ninterval = \"1s\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n",
        dir.path().display(),
        logger.port()
    );
    let mut sinks = vec!["http (metrics, status page)"];
    if mosquitto.is_some() {
        wait_for(mqtt_port);
        config.push_str(&format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n"));
        sinks.push("mqtt (Mosquitto)");
        for (name, surplus) in [("geyser", ""), ("pool", "surplus_start = 1200\n")] {
            config.push_str(&format!(
                "[[consumer]]\nname = \"{name}\"\nstate_topic = \"plugs/{name}\"\ncommand_topic = \"plugs/{name}/set\"\npower = 1000\n{surplus}"
            ));
        }
        sinks.push("load control (2 consumers)");
    }
    if victoria.is_some() {
        wait_for(vm_port);
        config.push_str(&format!(
            "[influxdb]\nurl = \"http://127.0.0.1:{vm_port}\"\napi = \"v1\"\ndatabase = \"inverter\"\n"
        ));
        sinks.push("influxdb (VictoriaMetrics)");
    }
    if wanted.contains("weather") {
        config.push_str(&format!(
            "[weather]\nlatitude = -34.05\nlongitude = 18.85\npv_peak_power = 6500\nurl = \"http://127.0.0.1:{}\"\n",
            open_meteo()
        ));
        sinks.push("weather (a local Open-Meteo stand-in)");
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut service = Command::new(env!("CARGO_BIN_EXE_inverter-monitor"))
        .args(["run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = service.id();
    let per_poll = 3; // reads per poll of the SG01LP1 profile
    let polls = || simulator.requests() / per_poll;
    let deadline = Instant::now() + Duration::from_secs(POLLS + 30);
    while polls() < WARM_UP {
        assert!(Instant::now() < deadline, "the service does not poll");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, ticks_start) = sample(pid);
    let polls_start = polls();
    let mut rss = Vec::new();
    while polls() < polls_start + POLLS && Instant::now() < deadline {
        rss.push(sample(pid).0);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (rss_end, ticks_end) = sample(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let split: Vec<&str> =
        status.lines().filter(|l| l.starts_with("RssAnon") || l.starts_with("RssFile")).collect();
    let done = polls() - polls_start;
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = service.wait();
    cancel.cancel();
    let hz = 100.0; // USER_HZ on Linux
    let cpu_ms = (ticks_end - ticks_start) as f64 / hz * 1000.0;
    println!("footprint: sinks on: {}", sinks.join(", "));
    println!("footprint: {done} polls of 149 readings, 1 s apart, after {WARM_UP} warm-up polls");
    println!(
        "footprint: resident memory min {:.1} MiB, max {:.1} MiB, at the end {:.1} MiB",
        *rss.iter().min().unwrap_or(&0) as f64 / 1024.0,
        *rss.iter().max().unwrap_or(&0) as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!("footprint: at the end {}", split.join(", ").replace('\t', " "));
    println!(
        "footprint: CPU {cpu_ms:.0} ms over {done} polls = {:.2} ms per poll (10 ms resolution)",
        cpu_ms / done.max(1) as f64
    );
    drop((mosquitto, victoria));
}
