//! Writable readings become `number`, `select`, `switch` or `text` entities, beside their
//! sensor (docs/writes.md, "In Home Assistant").
//!
//! Identity: Home Assistant ties a unique_id to the platform it was first seen on; moving a
//! unique_id from `sensor` to `number` is not a supported change (the registry entry keeps its
//! old domain). So a writable entity gets a unique_id of its own, `<identity>_<key>_set`, and
//! component id `<key>_set`, while its entity id follows the reading's key
//! (`number.<inverter>_max_sell_power`). The reading's sensor keeps its unique_id, history and
//! statistics, and is announced disabled by default: a new installation shows one entity per
//! setting, an existing one keeps the sensor the user already has until they disable it.
//!
//! Slot times are `text` entities with an `HH:MM` pattern: MQTT discovery has no `time`
//! platform, and a `select` of 1440 minutes would be unusable.

use super::{Component, Context, Platform};
use crate::profile::{ReadingSpec, WriteForm};

/// What a time-of-day text must look like.
const HHMM: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// The component id of a reading's writable entity.
pub(crate) fn id(key: &str) -> String {
    format!("{key}_set")
}

/// The writable entity of `spec`, `None` for a read-only reading.
pub(crate) fn component(spec: &ReadingSpec, ctx: &Context<'_>) -> Option<Component> {
    let def = &spec.def;
    let (form, write) = (def.write_form()?, def.write.as_ref()?);
    let key = &def.key;
    let platform = match form {
        WriteForm::Number => Platform::Number,
        WriteForm::Select => Platform::Select,
        WriteForm::Switch => Platform::Switch,
        WriteForm::Time => Platform::Text,
    };
    let defined = |shown: &str| format!("{{{{ {shown} if value_json.{key} is defined else None }}}}");
    let template = match form {
        WriteForm::Switch => defined(&format!("('ON' if value_json.{key} else 'OFF')")),
        WriteForm::Time => defined(&format!(
            "'%02d:%02d' % ((value_json.{key} | int) // 100, (value_json.{key} | int) % 100)"
        )),
        WriteForm::Number | WriteForm::Select => defined(&format!("value_json.{key}")),
    };
    let mut entity =
        ctx.entity(platform, key, &def.name).reads(ctx.topics.state(&ctx.device.inverter), template);
    entity.unique_id = format!("{}_{}", entity.unique_id, "set");
    entity.command_topic = Some(ctx.topics.set(&ctx.device.inverter, key));
    entity.entity_category = Some("config");
    entity.icon = def.icon.clone();
    match form {
        WriteForm::Number => {
            (entity.min, entity.max, entity.step) = (write.min, write.max, write.step);
            entity.mode = Some("box");
            entity.unit_of_measurement = def.unit.clone();
            entity.device_class = def.device_class.clone();
        }
        WriteForm::Select => entity.options = Some(super::sensor::options_of(spec)),
        WriteForm::Switch => {
            entity = entity.on_off();
            entity.states = Some(super::entity::SwitchStates { state_on: "ON", state_off: "OFF" });
        }
        WriteForm::Time => {
            (entity.min, entity.max, entity.pattern) = (Some(5.0), Some(5.0), Some(HHMM));
        }
    }
    // Commands are never retained: a setting must not be replayed at the next connect.
    entity.retain = Some(false);
    Some(Component { id: id(key), platform, config: ctx.inverter_availability(entity) })
}
