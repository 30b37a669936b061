//! Jobs that run on their own while a person watches them: the web and the API. Submitting
//! answers as soon as the job is admitted to the line (no request waits on a model; a slow
//! model or a long line would otherwise outlast CloudFront's 60-second origin timeout), and
//! the job's state is then read or followed by its id.
//!
//! The state lives in two places. This process keeps a `watch` channel per job it runs, so a
//! page or an event stream here hears every change at once (its place in line included). The
//! store keeps `users/{owner}/jobs/{id}.json`, written by one task per job each time the state
//! changes kind (waiting, checking, running, saving, and the end), so any replica can answer
//! for it: the load balancer may send the next request elsewhere. A job whose replica dies is
//! answered by the job keeper, like any other, and its stored state says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

use super::images::Appeal;
use super::{Actor, Atelier, EditPlan, GenerationPlan, HeldAppeal, HeldId, JobRef, Kept};
use crate::error::{Error, Result};
use crate::gallery::{ImageRecord, Owner};
use crate::jobs::ledger::JobRecord;
use crate::jobs::{JobAnswerer, JobId, JobKind, ReplyRoute, Stage};
use crate::request::GenerationFields;
use crate::store::ObjectStore;
use crate::store::json::JsonRecords;

/// The name watched jobs' reply routes carry: the core answers them itself (in the store)
/// when the replica running one stops.
const WATCHED: &str = "watched";
/// How long this process remembers a finished job's channel; later, the store answers.
const KEPT_IN_MEMORY: Duration = Duration::from_secs(10 * 60);
/// How often a job running on another replica is looked up in the store while followed.
const STORE_POLL: Duration = Duration::from_secs(1);

/// Where a watched job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// In line for a slot; `position` 1 is next. `None` when another replica holds the job
    /// (its place is known there).
    Waiting { position: Option<usize> },
    /// The safety checks (and an appeal, when asked) are reading the prompt.
    Checking,
    /// The model is drawing.
    Running,
    /// The images are being kept in the gallery.
    Saving,
    /// Made and kept.
    Done { images: Vec<ImageRecord> },
    /// Ended without images; `message` is for the person. A refusal that may be appealed is
    /// kept whole (`held`) for [`Atelier::appeal_job`].
    Failed {
        reason: FailureReason,
        message: String,
        appealable: bool,
        #[serde(default)]
        held: Option<String>,
    },
    /// Called back before it started: nothing was charged.
    Cancelled { message: String },
}

impl JobState {
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Done { .. } | Self::Failed { .. } | Self::Cancelled { .. })
    }

    /// The state's kind: the store is written only when this changes (not at every move in line).
    fn kind(&self) -> std::mem::Discriminant<Self> {
        std::mem::discriminant(self)
    }

    fn of_stage(stage: Stage) -> Self {
        match stage {
            Stage::Queued { position, .. } => Self::Waiting { position: Some(position) },
            Stage::Checking => Self::Checking,
            Stage::Generating => Self::Running,
            Stage::Saving => Self::Saving,
        }
    }

    fn of_outcome(outcome: Result<Vec<Kept>>, held: Option<HeldId>) -> Self {
        match outcome {
            Ok(kept) => Self::Done { images: kept.into_iter().map(|kept| kept.record).collect() },
            Err(Error::Cancelled(message)) => Self::Cancelled { message },
            Err(error) => Self::Failed {
                reason: FailureReason::of(&error),
                appealable: error.offers_appeal() && held.is_some(),
                message: error.user_message(),
                held: held.map(|held| held.to_string()),
            },
        }
    }
}

/// Why a job ended without images, in the terms of the core's [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The request must change.
    Invalid,
    /// Something it needs is gone (the source image was deleted meanwhile).
    NotFound,
    /// The safety checks or the model's own filter refused it.
    Blocked,
    /// The model or the line was busy; trying again later should work.
    Busy,
    /// Something the operator must fix, or the replica running it stopped.
    Failed,
}

impl FailureReason {
    fn of(error: &Error) -> Self {
        match error {
            Error::Invalid(_) | Error::Forbidden(_) | Error::Conflict(_) => Self::Invalid,
            Error::NotFound(_) => Self::NotFound,
            Error::Blocked(_) => Self::Blocked,
            Error::Busy(_) | Error::Cancelled(_) => Self::Busy,
            Error::Operator { .. } => Self::Failed,
        }
    }
}

