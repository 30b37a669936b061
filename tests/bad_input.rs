//! Bad input through the whole web app (issue 8's proof): malformed and hostile images on the
//! edit form and the JSON API, oversized and malformed prompts and JSON, an oversized body,
//! forged session cookies and tampered link tokens. Each must get a clear refusal (a 4xx
//! whose message says what to change), store nothing, and leave the service serving. The
//! tests print a table of what was sent and what came back, and assert every row.

use std::path::Path;
use std::sync::Arc;

use atelier_shared::adapters::Accounts;
use atelier_shared::adapters::FolderStore;
use atelier_shared::adapters::NoDirectory;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::support::oidc::OidcProvider;
use crate::support::{CSRF_TOKEN, TestApp};

/// Signs session cookies in the sign-in app.
const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One bad input and what the service did with it.
struct Row {
    input: String,
    place: String,
    status: StatusCode,
    refused_clearly: bool,
    stored: usize,
    serving: bool,
}

/// The rows of one test, printed as a table and then asserted, so a failure shows them all.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn print_and_assert(&self, title: &str) {
        println!("\n{title}");
        println!(
            "{:<48} | {:<22} | {:>6} | {:<15} | {:>6} | {:<7}",
            "input", "where", "status", "refused clearly", "stored", "serving"
        );
        println!("{}", "-".repeat(48 + 22 + 6 + 15 + 6 + 7 + 15));
        for row in &self.rows {
            println!(
                "{:<48} | {:<22} | {:>6} | {:<15} | {:>6} | {:<7}",
                row.input,
                row.place,
                row.status.as_u16(),
                if row.refused_clearly { "yes" } else { "no" },
                row.stored,
                if row.serving { "yes" } else { "no" }
            );
        }
        // One row in the run's fault table: every bad input must be answered (a clear refusal),
        // nothing kept, and the service still serving afterwards.
        crate::support::faults::FaultRow {
            scenario: format!("bad input: {title}"),
            jobs_sent: self.rows.len(),
            jobs_delivered: self.rows.iter().filter(|row| row.refused_clearly).count(),
            images_stored: self.rows.iter().map(|row| row.stored).sum(),
            duplicates: 0,
            lost: self.rows.iter().filter(|row| !row.refused_clearly || !row.serving).count(),
        }
        .check_and_record();
        for row in &self.rows {
            assert!(row.refused_clearly, "{} at {} was not refused clearly ({})", row.input, row.place, row.status);
            assert_eq!(row.stored, 0, "{} at {} stored something", row.input, row.place);
            assert!(row.serving, "the service stopped serving after {} at {}", row.input, row.place);
        }
    }
}

/// Image files, thumbnails and records under a store folder: what a request that got through
/// would have left.
fn stored_objects(store: &Path) -> usize {
    walk(store)
        .into_iter()
        .filter(|path| {
            let path = path.to_string_lossy();
            path.contains("/images/") || path.contains("/thumbnails/") || path.contains("/records/")
        })
        .count()
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

async fn serving(app: &TestApp) -> bool {
    app.client.get(app.url("/healthz")).send().await.is_ok_and(|response| response.status().is_success())
}

/// A refusal is clear when it is a 4xx and its message says the expected thing (pages show
/// it capitalised, the API in `message`).
fn says(status: StatusCode, body: &str, expected: &str) -> bool {
    status.is_client_error() && body.to_lowercase().contains(&expected.to_lowercase())
}

/// The same for a JSON API answer: `{"error": kind, "message": …}`.
fn api_says(status: StatusCode, body: &str, expected: &str) -> bool {
    let Ok(answer) = serde_json::from_str::<Value>(body) else { return false };
    let kind = answer["error"].as_str().unwrap_or_default();
    let message = answer["message"].as_str().unwrap_or_default();
    !kind.is_empty() && says(status, message, expected)
}

fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A PNG whose header claims `width`x`height` pixels and that has no pixels at all.
fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    push_chunk(&mut bytes, b"IHDR", &header);
    push_chunk(&mut bytes, b"IEND", &[]);
    bytes
}

fn push_chunk(bytes: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    bytes.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(kind);
    bytes.extend_from_slice(data);
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    bytes.extend_from_slice(&crc32(&checked).to_be_bytes());
}

/// PNG's CRC-32 (ISO 3309), bit by bit: a few dozen bytes here, so speed does not matter.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A decompression bomb: a complete, valid PNG of a few dozen KiB whose pixels would take
/// 400 megapixels (20000x20000, one bit each, all black).
fn decompression_bomb() -> Vec<u8> {
    let side = 20_000u32;
    let row_bytes = side.div_ceil(8) as usize;
    let zeros = vec![0u8; row_bytes * side as usize];
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&zeros).unwrap();
        writer.finish().unwrap();
    }
    out
}

