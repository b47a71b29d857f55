//! Bit flags become `binary_sensor` entities.

use super::{Component, Context, Platform};
use crate::profile::ReadingSpec;

/// The binary sensor entity of a bit-flag reading.
pub(super) fn component(spec: &ReadingSpec, ctx: &Context<'_>) -> Component {
    let def = &spec.def;
    let template = format!(
        "{{{{ ('ON' if value_json.{key} else 'OFF') if value_json.{key} is defined else None }}}}",
        key = def.key
    );
    ctx.component(Platform::BinarySensor, &def.key, &def.name, |e| {
        let mut e = e.reads(ctx.topics.state(&ctx.device.inverter), template).on_off();
        e.device_class = def.device_class.clone();
        e.icon = def.icon.clone();
        e.entity_category = def.entity_category.map(|_| "diagnostic");
        ctx.inverter_availability(e)
    })
}
