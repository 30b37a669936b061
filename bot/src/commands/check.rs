//! `/check`: the prompt checker's critique.

use atelier_shared::request::Prompt;
use poise::serenity_prelude as serenity;

use crate::{BotError, Context, Data};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![check()]
}

/// Get a critique of a prompt and improved versions of it
#[poise::command(slash_command)]
async fn check(
    ctx: Context<'_>,
    #[description = "The prompt to check"]
    #[max_length = 2000]
    prompt: String,
) -> Result<(), BotError> {
    let prompt = Prompt::parse(&prompt)?;
    ctx.defer().await?;
    let critique = ctx.data().core.check_prompt(&prompt).await?;
    let bullet_list = |items: &[String]| {
        if items.is_empty() {
            "—".to_string()
        } else {
            items.iter().map(|item| format!("• {item}")).collect::<Vec<_>>().join("\n")
        }
    };
    let mut embed = serenity::CreateEmbed::new()
        .title("Prompt check")
        .description(truncate(prompt.as_str(), 4000))
        .field("Strengths", truncate(&bullet_list(&critique.strengths), 1024), false)
        .field("To improve", truncate(&bullet_list(&critique.improvements), 1024), false)
        .footer(serenity::CreateEmbedFooter::new(format!("Reviewed by {}", critique.reviewer)));
    for improved in critique.improved_prompts.iter().take(3) {
        embed = embed.field(format!("Improved for {}", improved.family), truncate(&improved.prompt, 1024), false);
    }
    ctx.send(poise::CreateReply::default().embed(embed)).await?;
    Ok(())
}

/// Discord refuses embed fields over their limits; cut on a character boundary with an ellipsis.
fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}
