//! The weather series, read from the [`WeatherHandle`] at scrape time. The sun is computed for
//! the scrape, so it is always there; the weather and the PV estimate are absent (not 0) before
//! the first good fetch and once the last one is stale; the time of the last good fetch stays.
//!
//! Names: `inverter_monitor_weather_<what>_<base unit>`; fetches are counted by `result`
//! (`ok`, `unreachable`, `timeout`, `http_status`, `malformed`).

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use crate::weather::{FailureKind, WeatherHandle};

/// Encodes the weather series as of `now`.
pub(super) fn encode(
    weather: &WeatherHandle,
    now: DateTime<Utc>,
    encoder: &mut DescriptorEncoder,
) -> std::fmt::Result {
    let latest = weather.latest(now);
    let sun = latest.as_ref().map(|s| s.sun).or_else(|| weather.sun(now));
    let mut gauges = vec![];
    if let Some(sun) = sun {
        gauges.push(("sun_elevation_degrees", "Sun elevation above the horizon", sun.elevation_deg));
        gauges.push(("sun_azimuth_degrees", "Sun azimuth from north, clockwise", sun.azimuth_deg));
    }
    if let Some(s) = &latest {
        gauges.push(("cloud_cover_percent", "Cloud cover at the last fetch", s.cloud_cover_pct));
        if let Some(w) = s.expected_pv_w {
            gauges.push(("expected_pv_watts", "Clear-sky PV estimate under the current cloud", w));
        }
        if let Some(wh) = s.expected_pv_remaining_wh {
            gauges.push((
                "expected_pv_remaining_watt_hours",
                "Expected PV energy for the rest of the day",
                wh,
            ));
        }
    }
    if let Some(at) = weather.last_success() {
        let seconds = at.timestamp_millis() as f64 / 1000.0;
        gauges.push(("last_success_timestamp_seconds", "When the last good weather fetch arrived", seconds));
    }
    for (name, help, value) in gauges {
        let name = format!("inverter_monitor_weather_{name}");
        encoder.encode_descriptor(&name, help, None, MetricType::Gauge)?.encode_gauge(&value)?;
    }
    let results = std::iter::once(("ok", weather.fetches_ok()))
        .chain(FailureKind::ALL.map(|kind| (kind.as_str(), weather.fetches_failed(kind))));
    let help = "Weather fetches by result";
    let mut family =
        encoder.encode_descriptor("inverter_monitor_weather_fetches", help, None, MetricType::Counter)?;
    for (result, count) in results {
        let value = count as f64;
        family
            .encode_family(&[("result", result)])?
            .encode_counter::<NoLabelSet, f64, f64>(&value, None::<&Exemplar<NoLabelSet, f64>>)?;
    }
    Ok(())
}
