//! Stability AI's current text-to-image models on Bedrock: SD3.5 Large, Stable Image Ultra
//! and Stable Image Core. They take an aspect ratio rather than pixel sizes; SD3.5 also takes
//! a source image (`mode: image-to-image`). Their response format, `images[]`, `seeds[]`,
//! `finish_reasons[]`, is shared with the Image Services tools.

use serde::{Deserialize, Serialize};

use super::wire::{Answer, Base64Image, OutputFormat, ReturnedImage, check_length, image_base64, parse_response};
use crate::engine::catalog::ModelEntry;
use crate::error::{Error, Invalid};
use crate::request::{AspectRatio, EditMode, EditRequest, GenerationRequest, Seed, Shape};

/// The aspect ratios these models accept.
pub const ASPECT_RATIOS: [&str; 9] = ["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"];

/// The longest prompt these models take.
pub const MAX_PROMPT: usize = 10_000;

/// The largest seed these models take.
pub const MAX_SEED: u32 = 4_294_967_294;

fn greatest_common_divisor(left: u32, right: u32) -> u32 {
    if right == 0 { left } else { greatest_common_divisor(right, left % right) }
}

/// The request's shape as one of [`ASPECT_RATIOS`]; an exact size is accepted when it has one
/// of those ratios.
fn aspect_ratio(model: &ModelEntry, shape: Shape) -> Result<String, Invalid> {
    let AspectRatio { width, height } = match shape {
        Shape::Aspect(ratio) => ratio,
        Shape::Size(size) => AspectRatio { width: size.width, height: size.height },
    };
    let divisor = greatest_common_divisor(width, height).max(1);
    let ratio = format!("{}:{}", width / divisor, height / divisor);
    if ASPECT_RATIOS.contains(&ratio.as_str()) {
        return Ok(ratio);
    }
    let what = match shape {
        Shape::Aspect(_) => format!("the aspect ratio {ratio}"),
        Shape::Size(size) => format!("the size {size}"),
    };
    Err(Invalid::new(format!(
        "{} draws in fixed aspect ratios and cannot make {what}: use one of {}",
        model.alias,
        ASPECT_RATIOS.join(", ")
    )))
}

/// A request body for SD3.5 Large, Stable Image Ultra and Core, whose `mode` says the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum StabilityRequest {
    TextToImage {
        prompt: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        negative_prompt: Option<String>,
        /// One of [`ASPECT_RATIOS`].
        aspect_ratio: String,
        seed: u32,
        output_format: OutputFormat,
    },
    /// SD3.5 only.
    ImageToImage {
        prompt: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        negative_prompt: Option<String>,
        /// The source image, base64.
        image: String,
        /// How far the result may move away from the source, 0 to 1.
        strength: f64,
        seed: u32,
        output_format: OutputFormat,
    },
}

/// Checks a text-to-image request against these models' limits, returning the aspect ratio
/// to ask for.
fn checked_generation(model: &ModelEntry, request: &GenerationRequest) -> Result<String, Invalid> {
    check_length("the prompt", request.prompt.as_str(), &model.alias, MAX_PROMPT)?;
    // SD3.5, Ultra and Core choose their own guidance and steps.
    request.guidance.refuse_unsupported(&model.alias, false, false)?;
    if !request.colors.is_empty() {
        return Err(Invalid::new(format!(
            "{} cannot follow a colour palette: use titan-v2 or nova-canvas",
            model.alias
        )));
    }
    let aspect_ratio = aspect_ratio(model, request.shape)?;
    if let Some(negative) = &request.negative_prompt {
        check_length("the negative prompt", negative.as_str(), &model.alias, MAX_PROMPT)?;
    }
    Ok(aspect_ratio)
}

/// Checks a text-to-image request against these models' limits.
pub fn check_generation(model: &ModelEntry, request: &GenerationRequest) -> Result<(), Invalid> {
    checked_generation(model, request).map(drop)
}

/// The body of a text-to-image request, once checked.
pub fn generation_body(
    model: &ModelEntry,
    request: &GenerationRequest,
    seed: Seed,
) -> Result<StabilityRequest, Invalid> {
    let aspect_ratio = checked_generation(model, request)?;
    Ok(StabilityRequest::TextToImage {
        prompt: request.prompt.as_str().to_owned(),
        negative_prompt: request.negative_prompt.as_ref().map(|prompt| prompt.as_str().to_owned()),
        aspect_ratio,
        seed: seed.0,
        output_format: OutputFormat::Png,
    })
}

/// SD3.5 needs some text to steer by; a variation without a prompt follows the picture itself.
fn edit_prompt(request: &EditRequest) -> &str {
    request.prompt.as_ref().map(|prompt| prompt.as_str()).unwrap_or("")
}

/// Checks an image-to-image request (a variation) against these models' limits, without
/// touching its image.
pub fn check_edit(model: &ModelEntry, request: &EditRequest) -> Result<(), Error> {
    if request.mode != EditMode::Variation {
        return Err(Invalid::new(format!("{} cannot {}", model.alias, request.mode)).into());
    }
    check_length("the prompt", edit_prompt(request), &model.alias, MAX_PROMPT)?;
    Ok(())
}

/// The body of an image-to-image request (a variation), checked, with the source in base64:
/// CPU work for the blocking pool.
pub fn edit_body(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<StabilityRequest, Error> {
    check_edit(model, request)?;
    // `strength` is how far the result may move away from the source: the opposite of similarity.
    let strength = 1.0 - f64::from(request.similarity.unwrap_or(0.7));
    Ok(StabilityRequest::ImageToImage {
        prompt: edit_prompt(request).to_owned(),
        negative_prompt: request.negative_prompt.as_ref().map(|prompt| prompt.as_str().to_owned()),
        image: image_base64(&request.source)?,
        strength: (strength * 100.0).round() / 100.0,
        seed: seed.0,
        output_format: OutputFormat::Png,
    })
}

#[derive(Debug, Deserialize)]
struct Response<'body> {
    #[serde(default, borrow)]
    images: Vec<Base64Image<'body>>,
    #[serde(default)]
    seeds: Vec<u64>,
    #[serde(default)]
    finish_reasons: Vec<Option<String>>,
}

/// Reads a response: any non-null finish reason that names a filter is a block; any other
/// is the model failing to draw.
pub fn read_response(body: &[u8]) -> Result<Answer, Error> {
    let response: Response<'_> = parse_response(body, "Stability")?;
    if let Some(reason) = response.finish_reasons.iter().flatten().next() {
        if let Some(filtered) = reason.strip_prefix("Filter reason: ") {
            let what = match filtered.trim() {
                "prompt" => "the prompt",
                "input image" => "the source image",
                "output image" => "the image it drew",
                other => other,
            };
            return Ok(Answer::Filtered(format!("the model's content filter refused {what}")));
        }
        return Err(Error::Busy(format!("the model could not draw this ({reason}); try again")));
    }
    if response.images.is_empty() {
        return Err(Error::operator("reading a Stability response", "it holds no image"));
    }
    let images = response
        .images
        .iter()
        .enumerate()
        .map(|(index, text)| {
            Ok(ReturnedImage {
                bytes: text.decode()?,
                seed: response.seeds.get(index).and_then(|seed| u32::try_from(*seed).ok()).map(Seed),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Answer::Images(images))
}

#[cfg(test)]
mod tests;
