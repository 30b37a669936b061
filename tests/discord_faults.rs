//! Discord's faults during bursts of image jobs, each scenario a row of the fault table: the
//! gateway dropped mid-job (and resumed), REST answering 429 and 5xx, an upload refused for
//! size, interaction tokens expiring while jobs run. Every job must be answered once and its
//! image stored once, whatever Discord does.

use std::time::Duration;

use serde_json::{Value, json};

use crate::discord_bot::{Bot, option, shows_an_image};
use crate::replicas::files_under;
use crate::support::bedrock::{Behaviour, Operation};
use crate::support::discord::{APPLICATION_ID, CHANNEL_ID, DiscordStandIn};
use crate::support::faults::FaultRow;

/// The people in a burst, one job each: ids from here up.
const FIRST_PERSON: u64 = 3_200_000_000_000_000_001;

/// One /imagine the test sent.
struct Job {
    person: u64,
    id: String,
    token: String,
}

/// Builds one /imagine per person (not yet sent), as Discord would deliver them.
fn imagines(bot: &Bot, people: std::ops::Range<u64>, what: &str) -> Vec<(Job, Value)> {
    people
        .map(|person| {
            let user = DiscordStandIn::user(FIRST_PERSON + person, &format!("person {person}"));
            let prompt = format!("{what}, number {person}");
            let interaction = bot.discord.slash_command(&user, "imagine", json!([option("prompt", prompt)]), &[]);
            let job = Job {
                person: FIRST_PERSON + person,
                id: interaction["id"].as_str().unwrap().to_string(),
                token: interaction["token"].as_str().unwrap().to_string(),
            };
            (job, interaction)
        })
        .collect()
}

async fn send(bot: &Bot, built: Vec<(Job, Value)>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (job, interaction) in built {
        bot.discord.dispatch_interaction(interaction).await;
        jobs.push(job);
    }
    jobs
}

async fn wait_for_acknowledgements(bot: &Bot, jobs: &[Job]) {
    for job in jobs {
        bot.eventually("the acknowledgement", || bot.discord.interaction_callback(&job.id)).await;
    }
}

/// How many answers (edits of the original response carrying the result's embeds) Discord
/// took for a job; progress edits carry text only.
fn answers_through_token(bot: &Bot, job: &Job) -> usize {
    let original = format!("/api/v10/webhooks/{APPLICATION_ID}/{}/messages/@original", job.token);
    bot.discord
        .requests()
        .iter()
        .filter(|request| {
            request.method == "PATCH"
                && request.path == original
                && request.status == 200
                && request.body["embeds"].as_array().is_some_and(|embeds| !embeds.is_empty())
        })
        .count()
}

/// Late results posted to the channel for a person (the token having expired).
fn channel_posts_for(bot: &Bot, job: &Job) -> usize {
    let mention = format!("<@{}>", job.person);
    bot.discord
        .channel_messages(CHANNEL_ID)
        .iter()
        .filter(|message| {
            message["author"]["bot"] == true
                && message["content"].as_str().is_some_and(|text| text.starts_with(&mention))
                && !message["embeds"].as_array().is_some_and(Vec::is_empty)
        })
        .count()
}

/// Counts a finished burst into a row: delivered when `delivered` accepts what the person
/// sees and exactly one answer went out; duplicates are answers, model calls or stored
/// images beyond one per job.
fn tally(bot: &Bot, scenario: &str, jobs: &[Job], delivered: impl Fn(&Job) -> bool) -> FaultRow {
    let mut duplicates = 0;
    let mut delivered_count = 0;
    for job in jobs {
        let answers = answers_through_token(bot, job) + channel_posts_for(bot, job);
        duplicates += answers.saturating_sub(1);
        if answers == 1 && delivered(job) {
            delivered_count += 1;
        }
    }
    let stored = files_under(&bot.app.data.path().join("store").join("users"), "images");
    let drawn = bot.bedrock.calls_to(Operation::InvokeModel);
    duplicates += drawn.saturating_sub(jobs.len()) + stored.saturating_sub(jobs.len());
    FaultRow {
        scenario: scenario.into(),
        jobs_sent: jobs.len(),
        jobs_delivered: delivered_count,
        images_stored: stored,
        duplicates,
        lost: (jobs.len() - delivered_count) + jobs.len().saturating_sub(stored),
    }
}

fn shows_its_image(bot: &Bot, job: &Job) -> bool {
    bot.discord.interaction_original(&job.id).is_some_and(|message| shows_an_image(&message))
}

async fn wait_for_images(bot: &Bot, jobs: &[Job]) {
    for job in jobs {
        bot.result_of(&job.id).await;
    }
}

