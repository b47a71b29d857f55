//! Snapshots as text for people: the console table of the demo, `run` and `read`.

use std::fmt::Write;

use crate::poller::{PowerFlows, Snapshot, direction};

/// A one-line power-flow summary from the well-known keys, if the profile has them.
pub fn summary(snapshot: &Snapshot) -> String {
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
    parts.join(" │ ")
}

fn kw(watts: f64) -> String {
    format!("{:.2} kW", watts / 1000.0)
}

/// The snapshot as a table grouped by the profile's groups.
pub fn table(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let local = snapshot.time.with_timezone(&chrono::Local);
    let _ = writeln!(
        out,
        "{} · {} · {} · {} readings in {} reads, {:.0?}",
        snapshot.inverter,
        snapshot.profile.id(),
        local.format("%Y-%m-%d %H:%M:%S"),
        snapshot.readings.len(),
        snapshot.reads,
        snapshot.duration,
    );
    let _ = writeln!(out, "{}", summary(snapshot));
    let mut group = "";
    for (spec, value) in snapshot.iter() {
        if spec.def.group != group {
            group = &spec.def.group;
            let _ = writeln!(out, "\n[{group}]");
        }
        let unit = spec.def.unit.as_deref().unwrap_or("");
        let _ =
            writeln!(out, "  {:<40} {:>14} {:<4} {}", spec.def.name, value.to_string(), unit, spec.def.key);
    }
    for rejection in &snapshot.rejected {
        let key = rejection.index.map_or("poll", |i| snapshot.profile.readings[i].def.key.as_str());
        let _ = writeln!(out, "  rejected {key}: {}", rejection.reason);
    }
    out
}
