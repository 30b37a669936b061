//! The web app's own cost, measured from outside: `atelier` runs as a process of its own (the
//! binary built with the bench profile), the Bedrock stand-in and the load run in this one,
//! and `oha` (installed by `scripts/bench` into `target/tools`) loads the gallery from a third.
//!
//! Figures, each with its target (issue 9, made stricter by issue 18 where it names one):
//! - start-up: process start to `/readyz` answering 200, median of 20 starts (local folder
//!   store, no Discord), once with the demo engine and once with Bedrock on the stand-in;
//! - idle memory: VmRSS a second after ready;
//! - memory under load: VmHWM with 1,000 `/api/generate` jobs in flight, the model taking 10 s;
//! - the gallery page and the JSON listing under `oha`, on the folder store and on moto.
//!
//! It prints a table and writes `target/bench/web.json`. Run it through `./scripts/bench`,
//! which installs moto and oha first; alone: `cargo bench --bench web_load`.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark whose set-up fails should stop loudly")]

// The stand-ins the end-to-end tests use; this binary needs only some of them.
// The table and JSON every load benchmark reports; each uses part of it.
#[path = "support/figures.rs"]
#[allow(dead_code)]
mod figures;
#[path = "support/process.rs"]
mod process;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use figures::{Figure, at_least, below, reported};
use support::bedrock::{BedrockStandIn, Behaviour, Operation};
use support::moto::Moto;
use support::{CSRF_TOKEN, atelier, free_port};

/// Starts measured for the start-up median.
const STARTS: usize = 20;
/// Jobs in flight for the memory figure (`WEB_LOAD_JOBS` changes it, to see how memory grows
/// with the number of jobs), and how long the model takes with each.
const JOBS_IN_FLIGHT: usize = 1_000;
const MODEL_DELAY: Duration = Duration::from_secs(10);
/// Images in the gallery before it is loaded: more than one page (48).
const GALLERY_IMAGES: usize = 60;
/// The load generator's connections and how long each gallery run lasts.
const LOAD_CONCURRENCY: usize = 16;
const LOAD_SECONDS: u64 = 10;

fn main() {
    let filters = figures::filters();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    figures::report("web.json", &runtime.block_on(measure(&filters)));
}

async fn measure(filters: &[String]) -> Vec<Figure> {
    let wanted = |group: &str| figures::wanted(filters, group);
    let mut figures = Vec::new();
    if wanted("startup") {
        figures.extend(startup().await);
    }
    if wanted("memory") {
        figures.extend(memory_under_load().await);
    }
    if wanted("gallery") {
        figures.extend(gallery_on_folder().await);
        figures.extend(gallery_on_moto().await);
    }
    figures
}

// --- atelier as a process -----------------------------------------------------------------

