//! The studio as JSON: generate, edit, check a prompt, describe an image, chat.
//!
//! Each request is parsed into the core's checked types first (the same parsers the pages
//! and the bot use, so refusals read the same everywhere); a wrong field is a 400 before any
//! model is called or any quota charged.

use std::convert::Infallible;

use atelier_shared::chat::{ChatEvent, ChatMessage, ChatMode, StopReason};
use atelier_shared::gallery::SessionName;
use atelier_shared::request::{EditFields, Prompt};
use atelier_shared::{Appeal, EditSource, Exchange};
use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};

use super::caller::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::images::parse_id;
use super::jobs::accepted;
use super::views::{
    ChatBody, ChatReply, ChatTextEvent, CheckBody, CritiqueView, DescribeForm, Description, EditForm, GenerateBody,
    JobBody, TurnView,
};
use crate::AppState;

/// A JSON body, or a 400 that says what is wrong with it (axum's own rejection is plain text).
pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body).map_err(|rejection| {
        // axum's own words for a body past the limit ("length limit exceeded") do not say
        // that the body itself must shrink, nor that no JSON field could make it fit.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::invalid(format!(
                "The request body is too large for this endpoint: send a smaller JSON body (a prompt is at most {} \
                 characters)",
                atelier_shared::request::MAX_PROMPT_CHARACTERS
            ));
        }
        ApiError::invalid(format!("The request body is not the JSON this endpoint takes: {}", rejection.body_text()))
    })
}

/// Makes images from a prompt and keeps them in the caller's gallery, as a job: answered at
/// once with the job (202), which is then followed at its `url` or `events_url`.
#[utoipa::path(
    post,
    path = "/api/generate",
    tag = "studio",
    request_body = GenerateBody,
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 202, description = "The job, admitted: follow it at its url or events_url; a refusal by the safety check ends it as failed (error blocked, appealable once with appeal: true)", body = JobBody,
         headers(("Location" = String, description = "The job's url"))),
        (status = 400, description = "A field is wrong (nothing was charged)", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 429, description = "Too many jobs, or the daily quota is used up", body = ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<GenerateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let plan = state.core.plan_generation(&caller.actor(), &body.fields()?).await?;
    let mut actor = caller.actor();
    actor.session =
        body.session.as_deref().filter(|name| !name.trim().is_empty()).map(SessionName::parse).transpose()?;
    let appeal = if body.appeal { Appeal::Asked } else { Appeal::No };
    let id = state.core.submit_generation(&actor, &plan, appeal).await?;
    accepted(&state, &caller, id).await
}

/// What a multipart form carried.
#[derive(Default)]
struct Upload {
    fields: EditFields,
    image_id: Option<String>,
    image: Option<Bytes>,
    mask: Option<Bytes>,
    session: Option<String>,
}

/// The fields of the describe form; the edit form takes them all.
const DESCRIBE_FIELDS: &[&str] = &["image", "image_id"];

async fn read_multipart(
    multipart: Result<Multipart, MultipartRejection>,
    only: Option<&[&str]>,
) -> Result<Upload, ApiError> {
    // axum's own answer (plain text) would not be the JSON error the document promises.
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::invalid(format!("The request is not a multipart form: {}", rejection.body_text()))
    })?;
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        ApiError::invalid(format!("The multipart form could not be read: {}", error.body_text()))
    };
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        if only.is_some_and(|fields| !fields.contains(&name.as_str())) {
            return Err(ApiError::invalid(format!(
                "`{name}` is not a field of this form: see /api/openapi.json for the fields"
            )));
        }
        match name.as_str() {
            "image" | "mask" => {
                let bytes = field.bytes().await.map_err(unreadable)?;
                if !bytes.is_empty() {
                    if name == "image" { upload.image = Some(bytes) } else { upload.mask = Some(bytes) }
                }
            }
            _ => {
                let text = field.text().await.map_err(unreadable)?;
                let text = Some(text).filter(|text| !text.trim().is_empty());
                match name.as_str() {
                    "mode" => upload.fields.mode = text.unwrap_or_default(),
                    "image_id" => upload.image_id = text,
                    "prompt" => upload.fields.prompt = text,
                    "negative_prompt" => upload.fields.negative_prompt = text,
                    "mask_prompt" => upload.fields.mask_prompt = text,
                    "seed" => upload.fields.seed = text,
                    "similarity" => upload.fields.similarity = text,
                    "direction" => upload.fields.direction = text,
                    "model" => upload.fields.model = text,
                    "session" => upload.session = text,
                    other => {
                        return Err(ApiError::invalid(format!(
                            "`{other}` is not a field of this form: see /api/openapi.json for the fields"
                        )));
                    }
                }
            }
        }
    }
    Ok(upload)
}

