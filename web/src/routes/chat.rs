//! Chat with the assistant in one of its modes, one conversation per address.
//!
//! Each conversation has a ULID in its address (`/chat/{id}`) and is kept in the store through
//! the core (`Atelier::converse`), so any replica can continue it and only its
//! owner can read it: anyone else gets the same 404 as for a conversation that never existed.
//!
//! A message is a multipart form (it may carry an image). Browsers with `chat.js` ask for
//! `text/event-stream` and get the reply as server-sent events while the model writes it;
//! without the script the form posts, waits for the whole reply, and is redirected to the
//! conversation. Either way the turns are saved before the reply is reported finished.

use atelier_shared::chat::{ChatMessage, ChatMode, ChatTurn, Speaker};
use atelier_shared::images::{MAX_UPLOAD_BYTES, check_upload};
use atelier_shared::{Conversation, Exchange};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::json;
use tokio::sync::mpsc;
use ulid::Ulid;

use crate::AppState;
use crate::auth::SignedIn;
use crate::csrf::CsrfToken;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chat", get(show_new_conversation).post(start_conversation))
        .route("/chat/{id}", get(show_conversation).post(continue_conversation))
        .route("/static/chat.js", get(script))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/chat.js"),
    )
}

/// What one message form holds, as typed, so a refused message can be shown again.
#[derive(Debug, Default)]
struct MessageForm {
    message: String,
    mode: Option<String>,
    image: Option<Bytes>,
}

/// A message checked and ready for the model.
struct Checked {
    mode: ChatMode,
    message: ChatMessage,
}

fn not_found() -> WebError {
    WebError::Core(atelier_shared::Error::not_found("that conversation does not exist, or is not yours"))
}

/// A conversation of the signed-in user. A malformed id, a missing conversation and another
/// person's conversation all answer the same 404, so ids cannot be probed.
async fn own_conversation(state: &AppState, user: &SignedIn, id: &str) -> Result<(Ulid, Conversation), WebError> {
    let id = Ulid::from_string(id).map_err(|_| not_found())?;
    match state.core.own_conversation(&user.actor(), &id.to_string()).await? {
        Some(conversation) => Ok((id, conversation)),
        _ => Err(not_found()),
    }
}

async fn show_new_conversation(State(state): State<AppState>, user: SignedIn, token: CsrfToken) -> Markup {
    let body = chat_page(&token, None, ChatMode::default(), &[], "", None);
    page::render(&state.site, Some(&user), Section::Chat, "Chat", body)
}

async fn show_conversation(
    State(state): State<AppState>,
    user: SignedIn,
    token: CsrfToken,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let (id, conversation) = own_conversation(&state, &user, &id).await?;
    let body = chat_page(&token, Some(id), conversation.mode, &conversation.turns, "", None);
    Ok(page::render(&state.site, Some(&user), Section::Chat, "Chat", body))
}

async fn start_conversation(
    State(state): State<AppState>,
    user: SignedIn,
    token: CsrfToken,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let visit = Visit { streaming: wants_stream(&headers), state, user, token };
    let conversation = Conversation { owner: visit.user.owner.clone(), mode: ChatMode::default(), turns: Vec::new() };
    visit.answer(Ulid::new(), conversation, false, multipart).await
}

