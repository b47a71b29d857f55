//! Numbers, enums and texts become `sensor` entities.

use super::{Component, Context, Platform};
use crate::profile::{EntityCategory, ReadingSpec, StateClass};

/// The sensor entity of a reading.
pub(super) fn component(spec: &ReadingSpec, ctx: &Context<'_>) -> Component {
    let def = &spec.def;
    // A reading that was never accepted renders None, which HA shows as unknown, not as 0.
    let template =
        format!("{{{{ value_json.{key} if value_json.{key} is defined else None }}}}", key = def.key);
    ctx.component(Platform::Sensor, &def.key, &def.name, |e| {
        let mut e = e.reads(ctx.topics.state(&ctx.device.inverter), template);
        e.unit_of_measurement = def.unit.clone();
        e.device_class = def.device_class.clone();
        e.state_class = def.state_class.map(state_class);
        e.options = options(spec);
        if def.unit.is_some() && spec.options.is_empty() {
            e.suggested_display_precision = Some(u32::from(spec.decimals));
        }
        e.icon = def.icon.clone();
        // HA refuses `config` on sensors: read-only settings are diagnostics.
        if let Some(EntityCategory::Diagnostic | EntityCategory::Config) = def.entity_category {
            e.entity_category = Some("diagnostic");
        }
        ctx.inverter_availability(e)
    })
}

/// The texts of an enum reading, each once: several raw values may share a text (0 and 2 are
/// both "Off"), and HA wants each once.
fn options(spec: &ReadingSpec) -> Option<Vec<String>> {
    let options = options_of(spec);
    (!options.is_empty()).then_some(options)
}

/// The texts of an enum reading, each once, in raw order.
pub(super) fn options_of(spec: &ReadingSpec) -> Vec<String> {
    let mut options: Vec<String> = Vec::with_capacity(spec.options.len());
    for (_, text) in &spec.options {
        if !options.iter().any(|o| **o == **text) {
            options.push(text.to_string());
        }
    }
    options
}

/// The state class as HA spells it.
pub(super) fn state_class(state: StateClass) -> &'static str {
    match state {
        StateClass::Measurement => "measurement",
        StateClass::Total => "total",
        StateClass::TotalIncreasing => "total_increasing",
    }
}
