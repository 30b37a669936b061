//! Accounts against real stand-ins: web sign-in through OpenID Connect against
//! `oidc-provider-mock`, the Discord link recorded on a Cognito user in moto, link records and
//! galleries in a folder store.

use std::sync::Arc;

use atelier_shared::adapters::FolderStore;
use atelier_shared::adapters::{Accounts, CognitoDirectory, DISCORD_ID_ATTRIBUTE, NoDirectory};
use atelier_shared::adapters::{ObjectKey, ObjectStore, PutMode};
use atelier_shared::config::OidcConfig;
use atelier_shared::engine::ImageEngine;
use atelier_shared::engine::demo::DemoEngine;
use atelier_shared::gallery::{Gallery, ImageId, ImageRecord, ListFilter, Origin, Owner, Parameters, Variant};
use atelier_shared::images::CheckedImage;
use atelier_shared::oidc::{OidcSignIn, PendingSignIn, SignedInUser};
use atelier_shared::request::{GenerationRequest, Prompt, Seed, Shape, Size};
use atelier_shared::{
    Error,
    engine::{EngineKind, SafetyOutcome},
};
use aws_sdk_cognitoidentityprovider::types::{AttributeDataType, MessageActionType, SchemaAttributeType};
use reqwest::Url;
use time::OffsetDateTime;

use crate::support::moto::Moto;
use crate::support::oidc::OidcProvider;

const PUBLIC_URL: &str = "https://atelier.example/";
const DISCORD_ID: u64 = 123_456_789_012_345_678;

/// A Cognito user pool in moto with the `custom:discord_id` attribute declared, and users.
struct Pool {
    client: aws_sdk_cognitoidentityprovider::Client,
    id: String,
}

impl Pool {
    async fn create(moto: &Moto, usernames: &[&str]) -> Self {
        let client = aws_sdk_cognitoidentityprovider::Client::new(&moto.sdk_config().await);
        let discord_id = SchemaAttributeType::builder()
            .name("discord_id")
            .attribute_data_type(AttributeDataType::String)
            .mutable(true)
            .build();
        let pool = client.create_user_pool().pool_name("atelier-test").schema(discord_id).send().await.unwrap();
        let id = pool.user_pool().unwrap().id().unwrap().to_string();
        for username in usernames {
            client
                .admin_create_user()
                .user_pool_id(&id)
                .username(*username)
                .message_action(MessageActionType::Suppress)
                .send()
                .await
                .unwrap();
        }
        Self { client, id }
    }

    fn directory(&self) -> Arc<CognitoDirectory> {
        Arc::new(CognitoDirectory::from_client(self.client.clone(), self.id.clone()))
    }

    /// The user's `custom:discord_id`, read back with AdminGetUser.
    async fn discord_id_of(&self, username: &str) -> Option<String> {
        let user = self.client.admin_get_user().user_pool_id(&self.id).username(username).send().await.unwrap();
        user.user_attributes()
            .iter()
            .find(|attribute| attribute.name() == DISCORD_ID_ATTRIBUTE)
            .and_then(|attribute| attribute.value().map(String::from))
    }
}

async fn folder_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::open(folder.path().join("store")).await.unwrap());
    (folder, store)
}

fn web_user(subject: &str, username: &str) -> SignedInUser {
    SignedInUser {
        discord: None,
        subject: subject.into(),
        username: username.into(),
        email: None,
        name: None,
        owner: Owner::web_account(subject).unwrap(),
    }
}

/// The message of a user error; fails the test on an operator error.
fn user_message(error: Error) -> String {
    assert!(error.is_user_error(), "expected a user error, got: {error:?}");
    error.user_message()
}

fn sign_in(provider: &OidcProvider) -> OidcSignIn {
    let config = OidcConfig {
        issuer: Url::parse(&provider.issuer()).unwrap(),
        client_id: "atelier-web".into(),
        client_secret: Some(secrecy::SecretString::from("atelier-secret")),
        cognito_user_pool_id: None,
        session_secret: secrecy::SecretBox::new(vec![7; 32].into_boxed_slice()),
    };
    OidcSignIn::new(&config, &Url::parse(PUBLIC_URL).unwrap()).unwrap()
}

