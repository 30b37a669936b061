//! The S3 store through the real aws-sdk-s3 client: against moto for the store, the gallery,
//! the command line and the web app's redirects, and against s3s-fs for what moto does not
//! check (signatures and presigned-URL expiry).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atelier_shared::adapters::S3Store;
use atelier_shared::adapters::{ObjectKey, ObjectStore, PutMode, StoreError};
use atelier_shared::engine::EngineKind;
use atelier_shared::engine::SafetyOutcome;
use atelier_shared::gallery::{Gallery, ImageId, ImageRecord, ListFilter, Origin, Owner, Parameters, Variant};
use atelier_shared::images::{CheckedImage, encode_png};
use atelier_shared::pricing::Usd;
use atelier_shared::request::Seed;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::support::moto::Moto;
use crate::support::s3s::{S3sFs, SECRET_KEY};
use crate::support::{TestApp, atelier, run};

/// A bucket name no other test uses.
fn unique_bucket() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("atelier-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A plain S3 client (path-style, as stand-ins need), to set up and inspect buckets.
fn client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(true).build())
}

/// Creates a fresh bucket and returns its name.
async fn new_bucket(sdk_config: &aws_config::SdkConfig) -> String {
    let bucket = unique_bucket();
    client(sdk_config).create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

/// Every key in the bucket under `prefix`, ascending.
async fn keys_in(sdk_config: &aws_config::SdkConfig, bucket: &str, prefix: &str) -> Vec<String> {
    let mut pages = client(sdk_config).list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().filter_map(|object| object.key().map(String::from)));
    }
    keys
}

/// An SDK configuration for moto's test credentials at another endpoint (the relay).
async fn sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

fn png(shade: u8) -> CheckedImage {
    let pixels = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(96, 64, image::Rgb([shade, 90, 40])));
    CheckedImage::check(encode_png(&pixels, &[]).unwrap(), "the image").unwrap()
}

fn record(owner: &Owner, image: &CheckedImage) -> ImageRecord {
    ImageRecord {
        id: ImageId::new(),
        owner: owner.clone(),
        prompt: Some("a pebble on a beach".into()),
        negative_prompt: None,
        model_id: "atelier.demo".into(),
        model_family: "demo".into(),
        engine: EngineKind::Demo,
        parameters: Parameters::default(),
        seed: Seed(1),
        size: image.size(),
        created_at: time::OffsetDateTime::now_utc(),
        safety: SafetyOutcome::NotChecked,
        parent: None,
        origin: Origin::Cli,
        session: None,
        media_type: image.media_type().into(),
        extension: image.extension().into(),
    }
}

#[tokio::test]
async fn s3_objects_round_trip_list_in_order_across_pages_and_delete() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    // Two keys per ListObjectsV2 call, so every listing below follows continuation tokens.
    let store = S3Store::new(&sdk_config, bucket.clone(), Some("atelier".into()), true).with_page_size(2);
    assert_eq!(store.location(), format!("s3://{bucket}/atelier"));
    store.check().await.unwrap();

    for name in ["e", "b", "a", "g", "c", "f", "d"] {
        let path = key(&format!("users/x/records/{name}.json"));
        store.put(&path, Bytes::from(name), "application/json", PutMode::Overwrite).await.unwrap();
    }
    store
        .put(&key("users/y/records/a.json"), Bytes::from("other"), "application/json", PutMode::Overwrite)
        .await
        .unwrap();
    // The prefix is kept in the bucket and taken off again in listings.
    assert!(keys_in(&sdk_config, &bucket, "").await.iter().all(|stored| stored.starts_with("atelier/users/")));

    let names = |keys: Vec<ObjectKey>| -> Vec<String> {
        keys.iter().map(|key| key.as_str().trim_start_matches("users/x/records/").to_string()).collect()
    };
    let all = store.list("users/x/records/", None, 100).await.unwrap();
    assert_eq!(names(all), ["a.json", "b.json", "c.json", "d.json", "e.json", "f.json", "g.json"]);
    let middle = store.list("users/x/records/", Some("users/x/records/b.json"), 3).await.unwrap();
    assert_eq!(names(middle), ["c.json", "d.json", "e.json"]);
    let tail = store.list("users/x/records/", Some("users/x/records/e.json"), 100).await.unwrap();
    assert_eq!(names(tail), ["f.json", "g.json"]);
    assert!(store.list("users/z/", None, 10).await.unwrap().is_empty());

    let path = key("users/x/records/c.json");
    assert_eq!(store.get(&path).await.unwrap(), Bytes::from("c"));
    store.put(&path, Bytes::from("c, again"), "application/json", PutMode::Overwrite).await.unwrap();
    assert_eq!(store.get(&path).await.unwrap(), Bytes::from("c, again"));
    store.delete(&path).await.unwrap();
    assert!(store.get(&path).await.unwrap_err().is_not_found());
    store.delete(&path).await.unwrap();
    assert_eq!(store.list("users/x/records/", None, 100).await.unwrap().len(), 6);
}

