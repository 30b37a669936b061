//! The gallery page, live: images made anywhere (Discord once linked, the API, another tab,
//! another replica) join the open page without a reload. The page follows `/gallery/events`,
//! whose `images` events carry the new thumbnails' markup, rendered here like the page's own.

use std::convert::Infallible;
use std::time::Duration;

use atelier_shared::gallery::{ImageId, ImageRecord};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page;

pub fn router() -> Router<AppState> {
    Router::new().route("/gallery/events", get(gallery_events)).route("/static/gallery.js", get(script))
}

/// How long one wait for new images lasts before it starts again (keep-alives flow meanwhile).
const WAIT: Duration = Duration::from_secs(25);

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/gallery.js"),
    )
}

/// The newest page's grid, which the script keeps up to date from the newest image shown on.
pub fn live_grid(records: &[ImageRecord]) -> Markup {
    let since = records.first().map(|record| record.id.to_string()).unwrap_or_default();
    html! {
        div #live-gallery data-events=(format!("/gallery/events?since={since}")) {
            p #gallery-empty hidden[!records.is_empty()] { "No images here yet. " a href="/studio" { "Make one" } "." }
            ul.grid #gallery-grid { (page::thumbnail_items(records)) }
        }
        script src="/static/gallery.js" defer {}
    }
}

#[derive(Deserialize)]
struct Since {
    since: Option<String>,
}

/// What an `images` event carries: the new thumbnails, newest first.
#[derive(Serialize)]
struct NewImages {
    html: String,
    count: usize,
}

/// New images as server-sent events, each event's id the newest image's, so a browser that
/// opens the stream again after a cut (its `Last-Event-ID`) misses nothing and repeats nothing.
async fn gallery_events(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<Since>,
) -> Result<Response, WebError> {
    let last_event = headers.get("last-event-id").and_then(|value| value.to_str().ok());
    let since = last_event.or(query.since.as_deref()).filter(|text| !text.is_empty());
    let since = since.and_then(|text| ImageId::parse(text).ok());
    let actor = user.actor();
    let events = futures::stream::unfold(since, move |since| {
        let (state, actor) = (state.clone(), actor.clone());
        async move {
            loop {
                match state.core.newer_images(&actor, since, WAIT).await {
                    Ok(newer) if newer.is_empty() => continue,
                    Ok(newer) => {
                        let newest = newer[0].id;
                        let body = NewImages { html: page::thumbnail_items(&newer).into_string(), count: newer.len() };
                        let event = Event::default().event("images").id(newest.to_string()).json_data(&body);
                        return Some((Ok::<_, Infallible>(event.unwrap_or_default()), Some(newest)));
                    }
                    // The store is unreachable: end the stream; the browser opens it again.
                    Err(error) => {
                        tracing::warn!(error = %error, "an open gallery could not look for new images");
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}
