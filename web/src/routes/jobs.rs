//! A job's page: where a generation or an edit is once submitted, live. The studio and the
//! edit form submit and send the browser here at once, so no request waits on a model (a
//! proxy in front may cut any request at 60 s). With the script, the page follows the job's
//! events and shows the result when it ends; without it, the page refreshes itself until then.

use std::convert::Infallible;

use atelier_shared::jobs::{JobId, JobKind};
use atelier_shared::{JobRef, JobState, JobUpdates, JobView};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Serialize;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::WebError;
use crate::page::{self, Section};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs/{id}", get(show_job))
        .route("/jobs/{id}/events", get(job_events))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/jobs/{id}/appeal", post(appeal_job))
        .route("/static/job.js", get(script))
}

/// How often a page without the script asks again while the job runs, in seconds.
const REFRESH_SECONDS: u32 = 2;
/// How soon a browser opens the events again after a proxy cuts them.
const RECONNECT: std::time::Duration = std::time::Duration::from_secs(1);

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/job.js"),
    )
}

/// The visitor's own job named in an address; a malformed id is a missing job.
fn job_of(user: &SignedIn, id: &str) -> Result<JobRef, WebError> {
    let id = JobId::parse(id).ok_or_else(|| atelier_shared::Error::not_found("there is no such job"))?;
    Ok(user.actor().own(id))
}

async fn show_job(State(state): State<AppState>, user: SignedIn, Path(id): Path<String>) -> Result<Markup, WebError> {
    let job = job_of(&user, &id)?;
    let view = state.core.job(&user.actor(), &job).await?;
    let section = match view.kind {
        JobKind::Generate => Section::Studio,
        JobKind::Edit => Section::Edit,
    };
    Ok(match (view.state, view.kind) {
        (JobState::Done { images }, JobKind::Generate) => {
            let body = super::studio::finished_job(&state, view.fields.unwrap_or_default(), &images);
            page::render(&state.site, Some(&user), section, "Your images", body)
        }
        (JobState::Done { images }, JobKind::Edit) => {
            page::render(&state.site, Some(&user), section, "Edited", super::edit::edited(&images))
        }
        (JobState::Failed { message, appealable, .. }, JobKind::Generate) => {
            let message = crate::error::capitalise(&message);
            super::studio::refused_job(&state, &user, view.fields.unwrap_or_default(), &message, appealable)
        }
        (state_now, _) => {
            let view = JobView { state: state_now, ..view };
            page::render(&state.site, Some(&user), section, &title(&view), job_page(&view))
        }
    })
}

fn title(view: &JobView) -> String {
    match view.kind {
        JobKind::Generate => "Making your images".into(),
        JobKind::Edit => "Editing your image".into(),
    }
}

/// What the page says of a job: the state's name (for the script and tests) and a sentence.
#[derive(Serialize)]
struct Status {
    state: &'static str,
    text: String,
    finished: bool,
    /// Whether it can still be called back.
    cancellable: bool,
}

fn status(state: &JobState) -> Status {
    let (name, text) = match state {
        JobState::Waiting { position: Some(1) } => ("waiting", "Waiting: next in line".to_string()),
        JobState::Waiting { position: Some(position) } => ("waiting", format!("Waiting: {position} in line")),
        JobState::Waiting { position: None } => ("waiting", "Waiting in line".to_string()),
        JobState::Checking => ("checking", "Checking the prompt…".to_string()),
        JobState::Running => ("running", "Drawing…".to_string()),
        JobState::Saving => ("saving", "Saving to your gallery…".to_string()),
        JobState::Done { images } => ("done", format!("Done: {} in your gallery", plural(images.len()))),
        JobState::Failed { message, .. } => ("failed", crate::error::capitalise(message)),
        JobState::Cancelled { message } => ("cancelled", crate::error::capitalise(message)),
    };
    Status { state: name, text, finished: state.is_finished(), cancellable: matches!(state, JobState::Waiting { .. }) }
}

fn plural(count: usize) -> String {
    if count == 1 { "1 image".into() } else { format!("{count} images") }
}

/// A job still under way, or one that ended with nothing to show but why.
fn job_page(view: &JobView) -> Markup {
    let status = status(&view.state);
    let id = view.id;
    html! {
        h1 { (title(view)) }
        p.hint { (view.summary) }
        div #job data-events=(format!("/jobs/{id}/events")) {
            p.notice #job-state role="status" aria-live="polite" data-testid="job-state" data-state=(status.state)
                .error[matches!(view.state, JobState::Failed { .. })] {
                (status.text)
            }
            form #cancel-job method="post" action=(format!("/jobs/{id}/cancel")) hidden[!status.cancellable] {
                (crate::csrf::field())
                button.secondary type="submit" data-testid="cancel-job" { "Cancel" }
                span.hint { " Nothing is charged for a job called back before it starts." }
            }
        }
        @if let JobState::Failed { appealable: true, .. } = &view.state {
            form method="post" action=(format!("/jobs/{id}/appeal")) {
                (crate::csrf::field())
                p.hint { "A stronger model can look at it once more. Appeal only if you believe the refusal is a mistake." }
                button type="submit" data-testid="appeal" { "Appeal" }
            }
        }
        @if status.finished {
            div.actions {
                @match view.kind {
                    JobKind::Generate => a.button href="/studio" { "Back to the studio" },
                    JobKind::Edit => a.button href="/edit" { "Back to editing" },
                }
                a.button.secondary href="/gallery" { "Open the gallery" }
            }
        } @else {
            // Without the script, the page asks again until the job ends.
            noscript { meta http-equiv="refresh" content=(REFRESH_SECONDS); }
            script src="/static/job.js" defer {}
        }
    }
}

/// The job's states as `status` events for the page's script, the last one final. A stream
/// cut short (by a proxy's timeout) is opened again by the browser and starts with the state
/// at that moment.
async fn job_events(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let job = job_of(&user, &id)?;
    let updates = state.core.follow_job(&user.actor(), &job).await?;
    Ok(Sse::new(status_events(updates)).keep_alive(KeepAlive::default()).into_response())
}

fn status_events(updates: JobUpdates) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some(updates), |updates| async move {
        let mut updates = updates?;
        let status = match updates.next().await? {
            Ok(view) => status(&view.state),
            Err(error) => Status {
                state: "failed",
                text: crate::error::capitalise(&error.user_message()),
                finished: true,
                cancellable: false,
            },
        };
        let event = Event::default().event("status").retry(RECONNECT).json_data(&status).unwrap_or_default();
        Some((Ok(event), Some(updates)))
    })
}

/// Calls a waiting job back, then shows its page again.
async fn cancel_job(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    let job = job_of(&user, &id)?;
    // Too late (the model is drawing) or already over: the page shows where it is.
    state.core.cancel_job(&user.actor(), &job).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)))
}

/// Appeals the job's refusal once, as a new job, and shows that job's page.
async fn appeal_job(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    let job = job_of(&user, &id)?;
    let appealed = state.core.appeal_job(&user.actor(), &job).await?;
    Ok(Redirect::to(&format!("/jobs/{appealed}")))
}
