//! Bedrock fault storms through the whole service: the web app's JSON API and chat pages,
//! and the Discord bot's chat threads, with the Bedrock engine on the stand-in switched into
//! fault modes at run time (throttling, 5xx errors, slow answers, a model that hangs, chat
//! streams that break off). Every job must end with the images or a clear "busy, try again",
//! every delivered image must be in the store once, and the daily quota must count only
//! what was delivered. Each scenario records a row of the fault table.
//!
//! Timeouts are set short through the settings (three seconds a model attempt, two seconds of
//! silence in a chat stream: short, yet far beyond what the stand-in takes on a busy machine),
//! so the storms take seconds; waits for outcomes have generous limits and nothing asserts
//! how long anything took.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::{Value, json};

use crate::support::bedrock::{AwsError, BedrockStandIn, Behaviour, Fault, FaultMode, Operation};
use crate::support::discord::DiscordStandIn;
use crate::support::faults::FaultRow;
use crate::support::{CSRF_TOKEN, TestApp};

/// The settings every scenario runs with: short model timeouts, so a hang costs seconds, and
/// job limits that let a burst from one person queue up rather than be turned away.
const SETTINGS: &[(&str, &str)] = &[
    ("ATELIER_ENGINE", "bedrock"),
    ("ATELIER_MODEL_TIMEOUT_SECONDS", "3"),
    ("ATELIER_CHAT_IDLE_TIMEOUT_SECONDS", "2"),
    ("ATELIER_MAX_RUNNING_JOBS", "4"),
    ("ATELIER_USER_RUNNING_JOBS", "4"),
    ("ATELIER_USER_QUEUED_JOBS", "32"),
    ("ATELIER_DAILY_IMAGE_QUOTA", "100"),
];

/// One prompt for every job, so the safety verdict is cached after the first job and the
/// storms reach the image calls (the scenario that hangs the classifier uses another).
const PROMPT: &str = "a lighthouse in a storm, oil painting";

/// How long a person is waited for before their job counts as lost: far beyond the longest
/// bounded wait (a queue of jobs each given up after the six-second operation timeout).
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);

/// Jobs in flight at once in a burst: more than the four that run, so jobs also queue.
const BURST_IN_FLIGHT: usize = 12;

/// What a person was told about one job.
#[derive(Debug, Clone)]
enum Answer {
    /// The images they asked for, by id.
    Images(Vec<String>),
    /// A clear "busy, try again" (HTTP 429 at admission, or a job that failed as `busy`),
    /// with its message.
    Busy(String),
    /// Anything else: a failure on our side, no answer in time, a broken connection.
    Unclear(String),
}

impl Answer {
    fn is_images(&self) -> bool {
        matches!(self, Self::Images(_))
    }

    fn busy_message(&self) -> Option<&str> {
        match self {
            Self::Busy(message) => Some(message),
            _ => None,
        }
    }
}

/// Atelier on the Bedrock stand-in, served on loopback.
struct Rig {
    stand_in: BedrockStandIn,
    app: TestApp,
}

impl Rig {
    async fn start() -> Self {
        let stand_in = BedrockStandIn::start().await;
        let app = TestApp::spawn_with_aws(SETTINGS, stand_in.sdk_config().await).await;
        Self { stand_in, app }
    }

