//! The web app's one error type: what the visitor must fix is shown as it is; what the
//! operator must fix is logged once, here, and the visitor sees an apology.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::page;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Core(#[from] atelier_shared::Error),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadRequest(String),
    /// Only signed-in visitors may do this; pages are sent to sign in and back.
    #[error("sign in first")]
    SignInRequired { return_to: Option<String> },
}

impl From<atelier_shared::Invalid> for WebError {
    fn from(invalid: atelier_shared::Invalid) -> Self {
        Self::Core(invalid.into())
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        use atelier_shared::Error as Core;
        match self {
            // An outage passes: 503 tells browsers, clients and the load balancer to come back.
            Self::Core(error) if error.is_store_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Core(Core::Invalid(_)) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Core(Core::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Core(Core::Blocked(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Core(Core::Busy(_)) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // The person called the job back; 409 says "not done, by your own doing". A
            // conflict is a right request at the wrong moment.
            Self::Core(Core::Cancelled(_) | Core::Conflict(_)) => StatusCode::CONFLICT,
            Self::Core(Core::Operator { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden(_) | Self::Core(Core::Forbidden(_)) => StatusCode::FORBIDDEN,
            Self::SignInRequired { .. } => StatusCode::UNAUTHORIZED,
        }
    }

    /// The message for the visitor.
    pub fn message(&self) -> String {
        match self {
            Self::Core(error) => capitalise(&error.user_message()),
            other => other.to_string(),
        }
    }
}

/// Core messages are sentence fragments; pages show them as sentences.
pub fn capitalise(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Self::Core(error @ atelier_shared::Error::Operator { .. }) = &self {
            tracing::error!(error = %error, "a request failed on our side: {error}");
        }
        if let Self::SignInRequired { return_to: Some(return_to) } = &self {
            let target =
                format!("/signin?next={}", form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>());
            return axum::response::Redirect::to(&target).into_response();
        }
        let status = self.status();
        let title = match status {
            StatusCode::UNAUTHORIZED => "Please sign in",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong",
            StatusCode::SERVICE_UNAVAILABLE => "Not available",
            _ => "Please check your request",
        };
        let body = page::bare(
            title,
            html! {
                h1 { (title) }
                p.notice.error role="alert" { (self.message()) }
                p { a href="/" { "Back to the start page" } }
            },
        );
        (status, body).into_response()
    }
}
