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

mod admission;
mod details;
mod keeper;
pub mod ledger;
mod progress;
mod ticket;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use time::Date;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::JobLimits;
use crate::error::Error;
use crate::gallery::Owner;
use crate::pricing::Usd;
use ledger::{Ending, Ledgers};

pub use details::{JobAnswerer, JobDetails, JobId, JobKind, ReplicaId, ReplyRoute};
pub use progress::{Cancelled, Progress, Stage, Usage, no_progress, usage_text};
pub use ticket::Ticket;

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
    /// What each person's calls through this process cost today, the budget's fallback in
    /// the same way.
    spent_today: HashMap<Owner, Usd>,
    /// What this process's model calls cost today, and what the other replicas last said
    /// theirs did: the service's daily cap weighs their sum.
    spent_here: Usd,
    spent_elsewhere: Usd,
}

impl Line {
    fn roll_day(&mut self, today: Date) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.images_today.clear();
            self.spent_today.clear();
            self.spent_here = Usd::ZERO;
            self.spent_elsewhere = Usd::ZERO;
        }
    }

    /// Counts a charge (or, with `refund`, gives one back) in this process's tallies.
    fn tally(&mut self, owner: &Owner, images: u32, cost: Usd, refund: bool) {
        let used = self.images_today.entry(owner.clone()).or_default();
        let spent = self.spent_today.entry(owner.clone()).or_default();
        if refund {
            *used = used.saturating_sub(images);
            *spent = spent.saturating_sub(cost);
            self.spent_here = self.spent_here.saturating_sub(cost);
        } else {
            *used = used.saturating_add(images);
            *spent = spent.saturating_add(cost);
            self.spent_here = self.spent_here.saturating_add(cost);
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

#[cfg(test)]
mod tests;
