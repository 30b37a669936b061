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

use serde_json::{Value, json};

use super::stability::{MAX_PROMPT, MAX_SEED};
use super::wire::{Images, MaskConvention, check_length};
use crate::engine::catalog::{Family, ModelEntry, ServiceTool};
use crate::error::{Error, Invalid};
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

/// The body of an edit request for one Image Services tool. Every documented limit is checked
/// here, so a request the tool would refuse never costs a model call.
pub fn edit_body(model: &ModelEntry, tool: ServiceTool, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    build_edit(model, tool, request, seed, Images::Encoded)
}

/// Checks an edit request as [`edit_body`] would, every limit included, without encoding
/// any image.
pub fn check_edit(model: &ModelEntry, tool: ServiceTool, request: &EditRequest, seed: Seed) -> Result<(), Error> {
    build_edit(model, tool, request, seed, Images::Omitted).map(|_| ())
}

fn build_edit(
    model: &ModelEntry,
    tool: ServiceTool,
    request: &EditRequest,
    seed: Seed,
    images: Images,
) -> Result<Value, Error> {
    // The catalog says which edit modes each tool does; erase has none of ours yet.
    if !Family::StabilityService(tool).edit_modes().contains(&request.mode) {
        return Err(Invalid::new(format!("{} cannot {}", model.alias, request.mode)).into());
    }
    tool_body(model, tool, request, seed, images)
}

/// The body for `tool`, once the request's mode is known to fit it.
fn tool_body(
    model: &ModelEntry,
    tool: ServiceTool,
    request: &EditRequest,
    seed: Seed,
    images: Images,
) -> Result<Value, Error> {
    let alias = model.alias.as_str();
    let takes = takes(tool);
    refuse_what_is_not_taken(alias, tool, takes, request)?;
    check_image(alias, request.source.size(), takes.limits)?;
    if takes.seed && seed.0 > MAX_SEED {
        return Err(Invalid::new(format!(
            "the seed {seed} is out of range; {alias} takes 0 to 4,294,967,294: choose a smaller seed"
        ))
        .into());
    }

    let mut body = match tool {
        ServiceTool::Inpaint => {
            let prompt = painting_prompt(alias, request)?;
            let mask = match &request.region {
                Some(Region::MaskImage(mask)) => mask,
                Some(Region::MaskPrompt(_)) => {
                    return Err(Invalid::new(format!(
                        "{alias} needs a painted mask image, not a mask prompt: paint the region black, or use \
                         search-replace, which finds a region described in words"
                    ))
                    .into());
                }
                None => {
                    return Err(
                        Invalid::new(format!("{alias} needs a mask image: paint the region to change black")).into()
                    );
                }
            };
            json!({
                "prompt": prompt,
                "image": images.source(&request.source)?,
                "mask": images.mask(mask, MaskConvention::WhiteMarksRegion)?,
            })
        }
        ServiceTool::EraseObject => {
            let mask = match &request.region {
                Some(Region::MaskImage(mask)) => mask,
                Some(Region::MaskPrompt(_)) => {
                    return Err(Invalid::new(format!(
                        "{alias} needs a painted mask image, not a mask prompt: paint what to erase black, or use \
                         search-replace, which finds a region described in words"
                    ))
                    .into());
                }
                None => {
                    return Err(Invalid::new(format!("{alias} needs a mask image: paint what to erase black")).into());
                }
            };
            json!({
                "image": images.source(&request.source)?,
                "mask": images.mask(mask, MaskConvention::WhiteMarksRegion)?,
            })
        }
        ServiceTool::SearchReplace | ServiceTool::SearchRecolor => {
            let prompt = painting_prompt(alias, request)?;
            let (field, verb) = match tool {
                ServiceTool::SearchReplace => ("search_prompt", "replace"),
                _ => ("select_prompt", "recolor"),
            };
            let described = match &request.region {
                Some(Region::MaskPrompt(described)) => described.as_str(),
                Some(Region::MaskImage(_)) => {
                    return Err(Invalid::new(format!(
                        "{alias} finds the region from a mask prompt and takes no mask image: describe what to \
                         {verb} in words, such as \"the jacket\", or use inpaint with the painted mask"
                    ))
                    .into());
                }
                None => {
                    return Err(Invalid::new(format!(
                        "{alias} needs a mask prompt saying what to {verb}, such as \"the jacket\""
                    ))
                    .into());
                }
            };
            check_length("the mask prompt", described, alias, MAX_PROMPT)?;
            json!({
                "prompt": prompt,
                "image": images.source(&request.source)?,
                (field): described,
            })
        }
        ServiceTool::Outpaint => {
            let (left, right, up, down) = outpaint_amounts(request.source.size(), request.outpaint_direction);
            let mut body = json!({
                "image": images.source(&request.source)?,
                "left": left,
                "right": right,
                "up": up,
                "down": down,
            });
            if let Some(prompt) = &request.prompt {
                check_length("the prompt", prompt.as_str(), alias, MAX_PROMPT)?;
                body["prompt"] = json!(prompt.as_str());
            }
            body
        }
        ServiceTool::UpscaleConservative | ServiceTool::UpscaleCreative => {
            // The page lists `prompt` as required for both upscalers, yet says "Minimum 0" characters,
            // the same wording it uses for every tool. We do not send an empty prompt on the strength
            // of that; we ask for one, which costs the user nothing.
            let Some(prompt) = &request.prompt else {
                return Err(Invalid::new(format!(
                    "{alias} needs a prompt describing the picture, such as \"a red fox in the snow, photo\"; \
                     the default upscaler needs none"
                ))
                .into());
            };
            check_length("the prompt", prompt.as_str(), alias, MAX_PROMPT)?;
            json!({
                "prompt": prompt.as_str(),
                "image": images.source(&request.source)?,
            })
        }
        ServiceTool::RemoveBackground | ServiceTool::UpscaleFast => json!({ "image": images.source(&request.source)? }),
    };

    if takes.negative_prompt
        && let Some(negative) = &request.negative_prompt
    {
        check_length("the negative prompt", negative.as_str(), alias, MAX_PROMPT)?;
        body["negative_prompt"] = json!(negative.as_str());
    }
    if takes.seed {
        // 0 asks the tool for a random seed; the response reports the one it used.
        body["seed"] = json!(seed.0);
    }
    body["output_format"] = json!("png");
    Ok(body)
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
