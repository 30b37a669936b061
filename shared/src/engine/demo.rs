//! The demo engine: draws a deterministic abstract picture from the prompt and seed, so a
//! newcomer can click through every feature with no AWS account. It calls no model, says so
//! in every image's PNG text and metadata, and is never used to stand in for Bedrock in tests.

use async_trait::async_trait;
use image::{DynamicImage, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage, imageops};
use sha2::{Digest, Sha256};

use super::{Generated, GeneratedImage, GenerationLimits, ImageEngine, ModelInfo, SafetyOutcome};
use crate::engine::EngineKind;
use crate::error::{Error, Invalid, Result};
use crate::images::{CheckedImage, encode_png};
use crate::request::{
    EditMode, EditRequest, GenerationRequest, MAX_SIDE, ModelName, OutpaintDirection, Region, Seed, Size,
};

/// The words written into every demo image's PNG `Software` text.
pub const DEMO_SOFTWARE_TEXT: &str = "Atelier demo engine (no model was called)";

/// The largest side the demo engine draws, to keep it quick on a laptop.
const DEMO_MAX_SIDE: u32 = 2_048;

/// Draws pictures locally; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct DemoEngine;

impl DemoEngine {
    pub fn model() -> ModelInfo {
        ModelInfo {
            alias: "demo".into(),
            id: "atelier.demo".into(),
            family: "demo".into(),
            label: "Demo engine (no model configured)".into(),
            can_generate: true,
            edit_modes: EditMode::ALL.to_vec(),
            tuning: Vec::new(),
        }
    }

    fn check_model(model: Option<&ModelName>) -> Result<(), Invalid> {
        match model {
            None => Ok(()),
            Some(name) if name.as_str() == "demo" || name.as_str() == "atelier.demo" => Ok(()),
            Some(name) => Err(Invalid::new(format!(
                "the model `{}` is not available: no image model is configured, so only the demo engine runs; \
                 leave the model out, or configure Bedrock and set ATELIER_ENGINE=bedrock",
                name.as_str()
            ))),
        }
    }
}

#[async_trait]
impl ImageEngine for DemoEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Demo
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![Self::model()]
    }

    fn model_id_for(&self, model: Option<&ModelName>, _edit_mode: Option<EditMode>) -> Option<String> {
        Self::check_model(model).ok().map(|()| Self::model().id)
    }

    fn generation_limits(&self) -> GenerationLimits {
        // As `check_generation` holds them.
        GenerationLimits { largest_side: DEMO_MAX_SIDE, cfg_scale: false, steps: false }
    }

    fn check_generation(&self, request: &GenerationRequest) -> Result<Seed, Invalid> {
        Self::check_model(request.model.as_ref())?;
        request.guidance.refuse_unsupported("the demo engine", false, false)?;
        let size = request.shape.to_size();
        if size.width > DEMO_MAX_SIDE || size.height > DEMO_MAX_SIDE {
            return Err(Invalid::new(format!(
                "the demo engine draws at most {DEMO_MAX_SIDE}x{DEMO_MAX_SIDE}; ask for a smaller size"
            )));
        }
        Ok(request.seed.unwrap_or_else(Seed::random))
    }

    fn check_edit(&self, request: &EditRequest) -> Result<Seed> {
        Self::check_model(request.model.as_ref())?;
        request.check()?;
        Ok(request.seed.unwrap_or_else(Seed::random))
    }

    async fn generate(&self, request: &GenerationRequest) -> Result<Generated> {
        self.check_generation(request)?;
        let size = request.shape.to_size();
        let first_seed = request.seed.unwrap_or_else(Seed::random);
        let request = request.clone();
        run_blocking(move || {
            let mut images = Vec::new();
            for index in 0..request.count.get() {
                // Consecutive seeds, like the Stability models do for a batch.
                let seed = Seed(first_seed.0.wrapping_add(index));
                let style = request.style.as_ref().map(|style| style.as_str()).unwrap_or("");
                let mut picture = render(request.prompt.as_str(), style, seed, size);
                if !request.colors.is_empty() {
                    tint(&mut picture, &request.colors);
                }
                images.push(finish(DynamicImage::ImageRgb8(picture), request.prompt.as_str(), seed)?);
            }
            Ok(Generated { model: DemoEngine::model(), images })
        })
        .await
    }

    async fn edit(&self, request: &EditRequest) -> Result<Generated> {
        self.check_edit(request)?;
        let request = request.clone();
        run_blocking(move || {
            let seed = request.seed.unwrap_or_else(Seed::random);
            let source = request.source.decode()?;
            let prompt = request.prompt.as_ref().map(|prompt| prompt.as_str()).unwrap_or("");
            let edited = match request.mode {
                EditMode::Variation => variation(&source, prompt, seed, request.similarity.unwrap_or(0.7)),
                EditMode::Inpaint | EditMode::Replace => {
                    let region = region_mask(&source, request.region.as_ref())?;
                    repaint(&source, &region, prompt, seed)
                }
                EditMode::Recolor => {
                    let region = region_mask(&source, request.region.as_ref())?;
                    recolor(&source, &region, prompt)
                }
                EditMode::Outpaint => outpaint(&source, prompt, seed, request.outpaint_direction)?,
                EditMode::RemoveBackground => remove_background(&source),
                EditMode::Upscale => upscale(&source)?,
            };
            let description = format!("{} of an image{}", request.mode, if prompt.is_empty() { "" } else { ": " });
            let image = finish(edited, &format!("{description}{prompt}"), seed)?;
            Ok(Generated { model: DemoEngine::model(), images: vec![image] })
        })
        .await
    }
}

