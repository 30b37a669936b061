//! [`Atelier`], the core service: every front end (the CLI, the bot, the web app) calls these
//! operations and only parses and renders around them. The rules live here: what is checked
//! before a model is called, that every image is kept with its lineage, who may see what.

mod appeals;
mod conversations;
mod gallery;
mod images;
mod moderation;
mod people;
mod personal_data;
mod publishing;
mod requests;
mod servers;
mod usage;
mod watched;

pub use appeals::HeldAppeal;
pub use conversations::{Conversation, Exchange};
pub use images::{Appeal, EditPlan, EditSource, Filing, GenerationPlan, Kept};
pub use moderation::{Ban, NOT_BANNED_MEMORY};
pub use people::LinkStart;
pub use personal_data::{DeletedPerson, data_archive};
pub use publishing::{PublicPage, Published, SERVER_GALLERY_PAGE};
pub use requests::HeldId;
pub use servers::{AgePolicy, Membership, ServerChange, ServerSettings};
pub use usage::{UsageRecord, UsageReport, UsageTotals};
pub use watched::{FailureReason, JobState, JobUpdates, JobView};

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::chat::ChatModel;
use crate::checker::PromptCritic;
use crate::engine::EngineKind;
use crate::engine::{ImageEngine, ModelInfo};
use crate::error::Result;
use crate::gallery::{Gallery, ImageId, Origin, Owner, SessionName};
use crate::jobs::{JobId, Jobs, ReplyRoute};
use crate::metrics::Metrics;
use crate::pricing::{PriceTable, Tokens};
use crate::public_cache::PublicCache;
use crate::safety::SafetyGate;
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
    /// The Discord roles they hold on the server they ask from (a role may carry a larger
    /// budget there); empty elsewhere.
    pub roles: Vec<u64>,
    /// Whether Discord marks the channel they ask in age-restricted (the safety gate is
    /// stricter elsewhere on a server).
    pub age_restricted_channel: bool,
}

impl Actor {
    pub fn new(owner: Owner, origin: Origin) -> Self {
        Self { owner, origin, session: None, reply: None, roles: Vec::new(), age_restricted_channel: false }
    }

    /// One of the actor's own things (an image of their gallery, a job of theirs), named by id:
    /// how the web and the API point at what a signed-in person owns.
    pub fn own<Id>(&self, id: Id) -> Owned<Id> {
        Owned { owner: self.owner.clone(), id }
    }

    pub fn answered_at(mut self, reply: ReplyRoute) -> Self {
        self.reply = Some(reply);
        self
    }
}

/// Something of one person's that a front end points at: an image, a kept request, a job.
/// A Discord button carries its owner and id (anyone in the channel can press it); the web
/// names the signed-in person's own ([`Actor::own`]). The core decides what the actor may do
/// with it: only its owner deletes, appeals or cancels, and an image someone else made can be
/// worked from but is nobody's parent in the actor's gallery.
///
/// A button keeps the owner it was made for, so after a Discord user links a web account,
/// earlier buttons name the Discord owner: the core finds the image where linking moved it,
/// and takes the linked person for that owner (see `Atelier::locate` and
/// `Atelier::only_owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned<Id> {
    pub owner: Owner,
    pub id: Id,
}

/// An image in someone's gallery.
pub type ImageRef = Owned<ImageId>;
/// A request kept for a button (a suggestion, a refused prompt to appeal).
pub type HeldRef = Owned<HeldId>;
/// A job in someone's line.
pub type JobRef = Owned<JobId>;

