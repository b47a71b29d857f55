//! Load control in Home Assistant: a "Load control" device with, per consumer, an "automatic
//! control" switch, the last decision with its reason, whether it is wanted on, and its runtime
//! today; and one "Dry run" switch. All read one retained JSON on `<base>/control/state`.

use crate::config::ConsumerConfig;
use crate::mqtt::ServiceDevice;
use crate::mqtt::discovery::{Component, Context, DeviceInfo, Entity, Platform};
use crate::mqtt::topics::Topics;

/// The ledger key of the load control device.
pub(crate) const DEVICE_KEY: &str = "@control";

/// The device, its entities, and the command topics to listen to.
pub(crate) fn device(topics: &Topics, consumers: &[ConsumerConfig]) -> ServiceDevice {
    let device =
        DeviceInfo::service(topics, crate::mqtt::topics::CONTROL, "Load control", "Load control".into());
    let ctx = Context { device: &device, topics };
    let dry_run =
        entity(&ctx, Platform::Switch, "dry_run", "Dry run", "{{ value_json.dry_run }}".into(), |e| {
            e.switch(topics.control_dry_run()).category("config").icon("mdi:test-tube")
        });
    let mut components = vec![dry_run];
    let mut listen = vec![topics.control_dry_run()];
    for c in consumers {
        listen.push(topics.control_automatic(&c.name));
        components.extend(consumer(&ctx, &c.name));
    }
    ServiceDevice {
        key: DEVICE_KEY.into(),
        device,
        components,
        listen,
        retained: vec![topics.control_state()],
    }
}

/// The four entities of consumer `n`, all reading its part of the state JSON.
fn consumer(ctx: &Context<'_>, n: &str) -> [Component; 4] {
    let path = format!("value_json.consumers['{n}']");
    let title = title(n);
    let template = |field: &str| format!("{{{{ {path}.{field} }}}}");
    let command = ctx.topics.control_automatic(n);
    let auto = entity(
        ctx,
        Platform::Switch,
        &format!("{n}_automatic"),
        &format!("{title} automatic control"),
        template("automatic"),
        |e| e.switch(command).icon("mdi:robot"),
    );
    let decision = entity(
        ctx,
        Platform::Sensor,
        &format!("{n}_decision"),
        &format!("{title} decision"),
        template("decision"),
        |e| Entity {
            json_attributes_topic: Some(ctx.topics.control_state()),
            json_attributes_template: Some(format!("{{{{ {path} | tojson }}}}")),
            ..e.icon("mdi:head-cog")
        },
    );
    let wanted = entity(
        ctx,
        Platform::BinarySensor,
        &format!("{n}_wanted"),
        &format!("{title} wanted on"),
        template("wanted"),
        |e| e.on_off().class("power"),
    );
    let runtime = entity(
        ctx,
        Platform::Sensor,
        &format!("{n}_runtime_today"),
        &format!("{title} runtime today"),
        template("runtime_today_min"),
        |e| e.unit("min").class("duration").state_class("total_increasing"),
    );
    [auto, decision, wanted, runtime]
}

/// `pool_pump` → `Pool pump`.
fn title(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// An entity reading `template` of the load-control state JSON, available with the service;
/// `extra` adds what is its own.
fn entity(
    ctx: &Context<'_>,
    platform: Platform,
    id: &str,
    name: &str,
    template: String,
    extra: impl FnOnce(Entity) -> Entity,
) -> Component {
    ctx.component(platform, id, name, |e| {
        extra(e.reads(ctx.topics.control_state(), template).available_with(vec![ctx.topics.status()]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_gets_four_entities_and_the_device_one_dry_run_switch() {
        let topics = Topics::new("homeassistant", "inverter-monitor");
        let device = device(&topics, &[ConsumerConfig::new("pool_pump", 800.0)]);
        let ids: Vec<(&str, &str)> =
            device.components.iter().map(|c| (c.platform.as_str(), c.id.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("switch", "dry_run"),
                ("switch", "pool_pump_automatic"),
                ("sensor", "pool_pump_decision"),
                ("binary_sensor", "pool_pump_wanted"),
                ("sensor", "pool_pump_runtime_today"),
            ]
        );
        let auto = &device.components[1].config;
        assert_eq!(auto.name, "Pool pump automatic control");
        assert_eq!(auto.unique_id, "inverter-monitor_control_pool_pump_automatic");
        assert_eq!(auto.default_entity_id, "switch.load_control_pool_pump_automatic");
        assert_eq!(auto.command_topic.as_deref(), Some("inverter-monitor/control/pool_pump/automatic/set"));
        assert_eq!(auto.value_template.as_deref(), Some("{{ value_json.consumers['pool_pump'].automatic }}"));
        assert_eq!(
            device.listen,
            ["inverter-monitor/control/dry_run/set", "inverter-monitor/control/pool_pump/automatic/set"]
        );
        assert_eq!(device.device.object_id(), "inverter_monitor_inverter-monitor_control");
        let dashed = super::device(&topics, &[ConsumerConfig::new("ev-charger", 2300.0)]);
        assert_eq!(
            dashed.components[1].config.default_entity_id, "switch.load_control_ev_charger_automatic",
            "entity ids allow no `-`"
        );
    }
}
