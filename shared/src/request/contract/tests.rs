//! Each pattern against its parser: a text matches exactly when the parser accepts it.

use regex::Regex;

use super::*;
use crate::gallery::SessionName;
use crate::request::{ImageCount, Prompt, Seed, StyleName, parse_palette};

fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|error| panic!("{pattern}: {error}"))
}

/// Asserts that `pattern` matches a text exactly when `accepts` does, for every text given.
fn agrees(pattern: &str, texts: impl IntoIterator<Item = String>, accepts: impl Fn(&str) -> bool) {
    let regex = compiled(pattern);
    for text in texts {
        assert_eq!(regex.is_match(&text), accepts(&text), "{text:?} against the pattern and the parser");
    }
}

/// Blanks, separators and characters the rules single out, to surround and fill values.
const ODD: [&str; 12] = ["", " ", "\t", "\n", "\u{3000}", "\u{0}", "\u{1b}", "\u{85}", "\u{a0}", "+", "-", "é"];

#[test]
fn whole_number_ranges_match_exactly_the_numbers_in_them() {
    for (low, high) in [(0, 9), (1, 4), (0, 10), (7, 7), (64, 2_048), (64, 4_096), (13, 1_307), (0, 4_999)] {
        let regex = compiled(&format!("^{}$", whole_number_range(low, high)));
        for number in 0..=5_200u64 {
            assert_eq!(
                regex.is_match(&number.to_string()),
                (low..=high).contains(&number),
                "{number} in {low}..={high}"
            );
        }
        assert!(regex.is_match(&format!("00{low}")), "leading zeros");
    }
    let seed = compiled(&seed_pattern());
    for text in ["0", "4294967295", " 42 ", "0004294967295"] {
        assert!(seed.is_match(text) && text.parse::<Seed>().is_ok(), "{text:?}");
    }
    for text in ["4294967296", "-1", "+1", "1.5", "", "1e3", "99999999999"] {
        assert!(!seed.is_match(text) && text.parse::<Seed>().is_err(), "{text:?}");
    }
}

#[test]
fn the_count_pattern_agrees_with_the_count() {
    let texts = (0..12).map(|n| n.to_string()).chain(ODD.iter().map(|odd| format!("{odd}2{odd}")));
    agrees(&count_pattern(), texts, |text| {
        parse_whole_number(text).and_then(|n| u32::try_from(n).ok()).is_some_and(|n| ImageCount::new(n).is_ok())
    });
}

#[test]
fn the_aspect_pattern_agrees_with_aspect_ratios() {
    let mut texts = Vec::new();
    for width in 0..=105 {
        for height in 0..=105 {
            texts.push(format!("{width}:{height}"));
        }
    }
    for odd in ODD {
        texts.push(format!("{odd}16{odd}:{odd}9{odd}"));
    }
    texts.extend(["016:09", "16/9", "16:", ":9", "16:9:1", "1:4", "1:5", "4:1", "5:1", "+16:9"].map(String::from));
    agrees(&aspect_pattern(), texts, |text| text.parse::<AspectRatio>().is_ok());
}

#[test]
fn the_size_pattern_agrees_with_sizes() {
    let sides = [0, 1, 63, 64, 65, 100, 512, 999, 1_000, 1_024, 2_047, 2_048, 2_049, 4_096, 4_097, 10_000];
    let mut texts = Vec::new();
    for width in sides {
        for height in sides {
            texts.push(format!("{width}x{height}"));
        }
    }
    for odd in ODD {
        texts.push(format!("{odd}512{odd}X{odd}512{odd}"));
        texts.push(format!("512{odd}×{odd}768"));
    }
    texts.extend(["512*512", "512x", "x512", "+512x512", "0512x0512"].map(String::from));
    agrees(&size_pattern(MAX_SIDE_FOR_TESTS), texts.clone(), |text| text.parse::<Size>().is_ok());
    // A smaller largest side (an engine's own) is the same rule cut short.
    agrees(&size_pattern(2_048), texts, |text| {
        text.parse::<Size>().is_ok_and(|size| size.width <= 2_048 && size.height <= 2_048)
    });
}

const MAX_SIDE_FOR_TESTS: u32 = crate::request::MAX_SIDE;

fn samples_of_text() -> Vec<String> {
    let mut texts = vec![
        "a cat".into(),
        "猫がピアノを弾く".into(),
        "قطة تعزف على البيانو".into(),
        "a fox 🦊 in snow".into(),
        "x".repeat(MAX_PROMPT_CHARACTERS),
        "x".repeat(60),
        "x".repeat(61),
        " a long\nprompt\twith lines\r\n".into(),
    ];
    for odd in ODD {
        texts.push(odd.to_string());
        texts.push(format!("{odd}a cat{odd}"));
        texts.push(format!("a{odd}cat"));
        texts.push(format!("{odd}{odd}"));
    }
    texts
}

