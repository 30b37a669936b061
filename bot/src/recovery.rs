//! Answering a person whose image job was interrupted: the process running it stopped
//! before the images were made (a deploy, a crash). Another replica, or the next start,
//! finds the job in the store with the interaction it came from, gives its images back, and
//! calls this to say so where the person asked, with a Try again button.

use std::sync::Arc;

use async_trait::async_trait;
use atelier_shared::Atelier;
use atelier_shared::jobs::{JobAnswerer, JobKind, ledger::JobRecord};
use poise::serenity_prelude as serenity;

use crate::render::{self, truncate};
use crate::respond::{Outgoing, Responder};

/// The bot's [`JobAnswerer`].
pub struct DiscordAnswerer {
    http: Arc<serenity::Http>,
    core: Atelier,
}

impl DiscordAnswerer {
    pub fn new(http: Arc<serenity::Http>, core: Atelier) -> Self {
        Self { http, core }
    }
}

#[async_trait]
impl JobAnswerer for DiscordAnswerer {
    async fn answer_interrupted(&self, job: &JobRecord) -> atelier_shared::Result<()> {
        let Some(responder) =
            job.details.reply.as_ref().and_then(|route| Responder::from_route(self.http.clone(), route))
        else {
            return Ok(());
        };
        let what = match (&job.details.kind, &job.details.fields) {
            (JobKind::Generate, Some(fields)) => format!("**{}**", truncate(&fields.prompt, 300)),
            (JobKind::Edit, _) => "Your edit".into(),
            (JobKind::Generate, None) => "Your images".into(),
        };
        let images = if job.images == 1 { "1 image".to_string() } else { format!("{} images", job.images) };
        let mut outgoing = Outgoing::text(format!(
            "{what}\nAtelier restarted before this was finished, so it was not drawn: your {images} went back to \
             today's quota."
        ));
        // A generation can be asked for again with one press; its request is kept for the button.
        if let Some(fields) = &job.details.fields {
            let held = self.core.hold_request(&job.owner, fields).await?;
            outgoing.components = vec![render::try_again_button(&job.owner, held)];
        }
        responder
            .finish(outgoing)
            .await
            .map_err(|error| atelier_shared::Error::operator("telling a person their job was interrupted", error))
    }
}
