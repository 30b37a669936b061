//! The slash commands, one module per group, and what they share: reading attachments,
//! autocomplete lists, and turning a poise context into a [`Responder`].

mod account;
mod chat;
mod check;
mod describe;
mod edit;
mod imagine;
mod server;

use atelier_shared::Bytes;
use atelier_shared::Invalid;
use atelier_shared::gallery::Owner;
use atelier_shared::images::{CheckedImage, MAX_UPLOAD_BYTES, check_upload};
use poise::serenity_prelude as serenity;

use crate::respond::Responder;
use crate::{ApplicationContext, BotError, Data};

/// Every command the bot offers, in the order Discord lists them.
pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    imagine::commands()
        .into_iter()
        .chain(edit::commands())
        .chain(describe::commands())
        .chain(check::commands())
        .chain(chat::commands())
        .chain(account::commands())
        .chain(server::commands())
        .collect()
}

/// Where a command was asked, and the asker's roles there.
fn place(ctx: &ApplicationContext<'_>) -> crate::place::Place {
    crate::place_of!(&ctx.serenity_context().cache, ctx.interaction)
}

/// Acknowledges a command (Discord allows three seconds) and returns what answers it later.
async fn acknowledge(ctx: ApplicationContext<'_>, ephemeral: bool) -> Result<Responder, BotError> {
    let context = poise::Context::Application(ctx);
    if ephemeral {
        context.defer_ephemeral().await?;
    } else {
        context.defer().await?;
    }
    Ok(Responder::for_command(ctx.serenity_context(), ctx.interaction, ephemeral))
}

/// Checks what Discord says about an attachment before downloading it: cheap, so a wrong
/// file is refused before the command is even acknowledged.
fn check_attachment(attachment: &serenity::Attachment, what: &str) -> Result<(), Invalid> {
    if let Some(content_type) = &attachment.content_type
        && !content_type.starts_with("image/")
    {
        return Err(Invalid::new(format!(
            "{what} `{}` is not an image ({content_type}); attach a PNG, JPEG or WebP picture",
            attachment.filename
        )));
    }
    if attachment.size as usize > MAX_UPLOAD_BYTES {
        return Err(Invalid::new(format!(
            "{what} `{}` is {:.1} MB; attach one of at most {} MB",
            attachment.filename,
            f64::from(attachment.size) / 1_048_576.0,
            MAX_UPLOAD_BYTES / 1_048_576
        )));
    }
    Ok(())
}

/// Downloads an attachment, refusing one larger than an upload may be.
async fn fetch_bytes(attachment: &serenity::Attachment, what: &'static str) -> Result<Bytes, BotError> {
    check_attachment(attachment, what)?;
    let bytes = attachment.download().await?;
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(Invalid::new(format!("{what} is larger than {} MB", MAX_UPLOAD_BYTES / 1_048_576)).into());
    }
    Ok(bytes.into())
}

/// Downloads an attachment and checks it is a whole image of a format the models read.
async fn fetch_image(
    uploader: &Owner,
    attachment: &serenity::Attachment,
    what: &'static str,
) -> Result<CheckedImage, BotError> {
    Ok(check_upload(uploader, fetch_bytes(attachment, what).await?, what).await?)
}

/// The lists autocomplete offers. Autocomplete interactions are answered by
/// [`crate::client`] from [`autocomplete_list`], not by poise: poise logs a refused answer as
/// a warning, and with several replicas all but one answer are refused (another replica
/// answered first). The poise callbacks below only mark the options as autocompleted when
/// the commands are registered, and give the same lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutocompleteList {
    /// Models that make images.
    Generators,
    /// Models that edit images.
    Editors,
    /// Common aspect ratios.
    Aspects,
    /// Style presets.
    Styles,
    /// The sessions of the person typing.
    Sessions,
}

/// Which list an option of a command offers, if any.
pub fn autocomplete_list(command: &str, option: &str) -> Option<AutocompleteList> {
    match (command, option) {
        ("edit", "model") => Some(AutocompleteList::Editors),
        ("imagine" | "settings", "model") => Some(AutocompleteList::Generators),
        ("imagine" | "settings", "aspect") => Some(AutocompleteList::Aspects),
        ("imagine" | "settings", "style") => Some(AutocompleteList::Styles),
        ("imagine" | "edit", "session") => Some(AutocompleteList::Sessions),
        _ => None,
    }
}

