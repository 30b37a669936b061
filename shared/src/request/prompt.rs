//! The prompt and the negative prompt: trimmed, bounded and free of control characters.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

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
        // calls, logs, Discord messages and the gallery's records. The text is checked as
        // given, blanks around it included, so the API's document can state the rule exactly.
        if let Some(control) = text.chars().find(|c| super::contract::is_forbidden_control(*c)) {
            return Err(Invalid::new(format!(
                "the prompt contains a control character (U+{:04X}): remove it and write plain text",
                u32::from(control)
            )));
        }
        let characters = text.chars().count();
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
