use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};
use serde_json::{Value, json};

use super::*;
use crate::engine::catalog::Catalog;
use crate::images::{CheckedImage, encode_png};
use crate::request::{EditMode, ModelName, Prompt};

/// The configured model for `mode`, named by alias (as `Catalog::for_edit` resolves it).
fn model(mode: EditMode, alias: &str) -> ModelEntry {
    Catalog::new(None, None).unwrap().for_edit(mode, Some(&ModelName::parse(alias).unwrap())).unwrap().clone()
}

/// Erase has no edit mode of ours yet, so the catalog never picks it; this is its entry as an
/// operator would configure it.
fn erase_model() -> ModelEntry {
    ModelEntry {
        alias: "erase".into(),
        id: "us.stability.stable-image-erase-object-v1:0".into(),
        family: Family::StabilityService(ServiceTool::EraseObject),
    }
}

/// An edit body as the JSON sent, for assertions on its fields.
fn edit_json(model: &ModelEntry, tool: ServiceTool, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    edit_body(model, tool, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

/// A tool's body as the JSON sent, without the check that the catalog sends it our mode.
fn tool_json(model: &ModelEntry, tool: ServiceTool, request: &EditRequest, seed: Seed) -> Result<Value, Error> {
    tool_body(model, tool, request, seed).map(|body| serde_json::to_value(body).unwrap())
}

fn image(width: u32, height: u32) -> CheckedImage {
    let pixels = RgbImage::from_pixel(width, height, Rgb([200, 120, 40]));
    CheckedImage::check(encode_png(&DynamicImage::ImageRgb8(pixels), &[]).unwrap(), "the image").unwrap()
}

/// Our rule: white marks the region to change. Here the left half of a 128x96 picture.
fn mask() -> CheckedImage {
    let pixels = GrayImage::from_fn(128, 96, |x, _| Luma([if x < 64 { 255 } else { 0 }]));
    CheckedImage::check(encode_png(&DynamicImage::ImageLuma8(pixels), &[]).unwrap(), "the mask").unwrap()
}

fn prompt(text: &str) -> Prompt {
    Prompt::parse(text).unwrap()
}

fn request(mode: EditMode) -> EditRequest {
    EditRequest {
        mode,
        source: image(128, 96),
        prompt: None,
        negative_prompt: None,
        region: None,
        model: None,
        seed: Some(Seed(42)),
        similarity: None,
        outpaint_direction: OutpaintDirection::All,
    }
}

fn keys(body: &Value) -> BTreeSet<&str> {
    body.as_object().unwrap().keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn refusal(result: Result<Value, Error>) -> String {
    match result {
        Err(Error::Invalid(invalid)) => invalid.message().to_string(),
        other => panic!("expected a refusal the user can fix, got {other:?}"),
    }
}

#[test]
fn inpaint_sends_prompt_negative_prompt_image_and_a_white_marks_region_mask() {
    let request = EditRequest {
        prompt: Some(prompt("a brass door knocker")),
        negative_prompt: Some(prompt("blurry")),
        region: Some(Region::MaskImage(mask())),
        ..request(EditMode::Inpaint)
    };
    let body = edit_json(&model(EditMode::Inpaint, "inpaint"), ServiceTool::Inpaint, &request, Seed(42)).unwrap();
    assert_eq!(keys(&body), set(&["prompt", "negative_prompt", "image", "mask", "seed", "output_format"]));
    assert_eq!(body["prompt"], "a brass door knocker");
    assert_eq!(body["negative_prompt"], "blurry");
    assert_eq!(body["seed"], 42);
    assert_eq!(body["output_format"], "png");
    assert_eq!(BASE64.decode(body["image"].as_str().unwrap()).unwrap(), request.source.bytes().to_vec());
    // The mask arrives as painted: white over the region to change (the left half), the rest black.
    let sent = BASE64.decode(body["mask"].as_str().unwrap()).unwrap();
    let sent = image::load_from_memory(&sent).unwrap().to_luma8();
    assert_eq!((sent.width(), sent.height()), (128, 96));
    assert_eq!(sent.get_pixel(10, 50)[0], 255, "inside the region should be white");
    assert_eq!(sent.get_pixel(100, 50)[0], 0, "outside the region should be black");
}

#[test]
fn inpaint_refuses_a_mask_prompt_and_names_search_replace() {
    let request = EditRequest {
        prompt: Some(prompt("a cat")),
        region: Some(Region::MaskPrompt(prompt("the dog"))),
        ..request(EditMode::Inpaint)
    };
    let message = refusal(edit_json(&model(EditMode::Inpaint, "inpaint"), ServiceTool::Inpaint, &request, Seed(1)));
    assert!(message.contains("not a mask prompt") && message.contains("search-replace"), "{message}");
}

#[test]
fn outpaint_all_grows_a_quarter_on_every_side_and_omits_what_it_does_not_take() {
    let request = EditRequest { prompt: Some(prompt("more of the beach")), ..request(EditMode::Outpaint) };
    let body = edit_json(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request, Seed(7)).unwrap();
    assert_eq!(keys(&body), set(&["image", "prompt", "left", "right", "up", "down", "seed", "output_format"]));
    assert_eq!(
        (&body["left"], &body["right"], &body["up"], &body["down"]),
        (&json!(32), &json!(32), &json!(24), &json!(24))
    );
    assert_eq!(body["prompt"], "more of the beach");
    assert_eq!(body["seed"], 7);

    let no_prompt =
        edit_json(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request_without_prompt(), Seed(7))
            .unwrap();
    assert_eq!(keys(&no_prompt), set(&["image", "left", "right", "up", "down", "seed", "output_format"]));
}

fn request_without_prompt() -> EditRequest {
    EditRequest { outpaint_direction: OutpaintDirection::Left, ..request(EditMode::Outpaint) }
}

#[test]
fn outpaint_one_direction_grows_half_on_that_side_capped_at_2000() {
    assert_eq!(outpaint_amounts(Size { width: 128, height: 96 }, OutpaintDirection::Left), (64, 0, 0, 0));
    assert_eq!(outpaint_amounts(Size { width: 128, height: 96 }, OutpaintDirection::Right), (0, 64, 0, 0));
    assert_eq!(outpaint_amounts(Size { width: 128, height: 96 }, OutpaintDirection::Up), (0, 0, 48, 0));
    assert_eq!(outpaint_amounts(Size { width: 128, height: 96 }, OutpaintDirection::Down), (0, 0, 0, 48));
    assert_eq!(outpaint_amounts(Size { width: 4096, height: 2048 }, OutpaintDirection::Left), (2000, 0, 0, 0));
    let left =
        edit_json(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request_without_prompt(), Seed(7))
            .unwrap();
    assert_eq!(
        (&left["left"], &left["right"], &left["up"], &left["down"]),
        (&json!(64), &json!(0), &json!(0), &json!(0))
    );
}

#[test]
fn outpaint_refuses_a_negative_prompt_it_has_no_field_for() {
    let request = EditRequest { negative_prompt: Some(prompt("people")), ..request(EditMode::Outpaint) };
    let message = refusal(edit_json(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request, Seed(1)));
    assert_eq!(message, "outpaint takes no negative prompt: leave it out");
}

#[test]
fn remove_background_sends_only_the_image_and_png() {
    let request = request(EditMode::RemoveBackground);
    let body = edit_json(
        &model(EditMode::RemoveBackground, "remove-background"),
        ServiceTool::RemoveBackground,
        &request,
        Seed(3),
    )
    .unwrap();
    assert_eq!(keys(&body), set(&["image", "output_format"]));
    assert_eq!(body["output_format"], "png");
}

#[test]
fn search_replace_sends_the_mask_prompt_as_search_prompt() {
    let request = EditRequest {
        prompt: Some(prompt("a leather jacket")),
        negative_prompt: Some(prompt("fur")),
        region: Some(Region::MaskPrompt(prompt("the sweater"))),
        ..request(EditMode::Replace)
    };
    let body =
        edit_json(&model(EditMode::Replace, "search-replace"), ServiceTool::SearchReplace, &request, Seed(9)).unwrap();
    assert_eq!(keys(&body), set(&["prompt", "search_prompt", "negative_prompt", "image", "seed", "output_format"]));
    assert_eq!(body["prompt"], "a leather jacket");
    assert_eq!(body["search_prompt"], "the sweater");
    assert_eq!(body["negative_prompt"], "fur");
    assert_eq!(body["seed"], 9);
}

#[test]
fn search_recolor_sends_the_mask_prompt_as_select_prompt() {
    let request = EditRequest {
        prompt: Some(prompt("a pink jacket")),
        region: Some(Region::MaskPrompt(prompt("the jacket"))),
        ..request(EditMode::Recolor)
    };
    let body =
        edit_json(&model(EditMode::Recolor, "search-recolor"), ServiceTool::SearchRecolor, &request, Seed(11)).unwrap();
    assert_eq!(keys(&body), set(&["prompt", "select_prompt", "image", "seed", "output_format"]));
    assert_eq!(body["select_prompt"], "the jacket");
    assert_eq!(body["prompt"], "a pink jacket");
}

#[test]
fn search_tools_refuse_a_painted_mask_and_name_inpaint() {
    for (mode, alias, tool) in [
        (EditMode::Replace, "search-replace", ServiceTool::SearchReplace),
        (EditMode::Recolor, "search-recolor", ServiceTool::SearchRecolor),
    ] {
        let request =
            EditRequest { prompt: Some(prompt("red")), region: Some(Region::MaskImage(mask())), ..request(mode) };
        let message = refusal(edit_json(&model(mode, alias), tool, &request, Seed(1)));
        assert!(message.starts_with(&format!("{alias} finds the region from a mask prompt")), "{message}");
        assert!(message.contains("use inpaint"), "{message}");
    }
}

#[test]
fn erase_sends_image_mask_and_seed_and_needs_a_painted_mask() {
    let with_mask = EditRequest { region: Some(Region::MaskImage(mask())), ..request(EditMode::Inpaint) };
    let body = tool_json(&erase_model(), ServiceTool::EraseObject, &with_mask, Seed(5)).unwrap();
    assert_eq!(keys(&body), set(&["image", "mask", "seed", "output_format"]));
    let sent = BASE64.decode(body["mask"].as_str().unwrap()).unwrap();
    assert_eq!(image::load_from_memory(&sent).unwrap().to_luma8().get_pixel(0, 0)[0], 255);

    let without = request(EditMode::Inpaint);
    let message = refusal(tool_json(&erase_model(), ServiceTool::EraseObject, &without, Seed(5)));
    assert_eq!(message, "erase needs a mask image: paint what to erase white");
    let with_prompt = EditRequest { prompt: Some(prompt("nothing")), ..with_mask };
    let message = refusal(tool_json(&erase_model(), ServiceTool::EraseObject, &with_prompt, Seed(5)));
    assert_eq!(message, "erase takes no prompt: leave it out");
    // No edit mode of ours reaches erase through the catalog yet.
    let message = refusal(edit_json(&erase_model(), ServiceTool::EraseObject, &request(EditMode::Inpaint), Seed(5)));
    assert_eq!(message, "erase cannot inpaint");
}

#[test]
fn fast_upscale_sends_only_the_image_and_refuses_a_prompt() {
    let body =
        edit_json(&model(EditMode::Upscale, "upscale"), ServiceTool::UpscaleFast, &request(EditMode::Upscale), Seed(1))
            .unwrap();
    assert_eq!(keys(&body), set(&["image", "output_format"]));
    let request = EditRequest { prompt: Some(prompt("a fox")), ..request(EditMode::Upscale) };
    let message = refusal(edit_json(&model(EditMode::Upscale, "upscale"), ServiceTool::UpscaleFast, &request, Seed(1)));
    assert_eq!(message, "upscale takes no prompt: leave it out");
}

#[test]
fn fast_upscale_refuses_inputs_over_its_documented_size_with_the_numbers() {
    let upscale = model(EditMode::Upscale, "upscale");
    let too_wide = EditRequest { source: image(1600, 64), ..request(EditMode::Upscale) };
    assert_eq!(
        refusal(edit_json(&upscale, ServiceTool::UpscaleFast, &too_wide, Seed(1))),
        "the image is 1600x64 pixels; upscale takes at most 1,536 pixels on a side and 1,048,576 in all: scale it down"
    );
    let too_many = EditRequest { source: image(1100, 1000), ..request(EditMode::Upscale) };
    assert_eq!(
        refusal(edit_json(&upscale, ServiceTool::UpscaleFast, &too_many, Seed(1))),
        "the image is 1100x1000 pixels; upscale takes at most 1,048,576 pixels: scale it down"
    );
    let at_the_limit = EditRequest { source: image(1024, 1024), ..request(EditMode::Upscale) };
    assert!(edit_json(&upscale, ServiceTool::UpscaleFast, &at_the_limit, Seed(1)).is_ok());
}

#[test]
fn conservative_and_creative_upscales_send_prompt_negative_prompt_and_seed() {
    for (alias, tool) in
        [("upscale-conservative", ServiceTool::UpscaleConservative), ("upscale-creative", ServiceTool::UpscaleCreative)]
    {
        let request = EditRequest {
            prompt: Some(prompt("a red fox in the snow")),
            negative_prompt: Some(prompt("noise")),
            ..request(EditMode::Upscale)
        };
        let body = edit_json(&model(EditMode::Upscale, alias), tool, &request, Seed(8)).unwrap();
        assert_eq!(keys(&body), set(&["prompt", "negative_prompt", "image", "seed", "output_format"]), "{alias}");
        assert_eq!(body["prompt"], "a red fox in the snow");
        assert_eq!(body["seed"], 8);
    }
}

#[test]
fn conservative_and_creative_upscales_refuse_a_missing_prompt() {
    for (alias, tool) in
        [("upscale-conservative", ServiceTool::UpscaleConservative), ("upscale-creative", ServiceTool::UpscaleCreative)]
    {
        let message = refusal(edit_json(&model(EditMode::Upscale, alias), tool, &request(EditMode::Upscale), Seed(1)));
        assert!(message.starts_with(&format!("{alias} needs a prompt describing the picture")), "{message}");
    }
}

#[test]
fn creative_upscale_takes_at_most_one_megapixel() {
    let request =
        EditRequest { source: image(1100, 1000), prompt: Some(prompt("a fox")), ..request(EditMode::Upscale) };
    let message = refusal(edit_json(
        &model(EditMode::Upscale, "upscale-creative"),
        ServiceTool::UpscaleCreative,
        &request,
        Seed(1),
    ));
    assert_eq!(
        message,
        "the image is 1100x1000 pixels; upscale-creative takes at most 1,048,576 pixels: scale it down"
    );
    let conservative = edit_json(
        &model(EditMode::Upscale, "upscale-conservative"),
        ServiceTool::UpscaleConservative,
        &request,
        Seed(1),
    );
    assert!(conservative.is_ok(), "conservative upscale takes up to 9,437,184 pixels");
}

#[test]
fn edit_tools_check_the_shape_and_pixel_count_from_the_docs() {
    let wide = EditRequest { source: image(1000, 64), ..request(EditMode::RemoveBackground) };
    let message = refusal(edit_json(
        &model(EditMode::RemoveBackground, "remove-background"),
        ServiceTool::RemoveBackground,
        &wide,
        Seed(1),
    ));
    assert_eq!(
        message,
        "the image is 1000x64 pixels, a 15.62:1 shape; remove-background takes shapes between 1:2.5 and 2.5:1: crop it"
    );
    // 2.5:1 exactly is allowed; the pixel limit is checked on the size alone.
    assert!(check_image("inpaint", Size { width: 160, height: 64 }, EDIT_LIMITS).is_ok());
    assert_eq!(
        check_image("search-replace", Size { width: 3100, height: 3100 }, EDIT_LIMITS).unwrap_err().message(),
        "the image is 3100x3100 pixels; search-replace takes at most 9,437,184 pixels: scale it down"
    );
    assert!(check_image("search-replace", Size { width: 3072, height: 3072 }, EDIT_LIMITS).is_ok());
}

#[test]
fn a_mode_that_does_not_fit_the_tool_is_refused() {
    let request = EditRequest { prompt: Some(prompt("a fox")), ..request(EditMode::Variation) };
    let message = refusal(edit_json(&model(EditMode::Inpaint, "inpaint"), ServiceTool::Inpaint, &request, Seed(1)));
    assert_eq!(message, "inpaint cannot variation");
    let message = refusal(edit_json(
        &model(EditMode::Upscale, "upscale"),
        ServiceTool::UpscaleFast,
        &request_without_prompt(),
        Seed(1),
    ));
    assert_eq!(message, "upscale cannot outpaint");
}

#[test]
fn a_region_is_refused_by_tools_that_work_on_the_whole_picture() {
    let request = EditRequest { region: Some(Region::MaskPrompt(prompt("the sky"))), ..request(EditMode::Outpaint) };
    let message = refusal(edit_json(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request, Seed(1)));
    assert_eq!(message, "outpaint works on the whole picture and takes no mask prompt: leave it out");
}

#[test]
fn the_one_seed_above_the_documented_range_is_refused() {
    let request = EditRequest { prompt: Some(prompt("a fox")), ..request(EditMode::Upscale) };
    let conservative = model(EditMode::Upscale, "upscale-conservative");
    let message = refusal(edit_json(&conservative, ServiceTool::UpscaleConservative, &request, Seed(u32::MAX)));
    assert!(message.starts_with("the seed 4294967295 is out of range"), "{message}");
    let body = edit_json(&conservative, ServiceTool::UpscaleConservative, &request, Seed(MAX_SEED)).unwrap();
    assert_eq!(body["seed"], 4_294_967_294u64);
}

#[test]
fn thousands_are_separated_as_the_docs_write_them() {
    assert_eq!(thousands(9_437_184), "9,437,184");
    assert_eq!(thousands(1_024), "1,024");
    assert_eq!(thousands(64), "64");
    assert_eq!(thousands(100_000), "100,000");
}

#[test]
fn each_tool_serialises_to_the_documented_body() {
    use crate::bedrock::wire::{assert_documented, image_base64, mask_base64};

    let source = image_base64(&request(EditMode::Inpaint).source).unwrap();
    let mask_text = mask_base64(&mask(), MaskConvention::WhiteMarksRegion).unwrap();

    let inpaint = EditRequest {
        prompt: Some(prompt("a brass door knocker")),
        negative_prompt: Some(prompt("blurry")),
        region: Some(Region::MaskImage(mask())),
        ..request(EditMode::Inpaint)
    };
    assert_documented(
        edit_body(&model(EditMode::Inpaint, "inpaint"), ServiceTool::Inpaint, &inpaint, Seed(42)).unwrap(),
        json!({"prompt": "a brass door knocker", "negative_prompt": "blurry", "image": source, "mask": mask_text,
               "seed": 42, "output_format": "png"}),
    );

    let outpaint = EditRequest { prompt: Some(prompt("more of the beach")), ..request(EditMode::Outpaint) };
    assert_documented(
        edit_body(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &outpaint, Seed(7)).unwrap(),
        json!({"image": source, "prompt": "more of the beach", "left": 32, "right": 32, "up": 24, "down": 24,
               "seed": 7, "output_format": "png"}),
    );
    assert_documented(
        edit_body(&model(EditMode::Outpaint, "outpaint"), ServiceTool::Outpaint, &request_without_prompt(), Seed(8))
            .unwrap(),
        json!({"image": source, "left": 64, "right": 0, "up": 0, "down": 0, "seed": 8, "output_format": "png"}),
    );

    let replace = EditRequest {
        prompt: Some(prompt("a leather jacket")),
        region: Some(Region::MaskPrompt(prompt("the sweater"))),
        ..request(EditMode::Replace)
    };
    assert_documented(
        edit_body(&model(EditMode::Replace, "search-replace"), ServiceTool::SearchReplace, &replace, Seed(9)).unwrap(),
        json!({"prompt": "a leather jacket", "search_prompt": "the sweater", "image": source, "seed": 9,
               "output_format": "png"}),
    );
    let recolor = EditRequest {
        prompt: Some(prompt("a pink jacket")),
        negative_prompt: Some(prompt("stripes")),
        region: Some(Region::MaskPrompt(prompt("the jacket"))),
        ..request(EditMode::Recolor)
    };
    assert_documented(
        edit_body(&model(EditMode::Recolor, "search-recolor"), ServiceTool::SearchRecolor, &recolor, Seed(11)).unwrap(),
        json!({"prompt": "a pink jacket", "select_prompt": "the jacket", "negative_prompt": "stripes", "image": source,
               "seed": 11, "output_format": "png"}),
    );

    let erase = EditRequest { region: Some(Region::MaskImage(mask())), ..request(EditMode::Inpaint) };
    assert_documented(
        tool_body(&erase_model(), ServiceTool::EraseObject, &erase, Seed(5)).unwrap(),
        json!({"image": source, "mask": mask_text, "seed": 5, "output_format": "png"}),
    );

    for (mode, alias, tool) in [
        (EditMode::RemoveBackground, "remove-background", ServiceTool::RemoveBackground),
        (EditMode::Upscale, "upscale", ServiceTool::UpscaleFast),
    ] {
        assert_documented(
            edit_body(&model(mode, alias), tool, &request(mode), Seed(3)).unwrap(),
            json!({"image": source, "output_format": "png"}),
        );
    }

    for (alias, tool) in
        [("upscale-conservative", ServiceTool::UpscaleConservative), ("upscale-creative", ServiceTool::UpscaleCreative)]
    {
        let upscale = EditRequest {
            prompt: Some(prompt("a red fox in the snow")),
            negative_prompt: Some(prompt("noise")),
            ..request(EditMode::Upscale)
        };
        assert_documented(
            edit_body(&model(EditMode::Upscale, alias), tool, &upscale, Seed(8)).unwrap(),
            json!({"prompt": "a red fox in the snow", "negative_prompt": "noise", "image": source, "seed": 8,
                   "output_format": "png"}),
        );
    }
}
