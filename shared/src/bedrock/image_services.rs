//! Stability AI Image Services on Bedrock: the edit tools (inpaint, outpaint, erase, remove
//! background, search-and-replace, search-and-recolor, upscales). Their responses have the
//! same shape as the Stability text-to-image models', read by `super::stability::read_response`.
//!
//! Every field name, requirement and limit below is from the AWS page "Stability AI Image
//! Services" (<https://docs.aws.amazon.com/bedrock/latest/userguide/stable-image-services.html>),
//! which documents one JSON body per tool, all sent with `InvokeModel`:
//!
//! | tool | required | optional |
//! | --- | --- | --- |
//! | inpaint | `prompt`, `image` | `mask`, `negative_prompt`, `seed`, `output_format`, `style_preset`, `grow_mask` |
//! | outpaint | `image`, one non-zero of `left`/`right`/`up`/`down` | `prompt`, `seed`, `output_format`, `creativity`, `style_preset` |
//! | search-replace | `prompt`, `image`, `search_prompt` | `negative_prompt`, `seed`, `output_format`, `style_preset`, `grow_mask` |
//! | search-recolor | `prompt`, `image`, `select_prompt` | `negative_prompt`, `seed`, `output_format`, `style_preset`, `grow_mask` |
//! | erase | `image` | `mask`, `seed`, `output_format`, `grow_mask` |
//! | remove-background | `image` | `output_format` |
//! | fast upscale | `image`, `output_format` | (none) |
//! | conservative upscale | `prompt`, `image` | `negative_prompt`, `seed`, `output_format`, `creativity` |
//! | creative upscale | `prompt`, `image` | `negative_prompt`, `seed`, `output_format`, `creativity`, `style_preset` |
//!
//! Prompts, negative prompts, `search_prompt` and `select_prompt` take at most 10,000
//! characters; `seed` is 0 to 4,294,967,294, 0 meaning a random one; `output_format` is one of
//! `jpeg`, `png`, `webp`. The response is `{"seeds": [..], "finish_reasons": [..], "images": [..]}`.
//!
//! We send `output_format: "png"` everywhere (the documented default, and the only choice
//! that keeps remove-background's transparency), a seed wherever one is taken, and leave
//! `style_preset`, `grow_mask` and `creativity` at their documented defaults (5 for
//! `grow_mask`; creativity 0.5 for outpaint, 0.35 conservative, 0.3 creative), as our
//! requests have no field for them.
//!
//! Where the page is silent we do not invent a limit: it gives no aspect-ratio limit for the
//! fast and creative upscalers, no size limit for an outpaint's result, and no separate
//! limit for masks (it says a mask of another size is resized; our requests already require
//! the source's own size).

use serde::{Deserialize, Serialize};

use super::stability::{MAX_PROMPT, MAX_SEED};
use super::wire::{MaskConvention, OutputFormat, check_length, image_base64, mask_base64};
use crate::engine::catalog::{Family, ModelEntry, ServiceTool};
use crate::error::{Error, Invalid};
use crate::images::CheckedImage;
use crate::request::{EditRequest, OutpaintDirection, Region, Seed, Size};

/// The most pixels outpaint adds on one side (`left`, `right`, `up`, `down`: 0 to 2000).
pub const MAX_OUTPAINT_SIDE: u32 = 2_000;

/// What an input image must be for one tool.
#[derive(Debug, Clone, Copy)]
struct ImageLimits {
    min_side: u32,
    /// The longest side allowed, where the tool has one besides its pixel count.
    max_side: Option<u32>,
    min_pixels: u64,
    max_pixels: u64,
    /// Whether the tool takes only shapes between 1:2.5 and 2.5:1.
    shape_limited: bool,
}

/// Inpaint, outpaint, search-replace, search-recolor, erase, remove-background and the
/// conservative upscaler: "Every side of the image must be at least 64 pixels. The total
/// pixel count cannot exceed 9,437,184 pixels. Image aspect ratio must be between 1:2.5 and
/// 2.5:1."
const EDIT_LIMITS: ImageLimits =
    ImageLimits { min_side: 64, max_side: None, min_pixels: 64 * 64, max_pixels: 9_437_184, shape_limited: true };

