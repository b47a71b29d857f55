//! The status board: what the status page and `/healthz` know about every inverter. Each
//! inverter's [`InverterStatus`] (last snapshot, last failure, failures in a row, availability),
//! read from the shared [`Statuses`], and 24 hours of power history in one-minute buckets with
//! the energy of the last 30 days, which only the board keeps.
//!
//! The history survives restarts: [`keep`] writes it to `<data_dir>/history.json` every
//! [`SAVE_EVERY`] and once more at shutdown (never per poll: a Raspberry Pi's SD card wears),
//! and [`StatusBoard::load`] reads it back, dropping power samples older than 24 hours. A crash loses
//! at most the minutes since the last save; a missing or unreadable file, an empty chart.
//!
//! It is web state: nothing outside `web` reads it. [`follow`] feeds the statuses, the board and
//! the metrics from the bus; readers take a short read lock and never hold it across an `.await`
//! (docs/style.md §9).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Local, NaiveDate, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::flow::ENERGY_TODAY;
use crate::poller::{InverterStatus, PowerFlows, Snapshot, Statuses, Update};
use crate::profile::Value;
use crate::sinks::metrics::Metrics;

/// One-minute buckets kept: 24 hours.
pub(crate) const HISTORY_MINUTES: usize = 24 * 60;

/// How often [`keep`] writes the history when it changed: a crash loses at most this much of
/// the chart, and a day costs 288 small writes.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);

/// The history file's name in the data dir.
pub(crate) const HISTORY_FILE: &str = "history.json";

/// Why the saved history could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryFileError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    /// The file is not a saved history (cut short, or from another program).
    #[error("{path} is not a saved history: {cause}")]
    Parse { path: PathBuf, cause: serde_json::Error },
}

/// One saved minute: `[minute, pv, load, battery, grid, polls]`.
type Row = (i64, f32, f32, f32, f32, u32);

/// The history file: each inverter's samples as `[minute, pv, load, battery, grid, polls]`
/// rows, compact, whole watts.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Saved {
    inverters: BTreeMap<String, Vec<Row>>,
    /// Each inverter's energy by day (absent in files of older versions).
    #[serde(default)]
    days: BTreeMap<String, BTreeMap<NaiveDate, DayEnergy>>,
}

/// Average power flows over one minute, in W (Deye signs: battery + discharge, grid + import).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    /// PV power, all strings.
    pub pv: f32,
    /// House load.
    pub load: f32,
    /// Battery power.
    pub battery: f32,
    /// Grid power.
    pub grid: f32,
    count: u32,
}

/// Days of energy kept for the bar chart.
pub(crate) const DAYS: usize = 30;

/// The largest clock drift, in s, taken as the inverter's idea of the date.
const MAX_TRUSTED_DRIFT_S: f64 = 12.0 * 3600.0;

/// One day's energy counters, in [`ENERGY_TODAY`]'s order, kWh; `None` where the family has none.
pub(crate) type DayEnergy = [Option<f64>; 6];

/// The power history of an inverter, and its energy of the last [`DAYS`] days.
#[derive(Debug, Clone, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    days: BTreeMap<NaiveDate, DayEnergy>,
}

