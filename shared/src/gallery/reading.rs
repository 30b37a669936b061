//! Reading the gallery back (records, image bytes, download links, listings, lineage) and
//! changing what it already keeps: deleting an image, moving an owner's images to another.

use bytes::Bytes;

use super::{DOWNLOAD_URL_LIFETIME, Gallery, ImageId, ImageRecord, ListFilter, MAX_PAGE, Owner, Page, Variant};
use crate::error::{Error, Invalid, Result};
use crate::images::CheckedImage;
use crate::store::{ObjectKey, ObjectStore, PutMode, StoreError};

impl Gallery {
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
            Ok(()) | Err(StoreError::AlreadyExists(_)) => self.unless_deleted_meanwhile(&record, &thumbnail.key).await,
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
    /// Whether the owner has an image newer than `since` (any image, without `since`), for
    /// one listing request: record keys sort newest first, so the first key says.
    pub async fn has_newer(&self, owner: &Owner, since: Option<ImageId>) -> Result<bool> {
        let prefix = format!("users/{owner}/records/");
        let Some(newest) = self.store.list(&prefix, None, 1).await?.into_iter().next() else { return Ok(false) };
        Ok(match since {
            Some(since) => newest.as_str() < Self::record_key(owner, since)?.as_str(),
            None => true,
        })
    }

    /// A filtered page reads the session's (or else the origin's) index, so it costs one
    /// listing and one read per image shown, however large the gallery; both filters are
    /// checked against each record, which an index entry only points at.
    pub async fn list(&self, owner: &Owner, filter: &ListFilter, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let limit = limit.clamp(1, MAX_PAGE);
        let prefix = match (&filter.session, filter.origin) {
            (Some(session), _) => Self::session_prefix(owner, session),
            (None, Some(origin)) => Self::origin_prefix(owner, origin),
            (None, None) => format!("users/{owner}/records/"),
        };
        if filter.session.is_some() || filter.origin.is_some() {
            self.ensure_indexed(owner).await?;
        }
        let mut after = match cursor {
            Some(cursor) => {
                let id = ImageId::parse(cursor)
                    .map_err(|_| Invalid::new("that page link is broken: start from the first page"))?;
                Some(format!("{prefix}{}.json", id.newest_first()))
            }
            None => None,
        };
        let matches = |record: &ImageRecord| {
            filter.session.as_ref().is_none_or(|session| record.session.as_ref() == Some(session))
                && filter.origin.is_none_or(|origin| record.origin.kind() == origin)
        };
        let mut records = Vec::new();
        loop {
            // One more than the page tells whether a next page exists; a little more still
            // covers entries whose record is gone or no longer matches.
            let keys = self.store.list(&prefix, after.as_deref(), limit + 1).await?;
            let exhausted = keys.len() <= limit;
            after = keys.last().map(|key| key.as_str().to_string());
            records.extend(self.records_of(owner, &keys, matches).await?);
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

    /// The images made from this one, newest first, from the parent index.
    pub async fn children(&self, owner: &Owner, id: ImageId) -> Result<Vec<ImageRecord>> {
        self.indexed_children(owner, id).await
    }

    /// Deletes an image: the record first (so it leaves listings at once), then its bytes,
    /// then its index entries (after the record, so the index never lacks a record's entry).
    pub async fn delete(&self, owner: &Owner, id: ImageId) -> Result<()> {
        let record = self.record(owner, id).await?;
        self.store.delete(&Self::record_key(owner, id)?).await?;
        self.store.delete(&Self::image_key(owner, id, &record.extension)?).await?;
        self.store.delete(&Self::thumbnail_key(owner, id)?).await?;
        self.delete_entries(&record).await
    }

    /// Whether the store can be used.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.store.check().await
    }

    /// Moves every image of `from` into `to`'s gallery (when a Discord user links a web
    /// account), returning how many moved. Per image: the bytes and the thumbnail are copied
    /// create-only, then the record with its owner rewritten (so the image appears in `to`'s
    /// listings whole), then the source's bytes, thumbnail and record are deleted, the record
    /// last, and at the end the source gallery's index mark. Safe to run again after a crash:
    /// an `AlreadyExists` is a copy made before, a missing source part one already moved, and
    /// an image never shows twice in one gallery.
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
            let Some(last) = keys.last() else {
                // Every image moved: the emptied gallery's index mark goes too, so nothing of
                // `from` is left (a first image kept there again marks it again).
                store.delete(&Self::marker_key(from)?).await.map_err(failed)?;
                return Ok(moved);
            };
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
                let source_entries = Self::entry_keys(&record)?;
                record.owner = to.clone();
                // The new gallery's index entries before its record, as every write does.
                self.put_entries(&record).await.map_err(failed)?;
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
                for entry in &source_entries {
                    store.delete(entry).await.map_err(failed)?;
                }
                moved += 1;
            }
        }
    }
}
