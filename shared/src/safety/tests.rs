use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A check that blocks texts containing a word, and counts its calls.
struct Counting {
    word: &'static str,
    calls: AtomicUsize,
}

#[async_trait]
impl SafetyCheck for Counting {
    async fn check(&self, text: &str) -> Result<Verdict> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(if text.contains(self.word) {
            Verdict::Blocked(Refusal {
                category: "violence".into(),
                reason: "too gory".into(),
                by: Checker::Classifier,
            })
        } else {
            Verdict::Allowed
        })
    }
}

fn counting(word: &'static str) -> Arc<Counting> {
    Arc::new(Counting { word, calls: AtomicUsize::new(0) })
}

#[tokio::test]
async fn local_rules_refuse_before_any_model_is_asked() {
    let classifier = counting("never");
    let gate = SafetyGate::new(vec!["Forbidden Thing".into()], vec![classifier.clone()], None);
    let verdict = gate.check("a   FORBIDDEN thing in a field").await.unwrap();
    assert!(matches!(verdict, Verdict::Blocked(Refusal { by: Checker::LocalRules, .. })), "{verdict:?}");
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn verdicts_are_cached_per_normalised_prompt() {
    let classifier = counting("gore");
    let gate = SafetyGate::new(vec![], vec![classifier.clone()], None);
    assert_eq!(gate.check("a cat").await.unwrap(), Verdict::Allowed);
    assert_eq!(gate.check("  A   Cat ").await.unwrap(), Verdict::Allowed);
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_first_blocking_check_wins() {
    let guardrail = counting("gore");
    let classifier = counting("never");
    let gate = SafetyGate::new(vec![], vec![guardrail.clone(), classifier.clone()], None);
    assert!(matches!(gate.check("gore").await.unwrap(), Verdict::Blocked(_)));
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 0, "the classifier should not be asked after a block");
}

#[tokio::test]
async fn the_review_decides_an_appeal_for_that_request_alone() {
    let classifier = counting("gore");
    let reviewer = counting("never");
    let gate = SafetyGate::new(vec!["csam".into()], vec![classifier.clone()], Some(reviewer.clone()));
    assert!(matches!(gate.check("stage gore makeup").await.unwrap(), Verdict::Blocked(_)));
    assert_eq!(gate.review("stage gore makeup").await.unwrap(), Verdict::Allowed);
    // The reviewer's word is not remembered for everyone: the prompt is refused as before.
    assert!(matches!(gate.check("stage gore makeup").await.unwrap(), Verdict::Blocked(_)));
    // The community's own list cannot be appealed away, and costs the reviewer nothing.
    let local = gate.review("csam").await.unwrap();
    assert!(matches!(local, Verdict::Blocked(Refusal { by: Checker::LocalRules, .. })));
    assert_eq!(reviewer.calls.load(Ordering::SeqCst), 1);
    // Without a reviewer there is no appeal.
    let unreviewed = SafetyGate::new(vec![], vec![classifier], None);
    assert!(unreviewed.review("stage gore makeup").await.unwrap_err().to_string().contains("appeals need a model"));
}
