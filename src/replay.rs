//! Replay: a recording ([`crate::record`]) fed through the service's own pipeline with the
//! recorded clock: the same [`Poller`] decodes and judges each recorded poll, and the same sinks
//! ([`crate::service::start_sinks`]: MQTT and Home Assistant, InfluxDB, metrics) get the same
//! [`Update`]s on the same bus. A user's recording reproduces what their Home Assistant saw.
//!
//! The trick that keeps it faithful is [`Recorded`], a [`Transport`] that answers each read
//! with the recorded registers (or the recorded refusal): the poller runs unchanged, nothing in
//! it knows it is replaying. This module owns the pacing and the [`Report`]; it must not judge a
//! value itself.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, InverterConfig};
use crate::mqtt::state::StateCache;
use crate::poller::{self, PollError, Poller, Snapshot, Update};
use crate::profile::{ProfileError, Profiles};
use crate::protocol::{Answer, Exception, ExceptionCode, Request, Response};
use crate::record::Poll;
use crate::service::{Console, ServiceError, TaskError};
use crate::transport::{self, Counters, Transport};

pub mod series;
pub mod svg;

pub use series::Capture;

/// Updates the replay's bus holds: the replay waits for the sinks rather than let one miss any.
const BUS: usize = 64;
/// The longest the replay waits for the MQTT broker before it starts.
const CONNECT: Duration = Duration::from_secs(10);
/// The longest the sinks get to take in the last updates before the replay stops them.
const DRAIN: Duration = Duration::from_secs(10);

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A recorded profile is not known (a recording from a build with other profiles).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The configured sinks cannot start.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A sink ended before the replay did.
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// How fast the recorded polls follow each other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The recorded gaps divided by this factor (1: as recorded).
    Speed(f64),
    /// No gaps: as fast as the sinks take the updates.
    Fast,
}

/// What a replay did: polls, what plausibility rejected, and what reached Home Assistant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Recorded polls replayed.
    pub polls: usize,
    /// Polls that produced no snapshot (a whole-poll rule, or nothing readable).
    pub failed: usize,
    /// Of those, polls the logger slept through at night, published by the night rule
    /// (`poller::night`: totals kept, sun power 0 W).
    pub night: usize,
    /// Rejections by rule: readings, and whole polls (`zero_frame`, `zero_poll`).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Counter values (total and daily) that passed the counter checks.
    pub counters_checked: u64,
    /// State messages the MQTT sink publishes: one per inverter per accepted poll.
    pub state_messages: usize,
    /// Values in those messages, `time` not counted.
    pub values_published: usize,
    /// How long the replay took.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "polls replayed:    {} ({} without a snapshot", self.polls, self.failed)?;
        if self.night > 0 {
            write!(f, ", {} of them published by the night rule", self.night)?;
        }
        writeln!(f, ")")?;
        writeln!(f, "counters checked:  {}", self.counters_checked)?;
        if self.rejected.is_empty() {
            writeln!(f, "rejected:          none")?;
        }
        for (rule, count) in &self.rejected {
            writeln!(f, "rejected {rule:<17} {count}")?;
        }
        writeln!(
            f,
            "to Home Assistant: {} state messages, {} values",
            self.state_messages, self.values_published
        )?;
        writeln!(f, "took:              {:.3?}", self.elapsed)
    }
}

impl Report {
    /// Counts one poll's outcome, before it becomes an update.
    fn count(&mut self, outcome: &Result<Snapshot, PollError>) {
        self.polls += 1;
        match outcome {
            Ok(snapshot) => {
                let counters = snapshot.iter().filter(|(spec, _)| spec.def.counter.is_some()).count();
                self.counters_checked += counters as u64;
            }
            Err(_) => self.failed += 1,
        }
    }
}

/// A [`Transport`] that answers from one recorded poll: a read the recording holds gets its
/// registers, a read it recorded as refused gets that refusal, anything else (a read the
/// recording never made, or a write: a replay never writes) an "illegal data address".
#[derive(Debug, Default)]
pub struct Recorded {
    poll: Option<Poll>,
    counters: Counters,
}