/// Signs `subject` in through the provider, as a browser would, and returns the pending
/// sign-in with the callback's state and code.
async fn authorize(provider: &OidcProvider, oidc: &OidcSignIn, subject: &str) -> (PendingSignIn, String, String) {
    let (authorize_url, pending) = oidc.begin_sign_in("/gallery").await.unwrap();
    let callback = provider.authorize(authorize_url.as_str(), subject).await;
    assert_eq!(
        callback.url.as_str().split('?').next().unwrap(),
        "https://atelier.example/auth/callback",
        "the provider must send the browser back to the callback"
    );
    (pending, callback.state, callback.code)
}

// ---- OpenID Connect sign-in ----

#[tokio::test]
async fn signing_in_through_the_provider_gives_the_verified_user() {
    let provider = OidcProvider::start().await;
    provider
        .set_user(
            "sub-alice",
            serde_json::json!({"email": "alice@example.com", "name": "Alice", "cognito:username": "alice"}),
        )
        .await;
    let oidc = sign_in(&provider);

    let (authorize_url, pending) = oidc.begin_sign_in("/gallery?page=2").await.unwrap();
    let query: std::collections::HashMap<String, String> = authorize_url.query_pairs().into_owned().collect();
    assert!(authorize_url.as_str().starts_with(&format!("{}/oauth2/authorize?", provider.issuer())), "{authorize_url}");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "atelier-web");
    assert_eq!(query["redirect_uri"], "https://atelier.example/auth/callback");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["scope"].split(' ').any(|scope| scope == "openid"), "{query:?}");
    for parameter in ["state", "nonce", "code_challenge"] {
        assert!(query[parameter].len() >= 22, "{parameter} is too short to be random: {query:?}");
    }
    assert_eq!(pending.return_to(), "/gallery?page=2");

    let callback = provider.authorize(authorize_url.as_str(), "sub-alice").await;
    assert_eq!(callback.state, query["state"]);
    let user = oidc.finish_sign_in(&pending, &callback.state, &callback.code).await.unwrap();
    assert_eq!(
        user,
        SignedInUser {
            discord: None,
            subject: "sub-alice".into(),
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            name: Some("Alice".into()),
            owner: Owner::web_account("sub-alice").unwrap(),
        }
    );

    // A code works once.
    let replayed = oidc.finish_sign_in(&pending, &callback.state, &callback.code).await.unwrap_err();
    assert_eq!(user_message(replayed), "this sign-in has expired or was already used: start signing in again");

    // The provider offers RP-initiated logout, which comes back to the public URL.
    let logout = oidc.logout_url().await.unwrap().expect("the provider names an end_session_endpoint");
    assert!(logout.as_str().starts_with(&provider.url("/oauth2/end_session?")), "{logout}");
    let logout_query: std::collections::HashMap<String, String> = logout.query_pairs().into_owned().collect();
    assert_eq!(logout_query["client_id"], "atelier-web");
    assert_eq!(logout_query["post_logout_redirect_uri"], PUBLIC_URL);

    // A return path to another site is not followed.
    let (_, pending) = oidc.begin_sign_in("https://evil.example/").await.unwrap();
    assert_eq!(pending.return_to(), "/");
}