/// An animated GIF's headers: two 64x64 frames that loop (Netscape extension).
fn animated_gif() -> Vec<u8> {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&[64, 0, 64, 0, 0x80, 0, 0]); // 64x64, a global table of 2 colours
    bytes.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    bytes.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00");
    for _ in 0..2 {
        bytes.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]); // 0.1 s per frame
        bytes.extend_from_slice(&[0x2C, 0, 0, 0, 0, 64, 0, 64, 0, 0]);
        bytes.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
    }
    bytes.push(0x3B);
    bytes
}

/// Bytes from a fixed seed (xorshift), the same on every run.
fn random_bytes(length: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// One malformed upload: its name, file name, bytes, and what the refusal must say on the
/// page and in the API.
struct BadImage {
    input: &'static str,
    file_name: &'static str,
    bytes: Vec<u8>,
    page_says: &'static str,
    api_says: &'static str,
}

fn bad_images() -> Vec<BadImage> {
    let whole = png_bytes(320, 240);
    let truncated = whole[..whole.len() / 2].to_vec();
    let not_an_image = "hello, this is a text file with a picture's name\n".repeat(20).into_bytes();
    vec![
        BadImage {
            input: "truncated PNG (half its bytes)",
            file_name: "photo.png",
            bytes: truncated,
            page_says: "damaged",
            api_says: "damaged",
        },
        BadImage {
            input: "zero bytes",
            file_name: "empty.png",
            bytes: Vec::new(),
            page_says: "choose an image from your gallery or upload one",
            api_says: "give the image to use",
        },
        BadImage {
            input: "text named .png",
            file_name: "notes.png",
            bytes: not_an_image,
            page_says: "is not a png, jpeg or webp image",
            api_says: "is not a png, jpeg or webp image",
        },
        BadImage {
            input: "PNG header claiming 100000x100000",
            file_name: "huge.png",
            bytes: png_header_claiming(100_000, 100_000),
            page_says: "100000x100000 pixels; the largest side allowed is 4096",
            api_says: "100000x100000 pixels; the largest side allowed is 4096",
        },
        BadImage {
            input: "decompression bomb (20000x20000 PNG)",
            file_name: "bomb.png",
            bytes: decompression_bomb(),
            page_says: "20000x20000 pixels; the largest side allowed is 4096",
            api_says: "20000x20000 pixels; the largest side allowed is 4096",
        },
        BadImage {
            input: "animated GIF",
            file_name: "loop.gif",
            bytes: animated_gif(),
            page_says: "is not a png, jpeg or webp image",
            api_says: "is not a png, jpeg or webp image",
        },
        BadImage {
            input: "random bytes (4 KiB)",
            file_name: "noise.png",
            bytes: random_bytes(4096),
            page_says: "is not a png, jpeg or webp image",
            api_says: "is not a png, jpeg or webp image",
        },
        BadImage {
            input: "PNG of 8x8 pixels",
            file_name: "tiny.png",
            bytes: png_bytes(8, 8),
            page_says: "each side must be at least 64",
            api_says: "each side must be at least 64",
        },
    ]
}

fn upload(bad: &BadImage) -> Form {
    let part = Part::bytes(bad.bytes.clone()).file_name(bad.file_name).mime_str("image/png").unwrap();
    Form::new().text("mode", "upscale").part("image", part)
}

/// The local operator's API post, with the forgery token a browser would send.
fn api_post(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    app.client.post(app.url(path)).header("x-csrf-token", CSRF_TOKEN)
}

async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn malformed_images_are_refused_plainly_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let store = app.data.path().join("store");
    let mut table = Table::default();
    for bad in bad_images() {
        let (status, page) =
            answer(app.client.post(app.form_url("/edit")).multipart(upload(&bad)).send().await.unwrap()).await;
        table.rows.push(Row {
            input: bad.input.into(),
            place: "POST /edit (form)".into(),
            status,
            refused_clearly: says(status, &page, bad.page_says),
            stored: stored_objects(&store),
            serving: serving(&app).await,
        });
        let (status, body) = answer(api_post(&app, "/api/edit").multipart(upload(&bad)).send().await.unwrap()).await;
        table.rows.push(Row {
            input: bad.input.into(),
            place: "POST /api/edit".into(),
            status,
            refused_clearly: api_says(status, &body, bad.api_says),
            stored: stored_objects(&store),
            serving: serving(&app).await,
        });
    }

    // A mask that is itself broken, next to a sound image.
    let form = Form::new()
        .text("mode", "inpaint")
        .text("prompt", "a hat")
        .part("image", Part::bytes(png_bytes(128, 128)).file_name("photo.png"))
        .part("mask", Part::bytes(png_header_claiming(100_000, 100_000)).file_name("mask.png"));
    let (status, body) = answer(api_post(&app, "/api/edit").multipart(form).send().await.unwrap()).await;
    table.rows.push(Row {
        input: "mask claiming 100000x100000".into(),
        place: "POST /api/edit".into(),
        status,
        refused_clearly: api_says(status, &body, "the mask is 100000x100000 pixels"),
        stored: stored_objects(&store),
        serving: serving(&app).await,
    });

    // An upload over the body limit (two images of 10 MiB plus the fields).
    let oversized = random_bytes(21 * 1024 * 1024);
    let form = Form::new().text("mode", "upscale").part("image", Part::bytes(oversized.clone()).file_name("big.png"));
    let (status, page) = answer(app.client.post(app.form_url("/edit")).multipart(form).send().await.unwrap()).await;
    table.rows.push(Row {
        input: "21 MiB upload".into(),
        place: "POST /edit (form)".into(),
        status,
        refused_clearly: says(status, &page, "the upload is too large"),
        stored: stored_objects(&store),
        serving: serving(&app).await,
    });
    let form = Form::new().text("mode", "upscale").part("image", Part::bytes(oversized).file_name("big.png"));
    let (status, body) = answer(api_post(&app, "/api/edit").multipart(form).send().await.unwrap()).await;
    table.rows.push(Row {
        input: "21 MiB upload".into(),
        place: "POST /api/edit".into(),
        status,
        refused_clearly: api_says(status, &body, "too large"),
        stored: stored_objects(&store),
        serving: serving(&app).await,
    });

    table.print_and_assert("bad images: every one refused, nothing stored");

    // And the service still does its work: a sound upload is edited and kept.
    let sound = Form::new()
        .text("mode", "upscale")
        .part("image", Part::bytes(png_bytes(320, 240)).file_name("photo.png").mime_str("image/png").unwrap());
    let response = api_post(&app, "/api/edit").multipart(sound).send().await.unwrap();
    assert_eq!(app.api_job_outcome(response, None).await["state"], "done");
    assert!(stored_objects(&store) > 0, "the count of stored objects sees a real edit");
}