    /// One generation through `POST /api/generate`, as the local operator: the job it answers
    /// with at once, followed until it ends.
    async fn generate(&self, prompt: &str, number: usize) -> Answer {
        let body = json!({ "prompt": prompt, "model": "titan", "size": "512x512", "seed": number });
        let followed = async {
            let response = self
                .app
                .client
                .post(self.app.url("/api/generate"))
                .header("x-csrf-token", CSRF_TOKEN)
                .json(&body)
                .send()
                .await
                .map_err(|error| format!("job {number}: {error}"))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let mut answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == StatusCode::ACCEPTED {
                // Read the job until it ends (no request here waits on the model).
                let url = self.app.url(answer["url"].as_str().unwrap_or_default());
                loop {
                    let read =
                        self.app.client.get(&url).send().await.map_err(|error| format!("job {number}: {error}"))?;
                    answer = read.json().await.map_err(|error| format!("job {number}: {error}"))?;
                    if matches!(answer["state"].as_str(), Some("done" | "failed" | "cancelled")) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Ok::<_, String>((status, text, answer))
        };
        let (status, text, answer) = match tokio::time::timeout(ANSWER_DEADLINE, followed).await {
            Err(_) => return Answer::Unclear(format!("job {number}: no answer at all")),
            Ok(Err(unclear)) => return Answer::Unclear(unclear),
            Ok(Ok(answered)) => answered,
        };
        // A refusal at admission is the answer itself; a job's ends are in its `error`.
        let error = if status == StatusCode::ACCEPTED { &answer["error"] } else { &answer };
        let message = error["message"].as_str().unwrap_or_default().to_string();
        let busy = error["error"] == "busy" && message.to_lowercase().contains("try again");
        match (status, answer["state"].as_str()) {
            (StatusCode::ACCEPTED, Some("done")) => Answer::Images(
                answer["images"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|image| image["id"].as_str().map(String::from))
                    .collect(),
            ),
            (StatusCode::ACCEPTED, Some("failed")) | (StatusCode::TOO_MANY_REQUESTS, _) if busy => {
                Answer::Busy(message)
            }
            _ => Answer::Unclear(format!("job {number}: {status} {text} {answer}")),
        }
    }

    /// A burst of jobs, numbered `numbers`, with [`BURST_IN_FLIGHT`] in flight at once.
    async fn burst(&self, numbers: std::ops::Range<usize>) -> Vec<Answer> {
        futures::stream::iter(numbers)
            .map(|number| self.generate(PROMPT, number))
            .buffer_unordered(BURST_IN_FLIGHT)
            .collect()
            .await
    }

    /// The person's usage from `GET /api/me`.
    async fn usage(&self) -> Value {
        let me: Value = self.app.get("/api/me").await.json().await.unwrap();
        me["usage"].clone()
    }

    /// The daily quota counts exactly the images delivered (every failed job's share came
    /// back), and no job is left running or waiting.
    async fn check_quota(&self, answers: &[Answer]) {
        let delivered: usize =
            answers.iter().map(|answer| if let Answer::Images(ids) = answer { ids.len() } else { 0 }).sum();
        // A job's bookkeeping follows its answer by a moment (the person hears first), so the
        // ledger is given a few seconds to settle before it is read for the last time.
        let mut usage = self.usage().await;
        for _ in 0..200 {
            if (usage["running"].as_u64(), usage["queued"].as_u64()) == (Some(0), Some(0)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            usage = self.usage().await;
        }
        assert_eq!(usage["images_today"], delivered, "only delivered images are charged: {usage}");
        assert_eq!((usage["running"].as_u64(), usage["queued"].as_u64()), (Some(0), Some(0)), "{usage}");
    }

    fn store(&self) -> PathBuf {
        self.app.data.path().join("store")
    }
}

fn every(operation: Operation, fault: Fault) -> FaultMode {
    FaultMode { operation, fault, one_in: 1 }
}

fn files_under(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { files_under(&path) } else { vec![path] }
        })
        .collect()
}

/// Counts one scenario: a job is delivered when its person got images or a clear "busy, try
/// again"; a delivered image is stored when the store holds its record, its image and its
/// thumbnail exactly once. An image in the store twice, or one stored that nobody was given
/// (a failed job that left something behind), is a duplicate; a job with no clear answer,
/// or a delivered image missing from the store, is lost.
fn tally(scenario: &str, answers: &[Answer], store: &Path) -> FaultRow {
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    let mut images: BTreeMap<String, usize> = BTreeMap::new();
    let mut thumbnails: BTreeMap<String, usize> = BTreeMap::new();
    for path in files_under(store) {
        let text = path.to_string_lossy().to_string();
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().to_string()).unwrap_or_default();
        if text.contains("/records/") {
            let record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            *records.entry(record["id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        } else if text.contains("/images/") {
            *images.entry(stem).or_default() += 1;
        } else if text.contains("/thumbnails/") {
            *thumbnails.entry(stem).or_default() += 1;
        }
    }
    let delivered_ids: Vec<&String> = answers
        .iter()
        .flat_map(|answer| if let Answer::Images(ids) = answer { ids.iter().collect() } else { vec![] })
        .collect();
    let distinct: BTreeSet<&String> = delivered_ids.iter().copied().collect();
    let once = |counts: &BTreeMap<String, usize>, id: &String| counts.get(id) == Some(&1);
    let stored = distinct.iter().filter(|id| once(&records, id) && once(&images, id) && once(&thumbnails, id)).count();
    let unclear = answers.iter().filter(|answer| matches!(answer, Answer::Unclear(_))).count();
    let duplicates = (delivered_ids.len() - distinct.len())
        + [&records, &images, &thumbnails]
            .iter()
            .map(|counts| {
                counts.values().map(|count| count.saturating_sub(1)).sum::<usize>()
                    + counts.keys().filter(|id| !distinct.contains(id)).count()
            })
            .sum::<usize>();
    for answer in answers {
        if let Answer::Unclear(what) = answer {
            println!("{scenario}: no clear answer: {what}");
        }
    }
    FaultRow {
        scenario: scenario.to_string(),
        jobs_sent: answers.len(),
        jobs_delivered: answers.len() - unclear,
        images_stored: stored,
        duplicates,
        lost: unclear + (distinct.len() - stored),
    }
}

#[tokio::test]
async fn bedrock_faults_a_throttling_storm_is_retried_or_answered_busy_and_refunded() {
    let rig = Rig::start().await;
    // The first job runs calm; it also caches the prompt's safety verdict.
    let mut answers = vec![rig.generate(PROMPT, 0).await];
    assert!(answers[0].is_images(), "{answers:?}");

    // Every other image call is throttled: the SDK's retries carry the jobs through.
    rig.stand_in.storm(FaultMode {
        operation: Operation::InvokeModel,
        fault: Fault::Error(AwsError::Throttling),
        one_in: 2,
    });
    let partial = rig.burst(1..13).await;
    assert!(rig.stand_in.faults_dealt(Operation::InvokeModel) >= 6, "the storm throttled every other call");
    assert!(partial.iter().filter(|answer| answer.is_images()).count() >= 6, "retries carried jobs: {partial:?}");
    answers.extend(partial);
    rig.stand_in.calm();

    // Every call throttled: each job runs out of attempts and its person hears "busy".
    let before = rig.stand_in.faults_dealt(Operation::InvokeModel);
    rig.stand_in.storm(every(Operation::InvokeModel, Fault::Error(AwsError::Throttling)));
    let total = rig.burst(13..19).await;
    for answer in &total {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("busy right now"), "{message}");
    }
    let attempts = rig.stand_in.faults_dealt(Operation::InvokeModel) - before;
    assert!((2 * 6..=4 * 6).contains(&attempts), "each job was retried, at most four attempts: {attempts}");
    answers.extend(total);
    rig.stand_in.calm();

    // A model still loading (429 ModelNotReadyException) is retried, then "starting up".
    rig.stand_in.storm(every(Operation::InvokeModel, Fault::Error(AwsError::ModelNotReady)));
    let loading = rig.burst(19..22).await;
    for answer in &loading {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("starting up"), "{message}");
    }
    answers.extend(loading);
    rig.stand_in.calm();

