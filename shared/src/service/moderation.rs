//! Bans: the operator refuses a person everywhere (`atelier admin ban`). A ban is a record in
//! the store, `bans/{owner}.json`, so it holds on every replica; banning one side of a linked
//! pair (a Discord user and their web account) bans both, since they are one person. The front
//! ends learn who someone is through [`Atelier::person_for_discord`] and
//! [`Atelier::admit_person`], which refuse a banned person before anything else happens.
//!
//! Each replica remembers for a few seconds that someone is *not* banned, so a busy person's
//! every click does not cost a store read; a ban therefore takes hold everywhere within
//! [`NOT_BANNED_MEMORY`]. While the store cannot be read, people are let through (an outage
//! must not lock everyone out), and the log says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::gallery::Owner;

use super::Atelier;

/// How long a replica trusts that someone was not banned when it last looked.
pub const NOT_BANNED_MEMORY: Duration = Duration::from_secs(10);

/// A person the operator has banned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub owner: Owner,
    /// The operator's reason, shown to no one but operators.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub banned_at: OffsetDateTime,
}

/// Who was seen not banned, and when.
#[derive(Default, Clone)]
pub(super) struct NotBanned(Arc<Mutex<HashMap<Owner, Instant>>>);

impl NotBanned {
    fn recently(&self, owner: &Owner) -> bool {
        let seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.get(owner).is_some_and(|at| at.elapsed() < NOT_BANNED_MEMORY)
    }

    fn remember(&self, owner: &Owner) {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: an entry older than the memory is worth nothing, so a full map is swept.
        if seen.len() > 10_000 {
            seen.retain(|_, at| at.elapsed() < NOT_BANNED_MEMORY);
        }
        seen.insert(owner.clone(), Instant::now());
    }

    fn forget(&self, owner: &Owner) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(owner);
    }
}

const BANNED_MESSAGE: &str = "you are banned from this Atelier by its operator, so it will not do anything for you";

impl Atelier {
    fn ban_key(owner: &Owner) -> Result<crate::store::ObjectKey> {
        Self::key(format!("bans/{owner}.json"))
    }

    /// The owners that are one person with `owner`: itself and the other side of its link.
    pub(super) async fn one_person(&self, owner: &Owner) -> Result<Vec<Owner>> {
        let mut owners = vec![owner.clone()];
        if let Some(accounts) = &self.accounts {
            let link = match owner.discord_user_id() {
                Some(discord_user_id) => accounts.link_for_discord(discord_user_id).await?,
                None => accounts.link_for_web(owner).await?,
            };
            if let Some(link) = link {
                for other in [Owner::discord(link.discord_user_id), link.owner] {
                    if !owners.contains(&other) {
                        owners.push(other);
                    }
                }
            }
        }
        Ok(owners)
    }

    /// Bans a person on every front end and replica; returns every owner the ban covers.
    pub async fn ban(&self, owner: &Owner, reason: &str) -> Result<Vec<Owner>> {
        let owners = self.one_person(owner).await?;
        for banned in &owners {
            let ban = Ban { owner: banned.clone(), reason: reason.to_string(), banned_at: OffsetDateTime::now_utc() };
            self.records("ban").overwrite(&Self::ban_key(banned)?, &ban).await?;
            self.not_banned.forget(banned);
        }
        tracing::info!(owner = %owner, covered = owners.len(), "banned a person");
        Ok(owners)
    }

    /// Lifts a ban (both sides of a link); returns the owners it covered.
    pub async fn unban(&self, owner: &Owner) -> Result<Vec<Owner>> {
        let owners = self.one_person(owner).await?;
        for banned in &owners {
            self.records("ban").delete(&Self::ban_key(banned)?).await?;
        }
        tracing::info!(owner = %owner, "lifted a ban");
        Ok(owners)
    }

    /// Every ban, in the order of the owners' names.
    pub async fn bans(&self) -> Result<Vec<Ban>> {
        let mut bans = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let keys = self.store().list("bans/", after.as_deref(), 1_000).await?;
            let Some(last) = keys.last() else { break };
            after = Some(last.as_str().to_string());
            for key in &keys {
                if let Some(ban) = self.records("ban").get::<Ban>(key).await? {
                    bans.push(ban);
                }
            }
        }
        Ok(bans)
    }

    /// Refuses a banned person (see the module documentation); lets them through when the
    /// store cannot say.
    pub async fn admit_person(&self, owner: &Owner) -> Result<()> {
        if self.not_banned.recently(owner) {
            return Ok(());
        }
        match self.records("ban").get::<Ban>(&Self::ban_key(owner)?).await {
            Ok(Some(_)) => Err(Error::Forbidden(BANNED_MESSAGE.into())),
            Ok(None) => {
                self.not_banned.remember(owner);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(owner = %owner, error = %error, "could not read bans; letting the person through");
                Ok(())
            }
        }
    }

    /// Starts a person's day again: their images and spending today count from zero (both
    /// sides of a link). For the operator (`atelier admin reset-budget`).
    pub async fn reset_budget(&self, owner: &Owner) -> Result<Vec<Owner>> {
        let owners = self.one_person(owner).await?;
        for owner in &owners {
            self.jobs.reset_day(owner).await?;
        }
        Ok(owners)
    }

    /// The jobs in progress on every replica, oldest first.
    pub async fn jobs_in_progress(&self) -> Result<Vec<crate::jobs::ledger::JobRecord>> {
        self.jobs.jobs_in_progress().await
    }

    /// Cancels a job in progress for the operator, as if its owner had: a job that has not
    /// started leaves at no charge; one that has started runs to its end.
    pub async fn cancel_job_as_operator(&self, id: crate::jobs::JobId) -> Result<crate::jobs::Cancelled> {
        let record = self
            .jobs
            .jobs_in_progress()
            .await?
            .into_iter()
            .find(|record| record.id == id)
            .ok_or_else(|| Error::not_found("no job in progress has that id"))?;
        self.jobs.cancel(&record.owner, id).await
    }

    /// The replicas that have written a heartbeat.
    pub async fn replicas(&self) -> Result<Vec<crate::jobs::ledger::ReplicaRecord>> {
        self.jobs.replicas().await
    }

    /// Who a Discord user is, for a command or a button: their gallery's owner (see
    /// [`Atelier::owner_for_discord`]), refused when either side of them is banned.
    pub async fn person_for_discord(&self, discord_user_id: u64) -> Result<Owner> {
        let discord = Owner::discord(discord_user_id);
        self.admit_person(&discord).await?;
        let owner = self.owner_for_discord(discord_user_id).await?;
        if owner != discord {
            self.admit_person(&owner).await?;
        }
        Ok(owner)
    }
}
