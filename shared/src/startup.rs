//! Building the core from the configuration, with every failure worded for the operator.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::Atelier;
use crate::accounts::Accounts;
use crate::accounts::directory::{AccountDirectory, CognitoDirectory, NoDirectory};
use crate::bedrock::chat::BedrockChat;
use crate::bedrock::client::Bedrock;
use crate::bedrock::critic::BedrockCritic;
use crate::bedrock::engine::BedrockImageEngine;
use crate::bedrock::safety::{BedrockClassifier, BedrockGuardrail};
use crate::chat::DemoChat;
use crate::checker::LocalCritic;
use crate::config::{AwsEnvironment, Config, ConfigError, EngineChoice, StoreLocation, resolve_engine};
use crate::engine::EngineKind;
use crate::engine::demo::DemoEngine;
use crate::gallery::Gallery;
use crate::jobs::Jobs;
use crate::metrics::{MeasuredChat, MeasuredCritic, MeasuredSafetyCheck, MeasuredStore, Metrics};
use crate::public_cache::{CloudFrontPublicCache, PublicCache};
use crate::safety::{Checker, SafetyCheck, SafetyGate};
use crate::service::Parts;
use crate::store::ObjectStore;
use crate::store::folder::FolderStore;
use crate::store::s3::S3Store;
use crate::store::spool::{Backoff, Spool};

/// What start-up knows about AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSetup {
    /// What the environment says about a region and credentials.
    pub environment: AwsEnvironment,
    /// An SDK configuration to use instead of loading one from the environment: the tests
    /// point it at the stand-ins.
    pub sdk_config: Option<SdkConfig>,
}

impl AwsSetup {
    /// Reads the environment; the SDK configuration is loaded later, only if Bedrock or S3 is used.
    pub fn detect() -> Self {
        Self { environment: AwsEnvironment::detect(), sdk_config: None }
    }
}

/// What start-up decided, for the log and the pages.
#[derive(Debug, Clone)]
pub struct Started {
    pub engine: EngineKind,
    /// Why this engine: said loudly when the demo engine runs.
    pub engine_reason: String,
    pub store: String,
}

/// Builds the core: opens the store (proving it writable) and picks the engine.
pub async fn build(config: &Config, aws: &AwsSetup) -> Result<(Atelier, Started), ConfigError> {
    // Loaded from the environment at most once, and only if S3 or Bedrock needs it.
    let mut sdk_config = aws.sdk_config.clone();
    let metrics = Metrics::new();
    let store = open_store(config, &mut sdk_config).await?;
    // Every store call goes through one place that counts the store's failures.
    let store: Arc<dyn ObjectStore> = Arc::new(MeasuredStore::new(store, metrics.clone()));
    // Images that cannot be stored wait here; what a previous process left is written first.
    let spool = open_spool(config, store.as_ref())?;
    metrics.watch_spool(spool.clone());
    let spool_flusher = Some(Arc::new(spool.start_flusher(store.clone(), Backoff::default())));
    let gallery = Gallery::new(store.clone()).with_spool(spool);
    // Links live in the gallery's store; recording them on the Cognito user as well needs the pool id.
    let directory = account_directory(config, &mut sdk_config).await;
    let accounts = Some(Arc::new(Accounts::new(store.clone(), directory, &config.public_url)));
    let public_cache = public_cache(config, &mut sdk_config).await;
    let jobs = Jobs::new(config.limits, store.clone());
    metrics.watch_jobs(jobs.clone());
    // An explicit SDK configuration means the caller has set AWS up already.
    let choice = match (&aws.sdk_config, config.engine) {
        (Some(_), EngineChoice::Auto) => EngineChoice::Bedrock,
        (_, choice) => choice,
    };
    let engine = resolve_engine(choice, &aws.environment);
    let (parts, engine_reason) = match engine {
        EngineKind::Demo => {
            let reason = demo_engine_reason(config, aws);
            let parts = Parts {
                engine: Arc::new(DemoEngine),
                safety: Arc::new(SafetyGate::new(config.bedrock.blocked_terms.clone(), Vec::new(), None)),
                chat: Arc::new(DemoChat),
                critic: Arc::new(LocalCritic),
                gallery,
                jobs,
                accounts,
                spool_flusher,
                metrics,
                prices: config.prices.clone(),
                text_model: config.bedrock.chat_model.clone(),
                public_cache,
            };
            (parts, reason)
        }
        EngineKind::Bedrock => {
            let sdk_config = load_sdk_config(&mut sdk_config).await;
            let bedrock = Bedrock::new(&sdk_config, config.bedrock.timeouts);
            let settings = &config.bedrock;
            let parts = Parts {
                engine: Arc::new(BedrockImageEngine::new(bedrock.clone(), config.models.clone(), metrics.clone())),
                safety: Arc::new(bedrock_safety_gate(&bedrock, config, &metrics)),
                chat: Arc::new(MeasuredChat::new(
                    Arc::new(BedrockChat::new(
                        bedrock.clone(),
                        settings.chat_model.clone(),
                        settings.chat_history_tokens,
                    )),
                    metrics.clone(),
                )),
                critic: Arc::new(MeasuredCritic::new(
                    Arc::new(BedrockCritic::new(bedrock.clone(), settings.chat_model.clone())),
                    &settings.chat_model,
                    metrics.clone(),
                )),
                gallery,
                jobs,
                accounts,
                spool_flusher,
                metrics,
                prices: config.prices.clone(),
                text_model: settings.chat_model.clone(),
                public_cache,
            };
            (parts, format!("Bedrock in {}", bedrock.region))
        }
    };
    let started = Started { engine, engine_reason, store: store.location() };
    Ok((Atelier::new(parts), started))
}

