//! `/describe`: four prompts that would draw something like an attached image, each with a
//! button that imagines it.

use poise::serenity_prelude as serenity;

use super::{acknowledge, check_attachment, fetch_image};
use crate::render::{self, EMBED_DESCRIPTION_LIMIT, truncate};
use crate::respond::Outgoing;
use crate::{ApplicationContext, BotError, Data, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![describe()]
}

/// Four prompts that would draw something like an image
#[poise::command(slash_command)]
async fn describe(
    ctx: ApplicationContext<'_>,
    #[description = "The image to describe"] image: serenity::Attachment,
) -> Result<(), BotError> {
    let data = ctx.data();
    check_attachment(&image, "the image")?;
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let responder = acknowledge(ctx, false).await?;
    let described = async {
        let checked = fetch_image(&owner, &image, "the image").await?;
        let actor = super::place(&ctx).actor(owner.clone());
        Ok::<_, BotError>(data.core.describe(&actor, &checked).await?)
    }
    .await;
    let suggestions = match described {
        Ok(suggestions) => suggestions,
        Err(BotError::Core(error)) => return work::fail(&responder, &error).await,
        Err(error) => return responder.refuse(&error.user_message(), Vec::new()).await,
    };
    let held = work::hold_suggestions(data, &owner, suggestions.iter()).await?;
    let text = suggestions
        .iter()
        .take(render::MAX_SUGGESTIONS)
        .enumerate()
        .map(|(index, suggestion)| format!("**{}.** {suggestion}", index + 1))
        .collect::<Vec<_>>()
        .join("\n\n");
    let embed = serenity::CreateEmbed::new()
        .title("Prompts for this image")
        .description(truncate(&text, EMBED_DESCRIPTION_LIMIT))
        .thumbnail(image.url.clone());
    let outgoing =
        Outgoing { embeds: vec![embed], components: render::suggestion_buttons(&owner, &held), ..Outgoing::default() };
    responder.finish(outgoing).await
}
