//! Register definitions as data: the shape of a profile file (`docs/profiles.md`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One profile file: its header and its readings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    /// The `[profile]` table.
    pub profile: ProfileHeader,
    /// The `[[reading]]` tables.
    #[serde(rename = "reading", default)]
    pub readings: Vec<ReadingDef>,
}

/// What a profile says about itself and how it wants to be read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileHeader {
    /// The profile id; equals the file name without `.toml`.
    pub id: String,
    /// Manufacturer shown in Home Assistant.
    pub manufacturer: String,
    /// Model family shown in Home Assistant.
    pub model: String,
    /// A sentence about which inverters this covers.
    #[serde(default)]
    pub description: String,
    /// The largest Modbus read, in registers.
    #[serde(default = "default_max_read")]
    pub max_read: u16,
    /// The planner bridges unmapped gaps of at most this many registers.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// Keys of readings that, when all read zero, make the whole poll implausible.
    #[serde(default)]
    pub zero_poll: Vec<String>,
    /// The `zero_poll` rule does not apply while this reading shows this text: a system
    /// without a battery reads 0 % and 0 V for real.
    pub zero_poll_unless: Option<Unless>,
    /// Readings that identify the device in Home Assistant.
    #[serde(default)]
    pub device: DeviceKeys,
    /// The inverter's own clock: keys of year, month, day, hour, minute and second. Daily
    /// counters reset at the inverter's midnight, which this clock tells, not the host's.
    #[serde(default)]
    pub clock: Vec<String>,
    /// The values of the device-type register (0) that mean this family, in both of Deye's
    /// encodings (`5` and `0x0500`): auto-detection picks the profile that lists the code read.
    #[serde(default)]
    pub device_types: Vec<u16>,
    /// The reading that tells how many battery packs report (`docs/profiles.md`, "Battery
    /// packs"): a reading with `pack = N` is read only while this one reads at least N.
    pub pack_count: Option<String>,
    /// The logger is powered by the PV side and sleeps from sunset to sunrise (microinverters,
    /// string inverters: no battery keeps it up). The poller then keeps the totals and reads
    /// 0 W while it is dark at night instead of reporting the inverter unavailable
    /// (`docs/profiles.md`, "The header").
    #[serde(default)]
    pub logger_sleeps_at_night: bool,
}

/// A reading and the text it shows when a rule does not apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unless {
    /// The reading's key (an enum reading).
    pub key: String,
    /// The option text that switches the rule off.
    pub value: String,
}

/// Which readings name the device: its serial, its model, its firmware.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeys {
    /// The reading holding the inverter's serial number (the device identifier).
    pub serial: Option<String>,
    /// The reading holding the model or device type.
    pub model: Option<String>,
    /// Readings holding firmware versions, joined for `sw_version`.
    #[serde(default)]
    pub firmware: Vec<String>,
}

impl DeviceKeys {
    /// Every key named: the serial's, the model's and the firmware's.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.serial.iter().chain(&self.model).chain(&self.firmware)
    }
}

fn default_max_read() -> u16 {
    125
}

fn default_max_gap() -> u16 {
    40
}

/// How the registers of a reading hold its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One unsigned register.
    U16,
    /// One signed register.
    S16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, signed.
    S32,
    /// Two ASCII characters per register, high byte first.
    Ascii,
    /// Each register as four hex nibbles, `1.2.3.4`.
    Version,
    /// No registers: the sum of the readings named in `of` (`pv_power` from `pv1_power`..).
    Sum,
    /// No registers: the product of the two readings named in `of` (power from voltage and
    /// current, where an inverter has no power register).
    Product,
}

impl Kind {
    /// How many registers the kind takes, or `None` for "one or more".
    pub fn width(self) -> Option<usize> {
        match self {
            Self::U16 | Self::S16 => Some(1),
            Self::U32 | Self::S32 => Some(2),
            Self::Ascii | Self::Version => None,
            Self::Sum | Self::Product => Some(0),
        }
    }

    /// True for kinds computed from other readings rather than read from registers.
    pub fn is_derived(self) -> bool {
        matches!(self, Self::Sum | Self::Product)
    }

    /// True for kinds whose value is an integer.
    pub fn is_integer(self) -> bool {
        !matches!(self, Self::Ascii | Self::Version)
    }

    /// True for signed kinds.
    pub fn is_signed(self) -> bool {
        matches!(self, Self::S16 | Self::S32)
    }
}

/// Which register of a 32-bit value holds the low word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// `registers[0]` is the low word: what every Deye source uses (docs/protocol.md §4.0).
    LowFirst,
    /// `registers[0]` is the high word.
    HighFirst,
}

/// Counter semantics checked by `quality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counter {
    /// A lifetime counter: never goes backwards.
    Total,
    /// A daily counter: may fall back only at the inverter's midnight.
    Daily,
}

/// A scale that replaces a reading's `scale` while another reading's register lies in a range.
///
/// Firmware updates have changed the unit of registers in the field: SG01HP3 control boards from
/// build 1098 on count energy in kWh where older builds count 0.1 kWh. The profile names the
/// register that tells the build, so no user has to know which firmware runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleWhen {
    /// The reading whose register decides: one register, `u16` or `version`, no bit or mask.
    pub key: String,
    /// The condition holds when the register's raw value is at least this (inclusive)...
    pub at_least: Option<u16>,
    /// ...and below this (exclusive). At least one of the two bounds is given.
    pub below: Option<u16>,
    /// The scale in force while the condition holds.
    pub scale: f64,
    /// The register of `key`; the loader fills it in once every reading is known.
    #[serde(skip)]
    pub register: u16,
}

