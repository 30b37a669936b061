//! Connecting to Discord: the REST client, slash-command registration, and the gateway.

use std::time::Duration;

use atelier_shared::Atelier;
use atelier_shared::config::DiscordConfig;
use poise::serenity_prelude as serenity;
use secrecy::ExposeSecret;

use url::Url;

use crate::{BotError, Data, commands, components, error, respond, threads};

/// How long connecting to Discord's REST API may take.
const REST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one REST call may take in all, an image upload included: Discord answers in well
/// under a second, and a 25 MiB attachment goes up in seconds on any server link, so a call
/// still going after a minute is not coming back.
const REST_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds serenity's REST client. A configured API URL (the stand-in in tests) replaces
/// `https://discord.com`; serenity silently ignores that proxy while its rate limiter is
/// on, so the limiter is turned off with it.
pub fn http_client(config: &DiscordConfig) -> serenity::Http {
    let mut builder = serenity::HttpBuilder::new(config.token.expose_secret());
    // serenity's own HTTP client never times out, so one call Discord stops answering would
    // hold a job's answer (and the interaction) for ever.
    match reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(REST_CONNECT_TIMEOUT)
        .timeout(REST_TIMEOUT)
        .build()
    {
        Ok(client) => builder = builder.client(client),
        Err(error) => tracing::warn!(error = %error, "no HTTP client with timeouts for Discord; using serenity's own"),
    }
    if let Some(api_url) = &config.api_url {
        builder = builder.proxy(api_url.as_str().trim_end_matches('/')).ratelimiter_disabled(true);
    }
    if let Some(application_id) = config.application_id {
        builder = builder.application_id(serenity::ApplicationId::new(application_id));
    }
    builder.build()
}

/// Registers the slash commands globally; returns how many were registered.
pub async fn register_commands(config: &DiscordConfig) -> Result<usize, BotError> {
    let http = http_client(config);
    if http.application_id().is_none() {
        // Without a configured id, ask Discord which application this token belongs to.
        let application = http.get_current_application_info().await?;
        http.set_application_id(application.id);
    }
    let commands = commands::commands();
    let created = poise::builtins::create_application_commands(&commands);
    let registered = serenity::Command::set_global_commands(&http, created).await?;
    Ok(registered.len())
}

/// Connects to the gateway and answers commands until `shutdown` completes. `public_url` is
/// where the web app is, for gallery and link buttons.
pub async fn run(
    core: Atelier,
    config: &DiscordConfig,
    public_url: Url,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BotError> {
    let options = poise::FrameworkOptions {
        commands: commands::commands(),
        on_error: |framework_error| Box::pin(error::on_error(framework_error)),
        event_handler: |framework, event| Box::pin(on_event(framework.serenity_context, event, framework.user_data)),
        ..Default::default()
    };
    let moderation_channel = config.moderation_channel.map(serenity::ChannelId::new);
    let message_content = config.message_content_intent;
    let metrics = core.metrics().clone();
    let framework = poise::Framework::builder()
        .options(options)
        .initialize_owners(false)
        .setup(move |setup_context, ready, _framework| {
            // Jobs interrupted elsewhere are answered through this process's REST client.
            let answerer = crate::recovery::DiscordAnswerer::new(setup_context.http.clone(), core.clone());
            core.register_job_answerer(respond::FRONT_END, std::sync::Arc::new(answerer));
            Box::pin(async move {
                tracing::info!(bot.user = %ready.user.name, "the Discord bot is connected as {}", ready.user.name);
                Ok(Data { core, public_url, moderation_channel, message_content })
            })
        })
        .build();
    let mut intents = serenity::GatewayIntents::non_privileged();
    if config.message_content_intent {
        intents |= serenity::GatewayIntents::MESSAGE_CONTENT;
    }
    let mut client = serenity::ClientBuilder::new_with_http(http_client(config), intents)
        .event_handler(crate::rate_limits::RateLimitMeter(metrics.clone()))
        .framework(Dispatcher { poise: framework, metrics })
        .await?;
    if let Some(gateway_url) = &config.gateway_url {
        *client.ws_url.lock().await = gateway_url.as_str().trim_end_matches('/').to_string();
    }
    let shard_manager = client.shard_manager.clone();
    tokio::spawn(async move {
        shutdown.await;
        shard_manager.shutdown_all().await;
    });
    client.start().await?;
    Ok(())
}

/// serenity's framework: poise for every event but autocomplete, which is answered here so
/// that an answer Discord refuses as already acknowledged stays quiet. Every replica receives
/// every autocomplete interaction and only the first answer is taken; poise would log each
/// refusal as a warning.
struct Dispatcher {
    poise: poise::Framework<Data, BotError>,
    /// Where the waits Discord asks for while an event is handled are counted.
    metrics: atelier_shared::metrics::Metrics,
}

#[serenity::async_trait]
impl serenity::Framework for Dispatcher {
    async fn init(&mut self, client: &serenity::Client) {
        serenity::Framework::init(&mut self.poise, client).await;
    }

    async fn dispatch(&self, context: serenity::Context, event: serenity::FullEvent) {
        if let serenity::FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Autocomplete(interaction),
        } = &event
        {
            answer_autocomplete(&context, interaction, self.poise.user_data().await).await;
            return;
        }
        let handling = serenity::Framework::dispatch(&self.poise, context, event);
        crate::rate_limits::measured(self.metrics.clone(), handling).await;
    }
}

/// Answers an autocomplete interaction with the list its focused option offers.
async fn answer_autocomplete(context: &serenity::Context, interaction: &serenity::CommandInteraction, data: &Data) {
    let Some(focused) = interaction.data.autocomplete() else { return };
    let Some(list) = commands::autocomplete_list(&interaction.data.name, focused.name) else { return };
    let choices = list.choices(data, interaction, focused.value).await;
    let answer = serenity::CreateInteractionResponse::Autocomplete(choices);
    match interaction.create_response(&context.http, answer).await {
        Ok(()) => {}
        Err(error) if respond::acknowledged_elsewhere(&error) => {
            tracing::debug!("another replica answered this autocomplete first");
        }
        Err(error) => tracing::warn!(error = %error, "an autocomplete answer was not taken"),
    }
}

/// Events poise does not handle itself: buttons and modals, and plain replies in chat threads.
async fn on_event(context: &serenity::Context, event: &serenity::FullEvent, data: &Data) -> Result<(), BotError> {
    let outcome = match event {
        serenity::FullEvent::InteractionCreate { interaction } => {
            components::on_interaction(context, interaction, data).await
        }
        serenity::FullEvent::Message { new_message } => threads::on_message(data, context, new_message).await,
        serenity::FullEvent::Resume { .. } => {
            tracing::info!("the Discord gateway connection was resumed");
            Ok(())
        }
        _ => Ok(()),
    };
    // A failed handler is logged here rather than handed to poise, which would try to answer
    // an interaction it did not see.
    match &outcome {
        Ok(()) => {}
        Err(BotError::AnsweredElsewhere) => {
            tracing::debug!("another replica acknowledged this interaction first; leaving it to that one");
        }
        Err(error) => tracing::error!(error = %error, "handling a Discord event failed: {error}"),
    }
    Ok(())
}
