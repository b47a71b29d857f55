//! The status page's weather and load control sections, read from the same handles the
//! metrics use, at the time of the request; each returns its whole `<section>`. And the line
//! that says which shard the page is of.

use std::fmt::Write;

use chrono::{DateTime, Local, Utc};

use super::page::watts;
use crate::control::view::ControlView;
use crate::markup::escape;
use crate::weather::WeatherHandle;

/// The sky, the sun and the expected PV; the provider's part says so when it is stale.
pub(super) fn weather(weather: &WeatherHandle, now: DateTime<Utc>) -> String {
    let mut html = String::from("<section><h2>Weather</h2><div class=\"flows\">");
    let latest = weather.latest(now);
    let sun = latest.as_ref().map(|w| w.sun).or_else(|| weather.sun(now));
    let cell = |html: &mut String, label: &str, value: String| {
        let _ = write!(html, "<div class=\"flow\">{label}<b>{}</b></div>", escape(&value));
    };
    match &latest {
        Some(w) => {
            cell(&mut html, "Cloud cover", format!("{:.0} %", w.cloud_cover_pct));
            if w.expected_pv_w.is_some() {
                cell(&mut html, "Expected PV", watts(w.expected_pv_w));
            }
            if let Some(wh) = w.expected_pv_remaining_wh {
                cell(&mut html, "Expected today", format!("{:.1} kWh", wh / 1000.0));
            }
        }
        None => cell(&mut html, "Cloud cover", "–".into()),
    }
    if let Some(sun) = sun {
        cell(&mut html, "Sun", format!("{:.0}° up, {:.0}°", sun.elevation_deg, sun.azimuth_deg));
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or("–".into(), |t| t.with_timezone(&Local).format("%H:%M").to_string())
        };
        cell(&mut html, "Sunrise – sunset", format!("{} – {}", time(sun.sunrise), time(sun.sunset)));
    }
    html.push_str("</div>");
    if latest.is_none() {
        let why = weather.last_error().unwrap_or_else(|| "no answer from the provider yet".into());
        let _ = write!(html, "<p class=\"bad\">No current weather: {}</p>", escape(&why));
    }
    html.push_str("</section>");
    html
}

/// One row per consumer: plug, wish, automatic control, runtime and the last decision.
pub(super) fn control(control: &ControlView) -> String {
    let (dry_run, consumers) = control.get();
    let mut html = String::with_capacity(1024);
    let _ = write!(
        html,
        "<section><h2>Load control{}</h2><table><tr><th>Consumer</th><th>Plug</th><th>Wanted</th>\
         <th>Automatic</th><th>Today</th><th>Last decision</th></tr>",
        if dry_run { " <small>(dry run: nothing is switched)</small>" } else { "" }
    );
    let word = |on: bool| if on { "on" } else { "off" };
    for (name, c) in &consumers {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} min</td><td>{}: {}</td></tr>",
            escape(name),
            c.on.map_or("unknown", word),
            word(c.wanted),
            word(c.automatic),
            c.runtime_today.as_secs() / 60,
            c.action,
            escape(&c.reason)
        );
    }
    if consumers.is_empty() {
        html.push_str("<tr><td colspan=\"6\">No decision yet: waiting for the first poll.</td></tr>");
    }
    html.push_str("</table></section>");
    html
}

/// Which shard this instance is, so a page reached through a load balancer says which one it
/// shows, and that the fleet's other inverters are on the other shards' pages.
pub(super) fn shard(sharding: &crate::config::Sharding) -> String {
    let here = sharding.fleet - sharding.elsewhere.len();
    format!(
        "<p>Shard <b>{}</b>: this instance polls {here} of the fleet's {} inverters; the other shards show the rest.</p>",
        sharding.shard, sharding.fleet
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::control::{Action, Decision};

    #[test]
    fn the_control_section_lists_each_decision_escaped() {
        let view = ControlView::default();
        let decision = Decision {
            consumer: "geyser".into(),
            state: Some(true),
            want: false,
            action: Action::Wait,
            reason: "wants off (battery 39 % < 40 %); on for 4 min of its 10 min minimum <now>".into(),
            runtime_today: Duration::from_secs(600),
            automatic: true,
        };
        view.record(&[decision], true);
        let html = control(&view);
        assert!(html.contains("(dry run: nothing is switched)"), "{html}");
        assert!(
            html.contains("<td>geyser</td><td>on</td><td>off</td><td>on</td><td>10 min</td><td>wait: wants off (battery 39 % &lt; 40 %)"),
            "{html}"
        );
    }
}
