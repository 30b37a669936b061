//! What the stand-in remembers, behind one lock: recorded requests and scripted faults, channels
//! and their messages, uploaded files, interactions and their tokens, and gateway sessions.
//!
//! Everything here is synchronous, so no lock is ever held across an await.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::objects::{self, EVERYONE_PERMISSIONS};
use super::{APPLICATION_ID, BOT_USER_ID, CHANNEL_ID, DEFAULT_ATTACHMENT_SIZE_LIMIT, GUILD_ID, Recorded, RecordedFile};

/// Message flags (developers/resources/message.mdx "Message Flags").
pub(super) mod flag {
    pub const SUPPRESS_EMBEDS: u64 = 1 << 2;
    pub const HAS_THREAD: u64 = 1 << 5;
    pub const EPHEMERAL: u64 = 1 << 6;
    pub const LOADING: u64 = 1 << 7;
    pub const SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
    pub const IS_VOICE_MESSAGE: u64 = 1 << 13;
    pub const IS_COMPONENTS_V2: u64 = 1 << 15;
}

/// Gateway intents (developers/events/gateway.mdx "List of Intents") the stand-in honours.
mod intent {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
}

/// Discord's limits (developers/resources/message.mdx "Create Message", "Embed Limits").
const MAX_CONTENT_CHARACTERS: usize = 2000;
const MAX_EMBEDS: usize = 10;
const MAX_EMBED_TOTAL_CHARACTERS: usize = 6000;
const MAX_FILES: usize = 10;

/// What a route answers.
pub(super) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    pub headers: Vec<(&'static str, String)>,
}

pub(super) enum ReplyBody {
    Empty,
    Json(Value),
    Bytes { content_type: String, bytes: Vec<u8> },
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Self {
        Self { status, body: ReplyBody::Json(body), headers: Vec::new() }
    }

    pub(super) fn no_content() -> Self {
        Self { status: 204, body: ReplyBody::Empty, headers: Vec::new() }
    }

    /// Discord's JSON error: `{"message", "code"}`.
    pub(super) fn error(status: u16, code: u64, message: &str) -> Self {
        Self::json(status, objects::error_body(code, message))
    }

    /// 400 "Invalid Form Body" (50035) naming the field at `path`.
    pub(super) fn invalid(path: &str, code: &str, message: &str) -> Self {
        Self::json(400, objects::invalid_form_body(path, code, message))
    }

    pub(super) fn unknown_message() -> Self {
        Self::error(404, 10008, "Unknown Message")
    }

    pub(super) fn unknown_channel() -> Self {
        Self::error(404, 10003, "Unknown Channel")
    }
}

pub(super) type Outcome<T> = Result<T, Reply>;

/// A fault a test scripted with `fail_next`.
struct Fault {
    method: String,
    path_contains: String,
    status: u16,
    remaining: usize,
}

/// Bytes served on the CDN route.
pub(super) struct StoredFile {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One interaction the stand-in made, and what the bot has done with its token.
pub(super) struct InteractionRecord {
    pub id: String,
    pub token: String,
    /// The interaction type: 1 ping, 2 command, 3 component, 4 autocomplete, 5 modal submit.
    pub kind: u64,
    /// The command name, or the component's or modal's custom id.
    pub name: String,
    pub user: Value,
    pub channel_id: String,
    pub guild_id: Option<String>,
    /// The message a component (or a modal opened from one) is attached to.
    pub message_id: Option<String>,
    /// For a modal submit, the metadata of the interaction that opened the modal.
    pub triggering: Option<Value>,
    /// The callback body (`{"type", "data"}`) the bot answered with.
    pub callback: Option<Value>,
    /// The id of the original response message (for callback 6 and 7, the component's message).
    pub original: Option<String>,
    pub followups: Vec<String>,
    pub expired: bool,
    /// What was done with the interaction, for tests that count: callbacks taken, callbacks
    /// refused as already acknowledged (40060), follow-ups sent and webhook edits made.
    pub counts: InteractionCounts,
    /// When the gateway finished writing the INTERACTION_CREATE to a client (the first time).
    pub sent_at: Option<Instant>,
}

/// How often an interaction was acknowledged and answered; see [`super::DiscordStandIn::interaction_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InteractionCounts {
    /// Callbacks the stand-in took: only ever the first.
    pub callbacks_accepted: usize,
    /// Callbacks refused with 400 "Interaction has already been acknowledged." (40060).
    pub callbacks_refused_as_acknowledged: usize,
    /// Follow-ups taken (`POST /webhooks/{application}/{token}`), including the one that
    /// replaces a deferral's "thinking" message.
    pub followups: usize,
    /// Edits taken through the token (`PATCH /webhooks/{application}/{token}/messages/…`).
    pub edits: usize,
}

/// What the connection task is told to do.
pub(super) enum Outgoing {
    Frame(String),
    /// An INTERACTION_CREATE frame, and the interaction's id: its sending time is recorded.
    Interaction {
        frame: String,
        id: String,
    },
    /// Drop the socket without a close frame, then say so.
    Drop(oneshot::Sender<()>),
}

pub(super) struct Connection {
    pub id: u64,
    pub sender: mpsc::UnboundedSender<Outgoing>,
}

/// A gateway session: its sequence numbers and every dispatch it was sent, for RESUME.
struct Session {
    seq: u64,
    log: Vec<(u64, String)>,
    intents: u64,
    connection: Option<Connection>,
}

#[derive(Default)]
pub(super) struct Gateway {
    sessions: HashMap<String, Session>,
    /// The session identified or resumed last, which `drop_gateway` disconnects.
    current: Option<String>,
    /// Dispatches made before any client identified, delivered right after the next READY.
    pending: Vec<(String, Value)>,
    pub identify_count: usize,
    pub resume_count: usize,
    pub heartbeat_count: usize,
    pub ready_count: usize,
    next_connection: u64,
}

