//! One set of defaults per person and sessions everywhere: a default set in one front end is
//! used by the others, a bad one is refused alike everywhere, and sessions are picked, renamed
//! and deleted from the gallery page, the API and the command line. (The local web operator,
//! the API in local mode and the CLI act as one owner, so they share defaults and sessions.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{CSRF_TOKEN, TestApp, atelier, run};

/// An API call as the browser's scripts make it in local mode: the forgery token in a header.
async fn api(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).header("x-csrf-token", CSRF_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Generates through the API as the local operator and follows the job until it is done.
async fn generate(app: &TestApp, body: Value) -> Value {
    let accepted =
        app.client.post(app.url("/api/generate")).header("x-csrf-token", CSRF_TOKEN).json(&body).send().await.unwrap();
    let job = app.api_job_outcome(accepted, None).await;
    assert_eq!(job["state"], "done", "{job}");
    job
}

/// The `atelier` binary on the same store as `app`, so it acts on the same local operator.
fn atelier_on(app: &TestApp) -> std::process::Command {
    let mut command = atelier(app.data.path());
    command.env("ATELIER_STORE", format!("file://{}", app.data.path().join("store").display()));
    command
}

#[tokio::test]
async fn a_default_saved_on_the_settings_page_applies_to_an_api_generation() {
    let app = TestApp::spawn().await;
    let (status, page) = app.get_text("/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-testid=\"settings-form\"") && page.contains("name=\"csrf\""), "{page}");
    assert!(page.contains("href=\"/settings\" aria-current=\"page\""), "the navigation leads here: {page}");

    let saved = app
        .post_form("/settings", &[("model", ""), ("aspect", "16:9"), ("style", ""), ("negative_prompt", "fog")])
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved.headers()["location"], "/settings?saved=1");
    let (_, page) = app.get_text("/settings?saved=1").await;
    assert!(page.contains("Saved.") && page.contains("value=\"16:9\"") && page.contains("value=\"fog\""), "{page}");

    // The API's generation names no shape and no negative prompt: the defaults fill them in.
    let made = generate(&app, json!({"prompt": "a kite"})).await;
    let image = &made["images"][0];
    assert_eq!(image["aspect"], "16:9", "{image}");
    assert!(image["width"].as_u64().unwrap() > image["height"].as_u64().unwrap(), "{image}");
    assert_eq!(image["negative_prompt"], "fog");
    // What a request says itself wins.
    let square = generate(&app, json!({"prompt": "a kite", "aspect": "1:1"})).await;
    assert_eq!(square["images"][0]["aspect"], "1:1", "{square}");

    let (status, settings) = api(&app, Method::GET, "/api/settings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({"model": null, "aspect": "16:9", "style": null, "negative_prompt": "fog", "private_results": false})
    );
    // The Generate page starts from them too.
    let (_, studio) = app.get_text("/studio").await;
    assert!(studio.contains("<option value=\"16:9\" selected>"), "{studio}");
}

