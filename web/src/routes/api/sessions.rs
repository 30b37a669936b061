//! The caller's sessions: named groups of their images. A session exists while images carry
//! its name; renaming moves them all, deleting takes the name off them and keeps the images.

use atelier_shared::gallery::SessionName;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::caller::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::studio::json_body;
use super::views::{RenameSessionBody, SessionList, SessionView};
use crate::AppState;

/// The caller's sessions, the one used most recently first.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "images",
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The sessions, with how many images each holds", body = SessionList),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn list_sessions(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.core.gallery_sessions(&caller.actor()).await?;
    Ok(Json(SessionList { sessions: sessions.iter().map(SessionView::from).collect() }))
}

/// Renames a session: every image in it moves to the new name (joining a session of that name
/// if the caller has one). Sending the same request again after a failure finishes the move.
#[utoipa::path(
    patch,
    path = "/api/sessions/{name}",
    tag = "images",
    params(("name" = String, Path, description = "The session's name (URL-encoded)")),
    request_body = RenameSessionBody,
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The session under its new name", body = SessionView),
        (status = 400, description = "A name is wrong", body = ErrorBody),
        (status = 409, description = "The session already has that name", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "The caller has no session of that name", body = ErrorBody),
    )
)]
pub async fn rename_session(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
    body: Result<Json<RenameSessionBody>, JsonRejection>,
) -> Result<Json<SessionView>, ApiError> {
    let from = SessionName::parse(&name)?;
    let to = SessionName::parse(&json_body(body)?.name)?;
    let actor = caller.actor();
    state.core.rename_session(&actor, &from, &to).await?;
    let sessions = state.core.gallery_sessions(&actor).await?;
    let renamed = sessions
        .iter()
        .find(|session| session.name == to)
        .ok_or_else(|| atelier_shared::Error::not_found("the renamed session's images were deleted meanwhile"))?;
    Ok(Json(SessionView::from(renamed)))
}

/// Deletes a session: the name is taken off its images, which stay in the gallery.
#[utoipa::path(
    delete,
    path = "/api/sessions/{name}",
    tag = "images",
    params(("name" = String, Path, description = "The session's name (URL-encoded)")),
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "Deleted; its images are kept without a session"),
        (status = 400, description = "The name is not a session name", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
        (status = 404, description = "The caller has no session of that name", body = ErrorBody),
    )
)]
pub async fn delete_session(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_session(&caller.actor(), &SessionName::parse(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
