//! What the API sends and receives, in its own terms: the core's records are turned into
//! these views, so the API's shape (and its document) does not change when the store's does.

use atelier_shared::chat::{ChatTurn, Speaker};
use atelier_shared::checker::Critique;
use atelier_shared::engine::ModelInfo;
use atelier_shared::gallery::{ImageRecord, SessionSummary};
use atelier_shared::jobs::Usage;
use atelier_shared::preferences::Preferences;
use atelier_shared::request::{GenerationFields, Shape};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// One image in the caller's gallery.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    /// The image's id (a ULID).
    #[schema(example = "01J9ZQ3V8X6K4M2N1P0R7S5T3W")]
    pub id: String,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    /// The provider's model id.
    pub model_id: String,
    /// The model's request family (`stability-sdxl`, `amazon-titan`, `demo`, …).
    pub model_family: String,
    /// `bedrock`, or `demo` when no model was called.
    pub engine: String,
    pub seed: u32,
    pub width: u32,
    pub height: u32,
    /// The aspect ratio asked for (`16:9`), when one was.
    pub aspect: Option<String>,
    pub style: Option<String>,
    /// Palette colours as `#RRGGBB`.
    pub colors: Vec<String>,
    /// The edit that made it, for edited images.
    pub edit_mode: Option<String>,
    /// The region of an edit, in words.
    pub mask_prompt: Option<String>,
    pub similarity: Option<f32>,
    /// The image this one was made from.
    pub parent: Option<String>,
    /// Where it was made: `web`, `discord` or `cli`.
    pub source: String,
    pub session: Option<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// The media type of the full image.
    pub media_type: String,
    /// Where to get the full image.
    pub file_url: String,
    /// Where to get a small JPEG of it.
    pub thumbnail_url: String,
}

impl From<&ImageRecord> for ImageView {
    fn from(record: &ImageRecord) -> Self {
        let id = record.id.to_string();
        Self {
            prompt: record.prompt.clone(),
            negative_prompt: record.negative_prompt.clone(),
            model_id: record.model_id.clone(),
            model_family: record.model_family.clone(),
            engine: record.engine.to_string(),
            seed: record.seed.0,
            width: record.size.width,
            height: record.size.height,
            aspect: match record.parameters.shape {
                Some(Shape::Aspect(aspect)) => Some(aspect.to_string()),
                _ => None,
            },
            style: record.parameters.style.clone(),
            colors: record.parameters.colors.clone(),
            edit_mode: record.parameters.edit_mode.map(|mode| mode.as_str().to_string()),
            mask_prompt: record.parameters.mask_prompt.clone(),
            similarity: record.parameters.similarity,
            parent: record.parent.map(|parent| parent.to_string()),
            source: record.origin.kind().as_str().to_string(),
            session: record.session.as_ref().map(|session| session.as_str().to_string()),
            created_at: record.created_at.format(&Rfc3339).unwrap_or_default(),
            media_type: record.media_type.clone(),
            file_url: format!("/api/images/{id}/file"),
            thumbnail_url: format!("/api/images/{id}/thumbnail"),
            id,
        }
    }
}

/// One page of the gallery, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagePage {
    pub images: Vec<ImageView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An image with the images made from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageDetail {
    pub image: ImageView,
    /// Edits and variations made from this image, newest first.
    pub children: Vec<ImageView>,
}

/// A published image: where anyone can see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedView {
    /// The image's id.
    pub id: String,
    /// Its public page, which needs no sign-in and unfurls with the picture.
    pub public_url: String,
    /// The public gallery of the Discord server it was made in, if any.
    pub server_gallery_url: Option<String>,
}

/// The caller's jobs and images today.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Jobs being drawn now.
    pub running: usize,
    /// Jobs waiting their turn.
    pub queued: usize,
    pub images_today: u32,
    /// The daily limit; absent when there is none.
    pub daily_images: Option<u32>,
    /// Images left today; absent when there is no limit.
    pub images_left: Option<u32>,
    /// The estimated cost of today's model calls (images, chat, critiques, descriptions,
    /// appeals), in US dollars.
    pub spent_today_usd: f64,
    /// The daily budget in US dollars; absent when there is none.
    pub daily_budget_usd: Option<f64>,
    /// What is left of it; absent when there is no budget.
    pub budget_left_usd: Option<f64>,
}

