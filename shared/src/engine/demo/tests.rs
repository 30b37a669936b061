use super::*;
use crate::request::{AspectRatio, GenerationRequest, ImageCount, Prompt, Shape};

fn request(prompt: &str, seed: u32) -> GenerationRequest {
    GenerationRequest {
        guidance: Default::default(),
        seed: Some(Seed(seed)),
        shape: Shape::Size(Size { width: 256, height: 192 }),
        ..GenerationRequest::from_prompt(Prompt::parse(prompt).unwrap())
    }
}

fn text_chunk(png: &[u8], keyword: &str) -> Option<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    let latin1 =
        info.uncompressed_latin1_text.iter().find(|chunk| chunk.keyword == keyword).map(|chunk| chunk.text.clone());
    latin1
        .or_else(|| info.utf8_text.iter().find(|chunk| chunk.keyword == keyword).map(|chunk| chunk.get_text().unwrap()))
}

#[tokio::test]
async fn the_same_prompt_and_seed_draw_the_same_picture() {
    let first = DemoEngine.generate(&request("a lighthouse in a storm", 7)).await.unwrap();
    let again = DemoEngine.generate(&request("a lighthouse in a storm", 7)).await.unwrap();
    let other_seed = DemoEngine.generate(&request("a lighthouse in a storm", 8)).await.unwrap();
    let other_prompt = DemoEngine.generate(&request("a quiet meadow", 7)).await.unwrap();
    let bytes = |generated: &Generated| generated.images[0].image.bytes().clone();
    assert_eq!(bytes(&first), bytes(&again));
    assert_ne!(bytes(&first), bytes(&other_seed));
    assert_ne!(bytes(&first), bytes(&other_prompt));
    assert_eq!(first.images[0].image.size(), Size { width: 256, height: 192 });
    assert_eq!(first.model.family, "demo");
}

#[tokio::test]
async fn demo_images_say_they_are_demo_images() {
    let generated = DemoEngine.generate(&request("a fox", 1)).await.unwrap();
    let png = generated.images[0].image.bytes();
    assert_eq!(text_chunk(png, "Software").as_deref(), Some(DEMO_SOFTWARE_TEXT));
    assert_eq!(text_chunk(png, "Seed").as_deref(), Some("1"));
    assert_eq!(generated.images[0].safety, SafetyOutcome::NotChecked);
}

#[tokio::test]
async fn prompts_in_any_language_and_with_emoji_are_written_into_the_image() {
    for prompt in ["猫がピアノを弾く", "a fox 🦊 in snow", "un café crème à Noël"] {
        let generated = DemoEngine.generate(&request(prompt, 3)).await.unwrap();
        let png = generated.images[0].image.bytes();
        let description = text_chunk(png, "Description").unwrap_or_else(|| panic!("no Description for {prompt}"));
        assert!(description.contains(prompt), "{description:?} should carry {prompt:?}");
        assert_eq!(text_chunk(png, "Software").as_deref(), Some(DEMO_SOFTWARE_TEXT));
    }
}

#[tokio::test]
async fn a_batch_uses_consecutive_seeds() {
    let batch = GenerationRequest {
        guidance: Default::default(),
        count: ImageCount::new(3).unwrap(),
        shape: Shape::Aspect(AspectRatio { width: 1, height: 1 }),
        ..request("tiny robots", 100)
    };
    let generated = DemoEngine.generate(&batch).await.unwrap();
    let seeds: Vec<u32> = generated.images.iter().map(|image| image.seed.0).collect();
    assert_eq!(seeds, [100, 101, 102]);
}

#[tokio::test]
async fn other_models_are_refused_with_the_way_out() {
    let mut asking_for_sdxl = request("a fox", 1);
    asking_for_sdxl.model = Some(ModelName::parse("sdxl").unwrap());
    let refusal = DemoEngine.generate(&asking_for_sdxl).await.unwrap_err();
    assert!(refusal.is_user_error());
    assert!(refusal.to_string().contains("ATELIER_ENGINE=bedrock"), "{refusal}");
}

async fn source() -> CheckedImage {
    DemoEngine.generate(&request("a red house", 3)).await.unwrap().images.remove(0).image
}

fn edit(mode: EditMode, source: CheckedImage) -> EditRequest {
    EditRequest {
        mode,
        source,
        prompt: Some(Prompt::parse("a blue door").unwrap()),
        negative_prompt: None,
        region: Some(Region::MaskPrompt(Prompt::parse("the door").unwrap())),
        model: None,
        seed: Some(Seed(5)),
        similarity: None,
        outpaint_direction: OutpaintDirection::All,
    }
}

#[tokio::test]
async fn every_edit_mode_changes_the_picture_as_it_should() {
    let source = source().await;
    let original = source.decode().unwrap();
    for mode in EditMode::ALL {
        let result = DemoEngine.edit(&edit(mode, source.clone())).await.unwrap();
        let image = result.images[0].image.decode().unwrap();
        match mode {
            EditMode::Upscale => assert_eq!((image.width(), image.height()), (512, 384)),
            EditMode::Outpaint => assert_eq!((image.width(), image.height()), (384, 288)),
            EditMode::RemoveBackground => {
                assert!(image.color().has_alpha());
                assert_eq!(image.to_rgba8().get_pixel(0, 0)[3], 0, "the border should become transparent");
            }
            _ => {
                assert_eq!((image.width(), image.height()), (256, 192), "{mode}");
                assert_ne!(image.to_rgb8(), original.to_rgb8(), "{mode} left the picture unchanged");
            }
        }
    }
}

#[tokio::test]
async fn a_painted_mask_limits_the_change_to_its_white_pixels() {
    let source = source().await;
    // White on the left half only: the right half must stay exactly as it was.
    let mask = image::GrayImage::from_fn(256, 192, |x, _| image::Luma([if x < 128 { 255 } else { 0 }]));
    let mask_png = encode_png(&DynamicImage::ImageLuma8(mask), &[]).unwrap();
    let mask = CheckedImage::check(mask_png, "the mask").unwrap();
    let request = EditRequest { region: Some(Region::MaskImage(mask)), ..edit(EditMode::Inpaint, source.clone()) };
    let result = DemoEngine.edit(&request).await.unwrap().images[0].image.decode().unwrap().to_rgb8();
    let original = source.decode().unwrap().to_rgb8();
    assert_eq!(result.get_pixel(200, 100), original.get_pixel(200, 100));
    assert_ne!(result.get_pixel(10, 10), original.get_pixel(10, 10));
}

#[tokio::test]
async fn edits_that_lack_what_they_need_are_refused_before_drawing() {
    let source = source().await;
    let no_prompt = EditRequest { prompt: None, ..edit(EditMode::Inpaint, source.clone()) };
    assert!(DemoEngine.edit(&no_prompt).await.unwrap_err().to_string().contains("needs a prompt"));
    let no_region = EditRequest { region: None, ..edit(EditMode::Replace, source.clone()) };
    assert!(DemoEngine.edit(&no_region).await.unwrap_err().to_string().contains("needs a region"));
    let small_mask = encode_png(&DynamicImage::ImageLuma8(image::GrayImage::new(64, 64)), &[]).unwrap();
    let wrong_size = EditRequest {
        region: Some(Region::MaskImage(CheckedImage::check(small_mask, "the mask").unwrap())),
        ..edit(EditMode::Inpaint, source)
    };
    let refusal = DemoEngine.edit(&wrong_size).await.unwrap_err().to_string();
    assert!(refusal.contains("the mask is 64x64 but the image is 256x192"), "{refusal}");
}
