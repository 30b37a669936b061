//! A checked request for new images, and the tuning knobs some models have.

use serde::{Deserialize, Serialize};

use super::{GenerationFields, HexColor, ImageCount, ModelName, Prompt, Seed, Shape, StyleName};
use crate::error::Invalid;

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
