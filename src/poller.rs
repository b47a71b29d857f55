//! The per-inverter schedule: read plan → decode → plausibility → [`Snapshot`].
//!
//! [`Poller::poll_once`] is the step: it reads every planned block over a [`Transport`] and
//! returns a snapshot or a reason. With `profile = "auto"` its first step is finding out which
//! profile that is, over the same transport (module `detection`); until it knows, polls fail.
//! [`run`] is the loop around it: it sleeps, tells the bus, and watches for shutdown
//! (docs/style.md §8). The poller knows nothing about MQTT or databases; sinks subscribe to the
//! [`Update`]s it broadcasts.

mod availability;
mod clock;
mod detection;
pub mod lateness;
mod night;
mod packs;
mod snapshot;
mod stack;
mod status;
mod totals;
mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

pub use availability::{Availability, Change};
pub use detection::DetectFailure;
pub use night::{LONGEST_NIGHT, LOW_SUN_DEG, NEAR_ZERO_W, SunDown};
pub use snapshot::{PollFailure, PowerFlows, Snapshot, Update, direction, identity, sanitize};
pub use stack::{Member, run_stack, run_stack_with_writes};
pub use status::{InverterStatus, Statuses};

use crate::config::InverterConfig;
use crate::profile::detect::DETECT_COUNT;
use crate::profile::{
    AUTO, Choice, Profile, ProfileError, Profiles, ReadBlock, RegisterBlock, RegisterSet, plan,
};
use crate::protocol::{Exception, Request, Response};
use crate::quality::{Quality, Rejection, Rule};
use crate::transport::{self, Transport};

/// Why a poll produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The logger could not be asked, or its answer could not be trusted.
    #[error(transparent)]
    Transport(#[from] transport::Error),
    /// The poll as a whole was implausible.
    #[error("poll rejected ({}): {}", .0.rule.as_str(), .0.reason)]
    Rejected(Rejection),
    /// Every read was refused.
    #[error("every read was refused: {0}")]
    NothingRead(String),
    /// `profile = "auto"` and the inverter's family could not be found out.
    #[error("cannot choose the profile: {0}")]
    Detect(DetectFailure),
}

// By hand, not `#[from]`: the cause is in the message, so it must not be the error's source
// too, or a printed chain repeats it.
impl From<DetectFailure> for PollError {
    fn from(failure: DetectFailure) -> Self {
        Self::Detect(failure)
    }
}

/// What the poller knows about its inverter's family.
#[derive(Debug)]
enum Family {
    /// `profile = "auto"` and not detected yet: the next poll detects first.
    Unknown(Profiles),
    /// The profile in use; `check` holds the profiles to compare a named one against the
    /// device type with, until that has been done once; `packs` which battery packs the
    /// profile in use reads, when its family has packs.
    Known { profile: Arc<Profile>, choice: Arc<Choice>, check: Option<Profiles>, packs: Option<packs::Packs> },
}

impl Family {
    /// A profile named in the configuration, to be checked against `check` when given; and
    /// the profile in use.
    fn named(profile: Arc<Profile>, check: Option<Profiles>) -> (Self, Arc<Profile>) {
        let choice = Arc::new(Choice { profile: profile.id().to_string(), detected: false, device: None });
        Self::known(profile, choice, check)
    }

    /// `profile` known; the profile in use is it without battery packs until their count is
    /// read ([`packs`]).
    fn known(profile: Arc<Profile>, choice: Arc<Choice>, check: Option<Profiles>) -> (Self, Arc<Profile>) {
        let (in_use, packs) = packs::Packs::start(profile);
        (Self::Known { profile: in_use.clone(), choice, check, packs }, in_use)
    }

    /// The profile in use, once known.
    fn profile(&self) -> Option<&Arc<Profile>> {
        match self {
            Self::Known { profile, .. } => Some(profile),
            Self::Unknown(_) => None,
        }
    }
}

