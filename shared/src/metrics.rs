//! Prometheus metrics in Atelier's own terms: jobs by outcome and model, the job line's
//! depth, model latency, store errors, the spool's depth and Discord's rate-limit waits.
//!
//! [`Metrics`] owns its registry (there is no process-wide one), so every core built in a
//! process (the tests start several) counts only its own work. It is cheap to clone: every
//! clone records into the same registry. [`Metrics::render`] gives the OpenMetrics text that
//! a scrape of `/metrics` answers with; serving it is the front ends' business, not ours.
//!
//! Label values are bounded on purpose: models come from the configured catalog, operations
//! and outcomes are fixed words, and routes have their ids and tokens taken out, so a label
//! never carries a prompt, a person or a secret.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::chat::{ChatMessage, ChatMode, ChatModel, ChatStream, ChatTurn};
use crate::checker::{Critique, PromptCritic};
use crate::error::{Error, Result};
use crate::images::CheckedImage;
use crate::request::Prompt;
use crate::safety::{SafetyCheck, Verdict};
use crate::store::spool::Spool;
use crate::store::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// The content type of [`Metrics::render`]'s text, for the `/metrics` response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How an image job ended, as counted in `atelier_jobs_finished_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// The images were made and handed over (kept in the store or the spool).
    Delivered,
    /// The safety gate or the model's own filter refused the prompt.
    Blocked,
    /// The request was wrong in a way only the model could tell (or its source was gone).
    Invalid,
    /// The model or a service was too busy or too slow, after the job was admitted.
    Busy,
    /// The job line did not admit the job: the person's limits, the quota, or a stopping process.
    RefusedBusy,
    /// Its owner cancelled it, or the process stopped before it ran.
    Cancelled,
    /// Something the operator must fix (the store, model access, a bug).
    Failed,
}

impl JobOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Blocked => "blocked",
            Self::Invalid => "invalid",
            Self::Busy => "busy",
            Self::RefusedBusy => "refused_busy",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// The outcome of a job that failed with `error` after it was admitted. A refusal by the
    /// job line itself ([`Self::RefusedBusy`]) and cancellation are the caller's to say.
    pub fn from_error(error: &Error) -> Self {
        match error {
            Error::Blocked(_) => Self::Blocked,
            Error::Invalid(_) | Error::NotFound(_) | Error::Forbidden(_) | Error::Conflict(_) => Self::Invalid,
            Error::Busy(_) => Self::Busy,
            Error::Cancelled(_) => Self::Cancelled,
            Error::Operator { .. } => Self::Failed,
        }
    }

    /// The outcome of a finished job's result.
    pub fn of<T>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => Self::Delivered,
            Err(error) => Self::from_error(error),
        }
    }
}

/// How one call to a model ended, as labelled on `atelier_model_call_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The model answered.
    Answered,
    /// A content filter refused the request.
    Blocked,
    /// The model refused the request as invalid.
    Invalid,
    /// Throttled, timed out, or a fault on the service's side (after the SDK's retries).
    Busy,
    /// Anything the operator must fix (access, a missing model, an unexpected answer).
    Failed,
}

impl CallOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Blocked => "blocked",
            Self::Invalid => "invalid",
            Self::Busy => "busy",
            Self::Failed => "failed",
        }
    }

    /// The outcome of a call's result.
    pub fn of<T>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => Self::Answered,
            Err(Error::Blocked(_)) => Self::Blocked,
            Err(Error::Invalid(_) | Error::NotFound(_) | Error::Forbidden(_) | Error::Conflict(_)) => Self::Invalid,
            Err(Error::Busy(_) | Error::Cancelled(_)) => Self::Busy,
            Err(Error::Operator { .. }) => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabels {
    model: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelCallLabels {
    model: String,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SpendLabels {
    model: String,
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Model calls take from a fraction of a second (a classifier) to minutes (a large image).
fn model_call_histogram() -> Histogram {
    Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 240.0])
}

/// Discord asks for waits from milliseconds to, rarely, a minute.
fn rate_limit_wait_histogram() -> Histogram {
    Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0])
}

