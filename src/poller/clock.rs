//! Clock sync in the poll loop: after a good poll, [`ClockSync`] decides from the inverter's
//! clock and the host's whether to set it; setting it is one FC16 of the clock registers
//! (22 to 24 on SG01LP1, 62 to 64 on the three-phase families), read first and read back,
//! over the poller's own transport like every write.

use chrono::{Datelike, Local, NaiveDateTime, Timelike};
use tokio::time::Instant;

use super::{Poller, Update, inverter_clock};
use crate::profile::Value;
use crate::transport::Transport;
use crate::writes::clock::{ClockSync, Step};
use crate::writes::exec;

/// Sets the inverter's clock after `update` when its [`ClockSync`] says so.
pub(super) async fn after_poll<T: Transport>(poller: &mut Poller, update: &Update, transport: &mut T) {
    let (Some(sync), Update::Polled { snapshot, .. }) = (poller.clock.as_mut(), update) else { return };
    let Some(inverter) = inverter_clock(&snapshot.profile, &snapshot.readings) else { return };
    let host = Local::now().fixed_offset();
    let drift = ClockSync::drift(inverter, host);
    match sync.step(inverter, host, Instant::now()) {
        Step::Keep => {}
        Step::GiveUp => {
            tracing::warn!(inverter = %poller.name, "the inverter went back to its own time twice after a clock sync (its logger may push one): clock sync stops");
        }
        Step::Set(time) => match set(snapshot, time, transport).await {
            Ok(read_back) => {
                sync.synced(*host.offset(), Instant::now());
                tracing::info!(inverter = %poller.name, drift_seconds = drift.round(), set = %time, read_back = %read_back, "inverter clock set");
            }
            Err(e) => {
                sync.attempted(*host.offset(), Instant::now());
                tracing::warn!(inverter = %poller.name, drift_seconds = drift.round(), "inverter clock not set (next try in an hour): {e}")
            }
        },
    }
}

/// Writes `time` into the profile's six clock readings at once; returns the read-back.
async fn set<T: Transport>(
    snapshot: &super::Snapshot,
    time: NaiveDateTime,
    transport: &mut T,
) -> Result<String, crate::writes::WriteError> {
    let profile = &snapshot.profile;
    let parts = [time.year() as u32, time.month(), time.day(), time.hour(), time.minute(), time.second()];
    let items: Vec<_> = profile
        .header
        .clock
        .iter()
        .zip(parts)
        .filter_map(|(key, part)| {
            Some((&profile.readings[profile.index_of(key)?], Value::Number(f64::from(part))))
        })
        .collect();
    let done = exec::execute_all(&items, transport).await?;
    Ok(done.read_back.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
}
