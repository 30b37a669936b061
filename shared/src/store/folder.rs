//! The local-folder store: the embedded default, for a laptop or a single server.
//!
//! Writes go to a temporary file first and are then moved into place, so a crash never
//! leaves half an image behind; create-only writes use a hard link, which fails atomically
//! when the target exists, as S3's conditional write does.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// Where temporary files are written before they are moved into place. It starts with a dot,
/// which no object key may, so it never shows up in listings.
const TEMPORARY_FOLDER: &str = ".incoming";

/// Where the lock files of conditional replaces live; hidden from listings like the above.
const LOCK_FOLDER: &str = ".locks";

/// Where each replaced key keeps its scratch file: the next version is written there and then
/// exchanged with the current one, which becomes the scratch file in its turn.
const SCRATCH_FOLDER: &str = ".scratch";

/// How many writes (puts, replaces, deletes) run at once; the rest wait their turn without
/// holding a thread. Creating files in one folder takes that folder's lock in the kernel, and
/// on ext4 without a journal each new file first skips the inodes freed in the last seconds:
/// hundreds of writers at once spin on the lock and take the blocking pool's threads (and
/// CPU) from everything else, such as the read that comes before acknowledging a command.
/// A few at a time keep a disk as busy as it can be.
const WRITERS_AT_ONCE: usize = 4;

/// A folder object's version: the hash of its bytes, so any change of content is a new version.
fn content_version(bytes: &[u8]) -> Version {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    Version(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// How long after a folder last changed its sorted listing may be kept: longer than the
/// file system's timestamp granularity (a clock tick), so that any later change gives the
/// folder a different modification time than the one the listing was kept with.
const LISTING_SETTLED_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The most folders whose listings are kept (each is its keys, sorted).
const LISTINGS_KEPT: usize = 64;

/// Objects as files under one folder; the key is the relative path.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
    writers: Arc<tokio::sync::Semaphore>,
    listings: Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, KeptListing>>>,
}

/// A folder's keys, sorted, as they were when the folder had `modified` as its modification
/// time. Only folders without sub-folders are kept (a sub-folder's changes do not show in its
/// parent's time).
#[derive(Debug)]
struct KeptListing {
    modified: std::time::SystemTime,
    keys: Arc<Vec<String>>,
}

impl FolderStore {
    /// Opens (creating it if needed) the folder, and proves it can be written, so a wrong
    /// path or permission shows at start rather than on someone's first image.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let store =
            Self { root, writers: Arc::new(tokio::sync::Semaphore::new(WRITERS_AT_ONCE)), listings: Arc::default() };
        store.prove_writable().await?;
        Ok(store)
    }

    /// Writes and removes a probe file: once, at start, where a folder that cannot be used
    /// is a setting to fix. The readiness check ([`ObjectStore::check`]) writes nothing, since
    /// anyone may call it.
    async fn prove_writable(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        self.write("writing a probe file", move || {
            std::fs::create_dir_all(&root)?;
            std::fs::remove_file(Self::write_temporary(&root, b"atelier")?)
        })
        .await
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// The lock file of a key that is replaced ([`ObjectStore::replace`]), and its scratch file.
    fn lock_and_scratch(root: &Path, key: &str) -> (PathBuf, PathBuf) {
        let name = key.replace('/', "%");
        (root.join(LOCK_FOLDER).join(&name), root.join(SCRATCH_FOLDER).join(name))
    }

    /// Reads a key's file. A key that has been replaced (it has a lock file, made by its first
    /// replace and never removed) is read again under a shared lock, so what is returned never
    /// overlaps the rewrite of a scratch file the read could have opened (see
    /// [`replace_in_place`]). A key with no lock file after the read had no replace begin
    /// before the read ended, so its file did not change under it: images, thumbnails and
    /// records, never replaced, cost one failed `open` more than a plain read.
    fn read_file(root: &Path, key: &str) -> std::io::Result<Vec<u8>> {
        let path = root.join(key);
        let bytes = std::fs::read(&path);
        let (lock_path, _) = Self::lock_and_scratch(root, key);
        match std::fs::File::open(&lock_path) {
            Ok(lock) => {
                lock.lock_shared()?;
                std::fs::read(&path)
            }
            Err(error) if error.kind() == ErrorKind::NotFound => bytes,
            Err(error) => Err(error),
        }
    }

    fn unavailable(&self, action: &str, error: std::io::Error) -> StoreError {
        StoreError::Unavailable {
            location: self.location(),
            detail: format!("{action} failed: {}", describe_io_error(&error)),
        }
    }

    /// Runs one write on the blocking pool once it is its turn ([`WRITERS_AT_ONCE`]).
    async fn write<T: Send + 'static>(
        &self,
        action: &'static str,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _turn =
            self.writers.acquire().await.map_err(|error| self.unavailable(action, std::io::Error::other(error)))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| StoreError::Unavailable { location: self.location(), detail: error.to_string() })?
            .map_err(|error| self.unavailable(action, error))
    }

    /// A new file in the temporary folder holding `body`, to be moved into place.
    fn write_temporary(root: &Path, body: &[u8]) -> std::io::Result<PathBuf> {
        let path = root.join(TEMPORARY_FOLDER).join(ulid::Ulid::new().to_string());
        match std::fs::write(&path, body) {
            Ok(()) => Ok(path),
            // The folder was removed under us (a test cleaning up, an operator): make it again.
            Err(error) if error.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(root.join(TEMPORARY_FOLDER))?;
                std::fs::write(&path, body)?;
                Ok(path)
            }
            Err(error) => Err(error),
        }
    }
}

