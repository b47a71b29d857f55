use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::profile::{Profile, Profiles};
use crate::sim::fixture;

fn profile() -> Arc<Profile> {
    Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap()
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 11, 0, 0).unwrap()
}

fn snapshot() -> Snapshot {
    fixture::snapshot(profile(), "house", noon())
}

fn at(width: usize) -> Terminal {
    Terminal { ansi: false, width: Some(width) }
}

fn assert_fits(table: &str, width: usize) {
    for line in table.lines() {
        assert!(columns(line) <= width, "{} columns > {width}: {line:?}", columns(line));
    }
}

/// Values are never cut: each appears whole in the table, right after its name column.
fn assert_values_whole(table: &str, snapshot: &Snapshot) {
    for (spec, value) in snapshot.iter() {
        let value = value.to_string();
        assert!(
            table.lines().any(|l| l.contains(&format!(" {value}"))),
            "{}: value {value:?} missing or cut",
            spec.def.key
        );
    }
}

#[test]
fn at_120_columns_everything_is_whole() {
    let snapshot = snapshot();
    let table = table(&snapshot, at(120));
    assert_fits(&table, 120);
    assert_values_whole(&table, &snapshot);
    assert!(!table.contains('…'), "{table}");
    for (spec, _) in snapshot.iter() {
        assert!(table.contains(&format!("{} ", spec.def.name)), "{}", spec.def.name);
        assert!(table.lines().any(|l| l.ends_with(&format!(" {}", spec.def.key))), "{}", spec.def.key);
    }
    assert_eq!(table.lines().next(), Some(header_line(&snapshot).as_str()), "the header is one line");
}

fn header_line(snapshot: &Snapshot) -> String {
    let local = snapshot.time.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S");
    format!("house · deye_sg01lp1 · {local} · {} readings in 3 reads, 0ns", snapshot.readings.len())
}

#[test]
fn at_80_columns_names_stay_whole_and_the_keys_go() {
    let snapshot = snapshot();
    let table = table(&snapshot, at(80));
    assert_fits(&table, 80);
    assert_values_whole(&table, &snapshot);
    assert!(!table.contains('…'), "the longest name fits once the keys are gone: {table}");
    assert!(!table.contains("battery_soc"), "the widest key and a readable name do not both fit");
    let firmware = table.lines().find(|l| l.starts_with("  Communication board firmware ")).unwrap();
    assert!(firmware.ends_with(" 1.0.2.7"), "{firmware}");
}

#[test]
fn at_40_columns_the_keys_go_and_values_stay() {
    let snapshot = snapshot();
    let table = table(&snapshot, at(40));
    assert_fits(&table, 40);
    assert_values_whole(&table, &snapshot);
    assert!(!table.contains("battery_soc"), "no key column at 40: {table}");
    let soc = table.lines().find(|l| l.starts_with("  Battery SOC")).unwrap();
    assert!(soc.ends_with(" %"), "{soc}");
    let firmware = table.lines().find(|l| l.starts_with("  Communication")).unwrap();
    assert!(firmware.starts_with("  Communication… "), "long names end in an ellipsis: {firmware}");
    // The header wraps at its separators instead of running over.
    assert_eq!(table.lines().next(), Some("house · deye_sg01lp1"), "{table}");
    assert!(table.lines().any(|l| l == "grid 0.23 kW export │ load 0.37 kW"), "{table}");
}

#[test]
fn without_a_width_nothing_is_shortened() {
    let snapshot = snapshot();
    let table = table(&snapshot, Terminal::PLAIN);
    assert!(!table.contains('…'));
    assert_values_whole(&table, &snapshot);
    for (spec, _) in snapshot.iter() {
        assert!(table.contains(&spec.def.name), "{}", spec.def.name);
        assert!(table.lines().any(|l| l.ends_with(&format!(" {}", spec.def.key))), "{}", spec.def.key);
    }
}

#[test]
fn colour_only_when_allowed_and_it_moves_nothing() {
    let snapshot = snapshot();
    let plain = table(&snapshot, at(80));
    assert!(!plain.contains('\x1b'));
    let coloured = table(&snapshot, Terminal { ansi: true, width: Some(80) });
    assert!(coloured.contains("\x1b[1m[battery]\x1b[0m"), "{coloured}");
    assert_eq!(strip_escapes(&coloured), plain);
}

fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

fn row<'a>(name: &'a str, value: &str, unit: &'a str, key: &'a str) -> Row<'a> {
    Row { name, value: value.into(), unit, key }
}

#[test]
fn the_key_column_goes_before_names_get_unreadable() {
    let rows = [row("A rather long reading name here", "12345", "kWh", "a_rather_long_key")];
    // Everything: 2 + 31 + 1 + 5 + 1 + 3 + 1 + 17 = 61.
    assert_eq!(Columns::fit(&rows, Some(61)), Columns { name: 31, value: 5, unit: 3, key: Some(17) });
    assert_eq!(Columns::fit(&rows, Some(50)).name, 20, "the name shortens first");
    assert_eq!(Columns::fit(&rows, Some(49)), Columns { name: 31, value: 5, unit: 3, key: None });
    assert_eq!(Columns::fit(&rows, Some(30)).name, 18);
    assert_eq!(Columns::fit(&rows, Some(5)).name, NAME_FLOOR, "values come first, the line runs over");
}

#[test]
fn a_shortened_name_ends_with_an_ellipsis_in_its_width() {
    assert_eq!(shorten("Battery temperature", 10), "Battery t…");
    assert_eq!(shorten("Battery", 10), "Battery");
    assert_eq!(columns(&shorten("Température extérieure", 8)), 8);
}

#[test]
fn wrap_breaks_at_spaces_and_keeps_long_words_whole() {
    let text = "profile deye_sg01lp1, detected from device type 0x0003 (2 MPPT, 1 phase)";
    assert_eq!(wrap(text, None, "  "), text);
    let wrapped = wrap(text, Some(30), "  ");
    assert_eq!(wrapped, "profile deye_sg01lp1, detected\n  from device type 0x0003 (2\n  MPPT, 1 phase)");
    assert_eq!(wrap("a verylongwordindeed b", Some(5), ""), "a\nverylongwordindeed\nb");
}
