//! Sharing: an owner publishes an image, and it gets a public page anyone can open without
//! signing in (with Open Graph tags, so a pasted link unfurls with the picture), and, when it
//! was made in a Discord server, a place in that server's public gallery.
//!
//! Published is a pair of small records beside the gallery, never a change to the image:
//! `public/images/{id}.json` says who owns image `id` and what to show of it, and
//! `public/servers/{guild}/{id, newest first}.json` lists it in its server's gallery, so a page
//! of a server's gallery is one listing and one read per image, however large the server.
//! Unpublishing or deleting the image deletes both; a public page whose record is gone is a 404.
//! The public record is written last and deleted first, so a crash in between leaves at worst
//! a server-gallery entry whose page is already gone, which the listing skips.
//!
//! The pages are cacheable for a minute, and a CDN keeps them at the edge for that long. Once
//! a published image stops being public (unpublished, deleted, or its person's data deleted),
//! the CDN is told to drop its copies of the pages that showed it
//! ([`PublicCache`](crate::public_cache::PublicCache)): `/p/{id}` with its files and, when it
//! was in one, its server's gallery. A CDN that cannot be told fails nothing: the records are
//! gone already, and the max-age bounds what it still shows.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::gallery::{ImageId, ImageRecord, Origin, Owner, Variant};
use crate::request::Size;
use crate::store::ObjectKey;

use super::{Actor, Atelier, ImageRef};

/// The most pages named in one request to forget: CloudFront works on at most 15 wildcard
/// paths at once, across every invalidation in progress, so more than a few (a person's whole
/// public gallery, deleted with their data) are forgotten as every public page instead.
pub(super) const MOST_PAGES_NAMED: usize = 8;

/// The most images of a server's gallery on one page.
pub const SERVER_GALLERY_PAGE: usize = 48;

/// What the public may see of a published image: no owner name, no session, no lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub id: ImageId,
    /// Whose gallery has it (not shown; it says where the bytes are).
    pub owner: Owner,
    pub prompt: Option<String>,
    /// The model's family, such as "Stable Image Core".
    pub model: String,
    pub size: Size,
    /// The Discord server it was made in, if any.
    pub guild_id: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A page of a server's public gallery, newest first.
#[derive(Debug, Clone)]
pub struct PublicPage {
    pub images: Vec<Published>,
    /// Where the next page starts, when there is one.
    pub next: Option<String>,
}

impl Atelier {
    fn public_key(id: ImageId) -> Result<ObjectKey> {
        Self::key(format!("public/images/{id}.json"))
    }

    fn server_key(guild_id: u64, id: ImageId) -> Result<ObjectKey> {
        Self::key(format!("public/servers/{guild_id}/{}.json", id.newest_first()))
    }

    /// Publishes one of the actor's images; publishing it again changes nothing.
    pub async fn publish(&self, actor: &Actor, image: &ImageRef) -> Result<Published> {
        let (found, record) = self.find(image).await?;
        self.only_owner(actor, &found, "only the person who made this image can publish it").await?;
        let guild_id = match record.origin {
            Origin::Discord { guild_id, .. } => guild_id,
            Origin::Cli | Origin::Web => None,
        };
        let published = Published {
            id: record.id,
            owner: found.owner.clone(),
            prompt: record.prompt.clone(),
            model: record.model_family.clone(),
            size: record.size,
            guild_id,
            published_at: OffsetDateTime::now_utc(),
        };
        if let Some(guild_id) = guild_id {
            self.records("server gallery entry").overwrite(&Self::server_key(guild_id, record.id)?, &published).await?;
        }
        self.records("published image").overwrite(&Self::public_key(record.id)?, &published).await?;
        tracing::info!(owner = %found.owner, image = %record.id, "published an image");
        Ok(published)
    }

    /// Takes one of the actor's images off its public page and its server's gallery.
    pub async fn unpublish(&self, actor: &Actor, image: &ImageRef) -> Result<()> {
        let (found, record) = self.find(image).await?;
        self.only_owner(actor, &found, "only the person who made this image can unpublish it").await?;
        self.forget_published(&record).await
    }

    /// Deletes an image's public records (public page first, then its server entry) and, when
    /// it was published, tells the CDN to drop the pages that showed it.
    pub(super) async fn forget_published(&self, record: &ImageRecord) -> Result<()> {
        let public = self.records("published image");
        let published = public.get::<Published>(&Self::public_key(record.id)?).await?;
        public.delete(&Self::public_key(record.id)?).await?;
        let guild_id = published.as_ref().and_then(|published| published.guild_id).or(match record.origin {
            Origin::Discord { guild_id, .. } => guild_id,
            Origin::Cli | Origin::Web => None,
        });
        if let Some(guild_id) = guild_id {
            self.records("server gallery entry").delete(&Self::server_key(guild_id, record.id)?).await?;
        }
        // Only what was public can be in a shared cache: an image never published costs no
        // request (nor does a leftover server entry, which its page's absence already hid).
        if let Some(published) = published {
            self.forget_public_pages(&[published.id], published.guild_id.as_slice()).await;
        }
        Ok(())
    }