/// Runs image work on the blocking pool so the async workers stay free.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::operator("the demo engine's drawing task failed", error))?
}

fn finish(picture: DynamicImage, description: &str, seed: Seed) -> Result<GeneratedImage> {
    let size = Size { width: picture.width(), height: picture.height() };
    let seed_text = seed.to_string();
    let bytes =
        encode_png(&picture, &[("Software", DEMO_SOFTWARE_TEXT), ("Description", description), ("Seed", &seed_text)])
            .map_err(|error| Error::operator("encoding a demo image as PNG", error))?;
    Ok(GeneratedImage { image: CheckedImage::from_encoded_png(bytes, size), seed, safety: SafetyOutcome::NotChecked })
}

/// A stream of pseudo-random bytes from the prompt, style and seed: the same inputs always
/// draw the same picture, on every machine and every version of Rust.
struct Dice {
    state: [u8; 32],
    position: usize,
}

impl Dice {
    fn new(prompt: &str, style: &str, seed: Seed) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(prompt.trim().to_lowercase().as_bytes());
        hasher.update([0]);
        hasher.update(style.as_bytes());
        hasher.update(seed.0.to_le_bytes());
        Self { state: hasher.finalize().into(), position: 0 }
    }

    fn byte(&mut self) -> u8 {
        if self.position == self.state.len() {
            self.state = Sha256::digest(self.state).into();
            self.position = 0;
        }
        self.position += 1;
        self.state[self.position - 1]
    }

    /// A number in 0.0..1.0.
    fn unit(&mut self) -> f32 {
        f32::from(u16::from_le_bytes([self.byte(), self.byte()])) / 65_536.0
    }
}

fn hsl(hue: f32, saturation: f32, lightness: f32) -> [f32; 3] {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = (hue.rem_euclid(360.0)) / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (red, green, blue) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let offset = lightness - chroma / 2.0;
    [(red + offset) * 255.0, (green + offset) * 255.0, (blue + offset) * 255.0]
}

