//! Prometheus metrics: one series per numeric reading, and the service's own health.
//!
//! We use `prometheus-client` (the Prometheus project's own Rust client) rather than the
//! `prometheus` crate named on the design card: the latter is in maintenance mode
//! (tikv/rust-prometheus#530), the former is maintained and writes the classic text format we
//! validate with `promtool`. Readings are not registered one by one: a collector encodes them
//! from the latest snapshots at scrape time, so values are always current and a counter can
//! carry the inverter's own lifetime total.
//!
//! The collector reads every inverter's [`InverterStatus`] from the shared
//! [`crate::poller::Statuses`]: the metrics depend on the poller only, never on the web's state.
//!
//! Names: `inverter_<key>_<base unit>` (watts, volts, amperes, celsius, percent, hertz, …);
//! lifetime energy counters are `inverter_<key>_kilowatt_hours_total` counters. Labels:
//! `inverter` and `serial`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::poller::{InverterStatus, Statuses, Update};
use crate::profile::{Counter as CounterKind, Value};
use crate::weather::WeatherHandle;

mod control;
mod weather;

type Labels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 10))
}

/// Gauges the collector reads from other parts of the service at scrape time.
#[derive(Debug, Clone, Default)]
pub struct ScrapeSources {
    /// True while the MQTT connection is up (when MQTT is configured).
    pub mqtt_connected: Option<Arc<AtomicBool>>,
    /// Spool statistics (when InfluxDB is configured).
    pub spool: Option<Arc<dyn MetricSource>>,
    /// Weather, sun and PV estimate (when `[weather]` is configured).
    pub weather: Option<WeatherHandle>,
    /// Load control's decisions (when consumers are configured).
    pub control: Option<crate::control::view::ControlView>,
    /// Write commands by inverter, key and outcome (when an inverter has writes on).
    pub writes: Option<crate::writes::WriteCounters>,
    /// This instance's shard (with `run --shard`).
    pub shard: Option<crate::config::Shard>,
}

/// Something that reports metrics at scrape time, each as (name, help, value).
pub trait MetricSource: std::fmt::Debug + Send + Sync {
    /// Values that go up and down, as of now.
    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)>;

    /// Values that only grow (named without `_total`: the encoder adds it).
    fn counters(&self) -> Vec<(&'static str, &'static str, f64)> {
        Vec::new()
    }
}

/// The registry and the metrics the service updates as polls happen.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    polls: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Metrics for the inverters in `statuses` (read at scrape time), with gauges from `sources`.
    pub fn new(statuses: Statuses, sources: ScrapeSources) -> Self {
        let mut registry = Registry::default();
        let polls = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register("inverter_monitor_polls", "Polls by inverter and outcome", polls.clone());
        registry.register(
            "inverter_monitor_poll_duration_seconds",
            "Time a successful poll took",
            duration.clone(),
        );
        registry.register_collector(Box::new(Readings { statuses, sources }));
        Self { registry, polls, duration }
    }

    /// Counts one poll; its inverter's status is kept in the shared [`Statuses`].
    pub fn record(&self, update: &Update) {
        let inverter = update.inverter().to_string();
        let outcome = match update {
            Update::Polled { snapshot, .. } => {
                let labels = vec![("inverter".to_string(), inverter.clone())];
                self.duration.get_or_create(&labels).observe(snapshot.duration.as_secs_f64());
                "ok"
            }
            Update::Failed { .. } => "failed",
        };
        let labels = vec![("inverter".to_string(), inverter), ("outcome".to_string(), outcome.to_string())];
        self.polls.get_or_create(&labels).inc();
    }

    /// Everything in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry) {
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        out
    }
}

/// The base unit Prometheus names end with, for a reading's unit.
pub fn base_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "W" => "watts",
        "kW" => "kilowatts",
        "V" => "volts",
        "A" => "amperes",
        "°C" => "celsius",
        "%" => "percent",
        "kWh" => "kilowatt_hours",
        "Hz" => "hertz",
        "s" => "seconds",
        "Ah" => "ampere_hours",
        "VA" => "volt_amperes",
        "var" => "vars",
        _ => return None,
    })
}

