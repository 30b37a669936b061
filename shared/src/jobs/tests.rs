use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::ledger::JobRecord;
use super::*;
use crate::error::Result;
use crate::pricing::Usd;
use crate::request::GenerationFields;
use crate::store::ObjectStore;
use crate::store::folder::FolderStore;

fn limits(daily_images: Option<u32>) -> JobLimits {
    JobLimits { max_running: 1, per_user_running: 1, per_user_queued: 1, daily_images, ..JobLimits::default() }
}

async fn folder_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::open(folder.path()).await.unwrap());
    (folder, store)
}

async fn line(limits: JobLimits) -> (tempfile::TempDir, Jobs) {
    let (folder, store) = folder_store().await;
    (folder, Jobs::new(limits, store))
}

fn details() -> JobDetails {
    JobDetails::generation(GenerationFields { prompt: "a lighthouse".into(), ..GenerationFields::default() })
}

#[tokio::test]
async fn the_budget_weighs_each_job_by_its_price_refunds_failures_and_holds_while_the_store_is_down() {
    let dollars = |micros| Usd::from_micros(micros);
    let limits = JobLimits { per_user_queued: 5, daily_budget: Some(dollars(100_000)), ..limits(None) };
    let (folder, jobs) = line(limits).await;
    let owner = Owner::discord(8);
    let ultra = jobs.admit(&owner, 1, dollars(70_000), details()).await.unwrap();
    let refused = jobs.admit(&owner, 1, dollars(40_000), details()).await.err().unwrap();
    assert!(refused.to_string().contains("$0.03 left of today's budget of $0.10"), "{refused}");
    // A job that failed for a reason not the person's gives its price back.
    ultra.finish(true).await;
    assert_eq!(jobs.usage(&owner, None).await.unwrap().spent_today, Usd::ZERO);
    let core = jobs.admit(&owner, 2, dollars(80_000), details()).await.unwrap();
    core.finish(false).await;
    // A call already made is charged even past the budget; after it, nothing more is let through.
    jobs.check_budget_left(&owner, None).await.unwrap();
    jobs.charge(&owner, dollars(30_000)).await;
    let usage = jobs.usage(&owner, None).await.unwrap();
    assert_eq!((usage.spent_today, usage.budget_left()), (dollars(110_000), Some(Usd::ZERO)));
    let spent = jobs.check_budget_left(&owner, None).await.unwrap_err();
    assert!(spent.to_string().contains("spent today's budget of $0.10"), "{spent}");
    // With the store gone, this process's own count still holds the budget.
    std::fs::remove_dir_all(folder.path()).unwrap();
    std::fs::write(folder.path(), b"not a folder").unwrap();
    assert!(jobs.check_budget_left(&owner, None).await.unwrap_err().to_string().contains("spent today's budget"));
    assert!(jobs.admit(&owner, 1, dollars(1), details()).await.is_err());
}

#[tokio::test]
async fn the_services_daily_cap_stops_everyone_once_reached() {
    let dollars = |micros| Usd::from_micros(micros);
    let limits = JobLimits { per_user_queued: 5, service_daily_budget: Some(dollars(50_000)), ..limits(None) };
    let (_folder, jobs) = line(limits).await;
    jobs.admit(&Owner::discord(1), 1, dollars(40_000), details()).await.unwrap().finish(false).await;
    let refused = jobs.admit(&Owner::discord(2), 1, dollars(40_000), details()).await.err().unwrap();
    assert!(refused.to_string().contains("spending limit its operator set"), "{refused}");
    jobs.charge(&Owner::discord(3), dollars(10_000)).await;
    assert!(jobs.check_budget_left(&Owner::discord(4), None).await.is_err());
}

