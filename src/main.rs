//! The command line: `run`, `read`, `discover`, `simulate`, `record`, `replay`, `check-config`,
//! `healthcheck`, and a demo when called bare.
//! Logic lives in the library; this file parses arguments, sets up logging and reports errors.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use inverter_monitor::config::{
    Addon, AddonLayers, Config, HttpConfig, InverterConfig, LogConfig, LogFormat, MqttConfig, Protocol,
    RecordConfig, Shard, Sources, log_filter,
};
use inverter_monitor::poller::{Poller, Snapshot};
use inverter_monitor::profile::Profiles;
use inverter_monitor::report;
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::day::{Day, DayFaults};
use inverter_monitor::sim::{self, Faults, Pty, SimConfig, SimWire, Simulator};
use inverter_monitor::transport::{Link, Parity};
use inverter_monitor::{demo_broker, discover};

/// Polls a Deye/Sunsynk inverter through its Solarman logger. Without a command it runs a demo
/// against a built-in simulated logger.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service with a config file; as a Home Assistant add-on, with its options.
    Run {
        /// The TOML config file; optional in an add-on, where it refines the options.
        #[arg(long, short, env = "INVERTER_MONITOR_CONFIG", default_value = "inverter-monitor.toml")]
        config: PathBuf,
        #[command(flatten)]
        shard: ShardArg,
    },
    /// Demo: a simulated logger on 127.0.0.1, polled every interval, a live table.
    Demo {
        /// Time between polls.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// The family the simulated inverter is (the service detects it).
        #[arg(long, default_value = DEMO_PROFILE)]
        profile: String,
        /// Where the status page listens; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        http: SocketAddr,
        /// Also run an MQTT broker in-process and publish to it, discovery on: PORT listens on
        /// 127.0.0.1 only; ADDR:PORT (e.g. 0.0.0.0:1883) lets Home Assistant on another machine in.
        #[arg(long, value_name = "PORT|ADDR:PORT", value_parser = demo_broker::parse_listen)]
        mqtt: Option<SocketAddr>,
    },
    /// Read every register of a profile once and print the readings.
    Read(ReadArgs),
    /// Find Solarman loggers on the local network (UDP port 48899) and print a config block.
    Discover(DiscoverArgs),
    /// Run the simulated logger alone, for pointing other tools at it.
    Simulate(Box<SimulateArgs>),
    /// Poll the configured inverters and append every poll's raw registers to a file, one JSON
    /// line each, until Ctrl-C or SIGTERM; nothing is published. For a bug report or a replay.
    Record {
        /// The TOML config file.
        #[arg(long, short, env = "INVERTER_MONITOR_CONFIG", default_value = "inverter-monitor.toml")]
        config: PathBuf,
        /// The recording to write (appended to when it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replay a recording through decoding, plausibility and the configured sinks, with the
    /// recorded clock; print what was rejected and what reached Home Assistant.
    Replay(ReplayArgs),
    /// Validate a config file and exit.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
        #[command(flatten)]
        shard: ShardArg,
    },
    /// Exit 0 when the running service's /healthz says healthy, else 1 (Docker's HEALTHCHECK).
    Healthcheck {
        /// The health URL of the running service.
        #[arg(
            long,
            env = "INVERTER_MONITOR_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:8000/healthz"
        )]
        url: String,
        /// Longest wait for the answer.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// `replay`'s arguments.
#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording (`record --out`, or a day of `[record]`).
    recording: PathBuf,
    /// The TOML config file: its inverters, profiles and sinks.
    #[arg(long, short, env = "INVERTER_MONITOR_CONFIG", default_value = "inverter-monitor.toml")]
    config: PathBuf,
    /// Replay this many times faster than recorded (1: as recorded).
    #[arg(long, default_value_t = 1.0, conflicts_with = "fast")]
    speed: f64,
    /// No waiting between polls at all: a day in well under a second.
    #[arg(long)]
    fast: bool,
    /// Judge the first polls by the total counters the last replay with this data_dir kept,
    /// as a restarted service does: for replaying a day in parts.
    #[arg(long)]
    resume: bool,
    /// Also draw a picture of the day into this SVG file: the raw values against what reached
    /// Home Assistant, the rejected ones in red (docs/data-quality.md).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// The readings the picture draws, by key (comma-separated); by default the main energy
    /// counters and power flows, at most six.
    #[arg(long, value_name = "KEYS", value_delimiter = ',', requires = "svg")]
    svg_keys: Vec<String>,
}

/// `--shard`: which part of a fleet this instance polls (docs/scaling.md).
#[derive(Debug, Args)]
struct ShardArg {
    /// Poll only the inverters whose name hashes to INDEX of COUNT instances (FNV-1a 64 of the
    /// `name` key, modulo COUNT; a parallel stack goes by its master's), e.g. 0/3 … 2/3.
    #[arg(long, env = inverter_monitor::config::SHARD_ENV, value_name = "INDEX/COUNT")]
    shard: Option<String>,
}