/// A core on the demo engine keeping its store and spool in `folder`, with no settings file and
/// `settings` (as `ATELIER_*` variables) added: what the core's and the bot's own tests run on.
#[doc(hidden)]
pub async fn demo_core_in(folder: &std::path::Path, settings: &[(&str, &str)]) -> Result<Atelier, ConfigError> {
    let variables = [
        ("ATELIER_STORE", format!("file://{}", folder.join("store").display())),
        ("ATELIER_ENGINE", "demo".to_string()),
        ("ATELIER_SPOOL_DIR", folder.join("spool").display().to_string()),
        // An empty settings file, whatever the working folder holds.
        ("ATELIER_CONFIG", "/dev/null".to_string()),
    ];
    let settings = settings.iter().map(|(name, value)| (*name, value.to_string()));
    let variables = variables.into_iter().chain(settings).map(|(name, value)| (name.to_string(), value));
    let config = Config::from_raw(&crate::config::RawSettings::from_variables(variables)?)?;
    Ok(build(&config, &AwsSetup::default()).await?.0)
}

/// Opens the configured store and proves it usable: a folder this user can write, or a
/// bucket that answers.
async fn open_store(config: &Config, sdk_config: &mut Option<SdkConfig>) -> Result<Arc<dyn ObjectStore>, ConfigError> {
    let store: Arc<dyn ObjectStore> = match &config.store {
        StoreLocation::Folder(path) => Arc::new(FolderStore::open(path).await.map_err(|error| ConfigError {
            variable: "ATELIER_STORE",
            value: Some(config.store.to_string()),
            problem: match error {
                crate::store::StoreError::Unavailable { detail, .. } => format!("the folder cannot be used ({detail})"),
                other => other.to_string(),
            },
            fix: "choose a folder this user can write, or fix its permissions".into(),
        })?),
        StoreLocation::S3 { bucket, prefix } => {
            let sdk_config = load_sdk_config(sdk_config).await;
            let store = S3Store::new(&sdk_config, bucket.clone(), prefix.clone(), config.s3_force_path_style);
            match store.diagnose().await {
                Ok(()) => {}
                // S3 not answering is an outage, not a setting to fix: Atelier starts and
                // works without it as far as it can (images wait in the spool, who people
                // are and their quotas are counted here) until it answers again. A process
                // that refused to start would be replaced, again and again, for as long as
                // S3 is away, and the bot would be silent meanwhile.
                Err(found) if found.unreachable => {
                    tracing::warn!(
                        store = %config.store,
                        problem = %found.problem,
                        "the bucket cannot be reached at start; starting without it: images wait in the spool \
                         until it answers"
                    );
                }
                Err(found) => {
                    return Err(ConfigError {
                        variable: "ATELIER_STORE",
                        value: Some(config.store.to_string()),
                        problem: format!("the bucket cannot be used: {}", found.problem),
                        fix: found.fix,
                    });
                }
            }
            Arc::new(store)
        }
    };
    Ok(store)
}

