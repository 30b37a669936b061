use time::OffsetDateTime;

use super::*;
use crate::engine::EngineKind;
use crate::engine::demo::DemoEngine;
use crate::engine::{ImageEngine, SafetyOutcome};
use crate::error::Error;
use crate::images::{CheckedImage, make_thumbnail};
use crate::request::{GenerationRequest, Prompt, Seed, Shape, Size};
use crate::store::folder::FolderStore;

async fn gallery() -> (tempfile::TempDir, Gallery) {
    let folder = tempfile::tempdir().unwrap();
    let store = FolderStore::open(folder.path()).await.unwrap();
    (folder, Gallery::new(Arc::new(store)))
}

async fn image() -> CheckedImage {
    let request = GenerationRequest {
        guidance: Default::default(),
        shape: Shape::Size(Size { width: 128, height: 128 }),
        ..GenerationRequest::from_prompt(Prompt::parse("a pebble").unwrap())
    };
    DemoEngine.generate(&request).await.unwrap().images.remove(0).image
}

fn record(owner: &Owner, image: &CheckedImage, origin: Origin, session: Option<&str>) -> ImageRecord {
    ImageRecord {
        id: ImageId::new(),
        owner: owner.clone(),
        prompt: Some("a pebble".into()),
        negative_prompt: None,
        model_id: "atelier.demo".into(),
        model_family: "demo".into(),
        engine: EngineKind::Demo,
        parameters: Parameters::default(),
        seed: Seed(1),
        size: image.size(),
        created_at: OffsetDateTime::now_utc(),
        safety: SafetyOutcome::NotChecked,
        parent: None,
        origin,
        session: session.map(|name| SessionName::parse(name).unwrap()),
        media_type: image.media_type().into(),
        extension: image.extension().into(),
    }
}

#[tokio::test]
async fn images_are_kept_whole_and_listed_newest_first_across_pages() {
    let (_folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let record = record(&owner, &image, Origin::Cli, None);
        gallery.save(&record, &image).await.unwrap();
        ids.push(record.id);
    }
    ids.reverse();

    let first = gallery.list(&owner, &ListFilter::default(), None, 2).await.unwrap();
    let second = gallery.list(&owner, &ListFilter::default(), first.next_cursor.as_deref(), 2).await.unwrap();
    let third = gallery.list(&owner, &ListFilter::default(), second.next_cursor.as_deref(), 2).await.unwrap();
    let listed: Vec<ImageId> =
        [&first, &second, &third].iter().flat_map(|page| page.records.iter().map(|record| record.id)).collect();
    assert_eq!(listed, ids);
    assert!(third.next_cursor.is_none());

    let (bytes, media_type) = gallery.image(&owner, ids[0], Variant::Full).await.unwrap();
    assert_eq!(&bytes, image.bytes(), "the bytes must be kept exactly as the engine made them");
    assert_eq!(media_type, "image/png");
    let (thumbnail, media_type) = gallery.image(&owner, ids[0], Variant::Thumbnail).await.unwrap();
    assert_eq!(media_type, "image/jpeg");
    assert!(thumbnail.len() < bytes.len());
}

#[test]
fn only_a_discord_owner_names_a_discord_user() {
    assert_eq!(Owner::discord(42).discord_user_id(), Some(42));
    for other in ["web-42", "local-operator", "discord-", "discord-042", "discord-x", "discord-42-x"] {
        assert_eq!(Owner::parse(other).unwrap().discord_user_id(), None, "{other}");
    }
}

#[tokio::test]
async fn owners_see_only_their_own_images() {
    let (_folder, gallery) = gallery().await;
    let image = image().await;
    let mine = record(&Owner::discord(42), &image, Origin::Cli, None);
    gallery.save(&mine, &image).await.unwrap();
    let stranger = Owner::discord(43);
    assert!(gallery.list(&stranger, &ListFilter::default(), None, 10).await.unwrap().records.is_empty());
    let refused = gallery.image(&stranger, mine.id, Variant::Full).await.unwrap_err();
    assert!(matches!(refused, Error::NotFound(_)), "{refused:?}");
}

