//! Amazon Titan Image Generator v1 and v2, and Nova Canvas, which share one schema:
//! `taskType`, a params object per task, and `imageGenerationConfig`. A content-filter block
//! arrives as a `ValidationException` (see `client`), not in the response body.

use serde::{Deserialize, Serialize};

use super::wire::{
    Answer, Base64Image, MaskConvention, ReturnedImage, check_length, image_base64, mask_base64, parse_response,
};
use crate::engine::catalog::{ModelEntry, TitanVariant};
use crate::error::{Error, Invalid};
use crate::images::{CheckedImage, encode_png};
use crate::request::{
    AspectRatio, EditMode, EditRequest, GenerationRequest, OutpaintDirection, Region, Seed, Shape, Size,
};

/// The sizes Titan v1 and v2 accept.
pub const TITAN_SIZES: [(u32, u32); 17] = [
    (1024, 1024),
    (768, 768),
    (512, 512),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (1280, 768),
    (1152, 640),
    (1173, 640),
    (896, 1152),
    (832, 1216),
    (768, 1344),
    (640, 1536),
    (768, 1280),
    (640, 1152),
    (640, 1173),
];

/// The longest side of a source image Titan v1 and v2 edit.
pub const TITAN_MAX_SOURCE_SIDE: u32 = 1_408;

/// Classifier-free guidance (Titan's documented default).
const CFG_SCALE: f64 = 8.0;

/// The limits of one variant.
struct Limits {
    max_text: usize,
    max_seed: u32,
}

fn limits(variant: TitanVariant) -> Limits {
    match variant {
        TitanVariant::TitanV1 | TitanVariant::TitanV2 => Limits { max_text: 512, max_seed: 2_147_483_646 },
        TitanVariant::NovaCanvas => Limits { max_text: 1_024, max_seed: 858_993_459 },
    }
}

/// The largest seed a variant accepts.
pub fn max_seed(variant: TitanVariant) -> u32 {
    limits(variant).max_seed
}

fn check_seed(model: &ModelEntry, variant: TitanVariant, seed: Seed) -> Result<(), Invalid> {
    let max = limits(variant).max_seed;
    if seed.0 > max {
        return Err(Invalid::new(format!("{} takes seeds from 0 to {max}; {seed} is too large", model.alias)));
    }
    Ok(())
}

fn check_texts(
    model: &ModelEntry,
    variant: TitanVariant,
    prompt: Option<&str>,
    negative: Option<&str>,
) -> Result<(), Invalid> {
    let limit = limits(variant).max_text;
    if let Some(prompt) = prompt {
        check_length("the prompt", prompt, &model.alias, limit)?;
    }
    if let Some(negative) = negative {
        check_length("the negative prompt", negative, &model.alias, limit)?;
    }
    Ok(())
}

/// Nova Canvas's size rules: sides 320-4096 and divisible by 16, aspect 1:4 to 4:1, fewer than
/// 4,194,304 pixels.
fn check_nova_size(model: &ModelEntry, size: Size) -> Result<(), Invalid> {
    let side_ok = |side: u32| (320..=4096).contains(&side) && side.is_multiple_of(16);
    if !side_ok(size.width) || !side_ok(size.height) {
        return Err(Invalid::new(format!(
            "{} draws sides of 320 to 4096 pixels in steps of 16; {size} is not one: adjust the size",
            model.alias
        )));
    }
    if size.width > size.height * 4 || size.height > size.width * 4 {
        return Err(Invalid::new(format!(
            "{} keeps the aspect ratio between 1:4 and 4:1; {size} is beyond it",
            model.alias
        )));
    }
    if u64::from(size.width) * u64::from(size.height) >= 4_194_304 {
        return Err(Invalid::new(format!(
            "{size} is over {}'s 4,194,304-pixel limit: ask for a smaller size",
            model.alias
        )));
    }
    Ok(())
}

fn size_for(model: &ModelEntry, variant: TitanVariant, shape: Shape) -> Result<Size, Invalid> {
    if variant == TitanVariant::NovaCanvas {
        let size = shape.to_size();
        check_nova_size(model, size)?;
        return Ok(size);
    }
    match shape {
        Shape::Size(size) if TITAN_SIZES.contains(&(size.width, size.height)) => Ok(size),
        Shape::Size(size) => Err(Invalid::new(format!(
            "{} cannot draw {size}: use one of {}, or give an aspect ratio",
            model.alias,
            TITAN_SIZES.iter().map(|(w, h)| format!("{w}x{h}")).collect::<Vec<_>>().join(", ")
        ))),
        Shape::Aspect(AspectRatio { width, height }) => {
            let wanted = f64::from(width) / f64::from(height);
            // The closest ratio, and among equals the largest picture.
            let closest = TITAN_SIZES
                .iter()
                .min_by(|left, right| {
                    let distance = |(w, h): &(u32, u32)| (f64::from(*w) / f64::from(*h) / wanted).ln().abs();
                    distance(left).total_cmp(&distance(right)).then((right.0 * right.1).cmp(&(left.0 * left.1)))
                })
                .copied()
                .unwrap_or((1024, 1024));
            Ok(Size { width: closest.0, height: closest.1 })
        }
    }
}

