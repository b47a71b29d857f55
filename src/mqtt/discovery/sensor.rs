//! Numbers, enums and texts become `sensor` entities.

use serde_json::json;

use super::{Component, Context};
use crate::profile::{EntityCategory, ReadingSpec, StateClass};

/// The sensor entity of a reading.
pub fn component(spec: &ReadingSpec, ctx: &Context<'_>) -> Component {
    let def = &spec.def;
    let mut config = ctx.identity("sensor", &def.key, &def.name);
    config.insert("state_topic".into(), json!(ctx.topics.state(&ctx.device.inverter)));
    // A reading that was never accepted renders None, which HA shows as unknown, not as 0.
    let template =
        format!("{{{{ value_json.{key} if value_json.{key} is defined else None }}}}", key = def.key);
    config.insert("value_template".into(), json!(template));
    if let Some(unit) = &def.unit {
        config.insert("unit_of_measurement".into(), json!(unit));
    }
    if let Some(class) = &def.device_class {
        config.insert("device_class".into(), json!(class));
    }
    if let Some(state) = def.state_class {
        config.insert("state_class".into(), json!(state_class(state)));
    }
    if !spec.options.is_empty() {
        // Several raw values may share a text (0 and 2 are both "Off"); HA wants each once.
        let mut options: Vec<&str> = Vec::with_capacity(spec.options.len());
        for (_, text) in &spec.options {
            if !options.contains(&&**text) {
                options.push(text);
            }
        }
        config.insert("options".into(), json!(options));
    }
    if def.unit.is_some() && spec.options.is_empty() {
        config.insert("suggested_display_precision".into(), json!(spec.decimals));
    }
    if let Some(icon) = &def.icon {
        config.insert("icon".into(), json!(icon));
    }
    // HA refuses `config` on sensors: read-only settings are diagnostics.
    if let Some(EntityCategory::Diagnostic | EntityCategory::Config) = def.entity_category {
        config.insert("entity_category".into(), json!("diagnostic"));
    }
    ctx.inverter_availability(&mut config);
    Component { id: def.key.clone(), platform: "sensor", config }
}

/// The state class as HA spells it.
pub fn state_class(state: StateClass) -> &'static str {
    match state {
        StateClass::Measurement => "measurement",
        StateClass::Total => "total",
        StateClass::TotalIncreasing => "total_increasing",
    }
}