/// The image a form names: an upload (no parent), or an image of the caller's gallery.
fn edit_source(caller: &ApiCaller, upload: Option<Bytes>, image_id: Option<&str>) -> Result<EditSource, ApiError> {
    let gallery_image = image_id.map(parse_id).transpose()?.map(|id| caller.actor().own(id));
    EditSource::choose(upload, gallery_image)?
        .ok_or_else(|| ApiError::invalid("Give the image to use: upload it as `image`, or name it as `image_id`"))
}

/// Edits an image (uploaded, or from the caller's gallery) and keeps the result, with the
/// gallery image as its parent; a job, answered at once like `POST /api/generate`.
#[utoipa::path(
    post,
    path = "/api/edit",
    tag = "studio",
    request_body(content = EditForm, content_type = "multipart/form-data"),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 202, description = "The job, admitted: follow it at its url or events_url", body = JobBody,
         headers(("Location" = String, description = "The job's url"))),
        (status = 400, description = "A field or an image is wrong (nothing was charged)", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "image_id is not in the caller's gallery", body = ErrorBody),
        (status = 429, description = "Too many jobs, or the daily quota is used up", body = ErrorBody),
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    caller: ApiCaller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let upload = read_multipart(multipart, None).await?;
    let source = edit_source(&caller, upload.image, upload.image_id.as_deref())?;
    let mut actor = caller.actor();
    actor.session = upload.session.as_deref().map(SessionName::parse).transpose()?;
    let plan = state.core.plan_edit(&actor, source, upload.mask, &upload.fields).await?;
    let id = state.core.submit_edit(&actor, &plan, Appeal::No).await?;
    accepted(&state, &caller, id).await
}

/// The structured critique of a prompt, with improved prompts for each model family.
#[utoipa::path(
    post,
    path = "/api/check",
    tag = "studio",
    request_body = CheckBody,
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The critique", body = CritiqueView),
        (status = 400, description = "The prompt is empty or too long", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 429, description = "The model is busy", body = ErrorBody),
    )
)]
pub async fn check(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<CheckBody>, JsonRejection>,
) -> Result<Json<CritiqueView>, ApiError> {
    let prompt = Prompt::parse(&json_body(body)?.prompt)?;
    Ok(Json(CritiqueView::from(state.core.check_prompt(&caller.actor(), &prompt).await?)))
}

/// Four prompts that would draw something like an image.
#[utoipa::path(
    post,
    path = "/api/describe",
    tag = "studio",
    request_body(content = DescribeForm, content_type = "multipart/form-data"),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The prompts", body = Description),
        (status = 400, description = "The image is missing or not an image", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "image_id is not in the caller's gallery", body = ErrorBody),
        (status = 429, description = "The model is busy", body = ErrorBody),
    )
)]
pub async fn describe(
    State(state): State<AppState>,
    caller: ApiCaller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Description>, ApiError> {
    let upload = read_multipart(multipart, Some(DESCRIBE_FIELDS)).await?;
    let source = edit_source(&caller, upload.image, upload.image_id.as_deref())?;
    Ok(Json(Description { prompts: state.core.describe_source(&caller.actor(), source).await? }))
}

fn stop_reason_text(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::Filtered => "filtered",
    }
}

