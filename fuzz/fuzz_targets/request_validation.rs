//! Any uploaded bytes and any edit form fields are either refused with a message or become a
//! checked edit request: never a panic, however the image is broken or the fields are filled.
#![no_main]

use arbitrary::Arbitrary;
use atelier_shared::images::CheckedImage;
use atelier_shared::request::{EditFields, GenerationFields};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// One edit as a front end receives it: the form's text fields and the uploaded files.
#[derive(Debug, Arbitrary)]
struct Upload {
    source: Vec<u8>,
    mask: Option<Vec<u8>>,
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
    let source = CheckedImage::check(Bytes::from(upload.source), "the image");
    let mask = upload.mask.map(|bytes| CheckedImage::check(Bytes::from(bytes), "the mask"));
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
        Ok(image) => image,
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
    static IMAGE: std::sync::OnceLock<CheckedImage> = std::sync::OnceLock::new();
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
