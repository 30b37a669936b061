//! The REST API under `/api/v10` and the attachment CDN: every request is recorded with the
//! status it got, scripted faults come first, and the routes answer as Discord documents them
//! (developers/resources/*.mdx, developers/interactions/receiving-and-responding.mdx).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State as AxumState};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::objects;
use super::state::{Outcome, Reply, ReplyBody, State, flag, id_string};
use super::{APPLICATION_ID, BOT_USER_ID, Recorded, RecordedFile, Shared};

/// Flags an interaction response may set (receiving-and-responding.mdx "Messages").
const INTERACTION_FLAGS: u64 = flag::SUPPRESS_EMBEDS
    | flag::EPHEMERAL
    | flag::IS_COMPONENTS_V2
    | flag::IS_VOICE_MESSAGE
    | flag::SUPPRESS_NOTIFICATIONS;
/// Flags a follow-up may set ("Create Followup Message").
const FOLLOWUP_FLAGS: u64 =
    flag::SUPPRESS_EMBEDS | flag::EPHEMERAL | flag::IS_COMPONENTS_V2 | flag::SUPPRESS_NOTIFICATIONS;
/// Flags a bot may set on a channel message (message.mdx "Create Message").
const CHANNEL_MESSAGE_FLAGS: u64 =
    flag::SUPPRESS_EMBEDS | flag::SUPPRESS_NOTIFICATIONS | flag::IS_VOICE_MESSAGE | flag::IS_COMPONENTS_V2;

/// One request, parsed.
struct Incoming {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    body: Value,
    files: Vec<RecordedFile>,
}

impl Incoming {
    fn query_value(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    }
}

/// Every request but the gateway's WebSocket comes here.
pub(super) async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name| parts.headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok()).map(String::from);
    let authorization = header(AUTHORIZATION);
    let content_type = header(CONTENT_TYPE);
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default().to_vec();
    let received_at = std::time::Instant::now();
    let (body, files, body_error) = parse_body(content_type.as_deref(), bytes).await;
    let incoming = Incoming {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        authorization,
        body,
        files,
    };
    let reply = {
        let mut state = shared.lock();
        let reply = match (state.take_fault(&incoming.method, &incoming.path), body_error) {
            (Some(status), _) => fault_reply(status),
            (None, Some(error)) => error,
            (None, None) => route(&mut state, &incoming).unwrap_or_else(|reply| reply),
        };
        state.requests.push(Recorded {
            method: incoming.method,
            path: incoming.path,
            query: incoming.query,
            authorization: incoming.authorization,
            body: incoming.body,
            files: incoming.files,
            status: reply.status,
            received_at,
        });
        reply
    };
    into_response(reply)
}

/// The JSON body, or a multipart body's `payload_json` and files (developers/reference.mdx
/// "Uploading Files"); a third value when the body cannot be read, as Discord would answer it.
async fn parse_body(content_type: Option<&str>, bytes: Vec<u8>) -> (Value, Vec<RecordedFile>, Option<Reply>) {
    let invalid_json = || Some(Reply::error(400, 50109, "The request body contains invalid JSON."));
    if bytes.is_empty() {
        return (Value::Null, Vec::new(), None);
    }
    let Some(content_type) = content_type.filter(|content_type| content_type.starts_with("multipart/form-data")) else {
        return match serde_json::from_slice(&bytes) {
            Ok(body) => (body, Vec::new(), None),
            Err(_) => (Value::Null, Vec::new(), invalid_json()),
        };
    };
    let request = Request::builder().header(CONTENT_TYPE, content_type).body(Body::from(bytes));
    let Ok(mut request) = request else { return (Value::Null, Vec::new(), invalid_json()) };
    // Uploads are checked against the interaction's attachment limit (25 MiB unless a test
    // lowers it), not against axum's 2 MB default for extractors.
    DefaultBodyLimit::disable().apply(&mut request);
    let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
        return (Value::Null, Vec::new(), invalid_json());
    };
    let mut body = Value::Null;
    let mut fields = serde_json::Map::new();
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return (body, files, invalid_json()),
        };
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(String::from);
        let part_type = field.content_type().map(String::from);
        let Ok(data) = field.bytes().await else { return (body, files, invalid_json()) };
        match filename {
            Some(filename) => {
                files.push(RecordedFile { field: name, filename, content_type: part_type, bytes: data.to_vec() })
            }
            None if name == "payload_json" => match serde_json::from_slice(&data) {
                Ok(payload) => body = payload,
                Err(_) => return (body, files, invalid_json()),
            },
            None => {
                fields.insert(name, json!(String::from_utf8_lossy(&data)));
            }
        }
    }
    // Without payload_json, Discord reads plain form fields (such as `content`) instead.
    if body.is_null() && !fields.is_empty() {
        body = Value::Object(fields);
    }
    (body, files, None)
}

