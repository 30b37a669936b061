//! How results look in Discord: the image files, an embed with what made them, and the
//! buttons under them. Every button's `custom_id` carries the image's owner and id, so a
//! handler loads everything it needs from the gallery: buttons keep working after a restart
//! and on another replica.

use atelier_shared::checker::Critique;
use atelier_shared::gallery::{ImageId, ImageRecord, Owner};
use atelier_shared::jobs::JobId;
use atelier_shared::{HeldId, HeldRef, ImageRef, JobRef, Owned};
use poise::serenity_prelude as serenity;
use unicode_segmentation::UnicodeSegmentation;

/// Discord's longest message content.
pub const MESSAGE_LIMIT: usize = 2_000;
/// Discord's longest embed description.
pub const EMBED_DESCRIPTION_LIMIT: usize = 4_096;
/// Discord's longest embed field value.
pub const FIELD_LIMIT: usize = 1_024;

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Variation,
    Edit,
    ZoomOut,
    RemoveBackground,
    Upscale,
    Reroll,
    Details,
    SendToDm,
    /// Gives the image a public page and a place in this server's public gallery.
    Publish,
    /// Takes it off them again.
    Unpublish,
    Delete,
    /// Runs a request kept in the core (a suggestion from /describe or /check).
    ImagineHeld,
    /// Appeals a refused request kept in the core.
    Appeal,
    /// Calls back a waiting job; the target's id is the job's (both are ULIDs).
    Cancel,
}

impl Action {
    const ALL: [Self; 14] = [
        Self::Variation,
        Self::Edit,
        Self::ZoomOut,
        Self::RemoveBackground,
        Self::Upscale,
        Self::Reroll,
        Self::Details,
        Self::SendToDm,
        Self::Publish,
        Self::Unpublish,
        Self::Delete,
        Self::ImagineHeld,
        Self::Appeal,
        Self::Cancel,
    ];

    fn code(self) -> &'static str {
        match self {
            Self::Variation => "var",
            Self::Edit => "edit",
            Self::ZoomOut => "zoom",
            Self::RemoveBackground => "rmbg",
            Self::Upscale => "up",
            Self::Reroll => "reroll",
            Self::Details => "info",
            Self::SendToDm => "dm",
            Self::Publish => "pub",
            Self::Unpublish => "unpub",
            Self::Delete => "del",
            Self::ImagineHeld => "imagine",
            Self::Appeal => "appeal",
            Self::Cancel => "cancel",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Variation => "Variations",
            Self::Edit => "Edit",
            Self::ZoomOut => "Zoom out",
            Self::RemoveBackground => "Remove background",
            Self::Upscale => "Upscale",
            Self::Reroll => "Reroll",
            Self::Details => "Details",
            Self::SendToDm => "Send to DM",
            Self::Publish => "Publish",
            Self::Unpublish => "Unpublish",
            Self::Delete => "Delete",
            Self::ImagineHeld => "Imagine",
            Self::Appeal => "Appeal",
            Self::Cancel => "Cancel",
        }
    }
}

/// The prefix of every Atelier `custom_id`, so other components are left alone.
const PREFIX: &str = "atelier";

/// What a button points at, as its action says: an image, a request kept for the button
/// (a suggestion, a refused prompt), or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetId {
    Image(ImageId),
    Held(HeldId),
    Job(JobId),
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image(id) => id.fmt(formatter),
            Self::Held(id) => id.fmt(formatter),
            Self::Job(id) => id.fmt(formatter),
        }
    }
}

/// A button's target: what to do, to what, of whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub action: Action,
    pub owner: Owner,
    pub id: TargetId,
}

impl Target {
    pub fn new(action: Action, owner: &Owner, id: TargetId) -> Self {
        Self { action, owner: owner.clone(), id }
    }

    /// `atelier:{action}:{owner}:{id}`: at most 8 + 7 + 160 + 26 characters; owners are
    /// `discord-{id}` or `web-{uuid}`, so real ids stay well under Discord's 100.
    pub fn custom_id(&self) -> String {
        format!("{PREFIX}:{}:{}:{}", self.action.code(), self.owner, self.id)
    }

