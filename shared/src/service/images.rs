//! Image jobs: generations and edits through the job line, the safety gate and the engine,
//! and keeping what they make in the gallery.

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use crate::engine::Generated;
use crate::error::Refused;
use crate::error::Result;
use crate::gallery::{ImageId, ImageRecord, Origin, Parameters, Saved, SessionName};
use crate::images::CheckedImage;
use crate::images::check_upload;
use crate::jobs::{Cancelled, JobDetails, Progress, Stage, Ticket, Usage, no_progress};
use crate::metrics::JobOutcome;
use crate::request::{
    EditFields, EditMode, EditRequest, GenerationFields, GenerationRequest, ModelName, Prompt, Region,
};
use crate::safety::{Refusal, Verdict};
use bytes::Bytes;

use super::{Actor, Atelier, ImageRef, JobRef};

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

/// A job's model: the name metrics count it under, the id its price is looked up by, and
/// the estimated price of its images.
struct JobModel {
    label: String,
    id: String,
    cost: crate::pricing::Usd,
}

/// A generation checked against its model, with the person's defaults filled in and its seed
/// fixed: what a job runs. Only [`Atelier::plan_generation`] makes one, so nothing unchecked
/// (and nothing without the person's defaults) reaches the job line.
#[derive(Debug, Clone)]
pub struct GenerationPlan {
    request: GenerationRequest,
    fields: GenerationFields,
    private_results: bool,
    /// The channels its server posts results in, when it was asked elsewhere (its results
    /// then go to the person alone).
    result_channels_elsewhere: Vec<u64>,
}

impl GenerationPlan {
    pub fn request(&self) -> &GenerationRequest {
        &self.request
    }

    /// The request as fields, with the defaults filled in and before the seed was drawn: what
    /// to keep for an appeal or offer again.
    pub fn fields(&self) -> &GenerationFields {
        &self.fields
    }

    /// Whether the results go to the person alone (Discord's ephemeral answers): they asked
    /// for that, or their server posts results only in other channels.
    pub fn private_results(&self) -> bool {
        self.private_results
    }

    /// The channels where the server posts results, when this request was made in another
    /// (say so with the result); empty otherwise.
    pub fn result_channels_elsewhere(&self) -> &[u64] {
        &self.result_channels_elsewhere
    }
}

/// Where an edit starts from: bytes a person sent, or an image in a gallery.
#[derive(Debug, Clone)]
pub enum EditSource {
    Upload(Bytes),
    Gallery(ImageRef),
}

impl EditSource {
    /// The source a form names: an upload or a gallery image, never both. `None` when it
    /// names neither, which each front end words for its own fields.
    pub fn choose(upload: Option<Bytes>, gallery: Option<ImageRef>) -> Result<Option<Self>> {
        match (upload, gallery) {
            (Some(_), Some(_)) => Err(crate::Invalid::new("Give either an image or an image_id, not both").into()),
            (Some(bytes), None) => Ok(Some(Self::Upload(bytes))),
            (None, Some(image)) => Ok(Some(Self::Gallery(image))),
            (None, None) => Ok(None),
        }
    }
}

impl EditFields {
    /// The edit a few words ask for (Discord's Edit modal): a region named in words is found
    /// and repainted (search and replace); without one, the prompt steers a variation of the
    /// whole picture.
    pub fn from_words(prompt: Option<String>, region: Option<String>) -> Self {
        let mode = if region.is_some() { EditMode::Replace } else { EditMode::Variation };
        Self { mode: mode.as_str().to_string(), prompt, mask_prompt: region, ..Self::default() }
    }
}

/// An edit checked against its model, with its source resolved, its seed fixed and the
/// gallery image it will descend from (if any); made only by [`Atelier::plan_edit`].
#[derive(Debug, Clone)]
pub struct EditPlan {
    pub(super) request: EditRequest,
    pub(super) parent: Option<ImageId>,
    /// The parent's session, which the result joins unless the actor names another.
    pub(super) parent_session: Option<SessionName>,
}

impl EditPlan {
    pub fn request(&self) -> &EditRequest {
        &self.request
    }

    /// The gallery image the result will descend from, if any.
    pub fn parent(&self) -> Option<ImageId> {
        self.parent
    }

    /// The session the result goes into: the one the actor names, or else its parent's.
    pub fn session_for(&self, actor: &Actor) -> Option<SessionName> {
        actor.session.clone().or_else(|| self.parent_session.clone())
    }
}

impl Atelier {
    /// The actor's jobs and images today, across every replica, against the budget they have
    /// where they ask (their server roles may raise it).
    pub async fn usage(&self, actor: &Actor) -> Result<Usage> {
        self.jobs.usage(&actor.owner, self.role_budget(actor).await).await
    }