async fn continue_conversation(
    State(state): State<AppState>,
    user: SignedIn,
    token: CsrfToken,
    headers: HeaderMap,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Response {
    let visit = Visit { streaming: wants_stream(&headers), state, user, token };
    match own_conversation(&visit.state, &visit.user, &id).await {
        Ok((id, conversation)) => visit.answer(id, conversation, true, multipart).await,
        Err(error) if visit.streaming => stream_refusal(error),
        Err(error) => error.into_response(),
    }
}

/// Whether the script asked for the reply as server-sent events.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Who sent a message, and how they want the answer.
struct Visit {
    state: AppState,
    user: SignedIn,
    token: CsrfToken,
    /// Whether the script asked for server-sent events (else it is the plain form post).
    streaming: bool,
}

impl Visit {
    /// Reads, checks and answers one message in `conversation` (kept under `id` once it
    /// `exists`), as events or as a redirect to the conversation.
    async fn answer(self, id: Ulid, conversation: Conversation, exists: bool, multipart: Multipart) -> Response {
        let shown_id = exists.then_some(id);
        let form = match read_form(multipart).await {
            Ok(form) => form,
            Err(error) => return self.refuse(shown_id, &conversation, "", error),
        };
        let started = async {
            let checked = check_message(&self.user, &form, conversation.mode).await?;
            let joined = Conversation { mode: checked.mode, ..conversation.clone() };
            let exchange =
                self.state.core.converse(&self.user.actor(), &id.to_string(), joined, &checked.message).await?;
            Ok::<_, WebError>((checked, exchange))
        }
        .await;
        let (checked, mut exchange) = match started {
            Ok(started) => started,
            Err(error) => return self.refuse(shown_id, &conversation, &form.message, error),
        };
        if self.streaming {
            return stream_reply(id, exchange).into_response();
        }
        match exchange.finish(|_| {}).await.map_err(WebError::from) {
            Ok(_) => Redirect::to(&format!("/chat/{id}")).into_response(),
            Err(error) => {
                // Nothing was saved: show the conversation as it is kept, if it was kept at all.
                let kept = match shown_id {
                    Some(id) => self.state.core.conversation(&id.to_string()).await.ok().flatten(),
                    None => None,
                };
                let conversation = kept.unwrap_or(Conversation {
                    owner: self.user.owner.clone(),
                    mode: checked.mode,
                    turns: Vec::new(),
                });
                self.refuse(shown_id, &conversation, &form.message, error)
            }
        }
    }

    /// A refused message: for the script, one `error` event with the status; otherwise the
    /// page again with the reason and the message as typed (or the error page, for failures on
    /// our side, where the form would not help).
    fn refuse(&self, id: Option<Ulid>, conversation: &Conversation, draft: &str, error: WebError) -> Response {
        if self.streaming {
            return stream_refusal(error);
        }
        if error.status().is_server_error() {
            return error.into_response();
        }
        let body = chat_page(&self.token, id, conversation.mode, &conversation.turns, draft, Some(&error.message()));
        (error.status(), page::render(&self.state.site, Some(&self.user), Section::Chat, "Chat", body)).into_response()
    }
}

fn stream_refusal(error: WebError) -> Response {
    log_operator_error(&error);
    let event = Event::default().event("error").data(json!({ "message": error.message() }).to_string());
    let events = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(event) });
    (error.status(), Sse::new(events)).into_response()
}

/// Failures on our side are logged once, where they are handled (the visitor sees an apology).
fn log_operator_error(error: &WebError) {
    if let WebError::Core(error @ atelier_shared::Error::Operator { .. }) = error {
        tracing::error!(error = %error, "a chat request failed on our side: {error}");
    }
}

async fn read_form(mut multipart: Multipart) -> Result<MessageForm, WebError> {
    let mut form = MessageForm::default();
    while let Some(field) = multipart.next_field().await.map_err(super::edit::unreadable)? {
        match field.name().unwrap_or_default() {
            "image" => {
                let bytes = field.bytes().await.map_err(super::edit::unreadable)?;
                // A file input left empty still sends a part, with no bytes.
                if !bytes.is_empty() {
                    form.image = Some(bytes);
                }
            }
            "message" => form.message = field.text().await.map_err(super::edit::unreadable)?,
            "mode" => {
                let text = field.text().await.map_err(super::edit::unreadable)?;
                form.mode = Some(text).filter(|text| !text.trim().is_empty());
            }
            _ => {}
        }
    }
    Ok(form)
}