/// Puts `body` at `target` atomically, under the key's exclusive lock. Where the system can
/// exchange two names atomically (`renameat2(RENAME_EXCHANGE)` on Linux), the body is written
/// to the key's scratch file and exchanged with the target, so the old version becomes the
/// next scratch file: after the first replace, no inode is created or freed. That matters for
/// the ledgers, replaced at least twice per job: on ext4 without a journal, every new file
/// skips over the inodes freed in the last seconds one by one, so freed inodes slow every
/// write that follows. Any system without the exchange writes a temporary file and renames it
/// over the target instead.
///
/// A reader that opened the old version before the exchange could see the next writer rewrite
/// it; readers of a key that has a lock file therefore read again under a shared lock
/// ([`FolderStore::read_file`]).
fn replace_in_place(root: &Path, target: &Path, scratch: &Path, body: &[u8]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match std::fs::write(scratch, body) {
            Err(error) if error.kind() == ErrorKind::NotFound => {
                if let Some(folder) = scratch.parent() {
                    std::fs::create_dir_all(folder)?;
                }
                std::fs::write(scratch, body)?;
            }
            written => written?,
        }
        let flags = rustix::fs::RenameFlags::EXCHANGE;
        match rustix::fs::renameat_with(rustix::fs::CWD, scratch, rustix::fs::CWD, target, flags) {
            Ok(()) => return Ok(()),
            // A file system without the exchange: rename as elsewhere.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {
                let _ = std::fs::remove_file(scratch);
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = scratch;
    let temporary = FolderStore::write_temporary(root, body)?;
    if let Err(error) = std::fs::rename(&temporary, target) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(())
}

fn describe_io_error(error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::StorageFull => "the disk is full".into(),
        _ => error.to_string(),
    }
}