    // Once the storm is over, jobs run again: no slot of the job line was left taken.
    let after = rig.generate(PROMPT, 22).await;
    assert!(after.is_images(), "{after:?}");
    answers.push(after);
    rig.check_quota(&answers).await;
    tally("Bedrock throttling storm (429 Throttling, ModelNotReady)", &answers, &rig.store()).check_and_record();
}

#[tokio::test]
async fn bedrock_faults_server_errors_are_retried_or_answered_busy_and_refunded() {
    let rig = Rig::start().await;
    let mut answers = vec![rig.generate(PROMPT, 0).await];
    assert!(answers[0].is_images(), "{answers:?}");

    // 500s and 503s on a share of the calls: retried.
    rig.stand_in.storm(FaultMode {
        operation: Operation::InvokeModel,
        fault: Fault::Error(AwsError::InternalServer),
        one_in: 2,
    });
    rig.stand_in.storm(FaultMode {
        operation: Operation::InvokeModel,
        fault: Fault::Error(AwsError::ServiceUnavailable),
        one_in: 3,
    });
    let partial = rig.burst(1..13).await;
    assert!(rig.stand_in.faults_dealt(Operation::InvokeModel) >= 6);
    assert!(partial.iter().filter(|answer| answer.is_images()).count() >= 6, "retries carried jobs: {partial:?}");
    answers.extend(partial);
    rig.stand_in.calm();

    // Bedrock down (every call 503): "a problem on its side; try again".
    rig.stand_in.storm(every(Operation::InvokeModel, Fault::Error(AwsError::ServiceUnavailable)));
    let down = rig.burst(13..19).await;
    for answer in &down {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("had a problem on its side"), "{message}");
    }
    answers.extend(down);
    rig.stand_in.calm();

    // The model's own time limit (408 ModelTimeoutException) is not retried: a retry would
    // most likely take as long again. Its person hears "took too long; try again".
    let before = rig.stand_in.faults_dealt(Operation::InvokeModel);
    rig.stand_in.storm(every(Operation::InvokeModel, Fault::Error(AwsError::ModelTimeout)));
    let timed_out = rig.burst(19..22).await;
    for answer in &timed_out {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("took too long"), "{message}");
    }
    assert_eq!(rig.stand_in.faults_dealt(Operation::InvokeModel) - before, 3, "one attempt each");
    answers.extend(timed_out);
    rig.stand_in.calm();

    let after = rig.generate(PROMPT, 22).await;
    assert!(after.is_images(), "{after:?}");
    answers.push(after);
    rig.check_quota(&answers).await;
    tally("Bedrock 5xx errors (500, 503) and 408 ModelTimeout", &answers, &rig.store()).check_and_record();
}

