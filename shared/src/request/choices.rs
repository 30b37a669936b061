//! The other things a request can choose: the seed, how many images, a style, a model and
//! a colour palette.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::contract::parse_whole_number;
use crate::error::Invalid;

/// The seed that makes a result reproducible. Bedrock models accept 0..=4,294,967,295
/// (Nova Canvas less; its engine checks that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seed(pub u32);

impl Seed {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl FromStr for Seed {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        parse_whole_number(text)
            .and_then(|seed| u32::try_from(seed).ok())
            .map(Seed)
            .ok_or_else(|| Invalid::new(format!("`{text}` is not a seed: use a whole number from 0 to {}", u32::MAX)))
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// How many images one request makes: 1 to [`ImageCount::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCount(u8);

impl ImageCount {
    pub const MAX: u8 = 4;
    pub const ONE: Self = Self(1);

    pub fn new(count: u32) -> Result<Self, Invalid> {
        match u8::try_from(count) {
            Ok(count @ 1..=Self::MAX) => Ok(Self(count)),
            _ => Err(Invalid::new(format!("{count} images is not possible: ask for 1 to {} at a time", Self::MAX))),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

/// A style preset name, such as `photographic` or `anime` (engines check which they know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleName(String);

impl StyleName {
    /// The longest style name.
    pub const LONGEST: usize = 40;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > Self::LONGEST || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Invalid::new(format!(
                "`{text}` is not a style name: use letters, digits and hyphens, such as photographic"
            )));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which model to use, as the caller named it (an alias such as `sdxl`, or a full model id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let name = text.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_whitespace) {
            return Err(Invalid::new(format!("`{text}` is not a model name: use an alias such as sdxl or a model id")));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#RRGGBB`, for palette-guided generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HexColor(String);

impl HexColor {
    /// The most colours a palette may have.
    pub const MAX_PALETTE: usize = 10;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let digits = text.trim().trim_start_matches('#');
        if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Invalid::new(format!("`{text}` is not a colour: write it as #RRGGBB, such as #FF8800")));
        }
        Ok(Self(format!("#{}", digits.to_ascii_uppercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The red, green and blue values.
    pub fn rgb(&self) -> [u8; 3] {
        let channel = |range: std::ops::Range<usize>| u8::from_str_radix(&self.0[range], 16).unwrap_or(0);
        [channel(1..3), channel(3..5), channel(5..7)]
    }
}

/// Parses a palette: colours separated by commas or spaces; blank means none.
pub fn parse_palette(text: Option<&str>) -> Result<Vec<HexColor>, Invalid> {
    let colours = text
        .unwrap_or("")
        .split([',', ' '])
        .filter(|part| !part.trim().is_empty())
        .map(HexColor::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if colours.len() > HexColor::MAX_PALETTE {
        return Err(Invalid::new(format!(
            "{} colours is too many: give at most {}",
            colours.len(),
            HexColor::MAX_PALETTE
        )));
    }
    Ok(colours)
}
