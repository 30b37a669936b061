use serde_json::{Value, json};

use super::*;
use crate::engine::catalog::Catalog;
use crate::images::CheckedImage;
use crate::request::{ImageCount, ModelName, Prompt};

fn model(alias: &str) -> ModelEntry {
    Catalog::new(None, None).unwrap().for_generation(Some(&ModelName::parse(alias).unwrap())).unwrap().clone()
}

fn request(prompt: &str, shape: Shape) -> GenerationRequest {
    GenerationRequest {
        guidance: Default::default(),
        shape,
        count: ImageCount::new(2).unwrap(),
        negative_prompt: Some(Prompt::parse("blurry").unwrap()),
        ..GenerationRequest::from_prompt(Prompt::parse(prompt).unwrap())
    }
}

/// A text-to-image body as the JSON sent, for assertions on its fields.
fn generation_json(
    model: &ModelEntry,
    variant: TitanVariant,
    request: &GenerationRequest,
    seed: Seed,
) -> Result<Value, Invalid> {
    generation_body(model, variant, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

/// An edit body as the JSON sent, for assertions on its fields.
fn edit_json(model: &ModelEntry, variant: TitanVariant, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    edit_body(model, variant, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

fn image(width: u32, height: u32) -> CheckedImage {
    let pixels = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([200, 9, 9])));
    CheckedImage::check(encode_png(&pixels, &[]).unwrap(), "the image").unwrap()
}

#[test]
fn text_to_image_uses_the_documented_fields() {
    let body =
        generation_json(&model("titan"), TitanVariant::TitanV1, &request("a fox", Shape::default()), Seed(9)).unwrap();
    assert_eq!(
        body,
        json!({
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a fox", "negativeText": "blurry"},
            "imageGenerationConfig": {"numberOfImages": 2, "quality": "standard", "cfgScale": 8.0, "seed": 9, "width": 1024, "height": 1024}
        })
    );
}

#[test]
fn each_variant_enforces_its_own_limits_before_the_call() {
    let long = "a".repeat(600);
    let titan = generation_json(&model("titan"), TitanVariant::TitanV1, &request(&long, Shape::default()), Seed(1));
    assert!(titan.unwrap_err().message().contains("titan takes at most 512"));
    let nova =
        generation_json(&model("nova-canvas"), TitanVariant::NovaCanvas, &request(&long, Shape::default()), Seed(1));
    assert!(nova.is_ok(), "Nova Canvas takes up to 1,024 characters");

    let seed = generation_json(
        &model("nova-canvas"),
        TitanVariant::NovaCanvas,
        &request("a fox", Shape::default()),
        Seed(900_000_000),
    );
    assert!(seed.unwrap_err().message().contains("0 to 858993459"));
    let odd = Shape::Size(Size { width: 1000, height: 1000 });
    let nova_size = generation_json(&model("nova-canvas"), TitanVariant::NovaCanvas, &request("a fox", odd), Seed(1));
    assert!(nova_size.unwrap_err().message().contains("steps of 16"));
    let titan_size = generation_json(&model("titan"), TitanVariant::TitanV1, &request("a fox", odd), Seed(1));
    assert!(titan_size.unwrap_err().message().contains("titan cannot draw 1000x1000"));
    let wide = generation_json(
        &model("titan"),
        TitanVariant::TitanV1,
        &request("a fox", Shape::Aspect(AspectRatio { width: 16, height: 9 })),
        Seed(1),
    )
    .unwrap();
    assert_eq!(
        (wide["imageGenerationConfig"]["width"].as_u64(), wide["imageGenerationConfig"]["height"].as_u64()),
        (Some(1152), Some(640)),
        "the listed size closest to 16:9"
    );
}

fn edit(mode: EditMode, region: Option<Region>, prompt: Option<&str>) -> EditRequest {
    EditRequest {
        mode,
        source: image(512, 512),
        prompt: prompt.map(|text| Prompt::parse(text).unwrap()),
        negative_prompt: None,
        region,
        model: None,
        seed: None,
        similarity: None,
        outpaint_direction: OutpaintDirection::All,
    }
}

#[test]
fn edit_tasks_use_their_params_objects() {
    let titan = model("titan-v2");
    let region = Some(Region::MaskPrompt(Prompt::parse("the sky").unwrap()));
    let inpaint =
        edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::Inpaint, region.clone(), Some("stars")), Seed(2))
            .unwrap();
    assert_eq!(inpaint["taskType"], "INPAINTING");
    assert_eq!(inpaint["inPaintingParams"]["maskPrompt"], "the sky");
    assert_eq!(inpaint["inPaintingParams"]["text"], "stars");
    assert!(inpaint["inPaintingParams"].get("maskImage").is_none(), "maskPrompt and maskImage are exclusive");

    let variation = edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::Variation, None, None), Seed(2)).unwrap();
    assert_eq!(
        variation["imageVariationParams"]["similarityStrength"].as_f64().map(|value| (value * 10.0).round()),
        Some(7.0)
    );
    assert_eq!(variation["imageVariationParams"]["images"].as_array().map(Vec::len), Some(1));

    let outpaint = edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::Outpaint, None, None), Seed(2)).unwrap();
    assert_eq!(outpaint["taskType"], "OUTPAINTING");
    assert_eq!(outpaint["outPaintingParams"]["outPaintingMode"], "PRECISE");
    assert!(outpaint["outPaintingParams"]["maskImage"].is_string());

    let background =
        edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::RemoveBackground, None, None), Seed(2)).unwrap();
    assert_eq!(
        background,
        json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": background["backgroundRemovalParams"]["image"]}})
    );
    let v1 = edit_json(&model("titan"), TitanVariant::TitanV1, &edit(EditMode::RemoveBackground, None, None), Seed(2));
    assert!(v1.unwrap_err().to_string().contains("titan cannot remove-background"));
}