    /// Reads a `custom_id`; `None` for components that are not ours or are malformed. The
    /// action says which kind of id follows.
    pub fn parse(custom_id: &str) -> Option<Self> {
        let mut parts = custom_id.splitn(4, ':');
        if parts.next()? != PREFIX {
            return None;
        }
        let code = parts.next()?;
        let action = Action::ALL.into_iter().find(|action| action.code() == code)?;
        let owner = Owner::parse(parts.next()?).ok()?;
        let text = parts.next()?;
        let id = match action {
            Action::ImagineHeld | Action::Appeal => TargetId::Held(HeldId::parse(text)?),
            Action::Cancel => TargetId::Job(JobId::parse(text)?),
            _ => TargetId::Image(ImageId::parse(text).ok()?),
        };
        Some(Self { action, owner, id })
    }

    /// The image this button works on, for the actions on an image.
    pub fn image(&self) -> Option<ImageRef> {
        match self.id {
            TargetId::Image(id) => Some(Owned::new(self.owner.clone(), id)),
            _ => None,
        }
    }

    /// The kept request this button runs or appeals.
    pub fn held(&self) -> Option<HeldRef> {
        match self.id {
            TargetId::Held(id) => Some(Owned::new(self.owner.clone(), id)),
            _ => None,
        }
    }

    /// The job this button calls back.
    pub fn job(&self) -> Option<JobRef> {
        match self.id {
            TargetId::Job(id) => Some(Owned::new(self.owner.clone(), id)),
            _ => None,
        }
    }
}

/// One action's button on one image, labelled `label`.
fn image_button(record: &ImageRecord, action: Action, label: String) -> serenity::CreateButton {
    let target = Target { action, owner: record.owner.clone(), id: TargetId::Image(record.id) };
    let style = match action {
        Action::Delete => serenity::ButtonStyle::Danger,
        Action::Variation | Action::Reroll => serenity::ButtonStyle::Primary,
        _ => serenity::ButtonStyle::Secondary,
    };
    serenity::CreateButton::new(target.custom_id()).label(label).style(style)
}

/// The buttons under a result: every action for one image; for a batch, one row per image
/// with the actions people reach for first (Variations, Upscale, Edit, More, Delete, each
/// numbered as its image's embed is) and a last row to reroll. "More" shows the image's
/// details privately with all its buttons, so every image of a batch has every action within
/// Discord's five rows of five.
pub fn result_buttons(records: &[&ImageRecord]) -> Vec<serenity::CreateActionRow> {
    match records {
        [] => Vec::new(),
        [only] => buttons(only),
        batch => {
            let mut rows: Vec<_> = batch
                .iter()
                .take(4)
                .enumerate()
                .map(|(index, record)| {
                    let number = index + 1;
                    let actions = [
                        (Action::Variation, format!("Variations {number}")),
                        (Action::Upscale, format!("Upscale {number}")),
                        (Action::Edit, format!("Edit {number}")),
                        (Action::Details, format!("More {number}")),
                        (Action::Delete, format!("Delete {number}")),
                    ];
                    serenity::CreateActionRow::Buttons(
                        actions.into_iter().map(|(action, label)| image_button(record, action, label)).collect(),
                    )
                })
                .collect();
            rows.push(serenity::CreateActionRow::Buttons(vec![image_button(
                batch[0],
                Action::Reroll,
                Action::Reroll.label().to_string(),
            )]));
            rows
        }
    }
}

/// The buttons under one image.
pub fn buttons(record: &ImageRecord) -> Vec<serenity::CreateActionRow> {
    let button = |action: Action| image_button(record, action, action.label().to_string());
    // Discord allows five buttons a row.
    vec![
        serenity::CreateActionRow::Buttons(
            [Action::Variation, Action::Edit, Action::ZoomOut, Action::RemoveBackground, Action::Upscale]
                .into_iter()
                .map(button)
                .collect(),
        ),
        serenity::CreateActionRow::Buttons(
            [Action::Reroll, Action::Details, Action::SendToDm, Action::Publish, Action::Delete]
                .into_iter()
                .map(button)
                .collect(),
        ),
    ]
}

/// The file name an image is uploaded under.
pub fn file_name(record: &ImageRecord) -> String {
    format!("atelier-{}.{}", record.id, record.extension)
}

