//! What people ask for, in Atelier's own terms: prompts, shapes, seeds, counts, styles and
//! edit modes. Each type checks its value once when it is made, so everything downstream
//! (engines, the store, the front ends) can trust it, and every refusal says what to change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

mod edit_inputs;
pub mod inline;

pub use edit_inputs::{EditInputs, InputUse};

/// The longest prompt any front end accepts; each model has its own, usually lower, limit
/// which its engine checks before calling it.
pub const MAX_PROMPT_CHARACTERS: usize = 2_000;

/// A non-empty prompt of at most [`MAX_PROMPT_CHARACTERS`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prompt(String);

impl Prompt {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("the prompt is empty: describe the image you want"));
        }
        // Line breaks and tabs are how people lay out a long prompt; any other control
        // character (NUL, escape sequences, …) is never meant, and would travel into model
        // calls, logs, Discord messages and the gallery's records.
        if let Some(control) = trimmed.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Invalid::new(format!(
                "the prompt contains a control character (U+{:04X}): remove it and write plain text",
                u32::from(control)
            )));
        }
        let characters = trimmed.chars().count();
        if characters > MAX_PROMPT_CHARACTERS {
            return Err(Invalid::new(format!(
                "the prompt is {characters} characters long; shorten it to at most {MAX_PROMPT_CHARACTERS}"
            )));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Prompt {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<Prompt> for String {
    fn from(prompt: Prompt) -> Self {
        prompt.0
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Parses an optional negative prompt: blank means none.
pub fn parse_negative_prompt(text: Option<&str>) -> Result<Option<Prompt>, Invalid> {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) => Prompt::parse(text)
            .map(Some)
            .map_err(|invalid| Invalid::new(invalid.message().replacen("the prompt", "the negative prompt", 1))),
    }
}

/// An aspect ratio such as 16:9, between 1:4 and 4:1 (the widest any of our models allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AspectRatio {
    pub width: u32,
    pub height: u32,
}

impl FromStr for AspectRatio {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new(format!("`{text}` is not an aspect ratio: write it as W:H, such as 16:9"));
        let (width, height) = text.trim().split_once(':').ok_or_else(invalid)?;
        let width: u32 = width.trim().parse().map_err(|_| invalid())?;
        let height: u32 = height.trim().parse().map_err(|_| invalid())?;
        if width == 0 || height == 0 || width > 100 || height > 100 {
            return Err(invalid());
        }
        if width > height * 4 || height > width * 4 {
            return Err(Invalid::new(format!(
                "the aspect ratio {width}:{height} is too extreme: keep it between 1:4 and 4:1"
            )));
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.width, self.height)
    }
}

/// Image dimensions in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// The largest side we accept in a request or an uploaded image; models have lower limits.
pub const MAX_SIDE: u32 = 4_096;

impl FromStr for Size {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new(format!("`{text}` is not a size: write it as WxH, such as 1024x1024"));
        let (width, height) = text.trim().split_once(['x', 'X', '×']).ok_or_else(invalid)?;
        let width: u32 = width.trim().parse().map_err(|_| invalid())?;
        let height: u32 = height.trim().parse().map_err(|_| invalid())?;
        if !(64..=MAX_SIDE).contains(&width) || !(64..=MAX_SIDE).contains(&height) {
            return Err(Invalid::new(format!(
                "{width}x{height} is out of range: each side must be between 64 and {MAX_SIDE} pixels"
            )));
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}x{}", self.width, self.height)
    }
}

/// How the caller wants the picture shaped: an aspect ratio for the engine to size, or exact pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Aspect(AspectRatio),
    Size(Size),
}

impl Default for Shape {
    fn default() -> Self {
        Self::Aspect(AspectRatio { width: 1, height: 1 })
    }
}

