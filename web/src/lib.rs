//! Atelier's web app: sign-in, the gallery, and the studio for generating, editing, checking
//! prompts and chatting, all server-rendered over the shared core.
//!
//! # Layout
//! - [`router`] builds the whole app from an [`AppState`]; `routes/` has one module per area,
//!   each exporting `router()`.
//! - [`auth`] decides who is signed in; [`error`] turns core errors into pages; [`page`]
//!   holds the shared layout.
//!
//! Handlers parse the request, call one [`atelier_shared::Atelier`] operation, and render.
//! No business rule lives here.

pub mod auth;
pub mod csrf;
pub mod error;
pub mod page;
mod routes;

use std::sync::Arc;

use atelier_shared::Atelier;
use atelier_shared::config::{EngineKind, LocalSignIn};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub core: Atelier,
    pub site: Arc<Site>,
}

/// Facts about this installation that pages show.
#[derive(Debug, Clone)]
pub struct Site {
    /// Which engine draws images; the demo engine puts a banner on every page.
    pub engine: EngineKind,
    /// Why that engine was chosen, for the banner.
    pub engine_reason: String,
    /// Whether visitors are signed in as the local operator.
    pub local_sign_in: LocalSignIn,
}

/// The largest request body: an image and a mask, each up to the upload limit, plus fields.
const MAX_BODY_BYTES: usize = 2 * atelier_shared::images::MAX_UPLOAD_BYTES + 64 * 1024;

/// Builds the web app.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .merge(routes::home::router())
        .merge(routes::studio::router())
        .merge(routes::gallery::router())
        .merge(routes::edit::router())
        .merge(routes::check::router())
        .merge(routes::chat::router())
        .layer(axum::middleware::from_fn(csrf::protect))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the web app on `listener` until `shutdown` completes, then finishes the requests
/// in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
