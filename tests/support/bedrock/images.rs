//! InvokeModel for the image models: which family a model id belongs to, each family's request
//! schema, and answers that carry real (solid-colour) images at the size the request implies.
//!
//! The lists and limits here are written out again rather than taken from `atelier-shared`
//! on purpose: the stand-in must know the documented rules independently, or a wrong list in
//! the code under test would pass its own tests.
//!
//! Sources, cited rule by rule below:
//! - SDXL: AWS model-parameters-diffusion-1-0-text-image / -image-image / -image-image-mask;
//!   "samples must be one" is from the AWS SDXL page.
//! - Titan v1/v2: AWS model-parameters-titan-image, titan-image-models.
//! - Nova Canvas: AWS Nova user guide image-gen-req-resp-structure and awslabs/mcp
//!   nova-canvas tests.
//! - SD3.5, Stable Image Ultra/Core: AWS model-parameters-diffusion-3-5-large,
//!   model-parameters-diffusion-stable-ultra-text-image-request-response,
//!   model-parameters-diffusion-stable-image-core-text-image-request-response.
//! - Image Services: AWS stable-image-services.html says the body is the JSON form of Stability's
//!   v2beta edit/upscale APIs with base64 images and the `seeds`/`finish_reasons`/`images`
//!   answer; the per-tool fields and ranges below are Stability's v2beta API reference
//!   (platform.stability.ai/docs/api-reference, as mirrored field by field by the Comfy Router
//!   schemas at docs.comfy.org/development/comfy-router/models/stability/edit-*).

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::{Value, json};

use super::Failure;
use super::schema::{Checked, Object, PNG_JPEG_OR_WEBP, PNG_OR_JPEG, Picture, invalid, malformed};

/// The Titan-schema models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Titan {
    V1,
    V2,
    Nova,
}

/// The Stability AI Image Services tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Inpaint,
    Outpaint,
    EraseObject,
    RemoveBackground,
    SearchReplace,
    SearchRecolor,
    FastUpscale,
    ConservativeUpscale,
    CreativeUpscale,
}

/// A request schema family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Sdxl,
    Titan(Titan),
    Sd35,
    StableImage,
    Service(Tool),
}

/// Picks the family from a model id or inference profile (`us.stability...`), first match wins.
pub fn family(model_id: &str) -> Option<Family> {
    let id = model_id.to_ascii_lowercase();
    let rules: &[(&str, Family)] = &[
        ("stable-diffusion-xl", Family::Sdxl),
        ("titan-image-generator-v2", Family::Titan(Titan::V2)),
        ("titan-image-generator", Family::Titan(Titan::V1)),
        ("nova-canvas", Family::Titan(Titan::Nova)),
        ("sd3", Family::Sd35),
        ("stable-image-ultra", Family::StableImage),
        ("stable-image-core", Family::StableImage),
        ("stable-image-inpaint", Family::Service(Tool::Inpaint)),
        ("stable-outpaint", Family::Service(Tool::Outpaint)),
        ("erase-object", Family::Service(Tool::EraseObject)),
        ("remove-background", Family::Service(Tool::RemoveBackground)),
        ("search-replace", Family::Service(Tool::SearchReplace)),
        ("search-recolor", Family::Service(Tool::SearchRecolor)),
        ("fast-upscale", Family::Service(Tool::FastUpscale)),
        ("conservative-upscale", Family::Service(Tool::ConservativeUpscale)),
        ("creative-upscale", Family::Service(Tool::CreativeUpscale)),
    ];
    rules.iter().find(|(needle, _)| id.contains(needle)).map(|(_, family)| *family)
}

/// What a valid request asks for.
#[derive(Debug, Clone)]
pub struct Plan {
    count: usize,
    width: u32,
    height: u32,
    format: ImageFormat,
    transparent: bool,
    /// The request's seed; 0 or absent means "pick one".
    seed: u64,
    /// Text that picks the colour, so different prompts give different images.
    prompt: String,
    /// Whether the request had a text prompt (Stability's filter reason is then "prompt").
    has_prompt: bool,
}

impl Plan {
    fn new(width: u32, height: u32, prompt: &str) -> Self {
        Self {
            count: 1,
            width,
            height,
            format: ImageFormat::Png,
            transparent: false,
            seed: 0,
            prompt: prompt.to_string(),
            has_prompt: !prompt.is_empty(),
        }
    }
}

