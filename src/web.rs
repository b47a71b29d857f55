//! The HTTP side: `/metrics`, `/healthz`, `/api/snapshot` and a status page at `/`; and the
//! probe of `/healthz` behind `inverter-monitor healthcheck`.
//!
//! It holds no business logic: every answer is rendered from [`Latest`] and [`Metrics`]. All
//! links are relative, so the page works behind Home Assistant's ingress proxy.

mod health;
mod page;
mod probe;
mod sections;

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

use crate::sinks::latest::Latest;
use crate::sinks::metrics::Metrics;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The latest state of every inverter.
    pub latest: Arc<Latest>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The weather, when `[weather]` is configured.
    pub weather: Option<crate::weather::WeatherHandle>,
    /// Load control's last decisions, when consumers are configured.
    pub control: Option<crate::control::view::ControlView>,
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

/// Serves on `listener` until `cancel`.
///
/// # Errors
/// The server failed.
pub async fn serve(listener: TcpListener, state: WebState, cancel: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(cancel.cancelled_owned()).await
}

async fn metrics(State(state): State<WebState>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, state.metrics.render()).into_response()
}

async fn healthz(State(state): State<WebState>) -> Response {
    let Health { healthy, body } = health(&state.latest, Utc::now());
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn snapshot(State(state): State<WebState>) -> Json<serde_json::Value> {
    let inverters = state.latest.read(|inverters| {
        inverters
            .values()
            .map(|view| match &view.snapshot {
                Some(s) => json!({"name": view.name, "time": s.time, "available": view.online, "readings": s.views()}),
                None => json!({"name": view.name, "time": null, "available": view.online, "readings": []}),
            })
            .collect::<Vec<_>>()
    });
    Json(json!({ "inverters": inverters }))
}

async fn status_page(State(state): State<WebState>) -> Html<String> {
    let now = Utc::now();
    let health = health(&state.latest, now);
    let mut html = state.latest.read(|inverters| page::render(inverters, &health, now));
    // The sections go before the closing links paragraph the page ends with.
    let at = html.rfind("<p><small><a ").unwrap_or(html.len());
    let mut extra = String::new();
    if let Some(weather) = &state.weather {
        sections::weather(&mut extra, weather, now);
    }
    if let Some(control) = &state.control {
        sections::control(&mut extra, control);
    }
    html.insert_str(at, &extra);
    Html(html)
}