impl Shape {
    /// The size closest to about one megapixel with this shape, in multiples of 64, which suits
    /// every model family we use for an aspect-ratio request.
    pub fn to_size(self) -> Size {
        match self {
            Self::Size(size) => size,
            Self::Aspect(AspectRatio { width, height }) => {
                let area = 1024.0 * 1024.0;
                let ratio = f64::from(width) / f64::from(height);
                let round = |side: f64| ((side / 64.0).round().max(1.0) as u32 * 64).clamp(64, MAX_SIDE);
                Size { width: round((area * ratio).sqrt()), height: round((area / ratio).sqrt()) }
            }
        }
    }
}

/// The seed that makes a result reproducible. Bedrock models accept 0..=4,294,967,295
/// (Nova Canvas less; its engine checks that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seed(pub u32);

impl Seed {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl FromStr for Seed {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        text.trim()
            .parse::<u32>()
            .map(Seed)
            .map_err(|_| Invalid::new(format!("`{text}` is not a seed: use a whole number from 0 to {}", u32::MAX)))
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// How many images one request makes: 1 to [`ImageCount::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCount(u8);

impl ImageCount {
    pub const MAX: u8 = 4;
    pub const ONE: Self = Self(1);

    pub fn new(count: u32) -> Result<Self, Invalid> {
        match u8::try_from(count) {
            Ok(count @ 1..=Self::MAX) => Ok(Self(count)),
            _ => Err(Invalid::new(format!("{count} images is not possible: ask for 1 to {} at a time", Self::MAX))),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

/// A style preset name, such as `photographic` or `anime` (engines check which they know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleName(String);

impl StyleName {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > 40 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Invalid::new(format!(
                "`{text}` is not a style name: use letters, digits and hyphens, such as photographic"
            )));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which model to use, as the caller named it (an alias such as `sdxl`, or a full model id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_whitespace) {
            return Err(Invalid::new(format!("`{text}` is not a model name: use an alias such as sdxl or a model id")));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#RRGGBB`, for palette-guided generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HexColor(String);

impl HexColor {
    /// The most colours a palette may have.
    pub const MAX_PALETTE: usize = 10;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let digits = text.trim().trim_start_matches('#');
        if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Invalid::new(format!("`{text}` is not a colour: write it as #RRGGBB, such as #FF8800")));
        }
        Ok(Self(format!("#{}", digits.to_ascii_uppercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The red, green and blue values.
    pub fn rgb(&self) -> [u8; 3] {
        let channel = |range: std::ops::Range<usize>| u8::from_str_radix(&self.0[range], 16).unwrap_or(0);
        [channel(1..3), channel(3..5), channel(5..7)]
    }
}

/// Parses a palette: colours separated by commas or spaces; blank means none.
pub fn parse_palette(text: Option<&str>) -> Result<Vec<HexColor>, Invalid> {
    let colours = text
        .unwrap_or("")
        .split([',', ' '])
        .filter(|part| !part.trim().is_empty())
        .map(HexColor::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if colours.len() > HexColor::MAX_PALETTE {
        return Err(Invalid::new(format!(
            "{} colours is too many: give at most {}",
            colours.len(),
            HexColor::MAX_PALETTE
        )));
    }
    Ok(colours)
}

/// A request for new images from a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    pub prompt: Prompt,
    pub negative_prompt: Option<Prompt>,
    /// `None` means the engine's default model.
    pub model: Option<ModelName>,
    pub shape: Shape,
    /// `None` means a random seed, recorded with the result so it can be reproduced.
    pub seed: Option<Seed>,
    pub count: ImageCount,
    pub style: Option<StyleName>,
    /// Colours the picture should follow (Titan v2 and Nova Canvas); empty for none.
    pub colors: Vec<HexColor>,
    /// How closely to follow the prompt, and how long to work: only some models take these.
    #[serde(default)]
    pub guidance: Guidance,
}

impl GenerationRequest {
    /// The request as fields again, to keep with a job or offer it once more.
    pub fn fields(&self) -> GenerationFields {
        let (aspect, size) = match self.shape {
            Shape::Aspect(aspect) => (Some(aspect.to_string()), None),
            Shape::Size(size) => (None, Some(size.to_string())),
        };
        GenerationFields {
            prompt: self.prompt.as_str().to_string(),
            negative_prompt: self.negative_prompt.as_ref().map(|prompt| prompt.as_str().to_string()),
            model: self.model.as_ref().map(|model| model.as_str().to_string()),
            aspect,
            size,
            seed: self.seed.map(|seed| seed.to_string()),
            count: (self.count != ImageCount::ONE).then(|| self.count.get().to_string()),
            style: self.style.as_ref().map(|style| style.as_str().to_string()),
            colors: (!self.colors.is_empty())
                .then(|| self.colors.iter().map(|color| color.as_str()).collect::<Vec<_>>().join(",")),
            cfg_scale: self.guidance.cfg_scale.map(|scale| scale.to_string()),
            steps: self.guidance.steps.map(|steps| steps.to_string()),
        }
    }
}

/// The tuning knobs some models have: the classifier-free guidance scale (SDXL, Titan, Nova
/// Canvas) and the number of diffusion steps (SDXL). `None` leaves the model's default; each
/// family's adapter checks the values against its model's documented range and refuses the
/// knobs its model does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    pub cfg_scale: Option<f32>,
    pub steps: Option<u32>,
}

impl Guidance {
    /// Refuses any knob a model does not have, naming the models that do.
    pub fn refuse_unsupported(&self, model: &str, cfg_scale: bool, steps: bool) -> Result<(), Invalid> {
        if self.cfg_scale.is_some() && !cfg_scale {
            return Err(Invalid::new(format!(
                "{model} takes no CFG scale: leave it empty, or use sdxl, titan or nova-canvas"
            )));
        }
        if self.steps.is_some() && !steps {
            return Err(Invalid::new(format!("{model} takes no step count: leave it empty, or use sdxl")));
        }
        Ok(())
    }

    /// Checks the CFG scale against a model's range.
    pub fn cfg_scale_within(&self, model: &str, low: f32, high: f32) -> Result<Option<f32>, Invalid> {
        match self.cfg_scale {
            Some(scale) if !(low..=high).contains(&scale) => {
                Err(Invalid::new(format!("{model} takes a CFG scale from {low} to {high}; {scale} is outside it")))
            }
            other => Ok(other),
        }
    }

    /// Checks the step count against a model's range.
    pub fn steps_within(&self, model: &str, low: u32, high: u32) -> Result<Option<u32>, Invalid> {
        match self.steps {
            Some(steps) if !(low..=high).contains(&steps) => {
                Err(Invalid::new(format!("{model} takes {low} to {high} steps; {steps} is outside it")))
            }
            other => Ok(other),
        }
    }
}

impl GenerationRequest {
    /// A request with only a prompt; everything else at its default.
    pub fn from_prompt(prompt: Prompt) -> Self {
        Self {
            prompt,
            negative_prompt: None,
            model: None,
            shape: Shape::default(),
            seed: None,
            count: ImageCount::ONE,
            style: None,
            colors: Vec::new(),
            guidance: Guidance::default(),
        }
    }
}

/// The ways an existing image can be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EditMode {
    /// Repaint the masked region from the prompt.
    Inpaint,
    /// Extend the picture beyond its borders.
    Outpaint,
    /// A new image close to the source.
    Variation,
    /// Keep the subject, make the background transparent.
    RemoveBackground,
    /// Find something described by the mask prompt and replace it with the prompt.
    Replace,
    /// Find something described by the mask prompt and recolour it as the prompt says.
    Recolor,
    /// Make the picture larger.
    Upscale,
}

impl EditMode {
    pub const ALL: [Self; 7] = [
        Self::Inpaint,
        Self::Outpaint,
        Self::Variation,
        Self::RemoveBackground,
        Self::Replace,
        Self::Recolor,
        Self::Upscale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inpaint => "inpaint",
            Self::Outpaint => "outpaint",
            Self::Variation => "variation",
            Self::RemoveBackground => "remove-background",
            Self::Replace => "replace",
            Self::Recolor => "recolor",
            Self::Upscale => "upscale",
        }
    }

    /// A short description for menus and help text.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Inpaint => "repaint a masked region from the prompt",
            Self::Outpaint => "extend the picture beyond its borders",
            Self::Variation => "a new image close to this one",
            Self::RemoveBackground => "keep the subject, make the background transparent",
            Self::Replace => "replace what the mask prompt describes with the prompt",
            Self::Recolor => "recolour what the mask prompt describes as the prompt says",
            Self::Upscale => "make the picture larger",
        }
    }