/// A scripted fault as Discord would send it: a 429 with the documented rate-limit body and
/// headers (developers/topics/rate-limits.mdx), anything else with a JSON error body.
fn fault_reply(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status).ok().and_then(|status| status.canonical_reason()).unwrap_or("Error");
    if status != 429 {
        return Reply::json(status, json!({ "message": format!("{status}: {reason}"), "code": 0 }));
    }
    let retry_after = 0.1;
    let reset = objects::now_ms() as f64 / 1000.0 + retry_after;
    let mut reply = Reply::json(
        429,
        json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false }),
    );
    reply.headers = vec![
        ("retry-after", "1".to_string()),
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", format!("{reset:.3}")),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
        ("x-ratelimit-bucket", "b6a2f05ec1a8e1c7b3b4c5d6e7f80911".to_string()),
        ("x-ratelimit-scope", "user".to_string()),
    ];
    reply
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        ReplyBody::Empty => status.into_response(),
        ReplyBody::Json(body) => (status, axum::Json(body)).into_response(),
        ReplyBody::Bytes { content_type, bytes } => (status, [(CONTENT_TYPE, content_type)], bytes).into_response(),
    };
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn not_found() -> Reply {
    Reply::error(404, 0, "404: Not Found")
}

fn route(state: &mut State, request: &Incoming) -> Outcome<Reply> {
    let path = request.path.as_str();
    if let Some(rest) = path.strip_prefix("/attachments/").or_else(|| path.strip_prefix("/media/attachments/")) {
        return Ok(cdn(state, rest, &request.method));
    }
    let Some(api_path) = path.strip_prefix("/api/v10/") else { return Ok(not_found()) };
    let segments: Vec<&str> = api_path.trim_end_matches('/').split('/').collect();
    let method = request.method.as_str();
    // Interaction callbacks and webhooks authenticate with their token, Get Gateway with nothing;
    // everything else needs the bot token.
    let needs_bot_token = !matches!(segments.as_slice(), ["interactions", ..] | ["webhooks", ..] | ["gateway"]);
    if needs_bot_token && !request.authorization.as_deref().is_some_and(|token| state.accepts_token(token)) {
        return Ok(Reply::error(401, 0, "401: Unauthorized"));
    }
    match (method, segments.as_slice()) {
        ("GET", ["gateway"]) => Ok(Reply::json(200, json!({ "url": state.gateway_url() }))),
        ("GET", ["gateway", "bot"]) => Ok(Reply::json(
            200,
            json!({
                "url": state.gateway_url(),
                "shards": 1,
                "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 }
            }),
        )),
        ("GET", ["users", "@me"]) => Ok(Reply::json(200, objects::bot_user())),
        ("POST", ["users", "@me", "channels"]) => create_dm(state, request),
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            Ok(Reply::json(200, objects::application()))
        }
        ("PUT", ["applications", application, "commands"])
        | ("PUT", ["applications", application, "guilds", _, "commands"]) => set_commands(state, request, application),
        ("GET", ["applications", application, "commands"]) => {
            check_application(application)?;
            Ok(Reply::json(200, json!(state.commands)))
        }
        ("POST", ["interactions", id, token, "callback"]) => interaction_callback(state, request, id, token),
        ("POST", ["webhooks", application, token]) => followup(state, request, application, token),
        ("GET" | "PATCH" | "DELETE", ["webhooks", application, token, "messages", message]) => {
            webhook_message(state, request, application, token, message)
        }
        ("GET", ["channels", channel]) => {
            state.channel(channel).cloned().map(|channel| Reply::json(200, channel)).ok_or_else(Reply::unknown_channel)
        }
        ("POST", ["channels", channel, "typing"]) => {
            state.channel(channel).ok_or_else(Reply::unknown_channel)?;
            Ok(Reply::no_content())
        }
        ("GET", ["channels", channel, "messages"]) => list_messages(state, request, channel),
        ("POST", ["channels", channel, "messages"]) => create_channel_message(state, request, channel),
        ("GET" | "PATCH" | "DELETE", ["channels", channel, "messages", message]) => {
            channel_message(state, request, channel, message)
        }
        ("POST", ["channels", channel, "messages", message, "threads"]) => {
            thread_from_message(state, request, channel, message)
        }
        ("POST", ["channels", channel, "threads"]) => thread_without_message(state, request, channel),
        _ => Ok(not_found()),
    }
}

