//! The Settings page: the signed-in person's defaults for new images, the same ones Discord's
//! `/settings`, `PUT /api/settings` and `atelier settings` change. The core checks them and
//! fills them in wherever the person makes images; this page only shows and sends them.

use atelier_shared::preferences::{PreferenceChange, Preferences};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings", get(show_settings).post(save_settings))
}

/// Aspect ratios the field suggests (any W:H between 1:4 and 4:1 is taken).
const ASPECTS: [&str; 9] = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21"];

/// The form as sent: every field, since the form shows them all. An empty field has no
/// default; an unticked box is not sent at all.
#[derive(Debug, Default, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    model: String,
    #[serde(default)]
    aspect: String,
    #[serde(default)]
    style: String,
    #[serde(default)]
    negative_prompt: String,
    private_results: Option<String>,
}

impl SettingsForm {
    fn preferences(&self) -> Preferences {
        let text = |value: &str| Some(value.to_string()).filter(|value| !value.trim().is_empty());
        Preferences {
            model: text(&self.model),
            aspect: text(&self.aspect),
            style: text(&self.style),
            negative_prompt: text(&self.negative_prompt),
            private_results: self.private_results.is_some(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Shown {
    saved: Option<String>,
}

async fn show_settings(
    State(state): State<AppState>,
    user: SignedIn,
    Query(shown): Query<Shown>,
) -> Result<Markup, WebError> {
    let preferences = state.core.preferences(&user.owner).await?;
    let notice = if shown.saved.is_some() { Notice::Saved } else { Notice::Nothing };
    Ok(page::render(
        &state.site,
        Some(&user),
        Section::Settings,
        "Settings",
        settings_page(&state, &preferences, notice),
    ))
}

async fn save_settings(State(state): State<AppState>, user: SignedIn, Form(form): Form<SettingsForm>) -> Response {
    let wanted = form.preferences();
    match state.core.change_preferences(&user.owner, PreferenceChange::replacing_with(wanted.clone())).await {
        // Back to the page, so reloading it does not send the form again.
        Ok(_) => Redirect::to("/settings?saved=1").into_response(),
        Err(error) => {
            let error = WebError::from(error);
            if error.status().is_server_error() {
                return error.into_response();
            }
            // Nothing was saved: the form comes back as it was typed, with the reason on top.
            let message = error.message();
            let body = settings_page(&state, &wanted, Notice::Error(&message));
            (error.status(), page::render(&state.site, Some(&user), Section::Settings, "Settings", body))
                .into_response()
        }
    }
}

enum Notice<'a> {
    Nothing,
    Saved,
    Error(&'a str),
}

fn settings_page(state: &AppState, preferences: &Preferences, notice: Notice<'_>) -> Markup {
    let models = state.core.models();
    let default_model = models.iter().find(|model| model.can_generate).map(|model| model.label.clone());
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    html! {
        h1 { "Settings" }
        p {
            "Your defaults for new images. They fill in whatever a request leaves out, wherever you make images: \
             the Generate page, the API, the command line, and Discord once your accounts are linked. What a \
             request says itself always wins; to leave out a default style or negative prompt for one request, \
             give it as " code { "none" } "."
        }
        @match notice {
            Notice::Nothing => {}
            Notice::Saved => p.notice.ok role="status" data-testid="settings-saved" { "Saved." },
            Notice::Error(message) => (page::error_notice(Some(message))),
        }
        form.stack method="post" action="/settings" data-testid="settings-form" {
            (crate::csrf::field())
            div.row {
                label { "Model"
                    select name="model" data-testid="settings-model" {
                        option value="" selected[preferences.model.is_none()] {
                            "No default" @if let Some(label) = &default_model { " (" (label) ")" }
                        }
                        @for model in models.iter().filter(|model| model.can_generate) {
                            option value=(model.alias) selected[preferences.model.as_deref() == Some(model.alias.as_str())] { (model.label) }
                        }
                        // A default set elsewhere under another name (a model id) stays shown as it is.
                        @if let Some(model) = &preferences.model {
                            @if !models.iter().any(|known| known.can_generate && known.alias == *model) {
                                option value=(model) selected { (model) }
                            }
                        }
                    }
                }
                label { "Shape " span.hint { "(W:H, such as 16:9)" }
                    input type="text" name="aspect" list="aspects" maxlength="9" value=(value(&preferences.aspect))
                        placeholder="1:1" data-testid="settings-aspect";
                    datalist #aspects { @for aspect in ASPECTS { option value=(aspect) {} } }
                }
                label { "Style"
                    select name="style" data-testid="settings-style" {
                        option value="" selected[preferences.style.is_none()] { "No default" }
                        @for style in state.core.style_presets().iter().copied() {
                            option value=(style) selected[preferences.style.as_deref() == Some(style)] { (style) }
                        }
                    }
                }
            }
            label { "Always leave out " span.hint { "(a negative prompt added to every request that has none)" }
                input type="text" name="negative_prompt" maxlength="1000" value=(value(&preferences.negative_prompt))
                    placeholder="blurry, text, watermark" data-testid="settings-negative";
            }
            label.check {
                input type="checkbox" name="private_results" value="1" checked[preferences.private_results]
                    data-testid="settings-private";
                " In Discord, show my results only to me"
            }
            div.actions {
                button type="submit" data-testid="save-settings" { "Save" }
            }
        }
    }
}
