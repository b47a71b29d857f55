//! Loading profiles: the built-in ones compiled into the binary, and files from a directory.
//! A broken profile names its file and the reading at fault.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::def::{Kind, ProfileFile, ReadingDef, StateClass, WriteDef, WriteForm};
use super::{Profile, ReadingSpec};

/// Profiles shipped inside the binary, so `cargo run` and the container need no files.
const BUILTIN: &[(&str, &str)] = &[
    ("deye_sg01lp1", include_str!("../../config/profiles/deye_sg01lp1.toml")),
    ("deye_sg04lp3", include_str!("../../config/profiles/deye_sg04lp3.toml")),
    ("deye_sg01hp3", include_str!("../../config/profiles/deye_sg01hp3.toml")),
    ("deye_micro", include_str!("../../config/profiles/deye_micro.toml")),
    ("deye_string", include_str!("../../config/profiles/deye_string.toml")),
];

/// Units Home Assistant accepts for each sensor device class we use.
const UNITS: &[(&str, &[&str])] = &[
    ("power", &["W", "kW"]),
    ("energy", &["Wh", "kWh"]),
    ("voltage", &["V", "mV"]),
    ("current", &["A", "mA"]),
    ("frequency", &["Hz"]),
    ("temperature", &["°C"]),
    ("battery", &["%"]),
    ("duration", &["s", "min", "h"]),
    ("apparent_power", &["VA"]),
    ("reactive_power", &["var"]),
];

/// Binary sensor device classes allowed on bit flags.
const FLAG_CLASSES: &[&str] =
    &["problem", "connectivity", "running", "power", "battery_charging", "safety", "plug"];

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{file}: {cause}")]
    Io {
        /// The file.
        file: String,
        /// Why (in the message, not the error chain, so it prints once).
        cause: std::io::Error,
    },
    /// The file is not valid TOML or does not have the profile's shape.
    #[error("{file}: {cause}")]
    Parse {
        /// The file.
        file: String,
        /// Why, with line and column.
        cause: Box<toml::de::Error>,
    },
    /// The `[profile]` table is wrong.
    #[error("{file}: [profile]: {reason}")]
    Header {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A reading is wrong.
    #[error("{file}: reading `{key}`: {reason}")]
    Reading {
        /// The file.
        file: String,
        /// The reading's key (or its position when the key itself is bad).
        key: String,
        /// Why.
        reason: String,
    },
    /// No profile has this id.
    #[error("unknown profile `{id}` (known: {known})")]
    Unknown {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: String,
    },
}

/// Every profile available: built-in ones, replaced or joined by files from a directory.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    by_id: BTreeMap<String, Arc<Profile>>,
}

impl Profiles {
    /// The built-in profiles.
    ///
    /// # Errors
    /// A built-in profile that fails validation (a bug caught by the tests).
    pub fn builtin() -> Result<Self, ProfileError> {
        let mut profiles = Self::default();
        for (id, text) in BUILTIN {
            profiles.add(parse(text, &format!("built-in {id}.toml"), Some(id))?);
        }
        Ok(profiles)
    }

    /// The built-in profiles plus every `*.toml` in `dir`; a file with a built-in id replaces it.
    ///
    /// # Errors
    /// The first file that cannot be read or validated.
    pub fn with_dir(dir: &Path) -> Result<Self, ProfileError> {
        let mut profiles = Self::builtin()?;
        let io = |cause| ProfileError::Io { file: dir.display().to_string(), cause };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            profiles.add(load_file(&path)?);
        }
        Ok(profiles)
    }

    fn add(&mut self, profile: Profile) {
        self.by_id.insert(profile.header.id.clone(), Arc::new(profile));
    }

    /// The profile with `id`.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`], listing the ids there are.
    pub fn get(&self, id: &str) -> Result<Arc<Profile>, ProfileError> {
        self.by_id.get(id).cloned().ok_or_else(|| ProfileError::Unknown {
            id: id.to_string(),
            known: self.by_id.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The ids there are.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }
}

/// Loads and validates one profile file; its id must equal the file name.
///
/// # Errors
/// [`ProfileError`] naming the file and the item at fault.
pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|cause| ProfileError::Io { file: file.clone(), cause })?;
    let stem = path.file_stem().and_then(|s| s.to_str());
    parse(&text, &file, stem)
}

