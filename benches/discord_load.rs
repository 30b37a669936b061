//! The Discord side's own cost, measured from outside: `atelier` runs as a process of its own
//! (the binary built with the bench profile) with the bot connected to the Discord stand-in and
//! the models on the Bedrock stand-in, both running in this process and timestamping what they
//! send and receive on one clock.
//!
//! Figures, each with its target (issue 9, made stricter by issue 18 where it names one):
//! - acknowledgement latency: 1,000 `/imagine` interactions dispatched within one second (by
//!   1,000 people); from the gateway writing each INTERACTION_CREATE to the stand-in receiving
//!   its callback (type 5). The model takes 3 s meanwhile, so the jobs wait on it and what is
//!   measured is the front door (the progress edits of the jobs do go on at the same time).
//! - overhead per image job, the model answering at once with a 1024×1024 PNG (encoded once by
//!   the stand-in): from the stand-in's last byte of the InvokeModel answer to the result (the
//!   PATCH of `@original` carrying the upload) received by the Discord stand-in. The image's
//!   bytes and record are stored before it is posted, so storing them is inside; its thumbnail
//!   is made while it is posted, and a second figure times the job to its thumbnail written
//!   (the file's modification time in the folder store). The safety classifier (a Converse) runs
//!   before the image call with a distinct prompt per job, so it is outside by construction.
//!   Measured one job at a time (the cost of a job) and over a burst of 500 at once (the
//!   throughput of the whole path, first dispatch to last result).
//! - chat streaming: from the Bedrock stand-in handing a ConverseStream text delta to its
//!   connection to the first Discord message create/edit showing that text (target: one edit
//!   interval, `PROGRESS_INTERVAL`, plus 5 ms), and to the web chat's server-sent event carrying
//!   it arriving at a client (target 5 ms).
//!
//! It prints a table and writes `target/bench/discord.json`. Alone: `cargo bench --bench
//! discord_load`; `./scripts/bench` runs it with the others, and again with its folder store
//! on a tmpfs, to tell the file system's share of the figures from Atelier's.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark whose set-up fails should stop loudly")]

// The stand-ins the end-to-end tests use; this binary needs only some of them.
// The table and JSON every load benchmark reports; each uses part of it.
#[path = "support/figures.rs"]
#[allow(dead_code)]
mod figures;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use serde_json::{Value, json};

use figures::{Figure, at_least, at_most, below, percentile, reported, wanted};
use support::bedrock::{BedrockStandIn, Behaviour, Call, Operation};
use support::discord::{APPLICATION_ID, DiscordStandIn, RequestSummary};
use support::{CSRF_TOKEN, atelier_on_stand_ins, free_port};

/// Interactions in the acknowledgement burst, over how long they are dispatched, and how long
/// the model takes with each meanwhile.
const ACK_INTERACTIONS: usize = 1_000;
const ACK_WINDOW: Duration = Duration::from_secs(1);
const ACK_MODEL_DELAY: Duration = Duration::from_secs(3);
/// Jobs measured one at a time, and in the burst.
const SEQUENTIAL_JOBS: usize = 100;
const BURST_JOBS: usize = 500;
/// Words in a streamed chat reply, and the model's pause between them.
const CHAT_WORDS: usize = 60;
const CHAT_PACE: Duration = Duration::from_millis(40);
/// The bot's edit interval for streamed text (bot/src/respond.rs PROGRESS_INTERVAL).
const EDIT_INTERVAL: Duration = Duration::from_millis(1_000);
/// User ids: one person per interaction, so per-person limits never hold a job back.
const FIRST_USER: u64 = 5_000_000_000_000_000_000;

/// `DISCORD_LOAD_QUICK=1` runs a tenth of every burst, to try the harness out; its figures are
/// not the issue's.
fn scaled(count: usize) -> usize {
    if std::env::var_os("DISCORD_LOAD_QUICK").is_some() { (count / 10).max(1) } else { count }
}

