//! Atelier's Discord bot: a thin poise layer over the shared core. Commands parse what the
//! user typed, call one [`atelier_shared::Atelier`] operation, and render the result.
//!
//! # Layout
//! - [`commands`]: one module per command group, each exporting `commands()`.
//! - [`error`]: the bot's error type and the one `on_error` that words failures for users.
//! - [`client`]: building serenity's HTTP client and gateway client from the configuration,
//!   registering slash commands, and running until shutdown.

pub mod client;
pub mod commands;
pub mod error;

use atelier_shared::Atelier;

pub use client::{register_commands, run};
pub use error::BotError;

/// What every command can reach.
pub struct Data {
    pub core: Atelier,
}

pub type Context<'a> = poise::Context<'a, Data, BotError>;
