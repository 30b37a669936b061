use serde_json::{Value, json};

use super::*;
use crate::engine::catalog::Catalog;
use crate::request::{ModelName, Prompt, Size};

fn model(alias: &str) -> ModelEntry {
    let catalog = Catalog::new(None, None).unwrap();
    catalog.for_generation(Some(&ModelName::parse(alias).unwrap())).unwrap().clone()
}

/// A text-to-image body as the JSON sent, for assertions on its fields.
fn generation_json(model: &ModelEntry, request: &GenerationRequest, seed: Seed) -> Result<Value, Invalid> {
    generation_body(model, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

fn request(shape: Shape) -> GenerationRequest {
    GenerationRequest {
        guidance: Default::default(),
        shape,
        negative_prompt: Some(Prompt::parse("blurry").unwrap()),
        ..GenerationRequest::from_prompt(Prompt::parse("a fox").unwrap())
    }
}

#[test]
fn text_to_image_bodies_use_the_documented_fields() {
    let body = generation_json(&model("core"), &request(Shape::Aspect(AspectRatio { width: 16, height: 9 })), Seed(7))
        .unwrap();
    assert_eq!(
        body,
        json!({"prompt": "a fox", "negative_prompt": "blurry", "mode": "text-to-image", "aspect_ratio": "16:9",
               "seed": 7, "output_format": "png"})
    );
}

#[test]
fn sizes_become_ratios_or_are_refused_with_the_choices() {
    let square = generation_json(&model("ultra"), &request(Shape::Size(Size { width: 1024, height: 1024 })), Seed(1));
    assert_eq!(square.unwrap()["aspect_ratio"], "1:1");
    let refusal =
        generation_json(&model("ultra"), &request(Shape::Aspect(AspectRatio { width: 4, height: 3 })), Seed(1))
            .unwrap_err();
    assert!(refusal.message().contains("cannot make the aspect ratio 4:3: use one of 16:9, 1:1"), "{refusal}");
}

#[test]
fn finish_reasons_become_blocks_or_failures() {
    let filtered = read_response(br#"{"seeds":[1],"finish_reasons":["Filter reason: prompt"],"images":[]}"#).unwrap();
    assert!(matches!(filtered, Answer::Filtered(text) if text.contains("the prompt")));
    let failed = read_response(br#"{"seeds":[1],"finish_reasons":["Inference error"],"images":[]}"#).unwrap_err();
    assert!(matches!(failed, Error::Busy(_)));
    let image = read_response(br#"{"seeds":[99],"finish_reasons":[null],"images":["iVBORw0KGgo="]}"#).unwrap();
    match image {
        Answer::Images(images) => {
            assert_eq!(images[0].seed, Some(Seed(99)));
            assert_eq!(&images[0].bytes[..4], b"\x89PNG");
        }
        Answer::Filtered(text) => panic!("unexpected block: {text}"),
    }
}

#[test]
fn each_task_serialises_to_the_documented_body() {
    use crate::bedrock::wire::{assert_documented, image_base64};
    use crate::images::{CheckedImage, encode_png};
    use crate::request::OutpaintDirection;

    let wide = request(Shape::Aspect(AspectRatio { width: 16, height: 9 }));
    assert_documented(
        generation_body(&model("ultra"), &wide, Seed(7)).unwrap(),
        json!({"prompt": "a fox", "negative_prompt": "blurry", "mode": "text-to-image", "aspect_ratio": "16:9",
               "seed": 7, "output_format": "png"}),
    );
    let plain = GenerationRequest { negative_prompt: None, ..wide };
    assert_documented(
        generation_body(&model("core"), &plain, Seed(8)).unwrap(),
        json!({"prompt": "a fox", "mode": "text-to-image", "aspect_ratio": "16:9", "seed": 8, "output_format": "png"}),
    );

    let pixels = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
    let source = CheckedImage::check(encode_png(&pixels, &[]).unwrap(), "the image").unwrap();
    let variation = EditRequest {
        mode: EditMode::Variation,
        source,
        prompt: Some(Prompt::parse("the same fox in winter").unwrap()),
        negative_prompt: Some(Prompt::parse("blurry").unwrap()),
        region: None,
        model: None,
        seed: None,
        similarity: Some(0.75),
        outpaint_direction: OutpaintDirection::All,
    };
    assert_documented(
        edit_body(&model("sd3.5"), &variation, Seed(9)).unwrap(),
        json!({"prompt": "the same fox in winter", "negative_prompt": "blurry", "mode": "image-to-image",
               "image": image_base64(&variation.source).unwrap(), "strength": 0.25, "seed": 9, "output_format": "png"}),
    );
}
