//! [`Atelier`], the core service: every front end (the CLI, the bot, the web app) calls these
//! operations and only parses and renders around them. The rules live here: what is checked
//! before a model is called, that every image is kept with its lineage, who may see what.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::chat::{ChatMessage, ChatMode, ChatModel, ChatStream, ChatTurn};
use crate::checker::{Critique, PromptCritic};
use crate::config::EngineKind;
use crate::engine::{Generated, ImageEngine, ModelInfo};
use crate::error::Result;
use crate::gallery::{Gallery, ImageId, ImageRecord, Origin, Owner, Parameters, SessionName, Variant};
use crate::images::CheckedImage;
use crate::request::{EditMode, EditRequest, GenerationRequest, Prompt, Region};
use crate::safety::{SafetyGate, Verdict};

/// Who is asking, and from where: every operation acts for one owner.
#[derive(Debug, Clone)]
pub struct Actor {
    pub owner: Owner,
    pub origin: Origin,
    /// The named session new images go into, if any.
    pub session: Option<SessionName>,
}

impl Actor {
    pub fn new(owner: Owner, origin: Origin) -> Self {
        Self { owner, origin, session: None }
    }
}

/// An image just made and kept: its record, and the same bytes that went to the store, so
/// front ends can show or upload it without reading it back.
#[derive(Debug, Clone)]
pub struct Kept {
    pub record: ImageRecord,
    pub image: CheckedImage,
}

/// The parts the core is built from, each behind a trait in our own terms.
pub struct Parts {
    pub engine: Arc<dyn ImageEngine>,
    pub safety: Arc<SafetyGate>,
    pub chat: Arc<dyn ChatModel>,
    pub critic: Arc<dyn PromptCritic>,
    pub gallery: Gallery,
}

/// The core service; cheap to clone and share between the bot and the web app.
#[derive(Clone)]
pub struct Atelier {
    engine: Arc<dyn ImageEngine>,
    safety: Arc<SafetyGate>,
    chat: Arc<dyn ChatModel>,
    critic: Arc<dyn PromptCritic>,
    gallery: Gallery,
}

impl Atelier {
    pub fn new(parts: Parts) -> Self {
        Self {
            engine: parts.engine,
            safety: parts.safety,
            chat: parts.chat,
            critic: parts.critic,
            gallery: parts.gallery,
        }
    }

    /// Which engine draws the images.
    pub fn engine_kind(&self) -> EngineKind {
        self.engine.kind()
    }

    /// The models on offer, default first.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.engine.models()
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Makes images from a prompt and keeps them in the actor's gallery.
    pub async fn generate(&self, actor: &Actor, request: &GenerationRequest) -> Result<Vec<Kept>> {
        self.pass_safety(&safety_text(Some(&request.prompt), request.negative_prompt.as_ref(), None)).await?;
        let generated = self.engine.generate(request).await?;
        let parameters = Parameters {
            shape: Some(request.shape),
            style: request.style.as_ref().map(|style| style.as_str().to_string()),
            colors: request.colors.iter().map(|color| color.as_str().to_string()).collect(),
            ..Parameters::default()
        };
        self.keep(actor, generated, Some(&request.prompt), request.negative_prompt.as_ref(), parameters, None).await
    }

    /// Loads an image from the actor's gallery as the source of an edit.
    pub async fn source_image(&self, actor: &Actor, id: ImageId) -> Result<CheckedImage> {
        let (bytes, _) = self.gallery.image(&actor.owner, id, Variant::Full).await?;
        tokio::task::spawn_blocking(move || CheckedImage::check(bytes, "the stored image"))
            .await
            .map_err(|error| crate::Error::operator("checking a stored image", error))?
            .map_err(crate::Error::from)
    }