/// One `atelier serve` process in its own folder, stopped (SIGTERM, then SIGKILL) when dropped.
struct Atelier {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Atelier {
    /// Spawns the process with `settings` on top of local mode (folder store under `folder`,
    /// no Discord, loopback), without waiting for it.
    fn spawn(folder: &Path, settings: &[(&str, String)]) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let log = folder.join(format!("atelier-{}.log", address.replace([':', '.'], "-")));
        let child = process::spawn_serve(atelier(folder), &address, &log, settings);
        Self { child, address, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` every millisecond until it answers 200.
    async fn wait_until_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("atelier stopped before it was ready ({status}):\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "atelier never became ready:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads).
    fn status_field(&self, field: &str) -> u64 {
        proc_status_field(self.pid(), field)
    }
}

impl Drop for Atelier {
    fn drop(&mut self) {
        process::stop_gracefully(&mut self.child);
    }
}

fn proc_status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Settings that put the Bedrock engine on the stand-in.
fn bedrock_settings(bedrock: &BedrockStandIn) -> Vec<(&'static str, String)> {
    vec![
        ("ATELIER_ENGINE", "bedrock".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.endpoint()),
    ]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

fn megabytes(kilobytes: u64) -> f64 {
    kilobytes as f64 / 1024.0
}

// --- start-up and idle memory --------------------------------------------------------------

async fn startup() -> Vec<Figure> {
    let bedrock = BedrockStandIn::start().await;
    let client = reqwest::Client::new();
    let mut figures = Vec::new();
    for (engine, settings) in
        [("demo", vec![("ATELIER_ENGINE", "demo".to_string())]), ("bedrock stand-in", bedrock_settings(&bedrock))]
    {
        let mut starts = Vec::new();
        let mut idle_rss = Vec::new();
        let mut threads = 0;
        for start in 0..STARTS {
            // A fresh folder each time: the store and spool are made at start, as on a new task.
            let folder = tempfile::tempdir().unwrap();
            let began = Instant::now();
            let mut app = Atelier::spawn(folder.path(), &settings);
            app.wait_until_ready(&client).await;
            starts.push(began.elapsed().as_secs_f64() * 1000.0);
            // Idle memory once settled, on a few of the starts.
            if start < 3 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                idle_rss.push(megabytes(app.status_field("VmRSS")));
                threads = app.status_field("Threads");
            }
        }
        let fastest = starts.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = starts.iter().copied().fold(0.0, f64::max);
        figures.push(below(
            &format!("start-up to /readyz, {engine}"),
            median(&mut starts),
            "ms",
            300.0,
            format!("median of {STARTS} starts (min {fastest:.0}, max {slowest:.0}); folder store, no Discord"),
        ));
        figures.push(below(
            &format!("idle memory (VmRSS), {engine}"),
            median(&mut idle_rss),
            "MB",
            40.0,
            format!("1 s after ready, median of 3; {threads} threads"),
        ));
    }
    figures
}

// --- memory with 1,000 jobs in flight --------------------------------------------------------

async fn memory_under_load() -> Vec<Figure> {
    let jobs: usize = std::env::var("WEB_LOAD_JOBS").ok().and_then(|text| text.parse().ok()).unwrap_or(JOBS_IN_FLIGHT);
    let bedrock = BedrockStandIn::start().await;
    bedrock.script(Behaviour::Delay(MODEL_DELAY));
    let folder = tempfile::tempdir().unwrap();
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let mut settings = bedrock_settings(&bedrock);
    let limit = jobs.to_string();
    settings.extend([
        ("ATELIER_MAX_RUNNING_JOBS", limit.clone()),
        ("ATELIER_USER_RUNNING_JOBS", limit.clone()),
        ("ATELIER_USER_QUEUED_JOBS", limit),
        ("ATELIER_DAILY_IMAGE_QUOTA", "0".into()),
        // No spending limit either: 1,000 images of one person are $40 by the price table.
        ("ATELIER_DAILY_BUDGET_USD", "0".into()),
        ("ATELIER_METRICS_ADDRESS", metrics_address.clone()),
    ]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap();
    let mut app = Atelier::spawn(folder.path(), &settings);
    app.wait_until_ready(&client).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = megabytes(app.status_field("VmRSS"));

    // Every job as the local operator, through the JSON API with the forgery cookie and header.
    let began = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for number in 0..jobs {
        let client = client.clone();
        let url = app.url("/api/generate");
        let base = app.url("");
        requests.spawn(async move {
            let body = json!({ "prompt": format!("a lighthouse on a cliff, study number {number}"), "model": "core" });
            let response = client
                .post(url)
                .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
                .header("x-csrf-token", CSRF_TOKEN)
                .json(&body)
                .send()
                .await;
            match response {
                Ok(response) => {
                    let (status, text) = job_outcome(&client, &base, response).await;
                    (status, text, began.elapsed())
                }
                Err(error) => (0, error.to_string(), began.elapsed()),
            }
        });
    }

    // Sample while the jobs wait on the model: the process's memory, the job line (metrics)
    // and how many image calls the stand-in holds. The waiting phase ends when the first image
    // call could be answered.
    let metrics_client = reqwest::Client::new();
    let mut most_running = 0.0_f64;
    let mut most_in_line = 0.0_f64;
    let mut first_image_call: Option<Instant> = None;
    let mut peak_waiting_kb = 0;
    let mut most_image_calls = 0;
    let mut all_admitted_after: Option<Duration> = None;
    let mut outcomes = Outcomes::default();
    let ledger_path = folder.path().join("atelier-data/users/local-operator/usage.json");
    let mut largest_ledger = 0;
    let mut most_threads = 0;
    while !requests.is_empty() && began.elapsed() < Duration::from_secs(240) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let image_calls = bedrock.calls_to(Operation::InvokeModel);
        largest_ledger =
            largest_ledger.max(std::fs::metadata(&ledger_path).map(|metadata| metadata.len()).unwrap_or(0));
        most_threads = most_threads.max(app.status_field("Threads"));
        if image_calls > 0 && first_image_call.is_none() {
            first_image_call = Some(Instant::now());
        }
        let still_waiting =
            first_image_call.is_none_or(|first| first.elapsed() < MODEL_DELAY - Duration::from_millis(300));
        if still_waiting {
            peak_waiting_kb = app.status_field("VmHWM");
            most_image_calls = image_calls;
        }
        if let Ok(response) = metrics_client.get(format!("http://{metrics_address}/metrics")).send().await
            && let Ok(text) = response.text().await
        {
            let running = metric(&text, "atelier_jobs_running").unwrap_or(0.0);
            let waiting = metric(&text, "atelier_jobs_waiting").unwrap_or(0.0);
            most_running = most_running.max(running);
            most_in_line = most_in_line.max(running + waiting);
            if all_admitted_after.is_none() && running + waiting >= jobs as f64 {
                all_admitted_after = Some(began.elapsed());
            }
        }
        while let Some(done) = requests.try_join_next() {
            finished(done.unwrap(), &mut outcomes);
        }
        if first_image_call.is_some_and(|first| first.elapsed() > MODEL_DELAY) {
            break;
        }
    }
    while let Some(done) = requests.join_next().await {
        finished(done.unwrap(), &mut outcomes);
    }
    let whole_run = began.elapsed();
    let peak_total_kb = app.status_field("VmHWM");
    let cpu_seconds = cpu_seconds(app.pid());

    let statuses = outcomes.summary();
    let admitted = match all_admitted_after {
        Some(after) => format!("all {jobs} in line after {:.1} s", after.as_secs_f64()),
        None => format!("at most {most_in_line} of {jobs} in line at once"),
    };
    vec![
        reported("idle memory before the burst (VmRSS)", idle, "MB", "Bedrock engine, limits raised".into()),
        below(
            &format!("peak memory, {jobs} jobs waiting on the model (VmHWM)"),
            megabytes(peak_waiting_kb),
            "MB",
            128.0,
            format!(
                "{admitted}; at most {most_running} running; {most_image_calls} image calls held by the stand-in \
                 when read; one person (local operator)"
            ),
        ),
        reported(
            "peak memory, whole burst incl. saving (VmHWM)",
            megabytes(peak_total_kb),
            "MB",
            format!(
                "{statuses}; all answered after {:.1} s; {cpu_seconds:.1} s of CPU; up to {most_threads} threads; \
                 the person's ledger up to {} kB",
                whole_run.as_secs_f64(),
                largest_ledger / 1024
            ),
        ),
    ]
}

/// The answers of the burst, by status, with one example message of each failure.
#[derive(Default)]
struct Outcomes {
    by_status: std::collections::BTreeMap<u16, (usize, String)>,
}

impl Outcomes {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .by_status
            .iter()
            .map(|(status, (count, example))| {
                if *status == 201 {
                    format!("{count}x 201")
                } else {
                    let example: String = example.chars().take(120).collect();
                    format!("{count}x {status} ({example})")
                }
            })
            .collect();
        parts.join(", ")
    }
}

fn finished((status, text, _after): (u16, String, Duration), outcomes: &mut Outcomes) {
    let entry = outcomes.by_status.entry(status).or_insert((0, text));
    entry.0 += 1;
}

/// The CPU time the process has used so far, user and system (/proc/PID/stat, in clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The value of an unlabelled metric in OpenMetrics text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

// --- the gallery under load -----------------------------------------------------------------

async fn gallery_on_folder() -> Vec<Figure> {
    let folder = tempfile::tempdir().unwrap();
    let mut app = Atelier::spawn(folder.path(), &gallery_settings());
    let client = reqwest::Client::new();
    app.wait_until_ready(&client).await;
    fill_gallery(&app, &client).await;
    let page = load(&app, "/gallery");
    let listing = load(&app, "/api/images");
    vec![
        at_least("gallery page, folder store: throughput", page.requests_per_second, "req/s", 2_000.0, page.note()),
        below("gallery page, folder store: p99", page.p99_ms, "ms", 25.0, page.note()),
        reported("JSON listing, folder store: throughput", listing.requests_per_second, "req/s", listing.note()),
        reported("JSON listing, folder store: p99", listing.p99_ms, "ms", listing.note()),
    ]
}

async fn gallery_on_moto() -> Vec<Figure> {
    let moto = Moto::start().await;
    let sdk_config = moto.sdk_config().await;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build());
    s3.create_bucket().bucket("atelier-bench").send().await.unwrap();
    let folder = tempfile::tempdir().unwrap();
    let mut settings = gallery_settings();
    settings.extend([
        ("ATELIER_STORE", "s3://atelier-bench".to_string()),
        ("ATELIER_S3_FORCE_PATH_STYLE", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL_S3", moto.endpoint()),
    ]);
    let mut app = Atelier::spawn(folder.path(), &settings);
    let client = reqwest::Client::new();
    app.wait_until_ready(&client).await;
    fill_gallery(&app, &client).await;
    let page = load(&app, "/gallery");
    let listing = load(&app, "/api/images");
    let measures_moto = "; measures moto (one Python process) more than Atelier";
    vec![
        reported("gallery page, moto (S3): throughput", page.requests_per_second, "req/s", page.note() + measures_moto),
        reported("gallery page, moto (S3): p99", page.p99_ms, "ms", page.note() + measures_moto),
        reported(
            "JSON listing, moto (S3): throughput",
            listing.requests_per_second,
            "req/s",
            listing.note() + measures_moto,
        ),
        reported("JSON listing, moto (S3): p99", listing.p99_ms, "ms", listing.note() + measures_moto),
    ]
}

/// Local mode with the demo engine, and room to make the gallery's images quickly.
fn gallery_settings() -> Vec<(&'static str, String)> {
    vec![
        ("ATELIER_ENGINE", "demo".into()),
        ("ATELIER_USER_RUNNING_JOBS", "4".into()),
        ("ATELIER_USER_QUEUED_JOBS", "16".into()),
        ("ATELIER_DAILY_IMAGE_QUOTA", "0".into()),
        ("ATELIER_DAILY_BUDGET_USD", "0".into()),
    ]
}

/// How a job the API accepted (202) ended, followed through its event stream (one open
/// connection a job, as a client would, rather than polling): `201` with the job when it made
/// its images, `429` when it failed as busy, `500` otherwise. Any other answer is returned as
/// it came.
async fn job_outcome(client: &reqwest::Client, base: &str, response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != 202 {
        return (status, text);
    }
    let job: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let events_url = format!("{}{}", base.trim_end_matches('/'), job["events_url"].as_str().unwrap_or_default());
    let events = match client.get(events_url).send().await {
        Ok(events) => events.text().await.unwrap_or_default(),
        Err(error) => return (0, error.to_string()),
    };
    let last = events.lines().filter_map(|line| line.strip_prefix("data:")).next_back().unwrap_or_default().trim();
    let job: Value = serde_json::from_str(last).unwrap_or(Value::Null);
    match job["state"].as_str() {
        Some("done") => (201, job.to_string()),
        Some("failed") if job["error"]["error"] == "busy" => (429, job.to_string()),
        _ => (500, job.to_string()),
    }
}

/// Makes [`GALLERY_IMAGES`] images, four at a time, through the JSON API.
async fn fill_gallery(app: &Atelier, client: &reqwest::Client) {
    let mut made = 0;
    let mut number = 0;
    while made < GALLERY_IMAGES {
        number += 1;
        let response = client
            .post(app.url("/api/generate"))
            .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
            .header("x-csrf-token", CSRF_TOKEN)
            .json(&json!({ "prompt": format!("a quiet harbour at dawn, sketch {number}"), "count": 4 }))
            .send()
            .await
            .unwrap();
        let (status, body) = job_outcome(client, &app.url(""), response).await;
        assert_eq!(status, 201, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        made += body["images"].as_array().map_or(0, Vec::len);
    }
    let page: Value = client.get(app.url("/api/images")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["images"].as_array().map_or(0, Vec::len), 48, "a full first page: {page}");
}

/// What `oha` measured.
struct Load {
    requests_per_second: f64,
    p99_ms: f64,
    p50_ms: f64,
    ok: u64,
    other: u64,
}

impl Load {
    fn note(&self) -> String {
        let failures = if self.other == 0 { String::new() } else { format!(", {} not 200", self.other) };
        format!(
            "oha -c {LOAD_CONCURRENCY} for {LOAD_SECONDS} s: p50 {:.1} ms, {} x 200{failures}",
            self.p50_ms, self.ok
        )
    }
}

/// Loads `path` with `oha` from a process of its own for [`LOAD_SECONDS`].
fn load(app: &Atelier, path: &str) -> Load {
    let oha = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/oha");
    assert!(oha.exists(), "{} is missing: run ./scripts/bench, which installs it", oha.display());
    let output = std::process::Command::new(&oha)
        .args(["--no-tui", "--output-format", "json", "-c", &LOAD_CONCURRENCY.to_string()])
        .args(["-z", &format!("{LOAD_SECONDS}s")])
        .arg(app.url(path))
        .output()
        .unwrap();
    assert!(output.status.success(), "oha failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let codes = report["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
    let ok = codes.get("200").and_then(Value::as_u64).unwrap_or(0);
    let other = codes.iter().filter(|(code, _)| *code != "200").filter_map(|(_, count)| count.as_u64()).sum();
    Load {
        requests_per_second: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p99_ms: report["latencyPercentiles"]["p99"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        p50_ms: report["latencyPercentiles"]["p50"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        ok,
        other,
    }
}