    /// Whether the mode needs a prompt saying what to paint.
    pub fn needs_prompt(self) -> bool {
        matches!(self, Self::Inpaint | Self::Replace | Self::Recolor)
    }

    /// Whether the mode needs a region: a mask image or a mask prompt.
    pub fn needs_region(self) -> bool {
        matches!(self, Self::Inpaint | Self::Replace | Self::Recolor)
    }
}

impl fmt::Display for EditMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for EditMode {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        let wanted = match wanted.as_str() {
            "recolour" => "recolor",
            "remove-bg" | "background-removal" => "remove-background",
            "variations" => "variation",
            other => other,
        }
        .to_string();
        Self::ALL.into_iter().find(|mode| mode.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|mode| mode.as_str()).collect();
            Invalid::new(format!("`{text}` is not an edit mode: use one of {}", names.join(", ")))
        })
    }
}

/// Which way an outpaint grows the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutpaintDirection {
    #[default]
    All,
    Left,
    Right,
    Up,
    Down,
}

impl FromStr for OutpaintDirection {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all" | "around" => Ok(Self::All),
            "left" => Ok(Self::Left),
            "right" => Ok(Self::Right),
            "up" | "top" => Ok(Self::Up),
            "down" | "bottom" => Ok(Self::Down),
            _ => Err(Invalid::new(format!("`{text}` is not a direction: use all, left, right, up or down"))),
        }
    }
}

