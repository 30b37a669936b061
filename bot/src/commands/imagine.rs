//! `/imagine`: make images from a prompt, with inline parameters the way image-bot users
//! type them (`--ar 16:9 --seed 42 --no trees --model ultra`).

use atelier_shared::gallery::SessionName;
use atelier_shared::request::GenerationFields;
use atelier_shared::request::inline::apply_inline_parameters;
use atelier_shared::{Appeal, Invalid};

use super::{
    acknowledge, autocomplete_aspect, autocomplete_generator, autocomplete_session, autocomplete_style, seed_text,
};
use crate::{ApplicationContext, BotError, Data, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![imagine()]
}

/// Make images from a prompt
///
/// Describe the picture; options and inline parameters such as `--ar 16:9 --no trees` set
/// the rest. Your /settings fill in what you leave out; a session groups the images in your
/// gallery.
#[poise::command(slash_command)]
#[allow(clippy::too_many_arguments, reason = "one argument per slash-command option")]
async fn imagine(
    ctx: ApplicationContext<'_>,
    #[description = "What to draw (inline: --ar 16:9 --seed 42 --no trees --model ultra)"]
    #[max_length = 6000]
    prompt: String,
    #[description = "What to leave out"]
    #[max_length = 6000]
    negative: Option<String>,
    #[description = "Which model"]
    #[autocomplete = "autocomplete_generator"]
    model: Option<String>,
    #[description = "Shape, such as 16:9"]
    #[autocomplete = "autocomplete_aspect"]
    aspect: Option<String>,
    #[description = "Style preset, such as photographic"]
    #[autocomplete = "autocomplete_style"]
    style: Option<String>,
    #[description = "Seed, to make the same picture again"] seed: Option<i64>,
    #[description = "How many images (1 to 4)"]
    #[min = 1]
    #[max = 4]
    count: Option<u32>,
    #[description = "A session to group the images under, such as trip"]
    #[autocomplete = "autocomplete_session"]
    #[max_length = 60]
    session: Option<String>,
) -> Result<(), BotError> {
    let data = ctx.data();
    // Everything cheap is checked before the acknowledgement, so a wrong option gets an
    // answer only its author sees and costs nothing.
    let explicit = GenerationFields {
        prompt: String::new(),
        negative_prompt: negative,
        model,
        aspect,
        seed: seed_text(seed)?,
        count: count.map(|count| count.to_string()),
        style,
        ..GenerationFields::default()
    };
    let fields = apply_inline_parameters(&prompt, explicit)?;
    let session = session_named(session.as_deref())?;
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let mut actor = super::place(&ctx).actor(owner);
    actor.session = session;
    // The core fills in the person's /settings.
    let plan = data.core.plan_generation(&actor, &fields).await?;

    let responder = acknowledge(ctx, plan.private_results()).await?;
    work::generate(data, &responder, &actor, &plan, Appeal::No).await
}

/// The session an option names; blank names none.
pub fn session_named(text: Option<&str>) -> Result<Option<SessionName>, Invalid> {
    text.map(str::trim).filter(|name| !name.is_empty()).map(SessionName::parse).transpose()
}
