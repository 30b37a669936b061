//! Requests as text fields, the way every front end receives them, parsed here so every
//! refusal reads the same in Discord, on the web and in the terminal.

use serde::{Deserialize, Serialize};

use super::{
    EditRequest, GenerationRequest, Guidance, ImageCount, ModelName, Prompt, Region, Shape, StyleName,
    parse_negative_prompt, parse_palette,
};
use crate::error::Invalid;

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

/// The word that asks for no style or no negative prompt this time, over a person's default
/// (a blank field takes the default instead), and that clears a default when setting them.
pub const NONE_WORD: &str = "none";

/// Whether a field's text is [`NONE_WORD`].
pub fn is_none_word(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case(NONE_WORD)
}

/// A field's text, or `None` when blank or [`NONE_WORD`].
fn given_unless_none(field: &Option<String>) -> Option<&str> {
    given(field).filter(|text| !is_none_word(text))
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
                super::contract::parse_whole_number(text)
                    .map(|count| u32::try_from(count).unwrap_or(u32::MAX))
                    .ok_or_else(|| Invalid::new(format!("`{text}` is not a number of images: use 1 to 4")))?,
            )?,
            None => ImageCount::ONE,
        };
        Ok(GenerationRequest {
            prompt: Prompt::parse(&self.prompt)?,
            negative_prompt: parse_negative_prompt(given_unless_none(&self.negative_prompt))?,
            model: given(&self.model).map(ModelName::parse).transpose()?,
            shape,
            seed: given(&self.seed).map(str::parse).transpose()?,
            count,
            style: given_unless_none(&self.style).map(StyleName::parse).transpose()?,
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
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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
                    // Plain decimals only (no sign, exponent or `inf`), as the API's document says.
                    let plain = text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.');
                    plain.then(|| text.parse::<f32>().ok()).flatten().ok_or_else(|| {
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
