//! The console sink: a table per successful poll, a line per failure, on stdout.
//!
//! It owns only the printing. Stdout may be a pipe whose reader goes away (`demo | head`): then
//! the sink ends quietly and the supervisor stops the service cleanly, instead of the panic
//! `println!` would raise. What stdout takes (escape codes, width) is asked again for each table:
//! a resized window is followed.

use std::io::{ErrorKind, Write};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::poller::Update;
use crate::report;
use crate::report::terminal::Terminal;

/// Prints updates until `cancel`, the bus closing or stdout closing (all three `Ok`).
///
/// # Errors
/// Stdout cannot be written for another reason than a closed reader.
pub(super) async fn print_tables(
    mut updates: broadcast::Receiver<Update>,
    cancel: CancellationToken,
) -> Result<(), std::io::Error> {
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            update = updates.recv() => update,
        };
        let text = match update {
            Ok(Update::Polled { snapshot, .. }) => {
                let terminal = Terminal::stdout();
                // On a terminal the table redraws in place: a live view, not a scroll. Not with
                // NO_COLOR: it asks for plain text, and clearing is an escape code too.
                let prefix = if terminal.ansi { "\x1b[2J\x1b[H" } else { "" };
                format!("{prefix}{}", report::table(&snapshot, terminal))
            }
            Ok(Update::Failed { failure, .. }) => format!(
                "{}: poll failed ({} in a row): {}",
                failure.inverter, failure.consecutive_failures, failure.error
            ),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!("console skipped {n} updates");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        match print_line(&text) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
}

/// Writes `text` and a newline to stdout, and flushes: the reader sees each table whole.
fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}
