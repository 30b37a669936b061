//! The line image jobs wait in, each person's share of it, and what happens to a job when
//! the process running it stops.
//!
//! Every image job, from any front end, is admitted here first. Admission charges the
//! person's images for the day and adds the job to their ledger in the store, by
//! compare-and-swap ([`ledger`]), so a quota holds across restarts and replicas and two jobs
//! started together cannot both squeeze under it; the job gives its images back when it fails
//! for a reason that is not the person's. Each job in progress also has a record in the store,
//! naming the replica running it: replicas write heartbeats, and a job whose replica stopped or
//! died is answered (through the front end it came from, see [`JobAnswerer`]) and refunded by
//! whichever replica notices first.
//!
//! Admitted jobs then wait for one of this process's running slots, first come first served
//! (tokio's semaphore is fair), with a per-person limit so one busy user cannot fill them all.
//! The running slots are per process: size `ATELIER_MAX_RUNNING_JOBS` to the account's Bedrock
//! quota divided by the number of replicas.
//!
//! When the store cannot be reached, jobs still run (the spool keeps their images): the
//! quota then falls back to this process's own count, and the ledger is brought up to date
//! when the store is back.

pub mod ledger;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::JobLimits;
use crate::error::{Error, Result};
use crate::gallery::Owner;
use crate::request::GenerationFields;
use crate::store::ObjectStore;
use ledger::{Ending, JobRecord, LedgerState, Ledgers, ReplicaRecord, Start, check_quota};

/// A job's id: a ULID, so ids sort by admission time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(ulid::Ulid);

impl JobId {
    fn new() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(text: &str) -> Option<Self> {
        ulid::Ulid::from_string(text).ok().map(Self)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

/// One running process of Atelier, named afresh at each start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaId(String);

impl ReplicaId {
    fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What kind of job it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    #[default]
    Generate,
    Edit,
}

/// Where and how a front end answers the person a job is for, in the front end's own terms
/// (a Discord interaction token and channel): the core keeps it with the job and hands it
/// back to the front end's [`JobAnswerer`] if the job must be answered by another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyRoute {
    /// The name the front end registered its answerer under (`discord`).
    pub front_end: String,
    pub route: serde_json::Value,
}

/// What a job is, kept with it so an interrupted job can be answered well.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobDetails {
    pub kind: JobKind,
    /// The request, for generations, so the answer can offer it again.
    #[serde(default)]
    pub fields: Option<GenerationFields>,
    #[serde(default)]
    pub reply: Option<ReplyRoute>,
}

impl JobDetails {
    pub fn generation(fields: GenerationFields) -> Self {
        Self { kind: JobKind::Generate, fields: Some(fields), reply: None }
    }

    pub fn edit() -> Self {
        Self { kind: JobKind::Edit, fields: None, reply: None }
    }

    pub fn answered_at(mut self, reply: Option<ReplyRoute>) -> Self {
        self.reply = reply;
        self
    }
}

/// A front end's way to tell a person that a job of theirs ended without its images because
/// the process running it stopped; the job's images are already given back.
#[async_trait]
pub trait JobAnswerer: Send + Sync + 'static {
    async fn answer_interrupted(&self, job: &JobRecord) -> Result<()>;
}

/// Where a job is, as front ends show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a free slot; `position` 1 is next. `job` is for a Cancel button.
    Queued { position: usize, job: JobId },
    /// The safety checks are reading the prompt.
    Checking,
    /// The model is drawing.
    Generating,
    /// The images are being kept in the gallery.
    Saving,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued { position: 1, .. } => formatter.write_str("Queued: next in line"),
            Self::Queued { position, .. } => write!(formatter, "Queued: {position} in line"),
            Self::Checking => formatter.write_str("Checking the prompt"),
            Self::Generating => formatter.write_str("Generating"),
            Self::Saving => formatter.write_str("Saving to your gallery"),
        }
    }
}

