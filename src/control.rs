//! Load control: which consumer loads (geyser, pool pump, EV charger) run, decided from the
//! battery, the sun and the weather, without flapping, each decision with its reason.
//!
//! [`Engine`] is the pure core ([`rules`] holds the rules it applies); [`adapter`] feeds it
//! polls, plug states and Home Assistant's switches, and sends its commands over MQTT.
pub mod adapter;
pub mod engine;
pub mod entities;

pub mod observation;
pub mod rules;
pub mod smooth;
pub mod view;

pub use engine::{Action, Decision, Engine};
pub use observation::{Observation, Outlook};

#[cfg(test)]
mod tests;
