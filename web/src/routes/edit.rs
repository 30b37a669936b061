//! The studio's edit page: pick an image from the gallery or upload one, choose the edit,
//! and keep editing the result.

use atelier_shared::engine::ModelInfo;
use atelier_shared::gallery::{ImageId, ImageRecord, ListFilter};
use atelier_shared::images::CheckedImage;
use atelier_shared::request::{EditFields, EditMode};
use atelier_shared::service::Kept;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new().route("/edit", get(show_edit).post(edit_image))
}

#[derive(Debug, Default, Deserialize)]
struct EditQuery {
    image: Option<String>,
}

/// What the edit form holds, as typed, so a refused edit can show it again unchanged.
#[derive(Debug, Default)]
struct EditForm {
    fields: EditFields,
    image_id: Option<String>,
    upload: Option<Bytes>,
    mask: Option<Bytes>,
}

async fn show_edit(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<EditQuery>,
) -> Result<Markup, WebError> {
    let source = match query.image.as_deref().map(ImageId::parse).transpose()? {
        Some(id) => Some(state.core.gallery().record(&user.owner, id).await?),
        None => None,
    };
    let recent = state.core.gallery().list(&user.owner, &ListFilter::default(), None, 12).await?.records;
    let form = EditForm { image_id: source.as_ref().map(|record| record.id.to_string()), ..EditForm::default() };
    Ok(page::render(
        &state.site,
        Some(&user),
        Section::Edit,
        "Edit",
        edit_page(&state.core.models(), source.as_ref(), &recent, &form, None),
    ))
}

async fn read_form(mut multipart: Multipart) -> Result<EditForm, WebError> {
    let mut form = EditForm::default();
    let unreadable = |_| WebError::BadRequest("The form could not be read: reload the page and try again.".into());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" | "mask" => {
                let bytes = field.bytes().await.map_err(unreadable)?;
                // A file input left empty still sends a part, with no bytes.
                if !bytes.is_empty() {
                    if name == "image" { form.upload = Some(bytes) } else { form.mask = Some(bytes) }
                }
            }
            _ => {
                let text = field.text().await.map_err(unreadable)?;
                let slot = match name.as_str() {
                    "mode" => {
                        form.fields.mode = text;
                        continue;
                    }
                    "image_id" => &mut form.image_id,
                    "prompt" => &mut form.fields.prompt,
                    "negative_prompt" => &mut form.fields.negative_prompt,
                    "mask_prompt" => &mut form.fields.mask_prompt,
                    "seed" => &mut form.fields.seed,
                    "similarity" => &mut form.fields.similarity,
                    "direction" => &mut form.fields.direction,
                    "model" => &mut form.fields.model,
                    _ => continue,
                };
                *slot = Some(text).filter(|text| !text.trim().is_empty());
            }
        }
    }
    Ok(form)
}

async fn edit_image(State(state): State<AppState>, user: SignedIn, multipart: Multipart) -> Response {
    let form = match read_form(multipart).await {
        Ok(form) => form,
        Err(error) => return error.into_response(),
    };
    match edit(&state, &user, &form).await {
        Ok(kept) => {
            let records: Vec<ImageRecord> = kept.into_iter().map(|kept| kept.record).collect();
            page::render(&state.site, Some(&user), Section::Edit, "Edited", edited(&records)).into_response()
        }
        Err(error) if error.status() == StatusCode::INTERNAL_SERVER_ERROR => error.into_response(),
        Err(error) => {
            let source = match form.image_id.as_deref().map(ImageId::parse) {
                Some(Ok(id)) => state.core.gallery().record(&user.owner, id).await.ok(),
                _ => None,
            };
            let recent = state
                .core
                .gallery()
                .list(&user.owner, &ListFilter::default(), None, 12)
                .await
                .map(|page| page.records)
                .unwrap_or_default();
            let message = error.message();
            let body = edit_page(&state.core.models(), source.as_ref(), &recent, &form, Some(&message));
            (error.status(), page::render(&state.site, Some(&user), Section::Edit, "Edit", body)).into_response()
        }
    }
}

async fn edit(state: &AppState, user: &SignedIn, form: &EditForm) -> Result<Vec<Kept>, WebError> {
    let actor = user.actor();
    let (parent, source) = match (&form.upload, form.image_id.as_deref()) {
        (Some(bytes), _) => (None, check_image(bytes.clone(), "the uploaded image").await?),
        (None, Some(id)) => {
            let id = ImageId::parse(id)?;
            (Some(id), state.core.source_image(&actor, id).await?)
        }
        (None, None) => {
            return Err(atelier_shared::Invalid::new("choose an image from your gallery or upload one").into());
        }
    };
    let mask = match &form.mask {
        Some(bytes) => Some(check_image(bytes.clone(), "the mask").await?),
        None => None,
    };
    let request = form.fields.parse(source, mask)?;
    Ok(state.core.edit(&actor, parent, &request).await?)
}

