//! Running image jobs for commands and buttons alike: progress in place while the job waits
//! and runs, then the result with its buttons, or a refusal only the user sees.

use atelier_shared::Error;
use atelier_shared::gallery::{ImageRecord, Owner};
use atelier_shared::jobs::Stage;
use atelier_shared::request::GenerationFields;
use atelier_shared::{Actor, Appeal, EditPlan, GenerationPlan, HeldId, Kept};
use poise::serenity_prelude as serenity;
use tokio::sync::{oneshot, watch};

use crate::render::{self, truncate};
use crate::respond::{Outgoing, PROGRESS_INTERVAL, Reply};
use crate::{BotError, Data};

/// Makes images for a request and answers the interaction with them.
pub async fn generate(
    data: &Data,
    responder: &impl Reply,
    actor: &Actor,
    plan: &GenerationPlan,
    appeal: Appeal,
) -> Result<(), BotError> {
    // Kept with the job, so another replica can answer here if this process stops mid-job.
    let actor = &actor.clone().answered_at(responder.reply_route());
    let headline = format!("**{}**", truncate(plan.request().prompt.as_str(), 300));
    let progress = ProgressDisplay::start(responder.clone(), headline, actor.owner.clone());
    let report = |stage| progress.report(stage);
    let outcome = match appeal {
        Appeal::No => data.core.generate_with_progress(actor, plan, &report).await,
        Appeal::Asked => data.core.generate_appealed(actor, plan, &report).await,
    };
    progress.stop().await;
    match outcome {
        Ok(kept) => {
            let mut message = result_message(data, &kept);
            let elsewhere = plan.result_channels_elsewhere();
            if !elsewhere.is_empty() {
                let channels: Vec<String> = elsewhere.iter().map(|channel| format!("<#{channel}>")).collect();
                let note =
                    format!("This server posts results in {}, so this one is only for you.", channels.join(", "));
                message.content = Some(match message.content.take() {
                    Some(content) => format!("{note}\n{content}"),
                    None => note,
                });
            }
            responder.finish(message).await
        }
        Err(error @ Error::Blocked(_)) => {
            let reason = error.to_string();
            let appeal = if error.offers_appeal() {
                let held = data.core.hold_refused(actor, plan.fields()).await?;
                vec![render::appeal_button(&actor.owner, held)]
            } else {
                Vec::new()
            };
            log_refusal(data, actor, responder, &reason).await;
            responder.refuse(&format!("Not drawn: {reason}."), appeal).await
        }
        Err(error) => fail(responder, &error).await,
    }
}

/// Edits an image and answers the interaction with the result; a refusal that may be
/// appealed keeps the edit (its images too) behind an Appeal button.
pub async fn edit(
    data: &Data,
    responder: &impl Reply,
    actor: &Actor,
    plan: &EditPlan,
    appeal: Appeal,
) -> Result<(), BotError> {
    let actor = &actor.clone().answered_at(responder.reply_route());
    let request = plan.request();
    let what = match &request.prompt {
        Some(prompt) => format!("**{}** ({})", truncate(prompt.as_str(), 300), request.mode),
        None => format!("**{}**", request.mode),
    };
    let progress = ProgressDisplay::start(responder.clone(), what, actor.owner.clone());
    let report = |stage| progress.report(stage);
    let outcome = match appeal {
        Appeal::No => data.core.edit_with_progress(actor, plan, &report).await,
        Appeal::Asked => data.core.edit_appealed(actor, plan, &report).await,
    };
    progress.stop().await;
    match outcome {
        Ok(kept) => responder.finish(result_message(data, &kept)).await,
        Err(error @ Error::Blocked(_)) => {
            let reason = error.to_string();
            let appeal = if error.offers_appeal() {
                let held = data.core.hold_refused_edit(actor, plan).await?;
                vec![render::appeal_button(&actor.owner, held)]
            } else {
                Vec::new()
            };
            log_refusal(data, actor, responder, &reason).await;
            responder.refuse(&format!("Not edited: {reason}."), appeal).await
        }
        Err(error) => fail(responder, &error).await,
    }
}

/// Tells the user a job failed: their own mistakes as they are, anything else with an
/// apology while the details go to the log once.
pub async fn fail(responder: &impl Reply, error: &Error) -> Result<(), BotError> {
    if !error.is_user_error() {
        tracing::error!(error = %error, "a Discord job failed: {error}");
    }
    responder.refuse(&crate::error::capitalise(&error.user_message()), Vec::new()).await
}