/// Checks the message, its mode (the conversation's own when none is chosen) and any image.
async fn check_message(user: &SignedIn, form: &MessageForm, current: ChatMode) -> Result<Checked, WebError> {
    let mode = match form.mode.as_deref() {
        Some(text) => text.parse::<ChatMode>()?,
        None => current,
    };
    let mut message = ChatMessage::parse(&form.message)?;
    if let Some(bytes) = form.image.clone() {
        message = message.with_image(check_upload(&user.owner, bytes, "the attached image").await?);
    }
    Ok(Checked { mode, message })
}

/// The reply as server-sent events: `conversation` (its id and address) first, `text` pieces
/// (JSON strings) as the model writes, then `done` once the turns are saved, or `error`.
///
/// The model is read by a task of its own, so a reply is still saved when the visitor closes
/// the page half-way (the model has run, and the next visit shows the answer).
fn stream_reply(id: Ulid, mut exchange: Exchange) -> impl IntoResponse {
    // Unbounded only in name: one event per piece of one reply, which the model's token limit
    // bounds, and a page that stops reading is dropped when its connection closes.
    let (sender, receiver) = mpsc::unbounded_channel::<Event>();
    // A closed page makes sending fail; the reply is finished and saved all the same.
    let _ = sender.send(
        Event::default()
            .event("conversation")
            .data(json!({ "id": id.to_string(), "url": format!("/chat/{id}") }).to_string()),
    );
    tokio::spawn(async move {
        let relay = sender.clone();
        let outcome = exchange
            .finish(|piece| {
                let _ = relay.send(Event::default().event("text").data(json!(piece).to_string()));
            })
            .await
            .map_err(WebError::from);
        let last = match outcome {
            Ok(stop_reason) => Event::default().event("done").data(json!({ "stop_reason": stop_reason }).to_string()),
            Err(error) => {
                log_operator_error(&error);
                Event::default().event("error").data(json!({ "message": error.message() }).to_string())
            }
        };
        let _ = sender.send(last);
    });
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok::<_, std::convert::Infallible>(event), receiver))
    });
    // Proxies that buffer responses (nginx) are asked not to, so pieces arrive as they are sent.
    ([("x-accel-buffering", "no")], Sse::new(events).keep_alive(KeepAlive::default()))
}

fn chat_page(
    token: &CsrfToken,
    id: Option<Ulid>,
    mode: ChatMode,
    turns: &[ChatTurn],
    draft: &str,
    error: Option<&str>,
) -> Markup {
    let post_path = match id {
        Some(id) => format!("/chat/{id}"),
        None => "/chat".to_string(),
    };
    html! {
        div.chat-heading {
            h1 { "Chat" }
            a.button.secondary href="/chat" data-testid="new-conversation" { "New conversation" }
        }
        @if id.is_none() {
            p.hint #new-conversation-hint { "A new conversation. It gets its own address once you send the first message." }
        }
        div.chat #conversation data-testid="conversation" aria-live="polite" {
            // Every answer is marked finished; the one the script streams into is marked when done.
            @for turn in turns {
                @match turn.speaker {
                    Speaker::User => div.turn.user { (turn.text) },
                    Speaker::Assistant => div.turn.assistant data-testid="chat-answer" data-done="true" { (turn.text) },
                }
            }
        }
        (page::error_notice(error))
        p.notice.error #chat-script-error role="alert" hidden {}
        form.stack #chat-form method="post" action=(crate::csrf::action(&post_path)) enctype="multipart/form-data"
            data-testid="chat-form" data-csrf=(token.0) data-stream=(post_path) {
            label { "Mode"
                select name="mode" data-testid="chat-mode" {
                    @for choice in ChatMode::ALL {
                        option value=(choice.as_str()) selected[choice == mode] { (choice.label()) }
                    }
                }
            }
            label { "Message"
                textarea name="message" required maxlength="8000" data-testid="chat-message" { (draft) }
            }
            label { "Image " span.hint { "(optional: PNG, JPEG or WebP up to " (MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB, for the assistant to look at)" }
                input type="file" name="image" accept="image/png,image/jpeg,image/webp" data-testid="chat-image";
            }
            div.actions { button type="submit" data-testid="send" { "Send" } }
        }
        script src="/static/chat.js" defer {}
    }
}
