//! Which profile fits the inverter: the choice from its device-type registers, sans I/O.
//!
//! Every Deye family says what it is in holding register 0 (docs/protocol.md §4.1), in one of
//! two encodings (`5` or `0x0500`). The family then says how many MPPTs and phases it has in one
//! word, `0x0M0P`: register 18 (0x12) on string, single-phase and micro inverters, register 22
//! (0x16) on the three-phase families, whose clock is elsewhere. One read of registers 0 to 22
//! ([`DETECT_START`], [`DETECT_COUNT`]) holds both, so detection costs a single request.
//!
//! This module owns the decision only: [`DeviceType::from_registers`] reads the raw words,
//! [`Profiles::detect`] picks the profile whose `device_types` lists the code, and among
//! several (variants of one family) the one whose PV inputs and phases fit the device best. It
//! must not do I/O or guess: an unknown code is an error naming the code and what exists,
//! never a silent default. The poller does the read over the inverter's own link.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::{Profile, Profiles};

/// The profile name that asks for detection (the default of `[[inverter]] profile`).
pub const AUTO: &str = "auto";

/// First register of the detection read.
pub(crate) const DETECT_START: u16 = 0;

/// Registers in the detection read: 0 (device type) to 22 (0x16, the three-phase layout word).
pub(crate) const DETECT_COUNT: u16 = 23;

/// The layout word of string, single-phase and micro inverters.
const LAYOUT_SINGLE: u16 = 0x12;

/// The layout word of the three-phase families.
const LAYOUT_THREE: u16 = 0x16;

/// Why no profile could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// The read came back without register 0.
    #[error("the device-type register (0) was not in the answer")]
    NoDeviceType,
    /// No profile lists this code.
    #[error(
        "device type {code:#06x} ({code}) is not known to any profile (known: {known}); \
         name the profile with `profile = \"...\"` or add one to profiles_dir"
    )]
    Unknown {
        /// The code read.
        code: u16,
        /// Each profile with the codes it lists.
        known: String,
    },
    /// Several profiles list this code and nothing tells them apart.
    #[error("device type {code:#06x} ({code}) fits {profiles} equally; name one with `profile = \"...\"`")]
    Ambiguous {
        /// The code read.
        code: u16,
        /// The profiles that fit, joined.
        profiles: String,
    },
}

/// What the inverter says it is: its device-type code and, when it reports them, its MPPT and
/// phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceType {
    /// Register 0.
    pub code: u16,
    /// MPPT trackers (PV inputs), from the layout word; `None` when it reads zero.
    pub mppts: Option<u8>,
    /// AC phases, from the layout word; `None` when it reads zero.
    pub phases: Option<u8>,
}

impl DeviceType {
    /// Reads the device type from the detection read (registers `start..`): register 0, and the
    /// family's layout word when the answer holds it.
    ///
    /// # Errors
    /// [`DetectError::NoDeviceType`] when register 0 is not in `values`.
    pub fn from_registers(start: u16, values: &[u16]) -> Result<Self, DetectError> {
        let at = |addr: u16| addr.checked_sub(start).and_then(|i| values.get(usize::from(i)).copied());
        let code = at(0).ok_or(DetectError::NoDeviceType)?;
        let word = at(layout_register(code)).unwrap_or(0);
        // ha-solarman's reading of the word: 0x0M0P, an MPPT count above 12 is a 2-MPPT
        // firmware quirk, more than 3 phases means 3.
        let mppts = match (word & 0x0F00) >> 8 {
            0 => None,
            m if m > 12 => Some(2),
            m => Some(m as u8),
        };
        let phases = match word & 0x000F {
            0 => None,
            p => Some(p.min(3) as u8),
        };
        Ok(Self { code, mppts, phases })
    }

    /// The layout word for this code: `0x0M0P`, as the simulator writes it.
    pub fn layout_word(mppts: u8, phases: u8) -> u16 {
        (u16::from(mppts & 0x0F) << 8) | u16::from(phases & 0x0F)
    }

    /// The register holding this family's layout word.
    pub fn layout_register(&self) -> u16 {
        layout_register(self.code)
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device type {:#06x}", self.code)?;
        match (self.mppts, self.phases) {
            (Some(m), Some(p)) => write!(f, " ({m} MPPT, {p} phase)"),
            (Some(m), None) => write!(f, " ({m} MPPT)"),
            (None, Some(p)) => write!(f, " ({p} phase)"),
            (None, None) => Ok(()),
        }
    }
}

/// Three-phase families (5 to 8 and their `0x05xx` to `0x08xx` forms) keep the layout word at
/// 0x16; the others (string 2, single-phase 3, micro 4, off-grid 0x0103, storage 0x0104) at 0x12.
fn layout_register(code: u16) -> u16 {
    let family = if code > 0xFF { code >> 8 } else { code };
    if (5..=8).contains(&family) { LAYOUT_THREE } else { LAYOUT_SINGLE }
}

/// How the profile of an inverter was chosen, for the log, `read`'s header, the status page,
/// `/api/snapshot` and Home Assistant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The profile in use.
    pub profile: String,
    /// True when it was detected, false when the configuration named it.
    pub detected: bool,
    /// What the inverter said, when its device-type read succeeded.
    pub device: Option<DeviceType>,
}

