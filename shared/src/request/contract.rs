//! The request rules of [`super`] as regular expressions, for documents that describe what
//! Atelier accepts (the JSON API's OpenAPI document). Each pattern is built from the very
//! predicates and limits the parsers use (`char::is_whitespace`, `char::is_control`, the
//! numeric ranges), so a document made from them cannot drift from the checks; the tests
//! below hold each pattern against its parser.
//!
//! The patterns are ECMA-262 regular expressions (JSON Schema's dialect) using only `\uXXXX`
//! escapes, classes and alternations, which every JSON Schema validator and generator reads
//! the same way. Each is anchored (`^…$`) where it describes a whole value.

use std::fmt::Write as _;

use super::{AspectRatio, HexColor, ImageCount, MAX_PROMPT_CHARACTERS, Size};
use crate::engine::GenerationLimits;

/// What one installation accepts beyond the rules every request follows: which models may
/// be named, and what the engine's models take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContract {
    /// The names a generation may give as its model: each generating model's alias and id.
    pub generation_models: Vec<String>,
    /// The names an edit may give as its model.
    pub edit_models: Vec<String>,
    pub limits: GenerationLimits,
}

/// The characters a predicate holds for, as the inside of a regex class (`a-z…`), from the
/// Basic Multilingual Plane (every character our rules single out lives there).
fn class_of(predicate: impl Fn(char) -> bool) -> String {
    let mut class = String::new();
    let mut start: Option<u32> = None;
    let mut previous = 0u32;
    let flush = |class: &mut String, from: u32, to: u32| {
        let _ = if from == to { write!(class, "\\u{from:04X}") } else { write!(class, "\\u{from:04X}-\\u{to:04X}") };
    };
    for code in 0u32..=0xFFFF {
        let held = char::from_u32(code).is_some_and(&predicate);
        match (held, start) {
            (true, None) => start = Some(code),
            (false, Some(from)) => {
                flush(&mut class, from, previous);
                start = None;
            }
            _ => {}
        }
        previous = code;
    }
    if let Some(from) = start {
        flush(&mut class, from, previous);
    }
    class
}

/// What `str::trim` takes away (every pattern uses it, so it is worked out once).
fn blank() -> &'static str {
    static BLANK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BLANK.get_or_init(|| class_of(char::is_whitespace))
}

/// Characters no text field takes: control characters other than tab and line breaks.
pub fn is_forbidden_control(character: char) -> bool {
    character.is_control() && !matches!(character, '\t' | '\n' | '\r')
}

/// A prompt (and a mask prompt, and a negative prompt that is not blank): at least one
/// character that is not blank, no control character but tabs and line breaks (the length
/// is the schema's `maxLength`, [`MAX_PROMPT_CHARACTERS`]).
pub fn prompt_pattern() -> String {
    let forbidden = class_of(is_forbidden_control);
    let visible = class_of(|c| is_forbidden_control(c) || c.is_whitespace());
    format!("^[^{forbidden}]*[^{visible}][^{forbidden}]*$")
}

/// The longest prompt, for the schema's `maxLength`.
pub const PROMPT_MAX_LENGTH: usize = MAX_PROMPT_CHARACTERS;

/// A text that is empty or blank: a field left empty, which means "not given".
pub fn blank_pattern() -> String {
    format!("^[{}]*$", blank())
}

/// A text with something that is not blank in it.
pub fn not_blank_pattern() -> String {
    format!("[^{}]", blank())
}

/// Reads a mode's word as [`word_pattern`] describes it: any letter case, blanks around it, an
/// underscore or a space for a hyphen, or one of its aliases.
pub fn mode_word<T: Copy>(text: &str, all: &[T], aliases: &[(&str, T)], name: fn(T) -> &'static str) -> Option<T> {
    let wanted = text.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    aliases
        .iter()
        .find(|(alias, _)| *alias == wanted)
        .map(|(_, mode)| *mode)
        .or_else(|| all.iter().copied().find(|mode| name(*mode) == wanted))
}