/// How an embed points at the image uploaded with it.
pub fn attachment_url(record: &ImageRecord) -> String {
    format!("attachment://{}", file_name(record))
}

/// The embed describing one image (without the picture: callers add it when they upload it).
pub fn embed(record: &ImageRecord) -> serenity::CreateEmbed {
    let title = record.prompt.as_deref().unwrap_or("An edited image");
    let mut embed = serenity::CreateEmbed::new()
        .description(truncate(title, 4_000))
        .field("Model", truncate(&record.model_id, 1_024), true)
        .field("Seed", record.seed.to_string(), true)
        .field("Size", record.size.to_string(), true);
    if let Some(mode) = record.parameters.edit_mode {
        embed = embed.field("Edit", mode.to_string(), true);
    }
    if record.engine == atelier_shared::engine::EngineKind::Demo {
        embed = embed.footer(serenity::CreateEmbedFooter::new("Drawn by the demo engine: no model is configured"));
    }
    embed
}

/// The details of one image, for the Details button.
pub fn details(record: &ImageRecord, gallery_url: &str) -> serenity::CreateEmbed {
    let mut embed = serenity::CreateEmbed::new()
        .title("Image details")
        .url(gallery_url)
        .description(truncate(record.prompt.as_deref().unwrap_or("An edited image"), EMBED_DESCRIPTION_LIMIT))
        .field("Model", truncate(&format!("{} ({})", record.model_id, record.model_family), FIELD_LIMIT), false)
        .field("Seed", record.seed.to_string(), true)
        .field("Size", record.size.to_string(), true)
        .field("Made", record.created_at.date().to_string(), true);
    if let Some(negative) = &record.negative_prompt {
        embed = embed.field("Left out", truncate(negative, FIELD_LIMIT), false);
    }
    if let Some(style) = &record.parameters.style {
        embed = embed.field("Style", truncate(style, FIELD_LIMIT), true);
    }
    if let Some(mode) = record.parameters.edit_mode {
        embed = embed.field("Edit", mode.to_string(), true);
    }
    if let Some(mask) = &record.parameters.mask_prompt {
        embed = embed.field("Region", truncate(mask, FIELD_LIMIT), true);
    }
    if let Some(parent) = record.parent {
        embed = embed.field("Made from", parent.to_string(), false);
    }
    embed.footer(serenity::CreateEmbedFooter::new(format!("Image {}", record.id)))
}

/// The prompt checker's critique, readable in an embed.
pub fn critique(prompt: &str, critique: &Critique) -> serenity::CreateEmbed {
    let bullet_list = |items: &[String]| {
        if items.is_empty() {
            "—".to_string()
        } else {
            items.iter().map(|item| format!("• {item}")).collect::<Vec<_>>().join("\n")
        }
    };
    let mut embed = serenity::CreateEmbed::new()
        .title("Prompt check")
        .description(truncate(prompt, EMBED_DESCRIPTION_LIMIT))
        .field("Strengths", truncate(&bullet_list(&critique.strengths), FIELD_LIMIT), false)
        .field("To improve", truncate(&bullet_list(&critique.improvements), FIELD_LIMIT), false)
        .footer(serenity::CreateEmbedFooter::new(format!("Reviewed by {}", critique.reviewer)));
    for (index, improved) in critique.improved_prompts.iter().take(MAX_SUGGESTIONS).enumerate() {
        embed = embed.field(
            format!("{}. Improved for {}", index + 1, improved.family),
            truncate(&improved.prompt, FIELD_LIMIT),
            false,
        );
    }
    embed
}

/// The most suggestion buttons under a critique or a description: one row of Discord's five.
pub const MAX_SUGGESTIONS: usize = 4;

/// One "Imagine N" button per held suggestion, in one row.
pub fn suggestion_buttons(owner: &Owner, held: &[HeldId]) -> Vec<serenity::CreateActionRow> {
    if held.is_empty() {
        return Vec::new();
    }
    let buttons = held
        .iter()
        .take(MAX_SUGGESTIONS)
        .enumerate()
        .map(|(index, id)| {
            serenity::CreateButton::new(Target::new(Action::ImagineHeld, owner, TargetId::Held(*id)).custom_id())
                .label(format!("Imagine {}", index + 1))
                .style(serenity::ButtonStyle::Primary)
        })
        .collect();
    vec![serenity::CreateActionRow::Buttons(buttons)]
}