impl History {
    /// Adds a snapshot's power flows to its minute's average. A poll that lacks one of them
    /// (rejected, not read) adds nothing: a gap, never a false zero.
    pub fn record(&mut self, snapshot: &Snapshot) {
        self.record_day(snapshot);
        let flows = PowerFlows::of(snapshot);
        let (Some(pv), Some(load), Some(battery), Some(grid)) =
            (flows.pv, flows.load, flows.battery, flows.grid)
        else {
            return;
        };
        let point = [pv, load, battery, grid].map(|w| w as f32);
        let minute = snapshot.time.timestamp().div_euclid(60) * 60;
        match self.samples.back_mut() {
            Some(last) if last.minute == minute => last.add(point),
            _ => {
                self.samples.push_back(Sample {
                    minute,
                    pv: 0.0,
                    load: 0.0,
                    battery: 0.0,
                    grid: 0.0,
                    count: 0,
                });
                if let Some(last) = self.samples.back_mut() {
                    last.add(point);
                }
            }
        }
        while self.samples.len() > HISTORY_MINUTES
            || self.samples.front().is_some_and(|s| s.minute < minute - 86_400)
        {
            self.samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// Each day's energy, oldest first: the last counters read on that day.
    pub fn days(&self) -> impl Iterator<Item = (&NaiveDate, &DayEnergy)> {
        self.days.iter()
    }

    /// Keeps the poll's energy counters as its day's. The day is the inverter's own, by its
    /// clock (the host's corrected by the drift read), since that is when its counters reset:
    /// the last poll of a day then holds the day's total, whichever clock is ahead. A clock
    /// more than [`MAX_TRUSTED_DRIFT_S`] off is wrong, not early or late, and the host's date
    /// is taken.
    fn record_day(&mut self, snapshot: &Snapshot) {
        let energy: DayEnergy = ENERGY_TODAY.map(|(key, _)| snapshot.get(key).and_then(Value::as_f64));
        if energy.iter().all(Option::is_none) {
            return;
        }
        let drift = snapshot.clock_drift().filter(|d| d.abs() <= MAX_TRUSTED_DRIFT_S).unwrap_or(0.0);
        let drift = chrono::Duration::milliseconds((drift * 1000.0) as i64);
        let day = (snapshot.time.with_timezone(&Local).naive_local() + drift).date();
        self.days.insert(day, energy);
        while self.days.len() > DAYS {
            self.days.pop_first();
        }
    }

    /// The rows [`Saved`] keeps.
    fn rows(&self) -> Vec<Row> {
        self.samples
            .iter()
            .map(|s| (s.minute, s.pv.round(), s.load.round(), s.battery.round(), s.grid.round(), s.count))
            .collect()
    }

    /// A history from saved rows: only the last 24 hours before `now`, oldest first, at most
    /// [`HISTORY_MINUTES`] of them, whatever the file says.
    fn from_rows(mut rows: Vec<Row>, now: DateTime<Utc>) -> Self {
        let now = now.timestamp();
        rows.retain(|row| row.0 > now - 86_400 && row.0 <= now);
        rows.sort_by_key(|row| row.0);
        rows.dedup_by_key(|row| row.0);
        let skip = rows.len().saturating_sub(HISTORY_MINUTES);
        let samples = rows
            .into_iter()
            .skip(skip)
            .map(|(minute, pv, load, battery, grid, count)| Sample { minute, pv, load, battery, grid, count })
            .collect();
        Self { samples, days: BTreeMap::new() }
    }
}

impl Sample {
    /// Folds one more poll into the running average.
    fn add(&mut self, [pv, load, battery, grid]: [f32; 4]) {
        let n = self.count as f32;
        let avg = |old: f32, new: f32| (old * n + new) / (n + 1.0);
        self.pv = avg(self.pv, pv);
        self.load = avg(self.load, load);
        self.battery = avg(self.battery, battery);
        self.grid = avg(self.grid, grid);
        self.count += 1;
    }
}

/// What the HTTP side knows about one inverter.
#[derive(Debug, Clone, Copy)]
pub struct InverterView<'a> {
    /// The inverter as the updates so far describe it.
    pub status: &'a InverterStatus,
    /// Power history.
    pub history: &'a History,
}

/// The status of every configured inverter, with its power history.
#[derive(Debug)]
pub struct StatusBoard {
    started: DateTime<Utc>,
    statuses: Statuses,
    histories: RwLock<BTreeMap<String, History>>,
    /// The inverters whose history is kept: the first [`CARDS`] by name, the ones the page
    /// draws. A fleet of ten thousand would otherwise hold (and write) a day of minutes each.
    charted: std::collections::HashSet<String>,
    /// A poll was recorded since the last save.
    dirty: AtomicBool,
}

/// Inverters the status page draws a card (and keeps a history) for; the rest are counted in
/// one line, and each is in /api/snapshot and /metrics.
pub(crate) const CARDS: usize = 24;

impl StatusBoard {
    /// A board over `statuses` with no history yet, started at `now`.
    pub fn new(statuses: Statuses, now: DateTime<Utc>) -> Self {
        let charted = statuses.read(|all| all.keys().take(CARDS).cloned().collect());
        Self { started: now, statuses, histories: RwLock::default(), charted, dirty: AtomicBool::new(false) }
    }