#[async_trait]
impl ObjectStore for FolderStore {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn put(&self, key: &ObjectKey, body: Bytes, _content_type: &str, mode: PutMode) -> Result<(), StoreError> {
        let (root, target) = (self.root.clone(), self.path(key));
        // The whole write is one trip to the blocking pool: folder, temporary file, move.
        let placed = self
            .write("writing a file", move || {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let temporary = Self::write_temporary(&root, &body)?;
                let placed = match mode {
                    PutMode::Overwrite => std::fs::rename(&temporary, &target),
                    PutMode::CreateOnly => std::fs::hard_link(&temporary, &target),
                };
                // The temporary name is not needed once the file is moved, linked or refused.
                if mode == PutMode::CreateOnly || placed.is_err() {
                    let _ = std::fs::remove_file(&temporary);
                }
                match placed {
                    Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
                    Err(error) => Err(error),
                    Ok(()) => Ok(true),
                }
            })
            .await?;
        if placed { Ok(()) } else { Err(StoreError::AlreadyExists(key.as_str().to_string())) }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        let (root, name) = (self.root.clone(), key.as_str().to_string());
        let read = tokio::task::spawn_blocking(move || Self::read_file(&root, &name))
            .await
            .map_err(|error| StoreError::Unavailable { location: self.location(), detail: error.to_string() })?;
        match read {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Err(StoreError::NotFound(key.as_str().into())),
            Err(error) => Err(self.unavailable("reading a file", error)),
        }
    }

    async fn get_many(&self, keys: &[ObjectKey]) -> Vec<Result<Bytes, StoreError>> {
        // One trip to the blocking pool for the lot, rather than one per file: a gallery page
        // reads dozens of small records, and each hand-off costs more than the read.
        let names: Vec<String> = keys.iter().map(|key| key.as_str().to_string()).collect();
        let store = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .map(|key| match Self::read_file(&store.root, &key) {
                    Ok(bytes) => Ok(Bytes::from(bytes)),
                    Err(error) if error.kind() == ErrorKind::NotFound => Err(StoreError::NotFound(key)),
                    Err(error) => Err(store.unavailable("reading a file", error)),
                })
                .collect::<Vec<_>>()
        })
        .await;
        match read {
            Ok(results) => results,
            Err(error) => keys
                .iter()
                .map(|_| Err(StoreError::Unavailable { location: self.location(), detail: error.to_string() }))
                .collect(),
        }
    }

    async fn get_versioned(&self, key: &ObjectKey) -> Result<(Bytes, Version), StoreError> {
        let bytes = self.get(key).await?;
        let version = content_version(&bytes);
        Ok((bytes, version))
    }

    async fn replace(
        &self,
        key: &ObjectKey,
        body: Bytes,
        _content_type: &str,
        expected: &Version,
    ) -> Result<(), StoreError> {
        // Compare and swap under an advisory lock on a per-key lock file: the lock is held by
        // the open file, so it is released even when a process dies holding it, and it holds
        // between processes sharing the folder as well as between tasks of one.
        let (root, target) = (self.root.clone(), self.path(key));
        let (lock_path, scratch) = Self::lock_and_scratch(&self.root, key.as_str());
        let expected = expected.clone();
        let replaced = self
            .write("replacing a file", move || {
                if let Some(folder) = lock_path.parent() {
                    std::fs::create_dir_all(folder)?;
                }
                let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
                lock.lock()?;
                let current = match std::fs::read(&target) {
                    Ok(bytes) => bytes,
                    Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
                    Err(error) => return Err(error),
                };
                if content_version(&current) != expected {
                    return Ok(false);
                }
                replace_in_place(&root, &target, &scratch, &body)?;
                Ok(true)
            })
            .await?;
        if replaced { Ok(()) } else { Err(StoreError::Changed(key.as_str().to_string())) }
    }

    /// A page of keys costs reading the folder only when it changed in the last second or
    /// is not known yet; otherwise its kept sorted listing answers with a binary search, so a
    /// page deep in a large gallery costs what the page holds (see [`KeptListing`]).
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectKey>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(String::from);
        let location = self.location();
        let listings = self.listings.clone();
        tokio::task::spawn_blocking(move || {
            // Only the folder the prefix points into needs walking; keys elsewhere cannot match.
            let folder = match prefix.rfind('/') {
                Some(end) => root.join(&prefix[..end]),
                None => root.clone(),
            };
            let keys = sorted_keys(&root, &folder, &listings).map_err(|error| StoreError::Unavailable {
                location,
                detail: format!("listing files failed: {}", describe_io_error(&error)),
            })?;
            // The keys under the prefix are one run of the sorted list.
            let from_prefix = keys.partition_point(|key| key.as_str() < prefix.as_str());
            let from = match &start_after {
                Some(after) => from_prefix.max(keys.partition_point(|key| key.as_str() <= after.as_str())),
                None => from_prefix,
            };
            Ok(keys[from..]
                .iter()
                .take_while(|key| key.starts_with(&prefix))
                .take(limit)
                .filter_map(|key| ObjectKey::new(key.clone()).ok())
                .collect())
        })
        .await
        .map_err(|error| StoreError::Unavailable { location: self.location(), detail: error.to_string() })?
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let path = self.path(key);
        self.write("deleting a file", move || match std::fs::remove_file(path) {
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            removed => removed,
        })
        .await
    }

    /// Read-only: the folder is still there and this process may still write into it. The
    /// public readiness probe calls this on every request, so it must not write (a flood of
    /// probes would otherwise be a flood of files).
    async fn check(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            if !std::fs::metadata(&root)?.is_dir() {
                return Err(std::io::Error::new(ErrorKind::NotADirectory, "the store is not a folder"));
            }
            rustix::fs::access(
                &root,
                rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
            .map_err(std::io::Error::from)
        })
        .await
        .map_err(|error| StoreError::Unavailable { location: self.location(), detail: error.to_string() })?
        .map_err(|error| self.unavailable("checking the folder", error))
    }
}

