//! Load control in Home Assistant: a "Load control" device with, per consumer, an "automatic
//! control" switch, the last decision with its reason, whether it is wanted on, and its runtime
//! today; and one "Dry run" switch. All read one retained JSON on `<base>/control/state`.

use serde_json::{Map, Value as Json, json};

use crate::config::ConsumerConfig;
use crate::mqtt::ServiceDevice;
use crate::mqtt::discovery::{Component, Context, DeviceInfo};
use crate::mqtt::topics::{Topics, sanitize};

/// The ledger key of the load control device.
pub const DEVICE_KEY: &str = "@control";

/// The topics of load control under `base`.
#[derive(Debug, Clone)]
pub struct ControlTopics {
    base: String,
}

impl ControlTopics {
    /// Topics under the service's base topic.
    pub fn new(base: &str) -> Self {
        Self { base: format!("{base}/control") }
    }

    /// The retained JSON every entity reads.
    pub fn state(&self) -> String {
        format!("{}/state", self.base)
    }

    /// Where Home Assistant turns automatic control of `consumer` on or off.
    pub fn automatic(&self, consumer: &str) -> String {
        format!("{}/{consumer}/automatic/set", self.base)
    }

    /// Where Home Assistant turns dry run on or off.
    pub fn dry_run(&self) -> String {
        format!("{}/dry_run/set", self.base)
    }
}

/// The device, its entities, and the command topics to listen to.
pub fn device(topics: &Topics, base: &str, consumers: &[ConsumerConfig]) -> ServiceDevice {
    let control = ControlTopics::new(base);
    let device = DeviceInfo {
        inverter: "Load control".into(),
        serial: format!("{}_control", sanitize(base)),
        manufacturer: "inverter-monitor".into(),
        model: "Load control".into(),
        sw_version: Some(env!("CARGO_PKG_VERSION").into()),
    };
    let ctx = Context { device: &device, topics };
    let mut components =
        vec![switch(&ctx, &control, "dry_run", "Dry run", &control.dry_run(), "{{ value_json.dry_run }}")];
    components[0].config.insert("entity_category".into(), json!("config"));
    components[0].config.insert("icon".into(), json!("mdi:test-tube"));
    let mut listen = vec![control.dry_run()];
    for c in consumers {
        let n = &c.name;
        let path = format!("value_json.consumers['{n}']");
        let title = title(n);
        listen.push(control.automatic(n));
        let template = format!("{{{{ {path}.automatic }}}}");
        let mut auto = switch(
            &ctx,
            &control,
            &format!("{n}_automatic"),
            &format!("{title} automatic control"),
            &control.automatic(n),
            &template,
        );
        auto.config.insert("icon".into(), json!("mdi:robot"));
        components.push(auto);
        components.push(entity(
            &ctx,
            &control,
            "sensor",
            &format!("{n}_decision"),
            &format!("{title} decision"),
            |c| {
                c.insert("value_template".into(), json!(format!("{{{{ {path}.decision }}}}")));
                c.insert("json_attributes_topic".into(), json!(control.state()));
                c.insert("json_attributes_template".into(), json!(format!("{{{{ {path} | tojson }}}}")));
                c.insert("icon".into(), json!("mdi:head-cog"));
            },
        ));
        components.push(entity(
            &ctx,
            &control,
            "binary_sensor",
            &format!("{n}_wanted"),
            &format!("{title} wanted on"),
            |c| {
                c.insert("value_template".into(), json!(format!("{{{{ {path}.wanted }}}}")));
                c.insert("payload_on".into(), json!("ON"));
                c.insert("payload_off".into(), json!("OFF"));
                c.insert("device_class".into(), json!("power"));
            },
        ));
        components.push(entity(
            &ctx,
            &control,
            "sensor",
            &format!("{n}_runtime_today"),
            &format!("{title} runtime today"),
            |c| {
                c.insert("value_template".into(), json!(format!("{{{{ {path}.runtime_today_min }}}}")));
                c.insert("unit_of_measurement".into(), json!("min"));
                c.insert("device_class".into(), json!("duration"));
                c.insert("state_class".into(), json!("total_increasing"));
            },
        ));
    }
    ServiceDevice { key: DEVICE_KEY.into(), device, components, listen, retained: vec![control.state()] }
}

/// `pool_pump` → `Pool pump`.
fn title(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn switch(
    ctx: &Context<'_>,
    control: &ControlTopics,
    id: &str,
    name: &str,
    command: &str,
    template: &str,
) -> Component {
    entity(ctx, control, "switch", id, name, |c| {
        c.insert("command_topic".into(), json!(command));
        c.insert("value_template".into(), json!(template));
        c.insert("payload_on".into(), json!("ON"));
        c.insert("payload_off".into(), json!("OFF"));
        c.insert("state_on".into(), json!("ON"));
        c.insert("state_off".into(), json!("OFF"));
        // Retained commands survive a restart of this service even without its data dir.
        c.insert("retain".into(), json!(true));
    })
}

fn entity(
    ctx: &Context<'_>,
    control: &ControlTopics,
    platform: &'static str,
    id: &str,
    name: &str,
    extra: impl FnOnce(&mut Map<String, Json>),
) -> Component {
    let mut config = ctx.identity(platform, id, name);
    config.insert("state_topic".into(), json!(control.state()));
    config.insert("availability".into(), json!([{"topic": ctx.topics.status()}]));
    extra(&mut config);
    Component { id: id.to_string(), platform, config }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_gets_four_entities_and_the_device_one_dry_run_switch() {
        let topics = Topics::new("homeassistant", "inverter-monitor");
        let device = device(&topics, "inverter-monitor", &[ConsumerConfig::new("pool_pump", 800.0)]);
        let ids: Vec<(&str, &str)> = device.components.iter().map(|c| (c.platform, c.id.as_str())).collect();
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
        assert_eq!(auto["name"], "Pool pump automatic control");
        assert_eq!(auto["unique_id"], "inverter-monitor_control_pool_pump_automatic");
        assert_eq!(auto["default_entity_id"], "switch.load_control_pool_pump_automatic");
        assert_eq!(auto["command_topic"], "inverter-monitor/control/pool_pump/automatic/set");
        assert_eq!(auto["value_template"], "{{ value_json.consumers['pool_pump'].automatic }}");
        assert_eq!(
            device.listen,
            ["inverter-monitor/control/dry_run/set", "inverter-monitor/control/pool_pump/automatic/set"]
        );
        assert_eq!(device.device.object_id(), "inverter_monitor_inverter-monitor_control");
        let dashed = super::device(&topics, "inverter-monitor", &[ConsumerConfig::new("ev-charger", 2300.0)]);
        assert_eq!(
            dashed.components[1].config["default_entity_id"], "switch.load_control_ev_charger_automatic",
            "entity ids allow no `-`"
        );
    }
}