impl From<&Usage> for UsageView {
    fn from(usage: &Usage) -> Self {
        Self {
            running: usage.running,
            queued: usage.queued,
            images_today: usage.images_today,
            daily_images: usage.daily_images,
            images_left: usage.images_left(),
            spent_today_usd: usage.spent_today.as_dollars(),
            daily_budget_usd: usage.daily_budget.map(|budget| budget.as_dollars()),
            budget_left_usd: usage.budget_left().map(|left| left.as_dollars()),
        }
    }
}

/// The Discord account linked to the caller's web account.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscordLinkView {
    /// The Discord user id, as text (it does not fit a JavaScript number).
    #[schema(example = "123456789012345678")]
    pub discord_user_id: String,
    /// When the accounts were linked (RFC 3339).
    pub linked_at: String,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The caller's gallery owner (`web-{subject}`, or `local-operator` in local mode).
    pub owner: String,
    /// How the request was signed in: `access_token`, `session` or `local`.
    pub signed_in_with: String,
    /// The sign-in provider's subject, for access tokens.
    pub subject: Option<String>,
    /// A name to show: the provider's user name, or the session's display name.
    pub name: Option<String>,
    pub usage: UsageView,
    /// Whether Discord accounts can be linked on this installation.
    pub linking_available: bool,
    /// The linked Discord account, if any.
    pub discord_link: Option<DiscordLinkView>,
}

/// A model on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// The short name to pass as `model` (`sdxl`, `titan-v2`, …).
    pub alias: String,
    /// The provider's model id.
    pub id: String,
    pub family: String,
    pub label: String,
    /// Whether it makes images from a prompt (edit tools do not).
    pub can_generate: bool,
    /// The edit modes it does.
    pub edit_modes: Vec<String>,
}

impl From<ModelInfo> for ModelView {
    fn from(model: ModelInfo) -> Self {
        Self {
            alias: model.alias,
            id: model.id,
            family: model.family,
            label: model.label,
            can_generate: model.can_generate,
            edit_modes: model.edit_modes.iter().map(|mode| mode.as_str().to_string()).collect(),
        }
    }
}

/// The models on offer, the default first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelView>,
}

/// A number or its text: JSON callers send numbers, forms send text, and the core parses
/// both the same way. (One number type, so the document's `oneOf` has no overlap; every
/// number we take, up to a 32-bit seed, is exact as a double and prints without a `.0`.)
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NumberOrText {
    Number(f64),
    Text(String),
}

impl NumberOrText {
    pub fn into_text(self) -> String {
        match self {
            Self::Number(number) => number.to_string(),
            Self::Text(text) => text,
        }
    }
}

/// Colours as a list, or as one text separated by commas or spaces.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ColorList {
    List(Vec<String>),
    Text(String),
}

/// What to generate. Only `prompt` is required; the model's own limits are checked before
/// anything is charged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    #[schema(example = "a lighthouse in a storm, oil painting, dramatic light")]
    pub prompt: String,
    /// What to leave out.
    pub negative_prompt: Option<String>,
    /// A model alias from `/api/models`; the default model when absent.
    pub model: Option<String>,
    /// An aspect ratio such as `16:9` (or give `size`).
    pub aspect: Option<String>,
    /// Exact pixels such as `1024x1024` (or give `aspect`).
    pub size: Option<String>,
    /// 0 to 4294967295; random when absent.
    pub seed: Option<NumberOrText>,
    /// How many images, 1 to 4.
    pub count: Option<NumberOrText>,
    /// A style preset (Stability models).
    pub style: Option<String>,
    /// Palette colours as `#RRGGBB` (titan-v2, nova-canvas).
    pub colors: Option<ColorList>,
    /// How closely to follow the prompt (sdxl, titan, nova-canvas; each model has its range).
    pub cfg_scale: Option<NumberOrText>,
    /// Diffusion steps (sdxl).
    pub steps: Option<NumberOrText>,
    /// A session name to group the images under.
    pub session: Option<String>,
    /// Ask a stronger model to look again at a prompt the safety check refused (once).
    #[serde(default)]
    pub appeal: bool,
}

