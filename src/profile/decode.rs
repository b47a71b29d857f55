//! Registers → typed values, and back (the simulator writes what the house model says).
//!
//! Order of operations (docs/profiles.md): combine words → apply sign → bit or mask → enum
//! lookup, or `(raw − offset) × scale` rounded to the decimals of `scale`, where `scale_when` may
//! pick another scale from a firmware register of the same poll.

use std::sync::Arc;

use super::def::{Kind, WordOrder};
use super::{ReadingSpec, RegisterSet, Value};

/// Why a reading could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// A register of the reading was not read this poll.
    #[error("register {0} was not read")]
    Missing(u16),
    /// The raw value is not one of the enum's options.
    #[error("raw value {0} is not one of the enum options")]
    UnknownOption(i64),
    /// An input of a derived reading was not read, or is outside its own range.
    #[error("input `{0}` was not read or is out of range")]
    Input(String),
    /// A derived reading has no registers to decode: [`ReadingSpec::derive`] computes it.
    #[error("a derived reading is computed from other readings, not decoded")]
    Derived,
}

/// Why a value could not be written into registers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The value's type does not fit the reading.
    #[error("a {value} value does not fit reading `{key}`")]
    Type {
        /// The reading's key.
        key: String,
        /// What was offered.
        value: &'static str,
    },
    /// The text is not one of the enum's options.
    #[error("`{text}` is not an option of `{key}`")]
    UnknownOption {
        /// The reading's key.
        key: String,
        /// The text offered.
        text: String,
    },
    /// A register address is beyond the register array.
    #[error("register {0} is outside the register array")]
    Address(u16),
    /// A derived reading has no registers to write: the simulator serves its inputs.
    #[error("reading `{0}` is derived from other readings and has no registers")]
    Derived(String),
}

impl ReadingSpec {
    /// Decodes this reading from the registers of one poll.
    ///
    /// # Errors
    /// [`DecodeError::Missing`] when a register was not read, [`DecodeError::UnknownOption`]
    /// when an enum reading holds a value it has no text for, [`DecodeError::Derived`] for a
    /// derived reading.
    pub fn decode(&self, regs: &RegisterSet) -> Result<Value, DecodeError> {
        if self.def.kind.is_derived() {
            return Err(DecodeError::Derived);
        }
        let mut words = [0u16; 8];
        let n = self.def.registers.len().min(words.len());
        for (slot, &addr) in words.iter_mut().zip(&self.def.registers) {
            *slot = regs.get(addr).ok_or(DecodeError::Missing(addr))?;
        }
        let words = &words[..n];
        match self.def.kind {
            Kind::Ascii => return Ok(Value::Text(ascii(words))),
            Kind::Version => return Ok(Value::Text(version(words))),
            _ => {}
        }
        let bits = self.bits(words);
        if let Some(bit) = self.def.bit {
            return Ok(Value::Bool(bits >> bit & 1 == 1));
        }
        let raw = match self.def.mask {
            Some(mask) => i64::from((bits as u32 & mask) >> mask.trailing_zeros()),
            None => self.signed(bits),
        };
        if !self.options.is_empty() {
            return self.option(raw).map(Value::Text).ok_or(DecodeError::UnknownOption(raw));
        }
        let scale = self.scale_in_force(|addr| regs.get(addr)).map_err(DecodeError::Missing)?;
        Ok(Value::Number(self.scaled(raw, scale)))
    }

    /// The scale for this poll: `scale_when`'s while its register satisfies the condition, else
    /// `scale`. `read` looks a register up; a deciding register it lacks is `Err(address)`,
    /// because guessing the scale would publish a value ten times off.
    fn scale_in_force(&self, read: impl Fn(u16) -> Option<u16>) -> Result<f64, u16> {
        let Some(when) = &self.def.scale_when else { return Ok(self.def.scale) };
        let raw = read(when.register).ok_or(when.register)?;
        Ok(if when.holds(raw) { when.scale } else { self.def.scale })
    }

    /// The text of enum option `raw`.
    pub fn option(&self, raw: i64) -> Option<Arc<str>> {
        self.options.iter().find(|(k, _)| *k == raw).map(|(_, v)| v.clone())
    }

    /// The unsigned bits of an integer kind, words combined in their order.
    fn bits(&self, words: &[u16]) -> u64 {
        match (words, self.def.word_order) {
            ([lo, hi], Some(WordOrder::LowFirst)) | ([hi, lo], Some(WordOrder::HighFirst)) => {
                u64::from(*hi) << 16 | u64::from(*lo)
            }
            _ => u64::from(words[0]),
        }
    }

    /// The raw integer with the kind's sign rule applied.
    fn signed(&self, bits: u64) -> i64 {
        let width = 16 * self.def.kind.width().unwrap_or(1) as u32;
        if !self.def.kind.is_signed() {
            return bits as i64;
        }
        let sign = 1u64 << (width - 1);
        match (bits & sign != 0, self.def.sign_magnitude) {
            (false, _) => bits as i64,
            (true, true) => -((bits & (sign - 1)) as i64),
            (true, false) => bits as i64 - (1i64 << width),
        }
    }

    fn scaled(&self, raw: i64, scale: f64) -> f64 {
        self.round((raw as f64 - self.def.offset) * scale)
    }

