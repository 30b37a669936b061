//! Who is signed in.
//!
//! With a sign-in provider configured, people sign in through it (OpenID Connect, the core's
//! [`atelier_shared::oidc::OidcSignIn`]) and the browser keeps a signed, HttpOnly,
//! `SameSite=Lax` session cookie (`Secure` behind TLS) whose session lives in the store, so
//! it survives restarts and works on every replica.
//!
//! In local mode (no sign-in provider, listening on loopback) everyone who can reach the app
//! is the operator of this machine, signed in without a password. Off loopback that would
//! hand the operator's gallery to the network, so it is refused outright.

use atelier_shared::Actor;
use atelier_shared::config::LocalSignIn;
use atelier_shared::gallery::{Origin, Owner};
use atelier_shared::oidc::SignedInUser;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};

use crate::AppState;
use crate::error::WebError;

/// The session cookie.
pub const SESSION_COOKIE: &str = "atelier_session";
/// The cookie that carries a sign-in in progress, encrypted, in the browser that started it
/// (see [`atelier_shared::oidc::HeldSignIn`]); over HTTPS it is a `__Host-` cookie, which
/// plain HTTP or a sibling subdomain cannot plant.
pub fn sign_in_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-atelier_sign_in" } else { "atelier_sign_in" }
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub owner: Owner,
    /// A name to show in the header.
    pub display_name: String,
    /// The account at the sign-in provider; `None` for the local operator.
    pub account: Option<SignedInUser>,
}

impl SignedIn {
    /// The user as the core sees them when they act through the web app.
    pub fn actor(&self) -> Actor {
        Actor::new(self.owner.clone(), Origin::Web)
    }
}

/// A cookie as this app sets them: HttpOnly, for the whole site, `Secure` behind TLS.
pub fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        // Lax, not Strict: the provider's redirect back to the callback is a cross-site
        // navigation that must carry the sign-in cookie.
        .same_site(SameSite::Lax)
        .secure(state.auth.secure_cookies)
        .build()
}

/// The signed-in visitor, or `None`: for pages that show something either way.
pub async fn current_user(parts: &mut Parts, state: &AppState) -> Result<Option<SignedIn>, WebError> {
    match state.site.local_sign_in {
        LocalSignIn::Allowed => {
            Ok(Some(SignedIn { owner: Owner::local_operator(), display_name: "Local operator".into(), account: None }))
        }
        LocalSignIn::RefusedOffLoopback(bind) => Err(WebError::Forbidden(format!(
            "This Atelier listens on {bind}, beyond this machine, and has no sign-in provider configured, so it \
             will not sign anyone in without a password. The operator should set ATELIER_OIDC_ISSUER and \
             ATELIER_OIDC_CLIENT_ID, or listen on 127.0.0.1."
        ))),
        LocalSignIn::NotNeeded => {
            let jar = SignedCookieJar::from_headers(&parts.headers, state.auth.cookie_key.clone());
            let Some(token) = jar.get(SESSION_COOKIE) else { return Ok(None) };
            let Some(session) = state.core.find_session(token.value()).await? else { return Ok(None) };
            // A banned person gets no page and no API call, whatever their session.
            state.core.admit_person(&session.user.owner).await?;
            Ok(Some(SignedIn {
                owner: session.user.owner.clone(),
                display_name: session
                    .user
                    .name
                    .clone()
                    .or_else(|| session.user.email.clone())
                    .unwrap_or_else(|| session.user.username.clone()),
                account: Some(session.user),
            }))
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match current_user(parts, state).await? {
            Some(user) => Ok(user),
            None => {
                // Pages send the visitor to sign in and back; other requests just say so.
                let wants_page = parts.method == axum::http::Method::GET;
                let here = parts.uri.path_and_query().map(|path| path.as_str().to_string()).unwrap_or_default();
                Err(WebError::SignInRequired { return_to: wants_page.then_some(here) })
            }
        }
    }
}

/// The visitor if signed in: pages such as the home page that work for everyone.
pub struct MaybeSignedIn(pub Option<SignedIn>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match current_user(parts, state).await {
            Ok(user) => Ok(Self(user)),
            // Off loopback without a provider nobody is signed in, but the page still shows.
            Err(WebError::Forbidden(_)) => Ok(Self(None)),
            Err(error) => Err(error),
        }
    }
}