    /// Tells the CDN, if there is one, to drop its copies of the public pages of `images` and
    /// of the galleries of `guilds` (each with its files and later pages: a path and `*`).
    /// Never fails: the records are gone already and the pages' max-age bounds how long a copy
    /// lives, so a CDN that cannot be told is the operator's to see in the log, not a reason
    /// to fail (or half undo) what the person did.
    pub(super) async fn forget_public_pages(&self, images: &[ImageId], guilds: &[u64]) {
        let Some(cache) = &self.public_cache else { return };
        if images.is_empty() && guilds.is_empty() {
            return;
        }
        let paths: Vec<String> = if images.len() + guilds.len() > MOST_PAGES_NAMED {
            vec!["/p/*".to_string(), "/servers/*".to_string()]
        } else {
            // `/servers/{guild}*` also names a longer guild id that starts with this one: a
            // needless refresh of another gallery, cheaper than one path per page of this one.
            let pages = images.iter().map(|id| format!("/p/{id}*"));
            pages.chain(guilds.iter().map(|guild_id| format!("/servers/{guild_id}*"))).collect()
        };
        if let Err(error) = cache.forget(&paths).await {
            tracing::warn!(
                error = %error,
                paths = ?paths,
                "the CDN could not be told to drop pages that are no longer public; its copies expire on their own \
                 within their max-age"
            );
        }
    }

    /// [`Self::forget_public_pages`] for public records deleted by their keys (a person's
    /// data deleted whole): `public/images/{id}.json` and `public/servers/{guild}/…`.
    pub(super) async fn forget_pages_of_public_keys(&self, keys: &[ObjectKey]) {
        let images: Vec<ImageId> = keys
            .iter()
            .filter_map(|key| key.as_str().strip_prefix("public/images/")?.strip_suffix(".json"))
            .filter_map(|id| ImageId::parse(id).ok())
            .collect();
        let mut guilds: Vec<u64> = keys
            .iter()
            .filter_map(|key| key.as_str().strip_prefix("public/servers/")?.split('/').next()?.parse().ok())
            .collect();
        guilds.sort_unstable();
        guilds.dedup();
        self.forget_public_pages(&images, &guilds).await;
    }

    /// This core telling `cache` instead of the configured CDN, for the tests of what it is told.
    #[cfg(test)]
    pub(crate) fn with_public_cache(mut self, cache: std::sync::Arc<dyn crate::public_cache::PublicCache>) -> Self {
        self.public_cache = Some(cache);
        self
    }

    /// Whether the actor's image is published, for its page.
    pub async fn is_published(&self, image: &ImageRef) -> Result<bool> {
        Ok(self.records("published image").get::<Published>(&Self::public_key(image.id)?).await?.is_some())
    }

    /// A published image, for anyone: [`crate::Error::NotFound`] when it is not published.
    pub async fn published_image(&self, id: ImageId) -> Result<Published> {
        self.records("published image")
            .get::<Published>(&Self::public_key(id)?)
            .await?
            .ok_or_else(|| crate::Error::not_found("this image is not published (or no longer)"))
    }

    /// A published image's bytes (or thumbnail) and media type, for anyone.
    pub async fn published_file(&self, id: ImageId, variant: Variant) -> Result<(bytes::Bytes, String)> {
        let published = self.published_image(id).await?;
        self.image_file(&ImageRef { owner: published.owner, id }, variant).await
    }

    /// A page of a Discord server's public gallery, newest first, from `cursor` on.
    pub async fn server_gallery(&self, guild_id: u64, cursor: Option<&str>, limit: usize) -> Result<PublicPage> {
        let limit = limit.clamp(1, SERVER_GALLERY_PAGE);
        let prefix = format!("public/servers/{guild_id}/");
        let start_after = match cursor {
            Some(cursor) => {
                let id = ImageId::parse(cursor).map_err(|_| crate::Invalid::new("that page does not exist"))?;
                Some(Self::server_key(guild_id, id)?.as_str().to_string())
            }
            None => None,
        };
        let keys = self.store().list(&prefix, start_after.as_deref(), limit + 1).await?;
        let more = keys.len() > limit;
        let mut images = Vec::new();
        for key in keys.iter().take(limit) {
            if let Some(entry) = self.records("server gallery entry").get::<Published>(key).await? {
                images.push(entry);
            }
        }
        let next = if more { images.last().map(|last| last.id.to_string()) } else { None };
        Ok(PublicPage { images, next })
    }
}
