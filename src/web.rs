//! The HTTP side: `/metrics`, `/healthz`, `/api/snapshot` and a status page at `/`; and the
//! probe of `/healthz` behind `inverter-monitor healthcheck`.
//!
//! Who may use it is decided in front of the routes: `server` admits peers and bounds
//! connections, `auth` checks the `[http] token`.
//!
//! It holds no business logic: every answer is rendered from the [`StatusBoard`] and
//! [`Metrics`]. All links are relative, so the page works behind Home Assistant's ingress proxy.
//!
//! Who imports whom: `web` reads the poller's updates and the sinks' metrics; nothing outside
//! `web` (but the wiring in `service`) reads web state, so no sink depends on the web.

mod auth;
pub(crate) mod board;
mod flow;
mod health;
mod page;
mod probe;
mod sections;
mod server;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use health::{Health, health};
pub use probe::{ProbeError, probe};
pub use server::bind;

use crate::config::HttpConfig;
use crate::sinks::metrics::Metrics;
use board::StatusBoard;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The status of every inverter, with its power history.
    pub board: Arc<StatusBoard>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The weather, when `[weather]` is configured.
    pub weather: Option<crate::weather::WeatherHandle>,
    /// Load control's last decisions, when consumers are configured.
    pub control: Option<crate::control::view::ControlView>,
    /// This instance's shard, with `run --shard`.
    pub shard: Option<Arc<crate::config::Sharding>>,
}

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/snapshot", get(snapshot))
        .with_state(state)
}

/// Serves on `listener` until `cancel`, behind `http`'s peer list, token and limits.
pub async fn serve(listener: TcpListener, state: WebState, http: HttpConfig, cancel: CancellationToken) {
    warn_if_open(&http);
    let auth = auth::Auth::new(&http);
    let app = router(state).layer(axum::middleware::from_fn_with_state(auth, auth::check));
    server::run(listener, app, http, cancel).await;
}

/// One warning when anyone on the network can read the page: listening beyond loopback with
/// neither a token nor a peer list (the add-on's ingress port has the peer list).
fn warn_if_open(http: &HttpConfig) {
    if !http.listen.ip().is_loopback() && http.token.is_none() && http.allow.is_empty() {
        tracing::warn!(
            listen = %http.listen,
            "HTTP: the status page and /api are open to anyone who can reach this port; \
             set [http] token (or token_file) or [http] allow"
        );
    }
}

async fn metrics(State(state): State<WebState>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, state.metrics.render()).into_response()
}

async fn healthz(State(state): State<WebState>) -> Response {
    let Health { healthy, body } = health(&state.board, Utc::now());
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn snapshot(State(state): State<WebState>) -> Json<serde_json::Value> {
    let inverters = state.board.read(|views| {
        views
            .iter()
            .map(|view| {
                let (status, s) = (view.status, view.status.snapshot.as_deref());
                json!({
                    "name": status.name,
                    "time": s.map(|s| s.time),
                    "available": status.online,
                    "profile": s.map(profile_json),
                    "readings": s.map_or_else(|| json!([]), |s| json!(s.views())),
                })
            })
            .collect::<Vec<_>>()
    });
    Json(json!({ "inverters": inverters }))
}

/// The profile of a snapshot and how it was chosen: `{id, model, detected, device_type,
/// mppts, phases}`, the last three `null` when the device type was not read.
fn profile_json(snapshot: &crate::poller::Snapshot) -> serde_json::Value {
    let choice = &snapshot.choice;
    let device = choice.device.as_ref();
    json!({
        "id": snapshot.profile.id(),
        "model": snapshot.profile.header.model,
        "detected": choice.detected,
        "device_type": device.map(|d| d.code),
        "mppts": device.and_then(|d| d.mppts),
        "phases": device.and_then(|d| d.phases),
    })
}

async fn status_page(State(state): State<WebState>) -> Html<String> {
    let now = Utc::now();
    let health = health(&state.board, now);
    Html(page::compose(&health, &page_sections(&state, now)))
}

/// The page's sections, in order: the shard (when sharded), the total of several inverters,
/// one per inverter up to [`board::CARDS`] and a line counting the rest, then the weather, then
/// load control. A fleet's page stays one screenful whatever its size.
fn page_sections(state: &WebState, now: chrono::DateTime<Utc>) -> Vec<String> {
    let mut sections: Vec<String> = state.shard.as_deref().map(sections::shard).into_iter().collect();
    sections.extend(state.board.read(|views| {
        let cards = views.iter().take(board::CARDS).map(|view| page::inverter(view, now));
        let rest = page::the_rest(views.get(board::CARDS..).unwrap_or_default());
        page::total(&views).into_iter().chain(cards).chain(rest).collect::<Vec<_>>()
    }));
    sections.extend(state.weather.as_ref().map(|weather| sections::weather(weather, now)));
    sections.extend(state.control.as_ref().map(sections::control));
    sections
}