/// Where the region to edit is: painted in a mask image, or described in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// A mask image of the source's size; black pixels mark the region to change
    /// (the convention of Titan and Nova Canvas, which engines translate as their model needs).
    MaskImage(crate::images::CheckedImage),
    /// The region described in words, such as "the sky".
    MaskPrompt(Prompt),
}

/// A request to edit an existing image.
#[derive(Debug, Clone, PartialEq)]
pub struct EditRequest {
    pub mode: EditMode,
    pub source: crate::images::CheckedImage,
    pub prompt: Option<Prompt>,
    pub negative_prompt: Option<Prompt>,
    pub region: Option<Region>,
    pub model: Option<ModelName>,
    pub seed: Option<Seed>,
    /// How close a variation stays to its source, 0.2 to 1.0.
    pub similarity: Option<f32>,
    pub outpaint_direction: OutpaintDirection,
}

impl EditRequest {
    /// Checks what every engine needs before any model call: a prompt where the mode paints
    /// something, a region where it needs one, a mask of the source's own size.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.mode.needs_prompt() && self.prompt.is_none() {
            return Err(Invalid::new(format!("{} needs a prompt saying what to paint", self.mode)));
        }
        if self.mode.needs_region() && self.region.is_none() {
            return Err(Invalid::new(format!(
                "{} needs a region: give a mask image or a mask prompt such as \"the sky\"",
                self.mode
            )));
        }
        if let Some(Region::MaskImage(mask)) = &self.region
            && mask.size() != self.source.size()
        {
            return Err(Invalid::new(format!(
                "the mask is {} but the image is {}: paint the mask at the image's own size",
                mask.size(),
                self.source.size()
            )));
        }
        if let Some(similarity) = self.similarity
            && !(0.2..=1.0).contains(&similarity)
        {
            return Err(Invalid::new(format!("similarity {similarity} is out of range: use 0.2 to 1.0")));
        }
        Ok(())
    }
}