    /// A board over `statuses` with the history saved in `data_dir`, started at `now`. A
    /// missing file is a first start; an unreadable one is logged and the chart starts empty
    /// (the next save replaces it).
    pub fn load(statuses: Statuses, now: DateTime<Utc>, data_dir: &Path) -> Self {
        let board = Self::new(statuses, now);
        match read_saved(&data_dir.join(HISTORY_FILE)) {
            Ok(mut saved) => {
                let histories = saved
                    .inverters
                    .into_iter()
                    .map(|(name, rows)| {
                        let mut history = History::from_rows(rows, now);
                        history.days = saved.days.remove(&name).unwrap_or_default();
                        while history.days.len() > DAYS {
                            history.days.pop_first();
                        }
                        (name, history)
                    })
                    .filter(|(name, history)| {
                        board.charted.contains(name)
                            && (!history.samples.is_empty() || !history.days.is_empty())
                    })
                    .collect();
                *board.histories.write().unwrap_or_else(PoisonError::into_inner) = histories;
            }
            Err(e) => tracing::warn!("status page: the 24 h chart starts empty: {e}"),
        }
        board
    }

    /// Writes the history of every configured inverter to `data_dir`, when a poll was
    /// recorded since the last save. The file holds at most a day per configured inverter: a
    /// renamed or removed one's history is not carried on.
    ///
    /// # Errors
    /// The file cannot be written; the next save tries again.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let saved = self.read(|views| {
            let kept = || {
                views.iter().filter(|view| !view.history.samples.is_empty() || !view.history.days.is_empty())
            };
            Saved {
                inverters: kept().map(|view| (view.status.name.clone(), view.history.rows())).collect(),
                days: kept().map(|view| (view.status.name.clone(), view.history.days.clone())).collect(),
            }
        });
        let written = crate::state_file::write_compact(&data_dir.join(HISTORY_FILE), &saved);
        if written.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        written
    }

    /// When the service started.
    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// Adds a good poll's power flows to its inverter's history.
    pub fn record(&self, update: &Update) {
        if let Update::Polled { snapshot, .. } = update
            && self.charted.contains(&*snapshot.inverter)
        {
            let mut histories = self.histories.write().unwrap_or_else(PoisonError::into_inner);
            histories.entry(snapshot.inverter.to_string()).or_default().record(snapshot);
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Every configured inverter, by name, under the locks; `f` must be quick.
    pub fn read<R>(&self, f: impl FnOnce(Vec<InverterView<'_>>) -> R) -> R {
        self.statuses.read(|statuses| {
            let histories = self.histories.read().unwrap_or_else(PoisonError::into_inner);
            let none = History::default();
            let views = statuses
                .values()
                .map(|status| InverterView { status, history: histories.get(&status.name).unwrap_or(&none) })
                .collect();
            f(views)
        })
    }
}

/// The saved history in `path`; an empty one when there is no file yet.
fn read_saved(path: &Path) -> Result<Saved, HistoryFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
        Err(cause) => return Err(HistoryFileError::Read { path: path.to_path_buf(), cause }),
    };
    serde_json::from_slice(&bytes)
        .map_err(|cause| HistoryFileError::Parse { path: path.to_path_buf(), cause })
}

/// Saves `board`'s history to `data_dir` every [`SAVE_EVERY`] and once more at `cancel`.
pub(crate) async fn keep(board: Arc<StatusBoard>, data_dir: PathBuf, cancel: CancellationToken) {
    let mut every = tokio::time::interval(SAVE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        let stop = tokio::select! {
            () = cancel.cancelled() => true,
            _ = every.tick() => false,
        };
        // Small and rare (one file of at most a day per inverter): written inline.
        if let Err(e) = board.save(&data_dir) {
            tracing::warn!("status page: cannot save the 24 h chart in {}: {e}", data_dir.display());
        }
        if stop {
            return;
        }
    }
}