pub(super) struct State {
    pub base_url: String,
    last_snowflake: u64,
    increment: u64,
    /// The bot token (without "Bot "), learnt from the first authorised request or IDENTIFY.
    bot_token: Option<String>,
    pub requests: Vec<Recorded>,
    faults: Vec<Fault>,
    pub attachment_size_limit: u64,
    pub files: HashMap<String, StoredFile>,
    users: HashMap<String, Value>,
    pub channels: BTreeMap<String, Value>,
    pub messages: HashMap<String, Value>,
    /// Every attachment of a message, including those its embeds show (which Discord leaves out
    /// of `attachments`), so edits can keep them.
    message_files: HashMap<String, Vec<Value>>,
    /// Message ids per channel, oldest first: what people see in the channel.
    pub history: HashMap<String, Vec<String>>,
    /// How many visible messages were ever created per channel, deleted ones included.
    pub messages_created: HashMap<String, usize>,
    pub interactions: HashMap<String, InteractionRecord>,
    /// The modal custom ids the bot has shown, to the interaction that showed each.
    modals: HashMap<String, String>,
    pub commands: Vec<Value>,
    command_ids: HashMap<String, String>,
    dm_channels: HashMap<String, String>,
    /// Users whose member objects carry MANAGE_GUILD (the server's admins).
    pub managers: HashSet<String>,
    /// The role ids each user's member objects list.
    pub roles: HashMap<String, Vec<String>>,
    pub gateway: Gateway,
}

impl State {
    pub(super) fn new(base_url: String) -> Self {
        let mut channels = BTreeMap::new();
        channels.insert(CHANNEL_ID.to_string(), objects::guild_text_channel());
        channels.insert(super::MODERATION_CHANNEL_ID.to_string(), objects::moderation_channel());
        channels.insert(super::AGE_RESTRICTED_CHANNEL_ID.to_string(), objects::age_restricted_channel());
        let mut users = HashMap::new();
        users.insert(BOT_USER_ID.to_string(), objects::bot_user());
        Self {
            base_url,
            last_snowflake: 0,
            increment: 0,
            bot_token: None,
            requests: Vec::new(),
            faults: Vec::new(),
            attachment_size_limit: DEFAULT_ATTACHMENT_SIZE_LIMIT,
            managers: HashSet::new(),
            roles: HashMap::new(),
            files: HashMap::new(),
            users,
            channels,
            messages: HashMap::new(),
            message_files: HashMap::new(),
            history: HashMap::new(),
            messages_created: HashMap::new(),
            interactions: HashMap::new(),
            modals: HashMap::new(),
            commands: Vec::new(),
            command_ids: HashMap::new(),
            dm_channels: HashMap::new(),
            gateway: Gateway::default(),
        }
    }

    pub(super) fn gateway_url(&self) -> String {
        format!("{}/gateway", self.base_url.replacen("http://", "ws://", 1))
    }

    /// A fresh snowflake from the current time (developers/reference.mdx "Snowflakes"),
    /// always larger than the last one.
    pub(super) fn snowflake(&mut self) -> String {
        let since_epoch = objects::now_ms().saturating_sub(objects::DISCORD_EPOCH_MS);
        self.increment = (self.increment + 1) & 0xfff;
        let mut id = (since_epoch << 22) | (1 << 17) | self.increment;
        if id <= self.last_snowflake {
            id = self.last_snowflake + 1;
        }
        self.last_snowflake = id;
        id.to_string()
    }

    pub(super) fn random_token(length: usize) -> String {
        rand::rng().sample_iter(Alphanumeric).take(length).map(char::from).collect()
    }

    // ----- tokens, recording and faults -----

    /// Whether `token` (with or without "Bot ") is the bot's; the first token seen becomes it.
    pub(super) fn accepts_token(&mut self, token: &str) -> bool {
        let token = token.trim().strip_prefix("Bot ").unwrap_or(token.trim()).to_string();
        if token.is_empty() {
            return false;
        }
        match &self.bot_token {
            Some(known) => *known == token,
            None => {
                self.bot_token = Some(token);
                true
            }
        }
    }

    pub(super) fn add_fault(&mut self, method: &str, path_contains: &str, status: u16, times: usize) {
        if times > 0 {
            self.faults.push(Fault {
                method: method.to_ascii_uppercase(),
                path_contains: path_contains.to_string(),
                status,
                remaining: times,
            });
        }
    }

    /// The scripted fault this request meets, if any (each is used up one request at a time).
    pub(super) fn take_fault(&mut self, method: &str, path: &str) -> Option<u16> {
        let position = self.faults.iter().position(|fault| {
            (fault.method == "*" || fault.method == method) && path.contains(fault.path_contains.as_str())
        })?;
        let fault = &mut self.faults[position];
        fault.remaining -= 1;
        let status = fault.status;
        if fault.remaining == 0 {
            self.faults.remove(position);
        }
        Some(status)
    }

    // ----- users, channels, files -----

    pub(super) fn remember_user(&mut self, user: &Value) {
        if let Some(id) = user.get("id").and_then(Value::as_str) {
            self.users.insert(id.to_string(), user.clone());
        }
    }

    pub(super) fn known_user(&self, id: &str) -> Option<Value> {
        self.users.get(id).cloned()
    }

    pub(super) fn channel(&self, id: &str) -> Option<&Value> {
        self.channels.get(id)
    }

    fn guild_of(&self, channel_id: &str) -> Option<String> {
        self.channel(channel_id).and_then(|channel| channel.get("guild_id")).and_then(Value::as_str).map(String::from)
    }

    /// The DM channel with a user, made on first use (developers/resources/user.mdx "Create DM").
    pub(super) fn dm_channel(&mut self, recipient_id: &str) -> Value {
        if let Some(existing) = self.dm_channels.get(recipient_id).and_then(|id| self.channels.get(id)) {
            return existing.clone();
        }
        let recipient = self
            .known_user(recipient_id)
            .unwrap_or_else(|| objects::user(recipient_id.parse().unwrap_or_default(), &format!("user{recipient_id}")));
        let id = self.snowflake();
        let channel = json!({
            "id": id,
            "type": 1,
            "last_message_id": null,
            "flags": 0,
            "recipients": [recipient]
        });
        self.channels.insert(id.clone(), channel.clone());
        self.dm_channels.insert(recipient_id.to_string(), id);
        channel
    }

