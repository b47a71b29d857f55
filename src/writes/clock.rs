//! Keeping the inverter's clock right (`clock_sync = true`): when to set it, as a state
//! machine fed with both clocks and the time, so every rule is tested without waiting.
//!
//! The inverter's daily counters reset at its own midnight, and its time-of-use slots run on
//! its own clock, so a clock that drifts or misses a DST change shifts both. The rules:
//! compare the full date-time with the host's local time (the configured time zone, DST
//! aware); set it when the drift exceeds the threshold, at most once an hour, and at once
//! after the host's UTC offset changed (a DST change); and when the inverter goes back to
//! the old time after a sync twice (some loggers push their own), stop and say so once.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use tokio::time::Instant;

/// Least time between two syncs, a DST change aside.
pub const MIN_GAP: Duration = Duration::from_secs(3600);
/// Syncs the inverter undid before syncing stops.
const REVERTS: u8 = 2;

/// What to do about the clock after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Keep,
    /// Set the inverter's clock to this local time.
    Set(NaiveDateTime),
    /// The inverter undid our syncs twice: stop syncing (warn once).
    GiveUp,
}

/// One inverter's clock sync.
#[derive(Debug, Clone)]
pub struct ClockSync {
    threshold: Duration,
    last: Option<LastSync>,
    reverts: u8,
    stopped: bool,
}

/// The last sync: when, at which UTC offset, and whether a poll has seen it hold.
#[derive(Debug, Clone, Copy)]
struct LastSync {
    at: Instant,
    offset: FixedOffset,
    checked: bool,
}

impl ClockSync {
    /// Syncs when the drift exceeds `threshold`.
    pub fn new(threshold: Duration) -> Self {
        Self { threshold, last: None, reverts: 0, stopped: false }
    }

    /// The drift of `inverter` from `host`, in seconds (positive: the inverter is ahead).
    pub fn drift(inverter: NaiveDateTime, host: DateTime<FixedOffset>) -> f64 {
        (inverter - host.naive_local()).as_seconds_f64()
    }

    /// What to do after a poll that read `inverter`'s clock while the host's was `host`.
    pub fn step(&mut self, inverter: NaiveDateTime, host: DateTime<FixedOffset>, now: Instant) -> Step {
        if self.stopped {
            return Step::Keep;
        }
        let off = Self::drift(inverter, host).abs() > self.threshold.as_secs_f64();
        if let Some(last) = self.last.as_mut().filter(|l| !l.checked) {
            last.checked = true;
            if off && last.offset == *host.offset() {
                self.reverts += 1;
                if self.reverts >= REVERTS {
                    self.stopped = true;
                    return Step::GiveUp;
                }
            }
        }
        let due = self.last.is_none_or(|l| now >= l.at + MIN_GAP || l.offset != *host.offset());
        if off && due { Step::Set(host.naive_local()) } else { Step::Keep }
    }

    /// Records that the clock was set at `now`, the host's offset being `offset`.
    pub fn synced(&mut self, offset: FixedOffset, now: Instant) {
        self.last = Some(LastSync { at: now, offset, checked: false });
    }

    /// Records a sync that failed at `now`: the next try waits as after a sync (once an hour,
    /// or a new UTC offset), but there is nothing the inverter could have undone.
    pub fn attempted(&mut self, offset: FixedOffset, now: Instant) {
        self.last = Some(LastSync { at: now, offset, checked: true });
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn host(offset_hours: i32, hour: u32, minute: u32) -> DateTime<FixedOffset> {
        let zone = FixedOffset::east_opt(offset_hours * 3600).unwrap();
        zone.with_ymd_and_hms(2026, 3, 29, hour, minute, 0).unwrap()
    }

    fn at(host: DateTime<FixedOffset>, ahead_seconds: i64) -> NaiveDateTime {
        host.naive_local() + chrono::TimeDelta::seconds(ahead_seconds)
    }

    #[test]
    fn a_drift_beyond_the_threshold_is_set_once_an_hour() {
        let mut sync = ClockSync::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let h = host(1, 1, 0);
        assert_eq!(sync.step(at(h, 29), h, t0), Step::Keep, "within the threshold");
        assert_eq!(sync.step(at(h, -31), h, t0), Step::Set(h.naive_local()));
        sync.synced(*h.offset(), t0);
        assert_eq!(sync.step(at(h, 0), h, t0 + Duration::from_secs(60)), Step::Keep, "it held");
        // Drifted again within the hour: wait for the hour.
        assert_eq!(sync.step(at(h, 40), h, t0 + Duration::from_secs(120)), Step::Keep);
        assert_eq!(sync.step(at(h, 40), h, t0 + MIN_GAP), Step::Set(h.naive_local()));
    }

    #[test]
    fn a_dst_change_is_set_at_once() {
        let mut sync = ClockSync::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let winter = host(1, 1, 0);
        sync.synced(*winter.offset(), t0);
        assert_eq!(sync.step(at(winter, 0), winter, t0), Step::Keep);
        // 03:00 summer time is 02:00 winter time: the inverter shows an hour behind.
        let summer = host(2, 3, 0);
        let inverter = summer.naive_local() - chrono::TimeDelta::hours(1);
        assert_eq!(
            sync.step(inverter, summer, t0 + Duration::from_secs(60)),
            Step::Set(summer.naive_local())
        );
    }

    #[test]
    fn a_failed_sync_waits_like_a_sync_and_is_no_revert() {
        let mut sync = ClockSync::new(Duration::from_secs(30));
        let now = Instant::now();
        let h = host(1, 12, 0);
        assert_eq!(sync.step(at(h, 300), h, now), Step::Set(h.naive_local()));
        sync.attempted(*h.offset(), now);
        for poll in 1..=3 {
            let later = now + Duration::from_secs(30 * poll);
            assert_eq!(sync.step(at(h, 300), h, later), Step::Keep, "not again at every poll");
        }
        assert_eq!(sync.reverts, 0, "nothing was set, nothing undone");
        assert_eq!(sync.step(at(h, 300), h, now + MIN_GAP), Step::Set(h.naive_local()), "an hour on");
    }

    #[test]
    fn two_reverted_syncs_stop_syncing() {
        let mut sync = ClockSync::new(Duration::from_secs(30));
        let mut now = Instant::now();
        let h = host(1, 12, 0);
        for round in 0..2 {
            assert_eq!(sync.step(at(h, 300), h, now), Step::Set(h.naive_local()), "round {round}");
            sync.synced(*h.offset(), now);
            now += Duration::from_secs(60);
            let next = sync.step(at(h, 300), h, now);
            assert_eq!(next, if round == 0 { Step::Keep } else { Step::GiveUp }, "round {round}");
            now += MIN_GAP;
        }
        assert_eq!(sync.step(at(h, 300), h, now), Step::Keep, "stopped for good");
    }
}