impl ShardArg {
    /// The shard asked for, checked.
    fn parse(&self) -> Result<Option<Shard>> {
        Ok(self.shard.as_deref().map(Shard::parse).transpose()?)
    }
}

/// The profile the demo and `simulate` serve when none is named.
const DEMO_PROFILE: &str = "deye_sg01lp1";

/// What `read` and `simulate` share: the profile and the envelope.
#[derive(Debug, Args)]
struct ProfileArgs {
    /// The register profile; `read` detects it when left out, `simulate` serves deye_sg01lp1.
    #[arg(long)]
    profile: Option<String>,
    /// A directory of extra profiles.
    #[arg(long)]
    profiles_dir: Option<PathBuf>,
    /// How the logger is reached. `read`: auto by default; `simulate` (serial with --pty):
    /// solarman by default.
    #[arg(long, value_enum)]
    protocol: Option<WireArg>,
    /// Speak Modbus TCP instead of Solarman V5: the same as --protocol modbus-tcp.
    #[arg(long, conflicts_with = "protocol")]
    modbus_tcp: bool,
}

/// The `--protocol` values: the config's `protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WireArg {
    /// Solarman V5, a Wi-Fi logger on port 8899.
    Solarman,
    /// Modbus TCP, an Ethernet logger or inverter on port 502.
    ModbusTcp,
    /// Raw Modbus RTU over TCP, a transparent RS485 gateway.
    RtuOverTcp,
    /// Modbus RTU on a local serial port (--device).
    Serial,
    /// Probe register 0: V5, Modbus TCP, then raw RTU.
    Auto,
}

/// The `--parity` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ParityArg {
    None,
    Even,
    Odd,
}

impl ProfileArgs {
    /// The built-in profiles plus `--profiles-dir`.
    fn profiles(&self) -> Result<Profiles> {
        Ok(match &self.profiles_dir {
            Some(dir) => Profiles::with_dir(dir)?,
            None => Profiles::builtin()?,
        })
    }

    /// The protocol asked for by `--protocol` or `--modbus-tcp`, else `default`.
    fn protocol(&self, default: Protocol) -> Protocol {
        match (self.protocol, self.modbus_tcp) {
            (None, false) => default,
            (Some(WireArg::Solarman), _) => Protocol::Solarman,
            (Some(WireArg::ModbusTcp), _) | (None, true) => Protocol::ModbusTcp,
            (Some(WireArg::RtuOverTcp), _) => Protocol::RtuOverTcp,
            (Some(WireArg::Serial), _) => Protocol::Serial,
            (Some(WireArg::Auto), _) => Protocol::Auto,
        }
    }

    /// The profile to serve: `--profile`, else the demo's.
    fn served(&self) -> Result<Arc<inverter_monitor::profile::Profile>> {
        Ok(self.profiles()?.get(self.profile.as_deref().unwrap_or(DEMO_PROFILE))?)
    }
}

#[derive(Debug, Args)]
struct ReadArgs {
    /// The logger or gateway, HOST:PORT (all but --protocol serial).
    #[arg(long)]
    logger: Option<String>,
    /// The logger's serial number (Solarman only); learned from the logger when left out.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    serial: Option<u32>,
    #[command(flatten)]
    source: ProfileArgs,
    #[command(flatten)]
    line: LineArgs,
    /// Modbus slave id.
    #[arg(long, default_value_t = 1)]
    slave: u8,
    /// Largest read in registers (1..=125).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=125))]
    max_read: Option<u16>,
    /// Longest wait for one answer.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print one JSON array: {key, name, value, unit, registers} per reading.
    #[arg(long)]
    json: bool,
}

/// The serial port of `read --protocol serial`.
#[derive(Debug, Args)]
struct LineArgs {
    /// The serial port, e.g. /dev/ttyUSB0 (--protocol serial).
    #[arg(long)]
    device: Option<String>,
    /// The serial line's speed.
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    /// The serial line's parity.
    #[arg(long, value_enum, default_value = "none")]
    parity: ParityArg,
    /// The serial line's stop bits.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    stop_bits: u8,
}

