//! The edit studio and the chat page through HTTP, as their forms and scripts use them:
//! painted masks at the image's own size, chained edits with their lineage, refusals that
//! change nothing, conversations kept in the store and replies streamed as server-sent events.

use std::io::Cursor;

use atelier_shared::Atelier;
use atelier_shared::chat::{ChatMode, ChatTurn, Speaker};
use atelier_shared::config::{Config, RawSettings};
use atelier_shared::gallery::{ImageId, ListFilter, Origin, Owner};
use atelier_shared::request::GenerationFields;
use atelier_shared::startup::{self, AwsSetup};
use atelier_shared::{Actor, Conversation};
use image::{DynamicImage, GenericImageView, GrayImage, ImageFormat, Luma};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::support::{CSRF_TOKEN, TestApp, plan_and_generate};

/// The id after the first `href="{prefix}` in a page.
fn id_after(page: &str, prefix: &str) -> String {
    let marker = format!("href=\"{prefix}");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {marker} in the page: {page}")) + marker.len();
    page[start..start + 26].to_string()
}

/// Generates one image from the studio and returns its id.
async fn generate(app: &TestApp, prompt: &str) -> String {
    let (status, page) = app.job_outcome(app.post_form("/studio", &[("prompt", prompt), ("seed", "3")]).await).await;
    assert_eq!(status, StatusCode::OK);
    id_after(&page, "/gallery/")
}

async fn full_image(app: &TestApp, id: &str) -> DynamicImage {
    let response = app.get(&format!("/images/{id}/full")).await;
    assert_eq!(response.status(), StatusCode::OK, "image {id}");
    image::load_from_memory(&response.bytes().await.unwrap()).unwrap()
}

fn png(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A mask as the page's script sends it: opaque, white over the left half (the region to
/// change), black elsewhere.
fn left_half_mask(width: u32, height: u32) -> Vec<u8> {
    png(DynamicImage::ImageLuma8(GrayImage::from_fn(width, height, |x, _| Luma([if x < width / 2 { 255 } else { 0 }]))))
}

fn file(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_string()).mime_str("image/png").unwrap()
}

async fn post_edit(app: &TestApp, form: Form) -> (StatusCode, String) {
    let response = app.client.post(app.form_url("/edit")).multipart(form).send().await.unwrap();
    app.job_outcome(response).await
}

/// How many images the gallery page shows.
async fn gallery_count(app: &TestApp) -> usize {
    app.get_text("/gallery").await.1.matches("/thumbnail\"").count()
}

/// A second core on the app's own store, acting for other people: what they keep there is
/// what the app would find if they had made it themselves.
async fn core_on_the_same_store(app: &TestApp) -> Atelier {
    let variables = vec![
        ("ATELIER_STORE".to_string(), format!("file://{}", app.data.path().join("store").display())),
        ("ATELIER_ENGINE".to_string(), "demo".to_string()),
        ("ATELIER_CONFIG".to_string(), app.data.path().join("atelier.toml").display().to_string()),
    ];
    let config = Config::from_raw(&RawSettings::from_variables(variables).unwrap()).unwrap();
    startup::build(&config, &AwsSetup::default()).await.unwrap().0
}

fn stranger() -> Owner {
    Owner::discord(7_000_000_000_000_007)
}

