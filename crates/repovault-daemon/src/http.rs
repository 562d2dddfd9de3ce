//! The HTTP endpoints: `/healthz` (the process answers), `/readyz` (started and not stopping),
//! `/metrics` (OpenMetrics), `/api/status` (JSON) and `/` (the status page). Read-only: nothing
//! here changes what the daemon does, so the server needs no authentication — but it shows
//! repository names and errors, so it listens on loopback unless told otherwise.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::service::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .with_state(shared)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else if s.stopping.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            crate::metrics::OPENMETRICS_CONTENT_TYPE,
        )],
        s.metrics.openmetrics(),
    )
        .into_response()
}

async fn status(State(s): State<Arc<Shared>>) -> Json<crate::status::Status> {
    Json(s.status())
}

async fn page(State(s): State<Arc<Shared>>) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Everything is inline; nothing may be loaded from anywhere else.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        Html(crate::page::render(&s.status())),
    )
        .into_response()
}