#[derive(Debug, Args)]
struct DiscoverArgs {
    /// Ask one address, ADDR or ADDR:PORT, instead of broadcasting to the local network.
    #[arg(long)]
    target: Option<String>,
    /// How long to wait for answers.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print one JSON array: {ip, mac, serial} per logger.
    #[arg(long)]
    json: bool,
    /// Also show answers that were not a logger's.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8899")]
    listen: SocketAddr,
    /// The logger serial it answers to.
    #[arg(long, default_value_t = 2_712_345_678)]
    serial: u32,
    #[command(flatten)]
    source: ProfileArgs,
    /// Serve raw RTU on a new pseudo-terminal instead of TCP, printing the device a client
    /// opens (`protocol = "serial"`); with PATH, also a symlink there to it.
    #[arg(long, num_args = 0..=1, value_name = "PATH")]
    pty: Option<Option<PathBuf>>,
    /// Answer in two TCP writes.
    #[arg(long)]
    split: bool,
    /// Send a heartbeat with the request's sequence before every second answer.
    #[arg(long)]
    heartbeat: bool,
    /// Wait before each answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Close the connection on every Nth request.
    #[arg(long)]
    drop_every: Option<u32>,
    /// Damage the Modbus CRC of every Nth answer.
    #[arg(long)]
    bad_crc_every: Option<u32>,
    /// Send junk bytes before every Nth answer.
    #[arg(long)]
    garbage_every: Option<u32>,
    /// Append 00 00 after every CRC (a Deye firmware bug).
    #[arg(long)]
    double_crc: bool,
    /// Play a parallel stack: this many inverters behind the one logger, at slave ids 1..=N.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    inverters: u8,
    /// Answer V5 requests with AT text only, as a logger that speaks the AT text protocol.
    #[arg(long)]
    at_text: bool,
    /// Play a fleet: this many V5 loggers on the one port, logger serials --serial and up, each
    /// answering the requests its serial addresses with an inverter serial of its own
    /// (SIM0000000 and up). They share one simulated house.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    fleet: Option<u32>,
    /// Also answer the discovery probe (`inverter-monitor discover`) on this UDP port, on the
    /// --listen address. Off by default; 48899 is the port real loggers use.
    #[arg(long)]
    discovery_port: Option<u16>,
    /// Serve nothing: write a whole recorded day of the simulated inverter to this file (the
    /// `record` format, one line per poll), for `replay`. Takes --date, --fault, --interval,
    /// --utc-offset and --seed.
    #[arg(long, value_name = "FILE")]
    record_day: Option<PathBuf>,
    /// The UTC day --record-day records, 00:00 to 24:00.
    #[arg(long, requires = "record_day", value_name = "YYYY-MM-DD")]
    date: Option<chrono::NaiveDate>,
    /// The faults of the recorded day, comma-separated: spikes, zero-frames, counter-back,
    /// midnight-utc, dark-night, or all.
    #[arg(long, requires = "record_day", default_value = "", value_parser = parse_day_faults)]
    fault: DayFaults,
    /// Time between the recorded polls.
    #[arg(long, requires = "record_day", default_value = "60s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The inverter's clock offset from UTC, e.g. +10:00 (default: UTC, or +10:00 with
    /// midnight-utc).
    #[arg(long, requires = "record_day", value_name = "+HH:MM", allow_hyphen_values = true)]
    utc_offset: Option<chrono::FixedOffset>,
    /// Seeds the house's noise and where the faults go.
    #[arg(long, requires = "record_day", default_value_t = 1)]
    seed: u64,
}

fn parse_day_faults(text: &str) -> Result<DayFaults, String> {
    text.parse().map_err(|e: inverter_monitor::sim::day::DayError| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest and Sentry use rustls without a built-in provider: pick ring once, for all.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let command = cli.command.unwrap_or(Command::Demo {
        interval: Duration::from_secs(10),
        profile: DEMO_PROFILE.into(),
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        mqtt: None,
    });
    // `run` reads its config before the runtime starts: Sentry must be set up first and its
    // guard must outlive the runtime, so errors during shutdown are still sent.
    let (command, _sentry) = match command {
        Command::Run { config, shard } => match prepare_run(&config, &shard) {
            Ok((loaded, guard)) => (Prepared::Run(loaded), guard),
            Err(e) => return report_exit(e),
        },
        other => (Prepared::Other(other), None),
    };
    // One thread does it: a poll is microseconds of work, and every extra worker costs a stack
    // and a malloc arena on a Raspberry Pi. Blocking work (spool fsyncs) has its own pool.
    // The runtime's clock starts as it is built: the grid its sleeps are rounded to starts here.
    inverter_monitor::timer::mark_origin();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report_exit(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = match command {
        Prepared::Run(config) => runtime.block_on(run(*config)),
        Prepared::Other(command) => runtime.block_on(dispatch(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report_exit(e),
    }
}

/// Writes a command's output, its last act, to stdout and flushes it. A reader that has gone
/// (`inverter-monitor read … | head`) has what it wanted: like any CLI, the command ends
/// quietly with success, where `println!` would panic. Only this write is judged so: a broken
/// pipe to a logger stays an error.
///
/// # Errors
/// Another write error.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("cannot write to stdout")?),
    }
}

/// A command ready to run: `run` with its config loaded, or any other.
enum Prepared {
    Run(Box<Config>),
    Other(Command),
}

/// Loads the config of `run` (with the add-on's layers when it runs as one), sets up logging
/// and, with a DSN, Sentry.
fn prepare_run(
    file: &std::path::Path,
    shard: &ShardArg,
) -> Result<(Box<Config>, Option<sentry::ClientInitGuard>)> {
    let shard = shard.parse()?;
    let env = env();
    let addon = Addon::detect(&env).map(|addon| addon_layers(&addon)).transpose()?;
    let mut config = Config::load_from(Sources { file, addon: addon.as_ref(), env: &env })?;
    if let Some(shard) = shard {
        config.keep_shard(shard);
    }
    let guard = config.sentry.dsn.as_ref().map(|dsn| {
        let mut options = sentry::ClientOptions::new().maybe_release(sentry::release_name!());
        if let Some(environment) = &config.sentry.environment {
            options = options.environment(environment.clone());
        }
        let guard = sentry::init((dsn.expose(), options));
        inverter_monitor::panics::report_to_sentry();
        guard
    });
    init_logging(&config.log, guard.is_some());
    if guard.is_some() {
        tracing::info!("errors are reported to Sentry");
    }
    if let Some(sharding) = &config.sharding {
        log_shard(&config, sharding);
    }
    if let Some(addon) = &addon {
        let broker = addon.supervisor_broker.as_deref().unwrap_or("from the options");
        tracing::info!(options = %addon.options_file.display(), broker, "running as a Home Assistant add-on");
    }
    Ok((Box::new(config), guard))
}

/// What this shard polls, once at the start; a shard with nothing to poll says why it stays up.
fn log_shard(config: &Config, sharding: &inverter_monitor::config::Sharding) {
    let shard = sharding.shard.to_string();
    let names: Vec<&str> = config.inverters.iter().map(|i| i.name.as_str()).collect();
    let data_dir = config.data_dir.display();
    tracing::info!(%shard, of = sharding.fleet, inverters = ?names, %data_dir, service_parts = sharding.service_parts, "sharded: polling this shard's inverters only");
    if names.is_empty() {
        tracing::warn!(%shard, "this shard polls no inverter: there are more shards than inverters (or stacks) to spread; it stays up, idle");
    }
}

/// The add-on's layers. Asking the Supervisor takes a runtime of its own: the service's runtime
/// starts only after Sentry, which needs the config.
fn addon_layers(addon: &Addon) -> Result<AddonLayers> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(addon.layers())?)
}

