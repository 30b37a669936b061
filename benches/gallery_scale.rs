//! The gallery at 100,000 images against the same gallery at 100 (issue 18), on the folder
//! store and on moto (S3).
//!
//! Each gallery belongs to the local operator, in a store of its own (a folder under
//! `target/bench-gallery/`, a bucket in one moto), so the served app's `/api/images` can be
//! asked for it in local mode. It is seeded through the gallery's public write path,
//! `Gallery::save` (the image, its record, its thumbnail and whatever else the gallery writes
//! beside them), with a 64×64 PNG and records like real ones: ids and creation times three
//! minutes apart, oldest first; one image in three from each of the web, Discord and the command
//! line; the session the filter asks for on 10 images spread through the gallery, and other
//! sessions on others; three children of the oldest image among the newest ten.
//!
//! Figures, each timed (median and p90; a run that takes longer than 5 s is run once) with the
//! store requests of one run counted by a wrapper around the store (`support/counting_store.rs`):
//! - one listing request for one key: what the store itself costs per listing;
//! - the first page (48), `Gallery::list`;
//! - a page reached by cursor 500 pages of 48 deep (the deepest full page of a smaller gallery:
//!   the second of 100 images' three): the cursor is found once beforehand, outside the timing;
//! - a session filter matching 10 images;
//! - the oldest image with its children, `Gallery::record` + `Gallery::children` (what the
//!   image page asks the core for);
//! - `GET /api/images` and `GET /api/images/{oldest}` from `atelier serve` (the release binary)
//!   on the same store. On moto their store requests are counted by a proxy in front of moto;
//!   on the folder store they are those of the same core calls made in-process.
//!
//! The target, printed for each figure and not asserted: at 100,000 images within 2× of
//! the figure at 100, with store requests of the order of the page (at most 10 × 48).
//!
//! A run that exceeds the time limit (`ATELIER_BENCH_GALLERY_TIME_LIMIT`, 120 s) is stopped and
//! reported as such, with the store requests it had made by then.
//!
//! Settings: `ATELIER_BENCH_GALLERY_SIZE` (100,000) is the large gallery's size;
//! `ATELIER_BENCH_GALLERY_MOTO_SIZE` lowers it on moto alone (each of moto's listings reads every
//! key of the bucket); `ATELIER_BENCH_GALLERY_REPEATS` (10) the runs of a quick figure;
//! `ATELIER_BENCH_GALLERY_FRESH=1` seeds the folder stores again even when a matching seed is
//! kept from an earlier run. Arguments `folder` or `moto` run one backend.
//!
//! It prints a comparison table and the usual figures table, and writes
//! `target/bench/gallery_scale.json`. Alone: `cargo bench --bench gallery_scale`.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark whose set-up fails should stop loudly")]

#[path = "support/counting_store.rs"]
mod counting_store;
// The table and JSON every load benchmark reports; each uses part of it.
#[path = "support/figures.rs"]
#[allow(dead_code)]
mod figures;
#[path = "support/process.rs"]
mod process;
// The stand-ins the end-to-end tests use; this binary needs only some of them.
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atelier_shared::adapters::{FolderStore, ObjectStore, S3Store};
use atelier_shared::engine::{EngineKind, SafetyOutcome};
use atelier_shared::gallery::{
    Gallery, ImageId, ImageRecord, ListFilter, MAX_PAGE, Origin, Owner, Parameters, SessionName,
};
use atelier_shared::images::{CheckedImage, encode_png};
use atelier_shared::request::{AspectRatio, Seed, Shape};
use futures::StreamExt as _;
use serde_json::Value;
use time::OffsetDateTime;

use counting_store::{CountingStore, Requests};
use figures::{Figure, at_most, reported};
use support::cutting_proxy::CuttingProxy;
use support::moto::Moto;
use support::{atelier, free_port};

/// The small gallery, and the large one unless `ATELIER_BENCH_GALLERY_SIZE` says otherwise.
const SMALL: usize = 100;
const LARGE: usize = 100_000;
/// The page the gallery and the API show, and how deep the cursor figure goes.
const PAGE: usize = 48;
const DEEP_PAGES: usize = 500;
/// The bound on store requests: the same order as the page.
const REQUESTS_BOUND: u64 = 10 * PAGE as u64;
/// Images of the session the filter asks for, and children of the oldest image.
const SESSION_IMAGES: usize = 10;
const CHILDREN: usize = 3;
/// Images saved at once while seeding.
const SEED_IN_FLIGHT: usize = 48;
/// Time between two seeded images (their ids and `created_at`).
const SEED_SPACING_MS: u64 = 3 * 60 * 1000;
/// A run longer than this is not repeated; quick figures repeat for at most `REPEAT_BUDGET`.
const SLOW: Duration = Duration::from_secs(5);
const REPEAT_BUDGET: Duration = Duration::from_secs(30);
/// Bumped whenever what is seeded changes, so a kept folder of an older seed is not reused.
const SEED_VERSION: u32 = 1;

const SESSION: &str = "harbour studies";
const OTHER_SESSIONS: [&str; 4] = ["portraits", "logo ideas", "winter cards", "storyboard"];

