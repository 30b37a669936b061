//! The caller's defaults for new images, the same ones the Settings page, Discord's
//! `/settings` and `atelier settings` change; the core checks them and fills them in.

use atelier_shared::preferences::PreferenceChange;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;

use super::caller::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::studio::json_body;
use super::views::SettingsView;
use crate::AppState;

/// The caller's defaults.
#[utoipa::path(
    get,
    path = "/api/settings",
    tag = "account",
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The caller's defaults", body = SettingsView),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn get_settings(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(SettingsView::from(state.core.preferences(&caller.owner).await?)))
}

/// Replaces the caller's defaults: a field left out or `null` has no default afterwards. Every
/// value is checked as a request would be; a wrong one changes nothing.
#[utoipa::path(
    put,
    path = "/api/settings",
    tag = "account",
    request_body = SettingsView,
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The defaults as saved", body = SettingsView),
        (status = 400, description = "A value is wrong (nothing was changed)", body = ErrorBody),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<SettingsView>, JsonRejection>,
) -> Result<Json<SettingsView>, ApiError> {
    let change = PreferenceChange::replacing_with(json_body(body)?.into());
    Ok(Json(SettingsView::from(state.core.change_preferences(&caller.owner, change).await?)))
}
