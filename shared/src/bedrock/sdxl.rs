//! Stability SDXL 1.0: `text_prompts` with weights, a fixed list of sizes, image-to-image and
//! masking, and `artifacts[]` whose `finishReason` says when the content filter blurred an
//! image (which arrives with HTTP 200 and must never be shown as a result).

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{Answer, Base64Image, Images, MaskConvention, ReturnedImage, check_length, parse_response};
use crate::engine::catalog::ModelEntry;
use crate::error::{Error, Invalid};
use crate::request::{AspectRatio, EditMode, EditRequest, GenerationRequest, Guidance, Region, Seed, Shape, Size};

/// The sizes SDXL 1.0 accepts on Bedrock.
pub const SIZES: [(u32, u32); 9] = [
    (1024, 1024),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (640, 1536),
    (768, 1344),
    (832, 1216),
    (896, 1152),
];

/// The style presets SDXL knows.
pub const STYLE_PRESETS: [&str; 17] = [
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
];

/// The longest prompt SDXL takes.
pub const MAX_PROMPT: usize = 2_000;

/// Classifier-free guidance: how closely the picture follows the prompt (SDXL's default).
const CFG_SCALE: f64 = 7.0;

/// Diffusion steps (the documented default).
const STEPS: u32 = 30;

fn size_list() -> String {
    SIZES.iter().map(|(width, height)| format!("{width}x{height}")).collect::<Vec<_>>().join(", ")
}

/// The allowed size for a shape: an exact size must be in the list; an aspect ratio gets the
/// listed size closest to it.
fn size_for(shape: Shape) -> Result<Size, Invalid> {
    match shape {
        Shape::Size(size) if SIZES.contains(&(size.width, size.height)) => Ok(size),
        Shape::Size(size) => {
            Err(Invalid::new(format!("sdxl cannot draw {size}: use one of {}, or give an aspect ratio", size_list())))
        }
        Shape::Aspect(AspectRatio { width, height }) => {
            let wanted = f64::from(width) / f64::from(height);
            let closest = SIZES
                .iter()
                .min_by(|left, right| {
                    let distance = |(w, h): &(u32, u32)| (f64::from(*w) / f64::from(*h) / wanted).ln().abs();
                    distance(left).total_cmp(&distance(right))
                })
                .copied()
                .unwrap_or((1024, 1024));
            Ok(Size { width: closest.0, height: closest.1 })
        }
    }
}

fn common_fields(
    model: &ModelEntry,
    prompt: &str,
    negative: Option<&str>,
    seed: Seed,
    guidance: Guidance,
) -> Result<Value, Invalid> {
    // SDXL 1.0's documented ranges: cfg_scale 0-35, steps 10-50.
    let cfg_scale = guidance.cfg_scale_within(&model.alias, 0.0, 35.0)?.map_or(CFG_SCALE, f64::from);
    let steps = guidance.steps_within(&model.alias, 10, 50)?.unwrap_or(STEPS);
    check_length("the prompt", prompt, &model.alias, MAX_PROMPT)?;
    let mut text_prompts = vec![json!({"text": prompt, "weight": 1.0})];
    if let Some(negative) = negative {
        check_length("the negative prompt", negative, &model.alias, MAX_PROMPT)?;
        // A negative weight makes a text prompt a negative prompt.
        text_prompts.push(json!({"text": negative, "weight": -1.0}));
    }
    Ok(json!({
        "text_prompts": text_prompts,
        "cfg_scale": cfg_scale,
        "steps": steps,
        "seed": seed.0,
        "samples": 1,
    }))
}

