use serde_json::{Value, json};

use super::*;
use crate::engine::catalog::Catalog;
use crate::images::{CheckedImage, encode_png};
use crate::request::{ModelName, OutpaintDirection, Prompt, StyleName};

fn model() -> ModelEntry {
    Catalog::new(None, None).unwrap().for_generation(Some(&ModelName::parse("sdxl").unwrap())).unwrap().clone()
}

fn request(shape: Shape) -> GenerationRequest {
    GenerationRequest {
        guidance: Default::default(),
        shape,
        negative_prompt: Some(Prompt::parse("blurry").unwrap()),
        style: Some(StyleName::parse("photographic").unwrap()),
        ..GenerationRequest::from_prompt(Prompt::parse("a fox").unwrap())
    }
}

/// A text-to-image body as the JSON sent, for assertions on its fields.
fn generation_json(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<Value, Invalid> {
    generation_body(model, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

/// An edit body as the JSON sent, for assertions on its fields.
fn edit_json(model: &ModelEntry, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    edit_body(model, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

fn image(width: u32, height: u32) -> CheckedImage {
    let pixels = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([9, 9, 9])));
    CheckedImage::check(encode_png(&pixels, &[]).unwrap(), "the image").unwrap()
}

#[test]
fn the_negative_prompt_is_a_negatively_weighted_text_prompt() {
    let body = generation_json(&model(), &request(Shape::Size(Size { width: 1344, height: 768 })), Seed(5)).unwrap();
    assert_eq!(
        body,
        json!({
            "text_prompts": [{"text": "a fox", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
            "cfg_scale": 7.0, "steps": 30, "seed": 5, "samples": 1, "width": 1344, "height": 768,
            "style_preset": "photographic"
        })
    );
}

#[test]
fn only_the_allowed_sizes_are_sent() {
    let wide =
        generation_json(&model(), &request(Shape::Aspect(AspectRatio { width: 16, height: 9 })), Seed(1)).unwrap();
    assert_eq!((wide["width"].as_u64(), wide["height"].as_u64()), (Some(1344), Some(768)));
    let refusal =
        generation_json(&model(), &request(Shape::Size(Size { width: 512, height: 512 })), Seed(1)).unwrap_err();
    assert!(refusal.message().contains("sdxl cannot draw 512x512: use one of 1024x1024"), "{refusal}");
    let mut unknown_style = request(Shape::default());
    unknown_style.style = Some(StyleName::parse("watercolour").unwrap());
    assert!(
        generation_json(&model(), &unknown_style, Seed(1)).unwrap_err().message().contains("no style `watercolour`")
    );
}

fn edit(mode: EditMode, source: CheckedImage, region: Option<Region>) -> EditRequest {
    EditRequest {
        mode,
        source,
        prompt: Some(Prompt::parse("a red door").unwrap()),
        negative_prompt: None,
        region,
        model: None,
        seed: None,
        similarity: Some(0.6),
        outpaint_direction: OutpaintDirection::All,
    }
}

#[test]
fn variations_and_masked_inpaints_use_the_image_to_image_fields() {
    let variation = edit_json(&model(), &edit(EditMode::Variation, image(1024, 1024), None), Seed(3)).unwrap();
    assert_eq!(variation["init_image_mode"], "IMAGE_STRENGTH");
    assert_eq!(variation["image_strength"].as_f64().map(|strength| (strength * 10.0).round()), Some(6.0));
    assert!(variation.get("width").is_none(), "image-to-image takes its size from the image");

    let masked = edit(EditMode::Inpaint, image(1024, 1024), Some(Region::MaskImage(image(1024, 1024))));
    let inpaint = edit_json(&model(), &masked, Seed(3)).unwrap();
    assert_eq!(inpaint["mask_source"], "MASK_IMAGE_WHITE");
    assert!(inpaint["mask_image"].as_str().is_some_and(|mask| !mask.is_empty()));
}

#[test]
fn edits_sdxl_cannot_do_are_refused_with_an_alternative() {
    let described =
        edit(EditMode::Inpaint, image(1024, 1024), Some(Region::MaskPrompt(Prompt::parse("the door").unwrap())));
    assert!(edit_json(&model(), &described, Seed(1)).unwrap_err().to_string().contains("needs a painted mask"));
    let odd_size = edit(EditMode::Variation, image(500, 300), None);
    assert!(
        edit_json(&model(), &odd_size, Seed(1)).unwrap_err().to_string().contains("this one is 500x300: use sd3.5")
    );
}

#[test]
fn a_filtered_artifact_is_a_block_not_an_image() {
    let filtered =
        br#"{"result":"success","artifacts":[{"seed":1,"base64":"iVBORw0KGgo=","finishReason":"CONTENT_FILTERED"}]}"#;
    assert!(matches!(read_response(filtered).unwrap(), Answer::Filtered(_)));
    let fine = br#"{"result":"success","artifacts":[{"seed":12,"base64":"iVBORw0KGgo=","finishReason":"SUCCESS"}]}"#;
    match read_response(fine).unwrap() {
        Answer::Images(images) => assert_eq!(images[0].seed, Some(Seed(12))),
        Answer::Filtered(text) => panic!("unexpected block: {text}"),
    }
    let failed = br#"{"result":"success","artifacts":[{"seed":1,"finishReason":"ERROR"}]}"#;
    assert!(matches!(read_response(failed).unwrap_err(), Error::Busy(_)));
}

#[test]
fn each_task_serialises_to_the_documented_body() {
    use crate::bedrock::wire::{assert_documented, image_base64, mask_base64};

    let text = request(Shape::Size(Size { width: 1024, height: 1024 }));
    assert_documented(
        generation_body(&model(), &text, Seed(5)).unwrap(),
        json!({
            "text_prompts": [{"text": "a fox", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
            "cfg_scale": 7.0, "steps": 30, "seed": 5, "samples": 1,
            "width": 1024, "height": 1024, "style_preset": "photographic"
        }),
    );
    let plain = GenerationRequest { negative_prompt: None, style: None, ..text };
    assert_documented(
        generation_body(&model(), &plain, Seed(6)).unwrap(),
        json!({
            "text_prompts": [{"text": "a fox", "weight": 1.0}],
            "cfg_scale": 7.0, "steps": 30, "seed": 6, "samples": 1, "width": 1024, "height": 1024
        }),
    );

    let variation = edit(EditMode::Variation, image(1024, 1024), None);
    assert_documented(
        edit_body(&model(), &variation, Seed(3)).unwrap(),
        json!({
            "text_prompts": [{"text": "a red door", "weight": 1.0}],
            "cfg_scale": 7.0, "steps": 30, "seed": 3, "samples": 1,
            "init_image": image_base64(&variation.source).unwrap(),
            "init_image_mode": "IMAGE_STRENGTH",
            "image_strength": f64::from(0.6f32)
        }),
    );

    let mask = image(1024, 1024);
    let inpaint = edit(EditMode::Inpaint, image(1024, 1024), Some(Region::MaskImage(mask.clone())));
    assert_documented(
        edit_body(&model(), &inpaint, Seed(4)).unwrap(),
        json!({
            "text_prompts": [{"text": "a red door", "weight": 1.0}],
            "cfg_scale": 7.0, "steps": 30, "seed": 4, "samples": 1,
            "init_image": image_base64(&inpaint.source).unwrap(),
            "mask_source": "MASK_IMAGE_WHITE",
            "mask_image": mask_base64(&mask, MaskConvention::WhiteMarksRegion).unwrap()
        }),
    );
}
