//! Jobs: what `POST /api/generate` and `POST /api/edit` answer with at once (202), read,
//! followed as server-sent events, and cancelled while they wait. No request waits on a model.

use std::convert::Infallible;

use atelier_shared::jobs::{Cancelled, JobId};
use atelier_shared::{JobRef, JobUpdates};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::caller::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::views::JobBody;
use crate::AppState;

/// The caller's job named in a path.
fn job_of(caller: &ApiCaller, id: &str) -> Result<JobRef, ApiError> {
    let id = JobId::parse(id).ok_or_else(|| atelier_shared::Error::not_found("there is no job with this id"))?;
    Ok(caller.actor().own(id))
}

/// The 202 a submission answers with: the job, and where to follow it.
pub(super) async fn accepted(state: &AppState, caller: &ApiCaller, id: JobId) -> Result<Response, ApiError> {
    let view = state.core.job(&caller.actor(), &caller.actor().own(id)).await?;
    let body = JobBody::from(&view);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, body.url.clone())], Json(body)).into_response())
}

/// A job of the caller's, as it is now.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
    )
)]
pub async fn job(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&caller, &id)?;
    let view = state.core.job(&caller.actor(), &job).await?;
    Ok(Json(JobBody::from(&view)).into_response())
}

/// Calls a waiting job back: it leaves the line and nothing is charged. A job the model is
/// already drawing cannot be called back (409). An action on the job rather than a `DELETE`
/// of it: the job stays, readable as cancelled, which a `DELETE` would promise it would not.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 202, description = "Called back: it leaves the line (at once here, or before it starts on the server holding it)"),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
        (status = 409, description = "The model is already drawing it, or it has ended", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&caller, &id)?;
    let conflict = |message: &str| {
        let body = ErrorBody { error: "conflict".into(), message: message.into() };
        (StatusCode::CONFLICT, Json(body)).into_response()
    };
    if state.core.job(&caller.actor(), &job).await?.state.is_finished() {
        return Ok(conflict("This job has ended: there is nothing to call back"));
    }
    match state.core.cancel_job(&caller.actor(), &job).await? {
        Cancelled::Now | Cancelled::BeforeItStarts => Ok(StatusCode::ACCEPTED.into_response()),
        Cancelled::TooLate => Ok(conflict("The model is already drawing this job: it can no longer be called back")),
        Cancelled::NotFound => {
            Err(atelier_shared::Error::not_found("there is no such job waiting; it may have finished").into())
        }
    }
}

/// Appeals a failed job's refusal, once: a stronger model reads the request again as the
/// first check of a new job, which this answers with like a submission (202).
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/appeal",
    tag = "jobs",
    params(("id" = String, Path, description = "The refused job's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 202, description = "The appeal's job: follow it like any other", body = JobBody,
         headers(("Location" = String, description = "The new job's url"))),
        (status = 409, description = "The job has no refusal that may be appealed", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such job of the caller's, or its request is no longer kept", body = ErrorBody),
        (status = 422, description = "The refusal was appealed before", body = ErrorBody),
        (status = 429, description = "Too many jobs, or the daily quota is used up", body = ErrorBody),
    )
)]
pub async fn appeal_job(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&caller, &id)?;
    let appealed = state.core.appeal_job(&caller.actor(), &job).await?;
    accepted(&state, &caller, appealed).await
}

/// Follows a job as server-sent events: a `job` event with its state now, one at each change,
/// and the stream ends after the final one. A stream cut short (a proxy's timeout) can be
/// opened again: it starts with the state at that moment.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/events",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "`job` events, each with a JobBody as its data", content_type = "text/event-stream", body = JobBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&caller, &id)?;
    let updates = state.core.follow_job(&caller.actor(), &job).await?;
    Ok(Sse::new(job_event_stream(updates)).keep_alive(KeepAlive::default()).into_response())
}

/// A job's states as `job` events; a failure to read one ends the stream with an `error` event.
pub fn job_event_stream(updates: JobUpdates) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some(updates), |updates| async move {
        let mut updates = updates?;
        match updates.next().await? {
            Ok(view) => Some((
                Ok(Event::default().event("job").json_data(JobBody::from(&view)).unwrap_or_default()),
                Some(updates),
            )),
            Err(error) => {
                let body =
                    ErrorBody { error: "operator".into(), message: crate::error::capitalise(&error.user_message()) };
                Some((Ok(Event::default().event("error").json_data(body).unwrap_or_default()), None))
            }
        }
    })
}
