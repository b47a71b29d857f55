//! The status page: server-rendered HTML, no script, no external assets, relative links only
//! (it runs behind Home Assistant's ingress). It refreshes itself every 30 s.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Local, Utc};

use super::Health;
use crate::poller::{PowerFlows, direction};
use crate::sinks::latest::{InverterView, Sample};

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

/// The whole page.
pub fn render(inverters: &BTreeMap<String, InverterView>, health: &Health, now: DateTime<Utc>) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta http-equiv=\"refresh\" content=\"30\"><link rel=\"icon\" href=\"data:,\"><title>inverter-monitor</title>\
         <style>{STYLE}</style></head><body><h1>inverter-monitor <small>{}</small></h1>",
        if health.healthy {
            "<span class=\"ok\">healthy</span>"
        } else {
            "<span class=\"bad\">unhealthy</span>"
        }
    );
    for view in inverters.values() {
        inverter(&mut html, view, now);
    }
    html.push_str("<p><small><a href=\"./api/snapshot\">snapshot JSON</a> · <a href=\"./metrics\">metrics</a> · <a href=\"./healthz\">health</a></small></p></body></html>");
    html
}

fn inverter(html: &mut String, view: &InverterView, now: DateTime<Utc>) {
    let _ = write!(html, "<section><h2>{}</h2>", escape(&view.name));
    match &view.snapshot {
        Some(snapshot) => {
            let flows = PowerFlows::of(snapshot);
            html.push_str("<div class=\"flows\">");
            flow(html, "PV", &watts(flows.pv), "");
            let soc = flows.battery_soc.map_or("–".into(), |s| format!("{s:.0} %"));
            flow(html, "Battery", &soc, &moving(flows.battery, "discharging", "charging"));
            flow(
                html,
                "Grid",
                &watts(flows.grid.map(f64::abs)),
                &moving(flows.grid, "importing", "exporting"),
            );
            flow(html, "Load", &watts(flows.load), "");
            html.push_str("</div>");
            let age = (now - snapshot.time).num_seconds();
            let local = snapshot.time.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
            let _ = write!(
                html,
                "<p><small>last poll {local} ({age} s ago), {} readings, {:.0?}</small></p>",
                snapshot.readings.len(),
                snapshot.duration
            );
        }
        None => html.push_str("<p>No successful poll yet.</p>"),
    }
    if view.consecutive_failures > 0 {
        let error = view.failure.as_ref().map_or("", |f| f.error.as_str());
        let _ = write!(
            html,
            "<p class=\"bad\">{} failed poll(s) in a row: {}</p>",
            view.consecutive_failures,
            escape(error)
        );
    }
    chart(html, view.history.samples().copied().collect(), now);
    html.push_str("</section>");
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
