//! Load control's series, from the [`ControlView`] at scrape time: per consumer its state (absent
//! while unknown), what the rules want, automatic control, today's runtime and the commands sent.

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use crate::control::view::{ConsumerView, ControlView};

/// How a gauge reads its value from a consumer; `None` leaves the series out.
type Value = dyn Fn(&ConsumerView) -> Option<f64>;

fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// Encodes the load control series.
pub(super) fn encode(view: &ControlView, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let (dry_run, consumers) = view.get();
    encoder
        .encode_descriptor(
            "inverter_monitor_control_dry_run",
            "1 while load control only decides",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&f64::from(u8::from(dry_run)))?;
    let gauges: [(&str, &str, &Value); 4] = [
        ("inverter_monitor_consumer_on", "1 while the consumer's plug is on", &|v| v.on.map(flag)),
        ("inverter_monitor_consumer_wanted", "1 while the rules want the consumer on", &|v| {
            Some(flag(v.wanted))
        }),
        ("inverter_monitor_consumer_automatic", "1 while automatic control is on", &|v| {
            Some(flag(v.automatic))
        }),
        ("inverter_monitor_consumer_runtime_today_seconds", "Time on since the inverter's midnight", &|v| {
            Some(v.runtime_today.as_secs_f64())
        }),
    ];
    for (name, help, value) in gauges {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (consumer, view) in &consumers {
            if let Some(value) = value(view) {
                family.encode_family(&[("consumer", consumer.as_str())])?.encode_gauge(&value)?;
            }
        }
    }
    let mut family = encoder.encode_descriptor(
        "inverter_monitor_consumer_commands",
        "Commands sent to consumers",
        None,
        MetricType::Counter,
    )?;
    for (consumer, view) in &consumers {
        for (command, count) in [("on", view.commands_on), ("off", view.commands_off)] {
            family
                .encode_family(&[("consumer", consumer.as_str()), ("command", command)])?
                .encode_counter::<NoLabelSet, f64, f64>(
                    &(count as f64),
                    None::<&Exemplar<NoLabelSet, f64>>,
                )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, InverterConfig};
    use crate::control::view::ControlView;
    use crate::control::{Action, Decision};
    use crate::sinks::metrics::{Metrics, ScrapeSources};

    #[test]
    fn consumers_show_state_wish_runtime_and_commands_and_unknown_states_are_absent() {
        let view = ControlView::default();
        let decision = |consumer: &str, state| Decision {
            consumer: consumer.into(),
            state,
            want: true,
            action: Action::Stay,
            reason: String::new(),
            runtime_today: Duration::from_secs(90),
            automatic: true,
        };
        view.record(&[decision("geyser", Some(true)), decision("pool", None)], true);
        view.sent("geyser", true);
        let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 8899, 1)]);
        let sources = ScrapeSources { control: Some(view), ..ScrapeSources::default() };
        let text = Metrics::new(crate::poller::Statuses::new(&config), sources).render();
        for line in [
            "inverter_monitor_control_dry_run 1",
            "inverter_monitor_consumer_on{consumer=\"geyser\"} 1",
            "inverter_monitor_consumer_wanted{consumer=\"pool\"} 1",
            "inverter_monitor_consumer_runtime_today_seconds{consumer=\"geyser\"} 90",
            "inverter_monitor_consumer_commands_total{consumer=\"geyser\",command=\"on\"} 1",
            "inverter_monitor_consumer_commands_total{consumer=\"pool\",command=\"off\"} 0",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line} missing:\n{text}");
        }
        assert!(
            !text.contains("inverter_monitor_consumer_on{consumer=\"pool\"}"),
            "unknown is absent, not 0"
        );
    }
}
