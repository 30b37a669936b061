//! Requests kept for later (suggestions behind buttons, refused prompts to appeal), appeals,
//! and a person's defaults.

use crate::error::Result;
use crate::gallery::{ImageRecord, Owner};
use crate::preferences::{PreferenceChange, Preferences};
use crate::request::{GenerationFields, ModelName, Prompt};
use crate::safety::Verdict;

use super::images::safety_text;
use super::{Actor, Atelier};

impl Atelier {
    /// A person's defaults for new images.
    pub async fn preferences(&self, owner: &Owner) -> Result<Preferences> {
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
        Ok(self.records("preferences record").get(&key).await?.unwrap_or_default())
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
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
        self.records("preferences record").overwrite(&key, &preferences).await?;
        Ok(preferences)
    }

    /// Keeps a refused request so its owner can appeal it later from a button that carries
    /// only this id; returns the id.
    pub async fn hold_refused(&self, owner: &Owner, fields: &GenerationFields) -> Result<String> {
        self.hold(owner, "refused", "refused request", fields).await
    }

    /// Keeps a suggested request (an improved prompt, a description) for a button that
    /// carries only this id; returns the id.
    pub async fn hold_request(&self, owner: &Owner, fields: &GenerationFields) -> Result<String> {
        self.hold(owner, "suggested", "suggested request", fields).await
    }

    async fn hold(&self, owner: &Owner, folder: &str, kind: &'static str, fields: &GenerationFields) -> Result<String> {
        let id = ulid::Ulid::new().to_string();
        let key = Self::key(format!("users/{owner}/{folder}/{id}.json"))?;
        self.records(kind).overwrite(&key, fields).await?;
        Ok(id)
    }

    /// A suggested request kept by [`Self::hold_request`].
    pub async fn held_request(&self, owner: &Owner, id: &str) -> Result<GenerationFields> {
        let gone = || crate::Error::not_found("that suggestion is no longer kept; ask again");
        let id = ulid::Ulid::from_string(id).map_err(|_| gone())?;
        let key = Self::key(format!("users/{owner}/suggested/{id}.json"))?;
        self.records("suggested request").get(&key).await?.ok_or_else(gone)
    }

    /// Appeals a held refused request once; on success the request is returned so the
    /// front end can run it, and the safety gate remembers the new verdict.
    pub async fn appeal_held(&self, actor: &Actor, held: &str) -> Result<(Verdict, GenerationFields)> {
        let Ok(held) = ulid::Ulid::from_string(held) else {
            return Err(crate::Error::not_found("that refused prompt is no longer kept; send it again"));
        };
        let key = Self::key(format!("users/{}/refused/{held}.json", actor.owner))?;
        let records = self.records("refused request");
        let fields: GenerationFields = records
            .get(&key)
            .await?
            .ok_or_else(|| crate::Error::not_found("that refused prompt is no longer kept; send it again"))?;
        let request = fields.parse()?;
        let verdict = self.appeal(actor, &request.prompt, request.negative_prompt.as_ref()).await?;
        records.delete(&key).await?;
        Ok((verdict, fields))
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

    /// Appeals a refused prompt (with its negative prompt) once: a stronger model looks again.
    pub async fn appeal(&self, actor: &Actor, prompt: &Prompt, negative_prompt: Option<&Prompt>) -> Result<Verdict> {
        self.safety.appeal(&actor.owner, &safety_text(Some(prompt), negative_prompt, None)).await
    }
}
