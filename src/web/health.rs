//! `/healthz`: healthy when every inverter's last poll succeeded within three intervals.

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::board::StatusBoard;
use crate::poller::InverterStatus;

/// Polls that may be missed before the service counts as unhealthy.
pub(super) const GRACE_INTERVALS: u32 = 3;

/// The verdict and the JSON body that explains it.
#[derive(Debug, Clone)]
pub struct Health {
    /// True when every inverter is fine.
    pub healthy: bool,
    /// `{"status", "inverters": [{"name", "healthy", "last_success", "reason"}]}`.
    pub body: Json,
}

/// Judges every inverter at `now`.
pub fn health(board: &StatusBoard, now: DateTime<Utc>) -> Health {
    let started = board.started();
    let verdicts: Vec<(bool, Json)> =
        board.read(|views| views.iter().map(|v| judge(v.status, started, now)).collect());
    let healthy = verdicts.iter().all(|(ok, _)| *ok);
    let inverters: Vec<Json> = verdicts.into_iter().map(|(_, j)| j).collect();
    let status = if healthy { "ok" } else { "unhealthy" };
    Health { healthy, body: json!({ "status": status, "inverters": inverters }) }
}

fn judge(view: &InverterStatus, started: DateTime<Utc>, now: DateTime<Utc>) -> (bool, Json) {
    let grace = chrono::Duration::from_std(view.interval * GRACE_INTERVALS).unwrap_or(chrono::Duration::MAX);
    let (healthy, reason) = match view.last_success() {
        Some(last) if now - last <= grace => (true, "polled recently".to_string()),
        Some(last) => {
            (false, format!("no good poll for {}s: {}", (now - last).num_seconds(), last_error(view)))
        }
        None if now - started <= grace => (true, "starting".to_string()),
        None => (false, format!("no good poll since the start: {}", last_error(view))),
    };
    let last_success = view.last_success().map(|t| t.to_rfc3339());
    (healthy, json!({"name": view.name, "healthy": healthy, "last_success": last_success, "reason": reason}))
}

fn last_error(view: &InverterStatus) -> String {
    view.failure.as_ref().map_or_else(|| "no poll finished yet".to_string(), |f| f.error.clone())
}
