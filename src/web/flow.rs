//! The power-flow picture and the energy of today, as the status page draws them: inline SVG
//! and plain HTML, no script, no ids (several inverters share one page), colours from the
//! page's CSS classes so dark mode follows the browser.
//!
//! It reads a [`Snapshot`] through the shared reading keys and never decides anything the
//! poller or the sinks must know: what it computes (off-grid, the sum of several inverters)
//! is for the eye only.

use std::fmt::Write;

use crate::profile::Value;

use crate::markup::escape;
use crate::poller::{PowerFlows, Snapshot, direction};

/// Today's energy counters drawn, as (key, label), in kWh.
pub(super) const ENERGY_TODAY: [(&str, &str); 6] = [
    ("pv_energy_today", "PV"),
    ("load_energy_today", "Load"),
    ("grid_import_today", "Import"),
    ("grid_export_today", "Export"),
    ("battery_charge_today", "Battery in"),
    ("battery_discharge_today", "Battery out"),
];

/// What one picture shows, in W with Deye's signs (battery + discharging, grid + importing,
/// generator port + feeding the inverter).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Picture {
    /// The flows every family has.
    pub flows: PowerFlows,
    /// Generator or backup-port power; `None` when the family has no such port.
    pub generator: Option<f64>,
    /// The grid is away: the profile's `grid_connected` flag is off, or the grid reads 0 V.
    pub off_grid: bool,
    /// Today's counters, in [`ENERGY_TODAY`]'s order; `None` where the family has none.
    pub energy: [Option<f64>; 6],
}

impl Picture {
    /// The picture of one poll.
    pub(super) fn of(snapshot: &Snapshot) -> Self {
        let number = |key: &str| snapshot.get(key).and_then(Value::as_f64);
        let grid_down = matches!(snapshot.get("grid_connected"), Some(Value::Bool(false)));
        let zero_volts = ["grid_voltage", "grid_voltage_l1"].iter().find_map(|k| number(k)) == Some(0.0);
        Self {
            flows: PowerFlows::of(snapshot),
            generator: number("gen_port_power"),
            off_grid: grid_down || zero_volts,
            energy: ENERGY_TODAY.map(|(key, _)| number(key)),
        }
    }

    /// The sum of several inverters' pictures: flows and energy add up, the state of charge is
    /// the mean (a stack usually shares one bank), off-grid when every one is.
    pub(super) fn total(pictures: &[Self]) -> Self {
        let sum = |f: &dyn Fn(&Self) -> Option<f64>| {
            pictures.iter().filter_map(f).fold(None, |acc: Option<f64>, v| Some(acc.unwrap_or(0.0) + v))
        };
        let socs: Vec<f64> = pictures.iter().filter_map(|p| p.flows.battery_soc).collect();
        let mut energy = [None; 6];
        for (i, slot) in energy.iter_mut().enumerate() {
            *slot = sum(&|p: &Self| p.energy[i]);
        }
        Self {
            flows: PowerFlows {
                pv: sum(&|p| p.flows.pv),
                battery_soc: (!socs.is_empty()).then(|| socs.iter().sum::<f64>() / socs.len() as f64),
                battery: sum(&|p| p.flows.battery),
                grid: sum(&|p| p.flows.grid),
                load: sum(&|p| p.flows.load),
            },
            generator: sum(&|p| p.generator),
            off_grid: !pictures.is_empty() && pictures.iter().all(|p| p.off_grid),
            energy,
        }
    }
}

/// The inverter, in the middle of the picture's 360 × 270 box.
const HUB: (f32, f32) = (180.0, 130.0);
/// A node's radius: wide enough for "10.00 kW".
const R: f32 = 30.0;

/// One end of a flow: where, what, and which way the power goes.
struct Node<'a> {
    at: (f32, f32),
    class: &'a str,
    label: &'a str,
    value: String,
    note: String,
    /// W towards the inverter (negative: away from it); `None` unknown.
    inward: Option<f64>,
    dashed: bool,
}

