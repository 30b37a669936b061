use super::*;
use crate::config::{Config, RawSettings};
use crate::startup::{self, AwsSetup};

/// A core on the demo engine whose store is the folder `store`, as one replica would be.
async fn replica(store: &std::path::Path, own: &std::path::Path) -> Atelier {
    std::fs::write(own.join("none.toml"), "").unwrap();
    let variables = [
        ("ATELIER_STORE", format!("file://{}", store.display())),
        ("ATELIER_ENGINE", "demo".to_string()),
        ("ATELIER_SPOOL_DIR", own.join("spool").display().to_string()),
        ("ATELIER_CONFIG", own.join("none.toml").display().to_string()),
    ];
    let variables = variables.into_iter().map(|(name, value)| (name.to_string(), value));
    let config = Config::from_raw(&RawSettings::from_variables(variables).unwrap()).unwrap();
    startup::build(&config, &AwsSetup::default()).await.unwrap().0
}

#[tokio::test]
async fn only_the_first_claim_of_an_id_wins_across_replicas_sharing_a_store() {
    let store = tempfile::tempdir().unwrap();
    let (first_own, second_own) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = replica(store.path(), first_own.path()).await;
    let second = replica(store.path(), second_own.path()).await;
    for round in 0..20 {
        let id = format!("1300000000000000{round:03}");
        let (one, other) =
            tokio::join!(first.claim_once(ClaimKind::ChatMessage, &id), second.claim_once(ClaimKind::ChatMessage, &id));
        assert!(one.unwrap() ^ other.unwrap(), "round {round}: exactly one replica claims the message");
        assert!(!first.claim_once(ClaimKind::ChatMessage, &id).await.unwrap(), "a claim is taken once for good");
    }
    assert!(store.path().join("claims/chat-messages/1300000000000000000.json").exists());
}

#[tokio::test]
async fn an_id_that_is_not_a_plain_key_segment_is_refused() {
    let store = tempfile::tempdir().unwrap();
    let own = tempfile::tempdir().unwrap();
    let core = replica(store.path(), own.path()).await;
    assert!(core.claim_once(ClaimKind::ChatMessage, "../escape").await.is_err());
}