    /// Calls back a waiting job; only the person who asked for it may.
    pub async fn cancel_job(&self, actor: &Actor, job: &JobRef) -> Result<Cancelled> {
        self.only_owner(actor, job, "only the person who asked for this can cancel it").await?;
        self.jobs.cancel(&job.owner, job.id).await
    }

    /// Reads a generation request for the actor: their defaults ([`crate::preferences`]) fill
    /// in what the fields leave out, here and for every front end; the request is checked
    /// against its model's limits, calling nothing, and its seed fixed (a seed not asked for is
    /// drawn once, here, by the engine within the model's own range). Front ends plan before
    /// they acknowledge or queue anything (a wrong option costs nothing), and the job runs
    /// exactly the plan.
    pub async fn plan_generation(&self, actor: &Actor, fields: &GenerationFields) -> Result<GenerationPlan> {
        // The person's own fields first: their mistake is named before any store is read.
        fields.parse()?;
        let preferences = self.defaults_for(&actor.owner).await;
        let mut fields = fields.clone();
        preferences.fill_in(&mut fields);
        let server = self.settings_where(actor).await;
        if let Some((_, settings)) = &server
            && fields.model.is_none()
        {
            fields.model.clone_from(&settings.default_model);
        }
        let mut request = fields.parse()?;
        let seed = self.engine.check_generation(&request)?;
        request.seed = Some(seed);
        let mut plan = GenerationPlan {
            request,
            fields,
            private_results: preferences.private_results,
            result_channels_elsewhere: Vec::new(),
        };
        if let Some((_, settings)) = &server {
            self.check_model_allowed(settings, plan.request.model.as_ref())?;
            if let Origin::Discord { channel_id, .. } = actor.origin
                && !settings.result_channels.is_empty()
                && !settings.result_channels.contains(&channel_id)
            {
                plan.private_results = true;
                plan.result_channels_elsewhere.clone_from(&settings.result_channels);
            }
        }
        Ok(plan)
    }

    /// Resolves an edit's source (an upload, checked off the async workers, or a gallery
    /// image), reads the form's fields and checks the request against its model, calling
    /// nothing. The result's parent is the source image only when it is the actor's own, so
    /// each gallery shows only its own lineage (someone else's image shown in Discord can be
    /// worked from, but it is not in the actor's gallery). A gallery image is found where it
    /// is now (a Discord image made before linking is in the linked web account's gallery).
    /// The result joins its parent's session unless the actor names another
    /// ([`EditPlan::session_for`]).
    pub async fn plan_edit(
        &self,
        actor: &Actor,
        source: EditSource,
        mask: Option<Bytes>,
        fields: &EditFields,
    ) -> Result<EditPlan> {
        let (parent, parent_session, source) = match source {
            EditSource::Upload(bytes) => (None, None, check_upload(&actor.owner, bytes, "the uploaded image").await?),
            EditSource::Gallery(image) => {
                let image = self.locate(&image).await?;
                let checked = self.stored_source(actor, &image).await?;
                if image.owner == actor.owner {
                    let session = self.gallery.record(&image.owner, image.id).await?.session;
                    (Some(image.id), session, checked)
                } else {
                    (None, None, checked)
                }
            }
        };
        let mask = match mask {
            Some(bytes) => Some(check_upload(&actor.owner, bytes, "the mask").await?),
            None => None,
        };
        let plan = self.plan_checked_edit(fields.parse(source, mask)?)?;
        Ok(EditPlan { parent, parent_session, ..plan })
    }

    /// [`Self::plan_edit`] for a request whose images the caller checked already and which
    /// descends from no gallery image (the command line reads its files before anything else).
    pub fn plan_checked_edit(&self, mut request: EditRequest) -> Result<EditPlan> {
        let seed = self.engine.check_edit(&request)?;
        request.seed = Some(seed);
        Ok(EditPlan { request, parent: None, parent_session: None })
    }

    /// Makes images from a prompt and keeps them in the actor's gallery; returns once they are
    /// filed (thumbnails included).
    pub async fn generate(&self, actor: &Actor, plan: &GenerationPlan) -> Result<Vec<Kept>> {
        Ok(Filing::all_done(self.generate_with_progress(actor, plan, &no_progress).await?).await)
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
        plan: &GenerationPlan,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        self.generate_maybe_appealed(actor, plan, Appeal::No, progress).await
    }

    /// [`Self::generate_with_progress`], appealing a refused prompt first when asked: the
    /// appeal is part of the job (its checking step, after admission), so nobody waits on the
    /// reviewer before the job exists; a refusal that stands is [`crate::Error::Blocked`].
    pub(super) async fn generate_maybe_appealed(
        &self,
        actor: &Actor,
        plan: &GenerationPlan,
        appeal: Appeal,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        let (core, actor, request) = (self.clone(), actor.clone(), plan.request.clone());
        detached(progress, move |stages, withdrawn, deliver| async move {
            let report = move |stage: Stage| {
                let _ = stages.send(stage);
            };
            core.generation_job(&actor, &request, appeal, &report, withdrawn, deliver).await
        })
        .await
    }

