//! Attacks on the running service, each with what must hold: refused or absorbed, nothing
//! changed, the process still serving.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::attacks::AttackRow;
use crate::support::bedrock::{BedrockStandIn, Behaviour, Operation};
use crate::support::discord::DiscordStandIn;
use crate::support::oidc::OidcProvider;
use crate::support::{CSRF_TOKEN, atelier, atelier_on_stand_ins, free_port};

/// A 4096x4096 16-bit RGBA PNG of one colour: about 130 KB that decode to 128 MiB.
fn decode_bomb() -> Vec<u8> {
    let pixels =
        image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_pixel(4096, 4096, image::Rgba([9, 9, 9, 65535]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba16(pixels).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A field of `/proc/{pid}/status` in kB (VmRSS, VmHWM).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_decode_bombs_at_once_through_the_web_the_api_and_discord_stay_under_512_mb() {
    // Made first, off the runtime: encoding it takes a moment the stand-ins must not lose.
    let bomb = tokio::task::spawn_blocking(decode_bomb).await.unwrap();
    let folder = tempfile::tempdir().unwrap();
    let discord = DiscordStandIn::start().await;
    let bedrock = BedrockStandIn::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = atelier_on_stand_ins(folder.path(), &discord, &bedrock)
        .env("ATELIER_BIND", format!("127.0.0.1:{port}"))
        .env("ATELIER_PUBLIC_URL", &base)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(folder.path().join("atelier.log")).unwrap())
        .spawn()
        .unwrap();
    let mut child = child;
    let pid = child.id();
    discord.wait_until_ready().await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    wait_until_ready(&client, &base, &mut child).await;
    assert!(bomb.len() < 1024 * 1024, "the bomb is small on the wire: {} bytes", bomb.len());
    let before = status_kb(pid, "VmRSS");

    // Six through the API (describe), five through the web's edit form, five as Discord
    // /describe attachments, all at once.
    let part = || reqwest::multipart::Part::bytes(bomb.clone()).file_name("bomb.png").mime_str("image/png").unwrap();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let request = client
            .post(format!("{base}/api/describe"))
            .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
            .header("x-csrf-token", CSRF_TOKEN)
            .multipart(reqwest::multipart::Form::new().part("image", part()));
        requests.spawn(async move { request.send().await.map(|response| response.status()) });
    }
    for _ in 0..5 {
        let request = client
            .post(format!("{base}/edit?csrf={CSRF_TOKEN}"))
            .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
            .multipart(reqwest::multipart::Form::new().text("mode", "upscale").part("image", part()));
        requests.spawn(async move { request.send().await.map(|response| response.status()) });
    }
    let mut interactions = Vec::new();
    for number in 0..5 {
        let attachment = discord.attachment("bomb.png", "image/png", bomb.clone());
        let user = DiscordStandIn::user(7_000 + number, &format!("bomber{number}"));
        let interaction = discord.slash_command(
            &user,
            "describe",
            json!([{"name": "image", "type": 11, "value": attachment["id"]}]),
            std::slice::from_ref(&attachment),
        );
        interactions.push(interaction["id"].as_str().unwrap().to_string());
        discord.dispatch_interaction(interaction).await;
    }

    // Every web and API request is answered (a description, or a clear refusal: one person
    // has at most three images checked at once)...
    let mut answered_count = 0;
    while let Some(answered) = requests.join_next().await {
        let status = answered.unwrap().expect("a request went unanswered");
        assert!(status != reqwest::StatusCode::INTERNAL_SERVER_ERROR && status.as_u16() < 600, "{status}");
        answered_count += 1;
    }
    // ...and so is every Discord user.
    for id in &interactions {
        let answered = discord_answer(&discord, id).await;
        let log = std::fs::read_to_string(folder.path().join("atelier.log")).unwrap_or_default();
        assert!(!answered.is_empty(), "interaction {id} was not answered; the app's log:\n{log}");
        answered_count += 1;
    }
    let peak = status_kb(pid, "VmHWM");
    stop(child);
    AttackRow::new(
        "16 decode bombs at once (API, web, Discord)",
        16,
        answered_count,
        usize::from(peak >= 512 * 1024),
        format!("all answered; peak {} MB resident (from {} MB), limit 512", peak / 1024, before / 1024),
    )
    .check_and_record();
    assert!(
        peak < 512 * 1024,
        "the process peaked at {} MB resident (from {} MB) for 16 decode bombs",
        peak / 1024,
        before / 1024
    );
}

/// The text a Discord user was finally shown for an interaction, waiting up to two minutes.
async fn discord_answer(discord: &DiscordStandIn, id: &str) -> String {
    for _ in 0..1_200 {
        let followups: Vec<Value> = discord.interaction_followups(id);
        let original = discord.interaction_original(id);
        // A refusal before acknowledging is the interaction's callback itself.
        let callback = discord.interaction_callback(id).map(|callback| callback["data"].clone());
        let texts: Vec<String> = followups
            .iter()
            .chain(original.iter())
            .chain(callback.iter())
            .map(|message| format!("{} {}", message["content"].as_str().unwrap_or_default(), message["embeds"]))
            .filter(|text| !text.trim().is_empty() && !text.contains("thinking"))
            .collect();
        if let Some(text) = texts.into_iter().find(|text| text.len() > 10) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    String::new()
}

/// DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 reaches a local-mode
/// Atelier with its own name in `Host`. It gets no page and changes nothing; so does a
/// state-changing request from another origin. The store is untouched.
#[tokio::test]
async fn a_rebound_host_or_a_foreign_origin_gets_nothing_from_local_mode() {
    let app = crate::support::TestApp::spawn().await;
    let store = app.data.path().join("store");
    let stored = || walk_count(&store);
    let before = stored();
    let rebound = "rebind.attacker.example";

    let me = app.client.get(app.url("/api/me")).header("host", rebound).send().await.unwrap();
    assert_eq!(me.status(), reqwest::StatusCode::MISDIRECTED_REQUEST);
    assert!(!me.text().await.unwrap().contains("local-operator"), "the operator's identity leaked");
    let page = app.client.get(app.url("/gallery")).header("host", rebound).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::MISDIRECTED_REQUEST);
    let made = app
        .client
        .post(app.url("/api/generate"))
        .header("host", format!("{rebound}:{}", app.address.port()))
        .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({"prompt": "a kite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::MISDIRECTED_REQUEST);

    // Addressed to localhost but sent by another site's page: refused.
    let forged = app
        .client
        .post(app.url("/api/generate"))
        .header("origin", "http://rebind.attacker.example")
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({"prompt": "a kite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(stored(), before, "a refused request stored something");
    AttackRow::new(
        "Host rebound to 127.0.0.1, foreign Origin (local mode)",
        4,
        4,
        stored() - before,
        "421 or 403, store untouched",
    )
    .check_and_record();

    // The operator's own requests still work, by name and by address.
    let mine = app.client.get(app.url("/api/me")).header("host", "localhost").send().await.unwrap();
    assert_eq!(mine.status(), reqwest::StatusCode::OK);
}

/// A Bearer token exempts an API call from the form token, never a page route that signs people
/// in by cookie: a gallery delete with `Authorization: Bearer junk` and no form token is refused.
#[tokio::test]
async fn a_bearer_header_does_not_stand_in_for_the_form_token_on_pages() {
    let app = crate::support::TestApp::spawn().await;
    let (_, page) = app.job_outcome(app.post_form("/studio", &[("prompt", "a snowman")]).await).await;
    let start = page.find("href=\"/gallery/").unwrap() + "href=\"/gallery/".len();
    let id = &page[start..start + 26];
    let delete = app
        .client
        .post(app.url(&format!("/gallery/{id}/delete")))
        .header("authorization", "Bearer junk")
        .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/gallery/{id}")).await.status(), reqwest::StatusCode::OK, "the image was deleted");
    AttackRow::new("Bearer junk plus cookie, no form token, on a page route", 1, 1, 0, "403, the image kept")
        .check_and_record();
}

/// How many files lie under `folder`.
fn walk_count(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| if entry.path().is_dir() { walk_count(&entry.path()) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}

/// Appeals are for refusals the core recorded, once each: an appeal with nothing refused
/// behind it, and a second appeal of one refusal, are refused without asking the reviewer,
/// and the one allowed appeal opens the prompt to nobody else.
#[tokio::test]
async fn appeals_without_a_refusal_or_twice_are_refused_over_the_api() {
    let folder = tempfile::tempdir().unwrap();
    let discord = DiscordStandIn::start().await;
    let bedrock = BedrockStandIn::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = atelier_on_stand_ins(folder.path(), &discord, &bedrock)
        .env("ATELIER_BIND", format!("127.0.0.1:{port}"))
        .env("ATELIER_PUBLIC_URL", &base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    wait_until_ready(&client, &base, &mut child).await;
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
            .header("x-csrf-token", CSRF_TOKEN)
            .json(&body)
    };
    let follow = |accepted: Value| {
        let url = format!("{base}{}", accepted["url"].as_str().unwrap_or_default());
        let client = client.clone();
        async move {
            for _ in 0..600 {
                let job: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
                if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the job at {url} did not end");
        }
    };
    let reviews = || bedrock.calls_to(Operation::Converse);
    let images = || bedrock.calls_to(Operation::InvokeModel);
    let mut refused = 0;

    // 1. An appeal of a prompt nobody refused.
    let (reviews_before, images_before) = (reviews(), images());
    let accepted: Value = post("/api/generate", json!({"prompt": "a lighthouse at dusk", "appeal": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = follow(accepted).await;
    assert_eq!(job["state"], "failed", "an appeal with nothing to appeal went through: {job}");
    refused += 1;
    assert_eq!(reviews(), reviews_before, "the reviewer was asked about an appeal with no refusal");
    assert_eq!(images(), images_before, "an appeal with no refusal made an image");

    // 2. A refusal, its one appeal (allowed), then the same appeal again.
    bedrock.script(Behaviour::ToolUse(json!({"verdict": "blocked", "category": "violence", "reason": "gore"})));
    let accepted: Value =
        post("/api/generate", json!({"prompt": "a zombie film poster"})).send().await.unwrap().json().await.unwrap();
    let job = follow(accepted).await;
    assert_eq!(job["error"]["appealable"], true, "{job}");
    let appeal_url = job["appeal_url"].as_str().expect("no appeal_url").to_string();
    let first = post(&appeal_url, json!({})).send().await.unwrap();
    assert_eq!(first.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(follow(first.json().await.unwrap()).await["state"], "done");
    let (reviews_before, images_before) = (reviews(), images());
    let second = post(&appeal_url, json!({})).send().await.unwrap();
    assert!(second.status().is_client_error(), "a second appeal was accepted: {}", second.status());
    refused += 1;
    assert_eq!((reviews(), images()), (reviews_before, images_before), "a second appeal asked a model");
    stop(child);
    AttackRow::new("appeal with no refusal, and a second appeal (API)", 2, refused, 0, "refused, no model call")
        .check_and_record();
}

/// Waits until `atelier serve` answers its readiness probe, failing loudly if it exits.
async fn wait_until_ready(client: &reqwest::Client, base: &str, child: &mut Child) {
    for _ in 0..400 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|response| response.status().is_success()) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("atelier serve exited at start with {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("atelier serve did not become ready at {base}");
}

/// Behind sign-in: a flood of anonymous sign-in starts and readiness probes writes nothing to
/// the store (a sign-in in progress travels in an encrypted cookie), and a forged access token
/// whose key id carries a line break cannot forge a line of the log.
#[tokio::test]
async fn anonymous_sign_in_floods_write_nothing_and_a_forged_token_forges_no_log_line() {
    let provider = OidcProvider::start().await;
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = folder.path().join("atelier.log");
    let mut child = atelier(folder.path())
        .arg("serve")
        .env("ATELIER_BIND", format!("127.0.0.1:{port}"))
        .env("ATELIER_PUBLIC_URL", &base)
        .env("ATELIER_STORE", format!("file://{}", store.display()))
        .env("ATELIER_OIDC_ISSUER", provider.issuer())
        .env("ATELIER_OIDC_CLIENT_ID", "atelier-web")
        .env("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret")
        .env("ATELIER_SESSION_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        .env("ATELIER_LOG_FORMAT", "text")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    wait_until_ready(&client, &base, &mut child).await;
    let before = walk_count(&store);

    let mut refused = 0;
    for _ in 0..50 {
        let start = client.get(format!("{base}/signin?next=/studio")).send().await.unwrap();
        let to_provider = start.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or_default();
        assert!(to_provider.starts_with(&provider.issuer()), "{to_provider}");
        let cookie = start.headers().get("set-cookie").and_then(|value| value.to_str().ok()).unwrap_or_default();
        assert!(cookie.starts_with("atelier_sign_in=") && cookie.contains("HttpOnly"), "{cookie}");
        refused += 1;
    }
    for _ in 0..20 {
        assert!(client.get(format!("{base}/readyz")).send().await.unwrap().status().is_success());
        refused += 1;
    }
    let written = walk_count(&store) - before;
    AttackRow::new(
        "50 anonymous sign-in starts and 20 readiness probes",
        70,
        refused,
        written,
        "no store object written",
    )
    .check_and_record();

    // A token whose header names a key id with a line break and a log line of its own.
    let encode = |value: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    };
    let forged_line = "INFO atelier: signed in as the operator owner=admin";
    let header = encode(&json!({"alg": "RS256", "typ": "JWT", "kid": format!("k1\n{forged_line}")}));
    let claims = encode(&json!({"sub": "mallory", "iss": provider.issuer(), "exp": 4_000_000_000u64}));
    let answer = client
        .get(format!("{base}/api/me"))
        .bearer_auth(format!("{header}.{claims}.c2lnbmF0dXJl"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED);
    stop(child);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("k1\\n"), "the refused token's key id was not logged, escaped: {log}");
    let forged = log.lines().filter(|line| line.trim_start().starts_with(forged_line)).count();
    AttackRow::new("forged token with a line break in its key id", 1, 1, forged, "logged escaped on one line")
        .check_and_record();
}

/// Behind sign-in, the app answers only its public name and the names the operator lists
/// (`ATELIER_ALLOWED_HOSTS`, the load balancer's name as CloudFront reaches it): a rebound
/// name gets no page, not even the public ones, and changes nothing. The probes answer any
/// name, as the load balancer's health checks address the task by its IP address.
#[tokio::test]
async fn behind_sign_in_a_foreign_host_gets_no_page_and_changes_nothing() {
    let provider = OidcProvider::start().await;
    let issuer = provider.issuer();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let store_url = format!("file://{}", store.display());
    let app = crate::support::TestApp::spawn_with(&[
        ("ATELIER_OIDC_ISSUER", issuer.as_str()),
        ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
        ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
        ("ATELIER_SESSION_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("ATELIER_STORE", store_url.as_str()),
        ("ATELIER_ALLOWED_HOSTS", "Internal-Atelier-LB.elb.example"),
    ])
    .await;
    let before = walk_count(&store);
    let rebound = "rebind.attacker.example";
    let mut refused = 0;
    for path in ["/", "/signin", "/gallery", "/api/me"] {
        let answer = app.client.get(app.url(path)).header("host", rebound).send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::MISDIRECTED_REQUEST, "{path}");
        refused += 1;
    }
    let made = app
        .client
        .post(app.url("/api/generate"))
        .header("host", rebound)
        .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({"prompt": "a kite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::MISDIRECTED_REQUEST);
    refused += 1;
    let changed = walk_count(&store) - before;
    AttackRow::new("Host rebound to the app behind sign-in", 5, refused, changed, "421 before any handler")
        .check_and_record();

    // Our own names work: the public one, and the load balancer's (in any case).
    assert_eq!(app.get("/").await.status(), reqwest::StatusCode::OK);
    let by_balancer = app.client.get(app.url("/")).header("host", "internal-atelier-lb.elb.example").send().await;
    assert_eq!(by_balancer.unwrap().status(), reqwest::StatusCode::OK);
    // The probes answer the load balancer's health checks, addressed by the task's IP.
    let probe = app.client.get(app.url("/healthz")).header("host", "10.0.3.7:8080").send().await.unwrap();
    assert_eq!(probe.status(), reqwest::StatusCode::OK);
}
