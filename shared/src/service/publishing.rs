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

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::gallery::{ImageId, ImageRecord, Origin, Owner, Variant};
use crate::request::Size;
use crate::store::ObjectKey;

use super::{Actor, Atelier, ImageRef};

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

    /// Deletes an image's public records (public page first, then its server entry).
    pub(super) async fn forget_published(&self, record: &ImageRecord) -> Result<()> {
        let public = self.records("published image");
        let published = public.get::<Published>(&Self::public_key(record.id)?).await?;
        public.delete(&Self::public_key(record.id)?).await?;
        let guild_id = published.and_then(|published| published.guild_id).or(match record.origin {
            Origin::Discord { guild_id, .. } => guild_id,
            Origin::Cli | Origin::Web => None,
        });
        if let Some(guild_id) = guild_id {
            self.records("server gallery entry").delete(&Self::server_key(guild_id, record.id)?).await?;
        }
        Ok(())
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
