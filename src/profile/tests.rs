//! Decoding tests: fixed cases from docs/protocol.md §4, and properties for every numeric kind.

use proptest::prelude::*;

mod scale_when;
mod sg01hp3;

use super::load::parse;
use super::*;

/// A test profile's header, for the files of small profiles the tests parse.
pub(super) const HEADER: &str = "[profile]\nid = \"t\"\nmanufacturer = \"Deye\"\nmodel = \"M\"\n";

/// The built-in profiles, parsed once for all the tests.
static BUILTIN: std::sync::LazyLock<Profiles> =
    std::sync::LazyLock::new(|| Profiles::builtin().expect("the built-in profiles load"));

/// Built-in profile `id`.
pub(super) fn builtin(id: &str) -> std::sync::Arc<Profile> {
    BUILTIN.get(id).expect("a built-in profile")
}

/// Built-in profile `id` without its battery packs and their count: the registers below 10000
/// that the family tables of these tests fill (the packs have tests of their own, `packs`).
pub(super) fn builtin_without_packs(id: &str) -> std::sync::Arc<Profile> {
    let full = builtin(id);
    let count = full.header.pack_count.clone();
    std::sync::Arc::new(full.narrowed(|r| r.def.pack.is_none() && Some(&r.def.key) != count.as_ref()))
}

/// A 32-bit value as the inverter writes it: low word, high word.
pub(super) fn words32(value: i64) -> [u16; 2] {
    let bits = value as u32;
    [bits as u16, (bits >> 16) as u16]
}

/// Text as registers, two ASCII characters each, high byte first.
pub(super) fn ascii_words(text: &str) -> Vec<u16> {
    text.as_bytes().chunks(2).map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])).collect()
}

/// Value makers for the expected-value tables.
pub(super) fn n(v: f64) -> Value {
    Value::Number(v)
}

/// A text value.
pub(super) fn t(s: &str) -> Value {
    Value::Text(s.into())
}

/// A flag value.
pub(super) fn b(on: bool) -> Value {
    Value::Bool(on)
}

/// Decodes `regs` and asserts that every reading of `p` decoded, without error, to the value
/// `expected` names: no reading left unasserted, none asserted twice, none missing.
pub(super) fn assert_decodes_to(p: &Profile, regs: &RegisterSet, expected: &[(&str, Value)]) {
    let (readings, errors) = p.decode(regs);
    assert!(errors.is_empty(), "decode errors: {errors:?}");
    let got: std::collections::BTreeMap<&str, &Value> =
        readings.iter().map(|r| (p.readings[r.index].def.key.as_str(), &r.value)).collect();
    let keys: std::collections::BTreeSet<&str> = expected.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys.len(), expected.len(), "a key is asserted twice");
    let unasserted: Vec<&str> =
        p.readings.iter().map(|r| r.def.key.as_str()).filter(|k| !keys.contains(k)).collect();
    assert!(unasserted.is_empty(), "readings the table does not assert: {unasserted:?}");
    for (key, want) in expected {
        assert_eq!(got.get(key), Some(&want), "reading `{key}`");
    }
    assert_eq!(readings.len(), p.readings.len(), "every reading decodes");
}

/// Checks that every reading with `_l1`, `_l2` and `_l3` readings beside it and a unit is the sum
/// of exactly those three (a total's own register can glitch, docs/profiles.md "The S16
/// overflow"), and returns how many such totals `p` has.
pub(super) fn three_phase_totals(p: &Profile) -> usize {
    let mut totals = 0;
    for spec in &p.readings {
        let key = &spec.def.key;
        let phases: Vec<String> = (1..=3).map(|l| format!("{key}_l{l}")).collect();
        if spec.def.unit.as_deref() != Some("W") || !phases.iter().all(|k| p.index_of(k).is_some()) {
            continue;
        }
        assert_eq!(spec.def.kind, crate::profile::Kind::Sum, "{key} is read, not summed");
        assert_eq!(spec.def.of, phases, "{key} sums other readings");
        totals += 1;
    }
    totals
}

