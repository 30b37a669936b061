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

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

use crate::engine::catalog::Catalog;

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
        .map(|(known, _)| (edit_distance(name, known), *known))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, known)| known)
}

fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[right.len()]
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
    /// Where images, metadata and records are kept.
    pub store: StoreLocation,
    /// Path-style S3 URLs, for S3-compatible servers.
    pub s3_force_path_style: bool,
    /// Where images wait on local disk while the store is down.
    pub spool_dir: PathBuf,
    /// The most bytes the spool may hold.
    pub spool_max_bytes: u64,
    /// Which engine the operator asked for; see [`Config::engine_choice`] and [`resolve_engine`].
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
    /// Where `/metrics` is served, on a listener of its own; `None` serves no metrics.
    pub metrics_address: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// How log lines are written: for people at a terminal, or one JSON object a line for a
/// log store (the container sets this).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// Reads `ATELIER_LOG_FORMAT`. Logging starts before the rest of the configuration is
    /// read, so this is also called on its own.
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        match raw.get("ATELIER_LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError {
                variable: "ATELIER_LOG_FORMAT",
                value: Some(other.into()),
                problem: "is not a log format".into(),
                fix: "use text or json".into(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// How many image jobs run at once, and each person's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Jobs running at once in this process; the rest wait in line.
    pub max_running: usize,
    /// Jobs one person may have running at once.
    pub per_user_running: usize,
    /// Jobs one person may have waiting, besides the running ones.
    pub per_user_queued: usize,
    /// Images one person may make per UTC day; `None` for no limit.
    pub daily_images: Option<u32>,
    /// On SIGTERM, how long to stay up unready before stopping, so the load balancer drains
    /// this process first.
    pub shutdown_drain: Duration,
    /// On SIGTERM, how long running jobs may take to finish after the drain; what is still
    /// running then is answered by another replica (or this one's next start).
    pub shutdown_grace: Duration,
    /// How often this replica writes its heartbeat and looks for jobs of replicas that
    /// stopped; a replica silent for three of these is taken for dead.
    pub heartbeat: Duration,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_running: 4,
            per_user_running: 1,
            per_user_queued: 3,
            daily_images: Some(100),
            shutdown_drain: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            heartbeat: Duration::from_secs(10),
        }
    }
}

/// Which Claude models to use and how prompts are checked for safety.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockSettings {
    /// Chat, critiques and appeals (the stronger model).
    pub chat_model: String,
    /// The quick allowed/blocked classifier.
    pub classifier_model: String,
    /// A Bedrock Guardrail to apply to prompts, as (identifier, version).
    pub guardrail: Option<(String, String)>,
    /// Terms refused locally before any model call, lower case.
    pub blocked_terms: Vec<String>,
    /// The estimated tokens of history sent with each chat turn.
    pub chat_history_tokens: usize,
    /// How long model calls may take.
    pub timeouts: ModelTimeouts,
}

/// How long Bedrock's models may take before a call is given up, so no job or chat reply
/// waits without end on a model that hangs. The person then hears the model is busy and the
/// job's quota is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTimeouts {
    /// One attempt at a call answered in one piece: an image (image models take up to about
    /// a minute), a safety verdict, a critique, a description. A throttled, failed or timed-out
    /// attempt is retried within [`ModelTimeouts::operation`].
    pub attempt: Duration,
    /// How long a streamed chat reply may take to start (its first byte, retries included) or
    /// pause between two pieces. Streams are bounded by silence rather than by their length,
    /// so a long answer that keeps coming is never cut.
    pub chat_idle: Duration,
}

impl ModelTimeouts {
    /// One call in all, retries and their backoff included: two full attempts, so a slow
    /// first attempt still leaves room for one retry, and a model that hangs is given up
    /// after a bounded wait however many attempts would remain.
    pub fn operation(&self) -> Duration {
        self.attempt.saturating_mul(2)
    }

    /// The start of a streamed reply (until the answer's headers arrive), retries included.
    pub fn chat_start(&self) -> Duration {
        self.chat_idle.saturating_mul(2)
    }

