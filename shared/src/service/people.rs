//! Who people are: Discord users, web accounts and the links between them, web sessions and
//! sign-ins in progress. The rules of linking (one web account per Discord user, no silent
//! re-linking) are here, and who counts as the owner of something a button names.

use crate::accounts::{Accounts, Link, LinkOffer, LinkToken, Linked};
use crate::error::Result;
use crate::gallery::Owner;
use crate::oidc::SignedInUser;
use crate::sessions::{Sessions, WebSession};

use super::{Actor, Atelier, Owned};

/// What asking to link a Discord account gives.
#[derive(Debug)]
pub enum LinkStart {
    /// A single-use link to open on the web and confirm.
    Issued(LinkToken),
    /// This Discord account is linked already; unlink first to link another.
    AlreadyLinked(Link),
}

impl Atelier {
    /// Whether Discord accounts can be linked to web accounts here.
    pub fn linking_available(&self) -> bool {
        self.accounts.is_some()
    }

    fn linking(&self) -> Result<&Accounts> {
        self.accounts.as_deref().ok_or_else(|| crate::Invalid::new("account linking is not set up here").into())
    }

    /// Whose gallery a Discord user's images go to: their web account's once linked, their
    /// own Discord gallery before.
    pub async fn owner_for_discord(&self, discord_user_id: u64) -> Result<Owner> {
        match &self.accounts {
            Some(accounts) => accounts.owner_for_discord(discord_user_id).await,
            None => Ok(Owner::discord(discord_user_id)),
        }
    }

    /// Refuses anyone but the person `thing` belongs to, with `message` saying who may. That
    /// person acts as its owner, or, for a Discord owner now linked to a web account, as that
    /// account (a button made before the link names the Discord owner).
    pub(super) async fn only_owner<Id>(&self, actor: &Actor, thing: &Owned<Id>, message: &str) -> Result<()> {
        if actor.owner == thing.owner {
            return Ok(());
        }
        if let Some(discord_user_id) = thing.owner.discord_user_id()
            && self.owner_for_discord(discord_user_id).await? == actor.owner
        {
            return Ok(());
        }
        Err(crate::Invalid::new(message).into())
    }

    /// The galleries an owner's images were moved into by linking, newest first: only a
    /// Discord user's are ever moved.
    pub(super) async fn galleries_moved_into(&self, owner: &Owner) -> Result<Vec<Owner>> {
        match (owner.discord_user_id(), &self.accounts) {
            (Some(discord_user_id), Some(accounts)) => accounts.galleries_moved_into(discord_user_id).await,
            _ => Ok(Vec::new()),
        }
    }

    /// Starts linking a Discord user (named `discord_name` there) to a web account, unless they
    /// are linked already.
    pub async fn start_link(&self, discord_user_id: u64, discord_name: &str) -> Result<LinkStart> {
        let accounts = self.linking()?;
        if let Some(existing) = accounts.link_for_discord(discord_user_id).await? {
            return Ok(LinkStart::AlreadyLinked(existing));
        }
        Ok(LinkStart::Issued(accounts.issue_named_link(discord_user_id, Some(discord_name)).await?))
    }

    /// What a link token would link, for the page that asks to confirm it.
    pub async fn preview_link(&self, token: &str) -> Result<LinkOffer> {
        self.linking()?.preview_link(token).await
    }

    /// Links the signed-in web account to the token's Discord user, once.
    pub async fn consume_link(&self, token: &str, web_user: &SignedInUser) -> Result<Linked> {
        self.linking()?.consume_link(token, web_user).await
    }

    /// Unlinks a Discord user from their web account.
    pub async fn unlink_discord(&self, discord_user_id: u64) -> Result<Link> {
        self.linking()?.unlink_from_discord(discord_user_id).await
    }

    /// Unlinks the signed-in web account from its Discord user.
    pub async fn unlink_web(&self, actor: &Actor) -> Result<Link> {
        self.linking()?.unlink_from_web(&actor.owner).await
    }

    /// The web account a Discord user is linked to; `None` when not linked or linking is off.
    pub async fn discord_link(&self, discord_user_id: u64) -> Result<Option<Link>> {
        match &self.accounts {
            Some(accounts) => accounts.link_for_discord(discord_user_id).await,
            None => Ok(None),
        }
    }

    /// The Discord user the actor's web account is linked to, if any.
    pub async fn web_link(&self, actor: &Actor) -> Result<Option<Link>> {
        match &self.accounts {
            Some(accounts) => accounts.link_for_web(&actor.owner).await,
            None => Ok(None),
        }
    }

    fn sessions(&self) -> Sessions {
        Sessions::new(self.gallery.store().clone(), self.accounts.as_ref().map(|accounts| accounts.directory()))
    }

    /// Starts a web session for a signed-in person; returns its token for the cookie. Someone
    /// who signed in with Discord is linked to that Discord account first, with no /link round
    /// trip (`Accounts::link_signed_in_discord`). A link that cannot be made (that Discord
    /// account is linked to another web account) leaves them signed in and unlinked: the
    /// account page says why and what to do. A store that fails here is tried again at the
    /// next sign-in.
    pub async fn start_session(&self, user: SignedInUser) -> Result<String> {
        if user.discord.is_some()
            && let Some(accounts) = &self.accounts
        {
            match accounts.link_signed_in_discord(&user).await {
                Ok(_) => {}
                Err(refused) if refused.is_user_error() => {
                    tracing::info!(owner = %user.owner, "not linked at sign-in with Discord: {}", refused.user_message());
                }
                Err(error) => {
                    tracing::warn!(owner = %user.owner, error = %error, "could not link at sign-in with Discord")
                }
            }
        }
        self.sessions().start(user).await
    }

    /// The session a cookie's token names, if it is still valid.
    pub async fn find_session(&self, token: &str) -> Result<Option<WebSession>> {
        self.sessions().find(token).await
    }

    /// Ends a web session (signing out).
    pub async fn end_session(&self, token: &str) -> Result<()> {
        self.sessions().end(token).await
    }
}
