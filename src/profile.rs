//! Register definitions as data, their validation, request planning and decoding.
//!
//! A profile (`config/profiles/*.toml`, format in `docs/profiles.md`) says which registers hold
//! which reading and how to decode them. This module loads and validates profiles, plans the
//! fewest reads that cover them ([`plan`]), and turns raw registers into typed [`Reading`]s. It
//! does no I/O beyond reading profile files at start.

pub(crate) mod decode;
pub(crate) mod def;
mod derive;
pub(crate) mod detect;
pub mod load;
pub(crate) mod packs;
pub(crate) mod plan;
pub(crate) mod registers;
pub(crate) mod value;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use decode::{DecodeError, EncodeError};
pub use def::{Counter, EntityCategory, Kind, ProfileHeader, ReadingDef, StateClass, WriteDef, WriteForm};
pub use detect::{AUTO, Choice, DetectError, DeviceType};
pub use load::{ProfileError, Profiles};
pub use plan::ReadBlock;
pub use registers::{RegisterBlock, RegisterSet};
pub use value::{Reading, Value};

/// A validated reading definition, with what decoding needs precomputed.
#[derive(Debug, Clone)]
pub struct ReadingSpec {
    /// The definition as written in the profile.
    pub def: ReadingDef,
    /// Enum options, raw value → text, in raw order.
    pub options: Vec<(i64, Arc<str>)>,
    /// Decimals to round scaled values to: those of `scale`, or of the inputs when derived.
    pub decimals: u8,
    /// Derived readings: the indices of the readings named in `of`, each above this one.
    pub inputs: Vec<usize>,
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The `[profile]` table.
    pub header: ProfileHeader,
    /// The readings, in file order.
    pub readings: Vec<ReadingSpec>,
    /// Indices of the readings named by `zero_poll`.
    pub zero_poll: Vec<usize>,
    /// Indices of the six readings the header's `clock` names, found once by [`Profile::new`]:
    /// the clock is read every poll.
    clock_readings: Option<[usize; 6]>,
    /// Where the profile came from: a path, or `built-in`.
    pub source: String,
}

impl Profile {
    /// The profile's id.
    pub fn id(&self) -> &str {
        &self.header.id
    }

    /// Every register address the profile maps.
    pub fn addresses(&self) -> impl Iterator<Item = u16> + '_ {
        self.readings.iter().flat_map(|r| r.def.registers.iter().copied())
    }

    /// The fewest reads that cover every mapped register.
    pub fn plan(&self) -> Vec<ReadBlock> {
        self.plan_within(None)
    }

    /// The fewest reads within `max_read` registers each (a fussy logger's limit), which can
    /// only lower the profile's own.
    pub fn plan_within(&self, max_read: Option<u16>) -> Vec<ReadBlock> {
        let limit = max_read.map_or(self.header.max_read, |m| m.min(self.header.max_read));
        plan::plan(self.addresses(), limit, self.header.max_gap)
    }

    /// The index of the reading with `key`.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.readings.iter().position(|r| r.def.key == key)
    }

    /// The inverter's own clock from its six `clock` readings (year, month, day, hour, minute,
    /// second), each told by `value` (by reading index); `None` when one is missing or the
    /// date is impossible.
    pub fn clock(&self, value: impl Fn(usize) -> Option<f64>) -> Option<chrono::NaiveDateTime> {
        let mut parts = [0u32; 6];
        for (part, index) in parts.iter_mut().zip(self.clock_readings?) {
            *part = value(index)? as u32;
        }
        let [year, month, day, hour, minute, second] = parts;
        chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_opt(hour, minute, second)
    }

    /// A profile of these parts, with the clock's reading indices found once.
    fn new(
        header: ProfileHeader,
        readings: Vec<ReadingSpec>,
        zero_poll: Vec<usize>,
        source: String,
    ) -> Profile {
        let mut profile = Profile { header, readings, zero_poll, clock_readings: None, source };
        let clock: Option<Vec<usize>> =
            profile.header.clock.iter().map(|key| profile.index_of(key)).collect();
        profile.clock_readings = clock.and_then(|indices| indices.try_into().ok());
        profile
    }

    /// The same profile (same id and header) with only the readings `keep` accepts, every
    /// index rebuilt: a parallel stack's follower without its settings, an inverter without
    /// the battery packs it does not have.
    ///
    /// A reading that depends on a dropped one goes too: a derived reading whose input is
    /// dropped, a reading whose `scale_when` register is no longer read. The `zero_poll` rule
    /// holds only with all its readings (and its `zero_poll_unless` reading): fewer of them
    /// would reject polls the full rule accepts, so without them it is left out.
    pub fn narrowed(&self, keep: impl Fn(&ReadingSpec) -> bool) -> Profile {
        let kept_key = |key: &str| self.readings.iter().find(|r| r.def.key == key).is_some_and(&keep);
        let mut at: Vec<Option<usize>> = vec![None; self.readings.len()];
        let mut readings = Vec::with_capacity(self.readings.len());
        for (index, spec) in self.readings.iter().enumerate() {
            // Inputs stand above: `at` already says where they went, or that they went.
            let inputs: Option<Vec<usize>> = spec.inputs.iter().map(|&input| at[input]).collect();
            let decided = spec.def.scale_when.as_ref().is_none_or(|when| kept_key(&when.key));
            if let (true, true, Some(inputs)) = (keep(spec), decided, inputs) {
                at[index] = Some(readings.len());
                readings.push(ReadingSpec { inputs, ..spec.clone() });
            }
        }
        let mut header = self.header.clone();
        let unless_kept = header.zero_poll_unless.as_ref().is_none_or(|u| kept_key(&u.key));
        let mut zero_poll: Vec<usize> = self.zero_poll.iter().filter_map(|&i| at[i]).collect();
        if zero_poll.len() < self.zero_poll.len() || !unless_kept {
            zero_poll.clear();
            header.zero_poll.clear();
            header.zero_poll_unless = None;
        }
        Profile::new(header, readings, zero_poll, self.source.clone())
    }

    /// Decodes every reading whose registers were read, then the derived ones from those (in
    /// file order, so a derived reading sees its inputs). Readings whose registers are missing
    /// (their read failed), or whose inputs are, are left out; readings that cannot be decoded
    /// come back as errors.
    pub fn decode(&self, regs: &RegisterSet) -> (Vec<Reading>, Vec<(usize, DecodeError)>) {
        let mut readings = Vec::with_capacity(self.readings.len());
        let mut errors = Vec::new();
        for (index, spec) in self.readings.iter().enumerate() {
            let value = if spec.def.kind.is_derived() {
                spec.derive(&self.readings, &readings)
            } else {
                spec.decode(regs)
            };
            match value {
                Ok(value) => readings.push(Reading { index, value }),
                Err(DecodeError::Missing(_) | DecodeError::Input(_)) => {}
                Err(e) => errors.push((index, e)),
            }
        }
        (readings, errors)
    }
}
