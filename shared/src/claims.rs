//! Claims: which replica acts on something every replica hears about. Several replicas of
//! Atelier run side by side, and each Discord connection receives every event; an
//! interaction is owned by whichever replica Discord takes the acknowledgement from, but a
//! plain message has no acknowledgement. The first replica to write the message's claim
//! record (a create-only write, S3's `If-None-Match: *`) answers it; the others leave it.
//!
//! Claims are small records under `claims/{kind}/{id}.json`. They are needed only while the
//! replicas race, a few seconds; the deployment's bucket expires them after a day.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::service::Atelier;
use crate::store::ObjectKey;
use crate::store::json::JsonRecords;

/// What is claimed; each kind has its own folder under `claims/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// A message in a chat thread that the assistant answers, by the front end's message id.
    ChatMessage,
}

impl ClaimKind {
    fn folder(self) -> &'static str {
        match self {
            Self::ChatMessage => "chat-messages",
        }
    }
}

/// What a claim record holds: when it was taken, for whoever reads the store.
#[derive(Debug, Serialize, Deserialize)]
struct ClaimRecord {
    #[serde(with = "time::serde::rfc3339")]
    claimed_at: OffsetDateTime,
}

impl Atelier {
    /// Claims `id` of `kind` for this replica: true for the one caller that claimed it
    /// first, false for every later one (here or on another replica sharing the store). The
    /// id is the front end's (a Discord message id) and must be a plain store key segment.
    pub async fn claim_once(&self, kind: ClaimKind, id: &str) -> Result<bool> {
        let key = ObjectKey::new(format!("claims/{}/{id}.json", kind.folder()))
            .map_err(|error| Error::operator("building a claim's store key", error))?;
        let records = JsonRecords::new(self.store().clone(), "claim record");
        records.create(&key, &ClaimRecord { claimed_at: OffsetDateTime::now_utc() }).await
    }
}

#[cfg(test)]
mod tests;