/// One of `words`, any letter case, with blanks around it; a hyphen may also be written as
/// an underscore or a space, as the parsers of modes take it.
pub fn word_pattern(words: &[&str]) -> String {
    let blank = blank();
    let alternatives: Vec<String> = words
        .iter()
        .map(|word| {
            word.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if c == '-' {
                        "[\\u002D_\\u0020]".to_string()
                    } else if c.is_ascii_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\u{:04X}", u32::from(c))
                    }
                })
                .collect()
        })
        .collect();
    format!("^[{blank}]*(?:{})[{blank}]*$", alternatives.join("|"))
}

/// One of `names` exactly (letter case counts), with blanks around it.
pub fn exact_name_pattern(names: &[&str]) -> String {
    let blank = blank();
    let alternatives: Vec<String> = names.iter().map(|name| escape(name)).collect();
    format!("^[{blank}]*(?:{})[{blank}]*$", alternatives.join("|"))
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\u{:04X}", u32::from(c)) })
        .collect()
}

/// Parses a whole number written in decimal digits (blanks around it allowed, no sign): the
/// one way every front end reads seeds, counts and sides, so one pattern describes them all.
pub fn parse_whole_number(text: &str) -> Option<u64> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Leading zeros never make a number too large.
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    significant.parse().ok()
}

/// Decimal numbers from `low` to `high` (leading zeros allowed), as a regex without anchors.
pub fn whole_number_range(low: u64, high: u64) -> String {
    let alternatives = range_alternatives(low, high);
    format!("0*(?:{})", alternatives.join("|"))
}

/// The alternatives, without leading zeros, that match exactly the numbers `low..=high`.
fn range_alternatives(low: u64, high: u64) -> Vec<String> {
    if low > high {
        return Vec::new();
    }
    let (low_text, high_text) = (low.to_string(), high.to_string());
    if low_text.len() < high_text.len() {
        // Split at the powers of ten: each part has one number of digits.
        let top_of_length = 10u64.pow(low_text.len() as u32) - 1;
        let mut alternatives = range_alternatives(low, top_of_length);
        alternatives.extend(range_alternatives(top_of_length + 1, high));
        return alternatives;
    }
    same_length(&low_text, &high_text)
}

/// Alternatives matching the numbers from `low` to `high`, both written with `n` digits.
fn same_length(low: &str, high: &str) -> Vec<String> {
    if low == high {
        return vec![low.to_string()];
    }
    let common = low.bytes().zip(high.bytes()).take_while(|(a, b)| a == b).count();
    let prefix = &low[..common];
    let (low_digit, high_digit) = (low.as_bytes()[common] - b'0', high.as_bytes()[common] - b'0');
    let (low_rest, high_rest) = (&low[common + 1..], &high[common + 1..]);
    let rest = low_rest.len();
    let any = |count: usize| if count == 0 { String::new() } else { format!("[0-9]{{{count}}}") };
    if low_rest.bytes().all(|b| b == b'0') && high_rest.bytes().all(|b| b == b'9') {
        return vec![format!("{prefix}[{low_digit}-{high_digit}]{}", any(rest))];
    }
    let mut alternatives = Vec::new();
    for tail in same_length(low_rest, &"9".repeat(rest)) {
        alternatives.push(format!("{prefix}{low_digit}{tail}"));
    }
    if high_digit - low_digit > 1 {
        alternatives.push(format!("{prefix}[{}-{}]{}", low_digit + 1, high_digit - 1, any(rest)));
    }
    for tail in same_length(&"0".repeat(rest), high_rest) {
        alternatives.push(format!("{prefix}{high_digit}{tail}"));
    }
    alternatives
}

/// A whole number from `low` to `high` as text (blanks around it allowed).
pub fn whole_number_text_pattern(low: u64, high: u64) -> String {
    let blank = blank();
    format!("^[{blank}]*{}[{blank}]*$", whole_number_range(low, high))
}

/// A seed as text: 0 to 4294967295.
pub fn seed_pattern() -> String {
    whole_number_text_pattern(0, u64::from(u32::MAX))
}

