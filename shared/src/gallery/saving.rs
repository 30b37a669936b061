//! Keeping a new image: its bytes, its record and its thumbnail, in the store or, while the
//! store cannot be reached, in the spool.

use bytes::Bytes;

use super::{Gallery, ImageRecord};
use crate::error::{Error, Result};
use crate::images::{CheckedImage, make_thumbnail};
use crate::store::spool::{Spool, SpooledObject};
use crate::store::{ObjectKey, PutMode, StoreError};

impl Gallery {
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
        // The spool writes the parts in this order too: the index entries after the bytes,
        // the record after both (see `index`).
        let entries_then_record = |mut entries: Vec<SpooledObject>, record_object: SpooledObject| {
            entries.push(record_object);
            entries
        };
        match self.put_new(&image_object).await {
            Ok(()) => {}
            Err(error @ StoreError::Unavailable { .. }) => {
                let thumbnail_object = self.thumbnail_object(record, image).await?;
                let mut parts = vec![image_object];
                parts.extend(entries_then_record(Self::entry_objects(record)?, record_object));
                parts.push(thumbnail_object);
                self.spool_parts(record, error, parts).await?;
                return Ok(Saved::Spooled);
            }
            Err(error) => return Err(saving_failed(error)),
        }
        let written = match self.put_entries(record).await {
            Ok(()) => self.put_new(&record_object).await,
            Err(error) => Err(error),
        };
        match written {
            Ok(()) => Ok(Saved::Stored),
            Err(error @ StoreError::Unavailable { .. }) => {
                let thumbnail_object = self.thumbnail_object(record, image).await?;
                let mut parts = entries_then_record(Self::entry_objects(record)?, record_object);
                parts.push(thumbnail_object);
                self.spool_parts(record, error, parts).await?;
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
        let filed = match self.put_new(&thumbnail_object).await {
            // Made on a first view meanwhile: the same picture.
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {
                self.unless_deleted_meanwhile(record, &thumbnail_object.key).await;
                Ok(())
            }
            Err(error @ StoreError::Unavailable { .. }) => {
                self.spool_parts(record, error, vec![thumbnail_object]).await
            }
            Err(error) => Err(saving_failed(error)),
        };
        self.mark_indexed_if_new(record).await;
        filed
    }

    /// Takes back a thumbnail just written if its image was deleted while it was being made:
    /// the delete removes the record before the thumbnail, so either the delete removed this
    /// thumbnail or the record is gone by now, and no thumbnail outlives its image.
    pub(super) async fn unless_deleted_meanwhile(&self, record: &ImageRecord, thumbnail: &ObjectKey) {
        let still_kept = match Self::record_key(&record.owner, record.id) {
            Ok(key) => self.store.get(&key).await,
            Err(_) => return,
        };
        if let Err(StoreError::NotFound(_)) = still_kept {
            tracing::debug!(image.id = %record.id, "the image was deleted while its thumbnail was made; removing it");
            if let Err(error) = self.store.delete(thumbnail).await {
                tracing::warn!(image.id = %record.id, error = %error, "could not remove the thumbnail of a deleted image");
            }
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
    pub(super) async fn thumbnail_object(&self, record: &ImageRecord, image: &CheckedImage) -> Result<SpooledObject> {
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

    pub(super) async fn put_new(&self, object: &SpooledObject) -> Result<(), StoreError> {
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
