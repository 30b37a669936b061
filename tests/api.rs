//! The JSON API under `/api/`, through HTTP, signed in with access tokens.
//!
//! oidc-provider-mock (the provider the sign-in tests use) issues *opaque* access tokens (42
//! random characters from authlib), not JWTs, so it cannot stand in for Cognito here. Instead
//! [`TestIssuer`] is a tiny provider of our own on loopback: it serves discovery and a JWKS
//! at Cognito's paths (`{issuer}/.well-known/openid-configuration`, `/.well-known/jwks.json`,
//! the issuer ending in a pool id), and the tests sign Cognito-shaped access tokens (RS256,
//! `kid`, `token_use`, `client_id`, no `aud`) with a key whose public half it publishes. The
//! app verifies them exactly as it would Cognito's: discovery, the JWKS, the claims.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atelier_shared::config::{Config, RawSettings};
use atelier_shared::oidc::access::AccessTokenVerifier;
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::bedrock::BedrockStandIn;
use crate::support::oidc::OidcProvider;
use crate::support::python::venv_program;
use crate::support::{self, CSRF_TOKEN, TestApp};

/// Our app client at the test issuer.
const CLIENT_ID: &str = "atelier-api-client";
/// The last part of the issuer URL, as in Cognito's `https://cognito-idp.REGION.amazonaws.com/POOL_ID`.
const POOL_ID: &str = "us-east-1_AtelierTest";
/// Signs session cookies (needed whenever sign-in is configured).
const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const RSA_KEY_ID: &str = "rsa-key-1";
const EC_KEY_ID: &str = "ec-key-2";

/// The issuer's RSA signing key: made for these tests with `openssl genrsa -traditional 2048`;
/// it signs nothing anywhere else.
const RSA_SIGNING_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtk6DrXRIIu5itM7fhqhSZvhv3dfErWgN3UltTWtpJUx110Pk
akS+scHm6+A0/p8Rflkwa8aRwzTSFhqXoksyklWRWp/lxPCUNUJgVK4ds1eyn4FK
Z0eYgjZRAqpLCZMtPMPbH91KVwrlNHoMLtkIms2sldHgvloGEaNi85vQUBITF//p
mZK4q/vH7HdQ3B/RXySL7pM9MisvebDQfZVDInz4szv6T5j0+J1MuwIQ8CeH7tBP
0ORPQcNwDbqnpdL9x+UN74bMWvwMFDQvmRhkxMiVLv28eXO229462/F9ahHLWvZC
2HA4Wo88VGdk2f1E1JsmU38UzZjpDrNxq0auBQIDAQABAoIBAAQvRdsrvyLQzAKQ
eRWzNBOvAjUFEzupFssMjhi9LXBbZ/JlWY84PWmrz2wnUlrB4KSWJtlieSK89Kbo
kgXPVL2Cf0/65Er3/BRDjh3Y0qUKOfcVVarh5tXzqeULbvuCSFiLulzp4cn2XbqC
+VfzSBJIRFI6u2jt0hPXke7mQGAwxV47DPdt6OQk0FWAyZNSvc7mhFar/FFfZLmo
MErPJyLX4xMZJXbRP8QB7p3s5/kcyknimmE/f9FRNmls1syFrRDrslfDC5idX4BK
Pp3z0f6jOs5ETJwba7UqaB3XApaJeZ4FnpsdHnbxoIli45I8eLYDatMXG3QEZPiv
ghGot6ECgYEA8v3ofXALf09bBOU4nzv/P57f9GjavjUfR3y7PriB7wJ00NjD8Ve9
pizJwiRKzwWFtFMRsLY/eFO218v3K1ikJT8QAsc4n1HYUYI1ZbOxglRyo3fhyUFC
rVujc2wTCwR/kFI8ZfKbYGDXlm3E5vLC29wgn804h4AL2k0n5F5pbokCgYEAwBDx
uTn/4V9Jm4zs04c6TNWZEkzFNEcCIgJc39LluyNuceHON9RIO+t5PgjB8GZGtvX0
sSsAU2pxKFfmgOQ3tVH2d2yXzQBaOMi4sT5xRjJpGTmPEO5UlBgBm+MOToKaiv0O
nd1tG87RUcaDPlmUGe1ILmaid6tmbgpa7HTVxJ0CgYBz1CTm5moUnbc9diavgOID
abBHyVO8J4ZphUOcekc1r24Pv8RnXvPAKsliCfq/BFrfwllEaxuGOCGIbGm999sH
BjCTonOTPmhnMjJR8H5FKgwbcCHo1Xr7OBuKAZJyRgqouQqhbiwynPcnddvOWxoX
w66pfiHcNWVxAiZp7bdEQQKBgQCYp58IgoHPJkZB3QOKqKt80DSGqAABqgKW91vM
BjrTv7iTyU53b0EuZt0JojpLEW9ZEio2+p+arTpdP2gUv89LTWbgyq3ooUQUZ+zr
615q1bxU8Tu10EfnISF+PjxryEB/Ad0xOgHznTEflvFPiDE/XioFv0uYY+HYymA0
GjShvQKBgDzIl2qnA44gePaZNkQXQ/IfIp+zFb9j9jyvZdE0NhJPiwmffs3WDmIC
EDZJICUzyJlFmieFmnU5aM0Gnvm+pSY5Xq9mkT+TeWXbsL2kpWO+n+VX5yWs7vsa
ZuPMrt/IzkTg/CG5OzFqQMGKJOeVKBBDtiNY2B2ourIm2HyZ+6IL
-----END RSA PRIVATE KEY-----";

