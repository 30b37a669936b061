//! [`Atelier`], the core service: every front end (the CLI, the bot, the web app) calls these
//! operations and only parses and renders around them. The rules live here: what is checked
//! before a model is called, that every image is kept with its lineage, who may see what.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::chat::{ChatMessage, ChatMode, ChatModel, ChatStream, ChatTurn};
use crate::checker::{Critique, PromptCritic};
use crate::engine::EngineKind;
use crate::engine::{Generated, ImageEngine, ModelInfo};
use crate::error::Result;
use crate::gallery::{Gallery, ImageId, ImageRecord, Origin, Owner, Parameters, Saved, SessionName, Variant};
use crate::images::CheckedImage;
use crate::jobs::{Cancelled, JobDetails, JobId, Jobs, Progress, ReplyRoute, Stage, Ticket, Usage, no_progress};
use crate::metrics::{JobOutcome, Metrics};
use crate::preferences::{PreferenceChange, Preferences};
use crate::request::{EditMode, EditRequest, GenerationFields, GenerationRequest, ModelName, Prompt, Region};
use crate::safety::{SafetyGate, Verdict};
use crate::store::ObjectKey;
use crate::store::json::JsonRecords;
use crate::store::spool::{Flusher, Spool, SpoolDepth};

/// Who is asking, and from where: every operation acts for one owner.
#[derive(Debug, Clone)]
pub struct Actor {
    pub owner: Owner,
    pub origin: Origin,
    /// The named session new images go into, if any.
    pub session: Option<SessionName>,
    /// Where the front end answers this person if their job must be answered by another
    /// process (a Discord interaction); `None` where the person waits on the request itself.
    pub reply: Option<ReplyRoute>,
}

impl Actor {
    pub fn new(owner: Owner, origin: Origin) -> Self {
        Self { owner, origin, session: None, reply: None }
    }

    pub fn answered_at(mut self, reply: ReplyRoute) -> Self {
        self.reply = Some(reply);
        self
    }
}

/// An image just made and kept: its record, and the same bytes that went to the store, so
/// front ends can show or upload it without reading it back. Its bytes and record are in the
/// store (or the spool) already; its thumbnail may still be being made ([`Kept::filing`]).
#[derive(Debug, Clone)]
pub struct Kept {
    pub record: ImageRecord,
    pub image: CheckedImage,
    pub filing: Filing,
}

/// The rest of keeping a job's images (their thumbnails: a full decode, a shrink and a write),
/// which goes on while a front end shows the result, so a Discord upload and this work run at
/// once. Shared by the job's [`Kept`] images.
#[derive(Debug, Clone)]
pub struct Filing(watch::Receiver<Option<Result<(), String>>>);

impl Filing {
    /// A filing with nothing left to do.
    pub fn done_already() -> Self {
        Self(watch::channel(Some(Ok(()))).1)
    }

    /// Waits until the images are filed: their thumbnails are in the store.
    pub async fn done(&self) -> Result<()> {
        let mut filed = self.0.clone();
        let outcome = filed.wait_for(Option::is_some).await.map(|outcome| outcome.clone());
        match outcome {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(failure))) => Err(crate::Error::operator("filing the images in the gallery", failure)),
            _ => Err(crate::Error::operator("filing the images in the gallery", "the filing task ended early")),
        }
    }

    /// Waits for a job's images (none, or all sharing one filing) to be filed. A failure is not
    /// the caller's: the images and their records are stored, the failure was logged where it
    /// happened, and a missing thumbnail is made when it is first asked for.
    async fn all_done(kept: Vec<Kept>) -> Vec<Kept> {
        if let Some(first) = kept.first() {
            let _ = first.filing.done().await;
        }
        kept
    }
}