#[tokio::test]
async fn a_bad_default_is_refused_alike_everywhere_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (status, saved) =
        api(&app, Method::PUT, "/api/settings", Some(json!({"aspect": "3:2", "style": "anime"}))).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["aspect"], "3:2");
    let message = "`wide` is not an aspect ratio: write it as W:H, such as 16:9";

    let (status, refused) = api(&app, Method::PUT, "/api/settings", Some(json!({"aspect": "wide"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused, json!({"error": "invalid", "message": message}));
    let (status, refused) = api(&app, Method::PUT, "/api/settings", Some(json!({"model": "dall-e"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["message"].as_str().unwrap().contains("`dall-e` is not a model that makes images here"),
        "{refused}"
    );
    let (status, refused) = api(&app, Method::PUT, "/api/settings", Some(json!({"colour": "red"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    let page = app.post_form("/settings", &[("aspect", "wide"), ("style", "")]).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let page = page.text().await.unwrap();
    assert!(page.contains(message), "{page}");
    assert!(page.contains("value=\"wide\""), "the form comes back as typed: {page}");

    let (output, _, stderr) = run(atelier_on(&app).args(["settings", "--aspect", "wide"]));
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("error: {message}\n")), "{stderr}");

    // Nothing changed, and the command line sees what the web saved: one owner.
    let (_, settings) = api(&app, Method::GET, "/api/settings", None).await;
    assert_eq!((&settings["aspect"], &settings["style"]), (&json!("3:2"), &json!("anime")), "{settings}");
    let (output, stdout, stderr) = run(atelier_on(&app).arg("settings"));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("aspect:   3:2") && stdout.contains("style:    anime"), "{stdout}");
}

/// The record the command line's run kept for the image it wrote last.
fn newest_record(folder: &std::path::Path) -> Value {
    let records = folder.join("atelier-data/users/local-operator/records");
    // Record keys sort newest first.
    let mut keys: Vec<_> = std::fs::read_dir(records).unwrap().map(|entry| entry.unwrap().path()).collect();
    keys.sort();
    serde_json::from_slice(&std::fs::read(&keys[0]).unwrap()).unwrap()
}

#[test]
fn atelier_settings_then_generate_makes_an_image_of_the_default_shape_and_sessions_group_them() {
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(atelier(folder.path()).args(["settings", "--aspect", "16:9"]));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("aspect:   16:9"), "{stdout}");

    let (output, stdout, stderr) = run(atelier(folder.path()).args([
        "generate",
        "--prompt",
        "a wide valley",
        "--session",
        "trip",
        "--out",
        "out",
    ]));
    assert!(output.status.success(), "{stderr}");
    let file = stdout.split("  ").next().unwrap().trim().to_string();
    let picture = image::open(folder.path().join(&file)).unwrap();
    assert!(picture.width() > picture.height(), "{}x{}", picture.width(), picture.height());
    let record = newest_record(folder.path());
    assert_eq!(record["parameters"]["shape"], json!({"aspect": {"width": 16, "height": 9}}), "{record}");
    assert_eq!(record["session"], "trip");

    let (output, _, stderr) = run(atelier(folder.path()).args([
        "edit",
        "--image",
        &file,
        "--mode",
        "variation",
        "--session",
        "big",
        "--out",
        "out",
    ]));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(newest_record(folder.path())["session"], "big");

    // --clear takes the defaults away: the next image is square again.
    let (output, stdout, _) = run(atelier(folder.path()).args(["settings", "--clear"]));
    assert!(output.status.success());
    assert!(stdout.contains("aspect:   (none)"), "{stdout}");
    let (output, stdout, _) =
        run(atelier(folder.path()).args(["generate", "--prompt", "a wide valley", "--out", "out"]));
    assert!(output.status.success());
    let file = stdout.split("  ").next().unwrap().trim().to_string();
    let picture = image::open(folder.path().join(file)).unwrap();
    assert_eq!(picture.width(), picture.height());
    assert_eq!(newest_record(folder.path())["session"], Value::Null);

    let (output, _, stderr) = run(atelier(folder.path()).args(["generate", "--prompt", "a", "--session", "\u{7}"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("a session name is 1 to 60 characters, on one line"), "{stderr}");
}

#[tokio::test]
async fn the_gallery_lists_sessions_to_pick_and_renames_and_deletes_them_keeping_the_images() {
    let app = TestApp::spawn().await;
    for (prompt, session) in [("a boat", "trip"), ("a pier", "trip"), ("a cat", "home"), ("a cup", "")] {
        let response = app.post_form("/studio", &[("prompt", prompt), ("session", session)]).await;
        let (status, page) = app.job_outcome(response).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("data-testid=\"result-image\""), "{page}");
    }
    let (_, gallery) = app.get_text("/gallery").await;
    assert!(gallery.contains("<select name=\"session\" data-testid=\"session-filter\">"), "{gallery}");
    assert!(gallery.contains("<option value=\"trip\">trip (2)</option>"), "{gallery}");
    assert!(gallery.contains("<option value=\"home\">home (1)</option>"), "{gallery}");
    assert!(!gallery.contains("data-testid=\"session-tools\""), "renaming is offered for a chosen session");
    let (_, trip) = app.get_text("/gallery?session=trip").await;
    assert_eq!(trip.matches("/thumbnail\"").count(), 2);
    assert!(
        trip.contains("<option value=\"trip\" selected>") && trip.contains("data-testid=\"session-tools\""),
        "{trip}"
    );

    // Renamed from the gallery page: every image moves, and the page shows the new name.
    let renamed = app.post_form("/gallery/sessions/rename", &[("session", "trip"), ("new_name", "Japan 2025")]).await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    assert_eq!(renamed.headers()["location"], "/gallery?session=Japan+2025");
    let (_, japan) = app.get_text("/gallery?session=Japan+2025").await;
    assert_eq!(japan.matches("/thumbnail\"").count(), 2, "{japan}");
    let (status, _) = app.get_text("/gallery?session=trip").await;
    assert_eq!(status, StatusCode::OK);

    // The API sees the same sessions, and renames and deletes them too.
    let (status, listed) = api(&app, Method::GET, "/api/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, u64)> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| (session["name"].as_str().unwrap(), session["images"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("home", 1), ("Japan 2025", 2)], "{listed}");
    let (status, session) = api(&app, Method::PATCH, "/api/sessions/home", Some(json!({"name": "Japan 2025"}))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        (&session["name"], &session["images"]),
        (&json!("Japan 2025"), &json!(3)),
        "renaming into a session joins it"
    );
    let (status, missing) = api(&app, Method::PATCH, "/api/sessions/home", Some(json!({"name": "again"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["message"], "There is no session named `home` in your gallery");
    let (status, _) = api(&app, Method::PATCH, "/api/sessions/Japan%202025", Some(json!({"name": "   "}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = api(&app, Method::DELETE, "/api/sessions/Japan%202025", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = api(&app, Method::GET, "/api/sessions", None).await;
    assert_eq!(listed["sessions"], json!([]));
    let (_, images) = api(&app, Method::GET, "/api/images", None).await;
    let images = images["images"].as_array().unwrap();
    assert_eq!(images.len(), 4, "deleting a session keeps its images");
    assert!(images.iter().all(|image| image["session"].is_null()), "{images:?}");

    // And the gallery page deletes one the same way.
    app.job_outcome(app.post_form("/studio", &[("prompt", "a kite"), ("session", "kites")]).await).await;
    let deleted = app.post_form("/gallery/sessions/delete", &[("session", "kites")]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let (_, gallery) = app.get_text("/gallery").await;
    assert!(!gallery.contains("value=\"kites\""), "{gallery}");
    assert_eq!(gallery.matches("/thumbnail\"").count(), 5);
}

#[tokio::test]
async fn the_api_document_lists_the_settings_and_sessions_routes() {
    let app = TestApp::spawn().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    for (path, method, errors) in [
        ("/api/settings", "get", &["401"][..]),
        ("/api/settings", "put", &["400", "401"][..]),
        ("/api/sessions", "get", &["401"][..]),
        ("/api/sessions/{name}", "patch", &["400", "401", "404"][..]),
        ("/api/sessions/{name}", "delete", &["400", "401", "404"][..]),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not in the document");
        for status in errors {
            assert!(
                operation["responses"][status]["content"]["application/json"].is_object(),
                "{method} {path} {status}"
            );
        }
    }
    let schemas = &document["components"]["schemas"];
    for schema in ["SettingsView", "SessionList", "SessionView", "RenameSessionBody"] {
        assert!(schemas[schema].is_object(), "{schema} is not in the document");
    }
    assert_eq!(
        document["paths"]["/api/settings"]["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SettingsView"
    );
}