/// Parses and validates profile text; `file` names it in errors, `id` is what the id must be.
///
/// # Errors
/// [`ProfileError`] naming the file and the item at fault.
pub fn parse(text: &str, file: &str, id: Option<&str>) -> Result<Profile, ProfileError> {
    let parsed: ProfileFile = toml::from_str(text)
        .map_err(|cause| ProfileError::Parse { file: file.to_string(), cause: Box::new(cause) })?;
    let header_err = |reason: String| ProfileError::Header { file: file.to_string(), reason };
    let header = parsed.profile;
    if let Some(id) = id.filter(|id| *id != header.id) {
        return Err(header_err(format!("id `{}` must equal the file name `{id}`", header.id)));
    }
    if !(1..=125).contains(&header.max_read) {
        return Err(header_err(format!("max_read {} is outside 1..=125", header.max_read)));
    }
    if parsed.readings.is_empty() {
        return Err(header_err("the profile has no [[reading]]".into()));
    }
    let mut keys = HashSet::new();
    let mut readings = Vec::with_capacity(parsed.readings.len());
    for (position, def) in parsed.readings.into_iter().enumerate() {
        let key = if def.key.is_empty() { format!("#{}", position + 1) } else { def.key.clone() };
        let reading_err =
            |reason: String| ProfileError::Reading { file: file.to_string(), key: key.clone(), reason };
        if !keys.insert(def.key.clone()) {
            return Err(reading_err("the key is used twice".into()));
        }
        readings.push(validate(def).map_err(reading_err)?);
    }
    super::derive::resolve(&mut readings).map_err(|(key, reason)| ProfileError::Reading {
        file: file.to_string(),
        key,
        reason,
    })?;
    let zero_poll = header
        .zero_poll
        .iter()
        .map(|key| {
            readings
                .iter()
                .position(|r: &ReadingSpec| r.def.key == *key)
                .ok_or_else(|| header_err(format!("zero_poll names `{key}`, which is not a reading")))
        })
        .collect::<Result<_, _>>()?;
    if !matches!(header.clock.len(), 0 | 6) {
        return Err(header_err("clock names year, month, day, hour, minute and second: six keys".into()));
    }
    for key in header.device.keys().chain(&header.clock) {
        if !readings.iter().any(|r| r.def.key == *key) {
            return Err(header_err(format!("`{key}` is not a reading")));
        }
    }
    if let Some(unless) = &header.zero_poll_unless {
        let spec = readings.iter().find(|r| r.def.key == unless.key);
        let known = spec.is_some_and(|s| s.options.iter().any(|(_, text)| **text == *unless.value));
        if !known {
            let reason = format!(
                "zero_poll_unless: `{}` is not an option of an enum reading `{}`",
                unless.value, unless.key
            );
            return Err(header_err(reason));
        }
    }
    // scale_when names other readings: resolvable only now that every reading is known.
    let reading_err = |(key, reason)| ProfileError::Reading { file: file.to_string(), key, reason };
    resolve_scale_when(&mut readings).map_err(reading_err)?;
    check_packs(&header, &readings).map_err(|e| match e {
        PackError::Header(reason) => header_err(reason),
        PackError::Reading(key, reason) => reading_err((key, reason)),
    })?;
    check_shared_writes(&readings).map_err(reading_err)?;
    check_sleeps_at_night(&header, &readings).map_err(header_err)?;
    Ok(Profile::new(header, readings, zero_poll, file.to_string()))
}

/// `logger_sleeps_at_night` is a fact about PV-only families: such a profile reads no battery
/// (a battery keeps its logger up at night) and has a PV or output power reading, what the
/// night rule publishes as 0 W.
fn check_sleeps_at_night(header: &super::ProfileHeader, readings: &[ReadingSpec]) -> Result<(), String> {
    if !header.logger_sleeps_at_night {
        return Ok(());
    }
    if readings.iter().any(|r| r.def.key == "battery_soc") {
        return Err(
            "logger_sleeps_at_night: a family with a battery (`battery_soc`) keeps its logger up at night"
                .into(),
        );
    }
    if !readings.iter().any(|r| r.def.reads_zero_at_night()) {
        return Err(
            "logger_sleeps_at_night needs a power reading (device_class = \"power\") in group `pv` or `output`".into(),
        );
    }
    Ok(())
}

/// Which part of a profile a pack rule faults.
enum PackError {
    /// The `[profile]` table, with the reason.
    Header(String),
    /// A reading's key and the reason.
    Reading(String, String),
}

