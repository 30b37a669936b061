//! Atelier's configuration: read once at start, checked once, then trusted everywhere.
//!
//! Settings come from `ATELIER_*` environment variables, which win over an optional
//! `atelier.toml` (in the working directory, or the file named by `ATELIER_CONFIG`) whose
//! keys are the variable names without the prefix, in lower case (`store = "s3://bucket"`).
//! AWS endpoints, region and credentials are *not* ours: they come from the AWS SDK's own
//! standard settings (`AWS_REGION`, `AWS_ENDPOINT_URL_*`, the credential chain).
//!
//! Every value is parsed into a typed field here, and every mistake becomes a
//! [`ConfigError`] that names the variable and says how to fix it, so the process can stop
//! with one clear line instead of failing later in the middle of a request.
//!
//! We read the variables by hand rather than through a layered-config crate such as figment
//! because those guess types from the text (a numeric Discord application id becomes a number
//! and no longer deserialises as a string), and because knowing the full list lets us point
//! out a misspelt `ATELIER_` variable, the most common configuration mistake.

pub mod bedrock;
pub mod discord;
pub mod engine;
pub mod jobs;
mod parse;
pub mod server;
pub mod sign_in;
pub mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use url::Url;

use crate::engine::catalog::Catalog;

// Every section's settings types, where the front ends have always found them.
pub use bedrock::{
    BedrockSettings, DEFAULT_BLOCKED_TERMS, DEFAULT_CHAT_MODEL, DEFAULT_CLASSIFIER_MODEL, ModelTimeouts,
    TEXT_ATTEMPT_CAP,
};
pub use discord::DiscordConfig;
pub use engine::{AwsEnvironment, EngineChoice, resolve_engine};
pub use jobs::JobLimits;
pub use server::LogFormat;
pub use sign_in::{LocalSignIn, OidcConfig};
pub use store::{DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_BYTES, StoreLocation};