#[tokio::test]
async fn a_painted_mask_at_the_images_size_repaints_only_that_region_and_edits_chain() {
    let app = TestApp::spawn().await;
    let parent = generate(&app, "a red house").await;
    let source = full_image(&app, &parent).await;
    let (width, height) = source.dimensions();

    // The page lays a canvas of the image's own pixel size over it, and loads the script.
    let (status, page) = app.get_text(&format!("/edit?image={parent}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("width=\"{width}\" height=\"{height}\" hidden")), "{page}");
    for test_id in ["edit-form", "mask-canvas", "brush-size", "erase", "clear-mask", "mode", "prompt", "mask-prompt"] {
        assert!(page.contains(&format!("data-testid=\"{test_id}\"")), "no {test_id}: {page}");
    }
    assert!(page.contains("<script src=\"/static/edit.js\" defer>"), "{page}");
    assert!(!page.contains(" style=") && !page.contains(" onclick="), "no inline styles or handlers: {page}");
    let script = app.get("/static/edit.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("toBlob"));

    let form = Form::new()
        .text("image_id", parent.clone())
        .text("mode", "inpaint")
        .text("prompt", "a blue door")
        .text("seed", "5")
        .part("mask", file(left_half_mask(width, height), "mask.png"));
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let child = id_after(&page, "/gallery/");
    assert!(page.contains(&format!("src=\"/images/{child}/full\"")) && page.contains("data-testid=\"edit-result\""));
    assert!(page.contains(&format!("href=\"/edit?image={child}\" data-testid=\"keep-editing\"")), "{page}");

    // Black marked the region: the left half was repainted, the right half is untouched.
    let edited = full_image(&app, &child).await.to_rgb8();
    let original = source.to_rgb8();
    assert_eq!(edited.dimensions(), (width, height));
    let changed = |from: u32, to: u32| {
        (0..height)
            .flat_map(|y| (from..to).map(move |x| (x, y)))
            .filter(|&(x, y)| edited[(x, y)] != original[(x, y)])
            .count()
    };
    assert_eq!(changed(width / 2, width), 0, "pixels outside the mask changed");
    assert!(changed(0, width / 2) > (width / 2 * height / 2) as usize, "the masked half was not repainted");

    // The lineage is recorded both ways.
    let (_, child_page) = app.get_text(&format!("/gallery/{child}")).await;
    assert!(child_page.contains(&format!("href=\"/gallery/{parent}\"")), "{child_page}");
    assert!(child_page.contains("inpaint"), "{child_page}");

    // Keep editing: the result is the new source, and the next edit records it as the parent.
    let (status, next_page) = app.get_text(&format!("/edit?image={child}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(next_page.contains(&format!("name=\"image_id\" value=\"{child}\"")), "{next_page}");
    assert!(next_page.contains(&format!("src=\"/images/{child}/full\"")), "{next_page}");
    let form = Form::new().text("image_id", child.clone()).text("mode", "variation").text("similarity", "0.9");
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let grandchild = id_after(&page, "/gallery/");
    let (_, grandchild_page) = app.get_text(&format!("/gallery/{grandchild}")).await;
    assert!(grandchild_page.contains(&format!("href=\"/gallery/{child}\"")), "{grandchild_page}");
    assert_eq!(gallery_count(&app).await, 3);
}

#[tokio::test]
async fn a_mask_of_another_size_is_refused_with_both_sizes_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let parent = generate(&app, "a lighthouse").await;
    let (width, height) = full_image(&app, &parent).await.dimensions();
    // Painted at the size the image was shown at, not its own.
    let form = Form::new()
        .text("image_id", parent.clone())
        .text("mode", "inpaint")
        .text("prompt", "a red roof")
        .part("mask", file(left_half_mask(width / 2, height / 2), "mask.png"));
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let expected = format!(
        "The mask is {}x{} but the image is {width}x{height}: paint the mask at the image&#39;s own size",
        width / 2,
        height / 2
    );
    assert!(page.contains(&expected) || page.contains(&expected.replace("&#39;", "'")), "{page}");
    // The form comes back on the same source, with the prompt as typed.
    assert!(page.contains(&format!("name=\"image_id\" value=\"{parent}\"")), "{page}");
    assert!(page.contains("value=\"a red roof\""), "{page}");
    assert_eq!(gallery_count(&app).await, 1, "a refused edit must not store anything");

    // An inpaint needs a prompt saying what to paint.
    let form = Form::new()
        .text("image_id", parent)
        .text("mode", "inpaint")
        .part("mask", file(left_half_mask(width, height), "mask.png"));
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Inpaint needs a prompt saying what to paint"), "{page}");
    assert_eq!(gallery_count(&app).await, 1);
}

