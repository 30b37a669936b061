//! Requests kept for later (suggestions behind buttons, refused prompts to appeal), appeals,
//! and a person's defaults.

use crate::error::Refused;
use crate::error::Result;
use crate::gallery::{ImageRecord, Owner};
use crate::preferences::{PreferenceChange, Preferences};
use crate::request::{GenerationFields, ModelName, Prompt};
use crate::safety::{Refusal, Verdict};

use super::images::safety_text;
use super::{Actor, Atelier, GenerationPlan, HeldRef};

impl Atelier {
    /// A person's defaults for new images.
    pub async fn preferences(&self, owner: &Owner) -> Result<Preferences> {
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
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
        let key = Self::key(format!("users/{owner}/preferences.json"))?;
        self.records("preferences record").overwrite(&key, &preferences).await?;
        Ok(preferences)
    }

    /// Keeps a refused request so its owner can appeal it later from a button that carries
    /// only this id.
    pub async fn hold_refused(&self, actor: &Actor, fields: &GenerationFields) -> Result<HeldId> {
        self.hold(&actor.owner, "refused", "refused request", fields).await
    }

    /// Keeps a suggested request (an improved prompt, a description) for a button that
    /// carries only this id.
    pub async fn hold_request(&self, owner: &Owner, fields: &GenerationFields) -> Result<HeldId> {
        self.hold(owner, "suggested", "suggested request", fields).await
    }

    async fn hold(&self, owner: &Owner, folder: &str, kind: &'static str, fields: &GenerationFields) -> Result<HeldId> {
        let id = HeldId(ulid::Ulid::new());
        let key = Self::key(format!("users/{owner}/{folder}/{id}.json"))?;
        self.records(kind).overwrite(&key, fields).await?;
        Ok(id)
    }

    /// A suggested request kept by [`Self::hold_request`]; anyone shown it may use it (for
    /// themselves: their quota, their gallery).
    pub async fn held_request(&self, held: &HeldRef) -> Result<GenerationFields> {
        let key = Self::key(format!("users/{}/suggested/{}.json", held.owner, held.id))?;
        let gone = || crate::Error::not_found("that suggestion is no longer kept; ask again");
        self.records("suggested request").get(&key).await?.ok_or_else(gone)
    }

    /// Appeals a held refused request once; only the person whose prompt was refused may. When
    /// the reviewer allows it the request is returned planned (checked against its model) for
    /// the front end to run (the safety gate remembers the new verdict); a refusal that stands is
    /// [`crate::Error::Blocked`].
    pub async fn appeal_held(&self, actor: &Actor, held: &HeldRef) -> Result<GenerationPlan> {
        held.only_owner(actor, "only the person whose prompt was refused can appeal it")?;
        let key = Self::key(format!("users/{}/refused/{}.json", held.owner, held.id))?;
        let records = self.records("refused request");
        let fields: GenerationFields = records
            .get(&key)
            .await?
            .ok_or_else(|| crate::Error::not_found("that refused prompt is no longer kept; send it again"))?;
        let plan = self.plan_generation(actor, &fields).await?;
        let appealed = self.appeal(actor, &plan.request().prompt, plan.request().negative_prompt.as_ref()).await;
        records.delete(&key).await?;
        appealed.map(|()| plan)
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
    /// `Ok` when it may be drawn; a refusal that stands is [`crate::Error::Blocked`], saying
    /// who upheld it.
    pub async fn appeal(&self, actor: &Actor, prompt: &Prompt, negative_prompt: Option<&Prompt>) -> Result<()> {
        match self.safety.appeal(&actor.owner, &safety_text(Some(prompt), negative_prompt, None)).await? {
            Verdict::Allowed => Ok(()),
            Verdict::Blocked(Refusal { by, category, reason }) => {
                Err(crate::Error::Blocked(Refused { by, category: Some(category), reason, appealable: false }))
            }
        }
    }
}

/// The id of a request kept for a button (a suggestion, or a refused prompt to appeal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeldId(ulid::Ulid);

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