#[tokio::test]
async fn a_person_may_not_queue_past_the_limit_and_gets_the_place_back_when_a_job_ends() {
    let (_folder, jobs) = line(limits(None)).await;
    let owner = Owner::discord(1);
    let mut first = jobs.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    first.wait_turn(&no_progress).await.unwrap();
    let second = jobs.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    let refused = jobs.admit(&owner, 1, Usd::ZERO, details()).await.err().unwrap();
    assert!(refused.to_string().contains("1 job running and 1 waiting"), "{refused}");
    let usage = jobs.usage(&owner, None).await.unwrap();
    assert_eq!((usage.running, usage.queued, usage.images_today, usage.daily_images), (1, 1, 2, None));
    second.finish(true).await;
    first.finish(false).await;
    let usage = jobs.usage(&owner, None).await.unwrap();
    assert_eq!((usage.running, usage.queued, usage.images_today), (0, 0, 1));
    assert!(jobs.admit(&owner, 1, Usd::ZERO, details()).await.is_ok());
}

#[tokio::test]
async fn a_closed_line_admits_nothing_new_tells_waiting_jobs_and_lets_running_jobs_finish() {
    let (_folder, jobs) = line(JobLimits { per_user_queued: 2, ..limits(Some(10)) }).await;
    let owner = Owner::discord(5);
    let mut running = jobs.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    running.wait_turn(&no_progress).await.unwrap();
    let mut waiting = jobs.admit(&owner, 2, Usd::ZERO, details()).await.unwrap();
    let waiter = tokio::spawn(async move {
        let outcome = waiting.wait_turn(&no_progress).await;
        (waiting, outcome)
    });
    tokio::task::yield_now().await;
    jobs.close();
    let (waiting, outcome) = waiter.await.unwrap();
    let told = outcome.err().unwrap();
    assert!(matches!(told, Error::Busy(_)) && told.to_string().contains("nothing was charged"), "{told}");
    waiting.finish(true).await;
    let refused = jobs.admit(&Owner::discord(6), 1, Usd::ZERO, details()).await.err().unwrap();
    assert!(refused.to_string().contains("restarting"), "{refused}");
    let usage = jobs.usage(&owner, None).await.unwrap();
    assert_eq!((usage.running, usage.queued, usage.images_today), (1, 0, 1), "the waiting job's 2 images came back");
    running.finish(false).await;
}

#[tokio::test]
async fn the_daily_quota_is_charged_on_admission_and_refunds_give_it_back_once() {
    let (_folder, jobs) = line(JobLimits { per_user_queued: 5, ..limits(Some(4)) }).await;
    let owner = Owner::discord(2);
    let failed = jobs.admit(&owner, 3, Usd::ZERO, details()).await.unwrap();
    let refused = jobs.admit(&owner, 2, Usd::ZERO, details()).await.err().unwrap();
    assert!(refused.to_string().contains("you have 1 image left of today's 4"), "{refused}");
    let id = failed.id();
    failed.finish(true).await;
    // A second ending of the same job (a retry after a lost reply) gives nothing back again.
    let ledgers = &jobs.shared.ledgers;
    assert!(!ledgers.finish(&owner, id, Ending::Refunded).await.unwrap());
    assert_eq!(jobs.usage(&owner, None).await.unwrap().images_left(), Some(4));
    assert!(jobs.admit(&owner, 4, Usd::ZERO, details()).await.is_ok());
}

#[tokio::test]
async fn two_replicas_on_one_store_share_quotas_and_limits_and_never_both_squeeze_under_the_quota() {
    let (_folder, store) = folder_store().await;
    let limits = JobLimits { per_user_running: 50, per_user_queued: 50, ..limits(Some(10)) };
    let first = Jobs::new(limits, store.clone());
    let second = Jobs::new(limits, store.clone());
    let owner = Owner::discord(3);
    // Twenty admissions of one image at once, half on each replica, against a quota of ten.
    let mut attempts = Vec::new();
    for number in 0..20 {
        let jobs = if number % 2 == 0 { first.clone() } else { second.clone() };
        let owner = owner.clone();
        attempts.push(tokio::spawn(async move { jobs.admit(&owner, 1, Usd::ZERO, details()).await }));
    }
    let mut admitted = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(ticket) => admitted.push(ticket),
            Err(error) => {
                assert!(error.to_string().contains("left of today's 10"), "{error}");
                refused += 1;
            }
        }
    }
    assert_eq!((admitted.len(), refused), (10, 10));
    assert_eq!(first.usage(&owner, None).await.unwrap().images_today, 10);
    assert_eq!(second.usage(&owner, None).await.unwrap().queued, 10);
    for ticket in admitted {
        ticket.finish(false).await;
    }
    assert_eq!(second.usage(&owner, None).await.unwrap().queued, 0);
    let listed = store.list("jobs/", None, 100).await.unwrap();
    assert!(listed.is_empty(), "finished jobs leave no record behind: {listed:?}");
}

