//! Accounts: linking a Discord user to a web account, so both share one gallery.
//!
//! The flow: `/link` in Discord asks for a [`LinkToken`] ([`Accounts::issue_link`]): a random
//! one-time token bound to the Discord user, valid ten minutes, whose URL
//! (`{public_url}link?token=…`) the person opens in the browser. Signed in there, they confirm,
//! and the web app calls [`Accounts::consume_link`], which uses the token up, binds the two
//! accounts, and makes them one person: the day's image count joins the web account's (one
//! quota a day, see [`Ledgers::join`]), the Discord defaults are carried over (they win where
//! both set one), the images made under the Discord id move into the web account's gallery,
//! and the link is recorded in the sign-in provider's directory ([`AccountDirectory`]).
//!
//! Unlinking parts them again: the Discord user goes on with the day's count and the defaults
//! the person had while linked; the moved images stay in the web account's gallery, where
//! Discord buttons made before the link still find them ([`Accounts::galleries_moved_into`]).
//!
//! Records in the [`ObjectStore`], identical in every backend:
//! - `links/tokens/{sha256 of the token}.json`: the issued token (never the token itself);
//! - `links/tokens/{sha256 of the token}.used`: written once with a create-only write (S3's
//!   `If-None-Match: *`) when the token is used, so two replicas can never both accept it;
//! - `links/discord/{discord user id}.json`: the [`Link`], written create-only: the
//!   authoritative record, so one Discord account links to at most one web account;
//! - `links/web/{owner}.json`: the same [`Link`], for lookups from the web side;
//! - `links/moved/{discord user id}.json`: the web accounts the Discord user's images were
//!   moved into, newest last, kept after unlinking, since the images stay there.
//!
//! Every step can be re-run after a crash: a link that stands is finished again by linking
//! the same two accounts again, and the gallery move skips what is already moved.

pub mod directory;

use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use url::Url;

pub use directory::{AccountDirectory, CognitoDirectory, DISCORD_ID_ATTRIBUTE, NoDirectory};

use crate::error::{Error, Invalid, Result};
use crate::gallery::{Gallery, Owner};
use crate::jobs::ledger::Ledgers;
use crate::oidc::SignedInUser;
use crate::preferences;
use crate::store::json::JsonRecords;
use crate::store::{ObjectKey, ObjectStore, StoreError};

/// How long a link token works.
pub const LINK_LIFETIME: Duration = Duration::minutes(10);

/// Random bytes in a link token (encoded as 43 URL-safe characters).
const TOKEN_BYTES: usize = 32;

/// The current time; replaceable so tests can move it forward.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A one-time link for a Discord user, to open in the browser.
#[derive(Clone)]
pub struct LinkToken {
    token: String,
    url: Url,
    discord_user_id: u64,
    expires_at: OffsetDateTime,
}

impl LinkToken {
    /// The URL to open: `{public_url}link?token=…`. Show it only to the Discord user it is
    /// for (an ephemeral reply): whoever opens it first can link their web account.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The token alone, as it appears in the URL.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn discord_user_id(&self) -> u64 {
        self.discord_user_id
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token (and so the URL) is a secret until used.
        formatter
            .debug_struct("LinkToken")
            .field("discord_user_id", &self.discord_user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A link between a Discord user and a web account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub discord_user_id: u64,
    /// The web account's gallery owner.
    pub owner: Owner,
    /// The web account's subject at the sign-in provider.
    pub subject: String,
    /// The web account's user name in the provider's directory.
    pub username: String,
    /// The Discord user's name when it was linked, to show on the account page (absent on
    /// links made before it was kept).
    #[serde(default)]
    pub discord_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
}

/// What a valid, unused link token offers, before it is used (for the confirmation page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOffer {
    pub discord_user_id: u64,
    pub expires_at: OffsetDateTime,
}

/// The outcome of using a link token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub link: Link,
    /// How many images made under the Discord id moved into the web account's gallery.
    pub images_moved: usize,
}

/// The stored form of an issued token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    discord_user_id: u64,
    /// The Discord user's name when they asked for the link.
    #[serde(default)]
    discord_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// The stored mark of a used token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UsedRecord {
    #[serde(with = "time::serde::rfc3339")]
    used_at: OffsetDateTime,
    owner: Owner,
}