/// Every key under `folder`, sorted: the kept listing when the folder has not changed since,
/// else read from the disk (and kept, when the folder has no sub-folders and has not changed
/// for [`LISTING_SETTLED_AFTER`]).
fn sorted_keys(
    root: &Path,
    folder: &Path,
    listings: &std::sync::Mutex<std::collections::HashMap<PathBuf, KeptListing>>,
) -> std::io::Result<Arc<Vec<String>>> {
    let modified = match std::fs::metadata(folder) {
        Ok(metadata) => metadata.modified().ok(),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Arc::default()),
        Err(error) => return Err(error),
    };
    let lock = || listings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(modified) = modified
        && let Some(kept) = lock().get(folder)
        && kept.modified == modified
    {
        return Ok(kept.keys.clone());
    }
    let mut keys = Vec::new();
    let has_folders = collect_keys(root, folder, &mut keys)?;
    keys.sort();
    let keys = Arc::new(keys);
    let settled = modified.filter(|modified| {
        modified.elapsed().is_ok_and(|age| age > LISTING_SETTLED_AFTER)
            // Read again after the listing: unchanged while it was read.
            && std::fs::metadata(folder).and_then(|metadata| metadata.modified()).ok() == Some(*modified)
    });
    if let Some(modified) = settled
        && !has_folders
    {
        let mut kept = lock();
        if kept.len() >= LISTINGS_KEPT {
            kept.clear();
        }
        kept.insert(folder.to_path_buf(), KeptListing { modified, keys: keys.clone() });
    }
    Ok(keys)
}