impl Choice {
    /// One line for people: `deye_sg01lp1, detected from device type 0x0300 (2 MPPT, 1 phase)`.
    pub fn describe(&self) -> String {
        match (self.detected, &self.device) {
            (true, Some(device)) => format!("{}, detected from {device}", self.profile),
            (true, None) => format!("{}, detected", self.profile),
            (false, Some(device)) => format!("{}, as configured; the inverter says {device}", self.profile),
            (false, None) => format!("{}, as configured", self.profile),
        }
    }
}

/// A profile's shape, for telling variants of one family apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// PV inputs it maps (`pvN_power`, `pvN_voltage`, … keys).
    pv_inputs: u8,
    /// 3 when it maps an `_l3` reading, else 1.
    phases: u8,
}

impl Shape {
    fn of(profile: &Profile) -> Self {
        let keys = || profile.readings.iter().map(|r| r.def.key.as_str());
        let pv_inputs = keys().filter_map(pv_input).max().unwrap_or(0);
        let phases = if keys().any(|k| k.ends_with("_l3")) { 3 } else { 1 };
        Self { pv_inputs, phases }
    }

    /// How well this shape fits `device`; lower is better. A profile with fewer PV inputs than
    /// the device has would hide strings, so it ranks after every one that has enough; among
    /// those the closest count wins (the 16 kW 3-MPPT model over the 2-MPPT one, 8 inputs for
    /// the SUN-80K). A phase mismatch ranks after everything.
    fn distance(self, device: &DeviceType) -> (bool, bool, u8) {
        let phase_mismatch = device.phases.is_some_and(|p| p != self.phases);
        let mppts = device.mppts.unwrap_or(0);
        let too_few = self.pv_inputs < mppts;
        (phase_mismatch, too_few, self.pv_inputs.abs_diff(mppts))
    }
}

/// The PV input a key belongs to: `pv3_power` → 3.
fn pv_input(key: &str) -> Option<u8> {
    let rest = key.strip_prefix("pv")?;
    let digits = rest.split('_').next()?;
    let n: u8 = digits.parse().ok()?;
    (rest.len() > digits.len()).then_some(n)
}

/// A profile's PV-input count, as detection and the simulator see it.
pub(crate) fn pv_inputs(profile: &Profile) -> u8 {
    Shape::of(profile).pv_inputs
}

/// A profile's phase count (3 when it maps `_l3` readings), as detection and the simulator see it.
pub(crate) fn phases(profile: &Profile) -> u8 {
    Shape::of(profile).phases
}

impl Profiles {
    /// The profile for `device`: the one whose `device_types` lists its code; among several,
    /// the one whose shape fits the device best.
    ///
    /// # Errors
    /// [`DetectError::Unknown`] when no profile lists the code, [`DetectError::Ambiguous`] when
    /// two fit equally.
    pub fn detect(&self, device: &DeviceType) -> Result<Arc<Profile>, DetectError> {
        let mut fits: Vec<(Arc<Profile>, (bool, bool, u8))> = self
            .all()
            .filter(|p| p.header.device_types.contains(&device.code))
            .map(|p| {
                let distance = Shape::of(&p).distance(device);
                (p, distance)
            })
            .collect();
        fits.sort_by_key(|(_, distance)| *distance);
        let Some((best, distance)) = fits.first() else {
            return Err(DetectError::Unknown { code: device.code, known: self.codes() });
        };
        let tied: Vec<&str> = fits.iter().filter(|(_, d)| d == distance).map(|(p, _)| p.id()).collect();
        if tied.len() > 1 {
            return Err(DetectError::Ambiguous { code: device.code, profiles: tied.join(", ") });
        }
        Ok(best.clone())
    }

    /// The ids of the profiles that list `code`, for a disagreement message.
    pub fn claiming(&self, code: u16) -> Vec<String> {
        self.all().filter(|p| p.header.device_types.contains(&code)).map(|p| p.id().to_string()).collect()
    }

    /// Device-type codes that two profiles of the same shape both claim: auto-detection could not
    /// choose between them. As `(code, [ids])`, for `check-config`.
    pub fn conflicts(&self) -> Vec<(u16, Vec<String>)> {
        let mut codes: Vec<u16> = self.all().flat_map(|p| p.header.device_types.clone()).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
            .into_iter()
            .filter_map(|code| {
                let probe = DeviceType { code, mppts: None, phases: None };
                match self.detect(&probe) {
                    Err(DetectError::Ambiguous { .. }) => Some((code, self.claiming(code))),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every profile, by id.
    fn all(&self) -> impl Iterator<Item = Arc<Profile>> + '_ {
        self.ids().filter_map(|id| self.get(id).ok())
    }

    /// Each profile with the codes it lists: `deye_sg01lp1 (0x0003, 0x0300), …`.
    fn codes(&self) -> String {
        self.all()
            .map(|p| {
                let codes: Vec<String> = p.header.device_types.iter().map(|c| format!("{c:#06x}")).collect();
                if codes.is_empty() {
                    format!("{} (no device_types)", p.id())
                } else {
                    format!("{} ({})", p.id(), codes.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests;