/// What one inverter's poller remembers between polls.
#[derive(Debug)]
pub struct Poller {
    name: Arc<str>,
    family: Family,
    plan: Vec<ReadBlock>,
    max_read: Option<u16>,
    interval: Duration,
    quality: Quality,
    availability: Availability,
    /// Rejections since start, by rule: readings and whole polls.
    rejected: BTreeMap<&'static str, u64>,
    serial: Option<Arc<str>>,
    logger_serial: u32,
    /// Whether the readings of group `settings` are read: not on a parallel stack's followers.
    settings: bool,
    /// [`identity`] of `serial`, `logger_serial` and the name: recomputed when one changes,
    /// not at every poll.
    identity: Arc<str>,
    /// With `clock_sync`: when to set the inverter's clock.
    clock: Option<crate::writes::clock::ClockSync>,
    /// With recording on: where each poll's raw registers go. `None` costs a poll nothing:
    /// the registers are moved into the record only when there is one to make, after decoding
    /// is done with them (no copy, and no field on [`Snapshot`] every sink would carry).
    tap: Option<crate::record::Tap>,
    /// With a data dir: the total counters kept across restarts.
    totals: Option<totals::Totals>,
    /// A PV-only logger asleep at night (module `night`).
    night: night::Night,
    /// How long after its loop starts the first poll is due: a fleet's polls are spread over
    /// the interval instead of all due at once.
    start_after: Duration,
    /// One of a fleet: its first "now online" is logged at debug, not once per inverter at info.
    fleet: bool,
}

/// A read the inverter refused: the block, and the exception it answered.
type Refusal = (ReadBlock, Exception);

impl Poller {
    /// A poller for inverter `name` with `profile`, polled every `interval`; it reports the
    /// inverter unavailable after `unavailable_after` failed polls in a row.
    pub fn new(name: &str, profile: Arc<Profile>, interval: Duration, unavailable_after: u32) -> Self {
        let (family, in_use) = Family::named(profile, None);
        Self::build(name, family, in_use.plan(), in_use.readings.len(), interval, unavailable_after)
    }

    /// Like [`Poller::new`] with a plan of one's own (a smaller `max_read` for fussy loggers).
    pub fn with_plan(
        name: &str,
        profile: Arc<Profile>,
        plan: Vec<ReadBlock>,
        interval: Duration,
        unavailable_after: u32,
    ) -> Self {
        let (family, in_use) = Family::named(profile, None);
        Self::build(name, family, plan, in_use.readings.len(), interval, unavailable_after)
    }

    /// The fields every constructor fills alike; `readings` sizes the plausibility state.
    fn build(
        name: &str,
        family: Family,
        plan: Vec<ReadBlock>,
        readings: usize,
        interval: Duration,
        unavailable_after: u32,
    ) -> Self {
        Self {
            name: name.into(),
            family,
            plan,
            max_read: None,
            interval,
            quality: Quality::new(readings, interval * 3),
            availability: Availability::new(unavailable_after),
            rejected: BTreeMap::new(),
            serial: None,
            logger_serial: 0,
            settings: true,
            identity: identity(None, 0, name),
            clock: None,
            tap: None,
            totals: None,
            night: night::Night::default(),
            start_after: Duration::ZERO,
            fleet: false,
        }
    }

    /// A poller that detects its profile among `profiles` before its first poll, honouring
    /// `max_read` in the plan it then makes.
    pub fn detecting(
        name: &str,
        profiles: Profiles,
        max_read: Option<u16>,
        interval: Duration,
        unavailable_after: u32,
    ) -> Self {
        let poller = Self::build(name, Family::Unknown(profiles), Vec::new(), 0, interval, unavailable_after);
        Self { max_read, ..poller }
    }

    /// The poller of a configured inverter: detecting with `profile = "auto"`, else with the
    /// named profile, checked once against the device type. Its `settings` readings are left
    /// out when `settings = false`.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`] when the named profile does not exist.
    pub fn for_inverter(inverter: &InverterConfig, profiles: &Profiles) -> Result<Self, ProfileError> {
        let poller = Self::configured(inverter, profiles)?;
        poller.log_start(inverter, true);
        Ok(poller)
    }

    /// [`Poller::for_inverter`] without its log line: a fleet logs a summary instead of one
    /// line per inverter ([`Poller::log_start`]).
    ///
    /// # Errors
    /// As [`Poller::for_inverter`].
    pub fn configured(inverter: &InverterConfig, profiles: &Profiles) -> Result<Self, ProfileError> {
        let (name, interval, settings) =
            (&inverter.name, inverter.interval, inverter.settings.unwrap_or(true));
        let poller = if inverter.profile == AUTO {
            Self::detecting(name, profiles.clone(), inverter.max_read, interval, inverter.unavailable_after)
        } else {
            let profile = scoped(profiles.get(&inverter.profile)?, settings);
            let (family, profile) = Family::named(profile, Some(profiles.clone()));
            let plan = inverter.plan(&profile);
            let readings = profile.readings.len();
            let poller = Self::build(name, family, plan, readings, interval, inverter.unavailable_after);
            // The device-type check reads within the logger's limit too.
            Self { max_read: inverter.max_read, ..poller }
        };
        // The logger's serial names one inverter only: the others of a parallel stack, should
        // their serial be unreadable, fall back to their names.
        let logger_serial = if inverter.slave_id == 1 { inverter.serial.unwrap_or_default() } else { 0 };
        let clock = inverter.clock_sync.then(|| crate::writes::clock::ClockSync::new(inverter.clock_drift));
        Ok(Self { settings, clock, ..poller.with_logger_serial(logger_serial) })
    }