#[tokio::test]
async fn a_tampered_state_is_refused_before_the_code_is_used() {
    let provider = OidcProvider::start().await;
    let oidc = sign_in(&provider);
    let (pending, state, code) = authorize(&provider, &oidc, "sub-alice").await;

    let refused = oidc.finish_sign_in(&pending, &format!("{state}x"), &code).await.unwrap_err();
    assert_eq!(user_message(refused), "this sign-in does not match the one you started: start signing in again");
    let refused = oidc.finish_sign_in(&pending, "", &code).await.unwrap_err();
    assert!(user_message(refused).ends_with("start signing in again"));

    // The state was checked first: the code never reached the provider, so it still works.
    let user = oidc.finish_sign_in(&pending, &state, &code).await.unwrap();
    assert_eq!(user.subject, "sub-alice");
    assert_eq!(user.username, "sub-alice", "without cognito:username the subject names the user");
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let provider = OidcProvider::start().await;
    let oidc = sign_in(&provider);
    let (pending, state, code) = authorize(&provider, &oidc, "sub-alice").await;
    // The session's nonce differs from the one the ID token was issued for (as when a token
    // from another sign-in is injected).
    let mut kept = serde_json::to_value(&pending).unwrap();
    kept["nonce"] = serde_json::Value::String("a-nonce-from-another-sign-in".into());
    let tampered: PendingSignIn = serde_json::from_value(kept).unwrap();

    let refused = oidc.finish_sign_in(&tampered, &state, &code).await.unwrap_err();
    assert_eq!(user_message(refused), "this sign-in does not match the one you started: start signing in again");
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    // oidc-provider-mock cannot issue a token that has expired already (`--token-max-age 0`
    // makes its token endpoint fail, and a negative age cannot be parsed), so the provider's
    // real hour-long token is checked by a verifier whose clock is an hour and a minute on.
    let provider = OidcProvider::start().await;
    let oidc = sign_in(&provider).with_clock(|| OffsetDateTime::now_utc() + time::Duration::minutes(61));
    let (pending, state, code) = authorize(&provider, &oidc, "sub-alice").await;

    let refused = oidc.finish_sign_in(&pending, &state, &code).await.unwrap_err();
    assert_eq!(user_message(refused), "your sign-in took too long and has expired: start signing in again");

    // The same kind of token, checked at the right time, is accepted.
    let oidc = sign_in(&provider).with_clock(|| OffsetDateTime::now_utc() + time::Duration::minutes(59));
    let (pending, state, code) = authorize(&provider, &oidc, "sub-alice").await;
    oidc.finish_sign_in(&pending, &state, &code).await.unwrap();
}

// ---- linking ----

#[tokio::test]
async fn a_link_token_binds_the_accounts_once_and_is_recorded_in_cognito() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto, &["alice"]).await;
    let provider = OidcProvider::start().await;
    provider
        .set_user("sub-alice", serde_json::json!({"email": "alice@example.com", "cognito:username": "alice"}))
        .await;
    let (_folder, store) = folder_store().await;
    let accounts = Accounts::new(store.clone(), pool.directory(), &Url::parse(PUBLIC_URL).unwrap());

    // /link in Discord.
    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    assert_eq!(token.url().as_str(), format!("https://atelier.example/link?token={}", token.token()));
    assert_eq!(token.discord_user_id(), DISCORD_ID);
    let lifetime = token.expires_at() - OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::minutes(9) && lifetime <= time::Duration::minutes(10), "{lifetime}");
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), Owner::discord(DISCORD_ID));

    // The person opens the link, signs in on the web, and confirms.
    let oidc = sign_in(&provider);
    let (pending, state, code) = authorize(&provider, &oidc, "sub-alice").await;
    let alice = oidc.finish_sign_in(&pending, &state, &code).await.unwrap();
    assert_eq!(accounts.preview_link(token.token()).await.unwrap().discord_user_id, DISCORD_ID);
    let linked = accounts.consume_link(token.token(), &alice).await.unwrap();
    assert_eq!(linked.link.owner, alice.owner);
    assert_eq!(linked.link.discord_user_id, DISCORD_ID);
    assert_eq!(pool.discord_id_of("alice").await, Some(DISCORD_ID.to_string()));
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), alice.owner);
    assert_eq!(accounts.link_for_web(&alice.owner).await.unwrap(), Some(linked.link.clone()));

    // The same link again, by anyone: refused.
    let again = accounts.consume_link(token.token(), &alice).await.unwrap_err();
    assert_eq!(user_message(again), "this link was already used: run /link again");
    let again = accounts.preview_link(token.token()).await.unwrap_err();
    assert_eq!(user_message(again), "this link was already used: run /link again");

    // Another replica whose clock is 10 minutes on: a fresh token has expired there.
    let fresh = accounts.issue_link(DISCORD_ID).await.unwrap();
    let later = Accounts::new(store.clone(), pool.directory(), &Url::parse(PUBLIC_URL).unwrap())
        .with_clock(|| OffsetDateTime::now_utc() + time::Duration::minutes(10));
    let expired = later.consume_link(fresh.token(), &alice).await.unwrap_err();
    assert_eq!(user_message(expired), "this link has expired: run /link in Discord again");

    // A forged token, and a real one cut short.
    let forged = accounts.consume_link("bm90LWEtcmVhbC10b2tlbi1idXQtdGhlLXJpZ2h0LXNo", &alice).await.unwrap_err();
    assert!(user_message(forged).starts_with("this link is not valid"));
    let cut = accounts.consume_link(&fresh.token()[..20], &alice).await.unwrap_err();
    assert!(user_message(cut).starts_with("this link is not valid"));

    // The store keeps hashes of tokens, never the tokens.
    let keys = store.list("links/", None, 100).await.unwrap();
    let keys: Vec<&str> = keys.iter().map(|key| key.as_str()).collect();
    assert!(keys.contains(&format!("links/discord/{DISCORD_ID}.json").as_str()), "{keys:?}");
    assert!(keys.contains(&format!("links/web/{}.json", alice.owner).as_str()), "{keys:?}");
    assert_eq!(keys.iter().filter(|key| key.ends_with(".used")).count(), 1, "{keys:?}");
    assert!(keys.iter().all(|key| !key.contains(token.token()) && !key.contains(fresh.token())), "{keys:?}");
}

