//! Attacks on the running service, each with what must hold: refused or absorbed, nothing
//! changed, the process still serving.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::bedrock::BedrockStandIn;
use crate::support::discord::DiscordStandIn;
use crate::support::{CSRF_TOKEN, atelier_on_stand_ins, free_port};

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
    let pid = child.id();
    discord.wait_until_ready().await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|response| response.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    // Every web and API request is answered (a description, or a clear refusal)...
    while let Some(answered) = requests.join_next().await {
        let status = answered.unwrap().expect("a request went unanswered");
        assert!(status != reqwest::StatusCode::INTERNAL_SERVER_ERROR && status.as_u16() < 600, "{status}");
    }
    // ...and so is every Discord user.
    for id in &interactions {
        let answered = discord_answer(&discord, id).await;
        let log = std::fs::read_to_string(folder.path().join("atelier.log")).unwrap_or_default();
        assert!(!answered.is_empty(), "interaction {id} was not answered; the app's log:\n{log}");
    }
    let peak = status_kb(pid, "VmHWM");
    stop(child);
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