fn main() {
    let filters = figures::filters();
    let settings = Settings::from_environment();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut figures = Vec::new();
    let mut tables = Vec::new();
    if figures::wanted(&filters, "folder") {
        let (table, found) = runtime.block_on(on_folder(&settings));
        tables.push(table);
        figures.extend(found);
    }
    if figures::wanted(&filters, "moto") {
        let (table, found) = runtime.block_on(on_moto(&settings));
        tables.push(table);
        figures.extend(found);
    }
    for table in &tables {
        table.print(settings.time_limit);
    }
    figures::report("gallery_scale.json", &figures);
}

// --- settings ------------------------------------------------------------------------------

struct Settings {
    folder_size: usize,
    moto_size: usize,
    repeats: usize,
    time_limit: Duration,
    fresh: bool,
}

impl Settings {
    fn from_environment() -> Self {
        let number = |name: &str| {
            std::env::var(name).ok().map(|text| {
                text.replace(['_', ','], "")
                    .parse::<usize>()
                    .unwrap_or_else(|_| panic!("{name}={text} is not a number"))
            })
        };
        let folder_size = number("ATELIER_BENCH_GALLERY_SIZE").unwrap_or(LARGE);
        let moto_size = number("ATELIER_BENCH_GALLERY_MOTO_SIZE").unwrap_or(folder_size);
        assert!(folder_size > SMALL && moto_size > SMALL, "the large gallery must hold more than {SMALL} images");
        let settings = Self {
            folder_size,
            moto_size,
            repeats: number("ATELIER_BENCH_GALLERY_REPEATS").unwrap_or(10).max(1),
            time_limit: Duration::from_secs(number("ATELIER_BENCH_GALLERY_TIME_LIMIT").unwrap_or(120) as u64),
            fresh: std::env::var_os("ATELIER_BENCH_GALLERY_FRESH").is_some_and(|value| value != "0"),
        };
        println!(
            "gallery sizes: {SMALL} and {} on the folder store, {SMALL} and {} on moto{}; time limit per run {} s",
            thousands(settings.folder_size as u64),
            thousands(settings.moto_size as u64),
            if settings.moto_size == LARGE && settings.folder_size == LARGE {
                String::new()
            } else {
                format!(" (NOT the issue's {}: set by ATELIER_BENCH_GALLERY_*SIZE)", thousands(LARGE as u64))
            },
            settings.time_limit.as_secs()
        );
        settings
    }
}

fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn target_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target")
}

// --- what is seeded --------------------------------------------------------------------------

/// A seeded gallery: its ids oldest first, and how long seeding took.
#[derive(serde::Serialize, serde::Deserialize)]
struct Seeded {
    version: u32,
    size: usize,
    /// What one `Gallery::save` writes, with ids taken out (see [`layout_signature`]).
    layout: String,
    ids: Vec<ImageId>,
    seeding_seconds: f64,
    store_puts: u64,
    #[serde(skip)]
    reused: bool,
}

impl Seeded {
    fn oldest(&self) -> ImageId {
        self.ids[0]
    }

    /// The image `position` places from the newest (0 is the newest).
    fn newest_first(&self, position: usize) -> ImageId {
        self.ids[self.ids.len() - 1 - position]
    }

    fn session() -> SessionName {
        SessionName::parse(SESSION).unwrap()
    }

    fn seeding_note(&self) -> String {
        let rate = self.size as f64 / self.seeding_seconds.max(0.001);
        let reused = if self.reused { "; reused from an earlier run (marker matched)" } else { "" };
        format!(
            "{:.1} s, {rate:.0} images/s, {} store puts, {SEED_IN_FLIGHT} saves in flight{reused}",
            self.seeding_seconds,
            thousands(self.store_puts)
        )
    }
}

/// The ids of a gallery of `size`, oldest first: ULIDs whose time part is three minutes apart
/// (ending now), so they increase with creation as a real gallery's do; `ImageId::new` alone
/// gives ids in the same millisecond in random order.
fn seed_ids(size: usize) -> Vec<ImageId> {
    let now_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap();
    let first_ms = now_ms - size as u64 * SEED_SPACING_MS;
    (0..size)
        .map(|index| {
            let mut id = ImageId::new();
            let random_part = id.0.0 & ((1_u128 << 80) - 1);
            id.0.0 = (u128::from(first_ms + index as u64 * SEED_SPACING_MS) << 80) | random_part;
            id
        })
        .collect()
}

