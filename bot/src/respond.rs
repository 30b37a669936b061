//! Answering one interaction after it was acknowledged: progress shown in place, the result,
//! refusals only the user sees, and the rules users feel when they are broken.
//!
//! - An interaction token lives 15 minutes; a job that finishes later is posted as a normal
//!   channel message that mentions the user (or, for private results, sent by DM).
//! - Uploads never exceed the interaction's `attachment_size_limit`: larger results go out
//!   as links to the web gallery.
//! - Discord's rate limits and brief failures are waited out and retried. serenity's own
//!   rate limiter does this in production; it is off when a REST proxy is configured (the
//!   stand-in in tests), and this retry keeps replies from being lost either way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atelier_shared::jobs::ReplyRoute;
use poise::serenity_prelude as serenity;
use serenity::builder::Builder as _;

use crate::BotError;

/// How a job answers the person who asked, in Discord's terms: progress in place, the result,
/// a refusal only they see, a line in another channel. [`Responder`] does it over Discord's
/// REST API; the bot's own tests record what would have been said, so how a job is answered
/// is tested without a Discord stand-in.
#[async_trait::async_trait]
pub trait Reply: Clone + Send + Sync + 'static {
    /// Shows where the job is, replacing the acknowledgement; best effort.
    async fn show_progress(&self, text: &str, components: Vec<serenity::CreateActionRow>);
    /// Answers with the result.
    async fn finish(&self, outgoing: Outgoing) -> Result<(), BotError>;
    /// Tells only the asker that something was refused or went wrong.
    async fn refuse(&self, text: &str, components: Vec<serenity::CreateActionRow>) -> Result<(), BotError>;
    /// Posts a line to another channel (the moderation log), mentioning no one.
    async fn post_elsewhere(&self, channel: serenity::ChannelId, text: &str) -> Result<(), BotError>;
    /// Where this interaction is answered, kept with a job for another replica.
    fn reply_route(&self) -> ReplyRoute;
    /// Who asked, and in which channel.
    fn asked_by(&self) -> (serenity::UserId, serenity::ChannelId);
}

#[async_trait::async_trait]
impl Reply for Responder {
    async fn show_progress(&self, text: &str, components: Vec<serenity::CreateActionRow>) {
        Responder::show_progress(self, text, components).await;
    }

    async fn finish(&self, outgoing: Outgoing) -> Result<(), BotError> {
        Responder::finish(self, outgoing).await
    }

    async fn refuse(&self, text: &str, components: Vec<serenity::CreateActionRow>) -> Result<(), BotError> {
        Responder::refuse(self, text, components).await
    }

    async fn post_elsewhere(&self, channel: serenity::ChannelId, text: &str) -> Result<(), BotError> {
        let message = serenity::CreateMessage::new()
            .content(crate::render::truncate(text, crate::render::MESSAGE_LIMIT))
            .allowed_mentions(serenity::CreateAllowedMentions::new());
        retrying(|| channel.send_message(self.http.as_ref(), message.clone())).await?;
        Ok(())
    }

    fn reply_route(&self) -> ReplyRoute {
        Responder::reply_route(self)
    }

    fn asked_by(&self) -> (serenity::UserId, serenity::ChannelId) {
        (self.user.id, self.channel_id)
    }
}

/// How long Discord keeps an interaction token usable.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Switch to channel messages a little before the token expires: an edit sent at 14:59
/// might arrive after 15:00.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// How often a progress message is edited at most: Discord allows about five edits per
/// five seconds per message, and a job's stages change faster than people read.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(1_000);

/// serenity's command, component and modal interactions share these fields but no trait.
macro_rules! responder_for {
    ($http:expr, $cache:expr, $interaction:expr, $ephemeral:expr) => {
        Responder {
            place: crate::place_of!($cache, $interaction),
            http: $http,
            interaction_id: $interaction.id,
            token: $interaction.token.clone(),
            channel_id: $interaction.channel_id,
            guild_id: $interaction.guild_id,
            user: $interaction.user.clone(),
            attachment_size_limit: u64::from($interaction.attachment_size_limit),
            ephemeral: $ephemeral,
        }
    };
}

