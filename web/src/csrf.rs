//! Protection against cross-site request forgery, on every state-changing request.
//!
//! Double-submit tokens: each visitor gets a random token in a `SameSite=Strict`, HttpOnly
//! cookie, and every form carries the same token back (a hidden `csrf` field in URL-encoded
//! forms, `?csrf=` in the action of multipart forms, or the `X-CSRF-Token` header from
//! scripts). A page on another site can make a browser send the cookie but cannot read it to
//! put it in the form, so its posts are refused. Templates add the field with [`field`] (or
//! [`action`] for multipart forms). Requests with a Bearer token (the JSON API)
//! carry no ambient credentials and need no token. Browsers that say a post is cross-site
//! (`Sec-Fetch-Site`) are refused before that.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use maud::{Markup, html};
use rand::RngCore as _;

use crate::error::WebError;

pub const COOKIE: &str = "atelier_csrf";
/// The cookie's name over HTTPS: a `__Host-` cookie must be `Secure`, for `Path=/` and no
/// `Domain`, so neither plain HTTP nor a sibling subdomain can plant one.
pub const SECURE_COOKIE: &str = "__Host-atelier_csrf";
pub const FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";

/// The largest URL-encoded form the check reads to find the token (forms with uploads are
/// multipart and carry the token in the URL instead).
const MAX_FORM_BYTES: usize = 256 * 1024;

tokio::task_local! {
    /// The token of the request being handled, so any template can put it in its forms
    /// without every page function passing it along.
    static CURRENT: String;
}

/// The hidden field every URL-encoded form includes, with this request's token.
pub fn field() -> Markup {
    let token = CURRENT.try_with(String::clone).unwrap_or_default();
    html! { input type="hidden" name=(FIELD) value=(token); }
}

/// A form action carrying this request's token, for multipart forms (whose bodies the check
/// does not read).
pub fn action(path: &str) -> String {
    let token = CURRENT.try_with(String::clone).unwrap_or_default();
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{FIELD}={token}")
}

/// This visitor's token, for scripts that send it in the `X-CSRF-Token` header (pages put it
/// in a `data-csrf` attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or_else(|| WebError::Unavailable("the request-forgery check is not installed".into()))
    }
}

fn new_token() -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

fn cookie_token(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == FIELD).map(|(_, value)| value.into_owned())
}

/// A refusal in the form the client reads: JSON for the API, a page for browsers.
fn refused(path: &str, message: &str) -> Response {
    if path.starts_with("/api/") {
        let body = serde_json::json!({ "error": "forbidden", "message": message });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    (StatusCode::FORBIDDEN, crate::page::bare("Refused", crate::page::error_notice(Some(message)))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed a byte at a time.
fn same(left: &str, right: &str) -> bool {
    left.len() == right.len() && left.bytes().zip(right.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The middleware: hands every request its token, sets the cookie when it is new, and refuses
/// state-changing requests whose token is missing or does not match.
pub async fn protect(State(secure): State<bool>, mut request: Request, next: Next) -> Response {
    let state_changing = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing {
        let fetch_site = request.headers().get("sec-fetch-site").and_then(|value| value.to_str().ok());
        if matches!(fetch_site, Some("cross-site" | "same-site")) {
            return refused(
                request.uri().path(),
                "This form was sent from another site, so it was refused. Use the form on this site.",
            );
        }
    }
    // A Bearer token stands instead of the form token only on the API, whose callers with a
    // token are never signed in by a cookie; a page route signs people in by cookie alone.
    let bearer = request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("Bearer "));
    let existing = cookie_token(&request, if secure { SECURE_COOKIE } else { COOKIE });
    if state_changing && !bearer {
        let Some(expected) = existing.as_deref() else {
            return refused(
                request.uri().path(),
                "This form has expired (your browser sent no security cookie). Reload the page and try again.",
            );
        };
        let mut given = request
            .headers()
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .map(String::from)
            .or_else(|| query_token(&request));
        let url_encoded = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if given.is_none() && url_encoded {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
            };
            given = form_urlencoded::parse(&bytes).find(|(name, _)| name == FIELD).map(|(_, value)| value.into_owned());
            request = Request::from_parts(parts, Body::from(bytes));
        }
        match given {
            Some(given) if same(&given, expected) => {}
            _ => {
                return refused(
                    request.uri().path(),
                    "This form's security token is missing or wrong, so nothing was changed. Reload the page and \
                     try again.",
                );
            }
        }
    }
    let token = existing.clone().unwrap_or_else(new_token);
    request.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = CURRENT.scope(token.clone(), next.run(request)).await;
    let replaced = response.headers().get_all(header::SET_COOKIE).iter().any(|cookie| {
        cookie.to_str().is_ok_and(|cookie| cookie.starts_with(COOKIE) || cookie.starts_with(SECURE_COOKIE))
    });
    // A response shared caches may keep (a public page) is the same for everyone: no cookie.
    let public = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("public"));
    if existing.is_none() && !replaced && !public {
        response.headers_mut().append(header::SET_COOKIE, token_cookie(&token, secure));
    }
    response
}

/// The `Set-Cookie` that gives a browser `token`.
fn token_cookie(token: &str, secure: bool) -> HeaderValue {
    let cookie = match secure {
        true => format!("{SECURE_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict"),
        false => format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("atelier_csrf=; Path=/"))
}

/// A fresh token's `Set-Cookie`, for a response that signs someone in: the token a visitor had
/// before signing in (which a page elsewhere may have planted or read) does not carry over.
pub fn rotated_cookie(secure: bool) -> HeaderValue {
    token_cookie(&new_token(), secure)
}