/// Creative upscale: "Every side of the image must be at least 64 pixels. Total pixel count
/// must be between 4,096 and 1,048,576 pixels." (No aspect-ratio limit is documented.)
const CREATIVE_UPSCALE_LIMITS: ImageLimits =
    ImageLimits { min_side: 64, max_side: None, min_pixels: 4_096, max_pixels: 1_048_576, shape_limited: false };

/// Fast upscale: "Width must be between 32 and 1,536 pixels. Height must be between 32 and
/// 1,536 pixels. Total pixel count must be between 1,024 and 1,048,576 pixels." (No
/// aspect-ratio limit is documented.)
const FAST_UPSCALE_LIMITS: ImageLimits =
    ImageLimits { min_side: 32, max_side: Some(1_536), min_pixels: 1_024, max_pixels: 1_048_576, shape_limited: false };

/// What each tool takes besides the image.
#[derive(Debug, Clone, Copy)]
struct Takes {
    prompt: bool,
    negative_prompt: bool,
    seed: bool,
    limits: ImageLimits,
}

fn takes(tool: ServiceTool) -> Takes {
    use ServiceTool::*;
    let (prompt, negative_prompt, seed, limits) = match tool {
        Inpaint | SearchReplace | SearchRecolor | UpscaleConservative => (true, true, true, EDIT_LIMITS),
        UpscaleCreative => (true, true, true, CREATIVE_UPSCALE_LIMITS),
        Outpaint => (true, false, true, EDIT_LIMITS),
        EraseObject => (false, false, true, EDIT_LIMITS),
        RemoveBackground => (false, false, false, EDIT_LIMITS),
        UpscaleFast => (false, false, false, FAST_UPSCALE_LIMITS),
    };
    Takes { prompt, negative_prompt, seed, limits }
}

