//! Image bytes in and out: checking what people upload before any model sees it, encoding
//! what engines draw, and making gallery thumbnails.
//!
//! Everything here is CPU work on whole images; async callers run it on the blocking pool
//! (`tokio::task::spawn_blocking`) so a large image never stalls the runtime's workers.

use std::io::Cursor;

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use crate::error::Invalid;
use crate::request::{MAX_SIDE, Size};

/// The largest upload we accept, in bytes (Discord's own attachment limit for bots is 10 MiB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The longest side of a gallery thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

/// An image whose bytes were fully decoded once and found sound: a supported format, not
/// truncated, within [`MAX_UPLOAD_BYTES`] and [`MAX_SIDE`]. The original bytes are kept as
/// they came, so the store never needs to re-encode them.
#[derive(Clone)]
pub struct CheckedImage {
    bytes: Bytes,
    format: ImageFormat,
    size: Size,
    /// The gallery thumbnail, when it was made from the pixels the check decoded
    /// ([`Self::check_with_thumbnail`]), so keeping the image needs no second decode.
    thumbnail: Option<Bytes>,
}

/// Two checked images are equal when their bytes are: the thumbnail is made from them.
impl PartialEq for CheckedImage {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.format == other.format && self.size == other.size
    }
}

impl std::fmt::Debug for CheckedImage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckedImage")
            .field("format", &self.format)
            .field("size", &self.size)
            .field("bytes", &self.bytes.len())
            .field("thumbnail", &self.thumbnail.as_ref().map(Bytes::len))
            .finish()
    }
}

impl CheckedImage {
    /// Checks uploaded bytes. `what` names the image in messages ("the image", "the mask").
    pub fn check(bytes: Bytes, what: &str) -> Result<Self, Invalid> {
        Self::check_decoding(bytes, what).map(|(image, _)| image)
    }

    /// [`Self::check`] for an image about to be kept, such as a model's: the gallery
    /// thumbnail is made from the pixels the check decodes anyway, so the image is decoded
    /// once rather than twice. Should the thumbnail fail, the image has none and the gallery
    /// makes it (and reports the failure) as for any other image.
    pub fn check_with_thumbnail(bytes: Bytes, what: &str) -> Result<Self, Invalid> {
        let (mut image, pixels) = Self::check_decoding(bytes, what)?;
        image.thumbnail = make_thumbnail(&pixels).ok();
        Ok(image)
    }

    /// Checks the bytes and returns the pixels the check decoded.
    fn check_decoding(bytes: Bytes, what: &str) -> Result<(Self, DynamicImage), Invalid> {
        if bytes.is_empty() {
            return Err(Invalid::new(format!("{what} is empty: attach a PNG, JPEG or WebP file")));
        }
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(Invalid::new(format!(
                "{what} is {:.1} MiB; the limit is {} MiB: make it smaller or save it as JPEG",
                bytes.len() as f64 / (1024.0 * 1024.0),
                MAX_UPLOAD_BYTES / (1024 * 1024)
            )));
        }
        let reader = ImageReader::new(Cursor::new(&bytes[..]))
            .with_guessed_format()
            .map_err(|_| Invalid::new(format!("{what} cannot be read: attach a PNG, JPEG or WebP file")))?;
        let format = match reader.format() {
            Some(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => format,
            _ => {
                return Err(Invalid::new(format!(
                    "{what} is not a PNG, JPEG or WebP image: convert it to one of those"
                )));
            }
        };
        // The dimensions come from the header alone, so an image claiming 20000x20000 pixels
        // is refused before a single pixel is decoded (or a decoder's own limit trips first).
        let (width, height) = match imagesize::blob_size(&bytes) {
            Ok(dimensions) => (
                u32::try_from(dimensions.width).unwrap_or(u32::MAX),
                u32::try_from(dimensions.height).unwrap_or(u32::MAX),
            ),
            Err(_) => {
                return Err(Invalid::new(format!("{what} is damaged: its header cannot be read; export it again")));
            }
        };
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(Invalid::new(format!(
                "{what} is {width}x{height} pixels; the largest side allowed is {MAX_SIDE}: scale it down"
            )));
        }
        if width < 64 || height < 64 {
            return Err(Invalid::new(format!("{what} is {width}x{height} pixels; each side must be at least 64")));
        }
        // Decode it all once: a truncated file has a sound header and fails only here.
        let pixels = decode_with_limits(&bytes, format)
            .map_err(|_| Invalid::new(format!("{what} is damaged or truncated: export or download it again")))?;
        Ok((Self { bytes, format, size: Size { width, height }, thumbnail: None }, pixels))
    }

    /// Wraps bytes an engine produced and that were just encoded by us.
    pub fn from_encoded_png(bytes: Bytes, size: Size) -> Self {
        Self { bytes, format: ImageFormat::Png, size, thumbnail: None }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn format(&self) -> ImageFormat {
        self.format
    }

    pub fn media_type(&self) -> &'static str {
        media_type(self.format)
    }

    pub fn extension(&self) -> &'static str {
        extension(self.format)
    }

    /// The gallery thumbnail ([`make_thumbnail`]), when it was made while checking.
    pub fn thumbnail(&self) -> Option<&Bytes> {
        self.thumbnail.as_ref()
    }

    /// Decodes the image into pixels (already known to succeed, but kept fallible).
    pub fn decode(&self) -> Result<DynamicImage, Invalid> {
        decode_with_limits(&self.bytes, self.format)
            .map_err(|_| Invalid::new("the image is damaged or truncated: export or download it again"))
    }
}

fn decode_with_limits(bytes: &[u8], format: ImageFormat) -> image::ImageResult<DynamicImage> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA at the largest size plus room for the decoder's own buffers.
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4 * 2);
    reader.limits(limits);
    reader.decode()
}

/// The media type of a format we store.
pub fn media_type(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::WebP => "image/webp",
        _ => "image/png",
    }
}

/// The file extension of a format we store.
pub fn extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::WebP => "webp",
        _ => "png",
    }
}

/// Encodes pixels as PNG, with text chunks (such as who made it) that image viewers show.
pub fn encode_png(image: &DynamicImage, text: &[(&str, &str)]) -> Result<Bytes, png::EncodingError> {
    let (width, height) = (image.width(), image.height());
    let (color, data) = if image.color().has_alpha() {
        (png::ColorType::Rgba, image.to_rgba8().into_raw())
    } else {
        (png::ColorType::Rgb, image.to_rgb8().into_raw())
    };
    let mut out = Vec::with_capacity(data.len() / 2);
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        for (keyword, value) in text {
            encoder.add_text_chunk((*keyword).to_string(), (*value).to_string())?;
        }
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&data)?;
        writer.finish()?;
    }
    Ok(Bytes::from(out))
}

/// A JPEG thumbnail whose longest side is [`THUMBNAIL_SIDE`], made once at store time so
/// gallery pages never touch full-size images. Transparency is flattened onto a neutral grey.
pub fn make_thumbnail(image: &DynamicImage) -> Result<Bytes, image::ImageError> {
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgba8();
    let mut flat = image::RgbImage::new(small.width(), small.height());
    for (target, source) in flat.pixels_mut().zip(small.pixels()) {
        let alpha = u16::from(source[3]);
        for channel in 0..3 {
            let blended = (u16::from(source[channel]) * alpha + 200 * (255 - alpha)) / 255;
            target[channel] = blended as u8;
        }
    }
    let mut out = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82);
    flat.write_with_encoder(encoder)?;
    Ok(Bytes::from(out.into_inner()))
}

#[cfg(test)]
mod tests;