#[tokio::test]
async fn two_replicas_racing_with_one_token_link_once() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto, &["alice"]).await;
    let (_folder, store) = folder_store().await;
    let public_url = Url::parse(PUBLIC_URL).unwrap();
    let first = Accounts::new(store.clone(), pool.directory(), &public_url);
    let second = Accounts::new(store.clone(), pool.directory(), &public_url);
    let token = first.issue_link(DISCORD_ID).await.unwrap();
    let alice = web_user("sub-alice", "alice");

    let (one, two) =
        tokio::join!(first.consume_link(token.token(), &alice), second.consume_link(token.token(), &alice));
    let outcomes = [one, two];
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1, "{outcomes:?}");
    let refused = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(user_message(refused), "this link was already used: run /link again");
}

#[tokio::test]
async fn a_second_web_account_cannot_take_a_linked_discord_account() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto, &["alice", "bob"]).await;
    let (_folder, store) = folder_store().await;
    let accounts = Accounts::new(store, pool.directory(), &Url::parse(PUBLIC_URL).unwrap());
    let alice = web_user("sub-alice", "alice");
    let bob = web_user("sub-bob", "bob");

    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    accounts.consume_link(token.token(), &alice).await.unwrap();

    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    let refused = accounts.consume_link(token.token(), &bob).await.unwrap_err();
    assert!(
        user_message(refused)
            .starts_with("this Discord account is already linked to another web account: unlink it first"),
    );
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), alice.owner);
    assert_eq!(accounts.link_for_web(&bob.owner).await.unwrap(), None);
    assert_eq!(pool.discord_id_of("alice").await, Some(DISCORD_ID.to_string()));
    assert_eq!(pool.discord_id_of("bob").await, None);

    // Relinking takes unlinking first; then the very same token works for bob.
    accounts.unlink_from_discord(DISCORD_ID).await.unwrap();
    accounts.consume_link(token.token(), &bob).await.unwrap();
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), bob.owner);
    assert_eq!(pool.discord_id_of("alice").await, None);
    assert_eq!(pool.discord_id_of("bob").await, Some(DISCORD_ID.to_string()));
}