struct Instruments {
    registry: Registry,
    jobs_finished: Family<JobLabels, Counter>,
    jobs_waiting: Gauge,
    jobs_running: Gauge,
    model_calls: Family<ModelCallLabels, Histogram, fn() -> Histogram>,
    store_errors: Family<StoreLabels, Counter>,
    spent: Family<SpendLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    spool_images: Gauge,
    spool_bytes: Gauge,
    rate_limit_waits: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// The spool whose depth is read at each scrape, once start-up has one.
    watched_spool: Mutex<Option<Spool>>,
    /// The job line whose depth is read at each scrape.
    watched_jobs: Mutex<Option<crate::jobs::Jobs>>,
}

/// Atelier's metrics and the registry they are rendered from. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    instruments: Arc<Instruments>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atelier");
        let jobs_finished = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs_finished",
            "Image jobs finished, by model and outcome (delivered, blocked, invalid, busy, refused_busy, cancelled, failed)",
            jobs_finished.clone(),
        );
        let jobs_waiting = Gauge::default();
        registry.register("jobs_waiting", "Image jobs waiting in line for their turn", jobs_waiting.clone());
        let jobs_running = Gauge::default();
        registry.register("jobs_running", "Image jobs running now", jobs_running.clone());
        let model_calls =
            Family::<ModelCallLabels, Histogram, fn() -> Histogram>::new_with_constructor(model_call_histogram);
        registry.register_with_unit(
            "model_call_duration",
            "How long each call to a model took, retries included, by model, operation and outcome",
            Unit::Seconds,
            model_calls.clone(),
        );
        let store_errors = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_errors",
            "Calls to the object store that failed because the store could not be used, by operation",
            store_errors.clone(),
        );
        let spent = Family::<SpendLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "estimated_spend_usd",
            "Estimated cost of model calls in US dollars from the price table, by model and operation (images, chat, critique, describe, appeal)",
            spent.clone(),
        );
        let spool_images = Gauge::default();
        registry.register("spool_images", "Images waiting in the local spool for the store", spool_images.clone());
        let spool_bytes = Gauge::default();
        registry.register_with_unit(
            "spool",
            "Bytes waiting in the local spool for the store",
            Unit::Bytes,
            spool_bytes.clone(),
        );
        let rate_limit_waits =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(rate_limit_wait_histogram);
        registry.register_with_unit(
            "discord_rate_limit_wait",
            "Waits Discord asked for (rate limits), by route with ids and tokens taken out",
            Unit::Seconds,
            rate_limit_waits.clone(),
        );
        Self {
            instruments: Arc::new(Instruments {
                registry,
                jobs_finished,
                jobs_waiting,
                jobs_running,
                model_calls,
                store_errors,
                spent,
                spool_images,
                spool_bytes,
                rate_limit_waits,
                watched_spool: Mutex::new(None),
                watched_jobs: Mutex::new(None),
            }),
        }
    }

    /// Counts one image job that ended, under the model it asked for (its alias).
    pub fn job_finished(&self, model: &str, outcome: JobOutcome) {
        let labels = JobLabels { model: model.to_string(), outcome: outcome.as_str() };
        self.instruments.jobs_finished.get_or_create(&labels).inc();
    }

    /// Adds a call's estimated price to `atelier_estimated_spend_usd_total{model, operation}`.
    /// `model` is a configured model id (bounded like every other label).
    pub fn spent(&self, model: &str, operation: &'static str, cost: crate::pricing::Usd) {
        let labels = SpendLabels { model: model.to_string(), operation };
        self.instruments.spent.get_or_create(&labels).inc_by(cost.as_dollars());
    }

    /// How many image jobs wait in line now.
    pub fn jobs_waiting(&self, jobs: usize) {
        self.instruments.jobs_waiting.set(saturating_i64(jobs as u64));
    }

    /// How many image jobs run now.
    pub fn jobs_running(&self, jobs: usize) {
        self.instruments.jobs_running.set(saturating_i64(jobs as u64));
    }

    /// Records one call to a model, retries included: `model` is the alias or id people
    /// configure, `operation` what it was asked (`invoke_model` for each image call, `classify`,
    /// `appeal`, `guardrail`, `critique`, `describe`, or `chat` until the reply starts).
    pub fn model_call(&self, model: &str, operation: &'static str, duration: Duration, outcome: CallOutcome) {
        let labels = ModelCallLabels { model: model.to_string(), operation, outcome: outcome.as_str() };
        self.instruments.model_calls.get_or_create(&labels).observe(duration.as_secs_f64());
    }

    /// Counts one store call that failed because the store could not be used.
    pub fn store_error(&self, operation: &'static str) {
        self.instruments.store_errors.get_or_create(&StoreLabels { operation }).inc();
    }

    /// Sets the spool's depth; a watched spool (see [`Self::watch_spool`]) overrides it at each scrape.
    pub fn spool_depth(&self, images: usize, bytes: u64) {
        self.instruments.spool_images.set(saturating_i64(images as u64));
        self.instruments.spool_bytes.set(saturating_i64(bytes));
    }

    /// Reads `spool`'s depth at every [`Self::render`], so the gauge is never stale.
    pub fn watch_spool(&self, spool: Spool) {
        match self.instruments.watched_spool.lock() {
            Ok(mut watched) => *watched = Some(spool),
            Err(poisoned) => *poisoned.into_inner() = Some(spool),
        }
    }

    /// Reads the job line's depth (waiting, running) at every [`Self::render`].
    pub fn watch_jobs(&self, jobs: crate::jobs::Jobs) {
        match self.instruments.watched_jobs.lock() {
            Ok(mut watched) => *watched = Some(jobs),
            Err(poisoned) => *poisoned.into_inner() = Some(jobs),
        }
    }

    /// Records one wait Discord asked for on `route` (a URL or its path; ids and tokens are
    /// taken out, so the label stays bounded and never holds an interaction token).
    pub fn discord_rate_limit_wait(&self, route: &str, duration: Duration) {
        let labels = RouteLabels { route: route_template(route) };
        self.instruments.rate_limit_waits.get_or_create(&labels).observe(duration.as_secs_f64());
    }

    /// The metrics as OpenMetrics text, ending in `# EOF`, for a scrape.
    pub fn render(&self) -> String {
        let watched = match self.instruments.watched_spool.lock() {
            Ok(watched) => watched.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(spool) = watched {
            let depth = spool.depth();
            self.spool_depth(depth.entries, depth.bytes);
        }
        let jobs = match self.instruments.watched_jobs.lock() {
            Ok(watched) => watched.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(jobs) = jobs {
            let (waiting, running) = jobs.depth();
            self.jobs_waiting(waiting);
            self.jobs_running(running);
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.instruments.registry) {
            // Writing to a String cannot fail; if the encoder ever does, say so in the scrape.
            text.clear();
            let _ = writeln!(text, "# the metrics could not be encoded: {error}\n# EOF");
        }
        text
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A URL's path with numeric ids as `:id` and token-like segments as `:token`: one label per
/// kind of request, however many channels, messages and interactions there are.
pub fn route_template(route: &str) -> String {
    let path = route.split(['?', '#']).next().unwrap_or("");
    let path = match path.find("://") {
        Some(scheme_end) => {
            let after_scheme = &path[scheme_end + 3..];
            after_scheme.find('/').map(|slash| &after_scheme[slash..]).unwrap_or("/")
        }
        None => path,
    };
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            if segment.chars().all(|c| c.is_ascii_digit()) {
                ":id"
            } else if segment.len() > 32 || segment.chars().any(|c| !(c.is_ascii_alphanumeric() || "@_-.".contains(c)))
            {
                ":token"
            } else {
                segment
            }
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// An [`ObjectStore`] that counts the calls failing because the store cannot be used (not
/// the expected answers: a missing object, one already there, a version that changed).
/// Wrapped around the real store once at start, so every backend is counted the same way.
pub struct MeasuredStore {
    inner: Arc<dyn ObjectStore>,
    metrics: Metrics,
}

impl MeasuredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn counted<T>(&self, operation: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable { .. }) = &result {
            self.metrics.store_error(operation);
        }
        result
    }
}

#[async_trait]
impl ObjectStore for MeasuredStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str, mode: PutMode) -> Result<(), StoreError> {
        self.counted("put", self.inner.put(key, body, content_type, mode).await)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        self.counted("get", self.inner.get(key).await)
    }

    async fn get_versioned(&self, key: &ObjectKey) -> Result<(Bytes, Version), StoreError> {
        self.counted("get", self.inner.get_versioned(key).await)
    }

    async fn get_many(&self, keys: &[ObjectKey]) -> Vec<Result<Bytes, StoreError>> {
        // Forwarded, so the store's own way of reading many (one blocking task) is kept.
        self.inner.get_many(keys).await.into_iter().map(|result| self.counted("get", result)).collect()
    }

    async fn replace(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<(), StoreError> {
        self.counted("replace", self.inner.replace(key, body, content_type, expected).await)
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectKey>, StoreError> {
        self.counted("list", self.inner.list(prefix, start_after, limit).await)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.counted("delete", self.inner.delete(key).await)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.counted("check", self.inner.check().await)
    }

    async fn download_url(&self, key: &ObjectKey, expires_in: Duration) -> Result<Option<String>, StoreError> {
        self.counted("download_url", self.inner.download_url(key, expires_in).await)
    }
}

/// A [`ChatModel`] whose calls are measured: `chat` until the reply starts streaming (its
/// pieces then arrive as the person reads), `describe` until the prompts are back.
pub struct MeasuredChat {
    inner: Arc<dyn ChatModel>,
    metrics: Metrics,
}

impl MeasuredChat {
    pub fn new(inner: Arc<dyn ChatModel>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl ChatModel for MeasuredChat {
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn reply(&self, mode: ChatMode, history: &[ChatTurn], message: &ChatMessage) -> Result<ChatStream> {
        let started = Instant::now();
        let reply = self.inner.reply(mode, history, message).await;
        self.metrics.model_call(&self.inner.name(), "chat", started.elapsed(), CallOutcome::of(&reply));
        reply
    }

    async fn describe(&self, image: &CheckedImage) -> Result<Vec<String>> {
        let started = Instant::now();
        let prompts = self.inner.describe(image).await;
        self.metrics.model_call(&self.inner.name(), "describe", started.elapsed(), CallOutcome::of(&prompts));
        prompts
    }
}

/// A [`PromptCritic`] whose critiques are measured under the model that writes them.
pub struct MeasuredCritic {
    inner: Arc<dyn PromptCritic>,
    model: String,
    metrics: Metrics,
}

impl MeasuredCritic {
    pub fn new(inner: Arc<dyn PromptCritic>, model: impl Into<String>, metrics: Metrics) -> Self {
        Self { inner, model: model.into(), metrics }
    }
}

#[async_trait]
impl PromptCritic for MeasuredCritic {
    async fn critique(&self, prompt: &Prompt) -> Result<Critique> {
        let started = Instant::now();
        let critique = self.inner.critique(prompt).await;
        self.metrics.model_call(&self.model, "critique", started.elapsed(), CallOutcome::of(&critique));
        critique
    }
}

/// A model-backed [`SafetyCheck`] whose checks are measured under its model (or guardrail)
/// and `operation` (`classify`, `appeal`, `guardrail`). A refusal is an answer, not a failure.
pub struct MeasuredSafetyCheck {
    inner: Arc<dyn SafetyCheck>,
    model: String,
    operation: &'static str,
    metrics: Metrics,
}

impl MeasuredSafetyCheck {
    pub fn new(
        inner: Arc<dyn SafetyCheck>,
        model: impl Into<String>,
        operation: &'static str,
        metrics: Metrics,
    ) -> Self {
        Self { inner, model: model.into(), operation, metrics }
    }
}

#[async_trait]
impl SafetyCheck for MeasuredSafetyCheck {
    async fn check(&self, text: &str, audience: crate::safety::Audience) -> Result<Verdict> {
        let started = Instant::now();
        let verdict = self.inner.check(text, audience).await;
        self.metrics.model_call(&self.model, self.operation, started.elapsed(), CallOutcome::of(&verdict));
        verdict
    }

    fn remembered(&self) -> bool {
        self.inner.remembered()
    }
}

#[cfg(test)]
mod tests;