/// Feeds `statuses`, `board` and `metrics` from the bus until `cancel`.
pub(crate) async fn follow(
    statuses: Statuses,
    board: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    mut bus: broadcast::Receiver<Update>,
    cancel: CancellationToken,
) {
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = bus.recv() => update,
        };
        match update {
            Ok(update) => {
                statuses.record(&update);
                metrics.record(&update);
                board.record(&update);
            }
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("status page skipped {n} updates"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::{Config, InverterConfig};
    use crate::profile::Profiles;

    fn board(now: DateTime<Utc>, dir: &Path) -> StatusBoard {
        let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 8899, 42)]);
        StatusBoard::load(Statuses::new(&config), now, dir)
    }

    fn poll(board: &StatusBoard, at: DateTime<Utc>) {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let snapshot = crate::sim::fixture::snapshot(profile, "house", at);
        board.record(&Update::Polled { snapshot: Arc::new(snapshot), change: None });
    }

    fn samples(board: &StatusBoard) -> Vec<Sample> {
        board.read(|views| views[0].history.samples().copied().collect())
    }

    #[test]
    fn the_history_comes_back_after_a_restart_without_what_is_older_than_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let first = board(start, dir.path());
        for minute in 0..30 {
            poll(&first, start + chrono::Duration::minutes(minute));
        }
        first.save(dir.path()).unwrap();
        let before = samples(&first);
        assert_eq!(before.len(), 30);

        let later = start + chrono::Duration::minutes(31);
        let after: Vec<(i64, f32)> =
            samples(&board(later, dir.path())).iter().map(|s| (s.minute, s.load)).collect();
        let expected: Vec<(i64, f32)> = before.iter().map(|s| (s.minute, s.load.round())).collect();
        assert_eq!(after, expected, "the same minutes, to the watt");

        let days: Vec<_> =
            board(later, dir.path()).read(|views| views[0].history.days().map(|(d, e)| (*d, *e)).collect());
        assert_eq!(days.len(), 1, "today's energy came back too");
        assert!(days[0].1[0].is_some(), "with the PV of the day");

        let next_day = start + chrono::Duration::minutes(24 * 60 + 10);
        let kept = samples(&board(next_day, dir.path()));
        assert_eq!(kept.len(), 19, "minutes 11..30 are within the day; {kept:?}");
    }

    #[test]
    fn only_the_inverters_with_a_card_keep_a_history() {
        let names: Vec<String> = (0..CARDS + 2).map(|i| format!("inv{i:03}")).collect();
        let inverters =
            names.iter().map(|n| crate::config::InverterConfig::new(n, "127.0.0.1", 8899, 1)).collect();
        let board = StatusBoard::new(Statuses::new(&crate::config::Config::new(inverters)), Utc::now());
        let profile = crate::profile::Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        for name in &names {
            let snapshot = Arc::new(crate::sim::fixture::snapshot(profile.clone(), name, Utc::now()));
            board.record(&Update::Polled { snapshot, change: None });
        }
        let kept = board.read(|views| views.iter().filter(|v| v.history.samples().count() > 0).count());
        assert_eq!(kept, CARDS, "a day of minutes for the drawn cards only");
    }

    #[test]
    fn nothing_is_written_without_a_new_poll_and_a_broken_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let board = board(now, dir.path());
        board.save(dir.path()).unwrap();
        assert!(!dir.path().join(HISTORY_FILE).exists(), "no poll, no write");
        std::fs::write(dir.path().join(HISTORY_FILE), b"{\"inverters\":{\"house\":[[1,").unwrap();
        let broken = super::tests::board(now, dir.path());
        assert!(samples(&broken).is_empty());
        poll(&broken, now);
        broken.save(dir.path()).unwrap();
        assert_eq!(samples(&super::tests::board(now, dir.path())).len(), 1, "the next save replaced it");
        let minute = now.timestamp() - 60;
        let older = format!("{{\"inverters\":{{\"house\":[[{minute},1.0,2.0,3.0,4.0,1]]}}}}");
        std::fs::write(dir.path().join(HISTORY_FILE), older).unwrap();
        assert_eq!(samples(&super::tests::board(now, dir.path())).len(), 1, "a file without days loads");
    }
}
