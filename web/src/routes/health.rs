//! Probes for the load balancer: `/healthz` says the process answers; `/readyz` says it can
//! do its work (the store is reachable and an engine is configured).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let engine = state.core.engine_kind().to_string();
    // How many images wait on local disk for the store (see shared::store::spool).
    let spool = state.core.spool_depth().map(|depth| json!({ "entries": depth.entries, "bytes": depth.bytes }));
    if state.core.is_shutting_down() {
        // Unready first, so the load balancer drains this task before it stops.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "stopping": true, "engine": engine, "spool": spool })),
        );
    }
    match state.core.check_store().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true, "store": "ok", "engine": engine, "spool": spool }))),
        Err(error) => {
            tracing::warn!(error = %error, "not ready: the store cannot be used: {error}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                // The probe is public: what failed (a bucket's name, a variable) is for the log.
                Json(json!({ "ready": false, "store": "unavailable", "engine": engine, "spool": spool })),
            )
        }
    }
}