    /// `value` rounded to this reading's decimals.
    pub(crate) fn round(&self, value: f64) -> f64 {
        let factor = 10f64.powi(i32::from(self.decimals));
        (value * factor).round() / factor
    }

    /// Writes `value` into `regs` (indexed by address), the inverse of [`Self::decode`].
    /// Bits and masks change only their own bits, so several readings can share a register.
    ///
    /// # Errors
    /// [`EncodeError`] when the value does not fit this reading.
    pub fn encode(&self, value: &Value, regs: &mut [u16]) -> Result<(), EncodeError> {
        let wrong = |value: &'static str| EncodeError::Type { key: self.def.key.clone(), value };
        if self.def.kind.is_derived() {
            return Err(EncodeError::Derived(self.def.key.clone()));
        }
        match (self.def.kind, value) {
            (Kind::Ascii, Value::Text(text)) => {
                return self.put_words(&ascii_words(text, self.def.registers.len()), regs);
            }
            (Kind::Version, Value::Text(text)) => return self.put_words(&version_words(text), regs),
            (Kind::Ascii | Kind::Version, _) => return Err(wrong("non-text")),
            _ => {}
        }
        let current = self.bits(&self.read_words(regs)?);
        let bits = match (self.def.bit, self.def.mask, value) {
            (Some(bit), _, Value::Bool(on)) => current & !(1 << bit) | u64::from(*on) << bit,
            (Some(_), _, _) => return Err(wrong("non-flag")),
            (None, mask, value) => {
                let raw = self.raw_of(value, regs)?;
                match mask {
                    Some(mask) => {
                        let field = (raw as u64) << mask.trailing_zeros() & u64::from(mask);
                        current & !u64::from(mask) | field
                    }
                    None => self.unsigned(raw),
                }
            }
        };
        self.put_words(&self.split(bits), regs)
    }

    fn raw_of(&self, value: &Value, regs: &[u16]) -> Result<i64, EncodeError> {
        match value {
            Value::Number(n) => {
                let read = |addr: u16| regs.get(usize::from(addr)).copied();
                let scale = self.scale_in_force(read).map_err(EncodeError::Address)?;
                Ok((n / scale + self.def.offset).round() as i64)
            }
            Value::Text(text) => {
                self.options.iter().find(|(_, v)| **v == **text).map(|(k, _)| *k).ok_or_else(|| {
                    EncodeError::UnknownOption { key: self.def.key.clone(), text: text.to_string() }
                })
            }
            Value::Bool(_) => Err(EncodeError::Type { key: self.def.key.clone(), value: "flag" }),
        }
    }

    /// The bits of `raw` in the kind's width and sign rule, clamped to what fits.
    fn unsigned(&self, raw: i64) -> u64 {
        let width = 16 * self.def.kind.width().unwrap_or(1) as u32;
        let max = (1i64 << width) - 1;
        if !self.def.kind.is_signed() {
            return raw.clamp(0, max) as u64;
        }
        let half = 1i64 << (width - 1);
        let raw = raw.clamp(-half + 1, half - 1);
        match (raw < 0, self.def.sign_magnitude) {
            (false, _) => raw as u64,
            (true, true) => (half - raw) as u64 & max as u64 | half as u64,
            (true, false) => (raw + (1i64 << width)) as u64,
        }
    }

    fn split(&self, bits: u64) -> Vec<u16> {
        let (lo, hi) = (bits as u16, (bits >> 16) as u16);
        match self.def.word_order {
            Some(WordOrder::LowFirst) => vec![lo, hi],
            Some(WordOrder::HighFirst) => vec![hi, lo],
            None => vec![lo],
        }
    }

    fn read_words(&self, regs: &[u16]) -> Result<Vec<u16>, EncodeError> {
        self.def
            .registers
            .iter()
            .map(|&a| regs.get(usize::from(a)).copied().ok_or(EncodeError::Address(a)))
            .collect()
    }

    fn put_words(&self, words: &[u16], regs: &mut [u16]) -> Result<(), EncodeError> {
        for (&addr, &word) in self.def.registers.iter().zip(words) {
            *regs.get_mut(usize::from(addr)).ok_or(EncodeError::Address(addr))? = word;
        }
        Ok(())
    }
}

/// Two characters per register, high byte first; NULs and padding dropped.
fn ascii(words: &[u16]) -> Arc<str> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).filter(|b| *b != 0).collect();
    String::from_utf8_lossy(&bytes).trim().into()
}

fn ascii_words(text: &str, registers: usize) -> Vec<u16> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(registers * 2, 0);
    bytes.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect()
}

/// Each register as four hex nibbles joined by dots; registers joined by dashes.
fn version(words: &[u16]) -> Arc<str> {
    let parts: Vec<String> = words
        .iter()
        .map(|w| format!("{:x}.{:x}.{:x}.{:x}", w >> 12, w >> 8 & 0xf, w >> 4 & 0xf, w & 0xf))
        .collect();
    parts.join("-").into()
}

fn version_words(text: &str) -> Vec<u16> {
    text.split('-')
        .map(|part| {
            part.split('.').fold(0u16, |acc, n| acc << 4 | u16::from_str_radix(n, 16).unwrap_or(0) & 0xf)
        })
        .collect()
}