/// The power-flow picture: PV above, grid left, load right, battery below, the generator port
/// below left when there is one. Each line carries an arrow the way the power goes (none in
/// the ±50 W dead band) and its kW.
pub(super) fn svg(html: &mut String, picture: &Picture) {
    let f = &picture.flows;
    let soc = f.battery_soc.map_or("–".into(), |s| format!("{s:.0} %"));
    let mut nodes = vec![
        Node {
            at: (180.0, 36.0),
            class: "pv",
            label: "PV",
            value: kw(f.pv),
            note: String::new(),
            inward: f.pv,
            dashed: false,
        },
        Node {
            at: (48.0, 130.0),
            class: "grid",
            label: "Grid",
            value: kw(f.grid.map(f64::abs)),
            note: if picture.off_grid { "off-grid".into() } else { word(f.grid, "import", "export") },
            inward: f.grid.filter(|_| !picture.off_grid),
            dashed: picture.off_grid,
        },
        Node {
            at: (312.0, 130.0),
            class: "load",
            label: "Load",
            value: kw(f.load),
            note: String::new(),
            inward: f.load.map(|w| -w),
            dashed: false,
        },
        Node {
            at: (180.0, 222.0),
            class: "bat",
            label: "Battery",
            value: soc,
            note: match f.battery {
                Some(w) => format!("{} {}", word(Some(w), "discharging", "charging"), kw(Some(w.abs()))),
                None => String::new(),
            },
            inward: f.battery,
            dashed: false,
        },
    ];
    if let Some(gen_w) = picture.generator {
        nodes.push(Node {
            at: (48.0, 222.0),
            class: "gen",
            label: "Gen",
            value: kw(Some(gen_w.abs())),
            note: word(Some(gen_w), "in", "out"),
            inward: Some(gen_w),
            dashed: false,
        });
    }
    html.push_str("<svg class=\"pf\" viewBox=\"0 0 360 270\" role=\"img\" aria-label=\"power flows now\">");
    for node in &nodes {
        line(html, node);
    }
    let _ = write!(html, "<circle class=\"hub\" cx=\"{}\" cy=\"{}\" r=\"14\"/>", HUB.0, HUB.1);
    for node in &nodes {
        bubble(html, node);
    }
    html.push_str("</svg>");
}

/// The line from `node` to the hub, with its arrow.
fn line(html: &mut String, node: &Node<'_>) {
    let ((x1, y1), (x2, y2)) = (node.at, HUB);
    let dash = if node.dashed { " stroke-dasharray=\"4 4\"" } else { "" };
    let _ = write!(
        html,
        "<line class=\"l {}\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\"{dash}/>",
        node.class
    );
    let Some(w) = node.inward else { return };
    let towards_hub = match direction(w, "in", "out") {
        "in" => true,
        "out" => false,
        _ => return,
    };
    // The arrow sits at the middle of the line and points along it.
    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let (dx, dy) = if towards_hub { (x2 - x1, y2 - y1) } else { (x1 - x2, y1 - y2) };
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let tip = (mx + ux * 7.0, my + uy * 7.0);
    let left = (mx - ux * 5.0 - uy * 6.0, my - uy * 5.0 + ux * 6.0);
    let right = (mx - ux * 5.0 + uy * 6.0, my - uy * 5.0 - ux * 6.0);
    let _ = write!(
        html,
        "<polygon class=\"a {}\" points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\"/>",
        node.class, tip.0, tip.1, left.0, left.1, right.0, right.1
    );
}