/// Draws the abstract picture: a two-colour gradient sky with soft glowing discs on it.
fn render(prompt: &str, style: &str, seed: Seed, size: Size) -> RgbImage {
    let mut dice = Dice::new(prompt, style, seed);
    let base_hue = dice.unit() * 360.0;
    let spread = 20.0 + dice.unit() * 160.0;
    let saturation = match style {
        "neon-punk" | "comic-book" | "anime" => 0.9,
        "photographic" | "cinematic" | "analog-film" => 0.35,
        _ => 0.45 + dice.unit() * 0.4,
    };
    let top = hsl(base_hue, saturation, 0.2 + dice.unit() * 0.25);
    let bottom = hsl(base_hue + spread, saturation, 0.45 + dice.unit() * 0.3);
    let angle = dice.unit() * std::f32::consts::TAU;
    let (direction_x, direction_y) = (angle.cos(), angle.sin());

    struct Disc {
        x: f32,
        y: f32,
        radius: f32,
        color: [f32; 3],
        strength: f32,
    }
    let shorter = size.width.min(size.height) as f32;
    let discs: Vec<Disc> = (0..3 + dice.byte() % 5)
        .map(|_| Disc {
            x: dice.unit() * size.width as f32,
            y: dice.unit() * size.height as f32,
            radius: shorter * (0.08 + dice.unit() * 0.35),
            color: hsl(base_hue + 180.0 + (dice.unit() - 0.5) * spread, saturation + 0.1, 0.55 + dice.unit() * 0.3),
            strength: 0.55 + dice.unit() * 0.45,
        })
        .collect();

    let (width, height) = (size.width as f32, size.height as f32);
    RgbImage::from_fn(size.width, size.height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let along = ((fx / width - 0.5) * direction_x + (fy / height - 0.5) * direction_y + 0.71) / 1.42;
        let along = along.clamp(0.0, 1.0);
        let mut color: [f32; 3] = std::array::from_fn(|c| top[c] + (bottom[c] - top[c]) * along);
        for disc in &discs {
            let distance = ((fx - disc.x).powi(2) + (fy - disc.y).powi(2)).sqrt() / disc.radius;
            if distance < 1.6 {
                // A smooth fall-off gives the soft glow rather than a hard edge.
                let weight = disc.strength * (1.0 - (distance / 1.6)).clamp(0.0, 1.0).powi(2);
                for (channel, target) in color.iter_mut().zip(disc.color) {
                    *channel += (target - *channel) * weight;
                }
            }
        }
        Rgb(color.map(|value| value.clamp(0.0, 255.0) as u8))
    })
}

/// Pulls the picture toward a palette: each pixel moves halfway to the palette colour
/// that matches its brightness band.
fn tint(picture: &mut RgbImage, colors: &[crate::request::HexColor]) {
    let palette: Vec<[u8; 3]> = colors.iter().map(|color| color.rgb()).collect();
    for pixel in picture.pixels_mut() {
        let brightness = (u32::from(pixel[0]) + u32::from(pixel[1]) + u32::from(pixel[2])) / 3;
        let index = (brightness as usize * palette.len() / 256).min(palette.len() - 1);
        let target = palette[index];
        for channel in 0..3 {
            pixel[channel] = ((u16::from(pixel[channel]) + u16::from(target[channel])) / 2) as u8;
        }
    }
}

fn variation(source: &DynamicImage, prompt: &str, seed: Seed, similarity: f32) -> DynamicImage {
    let size = Size { width: source.width(), height: source.height() };
    let pattern = render(prompt, "variation", seed, size);
    let source = source.to_rgb8();
    let blended = RgbImage::from_fn(size.width, size.height, |x, y| {
        let (original, fresh) = (source.get_pixel(x, y), pattern.get_pixel(x, y));
        Rgb([0, 1, 2].map(|c| (f32::from(original[c]) * similarity + f32::from(fresh[c]) * (1.0 - similarity)) as u8))
    });
    DynamicImage::ImageRgb8(blended)
}

/// Which pixels an edit may change, as a grey image of the source's size: 255 = change.
fn region_mask(source: &DynamicImage, region: Option<&Region>) -> Result<image::GrayImage> {
    let (width, height) = source.dimensions();
    Ok(match region {
        // White marks the region to change (`MASK_RULE`).
        Some(Region::MaskImage(mask)) => {
            let grey = mask.decode()?.to_luma8();
            image::GrayImage::from_fn(width, height, |x, y| {
                image::Luma([if crate::request::marks_region(grey.get_pixel(x, y)[0]) { 255 } else { 0 }])
            })
        }
        // The demo engine cannot find things in pictures, so a described region is the
        // picture's centre: enough to show the edit working end to end.
        Some(Region::MaskPrompt(_)) | None => {
            let (centre_x, centre_y) = (width as f32 / 2.0, height as f32 / 2.0);
            image::GrayImage::from_fn(width, height, |x, y| {
                let dx = (x as f32 - centre_x) / (width as f32 * 0.3);
                let dy = (y as f32 - centre_y) / (height as f32 * 0.3);
                image::Luma([if dx * dx + dy * dy <= 1.0 { 255 } else { 0 }])
            })
        }
    })
}

