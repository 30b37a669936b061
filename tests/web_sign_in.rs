//! Web sign-in end to end over HTTP: the real app against an OpenID Connect provider
//! (oidc-provider-mock), with sessions in the store, linking a Discord account from a token
//! the core issued, and the rules that keep one person's things from another.

use std::sync::Arc;

use atelier_shared::adapters::Accounts;
use atelier_shared::adapters::FolderStore;
use atelier_shared::adapters::NoDirectory;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

use crate::support::TestApp;
use crate::support::oidc::OidcProvider;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A browser: keeps cookies, does not follow redirects, so each step can be checked.
struct Browser {
    client: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        Self { client: reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap() }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// The token the app put in its forms (from a page it served this browser).
    async fn form_token(&self, app: &TestApp) -> String {
        let page = self.get(&app.url("/")).await.text().await.unwrap();
        let start = page.find("name=\"csrf\" value=\"").expect("no form token on the home page") + 19;
        page[start..].split('"').next().unwrap().to_string()
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

async fn app_with_sign_in(provider: &OidcProvider, data: Option<&std::path::Path>) -> TestApp {
    let issuer = provider.issuer();
    let mut settings = vec![
        ("ATELIER_OIDC_ISSUER", issuer.as_str()),
        ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
        ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
        ("ATELIER_SESSION_SECRET", SECRET),
    ];
    let store;
    if let Some(data) = data {
        store = format!("file://{}", data.display());
        settings.push(("ATELIER_STORE", store.as_str()));
    }
    TestApp::spawn_with(&settings).await
}

/// Signs `browser` in as `subject` through the provider; returns where the app sent it after.
async fn sign_in(browser: &Browser, app: &TestApp, provider: &OidcProvider, subject: &str, next: &str) -> String {
    let start = browser.get(&app.url(&format!("/signin?next={next}"))).await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = location(&start);
    assert!(authorize.starts_with(&provider.issuer()), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="), "{authorize}");
    let callback = provider.authorize(&authorize, subject).await;
    let back = browser.get(callback.url.as_str()).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "{}", back.text().await.unwrap());
    let cookies: Vec<String> =
        back.headers().get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|cookie| cookie.starts_with("atelier_session=")).expect("no session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    location(&back)
}

#[tokio::test]
async fn signing_in_starts_a_session_that_survives_a_restart_and_signing_out_ends_it() {
    let provider = OidcProvider::start().await;
    let store = tempfile::tempdir().unwrap();
    let app = app_with_sign_in(&provider, Some(store.path())).await;
    let browser = Browser::new();

    // Signed out, the gallery sends the visitor to sign in and back.
    let gallery = browser.get(&app.url("/gallery")).await;
    assert_eq!(gallery.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&gallery), "/signin?next=%2Fgallery");
    let home = browser.get(&app.url("/")).await.text().await.unwrap();
    assert!(home.contains("data-testid=\"sign-in\""), "{home}");

    let after = sign_in(&browser, &app, &provider, "alice", "/gallery").await;
    assert_eq!(after, "/gallery");
    let page = browser.get(&app.url("/gallery")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("data-testid=\"signed-in-as\""));

    // Another process on the same store and secret (a restart, or another replica) knows the session.
    app.stop().await;
    let app = app_with_sign_in(&provider, Some(store.path())).await;
    assert_eq!(browser.get(&app.url("/gallery")).await.status(), StatusCode::OK);

    // Signing out ends the session in the store, not just in this browser.
    let token = browser.form_token(&app).await;
    let out = browser.client.post(app.url("/signout")).form(&[("csrf", token.as_str())]).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.get(&app.url("/gallery")).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_forged_or_replayed_sign_in_is_refused_plainly() {
    let provider = OidcProvider::start().await;
    let app = app_with_sign_in(&provider, None).await;
    let browser = Browser::new();
    let start = browser.get(&app.url("/signin?next=/studio")).await;
    let callback = provider.authorize(&location(&start), "mallory").await;

    // The callback opened in another browser (no sign-in cookie) is refused.
    let elsewhere = Browser::new().get(callback.url.as_str()).await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert!(elsewhere.text().await.unwrap().contains("this browser did not start it"));

    // A tampered state is refused, and the held sign-in is then used up.
    let tampered = callback.url.as_str().replace(&callback.state, "not-the-state");
    let refused = browser.get(&tampered).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let replay = browser.get(callback.url.as_str()).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&app.url("/studio")).await.status(), StatusCode::SEE_OTHER, "nobody got signed in");

