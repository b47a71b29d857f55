//! Snapshots as text for people: the console table of the demo, `run` and `read`.
//!
//! This module owns the layout: what goes on which line, and how a table fits a width. It must
//! not decide the width or whether colour is allowed (that is [`terminal`]'s, from the
//! environment) and must not print. Fitting a width never cuts a value, a unit or a key: a
//! long name is shortened with an ellipsis, and where even that leaves too little room the key
//! column goes whole (a cut key would name another reading or none).

pub mod terminal;

#[cfg(test)]
mod tests;

use std::fmt::Write;

use crate::poller::{PowerFlows, Snapshot, direction};
use terminal::Terminal;

/// The table's rows start this far in, under their group's heading.
const INDENT: usize = 2;
/// Shortening names below this to keep the key column leaves them unreadable: the key column
/// goes instead.
const NAME_BESIDE_KEY: usize = 20;
/// Names are never shortened below this, even when the line then runs over: values come first.
const NAME_FLOOR: usize = 6;

/// SGR codes: bold for headings, dim for the keys (secondary), yellow for rejections.
const BOLD: &str = "1";
const DIM: &str = "2";
const YELLOW: &str = "33";

/// A one-line power-flow summary from the well-known keys, if the profile has them.
pub fn summary(snapshot: &Snapshot) -> String {
    summary_parts(snapshot).join(" │ ")
}

fn summary_parts(snapshot: &Snapshot) -> Vec<String> {
    let flows = PowerFlows::of(snapshot);
    let mut parts = vec![format!("PV {}", flows.pv.map_or("–".into(), kw))];
    if let (Some(soc), Some(power)) = (flows.battery_soc, flows.battery) {
        let state = direction(power, "discharging", "charging");
        parts.push(format!("battery {soc:.0} % {} {state}", kw(power.abs())));
    }
    if let Some(grid) = flows.grid {
        parts.push(format!("grid {} {}", kw(grid.abs()), direction(grid, "import", "export")));
    }
    if let Some(load) = flows.load {
        parts.push(format!("load {}", kw(load)));
    }
    parts
}

fn kw(watts: f64) -> String {
    format!("{:.2} kW", watts / 1000.0)
}

/// The snapshot as a table grouped by the profile's groups, fitted to `terminal`.
pub fn table(snapshot: &Snapshot, terminal: Terminal) -> String {
    let mut out = String::new();
    let local = snapshot.time.with_timezone(&chrono::Local);
    let header = [
        snapshot.inverter.to_string(),
        snapshot.profile.id().to_string(),
        local.format("%Y-%m-%d %H:%M:%S").to_string(),
        format!(
            "{} readings in {} reads, {:.0?}",
            snapshot.readings.len(),
            snapshot.reads,
            snapshot.duration
        ),
    ];
    for line in pack(&header, " · ", terminal.width, "") {
        let _ = writeln!(out, "{}", paint(&line, BOLD, terminal.ansi));
    }
    for line in pack(&summary_parts(snapshot), " │ ", terminal.width, "") {
        let _ = writeln!(out, "{line}");
    }
    let rows: Vec<Row<'_>> = snapshot.iter().map(Row::of).collect();
    let columns = Columns::fit(&rows, terminal.width);
    let mut group = "";
    for (row, (spec, _)) in rows.iter().zip(snapshot.iter()) {
        if spec.def.group != group {
            group = &spec.def.group;
            let _ = writeln!(out, "\n{}", paint(&format!("[{group}]"), BOLD, terminal.ansi));
        }
        let _ = writeln!(out, "{}", columns.line(row, terminal.ansi));
    }
    for rejection in &snapshot.rejected {
        let key = rejection.index.map_or("poll", |i| snapshot.profile.readings[i].def.key.as_str());
        let text = format!("rejected {key}: {}", rejection.reason);
        let width = terminal.width.map(|w| w.saturating_sub(INDENT));
        for line in wrap(&text, width, "  ").lines() {
            let _ = writeln!(out, "{:INDENT$}{}", "", paint(line, YELLOW, terminal.ansi));
        }
    }
    out
}

