//! The line image jobs wait in, and each person's share of it.
//!
//! Every image job, from any front end, is admitted here first: a person may have only so
//! many jobs running and waiting, and only so many images a day. Admission charges the day's
//! quota at once, so two jobs started together cannot both squeeze under it; the job gives the
//! images back ([`Ticket::refund`]) when it fails for a reason that is not the person's.
//! Admitted jobs then wait for one of the process's running slots, first come first served
//! (tokio's semaphore is fair), with a per-person limit so one busy user cannot fill them all.
//!
//! This is per process: quotas and the line start over on restart and are not shared
//! between replicas.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Date, OffsetDateTime};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::JobLimits;
use crate::error::{Error, Result};
use crate::gallery::Owner;

/// Where a job is, as front ends show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a free slot; `position` 1 is next.
    Queued { position: usize },
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
            Self::Queued { position: 1 } => formatter.write_str("Queued: next in line"),
            Self::Queued { position } => write!(formatter, "Queued: {position} in line"),
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

#[derive(Default)]
struct PersonJobs {
    running: usize,
    queued: usize,
}

#[derive(Default)]
struct Ledger {
    people: HashMap<Owner, PersonJobs>,
    /// Tickets waiting for a slot, by admission number, so positions are easy to count.
    waiting: BTreeSet<u64>,
    next_ticket: u64,
    day: Option<Date>,
    images_today: HashMap<Owner, u32>,
}

impl Ledger {
    /// Forgets yesterday's counts on the first use of a new UTC day.
    fn roll_day(&mut self, today: Date) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.images_today.clear();
        }
    }
}

struct Shared {
    /// Set when the process is stopping: no new jobs are admitted.
    closed: std::sync::atomic::AtomicBool,
    limits: JobLimits,
    slots: Arc<Semaphore>,
    per_person_slots: Mutex<HashMap<Owner, Arc<Semaphore>>>,
    ledger: Mutex<Ledger>,
    /// Woken whenever a waiting job leaves the line, so the others can report their new place.
    line_moved: Notify,
}

/// The job line; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    shared: Arc<Shared>,
}