impl Recorded {
    /// Serves `poll` from now on.
    pub fn serve(&mut self, poll: Poll) {
        self.poll = Some(poll);
    }

    fn answer(&self, request: &Request) -> Answer {
        let refuse = Err(Exception::Modbus(ExceptionCode::IllegalDataAddress));
        let (Request::ReadHolding { addr, count }, Some(poll)) = (request, &self.poll) else { return refuse };
        if let Some(refused) = poll.refused.iter().find(|r| r.start == *addr && r.count == *count) {
            return Err(refused.exception());
        }
        match poll.registers(*addr, *count) {
            Some(values) => Ok(Response::Registers(values.to_vec())),
            None => refuse,
        }
    }
}

impl Transport for Recorded {
    fn call(&mut self, request: &Request) -> impl Future<Output = Result<Answer, transport::Error>> + Send {
        // A poll the logger did not answer fails as it did, with the recorded reason.
        let answer = match self.poll.as_ref().and_then(|p| p.failed.as_deref()) {
            Some(why) => Err(transport::Error::Io(std::io::Error::other(format!("recorded: {why}")))),
            None => Ok(self.answer(request)),
        };
        async move { answer }
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// One recorded inverter: its poller, its transport, and the state its MQTT sink would hold.
struct Replayed {
    poller: Poller,
    transport: Recorded,
    state: StateCache,
}

/// Replays `polls` through the sinks of `config` at `pace`, until done or `cancel`; returns the
/// report once the sinks have taken every update and stopped.
///
/// The total counters are judged afresh, as by a service that never ran before, and kept at
/// the end in `<data_dir>/replay` (a directory of the replay's own: a replay never touches the
/// running service's), for a replay with [`Options::resume`].
///
/// # Errors
/// A recorded profile that does not exist, or sinks that cannot start or fail.
pub async fn run(
    config: &Config,
    polls: Vec<Poll>,
    pace: Pace,
    cancel: CancellationToken,
) -> Result<Report, ReplayError> {
    replay(config, polls, pace, cancel, Options::default()).await
}

/// What a replay does beside replaying: the CLI's `--resume` and `--svg`.
#[derive(Default)]
pub struct Options<'a> {
    /// Judge the first polls by the total counters the last replay with this `data_dir` kept,
    /// as a restarted service judges them by what it kept (`replay --resume`): a spike or a
    /// step back right after the restart is rejected.
    pub resume: bool,
    /// Collect these series on the way (`replay --svg`); `None` collects nothing and costs
    /// nothing.
    pub capture: Option<&'a mut Capture>,
}

/// Where a replay keeps its total counters: emptied first unless `resume`.
fn kept_totals(config: &Config, resume: bool) -> std::path::PathBuf {
    let dir = config.data_dir.join("replay");
    if !resume
        && let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), "the last replay's totals stay: {e}");
    }
    dir
}

