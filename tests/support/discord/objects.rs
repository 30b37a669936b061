//! Discord's objects as its documentation describes them (developers/resources/*.mdx in
//! discord/discord-api-docs): users, members, channels, the guild, errors and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::{APPLICATION_ID, BOT_USER_ID, CHANNEL_ID, GUILD_ID};

/// The first second of 2015, which Discord's snowflakes count from (developers/reference.mdx).
pub(super) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Permission bits (developers/topics/permissions.mdx) the stand-in's members and the bot hold.
pub(super) mod permission {
    /// Manage Server: only the users a test makes admins hold it.
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const CREATE_PRIVATE_THREADS: u64 = 1 << 36;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
}

/// What `@everyone` may do in the stand-in's guild, which is all the bot and the users hold: a
/// bot invited with the usual chat permissions and nothing administrative (no MANAGE_MESSAGES, so
/// it cannot delete other people's messages).
pub(super) const EVERYONE_PERMISSIONS: u64 = permission::ADD_REACTIONS
    | permission::VIEW_CHANNEL
    | permission::SEND_MESSAGES
    | permission::EMBED_LINKS
    | permission::ATTACH_FILES
    | permission::READ_MESSAGE_HISTORY
    | permission::USE_EXTERNAL_EMOJIS
    | permission::USE_APPLICATION_COMMANDS
    | permission::CREATE_PUBLIC_THREADS
    | permission::CREATE_PRIVATE_THREADS
    | permission::SEND_MESSAGES_IN_THREADS;

/// The moment a snowflake was made, as Discord writes timestamps (`2017-07-11T17:27:07.299000+00:00`).
pub(super) fn timestamp_of(snowflake: &str) -> String {
    let milliseconds = snowflake.parse::<u64>().map(|id| (id >> 22) + DISCORD_EPOCH_MS).unwrap_or_else(|_| now_ms());
    format_ms(milliseconds)
}

pub(super) fn now_timestamp() -> String {
    format_ms(now_ms())
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as u64).unwrap_or_default()
}

fn format_ms(milliseconds: u64) -> String {
    let moment = OffsetDateTime::from_unix_timestamp_nanos(i128::from(milliseconds) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    moment
        .format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"))
        .unwrap_or_default()
}

/// A user object (developers/resources/user.mdx) for a person: `name` is the display name
/// (`global_name`); the username is its lower-case form without spaces, as Discord's unique
/// usernames are.
pub(super) fn user(id: u64, name: &str) -> Value {
    let username: String =
        name.to_lowercase().chars().map(|character| if character.is_whitespace() { '_' } else { character }).collect();
    json!({
        "id": id.to_string(),
        "username": username,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "banner": null,
        "accent_color": null,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null
    })
}

/// The bot's own user, as READY and `/users/@me` describe it.
pub(super) fn bot_user() -> Value {
    json!({
        "id": BOT_USER_ID,
        "username": "Atelier",
        "discriminator": "4242",
        "global_name": null,
        "avatar": null,
        "banner": null,
        "accent_color": null,
        "bot": true,
        "verified": true,
        "mfa_enabled": false,
        "email": null,
        "flags": 0,
        "public_flags": 0,
        "avatar_decoration_data": null
    })
}

/// A guild member object for `user`, joined long before anything the tests do.
pub(super) fn member(user: &Value) -> Value {
    json!({
        "user": user,
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": [],
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": EVERYONE_PERMISSIONS.to_string(),
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null
    })
}

/// The member object as MESSAGE_CREATE carries it: without `user`, `deaf` and `mute`.
pub(super) fn partial_member(user: &Value) -> Value {
    let mut member = member(user);
    if let Some(fields) = member.as_object_mut() {
        fields.remove("user");
        fields.remove("deaf");
        fields.remove("mute");
        fields.remove("permissions");
    }
    member
}

/// The guild's one text channel, CHANNEL_ID.
pub(super) fn guild_text_channel() -> Value {
    text_channel(CHANNEL_ID, "studio")
}

/// The channel moderators read, where the bot logs refusals.
pub(super) fn moderation_channel() -> Value {
    text_channel(super::MODERATION_CHANNEL_ID, "moderation-log")
}

/// The guild's age-restricted channel, AGE_RESTRICTED_CHANNEL_ID.
pub(super) fn age_restricted_channel() -> Value {
    let mut channel = text_channel(super::AGE_RESTRICTED_CHANNEL_ID, "after-dark");
    channel["nsfw"] = json!(true);
    channel
}

fn text_channel(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "type": 0,
        "guild_id": GUILD_ID,
        "position": 0,
        "permission_overwrites": [],
        "name": name,
        "topic": "Making images together",
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "parent_id": null,
        "last_pin_timestamp": null,
        "default_auto_archive_duration": 1440,
        "flags": 0
    })
}

