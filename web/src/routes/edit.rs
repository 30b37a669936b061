//! The studio's edit page: pick an image from the gallery or upload one, paint the region to
//! change on a canvas over it (or describe it in words), choose the edit, and keep editing the
//! result.
//!
//! The page works without scripts except for painting: the form posts as multipart, and
//! `edit.js` only adds the canvas, shows the fields the chosen mode reads, and puts the painted
//! mask into the form's `mask` file field at the image's own size.

use atelier_shared::engine::ModelInfo;
use atelier_shared::gallery::{ImageId, ImageRecord, ListFilter, SessionName};
use atelier_shared::images::MAX_UPLOAD_BYTES;
use atelier_shared::jobs::JobId;
use atelier_shared::request::{EditFields, EditMode, InputUse};
use atelier_shared::{Appeal, EditSource};
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new().route("/edit", get(show_edit).post(edit_image)).route("/static/edit.js", get(script))
}

/// How many of the visitor's latest images the strip under the editor offers as sources.
const RECENT_IMAGES: usize = 12;

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/edit.js"),
    )
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
    /// The session the result joins; blank keeps the source image's own.
    session: Option<String>,
}

/// An image id from an address or a form. A malformed id answers like a missing image (404),
/// so ids cannot be probed by their shape.
fn parse_image_id(text: &str) -> Result<ImageId, WebError> {
    ImageId::parse(text)
        .map_err(|_| WebError::Core(atelier_shared::Error::not_found("that image does not exist, or is not yours")))
}

async fn show_edit(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<EditQuery>,
) -> Result<Markup, WebError> {
    let blank_is_none = query.image.as_deref().map(str::trim).filter(|text| !text.is_empty());
    // The gallery answers only for the owner, so another person's id is a 404 here.
    let source = match blank_is_none.map(parse_image_id).transpose()? {
        Some(id) => Some(state.core.image_record(&user.actor().own(id)).await?),
        None => None,
    };
    let recent = recent_images(&state, &user).await?;
    let form = EditForm { image_id: source.as_ref().map(|record| record.id.to_string()), ..EditForm::default() };
    Ok(page::render(
        &state.site,
        Some(&user),
        Section::Edit,
        "Edit",
        edit_page(&state.core.models(), source.as_ref(), &recent, &form, None),
    ))
}

async fn recent_images(state: &AppState, user: &SignedIn) -> Result<Vec<ImageRecord>, WebError> {
    Ok(state.core.gallery_page(&user.actor(), &ListFilter::default(), None, RECENT_IMAGES).await?.records)
}

/// Turns a failure to read the form into a message: a body past the server's limit gets the
/// upload limit in words, anything else asks for a reload.
pub(super) fn unreadable(error: MultipartError) -> WebError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::Core(
            atelier_shared::Invalid::new(format!(
                "the upload is too large: each image may be at most {} MiB; make it smaller or save it as JPEG",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            ))
            .into(),
        )
    } else {
        WebError::BadRequest("The form could not be read: reload the page and try again.".into())
    }
}

async fn read_form(mut multipart: Multipart) -> Result<EditForm, WebError> {
    let mut form = EditForm::default();
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
                    "session" => &mut form.session,
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
        Err(error) => return refused(&state, &user, &EditForm::default(), error).await,
    };
    // Submitted as a job: the browser follows it on the job's page, never waiting on the model.
    match submit(&state, &user, &form).await {
        Ok(job) => Redirect::to(&format!("/jobs/{job}")).into_response(),
        Err(error) => refused(&state, &user, &form, error).await,
    }
}

/// The edit page again with the reason, the form as typed and the right status; failures on
/// our side get the plain error page (the form would not help).
async fn refused(state: &AppState, user: &SignedIn, form: &EditForm, error: WebError) -> Response {
    if error.status().is_server_error() {
        return error.into_response();
    }
    // The source is shown again only if it is the visitor's own; anything else has just been
    // refused as not found.
    let source = match form.image_id.as_deref().map(ImageId::parse) {
        Some(Ok(id)) => state.core.image_record(&user.actor().own(id)).await.ok(),
        _ => None,
    };
    let form_shown;
    let form = if source.is_none() && form.image_id.is_some() {
        form_shown = EditForm { image_id: None, fields: form.fields.clone(), ..EditForm::default() };
        &form_shown
    } else {
        form
    };
    let recent = recent_images(state, user).await.unwrap_or_default();
    let message = error.message();
    let body = edit_page(&state.core.models(), source.as_ref(), &recent, form, Some(&message));
    (error.status(), page::render(&state.site, Some(user), Section::Edit, "Edit", body)).into_response()
}

