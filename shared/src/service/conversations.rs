//! Chat, conversations kept across messages, prompt critiques and image descriptions.

use serde::{Deserialize, Serialize};

use futures::StreamExt as _;

use crate::chat::{ChatEvent, ChatMessage, ChatMode, ChatStream, ChatTurn, Speaker, StopReason, TokenUsage};
use crate::checker::Critique;
use crate::error::Result;
use crate::gallery::Owner;
use crate::images::CheckedImage;
use crate::pricing::Tokens;
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

    /// A conversation with nothing said yet.
    pub fn new(owner: Owner, mode: ChatMode) -> Self {
        Self { owner, mode, turns: Vec::new() }
    }

    /// Adds one exchange: what the person said and the whole reply.
    pub fn push_exchange(&mut self, said: &str, reply: &str) {
        self.push(ChatTurn { speaker: Speaker::User, text: said.to_string() });
        self.push(ChatTurn { speaker: Speaker::Assistant, text: reply.to_string() });
    }

    /// Adds a turn, forgetting the oldest beyond [`Self::MAX_TURNS`].
    pub fn push(&mut self, turn: ChatTurn) {
        self.turns.push(turn);
        if self.turns.len() > Self::MAX_TURNS {
            let excess = self.turns.len() - Self::MAX_TURNS;
            self.turns.drain(..excess);
        }
    }
}

/// What the instructions and the answer's schema add to a critique, a description or an
/// appeal (their models report no usage to us, so these calls are estimated): about the
/// length of the instructions Atelier sends with each.
pub(super) const INSTRUCTION_TOKENS: u32 = 1_000;

/// One exchange being answered: the model's reply as it streams. When the reply ends
/// cleanly the exchange keeps itself in its conversation (the person's message and the whole
/// reply, appended by compare-and-swap to what is stored now, so two messages answered at once
/// in one conversation both stay); a reply that breaks off keeps nothing, so a conversation
/// never holds half an exchange. With no conversation id (the API's stateless chat, where the
/// caller holds the history), nothing is stored.
pub struct Exchange {
    core: Atelier,
    /// Where the conversation is kept, and how it looks before this exchange.
    kept_as: Option<String>,
    conversation: Conversation,
    said: String,
    reply: String,
    stream: ChatStream,
    over: bool,
    /// The tokens the message's picture takes, for the estimate when the model reports none.
    picture_tokens: u32,
}

impl Exchange {
    /// The next piece of the reply. The last is [`ChatEvent::Finished`], given only once the
    /// exchange is kept; an error ends the exchange, keeping nothing. A stream that ends
    /// without saying why finishes as a whole answer.
    pub async fn next(&mut self) -> Option<Result<ChatEvent>> {
        if self.over {
            return None;
        }
        let event = match self.stream.next().await {
            Some(Ok(ChatEvent::Text(piece))) => {
                self.reply.push_str(&piece);
                return Some(Ok(ChatEvent::Text(piece)));
            }
            Some(Err(error)) => {
                self.over = true;
                // The model ran as far as it got: that much is charged.
                self.charge(None).await;
                return Some(Err(error));
            }
            Some(Ok(finished @ ChatEvent::Finished { .. })) => finished,
            None => ChatEvent::Finished { stop_reason: StopReason::EndTurn, usage: None },
        };
        self.over = true;
        let usage = match &event {
            ChatEvent::Finished { usage, .. } => *usage,
            ChatEvent::Text(_) => None,
        };
        self.charge(usage).await;
        // Owned copies, so no shared borrow of the stream is held across the write.
        let kept = keep_exchange(
            self.core.clone(),
            self.kept_as.clone(),
            self.conversation.clone(),
            self.said.clone(),
            self.reply.clone(),
        );
        Some(kept.await.map(|()| event))
    }

    /// Charges the exchange to its person: the model's own count of tokens when it gave one,
    /// else an estimate from what was sent and what came back.
    /// (An owned future, so no borrow of the stream, which is not `Sync`, is held across the
    /// write.)
    fn charge(&self, usage: Option<TokenUsage>) -> impl Future<Output = ()> + Send + 'static {
        let tokens = usage.map(Tokens::from).unwrap_or_else(|| {
            let sent: usize = self.conversation.turns.iter().map(|turn| turn.text.chars().count()).sum();
            Tokens::estimate(sent + self.said.chars().count(), self.reply.chars().count())
                .plus_input(self.picture_tokens)
        });
        let (core, owner) = (self.core.clone(), self.conversation.owner.clone());
        async move { core.charge_text_call(&owner, "chat", tokens).await }
    }

    /// Reads the reply to its end, telling `on_text` each piece as it comes; the exchange is
    /// kept on the way (see [`Self::next`]). Returns why the reply stopped.
    pub async fn finish(&mut self, mut on_text: impl FnMut(&str)) -> Result<StopReason> {
        while let Some(event) = self.next().await {
            match event? {
                ChatEvent::Text(piece) => on_text(&piece),
                ChatEvent::Finished { stop_reason, .. } => return Ok(stop_reason),
            }
        }
        Ok(StopReason::EndTurn)
    }

    /// The reply so far.
    pub fn reply(&self) -> &str {
        &self.reply
    }

    /// The conversation with this exchange added, trimmed as it is kept: what a caller who
    /// holds the history sends back next time.
    pub fn history_after(&self) -> Vec<ChatTurn> {
        let mut conversation = self.conversation.clone();
        conversation.push_exchange(&self.said, &self.reply);
        conversation.turns
    }
}

