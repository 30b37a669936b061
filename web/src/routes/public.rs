//! What anyone may see without signing in: a published image's page and file, and a Discord
//! server's gallery of published images (see `shared::service::publishing`).
//!
//! These pages are the same for every visitor, so they are cacheable by shared caches
//! (CloudFront) for a short while: they show nobody's sign-in state and set no cookie (the
//! form-token cookie is left off a `public` response). A page that is gone answers 404 with
//! `no-store`; caches that held it let it go within [`PUBLIC_MAX_AGE`] seconds.
//!
//! The page carries Open Graph and Twitter card tags with absolute URLs built from
//! `ATELIER_PUBLIC_URL`, so a link pasted in Discord or anywhere else unfurls with the picture.

use atelier_shared::gallery::{ImageId, Variant};
use atelier_shared::{Published, SERVER_GALLERY_PAGE};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::error::WebError;

/// How long shared caches and browsers may keep a public page or image, in seconds: short, so
/// unpublishing takes hold soon everywhere.
pub const PUBLIC_MAX_AGE: u64 = 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/p/{id}", get(public_page))
        .route("/p/{id}/{variant}", get(public_file))
        .route("/servers/{guild_id}", get(server_gallery))
}

fn public_cache() -> (header::HeaderName, HeaderValue) {
    (
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={PUBLIC_MAX_AGE}"))
            .unwrap_or(HeaderValue::from_static("no-store")),
    )
}

/// A public page or file that is not (or no longer) there: 404, and not to be cached.
fn gone(message: &str) -> Response {
    let page = layout("Not found", None, html! { h1 { "Not found" } p { (message) } });
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], page).into_response()
}

/// The public layout: no navigation of signed-in pages and no sign-in state, so every visitor
/// gets the same bytes.
fn layout(title: &str, meta: Option<Markup>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Atelier" }
                link rel="stylesheet" href="/static/atelier.css";
                @if let Some(meta) = meta { (meta) }
            }
            body {
                header.site { a.brand href="/" { "Atelier" } }
                main { (content) }
            }
        }
    }
}

fn description(published: &Published) -> String {
    match &published.prompt {
        Some(prompt) => format!("{prompt} · made with {} in Atelier", published.model),
        None => format!("An edited image, made with {} in Atelier", published.model),
    }
}

fn title(published: &Published) -> String {
    let prompt = published.prompt.as_deref().unwrap_or("An edited image");
    // Unfurls show about 70 characters of a title.
    match prompt.char_indices().nth(70) {
        Some((cut, _)) => format!("{}…", &prompt[..cut]),
        None => prompt.to_string(),
    }
}

async fn public_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = ImageId::parse(&id) else { return gone("There is no image at this address.") };
    let published = match state.core.published_image(id).await {
        Ok(published) => published,
        Err(atelier_shared::Error::NotFound(_)) => return gone("This image is not published (or no longer)."),
        Err(error) => return WebError::from(error).into_response(),
    };
    let base = &state.site.public_url;
    let absolute = |path: &str| base.join(path).map(|url| url.to_string()).unwrap_or_else(|_| path.to_string());
    let page_url = absolute(&format!("p/{id}"));
    let image_url = absolute(&format!("p/{id}/full"));
    let title = title(&published);
    let description = description(&published);
    let meta = html! {
        meta property="og:type" content="website";
        meta property="og:site_name" content="Atelier";
        meta property="og:title" content=(title);
        meta property="og:description" content=(description);
        meta property="og:url" content=(page_url);
        meta property="og:image" content=(image_url);
        meta property="og:image:width" content=(published.size.width);
        meta property="og:image:height" content=(published.size.height);
        meta name="twitter:card" content="summary_large_image";
        meta name="twitter:title" content=(title);
        meta name="twitter:description" content=(description);
        meta name="twitter:image" content=(image_url);
        link rel="canonical" href=(page_url);
    };
    let content = html! {
        div.detail {
            div {
                img.full src=(format!("/p/{id}/full")) alt=(published.prompt.as_deref().unwrap_or("an edited image"))
                    width=(published.size.width) height=(published.size.height);
            }
            div {
                h1 data-testid="public-prompt" { (published.prompt.as_deref().unwrap_or("An edited image")) }
                dl.facts {
                    dt { "Model" } dd { (published.model) }
                    dt { "Size" } dd { (published.size) }
                    dt { "Published" } dd { (published.published_at.date()) }
                    @if let Some(guild_id) = published.guild_id {
                        dt { "Server" } dd { a href=(format!("/servers/{guild_id}")) { "More from this server" } }
                    }
                }
            }
        }
    };
    ([public_cache()], layout(&title, Some(meta), content)).into_response()
}

async fn public_file(State(state): State<AppState>, Path((id, variant)): Path<(String, String)>) -> Response {
    let Ok(id) = ImageId::parse(&id) else { return gone("There is no image at this address.") };
    let variant = match variant.as_str() {
        "full" => Variant::Full,
        "thumbnail" => Variant::Thumbnail,
        _ => return gone("There is no such image variant."),
    };
    match state.core.published_file(id, variant).await {
        Ok((bytes, media_type)) => ([(header::CONTENT_TYPE, media_type)], [public_cache()], bytes).into_response(),
        Err(atelier_shared::Error::NotFound(_)) => gone("This image is not published (or no longer)."),
        Err(error) => WebError::from(error).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    after: Option<String>,
}

async fn server_gallery(
    State(state): State<AppState>,
    Path(guild_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let Ok(guild_id) = guild_id.parse::<u64>() else { return gone("There is no server at this address.") };
    let page = match state.core.server_gallery(guild_id, query.after.as_deref(), SERVER_GALLERY_PAGE).await {
        Ok(page) => page,
        Err(error) => return WebError::from(error).into_response(),
    };
    let content = html! {
        h1 { "Published from this server" }
        @if page.images.is_empty() {
            p { "Nothing published here yet. In Discord, press More under an image, then Publish." }
        } @else {
            ul.grid {
                @for image in &page.images {
                    li data-testid="server-gallery-item" {
                        a href=(format!("/p/{}", image.id)) {
                            img src=(format!("/p/{}/thumbnail", image.id)) loading="lazy"
                                alt=(image.prompt.as_deref().unwrap_or("an edited image")) width="256";
                        }
                    }
                }
            }
        }
        @if let Some(next) = &page.next {
            p { a.button href=(format!("/servers/{guild_id}?after={next}")) data-testid="older" { "Older" } }
        }
    };
    ([public_cache()], layout("A server's gallery", None, content)).into_response()
}
