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
//!
//! A session is only the name records carry (`ImageRecord::session`): listing a gallery's
//! sessions reads its records, and renaming one rewrites each of its records in place.
//!
//! Indexes by session, origin and parent (`users/{owner}/index/`, see [`index`]) let a filtered
//! page and an image's children cost requests in proportion to what is shown.

mod ids;
mod index;
mod reading;
mod record;
mod saving;
mod sessions;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::spool::Spool;
use crate::store::{ObjectKey, ObjectStore};

pub use ids::{ImageId, Owner, SessionName};
pub use record::{ImageRecord, Origin, OriginKind, Parameters};
pub use saving::Saved;
pub use sessions::SessionSummary;

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
    known_indexed: index::OwnerSet,
    checked_if_new: index::OwnerSet,
}

impl Gallery {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            spool: None,
            known_indexed: index::OwnerSet::default(),
            checked_if_new: index::OwnerSet::default(),
        }
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
}

#[cfg(test)]
mod tests;
