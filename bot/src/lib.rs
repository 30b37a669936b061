//! Atelier's Discord bot: a thin poise layer over the shared core. Commands parse what the
//! user typed, call [`atelier_shared::Atelier`], and render the result.
//!
//! # Layout
//! - [`commands`]: one module per command group, each exporting `commands()`.
//! - [`components`]: the buttons under results and the modals they open. Every `custom_id`
//!   carries what the handler needs to load from the gallery, so buttons survive restarts.
//! - [`threads`]: chat threads continued by plain replies (with the message-content intent).
//! - [`respond`]: answering one interaction: progress in place, the result, refusals that
//!   only the user sees, and the channel-message fallback once the 15-minute token is gone.
//! - [`work`]: running image jobs for commands and buttons alike.
//! - [`place`]: where someone asks from (server, channel, their roles, age-restricted or not),
//!   which is how every handler builds the core's `Actor`.
//! - [`recovery`]: answering people whose jobs were interrupted by a stopped process.
//! - [`render`]: how results, critiques and long texts look within Discord's limits.
//! - [`error`]: the bot's error type and the one `on_error` that words failures for users.
//! - [`client`]: the REST and gateway clients, command registration, running until shutdown.
//! - [`rate_limits`]: Discord's rate-limit waits, counted in the core's metrics.

pub mod client;
pub mod commands;
pub mod components;
pub mod error;
pub mod place;
pub mod rate_limits;
pub mod recovery;
pub mod render;
pub mod respond;
pub mod threads;
pub mod work;

use atelier_shared::Atelier;
use url::Url;

pub use client::{register_commands, run};
pub use error::BotError;

/// What every command and handler can reach.
pub struct Data {
    pub core: Atelier,
    /// Where the web app is, for gallery and link buttons.
    pub public_url: Url,
    /// A channel that gets one line per refused prompt.
    pub moderation_channel: Option<poise::serenity_prelude::ChannelId>,
    /// Whether plain replies in chat threads can be read (the message-content intent).
    pub message_content: bool,
}

pub type Context<'a> = poise::Context<'a, Data, BotError>;
pub type ApplicationContext<'a> = poise::ApplicationContext<'a, Data, BotError>;