impl<Id> Owned<Id> {
    pub fn new(owner: Owner, id: Id) -> Self {
        Self { owner, id }
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
    /// What each model's calls cost, for budgets and the spend metric.
    pub prices: PriceTable,
    /// The text model chat, critiques, descriptions and appeals are priced as.
    pub text_model: String,
    /// The CDN in front of the public pages, told when an image stops being public; `None`
    /// where there is none (their max-age alone bounds how long it shows them).
    pub public_cache: Option<Arc<dyn PublicCache>>,
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
    prices: PriceTable,
    text_model: String,
    public_cache: Option<Arc<dyn PublicCache>>,
    /// Jobs running here for people watching them (the web, the API).
    watched: watched::WatchedJobs,
    /// Woken each time this process keeps images, so open galleries show them at once.
    images_kept: Arc<tokio::sync::Notify>,
    /// Who was recently seen not banned ([`moderation`]).
    not_banned: moderation::NotBanned,
    /// Servers' settings read recently ([`servers`]).
    recent_server_settings: servers::RecentSettings,
}

impl Atelier {
    pub fn new(parts: Parts) -> Self {
        let core = Self {
            engine: parts.engine,
            safety: parts.safety,
            chat: parts.chat,
            critic: parts.critic,
            gallery: parts.gallery,
            jobs: parts.jobs,
            accounts: parts.accounts,
            spool_flusher: parts.spool_flusher,
            metrics: parts.metrics,
            prices: parts.prices,
            text_model: parts.text_model,
            public_cache: parts.public_cache,
            watched: watched::WatchedJobs::default(),
            images_kept: Arc::default(),
            not_banned: moderation::NotBanned::default(),
            recent_server_settings: servers::RecentSettings::default(),
        };
        core.answer_watched_jobs();
        core
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

    /// The process is stopping: admit no new image jobs, tell the waiting ones (they leave the
    /// line with their images given back; running ones finish), and let the readiness probe
    /// say so, so the load balancer stops sending work here.
    pub fn begin_shutdown(&self) {
        self.jobs.close();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.jobs.is_closed()
    }

    /// How a front end answers its people whose jobs this or another replica had to give
    /// up (see [`crate::jobs::JobAnswerer`]).
    pub fn register_job_answerer(&self, front_end: &str, answerer: Arc<dyn crate::jobs::JobAnswerer>) {
        self.jobs.register_answerer(front_end, answerer);
    }

    /// Starts writing this replica's heartbeat and taking over jobs left by stopped replicas.
    pub fn start_job_keeper(&self, heartbeat: std::time::Duration) {
        self.jobs.start_keeper(heartbeat);
    }

    /// Stops the keeper and marks this replica stopped, so others answer what it still held.
    pub async fn stop_job_keeper(&self) {
        self.jobs.stop_keeper().await;
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

    /// Refuses a model call that is not an image job when the person's budget (raised by
    /// `role_budget`, see `Atelier::role_budget`) or the service's is spent, before anything
    /// is called; nothing is charged.
    async fn before_text_call(&self, owner: &Owner, role_budget: Option<crate::pricing::Usd>) -> Result<()> {
        self.jobs.check_budget_left(owner, role_budget).await
    }

    /// Charges a text model call that was made (`operation`: chat, critique, describe,
    /// appeal) to its person's day and the service's, and counts it in the spend metric.
    async fn charge_text_call(&self, owner: &Owner, operation: &'static str, tokens: Tokens) {
        let cost = self.prices.tokens(&self.text_model, tokens);
        self.metrics.spent(&self.text_model, operation, cost);
        self.jobs.charge(owner, cost).await;
        self.record_usage(owner, None, &self.text_model, operation, 0, cost).await;
    }

    /// The store everything is kept in, for the core's own records (claims, requests).
    pub(crate) fn store(&self) -> &Arc<dyn crate::store::ObjectStore> {
        self.gallery.store()
    }

    fn records(&self, kind: &'static str) -> JsonRecords {
        JsonRecords::new(self.gallery.store().clone(), kind)
    }

    fn key(text: String) -> Result<ObjectKey> {
        ObjectKey::new(text).map_err(|error| crate::Error::operator("building a store key", error))
    }

    /// Which engine draws the images.
    pub fn engine_kind(&self) -> EngineKind {
        self.engine.kind()
    }

    /// The models on offer, default first.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.engine.models()
    }

    /// What this installation accepts in a request, for the API's document: the models a
    /// generation or an edit may name, and what the engine's models take.
    pub fn request_contract(&self) -> crate::request::contract::RequestContract {
        let models = self.engine.models();
        let names = |wanted: &dyn Fn(&ModelInfo) -> bool| {
            models
                .iter()
                .filter(|model| wanted(model))
                .flat_map(|model| [model.alias.clone(), model.id.clone()])
                .collect::<Vec<_>>()
        };
        crate::request::contract::RequestContract {
            generation_models: names(&|model| model.can_generate),
            edit_models: names(&|model| !model.edit_modes.is_empty()),
            limits: self.engine.generation_limits(),
        }
    }

    /// The style presets a generation may name.
    pub fn style_presets(&self) -> &'static [&'static str] {
        &crate::bedrock::sdxl::STYLE_PRESETS
    }
}

#[cfg(test)]
mod tests;
