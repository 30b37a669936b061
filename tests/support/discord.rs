//! A stand-in for Discord on loopback that a real serenity + poise client connects to: the REST
//! API under `/api/v10`, the gateway (a WebSocket at `/gateway`) and a CDN for attachments, all
//! on one port.
//!
//! It follows Discord's documentation (discord/discord-api-docs: developers/events/gateway.mdx,
//! developers/interactions/receiving-and-responding.mdx, developers/resources/message.mdx and
//! channel.mdx, developers/topics/rate-limits.mdx) field for field, and keeps what people would
//! see: messages per channel, interaction responses as they are after edits, threads. Tests
//! build interactions and messages as Discord sends them, dispatch them over the gateway, read
//! back every REST request with the status it got, and script faults (rate limits, server
//! errors, a dropped connection, expired interaction tokens).
//!
//! Several clients may identify with the same token at once, as replicas of one bot do: each
//! session gets every dispatch, the first callback to an interaction is taken and later ones
//! are refused with Discord's 400 "Interaction has already been acknowledged." (40060), and
//! [`DiscordStandIn::interaction_counts`] tells a test how often each was acknowledged and
//! answered.
//!
//! Point the bot at it with `ATELIER_DISCORD_API_URL` = [`DiscordStandIn::url`] (serenity's
//! `HttpBuilder::proxy` with its rate limiter off) and `ATELIER_DISCORD_GATEWAY_URL` =
//! [`DiscordStandIn::gateway_url`]. The first bot token it sees (REST `Authorization: Bot …` or
//! IDENTIFY) becomes the only one it accepts.

mod gateway;
mod objects;
mod rest;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::any;
use serde_json::Value;
use tokio::sync::oneshot;

pub use state::InteractionCounts;
use state::{Outgoing, State, flag};

/// The application id (`/oauth2/applications/@me`, READY's `application`, interactions).
pub const APPLICATION_ID: &str = "1100000000000000001";
/// The bot's own user id, as READY and `/users/@me` give it.
pub const BOT_USER_ID: &str = "1100000000000000002";
/// The one guild the bot is in.
pub const GUILD_ID: &str = "1100000000000000010";
/// The guild's text channel, where interactions and user messages happen unless told otherwise.
pub const CHANNEL_ID: &str = "1100000000000000020";
/// A second text channel in the guild, for the moderation log.
pub const MODERATION_CHANNEL_ID: &str = "1100000000000000021";
/// A third text channel, marked age-restricted (`"nsfw": true`).
pub const AGE_RESTRICTED_CHANNEL_ID: &str = "1100000000000000022";
/// The `attachment_size_limit` interactions carry until a test changes it (25 MiB); uploads
/// above the current limit are refused with 413 (40005) as Discord refuses them.
pub const DEFAULT_ATTACHMENT_SIZE_LIMIT: u64 = 26_214_400;

/// One HTTP request as the stand-in saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query, such as `/api/v10/channels/1/messages`.
    pub path: String,
    /// The raw query string as sent (serenity writes `?&limit=5`, so this reads `&limit=5`).
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// The JSON body, or a multipart body's `payload_json` part; `Null` when there is none.
    pub body: Value,
    /// The files of a multipart body.
    pub files: Vec<RecordedFile>,
    pub status: u16,
    /// When the whole request (body included) had arrived, for latency measurements.
    pub received_at: Instant,
}

/// A request without its file bytes, for measurements over many uploads: what
/// [`DiscordStandIn::request_log`] returns.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    pub method: String,
    pub path: String,
    /// The JSON body, or a multipart body's `payload_json` part; `Null` when there is none.
    pub body: Value,
    /// How many files the request carried, and their bytes in all.
    pub file_count: usize,
    pub file_bytes: usize,
    pub status: u16,
    /// When the whole request (body included) had arrived.
    pub received_at: Instant,
}