/// The partial channel an interaction carries (developers/interactions/receiving-and-responding.mdx).
pub(super) fn partial_channel(channel: &Value) -> Value {
    let mut partial = serde_json::Map::new();
    for field in [
        "id",
        "name",
        "type",
        "last_message_id",
        "last_pin_timestamp",
        "nsfw",
        "parent_id",
        "guild_id",
        "flags",
        "rate_limit_per_user",
        "topic",
        "position",
        "thread_metadata",
        "recipients",
    ] {
        if let Some(value) = channel.get(field) {
            partial.insert(field.to_string(), value.clone());
        }
    }
    partial.insert("permissions".to_string(), json!(EVERYONE_PERMISSIONS.to_string()));
    Value::Object(partial)
}

/// The GUILD_CREATE payload (developers/events/gateway-events.mdx "Guild Create"): the guild
/// object plus the extra fields sent over the gateway.
pub(super) fn guild_create(channels: Vec<Value>, threads: Vec<Value>) -> Value {
    let everyone = json!({
        "id": GUILD_ID,
        "name": "@everyone",
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": 0,
        "permissions": EVERYONE_PERMISSIONS.to_string(),
        "managed": false,
        "mentionable": false,
        "flags": 0
    });
    let mut guild = json!({
        "id": GUILD_ID,
        "name": "Atelier test guild",
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": "1000000000000000009",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "roles": [everyone],
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": CHANNEL_ID,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null
    });
    let rest = json!({
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null
    });
    // The fields only GUILD_CREATE carries.
    let gateway_only = json!({
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "large": false,
        "unavailable": false,
        "member_count": 2,
        "voice_states": [],
        "members": [member(&bot_user())],
        "channels": channels,
        "threads": threads,
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": []
    });
    if let (Some(fields), Some(rest), Some(gateway_only)) =
        (guild.as_object_mut(), rest.as_object(), gateway_only.as_object())
    {
        fields.extend(rest.clone());
        fields.extend(gateway_only.clone());
    }
    guild
}

/// The application object `/oauth2/applications/@me` answers with.
pub(super) fn application() -> Value {
    json!({
        "id": APPLICATION_ID,
        "name": "Atelier",
        "icon": null,
        "description": "Make images together",
        "rpc_origins": [],
        "bot_public": true,
        "bot_require_code_grant": false,
        "bot": bot_user(),
        "verify_key": "1e0a356058d627ca38a5c8c9648818061d49e49bd9da9e3ab17d98ad4d6b2e83",
        "team": null,
        "flags": 0,
        "owner": { "id": "1000000000000000009", "username": "operator", "discriminator": "0", "global_name": null, "avatar": null }
    })
}

/// Discord's JSON error body (developers/topics/opcodes-and-status-codes.mdx "JSON Error Codes").
pub(super) fn error_body(code: u64, message: &str) -> Value {
    json!({ "message": message, "code": code })
}

/// Discord's "Invalid Form Body" (50035) naming the field at `path` (dot-separated, as in
/// `embeds.0.title`) with an error code and message.
pub(super) fn invalid_form_body(path: &str, code: &str, message: &str) -> Value {
    let mut errors = json!({ "_errors": [{ "code": code, "message": message }] });
    for segment in path.rsplit('.') {
        errors = json!({ segment: errors });
    }
    json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors })
}

/// Discord's sanitised attachment filename: characters other than letters, digits, dots, dashes
/// and underscores become underscores.
pub(super) fn sanitise_filename(filename: &str) -> String {
    let cleaned: String = filename
        .chars()
        .map(|character| if character.is_ascii_alphanumeric() || "._-".contains(character) { character } else { '_' })
        .collect();
    if cleaned.is_empty() { "unknown".to_string() } else { cleaned }
}

/// A content type from a filename's extension, for uploads that name none.
pub(super) fn content_type_from_filename(filename: &str) -> Option<String> {
    let extension = filename.rsplit_once('.').map(|(_, extension)| extension.to_ascii_lowercase())?;
    let content_type = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "mp4" => "video/mp4",
        _ => return None,
    };
    Some(content_type.to_string())
}