#[tokio::test]
async fn bedrock_faults_slow_answers_time_out_and_are_retried_or_answered_busy() {
    let rig = Rig::start().await;
    let mut answers = vec![rig.generate(PROMPT, 0).await];
    assert!(answers[0].is_images(), "{answers:?}");

    // Every other answer comes after ten seconds, long past the three-second attempt timeout:
    // the attempt is given up and tried again.
    let slow = Fault::Slow(Duration::from_secs(10));
    rig.stand_in.storm(FaultMode { operation: Operation::InvokeModel, fault: slow, one_in: 2 });
    let partial = rig.burst(1..9).await;
    assert!(rig.stand_in.faults_dealt(Operation::InvokeModel) >= 4);
    assert!(partial.iter().filter(|answer| answer.is_images()).count() >= 4, "retries carried jobs: {partial:?}");
    answers.extend(partial);
    rig.stand_in.calm();

    // Every answer slow: each job is given up after the operation timeout (two attempts' worth).
    rig.stand_in.storm(every(Operation::InvokeModel, slow));
    let too_slow = rig.burst(9..15).await;
    for answer in &too_slow {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("took too long to answer"), "{message}");
    }
    answers.extend(too_slow);
    rig.stand_in.calm();

    let after = rig.generate(PROMPT, 15).await;
    assert!(after.is_images(), "{after:?}");
    answers.push(after);
    rig.check_quota(&answers).await;
    tally("Bedrock slow answers past the attempt timeout", &answers, &rig.store()).check_and_record();
}

#[tokio::test]
async fn bedrock_faults_a_model_that_hangs_is_given_up_and_answered_busy() {
    let rig = Rig::start().await;
    let mut answers = vec![rig.generate(PROMPT, 0).await];
    assert!(answers[0].is_images(), "{answers:?}");

    // The image model takes every request and never answers.
    rig.stand_in.storm(every(Operation::InvokeModel, Fault::Hang));
    let hung = rig.burst(1..9).await;
    for answer in &hung {
        let message = answer.busy_message().unwrap_or_else(|| panic!("not a busy answer: {answer:?}"));
        assert!(message.contains("took too long to answer"), "{message}");
    }
    answers.extend(hung);
    rig.stand_in.calm();

    // The safety classifier hangs too (a new prompt, so no cached verdict): the job is given
    // up before any image call and its person hears the same.
    rig.stand_in.storm(every(Operation::Converse, Fault::Hang));
    let image_calls = rig.stand_in.calls_to(Operation::InvokeModel);
    let unchecked = rig.generate("a quiet harbour at dawn", 9).await;
    let message = unchecked.busy_message().unwrap_or_else(|| panic!("not a busy answer: {unchecked:?}"));
    assert!(message.to_lowercase().contains("the safety check took too long to answer"), "{message}");
    assert_eq!(rig.stand_in.calls_to(Operation::InvokeModel), image_calls, "nothing was drawn unchecked");
    answers.push(unchecked);
    rig.stand_in.calm();

    // Nothing stays stuck: the next jobs run.
    let after = rig.burst(10..14).await;
    assert!(after.iter().all(Answer::is_images), "{after:?}");
    answers.extend(after);
    rig.check_quota(&answers).await;
    tally("Bedrock model that hangs (image model, then classifier)", &answers, &rig.store()).check_and_record();
}

