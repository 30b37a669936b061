//! Parameters typed inside a prompt, the way image-bot users write them:
//! `a castle at dusk --ar 16:9 --seed 42 --no fog, people --model ultra`.
//!
//! The parameters are taken out of the prompt and returned as [`GenerationFields`], so they
//! go through the same checks as every other way of asking. An option given explicitly (a
//! slash-command option) wins over the same parameter typed inline.

use crate::error::Invalid;
use crate::request::GenerationFields;

/// The inline parameters we know, with the field each one fills.
const PARAMETERS: &[(&[&str], Field)] = &[
    (&["--ar", "--aspect"], Field::Aspect),
    (&["--seed"], Field::Seed),
    (&["--no"], Field::Negative),
    (&["--model", "--m"], Field::Model),
    (&["--style"], Field::Style),
    (&["--count", "--n"], Field::Count),
    (&["--size"], Field::Size),
    (&["--colors", "--colours"], Field::Colors),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Aspect,
    Seed,
    Negative,
    Model,
    Style,
    Count,
    Size,
    Colors,
}

/// Splits inline parameters out of `text` and fills the empty fields of `explicit` with them.
pub fn apply_inline_parameters(text: &str, explicit: GenerationFields) -> Result<GenerationFields, Invalid> {
    let mut prompt_words: Vec<&str> = Vec::new();
    let mut current: Option<(Field, &str, Vec<&str>)> = None;
    let mut found: Vec<(Field, String)> = Vec::new();
    for word in text.split_whitespace() {
        if word.starts_with("--") {
            if let Some((field, name, values)) = current.take() {
                found.push((field, finish(name, values)?));
            }
            let lower = word.to_ascii_lowercase();
            let Some((_, field)) = PARAMETERS.iter().find(|(names, _)| names.contains(&lower.as_str())) else {
                let known: Vec<&str> = PARAMETERS.iter().map(|(names, _)| names[0]).collect();
                return Err(Invalid::new(format!("`{word}` is not a parameter: use {}", known.join(", "))));
            };
            current = Some((*field, word, Vec::new()));
        } else if let Some((_, _, values)) = current.as_mut() {
            values.push(word);
        } else {
            prompt_words.push(word);
        }
    }
    if let Some((field, name, values)) = current.take() {
        found.push((field, finish(name, values)?));
    }

    let mut fields = GenerationFields { prompt: prompt_words.join(" "), ..explicit };
    for (field, value) in found {
        let slot = match field {
            Field::Aspect => &mut fields.aspect,
            Field::Seed => &mut fields.seed,
            Field::Negative => &mut fields.negative_prompt,
            Field::Model => &mut fields.model,
            Field::Style => &mut fields.style,
            Field::Count => &mut fields.count,
            Field::Size => &mut fields.size,
            Field::Colors => &mut fields.colors,
        };
        // An explicit option wins; the inline one only fills a gap.
        if slot.as_deref().is_none_or(|existing| existing.trim().is_empty()) {
            *slot = Some(value);
        }
    }
    Ok(fields)
}

fn finish(name: &str, values: Vec<&str>) -> Result<String, Invalid> {
    if values.is_empty() {
        return Err(Invalid::new(format!("`{name}` needs a value, such as {name} {}", example(name))));
    }
    Ok(values.join(" "))
}

fn example(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "--ar" | "--aspect" => "16:9",
        "--seed" => "42",
        "--no" => "trees, text",
        "--model" | "--m" => "ultra",
        "--count" | "--n" => "2",
        "--size" => "1024x1024",
        "--colors" | "--colours" => "#1B4F72,#F4D03F",
        _ => "photographic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GenerationFields {
        apply_inline_parameters(text, GenerationFields { prompt: text.into(), ..GenerationFields::default() }).unwrap()
    }

    #[test]
    fn parameters_come_out_of_the_prompt() {
        let fields = parse("a castle at dusk --ar 16:9 --seed 42 --no fog, people --model ultra");
        assert_eq!(fields.prompt, "a castle at dusk");
        assert_eq!(fields.aspect.as_deref(), Some("16:9"));
        assert_eq!(fields.seed.as_deref(), Some("42"));
        assert_eq!(fields.negative_prompt.as_deref(), Some("fog, people"));
        assert_eq!(fields.model.as_deref(), Some("ultra"));
        let request = fields.parse().unwrap();
        assert_eq!(request.prompt.as_str(), "a castle at dusk");
    }

    #[test]
    fn explicit_options_win_over_inline_ones() {
        let explicit =
            GenerationFields { prompt: "a fox --seed 1".into(), seed: Some("7".into()), ..GenerationFields::default() };
        let fields = apply_inline_parameters("a fox --seed 1", explicit).unwrap();
        assert_eq!(fields.seed.as_deref(), Some("7"));
        assert_eq!(fields.prompt, "a fox");
    }

    #[test]
    fn unknown_or_empty_parameters_say_what_to_write() {
        let unknown = apply_inline_parameters("a fox --chaos 50", GenerationFields::default()).unwrap_err();
        assert!(unknown.message().contains("`--chaos` is not a parameter: use --ar, --seed"), "{unknown}");
        let empty = apply_inline_parameters("a fox --ar", GenerationFields::default()).unwrap_err();
        assert_eq!(empty.message(), "`--ar` needs a value, such as --ar 16:9");
        // A value that does not parse is refused by the ordinary checks, with their wording.
        let bad_seed = parse("a fox --seed lots").parse().unwrap_err();
        assert!(bad_seed.message().contains("`lots` is not a seed"), "{bad_seed}");
    }

    #[test]
    fn a_prompt_without_parameters_is_left_alone() {
        let fields = parse("a red — fox, in the snow");
        assert_eq!(fields.prompt, "a red — fox, in the snow");
        assert_eq!(fields.aspect, None);
    }
}
