//! An [`ObjectStore`] that passes every call to the store it wraps and counts them by kind, so
//! a benchmark can say how many store requests one operation made. A `get_many` counts one
//! request per key (on S3 each is its own GetObject); `download_url` is not counted (a
//! presigned URL is computed, not requested).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use atelier_shared::Bytes;
use atelier_shared::adapters::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// The calls counted, by kind.
#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    get_many_keys: AtomicU64,
    get_versioned: AtomicU64,
    put: AtomicU64,
    replace: AtomicU64,
    delete: AtomicU64,
    check: AtomicU64,
}

/// What was counted between two moments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    pub list: u64,
    /// `get` and `get_versioned` calls, and every key of a `get_many`.
    pub get: u64,
    pub put: u64,
    /// `replace` and `delete` calls.
    pub other_writes: u64,
    pub check: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.list + self.get + self.put + self.other_writes + self.check
    }

    /// "3 list + 49 get", leaving out kinds with none.
    pub fn breakdown(&self) -> String {
        let parts: Vec<String> = [
            (self.list, "list"),
            (self.get, "get"),
            (self.put, "put"),
            (self.other_writes, "replace/delete"),
            (self.check, "check"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, kind)| format!("{count} {kind}"))
        .collect();
        if parts.is_empty() { "none".into() } else { parts.join(" + ") }
    }
}

/// The counting wrapper; clones share their counters.
#[derive(Clone)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, counters: Arc::default() }
    }

    /// Everything counted so far; subtract two of these to count one operation.
    pub fn requests(&self) -> Requests {
        let counters = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Requests {
            list: read(&counters.list),
            get: read(&counters.get) + read(&counters.get_many_keys) + read(&counters.get_versioned),
            put: read(&counters.put),
            other_writes: read(&counters.replace) + read(&counters.delete),
            check: read(&counters.check),
        }
    }
}

impl std::ops::Sub for Requests {
    type Output = Requests;
    fn sub(self, before: Requests) -> Requests {
        Requests {
            list: self.list - before.list,
            get: self.get - before.get,
            put: self.put - before.put,
            other_writes: self.other_writes - before.other_writes,
            check: self.check - before.check,
        }
    }
}

fn count(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for CountingStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str, mode: PutMode) -> Result<(), StoreError> {
        count(&self.counters.put, 1);
        self.inner.put(key, body, content_type, mode).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        count(&self.counters.get, 1);
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[ObjectKey]) -> Vec<Result<Bytes, StoreError>> {
        count(&self.counters.get_many_keys, keys.len() as u64);
        // Passed on whole, so the backend's own way of reading many (one blocking task for a
        // folder) is what is measured.
        self.inner.get_many(keys).await
    }

    async fn get_versioned(&self, key: &ObjectKey) -> Result<(Bytes, Version), StoreError> {
        count(&self.counters.get_versioned, 1);
        self.inner.get_versioned(key).await
    }

    async fn replace(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<(), StoreError> {
        count(&self.counters.replace, 1);
        self.inner.replace(key, body, content_type, expected).await
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectKey>, StoreError> {
        count(&self.counters.list, 1);
        self.inner.list(prefix, start_after, limit).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        count(&self.counters.delete, 1);
        self.inner.delete(key).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        count(&self.counters.check, 1);
        self.inner.check().await
    }

    async fn download_url(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        self.inner.download_url(key, expires_in).await
    }
}
