//! The HTTP server's accept loop: who may connect, how many at once, and how long a
//! connection may keep the server waiting. `axum::serve` has none of these limits.
//!
//! - A peer outside `[http] allow` is closed at once, before a byte is read (the add-on lets
//!   only the Supervisor's ingress proxy in, as Home Assistant add-ons do).
//! - At most `max_connections` are open. When a new one arrives and all are taken, the one
//!   idle the longest (between requests, or still sending its first request head) is closed
//!   for it: idle or slowly-sending connections cannot starve a client that asks at once,
//!   while a connection being answered is never cut. Only when every connection is being
//!   answered is the new one closed.
//! - hyper closes a connection whose request head is not complete within `header_timeout`,
//!   counted from the start or the previous answer (so this also ends idle keep-alive), and
//!   answers 431 to a head larger than `max_header_bytes`.
//!
//! It knows nothing of routes or tokens: the [`Router`] it is given brings those. Each request
//! carries its peer's address as axum's `ConnectInfo<SocketAddr>`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpConfig;

/// hyper's smallest read buffer; a smaller header limit is checked on the parsed head.
const MIN_READ_BUFFER: usize = 8192;
/// Connections the kernel queues before the loop accepts them. std's 128 overflows when a
/// burst of connections arrives at once; the dropped handshakes then come back in waves a
/// second later and delay a real client's as much.
const ACCEPT_BACKLOG: u32 = 1024;
/// How long an open connection may take to finish its request at shutdown: an answer in
/// progress ends in time, a client still sending its head (up to `header_timeout`) must not
/// hold the service's shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Listens on `addr` with a backlog that absorbs a burst of connections. Must be called
/// inside the runtime.
///
/// # Errors
/// The address cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std does: a restarted service may bind while the old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `app` on `listener` under `http`'s peer list and limits until `cancel`, then lets
/// the open connections finish their answers (for at most [`SHUTDOWN_GRACE`]).
pub(super) async fn run(listener: TcpListener, app: Router, http: HttpConfig, cancel: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout)
        .keep_alive(true)
        .max_buf_size(http.max_header_bytes.max(MIN_READ_BUFFER))
        .max_header_size(http.max_header_bytes);
    let slots = Arc::new(Slots::new(http.max_connections));
    let refusals = Refusals::default();
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("HTTP: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if !http.allows(peer.ip()) {
            refusals.note(peer);
            continue;
        }
        let Some(slot) = slots.admit() else {
            tracing::debug!(%peer, "HTTP: every connection is being answered; closed the new one");
            continue;
        };
        tracker.spawn(connection(builder.clone(), stream, peer, app.clone(), slot, cancel.clone()));
    }
    tracker.close();
    tracker.wait().await;
}

/// Drives one connection until it ends, is evicted, or the server shuts down.
async fn connection(
    builder: http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Slot,
    shutdown: CancellationToken,
) {
    let service = Tracked { app: TowerToHyperService::new(app), conn: slot.conn.clone(), peer };
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => ended(result),
        // Dropping the connection closes the socket.
        () = slot.conn.evict.cancelled() => tracing::debug!("HTTP: closed an idle connection for a new one"),
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
                Ok(result) => ended(result),
                Err(_) => tracing::debug!("HTTP: closed a connection still sending its request at shutdown"),
            }
        }
    }
}

/// Logs how a connection ended, at debug: timeouts and resets are the clients' business.
fn ended(result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!("HTTP: connection ended: {e}");
    }
}

/// Logs the first refused peer as a warning (a misconfigured `allow` shows), the rest at debug
/// (a scanner must not fill the log).
#[derive(Debug, Default)]
struct Refusals(AtomicBool);

impl Refusals {
    fn note(&self, peer: SocketAddr) {
        if self.0.swap(true, Ordering::Relaxed) {
            tracing::debug!(%peer, "HTTP: refused a peer not in [http] allow");
        } else {
            tracing::warn!(%peer, "HTTP: refused a peer not in [http] allow; further refusals are logged at debug");
        }
    }
}

/// The open connections, and which may be closed for a new one.
#[derive(Debug)]
struct Slots {
    max: usize,
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// One open connection, as [`Slots`] sees it.
#[derive(Debug)]
struct Conn {
    /// Requests being answered now.
    busy: AtomicUsize,
    /// When it opened or last finished an answer, in ms since `epoch`.
    last: AtomicU64,
    /// [`Slots::epoch`].
    epoch: Instant,
    /// Cancelled to close it for a newer one.
    evict: CancellationToken,
}

/// A connection's place in [`Slots`], given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    conn: Arc<Conn>,
}

impl Slots {
    fn new(max: usize) -> Self {
        Self { max, epoch: Instant::now(), next: AtomicU64::new(0), open: Mutex::default() }
    }

    /// A slot for a new connection, evicting the longest-idle one when all are taken; `None`
    /// when every open connection is being answered.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.max {
            let idle = open.iter().filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0);
            let (&victim, _) = idle.min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))?;
            if let Some(conn) = open.remove(&victim) {
                conn.evict.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            last: AtomicU64::new(millis_since(self.epoch)),
            epoch: self.epoch,
            evict: CancellationToken::new(),
        });
        open.insert(id, conn.clone());
        Some(Slot { slots: self.clone(), id, conn })
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// The router, marking its connection busy while a request is answered and telling each
/// request its peer (as axum's `ConnectInfo`).
#[derive(Clone)]
struct Tracked {
    app: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    peer: SocketAddr,
}

/// Marks a connection busy from its creation to its drop, which also happens when the client
/// leaves mid-answer.
struct Busy(Arc<Conn>);

impl Busy {
    fn start(conn: Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last.store(millis_since(self.0.epoch), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        let busy = Busy::start(self.conn.clone());
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let answer = self.app.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(busy);
            response
        })
    }
}