/// A mask painted white over the left half only: the region to change, by our rule.
fn left_half_white() -> CheckedImage {
    let pixels = image::GrayImage::from_fn(512, 512, |x, _| image::Luma([if x < 256 { 255 } else { 0 }]));
    CheckedImage::check(encode_png(&image::DynamicImage::ImageLuma8(pixels), &[]).unwrap(), "the mask").unwrap()
}

/// The brightness of the sent `maskImage` at a point.
fn sent_mask_at(params: &Value, x: u32, y: u32) -> u8 {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(params["maskImage"].as_str().unwrap()).unwrap();
    image::load_from_memory(&bytes).unwrap().to_luma8().get_pixel(x, y)[0]
}

#[test]
fn a_painted_region_is_what_titan_repaints_in_inpainting_and_in_outpainting() {
    let titan = model("titan");
    let region = Some(Region::MaskImage(left_half_white()));
    // Inpainting repaints the inside of Titan's mask, which is black.
    let inpaint =
        edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::Inpaint, region.clone(), Some("ivy")), Seed(1))
            .unwrap();
    assert_eq!(sent_mask_at(&inpaint["inPaintingParams"], 10, 10), 0, "the painted half is inside the mask");
    assert_eq!(sent_mask_at(&inpaint["inPaintingParams"], 500, 10), 255, "the rest is outside, kept");
    // Outpainting repaints the outside, which is white: the painted half again.
    let outpaint =
        edit_json(&titan, TitanVariant::TitanV2, &edit(EditMode::Outpaint, region, Some("a harbour")), Seed(1))
            .unwrap();
    assert_eq!(sent_mask_at(&outpaint["outPaintingParams"], 10, 10), 255, "the painted half is outside, repainted");
    assert_eq!(sent_mask_at(&outpaint["outPaintingParams"], 500, 10), 0, "the rest is inside the mask, kept");
}

#[test]
fn the_zoom_out_mask_keeps_the_shrunk_source_and_frees_the_border() {
    use base64::Engine as _;
    let (_, mask) = zoom_out_canvas(&image(300, 300), OutpaintDirection::All).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(mask).unwrap();
    let mask = image::load_from_memory(&bytes).unwrap().to_luma8();
    assert_eq!(mask.get_pixel(150, 150)[0], 0, "the centre holds the source: inside the mask, kept");
    assert_eq!(mask.get_pixel(5, 5)[0], 255, "the border is new: outside the mask, painted");
}

#[test]
fn a_palette_makes_a_colour_guided_request_on_v2_and_nova_only() {
    use crate::request::parse_palette;
    let mut guided = request("a beach hut", Shape::default());
    guided.colors = parse_palette(Some("#1b4f72, F4D03F")).unwrap();
    let body = generation_json(&model("titan-v2"), TitanVariant::TitanV2, &guided, Seed(4)).unwrap();
    assert_eq!(body["taskType"], "COLOR_GUIDED_GENERATION");
    assert_eq!(
        body["colorGuidedGenerationParams"],
        json!({"text": "a beach hut", "negativeText": "blurry", "colors": ["#1B4F72", "#F4D03F"]})
    );
    assert!(body.get("textToImageParams").is_none());
    let v1 = generation_json(&model("titan"), TitanVariant::TitanV1, &guided, Seed(4)).unwrap_err();
    assert!(v1.message().contains("use titan-v2 or nova-canvas"), "{v1}");
    assert!(parse_palette(Some("#12345")).unwrap_err().message().contains("#RRGGBB"));
    let eleven = ["#000000"; 11].join(",");
    assert!(parse_palette(Some(&eleven)).unwrap_err().message().contains("at most 10"));
}