    /// Registers bytes on the CDN route and returns the attachment object
    /// (developers/resources/message.mdx "Attachment Object").
    pub(super) fn store_attachment(
        &mut self,
        filename: &str,
        content_type: Option<String>,
        bytes: Vec<u8>,
        description: Option<Value>,
        ephemeral: bool,
    ) -> Value {
        let id = self.snowflake();
        let filename = objects::sanitise_filename(filename);
        let content_type = content_type.or_else(|| objects::content_type_from_filename(&filename));
        let (width, height) = match imagesize::blob_size(&bytes) {
            Ok(size) => (json!(size.width), json!(size.height)),
            Err(_) => (Value::Null, Value::Null),
        };
        // CDN links are signed and expire (ex: expiry, is: issued, hm: signature), as Discord's are.
        let issued = objects::now_ms() / 1000;
        let signature = format!("&hm={}&", Self::random_token(64).to_ascii_lowercase());
        let query = format!("?ex={:x}&is={issued:x}{signature}", issued + 86_400);
        let mut attachment = json!({
            "id": id,
            "filename": filename,
            "size": bytes.len(),
            "url": format!("{}/attachments/{id}/{filename}{query}", self.base_url),
            "proxy_url": format!("{}/media/attachments/{id}/{filename}{query}", self.base_url),
            "content_type": content_type,
            "width": width,
            "height": height
        });
        if let Some(description) = description.filter(|description| !description.is_null()) {
            attachment["description"] = description;
        }
        if ephemeral {
            attachment["ephemeral"] = json!(true);
        }
        self.files.insert(id, StoredFile { filename, content_type, bytes });
        attachment
    }

    // ----- messages -----

    /// A new message object from a create payload (content, embeds, components, attachments,
    /// flags, message_reference, allowed_mentions, nonce), checked against Discord's limits.
    pub(super) fn compose_message(
        &mut self,
        channel_id: &str,
        author: Value,
        payload: &Value,
        files: &[RecordedFile],
        allowed_flags: u64,
    ) -> Outcome<Value> {
        let flags = payload.get("flags").and_then(Value::as_u64).unwrap_or(0) & allowed_flags;
        let content = content_field(payload)?.unwrap_or_default();
        let raw_embeds = embeds_field(payload)?.unwrap_or_default();
        let components = components_field(payload, flags)?.unwrap_or_default();
        let ephemeral = flags & flag::EPHEMERAL != 0;
        let every_file = self.attachments_for(payload.get("attachments"), &[], files, ephemeral)?;
        let (embeds, attachments) = resolve_embeds(raw_embeds, &every_file);
        check_components_v2(flags, &content, &embeds)?;
        let has_stickers = payload.get("sticker_ids").and_then(Value::as_array).is_some_and(|ids| !ids.is_empty());
        let has_poll = payload.get("poll").is_some_and(|poll| !poll.is_null());
        if content.is_empty()
            && embeds.is_empty()
            && components.is_empty()
            && every_file.is_empty()
            && !has_stickers
            && !has_poll
        {
            return Err(Reply::error(400, 50006, "Cannot send an empty message"));
        }
        let id = self.snowflake();
        let is_bot = author.get("id").and_then(Value::as_str) == Some(BOT_USER_ID);
        let mentions = self.mentions(&content, payload.get("allowed_mentions"));
        let mut message = json!({
            "id": id,
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": objects::timestamp_of(&id),
            "edited_timestamp": null,
            "tts": payload.get("tts").and_then(Value::as_bool).unwrap_or(false),
            "mention_everyone": !is_bot && (content.contains("@everyone") || content.contains("@here")),
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments,
            "embeds": embeds,
            "pinned": false,
            "type": 0,
            "flags": flags,
            "components": components
        });
        if let Some(nonce) = payload.get("nonce").filter(|nonce| !nonce.is_null()) {
            message["nonce"] = nonce.clone();
        }
        if has_poll {
            message["poll"] = payload["poll"].clone();
        }
        if let Some(reference) = payload.get("message_reference").filter(|reference| !reference.is_null()) {
            self.apply_reply(&mut message, reference, channel_id)?;
        }
        self.message_files.insert(id, every_file);
        Ok(message)
    }

    /// A reply (developers/resources/message.mdx "Message Reference"): type 19 with the message it
    /// answers; an unknown message is refused unless `fail_if_not_exists` is false.
    fn apply_reply(&self, message: &mut Value, reference: &Value, channel_id: &str) -> Outcome<()> {
        let referenced_id = reference.get("message_id").and_then(Value::as_str).unwrap_or_default();
        let referenced = self.messages.get(referenced_id);
        match referenced {
            Some(referenced) => {
                message["type"] = json!(19);
                message["message_reference"] = json!({
                    "type": 0,
                    "message_id": referenced_id,
                    "channel_id": referenced["channel_id"],
                    "guild_id": self.guild_of(channel_id)
                });
                message["referenced_message"] = referenced.clone();
                Ok(())
            }
            None if reference.get("fail_if_not_exists").and_then(Value::as_bool) == Some(false) => Ok(()),
            None => Err(Reply::invalid("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")),
        }
    }

    /// The deferred response's "thinking" message: empty, with the LOADING flag.
    pub(super) fn loading_message(&mut self, channel_id: &str, ephemeral: bool) -> Value {
        let id = self.snowflake();
        let flags = flag::LOADING | if ephemeral { flag::EPHEMERAL } else { 0 };
        self.message_files.insert(id.clone(), Vec::new());
        json!({
            "id": id,
            "channel_id": channel_id,
            "author": objects::bot_user(),
            "content": "",
            "timestamp": objects::timestamp_of(&id),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": flags,
            "components": []
        })
    }