#[tokio::test]
async fn unlinking_works_from_either_side_and_clears_cognito() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto, &["alice"]).await;
    let (_folder, store) = folder_store().await;
    let accounts = Accounts::new(store.clone(), pool.directory(), &Url::parse(PUBLIC_URL).unwrap());
    let alice = web_user("sub-alice", "alice");

    // From Discord (/unlink).
    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    accounts.consume_link(token.token(), &alice).await.unwrap();
    let unlinked = accounts.unlink_from_discord(DISCORD_ID).await.unwrap();
    assert_eq!(unlinked.owner, alice.owner);
    assert_eq!(pool.discord_id_of("alice").await, None);
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), Owner::discord(DISCORD_ID));
    assert_eq!(accounts.link_for_web(&alice.owner).await.unwrap(), None);
    let again = accounts.unlink_from_discord(DISCORD_ID).await.unwrap_err();
    assert!(user_message(again).starts_with("your Discord account is not linked"));

    // From the web account.
    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    accounts.consume_link(token.token(), &alice).await.unwrap();
    assert_eq!(pool.discord_id_of("alice").await, Some(DISCORD_ID.to_string()));
    let unlinked = accounts.unlink_from_web(&alice.owner).await.unwrap();
    assert_eq!(unlinked.discord_user_id, DISCORD_ID);
    assert_eq!(pool.discord_id_of("alice").await, None);
    assert_eq!(accounts.owner_for_discord(DISCORD_ID).await.unwrap(), Owner::discord(DISCORD_ID));
    let again = accounts.unlink_from_web(&alice.owner).await.unwrap_err();
    assert!(user_message(again).starts_with("this web account is not linked"));
    assert!(store.list("links/discord/", None, 10).await.unwrap().is_empty());
    assert!(store.list("links/web/", None, 10).await.unwrap().is_empty());
}

// ---- the gallery after linking ----

async fn picture() -> CheckedImage {
    let request = GenerationRequest {
        guidance: Default::default(),
        shape: Shape::Size(Size { width: 64, height: 64 }),
        ..GenerationRequest::from_prompt(Prompt::parse("a pebble").unwrap())
    };
    DemoEngine.generate(&request).await.unwrap().images.remove(0).image
}

fn record(owner: &Owner, image: &CheckedImage, origin: Origin) -> ImageRecord {
    ImageRecord {
        id: ImageId::new(),
        owner: owner.clone(),
        prompt: Some("a pebble".into()),
        negative_prompt: None,
        model_id: "atelier.demo".into(),
        model_family: "demo".into(),
        engine: EngineKind::Demo,
        parameters: Parameters::default(),
        seed: Seed(1),
        size: image.size(),
        created_at: OffsetDateTime::now_utc(),
        safety: SafetyOutcome::NotChecked,
        parent: None,
        origin,
        session: None,
        media_type: image.media_type().into(),
        extension: image.extension().into(),
    }
}

