//! The person's own things: `/link`, `/unlink`, `/gallery`, `/settings`, `/me`. Every answer
//! here is ephemeral: it is about one person.

use atelier_shared::LinkStart;
use atelier_shared::gallery::ListFilter;
use atelier_shared::jobs::usage_text;
use atelier_shared::preferences::PreferenceChange;
use poise::serenity_prelude as serenity;

use super::{autocomplete_aspect, autocomplete_generator, autocomplete_style};
use crate::render::{FIELD_LIMIT, truncate};
use crate::{ApplicationContext, BotError, Data, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![link(), unlink(), gallery(), settings(), me()]
}

async fn reply_privately(
    ctx: ApplicationContext<'_>,
    content: impl Into<String>,
    embed: Option<serenity::CreateEmbed>,
    components: Vec<serenity::CreateActionRow>,
) -> Result<(), BotError> {
    let mut reply = poise::CreateReply::default().content(content).ephemeral(true).components(components);
    if let Some(embed) = embed {
        reply = reply.embed(embed);
    }
    poise::Context::Application(ctx).send(reply).await?;
    Ok(())
}

/// Acknowledges privately before anything is written: every replica of the bot receives the
/// command, and only the one whose acknowledgement Discord takes may write. The answer then
/// replaces the "thinking" message ([`reply_privately`] sends it as the first follow-up).
async fn acknowledge_privately(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    poise::Context::Application(ctx).defer_ephemeral().await?;
    Ok(())
}

fn link_button(label: &str, url: &str) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![serenity::CreateButton::new_link(url).label(label)])
}

/// Link your Discord account to your Atelier web account
#[poise::command(slash_command)]
async fn link(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    let data = ctx.data();
    if !data.core.linking_available() {
        return reply_privately(ctx, "Account linking is not set up on this Atelier.", None, Vec::new()).await;
    }
    acknowledge_privately(ctx).await?;
    // The core decides (already linked, or a new link), once this replica owns the interaction.
    let token = match data.core.start_link(ctx.interaction.user.id.get(), &ctx.interaction.user.name).await? {
        LinkStart::Issued(token) => token,
        LinkStart::AlreadyLinked(existing) => {
            let text = format!(
                "You are already linked to the web account **{}**. Use /unlink first to link another.",
                existing.username
            );
            return reply_privately(ctx, text, None, Vec::new()).await;
        }
    };
    let minutes = (token.expires_at() - time::OffsetDateTime::now_utc()).whole_minutes().max(1);
    let text = format!(
        "Open this link, sign in, and confirm: your Discord images will show in your web gallery, and your \
         /settings and today's image count come along. It works once, \
         for {minutes} minutes, and only for you; do not share it."
    );
    reply_privately(ctx, text, None, vec![link_button("Link my account", token.url().as_str())]).await
}

/// Unlink your Discord account from your Atelier web account
#[poise::command(slash_command)]
async fn unlink(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    let data = ctx.data();
    if !data.core.linking_available() {
        return reply_privately(ctx, "Account linking is not set up on this Atelier.", None, Vec::new()).await;
    }
    acknowledge_privately(ctx).await?;
    let link = data.core.unlink_discord(ctx.interaction.user.id.get()).await?;
    let text = format!(
        "Unlinked from **{}**. Images you make from now on stay in your Discord gallery; those already in the web \
         gallery stay there (their buttons still work, and only the web account can delete them). Your /settings \
         and today's image count stay with you.",
        link.username
    );
    reply_privately(ctx, text, None, Vec::new()).await
}

/// Your latest images, and a link to your gallery on the web
#[poise::command(slash_command)]
async fn gallery(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    let data = ctx.data();
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let actor = super::place(&ctx).actor(owner);
    let page = data.core.gallery_page(&actor, &ListFilter::default(), None, 5).await?;
    let gallery_url = data.public_url.join("gallery").map(|url| url.to_string()).unwrap_or_default();
    if page.records.is_empty() {
        let text = "Your gallery is empty: try /imagine.";
        return reply_privately(ctx, text, None, vec![link_button("Open the gallery", &gallery_url)]).await;
    }
    let lines = page
        .records
        .iter()
        .map(|record| {
            format!(
                "• [{}]({}) · {}",
                truncate(record.prompt.as_deref().unwrap_or("an edited image"), 80),
                work::gallery_url(data, record),
                record.created_at.date()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let embed = serenity::CreateEmbed::new().title("Your latest images").url(gallery_url.clone()).description(lines);
    reply_privately(ctx, "", Some(embed), vec![link_button("Open the gallery", &gallery_url)]).await
}

/// Your defaults for new images: model, aspect, style, negative prompt, private results
///
/// They apply wherever you make images: here, on the web (the same Settings page once your
/// accounts are linked) and through the API.
#[poise::command(slash_command)]
async fn settings(
    ctx: ApplicationContext<'_>,
    #[description = "Default model (empty to clear)"]
    #[autocomplete = "autocomplete_generator"]
    model: Option<String>,
    #[description = "Default shape, such as 16:9"]
    #[autocomplete = "autocomplete_aspect"]
    aspect: Option<String>,
    #[description = "Default style preset"]
    #[autocomplete = "autocomplete_style"]
    style: Option<String>,
    #[description = "Always leave out (\"none\" to clear)"]
    #[max_length = 1000]
    negative: Option<String>,
    #[description = "Show results only to you"] private_results: Option<bool>,
) -> Result<(), BotError> {
    let data = ctx.data();
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    // "none" clears a default: the core's rule, the same on the web and the command line.
    let change = PreferenceChange { model, aspect, style, negative_prompt: negative, private_results };
    let unchanged = change == PreferenceChange::default();
    let preferences = if unchanged {
        data.core.preferences(&owner).await?
    } else {
        acknowledge_privately(ctx).await?;
        data.core.change_preferences(&owner, change).await?
    };
    let shown = |value: &Option<String>| truncate(value.as_deref().unwrap_or("—"), FIELD_LIMIT);
    let embed = serenity::CreateEmbed::new()
        .title("Your defaults")
        .field("Model", shown(&preferences.model), true)
        .field("Aspect", shown(&preferences.aspect), true)
        .field("Style", shown(&preferences.style), true)
        .field("Leave out", shown(&preferences.negative_prompt), false)
        .field("Private results", if preferences.private_results { "yes" } else { "no" }, true)
        .footer(serenity::CreateEmbedFooter::new("Set an option to \"none\" to clear it"));
    let text = if unchanged { "" } else { "Saved." };
    reply_privately(ctx, text, Some(embed), Vec::new()).await
}

/// Your quota, your jobs, and your linked account
#[poise::command(slash_command)]
async fn me(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    let data = ctx.data();
    let user_id = ctx.interaction.user.id.get();
    let owner = work::owner_of(data, &ctx.interaction.user).await?;
    let usage = data.core.usage(&super::place(&ctx).actor(owner)).await?;
    let quota = format!("{}\n{}", usage_text::images(&usage), usage_text::budget(&usage));
    let link = match data.core.discord_link(user_id).await? {
        Some(link) => format!("linked to **{}** since {}", link.username, link.linked_at.date()),
        None if data.core.linking_available() => {
            "not linked: /link shows your Discord images in the web gallery".into()
        }
        None => "linking is not set up here".into(),
    };
    let embed = serenity::CreateEmbed::new()
        .title("You")
        .field("Quota", quota, false)
        .field("Jobs", format!("{} running, {} waiting", usage.running, usage.queued), false)
        .field("Web account", link, false);
    reply_privately(ctx, "", Some(embed), Vec::new()).await
}
