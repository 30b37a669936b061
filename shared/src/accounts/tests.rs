use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

use super::*;
use crate::store::folder::FolderStore;

/// A directory that remembers what it was told.
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, Option<u64>)>>);

#[async_trait]
impl AccountDirectory for Recorded {
    async fn record_discord_id(&self, username: &str, discord_user_id: Option<u64>) -> Result<()> {
        self.0.lock().unwrap().push((username.to_string(), discord_user_id));
        Ok(())
    }
}

struct Fixture {
    _folder: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    directory: Arc<Recorded>,
    accounts: Accounts,
    /// Seconds added to the real time.
    offset: Arc<AtomicI64>,
}

async fn fixture() -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::open(folder.path()).await.unwrap());
    let directory = Arc::new(Recorded::default());
    let offset = Arc::new(AtomicI64::new(0));
    let clock_offset = offset.clone();
    let accounts = Accounts::new(store.clone(), directory.clone(), &Url::parse("https://atelier.example").unwrap())
        .with_clock(move || OffsetDateTime::now_utc() + Duration::seconds(clock_offset.load(Ordering::SeqCst)));
    Fixture { _folder: folder, store, directory, accounts, offset }
}

fn user(subject: &str) -> SignedInUser {
    SignedInUser {
        discord: None,
        subject: subject.into(),
        username: format!("user-{subject}"),
        email: None,
        name: None,
        owner: Owner::web_account(subject).unwrap(),
    }
}

fn user_message(error: Error) -> String {
    assert!(error.is_user_error(), "expected a user error, got {error:?}");
    error.user_message()
}

#[tokio::test]
async fn a_token_is_random_hashed_at_rest_and_in_a_link_url() {
    let fixture = fixture().await;
    let first = fixture.accounts.issue_link(7).await.unwrap();
    let second = fixture.accounts.issue_link(7).await.unwrap();
    assert_ne!(first.token(), second.token());
    assert_eq!(first.token().len(), 43);
    assert_eq!(first.url().as_str(), format!("https://atelier.example/link?token={}", first.token()));
    assert!(!format!("{first:?}").contains(first.token()));

    let keys = fixture.store.list("links/tokens/", None, 10).await.unwrap();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        assert!(!key.as_str().contains(first.token()) && !key.as_str().contains(second.token()));
        let body = fixture.store.get(key).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains(first.token()) && !text.contains(second.token()), "{text}");
    }
    let offer = fixture.accounts.preview_link(first.token()).await.unwrap();
    assert_eq!(offer.discord_user_id, 7);
    assert_eq!(offer.expires_at, first.expires_at());
}

#[tokio::test]
async fn a_refused_link_does_not_use_the_token_up() {
    let fixture = fixture().await;
    let first = fixture.accounts.issue_link(7).await.unwrap();
    fixture.accounts.consume_link(first.token(), &user("alice")).await.unwrap();

    let second = fixture.accounts.issue_link(7).await.unwrap();
    let refused = fixture.accounts.consume_link(second.token(), &user("bob")).await.unwrap_err();
    assert!(user_message(refused).contains("already linked to another web account"));
    // Once alice unlinks, bob can still use the same token.
    fixture.accounts.unlink_from_web(&user("alice").owner).await.unwrap();
    let linked = fixture.accounts.consume_link(second.token(), &user("bob")).await.unwrap();
    assert_eq!(linked.link.owner, user("bob").owner);
    assert_eq!(
        *fixture.directory.0.lock().unwrap(),
        vec![("user-alice".to_string(), Some(7)), ("user-alice".to_string(), None), ("user-bob".to_string(), Some(7))]
    );
}

#[tokio::test]
async fn a_web_account_links_one_discord_account() {
    let fixture = fixture().await;
    let seven = fixture.accounts.issue_link(7).await.unwrap();
    fixture.accounts.consume_link(seven.token(), &user("alice")).await.unwrap();
    let eight = fixture.accounts.issue_link(8).await.unwrap();
    let refused = fixture.accounts.consume_link(eight.token(), &user("alice")).await.unwrap_err();
    assert!(user_message(refused).contains("already linked to another Discord account"));
    assert_eq!(fixture.accounts.owner_for_discord(8).await.unwrap(), Owner::discord(8));
}

#[tokio::test]
async fn linking_the_same_accounts_again_finishes_an_interrupted_link() {
    let fixture = fixture().await;
    let first = fixture.accounts.issue_link(7).await.unwrap();
    let linked = fixture.accounts.consume_link(first.token(), &user("alice")).await.unwrap();
    let again = fixture.accounts.issue_link(7).await.unwrap();
    let relinked = fixture.accounts.consume_link(again.token(), &user("alice")).await.unwrap();
    assert_eq!(relinked.link, linked.link, "the first link's record stands");
}

#[tokio::test]
async fn a_record_left_by_an_interrupted_unlink_blocks_nothing() {
    let fixture = fixture().await;
    let first = fixture.accounts.issue_link(7).await.unwrap();
    fixture.accounts.consume_link(first.token(), &user("alice")).await.unwrap();
    // The unlink stopped after removing the authoritative Discord-side record.
    fixture.store.delete(&discord_key(7).unwrap()).await.unwrap();
    assert_eq!(fixture.accounts.link_for_web(&user("alice").owner).await.unwrap(), None);

    let eight = fixture.accounts.issue_link(8).await.unwrap();
    let linked = fixture.accounts.consume_link(eight.token(), &user("alice")).await.unwrap();
    assert_eq!(fixture.accounts.link_for_web(&user("alice").owner).await.unwrap(), Some(linked.link));
}

#[tokio::test]
async fn tokens_that_are_forged_expired_or_used_are_refused_in_words() {
    let fixture = fixture().await;
    for forged in ["", "short", &"A".repeat(43), &"é".repeat(43)] {
        let refused = fixture.accounts.consume_link(forged, &user("alice")).await.unwrap_err();
        assert!(user_message(refused).starts_with("this link is not valid"), "{forged:?}");
    }
    let token = fixture.accounts.issue_link(7).await.unwrap();
    fixture.offset.store(10 * 60, Ordering::SeqCst);
    let expired = fixture.accounts.preview_link(token.token()).await.unwrap_err();
    assert_eq!(user_message(expired), "this link has expired: run /link in Discord again");
    fixture.offset.store(0, Ordering::SeqCst);
    fixture.accounts.consume_link(token.token(), &user("alice")).await.unwrap();
    let used = fixture.accounts.preview_link(token.token()).await.unwrap_err();
    assert_eq!(user_message(used), "this link was already used: run /link again");
}

#[tokio::test]
async fn unlinking_what_is_not_linked_says_so() {
    let fixture = fixture().await;
    let error = fixture.accounts.unlink_from_discord(7).await.unwrap_err();
    assert!(user_message(error).contains("not linked"));
    let error = fixture.accounts.unlink_from_web(&user("alice").owner).await.unwrap_err();
    assert!(user_message(error).contains("not linked"));
}