#[test]
fn the_prompt_pattern_and_length_agree_with_prompts() {
    let regex = compiled(&prompt_pattern());
    let mut texts = samples_of_text();
    texts.push(format!(" {} ", "x".repeat(MAX_PROMPT_CHARACTERS - 2)));
    texts.push("x".repeat(MAX_PROMPT_CHARACTERS + 1));
    for text in texts {
        let described = regex.is_match(&text) && text.chars().count() <= PROMPT_MAX_LENGTH;
        assert_eq!(described, Prompt::parse(&text).is_ok(), "{text:?}");
    }
}

#[test]
fn the_blank_pattern_is_what_trim_takes_away() {
    agrees(&blank_pattern(), samples_of_text(), |text| text.trim().is_empty());
    agrees(&not_blank_pattern(), samples_of_text(), |text| !text.trim().is_empty());
}

#[test]
fn the_style_pattern_agrees_with_style_names() {
    let mut texts = samples_of_text();
    texts.extend(
        ["photographic", "Comic-Book", " neon-punk ", "3d-model", "a_b", &"s".repeat(40), &"s".repeat(41)]
            .map(String::from),
    );
    agrees(&style_pattern(), texts, |text| StyleName::parse(text).is_ok());
}

#[test]
fn the_colour_patterns_agree_with_palettes() {
    let colours = ["#FF8800", "ff8800", "##ff8800", "#FF880", "#GG8800", " #00ff00 ", "#FF8800\t"];
    agrees(&color_pattern(), colours.map(String::from), |text| HexColor::parse(text).is_ok());
    let mut palettes: Vec<String> =
        ["", " ", ",", "#FF8800,#00FF00", "#FF8800 #00FF00", "#FF8800, #00FF00 ,", "#FF8800\t#00FF00", "#FF8800,,x"]
            .map(String::from)
            .to_vec();
    palettes.push(["#FF8800"; 10].join(","));
    palettes.push(["#FF8800"; 11].join(","));
    palettes.push(["#FF8800"; 10].join(" , "));
    agrees(&palette_pattern(), palettes, |text| parse_palette(Some(text)).is_ok());
}

#[test]
fn the_session_pattern_agrees_with_session_names() {
    let mut texts = samples_of_text();
    texts.extend(
        [" trip ", "Japan 2025", "a\u{3000}b", &"s".repeat(59), &format!(" {} ", "s".repeat(60))].map(String::from),
    );
    agrees(&session_name_pattern(), texts, |text| SessionName::parse(text).is_ok());
}

#[test]
fn word_patterns_take_any_letter_case_and_names_exactly_one() {
    agrees(&word_pattern(&["none"]), ["none", " NONE ", "None", "nones", "no ne", ""].map(String::from), |text| {
        text.trim().eq_ignore_ascii_case("none")
    });
    agrees(
        &exact_name_pattern(&["demo", "atelier.demo"]),
        ["demo", " demo ", "atelier.demo", "atelierxdemo", "Demo", "demo2"].map(String::from),
        |text| matches!(text.trim(), "demo" | "atelier.demo"),
    );
}

#[test]
fn the_image_id_pattern_agrees_with_image_ids() {
    let mut texts = vec!["01J9ZQ3V8X6K4M2N1P0R7S5T3W".to_string(), " 01j9zq3v8x6k4m2n1p0r7s5t3w ".to_string()];
    for code in 0u8..128 {
        let c = char::from(code);
        texts.push(format!("{c}1J9ZQ3V8X6K4M2N1P0R7S5T3W"));
        texts.push(format!("01J9ZQ3V8X6K4M2N1P0R7S5T3{c}"));
    }
    texts.extend(
        ["", "01J9ZQ3V8X6K4M2N1P0R7S5T3", "01J9ZQ3V8X6K4M2N1P0R7S5T3WW", "81J9ZQ3V8X6K4M2N1P0R7S5T3W"]
            .map(String::from),
    );
    agrees(&image_id_pattern(), texts, |text| crate::gallery::ImageId::parse(text).is_ok());
}

#[test]
fn mode_words_take_underscores_and_spaces_for_hyphens() {
    use crate::chat::ChatMode;
    use crate::request::EditMode;
    let modes: Vec<&str> = ChatMode::ALL.iter().map(|mode| mode.as_str()).collect();
    let texts = ["prompt-coach", "Prompt Coach", "prompt_coach", " ASSISTANT ", "promptcoach", "coach-prompt"];
    agrees(&word_pattern(&modes), texts.map(String::from), |text| {
        text.parse::<ChatMode>().is_ok() && !text.trim().eq_ignore_ascii_case("coach")
    });
    let edits: Vec<&str> = EditMode::ALL.iter().map(|mode| mode.as_str()).collect();
    let texts = ["remove-background", "Remove Background", "remove_background", "upscale", "up-scale"];
    agrees(&word_pattern(&edits), texts.map(String::from), |text| text.parse::<EditMode>().is_ok());
}
