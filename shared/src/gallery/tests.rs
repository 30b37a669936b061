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
    let left = gallery.store().list("users/", None, 100).await.unwrap();
    assert!(left.is_empty(), "files left behind: {left:?} in {}", folder.path().display());
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