fn main() {
    let filters = figures::filters();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // `DISCORD_LOAD_REPORT` names the JSON file (with `DISCORD_LOAD_FOLDER`, the figures of a
    // run elsewhere are kept apart from the usual ones).
    let report = std::env::var("DISCORD_LOAD_REPORT").unwrap_or_else(|_| "discord.json".into());
    figures::report(&report, &runtime.block_on(measure(&filters)));
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The running `atelier`, its web address and the folder it runs in (with its log, kept after
/// the run in `target/bench/discord-run/`).
struct Atelier {
    child: Child,
    address: String,
    folder: PathBuf,
}

impl Drop for Atelier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the run keeps its store, spool and log: `DISCORD_LOAD_FOLDER` puts them elsewhere,
/// such as on a tmpfs to see how much of a figure is the file system's.
fn run_folder() -> PathBuf {
    std::env::var_os("DISCORD_LOAD_FOLDER")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/discord-run"), PathBuf::from)
}

/// Issue 18's throughput target: 100 jobs/s on the machine's own disk, 200 with the store on a
/// tmpfs (the file system of the mount the run folder is on, from `/proc/self/mountinfo`).
fn throughput_target() -> f64 {
    let folder = run_folder();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // Each line: id parent major:minor root mount-point options ... - fstype source options.
    let file_system = mounts
        .lines()
        .filter_map(|line| {
            let mount_point = line.split(' ').nth(4)?;
            let file_system = line.split(" - ").nth(1)?.split(' ').next()?;
            folder.starts_with(mount_point).then_some((mount_point.len(), file_system))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, file_system)| file_system);
    if file_system == Some("tmpfs") { 200.0 } else { 100.0 }
}

async fn start_atelier(discord: &DiscordStandIn, bedrock: &BedrockStandIn) -> Atelier {
    let folder = run_folder();
    // Left only by a run that was killed: a finished run removes its store itself, after its
    // figures are taken (see `Atelier::remove_store`).
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let settings = folder.join("atelier.toml");
    std::fs::write(&settings, "# the bench's variables say everything\n").unwrap();
    let log = std::fs::File::create(folder.join("atelier.log")).unwrap();
    let child = atelier_on_stand_ins(&folder, discord, bedrock)
        .env("ATELIER_CONFIG", &settings)
        .env("ATELIER_BIND", &address)
        .env("ATELIER_PUBLIC_URL", format!("http://{address}/"))
        .env("ATELIER_STORE", format!("file://{}", folder.join("store").display()))
        .env("ATELIER_SPOOL_DIR", folder.join("spool"))
        // The job line must not be what is measured.
        .env("ATELIER_MAX_RUNNING_JOBS", "2000")
        .env("ATELIER_USER_RUNNING_JOBS", "20")
        .env("ATELIER_USER_QUEUED_JOBS", "20")
        .env("ATELIER_DAILY_IMAGE_QUOTA", "0")
        .env("ATELIER_DAILY_BUDGET_USD", "0")
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "0")
        // As in production: info-level logs, here to a file (DISCORD_LOAD_RUST_LOG to change).
        .env("RUST_LOG", std::env::var("DISCORD_LOAD_RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let atelier = Atelier { child, address, folder };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("http://{}/readyz", atelier.address)).send().await
            && response.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "atelier never became ready; log in {}", atelier.log().display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    discord.wait_until_ready().await;
    atelier
}

impl Atelier {
    fn log(&self) -> PathBuf {
        self.folder.join("atelier.log")
    }

    /// Stops `atelier` and removes its store and spool, keeping the log. Done after the figures,
    /// not before the next run: on an ext4 file system without a journal (as on the machine in
    /// BENCHMARKS.md) every file created within about 40 s of thousands being deleted pays for
    /// skipping their inodes, which would be measured as Atelier's cost.
    fn remove_store(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for part in ["store", "spool"] {
            let _ = std::fs::remove_dir_all(self.folder.join(part));
        }
    }
}

async fn measure(filters: &[String]) -> Vec<Figure> {
    let discord = DiscordStandIn::start().await;
    let bedrock = BedrockStandIn::start().await;
    let png_bytes = bedrock.answer_images_at_once();
    let atelier = start_atelier(&discord, &bedrock).await;
    println!("atelier is up at {} (log: {})", atelier.address, atelier.log().display());
    let mut figures = Vec::new();
    let mut next_user = FIRST_USER;
    if wanted(filters, "ack") {
        figures.extend(acknowledgements(&discord, &bedrock, &mut next_user).await);
    }
    if wanted(filters, "overhead") || wanted(filters, "throughput") {
        figures.extend(image_jobs(&discord, &bedrock, &mut next_user, png_bytes, &atelier.folder.join("store")).await);
    }
    if wanted(filters, "chat") {
        figures.extend(discord_chat(&discord, &bedrock, &mut next_user).await);
        figures.extend(web_chat(&atelier, &bedrock).await);
    }
    atelier.remove_store();
    figures
}

/// Whether a message shows an uploaded image, as results do.
fn shows_an_image(message: &Value) -> bool {
    message["embeds"][0]["image"]["url"].as_str().is_some_and(|url| url.contains("/attachments/"))
}

/// A `/imagine` interaction by a new person, with a prompt no other job has.
fn imagine(discord: &DiscordStandIn, next_user: &mut u64, prompt: &str) -> Value {
    *next_user += 1;
    let user = DiscordStandIn::user(*next_user, &format!("bench{}", *next_user));
    discord.slash_command(&user, "imagine", json!([{ "name": "prompt", "type": 3, "value": prompt }]), &[])
}

fn id_of(interaction: &Value) -> String {
    interaction["id"].as_str().unwrap().to_string()
}

fn token_of(interaction: &Value) -> String {
    interaction["token"].as_str().unwrap().to_string()
}

/// The interaction id in a callback path, `/api/v10/interactions/{id}/{token}/callback`.
fn callback_of(request: &RequestSummary) -> Option<&str> {
    let rest = request.path.strip_prefix("/api/v10/interactions/")?;
    rest.ends_with("/callback").then(|| rest.split('/').next()).flatten()
}

/// The token in a result's path, `PATCH /api/v10/webhooks/{app}/{token}/messages/@original`,
/// when the request carried an upload.
fn result_token(request: &RequestSummary) -> Option<&str> {
    if request.method != "PATCH" || request.file_count == 0 || request.status != 200 {
        return None;
    }
    let rest = request.path.strip_prefix(&format!("/api/v10/webhooks/{APPLICATION_ID}/"))?;
    let (token, tail) = rest.split_once('/')?;
    (tail == "messages/@original").then_some(token)
}

/// Waits until `done` says the log of requests holds what it needs; panics after `limit`.
async fn wait_for_log(
    discord: &DiscordStandIn,
    what: &str,
    limit: Duration,
    done: impl Fn(&[RequestSummary]) -> bool,
) -> Vec<RequestSummary> {
    let deadline = Instant::now() + limit;
    loop {
        let log = discord.request_log();
        if done(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}; requests so far:\n{}", describe(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many requests of each kind (method, route, status) the log holds.
fn describe(log: &[RequestSummary]) -> String {
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for request in log {
        let route: Vec<&str> = request
            .path
            .split('/')
            .map(|segment| if segment.len() > 12 && segment != "@original" { "{}" } else { segment })
            .collect();
        let files = if request.file_count > 0 { " +files" } else { "" };
        *kinds.entry(format!("{} {}{files} -> {}", request.method, route.join("/"), request.status)).or_default() += 1;
    }
    kinds.iter().map(|(kind, count)| format!("  {count:>6}  {kind}")).collect::<Vec<_>>().join("\n")
}

fn results_for(log: &[RequestSummary], tokens: &HashMap<String, String>) -> HashMap<String, Instant> {
    let mut results = HashMap::new();
    for request in log {
        if let Some(id) = result_token(request).and_then(|token| tokens.get(token)) {
            results.entry(id.clone()).or_insert(request.received_at);
        }
    }
    results
}

async fn acknowledgements(discord: &DiscordStandIn, bedrock: &BedrockStandIn, next_user: &mut u64) -> Vec<Figure> {
    let ack_interactions = scaled(ACK_INTERACTIONS);
    println!(
        "acknowledgements: {ack_interactions} /imagine within {ACK_WINDOW:?}, the model taking {ACK_MODEL_DELAY:?}"
    );
    bedrock.script(Behaviour::Delay(ACK_MODEL_DELAY));
    let interactions: Vec<Value> = (0..ack_interactions)
        .map(|number| {
            imagine(discord, next_user, &format!("a lighthouse over a calm sea, sketch {number:06} of the series"))
        })
        .collect();
    let ids: Vec<String> = interactions.iter().map(id_of).collect();
    let tokens: HashMap<String, String> =
        interactions.iter().map(|interaction| (token_of(interaction), id_of(interaction))).collect();
    let start = tokio::time::Instant::now();
    let spacing = ACK_WINDOW / u32::try_from(ack_interactions).unwrap();
    for (number, interaction) in interactions.into_iter().enumerate() {
        tokio::time::sleep_until(start + spacing * u32::try_from(number).unwrap()).await;
        discord.dispatch_interaction(interaction).await;
    }
    let dispatched_in = start.elapsed();
    let log = wait_for_log(discord, "every acknowledgement", Duration::from_secs(60), |log| {
        log.iter().filter(|request| callback_of(request).is_some()).count() >= ack_interactions
    })
    .await;
    let mut callbacks: HashMap<&str, Instant> = HashMap::new();
    for request in &log {
        if let Some(id) = callback_of(request) {
            callbacks.entry(id).or_insert(request.received_at);
        }
    }
    let latencies = sorted(
        ids.iter()
            .map(|id| {
                let sent = discord.interaction_sent_at(id).expect("every interaction was sent");
                milliseconds(callbacks[id.as_str()].saturating_duration_since(sent))
            })
            .collect(),
    );
    let deferred = log
        .iter()
        .filter(|request| callback_of(request).is_some() && request.body["type"] == 5 && request.status == 204)
        .count();
    // The jobs go on to finish; wait for them so the next figures start from a quiet process.
    let finished =
        wait_for_log(discord, "every result of the acknowledgement burst", Duration::from_secs(300), |log| {
            results_for(log, &tokens).len() >= ack_interactions
        })
        .await;
    let last_result = results_for(&finished, &tokens).values().max().copied();
    let note = format!(
        "{ack_interactions} /imagine by {ack_interactions} people dispatched in {:.0} ms, {deferred} deferred (type 5); model {} s per call; all results in {:.1} s",
        milliseconds(dispatched_in),
        ACK_MODEL_DELAY.as_secs(),
        last_result.map_or(f64::NAN, |last| last.duration_since(start.into_std()).as_secs_f64()),
    );
    vec![
        reported("ack latency p50", percentile(&latencies, 50.0), "ms", note.clone()),
        reported("ack latency p90", percentile(&latencies, 90.0), "ms", String::new()),
        below("ack latency p99", percentile(&latencies, 99.0), "ms", 20.0, String::new()),
        reported("ack latency max", percentile(&latencies, 100.0), "ms", String::new()),
    ]
}

/// For each job (by its unique prompt marker), when the stand-in finished its InvokeModel answer.
fn answers_by_marker(calls: &[Call], markers: &[String]) -> HashMap<String, Instant> {
    let mut answers = HashMap::new();
    for call in calls.iter().filter(|call| call.operation == Operation::InvokeModel) {
        let Some(answered) = call.answered_at else { continue };
        let body = call.body.to_string();
        if let Some(marker) = markers.iter().find(|marker| body.contains(marker.as_str())) {
            answers.insert(marker.clone(), answered);
        }
    }
    answers
}

/// Per job, result received minus the model's answer finished, in ms.
fn overheads(log: &[RequestSummary], calls: &[Call], jobs: &[(String, String, String)]) -> Vec<f64> {
    let tokens: HashMap<String, String> = jobs.iter().map(|(id, token, _)| (token.clone(), id.clone())).collect();
    let markers: Vec<String> = jobs.iter().map(|(_, _, marker)| marker.clone()).collect();
    let results = results_for(log, &tokens);
    let answers = answers_by_marker(calls, &markers);
    sorted(
        jobs.iter()
            .filter_map(|(id, _, marker)| {
                let result = results.get(id)?;
                let answered = answers.get(marker)?;
                Some(milliseconds(result.saturating_duration_since(*answered)))
            })
            .collect(),
    )
}

/// When each job's image was filed in the gallery (its thumbnail written, the last of its
/// parts), by the prompt marker its record holds: the thumbnail files' modification times.
fn filed_by_marker(store: &Path, markers: &[String]) -> HashMap<String, SystemTime> {
    let mut filed = HashMap::new();
    let Ok(owners) = std::fs::read_dir(store.join("users")) else { return filed };
    for owner in owners.flatten() {
        let Ok(records) = std::fs::read_dir(owner.path().join("records")) else { continue };
        for record in records.flatten() {
            let Ok(text) = std::fs::read_to_string(record.path()) else { continue };
            let Some(marker) = markers.iter().find(|marker| text.contains(marker.as_str())) else { continue };
            let Ok(record) = serde_json::from_str::<Value>(&text) else { continue };
            let thumbnail =
                owner.path().join("thumbnails").join(format!("{}.jpg", record["id"].as_str().unwrap_or("")));
            if let Ok(metadata) = std::fs::metadata(thumbnail) {
                filed.insert(marker.clone(), metadata.modified().unwrap());
            }
        }
    }
    filed
}

/// Per job, filed minus the model's answer finished, in ms; `clock` pairs one instant with the
/// wall-clock time at that instant, to compare the stand-in's instants with file times.
fn filing_delays(
    store: &Path,
    calls: &[Call],
    jobs: &[(String, String, String)],
    clock: (Instant, SystemTime),
) -> Vec<f64> {
    let markers: Vec<String> = jobs.iter().map(|(_, _, marker)| marker.clone()).collect();
    let answers = answers_by_marker(calls, &markers);
    let filed = filed_by_marker(store, &markers);
    sorted(
        markers
            .iter()
            .filter_map(|marker| {
                let answered = clock.1 + answers.get(marker)?.duration_since(clock.0);
                Some(milliseconds(filed.get(marker)?.duration_since(answered).unwrap_or_default()))
            })
            .collect(),
    )
}

async fn image_jobs(
    discord: &DiscordStandIn,
    bedrock: &BedrockStandIn,
    next_user: &mut u64,
    png_bytes: usize,
    store: &Path,
) -> Vec<Figure> {
    let (sequential_jobs, burst_jobs) = (scaled(SEQUENTIAL_JOBS), scaled(BURST_JOBS));
    let clock = (Instant::now(), SystemTime::now());
    bedrock.script(Behaviour::Delay(Duration::ZERO));
    let image_note = format!("1024x1024 PNG of {:.2} MB", png_bytes as f64 / 1e6);

    // One at a time: what one job costs around the model.
    println!("overhead: {sequential_jobs} jobs one at a time, the model answering at once");
    let mut jobs = Vec::new();
    for number in 0..sequential_jobs {
        let marker = format!("solo{number:06}x");
        let interaction = imagine(discord, next_user, &format!("a red kite above the dunes, {marker} in pencil"));
        let (id, token) = (id_of(&interaction), token_of(&interaction));
        discord.dispatch_interaction(interaction).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !discord.interaction_original(&id).is_some_and(|message| shows_an_image(&message)) {
            assert!(Instant::now() < deadline, "no result for solo job {number}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        jobs.push((id, token, marker));
    }
    let solo = overheads(&discord.request_log(), &bedrock.requests(), &jobs);
    assert_eq!(solo.len(), sequential_jobs, "every solo job matched to its model answer and result");
    // The thumbnail and record are written while the result is posted: wait for the last.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let solo_filed = filing_delays(store, &bedrock.requests(), &jobs, clock);
    assert_eq!(solo_filed.len(), sequential_jobs, "every solo job's record found in the store");

    // A burst: the whole path's throughput.
    println!("throughput: a burst of {burst_jobs} jobs, the model answering at once");
    let interactions: Vec<(Value, String)> = (0..burst_jobs)
        .map(|number| {
            let marker = format!("burst{number:06}x");
            (imagine(discord, next_user, &format!("a fox in the snow, {marker} in ink")), marker)
        })
        .collect();
    let burst: Vec<(String, String, String)> = interactions
        .iter()
        .map(|(interaction, marker)| (id_of(interaction), token_of(interaction), marker.clone()))
        .collect();
    let started = Instant::now();
    for (interaction, _) in interactions {
        discord.dispatch_interaction(interaction).await;
    }
    let tokens: HashMap<String, String> = burst.iter().map(|(id, token, _)| (token.clone(), id.clone())).collect();
    let log = wait_for_log(discord, "every result of the burst", Duration::from_secs(300), |log| {
        results_for(log, &tokens).len() >= burst_jobs
    })
    .await;
    let first_sent = burst.iter().filter_map(|(id, _, _)| discord.interaction_sent_at(id)).min().unwrap_or(started);
    let last_result = results_for(&log, &tokens).values().max().copied().unwrap();
    let seconds = last_result.duration_since(first_sent).as_secs_f64();
    let under_load = overheads(&log, &bedrock.requests(), &burst);
    let burst_markers: Vec<String> = burst.iter().map(|(_, _, marker)| marker.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let last_filed = loop {
        let filed = filed_by_marker(store, &burst_markers);
        if filed.len() >= burst_jobs {
            break filed.values().max().copied().unwrap();
        }
        assert!(Instant::now() < deadline, "only {} of {burst_jobs} burst records were filed", filed.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let filed_seconds =
        last_filed.duration_since(clock.1 + first_sent.duration_since(clock.0)).unwrap_or_default().as_secs_f64();
    let uploaded: usize = log
        .iter()
        .filter(|request| result_token(request).is_some_and(|token| tokens.contains_key(token)))
        .map(|request| request.file_bytes)
        .sum();
    vec![
        below(
            "image job overhead p50",
            percentile(&solo, 50.0),
            "ms",
            5.0,
            format!(
                "{sequential_jobs} jobs one at a time; model's last answer byte -> result PATCH received (the image stored first); {image_note}"
            ),
        ),
        reported("image job overhead p99", percentile(&solo, 99.0), "ms", String::new()),
        reported(
            "image job filed p50",
            percentile(&solo_filed, 50.0),
            "ms",
            "the same jobs: model's last answer byte -> gallery thumbnail written (made while the result is posted)"
                .into(),
        ),
        reported("image job filed p99", percentile(&solo_filed, 99.0), "ms", String::new()),
        at_least(
            "image job throughput",
            burst_jobs as f64 / seconds,
            "jobs/s",
            throughput_target(),
            format!(
                "{burst_jobs} jobs dispatched at once, first dispatch to last result in {seconds:.2} s ({:.0} MB uploaded); the last filed in the gallery at {filed_seconds:.2} s",
                uploaded as f64 / 1e6
            ),
        ),
        reported(
            "image job overhead in burst p50",
            percentile(&under_load, 50.0),
            "ms",
            format!("the same measure inside the burst of {burst_jobs}"),
        ),
        reported("image job overhead in burst p99", percentile(&under_load, 99.0), "ms", String::new()),
    ]
}

/// A reply of `CHAT_WORDS` distinct words: the stand-in answers "Stand-in reply to: {message}".
fn chat_message(tag: &str) -> String {
    (0..CHAT_WORDS).map(|number| format!("{tag}{number:03}")).collect::<Vec<_>>().join(" ")
}

/// The latest ConverseStream call, with its text deltas.
fn last_stream(bedrock: &BedrockStandIn, tag: &str) -> Call {
    bedrock
        .requests()
        .into_iter()
        .rev()
        .find(|call| call.operation == Operation::ConverseStream && call.body.to_string().contains(tag))
        .expect("the chat's ConverseStream call")
}

/// For each delta, the first moment `shown` (time, text shown so far) shows all text up to and
/// including it; the delays from its sending, in ms.
fn visible_delays(deltas: &[(Instant, String)], shown: &[(Instant, String)]) -> Vec<f64> {
    let mut delays = Vec::new();
    let mut prefix = String::new();
    for (sent, text) in deltas {
        prefix.push_str(text);
        let wanted = prefix.trim_end();
        if wanted.is_empty() {
            continue;
        }
        if let Some((at, _)) = shown.iter().find(|(at, text)| *at >= *sent && text.contains(wanted)) {
            delays.push(milliseconds(at.duration_since(*sent)));
        } else {
            delays.push(f64::INFINITY);
        }
    }
    sorted(delays)
}

async fn discord_chat(discord: &DiscordStandIn, bedrock: &BedrockStandIn, next_user: &mut u64) -> Vec<Figure> {
    println!("chat in Discord: {CHAT_WORDS} words, one every {CHAT_PACE:?}");
    bedrock.script(Behaviour::Delay(CHAT_PACE));
    let tag = "dword";
    *next_user += 1;
    let user = DiscordStandIn::user(*next_user, &format!("bench{}", *next_user));
    let interaction = discord.slash_command(
        &user,
        "chat",
        json!([{ "name": "message", "type": 3, "value": chat_message(tag) }]),
        &[],
    );
    discord.dispatch_interaction(interaction).await;
    // Finished once the last word shows without the typing cursor.
    let last_word = format!("{tag}{:03}", CHAT_WORDS - 1);
    let log = wait_for_log(discord, "the whole chat answer in its thread", Duration::from_secs(60), |log| {
        log.iter().any(|request| {
            request.path.starts_with("/api/v10/channels/")
                && request.body["content"].as_str().is_some_and(|text| text.trim_end().ends_with(&last_word))
        })
    })
    .await;
    bedrock.script(Behaviour::Delay(Duration::ZERO));
    let stream = last_stream(bedrock, tag);
    let shown: Vec<(Instant, String)> = log
        .iter()
        .filter(|request| request.path.starts_with("/api/v10/channels/") && request.path.contains("/messages"))
        .filter(|request| matches!(request.method.as_str(), "POST" | "PATCH") && request.status == 200)
        .filter_map(|request| Some((request.received_at, request.body["content"].as_str()?.to_string())))
        .collect();
    let delays = visible_delays(&stream.deltas, &shown);
    let limit = milliseconds(EDIT_INTERVAL) + 5.0;
    vec![
        at_most(
            "discord chat delay max",
            percentile(&delays, 100.0),
            "ms",
            limit,
            format!(
                "{} deltas, one every {} ms; delta sent by the model -> first message create/edit showing it (edit interval {} ms + 5)",
                stream.deltas.len(),
                CHAT_PACE.as_millis(),
                EDIT_INTERVAL.as_millis()
            ),
        ),
        reported("discord chat delay p50", percentile(&delays, 50.0), "ms", String::new()),
    ]
}

async fn web_chat(atelier: &Atelier, bedrock: &BedrockStandIn) -> Vec<Figure> {
    println!("chat on the web: {CHAT_WORDS} words, one every {CHAT_PACE:?}");
    bedrock.script(Behaviour::Delay(CHAT_PACE));
    let tag = "wword";
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new().text("message", chat_message(tag));
    let response = client
        .post(format!("http://{}/chat", atelier.address))
        .header("accept", "text/event-stream")
        .header("x-csrf-token", CSRF_TOKEN)
        .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "the web chat answered {}", response.status());
    // Each `text` event as it arrives, with the text shown so far.
    let mut shown: Vec<(Instant, String)> = Vec::new();
    let mut text = String::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let mut name = "";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if name == "text"
                && let Ok(Value::String(piece)) = serde_json::from_str::<Value>(&data)
            {
                text.push_str(&piece);
                shown.push((arrived, text.clone()));
            }
        }
    }
    bedrock.script(Behaviour::Delay(Duration::ZERO));
    let stream = last_stream(bedrock, tag);
    let delays = visible_delays(&stream.deltas, &shown);
    vec![
        at_most(
            "web chat delay max",
            percentile(&delays, 100.0),
            "ms",
            5.0,
            format!(
                "{} deltas; delta sent by the model -> its server-sent event read by the client",
                stream.deltas.len()
            ),
        ),
        reported("web chat delay p50", percentile(&delays, 50.0), "ms", String::new()),
    ]
}