/// Validates a body against its family's documented schema.
pub fn check(family: Family, body: &Value) -> Checked<Plan> {
    match family {
        Family::Sdxl => sdxl(body),
        Family::Titan(version) => titan(body, version),
        Family::Sd35 => stable_text(body, true),
        Family::StableImage => stable_text(body, false),
        Family::Service(tool) => service(body, tool),
    }
}

fn seed_of(value: Option<i128>) -> u64 {
    value.and_then(|seed| u64::try_from(seed).ok()).unwrap_or(0)
}

fn dimension(value: Option<i128>, default: u32) -> u32 {
    value.and_then(|side| u32::try_from(side).ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// SDXL 1.0

/// "height/width: must be one of" these.
const SDXL_SIZES: &[(u32, u32)] = &[
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

/// the 17 style presets (also Stability v2beta's `style_preset` enum).
const STYLE_PRESETS: &[&str] = &[
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

fn sdxl(body: &Value) -> Checked<Plan> {
    let root = Object::root(body)?;
    // text-to-image fields, plus the image-to-image and masking fields.
    root.only(&[
        "text_prompts",
        "height",
        "width",
        "cfg_scale",
        "clip_guidance_preset",
        "sampler",
        "samples",
        "seed",
        "steps",
        "style_preset",
        "extras",
        "init_image",
        "init_image_mode",
        "image_strength",
        "step_schedule_start",
        "step_schedule_end",
        "mask_source",
        "mask_image",
    ])?;
    // text_prompts: required, each {text: 0-2000 chars, weight?}; weight < 0 = negative.
    let prompts = root.required_array("text_prompts", 1, usize::MAX)?;
    let mut positive = Vec::new();
    for (index, prompt) in prompts.iter().enumerate() {
        let prompt = Object::at(prompt, format!("{}/{index}", root.pointer_to("text_prompts")))?;
        prompt.only(&["text", "weight"])?;
        let text = prompt.required_string("text", 0, 2000)?;
        let weight = prompt.number("weight", f64::MIN, f64::MAX)?.unwrap_or(1.0);
        if weight >= 0.0 {
            positive.push(text);
        }
    }
    root.number("cfg_scale", 0.0, 35.0)?; // 0-35
    root.enumeration(
        "clip_guidance_preset",
        &["FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST"],
    )?;
    root.enumeration(
        "sampler",
        &[
            "DDIM",
            "DDPM",
            "K_DPMPP_2M",
            "K_DPMPP_2S_ANCESTRAL",
            "K_DPM_2",
            "K_DPM_2_ANCESTRAL",
            "K_EULER",
            "K_EULER_ANCESTRAL",
            "K_HEUN",
            "K_LMS",
        ],
    )?;
    // AWS SDXL page: "Currently Amazon Bedrock supports generating one image ... the value must be one."
    root.integer("samples", 1, 1)?;
    let seed = root.integer("seed", 0, 4_294_967_295)?; // 0-4294967295
    root.integer("steps", 10, 150)?; // 10-150
    root.enumeration("style_preset", STYLE_PRESETS)?;
    root.object("extras")?;
    let width = root.integer("width", 0, i128::from(u32::MAX))?;
    let height = root.integer("height", 0, i128::from(u32::MAX))?;

    let image_keys = ["init_image_mode", "image_strength", "step_schedule_start", "step_schedule_end", "mask_source"];
    let init = root.image("init_image", PNG_OR_JPEG)?;
    let (width, height) = match init {
        None => {
            if image_keys.iter().chain(&["mask_image"]).any(|key| root.has(key)) {
                root.required("init_image")?;
            }
            let size = (dimension(width, 1024), dimension(height, 1024));
            if !SDXL_SIZES.contains(&size) {
                let allowed = SDXL_SIZES.iter().map(|(w, h)| format!("{w}x{h}")).collect::<Vec<_>>().join(", ");
                return Err(invalid(format!(
                    "The dimensions {}x{} are not supported. Width and height must be one of: {allowed}.",
                    size.0, size.1
                )));
            }
            size
        }
        Some(init) => {
            // image-to-image: init_image_mode, image_strength (0-1), step schedule.
            root.enumeration("init_image_mode", &["IMAGE_STRENGTH", "STEP_SCHEDULE"])?;
            root.number("image_strength", 0.0, 1.0)?;
            root.number("step_schedule_start", 0.0, 1.0)?;
            root.number("step_schedule_end", 0.0, 1.0)?;
            // masking: mask_source, and mask_image (same size) unless INIT_IMAGE_ALPHA.
            if root.has("mask_image") && !root.has("mask_source") {
                root.required("mask_source")?;
            }
            match root.enumeration("mask_source", &["MASK_IMAGE_WHITE", "MASK_IMAGE_BLACK", "INIT_IMAGE_ALPHA"])? {
                Some("INIT_IMAGE_ALPHA") => root.forbid("mask_image")?,
                Some(_) => {
                    let mask = root.required_image("mask_image", PNG_OR_JPEG)?;
                    same_size(&root, "mask_image", &init, &mask)?;
                }
                None => {}
            }
            // The output keeps the init image's size; width and height, if sent, are ignored.
            (init.width, init.height)
        }
    };
    let mut plan = Plan::new(width, height, &positive.join(" "));
    plan.seed = seed_of(seed);
    Ok(plan)
}

fn same_size(object: &Object<'_>, key: &str, image: &Picture, mask: &Picture) -> Checked<()> {
    if (image.width, image.height) != (mask.width, mask.height) {
        return Err(invalid(format!(
            "The mask at {} is {}x{} but the image is {}x{}: they must have the same size.",
            object.pointer_to(key),
            mask.width,
            mask.height,
            image.width,
            image.height
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Titan Image Generator v1/v2 and Nova Canvas

/// Titan's supported width x height pairs.
const TITAN_SIZES: &[(u32, u32)] = &[
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

/// Nova Canvas `textToImageParams.style`.
const NOVA_STYLES: &[&str] = &[
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
];

fn titan(body: &Value, version: Titan) -> Checked<Plan> {
    let root = Object::root(body)?;
    // table: v1 has four tasks; v2 adds COLOR_GUIDED_GENERATION and BACKGROUND_REMOVAL;
    // Nova supports every v2 task plus VIRTUAL_TRY_ON.
    let mut tasks = vec!["TEXT_IMAGE", "INPAINTING", "OUTPAINTING", "IMAGE_VARIATION"];
    if version != Titan::V1 {
        tasks.extend(["COLOR_GUIDED_GENERATION", "BACKGROUND_REMOVAL"]);
    }
    if version == Titan::Nova {
        tasks.push("VIRTUAL_TRY_ON");
    }
    let task = root.required_enumeration("taskType", &tasks)?;
    let params_key = match task {
        "TEXT_IMAGE" => "textToImageParams",
        "INPAINTING" => "inPaintingParams",
        "OUTPAINTING" => "outPaintingParams",
        "IMAGE_VARIATION" => "imageVariationParams",
        "COLOR_GUIDED_GENERATION" => "colorGuidedGenerationParams",
        "BACKGROUND_REMOVAL" => "backgroundRemovalParams",
        _ => "virtualTryOnParams",
    };
    root.only(&["taskType", "imageGenerationConfig", params_key])?;
    let params = root.required_object(params_key)?;
    let config = generation_config(&root, version)?;
    // Titan text and negativeText: at most 512 characters; Nova: 1-1024.
    let max_text = if version == Titan::Nova { 1024 } else { 512 };
    let mut plan = Plan::new(config.width, config.height, "");
    plan.count = config.count;
    plan.seed = config.seed;

    match task {
        "TEXT_IMAGE" => {
            let mut keys = vec!["text", "negativeText"];
            if version != Titan::V1 {
                // v2 conditioning image; Nova has it too, and `style`.
                keys.extend(["conditionImage", "controlMode", "controlStrength"]);
            }
            if version == Titan::Nova {
                keys.push("style");
            }
            params.only(&keys)?;
            plan.prompt = params.required_string("text", 1, max_text)?.to_string();
            params.string("negativeText", 1, max_text)?;
            let condition = params.image("conditionImage", PNG_OR_JPEG)?;
            if condition.is_none() && (params.has("controlMode") || params.has("controlStrength")) {
                params.required("conditionImage")?;
            }
            params.enumeration("controlMode", &["CANNY_EDGE", "SEGMENTATION"])?;
            params.number("controlStrength", 0.2, 1.0)?; // "Range: 0.2 to 1.0"
            params.enumeration("style", NOVA_STYLES)?;
        }
        "INPAINTING" | "OUTPAINTING" => {
            let mut keys = vec!["image", "text", "negativeText", "maskPrompt", "maskImage"];
            if task == "OUTPAINTING" {
                keys.push("outPaintingMode");
            }
            params.only(&keys)?;
            let image = titan_input_image(&params, "image", version)?;
            // An empty or missing text in INPAINTING removes the object.
            plan.prompt = params.string("text", 0, max_text)?.unwrap_or_default().to_string();
            params.string("negativeText", 1, max_text)?;
            // "Use maskPrompt or maskImage, not both."
            match (params.has("maskPrompt"), params.has("maskImage")) {
                (true, true) => {
                    return Err(malformed(&params.pointer, "only one of [maskPrompt, maskImage] may be provided"));
                }
                (false, false) => {
                    return Err(malformed(&params.pointer, "one of [maskPrompt, maskImage] is required"));
                }
                _ => {}
            }
            params.string("maskPrompt", 1, max_text)?;
            if let Some(mask) = params.image("maskImage", PNG_OR_JPEG)? {
                same_size(&params, "maskImage", &image, &mask)?;
            }
            params.enumeration("outPaintingMode", &["DEFAULT", "PRECISE"])?;
            (plan.width, plan.height) = (image.width, image.height);
        }
        "IMAGE_VARIATION" => {
            params.only(&["text", "negativeText", "images", "similarityStrength"])?;
            plan.prompt = params.string("text", 1, max_text)?.unwrap_or_default().to_string();
            params.string("negativeText", 1, max_text)?;
            // images: 1-5 base64 images; similarityStrength 0.2-1.0.
            let images = params.required_array("images", 1, 5)?;
            let mut first = None;
            for (index, image) in images.iter().enumerate() {
                let pointer = format!("{}/{index}", params.pointer_to("images"));
                first.get_or_insert(titan_input_image_at(image, &pointer, version)?);
            }
            params.number("similarityStrength", 0.2, 1.0)?;
            if !config.sized
                && let Some(first) = first
            {
                (plan.width, plan.height) = (first.width, first.height);
            }
        }
        "COLOR_GUIDED_GENERATION" => {
            params.only(&["text", "negativeText", "colors", "referenceImage"])?;
            plan.prompt = params.required_string("text", 1, max_text)?.to_string();
            params.string("negativeText", 1, max_text)?;
            // colors: 1-10 hex codes "#RRGGBB".
            let colors = params.required_array("colors", 1, 10)?;
            for (index, color) in colors.iter().enumerate() {
                let pointer = format!("{}/{index}", params.pointer_to("colors"));
                let is_hex = color.as_str().is_some_and(|text| {
                    text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit())
                });
                if !is_hex {
                    return Err(malformed(
                        &pointer,
                        format!("string [{}] does not match pattern ^#[0-9a-fA-F]{{6}}$", color),
                    ));
                }
            }
            if params.has("referenceImage") {
                titan_input_image(&params, "referenceImage", version)?;
            }
        }
        "BACKGROUND_REMOVAL" => {
            // backgroundRemovalParams: {image}; the output has a transparent background.
            params.only(&["image"])?;
            let image = titan_input_image(&params, "image", version)?;
            (plan.width, plan.height) = (image.width, image.height);
            plan.count = 1;
            plan.transparent = true;
        }
        _ => {
            // VIRTUAL_TRY_ON: the required images and mask type are checked, the mask details loosely.
            params.only(&[
                "sourceImage",
                "referenceImage",
                "maskType",
                "imageBasedMask",
                "garmentBasedMask",
                "promptBasedMask",
                "maskExclusions",
                "mergeStyle",
                "returnMask",
            ])?;
            let source = titan_input_image(&params, "sourceImage", version)?;
            titan_input_image(&params, "referenceImage", version)?;
            params.required_enumeration("maskType", &["IMAGE", "GARMENT", "PROMPT"])?;
            for key in ["imageBasedMask", "garmentBasedMask", "promptBasedMask", "maskExclusions"] {
                params.object(key)?;
            }
            params.enumeration("mergeStyle", &["BALANCED", "SEAMLESS", "DETAILED"])?;
            params.boolean("returnMask")?;
            (plan.width, plan.height) = (source.width, source.height);
        }
    }
    plan.has_prompt = !plan.prompt.is_empty();
    Ok(plan)
}

struct GenerationConfig {
    count: usize,
    width: u32,
    height: u32,
    /// Whether width or height was given.
    sized: bool,
    seed: u64,
}

fn generation_config(root: &Object<'_>, version: Titan) -> Checked<GenerationConfig> {
    let mut config = GenerationConfig { count: 1, width: 1024, height: 1024, sized: false, seed: 0 };
    let Some(object) = root.object("imageGenerationConfig")? else { return Ok(config) };
    object.only(&["numberOfImages", "quality", "cfgScale", "height", "width", "seed"])?;
    // numberOfImages 1-5, quality standard|premium, cfgScale 1.1-10.0.
    config.count = object.integer("numberOfImages", 1, 5)?.and_then(|count| usize::try_from(count).ok()).unwrap_or(1);
    object.enumeration("quality", &["standard", "premium"])?;
    object.number("cfgScale", 1.1, 10.0)?;
    // Titan seed 0-2147483646; Nova seed 0-858,993,459.
    let max_seed = if version == Titan::Nova { 858_993_459 } else { 2_147_483_646 };
    config.seed = seed_of(object.integer("seed", 0, max_seed)?);
    let width = object.integer("width", 0, i128::from(u32::MAX))?;
    let height = object.integer("height", 0, i128::from(u32::MAX))?;
    config.sized = width.is_some() || height.is_some();
    (config.width, config.height) = (dimension(width, 1024), dimension(height, 1024));
    let (w, h) = (config.width, config.height);
    if version == Titan::Nova {
        // sides 320-4096 and divisible by 16, aspect 1:4 to 4:1, fewer than 4,194,304 pixels.
        if !(320..=4096).contains(&w) || !(320..=4096).contains(&h) || w % 16 != 0 || h % 16 != 0 {
            return Err(invalid(format!(
                "The width and height must each be between 320 and 4096 pixels and divisible by 16 (got {w}x{h})."
            )));
        }
        if w > 4 * h || h > 4 * w {
            return Err(invalid(format!("The aspect ratio must be between 1:4 and 4:1 (got {w}x{h}).")));
        }
        if u64::from(w) * u64::from(h) >= 4_194_304 {
            return Err(invalid(format!("The image must have fewer than 4,194,304 pixels (got {w}x{h}).")));
        }
    } else if config.sized && !TITAN_SIZES.contains(&(w, h)) {
        let allowed = TITAN_SIZES.iter().map(|(w, h)| format!("{w}x{h}")).collect::<Vec<_>>().join(", ");
        return Err(invalid(format!(
            "The size {w}x{h} is not supported. Supported sizes (width x height): {allowed}."
        )));
    }
    Ok(config)
}

fn titan_input_image(params: &Object<'_>, key: &str, version: Titan) -> Checked<Picture> {
    params.required(key)?;
    titan_input_image_at(params.map.get(key).unwrap_or(&Value::Null), &params.pointer_to(key), version)
}

/// Titan and Nova editing images are base64 PNG or JPEG; Titan: at most 5 MB and the longest side at
/// most 1,408 px (titan-image-models.html, zh_cn text). Nova: the generation limits of
/// (longest side 4096, fewer than 4,194,304 pixels) are applied to inputs too, an assumption.
fn titan_input_image_at(value: &Value, pointer: &str, version: Titan) -> Checked<Picture> {
    let Value::String(text) = value else {
        return Err(malformed(pointer, format!("expected type: String, found: {}", super::schema::type_name(value))));
    };
    let picture = super::schema::decode_image(text, pointer, PNG_OR_JPEG)?;
    let longest = picture.width.max(picture.height);
    match version {
        Titan::Nova => {
            if longest > 4096 || picture.pixels() >= 4_194_304 {
                return Err(invalid(format!(
                    "The image at {pointer} is {}x{}: input images may be at most 4096 pixels on a side and must have fewer than 4,194,304 pixels.",
                    picture.width, picture.height
                )));
            }
        }
        Titan::V1 | Titan::V2 => {
            if picture.bytes > 5 * 1024 * 1024 {
                return Err(invalid(format!("The image at {pointer} is larger than 5 MB.")));
            }
            if longest > 1408 {
                return Err(invalid(format!(
                    "The image at {pointer} is {}x{}: the longest side may be at most 1408 pixels.",
                    picture.width, picture.height
                )));
            }
        }
    }
    Ok(picture)
}

// ---------------------------------------------------------------------------------------------
// SD3.5 Large, Stable Image Ultra and Core

/// aspect_ratio enum, with Stability's output size for each (about one megapixel).
const ASPECT_RATIOS: &[(&str, u32, u32)] = &[
    ("16:9", 1344, 768),
    ("1:1", 1024, 1024),
    ("21:9", 1536, 640),
    ("2:3", 832, 1216),
    ("3:2", 1216, 832),
    ("4:5", 896, 1088),
    ("5:4", 1088, 896),
    ("9:16", 768, 1344),
    ("9:21", 640, 1536),
];

fn output_format(object: &Object<'_>, allowed: &[&str]) -> Checked<ImageFormat> {
    Ok(match object.enumeration("output_format", allowed)? {
        Some("jpeg") => ImageFormat::Jpeg,
        Some("webp") => ImageFormat::WebP,
        _ => ImageFormat::Png,
    })
}

fn stable_text(body: &Value, sd35: bool) -> Checked<Plan> {
    let root = Object::root(body)?;
    // prompt, negative_prompt, aspect_ratio, mode, image + strength (SD3.5 only:
    // "Ultra and Core are text-to-image only"), seed, output_format.
    let mut keys = vec!["prompt", "negative_prompt", "aspect_ratio", "mode", "seed", "output_format"];
    if sd35 {
        keys.extend(["image", "strength"]);
    }
    root.only(&keys)?;
    // AWS Ultra and Core pages: prompt is required, 0-10,000 characters.
    let prompt = root.required_string("prompt", 0, 10_000)?;
    root.string("negative_prompt", 0, 10_000)?;
    let modes: &[&str] = if sd35 { &["text-to-image", "image-to-image"] } else { &["text-to-image"] };
    let mode = root.enumeration("mode", modes)?.unwrap_or("text-to-image");
    // Stability's seed range is 0-4294967294.
    let seed = root.integer("seed", 0, 4_294_967_294)?;
    // AWS Core page: "Supported formats: JPEG, PNG." (webp is not documented there).
    let format = output_format(&root, &["jpeg", "png"])?;
    let (width, height) = if mode == "image-to-image" {
        // aspect_ratio is "text-to-image only"; image and strength are required.
        root.forbid("aspect_ratio")?;
        let image = root.required_image("image", PNG_JPEG_OR_WEBP)?;
        if image.width < 64 || image.height < 64 {
            return Err(invalid("The image must be at least 64 pixels on every side."));
        }
        root.required("strength")?;
        root.number("strength", 0.0, 1.0)?;
        (image.width, image.height)
    } else {
        root.forbid("image")?;
        root.forbid("strength")?;
        let ratio =
            root.enumeration("aspect_ratio", &ASPECT_RATIOS.iter().map(|(name, _, _)| *name).collect::<Vec<_>>())?;
        let ratio = ratio.unwrap_or("1:1");
        ASPECT_RATIOS.iter().find(|(name, _, _)| *name == ratio).map(|(_, w, h)| (*w, *h)).unwrap_or((1024, 1024))
    };
    let mut plan = Plan::new(width, height, prompt);
    plan.seed = seed_of(seed);
    plan.format = format;
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Stability AI Image Services

/// Stability v2beta size rules for an input image: sides, total pixels, aspect between 1:2.5 and 2.5:1.
struct SizeRule {
    min_side: u32,
    max_side: u32,
    min_pixels: u64,
    max_pixels: u64,
}

/// Edit tools and conservative upscale: every side at least 64 px, 4,096-9,437,184 pixels.
const EDIT_SIZE: SizeRule = SizeRule { min_side: 64, max_side: u32::MAX, min_pixels: 4_096, max_pixels: 9_437_184 };
/// Fast upscale: 32-1,536 px per side, 1,024-1,048,576 pixels.
const FAST_UPSCALE_SIZE: SizeRule =
    SizeRule { min_side: 32, max_side: 1_536, min_pixels: 1_024, max_pixels: 1_048_576 };
/// Creative upscale: 64x64 up to one megapixel (4,096-1,048,576 pixels).
const CREATIVE_UPSCALE_SIZE: SizeRule =
    SizeRule { min_side: 64, max_side: u32::MAX, min_pixels: 4_096, max_pixels: 1_048_576 };

fn check_size(picture: &Picture, rule: &SizeRule) -> Checked<()> {
    let (w, h) = (picture.width, picture.height);
    if w < rule.min_side || h < rule.min_side || w > rule.max_side || h > rule.max_side {
        let most = if rule.max_side == u32::MAX { String::new() } else { format!(" and at most {}", rule.max_side) };
        return Err(invalid(format!(
            "The image is {w}x{h}: every side must be at least {}{most} pixels.",
            rule.min_side
        )));
    }
    if !(rule.min_pixels..=rule.max_pixels).contains(&picture.pixels()) {
        return Err(invalid(format!(
            "The image is {w}x{h}: the total pixel count must be between {} and {}.",
            rule.min_pixels, rule.max_pixels
        )));
    }
    if f64::from(w.max(h)) / f64::from(w.min(h)) > 2.5 {
        return Err(invalid(format!("The image is {w}x{h}: the aspect ratio must be between 1:2.5 and 2.5:1.")));
    }
    Ok(())
}

/// The fields of each tool, from Stability's v2beta edit and upscale APIs (see the module docs):
/// (allowed keys, required keys).
fn tool_fields(tool: Tool) -> (&'static [&'static str], &'static [&'static str]) {
    match tool {
        Tool::Inpaint => (
            &["image", "prompt", "mask", "negative_prompt", "grow_mask", "seed", "output_format", "style_preset"],
            &["image", "prompt"],
        ),
        Tool::Outpaint => (
            &[
                "image",
                "prompt",
                "negative_prompt",
                "creativity",
                "left",
                "right",
                "up",
                "down",
                "seed",
                "output_format",
                "style_preset",
            ],
            &["image"],
        ),
        Tool::EraseObject => (&["image", "mask", "grow_mask", "seed", "output_format"], &["image"]),
        Tool::RemoveBackground => (&["image", "output_format"], &["image"]),
        Tool::SearchReplace => (
            &[
                "image",
                "prompt",
                "search_prompt",
                "negative_prompt",
                "grow_mask",
                "seed",
                "output_format",
                "style_preset",
            ],
            &["image", "prompt", "search_prompt"],
        ),
        Tool::SearchRecolor => (
            &[
                "image",
                "prompt",
                "select_prompt",
                "negative_prompt",
                "grow_mask",
                "seed",
                "output_format",
                "style_preset",
            ],
            &["image", "prompt", "select_prompt"],
        ),
        Tool::FastUpscale => (&["image", "output_format"], &["image"]),
        Tool::ConservativeUpscale => {
            (&["image", "prompt", "negative_prompt", "seed", "creativity", "output_format"], &["image", "prompt"])
        }
        Tool::CreativeUpscale => (
            &["image", "prompt", "negative_prompt", "seed", "creativity", "style_preset", "output_format"],
            &["image", "prompt"],
        ),
    }
}

fn service(body: &Value, tool: Tool) -> Checked<Plan> {
    let root = Object::root(body)?;
    let (allowed, required) = tool_fields(tool);
    root.only(allowed)?;
    for key in required {
        root.required(key)?;
    }
    // Inputs: base64 PNG, JPEG or WEBP, within each tool's size rule.
    let image = root.required_image("image", PNG_JPEG_OR_WEBP)?;
    check_size(
        &image,
        match tool {
            Tool::FastUpscale => &FAST_UPSCALE_SIZE,
            Tool::CreativeUpscale => &CREATIVE_UPSCALE_SIZE,
            _ => &EDIT_SIZE,
        },
    )?;
    // Text fields: at most 10,000 characters; the required prompts may not be empty.
    let prompt_min = usize::from(required.contains(&"prompt"));
    let prompt = root.string("prompt", prompt_min, 10_000)?.unwrap_or_default();
    root.string("negative_prompt", 0, 10_000)?;
    root.string("search_prompt", 1, 10_000)?;
    root.string("select_prompt", 1, 10_000)?;
    root.image("mask", PNG_JPEG_OR_WEBP)?; // a mask of another size is resized by the service
    // grow_mask: inpaint 0-100 (default 5); erase 0-20 (default 5); search tools 0-20 (default 3).
    root.integer("grow_mask", 0, if tool == Tool::Inpaint { 100 } else { 20 })?;
    let seed = root.integer("seed", 0, 4_294_967_294)?;
    root.enumeration("style_preset", STYLE_PRESETS)?;
    // creativity: outpaint 0-1 (default 0.5), conservative 0.2-0.5 (0.35), creative 0.1-0.5 (0.3).
    match tool {
        Tool::Outpaint => root.number("creativity", 0.0, 1.0)?,
        Tool::ConservativeUpscale => root.number("creativity", 0.2, 0.5)?,
        _ => root.number("creativity", 0.1, 0.5)?,
    };
    // output_format: jpeg, png or webp (png by default); remove-background: png or webp.
    let formats: &[&str] = if tool == Tool::RemoveBackground { &["png", "webp"] } else { &["jpeg", "png", "webp"] };
    let format = output_format(&root, formats)?;

    let (mut width, mut height) = (image.width, image.height);
    match tool {
        Tool::Outpaint => {
            // left/right/up/down: 0-2000 pixels each, at least one greater than 0.
            let mut grow = [0u32; 4];
            for (slot, key) in grow.iter_mut().zip(["left", "right", "up", "down"]) {
                *slot = dimension(root.integer(key, 0, 2000)?, 0);
            }
            if grow.iter().all(|pixels| *pixels == 0) {
                return Err(invalid("At least one of left, right, up or down must be greater than 0."));
            }
            width += grow[0] + grow[1];
            height += grow[2] + grow[3];
        }
        Tool::FastUpscale => (width, height) = (width * 4, height * 4),
        Tool::ConservativeUpscale | Tool::CreativeUpscale => {
            // These upscale to about 4 megapixels, keeping the aspect ratio.
            let factor = (4_194_304.0 / image.pixels() as f64).sqrt().max(1.0);
            (width, height) = ((f64::from(width) * factor).round() as u32, (f64::from(height) * factor).round() as u32);
        }
        _ => {}
    }
    let mut plan = Plan::new(width, height, prompt);
    plan.seed = seed_of(seed);
    plan.format = format;
    plan.transparent = tool == Tool::RemoveBackground;
    plan.has_prompt = required.contains(&"prompt") || !prompt.is_empty();
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// A stable colour for a prompt (FNV-1a), so different prompts give visibly different images.
fn colour(prompt: &str) -> [u8; 3] {
    let hash = prompt
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let [r, g, b, ..] = hash.to_le_bytes();
    [r, g, b]
}

/// A solid-colour image, encoded. A transparent one has a clear border around an opaque middle.
fn encode(width: u32, height: u32, rgb: [u8; 3], transparent: bool, format: ImageFormat) -> Result<String, Failure> {
    let picture = if transparent && format != ImageFormat::Jpeg {
        let (border_x, border_y) = (width / 8, height / 8);
        DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |x, y| {
            let inside = x >= border_x && x < width - border_x && y >= border_y && y < height - border_y;
            Rgba([rgb[0], rgb[1], rgb[2], if inside { 255 } else { 0 }])
        }))
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb(rgb)))
    };
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, format).map_err(|error| {
        Failure::new(500, "InternalServerException", format!("The stand-in could not encode: {error}"))
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes.into_inner()))
}

/// A PNG that compresses about as badly as a model's picture (a 1024×1024 one is around
/// 1.5 to 2 MB): smooth gradients with pixel noise on top. Deterministic.
pub fn textured_png(width: u32, height: u32) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519) >> 29;
        let channel = |base: u32| ((base + noise) % 256) as u8;
        Rgb([channel(x / 4), channel(y / 4), channel((x + y) / 8)])
    });
    let mut bytes = Cursor::new(Vec::new());
    // Writing a PNG into memory cannot fail.
    let _ = DynamicImage::ImageRgb8(picture).write_to(&mut bytes, ImageFormat::Png);
    bytes.into_inner()
}

