//! The gallery as people use it: looking at images, their files and lineage, pages of one's
//! own gallery, and deleting. Every operation names the acting person and the image; the rule
//! of who may do what is here, not in the front ends.

use bytes::Bytes;

use crate::error::Result;
use crate::gallery::{ImageRecord, ListFilter, Page, SessionName, SessionSummary, Variant};

use super::{Actor, Atelier, ImageRef};

impl Atelier {
    /// An image's record. Anyone holding a reference may look: the web only makes references
    /// to the signed-in person's own images, and a Discord button's image was shown in the
    /// channel where it was pressed.
    pub async fn image_record(&self, image: &ImageRef) -> Result<ImageRecord> {
        self.gallery.record(&image.owner, image.id).await
    }

    /// An image's bytes (or its thumbnail's) and their media type.
    pub async fn image_file(&self, image: &ImageRef, variant: Variant) -> Result<(Bytes, String)> {
        self.gallery.image(&image.owner, image.id, variant).await
    }

    /// A short-lived URL the browser can fetch the file from directly, where the store offers one.
    pub async fn image_download_url(&self, image: &ImageRef, variant: Variant) -> Result<Option<String>> {
        self.gallery.download_url(&image.owner, image.id, variant).await
    }

    /// The images made from this one, in its owner's gallery.
    pub async fn image_children(&self, image: &ImageRef) -> Result<Vec<ImageRecord>> {
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

    /// Deletes an image; only the person who made it may.
    pub async fn delete_image(&self, actor: &Actor, image: &ImageRef) -> Result<()> {
        image.only_owner(actor, "only the person who made this image can delete it")?;
        self.gallery.delete(&image.owner, image.id).await
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
            return Err(crate::Invalid::new(format!(
                "the session is already called `{}`: give it a different name",
                to.as_str()
            ))
            .into());
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
    pub(super) async fn stored_source(&self, image: &ImageRef) -> Result<crate::images::CheckedImage> {
        let (bytes, _) = self.gallery.image(&image.owner, image.id, Variant::Full).await?;
        crate::images::check_upload(bytes, "the stored image").await
    }
}

fn no_such_session(name: &SessionName) -> crate::Error {
    crate::Error::not_found(format!("there is no session named `{}` in your gallery", name.as_str()))
}
