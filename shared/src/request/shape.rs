//! How big an image is: an aspect ratio, exact dimensions, or one of the named shapes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::contract::parse_whole_number;
use crate::error::Invalid;

/// An aspect ratio such as 16:9, between 1:4 and 4:1 (the widest any of our models allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AspectRatio {
    pub width: u32,
    pub height: u32,
}

impl AspectRatio {
    /// The largest term of a ratio (`100:27`).
    pub const LARGEST_TERM: u32 = 100;
    /// How much longer one side may be than the other.
    pub const MOST_EXTREME: u32 = 4;
}

impl FromStr for AspectRatio {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new(format!("`{text}` is not an aspect ratio: write it as W:H, such as 16:9"));
        let (width, height) = text.trim().split_once(':').ok_or_else(invalid)?;
        let term = |text: &str| {
            parse_whole_number(text)
                .filter(|term| (1..=u64::from(Self::LARGEST_TERM)).contains(term))
                .and_then(|term| u32::try_from(term).ok())
                .ok_or_else(invalid)
        };
        let (width, height) = (term(width)?, term(height)?);
        if width > height * Self::MOST_EXTREME || height > width * Self::MOST_EXTREME {
            return Err(Invalid::new(format!(
                "the aspect ratio {width}:{height} is too extreme: keep it between 1:4 and 4:1"
            )));
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.width, self.height)
    }
}

/// Image dimensions in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// The largest side we accept in a request or an uploaded image; models have lower limits.
pub const MAX_SIDE: u32 = 4_096;

impl Size {
    /// The smallest side anyone may ask for.
    pub const SMALLEST_SIDE: u32 = 64;
}

impl FromStr for Size {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new(format!("`{text}` is not a size: write it as WxH, such as 1024x1024"));
        let (width, height) = text.trim().split_once(['x', 'X', '×']).ok_or_else(invalid)?;
        let side = |text: &str| {
            parse_whole_number(text).map(|side| u32::try_from(side).unwrap_or(u32::MAX)).ok_or_else(invalid)
        };
        let (width, height) = (side(width)?, side(height)?);
        if !(Self::SMALLEST_SIDE..=MAX_SIDE).contains(&width) || !(Self::SMALLEST_SIDE..=MAX_SIDE).contains(&height) {
            return Err(Invalid::new(format!(
                "{width}x{height} is out of range: each side must be between 64 and {MAX_SIDE} pixels"
            )));
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}x{}", self.width, self.height)
    }
}

/// How the caller wants the picture shaped: an aspect ratio for the engine to size, or exact pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Aspect(AspectRatio),
    Size(Size),
}

impl Default for Shape {
    fn default() -> Self {
        Self::Aspect(AspectRatio { width: 1, height: 1 })
    }
}

impl Shape {
    /// The size closest to about one megapixel with this shape, in multiples of 64, which suits
    /// every model family we use for an aspect-ratio request.
    pub fn to_size(self) -> Size {
        match self {
            Self::Size(size) => size,
            Self::Aspect(AspectRatio { width, height }) => {
                let area = 1024.0 * 1024.0;
                let ratio = f64::from(width) / f64::from(height);
                let round = |side: f64| ((side / 64.0).round().max(1.0) as u32 * 64).clamp(64, MAX_SIDE);
                Size { width: round((area * ratio).sqrt()), height: round((area / ratio).sqrt()) }
            }
        }
    }
}