/// `inverter_<key><suffix>`, kept clear of the suffixes Prometheus reserves for histograms,
/// summaries and counters, which a profile key might happen to end with.
fn metric_name(key: &str, suffix: &str, counter: bool) -> String {
    let name = format!("inverter_{key}{suffix}");
    let reserved = ["_count", "_sum", "_bucket"].iter().any(|r| name.ends_with(r))
        || (!counter && name.ends_with("_total"));
    if reserved { format!("{name}_value") } else { name }
}

/// One metric family: help, type, and a sample per inverter.
struct FamilyOut {
    help: String,
    counter: bool,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Encodes readings and service gauges from the latest statuses at scrape time.
#[derive(Debug)]
struct Readings {
    statuses: Statuses,
    sources: ScrapeSources,
}

impl Readings {
    fn families(&self) -> BTreeMap<String, FamilyOut> {
        let mut families = BTreeMap::new();
        self.statuses.read(|statuses| {
            for view in statuses.values() {
                readings(view, &mut families);
                service(view, &mut families);
            }
        });
        families
    }
}

fn labels(view: &InverterStatus, serial: &str) -> Vec<(&'static str, String)> {
    vec![("inverter", view.name.clone()), ("serial", serial.to_string())]
}

fn push(
    families: &mut BTreeMap<String, FamilyOut>,
    name: String,
    help: &str,
    counter: bool,
    sample: (Vec<(&'static str, String)>, f64),
) {
    let family = families.entry(name).or_insert_with(|| FamilyOut {
        help: help.to_string(),
        counter,
        samples: Vec::new(),
    });
    family.samples.push(sample);
}

/// One series per numeric or flag reading of the last good poll.
/// An unavailable inverter has no reading series: they go stale in Prometheus instead of
/// repeating the last value ("unavailable, never zero" – and never a frozen value either).
fn readings(view: &InverterStatus, families: &mut BTreeMap<String, FamilyOut>) {
    let Some(snapshot) = view.snapshot.as_ref().filter(|_| view.online != Some(false)) else { return };
    let serial = &snapshot.identity;
    for (spec, value) in snapshot.iter() {
        let def = &spec.def;
        let number = match value {
            Value::Number(n) => *n,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Text(_) => continue,
        };
        let suffix = def.unit.as_deref().and_then(base_unit).map(|u| format!("_{u}")).unwrap_or_default();
        let counter = def.counter == Some(CounterKind::Total);
        // `pv_energy_total` as a counter reads `inverter_pv_energy_kilowatt_hours_total`.
        let key = if counter { def.key.trim_end_matches("_total") } else { def.key.as_str() };
        let help = format!("{} ({})", def.name, def.unit.as_deref().unwrap_or("flag or count"));
        push(families, metric_name(key, &suffix, counter), &help, counter, (labels(view, serial), number));
    }
}

/// The service's own per-inverter series.
fn service(view: &InverterStatus, families: &mut BTreeMap<String, FamilyOut>) {
    let serial = match &view.snapshot {
        Some(snapshot) => snapshot.identity.to_string(),
        // Before the first good poll: the same rule without the inverter's serial, so a Modbus
        // TCP gateway's `0` never labels two inverters alike.
        None => crate::poller::identity(None, view.logger_serial, &view.name).to_string(),
    };
    let l = || labels(view, &serial);
    let up = f64::from(u8::from(view.online == Some(true)));
    push(families, "inverter_monitor_up".into(), "1 while the inverter is available", false, (l(), up));
    let failures = f64::from(view.consecutive_failures);
    push(
        families,
        "inverter_monitor_consecutive_failures".into(),
        "Failed polls in a row",
        false,
        (l(), failures),
    );
    if let Some(time) = view.last_success() {
        let seconds = time.timestamp() as f64;
        push(
            families,
            "inverter_monitor_last_success_timestamp_seconds".into(),
            "When the last good poll started",
            false,
            (l(), seconds),
        );
    }
    let Some(link) = view.link() else { return };
    let with = |key: &'static str, value: &str| {
        let mut labels = l();
        labels.push((key, value.to_string()));
        labels
    };
    for (event, count) in link.iter() {
        let help = "Link events by kind: errors, retries, skipped frames, connects";
        push(
            families,
            "inverter_monitor_link_events".into(),
            help,
            true,
            (with("kind", event.as_str()), count as f64),
        );
    }
    if let Some(snapshot) = &view.snapshot {
        for rule in crate::quality::Rule::ALL {
            let count = snapshot.rejected_total.get(rule.as_str()).copied().unwrap_or(0) as f64;
            let help = "Readings or polls rejected by plausibility rule";
            push(
                families,
                "inverter_monitor_rejected_readings".into(),
                help,
                true,
                (with("rule", rule.as_str()), count),
            );
        }
    }
}

impl Collector for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, family) in self.families() {
            let kind = if family.counter { MetricType::Counter } else { MetricType::Gauge };
            let mut metric = encoder.encode_descriptor(&name, &family.help, None, kind)?;
            for (labels, value) in &family.samples {
                let mut sample = metric.encode_family(labels)?;
                if family.counter {
                    sample
                        .encode_counter::<NoLabelSet, f64, f64>(value, None::<&Exemplar<NoLabelSet, f64>>)?;
                } else {
                    sample.encode_gauge(value)?;
                }
            }
        }
        if let Some(connected) = &self.sources.mqtt_connected {
            let value = i64::from(connected.load(Ordering::Relaxed));
            encoder
                .encode_descriptor(
                    "inverter_monitor_mqtt_connected",
                    "1 while connected to the broker",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&value)?;
        }
        // A fleet outgrowing its process shows here first (crate::poller::lateness).
        encoder
            .encode_descriptor(
                "inverter_monitor_poll_lateness_max_seconds",
                "The largest delay of any poll behind its due time since start",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&crate::poller::lateness::largest().as_secs_f64())?;
        if let Some(spool) = &self.sources.spool {
            for (name, help, value) in spool.gauges() {
                encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)?;
            }
            for (name, help, value) in spool.counters() {
                let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                metric.encode_counter::<NoLabelSet, f64, f64>(&value, None::<&Exemplar<NoLabelSet, f64>>)?;
            }
        }
        if let Some(handle) = &self.sources.weather {
            weather::encode(handle, chrono::Utc::now(), &mut encoder)?;
        }
        if let Some(view) = &self.sources.control {
            control::encode(view, &mut encoder)?;
        }
        if let Some(counters) = &self.sources.writes {
            encode_writes(counters, &mut encoder)?;
        }
        if let Some(shard) = self.sources.shard {
            encode_shard(shard, &mut encoder)?;
        }
        Ok(())
    }
}