/// The parts the core is built from, each behind a trait in our own terms.
pub struct Parts {
    pub engine: Arc<dyn ImageEngine>,
    pub safety: Arc<SafetyGate>,
    pub chat: Arc<dyn ChatModel>,
    pub critic: Arc<dyn PromptCritic>,
    pub gallery: Gallery,
    pub jobs: Jobs,
    /// Linking Discord users to web accounts; `None` where nothing can be linked.
    pub accounts: Option<Arc<Accounts>>,
    /// The task writing spooled images to the store (the spool itself is the gallery's).
    pub spool_flusher: Option<Arc<Flusher>>,
    /// What the process counts and measures, for `/metrics`.
    pub metrics: Metrics,
}

/// The core service; cheap to clone and share between the bot and the web app.
#[derive(Clone)]
pub struct Atelier {
    engine: Arc<dyn ImageEngine>,
    safety: Arc<SafetyGate>,
    chat: Arc<dyn ChatModel>,
    critic: Arc<dyn PromptCritic>,
    gallery: Gallery,
    jobs: Jobs,
    accounts: Option<Arc<Accounts>>,
    spool_flusher: Option<Arc<Flusher>>,
    metrics: Metrics,
}

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
    pub fn new(parts: Parts) -> Self {
        Self {
            engine: parts.engine,
            safety: parts.safety,
            chat: parts.chat,
            critic: parts.critic,
            gallery: parts.gallery,
            jobs: parts.jobs,
            accounts: parts.accounts,
            spool_flusher: parts.spool_flusher,
            metrics: parts.metrics,
        }
    }

    /// What the process counts and measures: jobs, model calls, the store, the spool.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// How many images wait in the spool for the store, and their bytes; `None` when no
    /// spool is set. For `/readyz`, metrics and logs.
    pub fn spool_depth(&self) -> Option<SpoolDepth> {
        self.gallery.spool().map(Spool::depth)
    }

    /// Stops the task that writes spooled images to the store, waiting for a write in
    /// progress; what is left stays on disk for the next start.
    pub async fn stop_spool_flusher(&self) {
        if let Some(flusher) = &self.spool_flusher {
            flusher.stop().await;
        }
    }

    /// One last attempt to write what waits in the spool (the process is stopping, and on
    /// Fargate the task's disk goes with it), for at most `limit`; returns how many images
    /// were written.
    pub async fn flush_spool_before_exit(&self, limit: std::time::Duration) -> usize {
        let Some(spool) = self.gallery.spool() else { return 0 };
        if spool.depth().entries == 0 {
            return 0;
        }
        match tokio::time::timeout(limit, spool.flush(self.gallery.store().as_ref(), None)).await {
            Ok(Ok(written)) => written,
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "the store still refuses the spooled images");
                0
            }
            Err(_) => {
                tracing::warn!(limit_seconds = limit.as_secs(), "the last spool flush ran out of time");
                0
            }
        }
    }

    /// Account linking, where it is set up.
    pub fn accounts(&self) -> Option<&Accounts> {
        self.accounts.as_deref()
    }

    /// Whose gallery a Discord user's images go to: their web account's once linked, their
    /// own Discord gallery before.
    pub async fn owner_for_discord(&self, discord_user_id: u64) -> Result<Owner> {
        match &self.accounts {
            Some(accounts) => accounts.owner_for_discord(discord_user_id).await,
            None => Ok(Owner::discord(discord_user_id)),
        }
    }

    /// Web sessions and sign-ins in progress, kept in the gallery's store.
    pub fn sessions(&self) -> crate::sessions::Sessions {
        crate::sessions::Sessions::new(self.gallery.store().clone())
    }

    /// The process is stopping: admit no new image jobs, tell the waiting ones (they leave the
    /// line with their images given back; running ones finish), and let the readiness probe
    /// say so, so the load balancer stops sending work here.
    pub fn begin_shutdown(&self) {
        self.jobs.close();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.jobs.is_closed()
    }

    /// The job line, for front ends that answer interrupted jobs and for shutdown.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Waits up to `limit` for the jobs running here to finish (the process is stopping);
    /// returns how many are still running when it gives up.
    pub async fn wait_for_running_jobs(&self, limit: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (waiting, running) = self.jobs.depth();
            if waiting + running == 0 || tokio::time::Instant::now() >= deadline {
                return waiting + running;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// One person's jobs and images today, across every replica.
    pub async fn usage(&self, owner: &Owner) -> Result<Usage> {
        self.jobs.usage(owner).await
    }

    /// Calls back a waiting job of the person's.
    pub async fn cancel_job(&self, owner: &Owner, job: JobId) -> Result<Cancelled> {
        self.jobs.cancel(owner, job).await
    }

    /// Checks a generation request against the model's limits, calling nothing: front ends
    /// refuse a wrong option with it before they acknowledge or queue anything.
    pub fn check_generation(&self, request: &GenerationRequest) -> Result<()> {
        Ok(self.engine.check_generation(request)?)
    }

    /// Checks an edit request the same way.
    pub fn check_edit(&self, request: &EditRequest) -> Result<()> {
        self.engine.check_edit(request)
    }

    fn records(&self, kind: &'static str) -> JsonRecords {
        JsonRecords::new(self.gallery.store().clone(), kind)
    }

    fn key(text: String) -> Result<ObjectKey> {
        ObjectKey::new(text).map_err(|error| crate::Error::operator("building a store key", error))
    }

    /// A person's defaults for new images.
    pub async fn preferences(&self, owner: &Owner) -> Result<Preferences> {
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
        Ok(self.records("preferences record").get(&key).await?.unwrap_or_default())
    }

    /// Changes a person's defaults, refusing any that would not make a valid request.
    pub async fn change_preferences(&self, owner: &Owner, change: PreferenceChange) -> Result<Preferences> {
        let mut preferences = self.preferences(owner).await?;
        preferences.update(change);
        preferences.check()?;
        if let Some(model) = &preferences.model {
            let name = ModelName::parse(model)?;
            let known = self
                .models()
                .iter()
                .any(|info| info.can_generate && (info.alias == name.as_str() || info.id == name.as_str()));
            if !known {
                let aliases: Vec<String> =
                    self.models().into_iter().filter(|info| info.can_generate).map(|info| info.alias).collect();
                return Err(crate::Invalid::new(format!(
                    "`{model}` is not a model that makes images here; choose one of {}",
                    aliases.join(", ")
                ))
                .into());
            }
        }
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
        self.records("preferences record").overwrite(&key, &preferences).await?;
        Ok(preferences)
    }

    /// Keeps a refused request so its owner can appeal it later from a button that carries
    /// only this id; returns the id.
    pub async fn hold_refused(&self, owner: &Owner, fields: &GenerationFields) -> Result<String> {
        self.hold(owner, "refused", "refused request", fields).await
    }

    /// Keeps a suggested request (an improved prompt, a description) for a button that
    /// carries only this id; returns the id.
    pub async fn hold_request(&self, owner: &Owner, fields: &GenerationFields) -> Result<String> {
        self.hold(owner, "suggested", "suggested request", fields).await
    }

    async fn hold(&self, owner: &Owner, folder: &str, kind: &'static str, fields: &GenerationFields) -> Result<String> {
        let id = ulid::Ulid::new().to_string();
        let key = Self::key(format!("users/{owner}/{folder}/{id}.json"))?;
        self.records(kind).overwrite(&key, fields).await?;
        Ok(id)
    }

    /// A suggested request kept by [`Self::hold_request`].
    pub async fn held_request(&self, owner: &Owner, id: &str) -> Result<GenerationFields> {
        let gone = || crate::Error::not_found("that suggestion is no longer kept; ask again");
        let id = ulid::Ulid::from_string(id).map_err(|_| gone())?;
        let key = Self::key(format!("users/{owner}/suggested/{id}.json"))?;
        self.records("suggested request").get(&key).await?.ok_or_else(gone)
    }

    /// Appeals a held refused request once; on success the request is returned so the
    /// front end can run it, and the safety gate remembers the new verdict.
    pub async fn appeal_held(&self, actor: &Actor, held: &str) -> Result<(Verdict, GenerationFields)> {
        let Ok(held) = ulid::Ulid::from_string(held) else {
            return Err(crate::Error::not_found("that refused prompt is no longer kept; send it again"));
        };
        let key = Self::key(format!("users/{}/refused/{held}.json", actor.owner))?;
        let records = self.records("refused request");
        let fields: GenerationFields = records
            .get(&key)
            .await?
            .ok_or_else(|| crate::Error::not_found("that refused prompt is no longer kept; send it again"))?;
        let request = fields.parse()?;
        let verdict = self.appeal(actor, &request.prompt, request.negative_prompt.as_ref()).await?;
        records.delete(&key).await?;
        Ok((verdict, fields))
    }

    /// The request that makes an image like `record` again with a new seed (Reroll): same
    /// prompt, model, shape and style. `None` for images that had no prompt (some edits).
    pub fn fields_to_remake(&self, record: &ImageRecord) -> Option<GenerationFields> {
        let prompt = record.prompt.clone()?;
        let model = self.models().into_iter().find(|model| model.id == record.model_id && model.can_generate);
        let (aspect, size) = match record.parameters.shape {
            Some(crate::request::Shape::Aspect(aspect)) => (Some(aspect.to_string()), None),
            Some(crate::request::Shape::Size(size)) => (None, Some(size.to_string())),
            None => (None, None),
        };
        Some(GenerationFields {
            prompt,
            negative_prompt: record.negative_prompt.clone(),
            model: model.map(|model| model.alias),
            aspect,
            size,
            style: record.parameters.style.clone(),
            colors: (!record.parameters.colors.is_empty()).then(|| record.parameters.colors.join(",")),
            ..GenerationFields::default()
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

    /// Makes images from a prompt and keeps them in the actor's gallery; returns once they are
    /// filed (thumbnails included).
    pub async fn generate(&self, actor: &Actor, request: &GenerationRequest) -> Result<Vec<Kept>> {
        Ok(Filing::all_done(self.generate_with_progress(actor, request, &no_progress).await?).await)
    }

    /// [`Self::generate`], telling `progress` where the job is: in line, being checked,
    /// being drawn, being saved. The request is checked against the model first, then
    /// admitted to the job line (which charges the person's quota), then checked for safety.
    /// A failure that is not the person's gives the quota back; a refusal by the model's own
    /// filter does not, since the model ran.
    ///
    /// Returns as soon as the images' bytes and records are stored, for the person waiting;
    /// their thumbnails are made meanwhile ([`Kept::filing`]; the gallery makes one asked for
    /// before that on the spot).
    pub async fn generate_with_progress(
        &self,
        actor: &Actor,
        request: &GenerationRequest,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        self.engine.check_generation(request)?;
        let (core, actor, request) = (self.clone(), actor.clone(), request.clone());
        detached(progress, move |stages, withdrawn, deliver| async move {
            let report = move |stage: Stage| {
                let _ = stages.send(stage);
            };
            core.generation_job(&actor, &request, &report, withdrawn, deliver).await
        })
        .await
    }

    async fn generation_job(
        &self,
        actor: &Actor,
        request: &GenerationRequest,
        progress: Progress<'_>,
        withdrawn: oneshot::Receiver<()>,
        deliver: Deliver,
    ) {
        let details = JobDetails::generation(request.fields()).answered_at(actor.reply.clone());
        let model = self.model_label(request.model.as_ref());
        let mut ticket = match self.admit(&model, &actor.owner, request.count.get(), details).await {
            Ok(ticket) => ticket,
            Err(refused) => {
                let _ = deliver.send(Err(refused));
                return;
            }
        };
        let job_span = tracing::info_span!("job", job_id = %ticket.id(), user_id = %actor.owner);
        let outcome = async {
            wait_turn_unless_withdrawn(&mut ticket, progress, withdrawn).await?;
            progress(Stage::Checking);
            self.pass_safety(&safety_text(Some(&request.prompt), request.negative_prompt.as_ref(), None)).await?;
            progress(Stage::Generating);
            ticket.model_started();
            let generated = self.engine.generate(request).await?;
            progress(Stage::Saving);
            self.keep_generated(actor, request, generated).await
        }
        .instrument(job_span.clone())
        .await;
        self.end_job(ticket, outcome, &model, deliver).instrument(job_span).await;
    }

    /// The model a job is counted under: the one asked for, or the engine's default.
    fn model_label(&self, model: Option<&ModelName>) -> String {
        match model {
            Some(model) => model.as_str().to_string(),
            None => self.engine.models().first().map(|model| model.alias.clone()).unwrap_or_else(|| "default".into()),
        }
    }

    /// Admits a job to the line, counting a refusal (limits, quota, a stopping process).
    async fn admit(&self, model: &str, owner: &Owner, images: u32, details: JobDetails) -> Result<Ticket> {
        let admitted = self.jobs.admit(owner, images, details).await;
        if let Err(crate::Error::Busy(_)) = &admitted {
            self.metrics.job_finished(model, JobOutcome::RefusedBusy);
        }
        admitted
    }

    async fn keep_generated(
        &self,
        actor: &Actor,
        request: &GenerationRequest,
        generated: Generated,
    ) -> Result<Vec<Kept>> {
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
    /// any (an upload has none), so the gallery can show the lineage. Returns once the result
    /// is filed, like [`Self::generate`].
    pub async fn edit(&self, actor: &Actor, parent: Option<ImageId>, request: &EditRequest) -> Result<Vec<Kept>> {
        Ok(Filing::all_done(self.edit_with_progress(actor, parent, request, &no_progress).await?).await)
    }

    /// [`Self::edit`] with progress, through the job line like [`Self::generate_with_progress`].
    pub async fn edit_with_progress(
        &self,
        actor: &Actor,
        parent: Option<ImageId>,
        request: &EditRequest,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        self.engine.check_edit(request)?;
        let (core, actor, request) = (self.clone(), actor.clone(), request.clone());
        detached(progress, move |stages, withdrawn, deliver| async move {
            let report = move |stage: Stage| {
                let _ = stages.send(stage);
            };
            core.edit_job(&actor, parent, &request, &report, withdrawn, deliver).await
        })
        .await
    }

    async fn edit_job(
        &self,
        actor: &Actor,
        parent: Option<ImageId>,
        request: &EditRequest,
        progress: Progress<'_>,
        withdrawn: oneshot::Receiver<()>,
        deliver: Deliver,
    ) {
        let details = JobDetails::edit().answered_at(actor.reply.clone());
        let model = self.model_label(request.model.as_ref());
        let mut ticket = match self.admit(&model, &actor.owner, 1, details).await {
            Ok(ticket) => ticket,
            Err(refused) => {
                let _ = deliver.send(Err(refused));
                return;
            }
        };
        let job_span = tracing::info_span!("job", job_id = %ticket.id(), user_id = %actor.owner);
        let outcome = async {
            wait_turn_unless_withdrawn(&mut ticket, progress, withdrawn).await?;
            self.run_edit(actor, parent, request, progress, &mut ticket).await
        }
        .instrument(job_span.clone())
        .await;
        self.end_job(ticket, outcome, &model, deliver).instrument(job_span).await;
    }

    /// Ends a job: counts it, hands the outcome to the person waiting, then takes the job out
    /// of the ledger and its record out of the store. The person hears first because the
    /// bookkeeping is store writes they need not wait for; if the process dies in between,
    /// the record left behind is answered as interrupted, which is better than an answer lost.
    /// A failure that is not the person's gives the images back; a refusal by the model's own
    /// filter does not, since the model ran.
    async fn end_job(&self, ticket: Ticket, outcome: Result<Vec<Kept>>, model: &str, deliver: Deliver) {
        self.metrics.job_finished(model, JobOutcome::of(&outcome));
        let refund = match &outcome {
            Ok(_) => false,
            Err(crate::Error::Blocked(_)) => !ticket.has_model_started(),
            Err(_) => true,
        };
        let filing = outcome.as_ref().ok().and_then(|kept| kept.first()).map(|kept| kept.filing.clone());
        let _ = deliver.send(outcome);
        // The job lasts until its images are filed, so a stopping process waits for that too.
        // (A failure was logged where it happened; the person has the images.)
        if let Some(filing) = filing {
            let _ = filing.done().await;
        }
        ticket.finish(refund).await;
    }

    async fn run_edit(
        &self,
        actor: &Actor,
        parent: Option<ImageId>,
        request: &EditRequest,
        progress: Progress<'_>,
        ticket: &mut Ticket,
    ) -> Result<Vec<Kept>> {
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
            progress(Stage::Checking);
            self.pass_safety(&text).await?;
        }
        progress(Stage::Generating);
        ticket.model_started();
        let generated = self.engine.edit(request).await?;
        progress(Stage::Saving);
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
                let appeal = if self.safety.is_appealable(&refusal) { crate::error::APPEAL_OFFER } else { "" };
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
        let mut to_file = Vec::new();
        let (filed, filing) = watch::channel(None);
        let filing = Filing(filing);
        let mut saving = Ok(());
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
            match self.gallery.save_image(&record, &image.image).await {
                Ok(Saved::Stored) => to_file.push((record.clone(), image.image.clone())),
                Ok(Saved::Spooled) => {}
                Err(error) => {
                    saving = Err(error);
                    break;
                }
            }
            tracing::info!(
                image.id = %record.id,
                owner = %record.owner,
                model = %record.model_id,
                "kept image {} for {}", record.id, record.owner
            );
            kept.push(Kept { record, image: image.image, filing: filing.clone() });
        }
        // Thumbnails are made while the front end shows the result (for the images stored
        // before a failure too).
        let gallery = self.gallery.clone();
        tokio::spawn(
            async move {
                for (record, image) in &to_file {
                    if let Err(error) = gallery.file(record, image).await {
                        tracing::error!(image.id = %record.id, error = %error, "could not file image {}: {error}", record.id);
                        let _ = filed.send(Some(Err(error.to_string())));
                        return;
                    }
                }
                let _ = filed.send(Some(Ok(())));
            }
            .in_current_span(),
        );
        saving.map(|()| kept)
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

/// Runs an image job as a task of its own, forwarding its progress to the caller. A caller
/// that goes away (a browser closing the page, a request timing out) withdraws a job still
/// waiting in line, which then costs nothing; once the model has started, the job runs to the
/// end, so the image it is paying for is kept in the gallery rather than thrown away.
async fn detached<Job, Work>(progress: Progress<'_>, job: Job) -> Result<Vec<Kept>>
where
    Job: FnOnce(mpsc::UnboundedSender<Stage>, oneshot::Receiver<()>, Deliver) -> Work,
    Work: Future<Output = ()> + Send + 'static,
{
    // Unbounded, but a job sends only a handful of stages (one per move in line and per step).
    let (stages, mut heard) = mpsc::unbounded_channel();
    let (caller_waiting, withdrawn) = oneshot::channel::<()>();
    let (deliver, mut delivered) = oneshot::channel();
    tokio::spawn(job(stages, withdrawn, deliver));
    let outcome = loop {
        // Stages first: every stage sent before the outcome is shown before it.
        tokio::select! {
            biased;
            Some(stage) = heard.recv() => progress(stage),
            outcome = &mut delivered => break outcome,
        }
    };
    drop(caller_waiting);
    // A job task that panicked drops its sender without an outcome.
    outcome.map_err(|error| crate::Error::operator("running an image job", error))?
}

/// Where a job task hands its outcome to the caller.
type Deliver = oneshot::Sender<Result<Vec<Kept>>>;

/// Waits for the job's turn, leaving the line if the caller goes away first.
async fn wait_turn_unless_withdrawn(
    ticket: &mut Ticket,
    progress: Progress<'_>,
    withdrawn: oneshot::Receiver<()>,
) -> Result<()> {
    tokio::select! {
        waited = ticket.wait_turn(progress) => waited,
        _ = withdrawn => Err(crate::Error::Cancelled("the request was withdrawn before it started: nothing was charged".into())),
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
