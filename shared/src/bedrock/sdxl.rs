//! Stability SDXL 1.0: `text_prompts` with weights, a fixed list of sizes, image-to-image and
//! masking, and `artifacts[]` whose `finishReason` says when the content filter blurred an
//! image (which arrives with HTTP 200 and must never be shown as a result).

use serde::{Deserialize, Serialize};

use super::wire::{
    Answer, Base64Image, MaskConvention, ReturnedImage, check_length, image_base64, mask_base64, parse_response,
};
use crate::engine::catalog::ModelEntry;
use crate::error::{Error, Invalid};
use crate::images::CheckedImage;
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

/// A request body for SDXL 1.0 (`model-parameters-diffusion-1-0-text-image` and its
/// image-to-image and masking pages): the fields every task shares, and those of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdxlRequest {
    /// The prompt with weight 1 and, when given, the negative prompt with weight -1.
    pub text_prompts: Vec<TextPrompt>,
    pub cfg_scale: f64,
    pub steps: u32,
    pub seed: u32,
    pub samples: u32,
    #[serde(flatten)]
    pub task: SdxlTask,
}

/// One weighted text prompt; a weight below 0 makes it a negative prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPrompt {
    pub text: String,
    pub weight: f64,
}

/// What SDXL is asked to do, and the fields that says it: a size for text-to-image, a source
/// image (and its strength or mask) for image-to-image. The task has no field of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SdxlTask {
    TextToImage {
        width: u32,
        height: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        style_preset: Option<String>,
    },
    ImageStrength {
        /// The source image, base64.
        init_image: String,
        init_image_mode: InitImageMode,
        /// Close to 1 keeps the result close to the source.
        image_strength: f64,
    },
    Mask {
        /// The source image, base64.
        init_image: String,
        mask_source: MaskSource,
        /// The mask, base64 PNG, in the convention `mask_source` names.
        mask_image: String,
    },
}

/// How a source image steers an image-to-image request; we use only its strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InitImageMode {
    ImageStrength,
}

/// Which mask pixels SDXL replaces; we send masks with white marking the region, as ours are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MaskSource {
    MaskImageWhite,
}

/// The guidance every SDXL request carries, once checked against the model's ranges.
struct Sampling {
    cfg_scale: f64,
    steps: u32,
}

/// Checks the guidance and the prompts against SDXL's documented limits: cfg_scale 0-35,
/// steps 10-50, prompts of at most [`MAX_PROMPT`] characters.
fn check_sampling(
    model: &ModelEntry,
    prompt: &str,
    negative: Option<&str>,
    guidance: Guidance,
) -> Result<Sampling, Invalid> {
    let cfg_scale = guidance.cfg_scale_within(&model.alias, 0.0, 35.0)?.map_or(CFG_SCALE, f64::from);
    let steps = guidance.steps_within(&model.alias, 10, 50)?.unwrap_or(STEPS);
    check_length("the prompt", prompt, &model.alias, MAX_PROMPT)?;
    if let Some(negative) = negative {
        check_length("the negative prompt", negative, &model.alias, MAX_PROMPT)?;
    }
    Ok(Sampling { cfg_scale, steps })
}

/// The body's shared fields around a task.
fn request_body(prompt: &str, negative: Option<&str>, sampling: Sampling, seed: Seed, task: SdxlTask) -> SdxlRequest {
    let mut text_prompts = vec![TextPrompt { text: prompt.into(), weight: 1.0 }];
    if let Some(negative) = negative {
        // A negative weight makes a text prompt a negative prompt.
        text_prompts.push(TextPrompt { text: negative.into(), weight: -1.0 });
    }
    SdxlRequest { text_prompts, cfg_scale: sampling.cfg_scale, steps: sampling.steps, seed: seed.0, samples: 1, task }
}

/// A text-to-image request, checked: what its body is built from.
struct CheckedGeneration<'request> {
    size: Size,
    sampling: Sampling,
    style: Option<&'request str>,
}

fn checked_generation<'request>(
    model: &ModelEntry,
    request: &'request GenerationRequest,
) -> Result<CheckedGeneration<'request>, Invalid> {
    if !request.colors.is_empty() {
        return Err(Invalid::new("sdxl cannot follow a colour palette: use titan-v2 or nova-canvas"));
    }
    let size = size_for(request.shape)?;
    let sampling = check_sampling(
        model,
        request.prompt.as_str(),
        request.negative_prompt.as_ref().map(|prompt| prompt.as_str()),
        request.guidance,
    )?;
    let style = request.style.as_ref().map(|style| style.as_str());
    if let Some(style) = style
        && !STYLE_PRESETS.contains(&style)
    {
        return Err(Invalid::new(format!("sdxl has no style `{style}`: use one of {}", STYLE_PRESETS.join(", "))));
    }
    Ok(CheckedGeneration { size, sampling, style })
}

