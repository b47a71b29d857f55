//! The status page: server-rendered HTML, no script, no external assets, relative links only
//! (it runs behind Home Assistant's ingress). It refreshes itself every 30 s.
//!
//! A page is composed, never patched: [`compose`] joins the [`header`], the sections in the
//! order given, and the [`footer`]. Each part is a function that returns its own HTML, so a new
//! section is one more function and one more entry in the list, not a search through the text.

use std::fmt::Write;

use chrono::{DateTime, Local, Utc};

use super::Health;
use super::board::{History, InverterView, Sample};
use super::flow::{self, Picture};
use crate::markup::escape;
use crate::poller::Snapshot;

/// The style sheet: light by default, dark when the browser prefers it; one column on a phone.
/// The picture's colours are classes here, so the SVG carries none of its own.
const STYLE: &str = ":root{--fg:#222;--bg:#f6f7f9;--card:#fff;--dim:#666;--line:#ccc;--ok:#197a2b;--bad:#b3261e}\
@media(prefers-color-scheme:dark){:root{--fg:#e6e6e6;--bg:#15171a;--card:#22252a;--dim:#9aa0a6;--line:#444;--ok:#6fcf7f;--bad:#f28b82}}\
body{font-family:system-ui,sans-serif;margin:1.5rem;color:var(--fg);background:var(--bg)}\
@media(max-width:600px){body{margin:.5rem}section{padding:.6rem}}\
h1{font-size:1.3rem}h3{font-size:1rem;margin:.6rem 0 .3rem}a{color:inherit}\
section{background:var(--card);border-radius:8px;padding:1rem;margin-bottom:1rem;box-shadow:0 1px 3px #0002;overflow-x:auto}\
.flows{display:flex;gap:.4rem 1rem;flex-wrap:wrap}.flow{min-width:7rem}.flow b{display:block;font-size:1.2rem}\
.ok{color:var(--ok)}.bad{color:var(--bad)}small{color:var(--dim)}svg{width:100%;max-width:760px;height:auto}\
.top{display:flex;flex-wrap:wrap;gap:0 2rem;align-items:center}.top>div{flex:1 1 16rem}\
svg.pf{flex:0 1 400px;min-width:17rem;max-width:400px}.pf text{fill:var(--fg);font-size:10px;text-anchor:middle}.pf .v{font-size:12px;font-weight:600}\
.ch text{fill:var(--dim);font-size:14px}\
.pf .l{stroke:var(--line);stroke-width:3}.n{fill:var(--card);stroke-width:3}.hub{fill:var(--line)}\
.pv{stroke:#f2a900;fill:#f2a900}.grid{stroke:#c0392b;fill:#c0392b}.load{stroke:#5b6ee1;fill:#5b6ee1}\
.bat{stroke:#2a9d8f;fill:#2a9d8f}.gen{stroke:#8e6c8a;fill:#8e6c8a}.pf circle.n{fill:var(--card)}\
.legend span{margin-right:1rem}table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}";

/// One line of the chart: label, colour, and how to read its value from a sample.
type Series = (&'static str, &'static str, fn(&Sample) -> f32);

/// Series of the chart.
const SERIES: [Series; 4] = [
    ("PV", "#f2a900", |s| s.pv),
    ("Load", "#5b6ee1", |s| s.load),
    ("Battery", "#2a9d8f", |s| s.battery),
    ("Grid", "#c0392b", |s| s.grid),
];

/// The whole page: the header, each of `sections` in order, the footer.
pub(super) fn compose(health: &Health, sections: &[String]) -> String {
    let footer = footer();
    let mut html = header(health);
    html.reserve(sections.iter().map(String::len).sum::<usize>() + footer.len());
    for section in sections {
        html.push_str(section);
    }
    html.push_str(footer);
    html
}

/// The document head, the style sheet, and the title with the health verdict.
pub(super) fn header(health: &Health) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta http-equiv=\"refresh\" content=\"30\"><link rel=\"icon\" href=\"data:,\"><title>inverter-monitor</title>\
         <style>{STYLE}</style></head><body><h1>inverter-monitor <small>{}</small></h1>",
        if health.healthy {
            "<span class=\"ok\">healthy</span>"
        } else {
            "<span class=\"bad\">unhealthy</span>"
        }
    )
}