/// A form's fields by name, as the page would send them.
type FormFields = Vec<(&'static str, String)>;

#[tokio::test]
async fn malformed_prompts_and_json_are_refused_plainly_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let store = app.data.path().join("store");
    let mut table = Table::default();
    let too_long = "a castle ".repeat(250);
    let form_cases: Vec<(&str, FormFields, &str)> = vec![
        ("prompt of 2250 characters", vec![("prompt", too_long.clone())], "shorten it to at most 2000"),
        ("prompt of only whitespace", vec![("prompt", " \t\n \u{3000} ".into())], "the prompt is empty"),
        ("prompt with control characters", vec![("prompt", "a cat\u{0}\u{1b}[2J".into())], "control character"),
        (
            "negative prompt of 2250 characters",
            vec![("prompt", "a cat".into()), ("negative_prompt", too_long.clone())],
            "the negative prompt is",
        ),
    ];
    for (input, fields, expected) in &form_cases {
        let form: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let (status, page) = answer(app.post_form("/studio", &form).await).await;
        table.rows.push(Row {
            input: (*input).into(),
            place: "POST /studio (form)".into(),
            status,
            refused_clearly: says(status, &page, expected),
            stored: stored_objects(&store),
            serving: serving(&app).await,
        });
        let mut body = serde_json::Map::new();
        for (name, value) in fields {
            body.insert((*name).to_string(), Value::String(value.clone()));
        }
        let (status, text) = answer(api_post(&app, "/api/generate").json(&body).send().await.unwrap()).await;
        table.rows.push(Row {
            input: (*input).into(),
            place: "POST /api/generate".into(),
            status,
            refused_clearly: api_says(status, &text, expected),
            stored: stored_objects(&store),
            serving: serving(&app).await,
        });
    }

    // Bodies that are not the JSON /api/generate takes, sent as raw bytes.
    let not_the_json = "the request body is not the json this endpoint takes";
    let invalid_utf8 = b"{\"prompt\": \"a \xff\xfe cat\"}".to_vec();
    let raw_cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("invalid UTF-8 inside the JSON", invalid_utf8, "application/json", not_the_json),
        ("a lone surrogate escape", br#"{"prompt": "a \ud800 cat"}"#.to_vec(), "application/json", not_the_json),
        ("JSON cut short", br#"{"prompt": "#.to_vec(), "application/json", not_the_json),
        ("JSON null", b"null".to_vec(), "application/json", not_the_json),
        ("prompt as a number", br#"{"prompt": 42}"#.to_vec(), "application/json", not_the_json),
        ("count as a list", br#"{"prompt": "a cat", "count": [1]}"#.to_vec(), "application/json", not_the_json),
        (
            "colors as an object",
            br#"{"prompt": "a cat", "colors": {"a": 1}}"#.to_vec(),
            "application/json",
            not_the_json,
        ),
        ("appeal as a string", br#"{"prompt": "a cat", "appeal": "yes"}"#.to_vec(), "application/json", not_the_json),
        (
            "a count of 2^64",
            br#"{"prompt": "a cat", "count": 18446744073709551616}"#.to_vec(),
            "application/json",
            "images",
        ),
        ("JSON sent as text/plain", br#"{"prompt": "a cat"}"#.to_vec(), "text/plain", "content-type"),
    ];
    for (input, bytes, content_type, expected) in raw_cases {
        let response =
            api_post(&app, "/api/generate").header("content-type", content_type).body(bytes).send().await.unwrap();
        let (status, text) = answer(response).await;
        table.rows.push(Row {
            input: input.into(),
            place: "POST /api/generate".into(),
            status,
            refused_clearly: api_says(status, &text, expected),
            stored: stored_objects(&store),
            serving: serving(&app).await,
        });
    }

    // Bodies over the limits: a form past the forgery check's reading limit, and JSON past the
    // body limit (two 10 MiB images and the fields).
    let huge_prompt = "a".repeat(3 * 1024 * 1024);
    let (status, page) = answer(app.post_form("/studio", &[("prompt", huge_prompt.as_str())]).await).await;
    table.rows.push(Row {
        input: "3 MiB form".into(),
        place: "POST /studio (form)".into(),
        status,
        refused_clearly: says(status, &page, "too large"),
        stored: stored_objects(&store),
        serving: serving(&app).await,
    });
    let huge_json = serde_json::to_vec(&json!({"prompt": "a".repeat(21 * 1024 * 1024)})).unwrap();
    let response = api_post(&app, "/api/generate")
        .header("content-type", "application/json")
        .body(huge_json)
        .send()
        .await
        .unwrap();
    let (status, text) = answer(response).await;
    table.rows.push(Row {
        input: "21 MiB JSON body".into(),
        place: "POST /api/generate".into(),
        status,
        refused_clearly: api_says(status, &text, "too large"),
        stored: stored_objects(&store),
        serving: serving(&app).await,
    });

    table.print_and_assert("bad prompts and JSON: every one refused, nothing stored");

    let response = api_post(&app, "/api/generate").json(&json!({"prompt": "a lighthouse"})).send().await.unwrap();
    assert_eq!(app.api_job_outcome(response, None).await["state"], "done");
    assert!(stored_objects(&store) > 0, "the count of stored objects sees a real generation");
}

/// A browser: keeps cookies, does not follow redirects, so each step can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string()
}

/// Signs `browser` in as `subject` through the provider.
async fn sign_in(browser: &reqwest::Client, app: &TestApp, provider: &OidcProvider, subject: &str) {
    let start = browser.get(app.url("/signin?next=/")).send().await.unwrap();
    let callback = provider.authorize(&location(&start), subject).await;
    let back = browser.get(callback.url.as_str()).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "{}", back.text().await.unwrap());
}

/// The forgery token the app put in this browser's forms.
async fn form_token(browser: &reqwest::Client, app: &TestApp) -> String {
    let page = browser.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    let start = page.find("name=\"csrf\" value=\"").expect("no form token on the home page") + 19;
    page[start..].split('"').next().unwrap().to_string()
}

/// Changes one character in the middle of a token, keeping its shape.
fn tampered(token: &str) -> String {
    let mut characters: Vec<char> = token.chars().collect();
    let middle = characters.len() / 2;
    characters[middle] = if characters[middle] == 'A' { 'B' } else { 'A' };
    characters.into_iter().collect()
}

#[tokio::test]
async fn forged_sessions_and_tampered_link_tokens_are_refused_and_change_nothing() {
    let provider = OidcProvider::start().await;
    let store_folder = tempfile::tempdir().unwrap();
    let issuer = provider.issuer();
    let store_setting = format!("file://{}", store_folder.path().display());
    let app = TestApp::spawn_with(&[
        ("ATELIER_OIDC_ISSUER", issuer.as_str()),
        ("ATELIER_OIDC_CLIENT_ID", "atelier-web"),
        ("ATELIER_OIDC_CLIENT_SECRET", "atelier-secret"),
        ("ATELIER_SESSION_SECRET", SESSION_SECRET),
        ("ATELIER_STORE", store_setting.as_str()),
    ])
    .await;
    let store = store_folder.path();
    let mut table = Table::default();

    // Session cookies that were never issued: a forged signature, a signed-looking cookie for
    // a session that does not exist, and garbage.
    let forged_cookies = [
        (
            "session cookie, forged signature",
            "AAAAforgedsignatureAAAAAAAAAAAAAAAAAAAAAAA=abcdefabcdefabcdefabcdefabcdefabcdefabcdefa",
        ),
        ("session cookie, no signature", "web-alice"),
        ("session cookie, control bytes", "%00%01%02%ff"),
    ];
    for (input, cookie) in forged_cookies {
        let stranger = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let cookies = format!("atelier_session={cookie}; atelier_csrf={CSRF_TOKEN}");
        let gallery = stranger.get(app.url("/gallery")).header("cookie", &cookies).send().await.unwrap();
        let status = gallery.status();
        table.rows.push(Row {
            input: input.into(),
            place: "GET /gallery".into(),
            status,
            // A page sends a visitor who is not signed in to sign in, which is its refusal.
            refused_clearly: status == StatusCode::SEE_OTHER && location(&gallery).starts_with("/signin"),
            stored: stored_objects(store),
            serving: serving(&app).await,
        });
        let response = stranger
            .post(app.url("/api/generate"))
            .header("cookie", &cookies)
            .header("x-csrf-token", CSRF_TOKEN)
            .json(&json!({"prompt": "a kite"}))
            .send()
            .await
            .unwrap();
        let (status, text) = answer(response).await;
        table.rows.push(Row {
            input: input.into(),
            place: "POST /api/generate".into(),
            status,
            refused_clearly: status == StatusCode::UNAUTHORIZED && api_says(status, &text, "sign in"),
            stored: stored_objects(store),
            serving: serving(&app).await,
        });
    }

    // A real link token from Discord, tampered with, offered to a signed-in person.
    let accounts = Accounts::new(
        Arc::new(FolderStore::open(store).await.unwrap()),
        Arc::new(NoDirectory),
        &reqwest::Url::parse(&app.url("/")).unwrap(),
    );
    let link = accounts.issue_link(4_242_424_242).await.unwrap();
    let carol = browser();
    sign_in(&carol, &app, &provider, "carol").await;
    let token = form_token(&carol, &app).await;
    let bad_tokens = [
        ("link token, one character changed", tampered(link.token())),
        ("link token, cut short", link.token()[..20].to_string()),
        ("link token, padded with junk", format!("{}%00%2F..", link.token())),
    ];
    for (input, bad) in &bad_tokens {
        let offer = carol.get(app.url(&format!("/link?token={bad}"))).send().await.unwrap();
        let (status, page) = answer(offer).await;
        table.rows.push(Row {
            input: (*input).into(),
            place: "GET /link".into(),
            status,
            refused_clearly: says(status, &page, "not valid"),
            stored: stored_objects(store),
            serving: serving(&app).await,
        });
        let decoded = form_urlencoded::parse(format!("t={bad}").as_bytes()).next().unwrap().1.into_owned();
        let confirm = carol
            .post(app.url("/link"))
            .form(&[("token", decoded.as_str()), ("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        let (status, page) = answer(confirm).await;
        table.rows.push(Row {
            input: (*input).into(),
            place: "POST /link".into(),
            status,
            refused_clearly: says(status, &page, "not valid"),
            stored: stored_objects(store),
            serving: serving(&app).await,
        });
    }

    table.print_and_assert("forged sessions and tampered links: every one refused, nothing changed");

    // Nothing was linked, and the real token still works afterwards.
    let account = carol.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(!account.contains("data-testid=\"linked-discord\""), "a tampered token linked: {account}");
    let confirm =
        carol.post(app.url("/link")).form(&[("token", link.token()), ("csrf", token.as_str())]).send().await.unwrap();
    assert_eq!(confirm.status(), StatusCode::OK);
    let account = carol.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("data-testid=\"linked-discord\""), "{account}");
}
