//! The safety gate every generation and edit passes before any image model is called:
//! a cheap local rule list, then a Bedrock Guardrail when one is configured, then a fast
//! classifier. The guardrail reads every request; the classifier's verdicts are remembered per
//! normalised prompt, so asking twice costs once. A block can be appealed (once per person and
//! text, kept in the store by the core); the appeal goes to a stronger model.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::Result;

/// Which check refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    LocalRules,
    Guardrail,
    Classifier,
    Appeal,
    /// The image model's own content filter (the model ran).
    ModelFilter,
}

impl fmt::Display for Checker {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::LocalRules => "Atelier's rules",
            Self::Guardrail => "the guardrail",
            Self::Classifier => "the safety check",
            Self::Appeal => "the appeal review",
            Self::ModelFilter => "the model's content filter",
        })
    }
}

/// Why a prompt was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub category: String,
    pub reason: String,
    pub by: Checker,
}

/// Who may see what a prompt makes, which sets how strict the gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Audience {
    /// The community's policy as its operator set it: the web, the CLI, direct messages and
    /// a Discord server's age-restricted channels.
    #[default]
    Standard,
    /// A Discord server's channel that is not marked age-restricted, on a server that asks
    /// for the stricter policy there: anyone of any age may be reading.
    AllAges,
}

/// A safety verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Blocked(Refusal),
}

/// One model-backed check (the guardrail, the classifier, the appeal reviewer).
#[async_trait]
pub trait SafetyCheck: Send + Sync + 'static {
    /// Whether `text` may be drawn for `audience`. A check with no stricter setting may treat
    /// both audiences alike (the operator's guardrail does).
    async fn check(&self, text: &str, audience: Audience) -> Result<Verdict>;

    /// Whether the gate may remember this check's verdict for a text and not ask again. A
    /// guardrail says no: it is the operator's policy, cheap to ask, and may change, so it
    /// reads every request; a model classifier's verdict is remembered.
    fn remembered(&self) -> bool {
        true
    }
}

/// The most verdicts kept; the cache starts over when it is full, which is simple and bounded.
const CACHE_LIMIT: usize = 10_000;

/// The gate; see the module documentation.
pub struct SafetyGate {
    blocked_terms: Vec<String>,
    checks: Vec<Arc<dyn SafetyCheck>>,
    appeal_reviewer: Option<Arc<dyn SafetyCheck>>,
    /// Remembered verdicts, by the check's place in `checks`, the audience and the
    /// normalised text: a prompt allowed for the standard audience may be refused for all ages.
    cache: Mutex<HashMap<(usize, Audience, String), Verdict>>,
}

/// Lower case with runs of white space folded, so trivial variations share one verdict.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl SafetyGate {
    pub fn new(
        blocked_terms: Vec<String>,
        checks: Vec<Arc<dyn SafetyCheck>>,
        appeal_reviewer: Option<Arc<dyn SafetyCheck>>,
    ) -> Self {
        let blocked_terms = blocked_terms.iter().map(|term| normalise(term)).filter(|term| !term.is_empty()).collect();
        Self { blocked_terms, checks, appeal_reviewer, cache: Mutex::default() }
    }

    fn local_rules(&self, normalised: &str) -> Option<Refusal> {
        self.blocked_terms.iter().find(|term| normalised.contains(term.as_str())).map(|term| Refusal {
            category: "blocked term".into(),
            reason: format!("the prompt contains \"{term}\", which this community does not allow"),
            by: Checker::LocalRules,
        })
    }

    fn cached(&self, check: usize, audience: Audience, normalised: &str) -> Option<Verdict> {
        self.cache.lock().ok().and_then(|cache| cache.get(&(check, audience, normalised.to_string())).cloned())
    }

    fn remember(&self, check: usize, audience: Audience, normalised: &str, verdict: &Verdict) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert((check, audience, normalised.to_string()), verdict.clone());
        }
    }

    /// Checks text before it reaches an image model, for the audience that will see it.
    pub async fn check(&self, text: &str, audience: Audience) -> Result<Verdict> {
        let normalised = normalise(text);
        if let Some(refusal) = self.local_rules(&normalised) {
            return Ok(Verdict::Blocked(refusal));
        }
        let mut verdict = Verdict::Allowed;
        for (place, check) in self.checks.iter().enumerate() {
            verdict = match check.remembered().then(|| self.cached(place, audience, &normalised)).flatten() {
                Some(verdict) => verdict,
                None => {
                    let verdict = check.check(text, audience).await?;
                    if check.remembered() {
                        self.remember(place, audience, &normalised, &verdict);
                    }
                    verdict
                }
            };
            if matches!(verdict, Verdict::Blocked(_)) {
                break;
            }
        }
        Ok(verdict)
    }

    /// Whether a refusal may be appealed: only the classifier's (not the community's own list,
    /// not the operator's guardrail), and only when a reviewer is configured.
    pub fn is_appealable(&self, refusal: &Refusal) -> bool {
        matches!(refusal.by, Checker::Classifier) && self.appeal_reviewer.is_some()
    }

    /// The appeal review: a stronger model reads a refused text once more. Its verdict is for
    /// the one request appealed (the caller lets that job through) and is never cached for
    /// others: an appeal must not open a prompt to everyone. Whether this person may appeal
    /// this text (a refusal on record, not appealed before) is the core's to decide, in the
    /// store, before asking. The community's own list cannot be appealed, and the reviewer
    /// judges for the same audience the refusal was made for.
    pub async fn review(&self, text: &str, audience: Audience) -> Result<Verdict> {
        let normalised = normalise(text);
        if let Some(refusal) = self.local_rules(&normalised) {
            return Ok(Verdict::Blocked(Refusal {
                reason: format!("{}; blocks by the community's own rules cannot be appealed", refusal.reason),
                ..refusal
            }));
        }
        let Some(reviewer) = &self.appeal_reviewer else {
            return Err(crate::Error::Blocked(crate::error::Refused::appeal_not_possible(
                "appeals need a model, and none is configured",
            )));
        };
        // The operator's guardrail reads the appealed text too: the reviewer stands in for the
        // classifier, never for the operator's policy.
        for check in self.checks.iter().filter(|check| !check.remembered()) {
            if let Verdict::Blocked(refusal) = check.check(text, audience).await? {
                return Ok(Verdict::Blocked(refusal));
            }
        }
        Ok(match reviewer.check(text, audience).await? {
            Verdict::Blocked(refusal) => Verdict::Blocked(Refusal { by: Checker::Appeal, ..refusal }),
            Verdict::Allowed => Verdict::Allowed,
        })
    }
}

#[cfg(test)]
mod tests;