/// A number of images as text.
pub fn count_pattern() -> String {
    whole_number_text_pattern(1, u64::from(ImageCount::MAX))
}

/// An aspect ratio `W:H` between 1:4 and 4:1, each side 1 to 100 ([`AspectRatio`]).
pub fn aspect_pattern() -> String {
    let blank = blank();
    let mut alternatives = Vec::new();
    for width in 1..=AspectRatio::LARGEST_TERM {
        let lowest = width.div_ceil(AspectRatio::MOST_EXTREME);
        let highest = (width * AspectRatio::MOST_EXTREME).min(AspectRatio::LARGEST_TERM);
        alternatives.push(format!(
            "0*{width}[{blank}]*:[{blank}]*{}",
            whole_number_range(u64::from(lowest), u64::from(highest))
        ));
    }
    format!("^[{blank}]*(?:{})[{blank}]*$", alternatives.join("|"))
}

/// A size `WxH` with each side from 64 to `largest_side` ([`Size`]).
pub fn size_pattern(largest_side: u32) -> String {
    let blank = blank();
    let side = whole_number_range(u64::from(Size::SMALLEST_SIDE), u64::from(largest_side));
    format!("^[{blank}]*{side}[{blank}]*[xX\\u00D7][{blank}]*{side}[{blank}]*$")
}

/// A style name: letters, digits and hyphens, up to 40.
pub fn style_pattern() -> String {
    let blank = blank();
    format!("^[{blank}]*[A-Za-z0-9-]{{1,{}}}[{blank}]*$", super::choices::StyleName::LONGEST)
}

/// One colour, `#RRGGBB` ([`HexColor`]).
pub fn color_pattern() -> String {
    let blank = blank();
    format!("^[{blank}]*#*[0-9A-Fa-f]{{6}}[{blank}]*$")
}

/// Colours in one text, separated by commas or spaces, at most [`HexColor::MAX_PALETTE`].
pub fn palette_pattern() -> String {
    let blank_or_comma = format!("[{},]", blank());
    let color = "#*[0-9A-Fa-f]{6}";
    let separator = format!("{blank_or_comma}*[, ]{blank_or_comma}*");
    format!("^{blank_or_comma}*(?:{color}(?:{separator}{color}){{0,{}}})?{blank_or_comma}*$", HexColor::MAX_PALETTE - 1)
}

/// An image id (a ULID, as `ImageId::parse` reads it), blanks around it allowed. The
/// characters each position takes are read off the parser itself.
pub fn image_id_pattern() -> String {
    use crate::gallery::ImageId;
    let taken = |make: &dyn Fn(char) -> String| class_of(|c| c.is_ascii_graphic() && ImageId::parse(&make(c)).is_ok());
    let first = taken(&|c| format!("{c}{}", "0".repeat(25)));
    let rest = taken(&|c| format!("0{c}{}", "0".repeat(24)));
    let blank = blank();
    format!("^[{blank}]*[{first}][{rest}]{{25}}[{blank}]*$")
}

/// A similarity from 0.2 to 1.0 as a plain decimal ("0.5", ".75", "1").
pub fn similarity_pattern() -> String {
    let blank = blank();
    format!("^[{blank}]*(?:0*\\.[2-9][0-9]*|0*1(?:\\.0*)?)[{blank}]*$")
}

/// A chat message: something that is not blank (its length is the schema's `maxLength`).
pub fn message_pattern() -> String {
    not_blank_pattern()
}

/// A session name: 1 to 60 characters on one line, blanks around it allowed.
pub fn session_name_pattern() -> String {
    let blank = blank();
    let control = class_of(char::is_control);
    let shown = class_of(|c| c.is_control() || c.is_whitespace());
    let longest = crate::gallery::SessionName::LONGEST;
    format!("^[{blank}]*(?:[^{shown}]|[^{shown}][^{control}]{{0,{}}}[^{shown}])[{blank}]*$", longest - 2)
}

#[cfg(test)]
mod tests;
