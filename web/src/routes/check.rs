//! The prompt checker: the structured critique, with one click to generate from an improved prompt.

use atelier_shared::checker::Critique;
use atelier_shared::request::Prompt;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};
use crate::routes::studio::query_value;

pub fn router() -> Router<AppState> {
    Router::new().route("/check", get(show_checker).post(check_prompt))
}

#[derive(Debug, Default, Deserialize)]
struct CheckForm {
    #[serde(default)]
    prompt: String,
}

async fn show_checker(State(state): State<AppState>, user: SignedIn, Query(form): Query<CheckForm>) -> Markup {
    page::render(&state.site, Some(&user), Section::Check, "Prompt checker", checker_page(&form.prompt, None, None))
}

async fn check_prompt(State(state): State<AppState>, user: SignedIn, Form(form): Form<CheckForm>) -> Response {
    let result = async {
        let prompt = Prompt::parse(&form.prompt)?;
        Ok::<_, WebError>(state.core.check_prompt(&user.actor(), &prompt).await?)
    }
    .await;
    match result {
        Ok(critique) => page::render(
            &state.site,
            Some(&user),
            Section::Check,
            "Prompt checker",
            checker_page(&form.prompt, Some(&critique), None),
        )
        .into_response(),
        Err(error) if error.status().is_server_error() => error.into_response(),
        Err(error) => {
            let message = error.message();
            let body = checker_page(&form.prompt, None, Some(&message));
            (error.status(), page::render(&state.site, Some(&user), Section::Check, "Prompt checker", body))
                .into_response()
        }
    }
}

fn list(title: &str, items: &[String]) -> Markup {
    html! {
        @if !items.is_empty() {
            section { h3 { (title) } ul { @for item in items { li { (item) } } } }
        }
    }
}

fn checker_page(prompt: &str, critique: Option<&Critique>, error: Option<&str>) -> Markup {
    html! {
        h1 { "Prompt checker" }
        p { "Get a critique of a prompt and improved versions for each model family before you spend a generation." }
        (page::error_notice(error))
        form.stack method="post" action="/check" {
            (crate::csrf::field())
            label { "Prompt" textarea name="prompt" required maxlength="2000" { (prompt) } }
            div.actions { button type="submit" { "Check" } }
        }
        @if let Some(critique) = critique {
            div.critique data-testid="critique" {
                h2 { "Critique " span.hint { "by " (critique.reviewer) } }
                (list("Strengths", &critique.strengths))
                (list("To improve", &critique.improvements))
                (list("Suggestions", &critique.suggestions))
                section {
                    h3 { "Improved prompts" }
                    @for improved in &critique.improved_prompts {
                        p { strong { (improved.family) ": " } (improved.prompt) " "
                            a.button.secondary href=(format!("/studio?prompt={}", query_value(&improved.prompt))) { "Generate with this prompt" }
                        }
                    }
                }
                @if !critique.negative_prompt_suggestions.is_empty() {
                    section { h3 { "Negative prompt" } p { (critique.negative_prompt_suggestions.join(", ")) } }
                }
                p { (critique.explanation) }
            }
        }
    }
}
