//! A person's defaults for new images (Discord's `/settings`, the web's Settings page,
//! `/api/settings`, `atelier settings`): the core fills them in wherever a request leaves a
//! field out ([`crate::Atelier::plan_generation`]), in every front end, so people who always
//! want 16:9 photographs need not say so each time.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Invalid, Result};
use crate::gallery::Owner;
use crate::request::{GenerationFields, is_none_word};
use crate::store::ObjectKey;
use crate::store::json::JsonRecords;

/// The defaults one person chose. Every field is optional; an empty value means "no default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub aspect: Option<String>,
    #[serde(default)]
    pub style: Option<String>,
    #[serde(default)]
    pub negative_prompt: Option<String>,
    /// Results only the person sees (ephemeral in Discord) instead of posted to the channel.
    #[serde(default)]
    pub private_results: bool,
}

impl Preferences {
    /// Checks that every default would make a valid request, so a bad default is refused
    /// when it is set, not at every later generation. Whether the model exists is checked by
    /// the core, which knows the catalog.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut fields = GenerationFields { prompt: "a test of the defaults".into(), ..GenerationFields::default() };
        self.fill_in(&mut fields);
        fields.parse().map(|_| ())
    }

    /// Fills the fields a request left out with these defaults.
    pub fn fill_in(&self, fields: &mut GenerationFields) {
        let blank = |field: &Option<String>| field.as_deref().is_none_or(|text| text.trim().is_empty());
        if blank(&fields.model) {
            fields.model.clone_from(&self.model);
        }
        // A size given explicitly already says the shape.
        if blank(&fields.aspect) && blank(&fields.size) {
            fields.aspect.clone_from(&self.aspect);
        }
        if blank(&fields.style) {
            fields.style.clone_from(&self.style);
        }
        if blank(&fields.negative_prompt) {
            fields.negative_prompt.clone_from(&self.negative_prompt);
        }
    }

    /// Changes the named fields; an empty text or `none` clears one.
    pub fn update(&mut self, change: PreferenceChange) {
        let set = |slot: &mut Option<String>, value: Option<String>| {
            if let Some(value) = value {
                let value = value.trim().to_string();
                *slot = (!value.is_empty() && !is_none_word(&value)).then_some(value);
            }
        };
        set(&mut self.model, change.model);
        set(&mut self.aspect, change.aspect);
        set(&mut self.style, change.style);
        set(&mut self.negative_prompt, change.negative_prompt);
        if let Some(private_results) = change.private_results {
            self.private_results = private_results;
        }
    }
}

/// Where one person's defaults are kept in the store.
pub(crate) fn stored_at(owner: &Owner) -> Result<ObjectKey> {
    ObjectKey::new(format!("users/{owner}/preferences.json"))
        .map_err(|error| Error::operator("building a store key", error))
}

/// Carries the defaults stored for `from` over to `to` (`records` are the preferences
/// records), when a Discord user links or unlinks a web account and so one person's defaults
/// change owner: every field `from` sets wins, and one it leaves blank keeps `to`'s. Changes
/// nothing when `from` has none stored; returns whether it had.
pub(crate) async fn carry_over(records: &JsonRecords, from: &Owner, to: &Owner) -> Result<bool> {
    let Some(carried) = records.get::<Preferences>(&stored_at(from)?).await? else { return Ok(false) };
    records
        .update(&stored_at(to)?, |kept: Option<Preferences>| {
            // Every field named, so a field added later must be decided here too.
            let Preferences { model, aspect, style, negative_prompt, private_results } = carried.clone();
            let kept = kept.unwrap_or_default();
            let merged = Preferences {
                model: model.or(kept.model),
                aspect: aspect.or(kept.aspect),
                style: style.or(kept.style),
                negative_prompt: negative_prompt.or(kept.negative_prompt),
                private_results,
            };
            Ok((merged, ()))
        })
        .await?;
    Ok(true)
}

/// What a `/settings` call changes; `None` leaves a field as it is, an empty text clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferenceChange {
    pub model: Option<String>,
    pub aspect: Option<String>,
    pub style: Option<String>,
    pub negative_prompt: Option<String>,
    pub private_results: Option<bool>,
}

impl PreferenceChange {
    /// A change that replaces every default with `preferences`' (what a settings form or
    /// `PUT /api/settings` sends: a field left empty there has no default).
    pub fn replacing_with(preferences: Preferences) -> Self {
        let text = |value: Option<String>| Some(value.unwrap_or_default());
        Self {
            model: text(preferences.model),
            aspect: text(preferences.aspect),
            style: text(preferences.style),
            negative_prompt: text(preferences.negative_prompt),
            private_results: Some(preferences.private_results),
        }
    }

    /// A change that clears every default.
    pub fn clearing_everything() -> Self {
        Self::replacing_with(Preferences::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_only_what_the_request_left_out() {
        let mut preferences = Preferences::default();
        preferences.update(PreferenceChange {
            aspect: Some("16:9".into()),
            style: Some("photographic".into()),
            negative_prompt: Some("blur".into()),
            ..PreferenceChange::default()
        });
        let mut fields = GenerationFields {
            prompt: "a harbour".into(),
            style: Some("anime".into()),
            size: Some("1024x1024".into()),
            ..GenerationFields::default()
        };
        preferences.fill_in(&mut fields);
        assert_eq!(fields.style.as_deref(), Some("anime"));
        assert_eq!(fields.aspect, None, "a size was given, so the default aspect must not clash with it");
        assert_eq!(fields.negative_prompt.as_deref(), Some("blur"));
        preferences.update(PreferenceChange { style: Some(" ".into()), ..PreferenceChange::default() });
        assert_eq!(preferences.style, None);
        preferences.update(PreferenceChange { negative_prompt: Some("None".into()), ..PreferenceChange::default() });
        assert_eq!(preferences.negative_prompt, None, "`none` clears a default, as in Discord");
    }

    #[test]
    fn none_in_a_request_overrides_a_default_for_that_request() {
        let preferences = Preferences {
            style: Some("photographic".into()),
            negative_prompt: Some("blur".into()),
            ..Preferences::default()
        };
        let mut fields = GenerationFields {
            prompt: "a harbour".into(),
            style: Some("none".into()),
            negative_prompt: Some("NONE".into()),
            ..GenerationFields::default()
        };
        preferences.fill_in(&mut fields);
        let request = fields.parse().unwrap();
        assert_eq!(request.style, None);
        assert_eq!(request.negative_prompt, None);
    }

    #[test]
    fn replacing_sets_every_field_and_clearing_empties_them() {
        let mut preferences = Preferences { style: Some("anime".into()), ..Preferences::default() };
        let wanted = Preferences { aspect: Some("16:9".into()), private_results: true, ..Preferences::default() };
        preferences.update(PreferenceChange::replacing_with(wanted.clone()));
        assert_eq!(preferences, wanted, "a field left out of a replacement has no default afterwards");
        preferences.update(PreferenceChange::clearing_everything());
        assert_eq!(preferences, Preferences::default());
    }

    #[test]
    fn a_bad_default_is_refused_when_it_is_set() {
        let preferences = Preferences { aspect: Some("wide".into()), ..Preferences::default() };
        assert!(preferences.check().is_err());
    }
}
