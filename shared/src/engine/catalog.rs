//! The image models Atelier may call, by alias, with the request format each one speaks.
//!
//! Model ids live here as *configuration*: the defaults below are the models active on
//! Bedrock today, and `ATELIER_IMAGE_MODELS` adds or replaces entries (`alias=model-id`), so an
//! operator can move to the next id when a model reaches end of life, without a release.
//! Which request format a model speaks is read from its id, which names the model family
//! whether it is a base model id or an inference profile (`us.…`).

use std::fmt;

use crate::error::Invalid;
use crate::request::{EditMode, ModelName};

/// The three variants of the Titan request schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TitanVariant {
    TitanV1,
    TitanV2,
    NovaCanvas,
}

/// One of Stability AI's Image Services edit tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceTool {
    Inpaint,
    Outpaint,
    EraseObject,
    RemoveBackground,
    SearchReplace,
    SearchRecolor,
    UpscaleFast,
    UpscaleConservative,
    UpscaleCreative,
}

/// A request schema family: one adapter per family builds bodies and reads responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Stability SDXL 1.0: `text_prompts`, `artifacts[]`.
    StabilitySdxl,
    /// Titan Image Generator v1, v2 and Nova Canvas: `taskType`, `imageGenerationConfig`.
    Titan(TitanVariant),
    /// SD3.5 Large, Stable Image Ultra and Core: `prompt`, `aspect_ratio`, `finish_reasons[]`.
    /// `image_to_image` is whether the model takes a source image (SD3.5 does).
    StabilityText { image_to_image: bool },
    /// A Stability AI Image Services tool.
    StabilityService(ServiceTool),
}

impl Family {
    /// Reads the family from a model id or inference profile id.
    pub fn of_model_id(id: &str) -> Option<Self> {
        let id = id.to_ascii_lowercase();
        let has = |part: &str| id.contains(part);
        let family = if has("stable-diffusion-xl") {
            Self::StabilitySdxl
        } else if has("titan-image-generator-v2") {
            Self::Titan(TitanVariant::TitanV2)
        } else if has("titan-image-generator") {
            Self::Titan(TitanVariant::TitanV1)
        } else if has("nova-canvas") {
            Self::Titan(TitanVariant::NovaCanvas)
        } else if has("stable-image-inpaint") {
            Self::StabilityService(ServiceTool::Inpaint)
        } else if has("stable-outpaint") {
            Self::StabilityService(ServiceTool::Outpaint)
        } else if has("erase-object") {
            Self::StabilityService(ServiceTool::EraseObject)
        } else if has("remove-background") {
            Self::StabilityService(ServiceTool::RemoveBackground)
        } else if has("search-replace") {
            Self::StabilityService(ServiceTool::SearchReplace)
        } else if has("search-recolor") {
            Self::StabilityService(ServiceTool::SearchRecolor)
        } else if has("fast-upscale") {
            Self::StabilityService(ServiceTool::UpscaleFast)
        } else if has("conservative-upscale") {
            Self::StabilityService(ServiceTool::UpscaleConservative)
        } else if has("creative-upscale") {
            Self::StabilityService(ServiceTool::UpscaleCreative)
        } else if has("sd3") {
            Self::StabilityText { image_to_image: true }
        } else if has("stable-image-ultra") || has("stable-image-core") {
            Self::StabilityText { image_to_image: false }
        } else {
            return None;
        };
        Some(family)
    }

    /// A stable name for records and menus.
    pub fn name(self) -> &'static str {
        match self {
            Self::StabilitySdxl => "stability-sdxl",
            Self::Titan(TitanVariant::TitanV1 | TitanVariant::TitanV2) => "amazon-titan",
            Self::Titan(TitanVariant::NovaCanvas) => "amazon-nova-canvas",
            Self::StabilityText { .. } => "stability-image",
            Self::StabilityService(_) => "stability-image-services",
        }
    }

    /// Whether the model makes images from a prompt alone.
    pub fn generates(self) -> bool {
        matches!(self, Self::StabilitySdxl | Self::Titan(_) | Self::StabilityText { .. })
    }

    /// The edit modes the model can do.
    pub fn edit_modes(self) -> Vec<EditMode> {
        use EditMode::*;
        match self {
            Self::StabilitySdxl => vec![Inpaint, Variation],
            Self::Titan(TitanVariant::TitanV1) => vec![Inpaint, Outpaint, Variation, Replace],
            Self::Titan(_) => vec![Inpaint, Outpaint, Variation, Replace, RemoveBackground],
            Self::StabilityText { image_to_image: true } => vec![Variation],
            Self::StabilityText { image_to_image: false } => vec![],
            Self::StabilityService(tool) => match tool {
                ServiceTool::Inpaint => vec![Inpaint],
                ServiceTool::Outpaint => vec![Outpaint],
                ServiceTool::EraseObject => vec![],
                ServiceTool::RemoveBackground => vec![RemoveBackground],
                ServiceTool::SearchReplace => vec![Replace],
                ServiceTool::SearchRecolor => vec![Recolor],
                ServiceTool::UpscaleFast | ServiceTool::UpscaleConservative | ServiceTool::UpscaleCreative => {
                    vec![Upscale]
                }
            },
        }
    }
}

