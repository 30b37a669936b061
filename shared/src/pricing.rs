//! What model calls cost, in estimated US dollars: the price table every budget is counted
//! in. A person's daily budget and the service's daily cap (`jobs`) weigh each call by its
//! model's price, so a Stable Image Ultra image counts more than a Titan one and a long chat
//! counts more than a short critique.
//!
//! Prices are *configuration*: the defaults below are Bedrock's public on-demand prices as
//! published when they were written, and `ATELIER_PRICES` corrects or adds entries without a
//! release (`pattern=dollars-per-image` for image models, `pattern=input/output` in dollars
//! per million tokens for text models). A pattern matches any model id that contains it, the
//! longest match winning, so one entry covers a base model id and its inference profiles.
//! These are estimates for budgets and metrics, not a bill: the AWS bill is the truth.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of US dollars, kept in millionths so sums of small prices stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(u64);

impl Usd {
    pub const ZERO: Self = Self(0);

    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    /// Reads an amount of dollars written as a plain decimal (`5`, `0.04`, `12.5`); `None`
    /// for anything else (a sign, a currency symbol, more than six decimals' worth is rounded).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() || !text.chars().all(|character| character.is_ascii_digit() || character == '.') {
            return None;
        }
        let dollars: f64 = text.parse().ok()?;
        if !dollars.is_finite() || dollars > 1e9 {
            return None;
        }
        Some(Self((dollars * 1_000_000.0).round() as u64))
    }

    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    pub fn times(self, count: u32) -> Self {
        Self(self.0.saturating_mul(u64::from(count)))
    }
}

impl fmt::Display for Usd {
    /// Dollars and cents, with a tenth of a cent more where it matters (`$0.04`, `$0.0015`).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents_exact = self.0.is_multiple_of(10_000);
        if cents_exact || self.0 >= 1_000_000 {
            write!(formatter, "${:.2}", self.as_dollars())
        } else {
            write!(formatter, "${:.4}", self.as_dollars())
        }
    }
}

/// What one call of a model costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    /// Image models: per image made.
    PerImage(Usd),
    /// Text models: per million tokens read and written.
    PerMillionTokens { input: Usd, output: Usd },
}

impl fmt::Display for Price {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerImage(price) => write!(formatter, "{price} per image"),
            Self::PerMillionTokens { input, output } => {
                write!(formatter, "{input} per million tokens in, {output} out")
            }
        }
    }
}

/// Bedrock's on-demand prices (US regions) when this table was written; see the module
/// notes. The demo engine's images are priced as the default model's (Stable Image Core),
/// which they stand in for, so a budget behaves locally as it will in production.
const DEFAULT_PRICES: &[(&str, &str)] = &[
    ("stable-image-core", "0.04"),
    ("sd3-5-large", "0.08"),
    ("sd3-large", "0.08"),
    ("stable-image-ultra", "0.14"),
    ("stable-diffusion-xl", "0.04"),
    ("titan-image-generator-v1", "0.01"),
    ("titan-image-generator-v2", "0.01"),
    ("nova-canvas", "0.04"),
    // Stability AI Image Services on Bedrock.
    ("stable-image-inpaint", "0.07"),
    ("stable-outpaint", "0.07"),
    ("stable-image-erase-object", "0.07"),
    ("stable-image-remove-background", "0.07"),
    ("stable-image-search-replace", "0.07"),
    ("stable-image-search-recolor", "0.07"),
    ("stable-fast-upscale", "0.03"),
    ("stable-conservative-upscale", "0.40"),
    ("stable-creative-upscale", "0.60"),
    ("atelier.demo", "0.04"),
    // Claude, per million tokens in and out.
    ("claude-haiku-4-5", "1/5"),
    ("claude-3-5-haiku", "0.8/4"),
    ("claude-3-haiku", "0.25/1.25"),
    ("claude-sonnet", "3/15"),
    ("claude-3-5-sonnet", "3/15"),
    ("claude-3-7-sonnet", "3/15"),
    ("claude-opus", "15/75"),
];

/// The price of every model Atelier may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    /// Lower-case patterns and their prices.
    entries: Vec<(String, Price)>,
}

