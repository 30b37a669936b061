//! What the job line keeps in the store, so it holds across restarts and replicas: each
//! person's ledger (today's images and their jobs in progress) changed only by
//! compare-and-swap, a record per job in progress so a job whose process died can be found
//! and answered, and a heartbeat per replica so the others can tell it died.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{JobDetails, JobId, ReplicaId};
use crate::config::JobLimits;
use crate::error::{Error, Result};
use crate::gallery::Owner;
use crate::pricing::Usd;
use crate::store::json::JsonRecords;
use crate::store::{ObjectKey, ObjectStore};

/// Where a job is, as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerState {
    Waiting,
    Running,
}

/// One job in progress in a person's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerJob {
    pub id: JobId,
    pub images: u32,
    /// Their estimated price, charged to the day's budget with them and given back with them.
    #[serde(default)]
    pub cost: Usd,
    /// The UTC day the images were charged to; a refund after midnight gives nothing back
    /// to the new day.
    pub day: Date,
    pub state: LedgerState,
    pub replica: ReplicaId,
    /// Set when the owner cancelled from another replica: the job leaves when its turn comes.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// One person's images today and jobs in progress, everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonLedger {
    pub day: Date,
    pub images: u32,
    #[serde(default)]
    pub jobs: Vec<LedgerJob>,
    /// How many of another owner's images today `images` counts already, by owner: a web
    /// account's ledger notes the Discord user linked to it (see [`Ledgers::join`]), so
    /// that linking, unlinking and linking again counts each image of the day once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counted_from: BTreeMap<Owner, u32>,
    /// The estimated price of every model call today (images, chat, critiques,
    /// descriptions, appeals), weighed against the daily budget.
    #[serde(default)]
    pub spent: Usd,
    /// Like `counted_from`, for what the other owner spent today.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spent_counted_from: BTreeMap<Owner, Usd>,
}

impl PersonLedger {
    fn today(existing: Option<Self>, today: Date) -> Self {
        match existing {
            Some(ledger) if ledger.day == today => ledger,
            Some(ledger) => Self { jobs: ledger.jobs, ..Self::empty(today) },
            None => Self::empty(today),
        }
    }

    fn empty(day: Date) -> Self {
        Self {
            day,
            images: 0,
            jobs: Vec::new(),
            counted_from: BTreeMap::new(),
            spent: Usd::ZERO,
            spent_counted_from: BTreeMap::new(),
        }
    }

    pub fn count(&self, state: LedgerState) -> usize {
        self.jobs.iter().filter(|job| job.state == state).count()
    }

    /// Gives a job's images and their price back, if they were charged to this day.
    fn refund(&mut self, job: &LedgerJob) {
        if job.day == self.day {
            self.images = self.images.saturating_sub(job.images);
            self.spent = self.spent.saturating_sub(job.cost);
        }
    }
}

/// A job in progress, as kept in the store under `jobs/` until it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub owner: Owner,
    pub images: u32,
    pub replica: ReplicaId,
    #[serde(with = "time::serde::rfc3339")]
    pub admitted_at: OffsetDateTime,
    pub details: JobDetails,
    /// Set by the replica that took over this job after its own replica died, so two
    /// replicas never both answer it.
    #[serde(default)]
    pub recovered_by: Option<ReplicaId>,
}

/// A replica's sign of life, rewritten every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub replica: ReplicaId,
    #[serde(with = "time::serde::rfc3339")]
    pub heartbeat_at: OffsetDateTime,
    /// Written on a clean stop: its leftover jobs can be answered at once.
    #[serde(default)]
    pub stopped: bool,
    /// What this replica estimated it spent on model calls that day, for the service's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<DaySpend>,
}

/// Spending on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpend {
    pub day: Date,
    pub usd: Usd,
}

/// How a job left the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It made its images, or the model ran and refused: the images stay charged.
    Charged,
    /// It failed for a reason that is not the person's, or never reached the model.
    Refunded,
}

/// What starting a job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Started,
    /// The owner cancelled it from elsewhere; it is out of the ledger and refunded.
    Cancelled,
}