/// Prints the error with its causes, once, and fails.
fn report_exit(error: anyhow::Error) -> ExitCode {
    // Not eprintln!: it panics when stderr is closed too.
    let _ = writeln!(std::io::stderr(), "error: {error:#}");
    ExitCode::FAILURE
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        // `main` prepares `run` before the runtime exists (Sentry must come first).
        Command::Run { .. } => bail!("`run` is started by main, not dispatched"),
        Command::Demo { interval, profile, http, mqtt } => demo(interval, &profile, http, mqtt).await,
        Command::Read(args) => read(args).await,
        Command::Discover(args) => find_loggers(args).await,
        Command::Simulate(args) => simulate(*args).await,
        Command::CheckConfig { file, shard } => check_config(file, &shard),
        Command::Record { config, out } => record(config, out).await,
        Command::Replay(args) => replay(args).await,
        Command::Healthcheck { url, timeout } => {
            print_out(&format!("{}\n", inverter_monitor::web::probe(&url, timeout).await?))
        }
    }
}

/// Logs to stderr (stdout carries tables and JSON); with Sentry, errors also become events and
/// warnings breadcrumbs.
fn init_logging(log: &LogConfig, sentry: bool) {
    use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `log.level` is validated with the config, and the commands' own levels are constants.
    let configured = log_filter(&log.level).expect("a log filter checked before");
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => log_filter(&directives).unwrap_or_else(|reason| {
            // Not through tracing: the filter it falls back to could hide the line.
            let _ = writeln!(
                std::io::stderr(),
                "warning: RUST_LOG is ignored, `{directives}` is not a log filter: {reason}"
            );
            configured
        }),
        _ => configured,
    };
    // Colour only on a terminal and without NO_COLOR: tracing checks NO_COLOR but not whether
    // stderr is a file or the journal, which would keep the escape codes as garbage.
    let ansi = report::terminal::stderr_ansi();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = match log.format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    // Only our own events go to Sentry: the HTTP stack that carries them logs too, and feeding
    // its errors back into Sentry would loop.
    let ours = |level| Targets::new().with_target("inverter_monitor", level);
    let errors = sentry.then(|| ErrorLayer::new().with_filter(ours(tracing::Level::ERROR)));
    let breadcrumbs = sentry.then(|| BreadcrumbLayer::new().with_filter(ours(tracing::Level::INFO)));
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(errors).with(breadcrumbs).try_init();
}

fn env() -> HashMap<String, String> {
    std::env::vars().collect()
}

async fn run(config: Config) -> Result<()> {
    let console =
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) { Console::Table } else { Console::Quiet };
    let cancel = shutdown_on_signal();
    service::run(config, console, cancel).await?;
    Ok(())
}