/// A request body for Titan Image Generator v1 and v2 and Nova Canvas: the task type, the
/// task's params object, and (for every task but background removal) `imageGenerationConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "taskType", rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
pub enum TitanRequest {
    TextImage {
        text_to_image_params: TextToImageParams,
        image_generation_config: ImageGenerationConfig,
    },
    ColorGuidedGeneration {
        color_guided_generation_params: ColorGuidedGenerationParams,
        image_generation_config: ImageGenerationConfig,
    },
    Inpainting {
        in_painting_params: InPaintingParams,
        image_generation_config: ImageGenerationConfig,
    },
    Outpainting {
        out_painting_params: OutPaintingParams,
        image_generation_config: ImageGenerationConfig,
    },
    ImageVariation {
        image_variation_params: ImageVariationParams,
        image_generation_config: ImageGenerationConfig,
    },
    BackgroundRemoval {
        background_removal_params: BackgroundRemovalParams,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextToImageParams {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColorGuidedGenerationParams {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_text: Option<String>,
    /// One to ten colours as `#RRGGBB`.
    pub colors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPaintingParams {
    /// The source image, base64. Without `text`, Titan removes what the mask covers.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_text: Option<String>,
    #[serde(flatten)]
    pub mask: TitanMask,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutPaintingParams {
    /// The source image (or the zoom-out canvas), base64.
    pub image: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_text: Option<String>,
    #[serde(flatten)]
    pub mask: TitanMask,
    pub out_painting_mode: OutPaintingMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageVariationParams {
    /// The source images, base64 (we send one).
    pub images: Vec<String>,
    pub similarity_strength: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundRemovalParams {
    /// The source image, base64.
    pub image: String,
}

/// The region to change: described in words, or painted (black = inside the mask). The two
/// fields are exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TitanMask {
    MaskPrompt(String),
    /// A mask image, base64 PNG.
    MaskImage(String),
}

/// `DEFAULT` lets pixels inside the mask change for consistency; `PRECISE` keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutPaintingMode {
    Default,
    Precise,
}

/// The settings every generating task shares. Edits take their size from the source, so they
/// send no width or height.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageGenerationConfig {
    pub number_of_images: u32,
    pub quality: Quality,
    pub cfg_scale: f64,
    pub seed: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Standard,
}

/// A text-to-image request, checked: what its body is built from.
struct CheckedGeneration {
    cfg_scale: f64,
    size: Size,
    /// Whether a palette makes it a colour-guided generation.
    color_guided: bool,
}

fn checked_generation(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &GenerationRequest,
    seed: Seed,
) -> Result<CheckedGeneration, Invalid> {
    let negative = request.negative_prompt.as_ref().map(|prompt| prompt.as_str());
    check_texts(model, variant, Some(request.prompt.as_str()), negative)?;
    check_seed(model, variant, seed)?;
    // Titan and Nova Canvas document cfgScale from 1.1 to 10; they have no step count.
    request.guidance.refuse_unsupported(&model.alias, true, false)?;
    let cfg_scale = request.guidance.cfg_scale_within(&model.alias, 1.1, 10.0)?.map_or(CFG_SCALE, f64::from);
    if request.style.is_some() {
        return Err(Invalid::new(format!(
            "{} takes no style preset: describe the style in the prompt, or use sdxl for presets",
            model.alias
        )));
    }
    let size = size_for(model, variant, request.shape)?;
    let color_guided = !request.colors.is_empty();
    if color_guided && variant == TitanVariant::TitanV1 {
        return Err(Invalid::new(format!(
            "{} cannot follow a colour palette: use titan-v2 or nova-canvas",
            model.alias
        )));
    }
    Ok(CheckedGeneration { cfg_scale, size, color_guided })
}

/// Checks a text-to-image request, with the seed it will ask for, against the variant's limits.
pub fn check_generation(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &GenerationRequest,
    seed: Seed,
) -> Result<(), Invalid> {
    checked_generation(model, variant, request, seed).map(drop)
}

/// The body of a text-to-image request (colour-guided when it has a palette), once checked.
pub fn generation_body(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &GenerationRequest,
    seed: Seed,
) -> Result<TitanRequest, Invalid> {
    let CheckedGeneration { cfg_scale, size, color_guided } = checked_generation(model, variant, request, seed)?;
    let text = request.prompt.as_str().to_owned();
    let negative_text = request.negative_prompt.as_ref().map(|prompt| prompt.as_str().to_owned());
    let image_generation_config = ImageGenerationConfig {
        number_of_images: request.count.get(),
        quality: Quality::Standard,
        cfg_scale,
        seed: seed.0,
        width: Some(size.width),
        height: Some(size.height),
    };
    Ok(if color_guided {
        let colors = request.colors.iter().map(|color| color.as_str().to_owned()).collect();
        TitanRequest::ColorGuidedGeneration {
            color_guided_generation_params: ColorGuidedGenerationParams { text, negative_text, colors },
            image_generation_config,
        }
    } else {
        TitanRequest::TextImage {
            text_to_image_params: TextToImageParams { text, negative_text },
            image_generation_config,
        }
    })
}

/// The region as Titan takes it: `maskPrompt` or `maskImage`, in which black is "inside the
/// mask". Inpainting repaints the inside and outpainting the outside, so a painted region to
/// change (white, by our rule) goes in black for the one and stays white for the other.
fn mask_field(region: &Region, repaints: Repaints) -> Result<TitanMask, Error> {
    let convention = match repaints {
        Repaints::InsideTheMask => MaskConvention::BlackMarksRegion,
        Repaints::OutsideTheMask => MaskConvention::WhiteMarksRegion,
    };
    Ok(match region {
        Region::MaskPrompt(prompt) => TitanMask::MaskPrompt(prompt.as_str().to_owned()),
        Region::MaskImage(mask) => TitanMask::MaskImage(mask_base64(mask, convention)?),
    })
}

/// Which side of its mask a Titan task repaints.
#[derive(Debug, Clone, Copy)]
enum Repaints {
    InsideTheMask,
    OutsideTheMask,
}

/// A zoom-out for Titan's outpainting, which keeps what is inside the mask and paints the rest:
/// the source is shrunk onto a canvas of its own size, placed by the direction, and the mask
/// covers it, so the model paints the new surroundings.
fn zoom_out_canvas(source: &CheckedImage, direction: OutpaintDirection) -> Result<(String, String), Error> {
    let pixels = source.decode()?;
    let (width, height) = (pixels.width(), pixels.height());
    let (inner_width, inner_height) = ((width * 2 / 3).max(1), (height * 2 / 3).max(1));
    let shrunk = pixels.resize_exact(inner_width, inner_height, image::imageops::FilterType::Lanczos3).to_rgb8();
    let (left, top) = match direction {
        OutpaintDirection::All => ((width - inner_width) / 2, (height - inner_height) / 2),
        OutpaintDirection::Left => (width - inner_width, (height - inner_height) / 2),
        OutpaintDirection::Right => (0, (height - inner_height) / 2),
        OutpaintDirection::Up => ((width - inner_width) / 2, height - inner_height),
        OutpaintDirection::Down => ((width - inner_width) / 2, 0),
    };
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    image::imageops::overlay(&mut canvas, &shrunk, i64::from(left), i64::from(top));
    let mask = image::GrayImage::from_fn(width, height, |x, y| {
        let inside = x >= left && x < left + inner_width && y >= top && y < top + inner_height;
        image::Luma([if inside { 0 } else { 255 }])
    });
    let encode = |picture: image::DynamicImage| {
        encode_png(&picture, &[]).map_err(|error| Error::operator("preparing an outpaint canvas", error))
    };
    let canvas = encode(image::DynamicImage::ImageRgb8(canvas))?;
    let mask = encode(image::DynamicImage::ImageLuma8(mask))?;
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    Ok((base64.encode(canvas), base64.encode(mask)))
}

/// An edit request, checked: what its body is built from. The images are only referred to;
/// they are encoded (and an outpaint canvas drawn) when the body is built.
enum CheckedEdit<'request> {
    Inpaint {
        region: &'request Region,
    },
    /// An outpaint around the given region, or a zoom-out when there is none.
    Outpaint {
        region: Option<&'request Region>,
    },
    Variation {
        similarity: f64,
    },
    RemoveBackground,
}

fn checked_edit<'request>(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &'request EditRequest,
    seed: Seed,
) -> Result<CheckedEdit<'request>, Invalid> {
    check_texts(model, variant, edit_prompt(request), edit_negative(request))?;
    check_seed(model, variant, seed)?;
    if request.source.bytes().len() > 5 * 1024 * 1024 {
        return Err(Invalid::new(format!(
            "{} takes source images up to 5 MB: save it as JPEG or make it smaller",
            model.alias
        )));
    }
    let source = request.source.size();
    if variant == TitanVariant::NovaCanvas {
        check_nova_size(model, source)?;
    } else if source.width.max(source.height) > TITAN_MAX_SOURCE_SIDE {
        return Err(Invalid::new(format!(
            "the image is {source}; {} edits images up to {TITAN_MAX_SOURCE_SIDE} pixels on the longest side: scale it down",
            model.alias
        )));
    }
    Ok(match request.mode {
        EditMode::Inpaint | EditMode::Replace => CheckedEdit::Inpaint {
            region: request.region.as_ref().ok_or_else(|| Invalid::new(format!("{} needs a region", request.mode)))?,
        },
        EditMode::Outpaint => CheckedEdit::Outpaint { region: request.region.as_ref() },
        EditMode::Variation => CheckedEdit::Variation { similarity: f64::from(request.similarity.unwrap_or(0.7)) },
        EditMode::RemoveBackground if variant != TitanVariant::TitanV1 => CheckedEdit::RemoveBackground,
        mode => return Err(Invalid::new(format!("{} cannot {mode}", model.alias))),
    })
}

fn edit_prompt(request: &EditRequest) -> Option<&str> {
    request.prompt.as_ref().map(|prompt| prompt.as_str())
}

fn edit_negative(request: &EditRequest) -> Option<&str> {
    request.negative_prompt.as_ref().map(|prompt| prompt.as_str())
}

/// Checks an edit request, with the seed it will ask for, against the variant's limits,
/// without touching its images.
pub fn check_edit(model: &ModelEntry, variant: TitanVariant, request: &EditRequest, seed: Seed) -> Result<(), Error> {
    checked_edit(model, variant, request, seed).map(drop).map_err(Error::from)
}

/// The body of an edit request, checked, with its images in base64 (and, for a zoom-out, the
/// canvas drawn): CPU work for the blocking pool.
pub fn edit_body(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &EditRequest,
    seed: Seed,
) -> Result<TitanRequest, Error> {
    let checked = checked_edit(model, variant, request, seed)?;
    let image_generation_config = ImageGenerationConfig {
        number_of_images: 1,
        quality: Quality::Standard,
        cfg_scale: CFG_SCALE,
        seed: seed.0,
        width: None,
        height: None,
    };
    let prompt = edit_prompt(request);
    Ok(match checked {
        CheckedEdit::Inpaint { region } => TitanRequest::Inpainting {
            in_painting_params: InPaintingParams {
                image: image_base64(&request.source)?,
                // Without text, Titan removes what the mask covers, which is what an empty inpaint means.
                text: prompt.map(str::to_owned),
                negative_text: edit_negative(request).map(str::to_owned),
                mask: mask_field(region, Repaints::InsideTheMask)?,
            },
            image_generation_config,
        },
        CheckedEdit::Outpaint { region } => {
            let (image, mask, out_painting_mode) = match region {
                // An explicit region: a painted one is repainted; one described in words is
                // what Titan keeps while it paints around it.
                Some(region) => (
                    image_base64(&request.source)?,
                    mask_field(region, Repaints::OutsideTheMask)?,
                    OutPaintingMode::Default,
                ),
                None => {
                    let (canvas, mask) = zoom_out_canvas(&request.source, request.outpaint_direction)?;
                    (canvas, TitanMask::MaskImage(mask), OutPaintingMode::Precise)
                }
            };
            TitanRequest::Outpainting {
                out_painting_params: OutPaintingParams {
                    image,
                    text: prompt.unwrap_or("the same scene, seen from further away").to_owned(),
                    negative_text: edit_negative(request).map(str::to_owned),
                    mask,
                    out_painting_mode,
                },
                image_generation_config,
            }
        }
        CheckedEdit::Variation { similarity } => TitanRequest::ImageVariation {
            image_variation_params: ImageVariationParams {
                images: vec![image_base64(&request.source)?],
                similarity_strength: similarity,
                text: prompt.map(str::to_owned),
                negative_text: edit_negative(request).map(str::to_owned),
            },
            image_generation_config,
        },
        CheckedEdit::RemoveBackground => TitanRequest::BackgroundRemoval {
            background_removal_params: BackgroundRemovalParams { image: image_base64(&request.source)? },
        },
    })
}

#[derive(Debug, Deserialize)]
struct Response<'body> {
    #[serde(default, borrow)]
    images: Vec<Base64Image<'body>>,
    #[serde(default)]
    error: Option<String>,
}

/// Reads a response: `images[]`, or an `error` the model reports.
pub fn read_response(body: &[u8]) -> Result<Answer, Error> {
    let response: Response<'_> = parse_response(body, "Titan")?;
    if let Some(error) = response.error.filter(|error| !error.is_empty()) {
        return Err(Error::Busy(format!("the model could not draw this ({error}); try again")));
    }
    if response.images.is_empty() {
        return Err(Error::operator("reading a Titan response", "it holds no image"));
    }
    let images = response
        .images
        .iter()
        .map(|text| Ok(ReturnedImage { bytes: text.decode()?, seed: None }))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Answer::Images(images))
}

#[cfg(test)]
mod tests;