/// A request body for one Image Services tool, field for field as the table above documents
/// it. The tool is the model called, not a field, so the body has no tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageServicesRequest {
    Inpaint(InpaintRequest),
    SearchReplace(SearchReplaceRequest),
    SearchRecolor(SearchRecolorRequest),
    Outpaint(OutpaintRequest),
    /// The conservative and creative upscalers.
    Upscale(UpscaleRequest),
    Erase(EraseRequest),
    /// Remove background and the fast upscaler.
    ImageOnly(ImageOnlyRequest),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// The source image, base64.
    pub image: String,
    /// The mask, base64 PNG, white marking the region to change.
    pub mask: String,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchReplaceRequest {
    pub prompt: String,
    /// What to find and replace, in words.
    pub search_prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// The source image, base64.
    pub image: String,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRecolorRequest {
    pub prompt: String,
    /// What to find and recolour, in words.
    pub select_prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// The source image, base64.
    pub image: String,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutpaintRequest {
    /// The source image, base64.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Pixels added on each side, 0 to [`MAX_OUTPAINT_SIDE`]; at least one is not 0.
    pub left: u32,
    pub right: u32,
    pub up: u32,
    pub down: u32,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpscaleRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// The source image, base64.
    pub image: String,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// The source image, base64.
    pub image: String,
    /// The mask, base64 PNG, white marking what to erase.
    pub mask: String,
    pub seed: u32,
    pub output_format: OutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOnlyRequest {
    /// The source image, base64.
    pub image: String,
    pub output_format: OutputFormat,
}

/// An edit request for one tool, checked: what its body is built from. The images are only
/// referred to; they are encoded when the body is built.
#[derive(Debug)]
struct CheckedEdit<'request> {
    task: CheckedTask<'request>,
    /// The negative prompt, for the tools that take one.
    negative: Option<&'request str>,
}

#[derive(Debug)]
enum CheckedTask<'request> {
    Inpaint { prompt: &'request str, mask: &'request CheckedImage },
    Erase { mask: &'request CheckedImage },
    SearchReplace { prompt: &'request str, search: &'request str },
    SearchRecolor { prompt: &'request str, select: &'request str },
    Outpaint { prompt: Option<&'request str>, amounts: (u32, u32, u32, u32) },
    Upscale { prompt: &'request str },
    ImageOnly,
}

/// Checks an edit request for one Image Services tool against every documented limit,
/// without touching its images, so a request the tool would refuse never costs a model call.
pub fn check_edit(model: &ModelEntry, tool: ServiceTool, request: &EditRequest, seed: Seed) -> Result<(), Error> {
    check_mode(model, tool, request)?;
    checked_tool(model, tool, request, seed).map(drop).map_err(Error::from)
}

/// The body of an edit request for one Image Services tool, checked, with its images in
/// base64: CPU work for the blocking pool.
pub fn edit_body(
    model: &ModelEntry,
    tool: ServiceTool,
    request: &EditRequest,
    seed: Seed,
) -> Result<ImageServicesRequest, Error> {
    check_mode(model, tool, request)?;
    tool_body(model, tool, request, seed)
}

/// The catalog says which edit modes each tool does; erase has none of ours yet.
fn check_mode(model: &ModelEntry, tool: ServiceTool, request: &EditRequest) -> Result<(), Invalid> {
    if !Family::StabilityService(tool).edit_modes().contains(&request.mode) {
        return Err(Invalid::new(format!("{} cannot {}", model.alias, request.mode)));
    }
    Ok(())
}

/// The body for `tool`, once the request's mode is known to fit it.
fn tool_body(
    model: &ModelEntry,
    tool: ServiceTool,
    request: &EditRequest,
    seed: Seed,
) -> Result<ImageServicesRequest, Error> {
    let CheckedEdit { task, negative } = checked_tool(model, tool, request, seed)?;
    let negative_prompt = negative.map(str::to_owned);
    let image = image_base64(&request.source)?;
    // 0 asks a tool for a random seed; the response reports the one it used.
    let (seed, output_format) = (seed.0, OutputFormat::Png);
    Ok(match task {
        CheckedTask::Inpaint { prompt, mask } => ImageServicesRequest::Inpaint(InpaintRequest {
            prompt: prompt.to_owned(),
            negative_prompt,
            image,
            mask: mask_base64(mask, MaskConvention::WhiteMarksRegion)?,
            seed,
            output_format,
        }),
        CheckedTask::Erase { mask } => ImageServicesRequest::Erase(EraseRequest {
            image,
            mask: mask_base64(mask, MaskConvention::WhiteMarksRegion)?,
            seed,
            output_format,
        }),
        CheckedTask::SearchReplace { prompt, search } => ImageServicesRequest::SearchReplace(SearchReplaceRequest {
            prompt: prompt.to_owned(),
            search_prompt: search.to_owned(),
            negative_prompt,
            image,
            seed,
            output_format,
        }),
        CheckedTask::SearchRecolor { prompt, select } => ImageServicesRequest::SearchRecolor(SearchRecolorRequest {
            prompt: prompt.to_owned(),
            select_prompt: select.to_owned(),
            negative_prompt,
            image,
            seed,
            output_format,
        }),
        CheckedTask::Outpaint { prompt, amounts: (left, right, up, down) } => {
            ImageServicesRequest::Outpaint(OutpaintRequest {
                image,
                prompt: prompt.map(str::to_owned),
                left,
                right,
                up,
                down,
                seed,
                output_format,
            })
        }
        CheckedTask::Upscale { prompt } => ImageServicesRequest::Upscale(UpscaleRequest {
            prompt: prompt.to_owned(),
            negative_prompt,
            image,
            seed,
            output_format,
        }),
        CheckedTask::ImageOnly => ImageServicesRequest::ImageOnly(ImageOnlyRequest { image, output_format }),
    })
}

/// Checks a request against `tool`'s documented limits, once its mode is known to fit it.
fn checked_tool<'request>(
    model: &ModelEntry,
    tool: ServiceTool,
    request: &'request EditRequest,
    seed: Seed,
) -> Result<CheckedEdit<'request>, Invalid> {
    let alias = model.alias.as_str();
    let takes = takes(tool);
    refuse_what_is_not_taken(alias, tool, takes, request)?;
    check_image(alias, request.source.size(), takes.limits)?;
    if takes.seed && seed.0 > MAX_SEED {
        return Err(Invalid::new(format!(
            "the seed {seed} is out of range; {alias} takes 0 to 4,294,967,294: choose a smaller seed"
        )));
    }

    let task = match tool {
        ServiceTool::Inpaint => CheckedTask::Inpaint {
            prompt: painting_prompt(alias, request)?,
            mask: painted_mask(alias, request, "the region", "the region to change")?,
        },
        ServiceTool::EraseObject => {
            CheckedTask::Erase { mask: painted_mask(alias, request, "what to erase", "what to erase")? }
        }
        ServiceTool::SearchReplace => CheckedTask::SearchReplace {
            prompt: painting_prompt(alias, request)?,
            search: described_region(alias, request, "replace")?,
        },
        ServiceTool::SearchRecolor => CheckedTask::SearchRecolor {
            prompt: painting_prompt(alias, request)?,
            select: described_region(alias, request, "recolor")?,
        },
        ServiceTool::Outpaint => {
            let amounts = outpaint_amounts(request.source.size(), request.outpaint_direction);
            let prompt = request.prompt.as_ref().map(|prompt| prompt.as_str());
            if let Some(prompt) = prompt {
                check_length("the prompt", prompt, alias, MAX_PROMPT)?;
            }
            CheckedTask::Outpaint { prompt, amounts }
        }
        ServiceTool::UpscaleConservative | ServiceTool::UpscaleCreative => {
            // The page lists `prompt` as required for both upscalers, yet says "Minimum 0" characters,
            // the same wording it uses for every tool. We do not send an empty prompt on the strength
            // of that; we ask for one, which costs the user nothing.
            let Some(prompt) = &request.prompt else {
                return Err(Invalid::new(format!(
                    "{alias} needs a prompt describing the picture, such as \"a red fox in the snow, photo\"; \
                     the default upscaler needs none"
                )));
            };
            check_length("the prompt", prompt.as_str(), alias, MAX_PROMPT)?;
            CheckedTask::Upscale { prompt: prompt.as_str() }
        }
        ServiceTool::RemoveBackground | ServiceTool::UpscaleFast => CheckedTask::ImageOnly,
    };

    let negative = match &request.negative_prompt {
        Some(negative) if takes.negative_prompt => {
            check_length("the negative prompt", negative.as_str(), alias, MAX_PROMPT)?;
            Some(negative.as_str())
        }
        _ => None,
    };
    Ok(CheckedEdit { task, negative })
}

/// The painted mask of the tools that take one (inpaint and erase). `what` names what to
/// paint white when the region was described in words, `what_to_change` when it is missing.
fn painted_mask<'request>(
    alias: &str,
    request: &'request EditRequest,
    what: &str,
    what_to_change: &str,
) -> Result<&'request CheckedImage, Invalid> {
    match &request.region {
        Some(Region::MaskImage(mask)) => Ok(mask),
        Some(Region::MaskPrompt(_)) => Err(Invalid::new(format!(
            "{alias} needs a painted mask image, not a mask prompt: paint {what} white, or use search-replace, \
             which finds a region described in words"
        ))),
        None => Err(Invalid::new(format!("{alias} needs a mask image: paint {what_to_change} white"))),
    }
}

