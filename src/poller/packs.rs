//! The poller's side of battery packs: which packs' readings the profile in use has.
//!
//! A profile with pack readings (`pack = N`, docs/profiles.md "Battery packs") starts narrowed
//! to none of them: the poller reads the pack count, an ordinary reading, every poll, and when
//! a poll reads a count other than the one in use, [`Packs::follow`] hands back the profile
//! narrowed to packs 1 to that count, for the next poll on. A house with two packs gets two
//! packs' entities and reads; a house without a BMS link reads one register more.
//!
//! This module decides only which profile to use; the poller re-plans and resets its
//! plausibility state around it. It must not read or decode.

use std::sync::Arc;

use crate::profile::{Profile, Reading};

/// The full profile and the pack count the profile in use was narrowed to.
#[derive(Debug)]
pub(super) struct Packs {
    full: Arc<Profile>,
    count: u8,
    /// A count above the packs mapped was logged already: it is logged once, not every poll.
    capped: bool,
    /// Polls in a row that read a count below the one in use.
    lower: u8,
}

/// Polls in a row a lower pack count must be read before the packs beyond it are dropped: a
/// BMS link that blinks for one poll must not remove and re-create their entities.
const LOWER_AFTER: u8 = 3;

impl Packs {
    /// The profile to poll `profile` with before any count is known (no pack readings), and the
    /// pack state; no state when the profile maps no packs.
    pub(super) fn start(profile: Arc<Profile>) -> (Arc<Profile>, Option<Self>) {
        if profile.packs_mapped() == 0 {
            return (profile, None);
        }
        let in_use = Arc::new(profile.with_packs(0));
        (in_use, Some(Self { full: profile, count: 0, capped: false, lower: 0 }))
    }

    /// The profile for the next poll when `readings`, decoded from `in_use`, report a pack count
    /// other than the one in use; `None` when nothing changes (or the count was not read).
    pub(super) fn follow(
        &mut self,
        inverter: &str,
        in_use: &Profile,
        readings: &[Reading],
    ) -> Option<Arc<Profile>> {
        let read = in_use.pack_count(readings)?;
        let mapped = self.full.packs_mapped();
        let count = match u8::try_from(read) {
            Ok(count) if count <= mapped => count,
            _ => {
                if !self.capped {
                    tracing::warn!(
                        inverter,
                        packs = read,
                        mapped,
                        "the inverter reports more battery packs than the profile maps; reading the first {mapped}"
                    );
                    self.capped = true;
                }
                mapped
            }
        };
        if count == self.count {
            self.lower = 0;
            return None;
        }
        if count < self.count {
            self.lower += 1;
            if self.lower < LOWER_AFTER {
                return None;
            }
        }
        self.lower = 0;
        self.count = count;
        match count {
            0 => tracing::info!(inverter, "no battery packs reported; not reading pack BMS data"),
            1 => tracing::info!(inverter, "1 battery pack found; reading its BMS data"),
            n => tracing::info!(inverter, "{n} battery packs found; reading their BMS data"),
        }
        Some(Arc::new(self.full.with_packs(count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Profiles, Value};

    fn count_reading(profile: &Profile, count: f64) -> Vec<Reading> {
        let index = profile.index_of("battery_pack_count").unwrap();
        vec![Reading { index, value: Value::Number(count) }]
    }

    #[test]
    fn a_new_count_narrows_once_and_a_count_beyond_the_map_is_capped() {
        let full = Profiles::builtin().unwrap().get("deye_sg04lp3").unwrap();
        let (in_use, packs) = Packs::start(full.clone());
        let mut packs = packs.unwrap();
        assert_eq!(in_use.packs_mapped(), 0);
        assert!(packs.follow("t", &in_use, &count_reading(&in_use, 0.0)).is_none(), "0 is the start");
        let two = packs.follow("t", &in_use, &count_reading(&in_use, 2.0)).unwrap();
        assert_eq!((two.packs_mapped(), two.id()), (2, full.id()));
        assert!(packs.follow("t", &two, &count_reading(&two, 2.0)).is_none(), "the same count again");
        assert!(packs.follow("t", &two, &[]).is_none(), "a poll without the count changes nothing");
        for blink in 1..LOWER_AFTER {
            assert!(
                packs.follow("t", &two, &count_reading(&two, 0.0)).is_none(),
                "a lower count, poll {blink}"
            );
        }
        assert!(packs.follow("t", &two, &count_reading(&two, 2.0)).is_none(), "back before it counted");
        for _ in 1..LOWER_AFTER {
            assert!(packs.follow("t", &two, &count_reading(&two, 1.0)).is_none());
        }
        let one = packs.follow("t", &two, &count_reading(&two, 1.0)).unwrap();
        assert_eq!(one.packs_mapped(), 1, "a lower count read {LOWER_AFTER} polls in a row drops the rest");
        let two = packs.follow("t", &one, &count_reading(&one, 2.0)).unwrap();
        let capped = packs.follow("t", &two, &count_reading(&two, 40.0)).unwrap();
        assert_eq!(capped.packs_mapped(), 15);
        assert!(packs.capped);
    }

    #[test]
    fn a_profile_without_packs_has_no_pack_state() {
        let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let (in_use, packs) = Packs::start(sg01.clone());
        assert!(packs.is_none());
        assert!(Arc::ptr_eq(&in_use, &sg01), "used as it is");
    }
}