/// The battery-pack rules (`docs/profiles.md`, "Battery packs"): a `pack` reading needs the
/// header's `pack_count`, which names a plain numeric reading of no pack; and nothing that is
/// always read may lean on a pack reading, since pack readings come and go with the count.
fn check_packs(header: &super::ProfileHeader, readings: &[ReadingSpec]) -> Result<(), PackError> {
    let pack_of = |key: &str| readings.iter().find(|r| r.def.key == key).and_then(|r| r.def.pack);
    if let Some(key) = &header.pack_count {
        let spec = readings.iter().find(|r| r.def.key == *key);
        let Some(def) = spec.map(|s| &s.def) else {
            return Err(PackError::Header(format!("pack_count names `{key}`, which is not a reading")));
        };
        let plain =
            def.kind.is_integer() && !def.kind.is_derived() && def.bit.is_none() && def.options.is_none();
        if !plain || def.pack.is_some() {
            let reason =
                format!("pack_count names `{key}`: it must be a numeric register reading of no pack");
            return Err(PackError::Header(reason));
        }
    }
    let unless = header.zero_poll_unless.iter().map(|u| &u.key);
    let named = header.zero_poll.iter().chain(&header.clock).chain(header.device.keys());
    if let Some(key) = named.chain(unless).find(|k| pack_of(k).is_some()) {
        return Err(PackError::Header(format!(
            "`{key}` is a pack reading; the header names readings always read"
        )));
    }
    for spec in readings {
        let (key, pack) = (&spec.def.key, spec.def.pack);
        let reading_err = |reason: &str| Err(PackError::Reading(key.clone(), reason.to_string()));
        match pack {
            Some(0) => return reading_err("pack counts from 1"),
            Some(_) if header.pack_count.is_none() => {
                return reading_err("`pack` needs `pack_count` in [profile], the reading of the pack count");
            }
            _ => {}
        }
        let leans = spec.def.of.iter().chain(spec.def.scale_when.iter().map(|w| &w.key));
        if leans.map(|k| pack_of(k)).any(|input| input.is_some() && input != pack) {
            return reading_err(
                "reads another pack's reading (in `of` or `scale_when`): give it the same `pack`",
            );
        }
    }
    Ok(())
}

/// Checks one reading and precomputes what decoding needs.
fn validate(def: ReadingDef) -> Result<ReadingSpec, String> {
    check_key(&def.key)?;
    super::derive::check(&def)?;
    check_shape(&def)?;
    check_flag_or_mask(&def)?;
    check_home_assistant(&def)?;
    check_plausibility(&def)?;
    check_scale_when(&def)?;
    check_write(&def)?;
    let options = options(&def)?;
    if !def.scale.is_finite() || def.scale == 0.0 || !def.offset.is_finite() {
        return Err(format!("scale {} and offset {} must be finite, scale non-zero", def.scale, def.offset));
    }
    let decimals = decimals_of(&def);
    Ok(ReadingSpec { def, options, decimals, inputs: Vec::new() })
}

/// Decimals to round to: those of `scale`, or of the `scale_when` scale if it has more, so a
/// value keeps its resolution whichever scale is in force.
fn decimals_of(def: &ReadingDef) -> u8 {
    let decimals = |scale: f64| (-scale.abs().log10()).ceil().clamp(0.0, 6.0) as u8;
    let alternative = def.scale_when.as_ref().map_or(0, |when| decimals(when.scale));
    decimals(def.scale).max(alternative)
}

/// `scale_when` on its own: a usable scale, a real range, and a reading that has a scale.
fn check_scale_when(def: &ReadingDef) -> Result<(), String> {
    let Some(when) = &def.scale_when else { return Ok(()) };
    if !when.scale.is_finite() || when.scale == 0.0 {
        return Err(format!("scale_when: scale {} must be finite and non-zero", when.scale));
    }
    match (when.at_least, when.below) {
        (None, None) => return Err("scale_when needs at_least, below or both".into()),
        (Some(low), Some(high)) if low >= high => {
            return Err(format!("scale_when: at_least {low:#x} must be below {high:#x}"));
        }
        _ => {}
    }
    if !def.kind.is_integer() || def.bit.is_some() || def.options.is_some() {
        return Err("scale_when applies to numeric readings only".into());
    }
    Ok(())
}

/// Points every `scale_when` at the register it is decided by, now that all readings are known.
/// Errors carry the key of the reading at fault.
fn resolve_scale_when(readings: &mut [ReadingSpec]) -> Result<(), (String, String)> {
    for index in 0..readings.len() {
        let Some(when) = &readings[index].def.scale_when else { continue };
        let own = &readings[index].def.key;
        let register = deciding_register(readings, own, &when.key).map_err(|reason| (own.clone(), reason))?;
        if let Some(when) = &mut readings[index].def.scale_when {
            when.register = register;
        }
    }
    Ok(())
}

