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

/// An image whose bytes were found sound: a supported format, not truncated, within
/// [`MAX_UPLOAD_BYTES`] and [`MAX_SIDE`]. Uploads are fully decoded once ([`Self::check`]); a
/// model's PNG has every chunk's checksum verified instead ([`Self::check_model_output`]). The
/// original bytes are kept as they came, so the store never needs to re-encode them.
#[derive(Clone, PartialEq)]
pub struct CheckedImage {
    bytes: Bytes,
    format: ImageFormat,
    size: Size,
}

impl std::fmt::Debug for CheckedImage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckedImage")
            .field("format", &self.format)
            .field("size", &self.size)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl CheckedImage {
    /// Checks uploaded bytes. `what` names the image in messages ("the image", "the mask").
    pub fn check(bytes: Bytes, what: &str) -> Result<Self, Invalid> {
        let (image, format) = Self::check_header(bytes, what)?;
        // Decode it all once: a truncated file has a sound header and fails only here.
        decode_with_limits(&image.bytes, format)
            .map_err(|_| Invalid::new(format!("{what} is damaged or truncated: export or download it again")))?;
        Ok(image)
    }

    /// Checks an image a model drew, on the way to the person waiting for it. A PNG (what
    /// every model here is asked for) is checked by its structure instead of decoded: every
    /// byte after the signature is covered by a chunk's CRC, so a truncated or damaged answer
    /// fails here, in a fraction of a millisecond rather than the 5 ms or so a full decode of
    /// a 1024x1024 image costs. Its pixels are decoded once, later, for the gallery thumbnail.
    /// Any other format is decoded as an upload is.
    pub fn check_model_output(bytes: Bytes, what: &str) -> Result<Self, Invalid> {
        let (image, format) = Self::check_header(bytes, what)?;
        let sound = match format {
            ImageFormat::Png => png_chunks_are_sound(&image.bytes),
            _ => decode_with_limits(&image.bytes, format).is_ok(),
        };
        if !sound {
            return Err(Invalid::new(format!("{what} is damaged or truncated")));
        }
        Ok(image)
    }

    /// Checks what can be checked without decoding pixels: the size in bytes, the format and
    /// the dimensions in the header.
    fn check_header(bytes: Bytes, what: &str) -> Result<(Self, ImageFormat), Invalid> {
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
        Ok((Self { bytes, format, size: Size { width, height } }, format))
    }

    /// Wraps bytes an engine produced and that were just encoded by us.
    pub fn from_encoded_png(bytes: Bytes, size: Size) -> Self {
        Self { bytes, format: ImageFormat::Png, size }
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

/// The most decoded pixels, in bytes, that checks of uploads hold at once in this process.
/// A small file can claim a large decode (a 4096x4096 16-bit PNG of one colour is 130 KB and
/// decodes to 128 MiB), so each check first reserves its image's decoded size from this
/// budget, read from the header, and waits its turn when the budget is spent: a burst of
/// such uploads is checked a few at a time instead of exhausting the task's memory.
pub const DECODE_BUDGET_BYTES: u64 = 160 * 1024 * 1024;
/// The budget is counted in these units (a semaphore's permits are `u32`).
const DECODE_UNIT: u64 = 64 * 1024;

fn decode_budget() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static BUDGET: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    BUDGET.get_or_init(|| {
        let units = usize::try_from(DECODE_BUDGET_BYTES / DECODE_UNIT).unwrap_or(usize::MAX);
        std::sync::Arc::new(tokio::sync::Semaphore::new(units))
    })
}

/// What decoding these bytes will hold, in budget units, read from the header alone (the
/// dimensions and the pixel format): at least one unit, at most the whole budget. Bytes whose
/// header cannot be read cost one unit; the check refuses them before decoding anything.
fn decode_cost(bytes: &[u8]) -> u32 {
    let decoded = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_decoder().ok())
        .map(|decoder| {
            use image::ImageDecoder as _;
            let (width, height) = decoder.dimensions();
            // Larger than any image allowed: refused from its header, nothing to decode.
            if width > MAX_SIDE || height > MAX_SIDE {
                return 0;
            }
            u64::from(width) * u64::from(height) * u64::from(decoder.color_type().bytes_per_pixel())
        })
        .unwrap_or(0);
    let units = decoded.div_ceil(DECODE_UNIT).clamp(1, DECODE_BUDGET_BYTES / DECODE_UNIT);
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// How many of one person's images may be checked at once. The decode budget keeps the
/// process's memory bounded whoever sends; this keeps one person (a script, a Discord member
/// pasting the same bomb again and again) from holding all of it while others wait. A check
/// past the limit is refused at once, before anything is decoded.
pub const UPLOADS_IN_FLIGHT_PER_PERSON: usize = 3;

/// The checks in flight, by person.
fn uploads_in_flight() -> &'static std::sync::Mutex<std::collections::HashMap<String, usize>> {
    static IN_FLIGHT: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
        std::sync::OnceLock::new();
    IN_FLIGHT.get_or_init(Default::default)
}

/// One person's check in flight; counted down when dropped, however the check ends.
struct InFlight(String);

impl InFlight {
    fn claim(uploader: &crate::gallery::Owner) -> crate::Result<Self> {
        // A poisoned lock only means a check panicked while counting; the counts are still whole.
        let mut counts = uploads_in_flight().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(uploader.as_str().to_string()).or_default();
        if *count >= UPLOADS_IN_FLIGHT_PER_PERSON {
            return Err(crate::Error::Busy(format!(
                "you have {UPLOADS_IN_FLIGHT_PER_PERSON} images being checked already; send this one when they are done"
            )));
        }
        *count += 1;
        Ok(Self(uploader.as_str().to_string()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = uploads_in_flight().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.0) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.0);
            }
        }
    }
}