#[tokio::test]
async fn waiting_jobs_report_their_place_and_run_in_order() {
    let (_folder, jobs) = line(JobLimits { per_user_queued: 2, ..limits(None) }).await;
    let mut running = jobs.admit(&Owner::discord(1), 1, Usd::ZERO, details()).await.unwrap();
    running.wait_turn(&no_progress).await.unwrap();
    let second = jobs.admit(&Owner::discord(2), 1, Usd::ZERO, details()).await.unwrap();
    let third = jobs.admit(&Owner::discord(3), 1, Usd::ZERO, details()).await.unwrap();
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
    let (second_id, third_id) = (second.id(), third.id());
    let (second_task, mut second_heard) = waiter(second);
    assert_eq!(second_heard.recv().await, Some(Stage::Queued { position: 1, job: second_id }));
    let (third_task, mut third_heard) = waiter(third);
    assert_eq!(third_heard.recv().await, Some(Stage::Queued { position: 2, job: third_id }));
    running.finish(false).await;
    let second = second_task.await.unwrap();
    assert_eq!(third_heard.recv().await, Some(Stage::Queued { position: 1, job: third_id }));
    assert_eq!(jobs.usage(&Owner::discord(3), None).await.unwrap().queued, 1);
    second.finish(false).await;
    let third = third_task.await.unwrap();
    assert_eq!(jobs.usage(&Owner::discord(3), None).await.unwrap().running, 1);
    third.finish(false).await;
}

#[tokio::test]
async fn the_owner_cancels_a_waiting_job_here_or_on_another_replica_and_gets_the_images_back() {
    let (_folder, store) = folder_store().await;
    let limits = JobLimits { per_user_queued: 3, ..limits(Some(10)) };
    let here = Jobs::new(limits, store.clone());
    let elsewhere = Jobs::new(limits, store.clone());
    let owner = Owner::discord(7);
    let mut running = here.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    running.wait_turn(&no_progress).await.unwrap();

    // Cancelled where it waits: it leaves at once.
    let mut local = here.admit(&owner, 2, Usd::ZERO, details()).await.unwrap();
    let local_id = local.id();
    let local_wait = tokio::spawn(async move { (local.wait_turn(&no_progress).await, local) });
    assert_eq!(here.cancel(&Owner::discord(8), local_id).await.unwrap(), Cancelled::NotFound, "only the owner");
    assert_eq!(here.cancel(&owner, local_id).await.unwrap(), Cancelled::Now);
    let (outcome, local) = local_wait.await.unwrap();
    assert!(matches!(outcome, Err(Error::Cancelled(_))), "{outcome:?}");
    local.finish(true).await;

    // Cancelled from another replica: marked in the ledger, it leaves when its turn comes.
    let mut remote = here.admit(&owner, 3, Usd::ZERO, details()).await.unwrap();
    let remote_id = remote.id();
    assert_eq!(elsewhere.cancel(&owner, remote_id).await.unwrap(), Cancelled::BeforeItStarts);
    assert_eq!(elsewhere.cancel(&owner, running.id()).await.unwrap(), Cancelled::TooLate);
    running.finish(false).await;
    let outcome = remote.wait_turn(&no_progress).await;
    assert!(matches!(outcome, Err(Error::Cancelled(_))), "{outcome:?}");
    remote.finish(true).await;

    let usage = here.usage(&owner, None).await.unwrap();
    assert_eq!((usage.running, usage.queued, usage.images_today), (0, 0, 1), "only the finished job is charged");
}

