//! Which image engine runs and with which models: the operator's `ATELIER_ENGINE` choice, what
//! `auto` finds out about AWS, and the image model catalog. Read by start-up and `atelier config`.

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::EnvConfigFiles;

use super::{Config, ConfigError, RawSettings};
use crate::engine::EngineKind;
use crate::engine::catalog::Catalog;

/// The engine setting as the operator wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    Bedrock,
    Demo,
    /// Bedrock when AWS credentials and a region are configured, else the demo engine.
    Auto,
}

pub(super) fn read_choice(raw: &RawSettings) -> Result<EngineChoice, ConfigError> {
    match raw.get("ATELIER_ENGINE").map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") => Ok(EngineChoice::Auto),
        Some("bedrock") => Ok(EngineChoice::Bedrock),
        Some("demo") => Ok(EngineChoice::Demo),
        Some(other) => Err(ConfigError {
            variable: "ATELIER_ENGINE",
            value: Some(other.into()),
            problem: "is not an engine".into(),
            fix: "use bedrock, demo or auto".into(),
        }),
    }
}

/// The image models on offer, with the catalog's complaint pinned on the variable it is about.
pub(super) fn read_models(raw: &RawSettings) -> Result<Catalog, ConfigError> {
    Catalog::new(raw.get("ATELIER_IMAGE_MODELS"), raw.get("ATELIER_DEFAULT_IMAGE_MODEL")).map_err(|problem| {
        let variable = if problem.contains("default") || problem.contains("not a configured model alias") {
            "ATELIER_DEFAULT_IMAGE_MODEL"
        } else {
            "ATELIER_IMAGE_MODELS"
        };
        ConfigError {
            variable,
            value: raw.get(variable).map(String::from),
            problem,
            fix: "write alias=model-id pairs separated by commas, and name a generator alias as the default".into(),
        }
    })
}

/// What the process can find out about AWS without asking the network: whether a region and
/// a source of credentials are configured. `auto` engine resolution uses it, so a laptop with
/// no AWS set-up starts in demo mode at once instead of probing the instance metadata service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEnvironment {
    pub region: Option<String>,
    pub credentials_source: Option<&'static str>,
}

/// The keys of a profile that give the SDK a way to credentials: keys themselves, a role to
/// assume, single sign-on, a web identity, a console sign-in, or a program that prints them.
const PROFILE_CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "role_arn",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
    "login_session",
    "credential_process",
];

impl AwsEnvironment {
    /// Looks at the standard AWS variables and the shared config files, as the SDK would.
    ///
    /// The files are read by aws-config's own profile loader (the same files, the same
    /// `AWS_PROFILE`, the same parsing as the SDK's). aws-config can tell the region a profile
    /// names, but it has no way to ask "are credentials configured?" short of resolving them,
    /// which may call SSO, STS or the instance metadata service: exactly the wait `auto` is
    /// there to avoid. So the credential check looks for the profile keys that lead to
    /// credentials, and for the variables the SDK's chain reads.
    pub fn detect() -> Self {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let profiles = load_profiles(&EnvConfigFiles::default());
        let region = variable("AWS_REGION")
            .or_else(|| variable("AWS_DEFAULT_REGION"))
            .or_else(|| profiles.as_ref().and_then(region_in_profiles));

        let credentials_source = if variable("AWS_ACCESS_KEY_ID").is_some() {
            Some("environment variables")
        } else if variable("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || variable("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        {
            Some("the container's task role")
        } else if variable("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
            Some("web identity")
        } else if profiles.as_ref().is_some_and(profile_has_credentials) {
            Some("the shared AWS config files")
        } else {
            None
        };
        Self { region, credentials_source }
    }

    pub fn is_complete(&self) -> bool {
        self.region.is_some() && self.credentials_source.is_some()
    }
}

/// The shared config and credentials files as aws-config reads them, or `None` when they
/// cannot be parsed (the SDK would then refuse them too, so nothing there counts).
fn load_profiles(files: &EnvConfigFiles) -> Option<ProfileSet> {
    // `load` is async in its signature only: it reads the files with blocking calls and never
    // waits (aws-types' `Fs` says so), so blocking on it costs what reading the files costs and
    // keeps reading the configuration synchronous. The default `Fs` and `Env` are the real
    // file system and process environment.
    futures::executor::block_on(aws_config::profile::load(&Default::default(), &Default::default(), files, None)).ok()
}

/// The `region` of the profile in use (`AWS_PROFILE`, else `default`).
fn region_in_profiles(profiles: &ProfileSet) -> Option<String> {
    let profile = profiles.get_profile(profiles.selected_profile())?;
    profile.get("region").map(str::trim).filter(|region| !region.is_empty()).map(String::from)
}

/// Whether the profile in use names a way to credentials.
fn profile_has_credentials(profiles: &ProfileSet) -> bool {
    profiles
        .get_profile(profiles.selected_profile())
        .is_some_and(|profile| PROFILE_CREDENTIAL_KEYS.iter().any(|key| profile.get(key).is_some()))
}

/// The region the profile in use names in the given files.
#[cfg(test)]
pub(super) fn region_in_profile_files(files: &EnvConfigFiles) -> Option<String> {
    load_profiles(files).as_ref().and_then(region_in_profiles)
}

/// Resolves `auto` to a concrete engine.
pub fn resolve_engine(choice: EngineChoice, aws: &AwsEnvironment) -> EngineKind {
    match choice {
        EngineChoice::Bedrock => EngineKind::Bedrock,
        EngineChoice::Demo => EngineKind::Demo,
        EngineChoice::Auto if aws.is_complete() => EngineKind::Bedrock,
        EngineChoice::Auto => EngineKind::Demo,
    }
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    let engine = match config.engine {
        EngineChoice::Auto => "auto",
        EngineChoice::Bedrock => "bedrock",
        EngineChoice::Demo => "demo",
    };
    let models = config.models.entries().iter().map(|entry| format!("{}={}", entry.alias, entry.id));
    vec![("ATELIER_ENGINE", engine.into()), ("ATELIER_IMAGE_MODELS", models.collect::<Vec<_>>().join(", "))]
}