/// The CDN: uploaded bytes at `/attachments/{id}/{filename}` (and the media proxy's copy).
fn cdn(state: &State, rest: &str, method: &str) -> Reply {
    let (id, filename) = rest.split_once('/').unwrap_or((rest, ""));
    match state.files.get(id) {
        Some(file) if file.filename == filename && method == "GET" => Reply {
            status: 200,
            body: ReplyBody::Bytes {
                content_type: file.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_string()),
                bytes: file.bytes.clone(),
            },
            headers: Vec::new(),
        },
        _ => Reply {
            status: 404,
            body: ReplyBody::Bytes {
                content_type: "text/plain".to_string(),
                bytes: b"This content is no longer available.".to_vec(),
            },
            headers: Vec::new(),
        },
    }
}

fn check_application(application: &str) -> Outcome<()> {
    if application == APPLICATION_ID { Ok(()) } else { Err(Reply::error(404, 10002, "Unknown Application")) }
}

/// `PUT /applications/{id}/commands`: replaces the commands and returns them with ids
/// (developers/interactions/application-commands.mdx "Bulk Overwrite Global Application Commands").
fn set_commands(state: &mut State, request: &Incoming, application: &str) -> Outcome<Reply> {
    check_application(application)?;
    let commands =
        request.body.as_array().ok_or_else(|| Reply::invalid("_", "BASE_TYPE_ARRAY", "Must be an array."))?;
    let mut created = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let name = command.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 32 {
            return Err(Reply::invalid(
                &format!("{index}.name"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 32 in length.",
            ));
        }
        let description = command.get("description").and_then(Value::as_str).unwrap_or_default();
        // Slash commands need a description of 1-100 characters.
        if command.get("type").and_then(Value::as_u64).unwrap_or(1) == 1
            && !(1..=100).contains(&description.chars().count())
        {
            return Err(Reply::invalid(
                &format!("{index}.description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        created.push(json!({
            "id": state.command_id(name),
            "application_id": APPLICATION_ID,
            "version": state.snowflake(),
            "type": command.get("type").cloned().unwrap_or(json!(1)),
            "name": name,
            "description": description,
            "options": command.get("options").cloned().unwrap_or(json!([])),
            "default_member_permissions": command.get("default_member_permissions").cloned().unwrap_or(Value::Null),
            "dm_permission": command.get("dm_permission").cloned().unwrap_or(json!(true)),
            "nsfw": command.get("nsfw").cloned().unwrap_or(json!(false)),
            "integration_types": command.get("integration_types").cloned().unwrap_or(json!([0])),
            "contexts": command.get("contexts").cloned().unwrap_or(Value::Null)
        }));
    }
    state.commands = created.clone();
    Ok(Reply::json(200, Value::Array(created)))
}

fn unknown_interaction() -> Reply {
    Reply::error(404, 10062, "Unknown interaction")
}

fn invalid_webhook_token() -> Reply {
    Reply::error(401, 50027, "Invalid Webhook Token")
}

/// What a callback, follow-up or webhook edit needs to know about its interaction.
struct InteractionFacts {
    id: String,
    kind: u64,
    name: String,
    user: Value,
    channel_id: String,
    message_id: Option<String>,
    metadata: Value,
    callback: Option<Value>,
    original: Option<String>,
    followups: Vec<String>,
}

fn facts(state: &State, id: &str) -> Option<InteractionFacts> {
    let record = state.interactions.get(id)?;
    Some(InteractionFacts {
        id: record.id.clone(),
        kind: record.kind,
        name: record.name.clone(),
        user: record.user.clone(),
        channel_id: record.channel_id.clone(),
        message_id: record.message_id.clone(),
        metadata: state.metadata_of(record),
        callback: record.callback.clone(),
        original: record.original.clone(),
        followups: record.followups.clone(),
    })
}

/// The interaction behind a webhook token: 401 "Invalid Webhook Token" (50027) when it is
/// unknown or expired.
fn facts_by_token(state: &State, application: &str, token: &str) -> Outcome<InteractionFacts> {
    if application != APPLICATION_ID {
        return Err(Reply::error(404, 10015, "Unknown Webhook"));
    }
    let record =
        state.interaction_by_token(token).filter(|record| !record.expired).ok_or_else(invalid_webhook_token)?;
    facts(state, &record.id.clone()).ok_or_else(invalid_webhook_token)
}

/// A message sent through an interaction: authored by the bot through the application's
/// webhook, with the interaction's metadata.
fn mark_as_interaction_message(message: &mut Value, interaction: &InteractionFacts) {
    message["webhook_id"] = json!(APPLICATION_ID);
    message["application_id"] = json!(APPLICATION_ID);
    message["interaction_metadata"] = interaction.metadata.clone();
    if interaction.kind == 2 {
        message["type"] = json!(20);
        message["interaction"] =
            json!({ "id": interaction.id, "type": 2, "name": interaction.name, "user": interaction.user });
    }
}

fn is_ephemeral(message: &Value) -> bool {
    message["flags"].as_u64().unwrap_or(0) & flag::EPHEMERAL != 0
}

/// `POST /interactions/{id}/{token}/callback`.
fn interaction_callback(state: &mut State, request: &Incoming, id: &str, token: &str) -> Outcome<Reply> {
    let record = state.interactions.get(id).filter(|record| record.token == token && !record.expired);
    let Some(record) = record else { return Err(unknown_interaction()) };
    if record.callback.is_some() {
        // Only the first callback counts (receiving-and-responding.mdx); what Discord answers
        // the rest, word for word, is how a second replica learns the first one has it.
        if let Some(record) = state.interactions.get_mut(id) {
            record.counts.callbacks_refused_as_acknowledged += 1;
        }
        return Err(Reply::error(400, 40060, "Interaction has already been acknowledged."));
    }
    let interaction = facts(state, id).ok_or_else(unknown_interaction)?;
    let callback_type = request.body.get("type").and_then(Value::as_u64);
    let Some(callback_type) = callback_type else {
        return Err(Reply::invalid("type", "BASE_TYPE_REQUIRED", "This field is required"));
    };
    let has_message = interaction.message_id.is_some();
    let allowed: &[u64] = match interaction.kind {
        1 => &[1],
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        5 if has_message => &[4, 5, 6, 7],
        5 => &[4, 5],
        _ => &[],
    };
    if !allowed.contains(&callback_type) {
        return Err(Reply::invalid(
            "type",
            "INTERACTION_RESPONSE_TYPE_INVALID",
            &format!(
                "Interaction response type {callback_type} is not valid for interaction type {}",
                interaction.kind
            ),
        ));
    }
    let data = request.body.get("data").cloned().unwrap_or(Value::Null);
    let mut original = None;
    match callback_type {
        4 => {
            let mut message = state.compose_message(
                &interaction.channel_id,
                objects::bot_user(),
                &data,
                &request.files,
                INTERACTION_FLAGS,
            )?;
            mark_as_interaction_message(&mut message, &interaction);
            let visible = !is_ephemeral(&message);
            original = Some(id_string(message.get("id")));
            state.store_message(message.clone(), visible);
            if visible {
                state.announce_created(&message);
            }
        }
        5 => {
            let ephemeral = data.get("flags").and_then(Value::as_u64).unwrap_or(0) & flag::EPHEMERAL != 0;
            let mut message = state.loading_message(&interaction.channel_id, ephemeral);
            mark_as_interaction_message(&mut message, &interaction);
            original = Some(id_string(message.get("id")));
            state.store_message(message.clone(), !ephemeral);
            if !ephemeral {
                state.announce_created(&message);
            }
        }
        6 => original = interaction.message_id.clone(),
        7 => {
            let message_id = interaction.message_id.clone().unwrap_or_default();
            let message = state.edit_message(&message_id, &data, &request.files)?;
            if state.is_visible(&message_id, &interaction.channel_id) {
                state.announce_updated(&message);
            }
            original = Some(message_id);
        }
        8 => {
            let choices = data.get("choices").and_then(Value::as_array).map_or(0, Vec::len);
            if choices > 25 {
                return Err(Reply::invalid("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."));
            }
        }
        9 => {
            let custom_id = data.get("custom_id").and_then(Value::as_str).unwrap_or_default();
            let title = data.get("title").and_then(Value::as_str).unwrap_or_default();
            let components = data.get("components").and_then(Value::as_array).map_or(0, Vec::len);
            if custom_id.is_empty() || custom_id.chars().count() > 100 {
                return Err(Reply::invalid(
                    "data.custom_id",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ));
            }
            if title.is_empty() || title.chars().count() > 45 {
                return Err(Reply::invalid(
                    "data.title",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 45 in length.",
                ));
            }
            if !(1..=5).contains(&components) {
                return Err(Reply::invalid(
                    "data.components",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                ));
            }
            state.remember_modal(custom_id, id);
        }
        _ => {}
    }
    if let Some(record) = state.interactions.get_mut(id) {
        record.callback = Some(request.body.clone());
        record.original = original.clone();
        record.counts.callbacks_accepted += 1;
    }
    if request.query_value("with_response").as_deref() != Some("true") {
        return Ok(Reply::no_content());
    }
    // The interaction callback response (receiving-and-responding.mdx "Interaction Callback Response Object").
    let message = original.as_deref().and_then(|message_id| state.messages.get(message_id)).cloned();
    let mut callback = json!({ "id": id, "type": interaction.kind });
    if let Some(message) = &message {
        callback["response_message_id"] = message["id"].clone();
        callback["response_message_loading"] = json!(message["flags"].as_u64().unwrap_or(0) & flag::LOADING != 0);
        callback["response_message_ephemeral"] = json!(is_ephemeral(message));
    }
    let mut resource = json!({ "type": callback_type });
    if matches!(callback_type, 4 | 7)
        && let Some(message) = message
    {
        resource["message"] = message;
    }
    Ok(Reply::json(200, json!({ "interaction": callback, "resource": resource })))
}

/// `POST /webhooks/{application}/{token}`: a follow-up. `wait` is always true for interaction
/// follow-ups, so the message is returned. Straight after a deferral it edits the "thinking"
/// message instead, keeping its ephemerality ("Create Followup Message").
fn followup(state: &mut State, request: &Incoming, application: &str, token: &str) -> Outcome<Reply> {
    let interaction = facts_by_token(state, application, token)?;
    if interaction.callback.is_none() {
        return Err(Reply::error(404, 10015, "Unknown Webhook"));
    }
    let loading_original = interaction.original.as_deref().filter(|original| {
        state.messages.get(*original).is_some_and(|message| message["flags"].as_u64().unwrap_or(0) & flag::LOADING != 0)
    });
    if let Some(original) = loading_original.map(String::from) {
        let message = state.edit_message(&original, &request.body, &request.files)?;
        if state.is_visible(&original, &interaction.channel_id) {
            state.announce_updated(&message);
        }
        if let Some(record) = state.interactions.get_mut(&interaction.id) {
            record.counts.followups += 1;
        }
        return Ok(Reply::json(200, message));
    }
    let mut message = state.compose_message(
        &interaction.channel_id,
        objects::bot_user(),
        &request.body,
        &request.files,
        FOLLOWUP_FLAGS,
    )?;
    mark_as_interaction_message(&mut message, &interaction);
    if let Some(original) = &interaction.original {
        message["interaction_metadata"]["original_response_message_id"] = json!(original);
    }
    let visible = !is_ephemeral(&message);
    let message_id = id_string(message.get("id"));
    state.store_message(message.clone(), visible);
    if visible {
        state.announce_created(&message);
    }
    if let Some(record) = state.interactions.get_mut(&interaction.id) {
        record.followups.push(message_id);
        record.counts.followups += 1;
    }
    Ok(Reply::json(200, message))
}

/// `GET`/`PATCH`/`DELETE /webhooks/{application}/{token}/messages/{@original | id}`.
fn webhook_message(
    state: &mut State,
    request: &Incoming,
    application: &str,
    token: &str,
    message: &str,
) -> Outcome<Reply> {
    let interaction = facts_by_token(state, application, token)?;
    let target = if message == "@original" {
        interaction.original.clone()
    } else if interaction.original.as_deref() == Some(message) || interaction.followups.iter().any(|id| id == message) {
        Some(message.to_string())
    } else {
        None
    };
    let target = target.filter(|id| state.messages.contains_key(id)).ok_or_else(Reply::unknown_message)?;
    match request.method.as_str() {
        "GET" => Ok(Reply::json(200, state.messages[&target].clone())),
        "PATCH" => {
            let edited = state.edit_message(&target, &request.body, &request.files)?;
            if state.is_visible(&target, &interaction.channel_id) {
                state.announce_updated(&edited);
            }
            if let Some(record) = state.interactions.get_mut(&interaction.id) {
                record.counts.edits += 1;
            }
            Ok(Reply::json(200, edited))
        }
        _ => {
            state.delete_message(&target);
            Ok(Reply::no_content())
        }
    }
}

/// `POST /users/@me/channels`: the DM channel with `recipient_id`.
fn create_dm(state: &mut State, request: &Incoming) -> Outcome<Reply> {
    let recipient = id_string(request.body.get("recipient_id"));
    if recipient.is_empty() {
        return Err(Reply::invalid("recipient_id", "BASE_TYPE_REQUIRED", "This field is required"));
    }
    Ok(Reply::json(200, state.dm_channel(&recipient)))
}

fn text_channel(state: &State, channel_id: &str) -> Outcome<Value> {
    let channel = state.channel(channel_id).cloned().ok_or_else(Reply::unknown_channel)?;
    if !matches!(channel["type"].as_u64(), Some(0 | 1 | 5 | 10 | 11 | 12)) {
        return Err(Reply::error(400, 50008, "Cannot send messages in a non-text channel"));
    }
    Ok(channel)
}

/// `POST /channels/{id}/messages`.
fn create_channel_message(state: &mut State, request: &Incoming, channel_id: &str) -> Outcome<Reply> {
    text_channel(state, channel_id)?;
    let message =
        state.compose_message(channel_id, objects::bot_user(), &request.body, &request.files, CHANNEL_MESSAGE_FLAGS)?;
    state.store_message(message.clone(), true);
    state.announce_created(&message);
    Ok(Reply::json(200, message))
}

/// `GET /channels/{id}/messages`: newest first, `limit` 1-100 (default 50), paged with
/// `before`, `after` or `around` (message.mdx "Get Channel Messages").
fn list_messages(state: &mut State, request: &Incoming, channel_id: &str) -> Outcome<Reply> {
    state.channel(channel_id).ok_or_else(Reply::unknown_channel)?;
    let limit = match request.query_value("limit") {
        None => 50,
        Some(limit) => match limit.parse::<usize>() {
            Ok(limit) if (1..=100).contains(&limit) => limit,
            _ => return Err(Reply::invalid("limit", "NUMBER_TYPE_MAX", "Must be between 1 and 100.")),
        },
    };
    let number = |id: &str| id.parse::<u64>().unwrap_or_default();
    let mut messages: Vec<Value> = state
        .history
        .get(channel_id)
        .map(|ids| ids.iter().filter_map(|id| state.messages.get(id).cloned()).collect())
        .unwrap_or_default();
    messages.sort_by_key(|message| number(message["id"].as_str().unwrap_or_default()));
    let id_of = |message: &Value| number(message["id"].as_str().unwrap_or_default());
    let page: Vec<Value> = if let Some(before) = request.query_value("before") {
        let before = number(&before);
        messages.into_iter().rev().filter(|message| id_of(message) < before).take(limit).collect()
    } else if let Some(after) = request.query_value("after") {
        let after = number(&after);
        let mut oldest: Vec<Value> =
            messages.into_iter().filter(|message| id_of(message) > after).take(limit).collect();
        oldest.reverse();
        oldest
    } else if let Some(around) = request.query_value("around") {
        let around = number(&around);
        let position = messages.iter().position(|message| id_of(message) >= around).unwrap_or(messages.len());
        let start = position.saturating_sub(limit / 2);
        let mut window: Vec<Value> = messages.into_iter().skip(start).take(limit).collect();
        window.reverse();
        window
    } else {
        messages.into_iter().rev().take(limit).collect()
    };
    Ok(Reply::json(200, Value::Array(page)))
}

/// `GET`/`PATCH`/`DELETE /channels/{id}/messages/{id}`. The bot edits only its own messages and,
/// without MANAGE_MESSAGES, deletes only its own.
fn channel_message(state: &mut State, request: &Incoming, channel_id: &str, message_id: &str) -> Outcome<Reply> {
    state.channel(channel_id).ok_or_else(Reply::unknown_channel)?;
    if !state.is_visible(message_id, channel_id) {
        return Err(Reply::unknown_message());
    }
    let message = state.messages.get(message_id).cloned().ok_or_else(Reply::unknown_message)?;
    let from_bot = message["author"]["id"] == BOT_USER_ID;
    match request.method.as_str() {
        "GET" => Ok(Reply::json(200, message)),
        "PATCH" if !from_bot => Err(Reply::error(403, 50005, "Cannot edit a message authored by another user")),
        "PATCH" => {
            let edited = state.edit_message(message_id, &request.body, &request.files)?;
            state.announce_updated(&edited);
            Ok(Reply::json(200, edited))
        }
        _ if !from_bot => Err(Reply::error(403, 50013, "Missing Permissions")),
        _ => {
            state.delete_message(message_id);
            Ok(Reply::no_content())
        }
    }
}

/// A thread's name, auto-archive duration and slow mode from a start-thread body
/// (channel.mdx "Start Thread from Message").
fn thread_settings(body: &Value, parent: &Value) -> Outcome<(String, u64, u64)> {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Reply::invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."));
    }
    let default_duration = parent["default_auto_archive_duration"].as_u64().unwrap_or(1440);
    let duration = body.get("auto_archive_duration").and_then(Value::as_u64).unwrap_or(default_duration);
    if ![60, 1440, 4320, 10080].contains(&duration) {
        return Err(Reply::invalid(
            "auto_archive_duration",
            "BASE_TYPE_CHOICES",
            "Value must be one of {60, 1440, 4320, 10080}.",
        ));
    }
    let slow_mode = body.get("rate_limit_per_user").and_then(Value::as_u64).unwrap_or(0);
    if slow_mode > 21_600 {
        return Err(Reply::invalid("rate_limit_per_user", "NUMBER_TYPE_MAX", "Must be 21600 or less."));
    }
    Ok((name, duration, slow_mode))
}

