//! What the CDN in front of the public pages is told: exactly the pages that showed an image,
//! once it stops being public (unpublished, deleted, its person's data deleted), and nothing
//! for an image that never was; and a CDN that cannot be told fails none of it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::public_cache::PublicCache;

/// The guild the Discord images are made in.
const GUILD: u64 = 4242;

/// A CDN that records what it is told, and refuses it all when `refusing`.
#[derive(Default)]
struct RecordingCache {
    told: Mutex<Vec<Vec<String>>>,
    refusing: bool,
}

impl RecordingCache {
    fn refusing() -> Self {
        Self { refusing: true, ..Self::default() }
    }

    fn told(&self) -> Vec<Vec<String>> {
        self.told.lock().unwrap().clone()
    }
}

#[async_trait]
impl PublicCache for RecordingCache {
    async fn forget(&self, paths: &[String]) -> Result<()> {
        self.told.lock().unwrap().push(paths.to_vec());
        if self.refusing {
            return Err(crate::Error::operator("telling the test CDN", "AccessDenied: not allowed"));
        }
        Ok(())
    }
}

async fn core_telling(folder: &std::path::Path, cache: &Arc<RecordingCache>) -> Atelier {
    core(folder).await.with_public_cache(cache.clone())
}

fn in_a_server(id: u64) -> Actor {
    Actor::new(Owner::discord(id), Origin::Discord { guild_id: Some(GUILD), channel_id: 70, message_id: None })
}

#[tokio::test]
async fn unpublishing_tells_the_cdn_exactly_the_pages_that_showed_the_image() {
    let folder = tempfile::tempdir().unwrap();
    let cache = Arc::new(RecordingCache::default());
    let core = core_telling(folder.path(), &cache).await;
    let owner = in_a_server(1);
    let image = made_by(&core, &owner).await;

    core.publish(&owner, &image).await.unwrap();
    core.publish(&owner, &image).await.unwrap();
    assert!(cache.told().is_empty(), "publishing makes nothing stale: {:?}", cache.told());

    core.unpublish(&owner, &image).await.unwrap();
    assert_eq!(cache.told(), vec![vec![format!("/p/{}*", image.id), format!("/servers/{GUILD}*")]]);

    // No longer published: unpublishing again has nothing to make stale.
    core.unpublish(&owner, &image).await.unwrap();
    assert_eq!(cache.told().len(), 1, "{:?}", cache.told());
}

#[tokio::test]
async fn deleting_tells_the_cdn_only_about_an_image_that_was_published() {
    let folder = tempfile::tempdir().unwrap();
    let cache = Arc::new(RecordingCache::default());
    let core = core_telling(folder.path(), &cache).await;
    let owner = person(1);

    let never_published = made_by(&core, &owner).await;
    core.delete_image(&owner, &never_published).await.unwrap();
    assert!(cache.told().is_empty(), "a private image was never in a shared cache: {:?}", cache.told());

    // Made on the web or the command line: a page of its own, and no server gallery.
    let published = made_by(&core, &owner).await;
    core.publish(&owner, &published).await.unwrap();
    core.delete_image(&owner, &published).await.unwrap();
    assert_eq!(cache.told(), vec![vec![format!("/p/{}*", published.id)]]);
}

#[tokio::test]
async fn a_cdn_that_cannot_be_told_does_not_keep_an_image_public_or_fail_the_person() {
    let folder = tempfile::tempdir().unwrap();
    let cache = Arc::new(RecordingCache::refusing());
    let core = core_telling(folder.path(), &cache).await;
    let owner = in_a_server(1);
    let image = made_by(&core, &owner).await;

    core.publish(&owner, &image).await.unwrap();
    core.unpublish(&owner, &image).await.unwrap();
    assert_eq!(cache.told().len(), 1, "the CDN was asked once: {:?}", cache.told());
    assert!(!core.is_published(&image).await.unwrap());
    assert!(matches!(core.published_image(image.id).await, Err(crate::Error::NotFound(_))));
    assert!(core.server_gallery(GUILD, None, 10).await.unwrap().images.is_empty(), "off the server gallery too");

    core.publish(&owner, &image).await.unwrap();
    core.delete_image(&owner, &image).await.unwrap();
    assert_eq!(cache.told().len(), 2);
    assert!(matches!(core.image_record(&image).await, Err(crate::Error::NotFound(_))), "deleted all the same");
    assert!(matches!(core.published_image(image.id).await, Err(crate::Error::NotFound(_))));
}

#[tokio::test]
async fn deleting_a_persons_data_tells_the_cdn_about_each_published_page_or_every_page_when_many() {
    let folder = tempfile::tempdir().unwrap();
    let cache = Arc::new(RecordingCache::default());
    let core = core_telling(folder.path(), &cache).await;
    let owner = in_a_server(1);
    let (first, second, private) =
        (made_by(&core, &owner).await, made_by(&core, &owner).await, made_by(&core, &owner).await);
    core.publish(&owner, &first).await.unwrap();
    core.publish(&owner, &second).await.unwrap();

    core.delete_own_data(&owner).await.unwrap();
    let told = cache.told();
    assert_eq!(told.len(), 1, "one request for the person: {told:?}");
    let mut paths = told[0].clone();
    paths.sort();
    let mut expected = vec![format!("/p/{}*", first.id), format!("/p/{}*", second.id), format!("/servers/{GUILD}*")];
    expected.sort();
    assert_eq!(paths, expected, "their published pages and their server's gallery, not {}", private.id);

    // A person with more published images than one request should name: every public page.
    let many = in_a_server(2);
    for _ in 0..=super::super::publishing::MOST_PAGES_NAMED {
        let image = made_by(&core, &many).await;
        core.publish(&many, &image).await.unwrap();
    }
    core.delete_own_data(&many).await.unwrap();
    assert_eq!(cache.told().last().unwrap(), &vec!["/p/*".to_string(), "/servers/*".to_string()]);
}