/// Where a Discord user's images were moved when they linked web accounts, oldest first
/// (linked, unlinked and linked to another, a person has several).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MovedImages {
    into: Vec<Owner>,
}

/// Linking accounts; see the module documentation.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn ObjectStore>,
    gallery: Gallery,
    directory: Arc<dyn AccountDirectory>,
    public_url: Url,
    clock: Clock,
    /// The owner each Discord user acted as when last looked up here: who they are while the
    /// store cannot be reached (bounded; it starts over when full).
    known_owners: Arc<std::sync::Mutex<std::collections::HashMap<u64, Owner>>>,
}

/// The most Discord users whose owner is remembered for a store outage.
const KNOWN_OWNERS_LIMIT: usize = 100_000;

impl std::fmt::Debug for Accounts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Accounts")
            .field("store", &self.store.location())
            .field("public_url", &self.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts kept in `store` (the gallery's store), recorded in `directory`, with link
    /// URLs under `public_url`.
    pub fn new(store: Arc<dyn ObjectStore>, directory: Arc<dyn AccountDirectory>, public_url: &Url) -> Self {
        let mut public_url = public_url.clone();
        if !public_url.path().ends_with('/') {
            let path = format!("{}/", public_url.path());
            public_url.set_path(&path);
        }
        Self {
            gallery: Gallery::new(store.clone()),
            store,
            directory,
            public_url,
            clock: Arc::new(OffsetDateTime::now_utc),
            known_owners: Arc::default(),
        }
    }

    /// Forgets what this process remembers of these owners' links (their data was deleted).
    pub fn forget(&self, owners: &[Owner]) {
        if let Ok(mut known) = self.known_owners.lock() {
            known.retain(|discord_user_id, owner| {
                !owners.contains(owner) && !owners.contains(&Owner::discord(*discord_user_id))
            });
        }
    }

    /// The directory accounts are recorded in (it also says whether one may still sign in).
    pub fn directory(&self) -> Arc<dyn AccountDirectory> {
        self.directory.clone()
    }

    /// Replaces the clock (tests move it past a token's expiry instead of waiting).
    pub fn with_clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// A new one-time link for a Discord user, valid for [`LINK_LIFETIME`].
    pub async fn issue_link(&self, discord_user_id: u64) -> Result<LinkToken> {
        self.issue_named_link(discord_user_id, None).await
    }

    /// [`Self::issue_link`], keeping the Discord user's name for the link record.
    pub async fn issue_named_link(&self, discord_user_id: u64, discord_name: Option<&str>) -> Result<LinkToken> {
        let mut random = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut random);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
        let issued_at = self.now();
        let expires_at = issued_at + LINK_LIFETIME;
        let record =
            TokenRecord { discord_user_id, discord_name: discord_name.map(String::from), issued_at, expires_at };
        if !self.create_json(&token_key(&token_hash(&token), "json")?, &record).await? {
            // 256 random bits never collide; a store that says otherwise is broken.
            return Err(Error::operator("issuing a link token", "the store already holds a token with this hash"));
        }

        let mut url = self
            .public_url
            .join("link")
            .map_err(|error| Error::operator(format!("building a link URL under {}", self.public_url), error))?;
        url.query_pairs_mut().append_pair("token", &token);
        Ok(LinkToken { token, url, discord_user_id, expires_at })
    }

    /// What a link token offers, without using it: for the page that asks to confirm.
    /// Refuses tokens that are unknown, expired or used, with the same words as
    /// [`Self::consume_link`].
    pub async fn preview_link(&self, token: &str) -> Result<LinkOffer> {
        let (hash, record) = self.valid_token(token).await?;
        if self.get_json::<UsedRecord>(&token_key(&hash, "used")?).await?.is_some() {
            return Err(already_used());
        }
        Ok(LinkOffer { discord_user_id: record.discord_user_id, expires_at: record.expires_at })
    }

    /// Uses a link token for the signed-in web user: binds the token's Discord user to the
    /// web account, moves the Discord user's earlier images into the web account's gallery,
    /// and records the link in the directory.
    pub async fn consume_link(&self, token: &str, web_user: &SignedInUser) -> Result<Linked> {
        let (hash, record) = self.valid_token(token).await?;
        let discord_user_id = record.discord_user_id;
        let used_key = token_key(&hash, "used")?;
        if self.get_json::<UsedRecord>(&used_key).await?.is_some() {
            return Err(already_used());
        }
        // Refuse a link that cannot stand before using the token up, so the person can still
        // use it once they have unlinked.
        if let Some(existing) = self.link_for_discord(discord_user_id).await?
            && existing.owner != web_user.owner
        {
            return Err(discord_taken());
        }
        if let Some(existing) = self.live_web_link(&web_user.owner).await?
            && existing.discord_user_id != discord_user_id
        {
            return Err(web_taken());
        }

        // The one step that decides: of two uses racing, only one creates the mark.
        let used = UsedRecord { used_at: self.now(), owner: web_user.owner.clone() };
        if !self.create_json(&used_key, &used).await? {
            return Err(already_used());
        }

        let linked = self.complete_link(discord_user_id, record.discord_name, web_user).await?;
        tracing::info!(
            "linked Discord user {discord_user_id} to {} ({} earlier images moved)",
            linked.link.owner,
            linked.images_moved
        );
        Ok(linked)
    }

    /// Links the Discord account someone signed in with ("Sign in with Discord", Cognito's
    /// `identities` claim) to their web account at once, as a used link token would: nothing
    /// to do when the two are linked already (`Ok(None)`). A Discord account linked to another
    /// web account, or a web account linked to another Discord account, is never re-linked
    /// silently: the person is told how to unlink first.
    pub async fn link_signed_in_discord(&self, web_user: &SignedInUser) -> Result<Option<Linked>> {
        let Some(discord) = &web_user.discord else { return Ok(None) };
        match self.link_for_discord(discord.user_id).await? {
            Some(existing) if existing.owner == web_user.owner => return Ok(None),
            Some(_) => return Err(discord_taken()),
            None => {}
        }
        if let Some(existing) = self.live_web_link(&web_user.owner).await?
            && existing.discord_user_id != discord.user_id
        {
            return Err(web_taken());
        }
        let linked = self.complete_link(discord.user_id, discord.name.clone(), web_user).await?;
        tracing::info!(
            "linked Discord user {} to {} at sign-in with Discord ({} earlier images moved)",
            discord.user_id,
            linked.link.owner,
            linked.images_moved
        );
        Ok(Some(linked))
    }

    /// Everything a link does once it is decided: both link records, the day's count and
    /// settings carried over, the Discord images moved, the directory told.
    async fn complete_link(
        &self,
        discord_user_id: u64,
        discord_name: Option<String>,
        web_user: &SignedInUser,
    ) -> Result<Linked> {
        let link = self.bind(discord_user_id, discord_name, web_user).await?;
        let discord_owner = Owner::discord(discord_user_id);
        Ledgers::new(self.store.clone()).join(&discord_owner, &link.owner).await?;
        // Moved, not copied: the Discord defaults apply only through the web account now, and
        // finishing an interrupted link again cannot undo changes made since.
        if preferences::carry_over(&self.preferences(), &discord_owner, &link.owner).await? {
            self.preferences().delete(&preferences::stored_at(&discord_owner)?).await?;
        }
        // Noted before the images move, so a button finds an image whichever side it is on.
        self.note_move(discord_user_id, &link.owner).await?;
        let images_moved = self.gallery.adopt(&discord_owner, &link.owner).await?;
        self.directory.record_discord_id(&link.username, Some(discord_user_id)).await?;
        Ok(Linked { link, images_moved })
    }

    /// Writes both link records; re-running it for the same two accounts is harmless.
    async fn bind(&self, discord_user_id: u64, discord_name: Option<String>, web_user: &SignedInUser) -> Result<Link> {
        let mut link = Link {
            discord_user_id,
            owner: web_user.owner.clone(),
            subject: web_user.subject.clone(),
            username: web_user.username.clone(),
            discord_name,
            linked_at: self.now(),
        };
        let discord_key = discord_key(discord_user_id)?;
        let created_discord_record = self.create_json(&discord_key, &link).await?;
        if !created_discord_record {
            match self.get_json::<Link>(&discord_key).await? {
                Some(existing) if existing.owner == link.owner => link = existing,
                Some(_) => return Err(discord_taken()),
                // Unlinked in between: the token is used up, so a new one is needed.
                None => return Err(Error::Busy("the link changed while linking; run /link in Discord again".into())),
            }
        }

        let web_key = web_key(&link.owner)?;
        if !self.create_json(&web_key, &link).await? {
            let existing = self.get_json::<Link>(&web_key).await?;
            let conflict = match &existing {
                Some(existing) if existing.discord_user_id == discord_user_id => false,
                // Another Discord user's record: a conflict only if that link still stands.
                Some(existing) => self
                    .link_for_discord(existing.discord_user_id)
                    .await?
                    .is_some_and(|other| other.owner == link.owner),
                None => false,
            };
            if conflict {
                if created_discord_record {
                    self.delete(&discord_key).await?;
                }
                return Err(web_taken());
            }
            if existing.as_ref() != Some(&link) {
                // A stale record from an interrupted unlink: this link replaces it.
                self.overwrite_json(&web_key, &link).await?;
            }
        }
        Ok(link)
    }

    /// Unlinks a Discord user (from Discord's side). Their later images go to their own
    /// Discord gallery again; those already in the web account stay there.
    pub async fn unlink_from_discord(&self, discord_user_id: u64) -> Result<Link> {
        let link = self
            .link_for_discord(discord_user_id)
            .await?
            .ok_or_else(|| Error::not_found("your Discord account is not linked to a web account; /link links one"))?;
        self.unlink(link).await
    }

    /// Unlinks the web account `owner` from its Discord user (from the web side).
    pub async fn unlink_from_web(&self, owner: &Owner) -> Result<Link> {
        let link = self
            .live_web_link(owner)
            .await?
            .ok_or_else(|| Error::not_found("this web account is not linked to a Discord account"))?;
        self.unlink(link).await
    }

    async fn unlink(&self, link: Link) -> Result<Link> {
        // While the records still say linked, so that if a step fails, unlinking again works
        // (each step can be run again). The Discord user is still the same person: they go on
        // with the day's count and the defaults they had, and the web account keeps both too.
        let discord_owner = Owner::discord(link.discord_user_id);
        Ledgers::new(self.store.clone()).part(&discord_owner, &link.owner).await?;
        preferences::carry_over(&self.preferences(), &link.owner, &discord_owner).await?;
        // The directory next: if it fails, the records still say linked and unlinking again works.
        self.directory.record_discord_id(&link.username, None).await?;
        self.delete(&discord_key(link.discord_user_id)?).await?;
        self.delete(&web_key(&link.owner)?).await?;
        tracing::info!("unlinked Discord user {} from {}", link.discord_user_id, link.owner);
        Ok(link)
    }

    /// The gallery owner for a Discord user's images: the linked web account, or the Discord
    /// user's own gallery before linking. The bot asks this for every image it keeps.
    ///
    /// While the store cannot be reached, a Discord user is who they were when last looked up
    /// here, or, never seen, their own Discord owner: the bot keeps making images (they wait in
    /// the spool) instead of failing every command on the link lookup. Someone linked whom this
    /// process never saw then gets images in their Discord gallery, which linking moves on the
    /// next link, and which their earlier buttons find either way.
    pub async fn owner_for_discord(&self, discord_user_id: u64) -> Result<Owner> {
        let known = |owners: &mut std::collections::HashMap<u64, Owner>| owners.get(&discord_user_id).cloned();
        match self.link_for_discord(discord_user_id).await {
            Ok(link) => {
                let owner = link.map_or_else(|| Owner::discord(discord_user_id), |link| link.owner);
                if let Ok(mut owners) = self.known_owners.lock() {
                    if owners.len() >= KNOWN_OWNERS_LIMIT {
                        owners.clear();
                    }
                    owners.insert(discord_user_id, owner.clone());
                }
                Ok(owner)
            }
            Err(error @ Error::Operator { .. }) => {
                let remembered = self.known_owners.lock().ok().and_then(|mut owners| known(&mut owners));
                tracing::warn!(error = %error, remembered = remembered.is_some(), "the store cannot say who a Discord user is; going on as who they were last");
                Ok(remembered.unwrap_or_else(|| Owner::discord(discord_user_id)))
            }
            Err(other) => Err(other),
        }
    }

    /// The web accounts whose galleries a Discord user's images were moved into when they
    /// linked, newest first; kept after unlinking, since the images stay there.
    pub async fn galleries_moved_into(&self, discord_user_id: u64) -> Result<Vec<Owner>> {
        let moved: Option<MovedImages> = self.get_json(&moved_key(discord_user_id)?).await?;
        Ok(moved.map(|moved| moved.into.into_iter().rev().collect()).unwrap_or_default())
    }

    /// Notes that a Discord user's images move into `owner`'s gallery (newest last).
    async fn note_move(&self, discord_user_id: u64, owner: &Owner) -> Result<()> {
        self.records()
            .update(&moved_key(discord_user_id)?, |moved: Option<MovedImages>| {
                let mut moved = moved.unwrap_or_default();
                moved.into.retain(|earlier| earlier != owner);
                moved.into.push(owner.clone());
                Ok((moved, ()))
            })
            .await
    }

    /// The link of a Discord user, if any.
    pub async fn link_for_discord(&self, discord_user_id: u64) -> Result<Option<Link>> {
        self.get_json(&discord_key(discord_user_id)?).await
    }

    /// The link of a web account, if any.
    pub async fn link_for_web(&self, owner: &Owner) -> Result<Option<Link>> {
        self.live_web_link(owner).await
    }

    /// The web side's record, trusted only when the Discord side (the authoritative record)
    /// agrees, so a record left by an interrupted unlink never blocks anything.
    async fn live_web_link(&self, owner: &Owner) -> Result<Option<Link>> {
        let Some(web) = self.get_json::<Link>(&web_key(owner)?).await? else {
            return Ok(None);
        };
        Ok(self.link_for_discord(web.discord_user_id).await?.filter(|link| link.owner == *owner))
    }

    /// A token's record, if the token is one we issued and it has not expired.
    async fn valid_token(&self, token: &str) -> Result<(String, TokenRecord)> {
        let token = token.trim();
        if !looks_like_token(token) {
            return Err(not_valid());
        }
        let hash = token_hash(token);
        let record = self.get_json::<TokenRecord>(&token_key(&hash, "json")?).await?.ok_or_else(not_valid)?;
        if self.now() >= record.expires_at {
            return Err(Error::Invalid(Invalid::new("this link has expired: run /link in Discord again")));
        }
        Ok((hash, record))
    }

    async fn get_json<T: DeserializeOwned>(&self, key: &ObjectKey) -> Result<Option<T>> {
        self.records().get(key).await
    }

    /// Writes a record only if none is there yet (S3's `If-None-Match: *`); whether it did.
    async fn create_json<T: Serialize>(&self, key: &ObjectKey, value: &T) -> Result<bool> {
        self.records().create(key, value).await
    }

    async fn overwrite_json<T: Serialize>(&self, key: &ObjectKey, value: &T) -> Result<()> {
        self.records().overwrite(key, value).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.records().delete(key).await
    }

    fn records(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "account record")
    }

    fn preferences(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "preferences record")
    }
}