impl GenerateBody {
    /// The fields as every front end gives them to the core. A list of colours holds one
    /// colour per item (the text form is the one that separates them).
    pub fn fields(&self) -> Result<GenerationFields, atelier_shared::Invalid> {
        let colors = match &self.colors {
            None => None,
            Some(ColorList::Text(text)) => Some(text.clone()),
            Some(ColorList::List(list)) => {
                for item in list {
                    atelier_shared::request::HexColor::parse(item)?;
                }
                Some(list.join(","))
            }
        };
        Ok(GenerationFields {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            model: self.model.clone(),
            aspect: self.aspect.clone(),
            size: self.size.clone(),
            seed: self.seed.clone().map(NumberOrText::into_text),
            count: self.count.clone().map(NumberOrText::into_text),
            style: self.style.clone(),
            colors,
            cfg_scale: self.cfg_scale.clone().map(NumberOrText::into_text),
            steps: self.steps.clone().map(NumberOrText::into_text),
        })
    }
}

/// An edit, as a multipart form: the image to edit (`image`, a file, or `image_id` from the
/// gallery), the region (`mask`, a file at the image's size where white marks the region to change and black what stays, or
/// `mask_prompt` in words) and the edit's fields.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the multipart form for the OpenAPI document only")]
pub struct EditForm {
    /// inpaint, outpaint, variation, remove-background, replace, recolor or upscale.
    #[schema(example = "inpaint")]
    mode: String,
    /// A PNG, JPEG or WebP of up to 10 MiB (or give `image_id`).
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    image: Option<Vec<u8>>,
    /// An image from the caller's gallery (or give `image`).
    image_id: Option<String>,
    /// A mask image at the image's own size: white marks the region to change, black what stays.
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    mask: Option<Vec<u8>>,
    /// The region in words, such as "the sky" (or give `mask`).
    mask_prompt: Option<String>,
    /// What to paint (inpaint, replace, recolor).
    prompt: Option<String>,
    negative_prompt: Option<String>,
    /// A model alias; the right tool for the edit when absent.
    model: Option<String>,
    seed: Option<String>,
    /// How close a variation stays, 0.2 to 1.0.
    similarity: Option<String>,
    /// Which way an outpaint grows: all, left, right, up or down.
    direction: Option<String>,
    /// A session to put the result in; an edit of a gallery image stays in its session otherwise.
    session: Option<String>,
}

/// An image to describe, as a multipart form: `image`, a file, or `image_id` from the gallery.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the multipart form for the OpenAPI document only")]
pub struct DescribeForm {
    /// A PNG, JPEG or WebP of up to 10 MiB (or give `image_id`).
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    image: Option<Vec<u8>>,
    /// An image from the caller's gallery (or give `image`).
    image_id: Option<String>,
}

/// Prompts that would draw something like the image.
#[derive(Debug, Serialize, ToSchema)]
pub struct Description {
    pub prompts: Vec<String>,
}

/// A prompt to critique.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    #[schema(example = "a cat")]
    pub prompt: String,
}

/// An improved prompt for one model family.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImprovedPromptView {
    pub family: String,
    pub prompt: String,
}

/// The structured critique of a prompt.
#[derive(Debug, Serialize, ToSchema)]
pub struct CritiqueView {
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub suggestions: Vec<String>,
    /// Better prompts, one per model family: each can be sent to `/api/generate` as it is.
    pub improved_prompts: Vec<ImprovedPromptView>,
    pub negative_prompt_suggestions: Vec<String>,
    pub explanation: String,
    /// Who wrote it: a model id, or `local rules`.
    pub reviewer: String,
}

