//! The picture of `replay --svg`: one small panel per [`Series`], the raw decoded values as a
//! thin grey line against what reached Home Assistant as a solid one, a red dot on every value
//! plausibility rejected (its `<title>` names the time, the value and the rule).
//!
//! Sans I/O: [`render`] is a function from series to a `String`, and the same series give the
//! same bytes (no clock, no randomness, fixed number formatting), so a recording replayed twice
//! draws the same file. The file stands alone: no script, no stylesheet, no font to fetch; an
//! explicit white background keeps it readable in a dark-mode viewer.
//!
//! The y scale of a panel follows the published values (the raw ones when nothing was
//! published): a 65535 spike would otherwise flatten the day into a line. A raw value off that
//! scale is drawn on the panel's edge, its dot still saying what it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use super::series::{Point, Series};
use crate::markup::escape;

/// The picture's width in px: readable in a README at its natural size.
pub const WIDTH: f64 = 900.0;
/// Title and legend above the first panel.
const HEADER: f64 = 78.0;
/// One panel: its title, the plot, the time labels.
const PANEL: f64 = 150.0;
/// The plot inside a panel.
const PLOT_TOP: f64 = 26.0;
const PLOT_HEIGHT: f64 = 96.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 20.0;
/// Candidate spacings of the time labels, in minutes: the first giving at most
/// [`MAX_TIME_LABELS`] is used.
const TIME_STEPS: [i64; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440];
const MAX_TIME_LABELS: i64 = 12;

const BACKGROUND: &str = "#ffffff";
const INK: &str = "#212121";
const GRID: &str = "#e0e0e0";
const RAW: &str = "#9e9e9e";
const PUBLISHED: &str = "#1565c0";
const REJECTED: &str = "#d32f2f";

/// The time axis every panel shares: the span of the replay, labelled by the house's clock.
struct TimeAxis {
    start: DateTime<Utc>,
    seconds: f64,
    /// The house's clock minus UTC, to 15 minutes (as recorded with the first poll).
    offset: TimeDelta,
}

impl TimeAxis {
    fn of(series: &[Series]) -> Option<Self> {
        let points = || series.iter().flat_map(|s| &s.points);
        let first = points().min_by_key(|p| p.time)?;
        let (start, end) = (first.time, points().map(|p| p.time).max()?);
        let quarters = ((first.local - first.time.naive_utc()).num_minutes() as f64 / 15.0).round() as i64;
        let seconds = ((end - start).num_milliseconds() as f64 / 1000.0).max(60.0);
        Some(Self { start, seconds, offset: TimeDelta::minutes(quarters * 15) })
    }

    fn x(&self, time: DateTime<Utc>) -> f64 {
        let part = (time - self.start).num_milliseconds() as f64 / 1000.0 / self.seconds;
        LEFT + part * (WIDTH - LEFT - RIGHT)
    }

    /// "UTC+02:00": which clock the labels show.
    fn zone(&self) -> String {
        let minutes = self.offset.num_minutes();
        let sign = if minutes < 0 { '-' } else { '+' };
        format!("UTC{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60)
    }

    /// The labelled instants: whole steps of the house's clock inside the span.
    fn ticks(&self) -> Vec<DateTime<Utc>> {
        let span = self.seconds as i64 / 60;
        let step = TIME_STEPS.into_iter().find(|s| span / s <= MAX_TIME_LABELS).unwrap_or(1440);
        let house_start = (self.start + self.offset).timestamp() / 60;
        let first = (house_start + step - 1).div_euclid(step) * step;
        (0..=span / step + 1)
            .map(|i| first + i * step)
            .filter_map(|m| DateTime::from_timestamp(m * 60, 0).map(|t| t - self.offset))
            .filter(|t| *t >= self.start && (*t - self.start).num_seconds() as f64 <= self.seconds)
            .collect()
    }

    fn label(&self, time: DateTime<Utc>) -> String {
        (time + self.offset).format("%H:%M").to_string()
    }
}

/// The value axis of one panel.
struct ValueAxis {
    low: f64,
    high: f64,
    top: f64,
}

impl ValueAxis {
    /// The scale of the published values, else of the raw ones; `None` without any.
    fn of(points: &[Point], top: f64) -> Option<Self> {
        let published: Vec<f64> = points.iter().filter_map(|p| p.published).collect();
        let values =
            if published.is_empty() { points.iter().filter_map(|p| p.raw).collect() } else { published };
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !low.is_finite() || !high.is_finite() {
            return None;
        }
        let pad = if high > low { (high - low) * 0.08 } else { (high.abs() * 0.01).max(1.0) };
        Some(Self { low: low - pad, high: high + pad, top: top + PLOT_TOP })
    }

