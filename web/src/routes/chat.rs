//! Chat with the assistant in one of its modes.
//!
//! The conversation so far travels with the form, so a reply needs no server-side state.

use atelier_shared::chat::{ChatEvent, ChatMessage, ChatMode, ChatTurn, Speaker};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use futures::StreamExt;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new().route("/chat", get(show_chat).post(send_message))
}

/// The most turns carried in the form; older turns drop off.
const MAX_TURNS: usize = 40;

#[derive(Debug, Default, Deserialize)]
struct ChatForm {
    #[serde(default)]
    message: String,
    mode: Option<String>,
    /// The conversation so far, as JSON.
    history: Option<String>,
}

async fn show_chat(State(state): State<AppState>, user: SignedIn) -> Markup {
    page::render(&state.site, Some(&user), Section::Chat, "Chat", chat_page(ChatMode::default(), &[], "", None))
}

async fn send_message(State(state): State<AppState>, user: SignedIn, Form(form): Form<ChatForm>) -> Response {
    let mut history: Vec<ChatTurn> =
        form.history.as_deref().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
    let mode = match form.mode.as_deref().map(str::parse::<ChatMode>).transpose() {
        Ok(mode) => mode.unwrap_or_default(),
        Err(invalid) => return WebError::from(invalid).into_response(),
    };
    let result = async {
        let message = ChatMessage::parse(&form.message)?;
        let mut stream = state.core.chat(mode, &history, &message).await?;
        let mut reply = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                ChatEvent::Text(text) => reply.push_str(&text),
                ChatEvent::Finished { .. } => break,
            }
        }
        Ok::<_, WebError>((message, reply))
    }
    .await;
    match result {
        Ok((message, reply)) => {
            history.push(ChatTurn { speaker: Speaker::User, text: message.as_str().to_string() });
            history.push(ChatTurn { speaker: Speaker::Assistant, text: reply });
            let keep_from = history.len().saturating_sub(MAX_TURNS);
            let history = &history[keep_from..];
            page::render(&state.site, Some(&user), Section::Chat, "Chat", chat_page(mode, history, "", None))
                .into_response()
        }
        Err(error) if error.status().is_server_error() => error.into_response(),
        Err(error) => {
            let message = error.message();
            let body = chat_page(mode, &history, &form.message, Some(&message));
            (error.status(), page::render(&state.site, Some(&user), Section::Chat, "Chat", body)).into_response()
        }
    }
}

fn chat_page(mode: ChatMode, history: &[ChatTurn], draft: &str, error: Option<&str>) -> Markup {
    let history_json = serde_json::to_string(history).unwrap_or_else(|_| "[]".into());
    html! {
        h1 { "Chat" }
        div.chat data-testid="conversation" {
            @for turn in history {
                div.turn.user[turn.speaker == Speaker::User].assistant[turn.speaker == Speaker::Assistant] { (turn.text) }
            }
        }
        (page::error_notice(error))
        form.stack method="post" action="/chat" {
            (crate::csrf::field())
            input type="hidden" name="history" value=(history_json);
            label { "Mode"
                select name="mode" {
                    @for choice in ChatMode::ALL {
                        option value=(choice.as_str()) selected[choice == mode] { (choice.label()) }
                    }
                }
            }
            label { "Message" textarea name="message" required maxlength="8000" { (draft) } }
            div.actions { button type="submit" { "Send" } }
        }
    }
}