fn repaint(source: &DynamicImage, region: &image::GrayImage, prompt: &str, seed: Seed) -> DynamicImage {
    let size = Size { width: source.width(), height: source.height() };
    let pattern = render(prompt, "inpaint", seed, size);
    let mut out = source.to_rgb8();
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        if region.get_pixel(x, y)[0] > 0 {
            *pixel = *pattern.get_pixel(x, y);
        }
    }
    DynamicImage::ImageRgb8(out)
}

fn recolor(source: &DynamicImage, region: &image::GrayImage, prompt: &str) -> DynamicImage {
    // The prompt picks the new hue, so "make it red" and "make it blue" differ.
    let mut dice = Dice::new(prompt, "recolor", Seed(0));
    let rotation = 60 + i32::from(dice.byte()) % 240;
    let rotated = source.huerotate(rotation).to_rgb8();
    let mut out = source.to_rgb8();
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        if region.get_pixel(x, y)[0] > 0 {
            *pixel = *rotated.get_pixel(x, y);
        }
    }
    DynamicImage::ImageRgb8(out)
}

fn outpaint(source: &DynamicImage, prompt: &str, seed: Seed, direction: OutpaintDirection) -> Result<DynamicImage> {
    let (width, height) = source.dimensions();
    let (grow_x, grow_y) = (width / 2, height / 2);
    let (new_width, new_height, left, top) = match direction {
        OutpaintDirection::All => (width + grow_x, height + grow_y, grow_x / 2, grow_y / 2),
        OutpaintDirection::Left => (width + grow_x, height, grow_x, 0),
        OutpaintDirection::Right => (width + grow_x, height, 0, 0),
        OutpaintDirection::Up => (width, height + grow_y, 0, grow_y),
        OutpaintDirection::Down => (width, height + grow_y, 0, 0),
    };
    if new_width > MAX_SIDE.min(DEMO_MAX_SIDE) || new_height > MAX_SIDE.min(DEMO_MAX_SIDE) {
        return Err(Invalid::new(format!(
            "zooming out would make the image {new_width}x{new_height}, over the {DEMO_MAX_SIDE}-pixel limit: \
             start from a smaller image or outpaint in one direction"
        ))
        .into());
    }
    let mut canvas = render(prompt, "outpaint", seed, Size { width: new_width, height: new_height });
    imageops::overlay(&mut canvas, &source.to_rgb8(), i64::from(left), i64::from(top));
    Ok(DynamicImage::ImageRgb8(canvas))
}

fn remove_background(source: &DynamicImage) -> DynamicImage {
    let rgba = source.to_rgba8();
    let (width, height) = rgba.dimensions();
    let channels = |pixel: &Rgba<u8>| [0, 1, 2].map(|c| f32::from(pixel[c]));
    // The background is estimated at each pixel by blending the border colours of its row and
    // its column, which follows gradients and vignettes; what differs from it is the subject.
    let out = RgbaImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / (width - 1).max(1) as f32, y as f32 / (height - 1).max(1) as f32);
        let (left, right) = (channels(rgba.get_pixel(0, y)), channels(rgba.get_pixel(width - 1, y)));
        let (top, bottom) = (channels(rgba.get_pixel(x, 0)), channels(rgba.get_pixel(x, height - 1)));
        let pixel = rgba.get_pixel(x, y);
        let distance = [0, 1, 2]
            .map(|c| {
                let expected = (left[c] * (1.0 - u) + right[c] * u + top[c] * (1.0 - v) + bottom[c] * v) / 2.0;
                (f32::from(pixel[c]) - expected).powi(2)
            })
            .iter()
            .sum::<f32>()
            .sqrt();
        let alpha = ((distance - 24.0) / 24.0).clamp(0.0, 1.0) * f32::from(pixel[3]);
        Rgba([pixel[0], pixel[1], pixel[2], alpha as u8])
    });
    DynamicImage::ImageRgba8(out)
}

fn upscale(source: &DynamicImage) -> Result<DynamicImage> {
    let (width, height) = source.dimensions();
    if width * 2 > DEMO_MAX_SIDE || height * 2 > DEMO_MAX_SIDE {
        return Err(Invalid::new(format!(
            "the image is already {width}x{height}; upscaling twice would pass the {DEMO_MAX_SIDE}-pixel limit"
        ))
        .into());
    }
    Ok(source.resize_exact(width * 2, height * 2, imageops::FilterType::Lanczos3))
}

#[cfg(test)]
mod tests;