async fn demo(interval: Duration, profile: &str, http: SocketAddr, mqtt: Option<SocketAddr>) -> Result<()> {
    // The demo's stderr is for the demo. rumqttd logs every connection at info, and at error
    // the readiness probe's bare connect, a client that leaves and its own shutdown; a broker
    // that cannot start or stops is ours to say (demo_broker).
    init_logging(&LogConfig { level: "info,rumqttd=off".into(), ..LogConfig::default() }, false);
    // Before the simulator: a taken port or a binary without the broker ends the demo at once.
    let broker = mqtt.map(demo_broker::start).transpose()?;
    let cancel = shutdown_on_signal();
    let profile = Profiles::builtin()?.get(profile)?;
    let sim_config = SimConfig::new(2_712_345_678);
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot open the simulator's port")?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Simulator::new(sim_config, profile.clone()));
    let server = tokio::spawn(sim::serve(listener, sim, cancel.child_token()));
    tracing::info!("demo: simulated {} logger on {addr}, serial 2712345678; Ctrl-C stops", profile.id());
    // The inverter's profile is left at "auto": the demo shows detection too.
    let mut inverter = InverterConfig::new("demo", &addr.ip().to_string(), addr.port(), 2_712_345_678);
    inverter.interval = interval;
    let mut config = Config::new(vec![inverter]);
    config.http = Some(HttpConfig::new(http));
    config.mqtt = broker.map(demo_mqtt);
    let running = service::start(config, Console::Table, &cancel)?;
    if let Some(page) = running.http {
        let _ = writeln!(std::io::stderr(), "demo: the status page is at http://{page}/");
    }
    running.wait().await?;
    let _ = server.await;
    // Not eprintln!: it panics when stderr is closed.
    let _ = writeln!(
        std::io::stderr(),
        "demo over. Your own logger: `inverter-monitor discover` finds it on the network and \
         prints its [[inverter]] block; `inverter-monitor read --logger IP:8899` reads it once."
    );
    Ok(())
}

/// Points the demo at its embedded broker, discovery on, and says how to watch it.
fn demo_mqtt(listen: SocketAddr) -> MqttConfig {
    let local = demo_broker::local_address(listen);
    let _ = writeln!(
        std::io::stderr(),
        "demo: MQTT broker on {listen}; try mosquitto_sub -h {} -p {} -v -t '#'",
        local.ip(),
        local.port()
    );
    MqttConfig { host: local.ip().to_string(), port: local.port(), ..MqttConfig::default() }
}

async fn read(args: ReadArgs) -> Result<()> {
    init_read_logging();
    let protocol = args.source.protocol(Protocol::Auto);
    // Without --serial a Solarman logger names its own serial in its first answer.
    let serial = args.serial.unwrap_or_default();
    let mut inverter = match (protocol, &args.logger) {
        (Protocol::Serial, _) => serial_inverter(&args.line)?,
        (_, None) => bail!("--logger HOST:PORT is required, the logger's or the gateway's address"),
        (_, Some(logger)) => {
            let (host, port) = logger.rsplit_once(':').context("--logger must be HOST:PORT")?;
            let port: u16 =
                port.parse().with_context(|| format!("--logger port `{port}` is not a number"))?;
            InverterConfig::new("read", host, port, serial)
        }
    };
    inverter.protocol = protocol;
    inverter.serial = args.serial;
    if let Some(profile) = &args.source.profile {
        inverter.profile = profile.clone();
    }
    inverter.slave_id = args.slave;
    inverter.max_read = args.max_read;
    inverter.read_timeout = args.timeout;
    inverter.unavailable_after = 1;
    let mut poller = Poller::for_inverter(&inverter, &args.source.profiles()?)?;
    let mut link = Link::new(inverter.target(), inverter.link_settings());
    let mut snapshot = read_once(&mut poller, &mut link, &inverter).await?;
    // A poll that finds battery packs reads them from the next poll on: one more shows them.
    if poller.profile().is_some_and(|p| !Arc::ptr_eq(p, &snapshot.profile)) {
        snapshot = read_once(&mut poller, &mut link, &inverter).await?;
    }
    let header = format!("profile {}", snapshot.choice.describe());
    if let (Protocol::Auto, Some(found)) = (protocol, link.target().wire.protocol()) {
        let _ = writeln!(
            std::io::stderr(),
            "protocol {found}, found by probing (--protocol {found} skips the probe)"
        );
    }
    if args.json {
        // stdout carries only the JSON; the header goes to stderr with the logs (a closed
        // stderr loses the header, never the JSON).
        let _ = writeln!(std::io::stderr(), "{header}");
        print_out(&format!("{}\n", serde_json::to_string_pretty(&snapshot.views())?))
    } else {
        let terminal = report::terminal::Terminal::stdout();
        print_out(&format!(
            "{}\n{}",
            report::wrap(&header, terminal.width, "  "),
            report::table(&snapshot, terminal)
        ))
    }
}

/// `read` logs warnings, and the info line that names a learned serial: it is the one thing
/// the user must copy into the config.
fn init_read_logging() {
    let level = "warn,inverter_monitor::transport::solarman=info";
    init_logging(&LogConfig { level: level.into(), format: LogFormat::Text }, false);
}

