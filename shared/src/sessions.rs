//! Web sessions and sign-ins in progress, kept in the store (not in memory) so they survive
//! a restart and work on every replica behind the load balancer.
//!
//! A session is known by a random 256-bit token that only the browser holds; the store keeps
//! it under the token's SHA-256, so reading the bucket never yields a usable cookie.
//!
//! A session ends after [`SESSION_IDLE_LIMIT`] without a request and, used or not,
//! [`SESSION_LIFETIME`] after signing in. Every [`ACCOUNT_RECHECK_INTERVAL`] the account is
//! looked up again in the directory (Cognito), so an account disabled or deleted there stops
//! working within minutes rather than days; while the directory cannot answer, the session
//! goes on (an outage of Cognito should not sign everyone out).
//!
//! A sign-in in progress is not kept here: the browser holds it, encrypted, in a cookie (see
//! [`crate::oidc::HeldSignIn`]), so a visitor who only opens the sign-in page writes nothing.

use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::accounts::AccountDirectory;
use crate::error::{Error, Result};
use crate::oidc::SignedInUser;
use crate::store::json::JsonRecords;
use crate::store::{ObjectKey, ObjectStore};

/// How long a session lasts, used or not, before signing in again.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// How long a session lasts without a request.
pub const SESSION_IDLE_LIMIT: Duration = Duration::hours(24);
/// How often a session's account is looked up again in the directory.
pub const ACCOUNT_RECHECK_INTERVAL: Duration = Duration::minutes(15);
/// How stale the record of a session's last request may get before it is written again: a
/// write per request would be a write per page view.
const LAST_SEEN_GRANULARITY: Duration = Duration::minutes(5);

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub user: SignedInUser,
    /// The end of the session's whole lifetime.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The last request seen (to [`LAST_SEEN_GRANULARITY`]). Sessions written before idle
    /// limits existed have none and count as seen when first read.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    /// When the directory last said the account may sign in; none until first checked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub account_checked_at: Option<OffsetDateTime>,
}

type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Web sessions.
#[derive(Clone)]
pub struct Sessions {
    records: JsonRecords,
    directory: Option<Arc<dyn AccountDirectory>>,
    clock: Clock,
}

fn random_token() -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