#[tokio::test]
async fn s3_listing_follows_continuation_tokens_past_a_full_page() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    // S3's own page size (1,000 keys), so more keys than one ListObjectsV2 call returns.
    let store = S3Store::new(&sdk_config, bucket, None, true);
    let count = 1_100;
    futures::stream::iter(0..count)
        .map(|number| {
            let store = &store;
            async move {
                let path = key(&format!("many/{number:05}"));
                store.put(&path, Bytes::from_static(b"x"), "text/plain", PutMode::Overwrite).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let listed = store.list("many/", None, 5_000).await.unwrap();
    assert_eq!(listed.len(), count);
    assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "not in ascending order");
    let page = store.list("many/", Some("many/00995"), 10).await.unwrap();
    let names: Vec<&str> = page.iter().map(ObjectKey::as_str).collect();
    assert_eq!(names, (996..1006).map(|number| format!("many/{number:05}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn s3_create_only_writes_refuse_a_second_writer() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let store = S3Store::new(&sdk_config, new_bucket(&sdk_config).await, None, true);
    let path = key("links/token");
    store.put(&path, Bytes::from("first"), "text/plain", PutMode::CreateOnly).await.unwrap();
    let second = store.put(&path, Bytes::from("second"), "text/plain", PutMode::CreateOnly).await;
    assert!(matches!(second, Err(StoreError::AlreadyExists(ref at)) if at == "links/token"), "{second:?}");
    assert_eq!(store.get(&path).await.unwrap(), Bytes::from("first"));
}

#[tokio::test]
async fn s3_conditional_replaces_write_only_over_the_version_read() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let store = S3Store::new(&sdk_config, new_bucket(&sdk_config).await, None, true);
    let path = key("users/someone/usage.json");
    store.put(&path, Bytes::from("first"), "application/json", PutMode::CreateOnly).await.unwrap();
    let (body, read) = store.get_versioned(&path).await.unwrap();
    assert_eq!(body, Bytes::from("first"));
    store.replace(&path, Bytes::from("second"), "application/json", &read).await.unwrap();
    // A writer still holding the first version loses, and changes nothing.
    let stale = store.replace(&path, Bytes::from("stale"), "application/json", &read).await;
    assert!(matches!(stale, Err(StoreError::Changed(_))), "{stale:?}");
    assert_eq!(store.get(&path).await.unwrap(), Bytes::from("second"));
    store.delete(&path).await.unwrap();
    let gone = store.replace(&path, Bytes::from("again"), "application/json", &read).await;
    assert!(matches!(gone, Err(StoreError::Changed(_))), "{gone:?}");
}

#[tokio::test]
async fn quotas_on_s3_hold_across_two_replicas_and_are_refunded_once() {
    use atelier_shared::config::JobLimits;
    use atelier_shared::jobs::{JobDetails, Jobs};
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true));
    let limits = JobLimits { per_user_running: 5, per_user_queued: 5, daily_images: Some(3), ..JobLimits::default() };
    let (first, second) = (Jobs::new(limits, store.clone()), Jobs::new(limits, store.clone()));
    let owner = Owner::discord(77);
    let kept = first.admit(&owner, 2, Usd::ZERO, JobDetails::edit()).await.unwrap();
    let refused = second.admit(&owner, 2, Usd::ZERO, JobDetails::edit()).await.err().unwrap();
    assert!(refused.to_string().contains("1 image left of today's 3"), "{refused}");
    let failed = second.admit(&owner, 1, Usd::ZERO, JobDetails::edit()).await.unwrap();
    assert_eq!(keys_in(&sdk_config, &bucket, "jobs/").await.len(), 2, "each job in progress has its record");
    failed.finish(true).await;
    kept.finish(false).await;
    let usage = first.usage(&owner, None).await.unwrap();
    assert_eq!((usage.images_today, usage.running + usage.queued), (2, 0));
    assert!(keys_in(&sdk_config, &bucket, "jobs/").await.is_empty());
}

#[tokio::test]
async fn the_gallery_on_s3_lists_newest_first_across_pages_and_deletes_every_part() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let store = S3Store::new(&sdk_config, bucket.clone(), None, true).with_page_size(3);
    let gallery = Gallery::new(Arc::new(store));
    let owner = Owner::local_operator();
    let mut ids = Vec::new();
    for shade in 0..5 {
        let image = png(shade * 40);
        let record = record(&owner, &image);
        gallery.save(&record, &image).await.unwrap();
        ids.push(record.id);
    }
    ids.reverse();

    let mut listed = Vec::new();
    let mut cursor = None;
    for _ in 0..3 {
        let page = gallery.list(&owner, &ListFilter::default(), cursor.as_deref(), 2).await.unwrap();
        listed.extend(page.records.iter().map(|record| record.id));
        cursor = page.next_cursor;
    }
    assert_eq!(listed, ids, "newest first, every image once");
    assert!(cursor.is_none());

    let doomed = ids[2];
    let (bytes, media_type) = gallery.image(&owner, doomed, Variant::Full).await.unwrap();
    assert_eq!(&bytes[..4], b"\x89PNG");
    assert_eq!(media_type, "image/png");
    gallery.delete(&owner, doomed).await.unwrap();
    // Each image left is its bytes, thumbnail, record and origin index entry, beside the
    // gallery's index mark; nothing of the deleted one (its index entry is named by its
    // record's key, so counted here).
    let left = keys_in(&sdk_config, &bucket, "users/local-operator/").await;
    assert_eq!(left.len(), 4 * 4 + 1, "{left:#?}");
    assert!(!left.iter().any(|stored| stored.contains(&doomed.to_string())), "{left:#?}");
    assert!(gallery.record(&owner, doomed).await.is_err());
    let page = gallery.list(&owner, &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(page.records.len(), 4);
}

#[tokio::test]
async fn a_presigned_download_url_serves_the_stored_image() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let gallery = Gallery::new(Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true)));
    let owner = Owner::discord(42);
    let image = png(7);
    let record = record(&owner, &image);
    gallery.save(&record, &image).await.unwrap();

    let url = gallery.download_url(&owner, record.id, Variant::Full).await.unwrap().expect("S3 offers download URLs");
    let expected_path = format!("/{bucket}/users/discord-42/images/{}.png", record.id);
    assert!(url.starts_with(&format!("{}{expected_path}?", moto.endpoint())), "{url}");
    assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=300"), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(&response.bytes().await.unwrap(), image.bytes());

    // Another owner's id is not found rather than signed.
    let stranger = Owner::discord(43);
    assert!(gallery.download_url(&stranger, record.id, Variant::Full).await.is_err());
}

