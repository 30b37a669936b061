//! Amazon Bedrock behind Atelier's own traits: the image families, Claude chat, the prompt
//! critique and the safety checks.
//!
//! # Layout
//! - [`client`]: the SDK client, with timeouts and retries, and the mapping from Bedrock's
//!   errors to what the user and the operator are told.
//! - [`wire`]: what every image family shares: base64 images and masks, and [`wire::Answer`].
//! - [`sdxl`], [`titan`], [`stability`], [`image_services`]: one module per request schema
//!   family, each a set of pure functions from our request to the JSON body and from the
//!   response body to an [`wire::Answer`], so they are tested without a network.
//! - [`engine`]: [`engine::BedrockImageEngine`], the `ImageEngine` that picks the family.

pub mod chat;
pub mod client;
pub mod converse;
pub mod critic;
pub mod engine;
pub mod image_services;
pub mod safety;
pub mod sdxl;
pub mod stability;
pub mod titan;
pub mod wire;
