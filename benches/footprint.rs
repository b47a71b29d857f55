//! Memory and CPU of the real service, in two modes, against the baseline in
//! `benches/footprint-baseline.toml`:
//!
//! - **all**: every sink on. The release binary polls the simulator every second, publishes to
//!   Mosquitto, decides for two consumers, fetches the weather from a local stand-in, writes to
//!   VictoriaMetrics (InfluxDB line protocol) and serves HTTP.
//! - **mqtt**: MQTT only (Home Assistant discovery and state), nothing else configured.
//! - **floor**: not the service: a minimal program (this bench re-run as a child) that puts the
//!   mqtt mode's traffic on the wire and nothing else: the same three V5 requests with the same
//!   pauses, the same two MQTT packets to Mosquitto, the same sleeps, with blocking sockets and
//!   no decoding. What it costs is this machine's price of that I/O (loopback TCP wakes the peer
//!   on the sender's CPU time); the mqtt mode's excess over it is the service's own work.
//! - **count**: the mqtt mode under valgrind's callgrind, which counts the instructions the
//!   service runs in user space per poll: the same for the same binary whatever else the machine
//!   is doing, so the figure a change of our own code moves (and the baseline can hold to 15 %
//!   where CPU time cannot). Left out when valgrind is not installed.
//!
//! This bench samples the service's resident memory and CPU time from /proc and prints each
//! figure with its ratio to the baseline of the same feature set; a figure more than 15 % worse
//! is flagged `REGRESSED`. Run with `cargo bench --bench footprint` (and with
//! `--no-default-features`, and with `--target x86_64-unknown-linux-musl` for the image's static
//! build); it takes ~4.5 min. FOOTPRINT_MODES=all, =mqtt, =floor or =count runs one mode.
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
/// Set for the child that is the floor mode: "LOGGER_PORT,MQTT_PORT" (no broker: empty).
const FLOOR: &str = "FOOTPRINT_FLOOR";
/// The logger serial of the simulator (the service's config says the same).
const SERIAL: u32 = 2_712_345_678;
/// V5 requests per poll of the SG01LP1 profile: a mode's polls are the simulator's requests
/// over this.
const READS_PER_POLL: u64 = 3;
/// Sizes of the service's two MQTT packets per poll for this profile (state, diagnostics), as
/// strace shows its writes to the broker.
const PACKETS: [(&str, usize); 2] =
    [("inverter-monitor/house/state", 3861), ("inverter-monitor/house/diagnostics", 500)];

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
    let kib = |key: &str| common::status_kib(pid, key);
    let split = format!(
        "RssAnon {:.1} MiB, RssFile {:.1} MiB",
        kib("RssAnon:").unwrap_or(0) as f64 / 1024.0,
        kib("RssFile:").unwrap_or(0) as f64 / 1024.0
    );
    (kib("VmRSS:").unwrap_or(0), split)
}