/// [`run`] with `options`: resuming, capturing.
///
/// # Errors
/// As [`run`].
pub async fn replay(
    config: &Config,
    polls: Vec<Poll>,
    pace: Pace,
    cancel: CancellationToken,
    options: Options<'_>,
) -> Result<Report, ReplayError> {
    let Options { resume, mut capture } = options;
    let kept = kept_totals(config, resume);
    let profiles = config.profiles()?;
    let stop = cancel.child_token();
    let (running, bus) = crate::service::start_sinks(config, Console::Quiet, &stop, BUS)?;
    if let Some(mqtt) = &running.mqtt {
        connected(&mqtt.connected(), &cancel).await;
    }
    let started = Instant::now();
    let mut inverters: BTreeMap<String, Replayed> = BTreeMap::new();
    let mut report = Report::default();
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    for poll in polls {
        if wait(pace, previous, poll.time, &cancel).await.is_err() {
            break;
        }
        previous = Some(poll.time);
        let inverter = match inverters.entry(poll.inverter.clone()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(replayed(config, &profiles, &poll, &kept)?)
            }
        };
        let (time, local) = (poll.time, poll.local);
        inverter.transport.serve(poll);
        let outcome = inverter.poller.poll_once(&mut inverter.transport, time, local).await;
        report.count(&outcome);
        let failed = outcome.is_err();
        let whole = series::whole_poll(&outcome);
        let update = poller::announce(&mut inverter.poller, &inverter.transport, outcome, time);
        if let (Some(capture), Some(profile), Some(poll)) =
            (capture.as_deref_mut(), inverter.poller.profile(), &inverter.transport.poll)
        {
            capture.observe(profile, poll, whole, &update);
        }
        if let Update::Polled { snapshot, .. } = &update {
            // A failed poll that still publishes is the night rule's.
            report.night += usize::from(failed);
            inverter.state.update(snapshot);
            report.state_messages += 1;
            report.values_published += inverter.state.len();
        }
        send(&bus, update).await;
    }
    inverters.values_mut().for_each(|i| i.poller.save_totals());
    // The pollers counted every rejection, of readings and of whole polls, as the service does.
    for (rule, count) in inverters.values().flat_map(|i| i.poller.rejected()) {
        *report.rejected.entry(rule).or_default() += count;
    }
    drain(&bus).await;
    report.elapsed = started.elapsed();
    stop.cancel();
    running.wait().await?;
    Ok(report)
}

/// The replayed inverter of `poll`: the configured one of that name (else a bare one), with the
/// recorded profile, so nothing is detected again; never writing, never setting its clock;
/// keeping its totals in `kept`, and knowing night as the service does.
fn replayed(
    config: &Config,
    profiles: &Profiles,
    poll: &Poll,
    kept: &std::path::Path,
) -> Result<Replayed, ProfileError> {
    let configured = config.inverters.iter().find(|i| i.name == poll.inverter);
    let base = configured.cloned().unwrap_or_else(|| InverterConfig::new(&poll.inverter, "recording", 0, 0));
    let inverter = InverterConfig { profile: poll.profile.clone(), writes: false, clock_sync: false, ..base };
    let poller = Poller::for_inverter(&inverter, profiles)?
        .keeping_totals(kept)
        .with_sun(crate::service::sun_down(config));
    // As the MQTT sink keeps it: a value no longer accepted leaves after three intervals.
    let state = StateCache::new(inverter.interval * 3);
    Ok(Replayed { poller, transport: Recorded::default(), state })
}

/// Waits for the MQTT sink's connection, for at most [`CONNECT`]: it publishes only while
/// connected, and a replay that started before would lose its first polls.
async fn connected(flag: &std::sync::atomic::AtomicBool, cancel: &CancellationToken) {
    let deadline = Instant::now() + CONNECT;
    while !flag.load(std::sync::atomic::Ordering::Relaxed) {
        if Instant::now() >= deadline || cancel.is_cancelled() {
            tracing::warn!("replaying without an MQTT connection: Home Assistant sees nothing of it");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits out the recorded gap from `previous` to `time` at `pace`; `Err` when cancelled.
async fn wait(
    pace: Pace,
    previous: Option<chrono::DateTime<chrono::Utc>>,
    time: chrono::DateTime<chrono::Utc>,
    cancel: &CancellationToken,
) -> Result<(), ()> {
    if cancel.is_cancelled() {
        return Err(());
    }
    let (Pace::Speed(speed), Some(previous)) = (pace, previous) else { return Ok(()) };
    let gap = (time - previous).to_std().unwrap_or_default().div_f64(speed);
    tokio::select! {
        () = tokio::time::sleep(gap) => Ok(()),
        () = cancel.cancelled() => Err(()),
    }
}

/// Sends `update` once the bus has room for it without pushing out one a sink has not seen.
async fn send(bus: &broadcast::Sender<Update>, update: Update) {
    while bus.len() >= BUS - 1 {
        tokio::task::yield_now().await;
    }
    // No subscriber is fine: a config without sinks still gets its report.
    let _ = bus.send(update);
}

/// Waits until every sink has taken every update, for at most [`DRAIN`].
async fn drain(bus: &broadcast::Sender<Update>) {
    let deadline = Instant::now() + DRAIN;
    while !bus.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests;
