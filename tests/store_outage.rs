//! No lost images: the S3 store (moto) stops in the middle of a burst of generations, and
//! every image still reaches the person, waits in the spool on disk, and lands in the store
//! exactly once when it is back, also across a restart of the process; a full spool refuses
//! clearly and keeps what it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atelier_shared::Atelier;
use atelier_shared::adapters::ObjectStore;
use atelier_shared::adapters::{S3Store, Spool};
use atelier_shared::config::{Config, RawSettings};
use atelier_shared::engine::EngineKind;
use atelier_shared::engine::SafetyOutcome;
use atelier_shared::gallery::{Gallery, ImageId, ImageRecord, Origin, Owner, Parameters};
use atelier_shared::images::{CheckedImage, encode_png};
use atelier_shared::jobs::{Progress, Stage, no_progress};
use atelier_shared::request::{GenerationFields, Seed};
use atelier_shared::startup::{self, AwsSetup};
use atelier_shared::{Actor, Filing, Kept, Owned};
use bytes::Bytes;
use futures::StreamExt;

use crate::support::faults::FaultRow;
use crate::support::moto::{Moto, RestartedMoto};

/// How long the spool may take to empty once the store is back: the flusher's longest
/// backoff (15 s) plus the SDK's own retries, with room to spare on a busy machine.
const FLUSH_DEADLINE: Duration = Duration::from_secs(90);

fn s3_client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(true).build())
}

fn unique_bucket() -> String {
    format!("atelier-outage-{}-{}", std::process::id(), ImageId::new().to_string().to_ascii_lowercase())
}

async fn create_bucket(sdk_config: &aws_config::SdkConfig, bucket: &str) {
    s3_client(sdk_config).create_bucket().bucket(bucket).send().await.unwrap();
}

/// Every object in the bucket, key to bytes.
async fn everything_in(sdk_config: &aws_config::SdkConfig, bucket: &str) -> BTreeMap<String, Bytes> {
    let client = s3_client(sdk_config);
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().filter_map(|object| object.key().map(String::from)));
    }
    let mut objects = BTreeMap::new();
    for key in keys {
        // A job's record is deleted just after its images are delivered: one listed a moment
        // ago may be gone now, which is no loss.
        let response = match client.get_object().bucket(bucket).key(&key).send().await {
            Ok(response) => response,
            Err(error) if key.starts_with("jobs/") && error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                continue;
            }
            Err(error) => panic!("reading {key}: {error:?}"),
        };
        objects.insert(key, response.body.collect().await.unwrap().into_bytes());
    }
    objects
}

/// Puts objects back into a bucket, as they were.
async fn restore(sdk_config: &aws_config::SdkConfig, bucket: &str, objects: &BTreeMap<String, Bytes>) {
    let client = s3_client(sdk_config);
    for (key, body) in objects {
        client.put_object().bucket(bucket).key(key).body(body.clone().into()).send().await.unwrap();
    }
}

/// A core on the S3 bucket with the demo engine and the spool in `spool_dir`, room for a burst.
async fn core(sdk_config: &aws_config::SdkConfig, bucket: &str, spool_dir: &Path, settings_folder: &Path) -> Atelier {
    let settings_file = settings_folder.join("atelier.toml");
    std::fs::write(&settings_file, "# no settings: the test's variables say everything\n").unwrap();
    let variables = [
        ("ATELIER_CONFIG", settings_file.display().to_string()),
        ("ATELIER_STORE", format!("s3://{bucket}")),
        ("ATELIER_S3_FORCE_PATH_STYLE", "true".into()),
        ("ATELIER_ENGINE", "demo".into()),
        ("ATELIER_SPOOL_DIR", spool_dir.display().to_string()),
        ("ATELIER_MAX_RUNNING_JOBS", "4".into()),
        ("ATELIER_USER_RUNNING_JOBS", "4".into()),
        ("ATELIER_USER_QUEUED_JOBS", "32".into()),
        ("ATELIER_DAILY_IMAGE_QUOTA", "0".into()),
    ];
    let raw = RawSettings::from_variables(variables.map(|(name, value)| (name.to_string(), value))).unwrap();
    let config = Config::from_raw(&raw).unwrap();
    let aws = AwsSetup { sdk_config: Some(sdk_config.clone()), ..AwsSetup::default() };
    startup::build(&config, &aws).await.unwrap().0
}

