//! Chat threads: a `/chat` opens a thread, and the conversation continues there, by plain
//! replies when the bot may read message content, or by `/chat` inside the thread when not.
//! The turns are kept in the core's store under the thread's id, so any replica can answer.

use atelier_shared::chat::{ChatEvent, ChatMessage, StopReason};
use atelier_shared::claims::ClaimKind;
use atelier_shared::{Actor, Conversation};
use poise::serenity_prelude as serenity;

use crate::place::Place;
use crate::render::{MESSAGE_LIMIT, split_message};
use crate::respond::{PROGRESS_INTERVAL, retrying};
use crate::{BotError, Data};

/// Streams the model's answer into `channel`, editing the message in place as text arrives
/// (at most once per [`PROGRESS_INTERVAL`]) and continuing in a new message past Discord's
/// 2,000 characters. The core keeps the exchange once the answer is whole (before it shows as
/// finished, so a reply sent the moment it does already finds this turn in the history); an
/// answer that fails part of the way stays in the thread marked as cut off, with what to do,
/// and is not kept, so the conversation never holds half an exchange or our error text as the
/// assistant's words; the person asks again.
pub async fn answer(
    data: &Data,
    http: &serenity::Http,
    asker: &Actor,
    channel: serenity::ChannelId,
    conversation: Conversation,
    message: ChatMessage,
) -> Result<(), BotError> {
    let mut stream = data.core.converse(asker, &channel.to_string(), conversation, &message).await?;
    let mut live = LiveText::default();
    let mut last_flush = tokio::time::Instant::now();
    // Text arrived since the last flush: it is shown when the interval is up, even if the
    // model pauses, so no piece waits longer than one interval to be seen.
    let mut unshown = false;
    let mut stop = None;
    loop {
        let event = if unshown {
            tokio::select! {
                event = stream.next() => event,
                () = tokio::time::sleep_until(last_flush + PROGRESS_INTERVAL) => {
                    last_flush = tokio::time::Instant::now();
                    live.flush(http, channel, true).await?;
                    unshown = false;
                    continue;
                }
            }
        } else {
            stream.next().await
        };
        let Some(event) = event else { break };
        match event {
            Ok(ChatEvent::Text(text)) => {
                live.text.push_str(&text);
                unshown = true;
                if last_flush.elapsed() >= PROGRESS_INTERVAL {
                    // Counted from the flush's start, so the edits keep to the interval.
                    last_flush = tokio::time::Instant::now();
                    live.flush(http, channel, true).await?;
                    unshown = false;
                }
            }
            Ok(ChatEvent::Finished { stop_reason, .. }) => stop = Some(stop_reason),
            Err(error) => {
                if !error.is_user_error() {
                    tracing::error!(error = %error, "a chat reply failed: {error}");
                }
                let note = crate::error::capitalise(&error.user_message());
                if live.text.trim().is_empty() {
                    live.text = format!("*{note}*");
                } else {
                    live.text.truncate(live.text.trim_end().len());
                    live.text.push_str(&format!(" …\n\n*(The answer was cut off here. {note}.)*"));
                }
                break;
            }
        }
    }
    match stop {
        Some(StopReason::MaxTokens) => live.text.push_str("\n\n*(The answer reached its length limit.)*"),
        Some(StopReason::Filtered) => live.text.push_str("\n\n*(The answer was stopped by the content filter.)*"),
        _ => {}
    }
    if live.text.trim().is_empty() {
        live.text = "*(No answer.)*".into();
    }
    live.flush(http, channel, false).await?;
    Ok(())
}

/// The answer so far, and the messages showing it.
#[derive(Default)]
struct LiveText {
    text: String,
    messages: Vec<(serenity::MessageId, String)>,
}

impl LiveText {
    /// Shows the text so far: edits the messages whose part changed, adds messages as needed.
    async fn flush(
        &mut self,
        http: &serenity::Http,
        channel: serenity::ChannelId,
        typing: bool,
    ) -> Result<(), BotError> {
        // Leave room for the typing cursor.
        let mut pieces = split_message(&self.text, MESSAGE_LIMIT - 2);
        if typing && let Some(last) = pieces.last_mut() {
            last.push_str(" ▌");
        }
        for (index, piece) in pieces.into_iter().enumerate() {
            match self.messages.get_mut(index) {
                Some((_, shown)) if *shown == piece => {}
                Some((id, shown)) => {
                    let edit = serenity::EditMessage::new().content(piece.clone());
                    let id = *id;
                    retrying(|| channel.edit_message(http, id, edit.clone())).await?;
                    *shown = piece;
                }
                None => {
                    let create = serenity::CreateMessage::new()
                        .content(piece.clone())
                        .allowed_mentions(serenity::CreateAllowedMentions::new());
                    let sent = retrying(|| channel.send_message(http, create.clone())).await?;
                    self.messages.push((sent.id, piece));
                }
            }
        }
        Ok(())
    }
}

/// A plain message in a chat thread (needs the message-content intent): answers it when
/// the thread is one of ours and the author is a person. Every replica of the bot receives
/// the message, and a message has no acknowledgement to race for, so the replicas race for
/// a claim on it in the store instead and only the winner answers.
pub async fn on_message(data: &Data, context: &serenity::Context, message: &serenity::Message) -> Result<(), BotError> {
    let http = context.http.as_ref();
    if message.author.bot || message.content.trim().is_empty() || !data.message_content {
        return Ok(());
    }
    let Some(conversation) = data.core.conversation(&message.channel_id.to_string()).await? else {
        return Ok(());
    };
    if !data.core.claim_once(ClaimKind::ChatMessage, &message.id.to_string()).await? {
        tracing::debug!(message.id = %message.id, "another replica claimed this chat message; leaving it to that one");
        return Ok(());
    }
    let chat_message = match ChatMessage::parse(&message.content) {
        Ok(chat_message) => chat_message,
        Err(invalid) => {
            let reply = serenity::CreateMessage::new()
                .content(crate::error::capitalise(invalid.message()))
                .reference_message(message);
            retrying(|| message.channel_id.send_message(http, reply.clone())).await?;
            return Ok(());
        }
    };
    let roles = message.member.as_ref().map(|member| member.roles.as_slice()).unwrap_or_default();
    let place = Place::new(&context.cache, message.guild_id, message.channel_id, roles);
    let asker = place.actor(crate::work::owner_of(data, &message.author).await?);
    answer(data, http, &asker, message.channel_id, conversation, chat_message).await
}