/// Where a front end hears about a job's progress. Called from the job's task; keep it quick.
pub type Progress<'a> = &'a (dyn Fn(Stage) + Send + Sync);

/// A progress listener that ignores everything (the CLI, tests).
pub fn no_progress(_stage: Stage) {}

/// One person's jobs and images today, for `/me` and the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub running: usize,
    pub queued: usize,
    pub images_today: u32,
    /// `None` when there is no daily limit.
    pub daily_images: Option<u32>,
}

impl Usage {
    /// Images left today, or `None` when there is no daily limit.
    pub fn images_left(&self) -> Option<u32> {
        self.daily_images.map(|quota| quota.saturating_sub(self.images_today))
    }
}

/// What cancelling found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting and leaves the line now; its images are given back.
    Now,
    /// It waits in another process, and leaves the line before it starts.
    BeforeItStarts,
    /// The model is already drawing it: it cannot be called back.
    TooLate,
    /// It is finished, or is not this person's.
    NotFound,
}

/// This process's view of a job it holds.
struct LocalJob {
    owner: Owner,
    cancelled: bool,
    /// Past its last chance to leave the line: a cancellation now is too late.
    started: bool,
}

#[derive(Default)]
struct Line {
    /// Tickets waiting for a slot, by admission number, so positions are easy to count.
    waiting: BTreeSet<u64>,
    next_ticket: u64,
    jobs: HashMap<JobId, LocalJob>,
    running: usize,
    /// Images charged today by this process, per person: the quota's fallback while the
    /// store cannot be reached.
    day: Option<Date>,
    images_today: HashMap<Owner, u32>,
}

impl Line {
    fn roll_day(&mut self, today: Date) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.images_today.clear();
        }
    }
}

struct Shared {
    /// Set when the process is stopping: no new jobs are admitted, waiting ones are told.
    closed: AtomicBool,
    limits: JobLimits,
    replica: ReplicaId,
    ledgers: Ledgers,
    slots: Arc<Semaphore>,
    per_person_slots: Mutex<HashMap<Owner, Arc<Semaphore>>>,
    line: Mutex<Line>,
    /// Woken whenever the line changes (a job leaves, one is cancelled, the line closes), so
    /// waiting jobs can report their new place or leave.
    line_moved: Notify,
    answerers: Mutex<HashMap<String, Arc<dyn JobAnswerer>>>,
    /// Ledger endings that could not be written (the store was down), tried again by the keeper.
    unwritten_endings: Mutex<Vec<(Owner, JobId, Ending)>>,
    keeper: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

/// The job line; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    shared: Arc<Shared>,
}

/// Poisoned locks hold plain counters, which are still usable after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a core error means the store could not be reached (rather than a refusal).
fn is_store_outage(error: &Error) -> bool {
    matches!(error, Error::Operator { .. })
}