/// The store side of the job line.
#[derive(Clone)]
pub struct Ledgers {
    store: Arc<dyn ObjectStore>,
    /// One writer at a time per person's ledger within this process. Compare-and-swap keeps
    /// replicas apart; this keeps a burst of one person's jobs here from all reading the same
    /// version, all but one losing, and trying again (each try a read and a write).
    writers: Arc<Mutex<HashMap<Owner, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Ledgers {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, writers: Arc::default() }
    }

    /// Waits for this process's turn to change `owner`'s ledger.
    async fn writing(&self, owner: &Owner) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut writers = self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget people nobody is writing for, so the map stays as small as the busy set.
            if writers.len() > 1_024 {
                writers.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            writers.entry(owner.clone()).or_default().clone()
        };
        turn.lock_owned().await
    }

    fn key(text: String) -> Result<ObjectKey> {
        ObjectKey::new(text).map_err(|error| Error::operator("building a store key", error))
    }

    fn ledger_key(owner: &Owner) -> Result<ObjectKey> {
        Self::key(format!("users/{owner}/usage.json"))
    }

    fn job_key(id: JobId) -> Result<ObjectKey> {
        Self::key(format!("jobs/{id}.json"))
    }

    fn replica_key(replica: &ReplicaId) -> Result<ObjectKey> {
        Self::key(format!("replicas/{replica}.json"))
    }

    fn ledgers(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "usage ledger")
    }

    fn jobs(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "job record")
    }

    fn replicas(&self) -> JsonRecords {
        JsonRecords::new(self.store.clone(), "replica record")
    }

    /// A person's ledger as it stands, for `/me`.
    pub async fn ledger(&self, owner: &Owner) -> Result<PersonLedger> {
        let today = OffsetDateTime::now_utc().date();
        let existing = self.ledgers().get(&Self::ledger_key(owner)?).await?;
        Ok(PersonLedger::today(existing, today))
    }

    /// Charges `images` to today and adds the job, or refuses with what to do; nothing is
    /// written when it refuses.
    pub async fn admit(
        &self,
        owner: &Owner,
        id: JobId,
        images: u32,
        cost: Usd,
        replica: &ReplicaId,
        limits: &JobLimits,
    ) -> Result<()> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                let running = ledger.count(LedgerState::Running);
                let waiting = ledger.count(LedgerState::Waiting);
                if running + waiting >= limits.per_user_running + limits.per_user_queued {
                    return Err(Error::Busy(format!(
                        "you already have {} running and {waiting} waiting; wait for one to finish, then ask again",
                        plural(running, "job")
                    )));
                }
                check_quota(limits.daily_images, ledger.images, images)?;
                check_budget(limits.daily_budget, ledger.spent, cost)?;
                ledger.images = ledger.images.saturating_add(images);
                ledger.spent = ledger.spent.saturating_add(cost);
                ledger.jobs.push(LedgerJob {
                    id,
                    images,
                    cost,
                    day: today,
                    state: LedgerState::Waiting,
                    replica: replica.clone(),
                    cancel_requested: false,
                });
                Ok((ledger, ()))
            })
            .await
    }

    /// Adds the price of a call already made (a chat reply, a critique) to today's spending.
    /// Never refuses: the call was checked against the budget before it was made.
    pub async fn charge(&self, owner: &Owner, cost: Usd) -> Result<Usd> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                ledger.spent = ledger.spent.saturating_add(cost);
                let spent = ledger.spent;
                Ok((ledger, spent))
            })
            .await
    }

    /// Starts a person's day again: no images counted and nothing spent today (the operator's
    /// `atelier admin reset-budget`). Their jobs in progress stay as they are.
    pub async fn reset_day(&self, owner: &Owner) -> Result<()> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                ledger.images = 0;
                ledger.spent = Usd::ZERO;
                ledger.counted_from.clear();
                ledger.spent_counted_from.clear();
                Ok((ledger, ()))
            })
            .await
    }

    /// Every replica that has written a heartbeat, by id.
    pub async fn all_replicas(&self) -> Result<Vec<ReplicaRecord>> {
        let keys = self
            .store
            .list("replicas/", None, 1_000)
            .await
            .map_err(|error| Error::operator("listing the replicas", error))?;
        let mut replicas = Vec::new();
        for key in keys {
            if let Some(record) = JsonRecords::new(self.store.clone(), "replica heartbeat").get(&key).await? {
                replicas.push(record);
            }
        }
        Ok(replicas)
    }

    /// Marks the job running, unless its owner cancelled it meanwhile (then it leaves the
    /// ledger refunded, in the same write). A job no longer in the ledger was finished by
    /// someone else (recovered after this replica was thought dead): it must not run.
    pub async fn start(&self, owner: &Owner, id: JobId) -> Result<Start> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                let Some(position) = ledger.jobs.iter().position(|job| job.id == id) else {
                    return Ok((ledger, Start::Cancelled));
                };
                if ledger.jobs[position].cancel_requested {
                    let job = ledger.jobs.remove(position);
                    ledger.refund(&job);
                    return Ok((ledger, Start::Cancelled));
                }
                ledger.jobs[position].state = LedgerState::Running;
                Ok((ledger, Start::Started))
            })
            .await
    }

    /// Takes the job out of the ledger, giving its images back if `ending` says so. Safe to
    /// call twice: a job no longer there changes nothing, so nothing is refunded twice.
    /// Returns whether the job was still there.
    pub async fn finish(&self, owner: &Owner, id: JobId, ending: Ending) -> Result<bool> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                let Some(position) = ledger.jobs.iter().position(|job| job.id == id) else {
                    return Ok((ledger, false));
                };
                let job = ledger.jobs.remove(position);
                if ending == Ending::Refunded {
                    ledger.refund(&job);
                }
                Ok((ledger, true))
            })
            .await
    }

    /// Asks for a waiting job to be cancelled wherever it is; whether it was still waiting.
    pub async fn request_cancel(&self, owner: &Owner, id: JobId) -> Result<Option<LedgerState>> {
        let today = OffsetDateTime::now_utc().date();
        let _turn = self.writing(owner).await;
        self.ledgers()
            .update(&Self::ledger_key(owner)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                let state = ledger.jobs.iter_mut().find(|job| job.id == id).map(|job| {
                    if job.state == LedgerState::Waiting {
                        job.cancel_requested = true;
                    }
                    job.state
                });
                Ok((ledger, state))
            })
            .await
    }

    /// Two owners become one person (a Discord user, `from`, links the web account `to`):
    /// `to` takes on `from`'s images today, those it does not count already, so the person
    /// has one day's quota between them. Running it again adds nothing. `from`'s ledger is
    /// left as it is: its jobs in progress still end there.
    pub async fn join(&self, from: &Owner, to: &Owner) -> Result<()> {
        let today = OffsetDateTime::now_utc().date();
        let from_ledger = self.ledger(from).await?;
        let (used, spent) = (from_ledger.images, from_ledger.spent);
        let _turn = self.writing(to).await;
        self.ledgers()
            .update(&Self::ledger_key(to)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                let counted = ledger.counted_from.entry(from.clone()).or_default();
                ledger.images = ledger.images.saturating_add(used.saturating_sub(*counted));
                *counted = (*counted).max(used);
                let counted = ledger.spent_counted_from.entry(from.clone()).or_default();
                ledger.spent = ledger.spent.saturating_add(spent.saturating_sub(*counted));
                *counted = (*counted).max(spent);
                Ok((ledger, ()))
            })
            .await
    }

    /// One person becomes two owners again (the Discord user `from` unlinks the web account
    /// `to`): `from` goes on with every image the person made today, since they are still
    /// that person, and `to`, which keeps its count, notes that it counts all of `from`'s so
    /// far, so linking again today adds only what `from` makes after this. Running it again
    /// changes nothing.
    pub async fn part(&self, from: &Owner, to: &Owner) -> Result<()> {
        let today = OffsetDateTime::now_utc().date();
        let to_ledger = self.ledger(to).await?;
        let (used, spent) = (to_ledger.images, to_ledger.spent);
        let (from_used, from_spent) = {
            let _turn = self.writing(from).await;
            self.ledgers()
                .update(&Self::ledger_key(from)?, |existing: Option<PersonLedger>| {
                    let mut ledger = PersonLedger::today(existing, today);
                    ledger.images = ledger.images.max(used);
                    ledger.spent = ledger.spent.max(spent);
                    let counts = (ledger.images, ledger.spent);
                    Ok((ledger, counts))
                })
                .await?
        };
        let _turn = self.writing(to).await;
        self.ledgers()
            .update(&Self::ledger_key(to)?, |existing: Option<PersonLedger>| {
                let mut ledger = PersonLedger::today(existing, today);
                ledger.counted_from.insert(from.clone(), from_used);
                ledger.spent_counted_from.insert(from.clone(), from_spent);
                Ok((ledger, ()))
            })
            .await
    }

    pub async fn create_job(&self, record: &JobRecord) -> Result<()> {
        let created = self.jobs().create(&Self::job_key(record.id)?, record).await?;
        if created {
            Ok(())
        } else {
            Err(Error::operator("recording a job", format!("job {} is already recorded", record.id)))
        }
    }

    pub async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.jobs().get(&Self::job_key(id)?).await
    }

    pub async fn delete_job(&self, id: JobId) -> Result<()> {
        self.jobs().delete(&Self::job_key(id)?).await
    }

    /// Every job record in the store, oldest first, at most `limit`.
    pub async fn job_ids(&self, limit: usize) -> Result<Vec<JobId>> {
        let keys = self
            .store
            .list("jobs/", None, limit)
            .await
            .map_err(|error| Error::operator("listing the jobs in progress", error))?;
        Ok(keys
            .iter()
            .filter_map(|key| key.as_str().strip_prefix("jobs/")?.strip_suffix(".json"))
            .filter_map(JobId::parse)
            .collect())
    }

    /// Claims a job whose replica died, for `replica`; whether this replica got it.
    pub async fn claim_orphan(
        &self,
        id: JobId,
        replica: &ReplicaId,
        dead: &HashSet<ReplicaId>,
    ) -> Result<Option<JobRecord>> {
        let key = Self::job_key(id)?;
        let records = self.jobs();
        let Some(current) = records.get::<JobRecord>(&key).await? else { return Ok(None) };
        let holder = current.recovered_by.as_ref().unwrap_or(&current.replica);
        if holder == replica || !dead.contains(holder) {
            return Ok(None);
        }
        records
            .update(&key, |existing: Option<JobRecord>| {
                let Some(mut record) = existing else { return Err(Error::not_found("the job is gone")) };
                let holder = record.recovered_by.as_ref().unwrap_or(&record.replica);
                if holder == replica || !dead.contains(holder) {
                    return Err(Error::not_found("someone else took the job"));
                }
                record.recovered_by = Some(replica.clone());
                Ok((record.clone(), record))
            })
            .await
            .map(Some)
            .or_else(|error| match error {
                Error::NotFound(_) => Ok(None),
                other => Err(other),
            })
    }

    pub async fn beat(&self, record: &ReplicaRecord) -> Result<()> {
        self.replicas().overwrite(&Self::replica_key(&record.replica)?, record).await
    }

    pub async fn replica(&self, replica: &ReplicaId) -> Result<Option<ReplicaRecord>> {
        self.replicas().get(&Self::replica_key(replica)?).await
    }

    /// What every other replica says it spent on `day`, for the service's daily cap. Records
    /// of replicas silent for two days are deleted on the way: each start names a new
    /// replica, and nothing else would ever remove them.
    pub async fn spent_elsewhere(&self, day: Date, here: &ReplicaId) -> Result<Usd> {
        let keys = self
            .store
            .list("replicas/", None, 10_000)
            .await
            .map_err(|error| Error::operator("listing the replicas", error))?;
        let now = OffsetDateTime::now_utc();
        let mut total = Usd::ZERO;
        for key in keys {
            let Some(record) = self.replicas().get::<ReplicaRecord>(&key).await? else { continue };
            if &record.replica == here {
                continue;
            }
            if now - record.heartbeat_at > time::Duration::days(2) {
                let _ = self.replicas().delete(&key).await;
                continue;
            }
            if let Some(spent) = record.spent.filter(|spent| spent.day == day) {
                total = total.saturating_add(spent.usd);
            }
        }
        Ok(total)
    }
}

