//! The names the gallery keeps images under: whose gallery, which image, which session.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::error::Invalid;

/// Whose gallery an image is in: a web account, or a Discord user not linked yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner(String);

impl Owner {
    /// The operator of a local installation: the CLI and local-mode web sign-in act as this owner.
    pub fn local_operator() -> Self {
        Self("local-operator".into())
    }

    /// A Discord user who has not linked a web account.
    pub fn discord(user_id: u64) -> Self {
        Self(format!("discord-{user_id}"))
    }

    /// A web account, by the sign-in provider's subject (`sub`) claim.
    pub fn web_account(subject: &str) -> Result<Self, Invalid> {
        Self::parse(&format!("web-{subject}"))
    }

    /// The Discord user this owner is, for an owner made by [`Self::discord`].
    pub fn discord_user_id(&self) -> Option<u64> {
        let user_id = self.0.strip_prefix("discord-")?.parse().ok()?;
        // Only the spelling `discord` makes ("discord-07" is some other owner).
        (Self::discord(user_id) == *self).then_some(user_id)
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let valid = !text.is_empty()
            && text.len() <= 160
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid { Ok(Self(text.to_string())) } else { Err(Invalid::new(format!("`{text}` is not a valid owner"))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Owner {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<Owner> for String {
    fn from(owner: Owner) -> Self {
        owner.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An image's id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageId(pub Ulid);

impl ImageId {
    pub fn new() -> Self {
        Self(Ulid::new())
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        Ulid::from_string(text.trim()).map(Self).map_err(|_| Invalid::new(format!("`{text}` is not an image id")))
    }

    /// The record key fragment that sorts newest first.
    pub(crate) fn newest_first(self) -> String {
        Ulid(u128::MAX - self.0.0).to_string()
    }
}

impl Default for ImageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A user-named group of related images (the seed tool's "sessions").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionName(String);

impl SessionName {
    /// The longest session name, in characters.
    pub const LONGEST: usize = 60;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > Self::LONGEST || name.chars().any(char::is_control) {
            return Err(Invalid::new("a session name is 1 to 60 characters, on one line"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionName {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<SessionName> for String {
    fn from(name: SessionName) -> Self {
        name.0
    }
}
