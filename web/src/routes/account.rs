//! Signing in and out, the account page, and linking a Discord account from a `/link` token.

use atelier_shared::oidc::{HeldSignIn, SIGN_IN_LIFETIME};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SignedCookieJar};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{self, MaybeSignedIn, SESSION_COOKIE, SignedIn};
use crate::error::WebError;
use crate::page::{self, Section};
use atelier_shared::jobs::usage_text;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signin", get(sign_in))
        .route("/auth/callback", get(sign_in_callback))
        .route("/signout", post(sign_out))
        .route("/account", get(show_account))
        .route("/account/unlink", post(unlink))
        .route("/account/export", get(export_data))
        .route("/account/delete", post(delete_data))
        .route("/link", get(show_link).post(confirm_link))
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    next: Option<String>,
}

fn no_provider() -> WebError {
    WebError::Unavailable(
        "Signing in with an account is not set up here: this Atelier runs in local mode, where this machine's \
         operator is always signed in."
            .into(),
    )
}

/// Starts a sign-in at the provider; the browser comes back to `/auth/callback`. What the
/// callback needs travels in an encrypted cookie, so this writes nothing to the store.
async fn sign_in(
    State(state): State<AppState>,
    jar: PrivateCookieJar,
    Query(query): Query<SignInQuery>,
) -> Result<Response, WebError> {
    let Some(provider) = &state.auth.sign_in else {
        // In local mode everyone is signed in already.
        return Ok(
            Redirect::to(&atelier_shared::oidc::safe_return_path(query.next.as_deref().unwrap_or("/"))).into_response()
        );
    };
    let (url, pending) = provider.begin_sign_in(query.next.as_deref().unwrap_or("/studio")).await?;
    let held = serde_json::to_string(&HeldSignIn::new(pending))
        .map_err(|error| WebError::from(atelier_shared::Error::operator("sealing a sign-in", error)))?;
    let name = auth::sign_in_cookie_name(state.auth.secure_cookies);
    let mut cookie = auth::cookie(&state, name, held);
    cookie.set_max_age(time::Duration::seconds(SIGN_IN_LIFETIME.whole_seconds()));
    let jar = jar.add(cookie);
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where the provider sends the browser back: checks it all, then starts a session. The
/// sign-in cookie is removed whatever the outcome, so a sign-in is tried once.
async fn sign_in_callback(
    State(state): State<AppState>,
    sign_in_jar: PrivateCookieJar,
    jar: SignedCookieJar,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let name = auth::sign_in_cookie_name(state.auth.secure_cookies);
    // A cookie that does not decrypt with our key (forged, or from before a key change) is
    // absent to the private jar.
    let held = sign_in_jar.get(name).map(|cookie| cookie.value().to_string());
    let sign_in_jar = sign_in_jar.remove(Cookie::build(name).path("/").secure(state.auth.secure_cookies));
    (sign_in_jar, finish_sign_in(state, jar, query, held).await).into_response()
}

async fn finish_sign_in(
    state: AppState,
    jar: SignedCookieJar,
    query: CallbackQuery,
    held: Option<String>,
) -> Result<Response, WebError> {
    let provider = state.auth.sign_in.as_ref().ok_or_else(no_provider)?;
    let start_again = |why: &str| {
        WebError::BadRequest(format!("The sign-in could not be finished: {why}. Please sign in again from the start."))
    };
    if let Some(error) = &query.error {
        // The provider's own words come from the address, which anyone can write: they are
        // logged (escaped), and the visitor is told only which of OAuth's error codes it was.
        let description = query.error_description.as_deref().unwrap_or_default();
        tracing::info!(error = ?error, description = ?description, "the sign-in provider refused a sign-in");
        let code = match error.as_str() {
            "access_denied" => "access was denied",
            "login_required" | "interaction_required" | "consent_required" => "the provider needs you to sign in again",
            "temporarily_unavailable" | "server_error" => "the provider is unavailable for a moment",
            _ => "the provider refused it",
        };
        return Err(start_again(code));
    }
    let Some(held) = held else {
        return Err(start_again("this browser did not start it (or its cookie was lost)"));
    };
    let Some(pending) = serde_json::from_str::<HeldSignIn>(&held).ok().and_then(HeldSignIn::unexpired) else {
        return Err(start_again("it took too long"));
    };
    let user = provider
        .finish_sign_in(&pending, query.state.as_deref().unwrap_or_default(), query.code.as_deref().unwrap_or_default())
        .await?;
    tracing::info!(owner = %user.owner, "signed in on the web");
    let token = state.core.start_session(user).await?;
    let jar = jar.add(auth::cookie(&state, SESSION_COOKIE, token));
    let rotated = crate::csrf::rotated_cookie(state.auth.secure_cookies);
    let rotated = axum::response::AppendHeaders([(axum::http::header::SET_COOKIE, rotated)]);
    Ok((jar, rotated, Redirect::to(pending.return_to())).into_response())
}

/// Ends the session here, then at the provider when it supports that.
async fn sign_out(State(state): State<AppState>, jar: SignedCookieJar) -> Result<Response, WebError> {
    if let Some(token) = jar.get(SESSION_COOKIE) {
        state.core.end_session(token.value()).await?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    let after = match &state.auth.sign_in {
        Some(provider) => provider.logout_url().await.ok().flatten().map(|url| url.to_string()),
        None => None,
    };
    Ok((jar, Redirect::to(after.as_deref().unwrap_or("/"))).into_response())
}

/// Refuses the account-linking pages where linking is not set up.
fn linking(state: &AppState) -> Result<&atelier_shared::Atelier, WebError> {
    if state.core.linking_available() {
        Ok(&state.core)
    } else {
        Err(WebError::Unavailable("Account linking is not set up here.".into()))
    }
}

/// Who you are and which Discord account is linked.
async fn show_account(State(state): State<AppState>, user: SignedIn) -> Result<Markup, WebError> {
    let usage = state.core.usage(&user.actor()).await?;
    let link = match state.core.linking_available() {
        true => state.core.web_link(&user.actor()).await?,
        false => None,
    };
    let body = html! {
        section data-testid="account-page" {
            h1 { "Your account" }
            dl {
                dt { "Signed in as" } dd { (user.display_name) }
                @if let Some(account) = &user.account {
                    @if let Some(email) = &account.email { dt { "Email" } dd { (email) } }
                }
            }
            h2 { "Today" }
            dl data-testid="usage" {
                dt { "Images" } dd data-testid="images-left" { (usage_text::images(&usage)) }
                dt { "Budget" } dd data-testid="budget-left" { (usage_text::budget(&usage)) }
                dt { "Jobs" } dd { (usage.running) " running, " (usage.queued) " waiting" }
            }
            h2 { "Discord" }
            @if !state.core.linking_available() {
                p { "Linking a Discord account is not set up here." }
            } @else {
            @match &link {
                Some(link) => {
                    p data-testid="linked-discord" {
                        "Linked to the Discord account "
                        @if let Some(name) = &link.discord_name { strong data-testid="discord-name" { (name) } " " }
                        "(id " code { (link.discord_user_id) } ") since " (link.linked_at.date())
                        ". Images you make with the bot show in your gallery."
                    }
                    form method="post" action="/account/unlink" {
                        (crate::csrf::field())
                        button.secondary type="submit" data-testid="unlink" { "Unlink Discord" }
                    }
                }
                None => {
                    @if let Some(discord) = user.account.as_ref().and_then(|account| account.discord.as_ref()) {
                        // Signed in with Discord, but that Discord account is another web
                        // account's: it is never moved here without the person's say.
                        p data-testid="discord-linked-elsewhere" {
                            "You signed in with the Discord account "
                            @if let Some(name) = &discord.name { strong { (name) } " " }
                            "(id " code { (discord.user_id) } "), which is linked to another Atelier web account, so its images stay there. "
                            "To see them here instead, unlink it (type "
                            code { "/unlink" } " in Discord, or use that account's page), then sign in again."
                        }
                    } @else {
                        p { "No Discord account is linked. In Discord, type " code { "/link" }
                            " and open the link it gives you to see your Discord images here, or sign in with Discord." }
                    }
                }
            }
            }
            h2 { "Your data" }
            p {
                a.button.secondary href="/account/export" download="atelier-data.tar" data-testid="export-data" {
                    "Download everything"
                }
                " Your images, their records, your settings and conversations, as one archive."
            }
            form method="post" action="/account/delete" data-testid="delete-data-form" {
                (crate::csrf::field())
                p { "Deleting removes every image and record of yours, here and on the Discord account linked to \
                     this one, and cannot be undone. Type " code { "delete" } " to confirm." }
                label { "Confirm " input type="text" name="confirm" autocomplete="off" required data-testid="delete-confirm"; }
                " "
                button.danger type="submit" data-testid="delete-data" { "Delete all my data" }
            }
        }
    };
    Ok(page::render(&state.site, Some(&user), Section::Home, "Your account", body))
}

/// Everything of the signed-in person's, as a tar archive.
async fn export_data(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    let archive = state.core.export_own_data(&user.actor()).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/x-tar"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"atelier-data.tar\""),
            (axum::http::header::CACHE_CONTROL, "private, no-store"),
        ],
        archive,
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// Deletes everything of the signed-in person's, then signs them out.
async fn delete_data(
    State(state): State<AppState>,
    user: SignedIn,
    jar: SignedCookieJar,
    Form(form): Form<DeleteForm>,
) -> Result<Response, WebError> {
    if form.confirm.trim() != "delete" {
        return Err(WebError::BadRequest(
            "Nothing was deleted: type delete in the box to confirm that you want everything removed.".into(),
        ));
    }
    let deleted = state.core.delete_own_data(&user.actor()).await?;
    tracing::info!(owner = %user.owner, objects = deleted.objects, "a person deleted their data");
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    let body = html! {
        h1 { "Deleted" }
        p data-testid="deleted" { "Everything of yours is gone (" (deleted.objects) " items). Thank you for using Atelier." }
        p { a href="/" { "Back to the start" } }
    };
    Ok((jar, page::bare("Deleted", body)).into_response())
}

async fn unlink(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    linking(&state)?.unlink_web(&user.actor()).await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Debug, Default, Deserialize)]
struct LinkQuery {
    token: Option<String>,
}

