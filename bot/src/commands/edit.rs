//! `/edit`: edit an attached image in any mode the core offers.

use atelier_shared::request::{EditFields, EditMode};
use atelier_shared::{Appeal, EditSource};
use poise::serenity_prelude as serenity;

use super::imagine::session_named;
use super::{acknowledge, autocomplete_editor, autocomplete_session, check_attachment, fetch_bytes, seed_text};
use crate::{ApplicationContext, BotError, Data, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![edit()]
}

/// The edit modes, as Discord shows them in a menu.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum Mode {
    #[name = "inpaint: repaint a region"]
    Inpaint,
    #[name = "outpaint: extend the picture"]
    Outpaint,
    #[name = "variation: a new image close to this one"]
    Variation,
    #[name = "remove background"]
    RemoveBackground,
    #[name = "replace: swap what the mask prompt names"]
    Replace,
    #[name = "recolor: recolour what the mask prompt names"]
    Recolor,
    #[name = "upscale: make it larger"]
    Upscale,
}

impl From<Mode> for EditMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Inpaint => Self::Inpaint,
            Mode::Outpaint => Self::Outpaint,
            Mode::Variation => Self::Variation,
            Mode::RemoveBackground => Self::RemoveBackground,
            Mode::Replace => Self::Replace,
            Mode::Recolor => Self::Recolor,
            Mode::Upscale => Self::Upscale,
        }
    }
}

/// Edit an image: inpaint, outpaint, variations, remove background, replace, recolor, upscale
#[poise::command(slash_command)]
#[allow(clippy::too_many_arguments, reason = "one argument per slash-command option")]
async fn edit(
    ctx: ApplicationContext<'_>,
    #[description = "The image to edit"] image: serenity::Attachment,
    #[description = "What to do"] mode: Mode,
    #[description = "What to paint (inpaint, replace, recolor, outpaint, variation)"]
    #[max_length = 6000]
    prompt: Option<String>,
    #[description = "A mask at the image's size: white marks the region to change, black what stays"] mask: Option<
        serenity::Attachment,
    >,
    #[description = "The region in words, such as \"the sky\""]
    #[max_length = 1000]
    mask_prompt: Option<String>,
    #[description = "Which model"]
    #[autocomplete = "autocomplete_editor"]
    model: Option<String>,
    #[description = "Seed"] seed: Option<i64>,
    #[description = "A session to put the result in, such as trip"]
    #[autocomplete = "autocomplete_session"]
    #[max_length = 60]
    session: Option<String>,
) -> Result<(), BotError> {
    let data = ctx.data();
    let mode = EditMode::from(mode);
    let fields = EditFields {
        mode: mode.as_str().to_string(),
        prompt,
        mask_prompt,
        model,
        seed: seed_text(seed)?,
        ..EditFields::default()
    };
    check_attachment(&image, "the image")?;
    if let Some(mask) = &mask {
        check_attachment(mask, "the mask")?;
    }
    if mode.needs_prompt() && fields.prompt.as_deref().is_none_or(|text| text.trim().is_empty()) {
        return Err(atelier_shared::Invalid::new(format!("{mode} needs a prompt: say what to paint")).into());
    }
    let session = session_named(session.as_deref())?;
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let private = data.core.preferences(&owner).await?.private_results;

    // Downloading and decoding are not cheap enough to do inside Discord's three seconds.
    let responder = acknowledge(ctx, private).await?;
    let mut actor = responder.actor(owner);
    actor.session = session;
    let checked = async {
        let source = fetch_bytes(&image, "the image").await?;
        let mask = match &mask {
            Some(mask) => Some(fetch_bytes(mask, "the mask").await?),
            None => None,
        };
        Ok::<_, BotError>(data.core.plan_edit(&actor, EditSource::Upload(source), mask, &fields).await?)
    }
    .await;
    let plan = match checked {
        Ok(plan) => plan,
        Err(error) => return responder.refuse(&error.user_message(), Vec::new()).await,
    };
    work::edit(data, &responder, &actor, &plan, Appeal::No).await
}