/// Where image `index` (0 the oldest) of a gallery of `size` sits: its session, parent and origin.
fn seeded_record(ids: &[ImageId], index: usize, image: &CheckedImage) -> ImageRecord {
    let size = ids.len();
    let id = ids[index];
    let spread = size / SESSION_IMAGES;
    let session = if index % spread == spread / 2 && index / spread < SESSION_IMAGES {
        Some(SESSION)
    } else if index % 7 == 3 {
        Some(OTHER_SESSIONS[index / 7 % OTHER_SESSIONS.len()])
    } else {
        None
    };
    let parent = if children_of_oldest(size).contains(&index) {
        Some(ids[0])
    } else if index % 50 == 49 {
        // Some other lineage: a variation of the image just before.
        Some(ids[index - 1])
    } else {
        None
    };
    let origin = match index % 3 {
        0 => Origin::Web,
        1 => Origin::Discord {
            guild_id: Some(700_000_000_000_000_001),
            channel_id: 800_000_000_000_000_000 + (index % 5) as u64,
            message_id: Some(900_000_000_000_000_000 + index as u64),
        },
        _ => Origin::Cli,
    };
    let (model_id, model_family) = match index % 3 {
        0 => ("amazon.nova-canvas-v1:0", "nova-canvas"),
        1 => ("stability.sd3-5-large-v1:0", "sd3"),
        _ => ("amazon.titan-image-generator-v2:0", "titan-v2"),
    };
    let subjects = ["a lighthouse on a cliff", "a quiet harbour at dawn", "a fox in the snow", "a tram in the rain"];
    let created_ms = i128::from((id.0.0 >> 80) as u64);
    ImageRecord {
        id,
        owner: Owner::local_operator(),
        prompt: Some(format!("{}, study {index}, soft light, wide angle", subjects[index % subjects.len()])),
        negative_prompt: index.is_multiple_of(4).then(|| "blurry, text".to_string()),
        model_id: model_id.into(),
        model_family: model_family.into(),
        engine: EngineKind::Bedrock,
        parameters: Parameters {
            shape: Some(Shape::Aspect(AspectRatio { width: 1, height: 1 })),
            style: index.is_multiple_of(2).then(|| "photographic".to_string()),
            colors: if index.is_multiple_of(5) { vec!["#1d3557".into(), "#f1faee".into()] } else { Vec::new() },
            ..Parameters::default()
        },
        seed: Seed((index as u32).wrapping_mul(2_654_435_761)),
        size: image.size(),
        created_at: OffsetDateTime::from_unix_timestamp_nanos(created_ms * 1_000_000).unwrap(),
        safety: SafetyOutcome::Passed,
        parent,
        origin,
        session: session.map(|name| SessionName::parse(name).unwrap()),
        media_type: image.media_type().into(),
        extension: image.extension().into(),
    }
}

/// The positions of the oldest image's children: among the newest ten.
fn children_of_oldest(size: usize) -> [usize; CHILDREN] {
    [size - 2, size - 5, size - 8]
}

/// The seed image: a 64×64 PNG (the smallest side the gallery takes), checked as an upload is.
fn seed_image() -> CheckedImage {
    let pixels =
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8]));
    let bytes = encode_png(&image::DynamicImage::ImageRgb8(pixels), &[]).unwrap();
    CheckedImage::check(bytes, "the seed image").unwrap()
}

/// Saves a gallery of `size` images through `gallery`, `SEED_IN_FLIGHT` at once.
async fn seed(gallery: &Gallery, store: &CountingStore, size: usize, label: &str) -> Seeded {
    let image = seed_image();
    let ids = seed_ids(size);
    let before = store.requests();
    let began = Instant::now();
    // The oldest alone first, as a person's first image comes: it marks the gallery indexed
    // (`Gallery::save` does when a gallery's newest records are its first image alone).
    let first = seeded_record(&ids, 0, &image);
    gallery.save(&first, &image).await.unwrap_or_else(|error| panic!("seeding {label} failed: {error}"));
    let mut saves = futures::stream::iter(1..size)
        .map(|index| {
            let (gallery, record) = (gallery.clone(), seeded_record(&ids, index, &image));
            let image = image.clone();
            async move { gallery.save(&record, &image).await }
        })
        .buffer_unordered(SEED_IN_FLIGHT);
    let mut saved = 1;
    let mut next_report = Instant::now() + Duration::from_secs(30);
    while let Some(result) = saves.next().await {
        result.unwrap_or_else(|error| panic!("seeding {label} failed: {error}"));
        saved += 1;
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(30);
            let elapsed = began.elapsed().as_secs_f64();
            println!(
                "  {label}: {} of {} images saved in {elapsed:.0} s ({:.0}/s)",
                thousands(saved as u64),
                thousands(size as u64),
                saved as f64 / elapsed
            );
        }
    }
    drop(saves);
    let seeded = Seeded {
        version: SEED_VERSION,
        size,
        layout: String::new(),
        ids,
        seeding_seconds: began.elapsed().as_secs_f64(),
        store_puts: (store.requests() - before).put,
        reused: false,
    };
    println!("  {label}: seeded {} images: {}", thousands(size as u64), seeded.seeding_note());
    seeded
}