fn link_page(state: &AppState, user: &SignedIn, body: Markup) -> Markup {
    page::render(&state.site, Some(user), Section::Home, "Link your Discord account", body)
}

/// The page a `/link` button opens: says which Discord account would be linked, and asks.
async fn show_link(
    State(state): State<AppState>,
    MaybeSignedIn(user): MaybeSignedIn,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let token = query.token.unwrap_or_default();
    let Some(user) = user else {
        let here = format!("/link?token={}", form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
        return Err(WebError::SignInRequired { return_to: Some(here) });
    };
    let offer = match linking(&state)?.preview_link(&token).await {
        Ok(offer) => offer,
        Err(error @ (atelier_shared::Error::Invalid(_) | atelier_shared::Error::NotFound(_))) => {
            let body = html! {
                h1 { "This link cannot be used" }
                p.notice.error role="alert" data-testid="link-error" { (crate::error::capitalise(&error.user_message())) }
            };
            return Ok((axum::http::StatusCode::BAD_REQUEST, link_page(&state, &user, body)).into_response());
        }
        Err(error) => return Err(error.into()),
    };
    let body = html! {
        h1 { "Link your Discord account" }
        p data-testid="link-offer" {
            "Link the Discord account with id " code { (offer.discord_user_id) } " to " strong { (user.display_name) }
            "? Its images will show in your gallery, and what it makes from now on will be kept there."
        }
        form method="post" action="/link" {
            (crate::csrf::field())
            input type="hidden" name="token" value=(token);
            button type="submit" data-testid="confirm-link" { "Link this Discord account" }
        }
        p { a href="/" { "Not now" } }
    };
    Ok(link_page(&state, &user, body).into_response())
}

#[derive(Debug, Deserialize)]
struct LinkForm {
    token: String,
}

async fn confirm_link(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<LinkForm>,
) -> Result<Response, WebError> {
    let Some(account) = &user.account else {
        return Err(WebError::BadRequest(
            "The local operator has no web account to link; sign in with an account first.".into(),
        ));
    };
    match linking(&state)?.consume_link(&form.token, account).await {
        Ok(linked) => {
            let body = html! {
                h1 { "Linked" }
                p.notice data-testid="link-done" {
                    "Your Discord account (id " code { (linked.link.discord_user_id) } ") is linked. "
                    @if linked.images_moved > 0 { (linked.images_moved) " of its images are now in your gallery. " }
                    a href="/gallery" { "Open your gallery" }
                }
            };
            Ok(link_page(&state, &user, body).into_response())
        }
        Err(error @ (atelier_shared::Error::Invalid(_) | atelier_shared::Error::NotFound(_))) => {
            let body = html! {
                h1 { "This link cannot be used" }
                p.notice.error role="alert" data-testid="link-error" { (crate::error::capitalise(&error.user_message())) }
            };
            Ok((axum::http::StatusCode::BAD_REQUEST, link_page(&state, &user, body)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}