/// Opens the spool images wait in while the store is down.
fn open_spool(config: &Config, store: &dyn ObjectStore) -> Result<Spool, ConfigError> {
    Spool::open(&config.spool_dir, config.spool_max_bytes, store.location()).map_err(|error| ConfigError {
        variable: "ATELIER_SPOOL_DIR",
        value: Some(config.spool_dir.display().to_string()),
        problem: format!("the spool cannot be used ({error})"),
        fix: "choose a folder on local disk this user can write, or fix its permissions".into(),
    })
}

/// Where account links are recorded besides the gallery's store: on the Cognito user, when
/// the user pool is known.
async fn account_directory(config: &Config, sdk_config: &mut Option<SdkConfig>) -> Arc<dyn AccountDirectory> {
    match config.oidc.as_ref().and_then(|oidc| oidc.cognito_user_pool_id.as_ref()) {
        Some(pool) => {
            Arc::new(CognitoDirectory::new(&with_directory_timeouts(&load_sdk_config(sdk_config).await), pool.clone()))
        }
        None => Arc::new(NoDirectory),
    }
}

/// The CDN told when a published image stops being public: the CloudFront distribution, when
/// one is named. Its client is reached like every other AWS client here (the given SDK
/// configuration, or the environment's, with `AWS_ENDPOINT_URL_CLOUDFRONT`).
async fn public_cache(config: &Config, sdk_config: &mut Option<SdkConfig>) -> Option<Arc<dyn PublicCache>> {
    let distribution_id = config.cloudfront_distribution_id.as_ref()?;
    tracing::info!(distribution = %distribution_id, "unpublished pages are dropped from CloudFront at once");
    Some(Arc::new(CloudFrontPublicCache::new(&load_sdk_config(sdk_config).await, distribution_id.clone())))
}

/// Why the demo engine runs, said loudly at start-up.
fn demo_engine_reason(config: &Config, aws: &AwsSetup) -> String {
    match (config.engine, &aws.environment.region, aws.environment.credentials_source) {
        (EngineChoice::Demo, _, _) => "ATELIER_ENGINE=demo".to_string(),
        (_, None, _) => "no AWS region is configured; set AWS_REGION".to_string(),
        (_, Some(_), _) => "no AWS credentials are configured".to_string(),
    }
}

/// The safety gate of the Bedrock engine: the blocked terms, the guardrail when one is
/// configured, the classifier, and the appeal reviewer.
fn bedrock_safety_gate(bedrock: &Bedrock, config: &Config, metrics: &Metrics) -> SafetyGate {
    let settings = &config.bedrock;
    // Every model-backed check is measured under its model and what it was asked.
    let measured = |check: Arc<dyn SafetyCheck>, model: &str, operation| -> Arc<dyn SafetyCheck> {
        Arc::new(MeasuredSafetyCheck::new(check, model, operation, metrics.clone()))
    };
    let mut checks: Vec<Arc<dyn SafetyCheck>> = Vec::new();
    if let Some((identifier, version)) = &settings.guardrail {
        let guardrail = Arc::new(BedrockGuardrail::new(bedrock.clone(), identifier.clone(), version.clone()));
        checks.push(measured(guardrail, identifier, "guardrail"));
    }
    let classifier =
        Arc::new(BedrockClassifier::new(bedrock.clone(), settings.classifier_model.clone(), Checker::Classifier));
    checks.push(measured(classifier, &settings.classifier_model, "classify"));
    let appeal_reviewer = measured(
        Arc::new(BedrockClassifier::new(bedrock.clone(), settings.chat_model.clone(), Checker::Appeal)),
        &settings.chat_model,
        "appeal",
    );
    SafetyGate::new(settings.blocked_terms.clone(), checks, Some(appeal_reviewer))
}

/// The SDK configuration for Cognito calls, which link a Discord account. The SDK's default
/// bounds only connecting, so a Cognito that stopped answering would hold the person's link
/// request without end; these calls are small and answer in well under a second.
fn with_directory_timeouts(sdk_config: &SdkConfig) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    sdk_config.to_builder().timeout_config(timeouts).build()
}

/// The SDK configuration: the one given, or the environment's, loaded the first time it is needed.
async fn load_sdk_config(slot: &mut Option<SdkConfig>) -> SdkConfig {
    match slot {
        Some(sdk_config) => sdk_config.clone(),
        None => slot.insert(aws_config::defaults(BehaviorVersion::latest()).load().await).clone(),
    }
}
