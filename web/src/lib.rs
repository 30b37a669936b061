//! Atelier's web app: sign-in, the gallery, and the studio for generating, editing, checking
//! prompts and chatting, all server-rendered over the shared core.
//!
//! # Layout
//! - [`router`] builds the whole app from an [`AppState`]; `routes/` has one module per area,
//!   each exporting `router()`.
//! - [`auth`] decides who is signed in; [`error`] turns core errors into pages; [`page`]
//!   holds the shared layout.
//! - [`metrics`] is the separate `/metrics` listener, kept off the public port.
//!
//! Handlers parse the request, call one [`atelier_shared::Atelier`] operation, and render.
//! No business rule lives here.

pub mod auth;
pub mod csrf;
pub mod error;
pub mod hosts;
pub mod metrics;
pub mod page;
mod routes;

use std::sync::Arc;

use atelier_shared::Atelier;
use atelier_shared::config::LocalSignIn;
use atelier_shared::engine::EngineKind;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub core: Atelier,
    pub site: Arc<Site>,
    pub auth: Arc<Auth>,
}

/// How visitors sign in.
pub struct Auth {
    /// The sign-in provider; `None` in local mode.
    pub sign_in: Option<atelier_shared::oidc::OidcSignIn>,
    /// Signs the session cookie; derived from `ATELIER_SESSION_SECRET`, the same on every replica.
    pub cookie_key: axum_extra::extract::cookie::Key,
    /// Whether cookies are marked `Secure` (the public URL is HTTPS).
    pub secure_cookies: bool,
}

/// Lets handlers take a `SignedCookieJar`, signed with the session key.
impl axum::extract::FromRef<AppState> for axum_extra::extract::cookie::Key {
    fn from_ref(state: &AppState) -> Self {
        state.auth.cookie_key.clone()
    }
}

impl Auth {
    /// Local mode: nobody signs in (the operator is signed in by `auth` on loopback), and the
    /// unused cookie key is random.
    pub fn local() -> Self {
        Self { sign_in: None, cookie_key: axum_extra::extract::cookie::Key::generate(), secure_cookies: false }
    }
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
    /// The names requests may be addressed to behind sign-in ([`hosts`]).
    pub accepted_hosts: Vec<String>,
    /// Where people reach the app, for the absolute links of public pages (Open Graph).
    pub public_url: url::Url,
}

/// The largest request body: an image and a mask, each up to the upload limit, plus fields.
const MAX_BODY_BYTES: usize = 2 * atelier_shared::images::MAX_UPLOAD_BYTES + 64 * 1024;

/// The Content-Security-Policy of every page: scripts and styles only from this site (no
/// inline scripts), no framing, forms posting only here or on to the sign-in provider.
/// Images also come from the store's presigned URLs, and sign-out redirects to the provider:
/// over HTTPS in production; a plain-HTTP installation (local, or the tests' stand-ins on
/// loopback) allows plain-HTTP origins for those two as well.
fn content_security_policy(secure: bool) -> HeaderValue {
    let elsewhere = if secure { "https:" } else { "https: http:" };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: {elsewhere}; \
         connect-src 'self'; form-action 'self' {elsewhere}; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// Builds the web app.
pub fn router(state: AppState) -> Router {
    let secure = state.auth.secure_cookies;
    Router::new()
        .merge(routes::health::router())
        .merge(routes::home::router())
        .merge(routes::studio::router())
        .merge(routes::jobs::router())
        .merge(routes::gallery::router())
        .merge(routes::public::router())
        .merge(routes::live_gallery::router())
        .merge(routes::settings::router())
        .merge(routes::edit::router())
        .merge(routes::check::router())
        .merge(routes::chat::router())
        .merge(routes::account::router())
        .merge(routes::api::router())
        .layer(axum::middleware::from_fn_with_state(secure, csrf::protect))
        .layer(axum::middleware::from_fn_with_state(hosts::HostRule::for_site(&state.site), hosts::only_our_own_names))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, content_security_policy(secure)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        // HSTS only when the public URL is HTTPS: on plain HTTP it would be ignored or wrong.
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            secure.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
        ))
        .layer(CompressionLayer::new())
        // Generation waits on the model, and uploads on slow links: generous, but bounded.
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(300)))
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
    // Through `into_make_service`, each connection shares the one router. Handed a `Router`
    // itself, axum clones it per connection and turns the clone into routes again, which
    // copies every route and layer: a heap profile of 250 jobs followed over their event
    // streams put about 400 kB per open connection there.
    axum::serve(listener, router(state).into_make_service()).with_graceful_shutdown(shutdown).await
}
