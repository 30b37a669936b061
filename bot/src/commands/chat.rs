//! `/chat`: talk with Claude in a thread, in a mode such as the prompt coach.

use atelier_shared::Conversation;
use atelier_shared::chat::{ChatMessage, ChatMode};
use poise::serenity_prelude as serenity;

use super::acknowledge;
use crate::render::truncate;
use crate::respond::retrying;
use crate::{ApplicationContext, BotError, Data, threads, work};

pub fn commands() -> Vec<poise::Command<Data, BotError>> {
    vec![chat()]
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum Mode {
    #[name = "Prompt coach"]
    PromptCoach,
    #[name = "Idea generator"]
    IdeaGenerator,
    #[name = "Image-model expert"]
    ModelExpert,
    #[name = "Assistant"]
    Assistant,
}

impl From<Mode> for ChatMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::PromptCoach => Self::PromptCoach,
            Mode::IdeaGenerator => Self::IdeaGenerator,
            Mode::ModelExpert => Self::ModelExpert,
            Mode::Assistant => Self::Assistant,
        }
    }
}

/// Chat with Claude in a thread; inside the thread, /chat continues the conversation
#[poise::command(slash_command)]
async fn chat(
    ctx: ApplicationContext<'_>,
    #[description = "What to say"]
    #[max_length = 6000]
    message: String,
    #[description = "How Claude should help (default: assistant)"] mode: Option<Mode>,
) -> Result<(), BotError> {
    let data = ctx.data();
    let chat_message = ChatMessage::parse(&message)?;
    let http = ctx.serenity_context().http.clone();
    let existing = data.core.conversation(&ctx.interaction.channel_id.to_string()).await?;
    let responder = acknowledge(ctx, false).await?;
    let quoted = format!("<@{}>: {}", responder.user.id, truncate(chat_message.as_str(), 1_900));
    let outcome = async {
        match existing {
            // Inside one of our threads: the conversation goes on here.
            Some(conversation) => {
                responder.finish(crate::respond::Outgoing::text(quoted)).await?;
                let asker = responder.actor(work::owner_of(data, &responder.user).await?);
                threads::answer(data, &http, &asker, responder.channel_id, conversation, chat_message).await
            }
            None => {
                let mode = mode.map(ChatMode::from).unwrap_or_default();
                responder.finish(crate::respond::Outgoing::text(format!("{quoted}\n-# {}", mode.label()))).await?;
                let starter = responder.original_message().await?;
                let name = truncate(chat_message.as_str().lines().next().unwrap_or("Chat"), 90);
                let thread =
                    serenity::CreateThread::new(name).auto_archive_duration(serenity::AutoArchiveDuration::OneDay);
                let thread = retrying(|| {
                    responder.channel_id.create_thread_from_message(http.as_ref(), starter.id, thread.clone())
                })
                .await?;
                let owner = work::owner_of(data, &responder.user).await?;
                let conversation = Conversation { owner: owner.clone(), mode, turns: Vec::new() };
                data.core.remember_conversation(&thread.id.to_string(), &conversation).await?;
                threads::answer(data, &http, &responder.actor(owner), thread.id, conversation, chat_message).await
            }
        }
    }
    .await;
    if let Err(BotError::Core(error)) = &outcome {
        return work::fail(&responder, error).await;
    }
    outcome
}