#[tokio::test]
async fn uploads_that_are_not_images_or_too_large_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;

    let not_an_image = Form::new()
        .part("image", Part::bytes(b"just some words, not a picture".to_vec()).file_name("notes.png"))
        .text("mode", "upscale");
    let (status, page) = post_edit(&app, not_an_image).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("The uploaded image is not a PNG, JPEG or WebP image"), "{page}");

    // Past the upload limit but within the request limit: the core's own check says how large.
    let eleven_mebibytes = vec![0u8; 11 * 1024 * 1024];
    let oversized = Form::new().part("image", file(eleven_mebibytes, "huge.png")).text("mode", "upscale");
    let (status, page) = post_edit(&app, oversized).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("The uploaded image is 11.0 MiB; the limit is 10 MiB"), "{page}");

    // A mask that is not an image is refused the same way.
    let picture = png(DynamicImage::ImageRgb8(image::RgbImage::from_pixel(128, 96, image::Rgb([200, 80, 40]))));
    let bad_mask = Form::new()
        .part("image", file(picture.clone(), "photo.png"))
        .text("mode", "inpaint")
        .text("prompt", "a cat")
        .part("mask", Part::bytes(b"GIF89a not really".to_vec()).file_name("mask.gif"));
    let (status, page) = post_edit(&app, bad_mask).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("The mask is not a PNG, JPEG or WebP image"), "{page}");
    assert!(page.contains("data-testid=\"edit-form\""), "the form comes back: {page}");
    assert!(app.get_text("/gallery").await.1.contains("No images here yet"));

    // A sound upload with a mask of its size works, and has no parent.
    let form = Form::new()
        .part("image", file(picture, "photo.png"))
        .text("mode", "inpaint")
        .text("prompt", "a cat")
        .part("mask", file(left_half_mask(128, 96), "mask.png"));
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("from an upload"), "{page}");
    assert_eq!(gallery_count(&app).await, 1);
}