    /// One attempt at a text call answered in one piece (a safety verdict, a critique, a
    /// description): the model timeout, but at most [`TEXT_ATTEMPT_CAP`]. Claude writes these
    /// in seconds, so a safety check that hangs holds a job for at most twice the cap rather
    /// than the image model's whole budget.
    pub fn text_attempt(&self) -> Duration {
        self.attempt.min(TEXT_ATTEMPT_CAP)
    }

    /// A text call in all, retries included: two full attempts, as for images.
    pub fn text_operation(&self) -> Duration {
        self.text_attempt().saturating_mul(2)
    }
}

/// The longest one attempt at a text call answered in one piece may take: a critique of a
/// thousand tokens takes Claude well under half a minute.
pub const TEXT_ATTEMPT_CAP: Duration = Duration::from_secs(45);

impl Default for ModelTimeouts {
    fn default() -> Self {
        Self { attempt: Duration::from_secs(90), chat_idle: Duration::from_secs(30) }
    }
}

/// Refused before any model is asked: requests for sexual content involving minors, which no
/// deployment wants and no appeal should reach a model with. Operators extend the list with
/// `ATELIER_BLOCKED_TERMS`.
pub const DEFAULT_BLOCKED_TERMS: &[&str] = &["child porn", "csam", "underage nude", "underage sex", "loli hentai"];

/// The default chat model: a current Claude through the US cross-region inference profile.
pub const DEFAULT_CHAT_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// The default classifier: a fast Claude through the US cross-region inference profile.
pub const DEFAULT_CLASSIFIER_MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// Where images wait while the store is down, unless `ATELIER_SPOOL_DIR` says otherwise:
/// beside the default data folder, on disk that survives a restart of the process.
pub const DEFAULT_SPOOL_DIR: &str = "./atelier-spool";

/// The most the spool holds unless `ATELIER_SPOOL_MAX_BYTES` says otherwise: 1 GiB, a few
/// thousand images.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;

/// Where the gallery keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local folder (the embedded default).
    Folder(PathBuf),
    /// An S3 bucket, with an optional key prefix (no leading or trailing slash).
    S3 { bucket: String, prefix: Option<String> },
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(path) => write!(formatter, "file://{}", path.display()),
            Self::S3 { bucket, prefix: Some(prefix) } => write!(formatter, "s3://{bucket}/{prefix}"),
            Self::S3 { bucket, prefix: None } => write!(formatter, "s3://{bucket}"),
        }
    }
}

/// The engine setting as the operator wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    Bedrock,
    Demo,
    /// Bedrock when AWS credentials and a region are configured, else the demo engine.
    Auto,
}

/// The engine actually used, after `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Bedrock,
    Demo,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Bedrock => "bedrock",
            Self::Demo => "demo",
        })
    }
}

/// The Discord bot's settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: SecretString,
    pub application_id: Option<u64>,
    /// Replaces `https://discord.com` for REST calls (the stand-in in tests).
    pub api_url: Option<Url>,
    /// The gateway URL to connect to instead of the one the REST API names.
    pub gateway_url: Option<Url>,
    /// Whether the bot may read message content (a privileged intent in Discord's portal).
    pub message_content_intent: bool,
    /// A channel that gets one line per refused prompt, for the community's moderators.
    pub moderation_channel: Option<u64>,
}

/// Web sign-in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub cognito_user_pool_id: Option<String>,
    /// The key that signs session cookies: the same on every replica, so any of them can
    /// read a cookie another set.
    pub session_secret: SecretBox<[u8]>,
}

/// What the process can find out about AWS without asking the network: whether a region and
/// a source of credentials are configured. `auto` engine resolution uses it, so a laptop with
/// no AWS set-up starts in demo mode at once instead of probing the instance metadata service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEnvironment {
    pub region: Option<String>,
    pub credentials_source: Option<&'static str>,
}

