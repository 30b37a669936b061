//! The bot's one error type, and the handler that tells users what they can fix and keeps
//! the rest for the operator's log.

use poise::serenity_prelude as serenity;

use crate::Data;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error(transparent)]
    Core(#[from] atelier_shared::Error),
    #[error("Discord: {0}")]
    Discord(serenity::Error),
    /// Discord refused our acknowledgement because another replica acknowledged the
    /// interaction first: that replica owns it, and this one drops it without a word to
    /// anyone (see [`crate::respond::acknowledged_elsewhere`]).
    #[error("another replica acknowledged this interaction first")]
    AnsweredElsewhere,
}

impl From<serenity::Error> for BotError {
    /// Every Discord error passes through here, so a refused acknowledgement becomes
    /// [`BotError::AnsweredElsewhere`] wherever it happens, and nothing after it runs.
    fn from(error: serenity::Error) -> Self {
        if crate::respond::acknowledged_elsewhere(&error) { Self::AnsweredElsewhere } else { Self::Discord(error) }
    }
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
            Self::Discord(_) | Self::AnsweredElsewhere => "Discord did not accept our reply; please try again.".into(),
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
        poise::FrameworkError::Command { error: BotError::AnsweredElsewhere, ctx, .. } => {
            tracing::debug!(
                command = %ctx.command().qualified_name,
                "another replica acknowledged this command first; leaving it to that one"
            );
        }
        poise::FrameworkError::Command { error, ctx, .. } => {
            if !error.is_user_error() {
                tracing::error!(command = %ctx.command().qualified_name, error = %error, "a command failed: {error}");
            }
            let reply = poise::CreateReply::default().content(error.user_message()).ephemeral(true);
            match ctx.send(reply).await {
                Ok(_) => {}
                // The answer is this command's acknowledgement; another replica gave one first
                // and answers it.
                Err(send_error) if crate::respond::acknowledged_elsewhere(&send_error) => {
                    tracing::debug!("another replica answered this command first");
                }
                Err(send_error) => {
                    tracing::warn!(error = %send_error, "could not tell the user about a failed command")
                }
            }
        }
        other => match poise::builtins::on_error(other).await {
            Ok(()) => {}
            // poise answers the interaction itself here; another replica answered first.
            Err(handler_error) if crate::respond::acknowledged_elsewhere(&handler_error) => {
                tracing::debug!("another replica answered this interaction first");
            }
            Err(handler_error) => tracing::warn!(error = %handler_error, "could not report a framework error"),
        },
    }
}