/// What one `Gallery::save` writes, as the sorted list of the files it leaves in an empty
/// folder store, with the ids and the owner replaced by placeholders, and the record's field
/// names: a kept folder seeded by another version of the gallery (one writing other index keys,
/// say) does not match, and is seeded again.
async fn layout_signature() -> String {
    let folder = tempfile::tempdir_in(target_folder()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::open(folder.path()).await.unwrap());
    let gallery = Gallery::new(store);
    let image = seed_image();
    let ids = seed_ids(20);
    // Image 5 has the session; image 18 is a child of the oldest.
    for index in [0, 5, 18] {
        gallery.save(&seeded_record(&ids, index, &image), &image).await.unwrap();
    }
    let mut replacements: Vec<(String, String)> = vec![(Owner::local_operator().to_string(), "{owner}".into())];
    for index in [0, 5, 18] {
        let mut inverted = ids[index];
        inverted.0.0 = u128::MAX - inverted.0.0;
        replacements.push((ids[index].to_string(), format!("{{id{index}}}")));
        replacements.push((inverted.to_string(), format!("{{newest-first id{index}}}")));
    }
    let mut files = Vec::new();
    let mut record_fields = String::new();
    let mut pending = vec![folder.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
                continue;
            }
            let mut relative = entry.path().strip_prefix(folder.path()).unwrap().display().to_string();
            if relative.contains("/records/") && record_fields.is_empty() {
                let record: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
                let fields: Vec<&String> = record.as_object().map(|object| object.keys().collect()).unwrap_or_default();
                record_fields = fields.iter().map(|field| field.as_str()).collect::<Vec<_>>().join(",");
            }
            for (from, to) in &replacements {
                relative = relative.replace(from, to);
            }
            files.push(relative);
        }
    }
    files.sort();
    format!("{} | record: {record_fields}", files.join(" "))
}

// --- measuring -------------------------------------------------------------------------------

/// One figure measured on one gallery.
#[derive(Clone, Default)]
struct Measured {
    /// Milliseconds of each run kept.
    runs: Vec<f64>,
    /// The store requests of one run (or of the run stopped at the time limit).
    requests: Option<Requests>,
    /// Store requests known only as a total (counted by the proxy in front of moto).
    proxy_requests: Option<u64>,
    timed_out: bool,
    note: String,
}

impl Measured {
    fn median(&self) -> f64 {
        let mut sorted = self.runs.clone();
        sorted.sort_by(f64::total_cmp);
        figures::percentile(&sorted, 50.0)
    }

    fn p90(&self) -> f64 {
        let mut sorted = self.runs.clone();
        sorted.sort_by(f64::total_cmp);
        figures::percentile(&sorted, 90.0)
    }

    fn requests_total(&self) -> Option<u64> {
        self.proxy_requests.or(self.requests.map(|requests| requests.total()))
    }

    fn requests_text(&self) -> String {
        match (self.proxy_requests, self.requests) {
            (Some(total), _) => format!("{} (proxy)", thousands(total)),
            (None, Some(requests)) => format!("{} ({})", thousands(requests.total()), requests.breakdown()),
            (None, None) => "-".into(),
        }
    }

    fn time_text(&self, limit: Duration) -> String {
        if self.timed_out {
            format!("> {} s (stopped)", limit.as_secs())
        } else if self.runs.is_empty() {
            "not measured".into()
        } else if self.runs.len() == 1 {
            format!("{} (1 run)", milliseconds(self.median()))
        } else {
            format!("{} / p90 {}", milliseconds(self.median()), milliseconds(self.p90()))
        }
    }

    fn not_measured(why: String) -> Self {
        Self { note: why, ..Self::default() }
    }
}

fn milliseconds(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1} s", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// What a measured operation showed, to check it did what it should before its time counts.
type Shown = Result<usize, String>;

/// Runs `operation` (which returns how many images it showed) once with its store requests
/// counted (`counted` says how many have been made so far), then again for the timing while it
/// stays quick, the first run then being a warm-up. A run that wrote to the store (an index
/// built on first use, say) is not counted and is run again, so the figure is of the steady
/// state.
async fn measure<F, Fut>(
    settings: &Settings,
    counted: &dyn Fn() -> Requests,
    expected: usize,
    what: &str,
    mut operation: F,
) -> Measured
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Shown>,
{
    let mut measured = Measured::default();
    let mut steady = None;
    for _ in 0..3 {
        let before = counted();
        let began = Instant::now();
        let outcome = tokio::time::timeout(settings.time_limit, operation()).await;
        let elapsed = began.elapsed();
        let requests = counted() - before;
        match outcome {
            Err(_) => {
                measured.timed_out = true;
                measured.requests = Some(requests);
                let made = if requests.total() > 0 {
                    format!(", {} store requests made by then", thousands(requests.total()))
                } else {
                    String::new()
                };
                measured.note = format!("stopped at the time limit{made}");
                println!("    {what}: stopped after {} s{made}", elapsed.as_secs());
                return measured;
            }
            Ok(shown) => check_shown(what, expected, shown),
        }
        if requests.put + requests.other_writes > 0 {
            measured.note = format!(
                "the first run wrote to the store ({}, {}), not counted; ",
                milliseconds(elapsed.as_secs_f64() * 1000.0),
                requests.breakdown()
            );
            continue;
        }
        steady = Some((requests, elapsed));
        break;
    }
    let (requests, first) = steady.unwrap_or_else(|| panic!("{what} wrote to the store on every one of three runs"));
    measured.requests = Some(requests);
    measured.runs.push(first.as_secs_f64() * 1000.0);
    if first < SLOW {
        let began = Instant::now();
        while measured.runs.len() < settings.repeats && began.elapsed() < REPEAT_BUDGET {
            let run = Instant::now();
            let shown = tokio::time::timeout(settings.time_limit, operation()).await.expect("a quick run stayed quick");
            measured.runs.push(run.elapsed().as_secs_f64() * 1000.0);
            check_shown(what, expected, shown);
        }
        // The first run warms caches; it counts only when there are few runs.
        if measured.runs.len() >= 3 {
            measured.runs.remove(0);
        }
    }
    measured.note += &format!("{} run{}", measured.runs.len(), if measured.runs.len() == 1 { "" } else { "s" });
    let requests =
        if requests.total() > 0 { format!(", store requests {}", measured.requests_text()) } else { String::new() };
    println!("    {what}: {}{requests}", measured.time_text(settings.time_limit));
    measured
}