    // A session cookie with a forged signature is no session.
    let forged = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = forged
        .get(app.url("/gallery"))
        .header(
            "cookie",
            "atelier_session=AAAAforgedsignatureAAAAAAAAAAAAAAAAAAAAAAA=abcdefabcdefabcdefabcdefabcdefabcdefabcdefa",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn each_person_sees_only_their_own_images() {
    let provider = OidcProvider::start().await;
    let app = app_with_sign_in(&provider, None).await;
    let alice = Browser::new();
    sign_in(&alice, &app, &provider, "alice", "/studio").await;
    let token = alice.form_token(&app).await;
    let made = alice
        .client
        .post(app.url("/studio"))
        .form(&[("prompt", "alice's lighthouse"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    // Answered at once with the job's page; the page shows the image once it is made.
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let job = made.headers()["location"].to_str().unwrap().to_string();
    let mut page = String::new();
    for _ in 0..400 {
        page = alice.get(&app.url(&job)).await.text().await.unwrap();
        if page.contains("data-testid=\"result-image\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(page.contains("data-testid=\"result-image\""), "{page}");
    let gallery = alice.get(&app.url("/gallery")).await.text().await.unwrap();
    let start = gallery.find("href=\"/gallery/").expect("alice's image is in her gallery") + 15;
    let id = gallery[start..].split('"').next().unwrap().to_string();

    let bob = Browser::new();
    sign_in(&bob, &app, &provider, "bob", "/gallery").await;
    assert_eq!(bob.get(&app.url(&format!("/gallery/{id}"))).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(bob.get(&app.url(&format!("/images/{id}/full"))).await.status(), StatusCode::NOT_FOUND);
    let bob_token = bob.form_token(&app).await;
    let delete = bob
        .client
        .post(app.url(&format!("/gallery/{id}/delete")))
        .form(&[("csrf", bob_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    assert_eq!(alice.get(&app.url(&format!("/gallery/{id}"))).await.status(), StatusCode::OK, "still there");
    assert!(!bob.get(&app.url("/gallery")).await.text().await.unwrap().contains("alice's lighthouse"));
}

#[tokio::test]
async fn a_link_token_from_discord_links_once_and_then_says_it_was_used() {
    let provider = OidcProvider::start().await;
    let store_folder = tempfile::tempdir().unwrap();
    let app = app_with_sign_in(&provider, Some(store_folder.path())).await;
    let store = Arc::new(FolderStore::open(store_folder.path()).await.unwrap());
    let accounts = Accounts::new(store, Arc::new(NoDirectory), &reqwest::Url::parse(&app.url("/")).unwrap());
    let link = accounts.issue_link(4_242_424_242).await.unwrap();
    let path = format!("/link?token={}", link.token());

    // Signed out: sign in first, then back to the same link.
    let browser = Browser::new();
    let first = browser.get(&app.url(&path)).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(&first).starts_with("/signin?next=%2Flink%3Ftoken%3D"), "{}", location(&first));
    let after = sign_in(
        &browser,
        &app,
        &provider,
        "carol",
        &form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>(),
    )
    .await;
    assert_eq!(after, path);
    let offer = browser.get(&app.url(&path)).await.text().await.unwrap();
    assert!(offer.contains("data-testid=\"link-offer\"") && offer.contains("4242424242"), "{offer}");

    let token = browser.form_token(&app).await;
    let confirm = browser
        .client
        .post(app.url("/link"))
        .form(&[("token", link.token()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(confirm.text().await.unwrap().contains("data-testid=\"link-done\""));
    let account = browser.get(&app.url("/account")).await.text().await.unwrap();
    assert!(account.contains("data-testid=\"linked-discord\"") && account.contains("4242424242"), "{account}");
    assert!(
        account.contains("data-testid=\"budget-left\"") && account.contains("of today's $5.00 budget left"),
        "{account}"
    );

    // The same link again: used, said plainly, nothing changes.
    let again = browser.get(&app.url(&path)).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await.unwrap().contains("already used"));
    let replay = browser
        .client
        .post(app.url("/link"))
        .form(&[("token", link.token()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let garbage = browser.get(&app.url("/link?token=not-a-token")).await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert!(garbage.text().await.unwrap().contains("not valid"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    let header = |name: &str| response.headers().get(name).map(|value| value.to_str().unwrap().to_string());
    let policy = header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    // Plain HTTP on loopback: no HSTS, which would be wrong there.
    assert_eq!(header("strict-transport-security"), None);
    let compressed =
        app.client.get(app.url("/static/atelier.css")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(compressed.headers().get("content-encoding").unwrap(), "gzip");
}

/// The form token a browser held before signing in (which a page elsewhere may have planted or
/// read) does not survive signing in: the callback gives it a fresh one.
#[tokio::test]
async fn signing_in_gives_the_browser_a_fresh_form_token() {
    let provider = OidcProvider::start().await;
    let app = app_with_sign_in(&provider, None).await;
    let browser = Browser::new();
    let first = browser.get(&app.url("/")).await;
    let before = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|cookie| cookie.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix("atelier_csrf=")?.split(';').next().map(String::from))
        .expect("a form-token cookie for a first-time visitor");
    sign_in(&browser, &app, &provider, "rosa", "/").await;
    let after = browser.form_token(&app).await;
    assert_ne!(after, before, "the token from before signing in carried over");
    let stale = browser
        .client
        .post(app.url("/studio"))
        .form(&[("prompt", "a kite"), ("csrf", before.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN, "the old token still works");
}