    /// Applies an edit payload to a stored message (developers/resources/message.mdx "Edit
    /// Message"): present fields replace, `attachments` lists every attachment to keep plus the
    /// new uploads, and a "thinking" message stops loading.
    pub(super) fn edit_message(&mut self, id: &str, payload: &Value, files: &[RecordedFile]) -> Outcome<Value> {
        let mut message = self.messages.get(id).cloned().ok_or_else(Reply::unknown_message)?;
        let current_flags = message["flags"].as_u64().unwrap_or(0);
        let was_loading = current_flags & flag::LOADING != 0;
        let mut flags = current_flags & !flag::LOADING;
        if let Some(requested) = payload.get("flags").and_then(Value::as_u64) {
            // Only SUPPRESS_EMBEDS may change; IS_COMPONENTS_V2 may be added but never removed.
            flags = (flags & !flag::SUPPRESS_EMBEDS)
                | (requested & flag::SUPPRESS_EMBEDS)
                | (requested & flag::IS_COMPONENTS_V2);
        }
        if let Some(content) = content_field(payload)? {
            message["mentions"] = json!(self.mentions(&content, payload.get("allowed_mentions")));
            message["content"] = json!(content);
        }
        if let Some(components) = components_field(payload, flags)? {
            message["components"] = json!(components);
        }
        let raw_embeds = match embeds_field(payload)? {
            Some(embeds) => embeds,
            None => message["embeds"].as_array().cloned().unwrap_or_default(),
        };
        let previous_files = self.message_files.get(id).cloned().unwrap_or_default();
        let every_file =
            self.attachments_for(payload.get("attachments"), &previous_files, files, flags & flag::EPHEMERAL != 0)?;
        let (embeds, attachments) = resolve_embeds(raw_embeds, &every_file);
        let content = message["content"].as_str().unwrap_or_default().to_string();
        check_components_v2(flags, &content, &embeds)?;
        let has_components = message["components"].as_array().is_some_and(|components| !components.is_empty());
        if content.is_empty() && embeds.is_empty() && !has_components && every_file.is_empty() {
            return Err(Reply::error(400, 50006, "Cannot send an empty message"));
        }
        message["embeds"] = json!(embeds);
        message["attachments"] = json!(attachments);
        message["flags"] = json!(flags);
        // Replacing the "thinking" state is the response itself, not an edit of it.
        if !was_loading {
            message["edited_timestamp"] = json!(objects::now_timestamp());
        }
        self.message_files.insert(id.to_string(), every_file);
        self.messages.insert(id.to_string(), message.clone());
        Ok(message)
    }

    /// The attachments a create or edit leaves on a message. `metadata` is the payload's
    /// `attachments`: ids of existing attachments to keep and placeholder ids (`files[n]`) of new
    /// uploads. Without it, existing attachments stay and every upload is added.
    fn attachments_for(
        &mut self,
        metadata: Option<&Value>,
        previous: &[Value],
        files: &[RecordedFile],
        ephemeral: bool,
    ) -> Outcome<Vec<Value>> {
        if files.len() > MAX_FILES {
            return Err(Reply::invalid("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."));
        }
        if files.iter().any(|file| file.bytes.len() as u64 > self.attachment_size_limit) {
            return Err(Reply::error(413, 40005, "Request entity too large"));
        }
        let placeholder_of = |file: &RecordedFile| {
            file.field.strip_prefix("files[").and_then(|rest| rest.strip_suffix(']')).map(String::from)
        };
        let mut used = vec![false; files.len()];
        let mut attachments = Vec::new();
        match metadata.and_then(Value::as_array) {
            Some(entries) => {
                for (position, entry) in entries.iter().enumerate() {
                    let id = id_string(entry.get("id"));
                    if let Some(kept) = previous.iter().find(|attachment| id_string(attachment.get("id")) == id) {
                        let mut kept = kept.clone();
                        if let Some(description) = entry.get("description") {
                            kept["description"] = description.clone();
                        }
                        attachments.push(kept);
                        continue;
                    }
                    let upload = files
                        .iter()
                        .enumerate()
                        .position(|(index, file)| !used[index] && placeholder_of(file).as_deref() == Some(id.as_str()));
                    match upload {
                        Some(index) => {
                            used[index] = true;
                            let file = &files[index];
                            let filename = entry.get("filename").and_then(Value::as_str).unwrap_or(&file.filename);
                            let attachment = self.store_attachment(
                                filename,
                                file.content_type.clone(),
                                file.bytes.clone(),
                                entry.get("description").cloned(),
                                ephemeral,
                            );
                            attachments.push(attachment);
                        }
                        None => {
                            return Err(Reply::invalid(
                                &format!("attachments.{position}.id"),
                                "ATTACHMENT_NOT_FOUND",
                                "Unknown attachment: neither an attachment of this message nor an uploaded file",
                            ));
                        }
                    }
                }
            }
            None => attachments.extend(previous.iter().cloned()),
        }
        for (index, file) in files.iter().enumerate() {
            if !used[index] {
                let attachment = self.store_attachment(
                    &file.filename,
                    file.content_type.clone(),
                    file.bytes.clone(),
                    None,
                    ephemeral,
                );
                attachments.push(attachment);
            }
        }
        Ok(attachments)
    }

    /// Users a message mentions (`<@id>`), as far as `allowed_mentions` lets them through.
    fn mentions(&self, content: &str, allowed_mentions: Option<&Value>) -> Vec<Value> {
        let mut mentioned = Vec::new();
        for piece in content.split("<@").skip(1) {
            let Some((id, _)) = piece.split_once('>') else { continue };
            let id = id.trim_start_matches('!');
            let allowed = match allowed_mentions.filter(|allowed| !allowed.is_null()) {
                None => true,
                Some(allowed) => {
                    let parse = allowed.get("parse").and_then(Value::as_array);
                    let users = allowed.get("users").and_then(Value::as_array);
                    parse.is_some_and(|parse| parse.iter().any(|kind| kind == "users"))
                        || users.is_some_and(|users| users.iter().any(|user| user == id))
                }
            };
            if allowed
                && let Some(user) = self.known_user(id)
                && !mentioned.contains(&user)
            {
                mentioned.push(user);
            }
        }
        mentioned
    }

    /// Stores a message; `visible` ones (everything but ephemeral responses) join their
    /// channel's history.
    pub(super) fn store_message(&mut self, message: Value, visible: bool) {
        let id = message["id"].as_str().unwrap_or_default().to_string();
        let channel_id = message["channel_id"].as_str().unwrap_or_default().to_string();
        if let Some(author) = message.get("author") {
            self.remember_user(author);
        }
        self.message_files
            .entry(id.clone())
            .or_insert_with(|| message["attachments"].as_array().cloned().unwrap_or_default());
        self.messages.insert(id.clone(), message);
        if visible {
            let history = self.history.entry(channel_id.clone()).or_default();
            if !history.contains(&id) {
                history.push(id.clone());
                *self.messages_created.entry(channel_id.clone()).or_default() += 1;
            }
            if let Some(channel) = self.channels.get_mut(&channel_id) {
                channel["last_message_id"] = json!(id);
                if channel["type"] == 11 || channel["type"] == 12 {
                    let count = channel["message_count"].as_u64().unwrap_or(0) + 1;
                    channel["message_count"] = json!(count);
                    channel["total_message_sent"] = json!(count);
                }
            }
        }
    }