fn spec(body: &str) -> ReadingSpec {
    let text = format!("{HEADER}[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\n{body}");
    parse(&text, "t.toml", Some("t")).unwrap().readings.remove(0)
}

fn regs(start: u16, values: &[u16]) -> RegisterSet {
    let mut set = RegisterSet::new();
    set.insert(RegisterBlock { start, values: values.to_vec() });
    set
}

fn number(v: Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn temperature_takes_offset_then_scale() {
    let s = spec("registers = [182]\nkind = \"u16\"\noffset = 1000\nscale = 0.1\n");
    assert_eq!(number(s.decode(&regs(182, &[1234])).unwrap()), 23.4);
    assert_eq!(number(s.decode(&regs(182, &[950])).unwrap()), -5.0);
}

#[test]
fn signed_power_is_twos_complement() {
    let s = spec("registers = [190]\nkind = \"s16\"\n");
    assert_eq!(number(s.decode(&regs(190, &[0xfc18])).unwrap()), -1000.0);
    let m = spec("registers = [190]\nkind = \"s16\"\nsign_magnitude = true\n");
    assert_eq!(number(m.decode(&regs(190, &[0x83e8])).unwrap()), -1000.0);
}

#[test]
fn total_import_reads_non_adjacent_words_low_first() {
    // docs/protocol.md §4.2: total import is 78 (low) + 80 (high); 79 is the grid frequency.
    let s = spec("registers = [78, 80]\nkind = \"u32\"\nword_order = \"low_first\"\nscale = 0.1\n");
    assert_eq!(number(s.decode(&regs(78, &[0x86a0, 5000, 0x0001])).unwrap()), 10000.0);
    let h = spec("registers = [78, 80]\nkind = \"u32\"\nword_order = \"high_first\"\n");
    assert_eq!(number(h.decode(&regs(78, &[1, 0, 2])).unwrap()), 65538.0);
}

#[test]
fn enum_bit_mask_ascii_and_version() {
    let e = spec(
        "registers = [59]\nkind = \"u16\"\ndevice_class = \"enum\"\nenum = { 0 = \"Standby\", 2 = \"Normal\" }\n",
    );
    assert_eq!(e.decode(&regs(59, &[2])).unwrap(), Value::Text("Normal".into()));
    assert_eq!(e.decode(&regs(59, &[7])), Err(DecodeError::UnknownOption(7)));
    let b = spec("registers = [103, 104]\nkind = \"u32\"\nword_order = \"low_first\"\nbit = 17\n");
    assert_eq!(b.decode(&regs(103, &[0, 0b10])).unwrap(), Value::Bool(true));
    assert_eq!(b.decode(&regs(103, &[0xffff, 0b01])).unwrap(), Value::Bool(false));
    let m = spec("registers = [18]\nkind = \"u16\"\nmask = 0x0f00\n");
    assert_eq!(number(m.decode(&regs(18, &[0x0201])).unwrap()), 2.0);
    let a = spec("registers = [3, 4, 5, 6, 7]\nkind = \"ascii\"\n");
    let serial = ascii_words("2306123456");
    assert_eq!(a.decode(&regs(3, &serial)).unwrap(), Value::Text("2306123456".into()));
    let v = spec("registers = [13]\nkind = \"version\"\n");
    assert_eq!(v.decode(&regs(13, &[0x1234])).unwrap(), Value::Text("1.2.3.4".into()));
}

#[test]
fn missing_registers_are_reported_not_zeroed() {
    let s = spec("registers = [184]\nkind = \"u16\"\n");
    assert_eq!(s.decode(&regs(0, &[1, 2])), Err(DecodeError::Missing(184)));
}

#[test]
fn flags_and_masks_share_a_register_when_encoded() {
    let low = spec("registers = [18]\nkind = \"u16\"\nmask = 0x000f\n");
    let high = spec("registers = [18]\nkind = \"u16\"\nmask = 0x0f00\n");
    let flag = spec("registers = [18]\nkind = \"u16\"\nbit = 15\n");
    let mut r = vec![0u16; 32];
    low.encode(&Value::Number(1.0), &mut r).unwrap();
    high.encode(&Value::Number(2.0), &mut r).unwrap();
    flag.encode(&Value::Bool(true), &mut r).unwrap();
    assert_eq!(r[18], 0x8201);
}

fn round_trip(body: &str, value: f64) -> f64 {
    let s = spec(body);
    let mut r = vec![0u16; 300];
    s.encode(&Value::Number(value), &mut r).unwrap();
    let set = regs(0, &r);
    number(s.decode(&set).unwrap())
}

proptest! {
    #[test]
    fn u16_decodes_raw_times_scale(raw in any::<u16>()) {
        let s = spec("registers = [5]\nkind = \"u16\"\nscale = 0.01\n");
        let got = number(s.decode(&regs(5, &[raw])).unwrap());
        prop_assert!((got - f64::from(raw) / 100.0).abs() < 1e-9);
    }

    #[test]
    fn s16_decodes_negative_values(raw in any::<i16>()) {
        let s = spec("registers = [5]\nkind = \"s16\"\n");
        prop_assert_eq!(number(s.decode(&regs(5, &[raw as u16])).unwrap()), f64::from(raw));
    }

    #[test]
    fn s32_respects_word_order(raw in any::<i32>()) {
        let bits = raw as u32;
        let (lo, hi) = (bits as u16, (bits >> 16) as u16);
        let low_first = spec("registers = [10, 11]\nkind = \"s32\"\nword_order = \"low_first\"\n");
        prop_assert_eq!(number(low_first.decode(&regs(10, &[lo, hi])).unwrap()), f64::from(raw));
        let high_first = spec("registers = [10, 11]\nkind = \"s32\"\nword_order = \"high_first\"\n");
        prop_assert_eq!(number(high_first.decode(&regs(10, &[hi, lo])).unwrap()), f64::from(raw));
    }

    #[test]
    fn u32_decodes_full_range(raw in any::<u32>()) {
        let s = spec("registers = [10, 11]\nkind = \"u32\"\nword_order = \"low_first\"\n");
        prop_assert_eq!(number(s.decode(&regs(10, &[raw as u16, (raw >> 16) as u16])).unwrap()), f64::from(raw));
    }

    #[test]
    fn sign_magnitude_s16_keeps_the_magnitude(magnitude in 0u16..0x8000, negative in any::<bool>()) {
        let s = spec("registers = [5]\nkind = \"s16\"\nsign_magnitude = true\n");
        let raw = magnitude | if negative { 0x8000 } else { 0 };
        let expected = if negative { -f64::from(magnitude) } else { f64::from(magnitude) };
        prop_assert_eq!(number(s.decode(&regs(5, &[raw])).unwrap()), expected);
    }

    #[test]
    fn encode_then_decode_is_identity(raw in -30000i64..30000, kind in 0usize..4, sm in any::<bool>()) {
        let bodies = [
            "registers = [100]\nkind = \"s16\"\nscale = 0.1\n".to_string(),
            format!("registers = [100]\nkind = \"s16\"\nsign_magnitude = {sm}\n"),
            "registers = [100, 102]\nkind = \"s32\"\nword_order = \"low_first\"\nscale = 0.01\n".to_string(),
            "registers = [100, 101]\nkind = \"s32\"\nword_order = \"high_first\"\noffset = 1000\nscale = 0.1\n".to_string(),
        ];
        let s = spec(&bodies[kind]);
        let value = (raw as f64 - s.def.offset) * s.def.scale;
        let value = (value * 100.0).round() / 100.0;
        prop_assert!((round_trip(&bodies[kind], value) - value).abs() < 1e-9);
    }
}

mod derived;
mod micro;
mod narrowed;
mod packs;
mod sg01lp1_additions;
mod sg04lp3;
mod string;
