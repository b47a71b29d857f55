//! The simulator on a pseudo-terminal: a stand-in for a USB RS485 adapter, so the serial code
//! path (opening a device, line settings, the silence between frames) runs in tests and on a
//! desk without hardware. The master side is the simulated inverter; the slave side's path is
//! what a client opens as its `device`.
//!
//! It must not decide anything about answers: that is [`serve_rtu`]'s, shared with RTU over TCP.

use std::sync::Arc;
use std::time::Duration;

use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

use super::Simulator;
use super::server::serve_rtu;

/// A pseudo-terminal pair: the simulator serves the master; clients open [`Pty::path`].
#[derive(Debug)]
pub struct Pty {
    master: SerialStream,
    /// Held open so the master never sees a hang-up between a client's close and its reopen.
    slave: SerialStream,
    path: String,
}

/// A pseudo-terminal that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// The system refused a new pseudo-terminal.
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(#[from] tokio_serial::Error),
    /// The slave side has no path to give to a client.
    #[error("the pseudo-terminal's slave side has no path")]
    NoPath,
}

impl Pty {
    /// Opens a new pair, raw, as serial ports are.
    ///
    /// # Errors
    /// [`PtyError`] when the system has no pseudo-terminal to give.
    pub fn open() -> Result<Self, PtyError> {
        let (master, slave) = SerialStream::pair()?;
        let path = slave.name().ok_or(PtyError::NoPath)?;
        Ok(Self { master, slave, path })
    }

    /// The device a client opens, e.g. `/dev/pts/3`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Serves `sim` as raw RTU on `pty` until `cancel`. A dropped "connection" (the drop fault)
/// is silence on a serial line: the request goes unanswered and serving goes on.
///
/// # Errors
/// An I/O error of the pseudo-terminal.
pub async fn serve_pty(pty: Pty, sim: Arc<Simulator>, cancel: CancellationToken) -> std::io::Result<()> {
    let Pty { master, slave, .. } = pty;
    let (mut read, mut write) = tokio::io::split(master);
    let served = async {
        loop {
            serve_rtu(&mut read, &mut write, &sim).await?;
            // Hung up on purpose, or the line went quiet: listen again, without spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let result = tokio::select! {
        () = cancel.cancelled() => Ok(()),
        result = served => result,
    };
    drop(slave);
    result
}
