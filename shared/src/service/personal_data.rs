//! A person's data as a whole: everything the store keeps of them, to hand it to them
//! (`atelier admin export`, the account page's export) or to delete it (`atelier admin
//! delete`, the account page's deletion). A person is both sides of a link: their Discord
//! user and their web account.
//!
//! What is theirs: everything under `users/{owner}/` (images, thumbnails, records, settings,
//! ledgers, jobs, held and refused requests, appeals), their link records, their ban, the public
//! records of their published images, and the chat conversations, web sessions and jobs in
//! progress that name them (found by reading those folders). Usage records stay: they are the
//! operator's accounts of what was spent, and name an owner inside, not in their keys.
//!
//! Deleting also clears the linked Discord id from the sign-in directory (Cognito's custom
//! attribute), ends their web sessions, and forgets them in this process's caches.

use serde_json::Value;

use crate::error::Result;
use crate::gallery::Owner;
use crate::store::ObjectKey;

use super::Atelier;

/// What deleting a person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedPerson {
    /// The owners deleted (one person: both sides of a link).
    pub owners: Vec<Owner>,
    /// How many store objects were deleted.
    pub objects: usize,
    /// Whether a linked web account's Discord id was cleared in the directory.
    pub directory_cleared: bool,
}

impl Atelier {
    /// Every key of `prefix` (all pages).
    async fn all_keys(&self, prefix: &str) -> Result<Vec<ObjectKey>> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().list(prefix, after.as_deref(), 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.as_str().to_string());
            keys.extend(page);
        }
        Ok(keys)
    }

    /// The keys of `prefix` whose JSON names one of `owners` at `path` (such as `["owner"]`).
    async fn keys_naming(&self, prefix: &str, path: &[&str], owners: &[Owner]) -> Result<Vec<ObjectKey>> {
        let mut found = Vec::new();
        for key in self.all_keys(prefix).await? {
            let Some(value) = self.records("record").get::<Value>(&key).await? else { continue };
            let named = path.iter().try_fold(&value, |value, field| value.get(field)).and_then(Value::as_str);
            if named.is_some_and(|named| owners.iter().any(|owner| owner.as_str() == named)) {
                found.push(key);
            }
        }
        Ok(found)
    }

    /// Every store key that is part of the person `owner` (see the module documentation),
    /// and the owners that make up that person.
    pub async fn person_keys(&self, owner: &Owner) -> Result<(Vec<Owner>, Vec<ObjectKey>)> {
        let owners = self.one_person(owner).await?;
        let mut keys = Vec::new();
        for owner in &owners {
            let own = self.all_keys(&format!("users/{owner}/")).await?;
            // The public records of their published images, by the images' ids.
            for key in own.iter().filter(|key| key.as_str().contains("/images/")) {
                let id = key.as_str().rsplit('/').next().and_then(|name| name.split('.').next()).unwrap_or_default();
                if let Ok(id) = crate::gallery::ImageId::parse(id)
                    && let Ok(published) = self.published_image(id).await
                {
                    keys.push(Self::key(format!("public/images/{id}.json"))?);
                    if let Some(guild_id) = published.guild_id {
                        keys.push(Self::key(format!("public/servers/{guild_id}/{}.json", id.newest_first()))?);
                    }
                }
            }
            keys.extend(own);
            let mut singles = vec![format!("bans/{owner}.json"), format!("links/web/{owner}.json")];
            if let Some(discord_user_id) = owner.discord_user_id() {
                singles.push(format!("links/discord/{discord_user_id}.json"));
                singles.push(format!("links/moved/{discord_user_id}.json"));
            }
            for single in singles {
                let key = Self::key(single)?;
                if self.store().get(&key).await.is_ok() {
                    keys.push(key);
                }
            }
        }
        keys.extend(self.keys_naming("conversations/", &["owner"], &owners).await?);
        keys.extend(self.keys_naming("sessions/", &["user", "owner"], &owners).await?);
        keys.extend(self.keys_naming("jobs/", &["owner"], &owners).await?);
        keys.sort();
        keys.dedup();
        Ok((owners, keys))
    }

    /// Everything the store keeps of a person, as (key, bytes), for an archive.
    pub async fn export_person(&self, owner: &Owner) -> Result<Vec<(String, bytes::Bytes)>> {
        let (_, keys) = self.person_keys(owner).await?;
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            match self.store().get(&key).await {
                Ok(bytes) => objects.push((key.as_str().to_string(), bytes)),
                // Deleted meanwhile (a job ended, a session expired): not theirs any more.
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(objects)
    }

    /// Everything of the actor's own, as a tar archive (the account page's export).
    pub async fn export_own_data(&self, actor: &super::Actor) -> Result<Vec<u8>> {
        data_archive(&self.export_person(&actor.owner).await?)
    }

    /// Deletes everything of the actor's own (the account page's deletion).
    pub async fn delete_own_data(&self, actor: &super::Actor) -> Result<DeletedPerson> {
        self.delete_person(&actor.owner).await
    }

    /// Deletes a person entirely (see the module documentation).
    pub async fn delete_person(&self, owner: &Owner) -> Result<DeletedPerson> {
        let (owners, keys) = self.person_keys(owner).await?;
        let mut directory_cleared = false;
        if let Some(accounts) = &self.accounts {
            for owner in &owners {
                if let Some(link) = accounts.link_for_web(owner).await?
                    && accounts.directory().records_links()
                {
                    accounts.directory().record_discord_id(&link.username, None).await?;
                    directory_cleared = true;
                }
            }
        }
        // The public records first, so nothing of theirs stays visible while the rest goes.
        let (public, private): (Vec<_>, Vec<_>) = keys.into_iter().partition(|key| key.as_str().starts_with("public/"));
        let objects = public.len() + private.len();
        for key in &public {
            self.store().delete(key).await?;
        }
        // Told before the rest goes, so a failure there leaves no cached public page behind.
        self.forget_pages_of_public_keys(&public).await;
        for key in &private {
            self.store().delete(key).await?;
        }
        if let Some(accounts) = &self.accounts {
            accounts.forget(&owners);
        }
        tracing::info!(owner = %owner, objects, "deleted a person's data");
        Ok(DeletedPerson { owners, objects, directory_cleared })
    }
}

/// A tar archive of `objects`, each under its store key.
pub fn data_archive(objects: &[(String, bytes::Bytes)]) -> Result<Vec<u8>> {
    let failed = |error: std::io::Error| crate::Error::operator("building an archive", error);
    let mut builder = tar::Builder::new(Vec::new());
    for (key, bytes) in objects {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, key, bytes.as_ref()).map_err(failed)?;
    }
    builder.into_inner().map_err(failed)
}
