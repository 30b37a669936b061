//! The web app through HTTP, as a browser uses it.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::support::{TestApp, png_text};

/// The first gallery link (`/gallery/{id}`) in a page.
fn first_image_id(page: &str) -> String {
    let start = page.find("href=\"/gallery/").expect("no image link in the page") + "href=\"/gallery/".len();
    page[start..start + 26].to_string()
}

#[tokio::test]
async fn probes_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get_text("/healthz").await, (StatusCode::OK, "ok".to_string()));
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["spool"]["entries"], 0, "the probe says how many images wait for the store: {ready}");
    app.stop().await;
}

#[tokio::test]
async fn readyz_turns_unready_when_the_store_cannot_be_written() {
    let app = TestApp::spawn().await;
    // Replace the store's folder with a plain file: nothing can be written there any more.
    let store = app.data.path().join("store");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, "in the way").unwrap();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    // The probe is public: it says the store is unavailable, not where or why.
    assert_eq!(body["store"], "unavailable", "{body}");
    assert!(!body.to_string().contains(app.data.path().to_str().unwrap()), "{body}");
    // Liveness is unaffected: the process is fine, the load balancer should not kill it.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_home_page_says_it_is_a_demo_and_who_is_signed_in() {
    let app = TestApp::spawn().await;
    let (status, page) = app.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-testid=\"demo-banner\""), "{page}");
    assert!(page.contains("ATELIER_ENGINE=demo"), "the banner should say why: {page}");
    assert!(page.contains("Signed in as <strong data-testid=\"signed-in-as\">Local operator</strong>"), "{page}");
    let stylesheet = app.get("/static/atelier.css").await;
    assert_eq!(stylesheet.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn generating_from_the_studio_fills_the_gallery() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/studio",
            &[
                ("prompt", "a paper boat on a pond"),
                ("aspect", "16:9"),
                ("seed", "11"),
                ("count", "2"),
                ("session", "boats"),
            ],
        )
        .await;
    // The form is answered at once with the job's page, which shows the images once made.
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, page) = app.job_outcome(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("2 new images in your gallery"), "{page}");
    assert!(page.contains("seed 11") && page.contains("seed 12"), "{page}");

    let (_, gallery) = app.get_text("/gallery").await;
    let id = first_image_id(&gallery);
    assert_eq!(gallery.matches("/thumbnail\"").count(), 2, "{gallery}");
    let (_, filtered) = app.get_text("/gallery?session=boats&source=web").await;
    assert_eq!(filtered.matches("/thumbnail\"").count(), 2);
    let (_, other_session) = app.get_text("/gallery?session=castles").await;
    assert!(other_session.contains("No images here yet"), "{other_session}");

    let (status, detail) = app.get_text(&format!("/gallery/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains("a paper boat on a pond"), "{detail}");
    assert!(detail.contains("no model was called"), "{detail}");
    assert!(detail.contains("boats"), "{detail}");

    let full = app.get(&format!("/images/{id}/full")).await;
    assert_eq!(full.headers()["content-type"], "image/png");
    assert!(full.headers()["cache-control"].to_str().unwrap().starts_with("private"));
    let bytes = full.bytes().await.unwrap();
    assert_eq!(png_text(&bytes, "Software").as_deref(), Some("Atelier demo engine (no model was called)"));
    let thumbnail = app.get(&format!("/images/{id}/thumbnail")).await;
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
}

/// Prompts in any script and with emoji, typed into the studio's form: each is drawn, shown on
/// the image's page and written into the PNG's text as UTF-8.
#[tokio::test]
async fn the_studio_takes_prompts_in_any_language_and_with_emoji() {
    let app = TestApp::spawn().await;
    for prompt in ["猫がピアノを弾く", "قطة تعزف على البيانو", "a fox 🦊 in snow"] {
        let response = app.post_form("/studio", &[("prompt", prompt), ("size", "256x256")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, page) = app.job_outcome(response).await;
        assert_eq!(status, StatusCode::OK, "{prompt}: {page}");
        let (_, gallery) = app.get_text("/gallery").await;
        let id = first_image_id(&gallery);
        let (_, detail) = app.get_text(&format!("/gallery/{id}")).await;
        assert!(detail.contains(prompt), "{prompt}: {detail}");
        let full = app.get(&format!("/images/{id}/full")).await.bytes().await.unwrap();
        let description = png_text(&full, "Description").unwrap();
        assert!(description.contains(prompt), "{description:?}");
    }
}

#[tokio::test]
async fn a_refused_prompt_comes_back_with_the_reason_and_the_form_as_typed() {
    let app = TestApp::spawn().await;
    let response =
        app.post_form("/studio", &[("prompt", "a castle"), ("negative_prompt", "fog"), ("count", "12")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("12 images is not possible: ask for 1 to 4 at a time"), "{page}");
    assert!(page.contains(">a castle</textarea>"), "the prompt was lost: {page}");
    assert!(page.contains("value=\"fog\""), "the negative prompt was lost: {page}");
    let (_, gallery) = app.get_text("/gallery").await;
    assert!(gallery.contains("No images here yet"), "a refused request must not make anything");
}

#[tokio::test]
async fn editing_a_gallery_image_records_its_lineage_and_can_go_on() {
    let app = TestApp::spawn().await;
    app.job_outcome(app.post_form("/studio", &[("prompt", "a red house"), ("seed", "3")]).await).await;
    let (_, gallery) = app.get_text("/gallery").await;
    let parent = first_image_id(&gallery);

    let form = Form::new().text("image_id", parent.clone()).text("mode", "variation").text("similarity", "0.8");
    let response = app.client.post(app.form_url("/edit")).multipart(form).send().await.unwrap();
    let (status, page) = app.job_outcome(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Keep editing"), "{page}");
    let child = first_image_id(&page);
    assert_ne!(child, parent);

    let (_, child_page) = app.get_text(&format!("/gallery/{child}")).await;
    assert!(child_page.contains(&format!("href=\"/gallery/{parent}\"")), "no link to the parent: {child_page}");
    assert!(child_page.contains("variation"), "{child_page}");
    let (_, parent_page) = app.get_text(&format!("/gallery/{parent}")).await;
    assert!(parent_page.contains("Made from this image"), "{parent_page}");
    assert!(parent_page.contains(&format!("/images/{child}/thumbnail")), "{parent_page}");
}

#[tokio::test]
async fn an_uploaded_broken_image_is_refused_plainly() {
    let app = TestApp::spawn().await;
    let form = Form::new()
        .part("image", Part::bytes(b"\x89PNG\r\n\x1a\ntruncated".to_vec()).file_name("photo.png"))
        .text("mode", "upscale");
    let response = app.client.post(app.form_url("/edit")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("The uploaded image is damaged"), "{page}");
}

#[tokio::test]
async fn deleting_an_image_removes_it() {
    let app = TestApp::spawn().await;
    app.job_outcome(app.post_form("/studio", &[("prompt", "a snowman")]).await).await;
    let (_, gallery) = app.get_text("/gallery").await;
    let id = first_image_id(&gallery);
    let response = app.post_form(&format!("/gallery/{id}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&format!("/gallery/{id}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/images/{id}/full")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/gallery/not-an-id").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_checker_offers_improved_prompts_to_generate() {
    let app = TestApp::spawn().await;
    let page = app.post_form("/check", &[("prompt", "a cat")]).await.text().await.unwrap();
    assert!(page.contains("data-testid=\"critique\""), "{page}");
    assert!(page.contains("/studio?prompt=a+cat%2C+"), "no generate link: {page}");
    let empty = app.post_form("/check", &[("prompt", " ")]).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn chat_keeps_the_conversation() {
    // Without the page's script the form posts, and the answer is at the conversation's own
    // address; the history is kept there, not sent back in the form.
    let app = TestApp::spawn().await;
    let first = Form::new().text("mode", "prompt-coach").text("message", "a cat");
    let response = app.client.post(app.form_url("/chat")).multipart(first).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let conversation = response.headers()["location"].to_str().unwrap().to_string();
    let (_, page) = app.get_text(&conversation).await;
    assert!(page.contains("Demo coach, turn 1"), "{page}");
    let second = Form::new().text("mode", "prompt-coach").text("message", "a cat, oil painting");
    let response = app.client.post(app.form_url(&conversation)).multipart(second).send().await.unwrap();
    assert_eq!(response.headers()["location"], conversation.as_str());
    let (_, page) = app.get_text(&conversation).await;
    assert!(page.contains("turn 2"), "{page}");
    assert!(page.contains("a cat, oil painting"), "{page}");
}

#[tokio::test]
async fn a_missing_or_forged_form_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let forged = app
        .client
        .post(app.url("/studio"))
        .form(&[("prompt", "a forged request"), ("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap().contains("security token is missing or wrong"));
    let missing = app.client.post(app.url("/studio")).form(&[("prompt", "a forged request")]).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let no_cookie = reqwest::Client::new()
        .post(app.url("/studio"))
        .form(&[("prompt", "a forged request"), ("csrf", crate::support::CSRF_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);
    // A multipart form without the token in its action is refused too.
    let form = Form::new().text("mode", "upscale").part("image", Part::bytes(vec![1, 2, 3]).file_name("a.png"));
    let multipart = app.client.post(app.url("/edit")).multipart(form).send().await.unwrap();
    assert_eq!(multipart.status(), StatusCode::FORBIDDEN);
    let (_, gallery) = app.get_text("/gallery").await;
    assert!(gallery.contains("No images here yet"));
    // Pages hand out the token in a cookie and put it in their forms.
    let page = reqwest::Client::new().get(app.url("/studio")).send().await.unwrap();
    let cookie = page.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("atelier_csrf=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let token = cookie.trim_start_matches("atelier_csrf=").split(';').next().unwrap().to_string();
    assert!(page.text().await.unwrap().contains(&format!("name=\"csrf\" value=\"{token}\"")));
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/studio"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("prompt", "a forged request")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, gallery) = app.get_text("/gallery").await;
    assert!(gallery.contains("No images here yet"));
}

#[tokio::test]
async fn local_sign_in_is_refused_when_listening_beyond_loopback() {
    // The app believes it is bound to every interface (the test still listens on loopback).
    let app = TestApp::spawn_with(&[("ATELIER_BIND", "0.0.0.0:8080")]).await;
    let (status, page) = app.get_text("/gallery").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("will not sign anyone in without a password"), "{page}");
    assert!(page.contains("ATELIER_OIDC_ISSUER"), "{page}");
    let refused = app.post_form("/studio", &[("prompt", "a cat")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The probes still answer, so the load balancer sees the task.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_prompt_refused_by_the_communitys_own_rules_offers_no_appeal() {
    let app = TestApp::spawn_with(&[("ATELIER_BLOCKED_TERMS", "forbidden fruit")]).await;
    let response = app.post_form("/studio", &[("prompt", "a forbidden fruit still life")]).await;
    // The job's page shows the refusal when the safety gate has read the prompt.
    let (status, page) = app.job_outcome(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("refused this prompt (blocked term)"), "{page}");
    assert!(!page.contains("data-testid=\"appeal\""), "local rules cannot be appealed: {page}");
    assert!(page.contains(">a forbidden fruit still life</textarea>"), "the prompt was lost");
}

/// An open gallery hears of images made elsewhere (here through the API) without a reload:
/// its event stream sends the new thumbnails, and a stream opened again after a cut starts
/// after the last image it saw.
#[tokio::test]
async fn an_open_gallery_is_sent_images_made_elsewhere() {
    let app = TestApp::spawn().await;
    let (_, page) = app.get_text("/gallery").await;
    assert!(page.contains("data-events=\"/gallery/events?since=\""), "the newest page is live: {page}");

    let mut events = app.get("/gallery/events").await;
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let made = app
        .client
        .post(app.url("/api/generate"))
        .header("x-csrf-token", crate::support::CSRF_TOKEN)
        .json(&serde_json::json!({"prompt": "a kite seen from a gallery", "count": 2}))
        .send()
        .await
        .unwrap();
    let job = app.api_job_outcome(made, None).await;
    let ids: Vec<&str> = job["images"].as_array().unwrap().iter().map(|image| image["id"].as_str().unwrap()).collect();

    // Read the stream until an `images` event names both new images.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ids.iter().all(|id| text.contains(&format!("/gallery/{id}"))) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk()).await.expect("no images event in time");
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the stream ended")));
    }
    assert!(text.contains("event: images"), "{text}");
    assert!(text.contains("data-testid=\\\"gallery-item\\\""), "the thumbnails' markup: {text}");
    let newest = ids.iter().max().unwrap();
    assert!(text.contains(&format!("id: {newest}")), "the event names the newest image: {text}");

    // Opened again with the last image seen: nothing new, so nothing is sent yet.
    let mut again = app.client.get(app.url("/gallery/events")).header("last-event-id", *newest).send().await.unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(3), again.chunk()).await;
    if let Ok(Ok(Some(chunk))) = quiet {
        let chunk = String::from_utf8_lossy(&chunk).to_string();
        assert!(!chunk.contains("event: images"), "images already seen were sent again: {chunk}");
    }
}

/// An edit refused by the safety check is appealed once from its job's page: a new job whose
/// first check is the stronger model's review; and through the API, a refused generation's
/// job names where to appeal it.
#[tokio::test]
async fn refused_edits_and_generations_are_appealed_once_from_their_jobs() {
    use crate::support::bedrock::{BedrockStandIn, Behaviour, Operation};
    let stand_in = BedrockStandIn::start().await;
    let app = TestApp::spawn_with_aws(&[("ATELIER_ENGINE", "bedrock")], stand_in.sdk_config().await).await;
    let blocked =
        || Behaviour::ToolUse(serde_json::json!({"verdict": "blocked", "category": "violence", "reason": "gore"}));

    stand_in.script(blocked());
    let form = Form::new()
        .text("mode", "variation")
        .text("prompt", "a battlefield, gory")
        .text("model", "titan")
        .part("image", Part::bytes(crate::support::varied_picture(512, 512)).file_name("field.png"));
    let response = app.client.post(app.form_url("/edit")).multipart(form).send().await.unwrap();
    let job = response.headers()["location"].to_str().unwrap().to_string();
    let (_, page) = app.job_outcome(response).await;
    assert!(page.contains("refused this prompt (violence)"), "{page}");
    assert!(page.contains(&format!("action=\"{job}/appeal\"")), "the refused edit offers its appeal: {page}");
    assert_eq!(stand_in.calls_to(Operation::InvokeModel), 0);

    let appealed = app.post_form(&format!("{job}/appeal"), &[]).await;
    assert_eq!(appealed.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.job_outcome(appealed).await;
    assert!(page.contains("data-testid=\"edit-result\""), "the appeal's job made the edit: {page}");
    assert_eq!(stand_in.calls_to(Operation::InvokeModel), 1);
    // Once: the refused job's request is let go with its appeal.
    let again = app.post_form(&format!("{job}/appeal"), &[]).await;
    assert!(again.status().is_client_error(), "{}", again.status());

    // The API: a refused generation's job is appealable, at its appeal_url.
    stand_in.script(blocked());
    let accepted = app
        .client
        .post(app.url("/api/generate"))
        .header("x-csrf-token", crate::support::CSRF_TOKEN)
        .json(&serde_json::json!({"prompt": "a zombie film poster", "model": "titan", "size": "512x512"}))
        .send()
        .await
        .unwrap();
    let refused = app.api_job_outcome(accepted, None).await;
    assert_eq!(refused["state"], "failed", "{refused}");
    assert_eq!(refused["error"]["error"], "blocked");
    assert_eq!(refused["error"]["appealable"], true);
    let appeal_url = refused["appeal_url"].as_str().unwrap();
    let appealed =
        app.client.post(app.url(appeal_url)).header("x-csrf-token", crate::support::CSRF_TOKEN).send().await.unwrap();
    let done = app.api_job_outcome(appealed, None).await;
    assert_eq!(done["state"], "done", "{done}");
    // `appeal: true` for the same prompt again: already appealed, refused without a model call.
    let calls = stand_in.requests().len();
    let twice = app
        .client
        .post(app.url("/api/generate"))
        .header("x-csrf-token", crate::support::CSRF_TOKEN)
        .json(
            &serde_json::json!({"prompt": "a zombie film poster", "model": "titan", "size": "512x512", "appeal": true}),
        )
        .send()
        .await
        .unwrap();
    let twice = app.api_job_outcome(twice, None).await;
    assert!(twice["error"]["message"].as_str().unwrap().contains("already appealed"), "{twice}");
    assert_eq!(stand_in.requests().len(), calls, "a second appeal asks no model");
}

/// The account page hands a person everything of theirs as one archive, and deletes it all
/// only when they type "delete" to confirm.
#[tokio::test]
async fn the_account_page_exports_everything_and_deletes_it_once_confirmed() {
    let app = TestApp::spawn().await;
    let (_, page) = app.job_outcome(app.post_form("/studio", &[("prompt", "a paper boat")]).await).await;
    let start = page.find("href=\"/gallery/").expect("no image on the job's page") + "href=\"/gallery/".len();
    let id = page[start..start + 26].to_string();
    let account = app.get_text("/account").await.1;
    assert!(account.contains("data-testid=\"export-data\"") && account.contains("data-testid=\"delete-data\""));

    let export = app.get("/account/export").await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(export.headers()["content-type"], "application/x-tar");
    let bytes = export.bytes().await.unwrap();
    let mut archive = tar::Archive::new(bytes.as_ref());
    let names: Vec<String> =
        archive.entries().unwrap().map(|entry| entry.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert!(
        names.iter().any(|name| name.starts_with("users/local-operator/images/") && name.contains(&id)),
        "{names:?}"
    );
    assert!(names.iter().any(|name| name.starts_with("users/local-operator/records/")), "{names:?}");

    // Without the confirmation nothing is deleted.
    let refused = app.post_form("/account/delete", &[("confirm", "yes")]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("type delete"));
    assert_eq!(app.get(&format!("/gallery/{id}")).await.status(), StatusCode::OK);

    let deleted = app.post_form("/account/delete", &[("confirm", "delete")]).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(deleted.text().await.unwrap().contains("Everything of yours is gone"));
    assert_eq!(app.get(&format!("/gallery/{id}")).await.status(), StatusCode::NOT_FOUND);
    let left = std::fs::read_dir(app.data.path().join("store/users")).map(|entries| entries.count()).unwrap_or(0);
    let mut files = Vec::new();
    collect(&app.data.path().join("store/users/local-operator"), &mut files);
    assert!(files.is_empty(), "left behind ({left} owners): {files:?}");
}

fn collect(folder: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            collect(&entry.path(), files);
        } else {
            files.push(entry.path());
        }
    }
}
