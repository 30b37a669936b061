//! The layout every page shares: the header with the navigation and who is signed in, and
//! the demo banner that says loudly when no model is configured.

use atelier_shared::config::LocalSignIn;
use atelier_shared::engine::EngineKind;
use atelier_shared::gallery::ImageRecord;
use maud::{DOCTYPE, Markup, html};

use crate::Site;
use crate::auth::SignedIn;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Studio,
    Edit,
    Gallery,
    Check,
    Chat,
    Settings,
}

const NAVIGATION: [(Section, &str, &str); 6] = [
    (Section::Studio, "/studio", "Generate"),
    (Section::Edit, "/edit", "Edit"),
    (Section::Gallery, "/gallery", "Gallery"),
    (Section::Check, "/check", "Prompt checker"),
    (Section::Chat, "/chat", "Chat"),
    (Section::Settings, "/settings", "Settings"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Atelier" }
            link rel="stylesheet" href="/static/atelier.css";
        }
    }
}

/// A full page with navigation.
pub fn render(site: &Site, user: Option<&SignedIn>, section: Section, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.site {
                    a.brand href="/" { "Atelier" }
                    nav {
                        @for (item, href, label) in NAVIGATION {
                            a href=(href) aria-current=[(item == section).then_some("page")] { (label) }
                        }
                    }
                    span.user {
                        @if let Some(user) = user {
                            "Signed in as " strong data-testid="signed-in-as" { (user.display_name) }
                            @if user.account.is_some() {
                                " · " a href="/account" { "Account" } " "
                                form.inline method="post" action="/signout" {
                                    (crate::csrf::field())
                                    button.link type="submit" data-testid="sign-out" { "Sign out" }
                                }
                            }
                        } @else if site.local_sign_in == LocalSignIn::NotNeeded {
                            a.button href="/signin" data-testid="sign-in" { "Sign in" }
                        }
                    }
                }
                @if site.engine == EngineKind::Demo {
                    div.banner.demo role="status" data-testid="demo-banner" {
                        strong { "Demo mode: " }
                        "no image model is configured, so pictures are drawn locally by the demo engine and chat \
                         answers come from simple rules (" (site.engine_reason) "). Configure Bedrock to use real models."
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A page without site details, for errors raised before the state is at hand.
pub fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.site { a.brand href="/" { "Atelier" } }
                main { (content) }
            }
        }
    }
}

/// A notice for the visitor: what went wrong, and what to change.
pub fn error_notice(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.notice.error role="alert" { (message) }
        }
    }
}

/// A grid of thumbnails, each linking to the image's page.
pub fn thumbnails(records: &[ImageRecord]) -> Markup {
    html! {
        ul.grid { (thumbnail_items(records)) }
    }
}

/// The items of a [`thumbnails`] grid, for adding to one already shown.
pub fn thumbnail_items(records: &[ImageRecord]) -> Markup {
    html! {
        @for record in records {
            li data-testid="gallery-item" {
                a href=(format!("/gallery/{}", record.id)) {
                    img src=(format!("/images/{}/thumbnail", record.id)) loading="lazy"
                        alt=(record.prompt.as_deref().unwrap_or("an edited image"))
                        width="256";
                }
            }
        }
    }
}