/// One acknowledged interaction, and how to answer it.
#[derive(Clone)]
pub struct Responder {
    http: Arc<serenity::Http>,
    interaction_id: serenity::InteractionId,
    token: String,
    pub channel_id: serenity::ChannelId,
    pub guild_id: Option<serenity::GuildId>,
    pub user: serenity::User,
    /// Where it was asked, and the asker's roles there.
    pub place: crate::place::Place,
    /// Discord's upload limit for this interaction, in bytes.
    pub attachment_size_limit: u64,
    /// Whether the acknowledgement was ephemeral (only the user sees the answer).
    pub ephemeral: bool,
}

/// A message to send: text, embeds, buttons and files.
#[derive(Clone, Default)]
pub struct Outgoing {
    pub content: Option<String>,
    pub embeds: Vec<serenity::CreateEmbed>,
    pub components: Vec<serenity::CreateActionRow>,
    pub files: Vec<serenity::CreateAttachment>,
    /// The embeds to use instead when the files are too large to upload: they cannot point
    /// at `attachment://` files that are not there.
    pub embeds_without_files: Option<Vec<serenity::CreateEmbed>>,
}

impl Outgoing {
    pub fn text(content: impl Into<String>) -> Self {
        Self { content: Some(content.into()), ..Self::default() }
    }
}

impl Responder {
    pub fn for_command(
        context: &serenity::Context,
        interaction: &serenity::CommandInteraction,
        ephemeral: bool,
    ) -> Self {
        responder_for!(context.http.clone(), &context.cache, interaction, ephemeral)
    }

    pub fn for_component(
        context: &serenity::Context,
        interaction: &serenity::ComponentInteraction,
        ephemeral: bool,
    ) -> Self {
        responder_for!(context.http.clone(), &context.cache, interaction, ephemeral)
    }

    pub fn for_modal(context: &serenity::Context, interaction: &serenity::ModalInteraction, ephemeral: bool) -> Self {
        responder_for!(context.http.clone(), &context.cache, interaction, ephemeral)
    }

    /// `owner` asking where this interaction was made.
    pub fn actor(&self, owner: atelier_shared::gallery::Owner) -> atelier_shared::Actor {
        self.place.actor(owner)
    }

    pub fn http(&self) -> &Arc<serenity::Http> {
        &self.http
    }

    /// Whether the interaction's token is too old to use (by its id's timestamp).
    fn token_expired(&self) -> bool {
        let created = self.interaction_id.created_at().unix_timestamp();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let age = Duration::from_secs(u64::try_from(now - created).unwrap_or(0));
        age + TOKEN_MARGIN >= TOKEN_LIFETIME
    }

    /// Shows where the job is, in the acknowledged message, with its buttons (Cancel while
    /// it waits; none otherwise). Best effort: a lost progress edit is not worth failing the
    /// job for.
    pub async fn show_progress(&self, text: &str, components: Vec<serenity::CreateActionRow>) {
        if self.token_expired() {
            return;
        }
        let edit = serenity::EditInteractionResponse::new()
            .content(crate::render::truncate(text, 2_000))
            .components(components);
        if let Err(error) = retrying(|| edit.clone().execute(self.http.as_ref(), &self.token)).await {
            tracing::debug!(error = %error, "a progress edit was not shown");
        }
    }

