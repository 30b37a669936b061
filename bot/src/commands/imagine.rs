//! `/imagine`: make images from a prompt.

use atelier_shared::gallery::{Origin, Owner};
use atelier_shared::request::GenerationFields;
use atelier_shared::service::Actor;
use poise::serenity_prelude as serenity;

use crate::{BotError, Context, Data};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![imagine()]
}

/// Make images from a prompt
///
/// Describe the picture; add a negative prompt for what to leave out.
/// ```
/// /imagine prompt: a lighthouse in a storm, oil painting aspect: 16:9
/// ```
#[poise::command(slash_command)]
async fn imagine(
    ctx: Context<'_>,
    #[description = "What to draw"]
    #[max_length = 2000]
    prompt: String,
    #[description = "What to leave out"] negative: Option<String>,
    #[description = "Shape, such as 16:9"] aspect: Option<String>,
    #[description = "Seed, to make the same picture again"] seed: Option<u32>,
    #[description = "How many images (1 to 4)"]
    #[min = 1]
    #[max = 4]
    count: Option<u32>,
    #[description = "Style preset, such as photographic"] style: Option<String>,
) -> Result<(), BotError> {
    let request = GenerationFields {
        prompt,
        negative_prompt: negative,
        aspect,
        seed: seed.map(|seed| seed.to_string()),
        count: count.map(|count| count.to_string()),
        style,
        ..GenerationFields::default()
    }
    .parse()?;
    // Models take longer than Discord's three seconds: acknowledge first.
    ctx.defer().await?;
    let actor = Actor::new(
        Owner::discord(ctx.author().id.get()),
        Origin::Discord {
            guild_id: ctx.guild_id().map(|id| id.get()),
            channel_id: ctx.channel_id().get(),
            message_id: None,
        },
    );
    let kept = ctx.data().core.generate(&actor, &request).await?;
    let mut reply = poise::CreateReply::default();
    for image in &kept {
        let record = &image.record;
        let name = format!("atelier-{}.{}", record.id, record.extension);
        reply = reply.attachment(serenity::CreateAttachment::bytes(image.image.bytes().to_vec(), name.clone())).embed(
            serenity::CreateEmbed::new()
                .description(request.prompt.as_str())
                .image(format!("attachment://{name}"))
                .field("Model", &record.model_id, true)
                .field("Seed", record.seed.to_string(), true)
                .field("Size", record.size.to_string(), true),
        );
    }
    ctx.send(reply).await?;
    Ok(())
}
