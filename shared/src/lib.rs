//! Atelier's core: everything the Discord bot and the web app share.
//!
//! # Layout
//! - [`config`]: the typed configuration, read and checked once at start.
//! - [`request`]: what people ask for (prompts, shapes, seeds, edit modes), checked on creation.
//! - [`images`]: checking uploads, encoding PNGs, making thumbnails.
//! - [`engine`]: the [`engine::ImageEngine`] trait every image model family sits behind, and the demo engine.
//! - [`chat`] and [`checker`]: conversations and the prompt critique.
//! - [`store`] and [`gallery`]: object storage (the [`store::ObjectStore`] trait; its folder and
//!   S3 backends and the Bedrock adapters are the crate's own, reached from outside only by the
//!   tests and benchmarks through a hidden `adapters` module) and the per-owner image gallery.
//! - [`jobs`]: the line image jobs wait in, per-person limits and the daily quota.
//! - [`metrics`]: Prometheus metrics in our own terms, from a registry each core owns.
//! - [`preferences`]: a person's defaults for new images.
//! - [`pricing`]: what model calls cost, the unit of every budget.
//! - [`sessions`]: web sessions and sign-ins in progress, kept in the store.
//! - [`claims`]: which replica acts on an event every replica hears (a create-only record).
//! - `public_cache`: the CDN in front of the public pages (the `PublicCache` trait and its
//!   CloudFront adapter), told when a published image stops being public.
//! - [`service`]: [`Atelier`], the operations front ends call.
//! - [`startup`]: building an [`Atelier`] from a [`config::Config`].
//!
//! **Architecture invariant:** this crate knows nothing of Discord or of serving HTTP (no
//! serenity, poise, axum or templates). Front ends parse, call [`Atelier`], and render.

pub(crate) mod accounts;
pub(crate) mod bedrock;
pub mod chat;
pub mod checker;
pub mod claims;
pub mod config;
pub mod engine;
pub mod error;
pub mod gallery;
pub mod images;
pub mod jobs;
pub mod metrics;
pub mod oidc;
pub mod preferences;
pub mod pricing;
pub(crate) mod public_cache;
pub mod request;
pub(crate) mod safety;
pub(crate) mod service;
pub(crate) mod sessions;
pub mod startup;
pub(crate) mod store;

/// The adapters behind the core's traits, for the end-to-end tests and the benchmarks, which
/// set up stores and measure the Bedrock bodies directly. Front ends never use them: they go
/// through [`Atelier`] and [`startup`].
#[doc(hidden)]
pub mod adapters {
    pub use crate::accounts::{Accounts, CognitoDirectory, DISCORD_ID_ATTRIBUTE, NoDirectory};
    pub use crate::bedrock::engine::read_images;
    pub use crate::bedrock::wire::Answer;
    pub use crate::bedrock::{image_services, sdxl, stability, titan};
    pub use crate::store::folder::FolderStore;
    pub use crate::store::s3::S3Store;
    pub use crate::store::spool::Spool;
    pub use crate::store::{ObjectKey, ObjectStore, PutMode, StoreError, Version};
}

pub use bytes::Bytes;
pub use error::{Error, Invalid, Refused, Result};
// The use-case API, which is what front ends call: the core and the values its operations
// take and give.
pub use service::{
    Actor, AgePolicy, Appeal, Atelier, Ban, Conversation, DeletedPerson, EditPlan, EditSource, Exchange, FailureReason,
    Filing, GenerationPlan, HeldAppeal, HeldId, HeldRef, ImageRef, JobRef, JobState, JobUpdates, JobView, Kept,
    LinkStart, Membership, NOT_BANNED_MEMORY, Owned, PublicPage, Published, SERVER_GALLERY_PAGE, ServerChange,
    ServerSettings, UsageRecord, UsageReport, UsageTotals, data_archive,
};
