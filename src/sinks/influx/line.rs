//! InfluxDB line protocol: a [`Point`] of any measurement and its one-line text form.
//!
//! ```text
//! inverter,inverter=house,serial=2306178901,site=home battery_soc=65,grid_connected=true,running_state="Normal" 1795742952000000000
//! └──┬───┘ └──────────────────┬────────────────────┘ └─────────────────────┬────────────────────────────────┘ └────────┬────────┘
//! measurement    tags, sorted by key (bytes.Compare)               fields (at least one)                     Unix nanoseconds
//! ```
//!
//! Escaping follows the line-protocol reference (docs.influxdata.com, influxdb/v1
//! line_protocol_reference, "Special characters"):
//!
//! | element | escaped with `\` |
//! |---|---|
//! | measurement | `,` and space |
//! | tag key, tag value, field key | `,`, `=` and space |
//! | string field value (in `"…"`) | `"` and `\` |
//!
//! Three things the protocol cannot carry are made representable, never sent broken:
//! - a line break ends a line anywhere, so `\n` and `\r` become a space;
//! - in names, a backslash before an escapable character, another backslash or the end is read
//!   differently by InfluxDB 1.x (literal) and 2.x (an escape), so it becomes `/`; a backslash
//!   before an ordinary character is literal in both and stays;
//! - `#` starting a line makes it a comment, so a measurement's leading `#` becomes `_`.
//!
//! Values: floats are written in plain decimal (Rust's shortest round-trip form), integers with
//! a trailing `i`, booleans as `true`/`false`. NaN and ±infinity are rejected by every InfluxDB,
//! so such fields are left out; a point left without fields, or with an empty measurement, has no
//! line at all. Empty tag keys or values are not allowed either, so such tags are left out.
//! Timestamps are always nanoseconds: spooled lines stay valid if the configured precision
//! changes, and the write request says `precision=ns`.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Characters escaped in a measurement.
const MEASUREMENT_SPECIALS: &[char] = &[',', ' '];
/// Characters escaped in tag keys, tag values and field keys.
const KEY_SPECIALS: &[char] = &[',', '=', ' '];

/// One value of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A float; NaN and ±infinity are not written.
    Float(f64),
    /// A signed integer (`42i`).
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A string, written in double quotes.
    Text(String),
}

/// One point: a measurement, its tags, its fields and its time. Not tied to inverters: weather
/// points use the same type with their own measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The measurement (table) name.
    pub measurement: String,
    /// Tags, kept sorted by key as InfluxDB prefers.
    pub tags: BTreeMap<String, String>,
    /// Fields, written in this order.
    pub fields: Vec<(String, FieldValue)>,
    /// The time of the point.
    pub time: DateTime<Utc>,
}

impl Point {
    /// An empty point of `measurement` at `time`.
    pub fn new(measurement: impl Into<String>, time: DateTime<Utc>) -> Self {
        Self { measurement: measurement.into(), tags: BTreeMap::new(), fields: Vec::new(), time }
    }

    /// Adds or replaces tag `key`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Adds field `key`.
    pub fn field(mut self, key: impl Into<String>, value: FieldValue) -> Self {
        self.fields.push((key.into(), value));
        self
    }

    /// The point as one line without its newline, or `None` when it has nothing writable (no
    /// measurement, no finite field, or a time outside the years 1677–2262).
    pub fn to_line(&self) -> Option<String> {
        let mut line = String::with_capacity(64 + 32 * self.fields.len());
        self.encode(&mut line).then_some(line)
    }

    /// Appends the point as one line without its newline to `out`; returns false, leaving
    /// `out` as it was, when the point has nothing writable (see [`Point::to_line`]).
    pub fn encode(&self, out: &mut String) -> bool {
        let Some(nanos) = self.time.timestamp_nanos_opt() else { return false };
        if self.measurement.is_empty() {
            return false;
        }
        let start = out.len();
        write_measurement(out, &self.measurement);
        for (key, value) in self.tags.iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()) {
            out.push(',');
            write_name(out, key, KEY_SPECIALS);
            out.push('=');
            write_name(out, value, KEY_SPECIALS);
        }
        if !self.write_fields(out) {
            out.truncate(start);
            return false;
        }
        // Writing to a String cannot fail.
        let _ = write!(out, " {nanos}");
        true
    }

    /// Appends ` key=value,…`; false when no field was writable.
    fn write_fields(&self, out: &mut String) -> bool {
        let mut separator = ' ';
        for (key, value) in &self.fields {
            if key.is_empty() || matches!(value, FieldValue::Float(f) if !f.is_finite()) {
                continue;
            }
            out.push(separator);
            separator = ',';
            write_name(out, key, KEY_SPECIALS);
            out.push('=');
            write_value(out, value);
        }
        separator == ','
    }
}

/// A measurement: like any name, and a leading `#` would turn the line into a comment.
fn write_measurement(out: &mut String, measurement: &str) {
    match measurement.strip_prefix('#') {
        Some(rest) => {
            out.push('_');
            write_name(out, rest, MEASUREMENT_SPECIALS);
        }
        None => write_name(out, measurement, MEASUREMENT_SPECIALS),
    }
}

/// A name (measurement, tag key or value, field key) with `specials` escaped.
fn write_name(out: &mut String, name: &str, specials: &[char]) {
    let plain = |c: char| !specials.contains(&c) && !matches!(c, '\\' | '\n' | '\r');
    if name.chars().all(plain) {
        out.push_str(name);
        return;
    }
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' => out.push_str("\\ "),
            // Literal in 1.x and 2.x alike only before an ordinary character (module docs).
            '\\' if chars.peek().is_some_and(|&next| plain(next)) => out.push('\\'),
            '\\' => out.push('/'),
            c if specials.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// A field value.
fn write_value(out: &mut String, value: &FieldValue) {
    // Writing to a String cannot fail.
    let _ = match value {
        FieldValue::Float(f) => write!(out, "{f}"),
        FieldValue::Integer(i) => write!(out, "{i}i"),
        FieldValue::Bool(b) => write!(out, "{b}"),
        FieldValue::Text(text) => {
            write_text(out, text);
            Ok(())
        }
    };
}

/// A string field value in double quotes, with `"` and `\` escaped.
fn write_text(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
