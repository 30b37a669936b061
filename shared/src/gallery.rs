//! The gallery: every image anyone makes, with its prompt, parameters and lineage, kept per
//! owner in an [`ObjectStore`].
//!
//! Layout, identical in every backend:
//! - `users/{owner}/images/{id}.{png|jpg|webp}`: the bytes exactly as the engine returned them;
//! - `users/{owner}/thumbnails/{id}.jpg`: a small JPEG made once, just after the image is
//!   stored (or, should that not have happened, when it is first asked for);
//! - `users/{owner}/records/{newest-first key}.json`: the [`ImageRecord`].
//!
//! The record key is the image id with its bits inverted, so a plain ascending listing (all
//! S3 offers) returns the newest image first and pages with `start-after`. The record is
//! written after the bytes: an image appears in listings only once its bytes are stored.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::engine::EngineKind;
use crate::engine::SafetyOutcome;
use crate::error::{Error, Invalid, Result};
use crate::images::{CheckedImage, make_thumbnail};
use crate::request::{EditMode, Seed, Shape, Size};
use crate::store::spool::{Spool, SpooledObject};
use crate::store::{ObjectKey, ObjectStore, PutMode, StoreError};

/// Whose gallery an image is in: a web account, or a Discord user not linked yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner(String);

impl Owner {
    /// The operator of a local installation: the CLI and local-mode web sign-in act as this owner.
    pub fn local_operator() -> Self {
        Self("local-operator".into())
    }

    /// A Discord user who has not linked a web account.
    pub fn discord(user_id: u64) -> Self {
        Self(format!("discord-{user_id}"))
    }