/// The region the search tools find, described in words; `verb` is what they do to it.
fn described_region<'request>(
    alias: &str,
    request: &'request EditRequest,
    verb: &str,
) -> Result<&'request str, Invalid> {
    let described = match &request.region {
        Some(Region::MaskPrompt(described)) => described.as_str(),
        Some(Region::MaskImage(_)) => {
            return Err(Invalid::new(format!(
                "{alias} finds the region from a mask prompt and takes no mask image: describe what to {verb} in \
                 words, such as \"the jacket\", or use inpaint with the painted mask"
            )));
        }
        None => {
            return Err(Invalid::new(format!(
                "{alias} needs a mask prompt saying what to {verb}, such as \"the jacket\""
            )));
        }
    };
    check_length("the mask prompt", described, alias, MAX_PROMPT)?;
    Ok(described)
}

/// The prompt saying what to paint, for the tools that require one.
fn painting_prompt<'a>(alias: &str, request: &'a EditRequest) -> Result<&'a str, Invalid> {
    let prompt = request
        .prompt
        .as_ref()
        .map(|prompt| prompt.as_str())
        .ok_or_else(|| Invalid::new(format!("{alias} needs a prompt saying what to paint")))?;
    check_length("the prompt", prompt, alias, MAX_PROMPT)?;
    Ok(prompt)
}

