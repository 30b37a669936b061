//! Building the core from the configuration, with every failure worded for the operator.

use std::sync::Arc;

use crate::Atelier;
use crate::chat::DemoChat;
use crate::checker::LocalCritic;
use crate::config::{AwsEnvironment, Config, ConfigError, EngineKind, StoreLocation, resolve_engine};
use crate::engine::demo::DemoEngine;
use crate::gallery::Gallery;
use crate::service::Parts;
use crate::store::ObjectStore;
use crate::store::folder::FolderStore;

/// What start-up decided, for the log and the pages.
#[derive(Debug, Clone)]
pub struct Started {
    pub engine: EngineKind,
    /// Why this engine: said loudly when the demo engine runs.
    pub engine_reason: String,
    pub store: String,
}

/// Builds the core: opens the store (proving it writable) and picks the engine.
pub async fn build(config: &Config, aws: &AwsEnvironment) -> Result<(Atelier, Started), ConfigError> {
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
        StoreLocation::S3 { .. } => {
            return Err(ConfigError {
                variable: "ATELIER_STORE",
                value: Some(config.store.to_string()),
                problem: "S3 storage is not available in this build yet".into(),
                fix: "use a folder (file://PATH) for now".into(),
            });
        }
    };

    let engine = resolve_engine(config.engine, aws);
    let engine_reason = match (config.engine, engine) {
        (crate::config::EngineChoice::Demo, _) => "ATELIER_ENGINE=demo".to_string(),
        (_, EngineKind::Demo) => match (&aws.region, aws.credentials_source) {
            (None, _) => "no AWS region is configured; set AWS_REGION".to_string(),
            (Some(_), None) => "no AWS credentials are configured".to_string(),
            (Some(_), Some(_)) => "ATELIER_ENGINE=demo".to_string(),
        },
        // Until the Bedrock engine is part of the build, `auto` falls back to the demo engine
        // rather than refusing to start on a machine that happens to have AWS credentials.
        (crate::config::EngineChoice::Auto, EngineKind::Bedrock) => {
            "Bedrock image models are not wired into this build yet".to_string()
        }
        (_, EngineKind::Bedrock) => {
            return Err(ConfigError {
                variable: "ATELIER_ENGINE",
                value: Some("bedrock".into()),
                problem: "the Bedrock engine is not available in this build yet".into(),
                fix: "set ATELIER_ENGINE=demo".into(),
            });
        }
    };
    let parts = Parts {
        engine: Arc::new(DemoEngine),
        chat: Arc::new(DemoChat),
        critic: Arc::new(LocalCritic),
        gallery: Gallery::new(store.clone()),
    };
    let started = Started { engine: EngineKind::Demo, engine_reason, store: store.location() };
    Ok((Atelier::new(parts), started))
}