#[tokio::test]
async fn listings_filter_by_session_and_origin() {
    let (_folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let discord = Origin::Discord { guild_id: Some(1), channel_id: 2, message_id: Some(3) };
    for (origin, session) in [(Origin::Web, Some("castles")), (discord, None), (Origin::Web, None)] {
        gallery.save(&record(&owner, &image, origin, session), &image).await.unwrap();
    }
    let castles = ListFilter { session: Some(SessionName::parse("castles").unwrap()), origin: None };
    assert_eq!(gallery.list(&owner, &castles, None, 10).await.unwrap().records.len(), 1);
    let from_discord = ListFilter { session: None, origin: Some(OriginKind::Discord) };
    let listed = gallery.list(&owner, &from_discord, None, 10).await.unwrap().records;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].origin.kind(), OriginKind::Discord);
}

#[tokio::test]
async fn deleting_removes_every_part_and_lineage_is_found() {
    let (folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let parent = record(&owner, &image, Origin::Web, None);
    gallery.save(&parent, &image).await.unwrap();
    let child = ImageRecord { parent: Some(parent.id), ..record(&owner, &image, Origin::Web, None) };
    gallery.save(&child, &image).await.unwrap();
    let children = gallery.children(&owner, parent.id).await.unwrap();
    assert_eq!(children.iter().map(|record| record.id).collect::<Vec<_>>(), [child.id]);

    gallery.delete(&owner, child.id).await.unwrap();
    gallery.delete(&owner, parent.id).await.unwrap();
    assert!(gallery.list(&owner, &ListFilter::default(), None, 10).await.unwrap().records.is_empty());
    // Only the gallery's own mark that it is indexed stays: no part of either image, and no
    // index entry.
    let left = gallery.store().list("users/", None, 100).await.unwrap();
    let left: Vec<&str> = left.iter().map(|key| key.as_str()).collect();
    assert_eq!(left, ["users/local-operator/index/built.json"], "files left behind in {}", folder.path().display());
}

#[tokio::test]
async fn a_broken_cursor_is_a_user_error() {
    let (_folder, gallery) = gallery().await;
    let refusal =
        gallery.list(&Owner::local_operator(), &ListFilter::default(), Some("nonsense"), 10).await.unwrap_err();
    assert!(refusal.is_user_error());
}

#[tokio::test]
async fn an_image_saved_in_two_steps_is_listed_at_once_and_its_thumbnail_follows() {
    let (_folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let expected = make_thumbnail(&image.decode().unwrap()).unwrap();
    let thumbnail_key = |record: &ImageRecord| Gallery::thumbnail_key(&owner, record.id).unwrap();

    let filed_later = record(&owner, &image, Origin::Cli, None);
    assert_eq!(gallery.save_image(&filed_later, &image).await.unwrap(), Saved::Stored);
    let stored = gallery.store().get(&Gallery::image_key(&owner, filed_later.id, "png").unwrap()).await.unwrap();
    assert_eq!(&stored, image.bytes(), "the bytes are stored by the first step");
    let listed = gallery.list(&owner, &ListFilter::default(), None, 10).await.unwrap();
    assert_eq!(listed.records.iter().map(|listed| listed.id).collect::<Vec<_>>(), vec![filed_later.id]);
    assert!(gallery.store().get(&thumbnail_key(&filed_later)).await.is_err(), "no thumbnail before the second step");
    gallery.file(&filed_later, &image).await.unwrap();
    assert_eq!(gallery.store().get(&thumbnail_key(&filed_later)).await.unwrap(), expected);

    // Asked for before the second step (or after its process stopped): made on the spot and kept.
    let never_filed = record(&owner, &image, Origin::Cli, None);
    gallery.save_image(&never_filed, &image).await.unwrap();
    let (thumbnail, media_type) = gallery.image(&owner, never_filed.id, Variant::Thumbnail).await.unwrap();
    assert_eq!((thumbnail, media_type.as_str()), (expected.clone(), "image/jpeg"));
    assert_eq!(gallery.store().get(&thumbnail_key(&never_filed)).await.unwrap(), expected);
    gallery.file(&never_filed, &image).await.unwrap();
}

fn in_session(name: &str) -> ListFilter {
    ListFilter { session: Some(SessionName::parse(name).unwrap()), origin: None }
}

/// A store that counts the requests made of it (a key read with `get_many` counts as one, as
/// on S3), for the tests of what a gallery operation costs.
struct Counting {
    inner: Arc<dyn ObjectStore>,
    requests: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn take(&self) -> usize {
        self.requests.swap(0, std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self, requests: usize) {
        self.requests.fetch_add(requests, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ObjectStore for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(
        &self,
        key: &ObjectKey,
        body: bytes::Bytes,
        content_type: &str,
        mode: crate::store::PutMode,
    ) -> Result<(), crate::store::StoreError> {
        self.count(1);
        self.inner.put(key, body, content_type, mode).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<bytes::Bytes, crate::store::StoreError> {
        self.count(1);
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[ObjectKey]) -> Vec<Result<bytes::Bytes, crate::store::StoreError>> {
        self.count(keys.len());
        self.inner.get_many(keys).await
    }
    async fn get_versioned(
        &self,
        key: &ObjectKey,
    ) -> Result<(bytes::Bytes, crate::store::Version), crate::store::StoreError> {
        self.count(1);
        self.inner.get_versioned(key).await
    }
    async fn replace(
        &self,
        key: &ObjectKey,
        body: bytes::Bytes,
        content_type: &str,
        expected: &crate::store::Version,
    ) -> Result<(), crate::store::StoreError> {
        self.count(1);
        self.inner.replace(key, body, content_type, expected).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectKey>, crate::store::StoreError> {
        self.count(1);
        self.inner.list(prefix, start_after, limit).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), crate::store::StoreError> {
        self.count(1);
        self.inner.delete(key).await
    }
    async fn check(&self) -> Result<(), crate::store::StoreError> {
        self.inner.check().await
    }
    async fn download_url(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, crate::store::StoreError> {
        self.inner.download_url(key, expires_in).await
    }
}

/// A session's page, a source's page and an old image's children cost a listing and a read
/// per image shown, however many other images the gallery holds.
#[tokio::test]
async fn filtered_pages_and_children_cost_what_they_show_not_the_gallery() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting {
        inner: Arc::new(FolderStore::open(folder.path()).await.unwrap()),
        requests: Default::default(),
    });
    let gallery = Gallery::new(store.clone());
    let owner = Owner::local_operator();
    let image = image().await;
    let oldest = record(&owner, &image, Origin::Web, Some("harbours"));
    gallery.save(&oldest, &image).await.unwrap();
    for number in 0..300 {
        let session = (number % 100 == 0).then_some("harbours");
        let origin = if number == 150 { Origin::Cli } else { Origin::Web };
        gallery.save(&record(&owner, &image, origin, session), &image).await.unwrap();
    }
    let child = ImageRecord { parent: Some(oldest.id), ..record(&owner, &image, Origin::Web, None) };
    gallery.save(&child, &image).await.unwrap();
    // The first indexed read checks the gallery's mark once.
    gallery.list(&owner, &in_session("harbours"), None, 10).await.unwrap();
    store.take();

    let harbours = gallery.list(&owner, &in_session("harbours"), None, 10).await.unwrap();
    assert_eq!(harbours.records.len(), 4);
    assert!(harbours.records.iter().all(|record| record.session.as_ref().is_some_and(|s| s.as_str() == "harbours")));
    assert_eq!(store.take(), 1 + 4, "one listing and one read per image of the session");
    let from_cli =
        gallery.list(&owner, &ListFilter { session: None, origin: Some(OriginKind::Cli) }, None, 10).await.unwrap();
    assert_eq!(from_cli.records.len(), 1);
    assert_eq!(store.take(), 1 + 1);
    let children = gallery.children(&owner, oldest.id).await.unwrap();
    assert_eq!(children.iter().map(|record| record.id).collect::<Vec<_>>(), [child.id]);
    assert_eq!(store.take(), 2 + 1, "a listing of the children, one read, and the empty listing that ends it");
}

/// Entries whose record is gone, or says otherwise (a crash between two writes), are never
/// shown; a renamed session's images are found under the new name only.
#[tokio::test]
async fn the_index_never_shows_what_the_records_do_not_say() {
    let (_folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let kept = record(&owner, &image, Origin::Web, Some("boats"));
    gallery.save(&kept, &image).await.unwrap();
    // A crash after the entries were written and before the record: entries without a record.
    let ghost = record(&owner, &image, Origin::Web, Some("boats"));
    gallery.put_entries(&ghost).await.unwrap();
    let boats = in_session("boats");
    let listed = gallery.list(&owner, &boats, None, 10).await.unwrap().records;
    assert_eq!(listed.iter().map(|record| record.id).collect::<Vec<_>>(), [kept.id]);

    assert_eq!(gallery.retag_session(&owner, &SessionName::parse("boats").unwrap(), None).await.unwrap(), 1);
    assert!(gallery.list(&owner, &boats, None, 10).await.unwrap().records.is_empty());
    let renamed = record(&owner, &image, Origin::Web, Some("ships"));
    gallery.save(&renamed, &image).await.unwrap();
    gallery
        .retag_session(&owner, &SessionName::parse("ships").unwrap(), Some(&SessionName::parse("sea").unwrap()))
        .await
        .unwrap();
    let sea = gallery.list(&owner, &in_session("sea"), None, 10).await.unwrap().records;
    assert_eq!(sea.iter().map(|record| record.id).collect::<Vec<_>>(), [renamed.id]);
    assert!(gallery.list(&owner, &in_session("ships"), None, 10).await.unwrap().records.is_empty());
}

/// A gallery kept before the index existed (records only) is indexed on its first filtered
/// read, once.
#[tokio::test]
async fn a_gallery_from_before_the_index_is_indexed_on_first_use() {
    let (folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let parent =
        record(&owner, &image, Origin::Discord { guild_id: None, channel_id: 1, message_id: None }, Some("old"));
    gallery.save(&parent, &image).await.unwrap();
    let child = ImageRecord { parent: Some(parent.id), ..record(&owner, &image, Origin::Web, None) };
    gallery.save(&child, &image).await.unwrap();
    // As an older Atelier left it: no index at all.
    std::fs::remove_dir_all(folder.path().join("users/local-operator/index")).unwrap();

    let fresh = Gallery::new(gallery.store().clone());
    let old = fresh.list(&owner, &in_session("old"), None, 10).await.unwrap().records;
    assert_eq!(old.iter().map(|record| record.id).collect::<Vec<_>>(), [parent.id]);
    assert_eq!(
        fresh.children(&owner, parent.id).await.unwrap().iter().map(|record| record.id).collect::<Vec<_>>(),
        [child.id]
    );
    assert!(folder.path().join("users/local-operator/index/built.json").exists());
}

/// A gallery begun with the index is marked indexed by its first image, so its first filtered
/// read does not read every record; one with older records is not marked by a new image, and
/// its first filtered read still indexes (and finds) the older ones.
#[tokio::test]
async fn a_new_gallery_is_marked_indexed_by_its_first_image_and_an_old_one_is_not() {
    let (folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let marker = folder.path().join("users/local-operator/index/built.json");
    let first = record(&owner, &image, Origin::Web, Some("old"));
    gallery.save(&first, &image).await.unwrap();
    assert!(marker.exists(), "the first image marks its gallery indexed");

    // As an older Atelier left it: records without entries or marker.
    std::fs::remove_dir_all(folder.path().join("users/local-operator/index")).unwrap();
    let fresh = Gallery::new(gallery.store().clone());
    fresh.save(&record(&owner, &image, Origin::Web, None), &image).await.unwrap();
    assert!(!marker.exists(), "a gallery with older records is not marked by a new image");
    let old = fresh.list(&owner, &in_session("old"), None, 10).await.unwrap().records;
    assert_eq!(old.iter().map(|record| record.id).collect::<Vec<_>>(), [first.id]);
    assert!(marker.exists());
}

/// An image deleted while its thumbnail is being made leaves no thumbnail behind: nothing of
/// it is served after the delete (Schemathesis found a thumbnail still served).
#[tokio::test]
async fn an_image_deleted_while_its_thumbnail_is_made_leaves_no_thumbnail() {
    let (folder, gallery) = gallery().await;
    let owner = Owner::local_operator();
    let image = image().await;
    let doomed = record(&owner, &image, Origin::Web, None);
    assert_eq!(gallery.save_image(&doomed, &image).await.unwrap(), Saved::Stored);
    gallery.delete(&owner, doomed.id).await.unwrap();
    // The filing that was under way when the delete came.
    gallery.file(&doomed, &image).await.unwrap();

    assert!(gallery.image(&owner, doomed.id, Variant::Thumbnail).await.is_err());
    let thumbnails = folder.path().join("users/local-operator/thumbnails");
    let left = std::fs::read_dir(&thumbnails).map(|entries| entries.count()).unwrap_or(0);
    assert_eq!(left, 0, "a thumbnail outlived its image in {}", thumbnails.display());
}
