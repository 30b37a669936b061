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

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use super::{ObjectKey, ObjectStore, PutMode, StoreError};

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

/// The header line of an entry file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The store the entry is meant for, so a spool folder shared by mistake between
    /// installations never delivers one's images into another's store.
    store: String,
    objects: Vec<ObjectHeader>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ObjectHeader {
    key: String,
    content_type: String,
    length: u64,
    sha256: String,
}

/// An entry read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub store: String,
    pub objects: Vec<SpooledObject>,
}

fn hex_sha256(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bytes of an entry file.
pub fn encode_entry(store: &str, objects: &[SpooledObject]) -> Result<Vec<u8>, serde_json::Error> {
    let header = Header {
        store: store.to_string(),
        objects: objects
            .iter()
            .map(|object| ObjectHeader {
                key: object.key.as_str().to_string(),
                content_type: object.content_type.clone(),
                length: object.body.len() as u64,
                sha256: hex_sha256(&object.body),
            })
            .collect(),
    };
    let mut bytes = MAGIC.to_vec();
    // Compact JSON has no raw newline in it, so the header ends at the first one.
    serde_json::to_writer(&mut bytes, &header)?;
    bytes.push(b'\n');
    for object in objects {
        bytes.extend_from_slice(&object.body);
    }
    Ok(bytes)
}

/// Reads an entry file's bytes back, checking every length and checksum.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("it is not a version 1 spool entry")?;
    let end = rest.iter().position(|byte| *byte == b'\n').ok_or("its header is cut off")?;
    let header: Header =
        serde_json::from_slice(&rest[..end]).map_err(|error| format!("its header is not valid: {error}"))?;
    let mut bodies = Bytes::copy_from_slice(&rest[end + 1..]);
    let mut objects = Vec::with_capacity(header.objects.len());
    for object in header.objects {
        let length = usize::try_from(object.length).map_err(|_| "an object is too large")?;
        if bodies.len() < length {
            return Err(format!("the body of `{}` is cut off", object.key));
        }
        let body = bodies.split_to(length);
        if hex_sha256(&body) != object.sha256 {
            return Err(format!("the body of `{}` does not match its checksum", object.key));
        }
        let key = ObjectKey::new(object.key).map_err(|error| error.to_string())?;
        objects.push(SpooledObject { key, content_type: object.content_type, body });
    }
    if !bodies.is_empty() {
        return Err(format!("{} bytes follow the last object", bodies.len()));
    }
    if objects.is_empty() {
        return Err("it holds no objects".into());
    }
    Ok(Entry { store: header.store, objects })
}

/// Writes `bytes` to `target` atomically: a temporary file in `incoming`, flushed to disk,
/// renamed into place, and the folder flushed so the rename itself survives a power cut.
fn write_atomically(incoming: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(incoming)?;
    let temporary = incoming.join(ulid::Ulid::new().to_string());
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    sync_folder(target.parent().unwrap_or(incoming))
}

fn sync_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::File::open(folder)?.sync_all()
}

/// The entry files in a folder, oldest first (ULID names sort by time), with their sizes.
fn list_entries(folder: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let listing = match std::fs::read_dir(folder) {
        Ok(listing) => listing,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item?;
        let path = item.path();
        if path.extension().is_some_and(|extension| extension == "entry") && item.file_type()?.is_file() {
            entries.push((path, item.metadata()?.len()));
        }
    }
    entries.sort();
    Ok(entries)
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

    /// Starts the task that writes entries to `store` whenever there are any, retrying with
    /// exponential backoff and jitter while the store is down. It stops when told through
    /// [`Flusher::stop`], or when the [`Flusher`] is dropped.
    pub fn start_flusher(&self, store: Arc<dyn ObjectStore>, backoff: Backoff) -> Flusher {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_flusher(self.clone(), store, backoff, stopped));
        Flusher { stop, task: tokio::sync::Mutex::new(Some(task)) }
    }
}

/// How long the flusher waits between attempts while the store is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(500), longest: Duration::from_secs(15) }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row: doubling from `first` up to `longest`,
    /// of which a random half is taken off, so replicas that lost the store together do not
    /// come back in step.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.first.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)));
        let ceiling = doubled.min(self.longest);
        let half = ceiling / 2;
        let jitter_millis = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_millis)
    }
}

/// The running flusher; dropping it stops the task too.
#[derive(Debug)]
pub struct Flusher {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Flusher {
    /// Tells the flusher to stop and waits until it has (a write in progress finishes first).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take()
            && let Err(error) = task.await
        {
            tracing::error!("the spool flusher failed: {error}");
        }
    }
}

