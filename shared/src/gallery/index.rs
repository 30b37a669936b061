//! Indexes kept by the writes that already happen, so that a filtered page of a gallery and
//! an image's children cost store requests in proportion to what is shown, not to the
//! gallery's size.
//!
//! Beside `records/`, under `users/{owner}/index/`, one empty entry per image and index, named
//! by the same newest-first key as its record (so a listing pages the same way):
//! - `session/{the name's bytes in hex}/{newest-first id}.json`: the images of a session;
//! - `origin/{cli|web|discord}/{newest-first id}.json`: the images made from one front end;
//! - `parent/{parent id}/{newest-first id}.json`: the images made from one image.
//!
//! The record stays the one source of truth, and the index can only ever hold too much, never
//! too little: entries are written before their record (in the store and in the spool alike)
//! and deleted after it, and a session is renamed by writing the new entry, then the record,
//! then deleting the old entry. A crash between two of those writes leaves an entry whose
//! record is gone or says otherwise; readers go from each entry to its record and keep only
//! records that match, so such an entry costs one read and is never shown.
//!
//! Galleries kept before the index existed are indexed once, on the first read that needs it:
//! `index/built.json` marks an indexed gallery; without it, every record is read once and its
//! entries written, then the marker. Writes add entries whether or not the marker exists, so an
//! image kept while the gallery is being indexed is never missed. A gallery's first image
//! writes the marker once it is stored, so a gallery begun with the index is never read whole.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt as _;

use super::{Gallery, ImageId, ImageRecord, MAX_PAGE, OriginKind, Owner, SessionName};
use crate::error::{Error, Result};
use crate::store::spool::SpooledObject;
use crate::store::{ObjectKey, PutMode, StoreError};

/// What an entry holds: nothing; its name says everything.
const ENTRY_BODY: &[u8] = b"{}";
/// What the marker of an indexed gallery holds.
const MARKER_BODY: &[u8] = b"{\"version\":1}";
/// How many entries are written at once while an existing gallery is indexed.
const INDEXING_WRITES_AT_ONCE: usize = 16;

/// A set of owners this process remembers something about, bounded: forgetting an owner only
/// costs asking the store again. The gallery keeps two: the owners whose gallery it knows to
/// be indexed (so the marker is read once per process and owner), and the owners it has asked
/// [`Gallery::mark_indexed_if_new`] about (so that question costs its requests once).
#[derive(Default, Clone)]
pub(super) struct OwnerSet(Arc<Mutex<HashSet<Owner>>>);

impl OwnerSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Owner>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, owner: &Owner) -> bool {
        self.lock().contains(owner)
    }

    /// Adds `owner`; true when it was not there (or had been forgotten).
    fn insert(&self, owner: &Owner) -> bool {
        let mut owners = self.lock();
        if owners.len() > 100_000 {
            owners.clear();
        }
        owners.insert(owner.clone())
    }
}

impl Gallery {
    pub(super) fn session_prefix(owner: &Owner, session: &SessionName) -> String {
        // Hex: any name a person types becomes a valid key, and names differing only in case
        // stay apart, as sessions do.
        let hex: String = session.as_str().bytes().map(|byte| format!("{byte:02x}")).collect();
        format!("users/{owner}/index/session/{hex}/")
    }

    pub(super) fn origin_prefix(owner: &Owner, origin: OriginKind) -> String {
        format!("users/{owner}/index/origin/{}/", origin.as_str())
    }

    fn parent_prefix(owner: &Owner, parent: ImageId) -> String {
        format!("users/{owner}/index/parent/{parent}/")
    }

