//! Any uploaded bytes and any edit form fields are either refused with a message or become a
//! checked edit request: never a panic, however the image is broken or the fields are filled.
//! Anything the image check accepts must be within the sizes it promises.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use atelier_shared::images::CheckedImage;
use atelier_shared::request::{EditFields, GenerationFields, MAX_SIDE};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// An uploaded file: bytes as they come, or a sound PNG, JPEG or WebP with some bytes changed
/// and its end cut off. Random bytes alone almost never get past the format check, so the
/// damaged real files are what reach the decoders' inner workings.
#[derive(Debug, Arbitrary)]
enum File {
    Raw(Vec<u8>),
    Damaged { format: Format, changes: Vec<(u16, u8)>, keep: Option<u16> },
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Format {
    Png,
    Jpeg,
    WebP,
}

impl File {
    fn bytes(self) -> Vec<u8> {
        match self {
            Self::Raw(bytes) => bytes,
            Self::Damaged { format, changes, keep } => {
                let mut bytes = sound_file(format).to_vec();
                for (offset, value) in changes {
                    let length = bytes.len();
                    bytes[usize::from(offset) % length] = value;
                }
                if let Some(keep) = keep {
                    bytes.truncate(usize::from(keep));
                }
                bytes
            }
        }
    }
}

/// A small sound file of each format, made once.
fn sound_file(format: Format) -> &'static [u8] {
    static FILES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let pixels =
            image::RgbImage::from_fn(80, 64, |x, y| image::Rgb([(x * 3) as u8, (y * 4) as u8, ((x ^ y) * 5) as u8]));
        let picture = image::DynamicImage::ImageRgb8(pixels);
        let encode = |format: image::ImageFormat| {
            let mut out = std::io::Cursor::new(Vec::new());
            picture.write_to(&mut out, format).expect("encoding a small image cannot fail");
            out.into_inner()
        };
        [encode(image::ImageFormat::Png), encode(image::ImageFormat::Jpeg), encode(image::ImageFormat::WebP)]
    });
    match format {
        Format::Png => &files[0],
        Format::Jpeg => &files[1],
        Format::WebP => &files[2],
    }
}

/// One edit as a front end receives it: the form's text fields and the uploaded files.
#[derive(Debug, Arbitrary)]
struct Upload {
    source: File,
    mask: Option<File>,
    mode: String,
    prompt: Option<String>,
    negative_prompt: Option<String>,
    mask_prompt: Option<String>,
    model: Option<String>,
    seed: Option<String>,
    similarity: Option<String>,
    direction: Option<String>,
    /// The generation form's fields too, which the same rules check.
    generation: GenerationInput,
}

#[derive(Debug, Arbitrary)]
struct GenerationInput {
    prompt: String,
    negative_prompt: Option<String>,
    model: Option<String>,
    aspect: Option<String>,
    size: Option<String>,
    seed: Option<String>,
    count: Option<String>,
    style: Option<String>,
    colors: Option<String>,
    cfg_scale: Option<String>,
    steps: Option<String>,
}

fuzz_target!(|upload: Upload| {
    let source = CheckedImage::check(Bytes::from(upload.source.bytes()), "the image");
    let mask = upload.mask.map(|file| CheckedImage::check(Bytes::from(file.bytes()), "the mask"));
    let fields = EditFields {
        mode: upload.mode,
        prompt: upload.prompt,
        negative_prompt: upload.negative_prompt,
        mask_prompt: upload.mask_prompt,
        model: upload.model,
        seed: upload.seed,
        similarity: upload.similarity,
        direction: upload.direction,
    };
    // Random bytes are almost never a sound image, so the fields are also checked around a
    // small real one: otherwise the field rules would hardly be reached.
    let checked_source = match source {
        Ok(image) => {
            let size = image.size();
            assert!((64..=MAX_SIDE).contains(&size.width) && (64..=MAX_SIDE).contains(&size.height), "{size}");
            image
        }
        Err(_) => known_good_image(),
    };
    if let Ok(request) = fields.parse(checked_source, mask.and_then(Result::ok)) {
        let _ = request.check();
    }
    let input = upload.generation;
    let generation = GenerationFields {
        prompt: input.prompt,
        negative_prompt: input.negative_prompt,
        model: input.model,
        aspect: input.aspect,
        size: input.size,
        seed: input.seed,
        count: input.count,
        style: input.style,
        colors: input.colors,
        cfg_scale: input.cfg_scale,
        steps: input.steps,
    };
    if let Ok(request) = generation.parse() {
        for colour in &request.colors {
            let _ = colour.rgb();
        }
        let _ = request.shape.to_size();
    }
});

/// A 64x64 PNG, made once.
fn known_good_image() -> CheckedImage {
    static IMAGE: OnceLock<CheckedImage> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let pixels = atelier_shared::images::encode_png(&image_of_side(64), &[])
                .expect("encoding a small image cannot fail");
            CheckedImage::check(pixels, "the image").expect("a fresh 64x64 PNG is a sound image")
        })
        .clone()
}

fn image_of_side(side: u32) -> image::DynamicImage {
    image::DynamicImage::new_rgb8(side, side)
}
