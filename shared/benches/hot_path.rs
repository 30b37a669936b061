//! Micro-benchmarks of the core's own work around a model call, on realistic inputs built
//! here: inline parameters, request bodies per model family, reading a model's image out of
//! its response, thumbnails, and presigned download URLs.
//!
//! Run with `cargo bench -p atelier-shared`; `BENCHMARKS.md` records the figures. Nothing here
//! reaches a network: the S3 store signs against a loopback endpoint that is checked to have
//! seen no connection.
#![expect(clippy::expect_used, reason = "a broken assumption in a benchmark should stop it loudly")]

use std::hint::black_box;
use std::net::TcpListener;
use std::time::Duration;

use atelier_shared::adapters::S3Store;
use atelier_shared::adapters::{Answer, image_services, read_images, sdxl, stability, titan};
use atelier_shared::adapters::{ObjectKey, ObjectStore};
use atelier_shared::engine::catalog::{Catalog, Family, ModelEntry};
use atelier_shared::images::{CheckedImage, encode_png, make_thumbnail};
use atelier_shared::request::inline::apply_inline_parameters;
use atelier_shared::request::{
    EditMode, EditRequest, GenerationFields, GenerationRequest, OutpaintDirection, Prompt, Region, Seed,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use image::{DynamicImage, Rgb, RgbImage};

/// The prompt people type most: a sentence and a few inline parameters.
const PROMPT_WITH_FLAGS: &str = "a lighthouse on a cliff at dusk, waves breaking below, warm light in the windows \
     --ar 16:9 --seed 42 --no people --style photographic";

/// A seed every family accepts.
const SEED: Seed = Seed(42);

criterion_group!(benches, inline_parameters, request_bodies, response_decoding, thumbnails, presigning);
criterion_main!(benches);

fn inline_parameters(criterion: &mut Criterion) {
    let long_prompt = long_prompt();
    let mut group = criterion.benchmark_group("inline_parameters");
    for (name, text) in [("flags", PROMPT_WITH_FLAGS), ("long_prompt", long_prompt.as_str())] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |bencher| {
            // As the bot does: the whole text is the prompt, and nothing was given explicitly.
            bencher.iter(|| {
                let explicit = GenerationFields { prompt: text.to_string(), ..GenerationFields::default() };
                apply_inline_parameters(black_box(text), explicit).expect("the prompt is accepted")
            })
        });
    }
    group.finish();

    let fields = flagged_fields();
    criterion.bench_function("generation_fields/parse", |bencher| {
        bencher.iter(|| black_box(&fields).parse().expect("the fields are valid"))
    });
}

