//! The studio's generate page: a prompt and the options the model has, and the results.

use atelier_shared::Appeal;
use atelier_shared::gallery::{ImageRecord, SessionName};
use atelier_shared::jobs::JobId;
use atelier_shared::request::GenerationFields;
use axum::extract::{Query, State};
use axum::http::StatusCode;
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
    Router::new().route("/studio", get(show_studio).post(generate_images))
}

/// The aspect ratios offered in the menu; the first is the default.
const ASPECTS: [(&str, &str); 7] = [
    // Explicit, so choosing it wins over a default shape from Settings.
    ("1:1", "Square (1:1)"),
    ("16:9", "Wide (16:9)"),
    ("9:16", "Tall (9:16)"),
    ("4:3", "Landscape (4:3)"),
    ("3:4", "Portrait (3:4)"),
    ("3:2", "Photo (3:2)"),
    ("21:9", "Cinema (21:9)"),
];

/// The style presets on offer: the ones Stability's models know (other engines say which
/// they take when asked for one).

#[derive(Debug, Default, Deserialize)]
struct StudioForm {
    #[serde(flatten)]
    fields: GenerationFields,
    session: Option<String>,
    /// Set when the visitor asks for a refused prompt to be looked at again.
    appeal: Option<String>,
}

/// What the form shows above itself after a refusal.
enum Notice<'a> {
    Nothing,
    /// Something to change.
    Error(&'a str),
    /// The safety check refused: the visitor may appeal once.
    Refused(&'a str),
}

async fn show_studio(State(state): State<AppState>, user: SignedIn, Query(mut form): Query<StudioForm>) -> Markup {
    // The form starts from the person's defaults (Settings), so what is sent is what is shown.
    // Without them (the store cannot be read) it still works: the core fills them in or, like
    // here, goes ahead without them.
    if let Ok(preferences) = state.core.preferences(&user.owner).await {
        preferences.fill_in(&mut form.fields);
    }
    page::render(&state.site, Some(&user), Section::Studio, "Generate", studio_form(&state, &form, Notice::Nothing))
}

/// Checks the request and submits it as a job, then sends the browser to the job's page: the
/// request never waits on the model (a proxy in front may give up on a request after 60 s).
async fn generate_images(State(state): State<AppState>, user: SignedIn, Form(form): Form<StudioForm>) -> Response {
    match submit(&state, &user, &form).await {
        Ok(job) => Redirect::to(&format!("/jobs/{job}")).into_response(),
        // Whatever went wrong, the form comes back as it was typed, with the reason on top.
        Err(error) => {
            let status = error.status();
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                return error.into_response();
            }
            let message = error.message();
            (status, form_page(&state, &user, &form, Notice::Error(&message))).into_response()
        }
    }
}

async fn submit(state: &AppState, user: &SignedIn, form: &StudioForm) -> Result<JobId, WebError> {
    let plan = state.core.plan_generation(&user.actor(), &form.fields).await?;
    let mut actor = user.actor();
    actor.session =
        form.session.as_deref().filter(|name| !name.trim().is_empty()).map(SessionName::parse).transpose()?;
    let appeal = if form.appeal.is_some() { Appeal::Asked } else { Appeal::No };
    Ok(state.core.submit_generation(&actor, &plan, appeal).await?)
}

/// The generate page with the form as typed and a notice on top.
fn form_page(state: &AppState, user: &SignedIn, form: &StudioForm, notice: Notice<'_>) -> Markup {
    page::render(&state.site, Some(user), Section::Studio, "Generate", studio_form(state, form, notice))
}

/// The generate page for a job that ended without images: the request as it was typed, and
/// why; an Appeal button when the refusal may be appealed.
pub(super) fn refused_job(
    state: &AppState,
    user: &SignedIn,
    fields: GenerationFields,
    message: &str,
    appealable: bool,
) -> Markup {
    let form = StudioForm { fields, ..StudioForm::default() };
    let notice = if appealable { Notice::Refused(message) } else { Notice::Error(message) };
    form_page(state, user, &form, notice)
}

/// The results of a finished generation, with the form to make more.
pub(super) fn finished_job(state: &AppState, fields: GenerationFields, records: &[ImageRecord]) -> Markup {
    results(state, &StudioForm { fields, ..StudioForm::default() }, records)
}

