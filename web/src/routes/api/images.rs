//! The caller's gallery. Every lookup goes through the core with the caller's own owner, so
//! another user's image id is "not found", the same as a missing one.

use atelier_shared::gallery::{DOWNLOAD_URL_LIFETIME, ImageId, ListFilter, OriginKind, SessionName, Variant};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::caller::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::views::{ImageDetail, ImagePage, ImageView, PublishedView};
use crate::AppState;

/// Images per page when the caller does not say.
const DEFAULT_PAGE_SIZE: usize = 48;

/// How to page and narrow the gallery (described for the document in `list_images`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    session: Option<String>,
    source: Option<String>,
    limit: Option<usize>,
}

/// An image id from the path; a malformed one names no image, so it is "not found" too.
pub fn parse_id(text: &str) -> Result<ImageId, ApiError> {
    ImageId::parse(text).map_err(|_| atelier_shared::Error::not_found("there is no image with this id").into())
}

fn blank_is_none(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

/// The caller's images, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/images",
    tag = "images",
    params(
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("session" = Option<String>, Query, description = "Only images of this session"),
        ("source" = Option<String>, Query, description = "Only images made here: web, discord or cli"),
        ("limit" = Option<u32>, Query, description = "Images per page, 1 to 100 (48 when absent)"),
    ),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "A page of images", body = ImagePage),
        (status = 400, description = "A filter or cursor is wrong", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn list_images(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ImagePage>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!(
            "The query could not be read ({}): use cursor, session, source and limit",
            rejection.body_text()
        ))
    })?;
    let filter = ListFilter {
        session: blank_is_none(query.session.as_deref()).map(SessionName::parse).transpose()?,
        origin: blank_is_none(query.source.as_deref()).map(OriginKind::parse).transpose()?,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    let page = state.core.gallery_page(&caller.actor(), &filter, blank_is_none(query.cursor.as_deref()), limit).await?;
    Ok(Json(ImagePage { images: page.records.iter().map(ImageView::from).collect(), next_cursor: page.next_cursor }))
}

/// One image's record, with the images made from it.
#[utoipa::path(
    get,
    path = "/api/images/{id}",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The image", body = ImageDetail),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn image_detail(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<ImageDetail>, ApiError> {
    let id = parse_id(&id)?;
    let image = caller.actor().own(id);
    let record = state.core.image_record(&image).await?;
    let children = state.core.image_children(&image).await?;
    Ok(Json(ImageDetail { image: ImageView::from(&record), children: children.iter().map(ImageView::from).collect() }))
}

/// Deletes an image: its record, its bytes and its thumbnail.
#[utoipa::path(
    delete,
    path = "/api/images/{id}",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn delete_image(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let actor = caller.actor();
    state.core.delete_image(&actor, &actor.own(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publishes an image: it gets a public page anyone can open without signing in, and a place
/// in the public gallery of the Discord server it was made in. Publishing again changes nothing.
#[utoipa::path(
    post,
    path = "/api/images/{id}/publish",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Published: where to see it", body = PublishedView),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn publish_image(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<PublishedView>, ApiError> {
    let id = parse_id(&id)?;
    let actor = caller.actor();
    let published = state.core.publish(&actor, &actor.own(id)).await?;
    let base = &state.site.public_url;
    let absolute = |path: String| base.join(&path).map(|url| url.to_string()).unwrap_or(path);
    Ok(Json(PublishedView {
        id: id.to_string(),
        public_url: absolute(format!("p/{id}")),
        server_gallery_url: published.guild_id.map(|guild_id| absolute(format!("servers/{guild_id}"))),
    }))
}

/// Takes an image off its public page and its server's gallery.
#[utoipa::path(
    delete,
    path = "/api/images/{id}/publish",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "Unpublished (or it was not published)"),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn unpublish_image(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let actor = caller.actor();
    state.core.unpublish(&actor, &actor.own(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The full image, as the model made it.
#[utoipa::path(
    get,
    path = "/api/images/{id}/file",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The image's bytes", content(("image/png"), ("image/jpeg"), ("image/webp"))),
        (status = 303, description = "Where to download it: a URL that works for five minutes (S3 stores)"),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn image_file(State(state): State<AppState>, caller: ApiCaller, Path(id): Path<String>) -> Response {
    image_bytes(&state, &caller, &id, Variant::Full).await.unwrap_or_else(IntoResponse::into_response)
}

/// A small JPEG of the image.
#[utoipa::path(
    get,
    path = "/api/images/{id}/thumbnail",
    tag = "images",
    params(("id" = String, Path, description = "The image's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The thumbnail's bytes", content(("image/jpeg"))),
        (status = 303, description = "Where to download it: a URL that works for five minutes (S3 stores)"),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such image in the caller's gallery", body = ErrorBody),
    )
)]
pub async fn image_thumbnail(State(state): State<AppState>, caller: ApiCaller, Path(id): Path<String>) -> Response {
    image_bytes(&state, &caller, &id, Variant::Thumbnail).await.unwrap_or_else(IntoResponse::into_response)
}

/// The bytes of an image, or a redirect to a short-lived download URL when the store offers
/// one (S3), exactly as the gallery pages serve them.
async fn image_bytes(state: &AppState, caller: &ApiCaller, id: &str, variant: Variant) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let image = caller.actor().own(id);
    // The URL is made for a key under the caller's own folder (after reading the record, for
    // a full image), so another owner's id never leads to their image.
    if let Some(url) = state.core.image_download_url(&image, variant).await? {
        let reuse_for = DOWNLOAD_URL_LIFETIME.as_secs() / 2;
        return Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, url), (header::CACHE_CONTROL, format!("private, max-age={reuse_for}"))],
        )
            .into_response());
    }
    let (bytes, media_type) = state.core.image_file(&image, variant).await?;
    // Images never change once stored; `private` keeps shared caches (CloudFront) from
    // serving one user's image to another.
    Ok((
        [(header::CONTENT_TYPE, media_type), (header::CACHE_CONTROL, "private, max-age=86400, immutable".into())],
        bytes,
    )
        .into_response())
}