async fn all_ids(gallery: &Gallery, owner: &Owner) -> Vec<ImageId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = gallery.list(owner, &ListFilter::default(), cursor.as_deref(), 2).await.unwrap();
        ids.extend(page.records.iter().map(|record| record.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn linking_brings_the_discord_images_into_the_web_gallery_once() {
    let (_folder, store) = folder_store().await;
    let gallery = Gallery::new(store.clone());
    let accounts = Accounts::new(store.clone(), Arc::new(NoDirectory), &Url::parse(PUBLIC_URL).unwrap());
    let alice = web_user("sub-alice", "alice");
    let discord = Owner::discord(DISCORD_ID);
    let image = picture().await;
    let from_discord = Origin::Discord { guild_id: Some(1), channel_id: 2, message_id: Some(3) };

    // Before linking: three images made from Discord, one on the web.
    let mut before = Vec::new();
    for _ in 0..3 {
        let made = record(&discord, &image, from_discord.clone());
        gallery.save(&made, &image).await.unwrap();
        before.push(made.id);
    }
    let on_the_web = record(&alice.owner, &image, Origin::Web);
    gallery.save(&on_the_web, &image).await.unwrap();

    // A crash during an earlier move had already copied the first image whole (bytes,
    // thumbnail and rewritten record) into the web gallery, without deleting the source.
    let interrupted = gallery.record(&discord, before[0]).await.unwrap();
    let source_keys = store.list(&format!("users/{discord}/"), None, 100).await.unwrap();
    for key in source_keys.iter().filter(|key| key.as_str().contains(&interrupted.id.to_string())) {
        let bytes = store.get(key).await.unwrap();
        let target = key.as_str().replacen(discord.as_str(), alice.owner.as_str(), 1);
        store
            .put(&ObjectKey::new(target).unwrap(), bytes, "application/octet-stream", PutMode::CreateOnly)
            .await
            .unwrap();
    }
    for key in source_keys.iter().filter(|key| key.as_str().contains("/records/")) {
        let mut copied: ImageRecord = serde_json::from_slice(&store.get(key).await.unwrap()).unwrap();
        if copied.id == interrupted.id {
            copied.owner = alice.owner.clone();
            let target = key.as_str().replacen(discord.as_str(), alice.owner.as_str(), 1);
            let body = bytes::Bytes::from(serde_json::to_vec(&copied).unwrap());
            store.put(&ObjectKey::new(target).unwrap(), body, "application/json", PutMode::CreateOnly).await.unwrap();
        }
    }
    assert_eq!(all_ids(&gallery, &alice.owner).await.len(), 2, "the interrupted copy already shows on the web");

    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    let linked = accounts.consume_link(token.token(), &alice).await.unwrap();
    assert_eq!(linked.images_moved, 3);

    // After linking: the bot's next image goes to the web account.
    let owner = accounts.owner_for_discord(DISCORD_ID).await.unwrap();
    assert_eq!(owner, alice.owner);
    let after = record(&owner, &image, from_discord.clone());
    gallery.save(&after, &image).await.unwrap();

    let mut expected: Vec<ImageId> = before.iter().copied().chain([on_the_web.id, after.id]).collect();
    expected.sort();
    expected.reverse();
    let listed = all_ids(&gallery, &alice.owner).await;
    assert_eq!(listed, expected, "every image once, newest first");
    for id in &before {
        let moved = gallery.record(&alice.owner, *id).await.unwrap();
        assert_eq!(moved.owner, alice.owner);
        assert_eq!(moved.origin, from_discord);
        let (bytes, _) = gallery.image(&alice.owner, *id, Variant::Full).await.unwrap();
        assert_eq!(&bytes, image.bytes());
        gallery.image(&alice.owner, *id, Variant::Thumbnail).await.unwrap();
    }
    // Nothing is left behind under the Discord id.
    assert!(all_ids(&gallery, &discord).await.is_empty());
    assert!(store.list(&format!("users/{discord}/"), None, 100).await.unwrap().is_empty());

    // Running the move again changes nothing.
    assert_eq!(gallery.adopt(&discord, &alice.owner).await.unwrap(), 0);
    assert_eq!(all_ids(&gallery, &alice.owner).await, expected);
}

/// `atelier admin export` writes every object of a person (both sides of a link) into one
/// archive; `atelier admin delete --yes` then leaves no key in the store that names them, clears
/// the Discord id from their Cognito user, and keeps everyone else's things.
#[tokio::test]
async fn admin_export_holds_every_object_of_a_person_and_delete_leaves_nothing_of_them() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto, &["alice"]).await;
    let (folder, store) = folder_store().await;
    let accounts = Accounts::new(store.clone(), pool.directory(), &Url::parse(PUBLIC_URL).unwrap());
    let alice = web_user("sub-alice", "alice");
    let token = accounts.issue_link(DISCORD_ID).await.unwrap();
    accounts.consume_link(token.token(), &alice).await.unwrap();
    assert_eq!(pool.discord_id_of("alice").await, Some(DISCORD_ID.to_string()));

    // Things of hers on both sides of the link, and things of Bob's.
    let discord = Owner::discord(DISCORD_ID);
    let bob = Owner::discord(42);
    let put = |key: String, body: String| {
        let store = store.clone();
        async move {
            let key = ObjectKey::new(key).unwrap();
            store.put(&key, body.into_bytes().into(), "application/json", PutMode::Overwrite).await.unwrap();
        }
    };
    for owner in [&alice.owner, &discord, &bob] {
        put(format!("users/{owner}/records/01.json"), "{}".into()).await;
        put(format!("users/{owner}/images/01J00000000000000000000000.png"), "png".into()).await;
        put(format!("users/{owner}/preferences.json"), "{}".into()).await;
        put(format!("conversations/thread-{owner}.json"), format!(r#"{{"owner":"{owner}","mode":"assistant"}}"#)).await;
        put(format!("sessions/{owner}.json"), format!(r#"{{"user":{{"owner":"{owner}"}}}}"#)).await;
    }
    let everything = store.list("", None, 1_000).await.unwrap();
    let names_her = |key: &str| {
        key.contains(alice.owner.as_str()) || key.contains(&DISCORD_ID.to_string()) || key.contains("sub-alice")
    };
    let hers: std::collections::BTreeSet<String> =
        everything.iter().map(|key| key.as_str().to_string()).filter(|key| names_her(key)).collect();
    assert!(hers.len() >= 12, "{hers:?}");

    let admin = |arguments: &[&str]| {
        let mut command = crate::support::atelier(folder.path());
        command
            .arg("admin")
            .args(arguments)
            .env("ATELIER_STORE", format!("file://{}", folder.path().join("store").display()))
            .env("ATELIER_ENGINE", "demo")
            // The pool belongs to the sign-in settings; nothing here signs anyone in.
            .env("ATELIER_OIDC_ISSUER", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test")
            .env("ATELIER_OIDC_CLIENT_ID", "atelier-web")
            .env("ATELIER_SESSION_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
            .env("ATELIER_COGNITO_USER_POOL_ID", &pool.id)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", moto.endpoint());
        crate::support::run(&mut command)
    };

    // Export: one archive holding exactly her objects.
    let archive_path = folder.path().join("alice.tar");
    let (output, stdout, stderr) =
        admin(&["export", &format!("discord:{DISCORD_ID}"), "--out", archive_path.to_str().unwrap()]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("wrote"), "{stdout}");
    let mut archive = tar::Archive::new(std::fs::File::open(&archive_path).unwrap());
    let exported: std::collections::BTreeSet<String> =
        archive.entries().unwrap().map(|entry| entry.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    let conversations_and_sessions: std::collections::BTreeSet<String> = everything
        .iter()
        .map(|key| key.as_str().to_string())
        .filter(|key| {
            (key.starts_with("conversations/") || key.starts_with("sessions/")) && !key.contains("discord-42")
        })
        .collect();
    let expected: std::collections::BTreeSet<String> = hers.union(&conversations_and_sessions).cloned().collect();
    assert_eq!(exported, expected, "the archive is not exactly her objects");

    // Delete needs --yes, and then leaves nothing that names her.
    let (output, _, stderr) = admin(&["delete", &format!("discord:{DISCORD_ID}")]);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(store.list("", None, 1_000).await.unwrap().len(), everything.len(), "deleted without --yes");
    let (output, stdout, stderr) = admin(&["delete", &format!("discord:{DISCORD_ID}"), "--yes"]);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("cleared in Cognito"), "{stdout}");
    let left = store.list("", None, 1_000).await.unwrap();
    let left: Vec<&str> = left.iter().map(|key| key.as_str()).collect();
    assert!(left.iter().all(|key| !names_her(key)), "{left:?}");
    for key in ["users/discord-42/records/01.json", "conversations/thread-discord-42.json", "sessions/discord-42.json"]
    {
        assert!(left.contains(&key), "Bob's {key} was deleted: {left:?}");
    }
    assert_eq!(left.len(), everything.len() - expected.len(), "{left:?}");
    assert_eq!(pool.discord_id_of("alice").await, None, "the Cognito attribute is still there");
}
