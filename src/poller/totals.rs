//! Total counters across restarts: the last good value of every `counter = "total"` reading,
//! kept in `<data_dir>/totals-<inverter>.json` and loaded into the plausibility state before the
//! first poll is judged.
//!
//! Without it a restart forgets the baseline, and the first value read after it is taken
//! whatever it is: a spike or a step back that the running service would have rejected would
//! reach Home Assistant's long-term statistics, for good. It owns the file and when it is
//! written: at most every [`SAVE_EVERY`] and once at shutdown, never at every poll (an SD
//! card's wear). A file that cannot be read is as good as none; one that cannot be written
//! costs a warning, never a poll.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::profile::Profile;
use crate::quality::Quality;

/// The longest the file lags behind the counters while the service runs.
const SAVE_EVERY: Duration = Duration::from_secs(10 * 60);

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// When the values were last good.
    time: Option<DateTime<Utc>>,
    /// The values by reading key.
    totals: BTreeMap<String, f64>,
}

/// One inverter's kept totals.
#[derive(Debug)]
pub(super) struct Totals {
    path: PathBuf,
    saved: Saved,
    /// Whether `saved` is in the current plausibility state.
    restored: bool,
    written: Option<Instant>,
}

impl Totals {
    /// The totals of inverter `name` kept in `data_dir`; none when the file is absent or
    /// unreadable.
    pub(super) fn load(data_dir: &Path, name: &str) -> Self {
        let path = data_dir.join(format!("totals-{name}.json"));
        let saved: Option<Saved> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        // A file just read is as good as one just written: the next write is due in
        // SAVE_EVERY, not at the first poll (a fleet would rewrite every file at once).
        let written = saved.is_some().then(Instant::now);
        Self { path, saved: saved.unwrap_or_default(), restored: false, written }
    }

    /// Puts the kept totals into `quality` once, before its first judgement.
    pub(super) fn restore(&mut self, quality: &mut Quality, profile: &Profile) {
        if self.restored {
            return;
        }
        self.restored = true;
        if let (Some(time), false) = (self.saved.time, self.saved.totals.is_empty()) {
            tracing::debug!(file = %self.path.display(), totals = self.saved.totals.len(), "total counters from the last run");
            quality.restore_totals(profile, &self.saved.totals, time);
        }
    }

    /// `quality` is about to be replaced (a new profile): what it knows is kept, and goes
    /// into the next one.
    pub(super) fn renew(&mut self, quality: &Quality, profile: &Profile) {
        self.take(quality, profile, None);
        self.restored = false;
    }

    /// After a poll at `now`: writes the file when it was neither read nor written yet, or
    /// [`SAVE_EVERY`] has passed since.
    pub(super) fn after_poll(&mut self, quality: &Quality, profile: &Profile, now: DateTime<Utc>) {
        if self.written.is_some_and(|at| at.elapsed() < SAVE_EVERY) {
            return;
        }
        self.take(quality, profile, Some(now));
        self.write();
    }

    /// At shutdown: the latest values, whatever the time.
    pub(super) fn shutdown(&mut self, quality: &Quality, profile: &Profile) {
        self.take(quality, profile, None);
        self.write();
    }

    fn take(&mut self, quality: &Quality, profile: &Profile, now: Option<DateTime<Utc>>) {
        let totals = quality.totals(profile);
        if totals.is_empty() {
            return;
        }
        self.saved.totals.extend(totals);
        self.saved.time = now.or(self.saved.time).or_else(|| Some(Utc::now()));
    }

    fn write(&mut self) {
        if self.saved.totals.is_empty() {
            return;
        }
        self.written = Some(Instant::now());
        if let Err(e) = crate::state_file::write(&self.path, &self.saved) {
            tracing::warn!(file = %self.path.display(), "cannot keep the total counters: {e}");
        }
    }
}