    /// Logs what this poller of `inverter` polls: at info when `loud`, else at debug.
    pub fn log_start(&self, inverter: &InverterConfig, loud: bool) {
        let (name, logger, interval) = (&self.name, inverter.target().addr(), self.interval);
        let (profile, reads) = (self.profile().map_or(AUTO, |p| p.id()), self.plan.len());
        match (self.profile().is_some(), loud) {
            (false, true) => {
                tracing::info!(inverter = %name, %logger, profile, ?interval, "polling; the profile is detected first");
            }
            (true, true) => tracing::info!(inverter = %name, %logger, profile, reads, ?interval, "polling"),
            (_, false) => tracing::debug!(inverter = %name, %logger, profile, reads, ?interval, "polling"),
        }
    }

    /// Names the logger's serial (`0`: none), the identity of an inverter whose profile maps
    /// no serial of its own; see [`identity`].
    pub fn with_logger_serial(mut self, serial: u32) -> Self {
        self.logger_serial = serial;
        self.identity = identity(self.serial.as_deref(), serial, &self.name);
        self
    }

    /// Makes the first poll due `after` the loop starts (later ones an interval apart from it).
    pub fn starting_after(self, after: Duration) -> Self {
        Self { start_after: after, ..self }
    }

    /// Marks the poller one of a fleet: the first availability it finds is logged at debug
    /// (ten thousand "now online" lines at start say nothing); later changes still at info.
    pub fn in_fleet(self) -> Self {
        Self { fleet: true, ..self }
    }

    /// Records every poll that read registers to `tap`: its raw blocks, before decoding.
    pub fn recording(self, tap: crate::record::Tap) -> Self {
        Self { tap: Some(tap), ..self }
    }

    /// Keeps the last good value of every total counter in `data_dir` (at most every ten
    /// minutes, and at [`Poller::save_totals`]), and judges the first polls by the values kept
    /// by the last run: a restart takes no spike and no step back.
    pub fn keeping_totals(self, data_dir: &std::path::Path) -> Self {
        let totals = totals::Totals::load(data_dir, &self.name);
        Self { totals: Some(totals), ..self }
    }

    /// Knows night by `sun` (the site's sun, when the configuration has a location), for a
    /// profile whose logger sleeps at night; without, by the fallback of module `night`.
    pub fn with_sun(self, sun: Option<SunDown>) -> Self {
        Self { night: night::Night::new(sun), ..self }
    }

    /// Writes the kept total counters now: at shutdown.
    pub fn save_totals(&mut self) {
        if let (Some(totals), Some(profile)) = (&mut self.totals, self.family.profile()) {
            totals.shutdown(&self.quality, profile);
        }
    }

    /// The reads each poll makes.
    pub fn plan(&self) -> &[ReadBlock] {
        &self.plan
    }