/// The register of reading `key`, which must be one plain register: the condition compares what
/// the inverter sent, not a decoded value.
fn deciding_register(readings: &[ReadingSpec], own: &str, key: &str) -> Result<u16, String> {
    if key == own {
        return Err("scale_when names the reading itself".into());
    }
    let def = &readings
        .iter()
        .find(|r| r.def.key == key)
        .ok_or_else(|| format!("scale_when names `{key}`, which is not a reading"))?
        .def;
    let plain = matches!(def.kind, super::Kind::U16 | super::Kind::Version)
        && def.bit.is_none()
        && def.mask.is_none();
    match (plain, def.registers.as_slice()) {
        (true, [register]) => Ok(*register),
        _ => Err(format!("scale_when names `{key}`: it must be one u16 or version register, no bit or mask")),
    }
}

/// A writable reading: registers one FC16 can write whole, and a `write` table that fits its
/// form. Ranges must sit inside the reading's own plausible `min`..`max`, so a value we may
/// write is never one the plausibility rules would reject when read back.
fn check_write(def: &ReadingDef) -> Result<(), String> {
    let (Some(write), Some(form)) = (&def.write, def.write_form()) else { return Ok(()) };
    if def.kind.is_derived() || !def.kind.is_integer() || def.scale_when.is_some() {
        return Err("write applies to integer readings of their own registers, without scale_when".into());
    }
    let mut sorted = def.registers.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err("write needs consecutive registers: one FC16 writes them whole".into());
    }
    let range = write.min.is_some() || write.max.is_some() || write.step.is_some();
    match form {
        WriteForm::Switch | WriteForm::Select if range || write.time => {
            Err("a flag's or an enum's write takes no min, max, step or time: write = {}".into())
        }
        WriteForm::Time if range || def.kind != Kind::U16 || def.mask.is_some() || def.scale != 1.0 => {
            Err("a time write needs one plain u16 register holding HHMM, and no min, max or step".into())
        }
        WriteForm::Number => check_write_range(def, write),
        _ => Ok(()),
    }
}

/// A write to a register other readings take bits of must be a bit field itself (`bit` or
/// `mask`), so it is read-modify-written and their bits keep their values. Errors carry the
/// key of the reading at fault.
fn check_shared_writes(readings: &[ReadingSpec]) -> Result<(), (String, String)> {
    let whole =
        readings.iter().filter(|r| r.def.write.is_some() && r.def.bit.is_none() && r.def.mask.is_none());
    for writable in whole {
        let shares = |other: &&ReadingSpec| {
            other.def.key != writable.def.key
                && other.def.registers.iter().any(|a| writable.def.registers.contains(a))
        };
        if let Some(other) = readings.iter().find(shares) {
            let reason = format!(
                "write: reading `{}` shares its register; a write to a shared register needs bit or mask",
                other.def.key
            );
            return Err((writable.def.key.clone(), reason));
        }
    }
    Ok(())
}

