//! Web sessions and sign-ins in progress, kept in the store (not in memory) so they survive
//! a restart and work on every replica behind the load balancer.
//!
//! A session is known by a random 256-bit token that only the browser holds; the store keeps
//! it under the token's SHA-256, so reading the bucket never yields a usable cookie.

use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::oidc::{PendingSignIn, SignedInUser};
use crate::store::json::JsonRecords;
use crate::store::{ObjectKey, ObjectStore};

/// How long a session lasts without signing in again.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// How long a sign-in may take at the provider.
pub const SIGN_IN_LIFETIME: Duration = Duration::minutes(15);

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub user: SignedInUser,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct HeldSignIn {
    pending: PendingSignIn,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Sessions and sign-ins in progress.
#[derive(Clone)]
pub struct Sessions {
    records: JsonRecords,
}

fn random_token() -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

fn key(folder: &str, token: &str) -> Result<ObjectKey> {
    let hash = hex(&Sha256::digest(token.as_bytes()));
    ObjectKey::new(format!("{folder}/{hash}.json")).map_err(|error| Error::operator("building a session key", error))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Tokens are base64url of 32 bytes; anything else is not ours and is not looked up.
fn plausible(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl Sessions {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { records: JsonRecords::new(store, "session record") }
    }

    /// Starts a session for someone who just signed in; returns the token for the cookie.
    pub async fn start(&self, user: SignedInUser) -> Result<String> {
        let token = random_token();
        let session = WebSession { user, expires_at: OffsetDateTime::now_utc() + SESSION_LIFETIME };
        self.records.overwrite(&key("sessions", &token)?, &session).await?;
        Ok(token)
    }

    /// The session a cookie's token names, if it exists and has not expired.
    pub async fn find(&self, token: &str) -> Result<Option<WebSession>> {
        if !plausible(token) {
            return Ok(None);
        }
        let key = key("sessions", token)?;
        match self.records.get::<WebSession>(&key).await? {
            Some(session) if session.expires_at > OffsetDateTime::now_utc() => Ok(Some(session)),
            Some(_) => {
                self.records.delete(&key).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Ends a session (signing out); ending one that is gone is not an error.
    pub async fn end(&self, token: &str) -> Result<()> {
        if plausible(token) {
            self.records.delete(&key("sessions", token)?).await?;
        }
        Ok(())
    }

    /// Keeps a sign-in that has started until the provider sends the browser back; returns
    /// the token the browser keeps (in a cookie) to claim it.
    pub async fn hold_sign_in(&self, pending: PendingSignIn) -> Result<String> {
        let token = random_token();
        let held = HeldSignIn { pending, expires_at: OffsetDateTime::now_utc() + SIGN_IN_LIFETIME };
        self.records.overwrite(&key("sign-ins", &token)?, &held).await?;
        Ok(token)
    }

    /// Takes back a held sign-in, once: a second claim, or one after it expired, finds nothing.
    pub async fn claim_sign_in(&self, token: &str) -> Result<Option<PendingSignIn>> {
        if !plausible(token) {
            return Ok(None);
        }
        let key = key("sign-ins", token)?;
        let Some(held) = self.records.get::<HeldSignIn>(&key).await? else { return Ok(None) };
        self.records.delete(&key).await?;
        Ok((held.expires_at > OffsetDateTime::now_utc()).then_some(held.pending))
    }
}
