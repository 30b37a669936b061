//! The start page and the stylesheet.

use atelier_shared::gallery::ListFilter;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use maud::{Markup, html};

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(show_home)).route("/static/atelier.css", get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/atelier.css"),
    )
}

async fn show_home(State(state): State<AppState>, user: Result<SignedIn, WebError>) -> Result<Markup, WebError> {
    let user = user.ok();
    let latest = match &user {
        Some(user) => state.core.gallery_page(&user.actor(), &ListFilter::default(), None, 8).await?.records,
        None => Vec::new(),
    };
    let content = html! {
        h1 { "Make images together" }
        p {
            "Atelier turns prompts into pictures with Amazon Bedrock's image models, helps you write better prompts, \
             edits what you made, and keeps every image with its prompt and history, here and in Discord."
        }
        @if user.is_some() {
            form.stack method="post" action="/studio" {
                (crate::csrf::field())
                label { "What should we make?"
                    textarea name="prompt" required placeholder="a lighthouse in a storm, oil painting, dramatic light" {}
                }
                div.actions { button type="submit" data-testid="generate" { "Generate" } a.button.secondary href="/check" { "Check the prompt first" } }
            }
            @if !latest.is_empty() {
                h2 { "Your latest images" }
                (page::thumbnails(&latest))
                p { a href="/gallery" { "See the whole gallery" } }
            }
        } @else {
            p.notice.error { "You are not signed in: this installation has no way to sign you in yet." }
        }
    };
    Ok(page::render(&state.site, user.as_ref(), Section::Home, "Atelier", content))
}
