//! Requests kept for later (suggestions behind buttons, refused prompts to appeal), appeals,
//! and a person's defaults.

use crate::error::Result;
use crate::gallery::{ImageRecord, Owner};
use crate::preferences::{PreferenceChange, Preferences};
use crate::request::{GenerationFields, ModelName};

use super::{Atelier, HeldRef};

impl Atelier {
    /// A person's defaults for new images.
    pub async fn preferences(&self, owner: &Owner) -> Result<Preferences> {
        let key = crate::preferences::stored_at(owner)?;
        Ok(self.records("preferences record").get(&key).await?.unwrap_or_default())
    }

    /// The defaults a plan fills in. Images are still made while the store cannot be reached
    /// (the spool keeps them), so a failure to read the defaults is logged and the request
    /// goes ahead as it was given rather than failing.
    pub(super) async fn defaults_for(&self, owner: &Owner) -> Preferences {
        match self.preferences(owner).await {
            Ok(preferences) => preferences,
            Err(error) => {
                tracing::warn!(owner = %owner, error = %error, "could not read the defaults of {owner}; going ahead without them");
                Preferences::default()
            }
        }
    }

    /// Changes a person's defaults, refusing any that would not make a valid request.
    pub async fn change_preferences(&self, owner: &Owner, change: PreferenceChange) -> Result<Preferences> {
        let mut preferences = self.preferences(owner).await?;
        preferences.update(change);
        preferences.check()?;
        if let Some(model) = &preferences.model {
            let name = ModelName::parse(model)?;
            let known = self
                .models()
                .iter()
                .any(|info| info.can_generate && (info.alias == name.as_str() || info.id == name.as_str()));
            if !known {
                let aliases: Vec<String> =
                    self.models().into_iter().filter(|info| info.can_generate).map(|info| info.alias).collect();
                return Err(crate::Invalid::new(format!(
                    "`{model}` is not a model that makes images here; choose one of {}",
                    aliases.join(", ")
                ))
                .into());
            }
        }
        let key = crate::preferences::stored_at(owner)?;
        self.records("preferences record").overwrite(&key, &preferences).await?;
        Ok(preferences)
    }

    /// Keeps a suggested request (an improved prompt, a description) for a button that
    /// carries only this id.
    pub async fn hold_request(&self, owner: &Owner, fields: &GenerationFields) -> Result<HeldId> {
        let id = HeldId(ulid::Ulid::new());
        let key = Self::key(format!("users/{owner}/suggested/{id}.json"))?;
        self.records("suggested request").overwrite(&key, fields).await?;
        Ok(id)
    }

    /// A suggested request kept by [`Self::hold_request`]; anyone shown it may use it (for
    /// themselves: their quota, their gallery).
    pub async fn held_request(&self, held: &HeldRef) -> Result<GenerationFields> {
        let key = Self::key(format!("users/{}/suggested/{}.json", held.owner, held.id))?;
        let gone = || crate::Error::not_found("that suggestion is no longer kept; ask again");
        self.records("suggested request").get(&key).await?.ok_or_else(gone)
    }

    /// The request that makes an image like `record` again with a new seed (Reroll): same
    /// prompt, model, shape and style. `None` for images that had no prompt (some edits).
    pub fn fields_to_remake(&self, record: &ImageRecord) -> Option<GenerationFields> {
        let prompt = record.prompt.clone()?;
        let model = self.models().into_iter().find(|model| model.id == record.model_id && model.can_generate);
        let (aspect, size) = match record.parameters.shape {
            Some(crate::request::Shape::Aspect(aspect)) => (Some(aspect.to_string()), None),
            Some(crate::request::Shape::Size(size)) => (None, Some(size.to_string())),
            None => (None, None),
        };
        Some(GenerationFields {
            prompt,
            negative_prompt: record.negative_prompt.clone(),
            model: model.map(|model| model.alias),
            aspect,
            size,
            style: record.parameters.style.clone(),
            colors: (!record.parameters.colors.is_empty()).then(|| record.parameters.colors.join(",")),
            ..GenerationFields::default()
        })
    }
}

/// The id of a request kept for a button (a suggestion, or a refused prompt to appeal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeldId(pub(super) ulid::Ulid);

impl HeldId {
    pub fn parse(text: &str) -> Option<Self> {
        ulid::Ulid::from_string(text).ok().map(Self)
    }
}

impl std::fmt::Display for HeldId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}