/// Keeps an exchange in its conversation (see [`Exchange`]).
async fn keep_exchange(
    core: Atelier,
    kept_as: Option<String>,
    started_as: Conversation,
    said: String,
    reply: String,
) -> Result<()> {
    let Some(id) = kept_as else { return Ok(()) };
    let key = Atelier::key(format!("conversations/{id}.json"))?;
    core.records("conversation record")
        .update(&key, |stored: Option<Conversation>| {
            // Turns another message added meanwhile stay; this exchange goes after them.
            let mut conversation = stored.unwrap_or_else(|| started_as.clone());
            conversation.mode = started_as.mode;
            conversation.push_exchange(&said, &reply);
            Ok((conversation, ()))
        })
        .await
}

impl Atelier {
    /// Starts answering `message`, said by `actor`, in `conversation`, kept under the front
    /// end's `id` (a Discord thread, a web conversation); see [`Exchange`]. The conversation's
    /// owner pays, with the budget their roles give them when they are the one speaking.
    pub async fn converse(
        &self,
        actor: &Actor,
        id: &str,
        conversation: Conversation,
        message: &ChatMessage,
    ) -> Result<Exchange> {
        let role_budget = if actor.owner == conversation.owner { self.role_budget(actor).await } else { None };
        self.start_exchange(Some(id.to_string()), conversation, message, role_budget).await
    }

    /// Answers `message` after `history` that the caller keeps itself (the JSON API): nothing
    /// is stored, and the history comes back trimmed as a kept one would be.
    pub async fn converse_statelessly(
        &self,
        actor: &Actor,
        mode: ChatMode,
        history: Vec<ChatTurn>,
        message: &ChatMessage,
    ) -> Result<Exchange> {
        let conversation = Conversation { owner: actor.owner.clone(), mode, turns: history };
        self.start_exchange(None, conversation, message, self.role_budget(actor).await).await
    }

    async fn start_exchange(
        &self,
        kept_as: Option<String>,
        conversation: Conversation,
        message: &ChatMessage,
        role_budget: Option<crate::pricing::Usd>,
    ) -> Result<Exchange> {
        self.before_text_call(&conversation.owner, role_budget).await?;
        let stream = self.chat.reply(conversation.mode, &conversation.turns, message).await?;
        let picture_tokens =
            message.image().map_or(0, |image| Tokens::of_image(image.size().width, image.size().height));
        Ok(Exchange {
            core: self.clone(),
            kept_as,
            said: message.as_str().to_string(),
            conversation,
            reply: String::new(),
            stream,
            over: false,
            picture_tokens,
        })
    }

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

    /// The structured critique of a prompt, charged to the actor's budget.
    pub async fn check_prompt(&self, actor: &Actor, prompt: &Prompt) -> Result<Critique> {
        self.before_text_call(&actor.owner, self.role_budget(actor).await).await?;
        let critique = self.critic.critique(prompt).await?;
        let written: usize =
            [&critique.strengths, &critique.improvements, &critique.suggestions, &critique.negative_prompt_suggestions]
                .into_iter()
                .flatten()
                .chain(critique.improved_prompts.iter().map(|improved| &improved.prompt))
                .chain([&critique.explanation])
                .map(|text| text.chars().count())
                .sum();
        let tokens = Tokens::estimate(prompt.as_str().chars().count(), written).plus_input(INSTRUCTION_TOKENS);
        self.charge_text_call(&actor.owner, "critique", tokens).await;
        Ok(critique)
    }

    /// The picture a person points at (an upload, checked off the async workers, or a gallery
    /// image) for describing or for a chat message.
    pub async fn source_image(&self, actor: &Actor, source: EditSource) -> Result<CheckedImage> {
        match source {
            EditSource::Upload(bytes) => crate::images::check_upload(&actor.owner, bytes, "the uploaded image").await,
            EditSource::Gallery(image) => self.stored_source(actor, &image).await,
        }
    }

    /// [`Self::describe`] of the picture a person points at.
    pub async fn describe_source(&self, actor: &Actor, source: EditSource) -> Result<Vec<String>> {
        self.describe(actor, &self.source_image(actor, source).await?).await
    }

    /// Four prompts that would draw something like `image` (the `/describe` feature),
    /// charged to the actor's budget.
    pub async fn describe(&self, actor: &Actor, image: &CheckedImage) -> Result<Vec<String>> {
        self.before_text_call(&actor.owner, self.role_budget(actor).await).await?;
        let prompts = self.chat.describe(image).await?;
        let written = prompts.iter().map(|prompt| prompt.chars().count()).sum();
        let tokens = Tokens::estimate(0, written)
            .plus_input(Tokens::of_image(image.size().width, image.size().height))
            .plus_input(INSTRUCTION_TOKENS);
        self.charge_text_call(&actor.owner, "describe", tokens).await;
        Ok(prompts)
    }
}
