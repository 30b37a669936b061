//! The studio's generate page: a prompt and the options the model has, and the results.

use atelier_shared::gallery::{ImageRecord, SessionName};
use atelier_shared::request::GenerationFields;
use atelier_shared::service::Kept;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    ("", "Square (1:1)"),
    ("16:9", "Wide (16:9)"),
    ("9:16", "Tall (9:16)"),
    ("4:3", "Landscape (4:3)"),
    ("3:4", "Portrait (3:4)"),
    ("3:2", "Photo (3:2)"),
    ("21:9", "Cinema (21:9)"),
];

/// The style presets Stability's models know; the demo engine also tints by them.
const STYLES: [&str; 17] = [
    "photographic",
    "cinematic",
    "digital-art",
    "anime",
    "comic-book",
    "fantasy-art",
    "analog-film",
    "neon-punk",
    "isometric",
    "low-poly",
    "origami",
    "line-art",
    "craft-clay",
    "3d-model",
    "pixel-art",
    "enhance",
    "tile-texture",
];

#[derive(Debug, Default, Deserialize)]
struct StudioForm {
    #[serde(flatten)]
    fields: GenerationFields,
    session: Option<String>,
}

async fn show_studio(State(state): State<AppState>, user: SignedIn, Query(form): Query<StudioForm>) -> Markup {
    page::render(&state.site, Some(&user), Section::Studio, "Generate", studio_form(&state, &form, None))
}

async fn generate_images(State(state): State<AppState>, user: SignedIn, Form(form): Form<StudioForm>) -> Response {
    match generate(&state, &user, &form).await {
        Ok(kept) => {
            let records: Vec<ImageRecord> = kept.into_iter().map(|kept| kept.record).collect();
            page::render(&state.site, Some(&user), Section::Studio, "Your images", results(&state, &form, &records))
                .into_response()
        }
        // Whatever went wrong, the form comes back as it was typed, with the reason on top.
        Err(error) => {
            let status = error.status();
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                return error.into_response();
            }
            let message = error.message();
            let form = studio_form(&state, &form, Some(&message));
            (status, page::render(&state.site, Some(&user), Section::Studio, "Generate", form)).into_response()
        }
    }
}

async fn generate(state: &AppState, user: &SignedIn, form: &StudioForm) -> Result<Vec<Kept>, WebError> {
    let request = form.fields.parse()?;
    let mut actor = user.actor();
    actor.session =
        form.session.as_deref().filter(|name| !name.trim().is_empty()).map(SessionName::parse).transpose()?;
    Ok(state.core.generate(&actor, &request).await?)
}

fn studio_form(state: &AppState, form: &StudioForm, error: Option<&str>) -> Markup {
    let fields = &form.fields;
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    let models = state.core.models();
    html! {
        h1 { "Generate" }
        (page::error_notice(error))
        form.stack method="post" action="/studio" {
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
                    }
                }
                label { "Shape"
                    select name="aspect" {
                        @for (ratio, label) in ASPECTS {
                            option value=(ratio) selected[fields.aspect.as_deref().unwrap_or("") == ratio] { (label) }
                        }
                    }
                }
                label { "Style"
                    select name="style" {
                        option value="" { "None" }
                        @for style in STYLES {
                            option value=(style) selected[fields.style.as_deref() == Some(style)] { (style) }
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
            div.actions { button type="submit" { "Generate" } }
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
                        img src=(format!("/images/{}/full", record.id)) alt=(form.fields.prompt) width="256";
                    }
                    span.hint { "seed " (record.seed) " · " (record.size) }
                }
            }
        }
        div.actions {
            a.button href=(format!("/studio?prompt={again}")) { "Make more with this prompt" }
            a.button.secondary href="/gallery" { "Open the gallery" }
        }
        (studio_form(state, form, None))
    }
}

/// Encodes text as a query-string value.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
