//! The job line as people meet it: a waiting job shows a Cancel button that calls it back
//! for free, and a process stopped in the middle of a burst (SIGTERM, as Fargate stops a
//! task) leaves nobody without an answer: waiting jobs are told at once, running ones finish
//! in the grace time or are answered by the next process, and every quota ends up charged
//! only for what was delivered.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::discord_bot::{Bot, button, is_ephemeral, is_loading, option, shows_an_image};
use crate::support::atelier_on_stand_ins;
use crate::support::bedrock::{BedrockStandIn, Behaviour};
use crate::support::discord::DiscordStandIn;
use crate::support::faults::FaultRow;

const FIRST_USER: u64 = 4_000_000_000_000_000_001;

/// Polls `probe` until it yields something, for up to 60 seconds.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The person's ledger as the store rooted at `store` keeps it: images charged today and jobs
/// in progress. Everyone in these tests was admitted at least once, so it must be there.
fn ledger(store: &Path, user: u64) -> Value {
    let path = store.join(format!("users/discord-{user}/usage.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn jobs_a_waiting_job_shows_cancel_and_its_owner_calls_it_back_for_nothing() {
    let bot = Bot::start(&[("ATELIER_MAX_RUNNING_JOBS", "1")]).await;
    bot.bedrock.script(Behaviour::Delay(Duration::from_millis(1_500)));
    let first = bot.command(FIRST_USER, "imagine", json!([option("prompt", "a slow harbour")]), &[]).await;
    bot.eventually("the first job running", || {
        bot.discord.interaction_original(&first).filter(|message| !message_text(message).contains("Queued"))
    })
    .await;
    let second_user = FIRST_USER + 1;
    let second = bot.command(second_user, "imagine", json!([option("prompt", "a second harbour")]), &[]).await;
    let waiting = bot
        .eventually("the second job waiting with a Cancel button", || {
            bot.discord.interaction_original(&second).filter(|message| {
                message_text(message).contains("Queued") && crate::discord_bot::button_ids(message).len() == 1
            })
        })
        .await;
    let cancel = button(&waiting, "cancel");

    // Someone else's press changes nothing.
    let stranger = bot.press(FIRST_USER + 2, &cancel, &waiting).await;
    let refused = bot.private_answer(&stranger).await;
    assert!(message_text(&refused).contains("Only the person who asked"), "{refused:#}");

    let pressed = bot.press(second_user, &cancel, &waiting).await;
    let told = bot.private_answer(&pressed).await;
    assert!(message_text(&told).contains("Cancelled"), "{told:#}");
    let answer = bot.private_answer(&second).await;
    assert!(message_text(&answer).contains("nothing was charged"), "{answer:#}");
    bot.result_of(&first).await;
    assert_eq!(bot.image_calls(), 1, "the cancelled job never reached the model");
    let ledger = ledger(&bot.app.data.path().join("store"), second_user);
    assert_eq!(ledger["images"], 0, "{ledger}");
    assert_eq!(ledger["jobs"], json!([]), "{ledger}");
}

fn message_text(message: &Value) -> String {
    message["content"].as_str().unwrap_or_default().to_string()
}

/// `atelier` as a process, with the bot on the Discord stand-in and Bedrock on its stand-in.
fn start_atelier(folder: &Path, discord: &DiscordStandIn, bedrock: &BedrockStandIn, grace: &str) -> Child {
    atelier_on_stand_ins(folder, discord, bedrock)
        .env("ATELIER_BIND", format!("127.0.0.1:{}", crate::support::free_port()))
        .env("ATELIER_PUBLIC_URL", "https://atelier.example")
        .env("ATELIER_MAX_RUNNING_JOBS", "2")
        .env("ATELIER_SHUTDOWN_DRAIN_SECONDS", "1")
        .env("ATELIER_SHUTDOWN_GRACE_SECONDS", grace)
        .env("ATELIER_HEARTBEAT_SECONDS", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How the first process is stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM, as Fargate stops a task: a clean stop.
    Terminate,
    /// SIGKILL, as a crash or an out-of-memory kill: nothing is cleaned up.
    Kill,
}

async fn stop(child: Child, how: Stop) -> String {
    let signal = if how == Stop::Kill { "-KILL" } else { "-TERM" };
    let sent = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    if how == Stop::Terminate {
        assert!(output.status.success(), "atelier did not exit cleanly on SIGTERM: {:?}\n{log}", output.status);
    }
    log
}

/// The final answers an interaction got: its original response once it is no longer a
/// placeholder or a progress line, and its private follow-ups.
fn final_answers(discord: &DiscordStandIn, interaction: &str) -> Vec<Value> {
    let mut answers: Vec<Value> = discord.interaction_followups(interaction).into_iter().filter(is_ephemeral).collect();
    if let Some(original) = discord.interaction_original(interaction) {
        let text = message_text(&original);
        let in_progress = is_loading(&original)
            || ["Queued", "Checking", "Generating", "Saving"].iter().any(|stage| text.contains(stage));
        if !in_progress {
            answers.push(original);
        }
    }
    answers
}

/// Sends a burst of `/imagine` from different people, stops the process while two run and
/// the rest wait, then starts a new process on the same store.
async fn stopped_during_a_burst(scenario: &str, how: Stop, model_delay: Duration) -> (FaultRow, Vec<Value>) {
    let folder = tempfile::tempdir().unwrap();
    let discord = DiscordStandIn::start().await;
    let bedrock = BedrockStandIn::start().await;
    bedrock.script(Behaviour::Delay(model_delay));
    let first = start_atelier(folder.path(), &discord, &bedrock, "20");
    discord.wait_until_ready().await;

    let jobs = 6;
    let mut interactions = Vec::new();
    for number in 0..jobs {
        let user = DiscordStandIn::user(FIRST_USER + number, &format!("person{number}"));
        let interaction =
            discord.slash_command(&user, "imagine", json!([option("prompt", format!("harbour number {number}"))]), &[]);
        interactions.push(interaction["id"].as_str().unwrap().to_string());
        discord.dispatch_interaction(interaction).await;
    }
    eventually("two jobs running and the rest waiting", || {
        let queued = interactions
            .iter()
            .filter(|id| {
                discord.interaction_original(id).is_some_and(|message| message_text(&message).contains("Queued"))
            })
            .count();
        (queued == jobs as usize - 2 && bedrock.requests().len() >= 2).then_some(())
    })
    .await;
    let first_log = stop(first, how).await;

    // The next process answers what the stopped one left behind.
    let second = start_atelier(folder.path(), &discord, &bedrock, "20");
    eventually("every job answered", || {
        let answers: Vec<Vec<Value>> = interactions.iter().map(|id| final_answers(&discord, id)).collect();
        answers.iter().all(|answers| !answers.is_empty()).then_some(())
    })
    .await;
    // A moment for any second answer to show up before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answered: Vec<Vec<Value>> = interactions.iter().map(|id| final_answers(&discord, id)).collect();
    let _ = stop(second, Stop::Terminate).await;

    let delivered_images: Vec<&Value> = answered.iter().flatten().filter(|message| shows_an_image(message)).collect();
    let stored = std::fs::read_dir(folder.path().join("atelier-data/users"))
        .map(|people| {
            people
                .filter_map(Result::ok)
                .map(|person| {
                    std::fs::read_dir(person.path().join("records")).map(|records| records.count()).unwrap_or(0)
                })
                .sum::<usize>()
        })
        .unwrap_or(0);
    let mut messages = Vec::new();
    for (number, answers) in answered.iter().enumerate() {
        let user = FIRST_USER + number as u64;
        let ledger = ledger(&folder.path().join("atelier-data"), user);
        let delivered = answers.iter().filter(|message| shows_an_image(message)).count() as u64;
        assert_eq!(ledger["images"], json!(delivered), "person {number} is charged only for what they got: {ledger}");
        assert_eq!(ledger["jobs"], json!([]), "nothing of person {number}'s is left in progress: {ledger}");
        messages.extend(answers.iter().cloned());
    }
    let leftovers: Vec<_> = std::fs::read_dir(folder.path().join("atelier-data/jobs"))
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "job records left behind: {leftovers:?}\n{first_log}");
    let row = FaultRow {
        scenario: scenario.into(),
        jobs_sent: jobs as usize,
        jobs_delivered: answered.iter().filter(|answers| !answers.is_empty()).count(),
        images_stored: stored,
        duplicates: answered.iter().map(|answers| answers.len().saturating_sub(1)).sum::<usize>()
            + stored.saturating_sub(delivered_images.len()),
        lost: answered.iter().filter(|answers| answers.is_empty()).count()
            + delivered_images.len().saturating_sub(stored),
    };
    (row, messages)
}

#[tokio::test]
async fn jobs_sigterm_mid_burst_running_jobs_finish_in_the_grace_time_and_waiting_ones_are_told() {
    let (row, messages) = stopped_during_a_burst(
        "SIGTERM mid-burst: 2 running finish in the grace time, 4 waiting told",
        Stop::Terminate,
        Duration::from_millis(700),
    )
    .await;
    row.check_and_record();
    let texts: Vec<String> = messages.iter().map(message_text).collect();
    assert_eq!(row.images_stored, 2, "the two running jobs finished: {texts:#?}");
    let told = texts.iter().filter(|text| text.contains("restarting") && text.contains("nothing was charged")).count();
    assert_eq!(told, 4, "{texts:#?}");
}

#[tokio::test]
async fn jobs_killed_mid_burst_then_the_next_start_answers_and_refunds_every_interrupted_job() {
    let (row, messages) = stopped_during_a_burst(
        "SIGKILL mid-burst, restart: all 6 answered and refunded by the next start",
        Stop::Kill,
        Duration::from_millis(2_500),
    )
    .await;
    row.check_and_record();
    assert_eq!(row.images_stored, 0, "{messages:#?}");
    for message in &messages {
        assert!(message_text(message).contains("Atelier restarted before this was finished"), "{message:#}");
        // Asked again with one press: the request was kept with the job.
        button(message, "imagine");
    }
    assert_eq!(messages.len(), 6);
}

#[tokio::test]
async fn jobs_an_api_caller_answered_at_once_cancels_a_waiting_job_and_a_drawn_image_is_kept() {
    let bedrock = BedrockStandIn::start().await;
    bedrock.script(Behaviour::Delay(Duration::from_millis(1_500)));
    let app = crate::support::TestApp::spawn_with_aws(
        &[("ATELIER_ENGINE", "bedrock"), ("ATELIER_MAX_RUNNING_JOBS", "1"), ("ATELIER_USER_RUNNING_JOBS", "2")],
        bedrock.sdk_config().await,
    )
    .await;
    // Both requests are answered at once, long before the model (1.5 s) answers: the first
    // job is being drawn, the second waits behind it.
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap();
    let ask = |prompt: &'static str| {
        let request = quick
            .post(app.url("/api/generate"))
            .header("cookie", format!("atelier_csrf={}", crate::support::CSRF_TOKEN))
            .header("x-csrf-token", crate::support::CSRF_TOKEN)
            .json(&json!({ "prompt": prompt }));
        async move { request.send().await.unwrap() }
    };
    let first = ask("a lighthouse drawn").await;
    assert_eq!(first.status(), reqwest::StatusCode::ACCEPTED);
    let second = ask("a lighthouse never drawn").await;
    assert_eq!(second.status(), reqwest::StatusCode::ACCEPTED);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["state"], "waiting", "{second}");
    assert_eq!(second["position"], 1, "{second}");

    // The waiting one is called back: it never runs and costs nothing.
    let url = app.url(second["url"].as_str().unwrap());
    let cancelled = app
        .client
        .post(format!("{url}/cancel"))
        .header("x-csrf-token", crate::support::CSRF_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), reqwest::StatusCode::ACCEPTED);
    let mut second = second;
    for _ in 0..400 {
        second = app.client.get(&url).send().await.unwrap().json().await.unwrap();
        if second["state"] != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(second["state"], "cancelled", "{second}");
    assert!(second["error"]["message"].as_str().unwrap().contains("nothing was charged"), "{second}");
    let first = app.api_job_outcome(first, None).await;
    assert_eq!(first["state"], "done", "{first}");

    let ledger_path = app.data.path().join("store/users/local-operator/usage.json");
    let settled = eventually("the first job kept and the second given back", || {
        let ledger: Value = serde_json::from_slice(&std::fs::read(&ledger_path).ok()?).ok()?;
        (ledger["jobs"] == json!([])).then_some(ledger)
    })
    .await;
    assert_eq!(settled["images"], 1, "only the drawn image is charged: {settled}");
    let records: Vec<_> = std::fs::read_dir(app.data.path().join("store/users/local-operator/records"))
        .map(|records| records.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert_eq!(records.len(), 1, "the image the model drew is in the gallery");
    assert_eq!(bedrock.calls_to(crate::support::bedrock::Operation::InvokeModel), 1, "the cancelled job never ran");
}