/// One line in the moderation-log channel per refusal, without pinging anyone.
async fn log_refusal(data: &Data, actor: &Actor, responder: &impl Reply, reason: &str) {
    // The server's own moderation channel, if its admins set one; else the operator's.
    let server_channel = data.core.moderation_channel_for(actor).await.map(serenity::ChannelId::new);
    let Some(channel) = server_channel.or(data.moderation_channel) else { return };
    let (user, asked_in) = responder.asked_by();
    let line = format!("Refused a prompt from <@{user}> in <#{asked_in}>: {reason}");
    if let Err(error) = responder.post_elsewhere(channel, &line).await {
        tracing::warn!(error = %error, "could not write to the moderation log channel");
    }
}

/// The web gallery page of an image.
pub fn gallery_url(data: &Data, record: &ImageRecord) -> String {
    data.public_url.join(&format!("gallery/{}", record.id)).map(|url| url.to_string()).unwrap_or_default()
}

/// The result message: the images as files, an embed each, and the buttons.
pub fn result_message(data: &Data, kept: &[Kept]) -> Outgoing {
    let mut outgoing = Outgoing::default();
    let mut linked = Vec::new();
    for (index, image) in kept.iter().enumerate() {
        outgoing
            .files
            .push(serenity::CreateAttachment::bytes(image.image.bytes().to_vec(), render::file_name(&image.record)));
        let url = gallery_url(data, &image.record);
        // In a batch, each embed is numbered as its row of buttons is.
        let embed = match kept.len() {
            1 => render::embed(&image.record),
            _ => render::embed(&image.record).title(format!("Image {}", index + 1)),
        };
        outgoing.embeds.push(embed.clone().image(render::attachment_url(&image.record)).url(&url));
        linked.push(embed.url(&url));
    }
    outgoing.embeds_without_files = Some(linked);
    let records: Vec<&ImageRecord> = kept.iter().map(|image| &image.record).collect();
    outgoing.components = render::result_buttons(&records);
    outgoing
}

#[cfg(test)]
mod tests;

/// Shows a job's stage in the acknowledged message, at most once per [`PROGRESS_INTERVAL`].
struct ProgressDisplay {
    stages: watch::Sender<Option<Stage>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressDisplay {
    fn start(responder: impl Reply, headline: String, owner: Owner) -> Self {
        let (stages, mut heard) = watch::channel(None::<Stage>);
        let (stop, mut stopped) = oneshot::channel::<()>();
        // The display's edits count their rate-limit waits like the job's other calls.
        let task = tokio::spawn(crate::rate_limits::keep_measuring(async move {
            loop {
                tokio::select! {
                    changed = heard.changed() => if changed.is_err() { return },
                    _ = &mut stopped => return,
                }
                let stage = *heard.borrow_and_update();
                if let Some(stage) = stage {
                    // A waiting job can be called back; once it runs, the button goes.
                    let buttons = match stage {
                        Stage::Queued { job, .. } => vec![render::cancel_button(&owner, job)],
                        _ => Vec::new(),
                    };
                    responder.show_progress(&format!("{headline}\n{stage}…"), buttons).await;
                }
                // Throttle, but stop at once when the job ends so the result is not delayed.
                tokio::select! {
                    () = tokio::time::sleep(PROGRESS_INTERVAL) => {}
                    _ = &mut stopped => return,
                }
            }
        }));
        Self { stages, stop: Some(stop), task }
    }

    fn report(&self, stage: Stage) {
        self.stages.send_replace(Some(stage));
    }

    /// Stops showing progress; returns once no progress edit can arrive after the result.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Keeps up to [`render::MAX_SUGGESTIONS`] suggested prompts for the buttons under them;
/// returns their ids, in order.
pub async fn hold_suggestions(
    data: &Data,
    owner: &Owner,
    prompts: impl Iterator<Item = &String>,
) -> Result<Vec<HeldId>, BotError> {
    let mut held = Vec::new();
    for prompt in prompts.take(render::MAX_SUGGESTIONS) {
        let fields = GenerationFields { prompt: prompt.clone(), ..GenerationFields::default() };
        held.push(data.core.hold_request(owner, &fields).await?);
    }
    Ok(held)
}

/// The owner a Discord user acts as: their linked web account's, or their own.
pub async fn owner_of(data: &Data, user: &serenity::User) -> Result<Owner, BotError> {
    // The core refuses a banned person here, before any command or button does anything.
    Ok(data.core.person_for_discord(user.id.get()).await?)
}