/// Every setting Atelier reads, by environment variable name, with a one-line description
/// that `atelier config` and the README show.
pub const SETTINGS: &[(&str, &str)] = &[
    ("ATELIER_CONFIG", "path of an optional TOML file with the settings below (default ./atelier.toml)"),
    ("ATELIER_BIND", "address the web app listens on (default 127.0.0.1:8080)"),
    (
        "ATELIER_METRICS_ADDRESS",
        "address of a separate listener serving Prometheus metrics at /metrics, off the public path (default: none)",
    ),
    ("ATELIER_LOG_FORMAT", "text (lines for people, the default) or json (one JSON object a line, for log stores)"),
    ("ATELIER_PUBLIC_URL", "the URL people use to reach the web app, for links from Discord and sign-in callbacks"),
    (
        "ATELIER_ALLOWED_HOSTS",
        "other host names requests may be addressed to behind sign-in, comma-separated (the load balancer's name as CloudFront reaches it); requests to any other name are refused",
    ),
    (
        "ATELIER_CLOUDFRONT_DISTRIBUTION_ID",
        "id of the CloudFront distribution in front of the web app, told to drop a public page the moment its image is unpublished or deleted (default: none, pages expire within a minute)",
    ),
    ("ATELIER_STORE", "where images are kept: file://PATH (default file://./atelier-data) or s3://BUCKET[/PREFIX]"),
    ("ATELIER_S3_FORCE_PATH_STYLE", "true for S3-compatible servers that need path-style URLs"),
    (
        "ATELIER_SPOOL_DIR",
        "local folder where images wait while the store is down, kept across restarts (default ./atelier-spool)",
    ),
    ("ATELIER_SPOOL_MAX_BYTES", "the most bytes the spool may hold before images are refused (default 1073741824)"),
    ("ATELIER_ENGINE", "bedrock, demo, or auto (default: Bedrock when AWS credentials and a region are configured)"),
    ("ATELIER_IMAGE_MODELS", "image models to add or replace, as alias=model-id pairs separated by commas"),
    ("ATELIER_DEFAULT_IMAGE_MODEL", "alias of the model used when none is named (default core)"),
    ("ATELIER_CHAT_MODEL", "Claude model or inference profile for chat, critiques and appeals"),
    ("ATELIER_CLASSIFIER_MODEL", "fast Claude model or inference profile for the safety check"),
    ("ATELIER_GUARDRAIL_ID", "Bedrock Guardrail id or ARN applied to prompts before generation (optional)"),
    ("ATELIER_GUARDRAIL_VERSION", "version of that guardrail (default DRAFT)"),
    ("ATELIER_BLOCKED_TERMS", "terms refused before any model call, separated by commas (replaces the built-in list)"),
    (
        "ATELIER_CHAT_HISTORY_TOKENS",
        "how much conversation history (in estimated tokens) goes with each chat turn (default 6000)",
    ),
    (
        "ATELIER_MODEL_TIMEOUT_SECONDS",
        "how long one attempt at a model call may take (an image, a safety check, a critique); a call with its \
         retries gets twice this (default 90)",
    ),
    (
        "ATELIER_CHAT_IDLE_TIMEOUT_SECONDS",
        "how long a streamed chat reply may take to start, or pause between pieces, before it is given up (default 30)",
    ),
    ("ATELIER_DISCORD_TOKEN", "the Discord bot token; the bot runs only when it is set"),
    ("ATELIER_DISCORD_APPLICATION_ID", "the Discord application id, for registering slash commands"),
    ("ATELIER_DISCORD_API_URL", "base URL of the Discord REST API (tests only; default https://discord.com)"),
    ("ATELIER_DISCORD_GATEWAY_URL", "URL of the Discord gateway (tests only; default: asked from the REST API)"),
    (
        "ATELIER_DISCORD_MESSAGE_CONTENT",
        "true when the bot has the message-content intent, so chat threads continue on plain replies",
    ),
    ("ATELIER_DISCORD_MODERATION_CHANNEL", "id of a Discord channel that gets one line per refused prompt (optional)"),
    ("ATELIER_MAX_RUNNING_JOBS", "image jobs running at once in this process, sized to the Bedrock quotas (default 4)"),
    ("ATELIER_USER_RUNNING_JOBS", "image jobs one person may have running at once (default 1)"),
    ("ATELIER_USER_QUEUED_JOBS", "image jobs one person may have waiting, besides the running ones (default 3)"),
    (
        "ATELIER_SHUTDOWN_DRAIN_SECONDS",
        "on SIGTERM, seconds to stay up unready (taking no new jobs) before stopping (default 5)",
    ),
    (
        "ATELIER_SHUTDOWN_GRACE_SECONDS",
        "on SIGTERM, after the drain, seconds running jobs may take to finish before they are handed back (default 20)",
    ),
    (
        "ATELIER_HEARTBEAT_SECONDS",
        "how often a serving process writes its heartbeat to the store and looks for jobs of stopped replicas (default 10)",
    ),
    ("ATELIER_DAILY_IMAGE_QUOTA", "images one person may make per day (UTC); 0 for no limit (default 100)"),
    ("ATELIER_DAILY_APPEALS", "refusals one person may appeal per day (UTC); 0 for no limit (default 5)"),
    (
        "ATELIER_DAILY_BUDGET_USD",
        "estimated US dollars one person's model calls (images, chat, critiques, descriptions, appeals) may cost per day (UTC); 0 for no limit (default 5)",
    ),
    (
        "ATELIER_SERVICE_DAILY_BUDGET_USD",
        "estimated US dollars all model calls together may cost per day (UTC), across replicas; 0 or unset for no cap",
    ),
    (
        "ATELIER_PRICES",
        "model prices to add or correct, as pattern=price pairs separated by commas: dollars per image (core=0.04) or per million tokens in/out (claude-sonnet=3/15)",
    ),
    ("ATELIER_OIDC_ISSUER", "OpenID Connect issuer URL of the sign-in provider (Cognito user pool)"),
    ("ATELIER_OIDC_CLIENT_ID", "OpenID Connect client id of the web app"),
    ("ATELIER_OIDC_CLIENT_SECRET", "OpenID Connect client secret of the web app, if the client has one"),
    ("ATELIER_COGNITO_USER_POOL_ID", "Cognito user pool id, for recording linked Discord accounts on the user"),
    (
        "ATELIER_SESSION_SECRET",
        "64 or more random characters (openssl rand -hex 32) that sign session cookies; needed with sign-in",
    ),
];