/// A number's write range: both bounds, in order, inside the reading's, and a positive step.
fn check_write_range(def: &ReadingDef, write: &WriteDef) -> Result<(), String> {
    let (Some(min), Some(max)) = (write.min, write.max) else {
        return Err("a number's write needs min and max".into());
    };
    if !(min.is_finite() && max.is_finite() && min <= max) {
        return Err(format!("write: min {min} must be at most max {max}"));
    }
    if def.min.is_some_and(|low| min < low) || def.max.is_some_and(|high| max > high) {
        return Err(format!("write: {min}..={max} must lie inside the reading's min..max"));
    }
    if write.step.is_some_and(|step| !(step.is_finite() && step > 0.0)) {
        return Err("write: step must be positive".into());
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    // A leading letter keeps `value_json.<key>` valid in Home Assistant templates.
    let valid = key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid { Ok(()) } else { Err("the key must be [a-z][a-z0-9_]*".into()) }
}

fn check_shape(def: &ReadingDef) -> Result<(), String> {
    let n = def.registers.len();
    match def.kind.width() {
        Some(width) if n != width => {
            return Err(format!("kind {:?} takes {width} register(s), got {n}", def.kind));
        }
        None if !(1..=8).contains(&n) => {
            return Err(format!("kind {:?} takes 1 to 8 registers, got {n}", def.kind));
        }
        _ => {}
    }
    match (def.kind.width() == Some(2), def.word_order.is_some()) {
        (true, false) => return Err("a 32-bit kind needs word_order (low_first or high_first)".into()),
        (false, true) => return Err("word_order applies to 32-bit kinds only".into()),
        _ => {}
    }
    if def.sign_magnitude && !def.kind.is_signed() {
        return Err("sign_magnitude applies to s16 and s32 only".into());
    }
    let text = !def.kind.is_integer();
    if text && (def.scale != 1.0 || def.offset != 0.0 || def.unit.is_some() || def.state_class.is_some()) {
        return Err("ascii and version readings take no scale, offset, unit or state_class".into());
    }
    if text && (def.bit.is_some() || def.mask.is_some() || def.options.is_some()) {
        return Err("ascii and version readings take no bit, mask or enum".into());
    }
    Ok(())
}

fn check_flag_or_mask(def: &ReadingDef) -> Result<(), String> {
    let bits = 16 * def.registers.len() as u32;
    if let Some(bit) = def.bit {
        if u32::from(bit) >= bits {
            return Err(format!("bit {bit} is beyond the {bits} bits of its registers"));
        }
        let numeric = def.mask.is_some() || def.options.is_some() || def.unit.is_some();
        if numeric || def.scale != 1.0 || def.offset != 0.0 || def.state_class.is_some() {
            return Err("a bit flag takes no mask, enum, unit, scale, offset or state_class".into());
        }
        if let Some(class) = def.device_class.as_deref().filter(|c| !FLAG_CLASSES.contains(c)) {
            return Err(format!(
                "device_class `{class}` is not a binary_sensor class ({})",
                FLAG_CLASSES.join(", ")
            ));
        }
    }
    if let Some(mask) = def.mask
        && (mask == 0 || (bits < 32 && mask >> bits != 0))
    {
        return Err(format!("mask {mask:#x} must be non-zero and fit in {bits} bits"));
    }
    Ok(())
}

fn check_home_assistant(def: &ReadingDef) -> Result<(), String> {
    if def.bit.is_some() {
        return Ok(());
    }
    let class = def.device_class.as_deref();
    if def.options.is_some() {
        if class != Some("enum") || def.unit.is_some() || def.state_class.is_some() {
            return Err("an enum reading needs device_class = \"enum\" and no unit or state_class".into());
        }
        return Ok(());
    }
    if let Some(class) = class {
        let Some((_, units)) = UNITS.iter().find(|(c, _)| *c == class) else {
            return Err(format!(
                "device_class `{class}` is not one of {}",
                UNITS.iter().map(|u| u.0).collect::<Vec<_>>().join(", ")
            ));
        };
        let unit = def.unit.as_deref().unwrap_or("");
        if !units.contains(&unit) {
            return Err(format!("device_class `{class}` needs a unit of {units:?}, got `{unit}`"));
        }
        let state = def.state_class;
        let energy_ok = matches!(state, Some(StateClass::Total | StateClass::TotalIncreasing));
        if class == "energy" && !energy_ok {
            return Err("energy needs state_class total or total_increasing".into());
        }
        if class != "energy" && state.is_some_and(|s| s != StateClass::Measurement) {
            return Err(format!("device_class `{class}` takes state_class measurement"));
        }
    }
    Ok(())
}

fn check_plausibility(def: &ReadingDef) -> Result<(), String> {
    if let (Some(min), Some(max)) = (def.min, def.max)
        && min > max
    {
        return Err(format!("min {min} is above max {max}"));
    }
    if def.max_change.is_some_and(|c| c.is_nan() || c <= 0.0) {
        return Err("max_change must be positive".into());
    }
    if def.counter.is_some() && def.state_class != Some(StateClass::TotalIncreasing) {
        return Err("a counter needs state_class total_increasing".into());
    }
    if def.counter.is_some() && (def.bit.is_some() || def.options.is_some()) {
        return Err("a counter must be numeric".into());
    }
    let numeric_rule = def.min.is_some() || def.max.is_some() || def.max_change.is_some();
    if numeric_rule && (def.bit.is_some() || def.options.is_some() || !def.kind.is_integer()) {
        return Err("min, max and max_change apply to numeric readings only".into());
    }
    Ok(())
}

fn options(def: &ReadingDef) -> Result<Vec<(i64, Arc<str>)>, String> {
    let Some(map) = &def.options else { return Ok(Vec::new()) };
    if map.is_empty() {
        return Err("enum has no options".into());
    }
    let mut options = map
        .iter()
        .map(|(raw, text)| {
            let raw = parse_int(raw).ok_or_else(|| format!("enum key `{raw}` is not an integer"))?;
            Ok((raw, Arc::<str>::from(text.as_str())))
        })
        .collect::<Result<Vec<_>, String>>()?;
    options.sort_by_key(|(raw, _)| *raw);
    Ok(options)
}

fn parse_int(text: &str) -> Option<i64> {
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests;