/// Checks an image off the async workers: decoding a large one takes a while.
async fn check_image(bytes: Bytes, what: &'static str) -> Result<CheckedImage, WebError> {
    tokio::task::spawn_blocking(move || CheckedImage::check(bytes, what))
        .await
        .map_err(|error| WebError::Core(atelier_shared::Error::operator("checking an image", error)))?
        .map_err(WebError::from)
}

fn edit_page(
    models: &[ModelInfo],
    source: Option<&ImageRecord>,
    recent: &[ImageRecord],
    form: &EditForm,
    error: Option<&str>,
) -> Markup {
    let fields = &form.fields;
    let value = |field: &Option<String>| field.clone().unwrap_or_default();
    html! {
        h1 { "Edit an image" }
        (page::error_notice(error))
        @if let Some(source) = source {
            p { img src=(format!("/images/{}/thumbnail", source.id)) alt="the image to edit" width="256"; }
        } @else if !recent.is_empty() {
            p { "Pick one of your images, or upload one below." }
            ul.grid {
                @for record in recent {
                    li { a href=(format!("/edit?image={}", record.id)) {
                        img src=(format!("/images/{}/thumbnail", record.id)) alt=(record.prompt.as_deref().unwrap_or("an image")) width="256";
                    } }
                }
            }
        }
        form.stack method="post" action=(crate::csrf::action("/edit")) enctype="multipart/form-data" {
            @if let Some(source) = source {
                input type="hidden" name="image_id" value=(source.id);
            } @else {
                label { "Image " span.hint { "(PNG, JPEG or WebP, up to 10 MiB)" }
                    input type="file" name="image" accept="image/png,image/jpeg,image/webp";
                }
            }
            label { "Edit"
                select name="mode" {
                    @for mode in EditMode::ALL {
                        option value=(mode.as_str()) selected[fields.mode == mode.as_str()] { (mode.as_str()) " — " (mode.describe()) }
                    }
                }
            }
            label { "Model " span.hint { "(automatic picks the right tool for the edit)" }
                select name="model" {
                    option value="" { "Automatic" }
                    @for model in models.iter().filter(|model| !model.edit_modes.is_empty()) {
                        option value=(model.alias) selected[fields.model.as_deref() == Some(model.alias.as_str())] {
                            (model.label) " — " (model.edit_modes.iter().map(|mode| mode.as_str()).collect::<Vec<_>>().join(", "))
                        }
                    }
                }
            }
            label { "Prompt " span.hint { "(what to paint, for inpaint, replace and recolor)" }
                input type="text" name="prompt" maxlength="2000" value=(value(&fields.prompt));
            }
            div.row {
                label { "Region in words " span.hint { "(such as: the sky)" }
                    input type="text" name="mask_prompt" maxlength="2000" value=(value(&fields.mask_prompt));
                }
                label { "…or a mask image " span.hint { "(black marks the region)" }
                    input type="file" name="mask" accept="image/png,image/jpeg,image/webp";
                }
            }
            div.row {
                label { "Similarity " span.hint { "(variations, 0.2–1.0)" }
                    input type="number" name="similarity" min="0.2" max="1" step="0.05" value=(value(&fields.similarity));
                }
                label { "Direction " span.hint { "(outpaint)" }
                    select name="direction" {
                        @for direction in ["all", "left", "right", "up", "down"] {
                            option value=(direction) selected[fields.direction.as_deref() == Some(direction)] { (direction) }
                        }
                    }
                }
                label { "Seed " span.hint { "(blank for random)" }
                    input type="number" name="seed" min="0" max="4294967295" value=(value(&fields.seed));
                }
            }
            div.actions { button type="submit" { "Apply the edit" } }
        }
    }
}

fn edited(records: &[ImageRecord]) -> Markup {
    html! {
        h1 { "Edited" }
        @for record in records {
            p { a href=(format!("/gallery/{}", record.id)) {
                img src=(format!("/images/{}/full", record.id)) alt="the edited image" style="max-width:100%;height:auto";
            } }
            div.actions {
                a.button href=(format!("/edit?image={}", record.id)) { "Keep editing" }
                a.button.secondary href=(format!("/gallery/{}", record.id)) { "Open in the gallery" }
            }
        }
    }
}
