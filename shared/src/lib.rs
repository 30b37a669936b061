//! Atelier's core: everything the Discord bot and the web app share.
//!
//! # Layout
//! - [`config`]: the typed configuration, read and checked once at start.
//! - [`request`]: what people ask for (prompts, shapes, seeds, edit modes), checked on creation.
//! - [`images`]: checking uploads, encoding PNGs, making thumbnails.
//! - [`engine`]: the [`engine::ImageEngine`] trait every image model family sits behind, and the demo engine.
//! - [`chat`] and [`checker`]: conversations and the prompt critique.
//! - [`store`] and [`gallery`]: object storage and the per-owner image gallery on top of it.
//! - [`jobs`]: the line image jobs wait in, per-person limits and the daily quota.
//! - [`metrics`]: Prometheus metrics in our own terms, from a registry each core owns.
//! - [`preferences`]: a person's defaults for new images.
//! - [`sessions`]: web sessions and sign-ins in progress, kept in the store.
//! - [`claims`]: which replica acts on an event every replica hears (a create-only record).
//! - [`service`]: [`Atelier`], the operations front ends call.
//! - [`startup`]: building an [`Atelier`] from a [`config::Config`].
//!
//! **Architecture invariant:** this crate knows nothing of Discord or of serving HTTP (no
//! serenity, poise, axum or templates). Front ends parse, call [`Atelier`], and render.

pub mod accounts;
pub mod bedrock;
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
pub mod request;
pub mod safety;
pub mod service;
pub mod sessions;
pub mod startup;
pub mod store;

pub use bytes::Bytes;
pub use error::{Error, Invalid, Result};
pub use service::Atelier;