/// One configured model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub alias: String,
    pub id: String,
    pub family: Family,
}

impl fmt::Display for ModelEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.alias, self.id)
    }
}

/// The default models: the ones active on Bedrock today first, then the older families that
/// some accounts and regions still serve. The Image Services tools are reached through the
/// `us.` cross-region inference profile, as Bedrock offers them.
const DEFAULT_MODELS: &[(&str, &str)] = &[
    ("core", "stability.stable-image-core-v1:1"),
    ("ultra", "stability.stable-image-ultra-v1:1"),
    ("sd3.5", "stability.sd3-5-large-v1:0"),
    ("inpaint", "us.stability.stable-image-inpaint-v1:0"),
    ("outpaint", "us.stability.stable-outpaint-v1:0"),
    ("remove-background", "us.stability.stable-image-remove-background-v1:0"),
    ("search-replace", "us.stability.stable-image-search-replace-v1:0"),
    ("search-recolor", "us.stability.stable-image-search-recolor-v1:0"),
    ("upscale", "us.stability.stable-fast-upscale-v1:0"),
    ("upscale-conservative", "us.stability.stable-conservative-upscale-v1:0"),
    ("upscale-creative", "us.stability.stable-creative-upscale-v1:0"),
    ("sdxl", "stability.stable-diffusion-xl-v1"),
    ("titan", "amazon.titan-image-generator-v1"),
    ("titan-v2", "amazon.titan-image-generator-v2:0"),
    ("nova-canvas", "amazon.nova-canvas-v1:0"),
];

/// The model each edit mode uses when none is named.
const DEFAULT_EDIT_MODELS: &[(EditMode, &str)] = &[
    (EditMode::Inpaint, "inpaint"),
    (EditMode::Outpaint, "outpaint"),
    (EditMode::Variation, "sd3.5"),
    (EditMode::RemoveBackground, "remove-background"),
    (EditMode::Replace, "search-replace"),
    (EditMode::Recolor, "search-recolor"),
    (EditMode::Upscale, "upscale"),
];

/// The configured models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    default_generator: String,
}

