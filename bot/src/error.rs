//! The bot's one error type, and the handler that tells users what they can fix and keeps
//! the rest for the operator's log.

use poise::serenity_prelude as serenity;

use crate::Data;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error(transparent)]
    Core(#[from] atelier_shared::Error),
    #[error("Discord: {0}")]
    Discord(#[from] serenity::Error),
}

impl From<atelier_shared::Invalid> for BotError {
    fn from(invalid: atelier_shared::Invalid) -> Self {
        Self::Core(invalid.into())
    }
}

impl BotError {
    /// What the user is told.
    pub fn user_message(&self) -> String {
        match self {
            Self::Core(error) => capitalise(&error.user_message()),
            Self::Discord(_) => "Discord did not accept our reply; please try again.".into(),
        }
    }

    fn is_user_error(&self) -> bool {
        matches!(self, Self::Core(error) if error.is_user_error())
    }
}

pub fn capitalise(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Answers a failed command: the user's own mistakes as they are (only to them), anything
/// else with an apology, logged once here.
pub async fn on_error(error: poise::FrameworkError<'_, Data, BotError>) {
    match error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            if !error.is_user_error() {
                tracing::error!(command = %ctx.command().qualified_name, error = %error, "a command failed: {error}");
            }
            let reply = poise::CreateReply::default().content(error.user_message()).ephemeral(true);
            if let Err(send_error) = ctx.send(reply).await {
                tracing::warn!(error = %send_error, "could not tell the user about a failed command");
            }
        }
        other => {
            if let Err(handler_error) = poise::builtins::on_error(other).await {
                tracing::warn!(error = %handler_error, "could not report a framework error");
            }
        }
    }
}
