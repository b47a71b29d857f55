//! Typed readings: what decoding turns registers into.

use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A decoded value: a number, a text (enum option, serial, firmware) or a flag.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A measurement or counter, already scaled.
    Number(f64),
    /// An enum option, serial number or firmware version.
    Text(Arc<str>),
    /// A bit flag.
    Bool(bool),
}

impl Value {
    /// The number, for numeric values.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
            Self::Bool(true) => f.write_str("on"),
            Self::Bool(false) => f.write_str("off"),
        }
    }
}

/// Whole numbers serialise as integers (`65`, not `65.0`), so JSON consumers see what HA shows.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => serializer.serialize_i64(*n as i64),
            Self::Number(n) => serializer.serialize_f64(*n),
            Self::Text(t) => serializer.serialize_str(t),
            Self::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

/// One decoded reading: the index of its definition in the profile, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Index into [`super::Profile::readings`].
    pub index: usize,
    /// The decoded value.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_serialise_as_integers() {
        let json = serde_json::to_string(&[
            Value::Number(65.0),
            Value::Number(-1.5),
            Value::Text("Normal".into()),
            Value::Bool(true),
        ])
        .unwrap();
        assert_eq!(json, r#"[65,-1.5,"Normal",true]"#);
    }
}
