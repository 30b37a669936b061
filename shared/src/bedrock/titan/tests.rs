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

fn image(width: u32, height: u32) -> CheckedImage {
    let pixels = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([200, 9, 9])));
    CheckedImage::check(encode_png(&pixels, &[]).unwrap(), "the image").unwrap()
}

#[test]
fn text_to_image_uses_the_documented_fields() {
    let body =
        generation_body(&model("titan"), TitanVariant::TitanV1, &request("a fox", Shape::default()), Seed(9)).unwrap();
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
    let titan = generation_body(&model("titan"), TitanVariant::TitanV1, &request(&long, Shape::default()), Seed(1));
    assert!(titan.unwrap_err().message().contains("titan takes at most 512"));
    let nova =
        generation_body(&model("nova-canvas"), TitanVariant::NovaCanvas, &request(&long, Shape::default()), Seed(1));
    assert!(nova.is_ok(), "Nova Canvas takes up to 1,024 characters");

    let seed = generation_body(
        &model("nova-canvas"),
        TitanVariant::NovaCanvas,
        &request("a fox", Shape::default()),
        Seed(900_000_000),
    );
    assert!(seed.unwrap_err().message().contains("0 to 858993459"));
    let odd = Shape::Size(Size { width: 1000, height: 1000 });
    let nova_size = generation_body(&model("nova-canvas"), TitanVariant::NovaCanvas, &request("a fox", odd), Seed(1));
    assert!(nova_size.unwrap_err().message().contains("steps of 16"));
    let titan_size = generation_body(&model("titan"), TitanVariant::TitanV1, &request("a fox", odd), Seed(1));
    assert!(titan_size.unwrap_err().message().contains("titan cannot draw 1000x1000"));
    let wide = generation_body(
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
        edit_body(&titan, TitanVariant::TitanV2, &edit(EditMode::Inpaint, region.clone(), Some("stars")), Seed(2))
            .unwrap();
    assert_eq!(inpaint["taskType"], "INPAINTING");
    assert_eq!(inpaint["inPaintingParams"]["maskPrompt"], "the sky");
    assert_eq!(inpaint["inPaintingParams"]["text"], "stars");
    assert!(inpaint["inPaintingParams"].get("maskImage").is_none(), "maskPrompt and maskImage are exclusive");

    let variation = edit_body(&titan, TitanVariant::TitanV2, &edit(EditMode::Variation, None, None), Seed(2)).unwrap();
    assert_eq!(
        variation["imageVariationParams"]["similarityStrength"].as_f64().map(|value| (value * 10.0).round()),
        Some(7.0)
    );
    assert_eq!(variation["imageVariationParams"]["images"].as_array().map(Vec::len), Some(1));

    let outpaint = edit_body(&titan, TitanVariant::TitanV2, &edit(EditMode::Outpaint, None, None), Seed(2)).unwrap();
    assert_eq!(outpaint["taskType"], "OUTPAINTING");
    assert_eq!(outpaint["outPaintingParams"]["outPaintingMode"], "PRECISE");
    assert!(outpaint["outPaintingParams"]["maskImage"].is_string());

    let background =
        edit_body(&titan, TitanVariant::TitanV2, &edit(EditMode::RemoveBackground, None, None), Seed(2)).unwrap();
    assert_eq!(
        background,
        json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": background["backgroundRemovalParams"]["image"]}})
    );
    let v1 = edit_body(&model("titan"), TitanVariant::TitanV1, &edit(EditMode::RemoveBackground, None, None), Seed(2));
    assert!(v1.unwrap_err().to_string().contains("titan cannot remove-background"));
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
    let body = generation_body(&model("titan-v2"), TitanVariant::TitanV2, &guided, Seed(4)).unwrap();
    assert_eq!(body["taskType"], "COLOR_GUIDED_GENERATION");
    assert_eq!(
        body["colorGuidedGenerationParams"],
        json!({"text": "a beach hut", "negativeText": "blurry", "colors": ["#1B4F72", "#F4D03F"]})
    );
    assert!(body.get("textToImageParams").is_none());
    let v1 = generation_body(&model("titan"), TitanVariant::TitanV1, &guided, Seed(4)).unwrap_err();
    assert!(v1.message().contains("use titan-v2 or nova-canvas"), "{v1}");
    assert!(parse_palette(Some("#12345")).unwrap_err().message().contains("#RRGGBB"));
    let eleven = ["#000000"; 11].join(",");
    assert!(parse_palette(Some(&eleven)).unwrap_err().message().contains("at most 10"));
}