/// Checks an image that came from a person (an upload, an attachment, a stored image to edit)
/// on the blocking pool: decoding a large one takes a while and must not hold up the async
/// workers. At most [`UPLOADS_IN_FLIGHT_PER_PERSON`] of `uploader`'s checks run at once, and
/// each reserves its decoded size from [`DECODE_BUDGET_BYTES`] first. The one place front ends
/// and the core check such bytes.
pub async fn check_upload(
    uploader: &crate::gallery::Owner,
    bytes: Bytes,
    what: &'static str,
) -> crate::Result<CheckedImage> {
    let in_flight = InFlight::claim(uploader)?;
    let permit = decode_budget()
        .clone()
        .acquire_many_owned(decode_cost(&bytes))
        .await
        .map_err(|error| crate::Error::operator("waiting to check an image", error))?;
    tokio::task::spawn_blocking(move || {
        let checked = CheckedImage::check(bytes, what);
        drop(permit);
        drop(in_flight);
        checked
    })
    .await
    .map_err(|error| crate::Error::operator("checking an image", error))?
    .map_err(crate::Error::from)
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
            // tEXt holds Latin-1 only; a prompt in Japanese or with an emoji goes in iTXt
            // (UTF-8), so any prompt a person can type can be written into its image.
            if value.chars().all(|character| u32::from(character) <= 0xFF) {
                encoder.add_text_chunk((*keyword).to_string(), (*value).to_string())?;
            } else {
                encoder.add_itxt_chunk((*keyword).to_string(), (*value).to_string())?;
            }
        }
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&data)?;
        writer.finish()?;
    }
    Ok(Bytes::from(out))
}

/// Whether a PNG's chunks are all there and intact: the signature, `IHDR` first, at least one
/// `IDAT`, `IEND` last with nothing after it, and every chunk's CRC (over its type and data)
/// right. It reads each byte once for the CRC and inflates nothing. (The `png` crate checks
/// the same CRCs, but only while decoding the pixels, which is the cost this avoids.)
fn png_chunks_are_sound(bytes: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let Some(mut rest) = bytes.strip_prefix(SIGNATURE) else { return false };
    let (mut first, mut seen_data) = (true, false);
    loop {
        // Length (4 bytes), type (4), data (length), CRC (4).
        let Some((length, after_length)) = rest.split_first_chunk::<4>() else { return false };
        let Ok(length) = usize::try_from(u32::from_be_bytes(*length)) else { return false };
        let Some((typed_data, after_data)) = after_length.split_at_checked(4 + length) else { return false };
        let Some((crc, after_crc)) = after_data.split_first_chunk::<4>() else { return false };
        if crc32fast::hash(typed_data) != u32::from_be_bytes(*crc) {
            return false;
        }
        let kind = &typed_data[..4];
        if first != (kind == b"IHDR") {
            return false;
        }
        first = false;
        seen_data |= kind == b"IDAT";
        rest = after_crc;
        if kind == b"IEND" {
            return seen_data && rest.is_empty();
        }
    }
}

/// Why a thumbnail could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("shrinking the image failed: {0}")]
    Resize(#[from] fast_image_resize::ResizeError),
    #[error("encoding the thumbnail failed: {0}")]
    Encode(#[from] image::ImageError),
}

/// A JPEG thumbnail whose longest side is [`THUMBNAIL_SIDE`] (smaller images keep their size),
/// made once at store time so gallery pages never touch full-size images. Transparency is
/// flattened onto a neutral grey. The shrink is `fast_image_resize`'s (SIMD, a Hamming filter:
/// a bicubic's sharpness at a bilinear's cost): `image`'s own `thumbnail` took about 4 ms of
/// a 1024x1024 image's 4.5 ms here.
pub fn make_thumbnail(image: &DynamicImage) -> Result<Bytes, ThumbnailError> {
    use fast_image_resize::{FilterType, IntoImageView as _, PixelType, ResizeAlg, ResizeOptions, Resizer};

    let (width, height) = thumbnail_size(image.width(), image.height());
    // Models answer in 8-bit RGB or RGBA, which resize as they are; anything else (16-bit,
    // grey) is converted first.
    let converted;
    let source = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        other => {
            converted = DynamicImage::ImageRgba8(other.to_rgba8());
            &converted
        }
    };
    let pixel_type = source.pixel_type().unwrap_or(PixelType::U8x4);
    let mut small = fast_image_resize::images::Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Hamming));
    Resizer::new().resize(source, &mut small, &options)?;
    let rgb = if pixel_type == PixelType::U8x4 {
        small
            .buffer()
            .chunks_exact(4)
            .flat_map(|pixel| {
                let alpha = u16::from(pixel[3]);
                let blend = |channel: u8| ((u16::from(channel) * alpha + 200 * (255 - alpha)) / 255) as u8;
                [blend(pixel[0]), blend(pixel[1]), blend(pixel[2])]
            })
            .collect()
    } else {
        small.into_vec()
    };
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82).encode(
        &rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(Bytes::from(out.into_inner()))
}

/// The size of the thumbnail of a `width` x `height` image: the longest side
/// [`THUMBNAIL_SIDE`], the other in proportion (at least a pixel), never larger than the image.
fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height).max(1);
    if longest <= THUMBNAIL_SIDE {
        return (width.max(1), height.max(1));
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(THUMBNAIL_SIDE) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(THUMBNAIL_SIDE).max(1)
    };
    (scale(width), scale(height))
}

#[cfg(test)]
mod tests;
