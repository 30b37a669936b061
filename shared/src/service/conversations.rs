//! Chat, conversations kept across messages, prompt critiques and image descriptions.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, ChatMode, ChatStream, ChatTurn};
use crate::checker::Critique;
use crate::error::Result;
use crate::gallery::Owner;
use crate::images::CheckedImage;
use crate::request::Prompt;

use super::{Actor, Atelier, EditSource};

/// A conversation kept going across messages (a Discord chat thread): whose it is and in
/// which mode, so any replica can answer the next message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub owner: Owner,
    pub mode: ChatMode,
    /// The turns so far, oldest first; the chat model trims what it sends to its budget.
    #[serde(default)]
    pub turns: Vec<ChatTurn>,
}

impl Conversation {
    /// The most turns kept; older ones fall out of the model's budget long before this.
    pub const MAX_TURNS: usize = 60;

    /// Adds a turn, forgetting the oldest beyond [`Self::MAX_TURNS`].
    pub fn push(&mut self, turn: ChatTurn) {
        self.turns.push(turn);
        if self.turns.len() > Self::MAX_TURNS {
            let excess = self.turns.len() - Self::MAX_TURNS;
            self.turns.drain(..excess);
        }
    }
}

impl Atelier {
    /// Remembers a conversation under an id of the front end's (a Discord thread id).
    pub async fn remember_conversation(&self, id: &str, conversation: &Conversation) -> Result<()> {
        let key = Self::key(format!("conversations/{id}.json"))?;
        self.records("conversation record").overwrite(&key, conversation).await
    }

    /// A conversation remembered earlier, if any.
    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        let key = Self::key(format!("conversations/{id}.json"))?;
        self.records("conversation record").get(&key).await
    }

    /// A conversation of the actor's own; another person's is `None`, like a missing one, so
    /// ids cannot be probed.
    pub async fn own_conversation(&self, actor: &Actor, id: &str) -> Result<Option<Conversation>> {
        Ok(self.conversation(id).await?.filter(|conversation| conversation.owner == actor.owner))
    }

    /// The structured critique of a prompt.
    pub async fn check_prompt(&self, prompt: &Prompt) -> Result<Critique> {
        self.critic.critique(prompt).await
    }

    /// The picture a person points at (an upload, checked off the async workers, or a gallery
    /// image) for describing or for a chat message.
    pub async fn source_image(&self, source: EditSource) -> Result<CheckedImage> {
        match source {
            EditSource::Upload(bytes) => crate::images::check_upload(bytes, "the uploaded image").await,
            EditSource::Gallery(image) => Ok(self.stored_source(&image).await?.1),
        }
    }

    /// [`Self::describe`] of the picture a person points at.
    pub async fn describe_source(&self, source: EditSource) -> Result<Vec<String>> {
        self.describe(&self.source_image(source).await?).await
    }

    /// Four prompts that would draw something like `image` (the `/describe` feature).
    pub async fn describe(&self, image: &CheckedImage) -> Result<Vec<String>> {
        self.chat.describe(image).await
    }

    /// Starts a streamed chat reply.
    pub async fn chat(&self, mode: ChatMode, history: &[ChatTurn], message: &ChatMessage) -> Result<ChatStream> {
        self.chat.reply(mode, history, message).await
    }
}
