//! The typed entity config every discovery payload is made of: one struct whose optional
//! fields are left out of the JSON when unset, and a builder to fill them.
//!
//! Every entity of every device (inverters, weather, load control) is an [`Entity`]; a new
//! platform (number, select, time, button) adds a [`Platform`] variant and the few fields it
//! needs (`min`, `max`, `step`, `options` for a select, …) here, and nowhere else.

use serde::Serialize;

/// The Home Assistant MQTT platform of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// A read-only value.
    Sensor,
    /// A read-only on/off value.
    BinarySensor,
    /// An on/off value Home Assistant can command.
    Switch,
    /// A number Home Assistant can set, within a range.
    Number,
    /// One of a list of options Home Assistant can pick.
    Select,
    /// A text Home Assistant can set (our time-of-day settings, `HH:MM`).
    Text,
}

impl Platform {
    /// As Home Assistant spells it: in `p`, in topics and in entity ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sensor => "sensor",
            Self::BinarySensor => "binary_sensor",
            Self::Switch => "switch",
            Self::Number => "number",
            Self::Select => "select",
            Self::Text => "text",
        }
    }
}

/// One topic an entity's availability follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    /// Carries `online` or `offline`.
    pub topic: String,
}

/// One entity's config as Home Assistant reads it, without `p` and without the device block.
/// Field order is the order of the JSON keys; Home Assistant does not care about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entity {
    /// The entity's own name (`has_entity_name`: the device name is not repeated).
    pub name: String,
    /// `<identity>_<key>`: unique ids are forever.
    pub unique_id: String,
    /// `<platform>.<device>_<key>`, the id Home Assistant suggests.
    pub default_entity_id: String,
    /// Where the entity's state JSON is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// Where Home Assistant sends commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_topic: Option<String>,
    /// Picks the value out of the state JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    /// Where the attributes JSON is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_attributes_topic: Option<String>,
    /// Picks the attributes out of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_attributes_template: Option<String>,
    /// The unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    /// What the value measures (`power`, `energy`, `enum`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    /// `measurement`, `total` or `total_increasing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<&'static str>,
    /// The texts of an enum sensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// Decimals shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_display_precision: Option<u32>,
    /// An `mdi:` icon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// `diagnostic` or `config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<&'static str>,
    /// Shown until a user hides it (`false`: hidden until a user wants it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_by_default: Option<bool>,
    /// What an on/off entity reads or sends as on and off.
    #[serde(flatten)]
    pub payloads: Option<OnOff>,
    /// What a switch reads as its state.
    #[serde(flatten)]
    pub states: Option<SwitchStates>,
    /// A number's or a text's (length) least value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// A number's or a text's (length) largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A number's step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// A number's input: `box` or `slider`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// The regular expression a text must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<&'static str>,
    /// Whether Home Assistant retains its commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    /// The topics the entity's availability follows.
    pub availability: Vec<Availability>,
    /// `all`: available only while every availability topic says online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_mode: Option<&'static str>,
}

/// `payload_on` / `payload_off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OnOff {
    /// Means on.
    pub payload_on: &'static str,
    /// Means off.
    pub payload_off: &'static str,
}

/// `state_on` / `state_off` of a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchStates {
    /// Means on.
    pub state_on: &'static str,
    /// Means off.
    pub state_off: &'static str,
}

/// `ON` and `OFF`, what every on/off entity of ours uses.
pub(crate) const ON_OFF: OnOff = OnOff { payload_on: "ON", payload_off: "OFF" };

impl Entity {
    /// Reads its state at `template` in the JSON on `topic`.
    pub fn reads(mut self, topic: String, template: String) -> Self {
        self.state_topic = Some(topic);
        self.value_template = Some(template);
        self
    }

    /// Available while every one of `topics` says online.
    pub fn available_with(mut self, topics: Vec<String>) -> Self {
        self.availability = topics.into_iter().map(|topic| Availability { topic }).collect();
        self
    }

    /// Available while all of `topics` say online, stated as `availability_mode: all`.
    pub fn available_with_all(self, topics: Vec<String>) -> Self {
        Self { availability_mode: Some("all"), ..self.available_with(topics) }
    }

    /// Measured in `unit`.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit_of_measurement = Some(unit.to_string());
        self
    }

    /// Of device class `class`.
    pub fn class(mut self, class: &str) -> Self {
        self.device_class = Some(class.to_string());
        self
    }

    /// Of state class `class`.
    pub fn state_class(mut self, class: &'static str) -> Self {
        self.state_class = Some(class);
        self
    }

    /// With icon `icon`.
    pub fn icon(mut self, icon: &str) -> Self {
        self.icon = Some(icon.to_string());
        self
    }

    /// In entity category `category`.
    pub fn category(mut self, category: &'static str) -> Self {
        self.entity_category = Some(category);
        self
    }

    /// Reads `ON` and `OFF`.
    pub fn on_off(mut self) -> Self {
        self.payloads = Some(ON_OFF);
        self
    }

    /// A switch commanded on `topic` with retained `ON` / `OFF`, reading `ON` / `OFF` back.
    pub fn switch(mut self, topic: String) -> Self {
        self.command_topic = Some(topic);
        self.states = Some(SwitchStates { state_on: "ON", state_off: "OFF" });
        // Retained commands survive a restart of this service even without its data dir.
        self.retain = Some(true);
        self.on_off()
    }
}