fn request_bodies(criterion: &mut Criterion) {
    let catalog = Catalog::new(None, None).expect("the default catalog is valid");
    let model = |alias: &str| -> ModelEntry {
        catalog.entries().iter().find(|entry| entry.alias == alias).expect("a default model").clone()
    };
    // The typical request, as far as each family takes it (only SDXL has style presets).
    let with_style = flagged_fields().parse().expect("the fields are valid");
    let without_style = GenerationRequest { style: None, ..with_style.clone() };

    let mut group = criterion.benchmark_group("body");
    let sdxl_model = model("sdxl");
    group.bench_function("sdxl", |bencher| {
        bencher.iter(|| sdxl::generation_body(&sdxl_model, black_box(&with_style), SEED).expect("a valid body"))
    });
    for (name, alias) in [("titan", "titan-v2"), ("nova_canvas", "nova-canvas")] {
        let entry = model(alias);
        let Family::Titan(variant) = entry.family else { panic!("{alias} is not of the Titan family") };
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                titan::generation_body(&entry, variant, black_box(&without_style), SEED).expect("a valid body")
            })
        });
    }
    let core = model("core");
    group.bench_function("stability", |bencher| {
        bencher.iter(|| stability::generation_body(&core, black_box(&without_style), SEED).expect("a valid body"))
    });

    // Edits: the source's base64 dominates, so these report bytes of source per second.
    let source = CheckedImage::check(noisy_png(1024, 1024), "the source").expect("a sound PNG");
    group.throughput(Throughput::Bytes(source.bytes().len() as u64));
    let variation = edit_request(EditMode::Variation, source.clone(), Some("the same lighthouse in winter"), None);
    let sd35 = model("sd3.5");
    group.bench_function("edit_stability_variation_png_1024", |bencher| {
        bencher.iter(|| stability::edit_body(&sd35, black_box(&variation), SEED).expect("a valid body"))
    });
    let background = edit_request(EditMode::RemoveBackground, source.clone(), None, None);
    let remove_background = model("remove-background");
    let Family::StabilityService(remove_tool) = remove_background.family else { panic!("not an Image Services tool") };
    group.bench_function("edit_image_services_remove_background_png_1024", |bencher| {
        bencher.iter(|| {
            image_services::edit_body(&remove_background, remove_tool, black_box(&background), SEED)
                .expect("a valid body")
        })
    });
    // A painted mask is decoded and re-encoded in the model's convention: the costly edit.
    let mask = CheckedImage::check(mask_png(1024, 1024), "the mask").expect("a sound mask");
    let inpaint = edit_request(EditMode::Inpaint, source.clone(), Some("a red sailing boat"), Some(mask));
    let inpaint_model = model("inpaint");
    let Family::StabilityService(inpaint_tool) = inpaint_model.family else { panic!("not an Image Services tool") };
    group.bench_function("edit_image_services_inpaint_mask_png_1024", |bencher| {
        bencher.iter(|| {
            image_services::edit_body(&inpaint_model, inpaint_tool, black_box(&inpaint), SEED).expect("a valid body")
        })
    });
    // Titan's zoom-out draws a canvas: the source shrunk onto its own size, and a mask.
    let zoom_out = edit_request(EditMode::Outpaint, source.clone(), None, None);
    let titan_v2 = model("titan-v2");
    let Family::Titan(titan_variant) = titan_v2.family else { panic!("titan-v2 is not of the Titan family") };
    group.bench_function("edit_titan_outpaint_zoom_png_1024", |bencher| {
        bencher.iter(|| titan::edit_body(&titan_v2, titan_variant, black_box(&zoom_out), SEED).expect("a valid body"))
    });
    // Checking an edit against the model's limits, as front ends do before acknowledging:
    // the same rules as building its body, without the image work.
    group.throughput(Throughput::Elements(1));
    group.bench_function("check_edit_image_services_inpaint_png_1024", |bencher| {
        bencher.iter(|| {
            image_services::check_edit(&inpaint_model, inpaint_tool, black_box(&inpaint), SEED).expect("a valid edit")
        })
    });
    group.throughput(Throughput::Bytes(source.bytes().len() as u64));
    // The engine turns the body into bytes once more before InvokeModel.
    let body = stability::edit_body(&sd35, &variation, SEED).expect("a valid body");
    group.bench_function("serialize_edit_png_1024", |bencher| {
        bencher.iter(|| serde_json::to_vec(black_box(&body)).expect("a body serialises"))
    });
    group.finish();
}

fn response_decoding(criterion: &mut Criterion) {
    let png = noisy_png(1024, 1024);
    // A Stability response as Bedrock sends it: images[], seeds[], finish_reasons[].
    let response = serde_json::to_vec(&serde_json::json!({
        "seeds": [42],
        "finish_reasons": [null],
        "images": [BASE64.encode(&png)],
    }))
    .expect("a response serialises");
    eprintln!("the 1024x1024 PNG is {} bytes; the response holding it, {} bytes", png.len(), response.len());

    let mut group = criterion.benchmark_group("decode");
    group.throughput(Throughput::Bytes(response.len() as u64));
    // From the response body to a checked image: the JSON read, the base64 decoded, the PNG
    // fully decoded, as an upload is checked.
    group.bench_function("base64_png_1024", |bencher| {
        bencher.iter(|| {
            let answer = stability::read_response(black_box(&response)).expect("a readable response");
            let Answer::Images(images) = answer else { panic!("not filtered") };
            images
                .into_iter()
                .map(|image| CheckedImage::check(image.bytes, "the model's image").expect("a sound image"))
                .collect::<Vec<_>>()
        })
    });
    // What the engine runs on the blocking pool, on the person's path: the JSON read, the
    // base64 decoded, the PNG checked by its chunks' CRCs (not decoded).
    let family = Family::StabilityText { image_to_image: false };
    group.bench_function("read_images_png_1024", |bencher| {
        bencher.iter(|| read_images(family, "core", black_box(&response), SEED).expect("a sound image"))
    });
    // Its parts: reading the JSON and base64, then checking the PNG.
    group.bench_function("read_response_png_1024", |bencher| {
        bencher.iter(|| stability::read_response(black_box(&response)).expect("a readable response"))
    });
    group.throughput(Throughput::Bytes(png.len() as u64));
    group.bench_function("check_png_1024", |bencher| {
        bencher.iter(|| CheckedImage::check(black_box(png.clone()), "the model's image").expect("a sound image"))
    });
    group.bench_function("check_model_output_png_1024", |bencher| {
        bencher.iter(|| {
            CheckedImage::check_model_output(black_box(png.clone()), "the model's image").expect("a sound image")
        })
    });
    // One copy of the image's bytes, as a front end makes when it hands them to an API that
    // takes a `Vec<u8>`: the unit for counting copies on the path.
    group.bench_function("copy_png_1024", |bencher| bencher.iter(|| black_box(&png).to_vec()));
    group.finish();
}