impl AwsEnvironment {
    /// Looks at the standard AWS variables and the shared config files, as the SDK would.
    pub fn detect() -> Self {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let home = variable("HOME").map(PathBuf::from);
        let config_file = variable("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/config")));
        let credentials_file = variable("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/credentials")));
        let config_text = config_file.and_then(|path| std::fs::read_to_string(path).ok());
        let credentials_text = credentials_file.and_then(|path| std::fs::read_to_string(path).ok());

        let region = variable("AWS_REGION")
            .or_else(|| variable("AWS_DEFAULT_REGION"))
            .or_else(|| config_text.as_deref().and_then(region_in_profile_file));

        let credentials_source = if variable("AWS_ACCESS_KEY_ID").is_some() {
            Some("environment variables")
        } else if variable("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || variable("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        {
            Some("the container's task role")
        } else if variable("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
            Some("web identity")
        } else if credentials_text.is_some_and(|text| text.contains("aws_access_key_id"))
            || config_text.is_some_and(|text| {
                ["aws_access_key_id", "sso_", "role_arn", "credential_process"].iter().any(|key| text.contains(key))
            })
        {
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

/// The `region = ...` of the profile in use (`AWS_PROFILE`, else `default`).
fn region_in_profile_file(text: &str) -> Option<String> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let wanted = [format!("[{profile}]"), format!("[profile {profile}]")];
    let mut in_profile = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = wanted.iter().any(|header| header == line);
        } else if in_profile
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "region"
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    None
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

impl Config {
    /// Reads and checks the configuration from the process environment.
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_raw(&RawSettings::from_environment()?)
    }

    /// Checks raw settings and turns them into a typed configuration.
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let bind = parse_bind(raw.get("ATELIER_BIND"))?;
        let public_url = match raw.get("ATELIER_PUBLIC_URL") {
            Some(text) => parse_http_url(
                "ATELIER_PUBLIC_URL",
                text,
                "set it to the address people open, such as https://atelier.example.com",
            )?,
            None => default_public_url(bind)?,
        };
        let store = parse_store(raw.get("ATELIER_STORE"))?;
        let s3_force_path_style = parse_flag(raw, "ATELIER_S3_FORCE_PATH_STYLE")?;
        let spool_dir = PathBuf::from(raw.get("ATELIER_SPOOL_DIR").unwrap_or(DEFAULT_SPOOL_DIR));
        let spool_max_bytes = match raw.get("ATELIER_SPOOL_MAX_BYTES") {
            None => DEFAULT_SPOOL_MAX_BYTES,
            Some(text) => text.parse::<u64>().ok().filter(|bytes| *bytes >= 1).ok_or_else(|| ConfigError {
                variable: "ATELIER_SPOOL_MAX_BYTES",
                value: Some(text.into()),
                problem: "is not a whole number of bytes of at least 1".into(),
                fix: format!("use a whole number such as {DEFAULT_SPOOL_MAX_BYTES} (1 GiB)"),
            })?,
        };
        let engine = match raw.get("ATELIER_ENGINE").map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => EngineChoice::Auto,
            Some("bedrock") => EngineChoice::Bedrock,
            Some("demo") => EngineChoice::Demo,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ATELIER_ENGINE",
                    value: Some(other.into()),
                    problem: "is not an engine".into(),
                    fix: "use bedrock, demo or auto".into(),
                });
            }
        };

        let discord = match raw.get("ATELIER_DISCORD_TOKEN") {
            None => {
                for dependent in ["ATELIER_DISCORD_API_URL", "ATELIER_DISCORD_GATEWAY_URL"] {
                    if raw.get(dependent).is_some() {
                        return Err(ConfigError {
                            variable: dependent,
                            value: raw.get(dependent).map(String::from),
                            problem: "is set but ATELIER_DISCORD_TOKEN is not, so no bot would use it".into(),
                            fix: "set ATELIER_DISCORD_TOKEN too, or unset it".into(),
                        });
                    }
                }
                None
            }
            Some(token) => Some(DiscordConfig {
                token: SecretString::from(token.to_string()),
                application_id: raw
                    .get("ATELIER_DISCORD_APPLICATION_ID")
                    .map(|text| {
                        text.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| ConfigError {
                            variable: "ATELIER_DISCORD_APPLICATION_ID",
                            value: Some(text.into()),
                            problem: "is not a Discord application id".into(),
                            fix: "copy the numeric Application ID from the Discord developer portal".into(),
                        })
                    })
                    .transpose()?,
                api_url: raw
                    .get("ATELIER_DISCORD_API_URL")
                    .map(|text| {
                        parse_http_url("ATELIER_DISCORD_API_URL", text, "use a URL such as http://127.0.0.1:3000")
                    })
                    .transpose()?,
                gateway_url: raw
                    .get("ATELIER_DISCORD_GATEWAY_URL")
                    .map(|text| parse_websocket_url("ATELIER_DISCORD_GATEWAY_URL", text))
                    .transpose()?,
                message_content_intent: parse_flag(raw, "ATELIER_DISCORD_MESSAGE_CONTENT")?,
                moderation_channel: raw
                    .get("ATELIER_DISCORD_MODERATION_CHANNEL")
                    .map(|text| {
                        text.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| ConfigError {
                            variable: "ATELIER_DISCORD_MODERATION_CHANNEL",
                            value: Some(text.into()),
                            problem: "is not a Discord channel id".into(),
                            fix: "turn on Developer Mode in Discord, right-click the channel and copy its ID".into(),
                        })
                    })
                    .transpose()?,
            }),
        };

        let oidc = match (raw.get("ATELIER_OIDC_ISSUER"), raw.get("ATELIER_OIDC_CLIENT_ID")) {
            (None, None) => {
                if raw.get("ATELIER_OIDC_CLIENT_SECRET").is_some() {
                    return Err(missing_pair(
                        "ATELIER_OIDC_CLIENT_SECRET",
                        "ATELIER_OIDC_ISSUER and ATELIER_OIDC_CLIENT_ID",
                    ));
                }
                None
            }
            (Some(_), None) => return Err(missing_pair("ATELIER_OIDC_ISSUER", "ATELIER_OIDC_CLIENT_ID")),
            (None, Some(_)) => return Err(missing_pair("ATELIER_OIDC_CLIENT_ID", "ATELIER_OIDC_ISSUER")),
            (Some(issuer), Some(client_id)) => Some(OidcConfig {
                issuer: parse_http_url(
                    "ATELIER_OIDC_ISSUER",
                    issuer,
                    "use the issuer URL, such as https://cognito-idp.REGION.amazonaws.com/POOL_ID",
                )?,
                client_id: client_id.to_string(),
                client_secret: raw
                    .get("ATELIER_OIDC_CLIENT_SECRET")
                    .map(|secret| SecretString::from(secret.to_string())),
                cognito_user_pool_id: raw.get("ATELIER_COGNITO_USER_POOL_ID").map(String::from),
                session_secret: parse_session_secret(raw.get("ATELIER_SESSION_SECRET"))?,
            }),
        };

        let models = Catalog::new(raw.get("ATELIER_IMAGE_MODELS"), raw.get("ATELIER_DEFAULT_IMAGE_MODEL")).map_err(
            |problem| {
                let variable = if problem.contains("default") || problem.contains("not a configured model alias") {
                    "ATELIER_DEFAULT_IMAGE_MODEL"
                } else {
                    "ATELIER_IMAGE_MODELS"
                };
                ConfigError {
                    variable,
                    value: raw.get(variable).map(String::from),
                    problem,
                    fix: "write alias=model-id pairs separated by commas, and name a generator alias as the default"
                        .into(),
                }
            },
        )?;
        let bedrock = BedrockSettings {
            chat_model: raw.get("ATELIER_CHAT_MODEL").unwrap_or(DEFAULT_CHAT_MODEL).to_string(),
            classifier_model: raw.get("ATELIER_CLASSIFIER_MODEL").unwrap_or(DEFAULT_CLASSIFIER_MODEL).to_string(),
            guardrail: match (raw.get("ATELIER_GUARDRAIL_ID"), raw.get("ATELIER_GUARDRAIL_VERSION")) {
                (Some(id), version) => Some((id.to_string(), version.unwrap_or("DRAFT").to_string())),
                (None, Some(version)) => {
                    return Err(ConfigError {
                        variable: "ATELIER_GUARDRAIL_VERSION",
                        value: Some(version.into()),
                        problem: "is set without ATELIER_GUARDRAIL_ID".into(),
                        fix: "set ATELIER_GUARDRAIL_ID too, or unset it".into(),
                    });
                }
                (None, None) => None,
            },
            blocked_terms: match raw.get("ATELIER_BLOCKED_TERMS") {
                Some(text) => {
                    text.split(',').map(|term| term.trim().to_lowercase()).filter(|term| !term.is_empty()).collect()
                }
                None => DEFAULT_BLOCKED_TERMS.iter().map(|term| (*term).to_string()).collect(),
            },
            chat_history_tokens: match raw.get("ATELIER_CHAT_HISTORY_TOKENS") {
                Some(text) => text.parse().ok().filter(|tokens| *tokens >= 500).ok_or_else(|| ConfigError {
                    variable: "ATELIER_CHAT_HISTORY_TOKENS",
                    value: Some(text.into()),
                    problem: "is not a number of tokens of at least 500".into(),
                    fix: "use a whole number such as 6000".into(),
                })?,
                None => 6_000,
            },
            timeouts: ModelTimeouts {
                attempt: parse_seconds(raw, "ATELIER_MODEL_TIMEOUT_SECONDS", ModelTimeouts::default().attempt)?,
                chat_idle: parse_seconds(raw, "ATELIER_CHAT_IDLE_TIMEOUT_SECONDS", ModelTimeouts::default().chat_idle)?,
            },
        };

        let defaults = JobLimits::default();
        let limits = JobLimits {
            max_running: parse_count(raw, "ATELIER_MAX_RUNNING_JOBS", 1, defaults.max_running)?,
            per_user_running: parse_count(raw, "ATELIER_USER_RUNNING_JOBS", 1, defaults.per_user_running)?,
            per_user_queued: parse_count(raw, "ATELIER_USER_QUEUED_JOBS", 0, defaults.per_user_queued)?,
            daily_images: match parse_count(raw, "ATELIER_DAILY_IMAGE_QUOTA", 0, 100)? {
                0 => None,
                images => Some(u32::try_from(images).unwrap_or(u32::MAX)),
            },
            shutdown_drain: Duration::from_secs(parse_count(raw, "ATELIER_SHUTDOWN_DRAIN_SECONDS", 0, 5)? as u64),
            shutdown_grace: Duration::from_secs(parse_count(raw, "ATELIER_SHUTDOWN_GRACE_SECONDS", 0, 20)? as u64),
            heartbeat: Duration::from_secs(parse_count(raw, "ATELIER_HEARTBEAT_SECONDS", 1, 10)? as u64),
        };

        let metrics_address = parse_metrics_address(raw.get("ATELIER_METRICS_ADDRESS"), bind)?;
        let log_format = LogFormat::from_raw(raw)?;

        Ok(Self {
            bind,
            public_url,
            store,
            s3_force_path_style,
            spool_dir,
            spool_max_bytes,
            engine,
            discord,
            oidc,
            models,
            bedrock,
            limits,
            metrics_address,
            log_format,
        })
    }

    /// The settings as `atelier config` prints them, with secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let redacted = |secret: &SecretString| {
            let length = secret.expose_secret().chars().count();
            format!("(set, {length} characters, redacted)")
        };
        let unset = || "(not set)".to_string();
        let discord = self.discord.as_ref();
        let oidc = self.oidc.as_ref();
        vec![
            ("ATELIER_BIND", self.bind.to_string()),
            ("ATELIER_METRICS_ADDRESS", self.metrics_address.map(|address| address.to_string()).unwrap_or_else(unset)),
            ("ATELIER_LOG_FORMAT", self.log_format.as_str().to_string()),
            ("ATELIER_PUBLIC_URL", self.public_url.to_string()),
            ("ATELIER_STORE", self.store.to_string()),
            ("ATELIER_S3_FORCE_PATH_STYLE", self.s3_force_path_style.to_string()),
            ("ATELIER_SPOOL_DIR", self.spool_dir.display().to_string()),
            ("ATELIER_SPOOL_MAX_BYTES", self.spool_max_bytes.to_string()),
            (
                "ATELIER_ENGINE",
                match self.engine {
                    EngineChoice::Auto => "auto".into(),
                    EngineChoice::Bedrock => "bedrock".into(),
                    EngineChoice::Demo => "demo".into(),
                },
            ),
            (
                "ATELIER_IMAGE_MODELS",
                self.models
                    .entries()
                    .iter()
                    .map(|entry| format!("{}={}", entry.alias, entry.id))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("ATELIER_CHAT_MODEL", self.bedrock.chat_model.clone()),
            ("ATELIER_CLASSIFIER_MODEL", self.bedrock.classifier_model.clone()),
            (
                "ATELIER_GUARDRAIL_ID",
                self.bedrock
                    .guardrail
                    .as_ref()
                    .map(|(id, version)| format!("{id} (version {version})"))
                    .unwrap_or_else(unset),
            ),
            ("ATELIER_BLOCKED_TERMS", format!("{} terms", self.bedrock.blocked_terms.len())),
            ("ATELIER_MODEL_TIMEOUT_SECONDS", self.bedrock.timeouts.attempt.as_secs().to_string()),
            ("ATELIER_CHAT_IDLE_TIMEOUT_SECONDS", self.bedrock.timeouts.chat_idle.as_secs().to_string()),
            ("ATELIER_DISCORD_TOKEN", discord.map(|discord| redacted(&discord.token)).unwrap_or_else(unset)),
            (
                "ATELIER_DISCORD_APPLICATION_ID",
                discord.and_then(|discord| discord.application_id).map(|id| id.to_string()).unwrap_or_else(unset),
            ),
            (
                "ATELIER_DISCORD_API_URL",
                discord.and_then(|discord| discord.api_url.as_ref()).map(Url::to_string).unwrap_or_else(unset),
            ),
            (
                "ATELIER_DISCORD_GATEWAY_URL",
                discord.and_then(|discord| discord.gateway_url.as_ref()).map(Url::to_string).unwrap_or_else(unset),
            ),
            (
                "ATELIER_DISCORD_MESSAGE_CONTENT",
                discord.map(|discord| discord.message_content_intent.to_string()).unwrap_or_else(unset),
            ),
            (
                "ATELIER_DISCORD_MODERATION_CHANNEL",
                discord.and_then(|discord| discord.moderation_channel).map(|id| id.to_string()).unwrap_or_else(unset),
            ),
            ("ATELIER_MAX_RUNNING_JOBS", self.limits.max_running.to_string()),
            ("ATELIER_USER_RUNNING_JOBS", self.limits.per_user_running.to_string()),
            ("ATELIER_USER_QUEUED_JOBS", self.limits.per_user_queued.to_string()),
            ("ATELIER_SHUTDOWN_DRAIN_SECONDS", self.limits.shutdown_drain.as_secs().to_string()),
            ("ATELIER_SHUTDOWN_GRACE_SECONDS", self.limits.shutdown_grace.as_secs().to_string()),
            ("ATELIER_HEARTBEAT_SECONDS", self.limits.heartbeat.as_secs().to_string()),
            (
                "ATELIER_DAILY_IMAGE_QUOTA",
                self.limits.daily_images.map(|images| images.to_string()).unwrap_or_else(|| "0 (no limit)".into()),
            ),
            ("ATELIER_OIDC_ISSUER", oidc.map(|oidc| oidc.issuer.to_string()).unwrap_or_else(unset)),
            ("ATELIER_OIDC_CLIENT_ID", oidc.map(|oidc| oidc.client_id.clone()).unwrap_or_else(unset)),
            (
                "ATELIER_OIDC_CLIENT_SECRET",
                oidc.and_then(|oidc| oidc.client_secret.as_ref()).map(redacted).unwrap_or_else(unset),
            ),
            (
                "ATELIER_COGNITO_USER_POOL_ID",
                oidc.and_then(|oidc| oidc.cognito_user_pool_id.clone()).unwrap_or_else(unset),
            ),
            (
                "ATELIER_SESSION_SECRET",
                oidc.map(|oidc| format!("(set, {} bytes, redacted)", oidc.session_secret.expose_secret().len()))
                    .unwrap_or_else(unset),
            ),
        ]
    }

    /// Whether the web app may sign visitors in as the local operator without a password:
    /// only when no sign-in provider is configured and only on a loopback address, so that
    /// a misconfigured server on a network never hands out the operator's gallery.
    pub fn local_sign_in(&self) -> LocalSignIn {
        if self.oidc.is_some() {
            LocalSignIn::NotNeeded
        } else if self.bind.ip().is_loopback() {
            LocalSignIn::Allowed
        } else {
            LocalSignIn::RefusedOffLoopback(self.bind)
        }
    }
}