impl Jobs {
    pub fn new(limits: JobLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                closed: std::sync::atomic::AtomicBool::new(false),
                limits,
                slots: Arc::new(Semaphore::new(limits.max_running.max(1))),
                per_person_slots: Mutex::default(),
                ledger: Mutex::default(),
                line_moved: Notify::new(),
            }),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves plain counters behind, which are still usable.
        self.shared.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a job for `owner` that will make `images` images, charging them to today's
    /// quota; refuses, with what to do, when the person has too much waiting or the quota
    /// cannot cover it.
    pub fn admit(&self, owner: &Owner, images: u32) -> Result<Ticket> {
        if self.is_closed() {
            return Err(Error::Busy(
                "Atelier is restarting and takes no new images for a moment: ask again in a minute".into(),
            ));
        }
        let limits = self.shared.limits;
        let mut ledger = self.ledger();
        ledger.roll_day(OffsetDateTime::now_utc().date());
        let person = ledger.people.entry(owner.clone()).or_default();
        if person.running >= limits.per_user_running && person.queued >= limits.per_user_queued {
            let waiting = person.queued;
            return Err(Error::Busy(format!(
                "you already have {} running and {waiting} waiting; wait for one to finish, then ask again",
                plural(person.running, "job")
            )));
        }
        let used = ledger.images_today.get(owner).copied().unwrap_or(0);
        if let Some(quota) = limits.daily_images
            && used.saturating_add(images) > quota
        {
            let left = quota.saturating_sub(used);
            return Err(Error::Busy(format!(
                "that would make {}, and you have {} left of today's {quota}; ask for fewer, or come back after \
                 midnight UTC",
                plural(images as usize, "image"),
                plural(left as usize, "image")
            )));
        }
        *ledger.images_today.entry(owner.clone()).or_default() += images;
        let ticket_number = ledger.next_ticket;
        ledger.next_ticket += 1;
        ledger.people.entry(owner.clone()).or_default().queued += 1;
        ledger.waiting.insert(ticket_number);
        Ok(Ticket {
            jobs: self.clone(),
            owner: owner.clone(),
            number: ticket_number,
            images,
            charged: true,
            running: None,
        })
    }

    /// Stops admitting jobs (the process is stopping); jobs already admitted carry on.
    pub fn close(&self) {
        self.shared.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One person's jobs and images today.
    pub fn usage(&self, owner: &Owner) -> Usage {
        let mut ledger = self.ledger();
        ledger.roll_day(OffsetDateTime::now_utc().date());
        let person = ledger.people.get(owner);
        Usage {
            running: person.map_or(0, |person| person.running),
            queued: person.map_or(0, |person| person.queued),
            images_today: ledger.images_today.get(owner).copied().unwrap_or(0),
            daily_images: self.shared.limits.daily_images,
        }
    }

    fn person_slots(&self, owner: &Owner) -> Arc<Semaphore> {
        let mut slots = self.shared.per_person_slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(owner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.limits.per_user_running)))
            .clone()
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// An admitted job: holds its place in line, then its running slot, until dropped.
pub struct Ticket {
    jobs: Jobs,
    owner: Owner,
    number: u64,
    images: u32,
    charged: bool,
    running: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Ticket {
    /// Waits for the job's turn, telling `progress` its place in line as it moves.
    pub async fn wait_turn(&mut self, progress: Progress<'_>) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let closed = |_| Error::operator("waiting for a job slot", "the job line was closed");
        // The person's own slot first, so their later jobs do not hold process slots idle.
        let person = self.jobs.person_slots(&self.owner).acquire_owned();
        tokio::pin!(person);
        let mut last_position = None;
        let person_permit = loop {
            let position = self.position();
            if last_position != Some(position) {
                progress(Stage::Queued { position });
                last_position = Some(position);
            }
            tokio::select! {
                permit = &mut person => break permit.map_err(closed)?,
                () = self.jobs.shared.line_moved.notified() => {}
            }
        };
        let slot = self.jobs.shared.slots.clone().acquire_owned();
        tokio::pin!(slot);
        let slot_permit = loop {
            let position = self.position();
            if last_position != Some(position) {
                progress(Stage::Queued { position });
                last_position = Some(position);
            }
            tokio::select! {
                permit = &mut slot => break permit.map_err(closed)?,
                () = self.jobs.shared.line_moved.notified() => {}
            }
        };
        {
            let mut ledger = self.jobs.ledger();
            ledger.waiting.remove(&self.number);
            if let Some(person) = ledger.people.get_mut(&self.owner) {
                person.queued = person.queued.saturating_sub(1);
                person.running += 1;
            }
        }
        self.jobs.shared.line_moved.notify_waiters();
        self.running = Some((person_permit, slot_permit));
        Ok(())
    }

    /// This job's place in line: 1 when it is next.
    fn position(&self) -> usize {
        self.jobs.ledger().waiting.range(..self.number).count() + 1
    }

    /// Gives the job's images back to today's quota: the job failed for a reason that is not
    /// the person's (a model outage, a store failure, a refusal before any image model ran).
    pub fn refund(&mut self) {
        if std::mem::take(&mut self.charged) {
            let mut ledger = self.jobs.ledger();
            if let Some(used) = ledger.images_today.get_mut(&self.owner) {
                *used = used.saturating_sub(self.images);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut ledger = self.jobs.ledger();
        let was_waiting = ledger.waiting.remove(&self.number);
        if let Some(person) = ledger.people.get_mut(&self.owner) {
            if self.running.is_some() {
                person.running = person.running.saturating_sub(1);
            } else {
                person.queued = person.queued.saturating_sub(1);
            }
            if person.running == 0 && person.queued == 0 {
                ledger.people.remove(&self.owner);
            }
        }
        drop(ledger);
        if was_waiting {
            self.jobs.shared.line_moved.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(daily_images: Option<u32>) -> JobLimits {
        JobLimits { max_running: 1, per_user_running: 1, per_user_queued: 1, daily_images, ..JobLimits::default() }
    }

    #[tokio::test]
    async fn a_person_may_not_queue_past_the_limit_and_gets_the_place_back_when_a_job_ends() {
        let jobs = Jobs::new(limits(None));
        let owner = Owner::discord(1);
        let mut first = jobs.admit(&owner, 1).unwrap();
        first.wait_turn(&no_progress).await.unwrap();
        let second = jobs.admit(&owner, 1).unwrap();
        let refused = jobs.admit(&owner, 1).err().unwrap();
        assert!(refused.to_string().contains("1 job running and 1 waiting"), "{refused}");
        assert_eq!(jobs.usage(&owner), Usage { running: 1, queued: 1, images_today: 2, daily_images: None });
        drop(second);
        drop(first);
        assert_eq!(jobs.usage(&owner).running + jobs.usage(&owner).queued, 0);
        assert!(jobs.admit(&owner, 1).is_ok());
    }

    #[tokio::test]
    async fn a_closed_line_admits_nothing_new_and_lets_running_jobs_finish() {
        let jobs = Jobs::new(limits(None));
        let mut running = jobs.admit(&Owner::discord(5), 1).unwrap();
        running.wait_turn(&no_progress).await.unwrap();
        jobs.close();
        let refused = jobs.admit(&Owner::discord(6), 1).err().unwrap();
        assert!(refused.to_string().contains("restarting"), "{refused}");
        assert_eq!(jobs.usage(&Owner::discord(5)).running, 1);
        drop(running);
    }

    #[tokio::test]
    async fn the_daily_quota_is_charged_on_admission_and_refunds_give_it_back() {
        let jobs = Jobs::new(JobLimits { per_user_queued: 5, ..limits(Some(4)) });
        let owner = Owner::discord(2);
        let mut failed = jobs.admit(&owner, 3).unwrap();
        let refused = jobs.admit(&owner, 2).err().unwrap();
        assert!(refused.to_string().contains("you have 1 image left of today's 4"), "{refused}");
        failed.refund();
        failed.refund();
        drop(failed);
        assert_eq!(jobs.usage(&owner).images_left(), Some(4));
        assert!(jobs.admit(&owner, 4).is_ok());
    }

    #[tokio::test]
    async fn waiting_jobs_report_their_place_and_run_in_order() {
        let jobs = Jobs::new(JobLimits { per_user_queued: 2, ..limits(None) });
        let mut running = jobs.admit(&Owner::discord(1), 1).unwrap();
        running.wait_turn(&no_progress).await.unwrap();
        let second = jobs.admit(&Owner::discord(2), 1).unwrap();
        let third = jobs.admit(&Owner::discord(3), 1).unwrap();
        let waiter = |mut ticket: Ticket| {
            let (sender, heard) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::spawn(async move {
                let report = move |stage: Stage| {
                    let _ = sender.send(stage);
                };
                ticket.wait_turn(&report).await.unwrap();
                ticket
            });
            (task, heard)
        };
        let (second_task, mut second_heard) = waiter(second);
        assert_eq!(second_heard.recv().await, Some(Stage::Queued { position: 1 }));
        let (third_task, mut third_heard) = waiter(third);
        assert_eq!(third_heard.recv().await, Some(Stage::Queued { position: 2 }));
        drop(running);
        let second = second_task.await.unwrap();
        assert_eq!(third_heard.recv().await, Some(Stage::Queued { position: 1 }));
        assert_eq!(jobs.usage(&Owner::discord(3)).queued, 1);
        drop(second);
        let third = third_task.await.unwrap();
        assert_eq!(jobs.usage(&Owner::discord(3)).running, 1);
        drop(third);
    }
}
