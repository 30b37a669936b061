//! How the API answers when something is wrong: `{"error": "<kind>", "message": "<what to
//! change>"}` with a status that says whose move it is.
//!
//! | kind | status | meaning |
//! | --- | --- | --- |
//! | `invalid` | 400 | the request is wrong; the message says what to change; nothing was charged |
//! | `unauthorized` | 401 | no credentials; send an access token or sign in |
//! | `invalid_token` | 401 | the access token is forged, expired, or not ours; nothing was changed |
//! | `forbidden` | 403 | this installation refuses the request (local mode off loopback) |
//! | `not_found` | 404 | no such image, or not the caller's (we do not say which) |
//! | `conflict` | 409 | right request, wrong moment: a job with no refusal to appeal, a job called back, a session already of that name |
//! | `blocked` | 422 | the safety check or the model's filter refused the content |
//! | `busy` | 429 | too many jobs or the daily quota, or the model is busy: try later |
//! | `unavailable` | 503 | a service we need cannot be reached right now |
//! | `operator` | 500 | our side failed; the message is an apology, the details are in the log |
//!
//! This wraps the web app's one error type, [`WebError`] (which the pages render as HTML),
//! adding only what pages never need: the 401 with its `WWW-Authenticate` challenge.

use atelier_shared::Error as CoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::WebError;

/// An API error, as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What kind of problem: invalid, unauthorized, invalid_token, forbidden, not_found,
    /// conflict, blocked, busy, unavailable or operator.
    #[schema(example = "invalid")]
    pub error: String,
    /// What to change, in a sentence.
    #[schema(example = "The prompt is empty: describe the image you want")]
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    /// Anything the pages can fail with too.
    Web(WebError),
    /// Not signed in: no token and no session.
    SignInRequired(String),
    /// An access token we do not accept; the message says why.
    TokenRefused(String),
}

impl ApiError {
    /// A request the caller must change.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Web(WebError::BadRequest(message.into()))
    }
}

impl From<WebError> for ApiError {
    fn from(error: WebError) -> Self {
        Self::Web(error)
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        Self::Web(WebError::Core(error))
    }
}

impl From<atelier_shared::Invalid> for ApiError {
    fn from(invalid: atelier_shared::Invalid) -> Self {
        Self::Web(WebError::from(invalid))
    }
}

/// The challenge a 401 carries (RFC 6750): plain for a missing token, with the error for a
/// refused one. The description keeps to the characters the header allows.
fn challenge(refusal: Option<&str>) -> HeaderValue {
    let text = match refusal {
        None => "Bearer".to_string(),
        Some(reason) => {
            let description: String =
                reason.chars().filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\').collect();
            format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
        }
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            Self::SignInRequired(message) => {
                let body = ErrorBody { error: "unauthorized".into(), message };
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge(None))], Json(body))
                    .into_response();
            }
            Self::TokenRefused(message) => {
                let header_value = challenge(Some(&message));
                let body = ErrorBody { error: "invalid_token".into(), message: crate::error::capitalise(&message) };
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, header_value)], Json(body))
                    .into_response();
            }
            Self::Web(error) => {
                if let WebError::Core(core @ CoreError::Operator { .. }) = &error {
                    tracing::error!(error = %core, "an API request failed on our side: {core}");
                }
                let message = error.message();
                // Busy (too many jobs, the daily quota, a throttled model) is the caller's cue
                // to slow down, which 429 says; the pages show it as 503.
                if let WebError::Core(CoreError::Busy(_)) = &error {
                    (StatusCode::TOO_MANY_REQUESTS, "busy", message)
                } else {
                    let status = error.status();
                    let kind = match status {
                        StatusCode::BAD_REQUEST => "invalid",
                        StatusCode::UNAUTHORIZED => "unauthorized",
                        StatusCode::FORBIDDEN => "forbidden",
                        StatusCode::NOT_FOUND => "not_found",
                        StatusCode::CONFLICT => "conflict",
                        StatusCode::UNPROCESSABLE_ENTITY => "blocked",
                        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                        _ => "operator",
                    };
                    (status, kind, message)
                }
            }
        };
        (status, Json(ErrorBody { error: kind.into(), message })).into_response()
    }
}