fn thumbnails(criterion: &mut Criterion) {
    let png = noisy_png(1024, 1024);
    let checked = CheckedImage::check(png.clone(), "the image").expect("a sound PNG");
    let pixels = checked.decode().expect("a sound PNG");
    let mut group = criterion.benchmark_group("thumbnail");
    group.throughput(Throughput::Bytes(png.len() as u64));
    // What the gallery does when it keeps an image, while the result is being posted: decode
    // the PNG, then shrink and encode.
    group.bench_function("png_1024", |bencher| {
        bencher.iter(|| {
            let pixels = black_box(&checked).decode().expect("a sound PNG");
            make_thumbnail(&pixels).expect("a thumbnail")
        })
    });
    // The shrinking and JPEG encoding alone, from pixels already decoded.
    group.bench_function("from_pixels_1024", |bencher| {
        bencher.iter(|| make_thumbnail(black_box(&pixels)).expect("a thumbnail"))
    });
    group.finish();
}

fn presigning(criterion: &mut Criterion) {
    // Presigning only computes a signature. To prove it, S3 "lives" on a loopback port that
    // nobody answers on, and the port must have seen no connection when the benchmark ends.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
    let credentials = aws_sdk_s3::config::Credentials::new("AKIDBENCHMARK", "benchmark-secret", None, None, "bench");
    let sdk_config = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let store = S3Store::new(&sdk_config, "atelier-images".into(), Some("atelier".into()), false);
    let key =
        ObjectKey::new("users/discord-123456789012345678/images/01JABCDEFGHJKMNPQRSTVWXYZ0.png").expect("a valid key");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let expires = Duration::from_secs(15 * 60);

    criterion.bench_function("presign/get_object", |bencher| {
        bencher.iter(|| {
            runtime
                .block_on(store.download_url(black_box(&key), expires))
                .expect("presigning succeeds")
                .expect("S3 gives download URLs")
        })
    });
    match listener.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("presigning connected to the endpoint (from {peer})"),
        Err(error) => panic!("checking the endpoint failed: {error}"),
    }
}

/// A 1024-pixel-class PNG that compresses like a photograph rather than a flat colour: smooth
/// gradients with a few intensity bands, plus per-pixel noise from a fixed-seed generator.
fn noisy_png(width: u32, height: u32) -> Bytes {
    let mut state: u32 = 0x9E37_79B9;
    let mut noise = move || {
        // xorshift32: deterministic, so every run encodes the same picture.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 24) as i32 - 12
    };
    let picture = RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let base = [(x * 255 / width as i32), (y * 255 / height as i32), ((x + y) / 8 % 64) * 3];
        Rgb(base.map(|channel| (channel + noise()).clamp(0, 255) as u8))
    });
    encode_png(&DynamicImage::ImageRgb8(picture), &[]).expect("a PNG encodes")
}

/// A mask of the source's size whose black disc marks the region to paint.
fn mask_png(width: u32, height: u32) -> Bytes {
    let (centre_x, centre_y, radius) = (width as i64 / 2, height as i64 / 2, width as i64 / 4);
    let mask = image::GrayImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (x as i64 - centre_x, y as i64 - centre_y);
        image::Luma([if dx * dx + dy * dy < radius * radius { 0 } else { 255 }])
    });
    encode_png(&DynamicImage::ImageLuma8(mask), &[]).expect("a PNG encodes")
}

/// A prompt of about 1,500 characters with no inline parameters.
fn long_prompt() -> String {
    let sentence = "an old stone lighthouse on a windswept cliff, late golden hour, long shadows across wet grass, \
                    gulls circling the lamp room, ";
    let mut prompt = String::new();
    while prompt.len() < 1_500 {
        prompt.push_str(sentence);
    }
    prompt.push_str("highly detailed");
    prompt
}

/// The fields [`PROMPT_WITH_FLAGS`] becomes once its inline parameters are taken out.
fn flagged_fields() -> GenerationFields {
    let explicit = GenerationFields { prompt: PROMPT_WITH_FLAGS.to_string(), ..GenerationFields::default() };
    apply_inline_parameters(PROMPT_WITH_FLAGS, explicit).expect("the prompt is accepted")
}

fn edit_request(mode: EditMode, source: CheckedImage, prompt: Option<&str>, mask: Option<CheckedImage>) -> EditRequest {
    EditRequest {
        mode,
        source,
        prompt: prompt.map(|text| Prompt::parse(text).expect("a valid prompt")),
        negative_prompt: None,
        region: mask.map(Region::MaskImage),
        model: None,
        seed: Some(SEED),
        similarity: None,
        outpaint_direction: OutpaintDirection::All,
    }
}
