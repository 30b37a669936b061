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