    pub(super) fn delete_message(&mut self, id: &str) -> Option<Value> {
        let message = self.messages.remove(id)?;
        self.message_files.remove(id);
        let channel_id = message["channel_id"].as_str().unwrap_or_default().to_string();
        let was_visible = self.history.get(&channel_id).is_some_and(|history| history.iter().any(|each| each == id));
        if let Some(history) = self.history.get_mut(&channel_id) {
            history.retain(|each| each != id);
        }
        if was_visible {
            let mut event = json!({ "id": id, "channel_id": channel_id });
            if let Some(guild_id) = self.guild_of(&channel_id) {
                event["guild_id"] = json!(guild_id);
            }
            self.dispatch("MESSAGE_DELETE", event);
        }
        Some(message)
    }

    pub(super) fn is_visible(&self, message_id: &str, channel_id: &str) -> bool {
        self.history.get(channel_id).is_some_and(|history| history.iter().any(|id| id == message_id))
    }

    /// MESSAGE_CREATE and MESSAGE_UPDATE carry `guild_id` and the author's partial `member`
    /// in guild channels (developers/events/gateway-events.mdx "Message Create").
    fn message_event(&self, message: &Value) -> Value {
        let mut event = message.clone();
        let channel_id = message["channel_id"].as_str().unwrap_or_default();
        if let Some(guild_id) = self.guild_of(channel_id) {
            event["guild_id"] = json!(guild_id);
            event["member"] = objects::partial_member(&message["author"]);
            if let Some(roles) = self.roles.get(&id_string(message["author"].get("id"))) {
                event["member"]["roles"] = json!(roles);
            }
        }
        event
    }

    pub(super) fn announce_created(&mut self, message: &Value) {
        let event = self.message_event(message);
        self.dispatch("MESSAGE_CREATE", event);
    }

    pub(super) fn announce_updated(&mut self, message: &Value) {
        let event = self.message_event(message);
        self.dispatch("MESSAGE_UPDATE", event);
    }

    // ----- threads -----