/// `discover`: probe, wait with a progress line, print what answered. No logger is a failure
/// (exit 1) with a hint, so scripts can tell.
async fn find_loggers(args: DiscoverArgs) -> Result<()> {
    init_logging(
        &LogConfig { level: if args.verbose { "debug" } else { "warn" }.into(), ..LogConfig::default() },
        false,
    );
    let target = match &args.target {
        Some(target) => {
            discover::resolve_target(target).await.with_context(|| format!("--target `{target}`"))?
        }
        None => discover::BROADCAST,
    };
    let _ = writeln!(
        std::io::stderr(),
        "asking {target} for Solarman loggers; waiting {} for loggers…",
        humantime::format_duration(args.timeout)
    );
    let found = discover::discover(target, args.timeout).await?;
    report_malformed(&found, args.verbose);
    if args.json {
        print_out(&format!("{}\n", serde_json::to_string_pretty(&found.loggers)?))?;
    } else if !found.loggers.is_empty() {
        print_out(&describe_loggers(&found.loggers))?;
    }
    if found.loggers.is_empty() {
        bail!(
            "no logger answered within {}. Is this machine on the same network (subnet) as the logger? \
             Routers with Wi-Fi client isolation or a guest network block the broadcast; if you know \
             the logger's IP, try --target IP. Loggers whose serial starts with D have no local \
             discovery (and no port 8899): see docs/install.md.",
            humantime::format_duration(args.timeout)
        );
    }
    Ok(())
}

/// Answers that were not a logger's: a count on stderr, each one with --verbose.
fn report_malformed(found: &discover::Found, verbose: bool) {
    let mut err = std::io::stderr();
    if found.malformed.is_empty() {
        return;
    }
    if !verbose {
        let n = found.malformed.len();
        let _ = writeln!(err, "ignored {n} answer(s) that were not IP,MAC,SERIAL (--verbose shows them)");
        return;
    }
    for bad in &found.malformed {
        let _ = writeln!(err, "ignored an answer from {}: \"{}\": {}", bad.from, bad.text, bad.reason);
    }
}

/// Each logger, then a config block to paste.
fn describe_loggers(loggers: &[discover::Logger]) -> String {
    let mut out = format!("found {} logger(s):\n", loggers.len());
    for logger in loggers {
        out += &format!("  {:<15}  MAC {}  serial {}\n", logger.ip, logger.mac_pretty(), logger.serial);
    }
    out += "\nadd to inverter-monitor.toml (check the name; `profile = \"auto\"` detects the inverter):\n";
    for (i, logger) in loggers.iter().enumerate() {
        let name = if loggers.len() == 1 { "inverter".to_string() } else { format!("inverter{}", i + 1) };
        out += &format!("\n{}", logger.config_block(&name));
    }
    out
}

/// One poll for `read`, its failure naming the logger.
async fn read_once(poller: &mut Poller, link: &mut Link, inverter: &InverterConfig) -> Result<Snapshot> {
    let now = chrono::Utc::now();
    poller
        .poll_once(link, now, chrono::Local::now().naive_local())
        .await
        .with_context(|| format!("reading {} failed", inverter.target().addr()))
}

/// The inverter of `read --protocol serial`: the device and its line, checked as the config is.
fn serial_inverter(line: &LineArgs) -> Result<InverterConfig> {
    let device =
        line.device.as_deref().context("--device is required for --protocol serial, e.g. /dev/ttyUSB0")?;
    let mut inverter = InverterConfig::new("read", "", 0, 0);
    inverter.device = Some(device.into());
    inverter.baud = line.baud;
    inverter.parity = match line.parity {
        ParityArg::None => Parity::None,
        ParityArg::Even => Parity::Even,
        ParityArg::Odd => Parity::Odd,
    };
    inverter.stop_bits = line.stop_bits;
    Ok(inverter)
}

