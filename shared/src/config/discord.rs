//! The Discord bot's settings: its token and application, the API it talks to, and where
//! refusals are reported. Read by the bot; no token means no bot.

use secrecy::SecretString;
use url::Url;

use super::parse::{parse_flag, parse_http_url, redacted, unset};
use super::{Config, ConfigError, RawSettings};

/// The Discord bot's settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: SecretString,
    pub application_id: Option<u64>,
    /// Replaces `https://discord.com` for REST calls (the stand-in in tests).
    pub api_url: Option<Url>,
    /// The gateway URL to connect to instead of the one the REST API names.
    pub gateway_url: Option<Url>,
    /// Whether the bot may read message content (a privileged intent in Discord's portal).
    pub message_content_intent: bool,
    /// A channel that gets one line per refused prompt, for the community's moderators.
    pub moderation_channel: Option<u64>,
}

/// The bot's settings, or `None` when no token is set; then the settings only the bot would
/// use are refused, since setting them without a token is a mistake worth pointing out.
pub(super) fn read(raw: &RawSettings) -> Result<Option<DiscordConfig>, ConfigError> {
    let Some(token) = raw.get("ATELIER_DISCORD_TOKEN") else {
        for dependent in ["ATELIER_DISCORD_API_URL", "ATELIER_DISCORD_GATEWAY_URL"] {
            if raw.get(dependent).is_some() {
                return Err(ConfigError {
                    variable: dependent,
                    value: raw.get(dependent).map(String::from),
                    problem: "is set but ATELIER_DISCORD_TOKEN is not, so no bot would use it".into(),
                    fix: "set ATELIER_DISCORD_TOKEN too, or unset it".into(),
                });
            }
        }
        return Ok(None);
    };
    Ok(Some(DiscordConfig {
        token: SecretString::from(token.to_string()),
        application_id: read_id(
            raw,
            "ATELIER_DISCORD_APPLICATION_ID",
            "is not a Discord application id",
            "copy the numeric Application ID from the Discord developer portal",
        )?,
        api_url: raw
            .get("ATELIER_DISCORD_API_URL")
            .map(|text| parse_http_url("ATELIER_DISCORD_API_URL", text, "use a URL such as http://127.0.0.1:3000"))
            .transpose()?,
        gateway_url: raw
            .get("ATELIER_DISCORD_GATEWAY_URL")
            .map(|text| parse_websocket_url("ATELIER_DISCORD_GATEWAY_URL", text))
            .transpose()?,
        message_content_intent: parse_flag(raw, "ATELIER_DISCORD_MESSAGE_CONTENT")?,
        moderation_channel: read_id(
            raw,
            "ATELIER_DISCORD_MODERATION_CHANNEL",
            "is not a Discord channel id",
            "turn on Developer Mode in Discord, right-click the channel and copy its ID",
        )?,
    }))
}

/// A Discord id (a positive number), or `None` when unset.
fn read_id(raw: &RawSettings, variable: &'static str, problem: &str, fix: &str) -> Result<Option<u64>, ConfigError> {
    raw.get(variable)
        .map(|text| {
            text.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| ConfigError {
                variable,
                value: Some(text.into()),
                problem: problem.into(),
                fix: fix.into(),
            })
        })
        .transpose()
}

fn parse_websocket_url(variable: &'static str, text: &str) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => Ok(url),
        _ => Err(ConfigError {
            variable,
            value: Some(text.into()),
            problem: "is not a WebSocket URL".into(),
            fix: "use ws://HOST:PORT/PATH or wss://HOST/PATH".into(),
        }),
    }
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    let discord = config.discord.as_ref();
    vec![
        ("ATELIER_DISCORD_TOKEN", discord.map(|discord| redacted(&discord.token)).unwrap_or_else(unset)),
        (
            "ATELIER_DISCORD_APPLICATION_ID",
            discord.and_then(|discord| discord.application_id).map(|id| id.to_string()).unwrap_or_else(unset),
        ),
        (
            "ATELIER_DISCORD_API_URL",
            discord.and_then(|discord| discord.api_url.as_ref()).map(Url::to_string).unwrap_or_else(unset),
        ),
        (
            "ATELIER_DISCORD_GATEWAY_URL",
            discord.and_then(|discord| discord.gateway_url.as_ref()).map(Url::to_string).unwrap_or_else(unset),
        ),
        (
            "ATELIER_DISCORD_MESSAGE_CONTENT",
            discord.map(|discord| discord.message_content_intent.to_string()).unwrap_or_else(unset),
        ),
        (
            "ATELIER_DISCORD_MODERATION_CHANNEL",
            discord.and_then(|discord| discord.moderation_channel).map(|id| id.to_string()).unwrap_or_else(unset),
        ),
    ]
}