/// Whether local, password-less sign-in is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalSignIn {
    /// Loopback bind and no sign-in provider: everyone who can reach the app is the operator.
    Allowed,
    /// A sign-in provider is configured; local sign-in is off.
    NotNeeded,
    /// No sign-in provider, but the app listens beyond this machine: sign-in is refused.
    RefusedOffLoopback(SocketAddr),
}

fn missing_pair(set: &'static str, missing: &str) -> ConfigError {
    ConfigError {
        variable: set,
        value: None,
        problem: format!("is set without {missing}"),
        fix: format!("set {missing} as well, or unset {set} to use local sign-in"),
    }
}

fn parse_bind(text: Option<&str>) -> Result<SocketAddr, ConfigError> {
    let text = text.unwrap_or("127.0.0.1:8080");
    // Accept `localhost:PORT` too, as people type it; it means the IPv4 loopback here.
    let normalised = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    normalised.parse().map_err(|_| ConfigError {
        variable: "ATELIER_BIND",
        value: Some(text.into()),
        problem: "is not an address and port".into(),
        fix: "use IP:PORT, such as 127.0.0.1:8080 (or 0.0.0.0:8080 in a container)".into(),
    })
}

/// The metrics listener's address: any address and port but the web app's own, so metrics
/// are never served on the public port.
fn parse_metrics_address(text: Option<&str>, bind: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = text else { return Ok(None) };
    let normalised = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    let address: SocketAddr = normalised.parse().map_err(|_| ConfigError {
        variable: "ATELIER_METRICS_ADDRESS",
        value: Some(text.into()),
        problem: "is not an address and port".into(),
        fix: "use IP:PORT, such as 127.0.0.1:9090 (or 0.0.0.0:9090 in a container), or unset it for no metrics".into(),
    })?;
    let overlaps = address.ip() == bind.ip() || address.ip().is_unspecified() || bind.ip().is_unspecified();
    if address.port() != 0 && address.port() == bind.port() && overlaps {
        return Err(ConfigError {
            variable: "ATELIER_METRICS_ADDRESS",
            value: Some(text.into()),
            problem: format!("is the web app's own port ({bind}), where metrics would be public"),
            fix: "choose another port, such as 9090".into(),
        });
    }
    Ok(Some(address))
}