fn check_shown(what: &str, expected: usize, shown: Shown) {
    match shown {
        Ok(count) => assert_eq!(count, expected, "{what} showed {count} images, not {expected}"),
        Err(error) => panic!("{what} failed: {error}"),
    }
}

/// The figures of one gallery.
struct GalleryFigures {
    size: usize,
    seeded: Seeded,
    figures: Vec<Measured>,
}

/// The figure that measures the store itself (one listing request of the records folder,
/// taken straight after seeding, so on the folder store a folder that has just changed and is
/// read from the disk): shown beside the others, with no target of its own.
const STORE_BASELINE: usize = 0;

/// The names of the figures, in the order [`measure_gallery`] measures them.
const FIGURE_NAMES: [&str; 7] = [
    "one listing request (1 key)",
    "first page (48)",
    "page by cursor, 500 pages of 48 deep",
    "session filter (10 images)",
    "oldest image + its children (record + children)",
    "GET /api/images (first page, served)",
    "GET /api/images/{oldest} (image + children, served)",
];

/// Measures the in-process figures of one gallery (all but the two served ones).
async fn measure_gallery(
    settings: &Settings,
    gallery: &Gallery,
    store: &CountingStore,
    seeded: &Seeded,
) -> Vec<Measured> {
    let owner = Owner::local_operator();
    let size = seeded.size;
    let mut figures = Vec::new();
    println!("  the gallery of {}:", thousands(size as u64));

    let prefix = format!("users/{owner}/records/");
    figures.push(
        measure(settings, &|| store.requests(), 1, FIGURE_NAMES[0], || async {
            store.list(&prefix, None, 1).await.map(|keys| keys.len()).map_err(|error| error.to_string())
        })
        .await,
    );

    let everything = ListFilter::default();
    figures.push(
        measure(settings, &|| store.requests(), PAGE, FIGURE_NAMES[1], || async {
            let page = gallery.list(&owner, &everything, None, PAGE).await.map_err(|error| error.to_string())?;
            Ok(page.records.len())
        })
        .await,
    );

    figures.push(deep_page(settings, gallery, store, seeded).await);

    let session = ListFilter { session: Some(Seeded::session()), ..ListFilter::default() };
    figures.push(
        measure(settings, &|| store.requests(), SESSION_IMAGES, FIGURE_NAMES[3], || async {
            let page = gallery.list(&owner, &session, None, PAGE).await.map_err(|error| error.to_string())?;
            Ok(page.records.len())
        })
        .await,
    );

    let oldest = seeded.oldest();
    figures.push(
        measure(settings, &|| store.requests(), CHILDREN, FIGURE_NAMES[4], || async {
            gallery.record(&owner, oldest).await.map_err(|error| error.to_string())?;
            let children = gallery.children(&owner, oldest).await.map_err(|error| error.to_string())?;
            Ok(children.len())
        })
        .await,
    );
    figures
}