/// Refuses, with what to do, a job that would take the person past today's quota.
pub fn check_quota(daily_images: Option<u32>, used: u32, images: u32) -> Result<()> {
    match daily_images {
        Some(quota) if used.saturating_add(images) > quota => Err(Error::Busy(format!(
            "that would make {}, and you have {} left of today's {quota}; ask for fewer, or come back after midnight UTC",
            plural(images as usize, "image"),
            plural(quota.saturating_sub(used) as usize, "image")
        ))),
        _ => Ok(()),
    }
}

/// Refuses, with what to do, a call that would take the person past today's budget.
pub fn check_budget(daily_budget: Option<Usd>, spent: Usd, cost: Usd) -> Result<()> {
    match daily_budget {
        Some(budget) if spent >= budget || spent.saturating_add(cost) > budget => {
            let left = budget.saturating_sub(spent);
            Err(Error::Busy(if left == Usd::ZERO {
                format!(
                    "you have spent today's budget of {budget} (estimated model costs of images, chat, critiques and \
                     descriptions); it renews at midnight UTC"
                )
            } else {
                format!(
                    "that would cost about {cost}, and you have {left} left of today's budget of {budget}; ask for \
                     fewer images or a cheaper model, or come back after midnight UTC"
                )
            }))
        }
        _ => Ok(()),
    }
}

pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}