fn default_public_url(bind: SocketAddr) -> Result<Url, ConfigError> {
    let host = if bind.ip().is_unspecified() { "localhost".to_string() } else { bind.ip().to_string() };
    let host = if bind.is_ipv6() && host != "localhost" { format!("[{host}]") } else { host };
    Url::parse(&format!("http://{host}:{}/", bind.port())).map_err(|error| ConfigError {
        variable: "ATELIER_PUBLIC_URL",
        value: None,
        problem: format!("cannot be derived from ATELIER_BIND ({error})"),
        fix: "set ATELIER_PUBLIC_URL explicitly".into(),
    })
}

fn parse_http_url(variable: &'static str, text: &str, fix: &str) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(ConfigError {
            variable,
            value: Some(text.into()),
            problem: "is not an http(s) URL".into(),
            fix: fix.into(),
        }),
    }
}

fn parse_websocket_url(variable: &'static str, text: &str) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => Ok(url),
        _ => Err(ConfigError {
            variable,
            value: Some(text.into()),
            problem: "is not a WebSocket URL".into(),
            fix: "use ws://HOST:PORT/PATH or wss://HOST/PATH".into(),
        }),
    }
}

/// The session-signing key: at least 64 characters of random text (hex from `openssl rand`,
/// or the alphanumeric value Secrets Manager generates). It is stretched into the cookie key
/// with HKDF, so any text of that length and randomness serves.
fn parse_session_secret(text: Option<&str>) -> Result<SecretBox<[u8]>, ConfigError> {
    let invalid = |problem: &str| ConfigError {
        variable: "ATELIER_SESSION_SECRET",
        value: text.map(|_| "(set, redacted)".to_string()),
        problem: problem.into(),
        fix: "set it to 64 or more random characters, such as the output of `openssl rand -hex 32`, the same on \
              every replica"
            .into(),
    };
    let text = text.ok_or_else(|| invalid("is needed when sign-in is configured"))?.trim();
    if text.chars().count() < 64 {
        return Err(invalid("is shorter than 64 characters"));
    }
    if text.chars().collect::<std::collections::HashSet<_>>().len() < 8 {
        return Err(invalid("repeats too few characters to be random"));
    }
    Ok(SecretBox::new(text.as_bytes().to_vec().into_boxed_slice()))
}

