//! Observability of `atelier serve` as a process, on the Bedrock stand-in: Prometheus metrics on
//! a listener of their own (never on the public port) that move with the work done, and JSON
//! log lines that parse, carry a job's ids, and keep prompt text out of every line at info
//! level or above.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::bedrock::BedrockStandIn;
use crate::support::{CSRF_TOKEN, atelier, free_port};

/// A prompt whose words appear nowhere else, so any log line holding them is holding it.
const PROMPT: &str = "a lighthouse of violet glass under a quiet aurora";
const PROMPT_WORDS: &str = "violet glass";

/// The classifier Atelier asks by default, as its metrics name it.
const CLASSIFIER: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

#[tokio::test]
async fn metrics_and_json_logs_follow_the_work_and_keep_prompts_out_of_info_lines() {
    let stand_in = BedrockStandIn::start().await;
    let folder = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let mut child = atelier(folder.path())
        .env("ATELIER_BIND", &address)
        .env("ATELIER_METRICS_ADDRESS", &metrics_address)
        .env("ATELIER_LOG_FORMAT", "json")
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "0")
        .env("ATELIER_ENGINE", "bedrock")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", stand_in.endpoint())
        // Atelier's own debug lines too, so a prompt kept out of info lines is kept out by
        // their level and not merely by the filter.
        .env("RUST_LOG", "info,atelier=debug,atelier_shared=debug,atelier_web=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so a full pipe never stalls the process.
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });

    let client = reqwest::Client::new();
    wait_for_health(&client, &address).await;

    // The public port has no /metrics; the metrics port has nothing else.
    let public = client.get(format!("http://{address}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let elsewhere = client.get(format!("http://{metrics_address}/healthz")).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);

    let before = scrape(&client, &metrics_address).await;
    assert_eq!(value_of(&before, "atelier_spool_images"), Some(0.0), "{before}");
    assert_eq!(value_of(&before, "atelier_spool_bytes"), Some(0.0), "{before}");
    assert_eq!(value_of(&before, "atelier_jobs_waiting"), Some(0.0), "{before}");
    assert_eq!(value_of(&before, "atelier_jobs_running"), Some(0.0), "{before}");
    assert!(!before.contains("atelier_jobs_finished_total{"), "no job has finished yet: {before}");

    // Two images from two models, through the JSON API as the local operator.
    for body in
        [json!({"prompt": PROMPT, "model": "core"}), json!({"prompt": PROMPT, "model": "titan", "size": "512x512"})]
    {
        let response = client
            .post(format!("http://{address}/api/generate"))
            .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
            .header("x-csrf-token", CSRF_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let job: Value = response.json().await.unwrap();
        wait_until_done(&client, &format!("http://{address}{}", job["url"].as_str().unwrap())).await;
    }

    // A job's bookkeeping (its thumbnail, its ledger) ends just after its answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = scrape(&client, &metrics_address).await;
        if value_of(&after, "atelier_jobs_running") == Some(0.0) || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for model in ["core", "titan"] {
        let finished = format!(r#"atelier_jobs_finished_total{{model="{model}",outcome="delivered"}}"#);
        assert_eq!(value_of(&after, &finished), Some(1.0), "{finished} in {after}");
        let drawn = format!(
            r#"atelier_model_call_duration_seconds_count{{model="{model}",operation="invoke_model",outcome="answered"}}"#
        );
        assert_eq!(value_of(&after, &drawn), Some(1.0), "{drawn} in {after}");
        let bucket = format!(
            r#"atelier_model_call_duration_seconds_bucket{{le="+Inf",model="{model}",operation="invoke_model",outcome="answered"}}"#
        );
        assert_eq!(value_of(&after, &bucket), Some(1.0), "{bucket} in {after}");
    }
    // The safety classifier ran before the first image (the second prompt's verdict is remembered).
    let classified = format!(
        r#"atelier_model_call_duration_seconds_count{{model="{CLASSIFIER}",operation="classify",outcome="answered"}}"#
    );
    assert!(value_of(&after, &classified).is_some_and(|calls| calls >= 1.0), "{classified} in {after}");
    assert_eq!(value_of(&after, "atelier_spool_images"), Some(0.0), "{after}");
    assert_eq!(value_of(&after, "atelier_jobs_running"), Some(0.0), "{after}");
    assert!(!after.contains("atelier_store_errors_total{"), "the store never failed: {after}");
    assert!(!after.contains(PROMPT_WORDS), "a prompt reached a label: {after}");

    // The store breaks (its folder becomes a file): the next image waits in the spool, and
    // both the store's failures and the spool's depth show.
    let store = folder.path().join("atelier-data");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, "not a folder").unwrap();
    let response = client
        .post(format!("http://{address}/api/generate"))
        .header("cookie", format!("atelier_csrf={CSRF_TOKEN}"))
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({"prompt": PROMPT, "model": "core"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    wait_until_done(&client, &format!("http://{address}{}", job["url"].as_str().unwrap())).await;
    let broken = scrape(&client, &metrics_address).await;
    let failed_puts = value_of(&broken, r#"atelier_store_errors_total{operation="put"}"#);
    assert!(failed_puts.is_some_and(|failures| failures >= 1.0), "{broken}");
    assert_eq!(value_of(&broken, "atelier_spool_images"), Some(1.0), "{broken}");
    assert!(value_of(&broken, "atelier_spool_bytes").is_some_and(|bytes| bytes > 0.0), "{broken}");
    let finished = r#"atelier_jobs_finished_total{model="core",outcome="delivered"}"#;
    assert_eq!(value_of(&broken, finished), Some(2.0), "{broken}");

    // Stop it, and read every line it wrote.
    let terminated = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let status = wait(child).await;
    assert!(status.success(), "atelier did not exit cleanly on SIGTERM: {status:?}");
    let log = log_reader.join().unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}")))
        .collect();
    assert!(lines.len() > 5, "{log}");
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line[field].as_str().is_some_and(|text| !text.is_empty()), "no {field}: {line}");
        }
        let level = line["level"].as_str().unwrap();
        if matches!(level, "INFO" | "WARN" | "ERROR") {
            assert!(!line.to_string().contains(PROMPT_WORDS), "prompt text in an {level} line: {line}");
        }
    }
    let listening = lines.iter().find(|line| line["message"].as_str().unwrap().contains("the web app is listening"));
    assert_eq!(listening.unwrap()["address"], address.as_str());
    let metrics_line = lines.iter().find(|line| line["message"].as_str().unwrap().contains("metrics are served"));
    assert_eq!(metrics_line.unwrap()["address"], metrics_address.as_str(), "{log}");

    // Every line of a job carries the job's id and its owner's, from the job's span.
    let kept: Vec<&Value> =
        lines.iter().filter(|line| line["message"].as_str().unwrap().starts_with("kept image")).collect();
    assert_eq!(kept.len(), 3, "{log}");
    for line in &kept {
        assert_eq!(line["level"], "INFO");
        assert!(line["job_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
        assert_eq!(line["user_id"], "local-operator", "{line}");
    }
    assert_ne!(kept[0]["job_id"], kept[1]["job_id"], "two jobs, two ids");
    assert_ne!(kept[1]["job_id"], kept[2]["job_id"], "two jobs, two ids");
    let answered: Vec<&Value> =
        lines.iter().filter(|line| line["message"].as_str().unwrap().ends_with(" answered")).collect();
    assert!(
        answered.iter().all(|line| line["job_id"].is_string() && line["user_id"] == "local-operator"),
        "{answered:?}"
    );
}

#[tokio::test]
async fn without_a_metrics_address_nothing_serves_metrics() {
    let folder = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = atelier(folder.path())
        .env("ATELIER_BIND", &address)
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "0")
        .env("ATELIER_ENGINE", "demo")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let client = reqwest::Client::new();
    wait_for_health(&client, &address).await;
    let public = client.get(format!("http://{address}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let terminated = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    assert!(wait(child).await.success());
    let log = log_reader.join().unwrap();
    // Text lines for people by default, and no metrics listener.
    assert!(log.contains("the web app is listening"), "{log}");
    assert!(!log.contains("metrics are served"), "{log}");
    assert!(log.lines().all(|line| serde_json::from_str::<Value>(line).is_err()), "{log}");
}

#[test]
fn a_taken_metrics_port_or_a_bad_log_format_stops_the_start_with_one_line() {
    let folder = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_address = taken.local_addr().unwrap().to_string();
    let output = atelier(folder.path())
        .env("ATELIER_BIND", format!("127.0.0.1:{}", free_port()))
        .env("ATELIER_METRICS_ADDRESS", &taken_address)
        .env("ATELIER_ENGINE", "demo")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("ATELIER_METRICS_ADDRESS={taken_address}: the address is already in use")),
        "{stderr}"
    );

    let output = atelier(folder.path()).env("ATELIER_LOG_FORMAT", "xml").arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim(), "error: ATELIER_LOG_FORMAT=xml: is not a log format; use text or json");
}

#[tokio::test]
async fn the_job_lines_depth_shows_while_a_job_runs_and_another_waits() {
    use crate::support::TestApp;
    use crate::support::bedrock::{Fault, FaultMode, Operation};

    let stand_in = BedrockStandIn::start().await;
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let sdk_config = stand_in.sdk_config().await;
    let settings = [
        ("ATELIER_ENGINE", "bedrock"),
        ("ATELIER_METRICS_ADDRESS", metrics_address.as_str()),
        // A hung image call is given up after this and tried again: long enough to look at
        // the line while it hangs, short enough for a quick test.
        ("ATELIER_MODEL_TIMEOUT_SECONDS", "3"),
        ("ATELIER_USER_RUNNING_JOBS", "1"),
    ];
    let app = TestApp::spawn_with_aws(&settings, sdk_config).await;
    let client = reqwest::Client::new();
    // Every image call hangs until the stand-in is calmed.
    stand_in.storm(FaultMode { operation: Operation::InvokeModel, fault: Fault::Hang, one_in: 1 });
    let generate = |seed: u32| {
        let request = app
            .client
            .post(app.url("/api/generate"))
            .header("x-csrf-token", CSRF_TOKEN)
            .json(&json!({"prompt": "a kite over a salt flat", "model": "titan", "size": "512x512", "seed": seed}))
            .send();
        tokio::spawn(request)
    };

    let first = generate(1);
    let running =
        scrape_until(&client, &metrics_address, |text| value_of(text, "atelier_jobs_running") == Some(1.0)).await;
    assert_eq!(value_of(&running, "atelier_jobs_waiting"), Some(0.0), "{running}");
    // The same person's second job waits for the first (one running job each).
    let second = generate(2);
    let both =
        scrape_until(&client, &metrics_address, |text| value_of(text, "atelier_jobs_waiting") == Some(1.0)).await;
    assert_eq!(value_of(&both, "atelier_jobs_running"), Some(1.0), "{both}");

    stand_in.calm();
    for job in [first, second] {
        let response = job.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        wait_until_done(&app.client, &app.url(job["url"].as_str().unwrap())).await;
    }
    let done = scrape_until(&client, &metrics_address, |text| {
        value_of(text, "atelier_jobs_running") == Some(0.0) && value_of(text, "atelier_jobs_waiting") == Some(0.0)
    })
    .await;
    let finished = r#"atelier_jobs_finished_total{model="titan",outcome="delivered"}"#;
    assert_eq!(value_of(&done, finished), Some(2.0), "{done}");
    // One call a job: the first job's hung attempt and its retry are timed as one call.
    let drawn =
        r#"atelier_model_call_duration_seconds_count{model="titan",operation="invoke_model",outcome="answered"}"#;
    assert_eq!(value_of(&done, drawn), Some(2.0), "{done}");
    app.stop().await;
}

/// Scrapes until `wanted` holds of the text (a bounded number of times), and returns that text.
async fn scrape_until(client: &reqwest::Client, metrics_address: &str, wanted: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..800 {
        text = scrape(client, metrics_address).await;
        if wanted(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the metrics never showed what was awaited: {text}");
}

/// Waits (boundedly) until the web app answers `/healthz`.
async fn wait_for_health(client: &reqwest::Client, address: &str) {
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("http://{address}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("atelier never answered /healthz on {address}");
}

/// `GET /metrics` on the metrics listener, checked to be OpenMetrics text.
async fn scrape(client: &reqwest::Client, metrics_address: &str) -> String {
    let response = client.get(format!("http://{metrics_address}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "the content type scrapers expect"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of the series `series` (a name with its labels, as rendered) in `text`.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.split(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Waits for the process off the async runtime, so the stand-in in this process keeps answering.
async fn wait(mut child: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap()
}

#[tokio::test]
async fn discords_rate_limits_are_counted_by_route_without_ids_or_tokens() {
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let bot = crate::discord_bot::Bot::start(&[("ATELIER_METRICS_ADDRESS", &metrics_address)]).await;
    let prompt = crate::discord_bot::option("prompt", "a quiet harbour");
    let interaction = bot.command(3_000_000_000_000_000_077, "imagine", json!([prompt]), &[]).await;
    // Two of the answer's edits are refused with 429; the bot waits each out and sends again.
    bot.discord.fail_next("PATCH", "/messages/@original", 429, 2);
    bot.result_of(&interaction).await;
    assert_eq!(bot.discord.requests().iter().filter(|request| request.status == 429).count(), 2);

    let text = scrape(&reqwest::Client::new(), &metrics_address).await;
    let series =
        r#"atelier_discord_rate_limit_wait_seconds_count{route="/api/v10/webhooks/:id/:token/messages/@original"}"#;
    assert_eq!(value_of(&text, series), Some(2.0), "{series} in {text}");
    let waited = text.lines().filter(|line| line.starts_with("atelier_discord_rate_limit_wait_seconds_count")).count();
    assert_eq!(waited, 1, "one route, with no id or token of its own: {text}");
}

/// Reads an API job (as the local operator) until it is done.
async fn wait_until_done(client: &reqwest::Client, url: &str) {
    for _ in 0..1_200 {
        let job: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        match job["state"].as_str() {
            Some("done") => return,
            Some("failed" | "cancelled") => panic!("the job did not make its image: {job}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the job at {url} did not end within a minute");
}
