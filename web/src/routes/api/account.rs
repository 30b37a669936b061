//! Who is calling, and what is on offer.

use axum::Json;
use axum::extract::State;
use time::format_description::well_known::Rfc3339;

use super::caller::{ApiCaller, SignedInWith};
use super::error::{ApiError, ErrorBody};
use super::views::{DiscordLinkView, Me, ModelList, ModelView, UsageView};
use crate::AppState;

/// The caller: their gallery owner, today's usage and quota, and their Discord link.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "account",
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn me(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<Me>, ApiError> {
    let usage = UsageView::from(&state.core.usage(&caller.actor()).await?);
    let discord_link = state.core.web_link(&caller.actor()).await?.map(|link| DiscordLinkView {
        discord_user_id: link.discord_user_id.to_string(),
        linked_at: link.linked_at.format(&Rfc3339).unwrap_or_default(),
    });
    let (signed_in_with, subject, name) = match caller.signed_in_with {
        SignedInWith::AccessToken { subject, username } => ("access_token", Some(subject), username),
        SignedInWith::Browser { display_name, local_operator } => {
            (if local_operator { "local" } else { "session" }, None, Some(display_name))
        }
    };
    Ok(Json(Me {
        owner: caller.owner.to_string(),
        signed_in_with: signed_in_with.into(),
        subject,
        name,
        usage,
        linking_available: state.core.linking_available(),
        discord_link,
    }))
}

/// The models on offer, the default first, with what each can do.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "account",
    security(("access_token" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 401, description = "Not signed in, or the access token is refused", body = ErrorBody),
    )
)]
pub async fn models(State(state): State<AppState>, _caller: ApiCaller) -> Json<ModelList> {
    Json(ModelList { models: state.core.models().into_iter().map(ModelView::from).collect() })
}
