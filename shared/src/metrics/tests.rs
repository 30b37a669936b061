use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::folder::FolderStore;

/// The line of `text` for `series` (a name with its labels), with its value.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.split(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn every_metric_is_rendered_in_our_terms_with_bounded_labels() {
    let metrics = Metrics::new();
    metrics.job_finished("core", JobOutcome::Delivered);
    metrics.job_finished("core", JobOutcome::Delivered);
    metrics.job_finished("titan", JobOutcome::RefusedBusy);
    metrics.jobs_waiting(3);
    metrics.jobs_running(2);
    metrics.model_call("core", "invoke_model", Duration::from_millis(1_500), CallOutcome::Answered);
    metrics.model_call("core", "invoke_model", Duration::from_millis(300), CallOutcome::Busy);
    metrics.store_error("put");
    metrics.spool_depth(4, 2_048);
    metrics.discord_rate_limit_wait(
        "http://127.0.0.1:9/api/v10/webhooks/123456789/aW50ZXJhY3Rpb246MTIzNDU2Nzg5OnNlY3JldHRva2VuLXNlY3JldA/messages/@original?wait=true",
        Duration::from_millis(500),
    );
    let text = metrics.render();

    assert_eq!(
        value_of(&text, r#"atelier_jobs_finished_total{model="core",outcome="delivered"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(value_of(&text, r#"atelier_jobs_finished_total{model="titan",outcome="refused_busy"}"#), Some(1.0));
    assert_eq!(value_of(&text, "atelier_jobs_waiting"), Some(3.0));
    assert_eq!(value_of(&text, "atelier_jobs_running"), Some(2.0));
    let answered = r#"{model="core",operation="invoke_model",outcome="answered"}"#;
    assert_eq!(value_of(&text, &format!("atelier_model_call_duration_seconds_count{answered}")), Some(1.0));
    assert_eq!(value_of(&text, &format!("atelier_model_call_duration_seconds_sum{answered}")), Some(1.5));
    let busy = r#"atelier_model_call_duration_seconds_count{model="core",operation="invoke_model",outcome="busy"}"#;
    assert_eq!(value_of(&text, busy), Some(1.0));
    assert_eq!(value_of(&text, r#"atelier_store_errors_total{operation="put"}"#), Some(1.0));
    assert_eq!(value_of(&text, "atelier_spool_images"), Some(4.0));
    assert_eq!(value_of(&text, "atelier_spool_bytes"), Some(2_048.0));
    let route =
        r#"atelier_discord_rate_limit_wait_seconds_count{route="/api/v10/webhooks/:id/:token/messages/@original"}"#;
    assert_eq!(value_of(&text, route), Some(1.0), "{text}");
    assert!(!text.contains("secrettoken"), "a token reached a label: {text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn each_core_counts_only_its_own_work() {
    let first = Metrics::new();
    let second = Metrics::new();
    first.job_finished("core", JobOutcome::Failed);
    first.clone().job_finished("core", JobOutcome::Failed);
    let series = r#"atelier_jobs_finished_total{model="core",outcome="failed"}"#;
    assert_eq!(value_of(&first.render(), series), Some(2.0));
    assert_eq!(value_of(&second.render(), series), None);
}

#[test]
fn outcomes_follow_the_core_errors() {
    let blocked: Result<(), Error> = Err(Error::Blocked(crate::error::Refused::by_model_filter("no")));
    let busy: Result<(), Error> = Err(Error::Busy("later".into()));
    let broken: Result<(), Error> = Err(Error::operator("the store", "down"));
    assert_eq!(JobOutcome::of(&Ok::<(), Error>(())), JobOutcome::Delivered);
    assert_eq!(JobOutcome::of(&blocked), JobOutcome::Blocked);
    assert_eq!(JobOutcome::of(&busy), JobOutcome::Busy);
    assert_eq!(JobOutcome::of(&broken), JobOutcome::Failed);
    assert_eq!(CallOutcome::of(&Ok::<(), Error>(())), CallOutcome::Answered);
    assert_eq!(CallOutcome::of(&blocked), CallOutcome::Blocked);
    assert_eq!(CallOutcome::of(&busy), CallOutcome::Busy);
    assert_eq!(CallOutcome::of(&broken), CallOutcome::Failed);
}

#[test]
fn routes_lose_their_ids_and_tokens() {
    assert_eq!(route_template("/api/v10/channels/1234/messages"), "/api/v10/channels/:id/messages");
    assert_eq!(
        route_template(
            "https://discord.com/api/v10/interactions/99/a-very-long-interaction-token-of-many-characters/callback"
        ),
        "/api/v10/interactions/:id/:token/callback"
    );
    assert_eq!(route_template("/users/@me/channels?x=1"), "/users/@me/channels");
}

#[tokio::test]
async fn the_measured_store_counts_only_failures_of_the_store() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let inner = Arc::new(FolderStore::open(folder.path()).await.expect("a folder store"));
    let metrics = Metrics::new();
    let store = MeasuredStore::new(inner, metrics.clone());
    let key = ObjectKey::new("a/b.json").expect("a key");
    // A missing object and an object already there are answers, not failures of the store.
    assert!(store.get(&key).await.is_err());
    store.put(&key, Bytes::from_static(b"{}"), "application/json", PutMode::CreateOnly).await.expect("a first write");
    assert!(store.put(&key, Bytes::from_static(b"{}"), "application/json", PutMode::CreateOnly).await.is_err());
    assert!(!metrics.render().contains("atelier_store_errors_total{"), "{}", metrics.render());
    // A store that cannot be reached: every failed call is counted under its operation.
    let unreachable = MeasuredStore::new(Arc::new(Unreachable), metrics.clone());
    assert!(unreachable.put(&key, Bytes::new(), "application/json", PutMode::Overwrite).await.is_err());
    assert!(unreachable.put(&key, Bytes::new(), "application/json", PutMode::Overwrite).await.is_err());
    assert!(unreachable.list("a/", None, 10).await.is_err());
    let text = metrics.render();
    assert_eq!(value_of(&text, r#"atelier_store_errors_total{operation="put"}"#), Some(2.0), "{text}");
    assert_eq!(value_of(&text, r#"atelier_store_errors_total{operation="list"}"#), Some(1.0), "{text}");
}

/// A store that is never there.
struct Unreachable;

impl Unreachable {
    fn error() -> StoreError {
        StoreError::Unavailable { location: "nowhere".into(), detail: "connection refused".into() }
    }
}

#[async_trait]
impl ObjectStore for Unreachable {
    fn location(&self) -> String {
        "nowhere".into()
    }
    async fn put(&self, _: &ObjectKey, _: Bytes, _: &str, _: PutMode) -> Result<(), StoreError> {
        Err(Self::error())
    }
    async fn get(&self, _: &ObjectKey) -> Result<Bytes, StoreError> {
        Err(Self::error())
    }
    async fn get_versioned(&self, _: &ObjectKey) -> Result<(Bytes, Version), StoreError> {
        Err(Self::error())
    }
    async fn replace(&self, _: &ObjectKey, _: Bytes, _: &str, _: &Version) -> Result<(), StoreError> {
        Err(Self::error())
    }
    async fn list(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<ObjectKey>, StoreError> {
        Err(Self::error())
    }
    async fn delete(&self, _: &ObjectKey) -> Result<(), StoreError> {
        Err(Self::error())
    }
    async fn check(&self) -> Result<(), StoreError> {
        Err(Self::error())
    }
}