/// A watched job as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: JobId,
    pub kind: JobKind,
    /// What was asked, in words: the prompt, or the edit.
    pub summary: String,
    /// A generation's request as typed, so a page can offer it again (after a refusal, say).
    #[serde(default)]
    pub fields: Option<GenerationFields>,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(flatten)]
    pub state: JobState,
}

/// The jobs this process runs for watchers, by id.
#[derive(Clone, Default)]
pub(crate) struct WatchedJobs {
    jobs: Arc<Mutex<HashMap<JobId, Watched>>>,
}

struct Watched {
    owner: Owner,
    view: watch::Sender<JobView>,
    finished_at: Option<Instant>,
}

impl WatchedJobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Watched>> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn follow(&self, owner: &Owner, id: JobId) -> Option<watch::Receiver<JobView>> {
        self.lock().get(&id).filter(|watched| &watched.owner == owner).map(|watched| watched.view.subscribe())
    }

    fn start(&self, owner: &Owner, view: JobView) -> watch::Sender<JobView> {
        let mut jobs = self.lock();
        // Forget jobs finished long ago: their state is in the store.
        jobs.retain(|_, watched| watched.finished_at.is_none_or(|at| at.elapsed() < KEPT_IN_MEMORY));
        let (sender, _) = watch::channel(view.clone());
        jobs.insert(view.id, Watched { owner: owner.clone(), view: sender.clone(), finished_at: None });
        sender
    }

    fn finished(&self, id: JobId) {
        if let Some(watched) = self.lock().get_mut(&id) {
            watched.finished_at = Some(Instant::now());
        }
    }
}

/// The states of one job, for a page or an event stream: the current one first, then each
/// change, until it is finished.
pub struct JobUpdates {
    core: Atelier,
    job: JobRef,
    local: Option<watch::Receiver<JobView>>,
    last: Option<JobView>,
}

impl JobUpdates {
    /// The next state to show, or `None` once the last one shown was final.
    pub async fn next(&mut self) -> Option<Result<JobView>> {
        if self.last.as_ref().is_some_and(|view| view.state.is_finished()) {
            return None;
        }
        let next = match self.local.as_mut() {
            Some(local) if self.last.is_none() => Ok(local.borrow_and_update().clone()),
            Some(local) => match local.changed().await {
                Ok(()) => Ok(local.borrow_and_update().clone()),
                // This process forgot the job: the store has its final state.
                Err(_) => {
                    self.local = None;
                    self.core.stored_job(&self.job).await
                }
            },
            None => self.poll_store().await,
        };
        if let Ok(view) = &next {
            self.last = Some(view.clone());
        }
        Some(next)
    }

    /// Reads the store until the job's state differs from the last one shown.
    async fn poll_store(&mut self) -> Result<JobView> {
        loop {
            let view = self.core.stored_job(&self.job).await?;
            if self.last.as_ref() != Some(&view) {
                return Ok(view);
            }
            tokio::time::sleep(STORE_POLL).await;
        }
    }
}

impl Atelier {
    /// Submits a generation to run on its own; returns its id once it is admitted to the
    /// line (a refusal at admission, such as the day's quota, comes back at once). `appeal`
    /// asks for a refused prompt to be looked at again, as the job's first check.
    pub async fn submit_generation(&self, actor: &Actor, plan: &GenerationPlan, appeal: Appeal) -> Result<JobId> {
        let request = plan.request();
        let asked = Asked {
            kind: JobKind::Generate,
            summary: request.prompt.as_str().to_string(),
            fields: Some(request.fields()),
        };
        let (core, actor_, plan) = (self.clone(), watched_actor(actor), plan.clone());
        let (keeper, kept_actor, fields) = (self.clone(), actor.clone(), request.fields());
        let hold: Hold = Box::new(move || Box::pin(async move { keeper.hold_refused(&kept_actor, &fields).await }));
        let run = move |progress: Reporter| async move {
            core.generate_maybe_appealed(&actor_, &plan, appeal, &*progress).await
        };
        self.submit(actor, asked, run, hold).await
    }