/// The page 500 pages of 48 deep or, in a smaller gallery, the deepest full page with more after
/// it (the second of the 100-image gallery's three: its last holds only 4 images, and would
/// compare 4 reads with 48), so both sizes do the same work. The cursor is found first by
/// walking the listing in steps of 96 where it can (two pages of 48: a cursor marks the place
/// after the last image shown, whatever the page's size), and the page's first image is
/// checked to be the expected one.
async fn deep_page(settings: &Settings, gallery: &Gallery, store: &CountingStore, seeded: &Seeded) -> Measured {
    let owner = Owner::local_operator();
    let everything = ListFilter::default();
    // Pages before the deepest full page that has images after it.
    let deepest = ((seeded.size - 1) / PAGE).saturating_sub(1);
    let skipped = DEEP_PAGES.min(deepest) * PAGE;
    let step = if skipped.is_multiple_of(2 * PAGE) { 2 * PAGE } else { PAGE };
    assert!(step <= MAX_PAGE);
    let began = Instant::now();
    let walk_limit = settings.time_limit * 5;
    let mut cursor: Option<String> = None;
    let mut walked = 0;
    while walked < skipped {
        if began.elapsed() > walk_limit {
            println!(
                "    {}: walking to it took longer than {} s; not measured",
                FIGURE_NAMES[2],
                walk_limit.as_secs()
            );
            return Measured::not_measured(format!(
                "walking to the cursor took longer than {} s ({walked} images walked)",
                walk_limit.as_secs()
            ));
        }
        let page = gallery.list(&owner, &everything, cursor.as_deref(), step).await.expect("walking the cursors");
        walked += page.records.len();
        cursor = Some(page.next_cursor.expect("a next page while walking"));
    }
    let expected_first = seeded.newest_first(skipped);
    let expected = PAGE.min(seeded.size - skipped);
    println!(
        "    (walked to the cursor {} images deep in {:.1} s, {} listing calls of {step})",
        thousands(skipped as u64),
        began.elapsed().as_secs_f64(),
        skipped / step
    );
    let mut measured = measure(settings, &|| store.requests(), expected, FIGURE_NAMES[2], || async {
        let page =
            gallery.list(&owner, &everything, cursor.as_deref(), PAGE).await.map_err(|error| error.to_string())?;
        match page.records.first() {
            Some(first) if first.id == expected_first => Ok(page.records.len()),
            other => Err(format!("the deep page starts at {:?}, not {expected_first}", other.map(|record| record.id))),
        }
    })
    .await;
    let which = if skipped == DEEP_PAGES * PAGE {
        format!("page {}", DEEP_PAGES + 1)
    } else {
        format!("page {} of {}, the deepest full one", skipped / PAGE + 1, seeded.size.div_ceil(PAGE))
    };
    measured.note = format!("{which} ({} images skipped); {}", thousands(skipped as u64), measured.note);
    measured
}

// --- atelier serve on the same store ---------------------------------------------------------

/// One `atelier serve` process (release build) in local mode, stopped when dropped.
struct Served {
    child: Child,
    address: String,
    log: PathBuf,
    _folder: tempfile::TempDir,
}

impl Served {
    async fn start(settings: &[(&str, String)]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = folder.path().join("atelier.log");
        let mut command = atelier(folder.path());
        command.env("ATELIER_ENGINE", "demo");
        let child = process::spawn_serve(command, &address, &log, settings);
        let mut served = Self { child, address, log, _folder: folder };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(served.url("/readyz")).send().await
                && response.status().is_success()
            {
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("atelier stopped before it was ready ({status}):\n{}", served.log_text());
            }
            assert!(Instant::now() < deadline, "atelier never became ready:\n{}", served.log_text());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        process::stop_gracefully(&mut self.child);
    }
}

