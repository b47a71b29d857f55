//! Load control: which consumer loads (geyser, pool pump, EV charger) run, decided from the
//! battery, the sun and the weather, without flapping, each decision with its reason.
//!
//! [`Engine`] is the pure core ([`rules`] holds the rules it applies); [`adapter`] feeds it
//! polls, plug states and Home Assistant's switches, and sends its commands over MQTT.
pub(crate) mod adapter;
pub(crate) mod engine;
pub(crate) mod entities;

pub(crate) mod observation;
pub(crate) mod rules;
pub(crate) mod smooth;
pub(crate) mod view;

pub use engine::{Action, Decision, Engine};
pub use observation::{Observation, Outlook};

#[cfg(test)]
mod tests;