/// A second, P-256 key: published later to test key rotation, and used to forge tokens that
/// name the RSA key's id. Made with `openssl ecparam -genkey -name prime256v1 | openssl pkcs8 -topk8 -nocrypt`.
const EC_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnRQObbIkyNbnndNo
J0mVaUBRm1yRqUaFnl8dfjbXnPOhRANCAAREyMvtGDt8EDv8yhhr/nYJOYHj2az8
vaFrjAMLBXFsEkz520IOEHLI2hi0Yns3CfRR0wpcPJRnohamB22GIBc3
-----END PRIVATE KEY-----";

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_SIGNING_KEY.as_bytes()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_SIGNING_KEY.as_bytes()).unwrap()
}

/// A public key as a JWKS lists it.
fn public_jwk(key: &EncodingKey, algorithm: Algorithm, key_id: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, algorithm).unwrap();
    jwk.common.key_id = Some(key_id.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::from(algorithm));
    serde_json::to_value(jwk).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Clone)]
struct IssuerState {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    key_fetches: Arc<AtomicUsize>,
}

async fn discovery(State(state): State<IssuerState>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code", "token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(state): State<IssuerState>) -> Json<Value> {
    state.key_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = state.keys.lock().unwrap().clone();
    Json(json!({ "keys": keys }))
}

/// A Cognito-like issuer on loopback: discovery and a JWKS (see the module documentation).
struct TestIssuer {
    state: IssuerState,
    task: tokio::task::JoinHandle<()>,
}

