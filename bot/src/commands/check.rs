//! `/check`: the prompt checker's critique, with buttons that imagine each improved prompt.

use atelier_shared::request::Prompt;

use super::acknowledge;
use crate::render;
use crate::respond::Outgoing;
use crate::{ApplicationContext, BotError, Data, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![check()]
}

/// Get a critique of a prompt and improved versions of it
#[poise::command(slash_command)]
async fn check(
    ctx: ApplicationContext<'_>,
    #[description = "The prompt to check"]
    #[max_length = 6000]
    prompt: String,
) -> Result<(), BotError> {
    let data = ctx.data();
    let prompt = Prompt::parse(&prompt)?;
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let responder = acknowledge(ctx, false).await?;
    let actor = super::place(&ctx).actor(owner.clone());
    let critique = match data.core.check_prompt(&actor, &prompt).await {
        Ok(critique) => critique,
        Err(error) => return work::fail(&responder, &error).await,
    };
    let held =
        work::hold_suggestions(data, &owner, critique.improved_prompts.iter().map(|improved| &improved.prompt)).await?;
    let outgoing = Outgoing {
        embeds: vec![render::critique(prompt.as_str(), &critique)],
        components: render::suggestion_buttons(&owner, &held),
        ..Outgoing::default()
    };
    responder.finish(outgoing).await
}
