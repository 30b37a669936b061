//! The gallery: the signed-in user's images newest first, an image's page with its prompt,
//! parameters and lineage, and the image bytes themselves (served only to their owner).

use atelier_shared::gallery::{
    DOWNLOAD_URL_LIFETIME, ImageId, ImageRecord, ListFilter, OriginKind, SessionName, SessionSummary, Variant,
};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};
use crate::routes::studio::query_value;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gallery", get(show_gallery))
        .route("/gallery/{id}", get(show_image))
        .route("/gallery/{id}/delete", post(delete_image))
        .route("/gallery/{id}/publish", post(publish_image))
        .route("/gallery/{id}/unpublish", post(unpublish_image))
        .route("/gallery/sessions/rename", post(rename_session))
        .route("/gallery/sessions/delete", post(delete_session))
        .route("/images/{id}/{variant}", get(image_bytes))
}

/// Images per gallery page.
const PAGE_SIZE: usize = 48;

#[derive(Debug, Default, Deserialize)]
struct GalleryQuery {
    cursor: Option<String>,
    session: Option<String>,
    source: Option<String>,
}

async fn show_gallery(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<GalleryQuery>,
) -> Result<Markup, WebError> {
    let blank_is_none =
        |text: &Option<String>| text.as_deref().map(str::trim).filter(|text| !text.is_empty()).map(String::from);
    let session = blank_is_none(&query.session);
    let source = blank_is_none(&query.source);
    let filter = ListFilter {
        session: session.as_deref().map(SessionName::parse).transpose()?,
        origin: source.as_deref().map(OriginKind::parse).transpose()?,
    };
    let actor = user.actor();
    let sessions = state.core.gallery_sessions(&actor).await?;
    let page_of_images = state.core.gallery_page(&actor, &filter, query.cursor.as_deref(), PAGE_SIZE).await?;
    let chosen = filter.session.as_ref().and_then(|name| sessions.iter().find(|session| session.name == *name));
    let next = page_of_images.next_cursor.as_ref().map(|cursor| {
        let mut link = format!("/gallery?cursor={}", query_value(cursor));
        if let Some(session) = &session {
            link.push_str(&format!("&session={}", query_value(session)));
        }
        if let Some(source) = &source {
            link.push_str(&format!("&source={}", query_value(source)));
        }
        link
    });
    let content = html! {
        h1 { "Gallery" }
        form.row method="get" action="/gallery" {
            label { "Session "
                select name="session" data-testid="session-filter" {
                    option value="" { "All images" }
                    @for listed in &sessions {
                        option value=(listed.name.as_str()) selected[chosen.is_some_and(|chosen| chosen.name == listed.name)] {
                            (listed.name.as_str()) " (" (listed.images) ")"
                        }
                    }
                    // A session asked for by name that holds no images: shown, so the filter says what it shows.
                    @if let (Some(name), None) = (&filter.session, chosen) {
                        option value=(name.as_str()) selected { (name.as_str()) " (0)" }
                    }
                }
            }
            label { "Source "
                select name="source" {
                    option value="" { "Everywhere" }
                    @for kind in [OriginKind::Web, OriginKind::Discord, OriginKind::Cli] {
                        option value=(kind.as_str()) selected[source.as_deref() == Some(kind.as_str())] { (kind.as_str()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        @if let Some(chosen) = chosen {
            (session_tools(chosen))
        }
        @if query.cursor.is_none() && session.is_none() && source.is_none() {
            // The newest page, unfiltered: images made anywhere (Discord, the API, another
            // tab) are added as they are kept.
            (super::live_gallery::live_grid(&page_of_images.records))
        } @else if page_of_images.records.is_empty() {
            p { "No images here yet. " a href="/studio" { "Make one" } "." }
        } @else {
            (page::thumbnails(&page_of_images.records))
        }
        @if let Some(next) = next {
            p { a.button.secondary href=(next) rel="next" { "Older images" } }
        }
    };
    Ok(page::render(&state.site, Some(&user), Section::Gallery, "Gallery", content))
}

/// Renaming and deleting the session the gallery shows.
fn session_tools(session: &SessionSummary) -> Markup {
    let name = session.name.as_str();
    html! {
        section.session-tools data-testid="session-tools" {
            form.row method="post" action="/gallery/sessions/rename" {
                (crate::csrf::field())
                input type="hidden" name="session" value=(name);
                label { "Rename “" (name) "” to"
                    input type="text" name="new_name" required maxlength="60" value=(name) data-testid="session-new-name";
                }
                button.secondary type="submit" data-testid="rename-session" { "Rename" }
            }
            form.row method="post" action="/gallery/sessions/delete" {
                (crate::csrf::field())
                input type="hidden" name="session" value=(name);
                button.danger type="submit" data-testid="delete-session" { "Delete the session" }
                span.hint { "Its " (session.images) " " (if session.images == 1 { "image stays" } else { "images stay" }) " in your gallery; only the name goes." }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct SessionForm {
    session: String,
    #[serde(default)]
    new_name: String,
}

async fn rename_session(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SessionForm>,
) -> Result<Redirect, WebError> {
    let (from, to) = (SessionName::parse(&form.session)?, SessionName::parse(&form.new_name)?);
    state.core.rename_session(&user.actor(), &from, &to).await?;
    Ok(Redirect::to(&format!("/gallery?session={}", query_value(to.as_str()))))
}

async fn delete_session(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SessionForm>,
) -> Result<Redirect, WebError> {
    state.core.delete_session(&user.actor(), &SessionName::parse(&form.session)?).await?;
    Ok(Redirect::to("/gallery"))
}

fn parse_id(text: &str) -> Result<ImageId, WebError> {
    ImageId::parse(text)
        .map_err(|_| WebError::Core(atelier_shared::Error::not_found("there is no image at this address")))
}

async fn show_image(State(state): State<AppState>, user: SignedIn, Path(id): Path<String>) -> Result<Markup, WebError> {
    let id = parse_id(&id)?;
    let image = user.actor().own(id);
    let record = state.core.image_record(&image).await?;
    let children = state.core.image_children(&image).await?;
    let published = state.core.is_published(&image).await?;
    let title = record.prompt.clone().unwrap_or_else(|| "An edited image".into());
    Ok(page::render(&state.site, Some(&user), Section::Gallery, &title, image_page(&record, &children, published)))
}

fn image_page(record: &ImageRecord, children: &[ImageRecord], published: bool) -> Markup {
    let full = format!("/images/{}/full", record.id);
    html! {
        div.detail {
            div {
                img.full src=(full) alt=(record.prompt.as_deref().unwrap_or("an edited image"))
                    width=(record.size.width) height=(record.size.height);
            }
            div {
                h1 { (record.prompt.as_deref().unwrap_or("An edited image")) }
                dl.facts {
                    @if let Some(negative) = &record.negative_prompt { dt { "Negative prompt" } dd { (negative) } }
                    dt { "Model" } dd { (record.model_id) " (" (record.model_family) ")" }
                    dt { "Engine" } dd { (record.engine) @if record.engine == atelier_shared::engine::EngineKind::Demo { " — drawn locally, no model was called" } }
                    dt { "Seed" } dd { (record.seed) }
                    dt { "Size" } dd { (record.size) }
                    @if let Some(style) = &record.parameters.style { dt { "Style" } dd { (style) } }
                    @if !record.parameters.colors.is_empty() { dt { "Colours" } dd { (record.parameters.colors.join(", ")) } }
                    @if let Some(mode) = record.parameters.edit_mode { dt { "Edit" } dd { (mode) } }
                    @if let Some(mask) = &record.parameters.mask_prompt { dt { "Region" } dd { (mask) } }
                    @if let Some(session) = &record.session { dt { "Session" } dd { (session.as_str()) } }
                    dt { "Made" } dd { (record.created_at.date()) " from " (record.origin.kind().as_str()) }
                    @if let Some(parent) = record.parent {
                        dt { "Made from" } dd { a href=(format!("/gallery/{parent}")) { "the parent image" } }
                    }
                }
                @if !children.is_empty() {
                    h2 { "Made from this image" }
                    (page::thumbnails(children))
                }
                div.actions {
                    a.button href=(full) download=(format!("atelier-{}.{}", record.id, record.extension)) { "Download" }
                    @if let Some(prompt) = &record.prompt {
                        a.button.secondary href=(format!("/studio?prompt={}", query_value(prompt))) data-testid="use-this-prompt" { "Use this prompt" }
                    }
                    a.button.secondary href=(format!("/edit?image={}", record.id)) data-testid="edit-this-image" { "Edit this image" }
                    @if published {
                        a.button.secondary href=(format!("/p/{}", record.id)) data-testid="public-page" { "Public page" }
                        form method="post" action=(format!("/gallery/{}/unpublish", record.id)) {
                            (crate::csrf::field())
                            button.secondary type="submit" data-testid="unpublish-image" { "Unpublish" }
                        }
                    } @else {
                        form method="post" action=(format!("/gallery/{}/publish", record.id)) {
                            (crate::csrf::field())
                            button.secondary type="submit" data-testid="publish-image"
                                title="Anyone with the link can see it, and its server's gallery lists it" { "Publish" }
                        }
                    }
                    form method="post" action=(format!("/gallery/{}/delete", record.id)) {
                        (crate::csrf::field())
                        button.danger type="submit" data-testid="delete-image" { "Delete" }
                    }
                }
            }
        }
    }
}

async fn delete_image(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    let actor = user.actor();
    state.core.delete_image(&actor, &actor.own(id)).await?;
    Ok(Redirect::to("/gallery"))
}

async fn publish_image(state: State<AppState>, user: SignedIn, id: Path<String>) -> Result<Redirect, WebError> {
    set_published(state, user, id, true).await
}

async fn unpublish_image(state: State<AppState>, user: SignedIn, id: Path<String>) -> Result<Redirect, WebError> {
    set_published(state, user, id, false).await
}

/// Publishes or unpublishes one of the signed-in person's images, back to its page.
async fn set_published(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    publish: bool,
) -> Result<Redirect, WebError> {
    let id = parse_id(&id)?;
    let actor = user.actor();
    let image = actor.own(id);
    match publish {
        true => state.core.publish(&actor, &image).await.map(drop)?,
        false => state.core.unpublish(&actor, &image).await?,
    }
    Ok(Redirect::to(&format!("/gallery/{id}")))
}

async fn image_bytes(
    State(state): State<AppState>,
    user: SignedIn,
    Path((id, variant)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let variant = match variant.as_str() {
        "full" => Variant::Full,
        "thumbnail" => Variant::Thumbnail,
        _ => return Err(WebError::Core(atelier_shared::Error::not_found("there is no such image variant"))),
    };
    let image = user.actor().own(id);
    // A store that offers download URLs (S3) serves the bytes itself: the bucket stays
    // private, and the URL works for minutes only. The URL is made for a key under the
    // signed-in owner's own folder (after reading the record, for a full image), so another
    // owner's id never leads to their image. The browser may reuse the redirect only while
    // the URL it points to still has time left.
    if let Some(url) = state.core.image_download_url(&image, variant).await? {
        let reuse_for = DOWNLOAD_URL_LIFETIME.as_secs() / 2;
        return Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, url), (header::CACHE_CONTROL, format!("private, max-age={reuse_for}"))],
        )
            .into_response());
    }
    let (bytes, media_type) = state.core.image_file(&image, variant).await?;
    // Images never change once stored, so the browser may keep them; `private` keeps shared
    // caches (CloudFront) from serving one user's image to another.
    Ok((
        [(header::CONTENT_TYPE, media_type), (header::CACHE_CONTROL, "private, max-age=86400, immutable".into())],
        bytes,
    )
        .into_response())
}