impl PriceTable {
    /// The defaults with `overrides` (`pattern=price, …`) added or replacing by pattern.
    pub fn new(overrides: Option<&str>) -> Result<Self, String> {
        let mut table = Self { entries: Vec::new() };
        for (pattern, price) in DEFAULT_PRICES {
            table.set(pattern, price).map_err(|error| format!("the built-in price of `{pattern}`: {error}"))?;
        }
        for pair in overrides.unwrap_or("").split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (pattern, price) = pair
                .split_once('=')
                .map(|(pattern, price)| (pattern.trim(), price.trim()))
                .filter(|(pattern, price)| !pattern.is_empty() && !price.is_empty())
                .ok_or_else(|| format!("`{pair}` is not pattern=price"))?;
            table.set(pattern, price).map_err(|error| format!("`{pair}`: {error}"))?;
        }
        Ok(table)
    }

    fn set(&mut self, pattern: &str, price: &str) -> Result<(), String> {
        let dollars =
            |text: &str| Usd::parse(text).ok_or_else(|| format!("`{text}` is not an amount of dollars such as 0.04"));
        let price = match price.split_once('/') {
            Some((input, output)) => Price::PerMillionTokens { input: dollars(input)?, output: dollars(output)? },
            None => Price::PerImage(dollars(price)?),
        };
        let pattern = pattern.to_ascii_lowercase();
        self.entries.retain(|(existing, _)| existing != &pattern);
        self.entries.push((pattern, price));
        Ok(())
    }

    /// The price of `model_id`: the entry with the longest pattern it contains. A model the
    /// table does not know is priced as the dearest entry of its kind, so an unpriced model
    /// can only make a budget run out early, never let spending run past it.
    pub fn price_of(&self, model_id: &str, kind: ModelKind) -> Price {
        let id = model_id.to_ascii_lowercase();
        let of_kind = |price: &Price| {
            matches!(
                (kind, price),
                (ModelKind::Image, Price::PerImage(_)) | (ModelKind::Text, Price::PerMillionTokens { .. })
            )
        };
        let best = self
            .entries
            .iter()
            .filter(|(pattern, price)| of_kind(price) && id.contains(pattern.as_str()))
            .max_by_key(|(pattern, _)| pattern.len());
        match best {
            Some((_, price)) => *price,
            None => self.dearest(kind),
        }
    }

    fn dearest(&self, kind: ModelKind) -> Price {
        let prices = self.entries.iter().map(|(_, price)| *price);
        match kind {
            ModelKind::Image => Price::PerImage(
                prices
                    .filter_map(|price| match price {
                        Price::PerImage(each) => Some(each),
                        Price::PerMillionTokens { .. } => None,
                    })
                    .max()
                    .unwrap_or(Usd::ZERO),
            ),
            ModelKind::Text => {
                let (input, output) = prices
                    .filter_map(|price| match price {
                        Price::PerMillionTokens { input, output } => Some((input, output)),
                        Price::PerImage(_) => None,
                    })
                    .fold((Usd::ZERO, Usd::ZERO), |(most_in, most_out), (input, output)| {
                        (most_in.max(input), most_out.max(output))
                    });
                Price::PerMillionTokens { input, output }
            }
        }
    }

    /// What `images` images of `model_id` cost.
    pub fn images(&self, model_id: &str, images: u32) -> Usd {
        match self.price_of(model_id, ModelKind::Image) {
            Price::PerImage(each) => each.times(images),
            Price::PerMillionTokens { .. } => Usd::ZERO,
        }
    }

    /// What a text model call of `tokens` costs.
    pub fn tokens(&self, model_id: &str, tokens: Tokens) -> Usd {
        match self.price_of(model_id, ModelKind::Text) {
            Price::PerMillionTokens { input, output } => {
                let part = |per_million: Usd, count: u32| {
                    Usd::from_micros(per_million.micros().saturating_mul(u64::from(count)).div_ceil(1_000_000))
                };
                part(input, tokens.input).saturating_add(part(output, tokens.output))
            }
            Price::PerImage(_) => Usd::ZERO,
        }
    }

    /// Every entry, for `atelier config` and the operator's usage report.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Price)> {
        self.entries.iter().map(|(pattern, price)| (pattern.as_str(), *price))
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        // The built-in table is checked by a test, so this cannot fail.
        Self::new(None).unwrap_or(Self { entries: Vec::new() })
    }
}

/// Whether a model makes images or text: the two are priced differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Image,
    Text,
}

/// Tokens a text model read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub input: u32,
    pub output: u32,
}