    /// A thread channel object (developers/resources/channel.mdx "Thread-specific fields").
    pub(super) fn new_thread(
        &mut self,
        id: String,
        parent_id: &str,
        kind: u64,
        name: &str,
        auto_archive_duration: u64,
        rate_limit_per_user: u64,
    ) -> Value {
        let created = objects::now_timestamp();
        let thread = json!({
            "id": id,
            "type": kind,
            "guild_id": GUILD_ID,
            "parent_id": parent_id,
            "owner_id": BOT_USER_ID,
            "name": name,
            "last_message_id": null,
            "last_pin_timestamp": null,
            "rate_limit_per_user": rate_limit_per_user,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": false,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": created,
                "locked": false,
                "create_timestamp": created,
                "invitable": kind == 12
            },
            "member": { "id": id, "user_id": BOT_USER_ID, "join_timestamp": created, "flags": 0 }
        });
        self.channels.insert(thread["id"].as_str().unwrap_or_default().to_string(), thread.clone());
        let mut event = thread.clone();
        event["newly_created"] = json!(true);
        self.dispatch("THREAD_CREATE", event);
        thread
    }

    pub(super) fn threads(&self) -> Vec<Value> {
        let mut threads: Vec<Value> =
            self.channels.values().filter(|channel| channel["type"] == 11 || channel["type"] == 12).cloned().collect();
        threads.sort_by_key(|thread| thread["id"].as_str().and_then(|id| id.parse::<u64>().ok()).unwrap_or_default());
        threads
    }

    // ----- interactions -----

    /// The fields every interaction shares (developers/interactions/receiving-and-responding.mdx
    /// "Interaction Structure"), for a user in a channel.
    fn interaction_base(&mut self, kind: u64, user: &Value, channel_id: &str) -> Value {
        self.remember_user(user);
        let id = self.snowflake();
        let channel = self.channel(channel_id).cloned().unwrap_or_else(objects::guild_text_channel);
        let guild_id = self.guild_of(channel_id);
        let mut interaction = json!({
            "id": id,
            "application_id": APPLICATION_ID,
            "type": kind,
            "channel_id": channel_id,
            "channel": objects::partial_channel(&channel),
            "token": Self::random_token(160),
            "version": 1,
            "app_permissions": EVERYONE_PERMISSIONS.to_string(),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit
        });
        match guild_id {
            Some(guild_id) => {
                interaction["guild_id"] = json!(guild_id);
                interaction["guild_locale"] = json!("en-US");
                interaction["member"] = objects::member(user);
                if let Some(roles) = self.roles.get(&id_string(user.get("id"))) {
                    interaction["member"]["roles"] = json!(roles);
                }
                if self.managers.contains(&id_string(user.get("id"))) {
                    let permissions = EVERYONE_PERMISSIONS | objects::permission::MANAGE_GUILD;
                    interaction["member"]["permissions"] = json!(permissions.to_string());
                }
                interaction["authorizing_integration_owners"] = json!({ "0": guild_id });
                interaction["context"] = json!(0);
            }
            None => {
                interaction["user"] = user.clone();
                interaction["authorizing_integration_owners"] = json!({ "0": "0" });
                interaction["context"] = json!(1);
            }
        }
        interaction
    }

    /// An application command (2) or autocomplete (4) interaction in the default channel.
    pub(super) fn command_interaction(
        &mut self,
        kind: u64,
        user: &Value,
        name: &str,
        options: Value,
        attachments: &[Value],
    ) -> Value {
        self.command_interaction_in(CHANNEL_ID, kind, user, name, options, attachments)
    }

    /// An application command or autocomplete interaction in `channel_id`.
    pub(super) fn command_interaction_in(
        &mut self,
        channel_id: &str,
        kind: u64,
        user: &Value,
        name: &str,
        options: Value,
        attachments: &[Value],
    ) -> Value {
        let mut interaction = self.interaction_base(kind, user, channel_id);
        let command_id = self.command_id(name);
        let mut data = json!({ "id": command_id, "name": name, "type": 1, "options": options });
        if !attachments.is_empty() {
            let resolved: serde_json::Map<String, Value> =
                attachments.iter().map(|attachment| (id_string(attachment.get("id")), attachment.clone())).collect();
            data["resolved"] = json!({ "attachments": resolved });
        }
        interaction["data"] = data;
        self.register_interaction(&interaction);
        interaction
    }

    /// A button press (3) on `message`, which becomes part of what users see if it is new.
    pub(super) fn component_interaction(&mut self, user: &Value, custom_id: &str, message: &Value) -> Value {
        let message_id = id_string(message.get("id"));
        let channel_id = message["channel_id"].as_str().unwrap_or(CHANNEL_ID).to_string();
        if !self.messages.contains_key(&message_id) {
            let ephemeral = message["flags"].as_u64().unwrap_or(0) & flag::EPHEMERAL != 0;
            self.store_message(message.clone(), !ephemeral);
        }
        let current = self.messages.get(&message_id).cloned().unwrap_or_else(|| message.clone());
        let mut interaction = self.interaction_base(3, user, &channel_id);
        interaction["data"] = json!({ "custom_id": custom_id, "component_type": 2 });
        interaction["message"] = current;
        self.register_interaction(&interaction);
        interaction
    }

    /// A modal submit (5). When the bot showed a modal with this custom id, the submit comes from
    /// where that modal was opened (its channel, and its message for a component).
    pub(super) fn modal_submit_interaction(&mut self, user: &Value, custom_id: &str, fields: &[(&str, &str)]) -> Value {
        let opener = self.modals.get(custom_id).and_then(|id| self.interactions.get(id));
        let channel_id = opener.map_or(CHANNEL_ID.to_string(), |opener| opener.channel_id.clone());
        let message_id = opener.and_then(|opener| opener.message_id.clone());
        let triggering = opener.map(|opener| self.metadata_of(opener));
        let mut interaction = self.interaction_base(5, user, &channel_id);
        let rows: Vec<Value> = fields
            .iter()
            .map(|(field_id, value)| {
                json!({ "type": 1, "components": [{ "type": 4, "custom_id": field_id, "value": value }] })
            })
            .collect();
        interaction["data"] = json!({ "custom_id": custom_id, "components": rows });
        if let Some(message) = message_id.and_then(|id| self.messages.get(&id)) {
            interaction["message"] = message.clone();
        }
        self.register_interaction(&interaction);
        let triggering = triggering.unwrap_or_else(|| {
            // Shown before this stand-in started: say it came from a slash command.
            json!({
                "id": self.snowflake(),
                "type": 2,
                "user": user,
                "authorizing_integration_owners": { "0": GUILD_ID }
            })
        });
        if let Some(record) = self.interactions.get_mut(interaction["id"].as_str().unwrap_or_default()) {
            record.triggering = Some(triggering);
        }
        interaction
    }

    /// The id of a command by name, stable across registrations as Discord keeps it.
    pub(super) fn command_id(&mut self, name: &str) -> String {
        if let Some(id) = self.command_ids.get(name) {
            return id.clone();
        }
        let id = self.snowflake();
        self.command_ids.insert(name.to_string(), id.clone());
        id
    }

    /// Remembers an interaction (by id and token) so its callback and webhook routes work.
    pub(super) fn register_interaction(&mut self, interaction: &Value) {
        let id = id_string(interaction.get("id"));
        if id.is_empty() || self.interactions.contains_key(&id) {
            return;
        }
        let data = &interaction["data"];
        let user = interaction["member"].get("user").unwrap_or(&interaction["user"]).clone();
        self.remember_user(&user);
        let name = data["name"].as_str().or_else(|| data["custom_id"].as_str()).unwrap_or_default().to_string();
        let record = InteractionRecord {
            id: id.clone(),
            token: interaction["token"].as_str().unwrap_or_default().to_string(),
            kind: interaction["type"].as_u64().unwrap_or(0),
            name,
            user,
            channel_id: interaction["channel_id"].as_str().unwrap_or(CHANNEL_ID).to_string(),
            guild_id: interaction["guild_id"].as_str().map(String::from),
            message_id: interaction["message"].get("id").and_then(Value::as_str).map(String::from),
            triggering: None,
            callback: None,
            original: None,
            followups: Vec::new(),
            expired: false,
            counts: InteractionCounts::default(),
            sent_at: None,
        };
        self.interactions.insert(id, record);
    }

    pub(super) fn interaction_by_token(&self, token: &str) -> Option<&InteractionRecord> {
        self.interactions.values().find(|interaction| interaction.token == token)
    }

    /// The gateway wrote an interaction's INTERACTION_CREATE to a client just now.
    pub(super) fn interaction_sent(&mut self, id: &str, at: Instant) {
        if let Some(record) = self.interactions.get_mut(id) {
            record.sent_at.get_or_insert(at);
        }
    }

    pub(super) fn remember_modal(&mut self, custom_id: &str, interaction_id: &str) {
        self.modals.insert(custom_id.to_string(), interaction_id.to_string());
    }

    /// `interaction_metadata` (developers/resources/message.mdx "Message Interaction Metadata").
    pub(super) fn metadata_of(&self, interaction: &InteractionRecord) -> Value {
        let owners = json!({ "0": interaction.guild_id.clone().unwrap_or_else(|| "0".to_string()) });
        let mut metadata = json!({
            "id": interaction.id,
            "type": interaction.kind,
            "user": interaction.user,
            "authorizing_integration_owners": owners
        });
        if interaction.kind == 3
            && let Some(message_id) = &interaction.message_id
        {
            metadata["interacted_message_id"] = json!(message_id);
        }
        if interaction.kind == 5 {
            metadata["triggering_interaction_metadata"] = interaction.triggering.clone().unwrap_or(Value::Null);
        }
        metadata
    }

    // ----- the gateway -----

    pub(super) fn next_connection_id(&mut self) -> u64 {
        self.gateway.next_connection += 1;
        self.gateway.next_connection
    }

    /// Sends a dispatch (op 0) to every session, as Discord sends each event to every session
    /// identified on the shard it belongs to: every replica of a bot that connects with the same
    /// token sees the same interactions and messages. Before any client has identified, the
    /// dispatch waits and goes to the first session.
    pub(super) fn dispatch(&mut self, event: &str, data: Value) {
        if self.gateway.sessions.is_empty() {
            self.gateway.pending.push((event.to_string(), data));
            return;
        }
        let session_ids: Vec<String> = self.gateway.sessions.keys().cloned().collect();
        for session_id in session_ids {
            self.dispatch_to(&session_id, event, data.clone());
        }
    }

    /// Sends a dispatch to one session: numbered, logged for RESUME, and delivered now if a
    /// connection is attached. Events the session's intents exclude are not sent; without
    /// MESSAGE_CONTENT, message events lose their content as Discord documents.
    fn dispatch_to(&mut self, session_id: &str, event: &str, data: Value) {
        let Some(session) = self.gateway.sessions.get_mut(session_id) else { return };
        let in_guild = data.get("guild_id").is_some_and(|guild| !guild.is_null());
        let needed = match event {
            "GUILD_CREATE" | "THREAD_CREATE" | "THREAD_UPDATE" | "THREAD_DELETE" | "CHANNEL_CREATE" => intent::GUILDS,
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" if in_guild => intent::GUILD_MESSAGES,
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" => intent::DIRECT_MESSAGES,
            _ => 0,
        };
        if session.intents & needed != needed {
            return;
        }
        let data = if matches!(event, "MESSAGE_CREATE" | "MESSAGE_UPDATE") {
            without_content_unless_allowed(data, session.intents, in_guild)
        } else {
            data
        };
        session.seq += 1;
        let data_id = data.get("id").and_then(Value::as_str).map(String::from);
        let frame = json!({ "op": 0, "t": event, "s": session.seq, "d": data }).to_string();
        session.log.push((session.seq, frame.clone()));
        let outgoing = match (event, data_id) {
            ("INTERACTION_CREATE", Some(id)) => Outgoing::Interaction { frame, id },
            _ => Outgoing::Frame(frame),
        };
        if let Some(connection) = &session.connection
            && connection.sender.send(outgoing).is_err()
        {
            session.connection = None;
        }
    }

    /// How many sessions have a connection attached right now.
    pub(super) fn connected_sessions(&self) -> usize {
        self.gateway.sessions.values().filter(|session| session.connection.is_some()).count()
    }

    /// IDENTIFY: a new session, READY, GUILD_CREATE, then anything dispatched before a client came.
    pub(super) fn identify(&mut self, connection: Connection, intents: u64, shard: Value) {
        let session_id = Self::random_token(32).to_ascii_lowercase();
        self.gateway
            .sessions
            .insert(session_id.clone(), Session { seq: 0, log: Vec::new(), intents, connection: Some(connection) });
        self.gateway.current = Some(session_id.clone());
        let ready = json!({
            "v": 10,
            "user": objects::bot_user(),
            "guilds": [{ "id": GUILD_ID, "unavailable": true }],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url(),
            "shard": shard,
            "application": { "id": APPLICATION_ID, "flags": 0 }
        });
        // READY and the guild's state are this session's own; other sessions are not told.
        self.dispatch_to(&session_id, "READY", ready);
        let channels: Vec<Value> = self.channels.values().filter(|channel| channel["type"] == 0).cloned().collect();
        let threads: Vec<Value> = self.threads();
        self.dispatch_to(&session_id, "GUILD_CREATE", objects::guild_create(channels, threads));
        self.gateway.ready_count += 1;
        for (event, data) in std::mem::take(&mut self.gateway.pending) {
            self.dispatch(&event, data);
        }
    }

    /// RESUME: replays what the session missed after `seq`, then RESUMED. False when the session
    /// is unknown (the caller answers op 9, Invalid Session).
    pub(super) fn resume(&mut self, connection: Connection, session_id: &str, seq: u64) -> bool {
        let Some(session) = self.gateway.sessions.get_mut(session_id) else {
            return false;
        };
        for (number, frame) in &session.log {
            if *number > seq {
                let _ = connection.sender.send(Outgoing::Frame(frame.clone()));
            }
        }
        session.connection = Some(connection);
        self.gateway.current = Some(session_id.to_string());
        self.gateway.resume_count += 1;
        self.dispatch_to(session_id, "RESUMED", json!({}));
        true
    }

    /// A connection ended. A close with 1000 or 1001 ends its session too, as Discord does;
    /// anything else leaves it resumable.
    pub(super) fn disconnected(&mut self, connection_id: u64, close_code: Option<u16>) {
        let session_id = self.gateway.sessions.iter().find_map(|(id, session)| {
            session.connection.as_ref().filter(|connection| connection.id == connection_id).map(|_| id.clone())
        });
        let Some(session_id) = session_id else { return };
        if matches!(close_code, Some(1000 | 1001)) {
            self.gateway.sessions.remove(&session_id);
            if self.gateway.current.as_deref() == Some(session_id.as_str()) {
                self.gateway.current = None;
            }
        } else if let Some(session) = self.gateway.sessions.get_mut(&session_id) {
            session.connection = None;
        }
    }

    /// Detaches the current session's connection and returns it, for `drop_gateway`.
    pub(super) fn detach_current_connection(&mut self) -> Option<Connection> {
        let session = self.gateway.current.as_ref().and_then(|id| self.gateway.sessions.get_mut(id))?;
        session.connection.take()
    }
}