    pub(super) fn marker_key(owner: &Owner) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/index/built.json"))
    }

    /// Marks a gallery indexed.
    async fn put_marker(&self, marker: &ObjectKey) -> Result<(), StoreError> {
        self.store.put(marker, Bytes::from_static(MARKER_BODY), "application/json", PutMode::Overwrite).await
    }

    /// The index entries of one record: its origin, and its session and parent when it has them.
    pub(super) fn entry_keys(record: &ImageRecord) -> Result<Vec<ObjectKey>> {
        let name = format!("{}.json", record.id.newest_first());
        let owner = &record.owner;
        let mut keys = vec![Self::key(format!("{}{name}", Self::origin_prefix(owner, record.origin.kind())))?];
        if let Some(session) = &record.session {
            keys.push(Self::key(format!("{}{name}", Self::session_prefix(owner, session)))?);
        }
        if let Some(parent) = record.parent {
            keys.push(Self::key(format!("{}{name}", Self::parent_prefix(owner, parent)))?);
        }
        Ok(keys)
    }

    /// The entries of one record as objects to write (or to spool, before the record).
    pub(super) fn entry_objects(record: &ImageRecord) -> Result<Vec<SpooledObject>> {
        Ok(Self::entry_keys(record)?
            .into_iter()
            .map(|key| SpooledObject {
                key,
                content_type: "application/json".into(),
                body: Bytes::from_static(ENTRY_BODY),
            })
            .collect())
    }

    /// One entry, written (again, harmlessly, if it is there).
    pub(super) async fn put_entry(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.store.put(key, Bytes::from_static(ENTRY_BODY), "application/json", PutMode::Overwrite).await
    }

    /// Writes a record's entries; before its record.
    pub(super) async fn put_entries(&self, record: &ImageRecord) -> Result<(), StoreError> {
        for key in Self::entry_keys(record).map_err(|error| StoreError::Unavailable {
            location: "the gallery index".into(),
            detail: error.to_string(),
        })? {
            self.put_entry(&key).await?;
        }
        Ok(())
    }

    /// Deletes a record's entries; after its record.
    pub(super) async fn delete_entries(&self, record: &ImageRecord) -> Result<()> {
        for key in Self::entry_keys(record)? {
            self.store.delete(&key).await?;
        }
        Ok(())
    }

    /// The record an entry (or a record key) stands for: the newest-first name is the same.
    pub(super) fn record_key_for(owner: &Owner, entry: &ObjectKey) -> Result<ObjectKey> {
        let name = entry.as_str().rsplit('/').next().unwrap_or_default();
        Self::key(format!("users/{owner}/records/{name}"))
    }

    /// Reads the records `entries` stand for, newest first, keeping those `keep` accepts; an
    /// entry whose record is gone (deleted since, or a crash between two writes) is skipped.
    pub(super) async fn records_of(
        &self,
        owner: &Owner,
        entries: &[ObjectKey],
        keep: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Vec<ImageRecord>> {
        let record_keys = entries.iter().map(|entry| Self::record_key_for(owner, entry)).collect::<Result<Vec<_>>>()?;
        let mut records = Vec::with_capacity(record_keys.len());
        for (key, bytes) in record_keys.iter().zip(self.store.get_many(&record_keys).await) {
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(StoreError::NotFound(_)) => continue,
                Err(error) => return Err(error.into()),
            };
            let record = serde_json::from_slice::<ImageRecord>(&bytes)
                .map_err(|error| Error::operator(format!("reading the record at {}", key.as_str()), error))?;
            if keep(&record) {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The images made from `id`, newest first: one listing per hundred children and one read
    /// each.
    pub(super) async fn indexed_children(&self, owner: &Owner, id: ImageId) -> Result<Vec<ImageRecord>> {
        self.ensure_indexed(owner).await?;
        let prefix = Self::parent_prefix(owner, id);
        let mut children = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let entries = self.store.list(&prefix, after.as_deref(), MAX_PAGE).await?;
            let Some(last) = entries.last() else { return Ok(children) };
            after = Some(last.as_str().to_string());
            children.extend(self.records_of(owner, &entries, |record| record.parent == Some(id)).await?);
        }
    }

    /// Marks a gallery indexed when `record` is its first image, so it is never read whole
    /// to be indexed: every image since has had its entries written with it. Called once the
    /// record is stored, off the person's path; a gallery with older records is left to
    /// [`Self::ensure_indexed`], as is one whose first two images were kept at once (each sees
    /// the other). Only an optimisation: a failure is logged and changes nothing else.
    pub(super) async fn mark_indexed_if_new(&self, record: &ImageRecord) {
        let owner = &record.owner;
        // Asked once per process and owner, whatever the answer: an old gallery's every image
        // would otherwise pay a read and a listing.
        if self.known_indexed.contains(owner) || !self.checked_if_new.insert(owner) {
            return;
        }
        let marked = async {
            let marker = Self::marker_key(owner)?;
            match self.store.get(&marker).await {
                Ok(_) => return Ok(true),
                Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(Error::from(error)),
            }
            let newest = self.store.list(&format!("users/{owner}/records/"), None, 2).await?;
            let own_key = Self::record_key(owner, record.id)?;
            if newest.len() != 1 || newest[0] != own_key {
                return Ok(false);
            }
            self.put_marker(&marker).await?;
            Ok::<bool, Error>(true)
        };
        match marked.await {
            Ok(true) => {
                self.known_indexed.insert(owner);
            }
            Ok(false) => {}
            Err(error) => tracing::debug!(%owner, error = %error, "could not mark a new gallery indexed"),
        }
    }

    /// Indexes a gallery kept before the index existed, once (see the module documentation).
    pub(super) async fn ensure_indexed(&self, owner: &Owner) -> Result<()> {
        if self.known_indexed.contains(owner) {
            return Ok(());
        }
        let marker = Self::marker_key(owner)?;
        match self.store.get(&marker).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                let mut entries = Vec::new();
                let mut failed = None;
                self.each_record(owner, |_, record| match Self::entry_keys(&record) {
                    Ok(keys) => entries.extend(keys),
                    Err(error) => failed = Some(error),
                })
                .await?;
                if let Some(error) = failed {
                    return Err(error);
                }
                let written = entries.len();
                // Owned keys and store: a future borrowing from a closure's argument would not
                // be `Send` for every lifetime, which the web's handlers need.
                let mut writes = futures::stream::iter(entries.into_iter().map(|key| {
                    let store = self.store.clone();
                    async move {
                        store.put(&key, Bytes::from_static(ENTRY_BODY), "application/json", PutMode::Overwrite).await
                    }
                }))
                .buffer_unordered(INDEXING_WRITES_AT_ONCE);
                while let Some(write) = writes.next().await {
                    write?;
                }
                self.put_marker(&marker).await?;
                tracing::info!(%owner, entries = written, "indexed a gallery kept before the index existed");
            }
            Err(error) => return Err(error.into()),
        }
        self.known_indexed.insert(owner);
        Ok(())
    }
}