impl Jobs {
    pub fn new(limits: JobLimits, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                closed: AtomicBool::new(false),
                limits,
                replica: ReplicaId::new(),
                ledgers: Ledgers::new(store),
                slots: Arc::new(Semaphore::new(limits.max_running.max(1))),
                per_person_slots: Mutex::default(),
                line: Mutex::default(),
                line_moved: Notify::new(),
                answerers: Mutex::default(),
                unwritten_endings: Mutex::default(),
                keeper: Mutex::default(),
            }),
        }
    }

    /// This process's name in the store's job records.
    pub fn replica(&self) -> &ReplicaId {
        &self.shared.replica
    }

    /// Lets a front end answer its people's interrupted jobs; `front_end` is the name its
    /// [`ReplyRoute`]s carry.
    pub fn register_answerer(&self, front_end: &str, answerer: Arc<dyn JobAnswerer>) {
        lock(&self.shared.answerers).insert(front_end.to_string(), answerer);
    }

    /// Admits a job for `owner` that will make `images` images, charging them to today's
    /// quota; refuses, with what to do, when the person has too much in progress or the
    /// quota cannot cover it.
    pub async fn admit(&self, owner: &Owner, images: u32, details: JobDetails) -> Result<Ticket> {
        if self.is_closed() {
            return Err(Error::Busy(
                "Atelier is restarting and takes no new images for a moment: ask again in a minute".into(),
            ));
        }
        let limits = self.shared.limits;
        let id = JobId::new();
        let ledgers = &self.shared.ledgers;
        let mut in_store = match ledgers.admit(owner, id, images, &self.shared.replica, &limits).await {
            Ok(()) => true,
            Err(error) if is_store_outage(&error) => {
                tracing::warn!(error = %error, "the store cannot keep the job ledger; counting this job locally");
                self.admit_locally(owner, images)?;
                false
            }
            Err(refused) => return Err(refused),
        };
        if in_store {
            let record = JobRecord {
                id,
                owner: owner.clone(),
                images,
                replica: self.shared.replica.clone(),
                admitted_at: OffsetDateTime::now_utc(),
                details,
                recovered_by: None,
            };
            match ledgers.create_job(&record).await {
                Ok(()) => {
                    let mut line = lock(&self.shared.line);
                    line.roll_day(OffsetDateTime::now_utc().date());
                    *line.images_today.entry(owner.clone()).or_default() += images;
                }
                Err(error) => {
                    // A job in the ledger without its record could never be answered if this
                    // process died, so it leaves the ledger again (later, if the store is
                    // down) and, when the store just went down, runs counted locally.
                    if let Err(undo) = ledgers.finish(owner, id, Ending::Refunded).await {
                        self.remember_unwritten_ending(owner, id, Ending::Refunded);
                        tracing::warn!(error = %undo, job.id = %id, "could not take a job out of the ledger yet");
                    }
                    if !is_store_outage(&error) {
                        return Err(error);
                    }
                    tracing::warn!(error = %error, "the store cannot keep the job record; counting this job locally");
                    self.admit_locally(owner, images)?;
                    in_store = false;
                }
            }
        }
        let number = {
            let mut line = lock(&self.shared.line);
            let number = line.next_ticket;
            line.next_ticket += 1;
            line.waiting.insert(number);
            line.jobs.insert(id, LocalJob { owner: owner.clone(), cancelled: false, started: false });
            number
        };
        Ok(Ticket {
            jobs: self.clone(),
            id,
            owner: owner.clone(),
            number,
            images,
            in_store,
            model_started: false,
            finished: false,
            running: None,
        })
    }

    /// The quota check of the old, per-process line, used only while the store is down.
    fn admit_locally(&self, owner: &Owner, images: u32) -> Result<()> {
        let mut line = lock(&self.shared.line);
        line.roll_day(OffsetDateTime::now_utc().date());
        let used = line.images_today.get(owner).copied().unwrap_or(0);
        check_quota(self.shared.limits.daily_images, used, images)?;
        *line.images_today.entry(owner.clone()).or_default() += images;
        Ok(())
    }

    fn remember_unwritten_ending(&self, owner: &Owner, id: JobId, ending: Ending) {
        lock(&self.shared.unwritten_endings).push((owner.clone(), id, ending));
    }

    /// Stops admitting jobs (the process is stopping) and tells every waiting job to leave
    /// the line with its images given back; running jobs carry on.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.line_moved.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Jobs of this process waiting and running, for metrics and logs.
    pub fn depth(&self) -> (usize, usize) {
        let line = lock(&self.shared.line);
        (line.waiting.len(), line.running)
    }

    /// One person's jobs and images today, everywhere.
    pub async fn usage(&self, owner: &Owner) -> Result<Usage> {
        let ledger = self.shared.ledgers.ledger(owner).await?;
        Ok(Usage {
            running: ledger.count(LedgerState::Running),
            queued: ledger.count(LedgerState::Waiting),
            images_today: ledger.images,
            daily_images: self.shared.limits.daily_images,
        })
    }

    /// Cancels a waiting job of `owner`'s: at once when this process holds it, otherwise by
    /// marking it in the ledger so the process holding it drops it before it starts.
    pub async fn cancel(&self, owner: &Owner, id: JobId) -> Result<Cancelled> {
        {
            let mut line = lock(&self.shared.line);
            if let Some(job) = line.jobs.get_mut(&id)
                && &job.owner == owner
            {
                if job.started {
                    return Ok(Cancelled::TooLate);
                }
                job.cancelled = true;
                drop(line);
                self.shared.line_moved.notify_waiters();
                return Ok(Cancelled::Now);
            }
        }
        Ok(match self.shared.ledgers.request_cancel(owner, id).await? {
            Some(LedgerState::Waiting) => Cancelled::BeforeItStarts,
            Some(LedgerState::Running) => Cancelled::TooLate,
            None => Cancelled::NotFound,
        })
    }

    fn person_slots(&self, owner: &Owner) -> Arc<Semaphore> {
        let mut slots = lock(&self.shared.per_person_slots);
        slots
            .entry(owner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.limits.per_user_running)))
            .clone()
    }

    /// Starts the task that writes this replica's heartbeat and answers the jobs of replicas
    /// that stopped or died, every `interval` (a replica silent for three intervals is dead).
    pub fn start_keeper(&self, interval: Duration) {
        let (stop, mut stopped) = watch::channel(false);
        let jobs = self.clone();
        let task = tokio::spawn(async move {
            loop {
                jobs.keep(interval).await;
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = stopped.wait_for(|stopped| *stopped) => break,
                }
            }
        });
        *lock(&self.shared.keeper) = Some((stop, task));
    }

    /// One round of the keeper: endings the store missed, then heartbeat and orphaned jobs.
    async fn keep(&self, interval: Duration) {
        self.write_unwritten_endings().await;
        if let Err(error) = self.recover_orphans(interval * 3).await {
            tracing::warn!(error = %error, "could not write this replica's heartbeat or look for jobs left by stopped replicas");
        }
    }

    async fn write_unwritten_endings(&self) {
        let endings = std::mem::take(&mut *lock(&self.shared.unwritten_endings));
        for (owner, id, ending) in endings {
            let written = self.shared.ledgers.finish(&owner, id, ending).await;
            let deleted = match written {
                Ok(_) => self.shared.ledgers.delete_job(id).await,
                Err(error) => Err(error),
            };
            if deleted.is_err() {
                self.remember_unwritten_ending(&owner, id, ending);
            }
        }
    }

    /// Answers and refunds the jobs of replicas that stopped or have been silent for
    /// `silence`; returns how many it took over.
    pub async fn recover_orphans(&self, silence: Duration) -> Result<usize> {
        let ledgers = &self.shared.ledgers;
        // The heartbeat first: a replica taking jobs over must itself look alive, or another
        // one looking at the same moment would take them over again from it.
        let beat = ReplicaRecord {
            replica: self.shared.replica.clone(),
            heartbeat_at: OffsetDateTime::now_utc(),
            stopped: false,
        };
        ledgers.beat(&beat).await?;
        let ids = ledgers.job_ids(10_000).await?;
        let mut records = Vec::new();
        for id in ids {
            if lock(&self.shared.line).jobs.contains_key(&id) {
                continue;
            }
            if let Some(record) = ledgers.job(id).await? {
                records.push(record);
            }
        }
        let holders: HashSet<ReplicaId> = records
            .iter()
            .map(|record| record.recovered_by.clone().unwrap_or_else(|| record.replica.clone()))
            .collect();
        let mut dead = HashSet::new();
        let now = OffsetDateTime::now_utc();
        for holder in holders {
            if holder == self.shared.replica {
                // Our own records without a local job: an ending the store missed, which the
                // retry list handles.
                continue;
            }
            let silent_since = match ledgers.replica(&holder).await? {
                Some(record) if record.stopped => None,
                Some(record) => Some(record.heartbeat_at),
                None => None,
            };
            let is_dead = silent_since.is_none_or(|heartbeat| now - heartbeat > silence);
            if is_dead {
                dead.insert(holder);
            }
        }
        let answerers = lock(&self.shared.answerers).clone();
        let mut recovered = 0;
        for record in records {
            let holder = record.recovered_by.clone().unwrap_or_else(|| record.replica.clone());
            if !dead.contains(&holder) {
                continue;
            }
            // A job whose front end does not run here is left for a replica where it does.
            let answerer = match &record.details.reply {
                Some(route) => match answerers.get(&route.front_end) {
                    Some(answerer) => Some(answerer.clone()),
                    None => continue,
                },
                None => None,
            };
            let Some(record) = ledgers.claim_orphan(record.id, &self.shared.replica, &dead).await? else {
                continue;
            };
            let refunded = ledgers.finish(&record.owner, record.id, Ending::Refunded).await?;
            if let Some(answerer) = answerer
                && let Err(error) = answerer.answer_interrupted(&record).await
            {
                tracing::warn!(error = %error, job.id = %record.id, user.id = %record.owner, "could not tell the person about an interrupted job");
            }
            ledgers.delete_job(record.id).await?;
            tracing::info!(
                job.id = %record.id,
                user.id = %record.owner,
                replica = %holder,
                refunded,
                "answered a job interrupted when its replica stopped"
            );
            recovered += 1;
        }
        Ok(recovered)
    }

    /// Stops the keeper and marks this replica stopped in the store, so what it leaves
    /// behind is answered by the next replica to look, without waiting for its silence.
    pub async fn stop_keeper(&self) {
        let keeper = lock(&self.shared.keeper).take();
        if let Some((stop, task)) = keeper {
            let _ = stop.send(true);
            let _ = task.await;
        }
        self.write_unwritten_endings().await;
        let record = ReplicaRecord {
            replica: self.shared.replica.clone(),
            heartbeat_at: OffsetDateTime::now_utc(),
            stopped: true,
        };
        if let Err(error) = self.shared.ledgers.beat(&record).await {
            tracing::warn!(error = %error, "could not mark this replica stopped in the store");
        }
    }
}

