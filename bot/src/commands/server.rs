//! `/server`: a Discord server's settings for the people who run it (Discord's Manage Server
//! permission). Discord shows the command only to them (`default_member_permissions`), but a
//! server's admins can change that, so the core checks the permission again on every change
//! (`Atelier::change_server_settings`). Every answer is private.
//!
//! Channels are given as text (`#art #showcase`, or ids): Discord turns a `#channel` typed in a
//! text option into its mention, and a text option takes any number of them.

use atelier_shared::pricing::Usd;
use atelier_shared::{AgePolicy, Membership, ServerChange, ServerSettings};
use poise::serenity_prelude as serenity;

use crate::{ApplicationContext, BotError, Data};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![server()]
}

/// This server's Atelier settings (for people who manage the server)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    subcommands(
        "show",
        "channels",
        "models",
        "default_model",
        "budget",
        "role_budget",
        "age_policy",
        "moderation_channel"
    ),
    subcommand_required
)]
async fn server(_ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    Ok(())
}

/// Who is asking, on which server, and whether Discord says they may manage it.
fn membership(ctx: &ApplicationContext<'_>) -> Result<Membership, atelier_shared::Invalid> {
    let guild_id = ctx.interaction.guild_id.ok_or_else(|| atelier_shared::Invalid::new("use this in a server"))?;
    let manages_server = ctx
        .interaction
        .member
        .as_ref()
        .and_then(|member| member.permissions)
        .is_some_and(|permissions| permissions.administrator() || permissions.manage_guild());
    Ok(Membership { guild_id: guild_id.get(), manages_server })
}

/// Channel ids from text holding channel mentions (`<#123>`) or plain ids.
fn channel_ids(text: &str) -> Result<Vec<u64>, atelier_shared::Invalid> {
    text.split(|character: char| character.is_whitespace() || character == ',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let digits = part.trim_start_matches("<#").trim_end_matches('>');
            digits.parse::<u64>().map_err(|_| {
                atelier_shared::Invalid::new(format!("`{part}` is not a channel: type # and pick one, or give its id"))
            })
        })
        .collect()
}

fn mentions(channels: &[u64]) -> String {
    channels.iter().map(|channel| format!("<#{channel}>")).collect::<Vec<_>>().join(", ")
}

