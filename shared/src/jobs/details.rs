//! What a job is: its id, the replica holding it, and what is kept with it so that an
//! interrupted job can be answered through the front end it came from.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ledger::JobRecord;
use crate::error::Result;
use crate::request::GenerationFields;

/// A job's id: a ULID, so ids sort by admission time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(ulid::Ulid);

impl JobId {
    pub(super) fn new() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(text: &str) -> Option<Self> {
        ulid::Ulid::from_string(text).ok().map(Self)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

/// One running process of Atelier, named afresh at each start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaId(String);

impl ReplicaId {
    pub(super) fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What kind of job it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    #[default]
    Generate,
    Edit,
}

/// Where and how a front end answers the person a job is for, in the front end's own terms
/// (a Discord interaction token and channel): the core keeps it with the job and hands it
/// back to the front end's [`JobAnswerer`] if the job must be answered by another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyRoute {
    /// The name the front end registered its answerer under (`discord`).
    pub front_end: String,
    pub route: serde_json::Value,
}

/// What a job is, kept with it so an interrupted job can be answered well.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobDetails {
    pub kind: JobKind,
    /// The request, for generations, so the answer can offer it again.
    #[serde(default)]
    pub fields: Option<GenerationFields>,
    #[serde(default)]
    pub reply: Option<ReplyRoute>,
}

impl JobDetails {
    pub fn generation(fields: GenerationFields) -> Self {
        Self { kind: JobKind::Generate, fields: Some(fields), reply: None }
    }

    pub fn edit() -> Self {
        Self { kind: JobKind::Edit, fields: None, reply: None }
    }

    pub fn answered_at(mut self, reply: Option<ReplyRoute>) -> Self {
        self.reply = reply;
        self
    }
}

/// A front end's way to tell a person that a job of theirs ended without its images because
/// the process running it stopped; the job's images are already given back.
#[async_trait]
pub trait JobAnswerer: Send + Sync + 'static {
    async fn answer_interrupted(&self, job: &JobRecord) -> Result<()>;
}