/// The node itself: a circle with its label, value and note.
fn bubble(html: &mut String, node: &Node<'_>) {
    let (x, y) = node.at;
    let _ = write!(
        html,
        "<circle class=\"n {c}\" cx=\"{x}\" cy=\"{y}\" r=\"{R}\"/>\
         <text x=\"{x}\" y=\"{ly}\" class=\"t\">{label}</text><text x=\"{x}\" y=\"{vy}\" class=\"v\">{value}</text>",
        c = node.class,
        ly = y - 5.0,
        vy = y + 10.0,
        label = node.label,
        value = escape(&node.value),
    );
    if !node.note.is_empty() {
        let _ =
            write!(html, "<text x=\"{x}\" y=\"{}\" class=\"t\">{}</text>", y + R + 13.0, escape(&node.note));
    }
}

/// Today's energy counters that the family has, as one row of cells.
pub(super) fn energy_today(html: &mut String, picture: &Picture) {
    if picture.energy.iter().all(Option::is_none) {
        return;
    }
    html.push_str("<h3>Energy today</h3><div class=\"flows\">");
    for ((_, label), kwh) in ENERGY_TODAY.iter().zip(picture.energy) {
        if let Some(kwh) = kwh {
            let _ = write!(html, "<div class=\"flow\">{label}<b>{kwh:.1} kWh</b></div>");
        }
    }
    html.push_str("</div>");
}

/// "1.23 kW", or "–" when unknown.
fn kw(w: Option<f64>) -> String {
    w.map_or("–".into(), |w| format!("{:.2} kW", w / 1000.0))
}

/// The direction word of a flow, or nothing when unknown.
fn word(w: Option<f64>, positive: &'static str, negative: &'static str) -> String {
    w.map(|w| direction(w, positive, negative).to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::profile::Profiles;
    use crate::sim::fixture;

    fn picture(grid: f64) -> Picture {
        Picture {
            flows: PowerFlows {
                pv: Some(3000.0),
                battery_soc: Some(80.0),
                battery: Some(-1200.0),
                grid: Some(grid),
                load: Some(900.0),
            },
            generator: None,
            off_grid: false,
            energy: [Some(10.0), Some(5.0), None, Some(2.0), Some(3.0), Some(1.0)],
        }
    }

    #[test]
    fn the_picture_reads_the_shared_keys_of_a_real_profile() {
        let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let snapshot = fixture::snapshot(profile, "house", at);
        let p = Picture::of(&snapshot);
        assert_eq!(p.flows.load, snapshot.get("load_power").and_then(Value::as_f64));
        assert!(p.generator.is_some(), "the LP1 has a generator port");
        assert_eq!(p.energy[0], snapshot.get("pv_energy_today").and_then(Value::as_f64));
    }

    #[test]
    fn arrows_follow_the_signs_and_off_grid_draws_no_grid_arrow() {
        let mut html = String::new();
        svg(&mut html, &picture(-1500.0));
        assert!(html.contains(">export<") && html.contains(">charging 1.20 kW<"), "{html}");
        assert_eq!(html.matches("<polygon").count(), 4, "PV, grid, load, battery all move: {html}");
        let mut off = picture(0.0);
        off.off_grid = true;
        let mut html = String::new();
        svg(&mut html, &off);
        assert!(html.contains(">off-grid<") && html.contains("stroke-dasharray"), "{html}");
        assert!(!html.contains("class=\"a grid\""), "no arrow on a dead grid: {html}");
    }

    #[test]
    fn the_total_sums_flows_and_energy_and_averages_the_soc() {
        let mut other = picture(500.0);
        other.flows.battery_soc = Some(60.0);
        other.energy[2] = Some(4.0);
        let total = Picture::total(&[picture(-1500.0), other]);
        assert_eq!(total.flows.pv, Some(6000.0));
        assert_eq!(total.flows.grid, Some(-1000.0));
        assert_eq!(total.flows.battery_soc, Some(70.0));
        assert_eq!(total.energy[0], Some(20.0));
        assert_eq!(total.energy[2], Some(4.0), "a counter only one has still counts");
        assert_eq!(total.generator, None);
        let mut html = String::new();
        energy_today(&mut html, &total);
        assert!(html.contains("Import<b>4.0 kWh</b>") && html.contains("PV<b>20.0 kWh</b>"), "{html}");
    }
}