impl AutocompleteList {
    /// The entries that match what was typed so far in `interaction` (at most 25, Discord's
    /// limit).
    pub async fn choices(
        self,
        data: &Data,
        interaction: &serenity::CommandInteraction,
        partial: &str,
    ) -> serenity::CreateAutocompleteResponse {
        if self == Self::Sessions {
            let choices = session_choices(data, interaction, partial).await;
            return serenity::CreateAutocompleteResponse::new().set_choices(choices);
        }
        let partial = partial.trim().to_lowercase();
        let choices = match self {
            Self::Generators | Self::Editors => data
                .core
                .models()
                .into_iter()
                .filter(|model| match self {
                    Self::Generators => model.can_generate,
                    _ => !model.edit_modes.is_empty(),
                })
                .filter(|model| model.alias.to_lowercase().contains(&partial))
                .take(25)
                .map(|model| serenity::AutocompleteChoice::new(format!("{} ({})", model.alias, model.id), model.alias))
                .collect(),
            Self::Aspects => ASPECTS
                .into_iter()
                .filter(|aspect| aspect.starts_with(partial.as_str()))
                .map(serenity::AutocompleteChoice::from)
                .collect(),
            Self::Styles => data
                .core
                .style_presets()
                .iter()
                .copied()
                .filter(|style| style.contains(partial.as_str()))
                .take(25)
                .map(serenity::AutocompleteChoice::from)
                .collect(),
            Self::Sessions => Vec::new(),
        };
        serenity::CreateAutocompleteResponse::new().set_choices(choices)
    }
}

/// The person's sessions that contain what they typed, with what they typed first (a new
/// session is just a new name). Nothing when the gallery cannot be read: a suggestion is not
/// worth an error.
async fn session_choices(
    data: &Data,
    interaction: &serenity::CommandInteraction,
    partial: &str,
) -> Vec<serenity::AutocompleteChoice> {
    let typed = partial.trim();
    let mut choices: Vec<serenity::AutocompleteChoice> = Vec::new();
    if !typed.is_empty() {
        choices.push(typed.to_string().into());
    }
    let sessions = match crate::work::owner_of(data, &interaction.user).await {
        Ok(owner) => {
            let origin = crate::place::origin_in(interaction.guild_id, interaction.channel_id);
            let actor = atelier_shared::Actor::new(owner, origin);
            data.core.gallery_sessions(&actor).await.unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    let wanted = typed.to_lowercase();
    for session in sessions {
        let name = session.name.as_str();
        if name != typed && name.to_lowercase().contains(&wanted) && choices.len() < 25 {
            choices.push(serenity::AutocompleteChoice::new(format!("{name} ({} images)", session.images), name));
        }
    }
    choices
}

async fn autocomplete_generator(ctx: ApplicationContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    AutocompleteList::Generators.choices(ctx.data(), ctx.interaction, partial).await
}

async fn autocomplete_editor(ctx: ApplicationContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    AutocompleteList::Editors.choices(ctx.data(), ctx.interaction, partial).await
}

async fn autocomplete_aspect(ctx: ApplicationContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    AutocompleteList::Aspects.choices(ctx.data(), ctx.interaction, partial).await
}

async fn autocomplete_style(ctx: ApplicationContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    AutocompleteList::Styles.choices(ctx.data(), ctx.interaction, partial).await
}

async fn autocomplete_session(ctx: ApplicationContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    AutocompleteList::Sessions.choices(ctx.data(), ctx.interaction, partial).await
}

/// Common aspect ratios.
const ASPECTS: [&str; 9] = ["1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21"];

/// A seed as Discord gives it (a 53-bit integer), checked into the range every model shares
/// at most; each model's own limit is checked with the rest of the request.
fn seed_text(seed: Option<i64>) -> Result<Option<String>, Invalid> {
    match seed {
        None => Ok(None),
        Some(seed) if (0..=i64::from(u32::MAX)).contains(&seed) => Ok(Some(seed.to_string())),
        Some(seed) => Err(Invalid::new(format!("{seed} is not a seed: use a whole number from 0 to {}", u32::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option registered as autocompleted is answered from a list, and no list is
    /// claimed for an option Discord would not ask about.
    #[test]
    fn every_autocompleted_option_has_a_list() {
        for command in commands() {
            for parameter in &command.parameters {
                let answered = autocomplete_list(&command.name, &parameter.name).is_some();
                assert_eq!(
                    answered,
                    parameter.autocomplete_callback.is_some(),
                    "/{} {}: registered as autocompleted but answered from no list, or the other way round",
                    command.name,
                    parameter.name
                );
            }
        }
    }
}