/// A whole number of at least `minimum`, or `default` when unset.
fn parse_count(
    raw: &RawSettings,
    variable: &'static str,
    minimum: usize,
    default: usize,
) -> Result<usize, ConfigError> {
    match raw.get(variable) {
        None => Ok(default),
        Some(text) => text.trim().parse::<usize>().ok().filter(|count| *count >= minimum).ok_or_else(|| ConfigError {
            variable,
            value: Some(text.into()),
            problem: format!("is not a whole number of at least {minimum}"),
            fix: format!("use a whole number such as {default}"),
        }),
    }
}

/// A whole number of seconds from 1 to an hour, or `default` when unset: a timeout of zero
/// would fail every call, and one past an hour is no longer a bound anyone would wait out.
fn parse_seconds(raw: &RawSettings, variable: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    match raw.get(variable) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|seconds| (1..=3600).contains(seconds))
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError {
                variable,
                value: Some(text.into()),
                problem: "is not a whole number of seconds from 1 to 3600".into(),
                fix: format!("use a whole number such as {}", default.as_secs()),
            }),
    }
}

fn parse_flag(raw: &RawSettings, variable: &'static str) -> Result<bool, ConfigError> {
    match raw.get(variable).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError {
            variable,
            value: Some(other.into()),
            problem: "is not true or false".into(),
            fix: "use true or false".into(),
        }),
    }
}

fn parse_store(text: Option<&str>) -> Result<StoreLocation, ConfigError> {
    let text = text.unwrap_or("file://./atelier-data");
    let invalid = |problem: &str| ConfigError {
        variable: "ATELIER_STORE",
        value: Some(text.into()),
        problem: problem.into(),
        fix: "use file://PATH (such as file://./atelier-data) or s3://BUCKET[/PREFIX]".into(),
    };
    if let Some(path) = text.strip_prefix("file://") {
        if path.is_empty() {
            return Err(invalid("names no folder"));
        }
        return Ok(StoreLocation::Folder(PathBuf::from(path)));
    }
    if let Some(rest) = text.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        // S3's bucket naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens.
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(ConfigError {
                variable: "ATELIER_STORE",
                value: Some(text.into()),
                problem: format!("`{bucket}` is not a valid S3 bucket name"),
                fix: "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens".into(),
            });
        }
        return Ok(StoreLocation::S3 {
            bucket: bucket.into(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
        });
    }
    Err(invalid("is not a store location"))
}

#[cfg(test)]
mod tests;
