//! The safety gate every generation and edit passes before any image model is called:
//! a cheap local rule list, then a Bedrock Guardrail when one is configured, then a fast
//! classifier. A block can be appealed (once per person and text, kept in the store by the
//! core); the appeal goes to a stronger model. Verdicts are cached per normalised prompt, so asking twice costs once.

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

/// A safety verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Blocked(Refusal),
}

/// One model-backed check (the guardrail, the classifier, the appeal reviewer).
#[async_trait]
pub trait SafetyCheck: Send + Sync + 'static {
    async fn check(&self, text: &str) -> Result<Verdict>;
}

/// The most verdicts kept; the cache starts over when it is full, which is simple and bounded.
const CACHE_LIMIT: usize = 10_000;

/// The gate; see the module documentation.
pub struct SafetyGate {
    blocked_terms: Vec<String>,
    checks: Vec<Arc<dyn SafetyCheck>>,
    appeal_reviewer: Option<Arc<dyn SafetyCheck>>,
    cache: Mutex<HashMap<String, Verdict>>,
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

    fn cached(&self, normalised: &str) -> Option<Verdict> {
        self.cache.lock().ok().and_then(|cache| cache.get(normalised).cloned())
    }

    fn remember(&self, normalised: String, verdict: &Verdict) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(normalised, verdict.clone());
        }
    }

    /// Checks text before it reaches an image model.
    pub async fn check(&self, text: &str) -> Result<Verdict> {
        let normalised = normalise(text);
        if let Some(refusal) = self.local_rules(&normalised) {
            return Ok(Verdict::Blocked(refusal));
        }
        if let Some(verdict) = self.cached(&normalised) {
            return Ok(verdict);
        }
        let mut verdict = Verdict::Allowed;
        for check in &self.checks {
            verdict = check.check(text).await?;
            if matches!(verdict, Verdict::Blocked(_)) {
                break;
            }
        }
        self.remember(normalised, &verdict);
        Ok(verdict)
    }

    /// Whether a refusal may be appealed: not the community's own list, and only when a
    /// reviewer is configured.
    pub fn is_appealable(&self, refusal: &Refusal) -> bool {
        refusal.by != Checker::LocalRules && refusal.by != Checker::Appeal && self.appeal_reviewer.is_some()
    }

    /// The appeal review: a stronger model reads a refused text once more. Its verdict is for
    /// the one request appealed (the caller lets that job through) and is never cached for
    /// others: an appeal must not open a prompt to everyone. Whether this person may appeal
    /// this text (a refusal on record, not appealed before) is the core's to decide, in the
    /// store, before asking. The community's own list cannot be appealed.
    pub async fn review(&self, text: &str) -> Result<Verdict> {
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
        Ok(match reviewer.check(text).await? {
            Verdict::Blocked(refusal) => Verdict::Blocked(Refusal { by: Checker::Appeal, ..refusal }),
            Verdict::Allowed => Verdict::Allowed,
        })
    }
}

#[cfg(test)]
mod tests;
