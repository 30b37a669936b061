//! The spool: where an image that was made but could not be stored waits on local disk until
//! the store takes it, so a store outage never costs anyone an image they paid for.
//!
//! One entry is one file, `{ulid}.entry`, holding every object of one image in the order they
//! must be written (the image, its record, its thumbnail). Entries are written to
//! `.incoming/` first, flushed to disk, then renamed into place, so a crash leaves either a
//! whole entry or none. The [`Flusher`] writes entries to the store oldest first, every object
//! create-only (an object that is already there is a write that succeeded before its reply was
//! lost), and deletes an entry only once the store has accepted all of it.
//!
//! The file format, version 1:
//! ```text
//! ATELIER-SPOOL 1\n
//! {"store":"s3://bucket","objects":[{"key":…,"content_type":…,"length":N,"sha256":"…"},…]}\n
//! <the bodies, one after another>
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::{ObjectKey, ObjectStore, PutMode, StoreError};

mod entry;
mod flusher;

pub use entry::{decode_entry, encode_entry};
use entry::{list_entries, sync_folder, write_atomically};
pub use flusher::{Backoff, Flusher};

/// The first line of every entry file.
const MAGIC: &[u8] = b"ATELIER-SPOOL 1\n";

/// Where entries are written before they are renamed into place; a crash leaves only
/// half-written files here, never among the entries.
const INCOMING: &str = ".incoming";

/// Where entries that cannot be read are moved, for the operator to look at.
const REJECTED: &str = "rejected";

/// One object of a spooled image, in the order it must be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledObject {
    pub key: ObjectKey,
    pub content_type: String,
    pub body: Bytes,
}

/// How full the spool is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpoolDepth {
    pub entries: usize,
    pub bytes: u64,
}

/// What can go wrong with the spool itself.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "the spool at {folder} is full ({used} of {limit} bytes used, {wanted} more needed); bring the store back, or \
         raise ATELIER_SPOOL_MAX_BYTES"
    )]
    Full { folder: String, used: u64, limit: u64, wanted: u64 },
    #[error("the spool at {folder} cannot be used: {action} failed: {detail}")]
    Disk { folder: String, action: &'static str, detail: String },
    #[error("the spool entry {path} cannot be read: {detail}")]
    Corrupt { path: String, detail: String },
}

struct Inner {
    folder: PathBuf,
    max_bytes: u64,
    /// The location of the store entries are meant for.
    store: String,
    /// Entries and bytes on disk, plus bytes reserved by writes in progress.
    depth: Mutex<SpoolDepth>,
    /// Entry names, in order even within one millisecond.
    names: Mutex<ulid::Generator>,
    /// Woken when an entry is added, so the flusher need not poll.
    added: Notify,
}

