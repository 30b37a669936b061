//! Who is calling the API.
//!
//! A request with `Authorization: Bearer <token>` is signed in by that token alone: the core's
//! [`AccessTokenVerifier`] checks it against the sign-in provider's keys, and a token it
//! refuses is a 401, never a fall back to the session cookie. That matters because the
//! forgery check (`csrf`) lets Bearer requests through without a token of its own: such a
//! request must carry nothing a browser would add by itself.
//!
//! Without an `Authorization` header the browser's session (or, in local mode, the local
//! operator) signs the request in, exactly as for the pages.

use std::sync::{Arc, OnceLock};

use atelier_shared::Actor;
use atelier_shared::Error as CoreError;
use atelier_shared::gallery::{Origin, Owner};
use atelier_shared::oidc::access::AccessTokenVerifier;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;

/// The access-token verifier of one app, made on first use from the sign-in provider the web
/// app is configured with (`None` in local mode, where no tokens are accepted).
#[derive(Clone, Default)]
pub struct AccessTokens(Arc<OnceLock<Option<Arc<AccessTokenVerifier>>>>);

impl AccessTokens {
    fn verifier(&self, state: &AppState) -> Option<Arc<AccessTokenVerifier>> {
        self.0
            .get_or_init(|| {
                state.auth.sign_in.as_ref().map(|sign_in| Arc::new(AccessTokenVerifier::for_sign_in(sign_in)))
            })
            .clone()
    }
}

/// How the caller signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedInWith {
    /// An access token from the sign-in provider.
    AccessToken { subject: String, username: Option<String> },
    /// The browser's session, or the local operator in local mode.
    Browser { display_name: String, local_operator: bool },
}

/// The signed-in caller of an API request.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub owner: Owner,
    pub signed_in_with: SignedInWith,
}

impl ApiCaller {
    /// The caller as the core sees them: images they make through the API are web images.
    pub fn actor(&self) -> Actor {
        Actor::new(self.owner.clone(), Origin::Web)
    }
}

/// The token of an `Authorization` header: `Some(Ok(token))` for a Bearer token,
/// `Some(Err(..))` for a header that is there but is not one, `None` without the header.
fn bearer_token(parts: &Parts) -> Option<Result<String, ApiError>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let wrong =
        || ApiError::TokenRefused("send the access token as `Authorization: Bearer <token>`, with nothing else".into());
    let Ok(text) = value.to_str() else { return Some(Err(wrong())) };
    // The forgery check recognises exactly `Bearer ` (it lets such requests through), so
    // this does too: any other spelling would be checked as a form post there.
    match text.strip_prefix("Bearer ") {
        Some(token) if !token.trim().is_empty() => Some(Ok(token.trim().to_string())),
        _ => Some(Err(wrong())),
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match bearer_token(parts) {
            Some(Ok(token)) => {
                let tokens = parts.extensions.get::<AccessTokens>().cloned().unwrap_or_default();
                let Some(verifier) = tokens.verifier(state) else {
                    return Err(ApiError::TokenRefused(
                        "this Atelier has no sign-in provider configured, so it accepts no access tokens; in local \
                         mode call the API without one"
                            .into(),
                    ));
                };
                match verifier.verify(&token).await {
                    Ok(verified) => {
                        state.core.admit_person(&verified.owner).await?;
                        Ok(Self {
                            owner: verified.owner,
                            signed_in_with: SignedInWith::AccessToken {
                                subject: verified.subject,
                                username: verified.username,
                            },
                        })
                    }
                    Err(CoreError::Invalid(reason)) => Err(ApiError::TokenRefused(reason.message().to_string())),
                    // The provider's keys could not be fetched: not the caller's fault, and
                    // not a reason to slow down either.
                    Err(CoreError::Busy(message)) => {
                        Err(WebError::Unavailable(crate::error::capitalise(&message)).into())
                    }
                    Err(other) => Err(other.into()),
                }
            }
            Some(Err(refusal)) => Err(refusal),
            None => match crate::auth::current_user(parts, state).await? {
                Some(SignedIn { owner, display_name, account, .. }) => Ok(Self {
                    owner,
                    signed_in_with: SignedInWith::Browser { display_name, local_operator: account.is_none() },
                }),
                None => Err(ApiError::SignInRequired(
                    "Sign in first: send an access token as `Authorization: Bearer <token>`, or call from a \
                     signed-in browser"
                        .into(),
                )),
            },
        }
    }
}
