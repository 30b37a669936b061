use super::*;

#[test]
fn prompts_are_trimmed_and_bounded() {
    assert_eq!(Prompt::parse("  a red fox  ").unwrap().as_str(), "a red fox");
    assert!(Prompt::parse("   ").unwrap_err().message().contains("empty"));
    let long = "x".repeat(MAX_PROMPT_CHARACTERS + 1);
    let refusal = Prompt::parse(&long).unwrap_err();
    assert!(refusal.message().contains("2001 characters"), "{refusal}");
    assert!(refusal.message().contains("at most 2000"), "{refusal}");
    assert_eq!(parse_negative_prompt(Some("  ")).unwrap(), None);
    assert!(parse_negative_prompt(Some(&long)).unwrap_err().message().starts_with("the negative prompt"));
}

#[test]
fn prompts_with_control_characters_are_refused_but_line_breaks_are_kept() {
    let refusal = Prompt::parse("a cat\u{0}\u{1b}[2J").unwrap_err();
    assert_eq!(refusal.message(), "the prompt contains a control character (U+0000): remove it and write plain text");
    let negative = parse_negative_prompt(Some("dogs\u{7f}")).unwrap_err();
    assert!(negative.message().starts_with("the negative prompt contains a control character (U+007F)"), "{negative}");
    assert_eq!(Prompt::parse("a cat,\r\n\tin a hat").unwrap().as_str(), "a cat,\r\n\tin a hat");
}

#[test]
fn aspect_ratios_and_sizes_parse_or_say_how() {
    assert_eq!("16:9".parse::<AspectRatio>().unwrap(), AspectRatio { width: 16, height: 9 });
    assert!("16x9".parse::<AspectRatio>().unwrap_err().message().contains("W:H"));
    assert!("5:1".parse::<AspectRatio>().unwrap_err().message().contains("between 1:4 and 4:1"));
    assert_eq!("1024x768".parse::<Size>().unwrap(), Size { width: 1024, height: 768 });
    assert!("20000x20000".parse::<Size>().unwrap_err().message().contains("between 64 and 4096"));
}

#[test]
fn aspect_ratios_become_about_a_megapixel_in_multiples_of_64() {
    let square = Shape::Aspect(AspectRatio { width: 1, height: 1 }).to_size();
    assert_eq!(square, Size { width: 1024, height: 1024 });
    let wide = Shape::Aspect(AspectRatio { width: 16, height: 9 }).to_size();
    assert_eq!((wide.width % 64, wide.height % 64), (0, 0));
    assert!(wide.width > wide.height);
    let pixels = f64::from(wide.width * wide.height);
    assert!((pixels / (1024.0 * 1024.0) - 1.0).abs() < 0.1, "{wide}");
}

#[test]
fn counts_seeds_and_modes_are_checked() {
    assert!(ImageCount::new(0).is_err());
    assert!(ImageCount::new(5).unwrap_err().message().contains("1 to 4"));
    assert_eq!(ImageCount::new(3).unwrap().get(), 3);
    assert_eq!("42".parse::<Seed>().unwrap(), Seed(42));
    assert!("-1".parse::<Seed>().unwrap_err().message().contains("0 to 4294967295"));
    assert_eq!("remove_bg".parse::<EditMode>().unwrap(), EditMode::RemoveBackground);
    assert_eq!("Recolour".parse::<EditMode>().unwrap(), EditMode::Recolor);
    let wrong = "paint".parse::<EditMode>().unwrap_err();
    assert!(wrong.message().contains("inpaint, outpaint, variation"), "{wrong}");
    for mode in EditMode::ALL {
        assert_eq!(mode.as_str().parse::<EditMode>().unwrap(), mode);
    }
}

#[test]
fn fields_parse_into_a_request_with_blank_meaning_default() {
    let fields = GenerationFields {
        prompt: "a castle".into(),
        negative_prompt: Some(" ".into()),
        aspect: Some("16:9".into()),
        seed: Some("7".into()),
        count: Some("2".into()),
        ..GenerationFields::default()
    };
    let request = fields.parse().unwrap();
    assert_eq!(request.negative_prompt, None);
    assert_eq!(request.shape, Shape::Aspect(AspectRatio { width: 16, height: 9 }));
    assert_eq!(request.seed, Some(Seed(7)));
    assert_eq!(request.count.get(), 2);

    let both = GenerationFields { size: Some("512x512".into()), ..fields.clone() };
    assert!(both.parse().unwrap_err().message().contains("not both"));
    let bad_count = GenerationFields { count: Some("many".into()), ..fields };
    assert!(bad_count.parse().unwrap_err().message().contains("use 1 to 4"));
}