impl From<Critique> for CritiqueView {
    fn from(critique: Critique) -> Self {
        Self {
            strengths: critique.strengths,
            improvements: critique.improvements,
            suggestions: critique.suggestions,
            improved_prompts: critique
                .improved_prompts
                .into_iter()
                .map(|improved| ImprovedPromptView { family: improved.family, prompt: improved.prompt })
                .collect(),
            negative_prompt_suggestions: critique.negative_prompt_suggestions,
            explanation: critique.explanation,
            reviewer: critique.reviewer,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnView {
    /// `user` or `assistant`.
    #[schema(example = "user")]
    pub speaker: String,
    pub text: String,
}

impl TurnView {
    pub fn from_turn(turn: &ChatTurn) -> Self {
        let speaker = match turn.speaker {
            Speaker::User => "user",
            Speaker::Assistant => "assistant",
        };
        Self { speaker: speaker.into(), text: turn.text.clone() }
    }

    pub fn to_turn(&self) -> Result<ChatTurn, atelier_shared::Invalid> {
        let speaker = match self.speaker.trim().to_ascii_lowercase().as_str() {
            "user" => Speaker::User,
            "assistant" => Speaker::Assistant,
            other => {
                return Err(atelier_shared::Invalid::new(format!(
                    "`{other}` is not a speaker in the history: use user or assistant"
                )));
            }
        };
        Ok(ChatTurn { speaker, text: self.text.clone() })
    }
}

/// A message to the assistant. The conversation so far travels with each request, so the
/// server keeps no chat state.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// prompt-coach, idea-generator, model-expert or assistant (the default).
    pub mode: Option<String>,
    #[schema(example = "Ideas for a poster about the sea?")]
    pub message: String,
    /// The turns so far, oldest first.
    #[serde(default)]
    pub history: Vec<TurnView>,
    /// An image from the caller's gallery for the assistant to look at.
    pub image_id: Option<String>,
}

/// The assistant's whole reply (without `Accept: text/event-stream`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatReply {
    pub reply: String,
    /// Why the reply ended: end_turn, max_tokens or filtered.
    pub stop_reason: String,
    /// The conversation with this exchange added (the newest 60 turns, as a kept conversation): send it back as
    /// `history` with the next message.
    pub history: Vec<TurnView>,
}

/// One server-sent event of a streamed reply (`Accept: text/event-stream`): events named
/// `text` carry `{"text": …}` pieces of the reply, the last is `done` with the whole
/// [`ChatReply`], or `error` with an [`super::error::ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatTextEvent {
    pub text: String,
}

/// What kind of job.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKindName {
    Generate,
    Edit,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    /// In line for a slot (`position` says where, when this server holds it).
    Waiting,
    /// The safety checks are reading the prompt (and an appeal, when asked).
    Checking,
    /// The model is drawing.
    Running,
    /// The images are being kept in the gallery.
    Saving,
    /// Made: `images` holds them.
    Done,
    /// Ended without images: `error` says why.
    Failed,
    /// Called back before it started: nothing was charged.
    Cancelled,
}

/// Why a job ended without images.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobError {
    /// invalid, not_found, blocked, busy, operator, or cancelled.
    #[schema(example = "blocked")]
    pub error: String,
    /// What happened, in a sentence.
    pub message: String,
    /// Whether the refusal may be appealed once: `POST` to the job's `appeal_url` (or, for a
    /// generation, submit the same request with `appeal: true`).
    pub appealable: bool,
}

/// A job: made at once by `POST /api/generate` and `POST /api/edit`, then followed at its
/// `url` (or its `events_url` as server-sent events) until it is done, failed or cancelled.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobBody {
    /// The job's id (a ULID).
    #[schema(example = "01J9ZQ3V8X6K4M2N1P0R7S5T3W")]
    pub id: String,
    pub kind: JobKindName,
    pub state: JobStateName,
    /// While waiting on the server that holds it: 1 is next.
    pub position: Option<usize>,
    /// What was asked: the prompt, or the edit.
    pub summary: String,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// When done: the images, kept in the caller's gallery.
    pub images: Vec<ImageView>,
    /// When failed or cancelled: why.
    pub error: Option<JobError>,
    /// Where to read the job.
    pub url: String,
    /// Where to follow it as server-sent events (`job` events with this body, the last one final).
    pub events_url: String,
    /// Where to appeal its refusal once (a new job), when `error.appealable`.
    pub appeal_url: Option<String>,
}