/// The settings, as a private message.
fn describe(settings: &ServerSettings) -> String {
    let channels = if settings.result_channels.is_empty() {
        "any channel".to_string()
    } else {
        mentions(&settings.result_channels)
    };
    let models = if settings.models.is_empty() { "every model".to_string() } else { settings.models.join(", ") };
    let default_model = settings.default_model.clone().unwrap_or_else(|| "the service's default".into());
    let budget = settings.daily_budget.map_or_else(|| "none".to_string(), |budget| format!("{budget} a day"));
    let moderation = settings
        .moderation_channel
        .map_or_else(|| "the operator's channel".to_string(), |channel| format!("<#{channel}>"));
    let role_budgets = if settings.role_budgets.is_empty() {
        "none".to_string()
    } else {
        settings
            .role_budgets
            .iter()
            .map(|(role, budget)| format!("<@&{role}> {budget} a day"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let age_policy = match settings.age_policy {
        AgePolicy::StricterOutsideAgeRestricted => "stricter in channels not marked age-restricted",
        AgePolicy::SameEverywhere => "the same in every channel",
    };
    format!(
        "**This server's Atelier settings**\nResults are posted in: {channels}\nModels: {models}\nDefault model: \
         {default_model}\nServer budget: {budget}\nPersonal budgets by role: {role_budgets}\nSafety check: \
         {age_policy}\nModeration log: {moderation}"
    )
}

/// A role id from text holding a role mention (`<@&123>`) or a plain id.
fn role_id(text: &str) -> Result<u64, atelier_shared::Invalid> {
    let text = text.trim();
    text.trim_start_matches("<@&").trim_end_matches('>').parse::<u64>().map_err(|_| {
        atelier_shared::Invalid::new(format!("`{text}` is not a role: type @ and pick one, or give its id"))
    })
}

/// Dollars as typed (`2.50`, `$2.50`); blank is none.
fn dollars(text: Option<&str>) -> Result<Option<Usd>, atelier_shared::Invalid> {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => Usd::parse(text.trim_start_matches('$'))
            .map(Some)
            .ok_or_else(|| atelier_shared::Invalid::new(format!("`{text}` is not an amount of dollars, such as 2.50"))),
        None => Ok(None),
    }
}

async fn answer(ctx: ApplicationContext<'_>, text: String) -> Result<(), BotError> {
    let reply = poise::CreateReply::default()
        .content(text)
        .ephemeral(true)
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    ctx.send(reply).await?;
    Ok(())
}

async fn change(ctx: ApplicationContext<'_>, change: ServerChange) -> Result<(), BotError> {
    let settings = ctx.data().core.change_server_settings(membership(&ctx)?, change).await?;
    answer(ctx, format!("Saved.\n{}", describe(&settings))).await
}

/// Show this server's settings
#[poise::command(slash_command, guild_only)]
async fn show(ctx: ApplicationContext<'_>) -> Result<(), BotError> {
    let membership = membership(&ctx)?;
    let settings = ctx.data().core.server_settings(membership.guild_id).await?;
    answer(ctx, describe(&settings)).await
}

/// Where results are posted for everyone; elsewhere they go to their person alone
#[poise::command(slash_command, guild_only)]
async fn channels(
    ctx: ApplicationContext<'_>,
    #[description = "Channels such as #art #showcase; leave empty for any channel"] channels: Option<String>,
) -> Result<(), BotError> {
    let channels = channel_ids(channels.as_deref().unwrap_or_default())?;
    change(ctx, ServerChange::ResultChannels(channels)).await
}

/// The models people may use here
#[poise::command(slash_command, guild_only)]
async fn models(
    ctx: ApplicationContext<'_>,
    #[description = "Model names such as core, titan-v2; leave empty for every model"] models: Option<String>,
) -> Result<(), BotError> {
    let models: Vec<String> = models
        .unwrap_or_default()
        .split(|character: char| character.is_whitespace() || character == ',')
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect();
    change(ctx, ServerChange::Models(models)).await
}

/// The model used here when a request and its person name none
#[poise::command(slash_command, guild_only, rename = "default-model")]
async fn default_model(
    ctx: ApplicationContext<'_>,
    #[description = "A model name; leave empty for the service's default"] model: Option<String>,
) -> Result<(), BotError> {
    let model = model.map(|model| model.trim().to_string()).filter(|model| !model.is_empty());
    change(ctx, ServerChange::DefaultModel(model)).await
}

/// What the whole server may spend a day, in US dollars (estimated from the price table)
#[poise::command(slash_command, guild_only)]
async fn budget(
    ctx: ApplicationContext<'_>,
    #[description = "Dollars a day, such as 2.50; leave empty for no server budget"] dollars: Option<String>,
) -> Result<(), BotError> {
    change(ctx, ServerChange::DailyBudget(self::dollars(dollars.as_deref())?)).await
}

/// A larger personal daily budget for members with a role (the largest of their roles counts)
#[poise::command(slash_command, guild_only, rename = "role-budget")]
async fn role_budget(
    ctx: ApplicationContext<'_>,
    #[description = "A role such as @Patrons"] role: String,
    #[description = "Dollars a day for each member with it, such as 10; leave empty to take it away"] dollars: Option<
        String,
    >,
) -> Result<(), BotError> {
    let role_id = role_id(&role)?;
    let budget = self::dollars(dollars.as_deref())?;
    change(ctx, ServerChange::RoleBudget { role_id, budget }).await
}

/// How strict the safety check is in channels not marked age-restricted
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum AgePolicyChoice {
    #[name = "Stricter outside age-restricted channels"]
    Stricter,
    #[name = "The same in every channel"]
    Same,
}

/// How strict the safety check is outside age-restricted channels
#[poise::command(slash_command, guild_only, rename = "age-policy")]
async fn age_policy(
    ctx: ApplicationContext<'_>,
    #[description = "Stricter outside age-restricted channels (the default), or the same everywhere"]
    policy: AgePolicyChoice,
) -> Result<(), BotError> {
    let policy = match policy {
        AgePolicyChoice::Stricter => AgePolicy::StricterOutsideAgeRestricted,
        AgePolicyChoice::Same => AgePolicy::SameEverywhere,
    };
    change(ctx, ServerChange::AgePolicy(policy)).await
}

/// Where refusals made on this server are logged
#[poise::command(slash_command, guild_only, rename = "moderation-channel")]
async fn moderation_channel(
    ctx: ApplicationContext<'_>,
    #[description = "A channel such as #mod-log; leave empty for the operator's"] channel: Option<String>,
) -> Result<(), BotError> {
    let channel = match channel_ids(channel.as_deref().unwrap_or_default())?.as_slice() {
        [] => None,
        [channel] => Some(*channel),
        _ => return Err(atelier_shared::Invalid::new("name one channel").into()),
    };
    change(ctx, ServerChange::ModerationChannel(channel)).await
}