#[tokio::test]
async fn generate_on_the_command_line_keeps_its_image_in_the_bucket() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let folder = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(atelier(folder.path())
        .args(["generate", "--prompt", "a lighthouse in a storm", "--size", "320x192", "--out", "out"])
        .env("ATELIER_STORE", format!("s3://{bucket}"))
        .env("ATELIER_S3_FORCE_PATH_STYLE", "true")
        .env("ATELIER_ENGINE", "demo")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_S3", moto.endpoint()));
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let stored = keys_in(&sdk_config, &bucket, "users/local-operator/").await;
    // The image, its thumbnail, its record and its origin index entry, the mark that this new
    // gallery is indexed, and the person's ledger charging it.
    assert_eq!(stored.len(), 6, "{stored:#?}");
    assert!(keys_in(&sdk_config, &bucket, "jobs/").await.is_empty(), "the job ended");
    let find = |folder: &str, extension: &str| {
        stored
            .iter()
            .find(|stored| {
                stored.starts_with(&format!("users/local-operator/{folder}/")) && stored.ends_with(extension)
            })
            .unwrap_or_else(|| panic!("no {folder}/*{extension} in {stored:#?}"))
            .clone()
    };
    let image_key = find("images", ".png");
    find("thumbnails", ".jpg");
    find("records", ".json");
    find("index/origin/cli", ".json");

    let written: Vec<std::path::PathBuf> =
        std::fs::read_dir(folder.path().join("out")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(written.len(), 1);
    let in_bucket =
        client(&sdk_config).get_object().bucket(&bucket).key(&image_key).send().await.unwrap().body.collect().await;
    assert_eq!(in_bucket.unwrap().into_bytes(), std::fs::read(&written[0]).unwrap(), "the same bytes in both places");
}

/// Runs `atelier serve` against S3 and returns its exit code and stderr.
fn serve_against(bucket: &str, endpoint: &str) -> (Option<i32>, String) {
    let folder = tempfile::tempdir().unwrap();
    let (output, _, stderr) = run(atelier(folder.path())
        .arg("serve")
        .env("ATELIER_BIND", "127.0.0.1:0")
        .env("ATELIER_STORE", format!("s3://{bucket}"))
        .env("ATELIER_S3_FORCE_PATH_STYLE", "true")
        .env("ATELIER_ENGINE", "demo")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_S3", endpoint));
    (output.status.code(), stderr)
}

fn assert_one_line_naming_the_store(code: Option<i32>, stderr: &str, fix: &str) {
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: ATELIER_STORE=s3://"), "{stderr}");
    assert!(lines[0].contains(fix), "the line does not say how to fix it: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("testing"), "{stderr}");
}

/// A bucket that is missing is a setting to fix: `serve` stops and says so. (A bucket that
/// cannot be *reached* is an outage, and Atelier starts without it: see
/// `discord_bot::with_s3_unreachable_from_the_start_imagine_delivers_and_stores_it_once_back`.)
#[tokio::test]
async fn serve_stops_with_one_line_when_the_bucket_is_missing() {
    let moto = Moto::start().await;
    let (code, stderr) = serve_against("no-such-bucket", &moto.endpoint());
    assert_one_line_naming_the_store(code, &stderr, "create the bucket");
    assert!(stderr.contains("`no-such-bucket` does not exist"), "{stderr}");
}

#[tokio::test]
async fn a_store_outage_during_a_save_says_so_and_damages_nothing() {
    let moto = Moto::start().await;
    let relay = crate::support::relay::Relay::start(SocketAddr::from(([127, 0, 0, 1], moto.port))).await;
    let sdk_config = sdk_config_at(&relay.endpoint()).await;
    let bucket = new_bucket(&sdk_config).await;
    let gallery = Gallery::new(Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true)));
    let owner = Owner::local_operator();
    let kept_image = png(1);
    let kept = record(&owner, &kept_image);
    gallery.save(&kept, &kept_image).await.unwrap();
    assert_eq!(&gallery.image(&owner, kept.id, Variant::Full).await.unwrap().0, kept_image.bytes());

    relay.cut();
    let lost_image = png(2);
    let lost = record(&owner, &lost_image);
    let started = Instant::now();
    let error = gallery.save(&lost, &lost_image).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(35), "the bounded timeout did not hold");
    let message = error.to_string();
    assert!(message.contains("the image was made but could not be saved yet"), "{message}");
    assert!(message.contains(&format!("s3://{bucket}")) && message.contains("PutObject"), "{message}");
    assert!(!error.is_user_error(), "an outage is the operator's to fix: {message}");
    assert!(!message.contains("testing"), "the error must not carry credentials: {message}");

    // Back again: what was stored before is whole, and the failed save left no record.
    relay.restore();
    assert_eq!(&gallery.image(&owner, kept.id, Variant::Full).await.unwrap().0, kept_image.bytes());
    let page = gallery.list(&owner, &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(page.records.iter().map(|record| record.id).collect::<Vec<_>>(), [kept.id]);
    assert!(gallery.record(&owner, lost.id).await.is_err());
    drop(moto);
}

#[tokio::test]
async fn the_web_app_redirects_image_downloads_to_short_lived_urls() {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let store = format!("s3://{bucket}");
    let app = TestApp::spawn_with_aws(
        &[("ATELIER_STORE", store.as_str()), ("ATELIER_S3_FORCE_PATH_STYLE", "true")],
        sdk_config.clone(),
    )
    .await;
    // The local operator's image, kept through a second store on the same bucket.
    let gallery = Gallery::new(Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true)));
    let image = png(9);
    let mine = record(&Owner::local_operator(), &image);
    gallery.save(&mine, &image).await.unwrap();

    let response = app.get(&format!("/images/{}/full", mine.id)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cache = response.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.starts_with("private"), "{cache}");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/{bucket}/users/local-operator/images/", moto.endpoint())), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let served = reqwest::get(&location).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(&served.bytes().await.unwrap(), image.bytes());

    let thumbnail = app.get(&format!("/images/{}/thumbnail", mine.id)).await;
    assert_eq!(thumbnail.status(), StatusCode::SEE_OTHER);
    let thumbnail = reqwest::get(thumbnail.headers()["location"].to_str().unwrap()).await.unwrap();
    assert_eq!(&thumbnail.bytes().await.unwrap()[..2], b"\xff\xd8", "a JPEG thumbnail");

    // Someone else's image (or none) is not found: no URL is signed for it.
    let stranger = record(&Owner::discord(7), &image);
    gallery.save(&stranger, &image).await.unwrap();
    assert_eq!(app.get(&format!("/images/{}/full", stranger.id)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/images/{}/full", ImageId::new())).await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

// s3s-fs: the checks moto does not make.

#[tokio::test]
async fn s3s_presigned_urls_expire_and_cannot_be_tampered_with() {
    let server = S3sFs::start().await;
    let sdk_config = server.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let store = S3Store::new(&sdk_config, bucket, Some("atelier".into()), true);
    store.check().await.unwrap();
    let (mine, other) = (key("users/a/images/mine.png"), key("users/a/images/other.png"));
    store.put(&mine, Bytes::from("my picture"), "image/png", PutMode::CreateOnly).await.unwrap();
    store.put(&other, Bytes::from("another picture"), "image/png", PutMode::CreateOnly).await.unwrap();

    // X-Amz-Date has whole seconds, so a URL of one second may be stale at once: two are safe.
    let url = store.download_url(&mine, Duration::from_secs(2)).await.unwrap().unwrap();
    assert!(!url.contains(SECRET_KEY), "a URL carries a signature, never the secret: {url}");
    let fetch = |url: String| async move {
        let response = reqwest::get(&url).await.unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(fetch(url.clone()).await, (StatusCode::OK, "my picture".to_string()));

    let other_object = url.replace("/mine.png?", "/other.png?");
    assert_ne!(other_object, url);
    let (status, body) = fetch(other_object).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let longer = url.replace("X-Amz-Expires=2", "X-Amz-Expires=3600");
    assert_ne!(longer, url);
    assert_eq!(fetch(longer).await.0, StatusCode::FORBIDDEN);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = fetch(url).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn s3s_refuses_a_client_with_the_wrong_secret() {
    let server = S3sFs::start().await;
    let sdk_config = server.sdk_config().await;
    let bucket = new_bucket(&sdk_config).await;
    let store = S3Store::new(&sdk_config, bucket.clone(), None, true);
    let path = key("users/a/records/one.json");
    store.put(&path, Bytes::from("{}"), "application/json", PutMode::CreateOnly).await.unwrap();
    let again = store.put(&path, Bytes::from("[]"), "application/json", PutMode::CreateOnly).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
    assert_eq!(store.list("users/a/", None, 10).await.unwrap(), std::slice::from_ref(&path));

    let wrong_secret = "not-the-secret-key-at-all";
    let intruder = S3Store::new(&server.sdk_config_with_secret(wrong_secret).await, bucket, None, true);
    let refusals = [
        intruder.get(&path).await.map(|_| ()),
        intruder.put(&path, Bytes::from("x"), "text/plain", PutMode::Overwrite).await,
        intruder.list("users/", None, 10).await.map(|_| ()),
        intruder.check().await,
    ];
    for refusal in refusals {
        let Err(StoreError::Unavailable { detail, .. }) = &refusal else {
            panic!("the wrong secret was not refused: {refusal:?}")
        };
        assert!(detail.contains("403") || detail.contains("denied"), "{detail}");
        assert!(!detail.contains(wrong_secret) && !detail.contains(SECRET_KEY), "{detail}");
    }
    let Err(StoreError::Unavailable { detail, .. }) = intruder.check().await else { unreachable!() };
    assert!(detail.contains("access to bucket") && detail.contains("grant"), "{detail}");
    assert_eq!(store.get(&path).await.unwrap(), Bytes::from("{}"), "nothing was overwritten");
}
