//! The metrics listener: `GET /metrics` in the OpenMetrics text format, on an address of its
//! own (`ATELIER_METRICS_ADDRESS`), never on the web app's public port. Only the scraper
//! inside the network reaches it; the load balancer and CloudFront never route to it.

use std::future::Future;

use atelier_shared::Atelier;
use atelier_shared::metrics::CONTENT_TYPE;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The metrics app: `/metrics` and nothing else.
pub fn router(core: Atelier) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(core)
}

/// Serves [`router`] on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Atelier,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // One router shared by every connection (see `crate::serve`).
    axum::serve(listener, router(core).into_make_service()).with_graceful_shutdown(shutdown).await
}

async fn scrape(State(core): State<Atelier>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], core.metrics().render())
}