/// The Appeal button under a refusal.
/// The Cancel button under a waiting job's progress.
pub fn cancel_button(owner: &Owner, job: JobId) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(Target::new(Action::Cancel, owner, TargetId::Job(job)).custom_id())
            .label(Action::Cancel.label())
            .style(serenity::ButtonStyle::Secondary),
    ])
}

/// The Try again button under an interrupted job's answer: runs the request kept for it.
pub fn try_again_button(owner: &Owner, held: HeldId) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(Target::new(Action::ImagineHeld, owner, TargetId::Held(held)).custom_id())
            .label("Try again")
            .style(serenity::ButtonStyle::Primary),
    ])
}

pub fn appeal_button(owner: &Owner, held: HeldId) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(Target::new(Action::Appeal, owner, TargetId::Held(held)).custom_id())
            .label("Appeal")
            .style(serenity::ButtonStyle::Secondary),
    ])
}

/// Splits text into messages of at most `limit` characters, at sentence ends where it can,
/// else at word ends, else anywhere: a long chat answer reads as several whole messages.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    let push_piece = |piece: &str, current: &mut String, messages: &mut Vec<String>| {
        if current.chars().count() + piece.chars().count() > limit && !current.is_empty() {
            messages.push(std::mem::take(current).trim_end().to_string());
        }
        current.push_str(piece);
    };
    for sentence in text.split_sentence_bounds() {
        if sentence.chars().count() <= limit {
            push_piece(sentence, &mut current, &mut messages);
            continue;
        }
        // A sentence longer than a message: fall back to words, then to characters.
        for word in sentence.split_word_bounds() {
            if word.chars().count() <= limit {
                push_piece(word, &mut current, &mut messages);
            } else {
                let characters: Vec<char> = word.chars().collect();
                for chunk in characters.chunks(limit) {
                    push_piece(&chunk.iter().collect::<String>(), &mut current, &mut messages);
                }
            }
        }
    }
    if !current.trim().is_empty() {
        messages.push(current.trim_end().to_string());
    }
    messages.retain(|message| !message.trim().is_empty());
    messages
}

/// Cuts text to Discord's limits on a character boundary, with an ellipsis.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_and_stay_within_discords_limit() {
        let target = Target {
            action: Action::RemoveBackground,
            owner: Owner::web_account("6f1c2a34-1b2c-4d5e-8f90-1234567890ab").unwrap(),
            id: TargetId::Image(ImageId::new()),
        };
        let custom_id = target.custom_id();
        assert!(custom_id.len() <= 100, "{custom_id}");
        assert_eq!(Target::parse(&custom_id), Some(target));
        assert_eq!(Target::parse("someone-else:var:x:y"), None);
        assert_eq!(Target::parse("atelier:var:discord-1:not-an-id"), None);
        // The action says which kind of id follows, and each kind reads back as itself.
        let job = JobId::parse("01JF0000000000000000000000").unwrap();
        let cancel = Target::new(Action::Cancel, &Owner::discord(7), TargetId::Job(job));
        assert_eq!(Target::parse(&cancel.custom_id()).and_then(|target| target.job()).map(|job| job.id), Some(job));
        let appeal = Target::parse(&cancel.custom_id().replace(":cancel:", ":appeal:")).unwrap();
        assert!(appeal.job().is_none() && appeal.held().is_some());
    }

    #[test]
    fn long_text_is_split_at_sentence_ends_within_the_limit() {
        let sentence = "This sentence is about forty characters. ";
        let text = sentence.repeat(120);
        let messages = split_message(&text, MESSAGE_LIMIT);
        assert!(messages.len() >= 3);
        for message in &messages {
            assert!(message.chars().count() <= MESSAGE_LIMIT);
            assert!(message.ends_with('.'), "split mid-sentence: {:?}", &message[message.len() - 20..]);
        }
        assert_eq!(messages.concat().replace(' ', ""), text.replace(' ', ""));
        let unbroken = "x".repeat(4_500);
        let pieces = split_message(&unbroken, MESSAGE_LIMIT);
        assert_eq!(pieces.iter().map(String::len).collect::<Vec<_>>(), vec![2_000, 2_000, 500]);
    }
}