#[tokio::test]
async fn a_job_dropped_before_the_model_ran_gives_its_images_back() {
    let (_folder, jobs) = line(limits(Some(5))).await;
    let owner = Owner::discord(9);
    let mut dropped = jobs.admit(&owner, 2, Usd::ZERO, details()).await.unwrap();
    dropped.wait_turn(&no_progress).await.unwrap();
    drop(dropped);
    let mut spent = jobs.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    spent.wait_turn(&no_progress).await.unwrap();
    spent.model_started();
    drop(spent);
    // The endings are written by tasks of their own; wait for them.
    for _ in 0..200 {
        let usage = jobs.usage(&owner, None).await.unwrap();
        if usage.running + usage.queued == 0 {
            assert_eq!(usage.images_today, 1, "the job that reached the model stays charged");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dropped jobs never left the ledger");
}

struct CountingAnswerer {
    answered: Mutex<Vec<JobRecord>>,
    calls: AtomicUsize,
}

#[async_trait]
impl JobAnswerer for CountingAnswerer {
    async fn answer_interrupted(&self, job: &JobRecord) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.answered).push(job.clone());
        Ok(())
    }
}

#[tokio::test]
async fn jobs_of_a_stopped_replica_are_answered_and_refunded_once_by_the_others() {
    let (_folder, store) = folder_store().await;
    let limits = JobLimits { per_user_queued: 3, ..limits(Some(10)) };
    let stopped = Jobs::new(limits, store.clone());
    let owner = Owner::discord(11);
    let route = ReplyRoute { front_end: "discord".into(), route: serde_json::json!({ "channel": "42" }) };
    let mut interrupted =
        stopped.admit(&owner, 2, Usd::ZERO, details().answered_at(Some(route.clone()))).await.unwrap();
    interrupted.wait_turn(&no_progress).await.unwrap();
    interrupted.model_started();
    let waiting = stopped.admit(&owner, 1, Usd::ZERO, details().answered_at(Some(route))).await.unwrap();
    // The process dies: its tickets vanish without ending (forget skips their drop), and it
    // wrote a last heartbeat marking itself stopped.
    std::mem::forget(interrupted);
    std::mem::forget(waiting);
    stopped.stop_keeper().await;

    let answerer = Arc::new(CountingAnswerer { answered: Mutex::default(), calls: AtomicUsize::new(0) });
    let first = Jobs::new(limits, store.clone());
    let second = Jobs::new(limits, store.clone());
    first.register_answerer("discord", answerer.clone());
    second.register_answerer("discord", answerer.clone());
    let silence = Duration::from_secs(60);
    let (a, b) = tokio::join!(first.recover_orphans(silence), second.recover_orphans(silence));
    assert_eq!(a.unwrap() + b.unwrap(), 2, "each job taken over once");
    assert_eq!(answerer.calls.load(Ordering::SeqCst), 2);
    let answered = lock(&answerer.answered).clone();
    assert!(answered.iter().all(|job| job.owner == owner && job.details.fields.is_some()));
    let usage = first.usage(&owner, None).await.unwrap();
    assert_eq!((usage.running, usage.queued, usage.images_today), (0, 0, 0), "both refunded");
    assert!(store.list("jobs/", None, 10).await.unwrap().is_empty());
    assert_eq!(first.recover_orphans(silence).await.unwrap(), 0, "nothing is answered twice");
}

#[tokio::test]
async fn a_live_replica_keeps_its_jobs_and_a_silent_one_loses_them() {
    let (_folder, store) = folder_store().await;
    let alive = Jobs::new(limits(None), store.clone());
    alive.start_keeper(Duration::from_secs(3600));
    let owner = Owner::discord(12);
    let ticket = alive.admit(&owner, 1, Usd::ZERO, details()).await.unwrap();
    let other = Jobs::new(limits(None), store.clone());
    // The keeper's first heartbeat is written as it starts.
    for _ in 0..200 {
        if !store.list("replicas/", None, 10).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(other.recover_orphans(Duration::from_secs(60)).await.unwrap(), 0, "a live replica's job is left");
    assert_eq!(other.recover_orphans(Duration::ZERO).await.unwrap(), 1, "a silent replica's job is taken over");
    // The replica that lost it finds the job gone when its turn comes, and does not run it.
    let mut ticket = ticket;
    let outcome = ticket.wait_turn(&no_progress).await;
    assert!(matches!(outcome, Err(Error::Cancelled(_))), "{outcome:?}");
}