/// Links to the machine-readable endpoints, and the end of the document.
pub(super) fn footer() -> &'static str {
    "<p><small><a href=\"./api/snapshot\">snapshot JSON</a> · <a href=\"./metrics\">metrics</a> · <a href=\"./healthz\">health</a></small></p></body></html>"
}

/// One inverter's section: its power-flow picture, today's energy, the last poll, failures,
/// the 24-hour chart and the energy of the last 30 days.
pub(super) fn inverter(view: &InverterView<'_>, now: DateTime<Utc>) -> String {
    let status = view.status;
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(html, "<section><h2>{}</h2>", escape(&status.name));
    match &status.snapshot {
        Some(snapshot) => {
            let picture = Picture::of(snapshot);
            flow::svg(&mut html, &picture);
            flow::energy_today(&mut html, &picture);
            last_poll(&mut html, snapshot, now);
        }
        None => html.push_str("<p>No successful poll yet.</p>"),
    }
    if status.consecutive_failures > 0 {
        let error = status.failure.as_ref().map_or("", |f| f.error.as_str());
        let _ = write!(
            html,
            "<p class=\"bad\">{} failed poll(s) in a row: {}</p>",
            status.consecutive_failures,
            escape(error)
        );
    }
    chart(&mut html, view.history.samples().copied().collect(), now);
    days(&mut html, view.history);
    html.push_str("</section>");
    html
}

