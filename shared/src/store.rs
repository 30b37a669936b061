//! Object storage: the narrow interface the gallery and the account links are kept through,
//! with two backends: a local folder (`folder`, the embedded default) and S3 (`s3`, the
//! production store). Keys are plain `/`-separated paths, the same in every backend, so a
//! folder and a bucket hold identical layouts.

pub(crate) mod folder;
pub mod json;
pub(crate) mod s3;
pub(crate) mod spool;

use async_trait::async_trait;
use bytes::Bytes;

/// Whether a write may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Write whatever is there.
    Overwrite,
    /// Write only if nothing is there yet (S3's `If-None-Match: *`), so two writers can never
    /// both believe they created the same object.
    CreateOnly,
}

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no object at `{0}`")]
    NotFound(String),
    #[error("an object already exists at `{0}`")]
    AlreadyExists(String),
    /// A conditional replace found the object changed (or gone) since it was read.
    #[error("the object at `{0}` changed since it was read")]
    Changed(String),
    #[error("the store at {location} cannot be used: {detail}")]
    Unavailable { location: String, detail: String },
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

impl From<StoreError> for crate::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => crate::Error::not_found("that image does not exist, or is not yours"),
            other => crate::Error::operator("the image store failed", other),
        }
    }
}

/// A checked object key: relative, `/`-separated, of safe characters only, so no key can
/// climb out of a folder store or collide with its temporary files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        let safe_segment = |segment: &str| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if key.len() > 900 || !key.split('/').all(safe_segment) {
            return Err(StoreError::Unavailable {
                location: "(any)".into(),
                detail: format!("`{key}` is not a valid object key"),
            });
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which version of an object was read (S3's ETag; a content hash in a folder), so a later
/// write can replace exactly that version and no other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// A place to keep objects.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Where the store is, for logs and `atelier config` (`file:///…`, `s3://…`).
    fn location(&self) -> String;

    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str, mode: PutMode) -> Result<(), StoreError>;

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError>;

    /// Several objects, in the order asked; a missing one is `NotFound` in its place. The
    /// gallery reads a page of records this way: backends with a cheaper way than one call
    /// each (a folder: one blocking task for the lot) say so by overriding it.
    async fn get_many(&self, keys: &[ObjectKey]) -> Vec<Result<Bytes, StoreError>> {
        use futures::StreamExt as _;
        let mut results = Vec::with_capacity(keys.len());
        let mut reads =
            futures::stream::iter(keys.iter().cloned()).map(|key| async move { self.get(&key).await }).buffered(16);
        while let Some(result) = reads.next().await {
            results.push(result);
        }
        results
    }

    /// The object and the version read, for [`Self::replace`].
    async fn get_versioned(&self, key: &ObjectKey) -> Result<(Bytes, Version), StoreError>;

    /// Replaces the object only if it is still at `expected` (S3's `If-Match`), so two
    /// writers updating the same record (a person's quota) can never both win; fails with
    /// [`StoreError::Changed`] when someone wrote or deleted it since.
    async fn replace(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<(), StoreError>;

    /// Keys that start with `prefix`, in ascending byte order, after `start_after`, at most `limit`.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectKey>, StoreError>;

    /// Deletes an object; deleting one that is not there is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;

    /// Whether the store can be used right now (for `/readyz`).
    async fn check(&self) -> Result<(), StoreError>;

    /// A short-lived URL the browser can download the object from directly, when the store
    /// offers one (S3's presigned URLs); `None` means the web app serves the bytes itself.
    async fn download_url(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        let _ = (key, expires_in);
        Ok(None)
    }
}
