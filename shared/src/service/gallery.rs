//! The gallery as people use it: looking at images, their files and lineage, pages of one's
//! own gallery, and deleting. Every operation names the acting person and the image; the rule
//! of who may do what is here, not in the front ends.

use bytes::Bytes;

use crate::error::Result;
use crate::gallery::{ImageRecord, ListFilter, Page, Variant};

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