impl Catalog {
    /// The defaults, with `overrides` (`alias=model-id, …`) added or replacing by alias, and
    /// `default_generator` (an alias) as the model used when none is named.
    pub fn new(overrides: Option<&str>, default_generator: Option<&str>) -> Result<Self, String> {
        let mut entries: Vec<ModelEntry> = DEFAULT_MODELS
            .iter()
            .filter_map(|(alias, id)| {
                Family::of_model_id(id).map(|family| ModelEntry { alias: (*alias).into(), id: (*id).into(), family })
            })
            .collect();
        for pair in overrides.unwrap_or("").split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (alias, id) = pair
                .split_once('=')
                .map(|(alias, id)| (alias.trim(), id.trim()))
                .filter(|(alias, id)| !alias.is_empty() && !id.is_empty())
                .ok_or_else(|| format!("`{pair}` is not alias=model-id"))?;
            let family = Family::of_model_id(id).ok_or_else(|| {
                format!("cannot tell which request format `{id}` speaks (known: SDXL, Titan, Nova Canvas, SD3.5, Stable Image, Image Services)")
            })?;
            entries.retain(|entry| entry.alias != alias);
            entries.push(ModelEntry { alias: alias.to_string(), id: id.to_string(), family });
        }
        let default_generator = default_generator.unwrap_or("core").to_string();
        match entries.iter().find(|entry| entry.alias == default_generator) {
            Some(entry) if entry.family.generates() => {}
            Some(entry) => {
                return Err(format!("`{}` is an edit tool and cannot be the default generator", entry.alias));
            }
            None => return Err(format!("`{default_generator}` is not a configured model alias")),
        }
        Ok(Self { entries, default_generator })
    }

    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    fn find(&self, name: &ModelName) -> Option<&ModelEntry> {
        self.entries.iter().find(|entry| entry.alias == name.as_str() || entry.id == name.as_str())
    }

    fn by_alias(&self, alias: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|entry| entry.alias == alias)
    }

    fn generators(&self) -> Vec<&str> {
        self.entries.iter().filter(|entry| entry.family.generates()).map(|entry| entry.alias.as_str()).collect()
    }

    /// The model to generate with: the named one, or the default.
    pub fn for_generation(&self, name: Option<&ModelName>) -> Result<&ModelEntry, Invalid> {
        let Some(name) = name else {
            return self
                .by_alias(&self.default_generator)
                .ok_or_else(|| Invalid::new("no default model is configured"));
        };
        match self.find(name) {
            Some(entry) if entry.family.generates() => Ok(entry),
            Some(entry) => Err(Invalid::new(format!(
                "{} is an edit tool, not a generator: use one of {}",
                entry.alias,
                self.generators().join(", ")
            ))),
            None => Err(Invalid::new(format!(
                "there is no model `{}`: use one of {}",
                name.as_str(),
                self.generators().join(", ")
            ))),
        }
    }

    /// The model to edit with: the named one if it can do `mode`, else the default for `mode`.
    pub fn for_edit(&self, mode: EditMode, name: Option<&ModelName>) -> Result<&ModelEntry, Invalid> {
        let default = DEFAULT_EDIT_MODELS
            .iter()
            .find(|(default_mode, _)| *default_mode == mode)
            .and_then(|(_, alias)| self.by_alias(alias))
            .filter(|entry| entry.family.edit_modes().contains(&mode))
            .or_else(|| self.entries.iter().find(|entry| entry.family.edit_modes().contains(&mode)));
        let Some(name) = name else {
            return default.ok_or_else(|| Invalid::new(format!("no configured model can {mode}")));
        };
        match self.find(name) {
            Some(entry) if entry.family.edit_modes().contains(&mode) => Ok(entry),
            Some(entry) => Err(Invalid::new(match default {
                Some(default) => format!("{} cannot {mode}: use {} instead", entry.alias, default.alias),
                None => format!("{} cannot {mode}, and no configured model can", entry.alias),
            })),
            None => Err(Invalid::new(format!("there is no model `{}`", name.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ModelName {
        ModelName::parse(text).unwrap()
    }

    #[test]
    fn families_are_read_from_ids_and_inference_profiles() {
        assert_eq!(
            Family::of_model_id("us.stability.stable-image-inpaint-v1:0"),
            Some(Family::StabilityService(ServiceTool::Inpaint))
        );
        assert_eq!(Family::of_model_id("amazon.nova-canvas-v1:0"), Some(Family::Titan(TitanVariant::NovaCanvas)));
        assert_eq!(
            Family::of_model_id("stability.sd3-5-large-v1:0"),
            Some(Family::StabilityText { image_to_image: true })
        );
        assert_eq!(Family::of_model_id("anthropic.claude-v2"), None);
    }

    #[test]
    fn defaults_resolve_and_overrides_replace_by_alias() {
        let catalog =
            Catalog::new(Some("core=stability.stable-image-core-v2:0, mine=amazon.nova-canvas-v2:0"), None).unwrap();
        assert_eq!(catalog.for_generation(None).unwrap().id, "stability.stable-image-core-v2:0");
        assert_eq!(
            catalog.for_generation(Some(&name("mine"))).unwrap().family,
            Family::Titan(TitanVariant::NovaCanvas)
        );
        assert_eq!(catalog.for_generation(Some(&name("amazon.titan-image-generator-v1"))).unwrap().alias, "titan");
        assert!(Catalog::new(Some("x=openai.dall-e"), None).unwrap_err().contains("cannot tell"));
        assert!(Catalog::new(None, Some("inpaint")).unwrap_err().contains("edit tool"));
    }

    #[test]
    fn edits_pick_a_capable_model_or_say_which_is() {
        let catalog = Catalog::new(None, None).unwrap();
        assert_eq!(catalog.for_edit(EditMode::Recolor, None).unwrap().alias, "search-recolor");
        assert_eq!(catalog.for_edit(EditMode::Outpaint, Some(&name("titan"))).unwrap().alias, "titan");
        let refusal = catalog.for_edit(EditMode::Recolor, Some(&name("sdxl"))).unwrap_err();
        assert_eq!(refusal.message(), "sdxl cannot recolor: use search-recolor instead");
        let generator_only = catalog.for_generation(Some(&name("upscale"))).unwrap_err();
        assert!(generator_only.message().starts_with("upscale is an edit tool"), "{generator_only}");
    }
}
