//! `scale_when`: a scale picked by another reading's register, and the loader's checks on it.

use crate::profile::load::parse;
use crate::profile::{ProfileError, RegisterBlock, RegisterSet, Value};

use super::HEADER;

/// A build register (15, a `version` reading) and an energy counter at 529 that switches from
/// 0.1 to 1 kWh per bit from build 0x1098 on, with `when` replacing the condition if given.
fn profile_text(when: &str) -> String {
    format!(
        "{HEADER}\
         [[reading]]\nkey = \"build\"\nname = \"Build\"\ngroup = \"identity\"\nregisters = [15]\nkind = \"version\"\n\
         [[reading]]\nkey = \"energy\"\nname = \"Energy\"\ngroup = \"energy\"\nregisters = [529]\nkind = \"u16\"\n\
         scale = 0.1\nscale_when = {when}\n"
    )
}

const FIRMWARE: &str = "{ key = \"build\", at_least = 0x1098, scale = 1 }";

fn reason(when: &str) -> String {
    parse(&profile_text(when), "t.toml", Some("t")).unwrap_err().to_string()
}

fn energy(build: u16, raw: u16) -> Result<Value, crate::profile::DecodeError> {
    let profile = parse(&profile_text(FIRMWARE), "t.toml", Some("t")).unwrap();
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 15, values: vec![build] });
    regs.insert(RegisterBlock { start: 529, values: vec![raw] });
    profile.readings[1].decode(&regs)
}

#[test]
fn the_build_register_picks_the_scale() {
    assert_eq!(energy(0x1097, 425), Ok(Value::Number(42.5)));
    assert_eq!(energy(0x1098, 425), Ok(Value::Number(425.0)));
    assert_eq!(energy(0x2000, 425), Ok(Value::Number(425.0)));
}

#[test]
fn below_bounds_the_range_from_above() {
    let text = profile_text("{ key = \"build\", at_least = 0x1098, below = 0x1100, scale = 1 }");
    let profile = parse(&text, "t.toml", Some("t")).unwrap();
    let decode = |build: u16| {
        let mut regs = RegisterSet::new();
        regs.insert(RegisterBlock { start: 15, values: vec![build] });
        regs.insert(RegisterBlock { start: 529, values: vec![425] });
        profile.readings[1].decode(&regs).unwrap()
    };
    assert_eq!(decode(0x10ff), Value::Number(425.0));
    assert_eq!(decode(0x1100), Value::Number(42.5));
}

#[test]
fn a_missing_build_register_is_not_guessed() {
    // Without the build the scale is unknown: the reading is left out, not published 10x off.
    let profile = parse(&profile_text(FIRMWARE), "t.toml", Some("t")).unwrap();
    let mut regs = RegisterSet::new();
    regs.insert(RegisterBlock { start: 529, values: vec![425] });
    assert_eq!(profile.readings[1].decode(&regs), Err(crate::profile::DecodeError::Missing(15)));
}

#[test]
fn decimals_follow_the_finer_scale() {
    let profile = parse(&profile_text(FIRMWARE), "t.toml", Some("t")).unwrap();
    assert_eq!(profile.readings[1].decimals, 1);
    let finer =
        profile_text("{ key = \"build\", below = 0x1098, scale = 0.01 }").replace("scale = 0.1\n", "");
    assert_eq!(parse(&finer, "t.toml", Some("t")).unwrap().readings[1].decimals, 2);
}

#[test]
fn the_loader_names_what_is_wrong() {
    let at = |reason: &str| format!("t.toml: reading `energy`: {reason}");
    assert_eq!(
        reason("{ key = \"nope\", at_least = 1, scale = 1 }"),
        at("scale_when names `nope`, which is not a reading")
    );
    assert_eq!(
        reason("{ key = \"energy\", at_least = 1, scale = 1 }"),
        at("scale_when names the reading itself")
    );
    assert_eq!(reason("{ key = \"build\", scale = 1 }"), at("scale_when needs at_least, below or both"));
    assert_eq!(
        reason("{ key = \"build\", at_least = 0x1098, below = 0x1098, scale = 1 }"),
        at("scale_when: at_least 0x1098 must be below 0x1098")
    );
    assert_eq!(
        reason("{ key = \"build\", at_least = 1, scale = 0 }"),
        at("scale_when: scale 0 must be finite and non-zero")
    );
    let err = parse(&profile_text("{ key = \"build\", at_least = 70000, scale = 1 }"), "t.toml", Some("t"));
    assert!(matches!(err, Err(ProfileError::Parse { .. })), "a bound beyond 16 bits is a parse error");
}

#[test]
fn the_deciding_reading_must_be_one_plain_register() {
    let wide = profile_text(FIRMWARE)
        .replace("registers = [15]\nkind = \"version\"", "registers = [14, 15]\nkind = \"version\"");
    let masked = profile_text(FIRMWARE).replace("kind = \"version\"", "kind = \"u16\"\nmask = 0x00FF");
    let expected = "t.toml: reading `energy`: scale_when names `build`: it must be one u16 or version register, no bit or mask";
    for text in [wide, masked] {
        assert_eq!(parse(&text, "t.toml", Some("t")).unwrap_err().to_string(), expected);
    }
}

#[test]
fn only_numeric_readings_take_scale_when() {
    let text = format!(
        "{}device_class = \"enum\"\nenum = {{ 0 = \"A\" }}\n",
        profile_text(FIRMWARE).replace("scale = 0.1\n", "")
    );
    assert_eq!(
        parse(&text, "t.toml", Some("t")).unwrap_err().to_string(),
        "t.toml: reading `energy`: scale_when applies to numeric readings only"
    );
}