fn store_failed(error: StoreError) -> Error {
    Error::operator("the account store failed", error)
}

fn not_valid() -> Error {
    Error::Invalid(Invalid::new(
        "this link is not valid: copy the whole link, or run /link in Discord again for a new one",
    ))
}

fn already_used() -> Error {
    Error::Invalid(Invalid::new("this link was already used: run /link again"))
}

fn discord_taken() -> Error {
    Error::Invalid(Invalid::new(
        "this Discord account is already linked to another web account: unlink it first (/unlink in \
         Discord, or from that web account), then run /link again",
    ))
}

fn web_taken() -> Error {
    Error::Invalid(Invalid::new(
        "this web account is already linked to another Discord account: unlink that one first, then open \
         a new link",
    ))
}

fn looks_like_token(token: &str) -> bool {
    token.len() == 43 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The hex SHA-256 of a token: what the store keeps instead of the token.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn token_key(hash: &str, extension: &str) -> Result<ObjectKey> {
    ObjectKey::new(format!("links/tokens/{hash}.{extension}")).map_err(store_failed)
}

fn discord_key(discord_user_id: u64) -> Result<ObjectKey> {
    ObjectKey::new(format!("links/discord/{discord_user_id}.json")).map_err(store_failed)
}

fn web_key(owner: &Owner) -> Result<ObjectKey> {
    ObjectKey::new(format!("links/web/{owner}.json")).map_err(store_failed)
}

fn moved_key(discord_user_id: u64) -> Result<ObjectKey> {
    ObjectKey::new(format!("links/moved/{discord_user_id}.json")).map_err(store_failed)
}

#[cfg(test)]
mod tests;