/// `text` broken at spaces into lines of at most `width` columns, the lines after the first
/// starting with `indent`. A word longer than the width stays whole on its own line.
pub fn wrap(text: &str, width: Option<usize>, indent: &str) -> String {
    let words: Vec<String> = text.split(' ').map(str::to_string).collect();
    pack(&words, " ", width, indent).join("\n")
}

/// `parts` joined by `separator` into as few lines as fit `width`, the lines after the first
/// starting with `indent`; a line break replaces the separator. A part is never split, so one
/// wider than `width` gets a line of its own.
fn pack(parts: &[String], separator: &str, width: Option<usize>, indent: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(line) if width.is_none_or(|w| columns(line) + columns(separator) + columns(part) <= w) => {
                line.push_str(separator);
                line.push_str(part);
            }
            Some(_) => lines.push(format!("{indent}{part}")),
            None => lines.push(part.clone()),
        }
    }
    lines
}

/// One reading's cells, before fitting.
struct Row<'a> {
    name: &'a str,
    value: String,
    unit: &'a str,
    key: &'a str,
}

impl<'a> Row<'a> {
    fn of((spec, value): (&'a crate::profile::ReadingSpec, &crate::profile::Value)) -> Self {
        let def = &spec.def;
        Self {
            name: &def.name,
            value: value.to_string(),
            unit: def.unit.as_deref().unwrap_or(""),
            key: &def.key,
        }
    }
}

/// The column widths of one table: `name value unit key`, single spaces between.
#[derive(Debug, PartialEq, Eq)]
struct Columns {
    name: usize,
    value: usize,
    unit: usize,
    /// `None`: the key column is left out, there was no room for it.
    key: Option<usize>,
}

impl Columns {
    /// The widest cell of each column, then the name column narrowed until the line fits
    /// `width` (see the module doc for the order of sacrifice).
    fn fit(rows: &[Row<'_>], width: Option<usize>) -> Self {
        let widest = |cell: fn(&Row<'_>) -> usize| rows.iter().map(cell).max().unwrap_or(0);
        let name = widest(|r| columns(r.name));
        let value = widest(|r| columns(&r.value));
        let unit = widest(|r| columns(r.unit));
        let key = widest(|r| columns(r.key));
        let full = Self { name, value, unit, key: Some(key) };
        let Some(width) = width else { return full };
        // Indent, the name's separator, value, separator, unit: all but the name and the key.
        let fixed = INDENT + 1 + value + 1 + unit;
        let beside_key = width.saturating_sub(fixed + 1 + key);
        if beside_key >= name.min(NAME_BESIDE_KEY) {
            return Self { name: name.min(beside_key), ..full };
        }
        Self { name: width.saturating_sub(fixed).clamp(NAME_FLOOR.min(name), name), key: None, ..full }
    }

    /// One row laid out; trailing blanks trimmed so a line never runs over for nothing.
    fn line(&self, row: &Row<'_>, ansi: bool) -> String {
        let Self { name, value, unit, .. } = *self;
        let mut line = format!(
            "{:INDENT$}{:<name$} {:>value$} {:<unit$}",
            "",
            shorten(row.name, name),
            row.value,
            row.unit
        );
        if self.key.is_some() {
            line.push(' ');
            line.push_str(&paint(row.key, DIM, ansi));
        }
        line.truncate(line.trim_end().len());
        line
    }
}

/// `text` in at most `width` columns: cut with an ellipsis when longer.
fn shorten(text: &str, width: usize) -> String {
    if columns(text) <= width {
        return text.to_string();
    }
    let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// The columns `text` takes: one per character. Our names and units are Latin and symbols
/// (`°C`, `…`), none double-width, so this is exact without a Unicode width table.
fn columns(text: &str) -> usize {
    text.chars().count()
}

/// `text` in the SGR style `code` when escape codes are allowed.
fn paint(text: &str, code: &str, ansi: bool) -> String {
    if ansi { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}
