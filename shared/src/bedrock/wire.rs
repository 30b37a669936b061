//! What the image families share on the wire: images and masks as base64, the output format,
//! and the reading of a response into images or a content-filter block.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use image::ImageFormat;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Invalid};
use crate::images::{CheckedImage, encode_png};
use crate::request::Seed;
use crate::request::marks_region;

/// One image a model returned, decoded from base64 once.
#[derive(Debug, Clone)]
pub struct ReturnedImage {
    pub bytes: Bytes,
    /// The seed the model reports for this image, when it reports one.
    pub seed: Option<Seed>,
}

/// What a model's response said.
#[derive(Debug, Clone)]
pub enum Answer {
    Images(Vec<ReturnedImage>),
    /// The model's content filter refused; the text says what was filtered, for the user.
    Filtered(String),
}

/// Which mask pixels mark the region to change, as a model expects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskConvention {
    /// Black marks the region (Titan's and Nova Canvas's inpainting: black is "inside the mask").
    BlackMarksRegion,
    /// White marks the region (our own rule; Stability AI Image Services, SDXL's
    /// `MASK_IMAGE_WHITE`, and Titan's outpainting, which repaints the outside of its mask).
    WhiteMarksRegion,
}

/// The image format Stability's models return (`output_format`). We ask for PNG everywhere:
/// the documented default, and the only choice that keeps a removed background transparent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Png,
}

/// A source image as base64 PNG or JPEG, the formats every family accepts; other formats
/// are converted to PNG once.
pub fn image_base64(image: &CheckedImage) -> Result<String, Error> {
    match image.format() {
        ImageFormat::Png | ImageFormat::Jpeg => Ok(BASE64.encode(image.bytes())),
        _ => {
            let pixels = image.decode()?;
            let png = encode_png(&pixels, &[]).map_err(|error| Error::operator("converting an image to PNG", error))?;
            Ok(BASE64.encode(png))
        }
    }
}

/// A mask as base64 PNG of pure black and white, in the convention the model expects.
pub fn mask_base64(mask: &CheckedImage, convention: MaskConvention) -> Result<String, Error> {
    let grey = mask.decode()?.to_luma8();
    let (inside, outside) = match convention {
        MaskConvention::BlackMarksRegion => (0u8, 255u8),
        MaskConvention::WhiteMarksRegion => (255u8, 0u8),
    };
    let pure = image::GrayImage::from_fn(grey.width(), grey.height(), |x, y| {
        image::Luma([if marks_region(grey.get_pixel(x, y)[0]) { inside } else { outside }])
    });
    let png = encode_png(&image::DynamicImage::ImageLuma8(pure), &[])
        .map_err(|error| Error::operator("encoding a mask as PNG", error))?;
    Ok(BASE64.encode(png))
}

/// Decodes one base64 image from a response.
pub fn decode_image(text: &str) -> Result<Bytes, Error> {
    BASE64
        .decode(text.as_bytes())
        .map(Bytes::from)
        .map_err(|error| Error::operator("reading an image from the model's response", error))
}

/// A base64 image as it stands in a response body. It borrows the body's text unless the
/// JSON escaped something in it (never needed in base64, though `\/` is allowed), so the
/// megabytes of a large image are not copied before they are decoded.
#[derive(Debug, Deserialize)]
pub struct Base64Image<'body>(#[serde(borrow)] Cow<'body, str>);

impl Base64Image<'_> {
    /// The image's bytes, decoded once.
    pub fn decode(&self) -> Result<Bytes, Error> {
        decode_image(&self.0)
    }
}

/// Reads a response body as JSON of the given shape, which may borrow from the body.
pub fn parse_response<'body, T: Deserialize<'body>>(body: &'body [u8], family: &str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|error| Error::operator(format!("reading a {family} response"), error))
}

/// Checks a text field against a model's character limit, with a message naming the model.
pub fn check_length(what: &str, text: &str, model: &str, limit: usize) -> Result<(), Invalid> {
    let characters = text.chars().count();
    if characters > limit {
        return Err(Invalid::new(format!(
            "{what} is {characters} characters; {model} takes at most {limit}: shorten it or choose another model"
        )));
    }
    Ok(())
}

/// Asserts that a request body serialises to exactly the documented JSON (the order of keys
/// aside), and that the documented JSON reads back as the same body.
#[cfg(test)]
pub fn assert_documented<Body>(body: Body, documented: serde_json::Value)
where
    Body: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let sent = serde_json::to_value(&body).unwrap_or_else(|error| panic!("the body does not serialise: {error}"));
    assert_eq!(sent, documented, "the body sent differs from the documented one");
    let read = serde_json::from_value::<Body>(documented)
        .unwrap_or_else(|error| panic!("the documented body does not read back: {error}"));
    assert_eq!(read, body, "the documented body reads back as another body");
}