/// One server-sent event of the chat page.
#[derive(Debug, Clone)]
struct ServerEvent {
    name: String,
    data: Value,
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
            ServerEvent { name, data: serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null) }
        })
        .collect()
}

/// Sends a chat message as the page's script does, and reads every event until the end.
async fn chat_message(app: &TestApp, path: &str, message: &str) -> Vec<ServerEvent> {
    let form = Form::new().text("mode", "assistant").text("message", message.to_string());
    let request = app
        .client
        .post(app.url(path))
        .header("accept", "text/event-stream")
        .header("x-csrf-token", CSRF_TOKEN)
        .multipart(form)
        .send();
    let response = tokio::time::timeout(ANSWER_DEADLINE, request).await.unwrap().unwrap();
    let body = tokio::time::timeout(ANSWER_DEADLINE, response.text()).await.unwrap().unwrap();
    parse_events(&body)
}

fn streamed_text(events: &[ServerEvent]) -> String {
    events.iter().filter(|event| event.name == "text").filter_map(|event| event.data.as_str()).collect()
}

/// The turns a conversation's page shows (as the store keeps them): speaker and text.
async fn kept_turns(app: &TestApp, url: &str) -> Vec<(String, String)> {
    let (status, page) = app.get_text(url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut turns = Vec::new();
    for (speaker, marker) in [("user", "class=\"turn user\">"), ("assistant", "data-done=\"true\">")] {
        for (position, _) in page.match_indices(marker) {
            let text = &page[position + marker.len()..];
            let text = text.split("</div>").next().unwrap_or_default().to_string();
            turns.push((position, speaker.to_string(), text));
        }
    }
    turns.sort();
    turns.into_iter().map(|(_, speaker, text)| (speaker, text)).collect()
}

#[tokio::test]
async fn bedrock_faults_a_chat_reply_broken_off_mid_stream_shows_what_came_and_keeps_the_conversation_whole() {
    let rig = Rig::start().await;
    let app = &rig.app;
    let mut sent = 0;
    let mut delivered = 0;

    let first = chat_message(app, "/chat", "How do I paint a lighthouse?").await;
    sent += 1;
    assert_eq!(first.last().map(|event| event.name.as_str()), Some("done"), "{first:?}");
    delivered += 1;
    let url = first[0].data["url"].as_str().unwrap().to_string();
    let kept = kept_turns(app, &url).await;
    assert_eq!(kept.len(), 2, "{kept:?}");

    // Each way a stream can break off after some of the reply has been shown.
    // (what happens, the fault, what the person reads)
    let breaks = [
        (
            "an exception event",
            Fault::StreamException { after: 3, exception: "modelStreamErrorException" },
            "had a problem on its side",
        ),
        ("throttled mid-stream", Fault::StreamException { after: 2, exception: "throttlingException" }, "busy"),
        (
            "a 500 mid-stream",
            Fault::StreamException { after: 1, exception: "internalServerException" },
            "had a problem on its side",
        ),
        ("a dropped connection", Fault::StreamDrop { after: 3 }, "answer broke off"),
        ("silence mid-stream", Fault::StreamStall { after: 2 }, "stopped answering mid-reply"),
        ("silence from the start", Fault::StreamStall { after: 0 }, "did not start answering"),
    ];
    for (number, (what, fault, reads)) in breaks.into_iter().enumerate() {
        let question = format!("Broken question number {number}?");
        rig.stand_in.storm(every(Operation::ConverseStream, fault));
        let events = chat_message(app, &url, &question).await;
        rig.stand_in.calm();
        sent += 1;
        let last = events.last().unwrap_or_else(|| panic!("{what}: no events at all"));
        assert_eq!(last.name, "error", "{what}: the reply must not look finished: {events:?}");
        let message = last.data["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(message.contains(reads) && message.contains("try again"), "{what}: {message}");
        assert!(!events.iter().any(|event| event.name == "done"), "{what}: {events:?}");
        // What came before the break was shown as it came.
        let after = match fault {
            Fault::StreamException { after, .. } | Fault::StreamDrop { after } | Fault::StreamStall { after } => after,
            _ => 0,
        };
        let expected: String =
            format!("Stand-in reply to: {question}").split_inclusive(char::is_whitespace).take(after).collect();
        assert_eq!(streamed_text(&events), expected, "{what}");
        delivered += 1;
        // Nothing of the broken exchange was kept: the conversation is as it was.
        assert_eq!(kept_turns(app, &url).await, kept, "{what}");
    }

    // The JSON API's event stream says the same: the pieces that came, then a `busy` error
    // (the API keeps no conversation: the caller keeps the history it was last given).
    rig.stand_in.storm(every(Operation::ConverseStream, Fault::StreamDrop { after: 2 }));
    let response = app
        .client
        .post(app.url("/api/chat"))
        .header("accept", "text/event-stream")
        .header("x-csrf-token", CSRF_TOKEN)
        .json(&json!({ "message": "Broken question through the API?" }))
        .send();
    let response = tokio::time::timeout(ANSWER_DEADLINE, response).await.unwrap().unwrap();
    let events = parse_events(&tokio::time::timeout(ANSWER_DEADLINE, response.text()).await.unwrap().unwrap());
    rig.stand_in.calm();
    sent += 1;
    let pieces: String =
        events.iter().filter(|event| event.name == "text").filter_map(|event| event.data["text"].as_str()).collect();
    assert_eq!(pieces, "Stand-in reply ", "{events:?}");
    let last = events.last().unwrap_or_else(|| panic!("no events from the API"));
    assert_eq!((last.name.as_str(), &last.data["error"]), ("error", &json!("busy")), "{events:?}");
    assert!(last.data["message"].as_str().unwrap_or_default().contains("broke off; try again"), "{events:?}");
    delivered += 1;

    // A stream throttled before it starts is retried by the SDK and arrives whole.
    rig.stand_in.storm(FaultMode {
        operation: Operation::ConverseStream,
        fault: Fault::Error(AwsError::Throttling),
        one_in: 2,
    });
    let retried = chat_message(app, &url, "What about the sky?").await;
    rig.stand_in.calm();
    sent += 1;
    assert_eq!(retried.last().map(|event| event.name.as_str()), Some("done"), "{retried:?}");
    assert_eq!(streamed_text(&retried), "Stand-in reply to: What about the sky?");
    delivered += 1;

    // The conversation goes on with exactly the exchanges that finished, each once, and
    // the model is sent that history and nothing of the broken ones.
    let last = chat_message(app, &url, "And the colours?").await;
    sent += 1;
    assert_eq!(last.last().map(|event| event.name.as_str()), Some("done"), "{last:?}");
    delivered += 1;
    let turns = kept_turns(app, &url).await;
    let said: Vec<&str> =
        turns.iter().filter(|(speaker, _)| speaker == "user").map(|(_, text)| text.as_str()).collect();
    assert_eq!(said, ["How do I paint a lighthouse?", "What about the sky?", "And the colours?"]);
    let history = rig
        .stand_in
        .requests()
        .into_iter()
        .rev()
        .find(|call| call.operation == Operation::ConverseStream)
        .map(|call| call.body["messages"].to_string())
        .unwrap_or_default();
    assert!(!history.contains("Broken question"), "{history}");
    let duplicates = said.len() - said.iter().collect::<BTreeSet<_>>().len();
    let lost = sent - delivered;
    FaultRow {
        scenario: "Bedrock chat stream broken off mid-reply (web)".into(),
        jobs_sent: sent,
        jobs_delivered: delivered,
        images_stored: 0,
        duplicates,
        lost,
    }
    .check_and_record();
}

const PERSON: u64 = 3_000_000_000_000_000_011;

/// Waits until `probe` finds something, for at most a generous minute; on a timeout the
/// panic shows what the thread holds.
async fn eventually<T>(what: &str, discord: &DiscordStandIn, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        if tokio::time::Instant::now() >= deadline {
            let threads = discord.threads();
            let shown: Vec<Vec<Value>> = threads
                .iter()
                .filter_map(|thread| thread["id"].as_str())
                .map(|id| discord.channel_messages(id).into_iter().map(|message| message["content"].clone()).collect())
                .collect();
            panic!("timed out waiting for {what}; the threads show {shown:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The thread's text as Discord shows it once the bot has stopped typing in it, when it
/// contains `expected`.
fn thread_text_with(discord: &DiscordStandIn, thread_id: &str, expected: &str) -> Option<String> {
    let text: String = discord
        .channel_messages(thread_id)
        .iter()
        .filter_map(|message| message["content"].as_str().map(String::from))
        .collect::<Vec<_>>()
        .join("\n");
    (text.contains(expected) && !text.contains('▌')).then_some(text)
}

#[tokio::test]
async fn bedrock_faults_a_chat_reply_broken_off_in_a_discord_thread_is_marked_cut_off_and_not_kept() {
    let discord = DiscordStandIn::start().await;
    let stand_in = BedrockStandIn::start().await;
    let (api, gateway) = (discord.url(), discord.gateway_url());
    let mut settings: Vec<(&str, &str)> = SETTINGS.to_vec();
    settings.extend([
        ("ATELIER_DISCORD_TOKEN", "stand-in-token"),
        ("ATELIER_DISCORD_APPLICATION_ID", crate::support::discord::APPLICATION_ID),
        ("ATELIER_DISCORD_API_URL", api.as_str()),
        ("ATELIER_DISCORD_GATEWAY_URL", gateway.as_str()),
        ("ATELIER_DISCORD_MESSAGE_CONTENT", "true"),
        ("ATELIER_PUBLIC_URL", "https://atelier.example"),
    ]);
    let _app = TestApp::spawn_with_aws(&settings, stand_in.sdk_config().await).await;
    discord.wait_until_ready().await;
    let person = DiscordStandIn::user(PERSON, "person");

    stand_in.script(Behaviour::ChatReply("Paint it at dusk.".into()));
    let interaction = discord.slash_command(
        &person,
        "chat",
        json!([{ "name": "message", "type": 3, "value": "How do I paint a lighthouse?" }]),
        &[],
    );
    discord.dispatch_interaction(interaction).await;
    let thread = eventually("the chat thread", &discord, || discord.threads().pop()).await;
    let thread_id = thread["id"].as_str().unwrap().to_string();
    eventually("the first answer", &discord, || thread_text_with(&discord, &thread_id, "Paint it at dusk.")).await;
    let mut sent = 1;
    let mut delivered = 1;

    // The model breaks off after a few words: an exception event, then a dropped connection.
    for (number, fault) in
        [Fault::StreamException { after: 3, exception: "modelStreamErrorException" }, Fault::StreamDrop { after: 2 }]
            .into_iter()
            .enumerate()
    {
        stand_in.storm(every(Operation::ConverseStream, fault));
        let question = format!("Broken question number {number}?");
        discord.dispatch_message(discord.user_message(&thread_id, &person, &question)).await;
        sent += 1;
        let text = eventually(&format!("the answer marked as cut off ({fault:?})"), &discord, || {
            let text = thread_text_with(&discord, &thread_id, "The answer was cut off here")?;
            (text.matches("The answer was cut off here").count() == number + 1).then_some(text)
        })
        .await;
        stand_in.calm();
        assert!(text.contains("Stand-in reply"), "what came is shown: {text}");
        assert!(text.to_lowercase().contains("try again"), "{text}");
        delivered += 1;
    }

    // The next message finds only the finished exchange in its history.
    stand_in.script(Behaviour::ChatReply("Use a warm palette.".into()));
    discord.dispatch_message(discord.user_message(&thread_id, &person, "And the colours?")).await;
    sent += 1;
    eventually("the last answer", &discord, || thread_text_with(&discord, &thread_id, "Use a warm palette.")).await;
    delivered += 1;
    let history = stand_in
        .requests()
        .into_iter()
        .rev()
        .find(|call| call.operation == Operation::ConverseStream)
        .map(|call| call.body["messages"].clone())
        .unwrap_or_default();
    let texts: Vec<&str> =
        history.as_array().into_iter().flatten().filter_map(|message| message["content"][0]["text"].as_str()).collect();
    assert_eq!(texts, ["How do I paint a lighthouse?", "Paint it at dusk.", "And the colours?"], "{history}");
    FaultRow {
        scenario: "Bedrock chat stream broken off mid-reply (Discord thread)".into(),
        jobs_sent: sent,
        jobs_delivered: delivered,
        images_stored: 0,
        duplicates: texts.len() - texts.iter().collect::<BTreeSet<_>>().len(),
        lost: sent - delivered,
    }
    .check_and_record();
}