impl From<&atelier_shared::JobView> for JobBody {
    fn from(view: &atelier_shared::JobView) -> Self {
        use atelier_shared::{FailureReason, JobState};
        let id = view.id.to_string();
        let (state, position, images, error) = match &view.state {
            JobState::Waiting { position } => (JobStateName::Waiting, *position, Vec::new(), None),
            JobState::Checking => (JobStateName::Checking, None, Vec::new(), None),
            JobState::Running => (JobStateName::Running, None, Vec::new(), None),
            JobState::Saving => (JobStateName::Saving, None, Vec::new(), None),
            JobState::Done { images } => (JobStateName::Done, None, images.iter().map(ImageView::from).collect(), None),
            JobState::Failed { reason, message, appealable, .. } => {
                let kind = match reason {
                    FailureReason::Invalid => "invalid",
                    FailureReason::NotFound => "not_found",
                    FailureReason::Blocked => "blocked",
                    FailureReason::Busy => "busy",
                    FailureReason::Failed => "operator",
                };
                let error = JobError {
                    error: kind.into(),
                    message: crate::error::capitalise(message),
                    appealable: *appealable,
                };
                (JobStateName::Failed, None, Vec::new(), Some(error))
            }
            JobState::Cancelled { message } => {
                let error = JobError {
                    error: "cancelled".into(),
                    message: crate::error::capitalise(message),
                    appealable: false,
                };
                (JobStateName::Cancelled, None, Vec::new(), Some(error))
            }
        };
        let appeal_url = error.as_ref().filter(|error| error.appealable).map(|_| format!("/api/jobs/{id}/appeal"));
        Self {
            kind: match view.kind {
                atelier_shared::jobs::JobKind::Generate => JobKindName::Generate,
                atelier_shared::jobs::JobKind::Edit => JobKindName::Edit,
            },
            state,
            position,
            summary: view.summary.clone(),
            submitted_at: view.submitted_at.format(&Rfc3339).unwrap_or_default(),
            images,
            error,
            url: format!("/api/jobs/{id}"),
            events_url: format!("/api/jobs/{id}/events"),
            appeal_url,
            id,
        }
    }
}

/// The caller's defaults for new images: each fills in what a request leaves out, in every
/// front end (the web, this API, the command line, Discord once linked). `null` is no default.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsView {
    /// A model alias from `/api/models`.
    #[schema(example = "sdxl")]
    pub model: Option<String>,
    /// An aspect ratio W:H, between 1:4 and 4:1.
    #[schema(example = "16:9")]
    pub aspect: Option<String>,
    /// A style preset (Stability models).
    #[schema(example = "photographic")]
    pub style: Option<String>,
    /// What to leave out of every request that gives no negative prompt.
    pub negative_prompt: Option<String>,
    /// Results only the caller sees, in Discord.
    #[serde(default)]
    pub private_results: bool,
}

impl From<Preferences> for SettingsView {
    fn from(preferences: Preferences) -> Self {
        Self {
            model: preferences.model,
            aspect: preferences.aspect,
            style: preferences.style,
            negative_prompt: preferences.negative_prompt,
            private_results: preferences.private_results,
        }
    }
}

impl From<SettingsView> for Preferences {
    fn from(settings: SettingsView) -> Self {
        Self {
            model: settings.model,
            aspect: settings.aspect,
            style: settings.style,
            negative_prompt: settings.negative_prompt,
            private_results: settings.private_results,
        }
    }
}

/// A named group of the caller's images.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(example = "trip")]
    pub name: String,
    /// How many images carry the name.
    pub images: usize,
    /// When the newest of them was made (RFC 3339).
    pub latest: String,
}

impl From<&SessionSummary> for SessionView {
    fn from(session: &SessionSummary) -> Self {
        Self {
            name: session.name.as_str().to_string(),
            images: session.images,
            latest: session.latest.format(&Rfc3339).unwrap_or_default(),
        }
    }
}

/// The caller's sessions, the one used most recently first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// A session's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameSessionBody {
    /// 1 to 60 characters on one line; an existing session of this name takes the images in.
    #[schema(example = "Japan 2025")]
    pub name: String,
}