    async fn generation_job(
        &self,
        actor: &Actor,
        request: &GenerationRequest,
        appeal: Appeal,
        progress: Progress<'_>,
        withdrawn: oneshot::Receiver<()>,
        deliver: Deliver,
    ) {
        let details = JobDetails::generation(request.fields()).answered_at(actor.reply.clone());
        let model = self.job_model(request.model.as_ref(), None, request.count.get());
        let Some((mut ticket, deliver)) = self.admit(&model, actor, request.count.get(), details, deliver).await else {
            return;
        };
        let job_span = job_span(&ticket, actor);
        let outcome = async {
            wait_turn_unless_withdrawn(&mut ticket, progress, withdrawn).await?;
            progress(Stage::Checking);
            let text = safety_text(Some(&request.prompt), request.negative_prompt.as_ref(), None);
            self.check_or_appeal(actor, &text, appeal).await?;
            progress(Stage::Generating);
            ticket.model_started();
            let generated = self.engine.generate(request).await?;
            progress(Stage::Saving);
            self.keep_generated(actor, request, generated).await
        }
        .instrument(job_span.clone())
        .await;
        self.end_job(actor, ticket, outcome, &model, deliver).instrument(job_span).await;
    }

    /// The model a job is counted under (the one asked for, or the engine's default), the
    /// model id it runs on, and what its images are estimated to cost.
    fn job_model(&self, model: Option<&ModelName>, edit_mode: Option<EditMode>, images: u32) -> JobModel {
        let label = match model {
            Some(model) => model.as_str().to_string(),
            None => self.engine.models().first().map(|model| model.alias.clone()).unwrap_or_else(|| "default".into()),
        };
        // A model the engine does not know is refused by its check before it costs
        // anything; priced meanwhile as the table's dearest, by an id no pattern matches.
        let id = self.engine.model_id_for(model, edit_mode).unwrap_or_else(|| "unknown".into());
        let cost = self.prices.images(&id, images);
        JobModel { label, id, cost }
    }

