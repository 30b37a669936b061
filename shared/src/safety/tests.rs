use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A check that blocks texts containing a word (for all ages, also a second word), and
/// counts its calls.
struct Counting {
    word: &'static str,
    not_for_all_ages: Option<&'static str>,
    calls: AtomicUsize,
}

#[async_trait]
impl SafetyCheck for Counting {
    async fn check(&self, text: &str, audience: Audience) -> Result<Verdict> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let stricter = audience == Audience::AllAges && self.not_for_all_ages.is_some_and(|word| text.contains(word));
        Ok(if text.contains(self.word) || stricter {
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
    Arc::new(Counting { word, not_for_all_ages: None, calls: AtomicUsize::new(0) })
}

#[tokio::test]
async fn local_rules_refuse_before_any_model_is_asked() {
    let classifier = counting("never");
    let gate = SafetyGate::new(vec!["Forbidden Thing".into()], vec![classifier.clone()], None);
    let verdict = gate.check("a   FORBIDDEN thing in a field", Audience::Standard).await.unwrap();
    assert!(matches!(verdict, Verdict::Blocked(Refusal { by: Checker::LocalRules, .. })), "{verdict:?}");
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn verdicts_are_cached_per_normalised_prompt() {
    let classifier = counting("gore");
    let gate = SafetyGate::new(vec![], vec![classifier.clone()], None);
    assert_eq!(gate.check("a cat", Audience::Standard).await.unwrap(), Verdict::Allowed);
    assert_eq!(gate.check("  A   Cat ", Audience::Standard).await.unwrap(), Verdict::Allowed);
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_first_blocking_check_wins() {
    let guardrail = counting("gore");
    let classifier = counting("never");
    let gate = SafetyGate::new(vec![], vec![guardrail.clone(), classifier.clone()], None);
    assert!(matches!(gate.check("gore", Audience::Standard).await.unwrap(), Verdict::Blocked(_)));
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 0, "the classifier should not be asked after a block");
}

#[tokio::test]
async fn the_review_decides_an_appeal_for_that_request_alone() {
    let classifier = counting("gore");
    let reviewer = counting("never");
    let gate = SafetyGate::new(vec!["csam".into()], vec![classifier.clone()], Some(reviewer.clone()));
    assert!(matches!(gate.check("stage gore makeup", Audience::Standard).await.unwrap(), Verdict::Blocked(_)));
    assert_eq!(gate.review("stage gore makeup", Audience::Standard).await.unwrap(), Verdict::Allowed);
    // The reviewer's word is not remembered for everyone: the prompt is refused as before.
    assert!(matches!(gate.check("stage gore makeup", Audience::Standard).await.unwrap(), Verdict::Blocked(_)));
    // The community's own list cannot be appealed away, and costs the reviewer nothing.
    let local = gate.review("csam", Audience::Standard).await.unwrap();
    assert!(matches!(local, Verdict::Blocked(Refusal { by: Checker::LocalRules, .. })));
    assert_eq!(reviewer.calls.load(Ordering::SeqCst), 1);
    // Without a reviewer there is no appeal.
    let unreviewed = SafetyGate::new(vec![], vec![classifier], None);
    assert!(
        unreviewed
            .review("stage gore makeup", Audience::Standard)
            .await
            .unwrap_err()
            .to_string()
            .contains("appeals need a model")
    );
}

/// A prompt allowed for the standard audience is asked again for all ages (the verdict is
/// remembered per audience), and the stricter verdict holds there alone.
#[tokio::test]
async fn verdicts_are_kept_per_audience() {
    let classifier = Arc::new(Counting { word: "gore", not_for_all_ages: Some("nude"), calls: AtomicUsize::new(0) });
    let gate = SafetyGate::new(vec![], vec![classifier.clone()], None);
    assert_eq!(gate.check("a nude study in charcoal", Audience::Standard).await.unwrap(), Verdict::Allowed);
    let all_ages = gate.check("a nude study in charcoal", Audience::AllAges).await.unwrap();
    assert!(matches!(all_ages, Verdict::Blocked(Refusal { by: Checker::Classifier, .. })), "{all_ages:?}");
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 2, "the all-ages check reused the standard verdict");
    // Each verdict is remembered for its own audience.
    assert_eq!(gate.check("a nude study in charcoal", Audience::Standard).await.unwrap(), Verdict::Allowed);
    assert!(matches!(gate.check("A nude study in charcoal", Audience::AllAges).await.unwrap(), Verdict::Blocked(_)));
    assert_eq!(classifier.calls.load(Ordering::SeqCst), 2);
}