    /// Edits an image and keeps the result; `parent` is the gallery image it came from, if
    /// any (an upload has none), so the gallery can show the lineage.
    pub async fn edit(&self, actor: &Actor, parent: Option<ImageId>, request: &EditRequest) -> Result<Vec<Kept>> {
        request.check()?;
        // A variation or zoom-out of a gallery image keeps steering by the prompt it was made
        // with, unless a new one is given: models that need text get the right text.
        let mut inherited = None;
        if request.prompt.is_none()
            && matches!(request.mode, EditMode::Variation | EditMode::Outpaint)
            && let Some(parent) = parent
        {
            let record = self.gallery.record(&actor.owner, parent).await?;
            inherited = record.prompt.as_deref().and_then(|text| Prompt::parse(text).ok());
        }
        let with_inherited_prompt;
        let request = match inherited {
            Some(prompt) => {
                with_inherited_prompt = EditRequest { prompt: Some(prompt), ..request.clone() };
                &with_inherited_prompt
            }
            None => request,
        };
        let mask_prompt = match &request.region {
            Some(Region::MaskPrompt(prompt)) => Some(prompt),
            _ => None,
        };
        let text = safety_text(request.prompt.as_ref(), request.negative_prompt.as_ref(), mask_prompt);
        if !text.is_empty() {
            self.pass_safety(&text).await?;
        }
        let generated = self.engine.edit(request).await?;
        let parameters = Parameters {
            edit_mode: Some(request.mode),
            mask_prompt: match &request.region {
                Some(Region::MaskPrompt(prompt)) => Some(prompt.as_str().to_string()),
                _ => None,
            },
            similarity: request.similarity,
            ..Parameters::default()
        };
        self.keep(actor, generated, request.prompt.as_ref(), request.negative_prompt.as_ref(), parameters, parent).await
    }

    async fn pass_safety(&self, text: &str) -> Result<()> {
        match self.safety.check(text).await? {
            Verdict::Allowed => Ok(()),
            Verdict::Blocked(refusal) => {
                tracing::info!(category = %refusal.category, by = %refusal.by, "a prompt was refused");
                let appeal = if self.safety.is_appealable(&refusal) {
                    ". If you think that is a mistake, you can appeal once"
                } else {
                    ""
                };
                Err(crate::Error::Blocked(format!(
                    "{} refused this prompt ({}): {}{appeal}",
                    refusal.by, refusal.category, refusal.reason
                )))
            }
        }
    }

    /// Appeals a refused prompt (with its negative prompt) once: a stronger model looks again.
    pub async fn appeal(&self, actor: &Actor, prompt: &Prompt, negative_prompt: Option<&Prompt>) -> Result<Verdict> {
        self.safety.appeal(&actor.owner, &safety_text(Some(prompt), negative_prompt, None)).await
    }

    async fn keep(
        &self,
        actor: &Actor,
        generated: Generated,
        prompt: Option<&Prompt>,
        negative_prompt: Option<&Prompt>,
        parameters: Parameters,
        parent: Option<ImageId>,
    ) -> Result<Vec<Kept>> {
        let mut kept = Vec::with_capacity(generated.images.len());
        for image in generated.images {
            let record = ImageRecord {
                id: ImageId::new(),
                owner: actor.owner.clone(),
                prompt: prompt.map(|prompt| prompt.as_str().to_string()),
                negative_prompt: negative_prompt.map(|prompt| prompt.as_str().to_string()),
                model_id: generated.model.id.clone(),
                model_family: generated.model.family.clone(),
                engine: self.engine.kind(),
                parameters: parameters.clone(),
                seed: image.seed,
                size: image.image.size(),
                created_at: OffsetDateTime::now_utc(),
                safety: image.safety,
                parent,
                origin: actor.origin.clone(),
                session: actor.session.clone(),
                media_type: image.image.media_type().to_string(),
                extension: image.image.extension().to_string(),
            };
            self.gallery.save(&record, &image.image).await?;
            tracing::info!(
                image.id = %record.id,
                owner = %record.owner,
                model = %record.model_id,
                "kept image {} for {}", record.id, record.owner
            );
            kept.push(Kept { record, image: image.image });
        }
        Ok(kept)
    }

    /// The structured critique of a prompt.
    pub async fn check_prompt(&self, prompt: &Prompt) -> Result<Critique> {
        self.critic.critique(prompt).await
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

/// The text the safety gate judges: the prompt, and labelled, what to leave out and where to paint.
fn safety_text(prompt: Option<&Prompt>, negative_prompt: Option<&Prompt>, mask_prompt: Option<&Prompt>) -> String {
    let mut parts = Vec::new();
    if let Some(prompt) = prompt {
        parts.push(prompt.as_str().to_string());
    }
    if let Some(negative) = negative_prompt {
        parts.push(format!("(leave out: {})", negative.as_str()));
    }
    if let Some(region) = mask_prompt {
        parts.push(format!("(region: {})", region.as_str()));
    }
    parts.join(" ")
}
