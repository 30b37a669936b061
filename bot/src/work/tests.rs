//! How a job is answered in Discord, tested without Discord: a [`Reply`] that records what
//! would have been said, over a core on the demo engine with a folder store of its own.

use std::sync::{Arc, Mutex};

use atelier_shared::gallery::{Origin, Owner};
use atelier_shared::jobs::ReplyRoute;
use atelier_shared::request::GenerationFields;
use atelier_shared::startup;
use atelier_shared::{Actor, Atelier};
use poise::serenity_prelude as serenity;

use super::*;
use crate::render::{Action, Target, TargetId};

/// What a job said, in order.
#[derive(Debug, Clone)]
enum Said {
    Progress(String),
    Finished { files: usize, buttons: Vec<Target> },
    Refused { text: String, buttons: Vec<Target> },
    Elsewhere { channel: u64, text: String },
}

#[derive(Clone, Default)]
struct RecordedReply {
    said: Arc<Mutex<Vec<Said>>>,
}

impl RecordedReply {
    fn said(&self) -> Vec<Said> {
        self.said.lock().map(|said| said.clone()).unwrap_or_default()
    }

    fn record(&self, said: Said) {
        if let Ok(mut all) = self.said.lock() {
            all.push(said);
        }
    }
}

/// The Atelier buttons in some action rows, read back from the JSON Discord would receive.
fn targets(rows: &[serenity::CreateActionRow]) -> Vec<Target> {
    let json = serde_json::to_value(rows).unwrap();
    let mut found = Vec::new();
    for row in json.as_array().unwrap() {
        for component in row["components"].as_array().unwrap() {
            if let Some(target) = component["custom_id"].as_str().and_then(Target::parse) {
                found.push(target);
            }
        }
    }
    found
}

#[async_trait::async_trait]
impl Reply for RecordedReply {
    async fn show_progress(&self, text: &str, _components: Vec<serenity::CreateActionRow>) {
        self.record(Said::Progress(text.to_string()));
    }

    async fn finish(&self, outgoing: Outgoing) -> Result<(), BotError> {
        self.record(Said::Finished { files: outgoing.files.len(), buttons: targets(&outgoing.components) });
        Ok(())
    }

    async fn refuse(&self, text: &str, components: Vec<serenity::CreateActionRow>) -> Result<(), BotError> {
        self.record(Said::Refused { text: text.to_string(), buttons: targets(&components) });
        Ok(())
    }

    async fn post_elsewhere(&self, channel: serenity::ChannelId, text: &str) -> Result<(), BotError> {
        self.record(Said::Elsewhere { channel: channel.get(), text: text.to_string() });
        Ok(())
    }

    fn reply_route(&self) -> ReplyRoute {
        ReplyRoute { front_end: "recorded".into(), route: serde_json::Value::Null }
    }

    fn asked_by(&self) -> (serenity::UserId, serenity::ChannelId) {
        (serenity::UserId::new(7), serenity::ChannelId::new(70))
    }
}

/// The bot's shared state over a demo core storing in `folder`, logging refusals to channel 99.
async fn data(folder: &std::path::Path) -> Data {
    let core: Atelier = startup::demo_core_in(folder, &[]).await.unwrap();
    Data {
        core,
        public_url: url::Url::parse("https://atelier.example/").unwrap(),
        moderation_channel: Some(serenity::ChannelId::new(99)),
        message_content: false,
    }
}

fn discord_person() -> Actor {
    Actor::new(Owner::discord(7), Origin::Discord { guild_id: Some(1), channel_id: 70, message_id: None })
}

async fn generate_for(data: &Data, prompt: &str, count: &str) -> Vec<Said> {
    let reply = RecordedReply::default();
    let fields = GenerationFields {
        prompt: prompt.into(),
        size: Some("256x256".into()),
        count: Some(count.into()),
        ..GenerationFields::default()
    };
    let plan = data.core.plan_generation(&discord_person(), &fields).await.unwrap();
    generate(data, &reply, &discord_person(), &plan, Appeal::No).await.unwrap();
    reply.said()
}

#[tokio::test]
async fn a_result_replaces_the_progress_with_the_images_and_their_buttons() {
    let folder = tempfile::tempdir().unwrap();
    let data = data(folder.path()).await;

    let said = generate_for(&data, "a lighthouse at dusk", "1").await;

    let Some(Said::Finished { files, buttons, .. }) = said.last() else { panic!("no result: {said:?}") };
    assert_eq!(*files, 1);
    let page = data.core.gallery_page(&discord_person(), &Default::default(), None, 10).await.unwrap();
    let made = page.records[0].id;
    assert!(buttons.iter().any(|button| button.action == Action::Variation), "{buttons:?}");
    for button in buttons {
        assert_eq!((button.id, &button.owner), (TargetId::Image(made), &Owner::discord(7)), "{button:?}");
    }
    assert!(!said.iter().any(|said| matches!(said, Said::Refused { .. } | Said::Elsewhere { .. })), "{said:?}");
    // Any progress shown names what is being made.
    for said in &said {
        if let Said::Progress(text) = said {
            assert!(text.contains("a lighthouse at dusk"), "{text}");
        }
    }
}

#[tokio::test]
async fn a_refused_prompt_is_told_only_to_the_asker_and_logged_for_moderators() {
    let folder = tempfile::tempdir().unwrap();
    let data = data(folder.path()).await;

    let said = generate_for(&data, "csam", "1").await;

    assert!(!said.iter().any(|said| matches!(said, Said::Finished { .. })), "nothing refused is posted: {said:?}");
    let refusal = said.iter().find_map(|said| match said {
        Said::Refused { text, buttons } => Some((text.clone(), buttons.clone())),
        _ => None,
    });
    let (text, buttons) = refusal.expect("the asker is told");
    assert!(text.starts_with("Not drawn:"), "{text}");
    assert!(buttons.is_empty(), "a blocked term cannot be appealed: {buttons:?}");
    let logged = said.iter().find_map(|said| match said {
        Said::Elsewhere { channel: 99, text } => Some(text.clone()),
        _ => None,
    });
    let logged = logged.expect("the moderation channel hears of it");
    assert!(logged.contains("<@7>") && logged.contains("<#70>"), "{logged}");
    let page = data.core.gallery_page(&discord_person(), &Default::default(), None, 10).await.unwrap();
    assert!(page.records.is_empty(), "nothing was made");
}

#[tokio::test]
async fn every_image_of_a_batch_gets_its_own_actions() {
    let folder = tempfile::tempdir().unwrap();
    let data = data(folder.path()).await;

    let said = generate_for(&data, "four foxes in snow", "4").await;

    let Some(Said::Finished { files, buttons, .. }) = said.last() else { panic!("no result: {said:?}") };
    assert_eq!(*files, 4);
    let page = data.core.gallery_page(&discord_person(), &Default::default(), None, 10).await.unwrap();
    assert_eq!(page.records.len(), 4);
    for record in &page.records {
        let own: Vec<Action> = buttons
            .iter()
            .filter(|button| button.id == TargetId::Image(record.id))
            .map(|button| button.action)
            .collect();
        for action in [Action::Variation, Action::Upscale, Action::Edit, Action::Details, Action::Delete] {
            assert!(own.contains(&action), "image {} lacks {action:?}: {own:?}", record.id);
        }
    }
    assert!(buttons.iter().any(|button| button.action == Action::Reroll));
    assert!(buttons.len() <= 25, "Discord allows five rows of five");
}