/// The answer for a valid request, as each family documents it.
pub fn render(family: Family, plan: &Plan, filtered: bool, number: u64) -> Result<Value, Failure> {
    let seed = if plan.seed == 0 { 1_000_003 * number % 4_294_967_295 } else { plan.seed };
    let rgb = colour(&plan.prompt);
    match family {
        Family::Sdxl => {
            // CONTENT_FILTERED comes back as HTTP 200 with a blurred image.
            let (finish, rgb) = if filtered { ("CONTENT_FILTERED", [128, 128, 128]) } else { ("SUCCESS", rgb) };
            let mut artifacts = Vec::new();
            for index in 0..plan.count {
                let base64 = encode(plan.width, plan.height, rgb, false, ImageFormat::Png)?;
                artifacts.push(json!({ "seed": seed + index as u64, "base64": base64, "finishReason": finish }));
            }
            Ok(json!({ "result": "success", "artifacts": artifacts }))
        }
        Family::Titan(_) => {
            // content-filter blocks arrive as a ValidationException.
            if filtered {
                return Err(Failure::validation("This request has been blocked by our content filters."));
            }
            let mut images = Vec::new();
            for index in 0..plan.count {
                let shade = [rgb[0], rgb[1], rgb[2].wrapping_add(index as u8 * 16)];
                images.push(encode(plan.width, plan.height, shade, plan.transparent, ImageFormat::Png)?);
            }
            Ok(json!({ "images": images, "error": null }))
        }
        Family::Sd35 | Family::StableImage | Family::Service(_) => {
            if filtered {
                // AWS Ultra page: "A response with a finish reason that is not null, will look
                // like the below: { "finish_reasons": ["Filter reason: prompt"] }" (no images).
                let reason = if plan.has_prompt { "Filter reason: prompt" } else { "Filter reason: input image" };
                return Ok(json!({ "finish_reasons": [reason] }));
            }
            let image = encode(plan.width, plan.height, rgb, plan.transparent, plan.format)?;
            Ok(json!({ "seeds": [seed], "finish_reasons": [null], "images": [image] }))
        }
    }
}