async fn submit(state: &AppState, user: &SignedIn, form: &EditForm) -> Result<JobId, WebError> {
    let mut actor = user.actor();
    actor.session = form.session.as_deref().map(SessionName::parse).transpose()?;
    // On this page a file chosen for upload replaces the gallery image picked before it.
    let gallery_image = match (&form.upload, form.image_id.as_deref()) {
        (None, Some(id)) => Some(actor.own(parse_image_id(id)?)),
        _ => None,
    };
    let Some(source) = EditSource::choose(form.upload.clone(), gallery_image)? else {
        return Err(atelier_shared::Invalid::new("choose an image from your gallery or upload one").into());
    };
    // The core refuses a missing prompt or region and a mask of another size than the image,
    // with the same words as the bot and the command line.
    let plan = state.core.plan_edit(&actor, source, form.mask.clone(), &form.fields).await?;
    Ok(state.core.submit_edit(&actor, &plan, Appeal::No).await?)
}

/// The inputs a mode reads, as the names `edit.js` matches against each field's `data-field`.
fn offered_inputs(mode: EditMode) -> (String, String) {
    let inputs = mode.inputs();
    let all = [
        ("prompt", inputs.prompt),
        ("negative-prompt", inputs.negative_prompt),
        ("region", inputs.region),
        ("similarity", inputs.similarity),
        ("direction", inputs.direction),
        ("seed", inputs.seed),
    ];
    let names = |wanted: fn(InputUse) -> bool| {
        all.iter().filter(|(_, used)| wanted(*used)).map(|(name, _)| *name).collect::<Vec<_>>().join(" ")
    };
    (names(InputUse::is_offered), names(|used| used == InputUse::Required))
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
        div.edit-layout {
            div.edit-canvas-column {
                // Painting needs the script, so the mask canvas and its tools stay hidden until
                // it runs. The canvas has the image's own pixel size, whatever size it is shown at.
                @if let Some(source) = source {
                    div.edit-stage #edit-stage {
                        img.edit-source src=(format!("/images/{}/full", source.id)) alt="the image to edit"
                            width=(source.size.width) height=(source.size.height);
                        canvas.edit-mask #mask-canvas data-testid="mask-canvas"
                            width=(source.size.width) height=(source.size.height) hidden {}
                    }
                    p.hint { "The source is " (source.size) " pixels. " a href="/edit" { "Choose another image" } }
                } @else {
                    // An upload is drawn on the preview by the script, which also sizes both canvases.
                    div.edit-stage #edit-stage hidden {
                        canvas.edit-preview #preview-canvas {}
                        canvas.edit-mask #mask-canvas data-testid="mask-canvas" hidden {}
                    }
                }
                div.mask-tools #mask-tools data-field="region" hidden {
                    p.hint { "Paint over the part to change, or describe it in words in the form." }
                    label { "Brush size"
                        input #brush-size type="range" min="4" max="200" value="40" data-testid="brush-size";
                    }
                    div.actions {
                        button.secondary #erase type="button" aria-pressed="false" data-testid="erase" { "Erase" }
                        button.secondary #clear-mask type="button" data-testid="clear-mask" { "Clear the mask" }
                    }
                }
            }
            form.stack #edit-form method="post" action=(crate::csrf::action("/edit")) enctype="multipart/form-data"
                data-testid="edit-form" {
                @if let Some(source) = source {
                    input type="hidden" name="image_id" value=(source.id);
                } @else {
                    label { "Image " span.hint { "(PNG, JPEG or WebP, up to " (MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB)" }
                        input #upload-image type="file" name="image" accept="image/png,image/jpeg,image/webp"
                            data-testid="upload-image";
                    }
                }
                label { "Edit"
                    select #edit-mode name="mode" data-testid="mode" {
                        @for mode in EditMode::ALL {
                            @let (offered, required) = offered_inputs(mode);
                            option value=(mode.as_str()) selected[fields.mode == mode.as_str()]
                                data-offers=(offered) data-requires=(required) {
                                (mode.as_str()) " — " (mode.describe())
                            }
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
                label data-field="prompt" { "Prompt " span.hint { "(what to paint; needed for inpaint, replace and recolor)" }
                    input type="text" name="prompt" maxlength="2000" value=(value(&fields.prompt)) data-testid="prompt";
                }
                label data-field="negative-prompt" { "Negative prompt " span.hint { "(what to leave out)" }
                    input type="text" name="negative_prompt" maxlength="2000" value=(value(&fields.negative_prompt));
                }
                div.row data-field="region" {
                    label { "Region in words " span.hint { "(such as: the sky; leave blank when you paint a mask)" }
                        input type="text" name="mask_prompt" maxlength="2000" value=(value(&fields.mask_prompt))
                            data-testid="mask-prompt";
                    }
                    label { "…or a mask image " span.hint { "(the image's own size; white marks the region to change, black what stays)" }
                        input #mask-file type="file" name="mask" accept="image/png,image/jpeg,image/webp";
                    }
                }
                div.row {
                    label data-field="similarity" { "Similarity " span.hint { "(variations, 0.2–1.0)" }
                        input type="number" name="similarity" min="0.2" max="1" step="0.05" value=(value(&fields.similarity));
                    }
                    label data-field="direction" { "Direction " span.hint { "(outpaint: the picture grows by half its size that way)" }
                        select name="direction" {
                            @for direction in ["all", "left", "right", "up", "down"] {
                                option value=(direction) selected[fields.direction.as_deref() == Some(direction)] { (direction) }
                            }
                        }
                    }
                    label data-field="seed" { "Seed " span.hint { "(blank for random)" }
                        input type="number" name="seed" min="0" max="4294967295" value=(value(&fields.seed));
                    }
                    label { "Session " span.hint { "(blank: the source image's own)" }
                        input type="text" name="session" maxlength="60" value=(value(&form.session)) data-testid="edit-session";
                    }
                }
                p.notice.error #edit-script-error role="alert" hidden {}
                div.actions { button type="submit" data-testid="apply-edit" { "Apply the edit" } }
            }
        }
        @if !recent.is_empty() {
            h2 { "Your recent images" }
            ul.edit-strip {
                @for record in recent {
                    li { a href=(format!("/edit?image={}", record.id))
                        aria-current=[source.is_some_and(|source| source.id == record.id).then_some("true")] {
                        img src=(format!("/images/{}/thumbnail", record.id)) loading="lazy"
                            alt=(record.prompt.as_deref().unwrap_or("an edited image")) width="96";
                    } }
                }
            }
        }
        script src="/static/edit.js" defer {}
    }
}

pub(super) fn edited(records: &[ImageRecord]) -> Markup {
    html! {
        h1 { "Edited" }
        @for record in records {
            p { a href=(format!("/gallery/{}", record.id)) {
                img.edit-result src=(format!("/images/{}/full", record.id)) alt="the edited image"
                    width=(record.size.width) height=(record.size.height) data-testid="edit-result";
            } }
            p.hint {
                (record.parameters.edit_mode.map(|mode| mode.as_str()).unwrap_or("edit")) ", " (record.size) " pixels"
                @if record.parent.is_some() { ", made from an image in your gallery" } @else { ", from an upload" }
                "."
            }
            div.actions {
                a.button href=(format!("/edit?image={}", record.id)) data-testid="keep-editing" { "Keep editing" }
                a.button.secondary href=(format!("/gallery/{}", record.id)) { "Open in the gallery" }
                @if let Some(parent) = record.parent {
                    a.button.secondary href=(format!("/edit?image={parent}")) { "Edit the source again" }
                }
            }
        }
    }
}