fn thread_parent(state: &State, channel_id: &str) -> Outcome<Value> {
    let parent = state.channel(channel_id).cloned().ok_or_else(Reply::unknown_channel)?;
    if !matches!(parent["type"].as_u64(), Some(0 | 5)) {
        return Err(Reply::error(400, 50024, "Cannot execute action on this channel type"));
    }
    Ok(parent)
}

/// `POST /channels/{id}/messages/{id}/threads`: a public thread whose id is the message's, which
/// gains the HAS_THREAD flag and the `thread` field.
fn thread_from_message(state: &mut State, request: &Incoming, channel_id: &str, message_id: &str) -> Outcome<Reply> {
    let parent = thread_parent(state, channel_id)?;
    if !state.is_visible(message_id, channel_id) {
        return Err(Reply::unknown_message());
    }
    if state.channel(message_id).is_some() {
        return Err(Reply::error(400, 160004, "A thread has already been created for this message"));
    }
    let (name, duration, slow_mode) = thread_settings(&request.body, &parent)?;
    let thread = state.new_thread(message_id.to_string(), channel_id, 11, &name, duration, slow_mode);
    if let Some(mut starter) = state.messages.get(message_id).cloned() {
        starter["flags"] = json!(starter["flags"].as_u64().unwrap_or(0) | flag::HAS_THREAD);
        starter["thread"] = thread.clone();
        state.messages.insert(message_id.to_string(), starter.clone());
        state.announce_updated(&starter);
    }
    Ok(Reply::json(201, thread))
}

/// `POST /channels/{id}/threads`: a thread without a starter message (private unless `type` is
/// 11). A public one is announced in the parent with a THREAD_CREATED (18) system message.
fn thread_without_message(state: &mut State, request: &Incoming, channel_id: &str) -> Outcome<Reply> {
    let parent = thread_parent(state, channel_id)?;
    let kind = request.body.get("type").and_then(Value::as_u64).unwrap_or(12);
    if !matches!(kind, 11 | 12) {
        return Err(Reply::invalid("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}."));
    }
    let (name, duration, slow_mode) = thread_settings(&request.body, &parent)?;
    let id = state.snowflake();
    let thread = state.new_thread(id.clone(), channel_id, kind, &name, duration, slow_mode);
    if kind == 11 {
        let notice_id = state.snowflake();
        let notice = json!({
            "id": notice_id,
            "channel_id": channel_id,
            "author": objects::bot_user(),
            "content": name,
            "timestamp": objects::timestamp_of(&notice_id),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 18,
            "flags": 0,
            "components": [],
            "message_reference": { "type": 0, "channel_id": id, "guild_id": parent["guild_id"] }
        });
        state.store_message(notice.clone(), true);
        state.announce_created(&notice);
    }
    Ok(Reply::json(201, thread))
}