async fn run_flusher(spool: Spool, store: Arc<dyn ObjectStore>, backoff: Backoff, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match spool.flush(store.as_ref(), Some(&stop)).await {
            Ok(_) => {
                failures = 0;
                // Nothing more to do until an entry is added; the periodic look is only a safety
                // net should a wake-up ever be missed.
                None
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures);
                let depth = spool.depth();
                tracing::warn!(
                    spool.entries = depth.entries,
                    spool.bytes = depth.bytes,
                    "the store still cannot take the {} spooled images ({error}); trying again in {} ms",
                    depth.entries,
                    delay.as_millis()
                );
                Some(delay)
            }
        };
        let stopped = async {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        match wait {
            Some(delay) => tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped => return,
            },
            None => tokio::select! {
                () = spool.inner.added.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                () = stopped => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::folder::FolderStore;

    fn object(key: &str, body: &'static [u8]) -> SpooledObject {
        SpooledObject {
            key: ObjectKey::new(key).unwrap(),
            content_type: "application/octet-stream".into(),
            body: Bytes::from_static(body),
        }
    }

    fn image_objects(id: &str) -> Vec<SpooledObject> {
        vec![
            object(&format!("users/a/images/{id}.png"), b"\x89PNG pixels"),
            object(&format!("users/a/thumbnails/{id}.jpg"), b"small"),
            object(&format!("users/a/records/{id}.json"), b"{\"id\":1}\n"),
        ]
    }

    #[test]
    fn entries_round_trip_and_damage_is_caught() {
        let objects = image_objects("one");
        let bytes = encode_entry("s3://bucket", &objects).unwrap();
        assert!(bytes.starts_with(MAGIC));
        let entry = decode_entry(&bytes).unwrap();
        assert_eq!(entry, Entry { store: "s3://bucket".into(), objects });

        let cut = &bytes[..bytes.len() - 3];
        assert!(decode_entry(cut).unwrap_err().contains("cut off"));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert!(decode_entry(&flipped).unwrap_err().contains("checksum"));
        let mut longer = bytes.clone();
        longer.push(b'x');
        assert!(decode_entry(&longer).unwrap_err().contains("follow"));
        assert!(decode_entry(b"ATELIER-SPOOL 2\n{}\n").is_err());
        assert!(decode_entry(b"").is_err());
    }

    #[test]
    fn atomic_writes_leave_a_whole_file_or_none() {
        let folder = tempfile::tempdir().unwrap();
        let target = folder.path().join("a.entry");
        write_atomically(&folder.path().join(INCOMING), &target, b"whole").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(folder.path().join(INCOMING)).unwrap().count(), 0);
        // A rename that cannot happen (into a missing folder) leaves no temporary file.
        let missing = folder.path().join("missing/b.entry");
        assert!(write_atomically(&folder.path().join(INCOMING), &missing, b"half").is_err());
        assert_eq!(std::fs::read_dir(folder.path().join(INCOMING)).unwrap().count(), 0);
        assert_eq!(list_entries(folder.path()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_reopened_spool_counts_what_was_left_and_clears_half_written_files() {
        let folder = tempfile::tempdir().unwrap();
        let spool = Spool::open(folder.path(), 1 << 20, "s3://bucket".into()).unwrap();
        assert_eq!(spool.depth(), SpoolDepth::default());
        spool.push(image_objects("one")).await.unwrap();
        let depth = spool.push(image_objects("two")).await.unwrap();
        assert_eq!(depth.entries, 2);
        std::fs::write(folder.path().join(INCOMING).join("torn"), b"ATELIER-SPOOL 1\n{").unwrap();
        drop(spool);

        let reopened = Spool::open(folder.path(), 1 << 20, "s3://bucket".into()).unwrap();
        assert_eq!(reopened.depth(), depth);
        assert!(!folder.path().join(INCOMING).exists());
    }

    #[tokio::test]
    async fn a_full_spool_refuses_and_keeps_what_it_has() {
        let folder = tempfile::tempdir().unwrap();
        let one = encode_entry("file:///x", &image_objects("one")).unwrap().len() as u64;
        let spool = Spool::open(folder.path(), one + one / 2, "file:///x".into()).unwrap();
        spool.push(image_objects("one")).await.unwrap();
        let refused = spool.push(image_objects("two")).await.unwrap_err();
        assert!(matches!(refused, SpoolError::Full { .. }), "{refused}");
        assert!(refused.to_string().contains("ATELIER_SPOOL_MAX_BYTES"), "{refused}");
        assert_eq!(spool.depth(), SpoolDepth { entries: 1, bytes: one });
        assert_eq!(list_entries(folder.path()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn flushing_writes_in_order_skips_what_is_there_and_removes_only_after() {
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path().join("store")).await.unwrap();
        let spool = Spool::open(folder.path().join("spool"), 1 << 20, store.location()).unwrap();
        spool.push(image_objects("one")).await.unwrap();
        spool.push(image_objects("two")).await.unwrap();
        // An earlier attempt whose reply was lost already wrote one image.
        let already = &image_objects("two")[0];
        store.put(&already.key, already.body.clone(), "image/png", PutMode::CreateOnly).await.unwrap();
        // An entry for another store stays; a damaged one is moved aside.
        let foreign = Spool::open(folder.path().join("spool"), 1 << 20, "s3://elsewhere".into()).unwrap();
        foreign.push(image_objects("three")).await.unwrap();
        std::fs::write(folder.path().join("spool/00000000000000000000000000.entry"), b"nonsense").unwrap();

        assert_eq!(spool.flush(&store, None).await.unwrap(), 2);
        for id in ["one", "two"] {
            for expected in image_objects(id) {
                assert_eq!(store.get(&expected.key).await.unwrap(), expected.body);
            }
        }
        assert!(store.get(&image_objects("three")[0].key).await.is_err());
        let left = list_entries(&folder.path().join("spool")).unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(folder.path().join("spool").join(REJECTED).join("00000000000000000000000000.entry").exists());
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_jitter() {
        let backoff = Backoff { first: Duration::from_millis(100), longest: Duration::from_secs(2) };
        for _ in 0..50 {
            let first = backoff.delay(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let third = backoff.delay(3);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third), "{third:?}");
            let late = backoff.delay(40);
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&late), "{late:?}");
        }
    }
}