    /// A web account, by the sign-in provider's subject (`sub`) claim.
    pub fn web_account(subject: &str) -> Result<Self, Invalid> {
        Self::parse(&format!("web-{subject}"))
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let valid = !text.is_empty()
            && text.len() <= 160
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid { Ok(Self(text.to_string())) } else { Err(Invalid::new(format!("`{text}` is not a valid owner"))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Owner {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<Owner> for String {
    fn from(owner: Owner) -> Self {
        owner.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An image's id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageId(pub Ulid);

impl ImageId {
    pub fn new() -> Self {
        Self(Ulid::new())
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        Ulid::from_string(text.trim()).map(Self).map_err(|_| Invalid::new(format!("`{text}` is not an image id")))
    }

    /// The record key fragment that sorts newest first.
    fn newest_first(self) -> String {
        Ulid(u128::MAX - self.0.0).to_string()
    }
}

impl Default for ImageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// Where an image was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    Cli,
    Web,
    Discord { guild_id: Option<u64>, channel_id: u64, message_id: Option<u64> },
}

impl Origin {
    pub fn kind(&self) -> OriginKind {
        match self {
            Self::Cli => OriginKind::Cli,
            Self::Web => OriginKind::Web,
            Self::Discord { .. } => OriginKind::Discord,
        }
    }
}

/// The kind of [`Origin`], for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    Cli,
    Web,
    Discord,
}

impl OriginKind {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cli" => Ok(Self::Cli),
            "web" => Ok(Self::Web),
            "discord" => Ok(Self::Discord),
            _ => Err(Invalid::new(format!("`{text}` is not a source: use cli, web or discord"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Web => "web",
            Self::Discord => "discord",
        }
    }
}

/// A user-named group of related images (the seed tool's "sessions").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionName(String);

impl SessionName {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(Invalid::new("a session name is 1 to 60 characters, on one line"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionName {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<SessionName> for String {
    fn from(name: SessionName) -> Self {
        name.0
    }
}

/// How an image was asked for, beyond the prompt: what is needed to make it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Parameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub colors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit_mode: Option<EditMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// Everything kept about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub owner: Owner,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub model_id: String,
    pub model_family: String,
    pub engine: EngineKind,
    pub parameters: Parameters,
    pub seed: Seed,
    pub size: Size,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub safety: SafetyOutcome,
    /// The image this one was made from (edits and variations).
    pub parent: Option<ImageId>,
    pub origin: Origin,
    pub session: Option<SessionName>,
    /// The media type of the stored bytes.
    pub media_type: String,
    /// The extension of the stored bytes' key.
    pub extension: String,
}

/// How to narrow a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub session: Option<SessionName>,
    pub origin: Option<OriginKind>,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<ImageRecord>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Which stored form of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Full,
    Thumbnail,
}

/// How long a download URL works: long enough to load a page, short enough not to be shared.
pub const DOWNLOAD_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

/// The most records one page may hold.
pub const MAX_PAGE: usize = 100;

/// The gallery over an object store; see the module documentation.
#[derive(Clone)]
pub struct Gallery {
    store: Arc<dyn ObjectStore>,
    spool: Option<Spool>,
}

impl Gallery {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, spool: None }
    }

    /// Keeps images in `spool` when the store cannot be reached (see [`Self::save`]).
    pub fn with_spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn key(text: String) -> Result<ObjectKey> {
        ObjectKey::new(text).map_err(Error::from)
    }

    fn record_key(owner: &Owner, id: ImageId) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/records/{}.json", id.newest_first()))
    }

    fn image_key(owner: &Owner, id: ImageId, extension: &str) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/images/{id}.{extension}"))
    }

    fn thumbnail_key(owner: &Owner, id: ImageId) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/thumbnails/{id}.jpg"))
    }

    /// Keeps an image: its bytes as they are, its record, then its thumbnail. When the store
    /// cannot be reached and a spool is set, the parts go to the spool instead and the image
    /// counts as kept: the person has it, and the spool writes it to the store later.
    pub async fn save(&self, record: &ImageRecord, image: &CheckedImage) -> Result<()> {
        match self.save_image(record, image).await? {
            Saved::Stored => self.file(record, image).await,
            Saved::Spooled => Ok(()),
        }
    }

    /// The first step of [`Self::save`], for a result someone is waiting for: the image's bytes
    /// (the one part that cannot be made again), then its record, so its gallery page and the
    /// buttons under a posted result work from the moment it shows. [`Self::file`] makes the
    /// thumbnail and can run while the result is being shown. When the store is down, the
    /// whole image goes to the spool here, and there is nothing left to file.
    pub async fn save_image(&self, record: &ImageRecord, image: &CheckedImage) -> Result<Saved> {
        let image_object = SpooledObject {
            key: Self::image_key(&record.owner, record.id, &record.extension)?,
            content_type: record.media_type.clone(),
            body: image.bytes().clone(),
        };
        let record_object = Self::record_object(record)?;
        match self.put_new(&image_object).await {
            Ok(()) => {}
            Err(error @ StoreError::Unavailable { .. }) => {
                let thumbnail_object = self.thumbnail_object(record, image).await?;
                // The spool writes the parts in this order too: the record after the bytes.
                self.spool_parts(record, error, vec![image_object, record_object, thumbnail_object]).await?;
                return Ok(Saved::Spooled);
            }
            Err(error) => return Err(saving_failed(error)),
        }
        match self.put_new(&record_object).await {
            Ok(()) => Ok(Saved::Stored),
            Err(error @ StoreError::Unavailable { .. }) => {
                let thumbnail_object = self.thumbnail_object(record, image).await?;
                self.spool_parts(record, error, vec![record_object, thumbnail_object]).await?;
                Ok(Saved::Spooled)
            }
            Err(error) => Err(saving_failed(error)),
        }
    }

    /// The second step of [`Self::save`], once the image and its record are stored: the
    /// thumbnail, from the pixels decoded once on the blocking pool. Until it is written (a few
    /// milliseconds), or if this process stops first, the gallery makes it when it is first
    /// asked for ([`Self::image`]).
    pub async fn file(&self, record: &ImageRecord, image: &CheckedImage) -> Result<()> {
        let thumbnail_object = self.thumbnail_object(record, image).await?;
        match self.put_new(&thumbnail_object).await {
            // Made on a first view meanwhile: the same picture.
            Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(error @ StoreError::Unavailable { .. }) => {
                self.spool_parts(record, error, vec![thumbnail_object]).await
            }
            Err(error) => Err(saving_failed(error)),
        }
    }

    fn record_object(record: &ImageRecord) -> Result<SpooledObject> {
        let body = serde_json::to_vec_pretty(record).map_err(|error| Error::operator("encoding a record", error))?;
        Ok(SpooledObject {
            key: Self::record_key(&record.owner, record.id)?,
            content_type: "application/json".into(),
            body: Bytes::from(body),
        })
    }

    /// An image's thumbnail, ready to write.
    async fn thumbnail_object(&self, record: &ImageRecord, image: &CheckedImage) -> Result<SpooledObject> {
        let pixels_source = image.clone();
        let thumbnail = tokio::task::spawn_blocking(move || {
            let pixels = pixels_source.decode()?;
            make_thumbnail(&pixels).map_err(|error| Error::operator("making a thumbnail", error))
        })
        .await
        .map_err(|error| Error::operator("the thumbnail task failed", error))??;
        Ok(SpooledObject {
            key: Self::thumbnail_key(&record.owner, record.id)?,
            content_type: "image/jpeg".into(),
            body: thumbnail,
        })
    }

    async fn put_new(&self, object: &SpooledObject) -> Result<(), StoreError> {
        self.store.put(&object.key, object.body.clone(), &object.content_type, PutMode::CreateOnly).await
    }

    /// Hands parts the store could not take to the spool, when there is one.
    async fn spool_parts(&self, record: &ImageRecord, error: StoreError, parts: Vec<SpooledObject>) -> Result<()> {
        let Some(spool) = &self.spool else { return Err(saving_failed(error)) };
        let depth = spool.push(parts).await.map_err(|spool_error| {
            tracing::error!(image.id = %record.id, "the store failed ({error}) and the spool refused too");
            Error::operator("the image was made but could neither be saved nor spooled", spool_error)
        })?;
        tracing::warn!(
            image.id = %record.id,
            owner = %record.owner,
            spool.entries = depth.entries,
            spool.bytes = depth.bytes,
            "the store failed ({error}); image {} waits in the spool ({} images, {} bytes) until it is back",
            record.id,
            depth.entries,
            depth.bytes
        );
        Ok(())
    }

    /// The spool images wait in while the store is down, if one is set.
    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    /// The record of one image, if the owner has it.
    pub async fn record(&self, owner: &Owner, id: ImageId) -> Result<ImageRecord> {
        let bytes = self.store.get(&Self::record_key(owner, id)?).await?;
        serde_json::from_slice(&bytes)
            .map_err(|error| Error::operator(format!("reading the record of image {id}"), error))
    }

    /// The bytes of one image, full size or thumbnail, with their media type.
    pub async fn image(&self, owner: &Owner, id: ImageId, variant: Variant) -> Result<(Bytes, String)> {
        match variant {
            Variant::Thumbnail => match self.store.get(&Self::thumbnail_key(owner, id)?).await {
                Ok(bytes) => Ok((bytes, "image/jpeg".into())),
                // Still being made, or its process stopped first: make it now, once.
                Err(StoreError::NotFound(_)) => Ok((self.remake_thumbnail(owner, id).await?, "image/jpeg".into())),
                Err(error) => Err(error.into()),
            },
            Variant::Full => {
                let record = self.record(owner, id).await?;
                let bytes = self.store.get(&Self::image_key(owner, id, &record.extension)?).await?;
                Ok((bytes, record.media_type))
            }
        }
    }

    /// Makes and stores the thumbnail of an image whose record and bytes are stored.
    async fn remake_thumbnail(&self, owner: &Owner, id: ImageId) -> Result<Bytes> {
        let record = self.record(owner, id).await?;
        let bytes = self.store.get(&Self::image_key(owner, id, &record.extension)?).await?;
        // Checked by its header and chunks only: making the thumbnail decodes it anyway.
        let image = tokio::task::spawn_blocking(move || CheckedImage::check_model_output(bytes, "the stored image"))
            .await
            .map_err(|error| Error::operator("checking a stored image", error))??;
        let thumbnail = self.thumbnail_object(&record, &image).await?;
        match self.put_new(&thumbnail).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(error) => tracing::warn!(image.id = %id, error = %error, "could not store a remade thumbnail"),
        }
        Ok(thumbnail.body)
    }

    /// A short-lived URL to download an image directly from the store, when it offers one
    /// (S3); `None` means the web app serves the bytes through its own authorised route.
    pub async fn download_url(&self, owner: &Owner, id: ImageId, variant: Variant) -> Result<Option<String>> {
        let key = match variant {
            Variant::Thumbnail => Self::thumbnail_key(owner, id)?,
            Variant::Full => Self::image_key(owner, id, &self.record(owner, id).await?.extension)?,
        };
        Ok(self.store.download_url(&key, DOWNLOAD_URL_LIFETIME).await?)
    }

    /// A page of the owner's images, newest first.
    pub async fn list(&self, owner: &Owner, filter: &ListFilter, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let limit = limit.clamp(1, MAX_PAGE);
        let prefix = format!("users/{owner}/records/");
        let mut after = match cursor {
            Some(cursor) => {
                let id = ImageId::parse(cursor)
                    .map_err(|_| Invalid::new("that page link is broken: start from the first page"))?;
                Some(Self::record_key(owner, id)?.as_str().to_string())
            }
            None => None,
        };
        let mut records = Vec::new();
        loop {
            // Fetch a little more than needed: filters may drop some, and one extra tells
            // whether a next page exists.
            let keys = self.store.list(&prefix, after.as_deref(), (limit + 1).max(32)).await?;
            let exhausted = keys.is_empty();
            after = keys.last().map(|key| key.as_str().to_string());
            let mut batch = Vec::with_capacity(keys.len());
            for (key, bytes) in keys.iter().zip(self.store.get_many(&keys).await) {
                let record = serde_json::from_slice::<ImageRecord>(&bytes?)
                    .map_err(|error| Error::operator(format!("reading the record at {}", key.as_str()), error))?;
                batch.push(record);
            }
            records.extend(batch.into_iter().filter(|record| {
                filter.session.as_ref().is_none_or(|session| record.session.as_ref() == Some(session))
                    && filter.origin.is_none_or(|origin| record.origin.kind() == origin)
            }));
            if records.len() > limit || exhausted {
                break;
            }
        }
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|record| record.id.to_string())
        } else {
            None
        };
        Ok(Page { records, next_cursor })
    }

