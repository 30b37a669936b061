//! The JSON API under `/api/`: everything the pages do, for programs.
//!
//! A caller is signed in one of two ways (see [`caller`]): an access token from the sign-in
//! provider (Cognito) in `Authorization: Bearer <token>`, verified by the core against the
//! provider's keys, or the browser's own session cookie, in which case state-changing
//! requests carry the `X-CSRF-Token` header like the pages' scripts do. In local mode the
//! local operator calls it without either.
//!
//! Every answer is JSON; errors are `{"error": "<kind>", "message": "<what to change>"}`
//! (see [`error`]). The OpenAPI 3.1 document at `/api/openapi.json` is derived from the
//! handlers and types themselves with `utoipa`, and `utoipa-axum` registers each handler in
//! the router and the document in one step, so the two cannot drift apart.
//!
//! As everywhere in the web app, handlers parse, call one core operation, and render: the
//! rules (what a valid request is, who may see which image) live in `atelier-shared`.

mod account;
mod caller;
mod contract;
mod error;
mod images;
mod jobs;
mod sessions;
mod settings;
mod studio;
mod views;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub use caller::AccessTokens;

/// The names the document gives the two ways of signing in.
const BEARER_SCHEME: &str = "access_token";
const SESSION_SCHEME: &str = "session_cookie";

/// The document's fixed parts; the paths and schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Atelier API",
        description = "Make, edit and keep images with Amazon Bedrock's models: everything the Atelier web \
                       app does, as JSON. Sign in with an access token from Atelier's sign-in provider (Cognito) as \
                       a Bearer token, or call it from a signed-in browser with the X-CSRF-Token header on \
                       state-changing requests. Errors are {\"error\": kind, \"message\": what to change}.",
        license(name = "MIT", identifier = "MIT")
    ),
    modifiers(&SignInSchemes),
    tags(
        (name = "account", description = "Who is calling, their usage and defaults, and the models on offer"),
        (name = "images", description = "The caller's gallery: listing, records, image bytes, deleting, sessions"),
        (name = "studio", description = "Generating, editing, checking prompts, describing images, chat"),
        (name = "jobs", description = "Generations and edits run as jobs: read, followed as events, called back"),
        (name = "document", description = "This OpenAPI document"),
    )
)]
struct ApiDocument;

/// Adds the two ways of signing in to the document's components.
struct SignInSchemes;

impl Modify for SignInSchemes {
    fn modify(&self, document: &mut OpenApiDocument) {
        let components = document.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "An access token from Atelier's sign-in provider (a Cognito access token: token_use \"access\", \
             client_id this app's client), verified against the provider's JWKS."
                .into(),
        );
        components.add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(bearer));
        let mut session = ApiKeyValue::new(crate::auth::SESSION_COOKIE);
        session.description = Some(
            "The browser's signed-in session; state-changing requests must also send the X-CSRF-Token header \
             with the value of the atelier_csrf cookie's token (pages expose it as data-csrf)."
                .into(),
        );
        components.add_security_scheme(SESSION_SCHEME, SecurityScheme::ApiKey(ApiKey::Cookie(session)));
    }
}

/// The API's routes and its document, registered together.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDocument::openapi())
        .routes(routes!(account::me))
        .routes(routes!(account::models))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .routes(routes!(images::list_images))
        .routes(routes!(images::image_detail, images::delete_image))
        .routes(routes!(images::image_file))
        .routes(routes!(images::image_thumbnail))
        .routes(routes!(images::publish_image, images::unpublish_image))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::rename_session, sessions::delete_session))
        .routes(routes!(studio::generate))
        .routes(routes!(studio::edit))
        .routes(routes!(jobs::job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::job_events))
        .routes(routes!(jobs::appeal_job))
        .routes(routes!(studio::check))
        .routes(routes!(studio::describe))
        .routes(routes!(studio::chat))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document as the handlers and types describe it, built once; what is served
/// adds this installation's rules to it ([`contract::document`]).
pub fn document() -> &'static OpenApiDocument {
    static DOCUMENT: OnceLock<OpenApiDocument> = OnceLock::new();
    DOCUMENT.get_or_init(|| api_routes().split_for_parts().1)
}

/// The JSON API, for [`crate::router`] to merge.
pub fn router() -> Router<AppState> {
    let (routes, _) = api_routes().split_for_parts();
    // Each app gets its own access-token verifier (with its cache of the provider's keys),
    // made on the first request that carries a token.
    routes.layer(Extension(AccessTokens::default())).layer(Extension(ServedDocument::default()))
}

/// The document this app serves, made on the first request for it (the rules are read from
/// the app's core, so each app has its own).
#[derive(Clone, Default)]
struct ServedDocument(Arc<OnceLock<Vec<u8>>>);

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
async fn openapi_json(State(state): State<AppState>, Extension(served): Extension<ServedDocument>) -> Response {
    let bytes = served
        .0
        .get_or_init(|| serde_json::to_vec(&contract::document(&state.core.request_contract())).unwrap_or_default());
    ([(axum::http::header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
}