impl ScaleWhen {
    /// True when the deciding register's raw value `raw` satisfies the condition.
    pub fn holds(&self, raw: u16) -> bool {
        self.at_least.is_none_or(|low| raw >= low) && self.below.is_none_or(|high| raw < high)
    }
}

/// Home Assistant entity category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityCategory {
    /// Read-only facts about the device.
    Diagnostic,
    /// Settings.
    Config,
}

/// Home Assistant state class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateClass {
    /// A momentary value.
    Measurement,
    /// A total that may go up and down.
    Total,
    /// A total that only rises, except at resets.
    TotalIncreasing,
}

/// One reading: which registers, how to decode them, how Home Assistant should show it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingDef {
    /// Stable key; the unique_id suffix forever.
    pub key: String,
    /// Display name, the entity part only.
    pub name: String,
    /// Group, for display and filtering.
    pub group: String,
    /// Decimal register addresses, in the order `kind` and `word_order` read them.
    #[serde(default)]
    pub registers: Vec<u16>,
    /// How the registers hold the raw value.
    pub kind: Kind,
    /// Derived kinds: the keys of the readings the value is computed from.
    #[serde(default)]
    pub of: Vec<String>,
    /// Word order of 32-bit kinds.
    pub word_order: Option<WordOrder>,
    /// Signed kinds: sign bit and magnitude instead of two's complement.
    #[serde(default)]
    pub sign_magnitude: bool,
    /// value = (raw − offset) × scale.
    #[serde(default = "one")]
    pub scale: f64,
    /// value = (raw − offset) × scale.
    #[serde(default)]
    pub offset: f64,
    /// Another scale while a firmware register says so (`docs/profiles.md`, "scale_when").
    pub scale_when: Option<ScaleWhen>,
    /// Unit of measurement.
    pub unit: Option<String>,
    /// Home Assistant device class.
    pub device_class: Option<String>,
    /// Home Assistant state class.
    pub state_class: Option<StateClass>,
    /// Home Assistant entity category.
    pub entity_category: Option<EntityCategory>,
    /// Material Design icon.
    pub icon: Option<String>,
    /// Smallest plausible value.
    pub min: Option<f64>,
    /// Largest plausible value.
    pub max: Option<f64>,
    /// Largest plausible change between two polls.
    pub max_change: Option<f64>,
    /// Counter semantics.
    pub counter: Option<Counter>,
    /// Raw value → text.
    #[serde(rename = "enum")]
    pub options: Option<BTreeMap<String, String>>,
    /// Bit flag: the value is this bit of the raw value.
    pub bit: Option<u8>,
    /// Bitmask: the value is `(raw & mask) >> mask.trailing_zeros()`.
    pub mask: Option<u32>,
    /// Battery pack `N` (1-based): the reading exists only while the header's `pack_count`
    /// reading reads at least `N`.
    pub pack: Option<u8>,
    /// Home Assistant may set this reading (`docs/writes.md`); the key and the sensor stay.
    pub write: Option<WriteDef>,
}

/// How a writable reading may be set: the range and step of a number, or nothing more for a
/// flag (`bit`), an enum (`enum`, with or without `mask`) or a time of day (`time = true`).
///
/// The writes module reads this; the loader checks it against the reading (a range inside
/// the reading's own `min`..`max`, a bit field with `bit` or `mask`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteDef {
    /// Smallest value accepted, in the reading's unit.
    pub min: Option<f64>,
    /// Largest value accepted, in the reading's unit.
    pub max: Option<f64>,
    /// Values accepted are `min + n × step`.
    pub step: Option<f64>,
    /// The raw value is a time of day as `HHMM` (Deye's time-of-use slots): set as `HH:MM`.
    #[serde(default)]
    pub time: bool,
}

/// What Home Assistant entity a writable reading becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteForm {
    /// A number with a range and a step.
    Number,
    /// One option of an enum.
    Select,
    /// One bit: on or off.
    Switch,
    /// A time of day, `HH:MM`.
    Time,
}

impl ReadingDef {
    /// The form of a writable reading, `None` when it is read-only.
    pub fn write_form(&self) -> Option<WriteForm> {
        let write = self.write.as_ref()?;
        Some(match (self.bit, &self.options, write.time) {
            (Some(_), _, _) => WriteForm::Switch,
            (None, Some(_), _) => WriteForm::Select,
            (None, None, true) => WriteForm::Time,
            (None, None, false) => WriteForm::Number,
        })
    }
}

impl ReadingDef {
    /// Whether this is power the inverter makes from the sun (group `pv` or `output`,
    /// `device_class = "power"`, not a diagnostic fact like the rated power): 0 W while a PV-only
    /// logger sleeps at night, by the poller's night rule.
    pub fn reads_zero_at_night(&self) -> bool {
        self.device_class.as_deref() == Some("power")
            && matches!(self.group.as_str(), "pv" | "output")
            && self.entity_category.is_none()
    }
    /// Why `value` cannot be this reading (outside `min`..`max`, or not a number); `None` when
    /// it can. The static part of the plausibility rules, shared by `quality` and the derived
    /// readings' inputs.
    pub fn out_of_range(&self, value: f64) -> Option<String> {
        match (self.min, self.max) {
            (Some(min), _) if value < min => Some(format!("{value} is below the minimum {min}")),
            (_, Some(max)) if value > max => Some(format!("{value} is above the maximum {max}")),
            _ if !value.is_finite() => Some(format!("{value} is not a number")),
            _ => None,
        }
    }
}

fn one() -> f64 {
    1.0
}