async fn simulate(args: SimulateArgs) -> Result<()> {
    init_logging(&LogConfig::default(), false);
    let profile = args.source.served()?;
    if let Some(out) = &args.record_day {
        return record_day(&args, profile, out);
    }
    let mut config = SimConfig::new(args.serial);
    config.wire = match (args.source.protocol(Protocol::Solarman), &args.pty) {
        (Protocol::Solarman, _) => SimWire::Solarman,
        (Protocol::ModbusTcp, _) => SimWire::ModbusTcp,
        (Protocol::RtuOverTcp, _) => SimWire::RtuOverTcp,
        (Protocol::Serial, Some(_)) => SimWire::RtuOverTcp,
        (Protocol::Serial, None) => {
            bail!("--protocol serial: add --pty, a pseudo-terminal standing in for the port")
        }
        (Protocol::Auto, _) => bail!("--protocol auto is for clients; the simulator speaks one protocol"),
    };
    config.faults = Faults {
        split: args.split,
        heartbeat: args.heartbeat,
        delay: Duration::from_millis(args.delay_ms),
        drop_every: args.drop_every,
        bad_crc_every: args.bad_crc_every,
        garbage_every: args.garbage_every,
        double_crc: args.double_crc,
        at_text: args.at_text,
    };
    if let Some(link) = &args.pty {
        return simulate_pty(config, profile, link.as_deref()).await;
    }
    if args.fleet.is_some() && (config.wire != SimWire::Solarman || args.inverters > 1) {
        bail!(
            "--fleet: the loggers of a fleet are told apart by their V5 serial; use --protocol solarman and one inverter each"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, serial = args.serial, profile = profile.id(), inverters = args.inverters, faults = ?config.faults, "simulated logger listening; Ctrl-C stops");
    let cancel = shutdown_on_signal();
    if let Some(size) = args.fleet {
        return simulate_fleet(listener, config, profile, size, cancel).await;
    }
    if let Some(port) = args.discovery_port {
        let addr = SocketAddr::new(args.listen.ip(), port);
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot answer discovery on UDP {addr}"))?;
        tracing::info!(%addr, "answering the discovery probe; try `inverter-monitor discover --target {addr}`");
        tokio::spawn(sim::answer_discovery(socket, args.serial, cancel.child_token()));
    }
    let units = (1..=args.inverters).map(|slave| {
        // Each inverter of a stack has its own serial: the master's, then the next numbers.
        let serial = config
            .inverter_serial
            .parse::<u64>()
            .map_or_else(|_| config.inverter_serial.clone(), |n| (n + u64::from(slave) - 1).to_string());
        let unit = SimConfig { slave, inverter_serial: serial, ..config.clone() };
        Arc::new(Simulator::new(unit, profile.clone()))
    });
    sim::serve_stack(listener, units.collect(), cancel).await?;
    Ok(())
}

/// `simulate --record-day`: a whole day of polls, with faults, written at once; no TCP, no
/// waiting.
fn record_day(
    args: &SimulateArgs,
    profile: Arc<inverter_monitor::profile::Profile>,
    out: &std::path::Path,
) -> Result<()> {
    let Some(date) = args.date else { bail!("--record-day needs --date YYYY-MM-DD") };
    let interval = chrono::TimeDelta::from_std(args.interval).context("--interval")?;
    let day = Day {
        interval,
        utc_offset: args.utc_offset,
        faults: args.fault,
        seed: args.seed,
        ..Day::new(profile, date)
    };
    let made = day.polls()?;
    let mut text = String::new();
    for poll in &made.polls {
        text.push_str(&poll.to_line());
        text.push('\n');
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    let dark = made.polls.iter().filter(|p| p.failed.is_some()).count();
    tracing::info!(file = %out.display(), polls = made.polls.len(), dark, faults = ?made.injected, clock = %day.offset(), "fault day recorded");
    Ok(())
}

/// `simulate --fleet N`: N loggers on `listener`, keyed by serial; one log line for all of them.
async fn simulate_fleet(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    profile: Arc<inverter_monitor::profile::Profile>,
    size: u32,
    cancel: CancellationToken,
) -> Result<()> {
    let first = config.serial;
    let fleet = Arc::new(sim::Fleet::new(Arc::new(Simulator::new(config, profile)), size));
    let last = fleet.logger_serial(fleet.size() - 1).unwrap_or(first);
    tracing::info!(loggers = fleet.size(), serials = %format!("{first}..={last}"), inverter_serials = %format!("{}..={}", fleet.inverter_serial(first), fleet.inverter_serial(last)), "simulated fleet listening on one port, keyed by logger serial");
    sim::serve_fleet(listener, fleet, cancel).await?;
    Ok(())
}

/// `simulate --pty`: raw RTU on a pseudo-terminal; its device is printed on stdout, one line,
/// for scripts, and linked from `link` when given.
async fn simulate_pty(
    config: SimConfig,
    profile: Arc<inverter_monitor::profile::Profile>,
    link: Option<&std::path::Path>,
) -> Result<()> {
    let pty = Pty::open()?;
    let device = pty.path().to_string();
    if let Some(link) = link {
        // Only a symlink is replaced: a file someone keeps there is not ours to delete.
        if link.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&device, link)
            .with_context(|| format!("cannot link {} to {device}", link.display()))?;
    }
    tracing::info!(device, profile = profile.id(), faults = ?config.faults, "simulated inverter on a pseudo-terminal (protocol = \"serial\"); Ctrl-C stops");
    print_out(&format!("{device}\n"))?;
    let cancel = shutdown_on_signal();
    let served = sim::serve_pty(pty, Arc::new(Simulator::new(config, profile)), cancel).await;
    if let Some(link) = link {
        let _ = std::fs::remove_file(link);
    }
    Ok(served?)
}

/// `record`: the configured pollers, with recording on and every sink off.
async fn record(file: PathBuf, out: PathBuf) -> Result<()> {
    let mut config = Config::load(&file, &env())?;
    init_logging(&config.log, false);
    config.record = Some(RecordConfig { path: out.clone(), rotate: false });
    // Recording only: nothing reaches Home Assistant, a database or the network.
    config.mqtt = None;
    config.influxdb = None;
    config.http = None;
    config.health_pings = None;
    config.weather = None;
    config.consumers.clear();
    config.switches.clear();
    tracing::info!(out = %out.display(), "recording every poll; Ctrl-C stops");
    service::run(config, Console::Quiet, shutdown_on_signal()).await?;
    Ok(())
}

/// `replay`: the recording through the configured pipeline, then its report.
async fn replay(args: ReplayArgs) -> Result<()> {
    let config = Config::load(&args.config, &env())?;
    init_logging(&config.log, false);
    let polls = inverter_monitor::record::read(&args.recording)?;
    let pace = if args.fast {
        inverter_monitor::replay::Pace::Fast
    } else if args.speed > 0.0 && args.speed.is_finite() {
        inverter_monitor::replay::Pace::Speed(args.speed)
    } else {
        bail!("--speed must be a positive number")
    };
    let keys = (!args.svg_keys.is_empty()).then(|| args.svg_keys.clone());
    let mut capture = args.svg.as_ref().map(|_| inverter_monitor::replay::Capture::new(keys));
    let options = inverter_monitor::replay::Options { resume: args.resume, capture: capture.as_mut() };
    let report =
        inverter_monitor::replay::replay(&config, polls, pace, shutdown_on_signal(), options).await?;
    if let (Some(path), Some(capture)) = (&args.svg, &capture) {
        write_svg(path, &args.recording, capture)?;
    }
    print_out(&report.to_string())
}

/// `replay --svg`: the picture of the captured series, titled by the recording's file name
/// (not its path, so the same recording draws the same file wherever it lies).
fn write_svg(
    path: &std::path::Path,
    recording: &std::path::Path,
    capture: &inverter_monitor::replay::Capture,
) -> Result<()> {
    let name = recording
        .file_name()
        .map_or_else(|| recording.display().to_string(), |n| n.to_string_lossy().into_owned());
    let picture = inverter_monitor::replay::svg::render(&format!("Replay of {name}"), capture.series());
    std::fs::write(path, picture).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(svg = %path.display(), "picture written");
    Ok(())
}

fn check_config(file: PathBuf, shard: &ShardArg) -> Result<()> {
    let shard = shard.parse()?;
    let mut config = Config::load(&file, &env())?;
    let names: Vec<&str> = config.inverters.iter().map(|i| i.name.as_str()).collect();
    let mut out = format!("{}: ok ({} inverter(s): {})\n", file.display(), names.len(), names.join(", "));
    if let Some(shard) = shard {
        config.keep_shard(shard);
        out += &describe_shard(&config);
    }
    for stack in config.stacks().iter().filter(|s| s.len() > 1) {
        let member = |i: usize| {
            let inverter = &config.inverters[i];
            let settings = if inverter.shows_settings(i == stack[0]) { "with" } else { "without" };
            format!("{} (slave {}, {settings} settings)", inverter.name, inverter.slave_id)
        };
        let members: Vec<String> = stack.iter().map(|&i| member(i)).collect();
        out += &format!(
            "  parallel stack on {}: {}\n",
            config.inverters[stack[0]].target().addr(),
            members.join(", ")
        );
    }
    for inverter in &config.inverters {
        if matches!(inverter.protocol, Protocol::Solarman | Protocol::Auto)
            && inverter.serial.is_none_or(|s| s == 0)
        {
            out += &format!(
                "  inverter {}: no serial; it will be learned from the logger and kept in {}\n",
                inverter.name,
                inverter_monitor::transport::LoggerBook::new(&config.data_dir).path().display()
            );
        }
    }
    // Loading validated every profile; list them with the codes detection matches.
    let profiles = config.profiles()?;
    for id in profiles.ids() {
        let profile = profiles.get(id)?;
        let codes: Vec<String> = profile.header.device_types.iter().map(|c| format!("{c:#06x}")).collect();
        out += &format!(
            "  profile {id}: {} readings, device types [{}]\n",
            profile.readings.len(),
            codes.join(", ")
        );
    }
    print_out(&out)
}

/// `check-config --shard`: what this shard polls and keeps, the rest of the listing being
/// this shard's too.
fn describe_shard(config: &Config) -> String {
    let Some(sharding) = &config.sharding else { return String::new() };
    let names: Vec<&str> = config.inverters.iter().map(|i| i.name.as_str()).collect();
    let polled = if names.is_empty() { "no inverter".to_string() } else { names.join(", ") };
    let service = if sharding.service_parts { "here" } else { "on another shard" };
    format!(
        "  shard {}: polls {} of {} inverter(s): {polled}\n  shard {}: weather, load control and switches run {service}; state in {}\n",
        sharding.shard,
        names.len(),
        sharding.fleet,
        sharding.shard,
        config.data_dir.display()
    )
}

/// A token cancelled by Ctrl-C or SIGTERM (Docker and the HA Supervisor stop with SIGTERM).
fn shutdown_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    // The handlers are installed now, not when the task first runs: on the one-thread runtime
    // that is only after the service has started and said it listens, and a SIGTERM in between
    // (a pod moved right after its start) would end the process the default, unclean way.
    let signalled = wait_for_signal();
    tokio::spawn(async move {
        signalled.await;
        token.cancel();
    });
    cancel
}

#[cfg(unix)]
fn wait_for_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, interrupt) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Ok(mut term), Err(_)) => {
                term.recv().await;
            }
            (Err(_), _) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
