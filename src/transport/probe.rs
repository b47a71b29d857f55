//! `protocol = "auto"`'s probe: one read of register 0 on a throwaway connection, in one
//! envelope, and a verdict. It also keeps the first bytes the logger sent, so a logger that
//! answers in the AT text protocol (`AT+YZCMPVER=...`, firmware without Modbus on TCP) is named
//! for what it is instead of timing out.
//!
//! It must not keep a connection: [`Link`](super::Link) opens the real one for the wire found.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::modbus_tcp::MbapClient;
use super::rtu::RtuClient;
use super::solarman::V5Client;
use super::{Counters, Error, Wire};
use crate::protocol::Request;

/// How many bytes of an answer are kept to tell what spoke.
const KEEP: usize = 64;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The envelope was understood: an answer, an exception, a logger error, or a V5 frame
    /// naming another serial.
    Spoken,
    /// Silence, a hang-up or bytes of another envelope.
    No,
    /// The AT text protocol: its first line.
    AtText(String),
}

/// Reads register 0 of `slave` over `stream` in `wire`'s envelope, waiting at most `wait`.
pub(super) async fn probe(stream: TcpStream, wire: &Wire, slave: u8, seed: u16, wait: Duration) -> Verdict {
    let tap = Tap { inner: stream, seen: Vec::new() };
    let request = Request::ReadHolding { addr: 0, count: 1 };
    let mut counters = Counters::default();
    let (answered, seen) = match wire {
        Wire::Solarman { serial } => {
            let mut client = V5Client::new(tap, *serial, slave, seed as u8);
            let answered = timeout(wait, client.call(&request, &mut counters)).await;
            (answered, client.into_inner().seen)
        }
        Wire::ModbusTcp => {
            let mut client = MbapClient::new(tap, slave, seed);
            let answered = timeout(wait, client.call(&request, &mut counters)).await;
            (answered, client.into_inner().seen)
        }
        Wire::RtuOverTcp => {
            let mut client = RtuClient::new(tap, slave, Duration::ZERO);
            let answered = timeout(wait, client.call(&request, &mut counters)).await;
            (answered, client.into_inner().seen)
        }
        Wire::Serial(_) | Wire::Auto { .. } => return Verdict::No,
    };
    match answered {
        Ok(Ok(_)) | Ok(Err(Error::Protocol(crate::protocol::Error::SerialMismatch { .. }))) => {
            Verdict::Spoken
        }
        _ if seen.starts_with(b"AT+") || seen.starts_with(b"+ok") => {
            let line = seen.split(|b| *b == b'\r' || *b == b'\n').next().unwrap_or_default();
            Verdict::AtText(String::from_utf8_lossy(line).into_owned())
        }
        Ok(Err(e)) => {
            tracing::debug!(?wire, "auto: no: {e}");
            Verdict::No
        }
        Err(_) => Verdict::No,
    }
}

/// A stream that keeps a copy of the first [`KEEP`] bytes it reads.
#[derive(Debug)]
pub(super) struct Tap<S> {
    inner: S,
    seen: Vec<u8>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let room = KEEP.saturating_sub(self.seen.len());
            let new = &buf.filled()[before..];
            let keep = new.len().min(room);
            self.seen.extend_from_slice(&new[..keep]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