/// An id that may arrive as a number or a string, as a string.
pub(super) fn id_string(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// Without MESSAGE_CONTENT, guild messages that neither come from the bot nor mention it arrive
/// with empty content, embeds, attachments and components, and no poll
/// (developers/events/gateway.mdx "Message Content Intent").
fn without_content_unless_allowed(mut message: Value, intents: u64, in_guild: bool) -> Value {
    if intents & intent::MESSAGE_CONTENT != 0 || !in_guild {
        return message;
    }
    let from_bot = message["author"]["id"] == BOT_USER_ID;
    let mentions_bot =
        message["mentions"].as_array().is_some_and(|users| users.iter().any(|user| user["id"] == BOT_USER_ID));
    if from_bot || mentions_bot {
        return message;
    }
    if let Some(fields) = message.as_object_mut() {
        fields.insert("content".into(), json!(""));
        fields.insert("embeds".into(), json!([]));
        fields.insert("attachments".into(), json!([]));
        fields.insert("components".into(), json!([]));
        fields.remove("poll");
    }
    message
}

/// `content` when present: a string of at most 2000 characters (null clears it).
fn content_field(payload: &Value) -> Outcome<Option<String>> {
    match payload.get("content") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(content)) if content.chars().count() > MAX_CONTENT_CHARACTERS => {
            Err(Reply::invalid("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."))
        }
        Some(Value::String(content)) => Ok(Some(content.clone())),
        Some(_) => Err(Reply::invalid("content", "BASE_TYPE_STRING", "Must be a string.")),
    }
}