    /// Submits an edit to run on its own, like [`Self::submit_generation`].
    pub async fn submit_edit(&self, actor: &Actor, plan: &EditPlan, appeal: Appeal) -> Result<JobId> {
        let request = plan.request();
        let summary = match &request.prompt {
            Some(prompt) => format!("{}: {}", request.mode, prompt.as_str()),
            None => request.mode.to_string(),
        };
        let asked = Asked { kind: JobKind::Edit, summary, fields: None };
        let (core, actor_, plan) = (self.clone(), watched_actor(actor), plan.clone());
        let (keeper, kept_actor, kept_plan) = (self.clone(), actor.clone(), plan.clone());
        let hold: Hold =
            Box::new(move || Box::pin(async move { keeper.hold_refused_edit(&kept_actor, &kept_plan).await }));
        let run =
            move |progress: Reporter| async move { core.edit_maybe_appealed(&actor_, &plan, appeal, &*progress).await };
        self.submit(actor, asked, run, hold).await
    }

    /// Appeals a watched job's refusal, once: runs the kept request again as a new job whose
    /// first check is the appeal. Returns the new job's id.
    pub async fn appeal_job(&self, actor: &Actor, job: &JobRef) -> Result<JobId> {
        let view = self.job(actor, job).await?;
        let held = match &view.state {
            JobState::Failed { held: Some(held), appealable: true, .. } => HeldId::parse(held),
            _ => None,
        };
        let Some(held) = held else {
            return Err(Error::conflict("this job has no refusal that may be appealed"));
        };
        match self.appeal_held(actor, &actor.own(held)).await? {
            HeldAppeal::Generation { plan } => self.submit_generation(actor, &plan, Appeal::Asked).await,
            HeldAppeal::Edit { plan } => self.submit_edit(actor, &plan, Appeal::Asked).await,
        }
    }

    async fn submit<Run, Work>(&self, actor: &Actor, asked: Asked, run: Run, hold: Hold) -> Result<JobId>
    where
        Run: FnOnce(Reporter) -> Work,
        Work: Future<Output = Result<Vec<Kept>>> + Send + 'static,
    {
        // The job's id is known at its first stage, which is always its place in line.
        let (admitted, first_stage) = oneshot::channel::<JobView>();
        let admitted = Mutex::new(Some((admitted, asked, OffsetDateTime::now_utc())));
        let sender: Arc<Mutex<Option<watch::Sender<JobView>>>> = Arc::default();
        let (watched, owner, records) = (self.watched.clone(), actor.owner.clone(), self.job_views());
        let reporting = sender.clone();
        let progress: Reporter = Arc::new(move |stage: Stage| {
            let state = JobState::of_stage(stage);
            let mut current = reporting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match current.as_ref() {
                Some(sender) => {
                    sender.send_modify(|view| view.state = state);
                }
                None => {
                    let Stage::Queued { job, .. } = stage else { return };
                    let taken = admitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                    if let Some((admitted, asked, submitted_at)) = taken {
                        let Asked { kind, summary, fields } = asked;
                        let view = JobView { id: job, kind, summary, fields, submitted_at, state };
                        let sender = watched.start(&owner, view.clone());
                        tokio::spawn(records.clone().keep_stored(owner.clone(), sender.subscribe()));
                        *current = Some(sender);
                        let _ = admitted.send(view);
                    }
                }
            }
        });
        let work = run(progress.clone());
        let (refused, refusal) = oneshot::channel();
        let watched = self.watched.clone();
        tokio::spawn(async move {
            let outcome = work.await;
            let sender = sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            match sender {
                Some(sender) => {
                    let id = sender.borrow().id;
                    // A refusal that may be appealed keeps its request for the appeal.
                    let held = match &outcome {
                        Err(error) if error.offers_appeal() => match hold().await {
                            Ok(held) => Some(held),
                            Err(error) => {
                                tracing::warn!(error = %error, "could not keep a refused request for its appeal");
                                None
                            }
                        },
                        _ => None,
                    };
                    sender.send_modify(|view| view.state = JobState::of_outcome(outcome, held));
                    watched.finished(id);
                }
                // Refused before it was admitted: the submitter hears why.
                None => {
                    let _ = refused.send(outcome.err());
                }
            }
            drop(progress);
        });
        // The first stage comes once the job is admitted; without it, the job's task has sent
        // the refusal before letting go of the reporter, so it is there to read.
        match first_stage.await {
            Ok(view) => Ok(view.id),
            Err(_) => match refusal.await {
                Ok(Some(error)) => Err(error),
                _ => Err(Error::operator("submitting a job", "the job ended before it was admitted")),
            },
        }
    }

