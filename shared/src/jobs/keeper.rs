//! The keeper: this replica's heartbeat, endings the store missed, and the jobs of replicas
//! that stopped or died, answered and refunded by whichever replica notices first.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::ledger::{DaySpend, Ending, ReplicaRecord};
use super::{Jobs, ReplicaId, lock};
use crate::error::Result;

impl Jobs {
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
            spent: Some(self.spent_here()),
        };
        ledgers.beat(&beat).await?;
        // Only a capped service needs to know what the others spent.
        if self.shared.limits.service_daily_budget.is_some() {
            let day = beat.spent.map_or_else(|| OffsetDateTime::now_utc().date(), |spent| spent.day);
            let usd = ledgers.spent_elsewhere(day, &self.shared.replica).await?;
            self.note_spent_elsewhere(DaySpend { day, usd });
        }
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
            spent: Some(self.spent_here()),
        };
        if let Err(error) = self.shared.ledgers.beat(&record).await {
            tracing::warn!(error = %error, "could not mark this replica stopped in the store");
        }
    }
}