#[tokio::test]
async fn another_persons_image_is_not_found_on_the_edit_page() {
    let app = TestApp::spawn().await;
    let other_core = core_on_the_same_store(&app).await;
    let fields = GenerationFields { prompt: "someone else's castle".into(), ..GenerationFields::default() };
    let kept =
        plan_and_generate(&other_core, &Actor::new(stranger(), Origin::Cli), &fields.parse().unwrap()).await.unwrap();
    let theirs = kept[0].record.id.to_string();
    let missing = ImageId::new().to_string();

    for id in [&theirs, &missing, &"not-an-id".to_string()] {
        let (status, page) = app.get_text(&format!("/edit?image={id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {page}");
        let form = Form::new().text("image_id", id.clone()).text("mode", "variation");
        let (status, page) = post_edit(&app, form).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {page}");
        assert!(page.contains("That image does not exist, or is not yours"), "{page}");
        assert!(!page.contains(&format!("value=\"{id}\"")), "the refused id is not kept in the form: {page}");
    }
    // Neither gallery gained anything.
    assert!(app.get_text("/gallery").await.1.contains("No images here yet"));
    let stranger_actor = Actor::new(stranger(), Origin::Cli);
    let theirs_now = other_core.gallery_page(&stranger_actor, &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(theirs_now.records.len(), 1);
}

/// One server-sent event: its name and its data.
#[derive(Debug)]
struct ServerEvent {
    name: String,
    data: serde_json::Value,
}

fn parse_events(body: &str) -> Vec<ServerEvent> {
    body.split("\n\n")
        .filter(|frame| frame.lines().any(|line| line.starts_with("data:")))
        .map(|frame| {
            let mut name = "message".to_string();
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            ServerEvent { name, data: serde_json::from_str(&data.join("\n")).unwrap() }
        })
        .collect()
}

/// Sends a chat message as `chat.js` does: fetch with the token in a header, asking for events.
async fn stream_message(app: &TestApp, path: &str, form: Form) -> (StatusCode, String, Vec<ServerEvent>) {
    let response = app
        .client
        .post(app.url(path))
        .header("accept", "text/event-stream")
        .header("x-csrf-token", CSRF_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    let body = response.text().await.unwrap();
    (status, content_type, parse_events(&body))
}

/// The reply's text pieces, joined.
fn streamed_text(events: &[ServerEvent]) -> String {
    events.iter().filter(|event| event.name == "text").map(|event| event.data.as_str().unwrap()).collect()
}

#[tokio::test]
async fn chat_streams_replies_and_keeps_each_conversation_in_the_store() {
    let app = TestApp::spawn().await;
    let (status, page) = app.get_text("/chat").await;
    assert_eq!(status, StatusCode::OK);
    for test_id in ["chat-form", "chat-mode", "chat-message", "chat-image", "send", "new-conversation"] {
        assert!(page.contains(&format!("data-testid=\"{test_id}\"")), "no {test_id}: {page}");
    }
    assert!(page.contains(&format!("data-csrf=\"{CSRF_TOKEN}\"")), "{page}");
    assert!(!page.contains("name=\"history\""), "the history is kept on the server: {page}");
    let script = app.get("/static/chat.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");

    let first = Form::new().text("mode", "prompt-coach").text("message", "a cat");
    let (status, content_type, events) = stream_message(&app, "/chat", first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/event-stream");
    assert_eq!(events[0].name, "conversation", "{events:?}");
    let id = events[0].data["id"].as_str().unwrap().to_string();
    let url = events[0].data["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("/chat/{id}"));
    assert!(events.iter().filter(|event| event.name == "text").count() > 3, "the reply came in one piece: {events:?}");
    let last = events.last().unwrap();
    assert_eq!((last.name.as_str(), &last.data["stop_reason"]), ("done", &serde_json::json!("end_turn")));
    assert!(streamed_text(&events).starts_with("(Demo coach, turn 1.)"), "{events:?}");

    // The second message names only the conversation; the store supplies the history.
    let second = Form::new().text("mode", "prompt-coach").text("message", "a cat, oil painting");
    let (status, _, events) = stream_message(&app, &url, second).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events[0].data["id"], id.as_str(), "the same conversation goes on");
    assert!(streamed_text(&events).starts_with("(Demo coach, turn 2.)"), "{events:?}");

    // The conversation's page shows all four turns, the newest answer marked finished.
    let (status, page) = app.get_text(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("class=\"turn user\"").count(), 2, "{page}");
    assert!(page.contains("a cat, oil painting"), "{page}");
    assert!(page.contains("data-testid=\"chat-answer\" data-done=\"true\">(Demo coach, turn 2.)"), "{page}");
    assert!(page.contains(&format!("data-stream=\"/chat/{id}\"")), "{page}");

    // It is kept in the store for its owner, so any replica can continue it.
    let core = core_on_the_same_store(&app).await;
    let kept = core.conversation(&id).await.unwrap().unwrap();
    assert_eq!(kept.owner, Owner::local_operator());
    assert_eq!(kept.mode, ChatMode::PromptCoach);
    assert_eq!(kept.turns.len(), 4);
    assert_eq!(kept.turns[2], ChatTurn { speaker: Speaker::User, text: "a cat, oil painting".into() });

    // A new conversation starts from nothing.
    let fresh = Form::new().text("mode", "prompt-coach").text("message", "a dog");
    let (_, _, events) = stream_message(&app, "/chat", fresh).await;
    assert_ne!(events[0].data["id"], id.as_str());
    assert!(streamed_text(&events).starts_with("(Demo coach, turn 1.)"), "{events:?}");
}

#[tokio::test]
async fn chat_without_the_script_posts_and_redirects_and_takes_an_image() {
    let app = TestApp::spawn().await;
    let picture = png(DynamicImage::ImageRgb8(image::RgbImage::from_pixel(96, 64, image::Rgb([30, 90, 200]))));
    let form = Form::new()
        .text("mode", "assistant")
        .text("message", "what is in this picture?")
        .part("image", file(picture, "photo.png"));
    let response = app.client.post(app.form_url("/chat")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/chat/") && location.len() == "/chat/".len() + 26, "{location}");
    let (status, page) = app.get_text(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("you said &quot;what is in this picture?&quot;"), "{page}");
    assert!(page.contains("the 96x64 image you attached"), "the image reached the model: {page}");

    // Refusals come back on the page with the message as typed, and change nothing.
    let empty = Form::new().text("mode", "assistant").text("message", "   ");
    let response = app.client.post(app.form_url(&location)).multipart(empty).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("The message is empty: write something to send"));
    let not_an_image = Form::new()
        .text("message", "and this one?")
        .part("image", Part::bytes(b"plain text".to_vec()).file_name("photo.png"));
    let response = app.client.post(app.form_url(&location)).multipart(not_an_image).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("The attached image is not a PNG, JPEG or WebP image"), "{page}");
    assert!(page.contains(">and this one?</textarea>"), "the message was lost: {page}");
    let (_, page) = app.get_text(&location).await;
    assert_eq!(page.matches("class=\"turn user\"").count(), 1, "a refused message is not kept: {page}");

    // The script gets the same refusals as an `error` event, with the status.
    let (status, _, events) = stream_message(&app, &location, Form::new().text("message", "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "error");
    assert_eq!(events[0].data["message"], "The message is empty: write something to send");
}

#[tokio::test]
async fn another_persons_conversation_is_not_found() {
    let app = TestApp::spawn().await;
    let core = core_on_the_same_store(&app).await;
    let theirs = ImageId::new().0.to_string();
    let conversation = Conversation {
        owner: stranger(),
        mode: ChatMode::Assistant,
        turns: vec![ChatTurn { speaker: Speaker::User, text: "my secret plans".into() }],
    };
    core.remember_conversation(&theirs, &conversation).await.unwrap();

    for id in [theirs.as_str(), "01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-conversation"] {
        let (status, page) = app.get_text(&format!("/chat/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert!(!page.contains("my secret plans"));
        let (status, _, events) = stream_message(&app, &format!("/chat/{id}"), Form::new().text("message", "hi")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(events[0].data["message"], "That conversation does not exist, or is not yours");
        let form = Form::new().text("message", "hi");
        let response = app.client.post(app.form_url(&format!("/chat/{id}"))).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(core.conversation(&theirs).await.unwrap().unwrap(), conversation, "their conversation is unchanged");
}

/// The edit form names the session its result joins: an upload goes into the session typed;
/// left blank, an edit of a gallery image stays in its source's session.
#[tokio::test]
async fn the_edit_form_puts_its_result_in_the_session_typed_or_the_sources() {
    let app = TestApp::spawn().await;
    let form = Form::new()
        .text("mode", "upscale")
        .text("session", "walls")
        .part("image", file(crate::support::varied_picture(256, 192), "wall.png"));
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let upscaled = id_after(&page, "/gallery/");
    let (_, walls) = app.get_text("/gallery?session=walls").await;
    assert!(walls.contains(&format!("/images/{upscaled}/thumbnail")), "the upload's result is not in walls: {walls}");

    let form = Form::new().text("mode", "variation").text("image_id", upscaled.clone()).text("session", "");
    let (status, page) = post_edit(&app, form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let varied = id_after(&page, "/gallery/");
    let (_, walls) = app.get_text("/gallery?session=walls").await;
    assert!(walls.contains(&format!("/images/{varied}/thumbnail")), "the variation left its source's session: {walls}");
    let (_, edit_page) = app.get_text("/edit").await;
    assert!(edit_page.contains("data-testid=\"edit-session\""), "the edit page offers a session field");
}