    /// The images made from this one.
    pub async fn children(&self, owner: &Owner, id: ImageId) -> Result<Vec<ImageRecord>> {
        // Children are always newer than their parent, so the scan stops at the parent.
        let mut children = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list(owner, &ListFilter::default(), cursor.as_deref(), MAX_PAGE).await?;
            let reached_parent = page.records.iter().any(|record| record.id <= id);
            children.extend(page.records.into_iter().filter(|record| record.parent == Some(id)));
            match page.next_cursor {
                Some(next) if !reached_parent => cursor = Some(next),
                _ => return Ok(children),
            }
        }
    }

    /// Deletes an image: the record first (so it leaves listings at once), then its bytes.
    pub async fn delete(&self, owner: &Owner, id: ImageId) -> Result<()> {
        let record = self.record(owner, id).await?;
        self.store.delete(&Self::record_key(owner, id)?).await?;
        self.store.delete(&Self::image_key(owner, id, &record.extension)?).await?;
        self.store.delete(&Self::thumbnail_key(owner, id)?).await?;
        Ok(())
    }

    /// Whether the store can be used.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.store.check().await
    }

    /// Moves every image of `from` into `to`'s gallery (when a Discord user links a web
    /// account), returning how many moved. Per image: the bytes and the thumbnail are copied
    /// create-only, then the record with its owner rewritten (so the image appears in `to`'s
    /// listings whole), then the source's bytes, thumbnail and record are deleted, the record
    /// last. Safe to run again after a crash: an `AlreadyExists` is a copy made before, a
    /// missing source part one already moved, and an image never shows twice in one gallery.
    pub async fn adopt(&self, from: &Owner, to: &Owner) -> Result<usize> {
        /// Copies one object create-only; a source already gone is fine if the copy is there.
        async fn copy(store: &dyn ObjectStore, source: &ObjectKey, target: &ObjectKey, media_type: &str) -> Result<()> {
            match store.get(source).await {
                Ok(bytes) => match store.put(target, bytes, media_type, PutMode::CreateOnly).await {
                    Ok(()) | Err(StoreError::AlreadyExists(_)) => Ok(()),
                    Err(error) => Err(Error::operator("moving an image between galleries", error)),
                },
                Err(StoreError::NotFound(_)) => match store.get(target).await {
                    Ok(_) => Ok(()),
                    Err(StoreError::NotFound(_)) => {
                        tracing::warn!("{} is missing, and so is its copy {}", source.as_str(), target.as_str());
                        Ok(())
                    }
                    Err(error) => Err(Error::operator("moving an image between galleries", error)),
                },
                Err(error) => Err(Error::operator("moving an image between galleries", error)),
            }
        }

        if from == to {
            return Ok(0);
        }
        let store = self.store.as_ref();
        let failed = |error: StoreError| Error::operator("moving an image between galleries", error);
        let prefix = format!("users/{from}/records/");
        let mut moved = 0;
        let mut after: Option<String> = None;
        loop {
            let keys = store.list(&prefix, after.as_deref(), MAX_PAGE).await.map_err(failed)?;
            let Some(last) = keys.last() else { return Ok(moved) };
            after = Some(last.as_str().to_string());
            for source_record_key in keys {
                let bytes = match store.get(&source_record_key).await {
                    Ok(bytes) => bytes,
                    Err(StoreError::NotFound(_)) => continue,
                    Err(error) => return Err(failed(error)),
                };
                let mut record: ImageRecord = serde_json::from_slice(&bytes).map_err(|error| {
                    Error::operator(format!("reading the record at {}", source_record_key.as_str()), error)
                })?;
                let id = record.id;
                let (source_image, source_thumbnail) =
                    (Self::image_key(from, id, &record.extension)?, Self::thumbnail_key(from, id)?);
                copy(store, &source_image, &Self::image_key(to, id, &record.extension)?, &record.media_type).await?;
                copy(store, &source_thumbnail, &Self::thumbnail_key(to, id)?, "image/jpeg").await?;
                record.owner = to.clone();
                let body =
                    serde_json::to_vec_pretty(&record).map_err(|error| Error::operator("encoding a record", error))?;
                match store
                    .put(&Self::record_key(to, id)?, Bytes::from(body), "application/json", PutMode::CreateOnly)
                    .await
                {
                    Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                    Err(error) => return Err(failed(error)),
                }
                store.delete(&source_image).await.map_err(failed)?;
                store.delete(&source_thumbnail).await.map_err(failed)?;
                store.delete(&source_record_key).await.map_err(failed)?;
                moved += 1;
            }
        }
    }
}

/// Where [`Gallery::save_image`] left an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Its bytes and record are in the store; [`Gallery::file`] writes the thumbnail.
    Stored,
    /// All of it waits in the spool.
    Spooled,
}

fn saving_failed(error: StoreError) -> Error {
    Error::operator("the image was made but could not be saved yet", error)
}

#[cfg(test)]
mod tests;