    /// The y of `value`, off-scale values on the plot's edge.
    fn y(&self, value: f64) -> f64 {
        let part = ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        self.top + PLOT_HEIGHT * (1.0 - part)
    }

    /// Round values inside the scale, about three, and the decimals they need.
    fn ticks(&self) -> (Vec<f64>, usize) {
        let rough = (self.high - self.low) / 3.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step =
            [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(rough);
        let decimals = (-step.log10().floor()).clamp(0.0, 3.0) as usize;
        let first = (self.low / step).ceil() as i64;
        let last = (self.high / step).floor() as i64;
        ((first..=last).map(|i| i as f64 * step).collect(), decimals)
    }
}

/// The picture of `series` under `title`.
pub fn render(title: &str, series: &[Series]) -> String {
    let height = HEADER + PANEL * series.len().max(1) as f64 + 10.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\" fill=\"{INK}\">\n<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"{BACKGROUND}\"/>\n",
        escape(title)
    );
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    let axis = TimeAxis::of(series);
    legend(&mut out, axis.as_ref());
    let named_inverters = series.iter().any(|s| s.inverter != series[0].inverter);
    for (i, one) in series.iter().enumerate() {
        let top = HEADER + PANEL * i as f64;
        panel(&mut out, one, top, axis.as_ref(), named_inverters);
    }
    if axis.is_none() {
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\">No polls were replayed: nothing to draw.</text>",
            HEADER + 40.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// What each mark means, and which clock the time labels show.
fn legend(out: &mut String, axis: Option<&TimeAxis>) {
    let y = 48.0;
    let _ = writeln!(out, "<g font-size=\"12\">");
    let marks = [
        (
            LEFT,
            format!(
                "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{RAW}\" stroke-width=\"1\"/>",
                LEFT + 24.0
            ),
            "raw: what the registers said",
        ),
        (
            LEFT + 220.0,
            format!(
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{PUBLISHED}\" stroke-width=\"2\"/>",
                LEFT + 220.0,
                LEFT + 244.0
            ),
            "published: what reached Home Assistant",
        ),
        (
            LEFT + 500.0,
            format!("<circle cx=\"{}\" cy=\"{y}\" r=\"3.5\" fill=\"{REJECTED}\"/>", LEFT + 512.0),
            "rejected by plausibility",
        ),
    ];
    for (x, mark, label) in marks {
        let _ = writeln!(out, "{mark}\n<text x=\"{}\" y=\"{}\">{label}</text>", x + 30.0, y + 4.0);
    }
    let clock = axis.map_or_else(String::new, |a| format!("Time: the house's clock ({}). ", a.zone()));
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"11\">{clock}Off-scale raw values sit on a panel's edge; hover a red dot for its value and rule.</text>\n</g>",
        y + 22.0
    );
}

/// One series' panel at `top`.
fn panel(out: &mut String, series: &Series, top: f64, axis: Option<&TimeAxis>, named_inverters: bool) {
    let who = if named_inverters { format!("{}: ", series.inverter) } else { String::new() };
    let what = match (&series.name, &series.unit) {
        (name, _) if name.is_empty() => "not in the profile".to_string(),
        (name, Some(unit)) => format!("{name} ({unit})"),
        (name, None) => name.clone(),
    };
    let _ = writeln!(
        out,
        "<g>\n<text x=\"{LEFT}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}{} · {}</text>",
        top + 18.0,
        escape(&who),
        escape(&series.key),
        escape(&what)
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text>",
        WIDTH - RIGHT,
        top + 18.0,
        escape(&rejections(&series.points))
    );
    let (Some(time), Some(value)) = (axis, ValueAxis::of(&series.points, top)) else {
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\" fill=\"{RAW}\">no data</text>\n</g>",
            top + PLOT_TOP + PLOT_HEIGHT / 2.0
        );
        return;
    };
    grid(out, time, &value);
    let raw = path(series.points.iter().map(|p| p.raw.map(|v| (time.x(p.time), value.y(v)))));
    // Home Assistant keeps showing the last value across a rejected poll: the line bridges
    // it, and breaks only where nothing was read at all.
    let published = series.points.iter().filter(|p| p.published.is_some() || p.rejected.is_none());
    let published = path(published.map(|p| p.published.map(|v| (time.x(p.time), value.y(v)))));
    let _ =
        writeln!(out, "<path class=\"raw\" d=\"{raw}\" fill=\"none\" stroke=\"{RAW}\" stroke-width=\"1\"/>");
    let _ = writeln!(
        out,
        "<path class=\"published\" d=\"{published}\" fill=\"none\" stroke=\"{PUBLISHED}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>"
    );
    let unit = series.unit.as_deref().map_or(String::new(), |u| escape(&format!(" {u}")));
    for point in &series.points {
        let (Some(raw), Some(rule)) = (point.raw, point.rejected) else { continue };
        let _ = writeln!(
            out,
            "<circle class=\"rejected\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{REJECTED}\"><title>{} {}: raw {raw}{}, rejected by {}</title></circle>",
            time.x(point.time),
            value.y(raw),
            escape(&series.key),
            time.label(point.time),
            unit,
            escape(rule)
        );
    }
    out.push_str("</g>\n");
}

/// The plot's frame, its value labels and its time labels.
fn grid(out: &mut String, time: &TimeAxis, value: &ValueAxis) {
    let (right, bottom) = (WIDTH - RIGHT, value.top + PLOT_HEIGHT);
    let (ticks, decimals) = value.ticks();
    for tick in ticks {
        let y = value.y(tick);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{tick:.decimals$}</text>",
            LEFT - 6.0,
            y + 4.0
        );
    }
    for tick in time.ticks() {
        let x = time.x(tick);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"{GRID}\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            value.top,
            bottom + 14.0,
            time.label(tick)
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{}\" width=\"{}\" height=\"{PLOT_HEIGHT}\" fill=\"none\" stroke=\"{RAW}\"/>",
        value.top,
        right - LEFT
    );
}

/// "3 rejected: max_change 2, range 1", or "none rejected".
fn rejections(points: &[Point]) -> String {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in points.iter().filter(|p| p.raw.is_some()).filter_map(|p| p.rejected) {
        *rules.entry(rule).or_default() += 1;
    }
    if rules.is_empty() {
        return "none rejected".to_string();
    }
    let total: usize = rules.values().sum();
    let each: Vec<String> = rules.iter().map(|(rule, n)| format!("{rule} {n}")).collect();
    format!("{total} rejected: {}", each.join(", "))
}

/// An SVG path through `points`, broken at each `None`.
fn path(points: impl Iterator<Item = Option<(f64, f64)>>) -> String {
    let mut d = String::new();
    let mut drawing = false;
    for point in points {
        match point {
            Some((x, y)) => {
                let command = if drawing { 'L' } else { 'M' };
                let _ = write!(d, "{}{command}{x:.1},{y:.1}", if d.is_empty() { "" } else { " " });
                drawing = true;
            }
            None => drawing = false,
        }
    }
    d
}

#[cfg(test)]
mod tests;