    /// A watched job of the actor's, as it is now.
    pub async fn job(&self, actor: &Actor, job: &JobRef) -> Result<JobView> {
        self.only_owner(actor, job, "only the person who asked for this job can follow it").await?;
        if let Some(local) = self.watched.follow(&job.owner, job.id) {
            return Ok(local.borrow().clone());
        }
        self.stored_job(job).await
    }

    /// Follows a watched job of the actor's: its state now, then each change until it ends.
    pub async fn follow_job(&self, actor: &Actor, job: &JobRef) -> Result<JobUpdates> {
        self.only_owner(actor, job, "only the person who asked for this job can follow it").await?;
        let local = self.watched.follow(&job.owner, job.id);
        if local.is_none() {
            // Not here: it must be in the store, or there is no such job.
            self.stored_job(job).await?;
        }
        Ok(JobUpdates { core: self.clone(), job: job.clone(), local, last: None })
    }

    async fn stored_job(&self, job: &JobRef) -> Result<JobView> {
        let gone = || Error::not_found("there is no such job; it may have finished long ago");
        self.job_views().get(&job.owner, job.id).await?.ok_or_else(gone)
    }

    fn job_views(&self) -> JobViews {
        JobViews { store: self.store().clone() }
    }

    /// Lets the job keeper answer watched jobs whose replica stopped: their stored state says so.
    pub(super) fn answer_watched_jobs(&self) {
        self.register_job_answerer(WATCHED, Arc::new(self.job_views()));
    }
}

/// Where a watched job's task reports its stages.
type Reporter = Arc<dyn Fn(Stage) + Send + Sync>;

/// Keeps a job's request for its appeal, when it is refused in a way that may be appealed.
type Hold = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<HeldId>> + Send>> + Send>;

/// What a submitted job was asked to do, for its view.
struct Asked {
    kind: JobKind,
    summary: String,
    fields: Option<GenerationFields>,
}

/// The actor a watched job runs as: answered through the store if its replica stops.
fn watched_actor(actor: &Actor) -> Actor {
    match actor.reply {
        Some(_) => actor.clone(),
        None => actor.clone().answered_at(ReplyRoute { front_end: WATCHED.into(), route: serde_json::Value::Null }),
    }
}

/// Watched jobs' states in the store.
#[derive(Clone)]
struct JobViews {
    store: Arc<dyn ObjectStore>,
}

impl JobViews {
    fn records(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "job state")
    }

    fn key(owner: &Owner, id: JobId) -> Result<crate::store::ObjectKey> {
        Atelier::key(format!("users/{owner}/jobs/{id}.json"))
    }

    async fn get(&self, owner: &Owner, id: JobId) -> Result<Option<JobView>> {
        self.records().get(&Self::key(owner, id)?).await
    }

    /// Writes a job's state each time it changes kind, until it is finished. A write that
    /// fails is logged and the next change is tried anyway: this process still answers live,
    /// and the final state is what matters to other replicas.
    async fn keep_stored(self, owner: Owner, mut states: watch::Receiver<JobView>) {
        let mut written = None;
        loop {
            let view = states.borrow_and_update().clone();
            if written != Some(view.state.kind()) || view.state.is_finished() {
                match Self::key(&owner, view.id) {
                    Ok(key) => match self.records().overwrite(&key, &view).await {
                        Ok(()) => written = Some(view.state.kind()),
                        Err(error) => tracing::warn!(job.id = %view.id, error = %error, "could not keep a job's state"),
                    },
                    Err(error) => tracing::warn!(job.id = %view.id, error = %error, "could not name a job's state"),
                }
            }
            if view.state.is_finished() || states.changed().await.is_err() {
                return;
            }
        }
    }
}

#[async_trait]
impl JobAnswerer for JobViews {
    async fn answer_interrupted(&self, job: &JobRecord) -> Result<()> {
        let Some(mut view) = self.get(&job.owner, job.id).await? else { return Ok(()) };
        if view.state.is_finished() {
            return Ok(());
        }
        view.state = JobState::Failed {
            held: None,
            reason: FailureReason::Failed,
            message: "the server running this job stopped before it finished; nothing was charged: please ask again"
                .into(),
            appealable: false,
        };
        self.records().overwrite(&Self::key(&job.owner, job.id)?, &view).await
    }
}