#[tokio::test]
async fn the_gateway_dropped_mid_burst_is_resumed_and_every_job_answered_once() {
    let bot = Bot::start(&[]).await;
    // Slow enough that the first jobs are still drawing when the connection drops.
    bot.bedrock.script(Behaviour::Delay(Duration::from_millis(300)));
    let first = send(&bot, imagines(&bot, 0..3, "a harbour before the storm")).await;
    wait_for_acknowledgements(&bot, &first).await;
    bot.discord.drop_gateway().await;
    // Sent while the bot is away: Discord keeps them for the session and replays them on RESUME.
    let second = send(&bot, imagines(&bot, 3..6, "a harbour after the storm")).await;
    let jobs: Vec<Job> = first.into_iter().chain(second).collect();
    wait_for_images(&bot, &jobs).await;
    assert_eq!(bot.discord.resume_count(), 1, "the session was resumed");
    assert_eq!(bot.discord.identify_count(), 1, "not identified anew");
    for job in &jobs {
        assert_eq!(bot.discord.interaction_counts(&job.id).callbacks_accepted, 1);
    }
    tally(&bot, "Discord: gateway dropped mid-burst, resumed", &jobs, |job| shows_its_image(&bot, job))
        .check_and_record();
}

#[tokio::test]
async fn uploads_answered_429_are_waited_out_and_every_job_answered_once() {
    let bot = Bot::start(&[]).await;
    // Three in a row at most: a call tries four times, so even all three on one call pass.
    bot.discord.fail_next("PATCH", "/messages/@original", 429, 3);
    let jobs = send(&bot, imagines(&bot, 0..5, "a lantern in the rain")).await;
    wait_for_images(&bot, &jobs).await;
    let limited = bot.discord.requests().iter().filter(|request| request.status == 429).count();
    assert_eq!(limited, 3, "the rate limits were met, then waited out");
    tally(&bot, "Discord: REST answering 429 on results", &jobs, |job| shows_its_image(&bot, job)).check_and_record();
}

#[tokio::test]
async fn uploads_answered_5xx_are_tried_again_and_every_job_answered_once() {
    let bot = Bot::start(&[]).await;
    for status in [500, 502, 503] {
        bot.discord.fail_next("PATCH", "/messages/@original", status, 1);
    }
    let jobs = send(&bot, imagines(&bot, 0..5, "a kite over the dunes")).await;
    wait_for_images(&bot, &jobs).await;
    let failed: Vec<u16> =
        bot.discord.requests().iter().map(|request| request.status).filter(|status| *status >= 500).collect();
    assert_eq!(failed.len(), 3, "the server errors on results were met, then tried again: {failed:?}");
    tally(&bot, "Discord: REST answering 500, 502 and 503 on results", &jobs, |job| shows_its_image(&bot, job))
        .check_and_record();
}

#[tokio::test]
async fn uploads_refused_for_size_go_out_as_gallery_links_and_every_job_is_answered_once() {
    let bot = Bot::start(&[]).await;
    // The interactions promise the usual 25 MiB, but by the time the results are ready
    // Discord takes no more than 1,000 bytes (a server lost its boosts): the uploads are
    // refused with 413 and the results must still arrive, as links.
    let built = imagines(&bot, 0..4, "a detailed city map");
    bot.discord.set_attachment_size_limit(1_000);
    let jobs = send(&bot, built).await;
    let links_shown = |job: &Job| {
        bot.discord.interaction_original(&job.id).is_some_and(|message| {
            message["content"].as_str().is_some_and(|text| text.contains("Too large"))
                && message["embeds"][0]["url"].as_str().is_some_and(|url| url.contains("/gallery/"))
                && !shows_an_image(&message)
        })
    };
    for job in &jobs {
        bot.eventually("the result as a gallery link", || links_shown(job).then_some(())).await;
    }
    let refused = bot.discord.requests().iter().filter(|request| request.status == 413).count();
    assert_eq!(refused, jobs.len(), "each result's upload was refused once, then sent as a link");
    tally(&bot, "Discord: uploads refused for size (413), sent as links", &jobs, links_shown).check_and_record();
}

#[tokio::test]
async fn tokens_expiring_mid_burst_move_every_result_to_the_channel_once() {
    let bot = Bot::start(&[]).await;
    bot.bedrock.script(Behaviour::Delay(Duration::from_millis(1_500)));
    let jobs = send(&bot, imagines(&bot, 0..4, "a slow sunrise over hills")).await;
    wait_for_acknowledgements(&bot, &jobs).await;
    // As if fifteen minutes had passed while the model worked.
    bot.discord.expire_interaction_tokens();
    for job in &jobs {
        bot.eventually("the result posted to the channel", || (channel_posts_for(&bot, job) > 0).then_some(())).await;
    }
    let posted_with_image = |job: &Job| {
        let mention = format!("<@{}>", job.person);
        bot.discord.channel_messages(CHANNEL_ID).iter().any(|message| {
            message["content"].as_str().is_some_and(|text| text.starts_with(&mention)) && shows_an_image(message)
        })
    };
    tally(&bot, "Discord: interaction tokens expired mid-burst", &jobs, posted_with_image).check_and_record();
}