/// Whether the caller asked for a stream of server-sent events.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|part| part.trim().starts_with("text/event-stream")))
}

/// A reply from the assistant in one of its modes. With `Accept: text/event-stream` the reply
/// streams as server-sent events (`text` events with pieces, then `done` with the whole reply
/// and history, or `error`); otherwise the whole reply comes at once as JSON.
#[utoipa::path(
    post,
    path = "/api/chat",
    tag = "studio",
    request_body = ChatBody,
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The reply: JSON, or server-sent events with Accept: text/event-stream",
            content((ChatReply = "application/json"), (ChatTextEvent = "text/event-stream"))),
        (status = 400, description = "The message, mode or history is wrong", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "image_id is not in the caller's gallery", body = ErrorBody),
        (status = 429, description = "The model is busy", body = ErrorBody),
    )
)]
pub async fn chat(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Result<Json<ChatBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let mode = body.mode.as_deref().map(str::parse::<ChatMode>).transpose()?.unwrap_or_default();
    let history = body.history.iter().map(TurnView::to_turn).collect::<Result<Vec<_>, _>>()?;
    let mut message = ChatMessage::parse(&body.message)?;
    if let Some(id) = body.image_id.as_deref() {
        let id = parse_id(id)?;
        message = message
            .with_image(state.core.source_image(&caller.actor(), EditSource::Gallery(caller.actor().own(id))).await?);
    }
    let mut exchange = state.core.converse_statelessly(&caller.actor(), mode, history, &message).await?;

    if wants_event_stream(&headers) {
        return Ok(Sse::new(event_stream(exchange)).into_response());
    }
    let stop_reason = exchange.finish(|_| {}).await?;
    Ok(Json(reply_of(&exchange, stop_reason)).into_response())
}

/// The whole reply and the history to continue with (trimmed as a kept conversation is).
fn reply_of(exchange: &Exchange, stop_reason: StopReason) -> ChatReply {
    let history = exchange.history_after().iter().map(TurnView::from_turn).collect();
    ChatReply { reply: exchange.reply().to_string(), stop_reason: stop_reason_text(stop_reason).into(), history }
}

/// The reply as server-sent events, ending with `done` (or `error` if the model fails midway).
fn event_stream(exchange: Exchange) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some(exchange), |exchange| async move {
        let mut exchange = exchange?;
        let (event, over) = match exchange.next().await {
            Some(Ok(ChatEvent::Text(text))) => {
                (Event::default().event("text").json_data(ChatTextEvent { text }), false)
            }
            Some(Ok(ChatEvent::Finished { stop_reason, .. })) => {
                (Event::default().event("done").json_data(reply_of(&exchange, stop_reason)), true)
            }
            None => (Event::default().event("done").json_data(reply_of(&exchange, StopReason::EndTurn)), true),
            Some(Err(error)) => {
                // The status line has gone out already: the failure travels as an event.
                if !error.is_user_error() {
                    tracing::error!(error = %error, "a streamed chat reply failed on our side: {error}");
                }
                let kind = match &error {
                    atelier_shared::Error::Invalid(_) => "invalid",
                    atelier_shared::Error::NotFound(_) => "not_found",
                    atelier_shared::Error::Blocked(_) => "blocked",
                    atelier_shared::Error::Busy(_) => "busy",
                    atelier_shared::Error::Forbidden(_) => "forbidden",
                    atelier_shared::Error::Cancelled(_) => "cancelled",
                    atelier_shared::Error::Conflict(_) => "conflict",
                    atelier_shared::Error::Operator { .. } => "operator",
                };
                let body = ErrorBody { error: kind.into(), message: crate::error::capitalise(&error.user_message()) };
                (Event::default().event("error").json_data(body), true)
            }
        };
        // Encoding these plain structs cannot fail; if it ever did, the stream says so and ends.
        let event = event.unwrap_or_else(|_| Event::default().event("error").data("{}"));
        Some((Ok(event), (!over).then_some(exchange)))
    })
}