/// One generation, as the web asks for it: answered once the thumbnails are stored too.
async fn generate(core: &Atelier, number: usize) -> Vec<Kept> {
    let kept = generate_with_progress(core, number, &no_progress).await;
    filed(&kept).await;
    kept
}

/// Waits for the thumbnails of `kept` (made after the result is handed over) to be stored or
/// spooled.
async fn filed(kept: &[Kept]) {
    for image in kept {
        image.filing.done().await.unwrap_or_else(|error| panic!("filing {} failed: {error}", image.record.id));
    }
}

/// One generation, telling `progress` where it is.
async fn generate_with_progress(core: &Atelier, number: usize, progress: Progress<'_>) -> Vec<Kept> {
    let actor = Actor::new(Owner::discord(1000 + (number % 3) as u64), Origin::Cli);
    let fields = GenerationFields {
        prompt: format!("a lighthouse in a storm, number {number}"),
        size: Some("320x192".into()),
        seed: Some(number.to_string()),
        ..GenerationFields::default()
    };
    core.generate_with_progress(&actor, &core.plan_generation(&actor, &fields).await.unwrap(), progress)
        .await
        .unwrap_or_else(|error| panic!("generation {number} failed: {error}"))
}

/// Waits until the spool is empty.
async fn wait_for_empty_spool(core: &Atelier) {
    let started = Instant::now();
    while core.spool_depth().unwrap().entries > 0 {
        assert!(started.elapsed() < FLUSH_DEADLINE, "the spool still holds {:?}", core.spool_depth());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One row of the table: what was asked, given, kept.
struct Tally {
    scenario: &'static str,
    jobs_sent: usize,
    images_delivered: usize,
    images_stored: usize,
    duplicates: usize,
    lost: usize,
}

impl Tally {
    /// Counts the delivered images in the bucket's objects: each id must have exactly one
    /// record, its image with the very bytes the person got, and its thumbnail; anything
    /// more is a duplicate.
    fn count(scenario: &'static str, jobs_sent: usize, delivered: &[Kept], objects: &BTreeMap<String, Bytes>) -> Self {
        let mut records: BTreeMap<ImageId, usize> = BTreeMap::new();
        let mut images: BTreeMap<ImageId, Vec<&Bytes>> = BTreeMap::new();
        let mut thumbnails: BTreeMap<ImageId, usize> = BTreeMap::new();
        for (key, body) in objects {
            let parts: Vec<&str> = key.split('/').collect();
            let id_of = |name: &str| ImageId::parse(name.split('.').next().unwrap_or("")).ok();
            match parts.as_slice() {
                ["users", _, "records", _] => {
                    let record: ImageRecord = serde_json::from_slice(body).unwrap();
                    *records.entry(record.id).or_default() += 1;
                }
                ["users", _, "images", name] => images.entry(id_of(name).unwrap()).or_default().push(body),
                ["users", _, "thumbnails", name] => *thumbnails.entry(id_of(name).unwrap()).or_default() += 1,
                _ => {}
            }
        }
        let delivered_ids: BTreeSet<ImageId> = delivered.iter().map(|kept| kept.record.id).collect();
        assert_eq!(delivered_ids.len(), delivered.len(), "two deliveries share an id");
        let mut stored = 0;
        let mut lost = 0;
        for kept in delivered {
            let id = kept.record.id;
            let whole = records.get(&id) == Some(&1)
                && images.get(&id).is_some_and(|bodies| bodies.len() == 1 && bodies[0] == kept.image.bytes())
                && thumbnails.get(&id) == Some(&1);
            if whole { stored += 1 } else { lost += 1 }
        }
        // Anything stored twice, or stored without having been delivered once, is a duplicate.
        let duplicates = records.values().map(|count| count - 1).sum::<usize>()
            + records.keys().filter(|id| !delivered_ids.contains(id)).count()
            + images.values().map(|bodies| bodies.len() - 1).sum::<usize>();
        Self { scenario, jobs_sent, images_delivered: delivered.len(), images_stored: stored, duplicates, lost }
    }

    fn print_and_check(&self) {
        FaultRow {
            scenario: self.scenario.to_string(),
            jobs_sent: self.jobs_sent,
            jobs_delivered: self.images_delivered,
            images_stored: self.images_stored,
            duplicates: self.duplicates,
            lost: self.lost,
        }
        .check_and_record();
        assert_eq!(self.images_stored, self.images_delivered, "{}", self.scenario);
    }
}

#[tokio::test]
async fn store_outage_moto_stopped_mid_burst_every_image_delivered_and_stored_once() {
    let moto = Moto::start().await;
    let port = moto.port;
    let sdk_config = moto.sdk_config().await;
    let bucket = unique_bucket();
    create_bucket(&sdk_config, &bucket).await;
    let folder = tempfile::tempdir().unwrap();
    let core = core(&sdk_config, &bucket, &folder.path().join("spool"), folder.path()).await;

    // The first wave is stored while the store is up.
    let first_wave: Vec<Vec<Kept>> =
        futures::stream::iter(0..4).map(|number| generate(&core, number)).buffer_unordered(4).collect().await;
    assert_eq!(core.spool_depth().unwrap().entries, 0);
    // moto forgets everything when it stops; S3 would not. What S3 acknowledged is put back
    // into the new moto below, so the count covers the whole burst.
    let acknowledged = everything_in(&sdk_config, &bucket).await;

    // The rest of the burst is under way when the store goes away: moto is stopped the
    // moment the first of these jobs starts drawing, while others wait in line or are being
    // checked. The test runs on one thread and the stop happens inside that job's progress
    // report, so no job of this wave can have reached the store before it: moto's lost
    // memory hides nothing.
    let moto = Mutex::new(moto);
    let stopped_at = Mutex::new(None);
    let stop_when_drawing = |stage: Stage| {
        if stage == Stage::Generating
            && let Ok(mut stopped_at) = stopped_at.lock()
            && stopped_at.is_none()
        {
            moto.lock().unwrap().stop();
            *stopped_at = Some(Instant::now());
        }
    };
    let second_wave: Vec<Vec<Kept>> = futures::stream::iter(4..16)
        .map(|number| generate_with_progress(&core, number, &stop_when_drawing))
        .buffer_unordered(12)
        .collect()
        .await;
    assert!(stopped_at.lock().unwrap().is_some(), "moto was stopped during the burst");
    let delivered: Vec<Kept> = first_wave.into_iter().chain(second_wave).flatten().collect();
    filed(&delivered).await;
    assert_eq!(delivered.len(), 16, "every job gave its image to the caller");
    assert!(delivered.iter().all(|kept| kept.image.bytes().starts_with(b"\x89PNG")));
    let spooled = core.spool_depth().unwrap();
    assert_eq!(spooled.entries, 12, "the images made while the store was down wait in the spool: {spooled:?}");
    assert!(spooled.bytes > 0);

    // The store comes back, empty but for what S3 had acknowledged.
    let _moto = RestartedMoto::start(port).await;
    create_bucket(&sdk_config, &bucket).await;
    restore(&sdk_config, &bucket, &acknowledged).await;
    wait_for_empty_spool(&core).await;
    assert_eq!(core.spool_depth().unwrap().bytes, 0);

    let objects = everything_in(&sdk_config, &bucket).await;
    Tally::count("moto stopped mid-burst, then back", 16, &delivered, &objects).print_and_check();
    // The spooled images read back through the gallery like any other.
    let last = delivered.last().unwrap();
    let record = core.image_record(&Owned::new(last.record.owner.clone(), last.record.id)).await.unwrap();
    assert_eq!(record, last.record);
    core.stop_spool_flusher().await;
}

#[tokio::test]
async fn store_outage_a_spool_left_by_a_previous_process_is_flushed_on_start() {
    let mut moto = Moto::start().await;
    let port = moto.port;
    let sdk_config = moto.sdk_config().await;
    let bucket = unique_bucket();
    create_bucket(&sdk_config, &bucket).await;
    let folder = tempfile::tempdir().unwrap();
    let spool_dir = folder.path().join("spool");

    let first_process = core(&sdk_config, &bucket, &spool_dir, folder.path()).await;
    moto.stop();
    let mut delivered = Vec::new();
    for number in 0..5 {
        delivered.extend(generate(&first_process, number).await);
    }
    assert_eq!(first_process.spool_depth().unwrap().entries, 5);
    // The process ends with the store still down: the spool stays on disk.
    first_process.stop_spool_flusher().await;
    drop(first_process);
    let on_disk = std::fs::read_dir(&spool_dir).unwrap().filter_map(Result::ok);
    assert_eq!(on_disk.filter(|entry| entry.path().extension().is_some_and(|end| end == "entry")).count(), 5);

    // The store is back when the next process starts on the same spool.
    let _moto = RestartedMoto::start(port).await;
    create_bucket(&sdk_config, &bucket).await;
    let second_process = core(&sdk_config, &bucket, &spool_dir, folder.path()).await;
    wait_for_empty_spool(&second_process).await;

    let objects = everything_in(&sdk_config, &bucket).await;
    Tally::count("spool left by a previous process, flushed on start", 5, &delivered, &objects).print_and_check();
    second_process.stop_spool_flusher().await;
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
async fn store_outage_a_full_spool_refuses_clearly_and_keeps_what_it_holds() {
    let mut moto = Moto::start().await;
    let port = moto.port;
    let sdk_config = moto.sdk_config().await;
    let bucket = unique_bucket();
    create_bucket(&sdk_config, &bucket).await;
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true));
    let owner = Owner::discord(7);
    let image = png(3);
    moto.stop();

    // One entry's size, measured in a spool of its own: every entry below is the same size
    // (the same image; ids and timestamps of fixed length).
    let probe = Spool::open(folder.path().join("probe"), u64::MAX, store.location()).unwrap();
    Gallery::new(store.clone()).with_spool(probe.clone()).save(&record(&owner, &image), &image).await.unwrap();
    let entry = probe.depth().bytes;

    // Room for two entries and a half.
    let spool = Spool::open(folder.path().join("spool"), entry * 5 / 2, store.location()).unwrap();
    let gallery = Gallery::new(store.clone()).with_spool(spool.clone());
    let mut delivered = Vec::new();
    for _ in 0..2 {
        let kept = record(&owner, &image);
        gallery.save(&kept, &image).await.unwrap();
        delivered.push(Kept { record: kept, image: image.clone(), filing: Filing::done_already() });
    }
    let before = spool.depth();
    assert_eq!(before.entries, 2);
    let refused = gallery.save(&record(&owner, &image), &image).await.unwrap_err();
    let message = refused.to_string();
    assert!(!refused.is_user_error(), "a full spool is the operator's to fix: {message}");
    assert!(message.contains("could neither be saved nor spooled"), "{message}");
    assert!(message.contains("is full") && message.contains("ATELIER_SPOOL_MAX_BYTES"), "{message}");
    assert_eq!(spool.depth(), before, "the refusal changed nothing already spooled");

    // Nothing already spooled is lost: it all reaches the store when it is back.
    let _moto = RestartedMoto::start(port).await;
    create_bucket(&sdk_config, &bucket).await;
    assert_eq!(spool.flush(store.as_ref(), None).await.unwrap(), 2);
    assert_eq!(spool.depth().entries, 0);
    let objects = everything_in(&sdk_config, &bucket).await;
    Tally::count("spool full: third image refused, two kept", 3, &delivered, &objects).print_and_check();
}