impl TestIssuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/{POOL_ID}", listener.local_addr().unwrap());
        let state = IssuerState {
            issuer,
            keys: Arc::new(Mutex::new(vec![public_jwk(&rsa_key(), Algorithm::RS256, RSA_KEY_ID)])),
            key_fetches: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .route(&format!("/{POOL_ID}/.well-known/openid-configuration"), get(discovery))
            .route(&format!("/{POOL_ID}/.well-known/jwks.json"), get(jwks))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, task }
    }

    fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Rotates in the P-256 key (the RSA key stays listed).
    fn publish_second_key(&self) {
        self.state.keys.lock().unwrap().push(public_jwk(&ec_key(), Algorithm::ES256, EC_KEY_ID));
    }

    fn key_fetches(&self) -> usize {
        self.state.key_fetches.load(Ordering::SeqCst)
    }

    /// The claims of a Cognito access token for `subject`, valid for an hour.
    fn claims(&self, subject: &str) -> Value {
        let now = now();
        json!({
            "sub": subject,
            "iss": self.issuer(),
            "client_id": CLIENT_ID,
            "origin_jti": format!("origin-{subject}"),
            "event_id": "f1e0d2c3-0000-4000-8000-000000000001",
            "token_use": "access",
            "scope": "openid email profile",
            "auth_time": now,
            "exp": now + 3600,
            "iat": now,
            "jti": format!("jti-{subject}-{now}"),
            "username": format!("user-{subject}"),
        })
    }

    /// Signs claims as Cognito does: RS256 with the key's id, no `typ`.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(RSA_KEY_ID.into());
        header.typ = None;
        jsonwebtoken::encode(&header, claims, &rsa_key()).unwrap()
    }

    /// A valid access token for `subject`.
    fn token(&self, subject: &str) -> String {
        self.sign(&self.claims(subject))
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Atelier with sign-in through the test issuer (demo engine, folder store).
async fn app_with(issuer: &TestIssuer, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("ATELIER_OIDC_ISSUER", issuer.issuer()),
        ("ATELIER_OIDC_CLIENT_ID", CLIENT_ID),
        ("ATELIER_SESSION_SECRET", SESSION_SECRET),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(&settings).await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The status and JSON body of a call.
async fn call_json(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = call(app, method, path, token, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} answered {status} with non-JSON: {text}"));
    (status, value)
}

/// Generates through the API: the job it answers with at once (202), followed until done.
async fn generate(app: &TestApp, token: &str, body: Value) -> Vec<Value> {
    let accepted = call(app, Method::POST, "/api/generate", Some(token), Some(body)).await;
    let job = app.api_job_outcome(accepted, Some(token)).await;
    assert_eq!(job["state"], "done", "{job}");
    job["images"].as_array().unwrap().clone()
}

/// Edits through the API with a multipart form, followed until done; returns the job.
async fn edit(app: &TestApp, token: &str, form: reqwest::multipart::Form) -> Value {
    let accepted = app.client.post(app.url("/api/edit")).bearer_auth(token).multipart(form).send().await.unwrap();
    app.api_job_outcome(accepted, Some(token)).await
}

async fn image_ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, page) = call_json(app, Method::GET, &format!("/api/images{query}"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["images"].as_array().unwrap().iter().map(|image| image["id"].as_str().unwrap().to_string()).collect()
}

fn record_files(app: &TestApp) -> usize {
    walk(&app.data.path().join("store")).into_iter().filter(|path| path.to_string_lossy().contains("/records/")).count()
}

fn walk(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_pixel(width, height, image::Rgb([30, 120, 200]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

#[tokio::test]
async fn a_bearer_token_signs_in_and_scopes_the_gallery_to_its_user() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let (alice, bob) = (issuer.token("sub-alice"), issuer.token("sub-bob"));

    let (status, me) = call_json(&app, Method::GET, "/api/me", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["owner"], "web-sub-alice");
    assert_eq!(me["signed_in_with"], "access_token");
    assert_eq!(me["subject"], "sub-alice");
    assert_eq!(me["name"], "user-sub-alice");
    assert_eq!(me["usage"]["images_today"], 0);
    // (The web sign-in fetches the keys for itself at start; these are the API's own fetches.)
    let key_fetches = issuer.key_fetches();

    let alices = generate(&app, &alice, json!({"prompt": "a red fox in snow", "seed": 11})).await;
    let bobs = generate(&app, &bob, json!({"prompt": "a blue whale", "seed": "12"})).await;
    let (alices_id, bobs_id) = (alices[0]["id"].as_str().unwrap(), bobs[0]["id"].as_str().unwrap());
    assert_eq!(alices[0]["seed"], 11);
    assert_eq!(alices[0]["source"], "web");

    // Each sees only their own.
    assert_eq!(image_ids(&app, &alice, "").await, [alices_id]);
    assert_eq!(image_ids(&app, &bob, "").await, [bobs_id]);

    // Bob's image is "not found" for Alice, whatever she tries, and stays.
    for (method, path) in [
        (Method::GET, format!("/api/images/{bobs_id}")),
        (Method::GET, format!("/api/images/{bobs_id}/file")),
        (Method::GET, format!("/api/images/{bobs_id}/thumbnail")),
        (Method::DELETE, format!("/api/images/{bobs_id}")),
    ] {
        let (status, error) = call_json(&app, method.clone(), &path, Some(&alice), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {error}");
        assert_eq!(error["error"], "not_found");
    }
    let form = reqwest::multipart::Form::new().text("mode", "variation").text("image_id", bobs_id.to_string());
    let response = app.client.post(app.url("/api/edit")).bearer_auth(&alice).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(image_ids(&app, &bob, "").await, [bobs_id]);
    assert_eq!(image_ids(&app, &alice, "").await, [alices_id]);

    // The keys were fetched once, on the first request, for all those requests.
    assert_eq!(issuer.key_fetches(), key_fetches);
}

#[tokio::test]
async fn refused_tokens_are_401_with_a_challenge_and_change_nothing() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let claims = issuer.claims("sub-mallory");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims.clone();
        change(&mut claims);
        claims
    };

    let expired = issuer.sign(&with(&|claims| {
        claims["iat"] = json!(now() - 7200);
        claims["exp"] = json!(now() - 600);
    }));
    let other_client = issuer.sign(&with(&|claims| claims["client_id"] = json!("another-app-client")));
    let other_issuer = issuer.sign(&with(&|claims| {
        claims["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeoneElse")
    }));
    let id_token = issuer.sign(&with(&|claims| {
        claims["token_use"] = json!("id");
        claims["aud"] = json!(CLIENT_ID);
    }));
    let unlabelled = issuer.sign(&with(&|claims| {
        claims.as_object_mut().unwrap().remove("token_use");
    }));
    // A valid token whose payload is swapped for another user's: the signature no longer fits.
    let tampered = {
        let genuine = issuer.token("sub-mallory");
        let parts: Vec<&str> = genuine.split('.').collect();
        let forged = issuer.token("sub-alice");
        let forged_payload = forged.split('.').nth(1).unwrap();
        format!("{}.{}.{}", parts[0], forged_payload, parts[2])
    };
    let signature_flipped = {
        let genuine = issuer.token("sub-mallory");
        let (rest, signature) = genuine.rsplit_once('.').unwrap();
        let first = if signature.starts_with('A') { 'B' } else { 'A' };
        format!("{rest}.{first}{}", &signature[1..])
    };
    // Signed with a key the issuer does not publish, naming the issuer's key id.
    let foreign_key = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(RSA_KEY_ID.into());
        jsonwebtoken::encode(&header, &claims, &ec_key()).unwrap()
    };
    let unknown_key = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("not-a-published-key".into());
        jsonwebtoken::encode(&header, &claims, &ec_key()).unwrap()
    };
    // `alg: none` with no signature.
    let unsigned = {
        use base64::Engine as _;
        let encode = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.", encode(&json!({"alg": "none", "kid": RSA_KEY_ID})), encode(&claims))
    };
    // HS256 "signed" with the public key as the secret (the classic algorithm confusion).
    let confused = {
        let public = serde_json::to_string(&public_jwk(&rsa_key(), Algorithm::RS256, RSA_KEY_ID)).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(RSA_KEY_ID.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(public.as_bytes()).unwrap()).unwrap()
    };
    // What oidc-provider-mock issues: an opaque token.
    let opaque = "ZyHHOewwb2E2d3PaFgp7krQeUfM1BHxlhpObFiV7Wf".to_string();

    let cases = [
        ("expired", expired, "The access token has expired: sign in again for a new one"),
        ("another client", other_client, "The access token was issued to another app client"),
        ("another issuer", other_issuer, "The access token was issued by another sign-in provider"),
        ("an ID token", id_token, "This is an `id` token, not an access token: send the access token"),
        ("no token_use", unlabelled, "The token does not say it is an access token"),
        ("tampered payload", tampered, "The access token's signature does not match"),
        ("flipped signature", signature_flipped, "The access token's signature does not match"),
        ("a foreign key", foreign_key, "The access token's signature does not match"),
        ("an unknown key", unknown_key, "The access token is signed with a key the sign-in provider does not list"),
        ("alg none", unsigned, "The access token is not a signed JWT"),
        (
            "HS256 with the public key",
            confused,
            "The access token is signed with an algorithm this service does not accept",
        ),
        ("opaque", opaque, "The access token is not a signed JWT"),
    ];
    for (what, token, message) in cases {
        let response = call(&app, Method::POST, "/api/generate", Some(&token), Some(json!({"prompt": "a cat"}))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{what}: {challenge}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_token", "{what}");
        assert!(error["message"].as_str().unwrap().starts_with(message), "{what}: {error}");

        let response = call(&app, Method::DELETE, "/api/images/01J9ZQ3V8X6K4M2N1P0R7S5T3W", Some(&token), None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // No session either: a plain challenge.
    let response = call(&app, Method::GET, "/api/images", None, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unauthorized");
    // Another scheme is not a Bearer token.
    let response =
        app.client.get(app.url("/api/me")).header("authorization", "Basic bWFsbG9yeTpzZWNyZXQ=").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Nothing was made, for anyone.
    assert_eq!(record_files(&app), 0);
    assert!(image_ids(&app, &issuer.token("sub-mallory"), "").await.is_empty());
}

#[tokio::test]
async fn generate_list_get_edit_and_delete_round_trip() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let token = issuer.token("sub-carol");

    let made = generate(
        &app,
        &token,
        json!({"prompt": "a lighthouse at dusk", "negative_prompt": "text", "aspect": "16:9", "seed": 7, "count": 2,
               "session": "coast"}),
    )
    .await;
    assert_eq!(made.len(), 2);
    for image in &made {
        assert_eq!(image["prompt"], "a lighthouse at dusk");
        assert_eq!(image["negative_prompt"], "text");
        assert_eq!(image["aspect"], "16:9");
        assert_eq!(image["session"], "coast");
        assert_eq!(image["engine"], "demo");
        assert!(image["width"].as_u64().unwrap() > image["height"].as_u64().unwrap(), "{image}");
    }
    let older =
        generate(&app, &token, json!({"prompt": "a lone tree", "colors": ["#112233", "#445566"], "model": "demo"}))
            .await;
    assert_eq!(older.len(), 1);

    // Newest first, filters, pages.
    let all = image_ids(&app, &token, "").await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], older[0]["id"].as_str().unwrap(), "the newest image comes first");
    assert_eq!(image_ids(&app, &token, "?session=coast").await.len(), 2);
    assert_eq!(image_ids(&app, &token, "?source=discord").await.len(), 0);
    assert_eq!(image_ids(&app, &token, "?source=web").await.len(), 3);
    let (status, first_page) = call_json(&app, Method::GET, "/api/images?limit=2", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first_page["images"].as_array().unwrap().len(), 2);
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let (_, second_page) =
        call_json(&app, Method::GET, &format!("/api/images?limit=2&cursor={cursor}"), Some(&token), None).await;
    assert_eq!(second_page["images"].as_array().unwrap().len(), 1);
    assert!(second_page["next_cursor"].is_null());
    let (status, error) = call_json(&app, Method::GET, "/api/images?source=fax", Some(&token), None).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")));

    // The record, the bytes.
    let id = made[0]["id"].as_str().unwrap();
    let (status, detail) = call_json(&app, Method::GET, &format!("/api/images/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["image"]["id"], id);
    assert_eq!(detail["image"]["seed"], made[0]["seed"]);
    assert_eq!(detail["children"], json!([]));
    let file = call(&app, Method::GET, detail["image"]["file_url"].as_str().unwrap(), Some(&token), None).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert!(file.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let thumbnail = call(&app, Method::GET, &format!("/api/images/{id}/thumbnail"), Some(&token), None).await;
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");

    // An edit of a gallery image becomes its child.
    let form = reqwest::multipart::Form::new().text("mode", "variation").text("image_id", id.to_string());
    let edited = edit(&app, &token, form).await;
    assert_eq!(edited["state"], "done", "{edited}");
    assert_eq!(edited["kind"], "edit");
    let child = edited["images"][0].clone();
    assert_eq!(child["parent"], id);
    assert_eq!(child["edit_mode"], "variation");
    let (_, detail) = call_json(&app, Method::GET, &format!("/api/images/{id}"), Some(&token), None).await;
    assert_eq!(detail["children"][0]["id"], child["id"]);

    // An uploaded image can be edited too, and a wrong upload says why.
    let upload =
        reqwest::multipart::Part::bytes(png_bytes(320, 240)).file_name("photo.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().text("mode", "upscale").part("image", upload);
    assert_eq!(edit(&app, &token, form).await["state"], "done");
    let not_an_image = reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("notes.txt");
    let form = reqwest::multipart::Form::new().text("mode", "upscale").part("image", not_an_image);
    let response = app.client.post(app.url("/api/edit")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid");

    // Delete: gone from the listing, its bytes gone, and a second delete is "not found".
    let response = call(&app, Method::DELETE, &format!("/api/images/{id}"), Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = call_json(&app, Method::GET, &format!("/api/images/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_json(&app, Method::GET, &format!("/api/images/{id}/file"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_json(&app, Method::DELETE, &format!("/api/images/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!image_ids(&app, &token, "").await.contains(&id.to_string()));

    // A malformed id names no image either.
    let (status, error) = call_json(&app, Method::GET, "/api/images/not-an-id", Some(&token), None).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

/// White marks the region to change: an inpaint through the API repaints the white half.
#[tokio::test]
async fn an_inpaint_repaints_the_white_side_of_the_mask() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let token = issuer.token("sub-mask");
    let source = support::varied_picture(256, 192);
    let part = |bytes: Vec<u8>, name: &str| {
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str("image/png").unwrap()
    };
    let form = reqwest::multipart::Form::new()
        .text("mode", "inpaint")
        .text("prompt", "ivy on a wall")
        .part("image", part(source.clone(), "wall.png"))
        .part("mask", part(support::left_half_white_mask(256, 192), "mask.png"));
    let edited = edit(&app, &token, form).await;
    assert_eq!(edited["state"], "done", "{edited}");
    let file = call(&app, Method::GET, edited["images"][0]["file_url"].as_str().unwrap(), Some(&token), None).await;
    support::assert_only_the_left_half_changed(&source, &file.bytes().await.unwrap());
}

/// A generation is answered at once (202) with its job, which is followed as server-sent
/// events until its images are made; only its owner can read, follow or cancel it.
#[tokio::test]
async fn a_generation_is_a_job_answered_at_once_and_followed_as_events() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let (token, stranger) = (issuer.token("sub-jobs"), issuer.token("sub-stranger"));

    let accepted =
        call(&app, Method::POST, "/api/generate", Some(&token), Some(json!({"prompt": "a kite", "count": 2}))).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let location = accepted.headers()["location"].to_str().unwrap().to_string();
    let job: Value = accepted.json().await.unwrap();
    assert_eq!(job["url"], location.as_str());
    assert_eq!(job["kind"], "generate");
    assert_eq!(job["summary"], "a kite");
    assert!(["waiting", "checking", "running", "saving", "done"].contains(&job["state"].as_str().unwrap()), "{job}");

    // The events: each a whole job body, ending with the final one.
    let events = app.client.get(app.url(job["events_url"].as_str().unwrap())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = events.text().await.unwrap();
    let bodies: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    assert!(text.contains("event: job"), "{text}");
    let last = bodies.last().unwrap();
    assert_eq!(last["state"], "done", "{text}");
    assert_eq!(last["images"].as_array().unwrap().len(), 2);
    assert!(bodies.iter().all(|body| body["id"] == job["id"]));
    let made = image_ids(&app, &token, "").await;
    for image in last["images"].as_array().unwrap() {
        assert!(made.contains(&image["id"].as_str().unwrap().to_string()), "the job's images are in the gallery");
    }

    // Read again: the same final state. Someone else: not found, even by its id.
    let (status, read) = call_json(&app, Method::GET, &location, Some(&token), None).await;
    assert_eq!((status, &read["state"]), (StatusCode::OK, &json!("done")));
    let cancel = format!("{location}/cancel");
    for (method, path) in [(Method::GET, &location), (Method::POST, &cancel)] {
        let (status, error) = call_json(&app, method, path, Some(&stranger), None).await;
        assert!(status.is_client_error() && status != StatusCode::UNAUTHORIZED, "{status} {error}");
    }
    // A finished job cannot be called back.
    let (status, error) = call_json(&app, Method::POST, &cancel, Some(&token), None).await;
    assert_eq!((status, &error["error"]), (StatusCode::CONFLICT, &json!("conflict")));
    let (status, _) = call_json(&app, Method::GET, "/api/jobs/not-a-job", Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A prompt outside Latin-1 (Japanese, an emoji) is made and kept as written.
#[tokio::test]
async fn generate_takes_prompts_in_any_language_and_with_emoji() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let token = issuer.token("sub-kumiko");
    for prompt in ["猫がピアノを弾く", "قطة تعزف على البيانو", "a fox 🦊 in snow"] {
        let made = generate(&app, &token, json!({"prompt": prompt})).await;
        assert_eq!(made.len(), 1);
        assert_eq!(made[0]["prompt"], prompt);
    }
    assert_eq!(image_ids(&app, &token, "").await.len(), 3);
}

#[tokio::test]
async fn wrong_requests_are_400_with_the_reason_and_call_no_model() {
    let issuer = TestIssuer::start().await;
    let bedrock = BedrockStandIn::start().await;
    let sdk_config = bedrock.sdk_config().await;
    let settings = [
        ("ATELIER_OIDC_ISSUER", issuer.issuer()),
        ("ATELIER_OIDC_CLIENT_ID", CLIENT_ID),
        ("ATELIER_SESSION_SECRET", SESSION_SECRET),
        ("ATELIER_ENGINE", "bedrock"),
    ];
    let app = TestApp::spawn_with_aws(&settings, sdk_config).await;
    let token = issuer.token("sub-dave");

    let long_for_titan = "a tall lighthouse on a rock ".repeat(20);
    let cases = [
        (json!({"prompt": "   "}), "The prompt is empty: describe the image you want"),
        (json!({"prompt": "a cat", "count": 9}), "9 images is not possible: ask for 1 to 4 at a time"),
        (json!({"prompt": "a cat", "aspect": "wide"}), "`wide` is not an aspect ratio"),
        (json!({"prompt": "a cat", "aspect": "16:9", "size": "1024x1024"}), "Give either an aspect ratio or a size"),
        (json!({"prompt": "a cat", "seed": -1}), "`-1` is not a seed"),
        (json!({"prompt": "a cat", "model": "no-such-model"}), "There is no model `no-such-model`"),
        (json!({"prompt": long_for_titan, "model": "titan"}), "The prompt is"),
        (json!({"prompt": "a cat", "model": "sdxl", "steps": 500}), "Sdxl takes"),
        (json!({"prompt": "a cat", "model": "core", "cfg_scale": 7}), "Core takes no CFG scale"),
        (json!({"prompt": "a cat", "negativePrompt": "dogs"}), "The request body is not the JSON this endpoint takes"),
        (json!({"negative_prompt": "dogs"}), "The request body is not the JSON this endpoint takes"),
        (json!(["a cat"]), "The request body is not the JSON this endpoint takes"),
    ];
    for (body, message) in cases {
        let (status, error) = call_json(&app, Method::POST, "/api/generate", Some(&token), Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"], "invalid", "{body}");
        assert!(error["message"].as_str().unwrap().starts_with(message), "{body}: {error}");
    }
    let response = app
        .client
        .post(app.url("/api/generate"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"prompt\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, error) = call_json(&app, Method::POST, "/api/check", Some(&token), Some(json!({"prompt": ""}))).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")));
    let (status, error) =
        call_json(&app, Method::POST, "/api/chat", Some(&token), Some(json!({"message": "hi", "mode": "poet"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().starts_with("`poet` is not a chat mode"), "{error}");
    let form = reqwest::multipart::Form::new().text("mode", "inpaint").text("prompt", "a hat");
    let response = app.client.post(app.url("/api/edit")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Not one call reached Bedrock, nothing was charged and nothing kept.
    assert!(bedrock.requests().is_empty(), "{:?}", bedrock.requests());
    let (_, me) = call_json(&app, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(me["usage"]["images_today"], 0, "{me}");
    assert_eq!(record_files(&app), 0);

    // The same app does call the model for a right request.
    let made = generate(
        &app,
        &token,
        json!({"prompt": "a cat on a windowsill", "model": "titan", "seed": 3, "cfg_scale": 8.5}),
    )
    .await;
    assert_eq!(made[0]["engine"], "bedrock");
    assert!(!bedrock.requests().is_empty());
    let (_, me) = call_json(&app, Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(me["usage"]["images_today"], 1, "{me}");
    // Titan Image Generator's price, out of the default daily budget.
    assert_eq!(me["usage"]["spent_today_usd"], 0.01, "{me}");
    assert_eq!(me["usage"]["daily_budget_usd"], 5.0, "{me}");
    assert_eq!(me["usage"]["budget_left_usd"], 4.99, "{me}");
}

#[tokio::test]
async fn check_describe_and_chat_answer_as_json_and_chat_streams() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let token = issuer.token("sub-erin");

    let (status, critique) =
        call_json(&app, Method::POST, "/api/check", Some(&token), Some(json!({"prompt": "a cat"}))).await;
    assert_eq!(status, StatusCode::OK, "{critique}");
    assert!(!critique["improved_prompts"].as_array().unwrap().is_empty(), "{critique}");
    assert!(critique["reviewer"].is_string());

    let upload = reqwest::multipart::Part::bytes(png_bytes(200, 150)).file_name("photo.png");
    let form = reqwest::multipart::Form::new().part("image", upload);
    let response = app.client.post(app.url("/api/describe")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let described: Value = response.json().await.unwrap();
    assert_eq!(described["prompts"].as_array().unwrap().len(), 4, "{described}");

    let history =
        json!([{"speaker": "user", "text": "Hello"}, {"speaker": "assistant", "text": "Hi! What shall we make?"}]);
    let body = json!({"mode": "idea-generator", "message": "Ideas for a poster about the sea?", "history": history});
    let (status, reply) = call_json(&app, Method::POST, "/api/chat", Some(&token), Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(!reply["reply"].as_str().unwrap().is_empty());
    assert_eq!(reply["stop_reason"], "end_turn");
    let turns = reply["history"].as_array().unwrap();
    assert_eq!(turns.len(), 4);
    assert_eq!(turns[2], json!({"speaker": "user", "text": "Ideas for a poster about the sea?"}));
    assert_eq!(turns[3]["text"], reply["reply"]);

    // The same as server-sent events: text pieces, then the whole reply.
    let response = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let stream = response.text().await.unwrap();
    let events: Vec<(String, Value)> = stream
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")))
                    .map(|value| value.trim().to_string())
            };
            (field("event").unwrap(), serde_json::from_str(&field("data").unwrap()).unwrap())
        })
        .collect();
    let (last_name, last) = events.last().unwrap();
    assert_eq!(last_name, "done", "{stream}");
    let pieces: String =
        events.iter().filter(|(name, _)| name == "text").map(|(_, data)| data["text"].as_str().unwrap()).collect();
    assert!(events.iter().filter(|(name, _)| name == "text").count() >= 1, "{stream}");
    assert_eq!(pieces, last["reply"].as_str().unwrap());
    assert_eq!(last["history"].as_array().unwrap().len(), 4);

    // Chat about an image of the caller's own gallery; another's is not found.
    let made = generate(&app, &token, json!({"prompt": "a harbour"})).await;
    let body = json!({"message": "What is in this picture?", "image_id": made[0]["id"]});
    let (status, _) = call_json(&app, Method::POST, "/api/chat", Some(&token), Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call_json(&app, Method::POST, "/api/chat", Some(&issuer.token("sub-frank")), Some(body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn in_local_mode_the_operator_calls_with_the_forgery_token_and_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (status, me) = call_json(&app, Method::GET, "/api/me", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["owner"], "local-operator");
    assert_eq!(me["signed_in_with"], "local");
    let (status, models) = call_json(&app, Method::GET, "/api/models", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(models["models"][0]["alias"], "demo", "{models}");

    // Without the forgery token a browser-credentialed post is refused; with it, it works.
    let response = call(&app, Method::POST, "/api/generate", None, Some(json!({"prompt": "a kite"}))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let refusal: Value = response.json().await.unwrap();
    assert_eq!(refusal["error"], "forbidden", "the API refuses in JSON: {refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("security token"), "{refusal}");
    assert_eq!(record_files(&app), 0);
    let response = app
        .client
        .post(app.url("/api/generate"))
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({"prompt": "a kite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(app.api_job_outcome(response, None).await["state"], "done");

    // No provider, so no token is accepted, and a token never falls back to the session.
    let (status, error) = call_json(
        &app,
        Method::POST,
        "/api/generate",
        Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        Some(json!({"prompt": "a kite"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["message"].as_str().unwrap().contains("no sign-in provider"), "{error}");
    assert_eq!(record_files(&app), 1);
}

#[tokio::test]
async fn rotated_keys_are_fetched_on_an_unknown_key_id_at_most_once_a_minute() {
    let issuer = TestIssuer::start().await;
    let variables = vec![
        ("ATELIER_OIDC_ISSUER".to_string(), issuer.issuer().to_string()),
        ("ATELIER_OIDC_CLIENT_ID".to_string(), CLIENT_ID.to_string()),
        ("ATELIER_SESSION_SECRET".to_string(), SESSION_SECRET.to_string()),
        ("ATELIER_ENGINE".to_string(), "demo".to_string()),
    ];
    let config = Config::from_raw(&RawSettings::from_variables(variables).unwrap()).unwrap();
    let oidc = config.oidc.as_ref().unwrap();
    let rotated_token = || {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(EC_KEY_ID.into());
        jsonwebtoken::encode(&header, &issuer.claims("sub-gina"), &ec_key()).unwrap()
    };

    // With the usual minute between forced fetches, a key published just after a fetch is
    // not seen yet: tokens naming made-up key ids cannot make us hammer the provider.
    let patient = AccessTokenVerifier::new(oidc).unwrap();
    patient.verify(&issuer.token("sub-gina")).await.unwrap();
    issuer.publish_second_key();
    assert!(patient.verify(&rotated_token()).await.is_err());
    assert_eq!(issuer.key_fetches(), 1);

    // Once the interval has passed, an unknown key id fetches the keys again and is found.
    let eager = AccessTokenVerifier::new(oidc).unwrap().with_key_refresh_interval(Duration::ZERO);
    let verified = eager.verify(&rotated_token()).await.unwrap();
    assert_eq!(verified.owner.as_str(), "web-sub-gina");
    assert_eq!(verified.username.as_deref(), Some("user-sub-gina"));
    assert_eq!(verified.scopes, ["openid", "email", "profile"]);
    // Known keys are not fetched again.
    eager.verify(&issuer.token("sub-gina")).await.unwrap();
    eager.verify(&rotated_token()).await.unwrap();
    assert_eq!(issuer.key_fetches(), 2);

    // A provider following RFC 9068 instead marks access tokens by their type.
    let mut claims = issuer.claims("sub-gina");
    claims.as_object_mut().unwrap().remove("token_use");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(RSA_KEY_ID.into());
    header.typ = Some("at+jwt".into());
    let rfc9068 = jsonwebtoken::encode(&header, &claims, &rsa_key()).unwrap();
    eager.verify(&rfc9068).await.unwrap();
}

/// Every route the API serves, as (method, path template).
const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/me"),
    ("get", "/api/models"),
    ("get", "/api/settings"),
    ("put", "/api/settings"),
    ("get", "/api/images"),
    ("get", "/api/images/{id}"),
    ("delete", "/api/images/{id}"),
    ("get", "/api/images/{id}/file"),
    ("get", "/api/images/{id}/thumbnail"),
    ("post", "/api/images/{id}/publish"),
    ("delete", "/api/images/{id}/publish"),
    ("get", "/api/sessions"),
    ("patch", "/api/sessions/{name}"),
    ("delete", "/api/sessions/{name}"),
    ("post", "/api/generate"),
    ("post", "/api/edit"),
    ("get", "/api/jobs/{id}"),
    ("post", "/api/jobs/{id}/cancel"),
    ("get", "/api/jobs/{id}/events"),
    ("post", "/api/jobs/{id}/appeal"),
    ("post", "/api/check"),
    ("post", "/api/describe"),
    ("post", "/api/chat"),
    ("get", "/api/openapi.json"),
];

#[tokio::test]
async fn the_openapi_document_is_valid_and_describes_every_route() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."), "{}", document["openapi"]);

    // The document's operations are exactly the API's routes.
    let mut documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> =
        API_ROUTES.iter().map(|(method, path)| (method.to_string(), path.to_string())).collect();
    expected.sort();
    assert_eq!(documented, expected);

    // And every one of them is served: without credentials each answers our JSON 401 (or the
    // document itself), never the router's bare 404 or 405.
    for (method, path) in API_ROUTES {
        let path = path.replace("{id}", "01J9ZQ3V8X6K4M2N1P0R7S5T3W").replace("{name}", "trip");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .header("authorization", "Bearer x")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if path == "/api/openapi.json" {
            assert_eq!(status, StatusCode::OK);
        } else {
            assert_eq!(
                (status, &body["error"]),
                (StatusCode::UNAUTHORIZED, &json!("invalid_token")),
                "{method} {path}"
            );
        }
    }

    // Every operation names its sign-in schemes and its error answers; both schemes exist.
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["access_token"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    for (method, path) in API_ROUTES.iter().filter(|(_, path)| *path != "/api/openapi.json") {
        let operation = &document["paths"][path][method];
        assert!(operation["security"].as_array().is_some_and(|schemes| schemes.len() == 2), "{method} {path}");
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
    }
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());

    // The OpenAPI project's own validator accepts it (openapi-spec-validator comes with moto[server]).
    let file = app.data.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let output = std::process::Command::new(venv_program("openapi-spec-validator")).arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs Schemathesis against a served document with all of its checks, 40 examples per
/// operation and `arguments` (credentials, exclusions), and returns its report, failing the
/// test on any finding.
async fn schemathesis(document: &str, arguments: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(venv_program("st"))
        .current_dir(work.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis"))
        .args(["run", document, "--checks", "all", "--max-examples", "40", "--seed", "1"])
        .args(["--workers", "1", "--generation-database", "none", "--request-timeout", "30"])
        .args(arguments)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "Schemathesis found something:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("✅ Coverage") && report.contains("✅ Fuzzing"), "{report}");
    report
}

/// The API does exactly what its document says. Schemathesis (pinned in
/// tests/requirements.txt) reads the served document and sends what it generates from it:
/// examples, boundary and invalid values of every field, random valid and invalid requests,
/// and sequences following the links it infers (a job made, then read, followed, cancelled,
/// appealed). All of its checks run: no 5xx, every status and body as documented, everything
/// the document calls valid accepted, everything it calls invalid refused. Uploads are real
/// PNGs (tests/schemathesis/hooks.py teaches it what an image is). Any finding fails the test
/// with its report.
///
/// Signed in with an access token, where it also checks that a missing or wrong token is
/// refused, it runs every operation but the edit form; the edit form runs in local mode, as
/// the README shows it by hand. Signed in with a token, Schemathesis' coverage phase sends an
/// edit form with an empty `mode` and counts it valid, though the document's pattern for
/// `mode` takes no empty text, and the server rightly refuses it.
#[tokio::test]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    let bearer = format!("Authorization: Bearer {}", issuer.token("sub-schemathesis"));
    let document = app.url("/api/openapi.json");
    let report = schemathesis(&document, &["--header", &bearer, "--exclude-path", "/api/edit"]).await;
    assert!(report.contains("Tested: 22"), "{report}");

    let local = TestApp::spawn().await;
    let document = local.url("/api/openapi.json");
    let token_header = format!("X-CSRF-Token: {CSRF_TOKEN}");
    let token_cookie = format!("Cookie: atelier_csrf={CSRF_TOKEN}");
    let arguments = [
        "--exclude-checks",
        "ignored_auth",
        "--include-path",
        "/api/edit",
        "--header",
        &token_header,
        "--header",
        &token_cookie,
    ];
    let report = schemathesis(&document, &arguments).await;
    assert!(report.contains("Tested: 1"), "{report}");
}

#[tokio::test]
async fn a_signed_in_browser_calls_the_api_with_its_session_and_the_forgery_token() {
    let provider = OidcProvider::start().await;
    let issuer = provider.issuer();
    let settings = [
        ("ATELIER_OIDC_ISSUER", issuer.as_str()),
        ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
        ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
        ("ATELIER_SESSION_SECRET", SESSION_SECRET),
    ];
    let app = TestApp::spawn_with(&settings).await;

    // Sign in as a browser does: the app sends it to the provider and back with a session.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let start = browser.get(app.url("/signin?next=/")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let callback = provider.authorize(&authorize, "sub-hana").await;
    let back = browser.get(callback.url.as_str()).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);

    let me: Value = browser.get(app.url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["owner"], "web-sub-hana");
    assert_eq!(me["signed_in_with"], "session");

    // The session cookie alone does not make an image: a page elsewhere could send it.
    let refused = browser.post(app.url("/api/generate")).json(&json!({"prompt": "a kite"})).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let home = browser.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    let at = home.find("name=\"csrf\" value=\"").expect("no forgery token on the home page") + 19;
    let csrf = home[at..].split('"').next().unwrap().to_string();
    let made = browser
        .post(app.url("/api/generate"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"prompt": "a kite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::ACCEPTED);

    // The provider's own access tokens are opaque, not JWTs, so the API refuses them: the
    // reason the other tests sign their tokens with a test issuer.
    let code = provider.authorize(
        &format!(
            "{issuer}/oauth2/authorize?response_type=code&client_id=atelier-web&redirect_uri=https%3A%2F%2Fatelier.example%2Fcb&scope=openid&state=state-1&nonce=nonce-1"
        ),
        "sub-hana",
    )
    .await
    .code;
    let tokens: Value = reqwest::Client::new()
        .post(provider.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://atelier.example/cb"),
            ("client_id", "atelier-web"),
            ("client_secret", "atelier-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let opaque = tokens["access_token"].as_str().unwrap();
    assert_eq!(opaque.matches('.').count(), 0, "oidc-provider-mock now issues JWT access tokens: {opaque}");
    let (status, error) = call_json(&app, Method::GET, "/api/me", Some(opaque), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["message"].as_str().unwrap().starts_with("The access token is not a signed JWT"), "{error}");
}

/// A web account the operator bans is refused on every page and API call, signed in by its
/// browser session or by an access token, with a plain 403; nothing is made.
#[tokio::test]
async fn a_banned_web_account_is_refused_on_pages_and_in_the_api() {
    let ban = |app: &TestApp, owner: &str| {
        let store = format!("file://{}", app.data.path().join("store").display());
        let (output, _, stderr) = support::run(
            support::atelier(app.data.path())
                .args(["admin", "ban", owner, "--reason", "abuse"])
                .env("ATELIER_STORE", &store)
                .env("ATELIER_ENGINE", "demo"),
        );
        assert!(output.status.success(), "{stderr}");
    };

    // A browser signs in (the provider knows nothing of the ban) but gets no page.
    let provider = OidcProvider::start().await;
    let issuer = provider.issuer();
    let settings = [
        ("ATELIER_OIDC_ISSUER", issuer.as_str()),
        ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
        ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
        ("ATELIER_SESSION_SECRET", SESSION_SECRET),
    ];
    let app = TestApp::spawn_with(&settings).await;
    ban(&app, "web-sub-ivo");
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let start = browser.get(app.url("/signin?next=/")).send().await.unwrap();
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let callback = provider.authorize(&authorize, "sub-ivo").await;
    assert_eq!(browser.get(callback.url.as_str()).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let gallery = browser.get(app.url("/gallery")).send().await.unwrap();
    assert_eq!(gallery.status(), StatusCode::FORBIDDEN);
    assert!(gallery.text().await.unwrap().contains("banned"));
    assert_eq!(browser.get(app.url("/api/me")).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // An access token of a banned account is refused too, and makes nothing.
    let issuer = TestIssuer::start().await;
    let app = app_with(&issuer, &[]).await;
    ban(&app, "web-sub-ivo");
    let token = issuer.token("sub-ivo");
    let (status, body) =
        call_json(&app, Method::POST, "/api/generate", Some(&token), Some(json!({"prompt": "a kite"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("banned"), "{body}");
    assert_eq!(record_files(&app), 0, "a banned account made something");
    // Someone else on the same service is not affected.
    let (status, _) = call_json(&app, Method::GET, "/api/me", Some(&issuer.token("sub-alice")), None).await;
    assert_eq!(status, StatusCode::OK);
}