/// Checks a text-to-image request against SDXL's limits.
pub fn check_generation(model: &ModelEntry, request: &GenerationRequest) -> Result<(), Invalid> {
    checked_generation(model, request).map(drop)
}

/// The body of a text-to-image request, once checked.
pub fn generation_body(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<SdxlRequest, Invalid> {
    let CheckedGeneration { size, sampling, style } = checked_generation(model, request)?;
    let task = SdxlTask::TextToImage { width: size.width, height: size.height, style_preset: style.map(str::to_owned) };
    Ok(request_body(
        request.prompt.as_str(),
        request.negative_prompt.as_ref().map(|prompt| prompt.as_str()),
        sampling,
        seed,
        task,
    ))
}

/// An image-to-image request, checked: what its body is built from. The images are only
/// referred to; they are encoded when the body is built.
struct CheckedEdit<'request> {
    sampling: Sampling,
    task: CheckedEditTask<'request>,
}

enum CheckedEditTask<'request> {
    /// A variation, with its image strength.
    Variation { strength: f64 },
    /// An inpaint with a painted mask.
    Inpaint { mask: &'request CheckedImage },
}

fn checked_edit<'request>(
    model: &ModelEntry,
    request: &'request EditRequest,
) -> Result<CheckedEdit<'request>, Invalid> {
    let source = request.source.size();
    if !SIZES.contains(&(source.width, source.height)) {
        return Err(Invalid::new(format!(
            "sdxl edits only images of its own sizes ({}), and this one is {source}: use sd3.5 or titan-v2",
            size_list()
        )));
    }
    let sampling = check_sampling(model, edit_prompt(request), edit_negative(request), Guidance::default())?;
    let task = match (request.mode, &request.region) {
        // Close to 1 keeps the result close to the source: the same sense as our similarity.
        (EditMode::Variation, _) => {
            CheckedEditTask::Variation { strength: f64::from(request.similarity.unwrap_or(0.7)) }
        }
        (EditMode::Inpaint, Some(Region::MaskImage(mask))) => CheckedEditTask::Inpaint { mask },
        (EditMode::Inpaint, _) => {
            return Err(Invalid::new(
                "sdxl needs a painted mask to inpaint; to describe the region in words use titan, nova-canvas or search-replace",
            ));
        }
        (mode, _) => return Err(Invalid::new(format!("sdxl cannot {mode}"))),
    };
    Ok(CheckedEdit { sampling, task })
}

/// SDXL needs some text to steer by; a variation without a prompt follows the picture itself.
fn edit_prompt(request: &EditRequest) -> &str {
    request.prompt.as_ref().map(|prompt| prompt.as_str()).unwrap_or("")
}

fn edit_negative(request: &EditRequest) -> Option<&str> {
    request.negative_prompt.as_ref().map(|prompt| prompt.as_str())
}

/// Checks an image-to-image request (a variation, or an inpaint with a painted mask) against
/// SDXL's limits, without touching its images.
pub fn check_edit(model: &ModelEntry, request: &EditRequest) -> Result<(), Error> {
    checked_edit(model, request).map(drop).map_err(Error::from)
}

/// The body of an image-to-image request, checked, with its images in base64: CPU work for
/// the blocking pool.
pub fn edit_body(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<SdxlRequest, Error> {
    let CheckedEdit { sampling, task } = checked_edit(model, request)?;
    let init_image = image_base64(&request.source)?;
    let task = match task {
        CheckedEditTask::Variation { strength } => SdxlTask::ImageStrength {
            init_image,
            init_image_mode: InitImageMode::ImageStrength,
            image_strength: strength,
        },
        CheckedEditTask::Inpaint { mask } => SdxlTask::Mask {
            init_image,
            mask_source: MaskSource::MaskImageWhite,
            mask_image: mask_base64(mask, MaskConvention::WhiteMarksRegion)?,
        },
    };
    Ok(request_body(edit_prompt(request), edit_negative(request), sampling, seed, task))
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
