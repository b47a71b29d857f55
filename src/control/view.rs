//! What load control shows outside MQTT: the consumers' last decisions, shared with the
//! Prometheus collector, which reads them at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::engine::Decision;

/// One consumer as the metrics show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerView {
    /// The plug's state, when known.
    pub on: Option<bool>,
    /// What the rules want.
    pub wanted: bool,
    /// Whether automatic control is on.
    pub automatic: bool,
    /// Time on today.
    pub runtime_today: Duration,
    /// The last decision's action (`start`, `stop`, `stay`, `wait`).
    pub action: &'static str,
    /// Why.
    pub reason: String,
    /// Commands sent to turn it on.
    pub commands_on: u64,
    /// Commands sent to turn it off.
    pub commands_off: u64,
}

/// The shared view: cheap to clone, locked only to copy in or out.
#[derive(Debug, Clone, Default)]
pub struct ControlView {
    inner: Arc<Mutex<(bool, BTreeMap<String, ConsumerView>)>>,
}

impl ControlView {
    /// Takes in a step's decisions and whether dry run is on.
    pub fn record(&self, decisions: &[Decision], dry_run: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0 = dry_run;
        for d in decisions {
            let view = inner.1.entry(d.consumer.clone()).or_default();
            view.on = d.state;
            view.wanted = d.want;
            view.automatic = d.automatic;
            view.runtime_today = d.runtime_today;
            view.action = d.action.as_str();
            view.reason.clone_from(&d.reason);
        }
    }

    /// Counts a command sent to `consumer`.
    pub fn sent(&self, consumer: &str, on: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let view = inner.1.entry(consumer.to_string()).or_default();
        if on {
            view.commands_on += 1;
        } else {
            view.commands_off += 1;
        }
    }

    /// Whether dry run is on, and every consumer, as of now.
    pub fn get(&self) -> (bool, BTreeMap<String, ConsumerView>) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