    /// The inverter's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Rejections since start, by rule: readings and whole polls (`zero_frame`, `zero_poll`).
    pub fn rejected(&self) -> &BTreeMap<&'static str, u64> {
        &self.rejected
    }

    /// The profile in use, once known.
    pub fn profile(&self) -> Option<&Arc<Profile>> {
        self.family.profile()
    }

    /// The profile in use and how it was chosen. With `profile = "auto"` the first call
    /// detects it; a named profile is checked once against the device type.
    async fn family<T: Transport>(
        &mut self,
        transport: &mut T,
    ) -> Result<(Arc<Profile>, Arc<Choice>), PollError> {
        match &mut self.family {
            Family::Unknown(profiles) => {
                let limit = self.max_read.unwrap_or(DETECT_COUNT);
                let (profile, choice) = detection::detect(&self.name, profiles, transport, limit).await?;
                let choice = Arc::new(choice);
                let (family, profile) = Family::known(scoped(profile, self.settings), choice.clone(), None);
                self.family = family;
                self.plan = profile.plan_within(self.max_read);
                self.quality = Quality::new(profile.readings.len(), self.interval * 3);
                Ok((profile, choice))
            }
            Family::Known { profile, choice, check, .. } => {
                if let Some(profiles) = check {
                    let limit = self.max_read.unwrap_or(DETECT_COUNT);
                    let device = detection::check(&self.name, profile, profiles, transport, limit).await?;
                    *choice = Arc::new(Choice { device, ..(**choice).clone() });
                    *check = None;
                }
                Ok((profile.clone(), choice.clone()))
            }
        }
    }

    /// One poll: every planned read, decoded and checked. `local` is the house's wall clock.
    ///
    /// # Errors
    /// [`PollError`] when the logger failed, nothing was readable or the poll was implausible.
    // Debug, not info: a span at the service's level is built, entered and left on every wake of
    // every poll, a cost per poll (docs/performance.md); events that matter name the inverter.
    #[tracing::instrument(level = "debug", skip_all, fields(inverter = %self.name))]
    pub async fn poll_once<T: Transport>(
        &mut self,
        transport: &mut T,
        now: DateTime<Utc>,
        local: NaiveDateTime,
    ) -> Result<Snapshot, PollError> {
        let started = Instant::now();
        let (profile, choice) = self.family(transport).await?;
        let (regs, refused) = match self.read_all(&profile, transport).await {
            Ok(read) => read,
            Err(PollError::Transport(error)) => {
                self.tape(&profile, Err(&error), now, local);
                return Err(PollError::Transport(error));
            }
            Err(error) => return Err(error),
        };
        let whole = Quality::zero_frame(&profile, &regs);
        let (readings, errors) = profile.decode(&regs);
        let local = inverter_clock(&profile, &readings).unwrap_or(local);
        self.tape(&profile, Ok((regs, &refused)), now, local);
        if let Some(rejection) = whole.or_else(|| Quality::zero_poll(&profile, &readings)) {
            *self.rejected.entry(rejection.rule.as_str()).or_default() += 1;
            return Err(PollError::Rejected(rejection));
        }
        if let Some(totals) = &mut self.totals {
            totals.restore(&mut self.quality, &profile);
        }
        let mut verdict = self.quality.filter(&profile, readings, now, local);
        if let Some(totals) = &mut self.totals {
            totals.after_poll(&self.quality, &profile, now);
        }
        verdict.rejected.extend(errors.into_iter().map(|(index, e)| Rejection {
            index: Some(index),
            rule: Rule::UnknownOption,
            reason: e.to_string(),
        }));
        for rejection in &verdict.rejected {
            *self.rejected.entry(rejection.rule.as_str()).or_default() += 1;
        }
        self.learn_serial(&profile, &verdict.accepted);
        self.follow_packs(&profile, &verdict.accepted);
        Ok(Snapshot {
            inverter: self.name.clone(),
            profile,
            choice,
            time: now,
            local,
            readings: verdict.accepted,
            rejected: verdict.rejected,
            refused,
            duration: started.elapsed(),
            reads: self.plan.len(),
            link: transport.counters().clone(),
            rejected_total: self.rejected.clone(),
            identity: self.identity.clone(),
        })
    }

    /// Hands the recorder what this poll read: its registers and refusals, or, when the
    /// logger did not answer, why (a replay meets the same silence: a logger asleep at night,
    /// an outage). Nothing is built when recording is off.
    fn tape(
        &self,
        profile: &Profile,
        read: Result<(RegisterSet, &[Refusal]), &transport::Error>,
        now: DateTime<Utc>,
        local: NaiveDateTime,
    ) {
        let Some(tap) = &self.tap else { return };
        let (blocks, refused, failed) = match read {
            Ok((regs, refused)) => (
                regs.into_blocks(),
                refused.iter().map(|(block, e)| crate::record::Refused::of(*block, *e)).collect(),
                None,
            ),
            Err(error) => (Vec::new(), Vec::new(), Some(error.to_string())),
        };
        tap.offer(crate::record::Poll {
            time: now,
            local,
            inverter: self.name.to_string(),
            profile: profile.id().to_string(),
            identity: self.identity.to_string(),
            blocks,
            refused,
            failed,
        });
    }

    /// Reads every planned block. A bridged block that is refused is split into the runs it
    /// bridged, for good: the inverter lacks something in the gap (docs/protocol.md §2.3).
    async fn read_all<T: Transport>(
        &mut self,
        profile: &Profile,
        transport: &mut T,
    ) -> Result<(RegisterSet, Vec<Refusal>), PollError> {
        let mut regs = RegisterSet::new();
        let mut refused = Vec::new();
        let mut i = 0;
        while let Some(block) = self.plan.get(i).copied() {
            let request = Request::ReadHolding { addr: block.start, count: block.count };
            match transport.call(&request).await? {
                Ok(Response::Registers(values)) => regs.insert(RegisterBlock { start: block.start, values }),
                Ok(Response::Written { .. }) => {
                    unreachable!("a read is never answered as a write: decode_answer checks the function")
                }
                Err(exception) => {
                    let parts = split(profile, block);
                    if parts.len() > 1 {
                        tracing::warn!(inverter = %self.name, start = block.start, count = block.count, %exception, "read refused; reading the mapped runs inside it separately from now on");
                        self.plan.splice(i..=i, parts);
                        continue;
                    }
                    refused.push((block, exception));
                }
            }
            i += 1;
        }
        if regs.blocks().is_empty() && !refused.is_empty() {
            let what: Vec<String> =
                refused.iter().map(|(b, e)| format!("{}+{}: {e}", b.start, b.count)).collect();
            return Err(PollError::NothingRead(what.join("; ")));
        }
        Ok((regs, refused))
    }

    /// Remembers the inverter serial when this poll read it; a poll that missed it keeps the
    /// last one, because Home Assistant ids, Influx tags and metric labels hang on it.
    fn learn_serial(&mut self, profile: &Profile, accepted: &[crate::profile::Reading]) {
        let Some(key) = &profile.header.device.serial else { return };
        let read = accepted.iter().find(|r| profile.readings[r.index].def.key == *key);
        let Some(text) = read.map(|r| r.value.to_string()) else { return };
        let text = text.trim();
        if !text.is_empty() && self.serial.as_deref() != Some(text) {
            self.serial = Some(text.into());
            self.identity = identity(Some(text), self.logger_serial, &self.name);
        }
    }

    /// Switches to the profile with the battery packs this poll's count reports, from the next
    /// poll on: new reads, and plausibility state afresh, since the reading indices moved.
    fn follow_packs(&mut self, profile: &Profile, accepted: &[crate::profile::Reading]) {
        let Family::Known { profile: in_use, packs: Some(packs), .. } = &mut self.family else { return };
        if let Some(next) = packs.follow(&self.name, profile, accepted) {
            if let Some(totals) = &mut self.totals {
                totals.renew(&self.quality, profile);
            }
            self.plan = next.plan_within(self.max_read);
            self.quality = Quality::new(next.readings.len(), self.interval * 3);
            *in_use = next;
        }
    }

    /// Records the outcome of a poll for availability; returns a change to announce.
    pub fn record(&mut self, ok: bool) -> Option<Change> {
        self.availability.record(ok)
    }

    /// Failed polls in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.availability.failures()
    }
}