/// `embeds` when present, checked against Discord's embed limits.
fn embeds_field(payload: &Value) -> Outcome<Option<Vec<Value>>> {
    let embeds = match payload.get("embeds") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(embeds)) => embeds.clone(),
        Some(_) => return Err(Reply::invalid("embeds", "BASE_TYPE_ARRAY", "Must be an array.")),
    };
    if embeds.len() > MAX_EMBEDS {
        return Err(Reply::invalid("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."));
    }
    let mut total = 0;
    for (index, embed) in embeds.iter().enumerate() {
        let limits = [("title", 256), ("description", 4096), ("footer.text", 2048), ("author.name", 256)];
        for (field, limit) in limits {
            let text = field.split('.').try_fold(embed, |value, key| value.get(key)).and_then(Value::as_str);
            let length = text.map_or(0, |text| text.chars().count());
            if length > limit {
                return Err(Reply::invalid(
                    &format!("embeds.{index}.{field}"),
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {limit} or fewer in length."),
                ));
            }
            total += length;
        }
        let fields = embed.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        if fields.len() > 25 {
            return Err(Reply::invalid(
                &format!("embeds.{index}.fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        for (position, field) in fields.iter().enumerate() {
            for (key, limit) in [("name", 256), ("value", 1024)] {
                let length = field.get(key).and_then(Value::as_str).map_or(0, |text| text.chars().count());
                if length == 0 || length > limit {
                    return Err(Reply::invalid(
                        &format!("embeds.{index}.fields.{position}.{key}"),
                        "BASE_TYPE_BAD_LENGTH",
                        &format!("Must be between 1 and {limit} in length."),
                    ));
                }
                total += length;
            }
        }
    }
    if total > MAX_EMBED_TOTAL_CHARACTERS {
        return Err(Reply::invalid("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"));
    }
    Ok(Some(embeds))
}

/// `components` when present. Legacy messages hold at most five action rows of at most five
/// buttons or one select; custom ids are 1-100 characters and unique within the message
/// (developers/components/reference.mdx).
fn components_field(payload: &Value, flags: u64) -> Outcome<Option<Vec<Value>>> {
    let components = match payload.get("components") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(components)) => components.clone(),
        Some(_) => return Err(Reply::invalid("components", "BASE_TYPE_ARRAY", "Must be an array.")),
    };
    if flags & flag::IS_COMPONENTS_V2 != 0 {
        return Ok(Some(components));
    }
    if components.len() > 5 {
        return Err(Reply::invalid("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."));
    }
    let mut custom_ids = HashSet::new();
    for (row_index, row) in components.iter().enumerate() {
        if row["type"] != 1 {
            return Err(Reply::invalid(
                &format!("components.{row_index}.type"),
                "UNION_TYPE_CHOICES",
                "Value of field \"type\" must be one of (1,).",
            ));
        }
        let children = row["components"].as_array().cloned().unwrap_or_default();
        let selects = children.iter().filter(|child| child["type"] != 2).count();
        if children.is_empty() || children.len() > 5 || (selects > 0 && children.len() > 1) {
            return Err(Reply::invalid(
                &format!("components.{row_index}.components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            ));
        }
        for (child_index, child) in children.iter().enumerate() {
            let path = format!("components.{row_index}.components.{child_index}");
            let is_link = child["type"] == 2 && child["style"] == 5;
            let is_premium = child["type"] == 2 && child["style"] == 6;
            if child["type"] == 2
                && child.get("label").and_then(Value::as_str).is_some_and(|label| label.chars().count() > 80)
            {
                return Err(Reply::invalid(
                    &format!("{path}.label"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 80 or fewer in length.",
                ));
            }
            if is_link {
                if child.get("url").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(Reply::invalid(&format!("{path}.url"), "BASE_TYPE_REQUIRED", "This field is required"));
                }
                continue;
            }
            if is_premium {
                continue;
            }
            let custom_id = child.get("custom_id").and_then(Value::as_str).unwrap_or_default();
            if custom_id.is_empty() || custom_id.chars().count() > 100 {
                return Err(Reply::invalid(
                    &format!("{path}.custom_id"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ));
            }
            if !custom_ids.insert(custom_id.to_string()) {
                return Err(Reply::invalid(
                    &format!("{path}.custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                ));
            }
        }
    }
    Ok(Some(components))
}

/// Components V2 messages cannot carry content or embeds.
fn check_components_v2(flags: u64, content: &str, embeds: &[Value]) -> Outcome<()> {
    if flags & flag::IS_COMPONENTS_V2 != 0 && (!content.is_empty() || !embeds.is_empty()) {
        return Err(Reply::invalid(
            "content",
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
        ));
    }
    Ok(())
}

/// Embeds as Discord returns them: typed "rich", with `attachment://name` images pointing at the
/// uploaded file. Files an embed shows are left out of the returned attachments, as the message
/// object documents ("any attached files that are not referenced in embeds").
fn resolve_embeds(embeds: Vec<Value>, files: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let mut shown = HashSet::new();
    let without_query = |url: &str| url.split('?').next().unwrap_or_default().to_string();
    let mut find = |url: &str| -> Option<Value> {
        let file = match url.strip_prefix("attachment://") {
            Some(name) => files.iter().find(|file| file["filename"] == name),
            None => files.iter().find(|file| file["url"].as_str().map(without_query) == Some(without_query(url))),
        }?;
        shown.insert(id_string(file.get("id")));
        Some(file.clone())
    };
    let mut resolved = Vec::new();
    for mut embed in embeds {
        if !embed.is_object() {
            continue;
        }
        if embed.get("type").is_none_or(Value::is_null) {
            embed["type"] = json!("rich");
        }
        for key in ["image", "thumbnail"] {
            let Some(url) = embed[key].get("url").and_then(Value::as_str).map(String::from) else { continue };
            if let Some(file) = find(&url) {
                embed[key] = json!({
                    "url": file["url"],
                    "proxy_url": file["proxy_url"],
                    "width": file["width"],
                    "height": file["height"],
                    "content_type": file["content_type"]
                });
            }
        }
        for key in ["author", "footer"] {
            let Some(url) = embed[key].get("icon_url").and_then(Value::as_str).map(String::from) else { continue };
            if let Some(file) = find(&url) {
                embed[key]["icon_url"] = file["url"].clone();
                embed[key]["proxy_icon_url"] = file["proxy_url"].clone();
            }
        }
        resolved.push(embed);
    }
    let attachments = files.iter().filter(|file| !shown.contains(&id_string(file.get("id")))).cloned().collect();
    (resolved, attachments)
}