/// The settings as text, before any checking: from the environment and the optional file.
#[derive(Debug, Default, Clone)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
    /// `ATELIER_*` variables that are not settings: most likely misspelt.
    unknown: Vec<String>,
}

impl RawSettings {
    /// Reads the process environment and, when present, the TOML file it points to.
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_variables(std::env::vars())
    }

    /// Builds the settings from the given variables (the environment in production, a map
    /// in tests), reading the TOML file they point to.
    pub fn from_variables(variables: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut from_env = BTreeMap::new();
        let mut unknown = Vec::new();
        for (name, value) in variables {
            if !name.starts_with("ATELIER_") {
                continue;
            }
            if SETTINGS.iter().any(|(known, _)| *known == name) {
                from_env.insert(name, value);
            } else {
                unknown.push(name);
            }
        }

        let (file, file_is_explicit) = match from_env.get("ATELIER_CONFIG") {
            Some(path) => (PathBuf::from(path), true),
            None => (PathBuf::from("atelier.toml"), false),
        };
        let mut values = if file.exists() || file_is_explicit { read_settings_file(&file)? } else { BTreeMap::new() };
        // The environment wins over the file, so one deployment can override a shared file.
        values.extend(from_env);
        Ok(Self { values, unknown })
    }

    /// A setting's value, trimmed; `None` when unset or blank.
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
    }

    /// `ATELIER_*` variables that are not settings Atelier knows, each with the closest known name.
    pub fn unknown_variables(&self) -> Vec<(String, Option<&'static str>)> {
        self.unknown.iter().map(|name| (name.clone(), closest_setting(name))).collect()
    }
}

fn read_settings_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        variable: "ATELIER_CONFIG",
        value: Some(path.display().to_string()),
        problem: format!("the file cannot be read ({error})"),
        fix: "point ATELIER_CONFIG at a readable TOML file, or unset it".into(),
    })?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| ConfigError {
        variable: "ATELIER_CONFIG",
        value: Some(path.display().to_string()),
        problem: format!("the file is not valid TOML ({})", error.message()),
        fix: "fix the file; each line looks like store = \"file://./atelier-data\"".into(),
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let name = format!("ATELIER_{}", key.to_ascii_uppercase());
        if !SETTINGS.iter().any(|(known, _)| *known == name) || name == "ATELIER_CONFIG" {
            return Err(ConfigError {
                variable: "ATELIER_CONFIG",
                value: Some(path.display().to_string()),
                problem: format!("the file sets `{key}`, which is not a setting"),
                fix: match closest_setting(&name) {
                    Some(close) => format!("did you mean `{}`?", close["ATELIER_".len()..].to_ascii_lowercase()),
                    None => "remove it; `atelier config` lists the settings".into(),
                },
            });
        }
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(ConfigError {
                    variable: "ATELIER_CONFIG",
                    value: Some(path.display().to_string()),
                    problem: format!("`{key}` is a {}, not text", other.type_str()),
                    fix: format!("write it as {key} = \"...\""),
                });
            }
        };
        values.insert(name, text);
    }
    Ok(values)
}

/// The known setting nearest to a misspelt name, when one is close enough to be a likely typo.
fn closest_setting(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|(known, _)| (strsim::levenshtein(name, known), *known))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, known)| known)
}

/// A configuration mistake, worded for the operator: which variable, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(formatter, "{}={value}: {}; {}", self.variable, self.problem, self.fix),
            None => write!(formatter, "{}: {}; {}", self.variable, self.problem, self.fix),
        }
    }
}

