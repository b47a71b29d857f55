//! The status page: server-rendered HTML, no script, no external assets, relative links only
//! (it runs behind Home Assistant's ingress). It refreshes itself every 30 s.
//!
//! A page is composed, never patched: [`compose`] joins the [`header`], the sections in the
//! order given, and the [`footer`]. Each part is a function that returns its own HTML, so a new
//! section is one more function and one more entry in the list, not a search through the text.

use std::fmt::Write;

use chrono::{DateTime, Local, Utc};

use super::Health;
use super::board::{InverterView, Sample};
use crate::poller::{PowerFlows, Snapshot, direction};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#f6f7f9}\
h1{font-size:1.3rem}section{background:#fff;border-radius:8px;padding:1rem;margin-bottom:1rem;box-shadow:0 1px 3px #0002}\
.flows{display:flex;gap:1rem;flex-wrap:wrap}.flow{min-width:9rem}.flow b{display:block;font-size:1.4rem}\
.ok{color:#197a2b}.bad{color:#b3261e}small{color:#666}svg{width:100%;max-width:760px;height:auto}\
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

/// One inverter's section: its power flows, the last poll, failures, and the 24-hour chart.
pub(super) fn inverter(view: &InverterView<'_>, now: DateTime<Utc>) -> String {
    let status = view.status;
    let mut html = String::with_capacity(8 * 1024);
    let _ = write!(html, "<section><h2>{}</h2>", escape(&status.name));
    match &status.snapshot {
        Some(snapshot) => last_poll(&mut html, snapshot, now),
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
    html.push_str("</section>");
    html
}

/// The power flows of the last good poll, and when it was.
fn last_poll(html: &mut String, snapshot: &Snapshot, now: DateTime<Utc>) {
    let flows = PowerFlows::of(snapshot);
    html.push_str("<div class=\"flows\">");
    flow(html, "PV", &watts(flows.pv), "");
    let soc = flows.battery_soc.map_or("–".into(), |s| format!("{s:.0} %"));
    flow(html, "Battery", &soc, &moving(flows.battery, "discharging", "charging"));
    flow(html, "Grid", &watts(flows.grid.map(f64::abs)), &moving(flows.grid, "importing", "exporting"));
    flow(html, "Load", &watts(flows.load), "");
    html.push_str("</div>");
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

fn flow(html: &mut String, label: &str, value: &str, note: &str) {
    let _ = write!(
        html,
        "<div class=\"flow\">{label}<b>{}</b><small>{}</small></div>",
        escape(value),
        escape(note)
    );
}

pub(super) fn watts(w: Option<f64>) -> String {
    w.map_or("–".into(), |w| format!("{:.2} kW", w / 1000.0))
}

/// "charging 1.20 kW": the direction word and the size of a flow, or nothing when unknown.
fn moving(w: Option<f64>, positive: &'static str, negative: &'static str) -> String {
    match w.map(|w| (direction(w, positive, negative), w.abs())) {
        Some(("idle", _)) => "idle".into(),
        Some((word, w)) => format!("{word} {:.2} kW", w / 1000.0),
        None => String::new(),
    }
}

/// 24 hours of power flows as an inline SVG with one polyline per series.
fn chart(html: &mut String, samples: Vec<Sample>, now: DateTime<Utc>) {
    let (width, height) = (720.0f32, 200.0f32);
    let end = now.timestamp() as f32;
    let start = end - 86_400.0;
    let peak =
        samples.iter().flat_map(|s| SERIES.iter().map(move |(_, _, f)| f(s).abs())).fold(1000.0f32, f32::max);
    let y = |v: f32| height / 2.0 - v / peak * (height / 2.0 - 4.0);
    let _ = write!(
        html,
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"power over the last 24 hours\">"
    );
    let _ =
        write!(html, "<line x1=\"0\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#ccc\"/>", height / 2.0);
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

/// Minimal HTML escaping for text nodes and attribute values.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