/// Adds every key under `folder` to `keys`; whether `folder` has sub-folders.
fn collect_keys(root: &Path, folder: &Path, keys: &mut Vec<String>) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    let mut has_folders = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            has_folders = true;
            collect_keys(root, &path, keys)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let key: Vec<String> =
                relative.components().map(|part| part.as_os_str().to_string_lossy().into()).collect();
            keys.push(key.join("/"));
        }
    }
    Ok(has_folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ObjectKey {
        ObjectKey::new(text).unwrap()
    }

    #[tokio::test]
    async fn objects_round_trip_and_list_in_order() {
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path().join("data")).await.unwrap();
        for name in ["b", "a", "c"] {
            let path = key(&format!("users/x/records/{name}.json"));
            store.put(&path, Bytes::from(name), "application/json", PutMode::Overwrite).await.unwrap();
        }
        store
            .put(&key("users/y/records/a.json"), Bytes::from("other"), "application/json", PutMode::Overwrite)
            .await
            .unwrap();
        let listed = store.list("users/x/records/", None, 10).await.unwrap();
        let names: Vec<&str> = listed.iter().map(ObjectKey::as_str).collect();
        assert_eq!(names, ["users/x/records/a.json", "users/x/records/b.json", "users/x/records/c.json"]);
        let page = store.list("users/x/records/", Some("users/x/records/a.json"), 1).await.unwrap();
        assert_eq!(page, [key("users/x/records/b.json")]);
        assert_eq!(store.get(&key("users/x/records/c.json")).await.unwrap(), Bytes::from("c"));
        store.delete(&key("users/x/records/c.json")).await.unwrap();
        assert!(store.get(&key("users/x/records/c.json")).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn create_only_writes_refuse_to_replace() {
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path()).await.unwrap();
        let path = key("links/token");
        store.put(&path, Bytes::from("first"), "text/plain", PutMode::CreateOnly).await.unwrap();
        let second = store.put(&path, Bytes::from("second"), "text/plain", PutMode::CreateOnly).await;
        assert!(matches!(second, Err(StoreError::AlreadyExists(_))), "{second:?}");
        assert_eq!(store.get(&path).await.unwrap(), Bytes::from("first"));
        assert!(store.list("", None, 10).await.unwrap().iter().all(|key| !key.as_str().contains(TEMPORARY_FOLDER)));
    }

    #[tokio::test]
    async fn many_objects_are_read_in_the_order_asked_with_missing_ones_in_place() {
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path()).await.unwrap();
        for name in ["a", "b"] {
            store
                .put(&key(&format!("many/{name}")), Bytes::from(name), "text/plain", PutMode::Overwrite)
                .await
                .unwrap();
        }
        let read = store.get_many(&[key("many/b"), key("many/missing"), key("many/a")]).await;
        assert_eq!(read[0].as_ref().unwrap(), &Bytes::from("b"));
        assert!(read[1].as_ref().is_err_and(StoreError::is_not_found), "{:?}", read[1]);
        assert_eq!(read[2].as_ref().unwrap(), &Bytes::from("a"));
    }

    #[test]
    fn keys_cannot_escape_the_folder() {
        for bad in ["../etc/passwd", "/absolute", "users//x", "users/.hidden", "a b", ""] {
            assert!(ObjectKey::new(bad).is_err(), "{bad} was accepted");
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn replaces_swap_two_files_instead_of_making_new_ones() {
        use std::os::unix::fs::MetadataExt as _;
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path()).await.unwrap();
        let ledger = key("users/a/usage.json");
        store.put(&ledger, Bytes::from_static(b"v0"), "application/json", PutMode::CreateOnly).await.unwrap();
        let replace_with = |body: &'static str| {
            let (store, ledger) = (store.clone(), ledger.clone());
            async move {
                let (_, version) = store.get_versioned(&ledger).await.unwrap();
                store.replace(&ledger, Bytes::from(body), "application/json", &version).await.unwrap();
            }
        };
        let original = std::fs::metadata(store.path(&ledger)).unwrap().ino();
        replace_with("v1").await;
        let (_, scratch) = FolderStore::lock_and_scratch(folder.path(), ledger.as_str());
        let inodes = || {
            let mut pair = [store.path(&ledger), scratch.clone()].map(|path| std::fs::metadata(path).unwrap().ino());
            pair.sort_unstable();
            pair
        };
        let after_first = inodes();
        assert!(after_first.contains(&original), "the first version's file became the scratch file");
        for body in ["v2", "v3", "v4", "v5"] {
            replace_with(body).await;
            assert_eq!(inodes(), after_first, "the same two files, swapped");
        }
        assert_eq!(store.get(&ledger).await.unwrap(), Bytes::from_static(b"v5"));
        let stale = content_version(b"v4");
        let refused = store.replace(&ledger, Bytes::from_static(b"v6"), "application/json", &stale).await;
        assert!(matches!(refused, Err(StoreError::Changed(_))), "{refused:?}");
        assert_eq!(store.get(&ledger).await.unwrap(), Bytes::from_static(b"v5"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_during_replaces_always_see_a_whole_version() {
        let folder = tempfile::tempdir().unwrap();
        let store = FolderStore::open(folder.path()).await.unwrap();
        let ledger = key("users/a/usage.json");
        // Versions of different lengths, so a torn read could not pass for a whole one.
        let version = |number: usize| Bytes::from(format!("{number}:{}", "x".repeat(number % 7 * 4096)));
        store.put(&ledger, version(0), "application/json", PutMode::CreateOnly).await.unwrap();
        let writer = {
            let (store, ledger) = (store.clone(), ledger.clone());
            tokio::spawn(async move {
                for number in 1..=1_000 {
                    let (_, current) = store.get_versioned(&ledger).await.unwrap();
                    store.replace(&ledger, version(number), "application/json", &current).await.unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (store, ledger) = (store.clone(), ledger.clone());
                tokio::spawn(async move {
                    let mut reads = 0;
                    while reads < 2_000 {
                        let bytes = store.get(&ledger).await.unwrap();
                        let text = std::str::from_utf8(&bytes).unwrap();
                        let (number, _) = text.split_once(':').unwrap_or_else(|| panic!("a torn read: {text:.40}"));
                        assert_eq!(bytes, version(number.parse().unwrap()), "a torn read of version {number}");
                        reads += 1;
                    }
                })
            })
            .collect();
        writer.await.unwrap();
        for reader in readers {
            reader.await.unwrap();
        }
        assert_eq!(store.get(&ledger).await.unwrap(), version(1_000));
    }

    /// A folder's kept listing answers pages only while the folder is unchanged: keys another
    /// process (another store on the same folder) adds or removes show at once.
    #[tokio::test]
    async fn a_kept_listing_follows_changes_made_by_another_process() {
        let folder = tempfile::tempdir().unwrap();
        let here = FolderStore::open(folder.path()).await.unwrap();
        let elsewhere = FolderStore::open(folder.path()).await.unwrap();
        for name in ["b", "d", "f"] {
            here.put(&key(&format!("users/x/records/{name}.json")), Bytes::from("{}"), "a", PutMode::Overwrite)
                .await
                .unwrap();
        }
        // Settled: the listing is kept from now on.
        tokio::time::sleep(LISTING_SETTLED_AFTER + std::time::Duration::from_millis(200)).await;
        let names = |keys: Vec<ObjectKey>| keys.iter().map(|key| key.as_str().to_string()).collect::<Vec<_>>();
        assert_eq!(names(here.list("users/x/records/", None, 10).await.unwrap()).len(), 3);
        assert_eq!(here.listings.lock().unwrap().len(), 1, "the settled folder's listing was not kept");
        let page = here.list("users/x/records/", Some("users/x/records/b.json"), 1).await.unwrap();
        assert_eq!(names(page), ["users/x/records/d.json"]);

        elsewhere.put(&key("users/x/records/c.json"), Bytes::from("{}"), "a", PutMode::Overwrite).await.unwrap();
        elsewhere.delete(&key("users/x/records/f.json")).await.unwrap();
        let listed = names(here.list("users/x/records/", None, 10).await.unwrap());
        assert_eq!(listed, ["users/x/records/b.json", "users/x/records/c.json", "users/x/records/d.json"]);
        let page = here.list("users/x/records/", Some("users/x/records/b.json"), 1).await.unwrap();
        assert_eq!(names(page), ["users/x/records/c.json"]);
    }
}