/// The whole configuration, checked. Built once at start and passed down explicitly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the web app listens.
    pub bind: SocketAddr,
    /// The URL people reach the web app at; defaults to `http://{bind}`.
    pub public_url: Url,
    /// Other names requests may be addressed to behind sign-in (`ATELIER_ALLOWED_HOSTS`):
    /// the name the load balancer is reached by from CloudFront. See [`Config::accepted_hosts`].
    pub allowed_hosts: Vec<String>,
    /// The CloudFront distribution in front of the web app (`ATELIER_CLOUDFRONT_DISTRIBUTION_ID`),
    /// told to drop a public page once its image stops being public; `None` tells no cache.
    pub cloudfront_distribution_id: Option<String>,
    /// Where images, metadata and records are kept.
    pub store: StoreLocation,
    /// Path-style S3 URLs, for S3-compatible servers.
    pub s3_force_path_style: bool,
    /// Where images wait on local disk while the store is down.
    pub spool_dir: PathBuf,
    /// The most bytes the spool may hold.
    pub spool_max_bytes: u64,
    /// Which engine the operator asked for; see [`resolve_engine`].
    pub engine: EngineChoice,
    /// The Discord bot's settings; `None` when no token is configured, and then no bot runs.
    pub discord: Option<DiscordConfig>,
    /// Web sign-in through OpenID Connect; `None` in local mode.
    pub oidc: Option<OidcConfig>,
    /// The image models on offer.
    pub models: Catalog,
    /// The Claude models and safety settings.
    pub bedrock: BedrockSettings,
    /// How many image jobs run at once, and how much each person may ask for.
    pub limits: JobLimits,
    /// What each model's calls are estimated to cost, for budgets and metrics.
    pub prices: crate::pricing::PriceTable,
    /// Where `/metrics` is served, on a listener of its own; `None` serves no metrics.
    pub metrics_address: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
}

impl Config {
    /// The host names (each with and without the public URL's port) the web app answers to
    /// behind sign-in: the public URL's and `ATELIER_ALLOWED_HOSTS`. A request addressed to any
    /// other name (DNS rebinding, a stray virtual host) gets no page.
    pub fn accepted_hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        if let Some(host) = self.public_url.host_str() {
            let host = host.to_ascii_lowercase();
            if let Some(port) = self.public_url.port() {
                hosts.push(format!("{host}:{port}"));
            }
            hosts.push(host);
        }
        hosts.extend(self.allowed_hosts.iter().cloned());
        hosts
    }

    /// Reads and checks the configuration from the process environment.
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_raw(&RawSettings::from_environment()?)
    }

    /// Checks raw settings and turns them into a typed configuration, one section at a time
    /// (in this order, so the first mistake reported is the same whatever else is wrong).
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let bind = server::read_bind(raw)?;
        let public_url = server::read_public_url(raw, bind)?;
        let allowed_hosts = server::read_allowed_hosts(raw)?;
        let cloudfront_distribution_id = server::read_cloudfront_distribution_id(raw)?;
        let store = store::read(raw)?;
        let engine = engine::read_choice(raw)?;
        let discord = discord::read(raw)?;
        let oidc = sign_in::read(raw)?;
        let models = engine::read_models(raw)?;
        let bedrock = bedrock::read(raw)?;
        let limits = jobs::read(raw)?;
        let prices = jobs::read_prices(raw)?;
        let metrics_address = server::read_metrics_address(raw, bind)?;
        let log_format = LogFormat::from_raw(raw)?;
        Ok(Self {
            bind,
            public_url,
            allowed_hosts,
            cloudfront_distribution_id,
            store: store.location,
            s3_force_path_style: store.s3_force_path_style,
            spool_dir: store.spool_dir,
            spool_max_bytes: store.spool_max_bytes,
            engine,
            discord,
            oidc,
            models,
            bedrock,
            limits,
            prices,
            metrics_address,
            log_format,
        })
    }

    /// The settings as `atelier config` prints them, with secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        [
            server::describe(self),
            store::describe(self),
            engine::describe(self),
            bedrock::describe(self),
            discord::describe(self),
            jobs::describe(self),
            sign_in::describe(self),
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests;
