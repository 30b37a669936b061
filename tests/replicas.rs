//! Scale-out: two replicas of Atelier, each with the bot connected to the same Discord
//! stand-in (so each receives every interaction and message, as replicas sharing a bot token
//! do) and sharing one store, drawing through one Bedrock stand-in. A burst of every kind of
//! interaction must be acknowledged once, answered once, run once and stored once, with the
//! replica Discord refuses (400, 40060) doing nothing at all.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::discord_bot::{button, is_ephemeral, is_loading, option, shows_an_image};
use crate::support::TestApp;
use crate::support::bedrock::{BedrockStandIn, Behaviour, Operation};
use crate::support::discord::{APPLICATION_ID, CHANNEL_ID, DiscordStandIn};
use crate::support::faults::FaultRow;

/// The people in the burst: ids from here up.
const FIRST_PERSON: u64 = 3_100_000_000_000_000_001;
const PEOPLE: u64 = 10;
/// Each person's daily quota, more than anyone uses here.
const DAILY_QUOTA: u32 = 10;

/// Two replicas, their stand-ins and the store they share.
struct Replicas {
    discord: DiscordStandIn,
    bedrock: BedrockStandIn,
    store: TempDir,
    _spools: [TempDir; 2],
    _replicas: [TestApp; 2],
}

/// An interaction the test sent, to count what became of it.
struct Sent {
    id: String,
    token: String,
    what: String,
}

impl Replicas {
    /// Two replicas with `extra` settings on both.
    async fn start(extra: &[(&str, &str)]) -> Self {
        let discord = DiscordStandIn::start().await;
        let bedrock = BedrockStandIn::start().await;
        let store = tempfile::tempdir().unwrap();
        let spools = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let store_url = format!("file://{}", store.path().display());
        let quota = DAILY_QUOTA.to_string();
        let (api, gateway) = (discord.url(), discord.gateway_url());
        let mut replicas = Vec::new();
        for spool in &spools {
            let spool_dir = spool.path().display().to_string();
            let sdk_config = bedrock.sdk_config().await;
            let settings = [
                ("ATELIER_ENGINE", "bedrock"),
                // One store for both, as replicas behind one bucket share it.
                ("ATELIER_STORE", store_url.as_str()),
                ("ATELIER_SPOOL_DIR", spool_dir.as_str()),
                ("ATELIER_DAILY_IMAGE_QUOTA", quota.as_str()),
                ("ATELIER_DISCORD_TOKEN", "stand-in-token"),
                ("ATELIER_DISCORD_APPLICATION_ID", APPLICATION_ID),
                ("ATELIER_DISCORD_API_URL", api.as_str()),
                ("ATELIER_DISCORD_GATEWAY_URL", gateway.as_str()),
                ("ATELIER_DISCORD_MESSAGE_CONTENT", "true"),
                ("ATELIER_PUBLIC_URL", "https://atelier.example"),
            ];
            let settings: Vec<(&str, &str)> = settings.into_iter().chain(extra.iter().copied()).collect();
            replicas.push(TestApp::spawn_with_aws(&settings, sdk_config).await);
        }
        // Both bots connected: from here every dispatch reaches both.
        discord.wait_for_sessions(2).await;
        let replicas: [TestApp; 2] = replicas.try_into().unwrap_or_else(|_| panic!("two replicas"));
        Self { discord, bedrock, store, _spools: spools, _replicas: replicas }
    }

    fn person(index: u64) -> Value {
        DiscordStandIn::user(FIRST_PERSON + index, &format!("person {index}"))
    }

    async fn send(&self, interaction: Value, what: impl Into<String>) -> Sent {
        let sent = Sent {
            id: interaction["id"].as_str().unwrap().to_string(),
            token: interaction["token"].as_str().unwrap().to_string(),
            what: what.into(),
        };
        self.discord.dispatch_interaction(interaction).await;
        sent
    }

    async fn command(&self, person: u64, name: &str, options: Value) -> Sent {
        let interaction = self.discord.slash_command(&Self::person(person), name, options, &[]);
        self.send(interaction, format!("/{name} by person {person}")).await
    }

