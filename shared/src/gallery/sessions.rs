//! Sessions as a person sees them: the names their images are grouped under, found in the
//! records themselves (a record's `session` is the only place a session exists), renamed or
//! taken off by rewriting those records one at a time.

use bytes::Bytes;
use time::OffsetDateTime;

use super::{Gallery, ImageRecord, MAX_PAGE, Owner, SessionName};
use crate::error::{Error, Result};
use crate::store::{ObjectKey, StoreError};

/// One session of a gallery: its name, how many images it holds, and when the newest was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub name: SessionName,
    pub images: usize,
    pub latest: OffsetDateTime,
}

/// How often one record is read again when someone else changed it between our read and write.
const RETAG_ATTEMPTS: u32 = 5;

impl Gallery {
    /// The owner's sessions, the one used most recently first. Reads every record: a session
    /// is nothing but the name its images carry, so there is no list to fall out of step.
    pub async fn sessions(&self, owner: &Owner) -> Result<Vec<SessionSummary>> {
        let mut sessions: Vec<SessionSummary> = Vec::new();
        self.each_record(owner, |_, record| {
            if let Some(name) = record.session {
                // Records come newest first, so the first one seen is a session's latest.
                match sessions.iter_mut().find(|session| session.name == name) {
                    Some(session) => session.images += 1,
                    None => sessions.push(SessionSummary { name, images: 1, latest: record.created_at }),
                }
            }
        })
        .await?;
        Ok(sessions)
    }

    /// Moves every image of session `from` into `to` (`None` takes the name off them), returning
    /// how many were changed. Each record is rewritten in place by a conditional replace of the
    /// version read, so an image deleted meanwhile is not brought back and one changed meanwhile
    /// is read again; the bytes and thumbnails are never touched. Stopped midway, some images
    /// carry the new name and the rest the old one, and running it again finishes the work.
    pub async fn retag_session(&self, owner: &Owner, from: &SessionName, to: Option<&SessionName>) -> Result<usize> {
        let mut keys = Vec::new();
        self.each_record(owner, |key, record| {
            if record.session.as_ref() == Some(from) {
                keys.push(key.clone());
            }
        })
        .await?;
        let mut changed = 0;
        for key in keys {
            if self.retag_record(&key, from, to).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Rewrites one record's session if it is still `from`; whether it did.
    async fn retag_record(&self, key: &ObjectKey, from: &SessionName, to: Option<&SessionName>) -> Result<bool> {
        let failed = |error: StoreError| Error::operator("renaming a session", error);
        for _ in 0..RETAG_ATTEMPTS {
            let (bytes, version) = match self.store.get_versioned(key).await {
                Ok(found) => found,
                // Deleted since it was listed: nothing to rename.
                Err(StoreError::NotFound(_)) => return Ok(false),
                Err(error) => return Err(failed(error)),
            };
            let mut record = parse_record(key, &bytes)?;
            if record.session.as_ref() != Some(from) {
                return Ok(false);
            }
            // The new session's entry before the record, the old one's after it (see `index`).
            let old_entries = Self::entry_keys(&record)?;
            record.session = to.cloned();
            self.put_entries(&record).await.map_err(failed)?;
            let body =
                serde_json::to_vec_pretty(&record).map_err(|error| Error::operator("encoding a record", error))?;
            match self.store.replace(key, Bytes::from(body), "application/json", &version).await {
                Ok(()) => {
                    let new_entries = Self::entry_keys(&record)?;
                    for stale in old_entries.iter().filter(|entry| !new_entries.contains(entry)) {
                        self.store.delete(stale).await.map_err(failed)?;
                    }
                    return Ok(true);
                }
                // Changed or deleted since it was read: read it again.
                Err(StoreError::Changed(_)) => continue,
                Err(error) => return Err(failed(error)),
            }
        }
        Err(Error::operator(
            "renaming a session",
            format!("the record at {} kept changing while it was renamed", key.as_str()),
        ))
    }

    /// Calls `visit` with every record of the owner's gallery, newest first.
    pub(super) async fn each_record(
        &self,
        owner: &Owner,
        mut visit: impl FnMut(&ObjectKey, ImageRecord),
    ) -> Result<()> {
        let prefix = format!("users/{owner}/records/");
        let mut after: Option<String> = None;
        loop {
            let keys = self.store.list(&prefix, after.as_deref(), MAX_PAGE).await?;
            let Some(last) = keys.last() else { return Ok(()) };
            after = Some(last.as_str().to_string());
            for (key, bytes) in keys.iter().zip(self.store.get_many(&keys).await) {
                match bytes {
                    Ok(bytes) => visit(key, parse_record(key, &bytes)?),
                    // Deleted since it was listed.
                    Err(StoreError::NotFound(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
}

fn parse_record(key: &ObjectKey, bytes: &[u8]) -> Result<ImageRecord> {
    serde_json::from_slice(bytes)
        .map_err(|error| Error::operator(format!("reading the record at {}", key.as_str()), error))
}
