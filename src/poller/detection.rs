//! The poller's side of detection: one read of registers 0 to 22 over the inverter's own link,
//! handed to [`crate::profile::detect`] for the decision.
//!
//! With `profile = "auto"` the poller has no profile until this succeeds: each poll first tries
//! it, and a failure (the logger silent, the read refused, an unknown code) is that poll's
//! failure, retried at the next poll behind the link's usual backoff, never a silent default.
//! Once it succeeded it is never repeated, reconnects included. A named profile is checked
//! once against the device type and a disagreement logged, naming both; it still wins.

use std::sync::Arc;

use crate::profile::detect::{DETECT_COUNT, DETECT_START};
use crate::profile::{Choice, DetectError, DeviceType, Profile, Profiles};

use crate::protocol::{Exception, Request, Response};
use crate::transport::{self, Transport};

/// Why detection gave no profile.
#[derive(Debug, thiserror::Error)]
pub enum DetectFailure {
    /// The logger could not be asked.
    #[error("reading the device type (registers 0-22) failed: {0}")]
    Transport(transport::Error),
    /// The inverter refused the read.
    #[error("the inverter refused the device-type read (registers 0-22): {0}")]
    Refused(Exception),
    /// No profile fits the answer.
    #[error(transparent)]
    Choice(#[from] DetectError),
}

/// Reads the device type over `transport`: registers 0 to 22 in one read, or, where the
/// logger takes fewer than 23 registers at once (`max_read`), register 0 and then the one
/// layout word its code names. A refused layout read leaves the variant facts unknown.
pub(super) async fn read_device_type<T: Transport>(
    transport: &mut T,
    max_read: u16,
) -> Result<DeviceType, DetectFailure> {
    if max_read >= DETECT_COUNT {
        let values = read(transport, DETECT_START, DETECT_COUNT).await?;
        return Ok(DeviceType::from_registers(DETECT_START, &values)?);
    }
    let code = read(transport, DETECT_START, 1).await?;
    let code = DeviceType::from_registers(DETECT_START, &code)?;
    let layout = code.layout_register();
    match read(transport, layout, 1).await {
        Ok(word) => {
            let mut values = vec![0; usize::from(layout) + 1];
            values[0] = code.code;
            values[usize::from(layout)] = word.first().copied().unwrap_or(0);
            Ok(DeviceType::from_registers(DETECT_START, &values)?)
        }
        Err(DetectFailure::Refused(_)) => Ok(code),
        Err(e) => Err(e),
    }
}

/// One read of `count` holding registers from `addr`.
async fn read<T: Transport>(transport: &mut T, addr: u16, count: u16) -> Result<Vec<u16>, DetectFailure> {
    match transport.call(&Request::ReadHolding { addr, count }).await.map_err(DetectFailure::Transport)? {
        Ok(Response::Registers(values)) => Ok(values),
        Ok(Response::Written { .. }) => Err(DetectError::NoDeviceType.into()),
        Err(exception) => Err(DetectFailure::Refused(exception)),
    }
}

/// Detects the profile of inverter `name`, logging the choice.
pub(super) async fn detect<T: Transport>(
    name: &str,
    profiles: &Profiles,
    transport: &mut T,
    max_read: u16,
) -> Result<(Arc<Profile>, Choice), DetectFailure> {
    let device = read_device_type(transport, max_read).await?;
    let profile = profiles.detect(&device)?;
    let choice = Choice { profile: profile.id().to_string(), detected: true, device: Some(device) };
    tracing::info!(inverter = %name, profile = profile.id(), "profile {}", choice.describe());
    Ok((profile, choice))
}

/// Checks a named profile against the device type, once; returns what the inverter said.
/// Only a transport failure is an error (the poll would fail on it anyway): a refused read or
/// an odd code just leaves the named profile unchecked.
pub(super) async fn check<T: Transport>(
    name: &str,
    profile: &Profile,
    profiles: &Profiles,
    transport: &mut T,
    max_read: u16,
) -> Result<Option<DeviceType>, transport::Error> {
    let device = match read_device_type(transport, max_read).await {
        Ok(device) => device,
        Err(DetectFailure::Transport(e)) => return Err(e),
        Err(e) => {
            tracing::debug!(inverter = %name, profile = profile.id(), "device type not checked: {e}");
            return Ok(None);
        }
    };
    if !profile.header.device_types.is_empty() && !profile.header.device_types.contains(&device.code) {
        let fits = match profiles.detect(&device) {
            Ok(fit) => format!("which is `{}`", fit.id()),
            Err(e) => format!("({e})"),
        };
        tracing::warn!(
            inverter = %name,
            profile = profile.id(),
            code = device.code,
            "the configured profile `{}` does not list {device}, {fits}; using `{}` as configured",
            profile.id(),
            profile.id()
        );
    }
    Ok(Some(device))
}

#[cfg(test)]
mod tests;
