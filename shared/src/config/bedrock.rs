//! What the Bedrock engine and its Claude models need: which models chat and classify, how
//! prompts are checked for safety, and how long model calls may take. Read by the Bedrock
//! adapter and the safety gate.

use std::time::Duration;

use super::parse::{parse_seconds, unset};
use super::{Config, ConfigError, RawSettings};

/// Refused before any model is asked: requests for sexual content involving minors, which no
/// deployment wants and no appeal should reach a model with. Operators extend the list with
/// `ATELIER_BLOCKED_TERMS`.
pub const DEFAULT_BLOCKED_TERMS: &[&str] = &["child porn", "csam", "underage nude", "underage sex", "loli hentai"];

/// The default chat model: a current Claude through the US cross-region inference profile.
pub const DEFAULT_CHAT_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// The default classifier: a fast Claude through the US cross-region inference profile.
pub const DEFAULT_CLASSIFIER_MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// The longest one attempt at a text call answered in one piece may take: a critique of a
/// thousand tokens takes Claude well under half a minute.
pub const TEXT_ATTEMPT_CAP: Duration = Duration::from_secs(45);

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

impl Default for ModelTimeouts {
    fn default() -> Self {
        Self { attempt: Duration::from_secs(90), chat_idle: Duration::from_secs(30) }
    }
}

pub(super) fn read(raw: &RawSettings) -> Result<BedrockSettings, ConfigError> {
    Ok(BedrockSettings {
        chat_model: raw.get("ATELIER_CHAT_MODEL").unwrap_or(DEFAULT_CHAT_MODEL).to_string(),
        classifier_model: raw.get("ATELIER_CLASSIFIER_MODEL").unwrap_or(DEFAULT_CLASSIFIER_MODEL).to_string(),
        guardrail: read_guardrail(raw)?,
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
    })
}

/// The guardrail as (identifier, version); a version without an identifier is a mistake.
fn read_guardrail(raw: &RawSettings) -> Result<Option<(String, String)>, ConfigError> {
    match (raw.get("ATELIER_GUARDRAIL_ID"), raw.get("ATELIER_GUARDRAIL_VERSION")) {
        (Some(id), version) => Ok(Some((id.to_string(), version.unwrap_or("DRAFT").to_string()))),
        (None, Some(version)) => Err(ConfigError {
            variable: "ATELIER_GUARDRAIL_VERSION",
            value: Some(version.into()),
            problem: "is set without ATELIER_GUARDRAIL_ID".into(),
            fix: "set ATELIER_GUARDRAIL_ID too, or unset it".into(),
        }),
        (None, None) => Ok(None),
    }
}

pub(super) fn describe(config: &Config) -> Vec<(&'static str, String)> {
    let bedrock = &config.bedrock;
    vec![
        ("ATELIER_CHAT_MODEL", bedrock.chat_model.clone()),
        ("ATELIER_CLASSIFIER_MODEL", bedrock.classifier_model.clone()),
        (
            "ATELIER_GUARDRAIL_ID",
            bedrock.guardrail.as_ref().map(|(id, version)| format!("{id} (version {version})")).unwrap_or_else(unset),
        ),
        ("ATELIER_BLOCKED_TERMS", format!("{} terms", bedrock.blocked_terms.len())),
        ("ATELIER_MODEL_TIMEOUT_SECONDS", bedrock.timeouts.attempt.as_secs().to_string()),
        ("ATELIER_CHAT_IDLE_TIMEOUT_SECONDS", bedrock.timeouts.chat_idle.as_secs().to_string()),
    ]
}