/// CPU time of `pid` two ways: the nanoseconds its live threads ran (schedstat, exact), and
/// utime + stime in 10 ms ticks (which also counts threads that have ended); its threads; and
/// how often its live threads went to sleep and were woken (voluntary context switches).
fn cpu(pid: u32) -> (u64, u64, BTreeSet<String>, u64) {
    let mut ns = 0;
    let mut wakes = 0;
    let mut threads = BTreeSet::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        wakes += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        threads.insert(task.file_name().to_string_lossy().into_owned());
    }
    (ns, common::cpu_ticks(pid), threads, wakes)
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
    let mut sinks = Vec::new();
    let mut servers: Vec<Server> =
        start("mosquitto", &["-p".into(), mqtt_port.to_string()]).into_iter().collect();
    let broker = !servers.is_empty();
    if broker {
        wait_for(mqtt_port);
    }
    if mode == "floor" {
        // The child reads its ports from the "config": the logger's and the broker's, if any.
        let (config, sink) = if broker {
            (
                format!("{logger},{mqtt_port}"),
                "the mqtt mode's traffic, by a minimal program (not the service)",
            )
        } else {
            (format!("{logger},"), "no Mosquitto: V5 only")
        };
        return Setup { config, sinks: vec![sink], _servers: servers };
    }
    let mut config = format!(
        "data_dir = \"{}\"\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {logger}\nserial = {SERIAL}\ninterval = \"1s\"\n",
        dir.display()
    );
    if all {
        config.push_str(&format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\n"));
        sinks.push("http (metrics, status page)");
    }
    if broker {
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

/// [`setup`] with its config written to `dir`/config.toml, whose path comes back with it.
fn configured(mode: &str, dir: &std::path::Path, logger: u16) -> (Setup, std::path::PathBuf) {
    let setup = setup(mode, dir, logger);
    let path = dir.join("config.toml");
    std::fs::write(&path, &setup.config).unwrap();
    (setup, path)
}

/// Polls counted by callgrind in the count mode, after its warm-up.
const COUNTED_POLLS: u64 = 20;
/// The count mode's warm-up: start-up, discovery and its ledger (written a few seconds after)
/// are over by then.
const COUNT_WARM_UP: u64 = 10;

/// The count mode: the mqtt mode's service under callgrind, its counters zeroed after the
/// warm-up and dumped after [`COUNTED_POLLS`]; user-space instructions per poll. `None` without
/// valgrind.
fn count(simulator: &Simulator, logger: u16) -> Option<f64> {
    if common::which("valgrind").is_none() || common::which("callgrind_control").is_none() {
        println!("footprint [count]: valgrind is not installed (Debian package valgrind): left out");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_setup, path) = configured("mqtt", dir.path(), logger);
    let out = dir.path().join("callgrind.out");
    let mut service = Command::new("valgrind")
        .args(["--tool=callgrind", &format!("--callgrind-out-file={}", out.display())])
        .args([env!("CARGO_BIN_EXE_inverter-monitor"), "run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = service.id().to_string();
    let polls = || simulator.requests() / READS_PER_POLL;
    let control = |what: &str| {
        Command::new("callgrind_control").args([what, &pid]).output().map(|o| o.status.success())
    };
    // Start-up under valgrind takes a while; the first polls include it.
    let first = polls();
    let deadline = Instant::now() + Duration::from_secs(180);
    while polls() < first + COUNT_WARM_UP && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let zeroed = control("--zero");
    let start = polls();
    while polls() < start + COUNTED_POLLS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let dumped = control("--dump");
    let done = polls() - start;
    let _ = service.kill();
    let _ = service.wait();
    if !matches!((zeroed, dumped), (Ok(true), Ok(true))) || done == 0 {
        println!("footprint [count]: callgrind_control did not answer; no count");
        return None;
    }
    // The dump is `callgrind.out.1`; its `totals:` (or `summary:`) line has the instructions.
    let dump = std::fs::read_to_string(dir.path().join("callgrind.out.1")).unwrap_or_default();
    let total = dump
        .lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|n| n.trim().parse::<f64>().ok());
    let Some(total) = total else {
        println!("footprint [count]: callgrind's dump has no total; no count");
        return None;
    };
    let per_poll = total / done as f64;
    println!(
        "footprint [count]: {per_poll:.0} user-space instructions per poll (callgrind, the mqtt mode, {done} polls after {COUNT_WARM_UP} warm-up polls)"
    );
    Some(per_poll)
}

/// Runs the service in `mode` against the simulator until it has polled [`POLLS`] times after
/// [`WARM_UP`], and measures it.
fn measure(mode: &str, simulator: &Simulator, logger: u16) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let (setup, path) = configured(mode, dir.path(), logger);
    let mut service = if mode == "floor" {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child.env(FLOOR, &setup.config);
        child
    } else {
        let mut service = Command::new(env!("CARGO_BIN_EXE_inverter-monitor"));
        service.args(["run", "--config", path.to_str().unwrap()]);
        service
    };
    let mut service = service.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = service.id();
    let polls = || simulator.requests() / READS_PER_POLL;
    let first = polls();
    let deadline = Instant::now() + Duration::from_secs(WARM_UP + POLLS + 30);
    while polls() < first + WARM_UP {
        assert!(Instant::now() < deadline, "the service does not poll");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ns_start, ticks_start, threads_start, wakes_start) = cpu(pid);
    let polls_start = polls();
    let mut rss = Vec::new();
    while polls() < polls_start + POLLS && Instant::now() < deadline {
        rss.push(memory(pid).0);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (ns_end, ticks_end, threads_end, wakes_end) = cpu(pid);
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
        "footprint [{mode}]: CPU {:.3} ms per poll (schedstat {exact_ms:.1} ms, ticks {ticks_ms:.0} ms, over {done} polls{}); {:.1} wake-ups per poll",
        cpu_ms_per_poll,
        if ended == 0 { String::new() } else { format!("; {ended} threads ended, so ticks") },
        wakes_end.saturating_sub(wakes_start) as f64 / done.max(1) as f64
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

/// An MQTT 3.1.1 packet: `kind` and the remaining length's varint before `body`.
fn mqtt_packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut packet = vec![kind];
    let mut left = body.len();
    loop {
        let byte = (left % 128) as u8;
        left /= 128;
        packet.push(if left > 0 { byte | 0x80 } else { byte });
        if left == 0 {
            break;
        }
    }
    packet.extend_from_slice(body);
    packet
}

/// A QoS 0 PUBLISH to `topic` whose whole packet is `size` bytes, as the service's are.
fn publish(topic: &str, size: usize) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic.as_bytes());
    let header = mqtt_packet(0x30, &vec![b'x'; size]).len() - size; // fixed header of about `size`
    body.resize(size - header, b'x');
    let packet = mqtt_packet(0x30, &body);
    assert_eq!(packet.len(), size, "the floor's packet must be as large as the service's");
    packet
}

/// Reads one V5 frame (start, length of its payload, then 13 bytes of header and trailer).
fn read_frame(stream: &mut std::net::TcpStream, buf: &mut Vec<u8>) {
    use std::io::Read;
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        if buf.len() >= 3 && buf.len() >= 13 + usize::from(u16::from_le_bytes([buf[1], buf[2]])) {
            return;
        }
        let n = stream.read(&mut chunk).expect("the simulator answers");
        assert!(n > 0, "the simulator closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The floor mode's child: the mqtt mode's wire traffic every second until killed, and nothing
/// else: the profile's read plan as V5 requests with the link's 100 ms pause before the later
/// ones, the service's two MQTT packets to the broker, blocking sockets and plain sleeps.
fn floor(ports: &str) {
    use inverter_monitor::protocol::{Request, rtu, v5};
    use std::io::{Read, Write};
    let (logger, broker) = ports.split_once(',').expect("LOGGER,BROKER");
    let plan = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap().plan();
    let requests: Vec<Vec<u8>> = plan
        .iter()
        .enumerate()
        .map(|(seq, block)| {
            let mut pdu = bytes::BytesMut::new();
            rtu::encode_request(1, &Request::ReadHolding { addr: block.start, count: block.count }, &mut pdu);
            let mut frame = bytes::BytesMut::new();
            v5::Frame::request(seq as u8, SERIAL, &pdu).encode(&mut frame);
            frame.to_vec()
        })
        .collect();
    let mut logger = std::net::TcpStream::connect(("127.0.0.1", logger.parse::<u16>().unwrap())).unwrap();
    let mut broker = broker.parse::<u16>().ok().map(|port| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let id = "footprint-floor";
        let mut connect = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, id.len() as u8];
        connect.extend_from_slice(id.as_bytes());
        stream.write_all(&mqtt_packet(0x10, &connect)).unwrap();
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).unwrap();
        stream
    });
    let packets: Vec<Vec<u8>> = PACKETS.iter().map(|(topic, size)| publish(topic, *size)).collect();
    let mut answer = Vec::new();
    let mut next = Instant::now();
    loop {
        for (i, request) in requests.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            logger.write_all(request).unwrap();
            read_frame(&mut logger, &mut answer);
        }
        if let Some(broker) = broker.as_mut() {
            for packet in &packets {
                broker.write_all(packet).unwrap();
            }
        }
        next += Duration::from_secs(1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn main() {
    if let Ok(ports) = std::env::var(FLOOR) {
        floor(&ports);
        return;
    }
    // `cargo test --all-targets` runs benches without `--bench`: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: measured by `cargo bench --bench footprint` only");
        return;
    }
    let simulator = Arc::new(Simulator::new(
        SimConfig::new(SERIAL),
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
    let modes = std::env::var("FOOTPRINT_MODES").unwrap_or_else(|_| "all,mqtt,floor,count".into());
    let machine =
        BASELINE.parse::<toml::Table>().ok().and_then(|t| t.get("machine")?.as_str().map(String::from));
    println!("footprint: baseline taken on {}", machine.as_deref().unwrap_or("an unnamed machine"));
    let mut regressed = Vec::new();
    let mut cpu = std::collections::BTreeMap::new();
    for mode in modes.split(',').map(str::trim).filter(|m| ["all", "mqtt", "floor", "count"].contains(m)) {
        if mode == "count" {
            let Some(per_poll) = count(&simulator, logger) else { continue };
            if compare("mqtt", "instructions per poll", "instructions_per_poll", per_poll, "") {
                regressed.push("mqtt instructions".to_string());
            }
            continue;
        }
        let figures = measure(mode, &simulator, logger);
        cpu.insert(mode, figures.cpu_ms_per_poll);
        if mode == "floor" {
            // The machine's figure, not the service's: nothing to compare with a baseline.
            continue;
        }
        if compare(mode, "resident memory (max)", "rss_mib", figures.rss_mib, "MiB") {
            regressed.push(format!("{mode} memory"));
        }
        if compare(mode, "CPU per poll", "cpu_ms_per_poll", figures.cpu_ms_per_poll, "ms") {
            regressed.push(format!("{mode} CPU"));
        }
    }
    cancel.cancel();
    if let (Some(mqtt), Some(floor)) = (cpu.get("mqtt"), cpu.get("floor")) {
        println!(
            "footprint: mqtt mode {mqtt:.3} ms per poll = {:.2} x the floor {floor:.3} ms (the same traffic by a minimal program); the service's own work: {:.3} ms",
            mqtt / floor,
            mqtt - floor
        );
    }
    if regressed.is_empty() {
        println!("footprint: no figure regressed against the baseline");
    } else {
        println!("footprint: REGRESSED against the baseline: {}", regressed.join(", "));
    }
}