fn studio_form(state: &AppState, form: &StudioForm, notice: Notice<'_>) -> Markup {
    let fields = &form.fields;
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    let models = state.core.models();
    html! {
        h1 { "Generate" }
        @match notice {
            Notice::Nothing => {}
            Notice::Error(message) => (page::error_notice(Some(message))),
            Notice::Refused(message) => {
                (page::error_notice(Some(message)))
                p.hint { "A stronger model can look at the prompt once more. Appeal only if you believe the refusal is a mistake." }
            }
        }
        form.stack method="post" action="/studio" {
            (crate::csrf::field())
            label { "Prompt"
                textarea name="prompt" required maxlength="2000"
                    placeholder="a lighthouse in a storm, oil painting, dramatic light" { (fields.prompt) }
            }
            label { "Negative prompt " span.hint { "(what to leave out)" }
                input type="text" name="negative_prompt" value=(value(&fields.negative_prompt)) placeholder="blurry, text, watermark";
            }
            div.row {
                label { "Model"
                    select name="model" {
                        @for model in models.iter().filter(|model| model.can_generate) {
                            option value=(model.alias) selected[fields.model.as_deref() == Some(model.alias.as_str())] { (model.label) }
                        }
                        @if let Some(other) = unlisted(&fields.model, &models.iter().map(|model| model.alias.as_str()).collect::<Vec<_>>()) {
                            option value=(other) selected { (other) }
                        }
                    }
                }
                label { "Shape"
                    select name="aspect" {
                        @for (ratio, label) in ASPECTS {
                            option value=(ratio) selected[fields.aspect.as_deref().unwrap_or("1:1") == ratio] { (label) }
                        }
                        @if let Some(other) = unlisted(&fields.aspect, &ASPECTS.map(|(ratio, _)| ratio)) {
                            option value=(other) selected { (other) }
                        }
                    }
                }
                label { "Style"
                    select name="style" {
                        // `none`, so choosing it wins over a default style from Settings.
                        option value="none" { "None" }
                        @for style in state.core.style_presets().iter().copied() {
                            option value=(style) selected[fields.style.as_deref() == Some(style)] { (style) }
                        }
                        @if let Some(other) = unlisted(&fields.style, &[&["none"][..], state.core.style_presets()].concat()) {
                            option value=(other) selected { (other) }
                        }
                    }
                }
            }
            div.row {
                label { "Seed " span.hint { "(blank for random)" }
                    input type="number" name="seed" min="0" max="4294967295" value=(value(&fields.seed));
                }
                label { "Images"
                    input type="number" name="count" min="1" max="4" value=(fields.count.clone().unwrap_or_else(|| "1".into()));
                }
                label { "Colours " span.hint { "(titan-v2, nova-canvas: #RRGGBB, …)" }
                    input type="text" name="colors" value=(value(&fields.colors)) placeholder="#1B4F72, #F4D03F";
                }
                label { "Session " span.hint { "(optional group name)" }
                    input type="text" name="session" maxlength="60" value=(value(&form.session));
                }
            }
            @let tunable: Vec<_> = state.core.models().into_iter().filter(|model| model.can_generate && !model.tuning.is_empty()).collect();
            details.advanced open[fields.cfg_scale.is_some() || fields.steps.is_some()] {
                summary { "Model settings" }
                p.hint {
                    @if tunable.is_empty() { "None of the models here takes these; leave them empty." }
                    @else {
                        "Only some models take these; the others refuse them. "
                        @for (index, model) in tunable.iter().enumerate() {
                            @if index > 0 { "; " }
                            strong { (model.alias) } ": " (model.tuning.join(", "))
                        }
                        "."
                    }
                }
                div.row {
                    label { "CFG scale " span.hint { "(how closely to follow the prompt)" }
                        input type="number" name="cfg_scale" step="0.1" min="0" max="35" value=(value(&fields.cfg_scale))
                            data-testid="cfg-scale";
                    }
                    label { "Steps"
                        input type="number" name="steps" min="10" max="50" value=(value(&fields.steps)) data-testid="steps";
                    }
                }
            }
            div.actions {
                button type="submit" data-testid="generate" { "Generate" }
                @if matches!(notice, Notice::Refused(_)) {
                    button.secondary type="submit" name="appeal" value="1" data-testid="appeal" { "Appeal and generate" }
                }
            }
        }
    }
}

fn results(state: &AppState, form: &StudioForm, records: &[ImageRecord]) -> Markup {
    let again = query_value(&form.fields.prompt);
    html! {
        h1 { "Your images" }
        p.notice.ok role="status" {
            (records.len()) " new " (if records.len() == 1 { "image" } else { "images" }) " in your gallery."
        }
        ul.grid.results {
            @for record in records {
                li {
                    a href=(format!("/gallery/{}", record.id)) {
                        img src=(format!("/images/{}/full", record.id)) alt=(form.fields.prompt) width="256"
                            data-testid="result-image";
                    }
                    span.hint { "seed " (record.seed) " · " (record.size) }
                }
            }
        }
        div.actions {
            a.button href=(format!("/studio?prompt={again}")) { "Make more with this prompt" }
            a.button.secondary href="/gallery" { "Open the gallery" }
        }
        (studio_form(state, form, Notice::Nothing))
    }
}

/// A value a menu does not offer (a default from Settings, say), so the menu can show it
/// chosen rather than fall back to its first entry.
fn unlisted<'a>(value: &'a Option<String>, offered: &[&str]) -> Option<&'a str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty() && !offered.contains(value))
}

/// Encodes text as a query-string value.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
