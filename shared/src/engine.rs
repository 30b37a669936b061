//! Image engines: the one trait every image model family sits behind, in Atelier's terms.

pub mod catalog;
pub mod demo;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Invalid, Result};
use crate::images::CheckedImage;
use crate::request::{EditMode, EditRequest, GenerationRequest, ModelName, Seed};

/// Which engine made an image: stored in every image record, and the demo engine's images
/// are labelled as such wherever they are shown. The operator's `ATELIER_ENGINE` setting
/// (which may say `auto`) is resolved to one of these at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Bedrock,
    Demo,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Bedrock => "bedrock",
            Self::Demo => "demo",
        })
    }
}

/// A model an engine offers, as menus and records show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The short name people type (`sdxl`, `demo`).
    pub alias: String,
    /// The provider's model id.
    pub id: String,
    /// The request schema family (`stability-sdxl`, `amazon-titan`, `demo`).
    pub family: String,
    /// A name for menus.
    pub label: String,
    /// Whether the model makes images from a prompt alone (edit tools do not).
    pub can_generate: bool,
    /// The edit modes the model can do.
    pub edit_modes: Vec<EditMode>,
    /// The tuning knobs it takes beyond the common fields, for forms to offer ("CFG scale 0 to 35").
    #[serde(default)]
    pub tuning: Vec<String>,
}

/// What an engine's models take in a generation, beyond what every request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationLimits {
    /// The longest side any of its models draws.
    pub largest_side: u32,
    /// Whether any of its models takes a CFG scale.
    pub cfg_scale: bool,
    /// Whether any of its models takes a step count.
    pub steps: bool,
}

/// What the engine's own safety filtering said about an image it returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SafetyOutcome {
    /// The engine passed the image.
    Passed,
    /// The engine has no filter (the demo engine).
    NotChecked,
}

/// One image an engine made.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    pub image: CheckedImage,
    pub seed: Seed,
    pub safety: SafetyOutcome,
}

/// The result of one engine call.
#[derive(Debug, Clone)]
pub struct Generated {
    pub model: ModelInfo,
    pub images: Vec<GeneratedImage>,
}

/// An image model family behind one interface. Implementations check each request against
/// their model's own limits *before* calling it, so a refusal costs nothing.
#[async_trait]
pub trait ImageEngine: Send + Sync + 'static {
    /// Which engine this is (the demo engine is labelled as such everywhere).
    fn kind(&self) -> EngineKind;

    /// The models on offer, default first.
    fn models(&self) -> Vec<ModelInfo>;

    /// The provider's id of the model a request would run on: a generation when `edit_mode`
    /// is `None`, otherwise an edit in that mode, with `model` the name asked for (or none).
    /// Budgets look its price up by this id. `None` for a name the engine does not know
    /// (its check refuses the request anyway).
    fn model_id_for(&self, model: Option<&ModelName>, edit_mode: Option<EditMode>) -> Option<String>;

    /// What its models take in a generation, for documents that describe the requests this
    /// installation accepts. The default is the loosest: any size up to the common limit, and
    /// the tuning knobs, each model checking its own ranges.
    fn generation_limits(&self) -> GenerationLimits {
        GenerationLimits { largest_side: crate::request::MAX_SIDE, cfg_scale: true, steps: true }
    }

    /// Checks a generation request against the model's own limits without calling anything,
    /// so front ends can refuse a wrong option before they acknowledge, queue or charge it.
    /// Returns the seed the request will be drawn with: the one asked for, or one drawn now
    /// within the model's own range, so a plan carries it and the seed is drawn once.
    fn check_generation(&self, request: &GenerationRequest) -> Result<Seed, Invalid>;

    /// Checks an edit request the same way, returning its seed.
    fn check_edit(&self, request: &EditRequest) -> Result<Seed>;

    /// Makes new images from a prompt.
    async fn generate(&self, request: &GenerationRequest) -> Result<Generated>;

    /// Edits an existing image.
    async fn edit(&self, request: &EditRequest) -> Result<Generated>;
}
