//! Admitting jobs into the line (charging the person's quota in the store's ledger, or
//! locally while the store is down), and what can be asked of the line: usage, cancelling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use super::ledger::{Ending, JobRecord, LedgerState, Ledgers, check_quota};
use super::{
    Cancelled, JobAnswerer, JobDetails, JobId, Jobs, LocalJob, ReplicaId, Shared, Ticket, Usage, is_store_outage, lock,
};
use crate::config::JobLimits;
use crate::error::{Error, Result};
use crate::gallery::Owner;
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

    pub(super) fn person_slots(&self, owner: &Owner) -> Arc<Semaphore> {
        let mut slots = lock(&self.shared.per_person_slots);
        slots
            .entry(owner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.limits.per_user_running)))
            .clone()
    }
}