    /// Replaces the acknowledgement with the result; after the token's lifetime, posts it to
    /// the channel (or, when private, to the user's DMs) instead.
    pub async fn finish(&self, outgoing: Outgoing) -> Result<(), BotError> {
        let mut outgoing = self.fit_uploads(outgoing);
        if !self.token_expired() {
            loop {
                let mut edit = serenity::EditInteractionResponse::new()
                    .content(outgoing.content.clone().unwrap_or_default())
                    .embeds(outgoing.embeds.clone())
                    .components(outgoing.components.clone());
                for file in &outgoing.files {
                    edit = edit.new_attachment(file.clone());
                }
                match retrying(|| edit.clone().execute(self.http.as_ref(), &self.token)).await {
                    Ok(_) => return Ok(()),
                    Err(error) if token_gone(&error) => {
                        tracing::info!("the interaction token expired before the result was ready; posting it instead");
                        break;
                    }
                    Err(error) if upload_refused_for_size(&error) && !outgoing.files.is_empty() => {
                        tracing::info!("Discord refused the results as too large to upload; sending links instead");
                        outgoing = without_uploads(outgoing);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        self.post_late(outgoing).await
    }

    /// Posts a result whose interaction token has expired: as a channel message mentioning
    /// the user, or by DM when only the user was meant to see it.
    async fn post_late(&self, mut outgoing: Outgoing) -> Result<(), BotError> {
        let channel = if self.ephemeral {
            retrying(|| self.user.id.create_dm_channel(self.http.as_ref())).await?.id
        } else {
            self.channel_id
        };
        loop {
            let mention = format!("<@{}>", self.user.id);
            let content = match &outgoing.content {
                Some(text) if !text.is_empty() => format!("{mention} {text}"),
                _ => format!("{mention} here is what you asked for."),
            };
            let message = serenity::CreateMessage::new()
                .content(crate::render::truncate(&content, 2_000))
                .embeds(outgoing.embeds.clone())
                .components(outgoing.components.clone())
                .add_files(outgoing.files.clone())
                .allowed_mentions(serenity::CreateAllowedMentions::new().users(vec![self.user.id]));
            match retrying(|| channel.send_message(self.http.as_ref(), message.clone())).await {
                Ok(_) => return Ok(()),
                Err(error) if upload_refused_for_size(&error) && !outgoing.files.is_empty() => {
                    tracing::info!("Discord refused the late results as too large to upload; sending links instead");
                    outgoing = without_uploads(outgoing);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Tells only the user something went wrong or was refused, with optional buttons (an
    /// Appeal). A public acknowledgement is deleted first: nothing refused stays in the channel.
    pub async fn refuse(&self, text: &str, components: Vec<serenity::CreateActionRow>) -> Result<(), BotError> {
        let text = crate::render::truncate(text, 2_000);
        if self.token_expired() {
            // Only a DM can still reach the user privately.
            let message = serenity::CreateMessage::new().content(text).components(components);
            let dm = retrying(|| self.user.id.create_dm_channel(self.http.as_ref())).await?;
            retrying(|| dm.id.send_message(self.http.as_ref(), message.clone())).await?;
            return Ok(());
        }
        if self.ephemeral {
            let edit = serenity::EditInteractionResponse::new().content(text).components(components);
            retrying(|| edit.clone().execute(self.http.as_ref(), &self.token)).await?;
            return Ok(());
        }
        if let Err(error) = retrying(|| self.http.delete_original_interaction_response(&self.token)).await {
            tracing::warn!(error = %error, "could not remove the public acknowledgement of a refused request");
        }
        let followup =
            serenity::CreateInteractionResponseFollowup::new().content(text).components(components).ephemeral(true);
        retrying(|| followup.clone().execute(self.http.as_ref(), (None, &self.token))).await?;
        Ok(())
    }

    /// Sends an extra message to the user after the result (a private note).
    pub async fn follow_up_privately(&self, text: &str) -> Result<(), BotError> {
        let followup = serenity::CreateInteractionResponseFollowup::new()
            .content(crate::render::truncate(text, 2_000))
            .ephemeral(true);
        retrying(|| followup.clone().execute(self.http.as_ref(), (None, &self.token))).await?;
        Ok(())
    }

    /// The message the acknowledgement became, once it has been sent.
    pub async fn original_message(&self) -> Result<serenity::Message, BotError> {
        Ok(retrying(|| self.http.get_original_interaction_response(&self.token)).await?)
    }

    /// Drops files that would take the upload past Discord's limit for this interaction;
    /// the embeds then show where to find them instead.
    fn fit_uploads(&self, outgoing: Outgoing) -> Outgoing {
        let total: u64 = outgoing.files.iter().map(|file| file.data.len() as u64).sum();
        if total <= self.attachment_size_limit {
            return outgoing;
        }
        tracing::info!(total, limit = self.attachment_size_limit, "results too large to upload; sending links instead");
        without_uploads(outgoing)
    }
}

/// The same message without its files: the embeds that point at the gallery instead, and a
/// note saying where the images are.
fn without_uploads(mut outgoing: Outgoing) -> Outgoing {
    outgoing.files.clear();
    if let Some(embeds) = outgoing.embeds_without_files.take() {
        outgoing.embeds = embeds;
    }
    let note = "Too large to upload here: open it in the gallery (link above).";
    outgoing.content = Some(match outgoing.content {
        Some(text) if !text.is_empty() => format!("{text}\n{note}"),
        _ => note.to_string(),
    });
    outgoing
}

/// Whether Discord refused an upload as too large: 413 "Request entity too large" (40005),
/// or 50045 "File uploaded exceeds the maximum size". The interaction's
/// `attachment_size_limit` is checked first, but the limit can shrink before the result is
/// ready (a server loses its boosts), so the refusal itself is handled too.
fn upload_refused_for_size(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) => {
            response.status_code.as_u16() == 413 || matches!(response.error.code, 40005 | 50045)
        }
        _ => false,
    }
}

/// Whether an error says the interaction token can no longer be used.
pub fn token_gone(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) => {
            // 50027 Invalid Webhook Token, 10015 Unknown Webhook, 10062 Unknown Interaction.
            matches!(response.error.code, 50027 | 10015 | 10062)
        }
        _ => false,
    }
}

/// Whether Discord refused an interaction callback because the interaction was already
/// acknowledged (400, JSON code 40060). Every replica of the bot receives every interaction
/// and the first acknowledgement wins, so this means another replica owns the interaction.
pub fn acknowledged_elsewhere(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) => response.error.code == 40060,
        _ => false,
    }
}

/// Whether Discord answered 429 Too Many Requests or a server error, worth another try.
fn worth_retrying(error: &serenity::Error) -> bool {
    match error {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) => {
            response.status_code.as_u16() == 429 || response.status_code.is_server_error()
        }
        serenity::Error::Http(serenity::HttpError::Request(_)) => true,
        _ => false,
    }
}

/// Runs a Discord call, waiting and trying again on rate limits and server errors: four
/// tries over about two seconds, which covers Discord's usual `retry_after`.
pub async fn retrying<T, F, Fut>(mut call: F) -> Result<T, serenity::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, serenity::Error>>,
{
    let mut wait = Duration::from_millis(250);
    let mut tries = 1;
    loop {
        match call().await {
            Err(error) if tries < 4 && worth_retrying(&error) => {
                tracing::info!(error = %error, try_number = tries, "Discord asked us to wait; trying again");
                crate::rate_limits::waited(&error, wait);
                // Jitter, so replicas that were refused together do not all come back together.
                let half = u64::try_from(wait.as_millis() / 2).unwrap_or(u64::MAX);
                let jitter = Duration::from_millis(rand::random_range(0..=half));
                tokio::time::sleep(wait + jitter).await;
                wait *= 2;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The name the bot's [`ReplyRoute`]s carry, and its job answerer is registered under.
pub const FRONT_END: &str = "discord";

/// What a [`Responder`] needs to answer later, from any replica: kept with a job in the
/// store so an interrupted job can be answered where it was asked.
#[derive(serde::Serialize, serde::Deserialize)]
struct Route {
    interaction_id: u64,
    token: String,
    channel_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
    attachment_size_limit: u64,
    ephemeral: bool,
}

impl Responder {
    /// Where this interaction is answered, for a job kept in the store.
    pub fn reply_route(&self) -> ReplyRoute {
        let route = Route {
            interaction_id: self.interaction_id.get(),
            token: self.token.clone(),
            channel_id: self.channel_id.get(),
            guild_id: self.guild_id.map(serenity::GuildId::get),
            user_id: self.user.id.get(),
            attachment_size_limit: self.attachment_size_limit,
            ephemeral: self.ephemeral,
        };
        ReplyRoute { front_end: FRONT_END.into(), route: serde_json::to_value(route).unwrap_or_default() }
    }

    /// A responder for a route kept by [`Self::reply_route`], possibly in another process;
    /// `None` when the route is not the bot's or does not read.
    pub fn from_route(http: Arc<serenity::Http>, route: &ReplyRoute) -> Option<Self> {
        if route.front_end != FRONT_END {
            return None;
        }
        let route: Route = serde_json::from_value(route.route.clone()).ok()?;
        let mut user = serenity::User::default();
        user.id = serenity::UserId::new(route.user_id.max(1));
        let channel_id = serenity::ChannelId::new(route.channel_id.max(1));
        let guild_id = route.guild_id.filter(|id| *id > 0).map(serenity::GuildId::new);
        Some(Self {
            http,
            interaction_id: serenity::InteractionId::new(route.interaction_id.max(1)),
            token: route.token,
            channel_id,
            guild_id,
            place: crate::place::Place::by_ids(guild_id, channel_id),
            user,
            attachment_size_limit: route.attachment_size_limit,
            ephemeral: route.ephemeral,
        })
    }
}
