//! Who is signed in.
//!
//! In local mode (no sign-in provider configured, listening on loopback) everyone who can
//! reach the app is the operator of this machine, signed in without a password. Off loopback
//! that would hand the operator's gallery to the network, so it is refused outright.

use atelier_shared::config::LocalSignIn;
use atelier_shared::gallery::{Origin, Owner};
use atelier_shared::service::Actor;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::AppState;
use crate::error::WebError;

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub owner: Owner,
    /// A name to show in the header.
    pub display_name: String,
}

impl SignedIn {
    /// The user as the core sees them when they act through the web app.
    pub fn actor(&self) -> Actor {
        Actor::new(self.owner.clone(), Origin::Web)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.site.local_sign_in {
            LocalSignIn::Allowed => Ok(Self { owner: Owner::local_operator(), display_name: "Local operator".into() }),
            LocalSignIn::RefusedOffLoopback(bind) => Err(WebError::Forbidden(format!(
                "This Atelier listens on {bind}, beyond this machine, and has no sign-in provider configured, \
                 so it will not sign anyone in without a password. The operator should set ATELIER_OIDC_ISSUER \
                 and ATELIER_OIDC_CLIENT_ID, or listen on 127.0.0.1."
            ))),
            LocalSignIn::NotNeeded => {
                Err(WebError::Unavailable("Signing in with an account is not available in this build yet.".into()))
            }
        }
    }
}