/// A generation request as text fields, the way every front end receives it (form fields,
/// command options, CLI flags). Blank fields mean "not given". Parsing here keeps the rules
/// and the wording of every refusal the same in Discord, on the web and in the terminal.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationFields {
    #[serde(default)]
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub model: Option<String>,
    pub aspect: Option<String>,
    pub size: Option<String>,
    pub seed: Option<String>,
    pub count: Option<String>,
    pub style: Option<String>,
    /// Colours as `#RRGGBB`, separated by commas or spaces.
    pub colors: Option<String>,
    /// The CFG scale, for models that take one.
    #[serde(default)]
    pub cfg_scale: Option<String>,
    /// Diffusion steps, for models that take them.
    #[serde(default)]
    pub steps: Option<String>,
}

/// A field's text, or `None` when blank.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|text| !text.is_empty())
}

impl GenerationFields {
    pub fn parse(&self) -> Result<GenerationRequest, Invalid> {
        let shape = match (given(&self.aspect), given(&self.size)) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new("give either an aspect ratio or a size, not both"));
            }
            (Some(aspect), None) => Shape::Aspect(aspect.parse()?),
            (None, Some(size)) => Shape::Size(size.parse()?),
            (None, None) => Shape::default(),
        };
        let count = match given(&self.count) {
            Some(text) => ImageCount::new(
                text.parse().map_err(|_| Invalid::new(format!("`{text}` is not a number of images: use 1 to 4")))?,
            )?,
            None => ImageCount::ONE,
        };
        Ok(GenerationRequest {
            prompt: Prompt::parse(&self.prompt)?,
            negative_prompt: parse_negative_prompt(self.negative_prompt.as_deref())?,
            model: given(&self.model).map(ModelName::parse).transpose()?,
            shape,
            seed: given(&self.seed).map(str::parse).transpose()?,
            count,
            style: given(&self.style).map(StyleName::parse).transpose()?,
            colors: parse_palette(given(&self.colors))?,
            guidance: Guidance {
                cfg_scale: given(&self.cfg_scale)
                    .map(|text| {
                        text.parse::<f32>()
                            .ok()
                            .filter(|scale| scale.is_finite())
                            .ok_or_else(|| Invalid::new(format!("`{text}` is not a CFG scale: use a number such as 7")))
                    })
                    .transpose()?,
                steps: given(&self.steps)
                    .map(|text| {
                        text.parse::<u32>().map_err(|_| {
                            Invalid::new(format!("`{text}` is not a number of steps: use a whole number such as 30"))
                        })
                    })
                    .transpose()?,
            },
        })
    }
}

/// An edit request as text fields; the images come separately, already checked.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EditFields {
    #[serde(default)]
    pub mode: String,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub mask_prompt: Option<String>,
    pub model: Option<String>,
    pub seed: Option<String>,
    pub similarity: Option<String>,
    pub direction: Option<String>,
}

impl EditFields {
    /// Parses the fields around a source image and an optional painted mask.
    pub fn parse(
        &self,
        source: crate::images::CheckedImage,
        mask: Option<crate::images::CheckedImage>,
    ) -> Result<EditRequest, Invalid> {
        let region = match (mask, given(&self.mask_prompt)) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new("give either a mask image or a mask prompt, not both"));
            }
            (Some(mask), None) => Some(Region::MaskImage(mask)),
            (None, Some(text)) => Some(Region::MaskPrompt(
                Prompt::parse(text)
                    .map_err(|invalid| Invalid::new(invalid.message().replacen("the prompt", "the mask prompt", 1)))?,
            )),
            (None, None) => None,
        };
        let request = EditRequest {
            mode: self.mode.parse()?,
            source,
            prompt: given(&self.prompt).map(Prompt::parse).transpose()?,
            negative_prompt: parse_negative_prompt(self.negative_prompt.as_deref())?,
            region,
            model: given(&self.model).map(ModelName::parse).transpose()?,
            seed: given(&self.seed).map(str::parse).transpose()?,
            similarity: given(&self.similarity)
                .map(|text| {
                    text.parse::<f32>().map_err(|_| {
                        Invalid::new(format!("`{text}` is not a similarity: use a number from 0.2 to 1.0"))
                    })
                })
                .transpose()?,
            outpaint_direction: given(&self.direction).map(str::parse).transpose()?.unwrap_or_default(),
        };
        request.check()?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests;