/// The inverter's wall clock from this poll's readings, when the profile names them and they
/// make a valid time: daily counters reset at the inverter's midnight, whatever the host's
/// time zone (a container often runs in UTC).
fn inverter_clock(profile: &Profile, readings: &[crate::profile::Reading]) -> Option<NaiveDateTime> {
    profile.clock(|index| readings.iter().find(|r| r.index == index)?.value.as_f64())
}

/// `profile`, without its `settings` readings unless `settings`: a parallel stack's followers
/// take their settings from the master (docs/configuration.md, "Parallel stacks").
fn scoped(profile: Arc<Profile>, settings: bool) -> Arc<Profile> {
    if settings {
        return profile;
    }
    Arc::new(profile.narrowed(|r| r.def.group != SETTINGS_GROUP))
}

/// The profile group of the inverter's settings (work mode, time of use, limits).
const SETTINGS_GROUP: &str = "settings";

/// The mapped runs of `profile` inside `block`, without gap bridging.
fn split(profile: &Profile, block: ReadBlock) -> Vec<ReadBlock> {
    let inside = profile.addresses().filter(|a| block.contains(*a));
    plan::plan(inside, block.count, 0)
}

/// Polls `transport` every `interval` until `cancel`, announcing each outcome on `bus`.
pub async fn run<T: Transport>(
    poller: Poller,
    transport: T,
    interval: Duration,
    bus: broadcast::Sender<Update>,
    cancel: CancellationToken,
) {
    run_with_writes(poller, transport, interval, bus, None, cancel).await;
}

