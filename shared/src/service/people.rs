//! Who people are: Discord users, web accounts and the links between them, web sessions.

use crate::accounts::Accounts;
use crate::error::Result;
use crate::gallery::Owner;

use super::Atelier;

impl Atelier {
    /// Account linking, where it is set up.
    pub fn accounts(&self) -> Option<&Accounts> {
        self.accounts.as_deref()
    }

    /// Whose gallery a Discord user's images go to: their web account's once linked, their
    /// own Discord gallery before.
    pub async fn owner_for_discord(&self, discord_user_id: u64) -> Result<Owner> {
        match &self.accounts {
            Some(accounts) => accounts.owner_for_discord(discord_user_id).await,
            None => Ok(Owner::discord(discord_user_id)),
        }
    }

    /// Web sessions and sign-ins in progress, kept in the gallery's store.
    pub fn sessions(&self) -> crate::sessions::Sessions {
        crate::sessions::Sessions::new(self.gallery.store().clone())
    }
}
