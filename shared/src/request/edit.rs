//! A checked request to edit an existing image: the edit modes and what each one needs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ModelName, Prompt, Seed};
use crate::error::Invalid;

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

    /// Other names people type for the modes.
    pub const ALIASES: [(&'static str, Self); 4] = [
        ("recolour", Self::Recolor),
        ("remove-bg", Self::RemoveBackground),
        ("background-removal", Self::RemoveBackground),
        ("variations", Self::Variation),
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
        super::contract::mode_word(text, &Self::ALL, &Self::ALIASES, Self::as_str).ok_or_else(|| {
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

impl OutpaintDirection {
    /// The words for each direction.
    pub const WORDS: [(&'static str, Self); 8] = [
        ("all", Self::All),
        ("around", Self::All),
        ("left", Self::Left),
        ("right", Self::Right),
        ("up", Self::Up),
        ("top", Self::Up),
        ("down", Self::Down),
        ("bottom", Self::Down),
    ];
}

impl FromStr for OutpaintDirection {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let wanted = text.trim().to_ascii_lowercase();
        Self::WORDS
            .iter()
            .find(|(word, _)| *word == wanted)
            .map(|(_, direction)| *direction)
            .ok_or_else(|| Invalid::new(format!("`{text}` is not a direction: use all, left, right, up or down")))
    }
}

/// The one rule for painted masks, in every front end and for every model: white marks the
/// region to change, black what stays. Said in these words wherever a mask is asked for.
pub const MASK_RULE: &str = "white marks the region to change, black what stays";

/// Whether a mask pixel of this brightness marks the region to change ([`MASK_RULE`]): light
/// pixels do, so a grey-ish or anti-aliased brush edge counts by which side it is nearer.
pub fn marks_region(brightness: u8) -> bool {
    brightness >= 128
}

/// Where the region to edit is: painted in a mask image, or described in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// A mask image of the source's size; see [`MASK_RULE`]: white marks the region to
    /// change. Engines translate it to what their model takes.
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
    /// The request as fields, as a form would send it: what [`super::EditFields::parse`]
    /// makes this request from again, with the same images.
    pub fn fields(&self) -> super::EditFields {
        super::EditFields {
            mode: self.mode.as_str().to_string(),
            prompt: self.prompt.as_ref().map(|prompt| prompt.as_str().to_string()),
            negative_prompt: self.negative_prompt.as_ref().map(|prompt| prompt.as_str().to_string()),
            mask_prompt: match &self.region {
                Some(Region::MaskPrompt(prompt)) => Some(prompt.as_str().to_string()),
                _ => None,
            },
            model: self.model.as_ref().map(|model| model.as_str().to_string()),
            seed: self.seed.map(|seed| seed.0.to_string()),
            similarity: self.similarity.map(|similarity| similarity.to_string()),
            direction: Some(format!("{:?}", self.outpaint_direction).to_lowercase()),
        }
    }

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