#[test]
fn each_task_serialises_to_the_documented_body() {
    use crate::bedrock::wire::{assert_documented, image_base64, mask_base64};
    use crate::request::parse_palette;

    let titan = model("titan-v2");
    assert_documented(
        generation_body(&titan, TitanVariant::TitanV2, &request("a fox", Shape::default()), Seed(9)).unwrap(),
        json!({
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a fox", "negativeText": "blurry"},
            "imageGenerationConfig": {"numberOfImages": 2, "quality": "standard", "cfgScale": 8.0, "seed": 9,
                                      "width": 1024, "height": 1024}
        }),
    );
    let mut guided = GenerationRequest { negative_prompt: None, ..request("a beach hut", Shape::default()) };
    guided.colors = parse_palette(Some("#1b4f72")).unwrap();
    assert_documented(
        generation_body(&model("nova-canvas"), TitanVariant::NovaCanvas, &guided, Seed(4)).unwrap(),
        json!({
            "taskType": "COLOR_GUIDED_GENERATION",
            "colorGuidedGenerationParams": {"text": "a beach hut", "colors": ["#1B4F72"]},
            "imageGenerationConfig": {"numberOfImages": 2, "quality": "standard", "cfgScale": 8.0, "seed": 4,
                                      "width": 1024, "height": 1024}
        }),
    );

    let config = |seed: u32| json!({"numberOfImages": 1, "quality": "standard", "cfgScale": 8.0, "seed": seed});
    let described = edit(EditMode::Inpaint, Some(Region::MaskPrompt(Prompt::parse("the sky").unwrap())), Some("stars"));
    let source = image_base64(&described.source).unwrap();
    assert_documented(
        edit_body(&titan, TitanVariant::TitanV2, &described, Seed(2)).unwrap(),
        json!({
            "taskType": "INPAINTING",
            "inPaintingParams": {"image": source, "text": "stars", "maskPrompt": "the sky"},
            "imageGenerationConfig": config(2)
        }),
    );
    let mask = image(512, 512);
    let removal = EditRequest {
        negative_prompt: Some(Prompt::parse("people").unwrap()),
        ..edit(EditMode::Inpaint, Some(Region::MaskImage(mask.clone())), None)
    };
    let mask_text = mask_base64(&mask, MaskConvention::BlackMarksRegion).unwrap();
    assert_documented(
        edit_body(&titan, TitanVariant::TitanV2, &removal, Seed(3)).unwrap(),
        json!({
            "taskType": "INPAINTING",
            "inPaintingParams": {"image": source, "negativeText": "people", "maskImage": mask_text},
            "imageGenerationConfig": config(3)
        }),
    );

    let around = edit(EditMode::Outpaint, Some(Region::MaskImage(mask.clone())), Some("a harbour at dawn"));
    assert_documented(
        edit_body(&titan, TitanVariant::TitanV2, &around, Seed(5)).unwrap(),
        json!({
            "taskType": "OUTPAINTING",
            "outPaintingParams": {"image": source, "text": "a harbour at dawn",
                                  "maskImage": mask_base64(&mask, MaskConvention::WhiteMarksRegion).unwrap(),
                                  "outPaintingMode": "DEFAULT"},
            "imageGenerationConfig": config(5)
        }),
    );
    let zoom_out = edit(EditMode::Outpaint, None, None);
    let (canvas, canvas_mask) = zoom_out_canvas(&zoom_out.source, OutpaintDirection::All).unwrap();
    assert_documented(
        edit_body(&titan, TitanVariant::TitanV2, &zoom_out, Seed(6)).unwrap(),
        json!({
            "taskType": "OUTPAINTING",
            "outPaintingParams": {"image": canvas, "text": "the same scene, seen from further away",
                                  "maskImage": canvas_mask, "outPaintingMode": "PRECISE"},
            "imageGenerationConfig": config(6)
        }),
    );

    let variation = EditRequest { similarity: Some(0.5), ..edit(EditMode::Variation, None, Some("in winter")) };
    assert_documented(
        edit_body(&titan, TitanVariant::TitanV2, &variation, Seed(7)).unwrap(),
        json!({
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": {"images": [source], "similarityStrength": 0.5, "text": "in winter"},
            "imageGenerationConfig": config(7)
        }),
    );

    let background = edit(EditMode::RemoveBackground, None, None);
    assert_documented(
        edit_body(&model("nova-canvas"), TitanVariant::NovaCanvas, &background, Seed(8)).unwrap(),
        json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": source}}),
    );
}