/// [`run`], also carrying out the commands of `writes` between polls over the same
/// transport: one request in flight per logger. After a write the next poll is at once, so
/// every sink sees the read-back state.
pub async fn run_with_writes<T: Transport>(
    mut poller: Poller,
    mut transport: T,
    interval: Duration,
    bus: broadcast::Sender<Update>,
    writes: Option<crate::writes::WritePort>,
    cancel: CancellationToken,
) {
    let mut writes = writes.map(writes::Writes::new);
    let mut next = Instant::now() + poller.start_after;
    loop {
        let wake = writes.as_ref().and_then(writes::Writes::wake).map(|(_, at)| at);
        let due = crate::timer::aligned(next);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = sleep_until(due) => lateness::record(due.elapsed()),
            command = recv(writes.as_mut()) => {
                if let Some(writes) = writes.as_mut() { writes.take(command, Instant::now()); }
                continue;
            }
            () = sleep_until(wake.unwrap_or(next)), if wake.is_some_and(|w| w < next) => {
                if let Some(writes) = writes.as_mut()
                    && writes.run_due(&poller, &mut transport, Instant::now()).await
                {
                    next = Instant::now();
                }
                continue;
            }
        }
        let now = Utc::now();
        let outcome = tokio::select! {
            () = cancel.cancelled() => break,
            outcome = poller.poll_once(&mut transport, now, Local::now().naive_local()) => outcome,
        };
        let update = announce(&mut poller, &transport, outcome, now);
        if let Some(writes) = writes.as_mut() {
            writes.observe(&update);
        }
        clock::after_poll(&mut poller, &update, &mut transport).await;
        // No subscriber is fine: the service may run without sinks.
        let _ = bus.send(update);
        next = next_after(next, interval);
    }
    poller.save_totals();
    tracing::debug!(inverter = %poller.name, "poller stopped");
}

/// The next write command, or never without writes.
async fn recv(writes: Option<&mut writes::Writes>) -> crate::writes::Command {
    match writes {
        Some(writes) => writes.recv().await,
        None => std::future::pending().await,
    }
}

/// When a poll due at `due` is next due: one `interval` on, or one interval from now when the
/// poll overran (no burst of catch-up polls after a long outage).
fn next_after(due: Instant, interval: Duration) -> Instant {
    let next = due + interval;
    let late = Instant::now();
    if next < late { late + interval } else { next }
}

/// Turns a poll outcome into the update sinks see, logging it once here at the edge. Public
/// for `replay`, which drives [`Poller::poll_once`] itself with the recorded clock.
pub fn announce<T: Transport>(
    poller: &mut Poller,
    transport: &T,
    outcome: Result<Snapshot, PollError>,
    now: DateTime<Utc>,
) -> Update {
    if let Err(PollError::Transport(error)) = &outcome
        && let Some(snapshot) = poller.night.failed(&poller.name, now, transport.counters().clone(), error)
    {
        // Asleep at night: no outage to count, nothing to log but the night's one line.
        return Update::Polled { snapshot: Arc::new(snapshot), change: None };
    }
    let first = poller.availability.is_online().is_none();
    let change = poller.record(outcome.is_ok());
    let name = poller.name.clone();
    match change {
        Some(change) if first && poller.fleet => {
            tracing::debug!(inverter = %name, "inverter is now {}", change.as_str());
        }
        Some(change) => tracing::info!(inverter = %name, "inverter is now {}", change.as_str()),
        None => {}
    }
    match outcome {
        Ok(snapshot) => {
            for r in &snapshot.rejected {
                let key = r.index.map(|i| snapshot.profile.readings[i].def.key.as_str()).unwrap_or("poll");
                tracing::warn!(inverter = %name, reading = key, rule = r.rule.as_str(), "reading rejected: {}", r.reason);
            }
            tracing::debug!(inverter = %name, readings = snapshot.readings.len(), duration = ?snapshot.duration, "poll ok");
            let snapshot = Arc::new(snapshot);
            poller.night.saw(&name, &snapshot);
            Update::Polled { snapshot, change }
        }
        Err(error) => {
            let consecutive_failures = poller.consecutive_failures();
            if change == Some(Change::Offline) {
                // The one line per outage that deserves attention (and a Sentry event).
                tracing::error!(inverter = %name, consecutive_failures, "inverter unavailable: {error}");
            } else {
                tracing::warn!(inverter = %name, consecutive_failures, "poll failed: {error}");
            }
            let failure = PollFailure {
                inverter: name,
                time: now,
                error: error.to_string(),
                consecutive_failures,
                link: transport.counters().clone(),
            };
            Update::Failed { failure: Arc::new(failure), change }
        }
    }
}
