//! Admitting jobs into the line (charging the person's quota in the store's ledger, or
//! locally while the store is down), and what can be asked of the line: usage, cancelling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use super::ledger::{Ending, JobRecord, LedgerState, Ledgers, ReplicaRecord, check_budget, check_quota};
use super::{
    Cancelled, JobAnswerer, JobDetails, JobId, Jobs, LocalJob, ReplicaId, Shared, Ticket, Usage, is_store_outage, lock,
};
use crate::config::JobLimits;
use crate::error::{Error, Result};
use crate::gallery::Owner;
use crate::pricing::Usd;
use crate::store::ObjectStore;

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

    /// Admits a job for `owner` that will make `images` images costing an estimated `cost`,
    /// charging both to today's quota and budget; refuses, with what to do, when the person
    /// has too much in progress, the quota or the budget cannot cover it, or the service has
    /// spent what its operator allows for the day.
    pub async fn admit(&self, owner: &Owner, images: u32, cost: Usd, details: JobDetails) -> Result<Ticket> {
        self.admit_with_role_budget(owner, images, cost, None, details).await
    }

    /// [`Self::admit`] for someone whose server roles give them a personal daily budget of
    /// their own: the larger of it and the service's applies (see [`Self::personal_budget`]).
    pub async fn admit_with_role_budget(
        &self,
        owner: &Owner,
        images: u32,
        cost: Usd,
        role_budget: Option<Usd>,
        details: JobDetails,
    ) -> Result<Ticket> {
        if self.is_closed() {
            return Err(Error::Busy(
                "Atelier is restarting and takes no new images for a moment: ask again in a minute".into(),
            ));
        }
        self.check_service_budget(cost)?;
        let limits = JobLimits { daily_budget: self.personal_budget(role_budget), ..self.shared.limits };
        let id = JobId::new();
        let ledgers = &self.shared.ledgers;
        let mut in_store = match ledgers.admit(owner, id, images, cost, &self.shared.replica, &limits).await {
            Ok(()) => true,
            Err(error) if is_store_outage(&error) => {
                tracing::warn!(error = %error, "the store cannot keep the job ledger; counting this job locally");
                self.admit_locally(owner, images, cost, limits.daily_budget)?;
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
                    line.tally(owner, images, cost, false);
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
                    self.admit_locally(owner, images, cost, limits.daily_budget)?;
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
            cost,
            in_store,
            model_started: false,
            finished: false,
            running: None,
        })
    }

    /// The quota and budget check of the old, per-process line, used only while the store
    /// is down.
    fn admit_locally(&self, owner: &Owner, images: u32, cost: Usd, daily_budget: Option<Usd>) -> Result<()> {
        let mut line = lock(&self.shared.line);
        line.roll_day(OffsetDateTime::now_utc().date());
        let used = line.images_today.get(owner).copied().unwrap_or(0);
        check_quota(self.shared.limits.daily_images, used, images)?;
        let spent = line.spent_today.get(owner).copied().unwrap_or_default();
        check_budget(daily_budget, spent, cost)?;
        line.tally(owner, images, cost, false);
        Ok(())
    }

    /// A person's daily budget when their roles give them `role_budget`: the larger of it and
    /// the service's personal budget. A role raises a budget and never lowers it; a service
    /// with no personal budget keeps none.
    pub fn personal_budget(&self, role_budget: Option<Usd>) -> Option<Usd> {
        match (self.shared.limits.daily_budget, role_budget) {
            (Some(configured), Some(role)) => Some(configured.max(role)),
            (configured, _) => configured,
        }
    }

    /// Refuses when the service as a whole has spent its day's cap (as far as this replica
    /// knows: the others' spending arrives with their heartbeats, so the cap may be passed
    /// by what the replicas spend between two of them).
    fn check_service_budget(&self, cost: Usd) -> Result<()> {
        let Some(cap) = self.shared.limits.service_daily_budget else { return Ok(()) };
        let mut line = lock(&self.shared.line);
        line.roll_day(OffsetDateTime::now_utc().date());
        let spent = line.spent_here.saturating_add(line.spent_elsewhere);
        if spent >= cap || spent.saturating_add(cost) > cap {
            return Err(Error::Busy(
                "Atelier has reached the spending limit its operator set for today; it takes new requests again \
                 after midnight UTC"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Refuses a model call that is not an image job (a chat reply, a critique, a
    /// description, an appeal) when the person's budget or the service's is spent, before
    /// anything is called. Its price is known only afterwards: see [`Self::charge`].
    pub async fn check_budget_left(&self, owner: &Owner, role_budget: Option<Usd>) -> Result<()> {
        self.check_service_budget(Usd::ZERO)?;
        let Some(budget) = self.personal_budget(role_budget) else { return Ok(()) };
        let spent = match self.shared.ledgers.ledger(owner).await {
            Ok(ledger) => ledger.spent,
            Err(error) if is_store_outage(&error) => {
                let mut line = lock(&self.shared.line);
                line.roll_day(OffsetDateTime::now_utc().date());
                line.spent_today.get(owner).copied().unwrap_or_default()
            }
            Err(error) => return Err(error),
        };
        check_budget(Some(budget), spent, Usd::ZERO)
    }

    /// Adds the price of a call already made to the person's day and the service's. A store
    /// that cannot be written leaves it counted here only: the call is made, and the person
    /// already has their answer.
    pub async fn charge(&self, owner: &Owner, cost: Usd) {
        {
            let mut line = lock(&self.shared.line);
            line.roll_day(OffsetDateTime::now_utc().date());
            line.tally(owner, 0, cost, false);
        }
        if let Err(error) = self.shared.ledgers.charge(owner, cost).await {
            tracing::warn!(error = %error, user.id = %owner, cost = %cost, "could not add a call's price to the person's ledger");
        }
    }

    /// What this replica spent today, for its heartbeat.
    pub(super) fn spent_here(&self) -> super::ledger::DaySpend {
        let today = OffsetDateTime::now_utc().date();
        let mut line = lock(&self.shared.line);
        line.roll_day(today);
        super::ledger::DaySpend { day: today, usd: line.spent_here }
    }

    /// Notes what the other replicas spent today, read from their heartbeats.
    pub(super) fn note_spent_elsewhere(&self, spent: super::ledger::DaySpend) {
        let mut line = lock(&self.shared.line);
        line.roll_day(OffsetDateTime::now_utc().date());
        if line.day == Some(spent.day) {
            line.spent_elsewhere = spent.usd;
        }
    }

    pub(super) fn remember_unwritten_ending(&self, owner: &Owner, id: JobId, ending: Ending) {
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
    /// The limits this line keeps.
    pub fn limits(&self) -> JobLimits {
        self.shared.limits
    }

    pub fn depth(&self) -> (usize, usize) {
        let line = lock(&self.shared.line);
        (line.waiting.len(), line.running)
    }

    /// Starts a person's day again (see [`super::ledger::Ledgers::reset_day`]).
    pub async fn reset_day(&self, owner: &Owner) -> Result<()> {
        self.shared.ledgers.reset_day(owner).await
    }

    /// The jobs in progress on every replica, oldest first (at most 1,000).
    pub async fn jobs_in_progress(&self) -> Result<Vec<JobRecord>> {
        let mut records = Vec::new();
        for id in self.shared.ledgers.job_ids(1_000).await? {
            if let Some(record) = self.shared.ledgers.job(id).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The replicas that have written a heartbeat.
    pub async fn replicas(&self) -> Result<Vec<ReplicaRecord>> {
        self.shared.ledgers.all_replicas().await
    }

    /// One person's jobs and images today, everywhere, against their budget (raised by
    /// `role_budget` where they ask).
    pub async fn usage(&self, owner: &Owner, role_budget: Option<Usd>) -> Result<Usage> {
        let ledger = self.shared.ledgers.ledger(owner).await?;
        Ok(Usage {
            running: ledger.count(LedgerState::Running),
            queued: ledger.count(LedgerState::Waiting),
            images_today: ledger.images,
            daily_images: self.shared.limits.daily_images,
            spent_today: ledger.spent,
            daily_budget: self.personal_budget(role_budget),
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

    pub(super) fn person_slots(&self, owner: &Owner) -> Arc<Semaphore> {
        let mut slots = lock(&self.shared.per_person_slots);
        slots
            .entry(owner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.limits.per_user_running)))
            .clone()
    }
}
