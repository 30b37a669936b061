use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use image::{DynamicImage, Rgb, RgbImage};

use super::*;
use crate::engine::catalog::TitanVariant;
use crate::images::encode_png;

/// A small PNG with some texture, so its thumbnail is not a flat colour.
fn png() -> Bytes {
    let picture = RgbImage::from_fn(300, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8]));
    encode_png(&DynamicImage::ImageRgb8(picture), &[]).unwrap()
}

#[test]
fn a_response_becomes_checked_images() {
    let png = png();
    let response = serde_json::json!({"seeds": [99], "finish_reasons": [null], "images": [BASE64.encode(&png)]});
    let family = Family::StabilityText { image_to_image: false };
    let images = read_images(family, "core", &serde_json::to_vec(&response).unwrap(), Seed(7)).unwrap();

    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image.image.bytes(), &png, "the bytes are kept exactly as the model sent them");
    assert_eq!(image.image, CheckedImage::check(png.clone(), "the image").unwrap());
    assert_eq!(image.seed, Seed(99), "the seed the model reports wins");
    assert_eq!(image.safety, SafetyOutcome::Passed);
}

#[test]
fn every_family_reads_its_own_format_and_keeps_the_asked_seed_when_none_is_reported() {
    let png = png();
    let text = BASE64.encode(&png);
    let titan = serde_json::json!({"images": [text, text]});
    let images =
        read_images(Family::Titan(TitanVariant::NovaCanvas), "nova-canvas", titan.to_string().as_bytes(), Seed(5))
            .unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|image| image.seed == Seed(5) && image.image.bytes() == &png));

    // JSON may escape `/`, which base64 uses: the text is then unescaped, and reads the same.
    assert!(text.contains('/'), "the test image's base64 must hold a `/`");
    let escaped = format!(
        r#"{{"artifacts": [{{"seed": 3, "base64": "{}", "finishReason": "SUCCESS"}}]}}"#,
        text.replace('/', "\\/")
    );
    let images = read_images(Family::StabilitySdxl, "sdxl", escaped.as_bytes(), Seed(5)).unwrap();
    assert_eq!(images[0].image.bytes(), &png);
    assert_eq!(images[0].seed, Seed(3));
}

#[test]
fn filtered_and_broken_answers_are_refused_as_before() {
    let filtered = br#"{"seeds":[1],"finish_reasons":["Filter reason: output image"],"images":[]}"#;
    let family = Family::StabilityText { image_to_image: false };
    let refusal = read_images(family, "core", filtered, Seed(1)).unwrap_err();
    assert!(
        matches!(&refusal, Error::Blocked(refused) if refused.to_string().contains("the image it drew")),
        "{refusal}"
    );

    let broken = serde_json::json!({"seeds": [1], "finish_reasons": [null], "images": [BASE64.encode(b"not a png")]});
    let failure = read_images(family, "core", broken.to_string().as_bytes(), Seed(1)).unwrap_err();
    assert!(matches!(failure, Error::Operator { .. }), "{failure}");
    assert!(failure.to_string().contains("core returned a broken image"), "{failure}");

    // A PNG damaged on the way (one byte of its pixel data changed) fails its chunk's CRC.
    let mut damaged = png().to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    let answer = serde_json::json!({"seeds": [1], "finish_reasons": [null], "images": [BASE64.encode(&damaged)]});
    let failure = read_images(family, "core", answer.to_string().as_bytes(), Seed(1)).unwrap_err();
    assert!(failure.to_string().contains("core returned a broken image"), "{failure}");
}

fn flat_png(width: u32, height: u32, shade: u8) -> CheckedImage {
    let picture = RgbImage::from_pixel(width, height, Rgb([shade, shade, shade]));
    CheckedImage::check(encode_png(&DynamicImage::ImageRgb8(picture), &[]).unwrap(), "the image").unwrap()
}

/// What checking an edit says, family by family, without encoding any image.
fn checked(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<(), String> {
    check_edit(model, request, seed).map_err(|error| error.to_string())
}

#[test]
fn checking_an_edit_without_its_images_accepts_and_refuses_exactly_what_building_its_body_does() {
    use crate::request::{EditMode, OutpaintDirection, Prompt, Region};

    let catalog = Catalog::new(None, None).unwrap();
    let modes = [
        EditMode::Inpaint,
        EditMode::Outpaint,
        EditMode::Variation,
        EditMode::RemoveBackground,
        EditMode::Replace,
        EditMode::Recolor,
        EditMode::Upscale,
    ];
    let (mut accepted, mut refused) = (0, 0);
    // Sizes each family takes or refuses: SDXL's own, too long for Titan, Nova Canvas's smallest.
    for (width, height) in [(1024, 1024), (1536, 640), (320, 320)] {
        let source = flat_png(width, height, 90);
        let regions = [
            None,
            Some(Region::MaskImage(flat_png(width, height, 0))),
            Some(Region::MaskPrompt(Prompt::parse("the sky").unwrap())),
        ];
        for mode in modes {
            for region in &regions {
                for prompt in [None, Some(Prompt::parse("a lighthouse at dusk").unwrap())] {
                    let request = EditRequest {
                        mode,
                        source: source.clone(),
                        prompt,
                        negative_prompt: None,
                        region: region.clone(),
                        model: None,
                        seed: None,
                        similarity: None,
                        outpaint_direction: OutpaintDirection::Left,
                    };
                    for model in catalog.entries() {
                        let built =
                            edit_payload(model, &request, Seed(11)).map(|_| ()).map_err(|error| error.to_string());
                        assert_eq!(
                            checked(model, &request, Seed(11)),
                            built,
                            "{model} {mode} {width}x{height} {region:?}"
                        );
                        if built.is_ok() { accepted += 1 } else { refused += 1 }
                    }
                }
            }
        }
    }
    assert!(accepted > 50 && refused > 50, "the cases must cover both: {accepted} accepted, {refused} refused");
}