/// A file part of a multipart request.
#[derive(Debug, Clone)]
pub struct RecordedFile {
    /// The form field, `files[0]` and so on.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The state behind the stand-in's routes and its test-facing methods.
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test must not hide the state from the tests that read it afterwards.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running stand-in; it serves until the test's runtime ends.
pub struct DiscordStandIn {
    pub address: SocketAddr,
    shared: Arc<Shared>,
}

impl DiscordStandIn {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Discord stand-in");
        let address = listener.local_addr().expect("the Discord stand-in's address");
        let shared = Arc::new(Shared { state: Mutex::new(State::new(format!("http://{address}"))) });
        let app =
            Router::new().route("/gateway", any(gateway::upgrade)).fallback(rest::handle).with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the Discord stand-in stopped serving");
        });
        Self { address, shared }
    }

    /// `http://127.0.0.1:PORT`, the value for `ATELIER_DISCORD_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `ws://127.0.0.1:PORT/gateway`, the value for `ATELIER_DISCORD_GATEWAY_URL` (also what
    /// `GET /gateway` answers and READY's `resume_gateway_url`).
    pub fn gateway_url(&self) -> String {
        self.shared.lock().gateway_url()
    }

    /// Waits until a client has IDENTIFYed and been sent READY; panics after 20 s.
    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.shared.lock().gateway.ready_count == 0 {
            if Instant::now() > deadline {
                panic!(
                    "no Discord client IDENTIFYed with the stand-in's gateway within 20 s \
                     (IDENTIFYs received: {}); requests so far:\n{}",
                    self.identify_count(),
                    self.describe_requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `count` gateway sessions are connected at once (several replicas of a bot,
    /// say); panics after 30 s.
    pub async fn wait_for_sessions(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let connected = self.shared.lock().connected_sessions();
            if connected >= count {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited 30 s for {count} gateway sessions, but {connected} are connected (IDENTIFYs received: {})",
                    self.identify_count()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many IDENTIFYs the gateway received (including refused ones).
    pub fn identify_count(&self) -> usize {
        self.shared.lock().gateway.identify_count
    }

    /// How many sessions were resumed.
    pub fn resume_count(&self) -> usize {
        self.shared.lock().gateway.resume_count
    }

    /// How many heartbeats (op 1) the gateway acknowledged.
    pub fn heartbeat_count(&self) -> usize {
        self.shared.lock().gateway.heartbeat_count
    }

    /// Every HTTP request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every HTTP request so far, oldest first, without the bytes of uploaded files (cheap to
    /// take after hundreds of uploads).
    pub fn request_log(&self) -> Vec<RequestSummary> {
        self.shared
            .lock()
            .requests
            .iter()
            .map(|request| RequestSummary {
                method: request.method.clone(),
                path: request.path.clone(),
                body: request.body.clone(),
                file_count: request.files.len(),
                file_bytes: request.files.iter().map(|file| file.bytes.len()).sum(),
                status: request.status,
                received_at: request.received_at,
            })
            .collect()
    }

    /// When the gateway finished writing an interaction's INTERACTION_CREATE to a client's
    /// connection (the first one, when several sessions got it); None before that.
    pub fn interaction_sent_at(&self, interaction_id: &str) -> Option<Instant> {
        self.shared.lock().interactions.get(interaction_id)?.sent_at
    }

    /// The first recorded request `predicate` accepts, waiting up to 30 s for it; on timeout
    /// panics naming `what` and listing every request with its status.
    pub async fn wait_for_request(&self, what: &str, predicate: impl Fn(&Recorded) -> bool) -> Recorded {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.shared.lock().requests.iter().find(|request| predicate(request)).cloned();
            if let Some(found) = found {
                return found;
            }
            if Instant::now() > deadline {
                panic!("waited 30 s for {what}, but it never came; requests so far:\n{}", self.describe_requests());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn describe_requests(&self) -> String {
        let requests = self.requests();
        if requests.is_empty() {
            return "  (none)".to_string();
        }
        requests
            .iter()
            .map(|request| format!("  {} {} -> {}", request.method, request.path, request.status))
            .collect::<Vec<_>>()
            .join("\n")
    }

    // ----- building what Discord sends -----

    /// A user object for a person (not a bot): `name` becomes the display name (`global_name`)
    /// and, in lower case with `_` for spaces, the username (serenity's `User::name`).
    pub fn user(id: u64, name: &str) -> Value {
        objects::user(id, name)
    }

    /// An attachment as a user would upload it: the bytes are served at
    /// `{url}/attachments/{id}/{filename}` (with Discord's signed-URL query) and the attachment
    /// object is returned. Filenames are sanitised as Discord does (spaces become `_`).
    pub fn attachment(&self, filename: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        self.shared.lock().store_attachment(filename, Some(content_type.to_string()), bytes, None, false)
    }

    /// A slash command (interaction type 2) by `user` in CHANNEL_ID, with `options` as the
    /// interaction's data options and `attachments` in `data.resolved.attachments`.
    pub fn slash_command(&self, user: &Value, name: &str, options: Value, attachments: &[Value]) -> Value {
        self.shared.lock().command_interaction(2, user, name, options, attachments)
    }

    /// A slash command like [`Self::slash_command`], in another of the guild's channels.
    pub fn slash_command_in(&self, channel_id: &str, user: &Value, name: &str, options: Value) -> Value {
        self.shared.lock().command_interaction_in(channel_id, 2, user, name, options, &[])
    }

    /// An autocomplete interaction (type 4). The option with `"focused": true` is the one being
    /// typed; when none is marked, the last (innermost) option is.
    pub fn autocomplete(&self, user: &Value, name: &str, mut options: Value) -> Value {
        if !has_focus(&options) {
            focus_last(&mut options);
        }
        self.shared.lock().command_interaction(4, user, name, options, &[])
    }

    /// A button press (type 3, component type 2) on `message`, which the stand-in stores as part
    /// of the channel if it did not know it.
    pub fn button_press(&self, user: &Value, custom_id: &str, message: &Value) -> Value {
        self.shared.lock().component_interaction(user, custom_id, message)
    }

    /// A modal submit (type 5): each field becomes an action row holding a text input with its
    /// custom id and value. When the bot showed a modal with `custom_id`, the submit comes from
    /// where it was opened.
    pub fn modal_submit(&self, user: &Value, custom_id: &str, fields: &[(&str, &str)]) -> Value {
        self.shared.lock().modal_submit_interaction(user, custom_id, fields)
    }

    /// Makes `user_id` an admin of the guild: their interactions carry the Manage Server
    /// permission from now on.
    pub fn grant_manage_server(&self, user_id: u64) {
        self.shared.lock().managers.insert(user_id.to_string());
    }

    /// Gives `user_id` a role on the guild: their member objects list it from now on.
    pub fn give_role(&self, user_id: u64, role_id: u64) {
        self.shared.lock().roles.entry(user_id.to_string()).or_default().push(role_id.to_string());
    }

    /// The `attachment_size_limit` of interactions built from now on, and the largest upload
    /// the stand-in accepts.
    pub fn set_attachment_size_limit(&self, bytes: u64) {
        self.shared.lock().attachment_size_limit = bytes;
    }

    /// Sends INTERACTION_CREATE. While the client is disconnected it waits in the session for a
    /// RESUME; before any client has identified it is delivered after the first READY.
    pub async fn dispatch_interaction(&self, interaction: Value) {
        let mut state = self.shared.lock();
        state.register_interaction(&interaction);
        state.dispatch("INTERACTION_CREATE", interaction);
    }

    /// A message by `author` in a channel, as Discord would deliver it (mentions of known users
    /// and of the bot resolved).
    pub fn user_message(&self, channel_id: &str, author: &Value, content: &str) -> Value {
        let mut state = self.shared.lock();
        state.remember_user(author);
        let payload = serde_json::json!({ "content": content });
        match state.compose_message(channel_id, author.clone(), &payload, &[], 0) {
            Ok(message) => message,
            Err(reply) => panic!("Discord would refuse this message (status {}): {content:?}", reply.status),
        }
    }

    /// Stores `message` in its channel's history and sends MESSAGE_CREATE (without content
    /// unless the client asked for MESSAGE_CONTENT or the message mentions the bot).
    pub async fn dispatch_message(&self, message: Value) {
        let mut state = self.shared.lock();
        let ephemeral = message["flags"].as_u64().unwrap_or(0) & flag::EPHEMERAL != 0;
        state.store_message(message.clone(), !ephemeral);
        state.announce_created(&message);
    }

    // ----- what people see -----

    /// A message as it is now (None once deleted).
    pub fn message(&self, id: &str) -> Option<Value> {
        self.shared.lock().messages.get(id).cloned()
    }

    /// The messages people see in a channel, oldest first (ephemeral responses are not there).
    pub fn channel_messages(&self, channel_id: &str) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .history
            .get(channel_id)
            .map(|ids| ids.iter().filter_map(|id| state.messages.get(id).cloned()).collect())
            .unwrap_or_default()
    }

    /// The original response to an interaction as it is now: the message a type 4 or 5 callback
    /// made (after edits), or for 6 and 7 the message the component is on.
    pub fn interaction_original(&self, interaction_id: &str) -> Option<Value> {
        let state = self.shared.lock();
        let original = state.interactions.get(interaction_id)?.original.clone()?;
        state.messages.get(&original).cloned()
    }

    /// The follow-up messages of an interaction, oldest first, as they are now.
    pub fn interaction_followups(&self, interaction_id: &str) -> Vec<Value> {
        let state = self.shared.lock();
        let Some(interaction) = state.interactions.get(interaction_id) else { return Vec::new() };
        interaction.followups.iter().filter_map(|id| state.messages.get(id).cloned()).collect()
    }

    /// The callback the bot answered an interaction with (`{"type", "data"}`), such as the
    /// choices of an autocomplete (8) or a modal (9).
    pub fn interaction_callback(&self, interaction_id: &str) -> Option<Value> {
        self.shared.lock().interactions.get(interaction_id)?.callback.clone()
    }

    /// How often an interaction was acknowledged (and refused as already acknowledged), and
    /// how many follow-ups and edits its token made; all zero for an unknown interaction.
    pub fn interaction_counts(&self, interaction_id: &str) -> InteractionCounts {
        self.shared.lock().interactions.get(interaction_id).map(|record| record.counts).unwrap_or_default()
    }

    /// How many messages people could see were ever created in a channel (by anyone, through
    /// any route), counting those deleted since.
    pub fn messages_created(&self, channel_id: &str) -> usize {
        self.shared.lock().messages_created.get(channel_id).copied().unwrap_or(0)
    }

    /// Every thread, oldest first.
    pub fn threads(&self) -> Vec<Value> {
        self.shared.lock().threads()
    }

    // ----- faults -----

    /// The next `times` requests whose method is `method` (or `"*"`) and whose path contains
    /// `path_contains` answer `status`: 429 with Discord's rate-limit body (`retry_after` 0.1 s,
    /// `global` false) and headers, anything else with a JSON error body. They are recorded
    /// with that status.
    pub fn fail_next(&self, method: &str, path_contains: &str, status: u16, times: usize) {
        self.shared.lock().add_fault(method, path_contains, status, times);
    }

    /// Drops the current gateway connection without a close frame, as a network failure would.
    /// The session stays resumable: the client should RESUME with its session id and sequence.
    pub async fn drop_gateway(&self) {
        let connection = self
            .shared
            .lock()
            .detach_current_connection()
            .expect("drop_gateway: no client is connected to the stand-in's gateway");
        let (done, dropped) = oneshot::channel();
        let _ = connection.sender.send(Outgoing::Drop(done));
        let _ = tokio::time::timeout(Duration::from_secs(5), dropped).await;
    }

    /// As if the 15 minutes of every interaction made so far had passed: their webhook routes
    /// (follow-ups, `@original`) answer 401 "Invalid Webhook Token" (50027) and their callbacks
    /// 404 "Unknown interaction" (10062).
    pub fn expire_interaction_tokens(&self) {
        for interaction in self.shared.lock().interactions.values_mut() {
            interaction.expired = true;
        }
    }
}

/// Whether any option (at any depth) is already marked focused.
fn has_focus(options: &Value) -> bool {
    options.as_array().is_some_and(|options| {
        options.iter().any(|option| option["focused"] == true || option.get("options").is_some_and(has_focus))
    })
}

/// Marks the last option focused, descending into subcommands.
fn focus_last(options: &mut Value) {
    let Some(last) = options.as_array_mut().and_then(|options| options.last_mut()) else { return };
    match last.get_mut("options") {
        Some(inner) if inner.as_array().is_some_and(|inner| !inner.is_empty()) => focus_last(inner),
        _ => last["focused"] = Value::Bool(true),
    }
}