/// The sum of every inverter that has polled, when there are two or more: one picture and
/// today's energy, no chart (each inverter has its own).
pub(super) fn total(views: &[InverterView<'_>]) -> Option<String> {
    let pictures: Vec<Picture> =
        views.iter().filter_map(|v| v.status.snapshot.as_deref()).map(Picture::of).collect();
    if pictures.len() < 2 {
        return None;
    }
    let picture = Picture::total(&pictures);
    let mut html = format!("<section><h2>Total <small>({} inverters)</small></h2>", pictures.len());
    html.push_str("<div class=\"top\">");
    flow::svg(&mut html, &picture);
    html.push_str("<div>");
    flow::energy_today(&mut html, &picture);
    html.push_str("</div></div></section>");
    Some(html)
}

/// When the last good poll was, how many readings it brought, and which profile read them.
fn last_poll(html: &mut String, snapshot: &Snapshot, now: DateTime<Utc>) {
    let age = (now - snapshot.time).num_seconds();
    let local = snapshot.time.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
    let _ = write!(
        html,
        "<p><small>last poll {local} ({age} s ago), {} readings, {:.0?}; profile {}</small></p>",
        snapshot.readings.len(),
        snapshot.duration,
        escape(&snapshot.choice.describe())
    );
}

pub(super) fn watts(w: Option<f64>) -> String {
    w.map_or("–".into(), |w| format!("{:.2} kW", w / 1000.0))
}

/// 24 hours of power flows as an inline SVG with one polyline per series.
fn chart(html: &mut String, samples: Vec<Sample>, now: DateTime<Utc>) {
    let samples = coarse(&samples);
    // The plot is `height` tall; the hour labels go below it.
    let (width, height) = (720.0f32, 190.0f32);
    let end = now.timestamp() as f32;
    let start = end - 86_400.0;
    let peak =
        samples.iter().flat_map(|s| SERIES.iter().map(move |(_, _, f)| f(s).abs())).fold(1000.0f32, f32::max);
    let y = |v: f32| height / 2.0 - v / peak * (height / 2.0 - 4.0);
    let _ = write!(
        html,
        "<svg class=\"ch\" viewBox=\"0 0 {width} {}\" role=\"img\" aria-label=\"power over the last 24 hours\">",
        height + 18.0
    );
    let _ =
        write!(html, "<line x1=\"0\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#8884\"/>", height / 2.0);
    for (i, label) in ["−24 h", "−18 h", "−12 h", "−6 h", "now"].iter().enumerate() {
        let x = i as f32 * width / 4.0;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            html,
            "<line x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{height}\" stroke=\"#8883\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">{label}</text>",
            height + 15.0
        );
    }
    let _ = write!(html, "<text x=\"4\" y=\"14\">+{:.1} kW</text>", peak / 1000.0);
    for (_, colour, value) in SERIES {
        let points: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", (s.minute as f32 - start) / 86_400.0 * width, y(value(s))))
            .collect();
        let _ = write!(
            html,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    html.push_str("</svg><div class=\"legend\"><small>");
    for (label, colour, _) in SERIES {
        let _ = write!(html, "<span style=\"color:{colour}\">■ {label}</span>");
    }
    let _ = write!(html, "last 24 h, ±{:.1} kW</small></div>", peak / 1000.0);
}

/// The bars of the daily energy chart: label, colour, index in a day's counters.
const DAY_BARS: [(&str, &str, usize); 2] = [("PV", "#f2a900", 0), ("Load", "#5b6ee1", 1)];

/// PV and load energy of the last 30 days as bars, one pair per day the history holds,
/// when any day has one of them.
fn days(html: &mut String, history: &History) {
    let days: Vec<_> = history.days().filter(|(_, e)| DAY_BARS.iter().any(|b| e[b.2].is_some())).collect();
    let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) else { return };
    let (width, height, slot) = (720.0f32, 120.0f32, 24.0f32);
    let peak = days.iter().flat_map(|(_, e)| DAY_BARS.map(|b| e[b.2].unwrap_or(0.0))).fold(1.0, f64::max);
    let _ = write!(
        html,
        "<h3>Energy by day</h3><svg class=\"ch\" viewBox=\"0 0 {width} {}\" role=\"img\" \
         aria-label=\"energy of the last 30 days\"><text x=\"4\" y=\"14\">{peak:.1} kWh</text>",
        height + 18.0
    );
    let start = width - slot * days.len() as f32;
    for (i, (_, energy)) in days.iter().enumerate() {
        for (j, (_, colour, index)) in DAY_BARS.iter().enumerate() {
            let Some(kwh) = energy[*index] else { continue };
            let h = (kwh / peak) as f32 * (height - 20.0);
            let x = start + i as f32 * slot + 3.0 + j as f32 * 9.0;
            let _ = write!(
                html,
                "<rect x=\"{x:.0}\" y=\"{:.1}\" width=\"9\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                height - h
            );
        }
    }
    let _ = write!(
        html,
        "<text x=\"{start}\" y=\"{y}\">{}</text><text x=\"{width}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg>\
         <div class=\"legend\"><small>",
        // The first day's label would run into the last's.
        if days.len() > 4 { first.format("%d %b").to_string() } else { String::new() },
        last.format("%d %b"),
        y = height + 15.0
    );
    for (label, colour, _) in DAY_BARS {
        let _ = write!(html, "<span style=\"color:{colour}\">■ {label}</span>");
    }
    html.push_str("kWh a day</small></div>");
}

/// Minutes averaged into one point of the chart: 288 points a day keep a full chart small
/// (the page's size budget) and are finer than the 720-unit wide picture shows anyway.
const CHART_STEP_S: i64 = 5 * 60;

/// `samples` averaged into [`CHART_STEP_S`] buckets, each at its bucket's start.
fn coarse(samples: &[Sample]) -> Vec<Sample> {
    let mut out: Vec<(Sample, f32)> = Vec::with_capacity(samples.len() / 5 + 1);
    for s in samples {
        let bucket = s.minute.div_euclid(CHART_STEP_S) * CHART_STEP_S;
        match out.last_mut() {
            Some((acc, n)) if acc.minute == bucket => {
                let avg = |a: f32, b: f32| (a * *n + b) / (*n + 1.0);
                (acc.pv, acc.load, acc.battery, acc.grid) = (
                    avg(acc.pv, s.pv),
                    avg(acc.load, s.load),
                    avg(acc.battery, s.battery),
                    avg(acc.grid, s.grid),
                );
                *n += 1.0;
            }
            _ => {
                let mut first = *s;
                first.minute = bucket;
                out.push((first, 1.0));
            }
        }
    }
    out.into_iter().map(|(s, _)| s).collect()
}

/// The inverters beyond the cards, counted by state in one section; none when there are none.
pub(super) fn the_rest(views: &[InverterView<'_>]) -> Option<String> {
    if views.is_empty() {
        return None;
    }
    let count = |online: Option<bool>| views.iter().filter(|v| v.status.online == online).count();
    Some(format!(
        "<section><h2>{} more inverters</h2><p>{} online, {} offline, {} not polled yet. Each is in \
         <a href=\"api/snapshot\">/api/snapshot</a> and <a href=\"metrics\">/metrics</a>.</p></section>",
        views.len(),
        count(Some(true)),
        count(Some(false)),
        count(None)
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::config::InverterConfig;
    use crate::poller::{InverterStatus, Update};
    use crate::profile::Profiles;

    /// The page's size budget for one inverter with a full day of history, in bytes: small
    /// enough for a phone on a weak link every 30 s. Each further inverter adds less than
    /// [`MORE_BUDGET`].
    const PAGE_BUDGET: usize = 32 * 1024;
    const MORE_BUDGET: usize = 24 * 1024;

    /// An inverter polled every minute for a day, and the status it ends in.
    fn a_full_day(name: &str, end: DateTime<Utc>) -> (InverterStatus, History) {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let mut status = InverterStatus::new(&InverterConfig::new(name, "127.0.0.1", 8899, 42));
        let mut history = History::default();
        let day = crate::sim::fixture::snapshot(profile, name, end);
        for days_ago in (1..40).rev() {
            let mut snapshot = day.clone();
            snapshot.time = end - chrono::Duration::days(days_ago);
            history.record(&snapshot);
        }
        for minute in (0..24 * 60).rev() {
            let mut snapshot = day.clone();
            snapshot.time = end - chrono::Duration::minutes(minute);
            history.record(&snapshot);
            status.record(&Update::Polled { snapshot: Arc::new(snapshot), change: None });
        }
        (status, history)
    }

    #[test]
    fn inverters_beyond_the_cards_are_counted_in_one_line() {
        let mut statuses: Vec<InverterStatus> = (0..5)
            .map(|i| InverterStatus::new(&InverterConfig::new(&format!("inv{i}"), "127.0.0.1", 8899, 42)))
            .collect();
        (statuses[0].online, statuses[1].online, statuses[2].online) = (Some(true), Some(true), Some(false));
        let history = History::default();
        let views: Vec<InverterView<'_>> =
            statuses.iter().map(|status| InverterView { status, history: &history }).collect();
        let line = the_rest(&views).unwrap();
        assert!(
            line.contains("5 more inverters") && line.contains("2 online, 1 offline, 2 not polled yet"),
            "{line}"
        );
        assert_eq!(the_rest(&[]), None);
    }

    #[test]
    fn a_full_day_stays_within_the_page_budget() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap();
        let health = Health { healthy: true, body: json!({}) };
        let days: Vec<_> = ["house", "garage"].iter().map(|name| a_full_day(name, now)).collect();
        let views: Vec<InverterView<'_>> =
            days.iter().map(|(status, history)| InverterView { status, history }).collect();
        assert_eq!(views[0].history.samples().count(), 24 * 60);
        assert_eq!(views[0].history.days().count(), 30, "a month of days, no more");
        let one = compose(&health, &[inverter(&views[0], now)]);
        assert!(one.len() < PAGE_BUDGET, "one inverter: {} bytes", one.len());
        assert!(one.contains("<polygon") && one.contains("Energy today"), "the picture is drawn");
        assert_eq!(one.matches("<rect").count(), 60, "PV and load bars for 30 days");
        let mut sections: Vec<String> = total(&views).into_iter().collect();
        sections.extend(views.iter().map(|view| inverter(view, now)));
        let two = compose(&health, &sections);
        assert!(two.contains("Total <small>(2 inverters)"), "two inverters get a total");
        assert!(
            two.len() - one.len() < MORE_BUDGET,
            "the second inverter and the total: {} bytes",
            two.len() - one.len()
        );
        eprintln!("page sizes: one {} B, two {} B", one.len(), two.len());
    }

    #[test]
    fn a_page_is_the_header_then_the_sections_in_order_then_the_footer() {
        let health = Health { healthy: false, body: json!({}) };
        let sections = ["<section>one</section>".to_string(), "<section>two</section>".to_string()];
        let page = compose(&health, &sections);
        assert_eq!(
            page,
            format!("{}<section>one</section><section>two</section>{}", header(&health), footer())
        );
        assert!(
            header(&health)
                .ends_with("<h1>inverter-monitor <small><span class=\"bad\">unhealthy</span></small></h1>")
        );
        assert!(footer().ends_with("</small></p></body></html>"));
    }
}