impl Tokens {
    /// An estimate for calls whose model reports no usage to us: about four characters a
    /// token, as Anthropic documents for English text (other scripts take more tokens a
    /// character, so the estimate counts characters, not bytes, and rounds up).
    pub fn estimate(read: usize, written: usize) -> Self {
        let tokens = |characters: usize| u32::try_from(characters.div_ceil(4)).unwrap_or(u32::MAX);
        Self { input: tokens(read), output: tokens(written) }
    }

    /// The tokens a picture takes as input: Anthropic documents about width × height / 750,
    /// after the picture is scaled to fit about 1.15 megapixels (so at most about 1,600).
    pub fn of_image(width: u32, height: u32) -> u32 {
        let pixels = u64::from(width) * u64::from(height);
        u32::try_from((pixels / 750).min(1_600)).unwrap_or(1_600)
    }

    pub fn plus_input(self, input: u32) -> Self {
        Self { input: self.input.saturating_add(input), ..self }
    }
}

impl From<crate::chat::TokenUsage> for Tokens {
    fn from(usage: crate::chat::TokenUsage) -> Self {
        Self { input: usage.input_tokens, output: usage.output_tokens }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_reads_and_prices_models_by_their_longest_pattern() {
        let table = PriceTable::new(None).unwrap();
        assert_eq!(table.images("stability.stable-image-core-v1:1", 2), Usd::from_micros(80_000));
        assert_eq!(table.images("us.stability.stable-image-ultra-v1:1", 1), Usd::from_micros(140_000));
        assert_eq!(table.images("amazon.titan-image-generator-v2:0", 3), Usd::from_micros(30_000));
        // Haiku 4.5 is $1 in and $5 out per million tokens.
        let haiku = table.tokens("us.anthropic.claude-haiku-4-5-20251001-v1:0", Tokens { input: 1_000, output: 200 });
        assert_eq!(haiku, Usd::from_micros(1_000 + 1_000));
        let sonnet =
            table.tokens("us.anthropic.claude-sonnet-4-5-20250929-v1:0", Tokens { input: 1_000_000, output: 0 });
        assert_eq!(sonnet, Usd::from_micros(3_000_000));
    }

    #[test]
    fn overrides_replace_and_add_and_unknown_models_cost_the_dearest_of_their_kind() {
        let table = PriceTable::new(Some("stable-image-core=0.05, my-model=0.5, claude-sonnet=6/30")).unwrap();
        assert_eq!(table.images("stability.stable-image-core-v1:1", 1), Usd::from_micros(50_000));
        assert_eq!(table.images("acme.my-model-v1", 1), Usd::from_micros(500_000));
        assert_eq!(table.images("someone.unheard-of-image-model", 1), Usd::from_micros(600_000));
        assert_eq!(
            table.tokens("anthropic.claude-sonnet-4", Tokens { input: 1_000_000, output: 1_000_000 }),
            Usd::from_micros(36_000_000)
        );
        assert_eq!(
            table.price_of("someone.unheard-of-text-model", ModelKind::Text),
            Price::PerMillionTokens { input: Usd::from_micros(15_000_000), output: Usd::from_micros(75_000_000) }
        );
    }

    #[test]
    fn a_wrong_price_says_what_to_write() {
        let error = PriceTable::new(Some("core=$0.04")).unwrap_err();
        assert!(error.contains("`core=$0.04`") && error.contains("0.04"), "{error}");
        assert!(PriceTable::new(Some("just-a-pattern")).unwrap_err().contains("pattern=price"));
        assert!(PriceTable::new(Some("x=1/")).is_err());
    }

    #[test]
    fn amounts_read_and_show_as_dollars() {
        assert_eq!(Usd::parse("5"), Some(Usd::from_micros(5_000_000)));
        assert_eq!(Usd::parse("0.0015"), Some(Usd::from_micros(1_500)));
        assert_eq!(Usd::parse("-1"), None);
        assert_eq!(Usd::parse("1e3"), None);
        assert_eq!(Usd::from_micros(40_000).to_string(), "$0.04");
        assert_eq!(Usd::from_micros(1_500).to_string(), "$0.0015");
        assert_eq!(Usd::from_micros(4_961_234).to_string(), "$4.96");
    }

    #[test]
    fn estimates_round_up_and_pictures_cost_their_documented_tokens() {
        assert_eq!(Tokens::estimate(9, 0), Tokens { input: 3, output: 0 });
        assert_eq!(Tokens::of_image(1_000, 750), 1_000);
        assert_eq!(Tokens::of_image(4_096, 4_096), 1_600);
    }
}