/// The body of a text-to-image request.
pub fn generation_body(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<Value, Invalid> {
    if !request.colors.is_empty() {
        return Err(Invalid::new("sdxl cannot follow a colour palette: use titan-v2 or nova-canvas"));
    }
    let size = size_for(request.shape)?;
    let mut body = common_fields(
        model,
        request.prompt.as_str(),
        request.negative_prompt.as_ref().map(|prompt| prompt.as_str()),
        seed,
        request.guidance,
    )?;
    body["width"] = json!(size.width);
    body["height"] = json!(size.height);
    if let Some(style) = &request.style {
        if !STYLE_PRESETS.contains(&style.as_str()) {
            return Err(Invalid::new(format!(
                "sdxl has no style `{}`: use one of {}",
                style.as_str(),
                STYLE_PRESETS.join(", ")
            )));
        }
        body["style_preset"] = json!(style.as_str());
    }
    Ok(body)
}

/// The body of an image-to-image request: a variation, or an inpaint with a painted mask.
pub fn edit_body(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    build_edit(model, request, seed, Images::Encoded)
}

/// Checks an image-to-image request as [`edit_body`] would, without encoding any image.
pub fn check_edit(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<(), Error> {
    build_edit(model, request, seed, Images::Omitted).map(|_| ())
}

fn build_edit(model: &ModelEntry, request: &EditRequest, seed: Seed, images: Images) -> Result<Value, Error> {
    let source = request.source.size();
    if !SIZES.contains(&(source.width, source.height)) {
        return Err(Invalid::new(format!(
            "sdxl edits only images of its own sizes ({}), and this one is {source}: use sd3.5 or titan-v2",
            size_list()
        ))
        .into());
    }
    // SDXL needs some text to steer by; a variation without a prompt follows the picture itself.
    let prompt = request.prompt.as_ref().map(|prompt| prompt.as_str()).unwrap_or("");
    let negative = request.negative_prompt.as_ref().map(|prompt| prompt.as_str());
    let mut body = common_fields(model, prompt, negative, seed, Guidance::default())?;
    body["init_image"] = json!(images.source(&request.source)?);
    match (request.mode, &request.region) {
        (EditMode::Variation, _) => {
            body["init_image_mode"] = json!("IMAGE_STRENGTH");
            // Close to 1 keeps the result close to the source: the same sense as our similarity.
            body["image_strength"] = json!(f64::from(request.similarity.unwrap_or(0.7)));
        }
        (EditMode::Inpaint, Some(Region::MaskImage(mask))) => {
            body["mask_source"] = json!("MASK_IMAGE_BLACK");
            body["mask_image"] = json!(images.mask(mask, MaskConvention::BlackMarksRegion)?);
        }
        (EditMode::Inpaint, _) => {
            return Err(Invalid::new(
                "sdxl needs a painted mask to inpaint; to describe the region in words use titan, nova-canvas or search-replace",
            )
            .into());
        }
        (mode, _) => return Err(Invalid::new(format!("sdxl cannot {mode}")).into()),
    }
    Ok(body)
}

#[derive(Debug, Deserialize)]
struct Artifact<'body> {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default, borrow)]
    base64: Option<Base64Image<'body>>,
    #[serde(rename = "finishReason")]
    finish_reason: String,
}

#[derive(Debug, Deserialize)]
struct Response<'body> {
    #[serde(borrow)]
    artifacts: Vec<Artifact<'body>>,
}

/// Reads a response. A `CONTENT_FILTERED` artifact is a blurred image: it is a block, never a result.
pub fn read_response(body: &[u8]) -> Result<Answer, Error> {
    let response: Response<'_> = parse_response(body, "SDXL")?;
    if response.artifacts.iter().any(|artifact| artifact.finish_reason == "CONTENT_FILTERED") {
        return Ok(Answer::Filtered("the model's content filter refused this image".into()));
    }
    if let Some(failed) = response.artifacts.iter().find(|artifact| artifact.finish_reason != "SUCCESS") {
        return Err(Error::Busy(format!("the model could not draw this ({}); try again", failed.finish_reason)));
    }
    let images = response
        .artifacts
        .iter()
        .map(|artifact| {
            let text = artifact
                .base64
                .as_ref()
                .ok_or_else(|| Error::operator("reading an SDXL response", "an artifact has no image"))?;
            Ok(ReturnedImage {
                bytes: text.decode()?,
                seed: artifact.seed.and_then(|seed| u32::try_from(seed).ok()).map(Seed),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if images.is_empty() {
        return Err(Error::operator("reading an SDXL response", "it holds no image"));
    }
    Ok(Answer::Images(images))
}

#[cfg(test)]
mod tests;