/// A GET of the served API; how many images the answer holds under `field`.
async fn api_images(client: &reqwest::Client, url: &str, field: &str) -> Shown {
    let response = client.get(url).send().await.map_err(|error| error.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|error| error.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    body[field].as_array().map(Vec::len).ok_or_else(|| format!("no `{field}` in {body}"))
}

/// The two served figures: `store_settings` puts the app on the store; `counting` (moto only)
/// the same settings with S3 reached through a counting proxy, for one more run that counts
/// the app's S3 requests (timed apart: the proxy adds to each request). Without it, or when the
/// timed run was stopped at the limit, the store requests are those of the same core calls
/// made in-process (`in_process`: the first page, and the image with its children).
async fn measure_served(
    settings: &Settings,
    store_settings: &[(&str, String)],
    counting: Option<(&CuttingProxy, Vec<(&str, String)>)>,
    seeded: &Seeded,
    in_process: [&Measured; 2],
) -> Vec<Measured> {
    let client = reqwest::Client::new();
    let listing = "/api/images".to_string();
    let detail = format!("/api/images/{}", seeded.oldest());
    let mut figures = Vec::new();
    for (index, (path, field, expected)) in
        [(listing, "images", PAGE), (detail, "children", CHILDREN)].into_iter().enumerate()
    {
        let what = FIGURE_NAMES[5 + index];
        // A fresh app for each figure, so one stopped at the limit leaves nothing running.
        let app = Served::start(store_settings).await;
        let url = app.url(&path);
        // The app's requests are not seen from here: `measure` counts none.
        let mut measured =
            measure(settings, &Requests::default, expected, what, || api_images(&client, &url, field)).await;
        drop(app);
        match &counting {
            Some((proxy, proxied_settings)) if !measured.timed_out => {
                let app = Served::start(proxied_settings).await;
                let before = proxy.cuts().passed.len();
                let shown =
                    tokio::time::timeout(settings.time_limit, api_images(&client, &app.url(&path), field)).await;
                let count = (proxy.cuts().passed.len() - before) as u64;
                drop(app);
                match shown {
                    Ok(shown) => {
                        check_shown(what, expected, shown);
                        measured.note += &format!("; {count} S3 requests (one more run, through a counting proxy)");
                    }
                    Err(_) => {
                        measured.note +=
                            &format!("; {count} S3 requests (through a counting proxy, stopped at the time limit)");
                    }
                }
                println!("    {what}: {count} S3 requests (counting proxy)");
                measured.proxy_requests = Some(count);
            }
            _ => {
                measured.requests = in_process[index].requests;
                measured.note += if in_process[index].timed_out {
                    "; requests counted on the same core calls in-process, stopped at the limit"
                } else {
                    "; requests counted on the same core calls in-process"
                };
            }
        }
        figures.push(measured);
    }
    figures
}

// --- the two backends ------------------------------------------------------------------------

async fn on_folder(settings: &Settings) -> (Table, Vec<Figure>) {
    println!("\n== folder store");
    let layout = layout_signature().await;
    let mut galleries = Vec::new();
    for size in [SMALL, settings.folder_size] {
        let folder = target_folder().join(format!("bench-gallery/folder-{size}"));
        let marker = target_folder().join(format!("bench-gallery/folder-{size}.seed.json"));
        let kept = if settings.fresh { None } else { kept_seed(&marker, size, &layout) };
        let inner: Arc<dyn ObjectStore> = match &kept {
            Some(_) => Arc::new(FolderStore::open(&folder).await.unwrap()),
            None => {
                // Seeded afresh: the marker goes first, so a seed stopped halfway is never reused.
                let _ = std::fs::remove_file(&marker);
                if folder.exists() {
                    println!("  removing the earlier seed in {}", folder.display());
                    std::fs::remove_dir_all(&folder).unwrap();
                }
                Arc::new(FolderStore::open(&folder).await.unwrap())
            }
        };
        let store = CountingStore::new(inner);
        let gallery = Gallery::new(Arc::new(store.clone()));
        let seeded = match kept {
            Some(seeded) => {
                println!(
                    "  the gallery of {} is kept from an earlier run: {}",
                    thousands(size as u64),
                    seeded.seeding_note()
                );
                seeded
            }
            None => {
                let mut seeded =
                    seed(&gallery, &store, size, &format!("folder, {} images", thousands(size as u64))).await;
                seeded.layout = layout.clone();
                std::fs::write(&marker, serde_json::to_vec(&seeded).unwrap()).unwrap();
                seeded
            }
        };
        let mut measured = measure_gallery(settings, &gallery, &store, &seeded).await;
        let store_settings = vec![("ATELIER_STORE", format!("file://{}", folder.display()))];
        let served = measure_served(settings, &store_settings, None, &seeded, [&measured[1], &measured[4]]).await;
        measured.extend(served);
        galleries.push(GalleryFigures { size, seeded, figures: measured });
    }
    finish("folder", galleries, settings.time_limit)
}

/// The seed kept at `marker`, if it is of this seed version, size and gallery layout.
fn kept_seed(marker: &Path, size: usize, layout: &str) -> Option<Seeded> {
    let mut seeded: Seeded = serde_json::from_slice(&std::fs::read(marker).ok()?).ok()?;
    if seeded.version != SEED_VERSION || seeded.size != size || seeded.ids.len() != size {
        return None;
    }
    if seeded.layout != layout {
        println!(
            "  the kept gallery of {} was seeded by another gallery layout: seeding again",
            thousands(size as u64)
        );
        return None;
    }
    seeded.reused = true;
    Some(seeded)
}

async fn on_moto(settings: &Settings) -> (Table, Vec<Figure>) {
    println!("\n== moto (S3)");
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build());
    // Every S3 request of the served app's counted runs passes through this proxy.
    let proxy = CuttingProxy::start(free_port(), &moto.endpoint(), Duration::from_secs(24 * 3600)).await;
    let mut galleries = Vec::new();
    for size in [SMALL, settings.moto_size] {
        // A bucket per gallery: moto reads every key of a bucket on each listing.
        let bucket = format!("gallery-{size}");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let store = CountingStore::new(Arc::new(S3Store::new(&sdk_config, bucket.clone(), None, true)));
        let gallery = Gallery::new(Arc::new(store.clone()));
        let seeded = seed(&gallery, &store, size, &format!("moto, {} images", thousands(size as u64))).await;
        let mut measured = measure_gallery(settings, &gallery, &store, &seeded).await;
        let s3_settings = |endpoint: String| {
            vec![
                ("ATELIER_STORE", format!("s3://{bucket}")),
                ("ATELIER_S3_FORCE_PATH_STYLE", "true".to_string()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                ("AWS_ENDPOINT_URL_S3", endpoint),
            ]
        };
        let served = measure_served(
            settings,
            &s3_settings(moto.endpoint()),
            Some((&proxy, s3_settings(proxy.url.clone()))),
            &seeded,
            [&measured[1], &measured[4]],
        )
        .await;
        measured.extend(served);
        galleries.push(GalleryFigures { size, seeded, figures: measured });
    }
    finish("moto", galleries, settings.time_limit)
}

// --- the report ------------------------------------------------------------------------------

struct Table {
    backend: &'static str,
    small: GalleryFigures,
    large: GalleryFigures,
}

/// The comparison of the two galleries of one backend, as a table and as figures.
fn finish(backend: &'static str, galleries: Vec<GalleryFigures>, time_limit: Duration) -> (Table, Vec<Figure>) {
    let limit_ms = time_limit.as_secs_f64() * 1000.0;
    let [small, large]: [GalleryFigures; 2] = galleries.try_into().ok().expect("two galleries");
    let mut figures = Vec::new();
    for gallery in [&small, &large] {
        figures.push(reported(
            &format!("{backend}, {} images: seeding", thousands(gallery.size as u64)),
            gallery.seeded.seeding_seconds,
            "s",
            gallery.seeded.seeding_note(),
        ));
    }
    let large_label = thousands(large.size as u64);
    for (index, name) in FIGURE_NAMES.iter().enumerate() {
        let (before, after) = (&small.figures[index], &large.figures[index]);
        let p90 = |measured: &Measured| {
            if measured.runs.is_empty() { String::new() } else { format!("p90 {}; ", milliseconds(measured.p90())) }
        };
        let small_note = format!("{}{}; store requests {}", p90(before), before.note, before.requests_text());
        // (NaN, for a figure not measured, would be `null` in the JSON.)
        let small_time = if before.runs.is_empty() { 0.0 } else { before.median() };
        figures.push(reported(&format!("{backend}, {SMALL} images: {name}"), small_time, "ms", small_note));
        let limit = 2.0 * before.median();
        let ratio = if after.timed_out {
            format!("more than {:.0}x", limit_ms / before.median())
        } else {
            format!("{:.1}x", after.median() / before.median())
        };
        let large_note = format!(
            "{}{}; store requests {}; {ratio} the {SMALL}-image figure",
            p90(after),
            after.note,
            after.requests_text(),
        );
        // A run stopped at the limit is reported at the limit (a lower bound), and as missed.
        let time = if after.timed_out {
            limit_ms
        } else if after.runs.is_empty() {
            0.0
        } else {
            after.median()
        };
        if index == STORE_BASELINE {
            // What the store costs, not the gallery: no target of its own.
            figures.push(reported(&format!("{backend}, {large_label} images: {name}"), time, "ms", large_note));
            continue;
        }
        let mut figure = at_most(&format!("{backend}, {large_label} images: {name}"), time, "ms", limit, large_note);
        figure.met &= !after.timed_out && !after.runs.is_empty();
        figure.target = format!("<= 2x {SMALL} images ({})", milliseconds(before.median()));
        figures.push(figure);
        if let Some(total) = after.requests_total() {
            figures.push(at_most(
                &format!("{backend}, {large_label} images: {name}, store requests"),
                total as f64,
                "requests",
                REQUESTS_BOUND as f64,
                format!(
                    "{}{}; {SMALL} images: {}",
                    if after.timed_out { "at least (stopped at the time limit): " } else { "" },
                    after.requests_text(),
                    before.requests_text()
                ),
            ));
        }
    }
    (Table { backend, small, large }, figures)
}

impl Table {
    fn print(&self, limit: Duration) {
        let small = thousands(self.small.size as u64);
        let large = thousands(self.large.size as u64);
        println!("\n{}: {small} images against {large}", self.backend);
        let headers = [
            "figure".to_string(),
            format!("{small} images"),
            "requests".into(),
            format!("{large} images"),
            "requests".into(),
            "ratio".into(),
            "within 2x?".into(),
            format!("requests <= {REQUESTS_BOUND}?"),
        ];
        let mut rows = Vec::new();
        for (index, name) in FIGURE_NAMES.iter().enumerate() {
            let (before, after) = (&self.small.figures[index], &self.large.figures[index]);
            let ratio = after.median() / before.median();
            let (ratio_text, within) = if index == STORE_BASELINE {
                (format!("{ratio:.1}x"), "- (the store's own)".to_string())
            } else if after.timed_out {
                (format!("> {:.0}x", limit.as_secs_f64() * 1000.0 / before.median()), "NO".to_string())
            } else if after.runs.is_empty() {
                ("-".into(), "not measured".into())
            } else {
                (format!("{ratio:.1}x"), if ratio <= 2.0 { "yes".into() } else { "NO".into() })
            };
            let bounded = match after.requests_total() {
                Some(total) if total <= REQUESTS_BOUND && !after.timed_out => "yes",
                Some(_) => "NO",
                None => "-",
            };
            rows.push([
                name.to_string(),
                before.time_text(limit),
                before.requests_total().map_or("-".into(), thousands),
                after.time_text(limit),
                match after.requests_total() {
                    Some(total) if after.timed_out => format!(">= {}", thousands(total)),
                    Some(total) => thousands(total),
                    None => "-".into(),
                },
                ratio_text,
                within,
                bounded.to_string(),
            ]);
        }
        let mut widths = headers.clone().map(|header| header.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
            println!("| {} |", padded.join(" | "));
        };
        line(&headers);
        println!("|{}|", widths.map(|width| "-".repeat(width + 2)).join("|"));
        for row in &rows {
            line(row);
        }
        println!(
            "seeding: {small} images {}; {large} images {}",
            self.small.seeded.seeding_note(),
            self.large.seeded.seeding_note()
        );
        let breakdowns: Vec<String> = FIGURE_NAMES
            .iter()
            .zip(&self.large.figures)
            .map(|(name, figure)| format!("  {name}: {}", figure.requests_text()))
            .collect();
        println!("store requests at {large} images, by kind:\n{}", breakdowns.join("\n"));
    }
}