    /// Admits a job to the line, or hands the refusal (limits, quota, a stopping process) to
    /// the person waiting and counts it.
    async fn admit(
        &self,
        model: &JobModel,
        actor: &Actor,
        images: u32,
        details: JobDetails,
        deliver: Deliver,
    ) -> Option<(Ticket, Deliver)> {
        // The server's daily budget first: refused there, nothing is charged to anyone.
        let admitted = match self.check_server_budget(actor, model.cost).await {
            Ok(()) => {
                let role_budget = self.role_budget(actor).await;
                self.jobs.admit_with_role_budget(&actor.owner, images, model.cost, role_budget, details).await
            }
            Err(refused) => Err(refused),
        };
        match admitted {
            Ok(ticket) => Some((ticket, deliver)),
            Err(refused) => {
                if let crate::Error::Busy(_) = &refused {
                    self.metrics.job_finished(&model.label, JobOutcome::RefusedBusy);
                }
                let _ = deliver.send(Err(refused));
                None
            }
        }
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

    /// Edits an image and keeps the result; `parent` is the gallery image it came from, if
    /// any (an upload has none), so the gallery can show the lineage. Returns once the result
    /// is filed, like [`Self::generate`].
    pub async fn edit(&self, actor: &Actor, plan: &EditPlan) -> Result<Vec<Kept>> {
        Ok(Filing::all_done(self.edit_with_progress(actor, plan, &no_progress).await?).await)
    }

    /// [`Self::edit`] with progress, through the job line like [`Self::generate_with_progress`].
    pub async fn edit_with_progress(
        &self,
        actor: &Actor,
        plan: &EditPlan,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        self.edit_maybe_appealed(actor, plan, Appeal::No, progress).await
    }

    /// [`Self::edit_with_progress`] as the one appeal of the edit's refusal: the reviewer reads
    /// it in the job's checking step instead of the safety gate.
    pub async fn edit_appealed(&self, actor: &Actor, plan: &EditPlan, progress: Progress<'_>) -> Result<Vec<Kept>> {
        self.edit_maybe_appealed(actor, plan, Appeal::Asked, progress).await
    }

    /// [`Self::generate_with_progress`] as the one appeal of the prompt's refusal.
    pub async fn generate_appealed(
        &self,
        actor: &Actor,
        plan: &GenerationPlan,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        self.generate_maybe_appealed(actor, plan, Appeal::Asked, progress).await
    }

    pub(super) async fn edit_maybe_appealed(
        &self,
        actor: &Actor,
        plan: &EditPlan,
        appeal: Appeal,
        progress: Progress<'_>,
    ) -> Result<Vec<Kept>> {
        let (core, mut actor, request, parent) = (self.clone(), actor.clone(), plan.request.clone(), plan.parent);
        actor.session = plan.session_for(&actor);
        detached(progress, move |stages, withdrawn, deliver| async move {
            let report = move |stage: Stage| {
                let _ = stages.send(stage);
            };
            core.edit_job(&actor, parent, &request, appeal, &report, withdrawn, deliver).await
        })
        .await
    }

    #[allow(clippy::too_many_arguments, reason = "a job's parts, passed once from its task")]
    async fn edit_job(
        &self,
        actor: &Actor,
        parent: Option<ImageId>,
        request: &EditRequest,
        appeal: Appeal,
        progress: Progress<'_>,
        withdrawn: oneshot::Receiver<()>,
        deliver: Deliver,
    ) {
        let details = JobDetails::edit().answered_at(actor.reply.clone());
        let model = self.job_model(request.model.as_ref(), Some(request.mode), 1);
        let Some((mut ticket, deliver)) = self.admit(&model, actor, 1, details, deliver).await else {
            return;
        };
        let job_span = job_span(&ticket, actor);
        let outcome = async {
            wait_turn_unless_withdrawn(&mut ticket, progress, withdrawn).await?;
            self.run_edit(actor, parent, request, appeal, progress, &mut ticket).await
        }
        .instrument(job_span.clone())
        .await;
        self.end_job(actor, ticket, outcome, &model, deliver).instrument(job_span).await;
    }

    /// Ends a job: counts it, hands the outcome to the person waiting, then takes the job out
    /// of the ledger and its record out of the store. The person hears first because the
    /// bookkeeping is store writes they need not wait for; if the process dies in between,
    /// the record left behind is answered as interrupted, which is better than an answer lost.
    /// A failure that is not the person's gives the images back; a refusal by the model's own
    /// filter does not, since the model ran.
    async fn end_job(
        &self,
        actor: &Actor,
        ticket: Ticket,
        outcome: Result<Vec<Kept>>,
        model: &JobModel,
        deliver: Deliver,
    ) {
        self.metrics.job_finished(&model.label, JobOutcome::of(&outcome));
        let refund = match &outcome {
            Ok(_) => false,
            Err(crate::Error::Blocked(_)) => !ticket.has_model_started(),
            Err(_) => true,
        };
        if !refund {
            self.metrics.spent(&model.id, "image", ticket.cost());
            self.charge_server(actor, ticket.cost()).await;
            let guild_id = match actor.origin {
                Origin::Discord { guild_id, .. } => guild_id,
                Origin::Cli | Origin::Web => None,
            };
            let images = outcome.as_ref().map_or(ticket.images(), |kept| u32::try_from(kept.len()).unwrap_or(u32::MAX));
            self.record_usage(&actor.owner, guild_id, &model.id, "image", images, ticket.cost()).await;
        }
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
        appeal: Appeal,
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
            self.check_or_appeal(actor, &text, appeal).await?;
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

    /// The safety gate for one job's text, or, when the job is an appeal, the appeal in its
    /// place (its "allowed" is for this job alone). A refusal that may be appealed is kept on
    /// record, so that the appeal, from any front end and any replica, has one to name.
    async fn check_or_appeal(&self, actor: &Actor, text: &str, appeal: Appeal) -> Result<()> {
        let owner = &actor.owner;
        let audience = self.audience(actor).await;
        if appeal == Appeal::Asked {
            return self.appeal(actor, text, audience).await;
        }
        match self.safety.check(text, audience).await? {
            Verdict::Allowed => Ok(()),
            Verdict::Blocked(refusal) => {
                tracing::info!(category = %refusal.category, by = %refusal.by, "a prompt was refused");
                let appealable = self.safety.is_appealable(&refusal);
                let Refusal { by, category, reason } = refusal;
                let refused = Refused { by, category: Some(category), reason, appealable };
                if appealable && let Err(error) = self.record_refusal(owner, text, &refused).await {
                    // Without the record the appeal will say there is nothing to appeal; the
                    // refusal itself still stands and is told.
                    tracing::warn!(error = %error, "could not keep a refusal for its appeal");
                }
                Err(crate::Error::Blocked(refused))
            }
        }
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
        if !kept.is_empty() {
            self.images_kept.notify_waiters();
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

/// Whether a generation asks for its refused prompt to be looked at again first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appeal {
    No,
    Asked,
}

/// The span every line of a job's logs carries: the job and its person.
fn job_span(ticket: &Ticket, actor: &Actor) -> tracing::Span {
    tracing::info_span!("job", job_id = %ticket.id(), user_id = %actor.owner)
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
pub(super) fn safety_text(
    prompt: Option<&Prompt>,
    negative_prompt: Option<&Prompt>,
    mask_prompt: Option<&Prompt>,
) -> String {
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