fn key(token: &str) -> Result<ObjectKey> {
    let hash = hex(&Sha256::digest(token.as_bytes()));
    ObjectKey::new(format!("sessions/{hash}.json")).map_err(|error| Error::operator("building a session key", error))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Tokens are base64url of 32 bytes; anything else is not ours and is not looked up.
fn plausible(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl Sessions {
    /// Sessions kept in `store`, their accounts checked in `directory` when there is one.
    pub fn new(store: Arc<dyn ObjectStore>, directory: Option<Arc<dyn AccountDirectory>>) -> Self {
        Self { records: JsonRecords::new(store, "session record"), directory, clock: Arc::new(OffsetDateTime::now_utc) }
    }

    /// The same sessions on another clock (tests move time forward).
    #[cfg(test)]
    pub fn with_clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Starts a session for someone who just signed in; returns the token for the cookie.
    pub async fn start(&self, user: SignedInUser) -> Result<String> {
        let token = random_token();
        let now = (self.clock)();
        let session = WebSession {
            user,
            expires_at: now + SESSION_LIFETIME,
            last_seen_at: Some(now),
            // The provider has just vouched for the account.
            account_checked_at: Some(now),
        };
        self.records.overwrite(&key(&token)?, &session).await?;
        Ok(token)
    }

    /// The session a cookie's token names, if it exists, has neither expired nor sat idle too
    /// long, and its account may still sign in. Notes the request as the session's latest.
    pub async fn find(&self, token: &str) -> Result<Option<WebSession>> {
        if !plausible(token) {
            return Ok(None);
        }
        let key = key(token)?;
        let Some(mut session) = self.records.get::<WebSession>(&key).await? else { return Ok(None) };
        let now = (self.clock)();
        let last_seen = session.last_seen_at.unwrap_or(now);
        if session.expires_at <= now || now - last_seen >= SESSION_IDLE_LIMIT {
            self.records.delete(&key).await?;
            return Ok(None);
        }
        let mut changed = session.last_seen_at.is_none() || now - last_seen >= LAST_SEEN_GRANULARITY;
        if changed {
            session.last_seen_at = Some(now);
        }
        let checked = session.account_checked_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        if let Some(directory) = &self.directory
            && now - checked >= ACCOUNT_RECHECK_INTERVAL
        {
            match directory.may_sign_in(&session.user.username).await {
                Ok(true) => {
                    session.account_checked_at = Some(now);
                    changed = true;
                }
                Ok(false) => {
                    tracing::info!(owner = %session.user.owner, "the account was disabled or deleted; its session ends");
                    self.records.delete(&key).await?;
                    return Ok(None);
                }
                // The directory is down: the session goes on and is checked again next time.
                Err(error) => {
                    tracing::warn!(error = %error, "could not check a session's account; keeping the session")
                }
            }
        }
        if changed {
            // Best effort: failing to note the time must not sign the person out.
            if let Err(error) = self.records.overwrite(&key, &session).await {
                tracing::warn!(error = %error, "could not note a session's last request");
            }
        }
        Ok(Some(session))
    }

    /// Ends a session (signing out); ending one that is gone is not an error.
    pub async fn end(&self, token: &str) -> Result<()> {
        if plausible(token) {
            self.records.delete(&key(token)?).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::gallery::Owner;
    use crate::store::folder::FolderStore;

    /// A directory whose answer the test sets, counting the questions.
    #[derive(Default)]
    struct Directory {
        answer: Mutex<Option<Result<bool>>>,
        asked: AtomicI64,
    }

    #[async_trait]
    impl AccountDirectory for Directory {
        async fn record_discord_id(&self, _username: &str, _discord_user_id: Option<u64>) -> Result<()> {
            Ok(())
        }

        async fn may_sign_in(&self, _username: &str) -> Result<bool> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            match &*self.answer.lock().unwrap() {
                Some(Ok(answer)) => Ok(*answer),
                Some(Err(_)) => Err(Error::Busy("the directory is down".into())),
                None => Ok(true),
            }
        }
    }

    struct Fixture {
        _folder: tempfile::TempDir,
        sessions: Sessions,
        directory: Arc<Directory>,
        /// Minutes added to the real time.
        minutes: Arc<AtomicI64>,
    }

    async fn fixture() -> Fixture {
        let folder = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::open(folder.path()).await.unwrap());
        let directory = Arc::new(Directory::default());
        let minutes = Arc::new(AtomicI64::new(0));
        let offset = minutes.clone();
        let sessions = Sessions::new(store, Some(directory.clone()))
            .with_clock(move || OffsetDateTime::now_utc() + Duration::minutes(offset.load(Ordering::SeqCst)));
        Fixture { _folder: folder, sessions, directory, minutes }
    }

    fn ada() -> SignedInUser {
        SignedInUser {
            discord: None,
            subject: "sub-ada".into(),
            username: "ada".into(),
            email: Some("ada@example.com".into()),
            name: None,
            owner: Owner::web_account("sub-ada").unwrap(),
        }
    }

    #[tokio::test]
    async fn a_session_left_alone_for_a_day_ends_but_one_in_use_lasts_seven_days_and_no_longer() {
        let fixture = fixture().await;
        let idle = fixture.sessions.start(ada()).await.unwrap();
        let used = fixture.sessions.start(ada()).await.unwrap();
        // Used every 12 hours for six and a half days: still signed in.
        for _ in 0..13 {
            fixture.minutes.fetch_add(12 * 60, Ordering::SeqCst);
            assert!(fixture.sessions.find(&used).await.unwrap().is_some(), "a session in use ended early");
        }
        assert!(fixture.sessions.find(&idle).await.unwrap().is_none(), "a session idle for days still works");
        // Past seven days from signing in, even a session in use ends.
        fixture.minutes.fetch_add(12 * 60, Ordering::SeqCst);
        assert!(fixture.sessions.find(&used).await.unwrap().is_none(), "a session outlived its seven days");
    }

    #[tokio::test]
    async fn an_account_disabled_in_the_directory_is_signed_out_within_the_recheck_interval_but_an_outage_keeps_it() {
        let fixture = fixture().await;
        let token = fixture.sessions.start(ada()).await.unwrap();
        // Just signed in: the provider vouched for the account, so the directory is not asked.
        assert!(fixture.sessions.find(&token).await.unwrap().is_some());
        assert_eq!(fixture.directory.asked.load(Ordering::SeqCst), 0);

        // The directory is down when the check is due: the session goes on.
        *fixture.directory.answer.lock().unwrap() = Some(Err(Error::Busy(String::new())));
        fixture.minutes.fetch_add(16, Ordering::SeqCst);
        assert!(
            fixture.sessions.find(&token).await.unwrap().is_some(),
            "an outage of the directory signed someone out"
        );
        assert_eq!(fixture.directory.asked.load(Ordering::SeqCst), 1);

        // The account is disabled: the next request is refused, and so is every later one.
        *fixture.directory.answer.lock().unwrap() = Some(Ok(false));
        assert!(fixture.sessions.find(&token).await.unwrap().is_none(), "a disabled account kept its session");
        *fixture.directory.answer.lock().unwrap() = Some(Ok(true));
        assert!(fixture.sessions.find(&token).await.unwrap().is_none(), "an ended session came back");
    }

    #[tokio::test]
    async fn a_checked_account_is_not_asked_about_again_until_the_interval_passes() {
        let fixture = fixture().await;
        let token = fixture.sessions.start(ada()).await.unwrap();
        fixture.minutes.fetch_add(16, Ordering::SeqCst);
        for _ in 0..5 {
            assert!(fixture.sessions.find(&token).await.unwrap().is_some());
        }
        assert_eq!(fixture.directory.asked.load(Ordering::SeqCst), 1, "the directory is asked on every request");
        fixture.minutes.fetch_add(16, Ordering::SeqCst);
        assert!(fixture.sessions.find(&token).await.unwrap().is_some());
        assert_eq!(fixture.directory.asked.load(Ordering::SeqCst), 2);
    }
}
