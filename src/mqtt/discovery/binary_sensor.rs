//! Bit flags become `binary_sensor` entities.

use serde_json::json;

use super::{Component, Context};
use crate::profile::ReadingSpec;

/// The binary sensor entity of a bit-flag reading.
pub fn component(spec: &ReadingSpec, ctx: &Context<'_>) -> Component {
    let def = &spec.def;
    let mut config = ctx.identity("binary_sensor", &def.key, &def.name);
    config.insert("state_topic".into(), json!(ctx.topics.state(&ctx.device.inverter)));
    let template = format!(
        "{{{{ ('ON' if value_json.{key} else 'OFF') if value_json.{key} is defined else None }}}}",
        key = def.key
    );
    config.insert("value_template".into(), json!(template));
    config.insert("payload_on".into(), json!("ON"));
    config.insert("payload_off".into(), json!("OFF"));
    if let Some(class) = &def.device_class {
        config.insert("device_class".into(), json!(class));
    }
    if let Some(icon) = &def.icon {
        config.insert("icon".into(), json!(icon));
    }
    if def.entity_category.is_some() {
        config.insert("entity_category".into(), json!("diagnostic"));
    }
    ctx.inverter_availability(&mut config);
    Component { id: def.key.clone(), platform: "binary_sensor", config }
}