/// The spool over one local folder; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Spool")
            .field("folder", &self.inner.folder)
            .field("max_bytes", &self.inner.max_bytes)
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens the spool in `folder` for the store at `store` (its location), counting what a
    /// previous process left and clearing half-written files. The folder is only created
    /// when the first entry is written, so an installation whose store never fails leaves
    /// nothing behind.
    pub fn open(folder: impl Into<PathBuf>, max_bytes: u64, store: String) -> Result<Self, SpoolError> {
        let folder = folder.into();
        let disk = |action: &'static str, error: std::io::Error| SpoolError::Disk {
            folder: folder.display().to_string(),
            action,
            detail: error.to_string(),
        };
        match std::fs::remove_dir_all(folder.join(INCOMING)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(disk("clearing half-written entries", error)),
        }
        let entries = list_entries(&folder).map_err(|error| disk("listing the entries", error))?;
        let depth = SpoolDepth { entries: entries.len(), bytes: entries.iter().map(|(_, size)| size).sum() };
        if depth.entries > 0 {
            tracing::warn!(
                spool.entries = depth.entries,
                spool.bytes = depth.bytes,
                "the spool at {} holds {} images a previous process could not store; they will be written to the store",
                folder.display(),
                depth.entries
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                folder,
                max_bytes,
                store,
                depth: Mutex::new(depth),
                names: Mutex::new(ulid::Generator::new()),
                added: Notify::new(),
            }),
        })
    }

    pub fn folder(&self) -> &Path {
        &self.inner.folder
    }

    /// Entries waiting and their bytes.
    pub fn depth(&self) -> SpoolDepth {
        match self.inner.depth.lock() {
            Ok(depth) => *depth,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn change_depth(&self, change: impl FnOnce(&mut SpoolDepth)) {
        let mut depth = match self.inner.depth.lock() {
            Ok(depth) => depth,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut depth);
    }

    fn disk(&self, action: &'static str, detail: impl std::fmt::Display) -> SpoolError {
        SpoolError::Disk { folder: self.inner.folder.display().to_string(), action, detail: detail.to_string() }
    }

    /// Keeps one image's objects until the store takes them; returns the depth after.
    /// Refuses, writing nothing, when the entry would take the spool past its limit.
    pub async fn push(&self, objects: Vec<SpooledObject>) -> Result<SpoolDepth, SpoolError> {
        let bytes = encode_entry(&self.inner.store, &objects).map_err(|error| self.disk("encoding an entry", error))?;
        let wanted = bytes.len() as u64;
        // Reserve the room first, so two writers cannot both take the last of it.
        {
            let mut depth = match self.inner.depth.lock() {
                Ok(depth) => depth,
                Err(poisoned) => poisoned.into_inner(),
            };
            if depth.bytes.saturating_add(wanted) > self.inner.max_bytes {
                return Err(SpoolError::Full {
                    folder: self.inner.folder.display().to_string(),
                    used: depth.bytes,
                    limit: self.inner.max_bytes,
                    wanted,
                });
            }
            depth.bytes += wanted;
        }
        let name = {
            let mut names = match self.inner.names.lock() {
                Ok(names) => names,
                Err(poisoned) => poisoned.into_inner(),
            };
            names.generate().unwrap_or_else(|_| ulid::Ulid::new())
        };
        let folder = self.inner.folder.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            write_atomically(&folder.join(INCOMING), &folder.join(format!("{name}.entry")), &bytes)
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.change_depth(|depth| depth.entries += 1);
                self.inner.added.notify_one();
                Ok(self.depth())
            }
            Ok(Err(error)) => {
                self.change_depth(|depth| depth.bytes = depth.bytes.saturating_sub(wanted));
                Err(self.disk("writing an entry", error))
            }
            Err(error) => {
                self.change_depth(|depth| depth.bytes = depth.bytes.saturating_sub(wanted));
                Err(self.disk("the writing task", error))
            }
        }
    }

    /// Writes every waiting entry to `store`, oldest first, until one fails; returns how
    /// many were written. Entries meant for another store are left alone; entries that
    /// cannot be read are moved to `rejected/` and logged.
    pub async fn flush(
        &self,
        store: &dyn ObjectStore,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, StoreError> {
        let folder = self.inner.folder.clone();
        let entries = tokio::task::spawn_blocking(move || list_entries(&folder))
            .await
            .map_err(|error| self.unavailable(error))?
            .map_err(|error| self.unavailable(error))?;
        let mut written = 0;
        for (path, size) in entries {
            if stop.is_some_and(|stop| *stop.borrow() || stop.has_changed().is_err()) {
                break;
            }
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                // Written by another flush of this spool in the meantime.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(self.unavailable(error)),
            };
            let entry = match decode_entry(&bytes) {
                Ok(entry) => entry,
                Err(detail) => {
                    self.reject(&path, size, &detail).await;
                    continue;
                }
            };
            if entry.store != self.inner.store {
                tracing::warn!(
                    "the spool entry {} is meant for {}, not this installation's store {}; it is left where it is",
                    path.display(),
                    entry.store,
                    self.inner.store
                );
                continue;
            }
            for object in &entry.objects {
                match store.put(&object.key, object.body.clone(), &object.content_type, PutMode::CreateOnly).await {
                    // Already there: an earlier write whose reply was lost, so never a duplicate.
                    Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            self.remove(&path, size).await.map_err(|error| self.unavailable(error))?;
            written += 1;
            tracing::info!(
                spool.entries = self.depth().entries,
                spool.bytes = self.depth().bytes,
                "a spooled image ({}) is now in the store",
                entry.objects.last().map(|object| object.key.as_str()).unwrap_or("?")
            );
        }
        Ok(written)
    }

    fn unavailable(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            location: format!("the spool at {}", self.inner.folder.display()),
            detail: detail.to_string(),
        }
    }

    async fn remove(&self, path: &Path, size: u64) -> std::io::Result<()> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
        self.change_depth(|depth| {
            depth.entries = depth.entries.saturating_sub(1);
            depth.bytes = depth.bytes.saturating_sub(size);
        });
        let folder = self.inner.folder.clone();
        tokio::task::spawn_blocking(move || sync_folder(&folder)).await.map_err(std::io::Error::other)?
    }

    async fn reject(&self, path: &Path, size: u64, detail: &str) {
        let rejected = self.inner.folder.join(REJECTED);
        let target = rejected.join(path.file_name().unwrap_or_default());
        let moved = match tokio::fs::create_dir_all(&rejected).await {
            Ok(()) => tokio::fs::rename(path, &target).await,
            Err(error) => Err(error),
        };
        match moved {
            Ok(()) => {
                self.change_depth(|depth| {
                    depth.entries = depth.entries.saturating_sub(1);
                    depth.bytes = depth.bytes.saturating_sub(size);
                });
                tracing::error!(
                    "the spool entry {} cannot be read ({detail}); it was moved to {}",
                    path.display(),
                    target.display()
                );
            }
            Err(error) => {
                tracing::error!("the spool entry {} cannot be read ({detail}) nor moved aside: {error}", path.display())
            }
        }
    }
}

#[cfg(test)]
mod tests;
