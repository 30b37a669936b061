//! The gallery as people use it: looking at images, their files and lineage, pages of one's
//! own gallery, and deleting. Every operation names the acting person and the image; the rule
//! of who may do what is here, not in the front ends.
//!
//! An image is found where its reference says, or, for an image a Discord user made before
//! linking a web account, in that account's gallery, where linking moved it: Discord buttons
//! keep the owner they were made for, and keep working after a link (and after unlinking, the
//! images staying in the web account's gallery).

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::gallery::{ImageId, ImageRecord, ListFilter, Page, SessionName, SessionSummary, Variant};

use super::{Actor, Atelier, ImageRef};

/// How often an open gallery asks the store for images made on other replicas.
pub const GALLERY_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// The most new images handed to an open gallery at once; more wait for a reload.
const NEWER_IMAGES_AT_MOST: usize = 24;

impl Atelier {
    /// An image's record. Anyone holding a reference may look: the web only makes references
    /// to the signed-in person's own images, and a Discord button's image was shown in the
    /// channel where it was pressed. The record names the owner whose gallery has it now.
    pub async fn image_record(&self, image: &ImageRef) -> Result<ImageRecord> {
        Ok(self.find(image).await?.1)
    }

    /// An image's bytes (or its thumbnail's) and their media type.
    pub async fn image_file(&self, image: &ImageRef, variant: Variant) -> Result<(Bytes, String)> {
        let image = self.locate(image).await?;
        self.gallery.image(&image.owner, image.id, variant).await
    }

    /// A short-lived URL the browser can fetch the file from directly, where the store offers one.
    pub async fn image_download_url(&self, image: &ImageRef, variant: Variant) -> Result<Option<String>> {
        let image = self.locate(image).await?;
        self.gallery.download_url(&image.owner, image.id, variant).await
    }

    /// The images made from this one, in its owner's gallery.
    pub async fn image_children(&self, image: &ImageRef) -> Result<Vec<ImageRecord>> {
        let image = self.locate(image).await?;
        self.gallery.children(&image.owner, image.id).await
    }

    /// A page of the actor's own gallery, newest first.
    pub async fn gallery_page(
        &self,
        actor: &Actor,
        filter: &ListFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.gallery.list(&actor.owner, filter, cursor, limit).await
    }

    /// The actor's images newer than `since` (all of their newest, without it), newest first,
    /// waiting up to `wait` for one to appear: what an open gallery page adds without a reload.
    /// Images made in this process wake it at once; those made on another replica (a Discord
    /// result, an API call) are found by asking the store every [`GALLERY_POLL`], one listing
    /// request each time.
    pub async fn newer_images(
        &self,
        actor: &Actor,
        since: Option<ImageId>,
        wait: std::time::Duration,
    ) -> Result<Vec<ImageRecord>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Armed before looking, so an image kept meanwhile still wakes the wait.
            let kept_here = self.images_kept.notified();
            if self.gallery.has_newer(&actor.owner, since).await? {
                let page = self.gallery.list(&actor.owner, &ListFilter::default(), None, NEWER_IMAGES_AT_MOST).await?;
                let newer: Vec<ImageRecord> =
                    page.records.into_iter().filter(|record| since.is_none_or(|since| record.id > since)).collect();
                if !newer.is_empty() {
                    return Ok(newer);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            tokio::select! {
                () = kept_here => {}
                () = tokio::time::sleep_until(deadline.min(now + GALLERY_POLL)) => {}
            }
        }
    }

    /// Deletes an image; only the person whose gallery has it may (a Discord user linked to a
    /// web account, their images made before the link included).
    pub async fn delete_image(&self, actor: &Actor, image: &ImageRef) -> Result<()> {
        let (found, record) = self.find(image).await?;
        if found.owner != image.owner && actor.owner == image.owner {
            // Made here before a link that has since ended: it stayed in the web account.
            return Err(crate::Invalid::new(
                "this image moved to the web account you had linked, and stays in its gallery: delete it there",
            )
            .into());
        }
        self.only_owner(actor, &found, "only the person who made this image can delete it").await?;
        // Off its public page first: a deleted image is never shown to anyone.
        self.forget_published(&record).await?;
        self.gallery.delete(&found.owner, found.id).await
    }

    /// The sessions of the actor's own gallery, the one used most recently first.
    pub async fn gallery_sessions(&self, actor: &Actor) -> Result<Vec<SessionSummary>> {
        self.gallery.sessions(&actor.owner).await
    }

    /// Renames one of the actor's sessions: every image in `from` moves to `to` (into it, if
    /// the actor already has a session of that name, so a rename stopped midway can be run
    /// again to finish it). Returns how many images moved; a session with no images is
    /// [`crate::Error::NotFound`].
    pub async fn rename_session(&self, actor: &Actor, from: &SessionName, to: &SessionName) -> Result<usize> {
        if from == to {
            return Err(Error::conflict(format!(
                "the session is already called `{}`: give it a different name",
                to.as_str()
            )));
        }
        let moved = self.gallery.retag_session(&actor.owner, from, Some(to)).await?;
        if moved == 0 {
            return Err(no_such_session(from));
        }
        tracing::info!(owner = %actor.owner, images = moved, "renamed a session of {} ({moved} images)", actor.owner);
        Ok(moved)
    }

    /// Deletes one of the actor's sessions: its name is taken off its images, which stay in the
    /// gallery (deleting images is done one by one, on purpose). Returns how many images it held.
    pub async fn delete_session(&self, actor: &Actor, name: &SessionName) -> Result<usize> {
        let released = self.gallery.retag_session(&actor.owner, name, None).await?;
        if released == 0 {
            return Err(no_such_session(name));
        }
        tracing::info!(owner = %actor.owner, images = released, "deleted a session of {} ({released} images kept)", actor.owner);
        Ok(released)
    }

    /// Whether the store answers, for the readiness probe.
    pub async fn check_store(&self) -> Result<(), crate::store::StoreError> {
        self.gallery.check().await
    }

    /// The image an edit starts from, checked like an upload.
    pub(super) async fn stored_source(&self, actor: &Actor, image: &ImageRef) -> Result<crate::images::CheckedImage> {
        let (bytes, _) = self.gallery.image(&image.owner, image.id, Variant::Full).await?;
        crate::images::check_upload(&actor.owner, bytes, "the stored image").await
    }

    /// Where the image `image` names is now (see the module documentation). Costs nothing for
    /// an owner whose images never move (a web account, the local operator).
    pub(super) async fn locate(&self, image: &ImageRef) -> Result<ImageRef> {
        if image.owner.discord_user_id().is_none() {
            return Ok(image.clone());
        }
        Ok(self.find(image).await?.0)
    }

    /// The image `image` names, where it is now, with its record.
    pub(super) async fn find(&self, image: &ImageRef) -> Result<(ImageRef, ImageRecord)> {
        let missing = match self.gallery.record(&image.owner, image.id).await {
            Ok(record) => return Ok((image.clone(), record)),
            Err(Error::NotFound(missing)) => missing,
            Err(error) => return Err(error),
        };
        for owner in self.galleries_moved_into(&image.owner).await? {
            match self.gallery.record(&owner, image.id).await {
                Ok(record) => return Ok((ImageRef::new(owner, image.id), record)),
                Err(Error::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::NotFound(missing))
    }
}

fn no_such_session(name: &SessionName) -> Error {
    Error::not_found(format!("there is no session named `{}` in your gallery", name.as_str()))
}
