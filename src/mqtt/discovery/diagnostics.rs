//! The service's own statistics per inverter, as diagnostic entities. They depend only on the
//! service being up, so a dead logger still shows its failure count.

use super::{Component, Context, Entity, Platform};
use crate::quality::Rule;
use crate::transport::Event;

/// Link counters shown by default; the others are there but disabled until a user wants them.
const PROMINENT: [Event; 4] = [Event::Timeout, Event::Checksum, Event::Crc, Event::ConnectFailure];

/// Every diagnostic entity of an inverter.
pub(super) fn components(ctx: &Context<'_>) -> Vec<Component> {
    let mut list = vec![
        entity(ctx, "poll_duration", "Poll duration", "{{ value_json.poll_duration_ms }}", |e| {
            e.unit("ms").class("duration").state_class("measurement")
        }),
        entity(ctx, "last_poll", "Last successful poll", "{{ value_json.last_success }}", |e| {
            e.class("timestamp")
        }),
        entity(
            ctx,
            "consecutive_failures",
            "Consecutive failed polls",
            "{{ value_json.consecutive_failures }}",
            |e| e.state_class("measurement").icon("mdi:lan-disconnect"),
        ),
    ];
    // Whether clock sync is on or not: a drifting clock shifts the daily counters and the
    // time-of-use slots, so the drift is worth seeing either way.
    list.push(entity(ctx, "clock_drift", "Inverter clock drift", "{{ value_json.clock_drift_s }}", |e| {
        e.unit("s").class("duration").state_class("measurement").icon("mdi:clock-alert-outline")
    }));
    list.extend(Event::ALL.into_iter().map(|event| link(ctx, event)));
    list.extend(Rule::ALL.into_iter().map(|rule| rejected(ctx, rule)));
    list
}

/// The counter of one link event.
fn link(ctx: &Context<'_>, event: Event) -> Component {
    let key = event.as_str();
    let name = format!("Link {}", key.replace('_', " "));
    let template = format!("{{{{ value_json.link.{key} }}}}");
    entity(ctx, &format!("link_{key}"), &name, &template, |e| Entity {
        enabled_by_default: Some(PROMINENT.contains(&event)),
        ..e.state_class("total_increasing")
    })
}

/// The counter of readings one plausibility rule rejected.
fn rejected(ctx: &Context<'_>, rule: Rule) -> Component {
    let key = rule.as_str();
    let name = format!("Rejected readings {}", key.replace('_', " "));
    let template = format!("{{{{ value_json.rejected.{key} }}}}");
    entity(ctx, &format!("rejected_{key}"), &name, &template, |e| e.state_class("total_increasing"))
}

fn entity(
    ctx: &Context<'_>,
    key: &str,
    name: &str,
    template: &str,
    extra: impl FnOnce(Entity) -> Entity,
) -> Component {
    let id = format!("monitor_{key}");
    ctx.component(Platform::Sensor, &id, name, |e| {
        let e = e
            .reads(ctx.topics.diagnostics(&ctx.device.inverter), template.to_string())
            .category("diagnostic")
            .available_with(vec![ctx.topics.status()]);
        extra(e)
    })
}
