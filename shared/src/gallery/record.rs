//! What the gallery keeps about each image besides its bytes: where it came from and how it
//! was asked for.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ImageId, Owner, SessionName};
use crate::engine::EngineKind;
use crate::engine::SafetyOutcome;
use crate::error::Invalid;
use crate::request::{EditMode, Seed, Shape, Size};

/// Where an image was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    Cli,
    Web,
    Discord { guild_id: Option<u64>, channel_id: u64, message_id: Option<u64> },
}

impl Origin {
    pub fn kind(&self) -> OriginKind {
        match self {
            Self::Cli => OriginKind::Cli,
            Self::Web => OriginKind::Web,
            Self::Discord { .. } => OriginKind::Discord,
        }
    }
}

/// The kind of [`Origin`], for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    Cli,
    Web,
    Discord,
}

impl OriginKind {
    pub const ALL: [Self; 3] = [Self::Cli, Self::Web, Self::Discord];

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cli" => Ok(Self::Cli),
            "web" => Ok(Self::Web),
            "discord" => Ok(Self::Discord),
            _ => Err(Invalid::new(format!("`{text}` is not a source: use cli, web or discord"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Web => "web",
            Self::Discord => "discord",
        }
    }
}

/// How an image was asked for, beyond the prompt: what is needed to make it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Parameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub colors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit_mode: Option<EditMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// Everything kept about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub owner: Owner,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub model_id: String,
    pub model_family: String,
    pub engine: EngineKind,
    pub parameters: Parameters,
    pub seed: Seed,
    pub size: Size,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub safety: SafetyOutcome,
    /// The image this one was made from (edits and variations).
    pub parent: Option<ImageId>,
    pub origin: Origin,
    pub session: Option<SessionName>,
    /// The media type of the stored bytes.
    pub media_type: String,
    /// The extension of the stored bytes' key.
    pub extension: String,
}
