//! The slash commands, one module per group.

mod check;
mod imagine;

use crate::{BotError, Data};

/// Every command the bot offers, in the order Discord lists them.
pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    imagine::commands().into_iter().chain(check::commands()).collect()
}
