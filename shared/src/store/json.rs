//! Small JSON records in the object store (account links, preferences, refused requests,
//! conversations), with the store's failures worded once for the operator.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ObjectKey, ObjectStore, PutMode, StoreError};
use crate::error::{Error, Result};

/// JSON records of one kind; `kind` names them in the operator's log ("account record").
#[derive(Clone)]
pub struct JsonRecords {
    store: Arc<dyn ObjectStore>,
    kind: &'static str,
}

impl JsonRecords {
    pub fn new(store: Arc<dyn ObjectStore>, kind: &'static str) -> Self {
        Self { store, kind }
    }

    /// The record at `key`, or `None` when there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &ObjectKey) -> Result<Option<T>> {
        match self.store.get(key).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| Error::operator(format!("reading the {} at {}", self.kind, key.as_str()), error)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Writes a record only if none is there yet (S3's `If-None-Match: *`); whether it did.
    pub async fn create<T: Serialize>(&self, key: &ObjectKey, value: &T) -> Result<bool> {
        match self.store.put(key, self.encode(key, value)?, "application/json", PutMode::CreateOnly).await {
            Ok(()) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Writes a record, replacing any that is there.
    pub async fn overwrite<T: Serialize>(&self, key: &ObjectKey, value: &T) -> Result<()> {
        self.store
            .put(key, self.encode(key, value)?, "application/json", PutMode::Overwrite)
            .await
            .map_err(|error| self.failed(error))
    }

    /// Changes the record at `key` by compare-and-swap: reads it (`None` when there is none),
    /// lets `change` decide the new value, and writes it only if nobody wrote in between
    /// (create-only when there was none, `If-Match` otherwise), starting again from a fresh
    /// read when someone did. `change` returns the value to write and what to hand back, or
    /// an error that stops without writing. It may run more than once, so it must not have
    /// side effects of its own.
    pub async fn update<T, R, F>(&self, key: &ObjectKey, mut change: F) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<(T, R)>,
    {
        const ATTEMPTS: u32 = 40;
        for attempt in 0..ATTEMPTS {
            let current = match self.store.get_versioned(key).await {
                Ok((bytes, version)) => {
                    let value = serde_json::from_slice(&bytes).map_err(|error| {
                        Error::operator(format!("reading the {} at {}", self.kind, key.as_str()), error)
                    })?;
                    Some((value, version))
                }
                Err(StoreError::NotFound(_)) => None,
                Err(error) => return Err(self.failed(error)),
            };
            let (version, value) = match current {
                Some((value, version)) => (Some(version), Some(value)),
                None => (None, None),
            };
            let (new_value, answer) = change(value)?;
            let body = self.encode(key, &new_value)?;
            let written = match &version {
                Some(version) => self.store.replace(key, body, "application/json", version).await,
                None => self.store.put(key, body, "application/json", PutMode::CreateOnly).await,
            };
            match written {
                Ok(()) => return Ok(answer),
                Err(StoreError::Changed(_) | StoreError::AlreadyExists(_)) => {
                    // Someone else wrote first: back off a little, with jitter so two writers
                    // that collided do not collide again in step.
                    let ceiling = 5 * u64::from(attempt.min(8) + 1);
                    let pause = rand::random_range(1..=ceiling);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(error) => return Err(self.failed(error)),
            }
        }
        Err(Error::operator(
            format!("updating the {} at {}", self.kind, key.as_str()),
            format!("{ATTEMPTS} writers in a row got there first"),
        ))
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.store.delete(key).await.map_err(|error| self.failed(error))
    }

    fn failed(&self, error: StoreError) -> Error {
        Error::operator(format!("the store failed with a {}", self.kind), error)
    }

    fn encode<T: Serialize>(&self, key: &ObjectKey, value: &T) -> Result<Bytes> {
        serde_json::to_vec_pretty(value)
            .map(Bytes::from)
            .map_err(|error| Error::operator(format!("encoding the {} at {}", self.kind, key.as_str()), error))
    }
}