/// `inverter_monitor_shard_index` and `inverter_monitor_shards` (not `_count`, a suffix
/// Prometheus keeps for histograms): which shard this is, so a dashboard can tell
/// a missing shard (fewer indices than the count says) from an idle one.
fn encode_shard(shard: crate::config::Shard, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let gauges = [
        ("inverter_monitor_shard_index", "This instance's shard (run --shard INDEX/COUNT)", shard.index()),
        ("inverter_monitor_shards", "How many shards the fleet is split into", shard.count()),
    ];
    for (name, help, value) in gauges {
        encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&i64::from(value))?;
    }
    Ok(())
}

/// `inverter_monitor_writes_total{inverter,key,outcome}`: every write command's end.
fn encode_writes(
    counters: &crate::writes::WriteCounters,
    encoder: &mut DescriptorEncoder,
) -> std::fmt::Result {
    let help = "Write commands from Home Assistant by reading and outcome";
    let mut family = encoder.encode_descriptor("inverter_monitor_writes", help, None, MetricType::Counter)?;
    for (inverter, key, outcome, count) in counters.snapshot() {
        let labels = [("inverter", inverter.as_str()), ("key", key.as_str()), ("outcome", outcome.as_str())];
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, f64, f64>(&(count as f64), None::<&Exemplar<NoLabelSet, f64>>)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