/// An admitted job: holds its place in line, then its running slot, until finished.
pub struct Ticket {
    jobs: Jobs,
    id: JobId,
    owner: Owner,
    number: u64,
    images: u32,
    /// Whether the job is in the store's ledger (false when admitted while the store was down).
    in_store: bool,
    model_started: bool,
    finished: bool,
    running: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Ticket {
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Why a waiting job must leave the line now, if it must.
    fn must_leave(&self) -> Result<()> {
        if self.jobs.is_closed() {
            return Err(Error::Busy(
                "Atelier is restarting and your request had not started: nothing was charged; ask again in a minute"
                    .into(),
            ));
        }
        let cancelled = lock(&self.jobs.shared.line).jobs.get(&self.id).is_some_and(|job| job.cancelled);
        if cancelled {
            return Err(Error::Cancelled("cancelled before it started: nothing was charged".into()));
        }
        Ok(())
    }

    /// Waits for the job's turn, telling `progress` its place in line as it moves; leaves
    /// the line with an answer when it is cancelled or the process stops.
    pub async fn wait_turn(&mut self, progress: Progress<'_>) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let closed = |_| Error::operator("waiting for a job slot", "the job line was closed");
        let shared = self.jobs.shared.clone();
        let mut last_position = None;
        // The person's own slot first, so their later jobs do not hold process slots idle.
        let person = self.jobs.person_slots(&self.owner).acquire_owned();
        tokio::pin!(person);
        let person_permit = loop {
            let moved = shared.line_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            self.must_leave()?;
            self.report_position(progress, &mut last_position);
            tokio::select! {
                permit = &mut person => break permit.map_err(closed)?,
                () = moved => {}
            }
        };
        let slot = shared.slots.clone().acquire_owned();
        tokio::pin!(slot);
        let slot_permit = loop {
            let moved = shared.line_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            self.must_leave()?;
            self.report_position(progress, &mut last_position);
            tokio::select! {
                permit = &mut slot => break permit.map_err(closed)?,
                () = moved => {}
            }
        };
        // The last chance to leave, taken under the lock that `cancel` takes, so a job is
        // either called back here or told too late there, never answered one way and run.
        {
            let mut line = lock(&shared.line);
            if let Some(job) = line.jobs.get_mut(&self.id) {
                job.started = !job.cancelled;
            }
        }
        self.must_leave()?;
        if self.in_store {
            match shared.ledgers.start(&self.owner, self.id).await {
                Ok(Start::Started) => {}
                Ok(Start::Cancelled) => {
                    // The ledger already gave the images back in the same write.
                    self.finished = true;
                    let _ = shared.ledgers.delete_job(self.id).await;
                    return Err(Error::Cancelled("cancelled before it started: nothing was charged".into()));
                }
                Err(error) if is_store_outage(&error) => {
                    tracing::warn!(error = %error, job.id = %self.id, "could not mark the job running in the store");
                }
                Err(error) => return Err(error),
            }
        }
        {
            let mut line = lock(&shared.line);
            line.waiting.remove(&self.number);
            line.running += 1;
        }
        shared.line_moved.notify_waiters();
        self.running = Some((person_permit, slot_permit));
        Ok(())
    }

    fn report_position(&self, progress: Progress<'_>, last_position: &mut Option<usize>) {
        let position = lock(&self.jobs.shared.line).waiting.range(..self.number).count() + 1;
        if *last_position != Some(position) {
            progress(Stage::Queued { position, job: self.id });
            *last_position = Some(position);
        }
    }

    /// The model is about to run: from here on the images are spent, so a job dropped
    /// without an ending keeps them charged.
    pub fn model_started(&mut self) {
        self.model_started = true;
    }

    pub fn has_model_started(&self) -> bool {
        self.model_started
    }

    /// Ends the job: takes it out of the ledger and the store's job records, giving its
    /// images back when `refund` (it failed for a reason that is not the person's: a model
    /// outage, a store failure, a refusal before any image model ran).
    pub async fn finish(mut self, refund: bool) {
        self.finished = true;
        let ending = if refund { Ending::Refunded } else { Ending::Charged };
        self.end(ending).await;
    }

    async fn end(&self, ending: Ending) {
        let shared = &self.jobs.shared;
        if ending == Ending::Refunded {
            let mut line = lock(&shared.line);
            if let Some(used) = line.images_today.get_mut(&self.owner) {
                *used = used.saturating_sub(self.images);
            }
        }
        if !self.in_store {
            return;
        }
        let written = match shared.ledgers.finish(&self.owner, self.id, ending).await {
            Ok(_) => shared.ledgers.delete_job(self.id).await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(error = %error, job.id = %self.id, "could not record the job's end yet; trying again later");
            self.jobs.remember_unwritten_ending(&self.owner, self.id, ending);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let was_waiting;
        {
            let mut line = lock(&self.jobs.shared.line);
            was_waiting = line.waiting.remove(&self.number);
            line.jobs.remove(&self.id);
            if self.running.is_some() {
                line.running = line.running.saturating_sub(1);
            }
        }
        if was_waiting {
            self.jobs.shared.line_moved.notify_waiters();
        }
        if !self.finished {
            // Dropped without an ending (the person went away, the task was cancelled): a job
            // that never reached the model gives its images back. The store writes need a
            // task of their own, since drop cannot wait.
            let ending = if self.model_started { Ending::Charged } else { Ending::Refunded };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let orphan = Ticket {
                    jobs: self.jobs.clone(),
                    id: self.id,
                    owner: self.owner.clone(),
                    number: self.number,
                    images: self.images,
                    in_store: self.in_store,
                    model_started: self.model_started,
                    finished: true,
                    running: None,
                };
                runtime.spawn(async move { orphan.end(ending).await });
            } else {
                self.jobs.remember_unwritten_ending(&self.owner, self.id, ending);
            }
        }
    }
}

#[cfg(test)]
mod tests;
