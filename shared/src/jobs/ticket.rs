//! An admitted job's ticket: its wait for a running slot, and its ending, written to the
//! ledger even when the ticket is dropped without one.

use tokio::sync::{AcquireError, OwnedSemaphorePermit};

use super::ledger::{Ending, Start};
use super::{JobId, Jobs, Progress, Stage, is_store_outage, lock};
use crate::error::{Error, Result};
use crate::gallery::Owner;
use crate::pricing::Usd;

/// An admitted job: holds its place in line, then its running slot, until finished.
pub struct Ticket {
    pub(super) jobs: Jobs,
    pub(super) id: JobId,
    pub(super) owner: Owner,
    pub(super) number: u64,
    pub(super) images: u32,
    pub(super) cost: Usd,
    /// Whether the job is in the store's ledger (false when admitted while the store was down).
    pub(super) in_store: bool,
    pub(super) model_started: bool,
    pub(super) finished: bool,
    pub(super) running: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Ticket {
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The job's estimated price, charged at admission.
    /// How many images the job was admitted for.
    pub fn images(&self) -> u32 {
        self.images
    }

    pub fn cost(&self) -> Usd {
        self.cost
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
        let shared = self.jobs.shared.clone();
        let mut last_position = None;
        // The person's own slot first, so their later jobs do not hold process slots idle.
        let person = self.jobs.person_slots(&self.owner).acquire_owned();
        let person_permit = self.wait_for(person, progress, &mut last_position).await?;
        let slot = shared.slots.clone().acquire_owned();
        let slot_permit = self.wait_for(slot, progress, &mut last_position).await?;
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

    /// Waits for one permit while telling the person where they are in the line each time it
    /// moves, and leaving it when the job is cancelled or the process stops.
    async fn wait_for(
        &self,
        permit: impl Future<Output = std::result::Result<OwnedSemaphorePermit, AcquireError>>,
        progress: Progress<'_>,
        last_position: &mut Option<usize>,
    ) -> Result<OwnedSemaphorePermit> {
        let shared = &self.jobs.shared;
        tokio::pin!(permit);
        loop {
            let moved = shared.line_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            self.must_leave()?;
            self.report_position(progress, last_position);
            tokio::select! {
                permit = &mut permit => {
                    return permit.map_err(|_| Error::operator("waiting for a job slot", "the job line was closed"));
                }
                () = moved => {}
            }
        }
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
            lock(&shared.line).tally(&self.owner, self.images, self.cost, true);
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
                    cost: self.cost,
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