/// Refuses what the user gave but the tool has no field for, rather than dropping it unseen.
fn refuse_what_is_not_taken(
    alias: &str,
    tool: ServiceTool,
    takes: Takes,
    request: &EditRequest,
) -> Result<(), Invalid> {
    if !takes.prompt && request.prompt.is_some() {
        return Err(Invalid::new(format!("{alias} takes no prompt: leave it out")));
    }
    if !takes.negative_prompt && request.negative_prompt.is_some() {
        return Err(Invalid::new(format!("{alias} takes no negative prompt: leave it out")));
    }
    let uses_region = matches!(
        tool,
        ServiceTool::Inpaint | ServiceTool::EraseObject | ServiceTool::SearchReplace | ServiceTool::SearchRecolor
    );
    match &request.region {
        Some(Region::MaskImage(_)) if !uses_region => {
            Err(Invalid::new(format!("{alias} works on the whole picture and takes no mask image: leave it out")))
        }
        Some(Region::MaskPrompt(_)) if !uses_region => {
            Err(Invalid::new(format!("{alias} works on the whole picture and takes no mask prompt: leave it out")))
        }
        _ => Ok(()),
    }
}

/// Writes a count with thousands separators, as the limits are documented: 9,437,184.
fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Checks the source image against a tool's documented size and shape limits.
fn check_image(alias: &str, size: Size, limits: ImageLimits) -> Result<(), Invalid> {
    let Size { width, height } = size;
    let pixels = u64::from(width) * u64::from(height);
    if width < limits.min_side || height < limits.min_side {
        return Err(Invalid::new(format!(
            "the image is {size} pixels; {alias} needs every side to be at least {} pixels: use a larger image",
            limits.min_side
        )));
    }
    if pixels < limits.min_pixels {
        return Err(Invalid::new(format!(
            "the image is {size} pixels; {alias} takes at least {} pixels: use a larger image",
            thousands(limits.min_pixels)
        )));
    }
    if let Some(max_side) = limits.max_side
        && (width > max_side || height > max_side)
    {
        return Err(Invalid::new(format!(
            "the image is {size} pixels; {alias} takes at most {} pixels on a side and {} in all: scale it down",
            thousands(u64::from(max_side)),
            thousands(limits.max_pixels)
        )));
    }
    if pixels > limits.max_pixels {
        return Err(Invalid::new(format!(
            "the image is {size} pixels; {alias} takes at most {} pixels: scale it down",
            thousands(limits.max_pixels)
        )));
    }
    // Between 1:2.5 and 2.5:1, in whole numbers: 2 * long side <= 5 * short side.
    let (long, short) = (u64::from(width.max(height)), u64::from(width.min(height)));
    if limits.shape_limited && 2 * long > 5 * short {
        let ratio = long as f64 / short as f64;
        let shape = if width >= height { format!("{ratio:.2}:1") } else { format!("1:{ratio:.2}") };
        return Err(Invalid::new(format!(
            "the image is {size} pixels, a {shape} shape; {alias} takes shapes between 1:2.5 and 2.5:1: crop it"
        )));
    }
    Ok(())
}

/// How many pixels outpaint adds on the left, right, top and bottom: the picture grows by half
/// its width or height in total, all on one side or split between two, at most
/// [`MAX_OUTPAINT_SIDE`] on any side.
fn outpaint_amounts(size: Size, direction: OutpaintDirection) -> (u32, u32, u32, u32) {
    let cap = |pixels: u32| pixels.min(MAX_OUTPAINT_SIDE);
    let (half_width, half_height) = (cap(size.width / 2), cap(size.height / 2));
    let (quarter_width, quarter_height) = (cap(size.width / 4), cap(size.height / 4));
    match direction {
        OutpaintDirection::All => (quarter_width, quarter_width, quarter_height, quarter_height),
        OutpaintDirection::Left => (half_width, 0, 0, 0),
        OutpaintDirection::Right => (0, half_width, 0, 0),
        OutpaintDirection::Up => (0, 0, half_height, 0),
        OutpaintDirection::Down => (0, 0, 0, half_height),
    }
}

#[cfg(test)]
mod tests;