    async fn press(&self, person: u64, custom_id: &str, message: &Value) -> Sent {
        let interaction = self.discord.button_press(&Self::person(person), custom_id, message);
        let action = custom_id.split(':').nth(1).unwrap_or("button");
        self.send(interaction, format!("{action} pressed by person {person}")).await
    }

    /// Polls `probe` for up to two minutes (a burst on two replicas takes a while); on a
    /// timeout the panic lists what Discord saw.
    async fn eventually<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(found) = probe() {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .discord
                    .requests()
                    .iter()
                    .map(|request| {
                        let token = request.path.split('/').nth(5).unwrap_or_default();
                        let short = format!("{}…", &token[..token.len().min(8)]);
                        let path =
                            if token.len() > 40 { request.path.replace(token, &short) } else { request.path.clone() };
                        format!("{} {path} -> {} {}", request.method, request.status, request.body["content"])
                    })
                    .collect();
                panic!("timed out waiting for {what}; Discord saw:\n{}", seen.join("\n"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The message an image job's interaction ended with, once it shows an image.
    async fn result_of(&self, sent: &Sent) -> Value {
        self.eventually(&format!("a result for {}", sent.what), || {
            self.discord.interaction_original(&sent.id).filter(shows_an_image)
        })
        .await
    }

    /// Waits until both replicas have tried to acknowledge: one was taken, one refused.
    async fn both_replicas_tried(&self, sent: &Sent) {
        self.eventually(&format!("both replicas to acknowledge {}", sent.what), || {
            let counts = self.discord.interaction_counts(&sent.id);
            (counts.callbacks_accepted + counts.callbacks_refused_as_acknowledged >= 2).then_some(())
        })
        .await;
    }

    /// How many results were uploaded through an interaction's token (edits of the original
    /// response carrying files): one per answered image job.
    fn result_uploads(&self, sent: &Sent) -> usize {
        let original = format!("/api/v10/webhooks/{APPLICATION_ID}/{}/messages/@original", sent.token);
        self.discord
            .requests()
            .iter()
            .filter(|request| {
                request.method == "PATCH"
                    && request.path == original
                    && !request.files.is_empty()
                    && request.status == 200
            })
            .count()
    }

    fn images_stored(&self) -> usize {
        files_under(&self.store.path().join("users"), "images")
    }
}

/// Files in every `{folder}` directory below `root`.
pub(crate) fn files_under(root: &Path, folder: &str) -> usize {
    let mut count = 0;
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if directory.file_name().is_some_and(|name| name == folder) {
                count += 1;
            }
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_acknowledge_answer_run_and_store_each_interaction_once() {
    let replicas = Replicas::start(&[]).await;
    let mut every_interaction = Vec::new();
    let mut public_answers = 0;

    // A chat thread, continued by plain replies: both replicas hear each reply, one claims it.
    let chat = replicas.command(0, "chat", json!([option("message", "How do I paint fog?")])).await;
    public_answers += 1;
    let thread = replicas.eventually("the chat thread", || replicas.discord.threads().pop()).await;
    let thread_id = thread["id"].as_str().unwrap().to_string();
    replicas
        .eventually("the first chat answer", || {
            let messages = replicas.discord.channel_messages(&thread_id);
            messages
                .iter()
                .any(|message| message["content"].as_str().is_some_and(|text| text.contains("fog")))
                .then_some(())
        })
        .await;
    every_interaction.push(chat);
    let replies = ["And the colours?", "Which brushes?", "How long does it dry?"];
    for reply in replies {
        let message = replicas.discord.user_message(&thread_id, &Replicas::person(0), reply);
        replicas.discord.dispatch_message(message).await;
        replicas
            .eventually(&format!("the answer to {reply:?}"), || {
                replicas.discord.channel_messages(&thread_id).into_iter().find(|message| {
                    message["author"]["bot"] == true
                        && message["content"].as_str().is_some_and(|text| text.contains(reply))
                })
            })
            .await;
    }

    // The burst: two /imagine from each of ten people at once, with autocomplete and /check
    // among them.
    let mut imagined = Vec::new();
    for round in 0..2 {
        for person in 0..PEOPLE {
            let prompt = format!("a lighthouse number {round}-{person} in fog");
            imagined.push((person, replicas.command(person, "imagine", json!([option("prompt", prompt)])).await));
            public_answers += 1;
        }
    }
    let mut autocompleted = Vec::new();
    for (option_name, typed) in [("model", "co"), ("aspect", "16"), ("style", "photo")] {
        let interaction =
            replicas.discord.autocomplete(&Replicas::person(1), "imagine", json!([option(option_name, typed)]));
        autocompleted.push(replicas.send(interaction, format!("autocomplete of {option_name}")).await);
    }
    let mut checked = Vec::new();
    for person in 0..2 {
        checked.push(replicas.command(person, "check", json!([option("prompt", "a cat on a wall")])).await);
        public_answers += 1;
    }

    // Buttons on the results: Reroll for four people, Variations for four more, and Edit
    // (a modal, then its submission) once.
    let mut results = Vec::new();
    for (person, sent) in &imagined {
        results.push((*person, replicas.result_of(sent).await));
    }
    let mut pressed = Vec::new();
    for (person, result) in results.iter().take(4) {
        pressed.push(replicas.press(*person, &button(result, "reroll"), result).await);
        public_answers += 1;
    }
    for (person, result) in results.iter().skip(4).take(4) {
        pressed.push(replicas.press(*person, &button(result, "var"), result).await);
        public_answers += 1;
    }
    let (editor, edited) = &results[8];
    let edit = replicas.press(*editor, &button(edited, "edit"), edited).await;
    let modal = replicas.eventually("the edit modal", || replicas.discord.interaction_callback(&edit.id)).await;
    assert_eq!(modal["type"], 9, "the Edit button opens a modal");
    let submitted = replicas.discord.modal_submit(
        &Replicas::person(*editor),
        modal["data"]["custom_id"].as_str().unwrap(),
        &[("prompt", "a lighthouse in fog at dawn")],
    );
    pressed.push(replicas.send(submitted, "the edit modal's submission").await);
    public_answers += 1;
    for sent in &pressed {
        replicas.result_of(sent).await;
    }

    // What each person has left, asked once the jobs are done.
    let mut quota_asked = Vec::new();
    for person in 0..PEOPLE {
        quota_asked.push((person, replicas.command(person, "me", json!([])).await));
    }

    // ----- counting -----
    let image_jobs: Vec<&Sent> = imagined.iter().map(|(_, sent)| sent).chain(pressed.iter()).collect();
    let everything: Vec<&Sent> = every_interaction
        .iter()
        .chain(image_jobs.iter().copied())
        .chain(autocompleted.iter())
        .chain(checked.iter())
        .chain(std::iter::once(&edit))
        .chain(quota_asked.iter().map(|(_, sent)| sent))
        .collect();
    for sent in &everything {
        replicas.both_replicas_tried(sent).await;
    }

    // Each interaction was acknowledged once, and the other replica's acknowledgement was
    // refused once: it then did nothing more (a second answer would be a second refusal).
    let mut duplicates = 0;
    let all_requests = replicas.discord.requests();
    for sent in &everything {
        let counts = replicas.discord.interaction_counts(&sent.id);
        assert_eq!(counts.callbacks_accepted, 1, "{}: {counts:?}", sent.what);
        assert_eq!(
            counts.callbacks_refused_as_acknowledged, 1,
            "{}: both replicas tried, once each: {counts:?}",
            sent.what
        );
        assert_eq!(counts.followups, 0, "{}: answered in place, never by a second message: {counts:?}", sent.what);
        let callback = format!("/{}/{}/callback", sent.id, sent.token);
        let callbacks = all_requests.iter().filter(|request| request.path.ends_with(&callback)).count();
        assert_eq!(callbacks, 2, "{}: one acknowledgement from each replica and nothing else", sent.what);
    }

    // Every image job was answered with one result, drawn once and stored once.
    let mut delivered = 0;
    for sent in &image_jobs {
        let uploads = replicas.result_uploads(sent);
        duplicates += uploads.saturating_sub(1);
        if uploads == 1
            && replicas.discord.interaction_original(&sent.id).is_some_and(|message| shows_an_image(&message))
        {
            delivered += 1;
        }
    }
    let drawn = replicas.bedrock.calls_to(Operation::InvokeModel);
    let stored = replicas.images_stored();
    duplicates += drawn.saturating_sub(image_jobs.len()) + stored.saturating_sub(image_jobs.len());
    let lost = (image_jobs.len() - delivered) + image_jobs.len().saturating_sub(stored);
    assert_eq!(drawn, image_jobs.len(), "each job called the image model once");
    assert_eq!(stored, image_jobs.len(), "each job's image is in the shared store once");

    // Nothing else was posted: one public answer per public interaction, none from the
    // replica that lost, and no request Discord refused but the lost acknowledgements.
    assert_eq!(replicas.discord.messages_created(CHANNEL_ID), public_answers, "one public message per interaction");
    let refused: Vec<String> = replicas
        .discord
        .requests()
        .iter()
        .filter(|request| request.status >= 400 && !request.path.ends_with("/callback"))
        .map(|request| format!("{} {} -> {}", request.method, request.path, request.status))
        .collect();
    assert!(refused.is_empty(), "Discord refused requests besides lost acknowledgements: {refused:#?}");

    // Autocomplete was answered with choices, /check with its critique, once each.
    for sent in &autocompleted {
        let callback = replicas.discord.interaction_callback(&sent.id).unwrap();
        assert_eq!(callback["type"], 8, "{}", sent.what);
        assert!(!callback["data"]["choices"].as_array().unwrap().is_empty(), "{}: {callback:#}", sent.what);
    }
    for sent in &checked {
        let critique = replicas
            .eventually("the critique", || {
                replicas.discord.interaction_original(&sent.id).filter(|message| !is_loading(message))
            })
            .await;
        assert_eq!(critique["embeds"][0]["title"], "Prompt check", "{critique:#}");
    }

    // The thread was made once, and each reply in it answered once.
    assert_eq!(replicas.discord.threads().len(), 1, "one thread for one /chat");
    let thread_messages = replicas.discord.channel_messages(&thread_id);
    for reply in replies {
        let answers = thread_messages
            .iter()
            .filter(|message| {
                message["author"]["bot"] == true && message["content"].as_str().is_some_and(|text| text.contains(reply))
            })
            .count();
        assert_eq!(answers, 1, "{reply:?} was answered once: {thread_messages:#?}");
    }
    assert_eq!(
        replicas.bedrock.calls_to(Operation::ConverseStream),
        1 + replies.len(),
        "the chat model was asked once per message"
    );
    assert_eq!(files_under(replicas.store.path(), "chat-messages"), replies.len(), "one claim per reply");

    // Quotas were charged once per image, whichever replica ran the job and whichever answers.
    for (person, sent) in &quota_asked {
        let used = image_jobs.iter().filter(|job| job.what.ends_with(&format!("person {person}"))).count()
            + usize::from(*person == *editor);
        let answer = replicas
            .eventually(&format!("/me for person {person}"), || {
                replicas.discord.interaction_original(&sent.id).filter(is_ephemeral)
            })
            .await;
        let quota = answer["embeds"][0]["fields"][0]["value"].as_str().unwrap();
        let expected = format!("{} of {DAILY_QUOTA} images left today", DAILY_QUOTA as usize - used);
        assert!(quota.starts_with(&expected), "person {person}: expected {expected:?}, got {quota:?}");
        // What is left of the day's budget comes with it (the burst also chats, so its
        // amount is not only the images').
        assert!(quota.contains("of today's $5.00 budget left"), "person {person}: got {quota:?}");
    }

    FaultRow {
        scenario: "Discord: two replicas, one burst of every interaction".into(),
        jobs_sent: image_jobs.len(),
        jobs_delivered: delivered,
        images_stored: stored,
        duplicates,
        lost,
    }
    .check_and_record();

    // Delete, pressed once, is done by one replica: the other's acknowledgement is refused
    // before it touches the gallery.
    let (owner, doomed) = &results[9];
    let delete = replicas.press(*owner, &button(doomed, "del"), doomed).await;
    let answer = replicas
        .eventually("the deletion's answer", || {
            replicas
                .discord
                .interaction_original(&delete.id)
                .filter(|message| message["content"].as_str().is_some_and(|text| text.contains("Deleted")))
        })
        .await;
    assert!(is_ephemeral(&answer));
    replicas.both_replicas_tried(&delete).await;
    let counts = replicas.discord.interaction_counts(&delete.id);
    assert_eq!((counts.callbacks_accepted, counts.callbacks_refused_as_acknowledged), (1, 1), "{counts:?}");
    assert_eq!(replicas.images_stored(), stored - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_pressed_once_is_acted_on_by_one_replica() {
    // One job runs at a time on each replica and drawing is slow, so of six jobs at least
    // three share a replica and the last of them waits behind two.
    let replicas = Replicas::start(&[("ATELIER_MAX_RUNNING_JOBS", "1")]).await;
    replicas.bedrock.script(Behaviour::Delay(std::time::Duration::from_secs(2)));
    let mut jobs = Vec::new();
    for person in 0..6 {
        let prompt = format!("a slow harbour number {person}");
        jobs.push((person, replicas.command(person, "imagine", json!([option("prompt", prompt)])).await));
    }
    // A job "next in line" may be taking its slot that very moment; one with another job
    // waiting ahead of it has seconds to go (the one ahead must first be drawn), time for
    // Cancel to find it still waiting.
    let (person, waiting, cancelled) = replicas
        .eventually("a job waiting behind another, with a Cancel button", || {
            jobs.iter().find_map(|(person, sent)| {
                let message = replicas.discord.interaction_original(&sent.id)?;
                let text = message["content"].as_str().unwrap_or_default();
                let behind_another = text.contains("Queued") && !text.contains("next in line");
                let has_cancel =
                    crate::discord_bot::button_ids(&message).iter().any(|id| id.starts_with("atelier:cancel:"));
                (behind_another && has_cancel).then_some((*person, message, sent))
            })
        })
        .await;
    let press = replicas.press(person, &button(&waiting, "cancel"), &waiting).await;
    let told = replicas
        .eventually("the answer to Cancel", || {
            replicas.discord.interaction_original(&press.id).filter(|message| !is_loading(message))
        })
        .await;
    let text = told["content"].as_str().unwrap_or_default().to_string();
    assert!(text.starts_with("Cancel"), "the waiting job was called back: {told:#}");
    replicas.both_replicas_tried(&press).await;
    let counts = replicas.discord.interaction_counts(&press.id);
    assert_eq!((counts.callbacks_accepted, counts.callbacks_refused_as_acknowledged), (1, 1), "{counts:?}");

    // The job called back is answered as such, only to its owner (the public acknowledgement
    // goes), and never drawn; the others are drawn once each.
    let said = |message: &Value| message["content"].as_str().is_some_and(|text| text.contains("nothing was charged"));
    replicas
        .eventually("the cancelled job's answer", || {
            let followups = replicas.discord.interaction_followups(&cancelled.id);
            followups
                .into_iter()
                .find(said)
                .or_else(|| replicas.discord.interaction_original(&cancelled.id).filter(said))
        })
        .await;
    assert!(replicas.discord.interaction_counts(&cancelled.id).followups <= 1, "answered once");
    let drawn: Vec<&Sent> = jobs.iter().map(|(_, sent)| sent).filter(|sent| sent.id != cancelled.id).collect();
    for sent in &drawn {
        replicas.result_of(sent).await;
    }
    assert_eq!(
        replicas.bedrock.calls_to(Operation::InvokeModel),
        drawn.len(),
        "each job drawn once, the cancelled one never"
    );
    assert_eq!(replicas.images_stored(), drawn.len());
}

/// What the replicas logged: every event at WARN or ERROR, and how many debug events said an
/// interaction or message was left to another replica.
#[derive(Clone, Default)]
struct Heard {
    loud: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    left_to_another_replica: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Heard {
    fn on_event(&self, event: &tracing::Event<'_>, _context: tracing_subscriber::layer::Context<'_, S>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let level = *event.metadata().level();
        if matches!(level, tracing::Level::WARN | tracing::Level::ERROR) {
            self.loud.lock().unwrap().push(format!("{level} {}: {message}", event.metadata().target()));
        } else if level == tracing::Level::DEBUG && message.contains("another replica") {
            self.left_to_another_replica.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

// On the test's one thread, so the log catcher set for this thread hears both replicas.
#[tokio::test]
async fn the_replica_that_loses_says_nothing_above_debug() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let heard = Heard::default();
    // tracing caches whether a log line is wanted the first time any thread reaches it. With
    // just one subscriber in the process, that is decided by the reaching thread's own
    // subscriber, so a line first reached by another test's thread (which has none) would be
    // cached as unwanted and never reach this one (tokio-rs/tracing#3611). A second subscriber
    // kept registered for the test makes every thread ask all of them.
    let _second_subscriber = tracing::Dispatch::new(tracing_subscriber::registry());
    let _catching = tracing::subscriber::set_default(tracing_subscriber::registry().with(heard.clone()));
    let replicas = Replicas::start(&[]).await;

    let chat = replicas.command(0, "chat", json!([option("message", "How do I paint rain?")])).await;
    let thread = replicas.eventually("the chat thread", || replicas.discord.threads().pop()).await;
    let thread_id = thread["id"].as_str().unwrap().to_string();
    // The thread's conversation is kept just after the thread is made: a reply sent the
    // moment the thread appears could come first and find none, on either replica.
    replicas
        .eventually("the first answer in the thread", || {
            replicas.discord.channel_messages(&thread_id).into_iter().find(|message| {
                message["author"]["bot"] == true
                    && message["content"].as_str().is_some_and(|text| text.contains("paint rain"))
            })
        })
        .await;
    let reply = replicas.discord.user_message(&thread_id, &Replicas::person(0), "And at night?");
    replicas.discord.dispatch_message(reply).await;
    replicas
        .eventually("the answer in the thread", || {
            replicas.discord.channel_messages(&thread_id).into_iter().find(|message| {
                message["author"]["bot"] == true
                    && message["content"].as_str().is_some_and(|text| text.contains("And at night?"))
            })
        })
        .await;
    let mut sent = vec![chat];
    for person in 0..4 {
        sent.push(
            replicas.command(person, "imagine", json!([option("prompt", format!("rain number {person}"))])).await,
        );
    }
    // A wrong option is refused by an ephemeral answer, which is itself the acknowledgement.
    sent.push(replicas.command(1, "imagine", json!([option("prompt", "rain --ar 16x9")])).await);
    let interaction = replicas.discord.autocomplete(&Replicas::person(2), "imagine", json!([option("model", "co")]));
    sent.push(replicas.send(interaction, "autocomplete").await);
    let result = replicas.result_of(&sent[1]).await;
    sent.push(replicas.press(0, &button(&result, "reroll"), &result).await);
    sent.push(replicas.command(3, "me", json!([])).await);
    for job in [&sent[2], &sent[3], &sent[4], &sent[7]] {
        replicas.result_of(job).await;
    }
    for interaction in &sent {
        replicas.both_replicas_tried(interaction).await;
    }
    let refusal = replicas
        .eventually("the refusal of the wrong option", || {
            replicas.discord.interaction_original(&sent[5].id).filter(is_ephemeral)
        })
        .await;
    assert!(refusal["content"].as_str().unwrap().contains("16x9"), "{refusal:#}");

    // The losing replica logs just after Discord refuses it, so its lines are waited for.
    let expected = sent.len() + 1;
    let left = || heard.left_to_another_replica.load(std::sync::atomic::Ordering::SeqCst);
    replicas
        .eventually(
            &format!("one debug line per interaction (and per thread message) left to the other replica: {expected}"),
            || (left() >= expected).then_some(()),
        )
        .await;
    assert_eq!(left(), expected, "one debug line each, no more");
    let loud = heard.loud.lock().unwrap().clone();
    assert!(loud.is_empty(), "nothing above debug, from either replica: {loud:#?}");
}
