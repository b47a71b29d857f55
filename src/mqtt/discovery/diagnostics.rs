//! The service's own statistics per inverter, as diagnostic entities. They depend only on the
//! service being up, so a dead logger still shows its failure count.

use serde_json::{Map, Value as Json, json};

use super::{Component, Context};
use crate::quality::Rule;
use crate::transport::Event;

/// Link counters shown by default; the others are there but disabled until a user wants them.
const PROMINENT: [Event; 4] = [Event::Timeout, Event::Checksum, Event::Crc, Event::ConnectFailure];

/// Every diagnostic entity of an inverter.
pub fn components(ctx: &Context<'_>) -> Vec<Component> {
    let mut list = vec![
        entity(ctx, "poll_duration", "Poll duration", "{{ value_json.poll_duration_ms }}", |c| {
            c.insert("unit_of_measurement".into(), json!("ms"));
            c.insert("device_class".into(), json!("duration"));
            c.insert("state_class".into(), json!("measurement"));
        }),
        entity(ctx, "last_poll", "Last successful poll", "{{ value_json.last_success }}", |c| {
            c.insert("device_class".into(), json!("timestamp"));
        }),
        entity(
            ctx,
            "consecutive_failures",
            "Consecutive failed polls",
            "{{ value_json.consecutive_failures }}",
            |c| {
                c.insert("state_class".into(), json!("measurement"));
                c.insert("icon".into(), json!("mdi:lan-disconnect"));
            },
        ),
    ];
    for event in crate::transport::Event::ALL {
        let key = event.as_str();
        let name = format!("Link {}", key.replace('_', " "));
        let template = format!("{{{{ value_json.link.{key} }}}}");
        list.push(entity(ctx, &format!("link_{key}"), &name, &template, |c| {
            c.insert("state_class".into(), json!("total_increasing"));
            c.insert("enabled_by_default".into(), json!(PROMINENT.contains(&event)));
        }));
    }
    for rule in Rule::ALL {
        let key = rule.as_str();
        let name = format!("Rejected readings {}", key.replace('_', " "));
        let template = format!("{{{{ value_json.rejected.{key} }}}}");
        list.push(entity(ctx, &format!("rejected_{key}"), &name, &template, |c| {
            c.insert("state_class".into(), json!("total_increasing"));
        }));
    }
    list
}

fn entity(
    ctx: &Context<'_>,
    key: &str,
    name: &str,
    template: &str,
    extra: impl FnOnce(&mut Map<String, Json>),
) -> Component {
    let id = format!("monitor_{key}");
    let mut config = ctx.identity("sensor", &id, name);
    config.insert("state_topic".into(), json!(ctx.topics.diagnostics(&ctx.device.inverter)));
    config.insert("value_template".into(), json!(template));
    config.insert("entity_category".into(), json!("diagnostic"));
    config.insert("availability".into(), json!([{"topic": ctx.topics.status()}]));
    extra(&mut config);
    Component { id, platform: "sensor", config }
}
