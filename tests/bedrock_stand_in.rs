//! The Bedrock stand-in, driven by the real `aws-sdk-bedrockruntime` client: real images of the
//! right size for every family, Bedrock-worded validation errors, each family's content filter,
//! scripted throttling and errors, Converse (text and forced tools), ConverseStream over AWS
//! event-stream framing, and ApplyGuardrail.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::converse::ConverseOutput;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, GuardrailAction, GuardrailContentBlock,
    GuardrailContentFilterType, GuardrailContentSource, GuardrailTextBlock, Message, SpecificToolChoice, StopReason,
    SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Document, Number};
use base64::Engine;
use serde_json::{Value, json};

use crate::support::bedrock::{BedrockStandIn, Behaviour, Operation};

async fn client_with(stand_in: &BedrockStandIn, retry: RetryConfig) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "stand-in"))
        .endpoint_url(stand_in.endpoint())
        .retry_config(retry)
        .load()
        .await;
    Client::new(&config)
}

/// A client with the SDK's standard retries (3 attempts).
async fn client(stand_in: &BedrockStandIn) -> Client {
    client_with(stand_in, RetryConfig::standard()).await
}

/// A client that shows every error as it comes.
async fn raw_client(stand_in: &BedrockStandIn) -> Client {
    client_with(stand_in, RetryConfig::disabled()).await
}

fn png_base64(width: u32, height: u32) -> String {
    let picture = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([20, 140, 90])));
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
}

/// Decodes a base64 image from an answer: (width, height, format, has alpha).
fn decoded(base64: &Value) -> (u32, u32, image::ImageFormat, bool) {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64.as_str().unwrap()).unwrap();
    let format = image::guess_format(&bytes).unwrap();
    let picture = image::load_from_memory(&bytes).unwrap();
    (picture.width(), picture.height(), format, picture.color().has_alpha())
}

async fn invoke(
    client: &Client,
    model_id: &str,
    body: &Value,
) -> Result<Value, aws_sdk_bedrockruntime::error::SdkError<InvokeModelError>> {
    let output = client
        .invoke_model()
        .model_id(model_id)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(serde_json::to_vec(body).unwrap()))
        .send()
        .await?;
    assert_eq!(output.content_type(), "application/json");
    Ok(serde_json::from_slice(output.body().as_ref()).unwrap())
}

/// Invokes a body that must be refused; returns (error code, message).
async fn refused(client: &Client, model_id: &str, body: &Value) -> (String, String) {
    let error = invoke(client, model_id, body).await.expect_err("the stand-in accepted a body it should refuse");
    let service_error = error.as_service_error().expect("a service error");
    (service_error.code().unwrap_or_default().to_string(), service_error.message().unwrap_or_default().to_string())
}

fn document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(flag) => Document::Bool(*flag),
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(positive), _) => Document::Number(Number::PosInt(positive)),
            (None, Some(negative)) => Document::Number(Number::NegInt(negative)),
            _ => Document::Number(Number::Float(number.as_f64().unwrap())),
        },
        Value::String(text) => Document::String(text.clone()),
        Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        Value::Object(map) => {
            Document::Object(map.iter().map(|(key, value)| (key.clone(), document(value))).collect::<HashMap<_, _>>())
        }
    }
}

fn user(text: &str) -> Message {
    Message::builder().role(ConversationRole::User).content(ContentBlock::Text(text.into())).build().unwrap()
}

fn assistant(text: &str) -> Message {
    Message::builder().role(ConversationRole::Assistant).content(ContentBlock::Text(text.into())).build().unwrap()
}

fn reply_text(output: &ConverseOutput) -> String {
    let message = output.output().unwrap().as_message().unwrap();
    message.content().iter().filter_map(|block| block.as_text().ok()).cloned().collect::<Vec<_>>().join("")
}

const CHAT_MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

#[tokio::test]
async fn every_image_family_answers_with_real_images_of_the_requested_size() {
    let stand_in = BedrockStandIn::start().await;
    assert_eq!(stand_in.endpoint(), format!("http://127.0.0.1:{}", stand_in.address.port()));
    let client = client(&stand_in).await;

    let sdxl = json!({
        "text_prompts": [{"text": "a lighthouse", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
        "height": 896, "width": 1152, "cfg_scale": 7, "steps": 30, "seed": 42, "samples": 1,
        "style_preset": "photographic", "clip_guidance_preset": "NONE", "sampler": "K_DPMPP_2M"
    });
    let answer = invoke(&client, "stability.stable-diffusion-xl-v1", &sdxl).await.unwrap();
    assert_eq!(answer["result"], "success");
    assert_eq!(answer["artifacts"][0]["finishReason"], "SUCCESS");
    assert_eq!(answer["artifacts"][0]["seed"], 42);
    assert_eq!(decoded(&answer["artifacts"][0]["base64"]), (1152, 896, image::ImageFormat::Png, false));

    let titan = json!({
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "An image of a red barn", "negativeText": "people"},
        "imageGenerationConfig": {"numberOfImages": 2, "quality": "standard", "cfgScale": 8.0, "height": 768, "width": 768, "seed": 7}
    });
    let answer = invoke(&client, "amazon.titan-image-generator-v2:0", &titan).await.unwrap();
    assert_eq!(answer["error"], Value::Null);
    let images = answer["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|image| decoded(image).0 == 768 && decoded(image).1 == 768));

    let nova = json!({
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a harbour at dusk", "style": "PHOTOREALISM"},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 1280, "height": 720, "seed": 858_993_459}
    });
    let answer = invoke(&client, "amazon.nova-canvas-v1:0", &nova).await.unwrap();
    assert_eq!(decoded(&answer["images"][0]), (1280, 720, image::ImageFormat::Png, false));

    let core = json!({"prompt": "a panda", "aspect_ratio": "16:9", "seed": 3, "output_format": "png"});
    let answer = invoke(&client, "stability.stable-image-core-v1:1", &core).await.unwrap();
    assert_eq!(answer["seeds"], json!([3]));
    assert_eq!(answer["finish_reasons"], json!([null]));
    assert_eq!(decoded(&answer["images"][0]), (1344, 768, image::ImageFormat::Png, false));
    let jpeg = invoke(&client, "stability.sd3-5-large-v1:0", &json!({"prompt": "a panda", "output_format": "jpeg"}))
        .await
        .unwrap();
    assert_eq!(decoded(&jpeg["images"][0]), (1024, 1024, image::ImageFormat::Jpeg, false));

    // Image Services, through an inference profile: the outpainted image grows by left + right.
    let outpaint =
        json!({"image": png_base64(256, 200), "prompt": "more beach", "left": 64, "right": 32, "creativity": 0.5});
    let answer = invoke(&client, "us.stability.stable-outpaint-v1:0", &outpaint).await.unwrap();
    assert_eq!(decoded(&answer["images"][0]), (352, 200, image::ImageFormat::Png, false));
    let upscale =
        invoke(&client, "us.stability.stable-fast-upscale-v1:0", &json!({"image": png_base64(128, 96)})).await.unwrap();
    assert_eq!(decoded(&upscale["images"][0]).0, 512);
    let cutout =
        invoke(&client, "us.stability.stable-image-remove-background-v1:0", &json!({"image": png_base64(200, 100)}))
            .await
            .unwrap();
    assert_eq!(decoded(&cutout["images"][0]), (200, 100, image::ImageFormat::Png, true));

    // Every call is recorded with its percent-decoded model id and its JSON body.
    let calls = stand_in.requests();
    assert_eq!(calls.len(), 8);
    assert!(calls.iter().all(|call| call.operation == Operation::InvokeModel));
    assert_eq!(calls[6].model_id, "us.stability.stable-fast-upscale-v1:0");
    assert_eq!(calls[1].body, titan);
    assert_eq!(stand_in.calls_to(Operation::InvokeModel), 8);
    assert_eq!(stand_in.calls_to(Operation::Converse), 0);
}

#[tokio::test]
async fn a_broken_rule_is_a_validation_exception_in_bedrocks_words() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    let titan = "amazon.titan-image-generator-v1";

    let (code, message) =
        refused(&client, titan, &json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a cat"}, "foo": 1}))
            .await;
    assert_eq!(code, "ValidationException");
    assert!(message.contains("extraneous key [foo] is not permitted"), "{message}");
    assert!(message.starts_with("Malformed input request: "), "{message}");

    let (_, message) = refused(&client, titan, &json!({"taskType": "TEXT_IMAGE"})).await;
    assert!(message.contains("required key [textToImageParams] not found"), "{message}");
    let (_, message) =
        refused(&client, titan, &json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "x".repeat(513)}}))
            .await;
    assert!(message.contains("expected maxLength: 512, actual: 513"), "{message}");
    let too_many = json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a"}, "imageGenerationConfig": {"numberOfImages": 6}});
    assert!(refused(&client, titan, &too_many).await.1.contains("6 is not less or equal to 5"));
    // COLOR_GUIDED_GENERATION exists only from Titan v2 on.
    let colours = json!({"taskType": "COLOR_GUIDED_GENERATION", "colorGuidedGenerationParams": {"text": "a", "colors": ["#ff0000"]}});
    assert!(refused(&client, titan, &colours).await.1.contains("is not a valid enum value"));
    assert!(invoke(&client, "amazon.titan-image-generator-v2:0", &colours).await.is_ok());
    // Titan's size list, and Nova's size rules.
    let odd_size = json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a"}, "imageGenerationConfig": {"width": 1000, "height": 1000}});
    assert!(refused(&client, titan, &odd_size).await.1.contains("1000x1000 is not supported"));
    assert!(refused(&client, "amazon.nova-canvas-v1:0", &odd_size).await.1.contains("divisible by 16"));
    // maskPrompt and maskImage together; a base64 field that is no image.
    let image = png_base64(64, 64);
    let both = json!({"taskType": "INPAINTING", "inPaintingParams": {"image": image, "maskPrompt": "cat", "maskImage": image}});
    assert!(refused(&client, titan, &both).await.1.contains("only one of [maskPrompt, maskImage]"));
    let fake = json!({"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": "aGVsbG8="}});
    assert!(refused(&client, "amazon.nova-canvas-v1:0", &fake).await.1.contains("not in a supported format"));
    // SDXL's sizes, SD3.5's modes, and an Image Services tool's required field.
    let sdxl = json!({"text_prompts": [{"text": "a"}], "width": 512, "height": 512});
    assert!(refused(&client, "stability.stable-diffusion-xl-v1", &sdxl).await.1.contains("512x512 are not supported"));
    let half = json!({"prompt": "a", "mode": "image-to-image", "image": png_base64(64, 64)});
    assert!(
        refused(&client, "stability.sd3-5-large-v1:0", &half).await.1.contains("required key [strength] not found")
    );
    let recolour = json!({"image": png_base64(64, 64), "prompt": "red"});
    let (_, message) = refused(&client, "us.stability.stable-image-search-recolor-v1:0", &recolour).await;
    assert!(message.contains("required key [select_prompt] not found"), "{message}");

    // An unknown model is a ResourceNotFoundException (404).
    let error = invoke(&client, "acme.painter-v1", &json!({})).await.unwrap_err();
    assert!(matches!(error.as_service_error(), Some(InvokeModelError::ResourceNotFoundException(_))));
    assert_eq!(error.raw_response().unwrap().status().as_u16(), 404);
}

#[tokio::test]
async fn each_family_is_content_filtered_its_own_documented_way() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;

    // SDXL: HTTP 200, finishReason CONTENT_FILTERED, with a (grey) image.
    stand_in.script(Behaviour::ContentFilter);
    let answer =
        invoke(&client, "stability.stable-diffusion-xl-v1", &json!({"text_prompts": [{"text": "a"}]})).await.unwrap();
    assert_eq!(answer["artifacts"][0]["finishReason"], "CONTENT_FILTERED");
    assert_eq!(decoded(&answer["artifacts"][0]["base64"]).0, 1024);

    // Titan and Nova: a ValidationException.
    stand_in.script(Behaviour::ContentFilter);
    let body = json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a"}});
    let (code, message) = refused(&client, "amazon.nova-canvas-v1:0", &body).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "This request has been blocked by our content filters.")
    );

    // SD3.5 / Ultra / Core and Image Services: a finish reason and no images.
    stand_in.script(Behaviour::ContentFilter);
    let answer = invoke(&client, "stability.stable-image-ultra-v1:1", &json!({"prompt": "a"})).await.unwrap();
    assert_eq!(answer, json!({"finish_reasons": ["Filter reason: prompt"]}));
    stand_in.script(Behaviour::ContentFilter);
    let erase = json!({"image": png_base64(64, 64), "mask": png_base64(64, 64)});
    let answer = invoke(&client, "us.stability.stable-image-erase-object-v1:0", &erase).await.unwrap();
    assert_eq!(answer, json!({"finish_reasons": ["Filter reason: input image"]}));

    // The filter was used up: the same call is fine now.
    assert!(
        invoke(&client, "us.stability.stable-image-erase-object-v1:0", &erase).await.unwrap()["images"][0].is_string()
    );
}

#[tokio::test]
async fn throttling_and_scripted_errors_reach_the_client() {
    let stand_in = BedrockStandIn::start().await;
    let body = json!({"prompt": "a fox"});

    // Without retries the client sees the 429 ThrottlingException itself, then a success.
    let raw = raw_client(&stand_in).await;
    stand_in.script(Behaviour::Throttle { times: 1 });
    let error = invoke(&raw, "stability.stable-image-core-v1:1", &body).await.unwrap_err();
    assert!(matches!(error.as_service_error(), Some(InvokeModelError::ThrottlingException(_))));
    assert_eq!(
        error.as_service_error().unwrap().message(),
        Some("Too many requests, please wait before trying again.")
    );
    assert_eq!(error.raw_response().unwrap().status().as_u16(), 429);
    assert!(invoke(&raw, "stability.stable-image-core-v1:1", &body).await.is_ok());

    // With the SDK's standard retries, one throttled attempt is retried and succeeds.
    let retrying = client(&stand_in).await;
    stand_in.script(Behaviour::Throttle { times: 1 });
    assert!(invoke(&retrying, "stability.stable-image-core-v1:1", &body).await.is_ok());
    assert_eq!(stand_in.calls_to(Operation::InvokeModel), 4);

    // Any status and error type, for any operation.
    stand_in.script(Behaviour::Error {
        status: 424,
        error_type: "ModelErrorException".into(),
        message: "The model failed.".into(),
    });
    let error = invoke(&raw, "stability.stable-image-core-v1:1", &body).await.unwrap_err();
    assert!(matches!(error.as_service_error(), Some(InvokeModelError::ModelErrorException(_))));
    stand_in.script(Behaviour::Error {
        status: 403,
        error_type: "AccessDeniedException".into(),
        message: "No access.".into(),
    });
    let error = raw.converse().model_id(CHAT_MODEL).messages(user("hi")).send().await.unwrap_err();
    assert_eq!(error.as_service_error().unwrap().code(), Some("AccessDeniedException"));
    assert_eq!(error.as_service_error().unwrap().message(), Some("No access."));
}

#[tokio::test]
async fn converse_answers_the_last_user_text_unless_scripted() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    let output = client
        .converse()
        .model_id(CHAT_MODEL)
        .system(SystemContentBlock::Text("You improve prompts.".into()))
        .messages(user("Hello there"))
        .messages(assistant("Hi! What shall we paint?"))
        .messages(user("A fox in the snow"))
        .inference_config(
            aws_sdk_bedrockruntime::types::InferenceConfiguration::builder().max_tokens(800).temperature(0.3).build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply_text(&output), "Stand-in reply to: A fox in the snow");
    assert_eq!(output.stop_reason(), &StopReason::EndTurn);
    let usage = output.usage().unwrap();
    assert!(usage.input_tokens() > 0 && usage.output_tokens() > 0);
    assert_eq!(usage.total_tokens(), usage.input_tokens() + usage.output_tokens());

    // A scripted reply and stop reason shape the same answer.
    stand_in.script(Behaviour::ChatReply("The generated text has been blocked by our content filters.".into()));
    stand_in.script(Behaviour::StopReason("content_filtered".into()));
    let output = client.converse().model_id(CHAT_MODEL).messages(user("something")).send().await.unwrap();
    assert_eq!(reply_text(&output), "The generated text has been blocked by our content filters.");
    assert_eq!(output.stop_reason(), &StopReason::ContentFiltered);

    // Conversation rules: start with the user, alternate roles; and no image models.
    let error = client.converse().model_id(CHAT_MODEL).messages(assistant("hello")).send().await.unwrap_err();
    assert!(error.as_service_error().unwrap().message().unwrap().contains("must start with a user message"));
    let error =
        client.converse().model_id(CHAT_MODEL).messages(user("a")).messages(user("b")).send().await.unwrap_err();
    assert!(error.as_service_error().unwrap().message().unwrap().contains("must alternate between user and assistant"));
    let error = client.converse().model_id("amazon.nova-canvas-v1:0").messages(user("a")).send().await.unwrap_err();
    assert!(error.as_service_error().unwrap().is_validation_exception());

    let calls = stand_in.requests();
    assert_eq!(calls[0].operation, Operation::Converse);
    assert_eq!(calls[0].model_id, CHAT_MODEL);
    assert_eq!(calls[0].body["inferenceConfig"]["maxTokens"], 800);
    assert_eq!(calls[0].body["messages"][2]["content"][0]["text"], "A fox in the snow");
}

#[tokio::test]
async fn a_forced_tool_gets_the_simplest_input_valid_against_its_schema() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    let schema = json!({
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["allow", "block"]},
            "reason": {"type": "string", "minLength": 12},
            "flagged": {"type": "boolean"},
            "score": {"type": "integer", "minimum": 3, "maximum": 9},
            "weight": {"type": "number"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "detail": {"type": "object", "properties": {"level": {"type": "integer"}, "note": {"type": "string"}}, "required": ["level"]},
            "optional": {"type": "string"}
        },
        "required": ["verdict", "reason", "flagged", "score", "weight", "labels", "detail"]
    });
    let tools = ToolConfiguration::builder()
        .tools(Tool::ToolSpec(
            ToolSpecification::builder()
                .name("judge_prompt")
                .description("Judges a prompt")
                .input_schema(ToolInputSchema::Json(document(&schema)))
                .build()
                .unwrap(),
        ))
        .tool_choice(ToolChoice::Tool(SpecificToolChoice::builder().name("judge_prompt").build().unwrap()))
        .build()
        .unwrap();
    let output =
        client.converse().model_id(CHAT_MODEL).messages(user("a fox")).tool_config(tools.clone()).send().await.unwrap();
    assert_eq!(output.stop_reason(), &StopReason::ToolUse);
    let message = output.output().unwrap().as_message().unwrap();
    let tool_use = message.content()[0].as_tool_use().unwrap();
    assert_eq!((tool_use.tool_use_id(), tool_use.name()), ("tooluse_standin1", "judge_prompt"));
    let mut expected = HashMap::new();
    expected.insert("verdict".to_string(), Document::String("allow".into()));
    expected.insert("reason".to_string(), Document::String("stand-in----".into()));
    expected.insert("flagged".to_string(), Document::Bool(false));
    expected.insert("score".to_string(), Document::Number(Number::PosInt(3)));
    expected.insert("weight".to_string(), Document::Number(Number::PosInt(0)));
    expected.insert("labels".to_string(), Document::Array(vec![]));
    let detail = HashMap::from([("level".to_string(), Document::Number(Number::PosInt(0)))]);
    expected.insert("detail".to_string(), Document::Object(detail));
    assert_eq!(tool_use.input(), &Document::Object(expected));

    // A scripted input wins over the default.
    stand_in.script(Behaviour::ToolUse(json!({"verdict": "block", "reason": "scripted reason"})));
    let output =
        client.converse().model_id(CHAT_MODEL).messages(user("a fox")).tool_config(tools).send().await.unwrap();
    let message = output.output().unwrap().as_message().unwrap();
    let input = message.content()[0].as_tool_use().unwrap().input();
    assert_eq!(input.as_object().unwrap()["verdict"], Document::String("block".into()));
    assert_eq!(stand_in.requests()[0].body["toolConfig"]["toolChoice"], json!({"tool": {"name": "judge_prompt"}}));
}

#[tokio::test]
async fn converse_stream_sends_text_deltas_then_message_stop_and_metadata() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    stand_in.script(Behaviour::ChatReply("one two three four".into()));
    stand_in.script(Behaviour::Delay(Duration::from_millis(40)));
    let started = Instant::now();
    let mut stream = client.converse_stream().model_id(CHAT_MODEL).messages(user("count")).send().await.unwrap().stream;
    let (mut deltas, mut stop, mut usage, mut started_message) = (Vec::new(), None, None, false);
    while let Some(event) = stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::MessageStart(start) => {
                assert_eq!(start.role(), &ConversationRole::Assistant);
                started_message = true;
            }
            ConverseStreamOutput::ContentBlockDelta(delta) => {
                if let Some(ContentBlockDelta::Text(text)) = delta.delta() {
                    deltas.push(text.clone());
                }
            }
            ConverseStreamOutput::MessageStop(message_stop) => stop = Some(message_stop.stop_reason().clone()),
            ConverseStreamOutput::Metadata(metadata) => usage = metadata.usage().cloned(),
            _ => {}
        }
    }
    assert!(started_message);
    assert_eq!(deltas, ["one ", "two ", "three ", "four"]);
    assert_eq!(stop, Some(StopReason::EndTurn));
    assert!(usage.unwrap().output_tokens() >= 4);
    // The delay applies before the answer and between events.
    assert!(started.elapsed() >= Duration::from_millis(40 * 8), "{:?}", started.elapsed());
    stand_in.script(Behaviour::Delay(Duration::ZERO));

    // The default reply and a scripted stop reason, streamed.
    stand_in.script(Behaviour::StopReason("guardrail_intervened".into()));
    let mut stream = client.converse_stream().model_id(CHAT_MODEL).messages(user("a cat")).send().await.unwrap().stream;
    let (mut text, mut stop) = (String::new(), None);
    while let Some(event) = stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::ContentBlockDelta(delta) => text.push_str(delta.delta().unwrap().as_text().unwrap()),
            ConverseStreamOutput::MessageStop(message_stop) => stop = Some(message_stop.stop_reason().clone()),
            _ => {}
        }
    }
    assert_eq!(text, "Stand-in reply to: a cat");
    assert_eq!(stop, Some(StopReason::GuardrailIntervened));
    assert_eq!(stand_in.calls_to(Operation::ConverseStream), 2);
    assert_eq!(stand_in.requests()[1].body["messages"][0]["content"][0]["text"], "a cat");
}

#[tokio::test]
async fn a_mid_stream_error_surfaces_from_recv_after_two_deltas() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    stand_in.script(Behaviour::MidStreamError);
    let mut stream =
        client.converse_stream().model_id(CHAT_MODEL).messages(user("tell me a story")).send().await.unwrap().stream;
    let mut deltas = 0;
    let error = loop {
        match stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(_))) => deltas += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without the scripted error"),
            Err(error) => break error,
        }
    };
    assert_eq!(deltas, 2);
    let service_error = error.as_service_error().expect("a modelled stream error");
    assert!(matches!(service_error, ConverseStreamOutputError::ModelStreamErrorException(_)));
    assert!(service_error.message().is_some());

    // The next stream is whole again.
    let mut stream = client.converse_stream().model_id(CHAT_MODEL).messages(user("again")).send().await.unwrap().stream;
    while stream.recv().await.unwrap().is_some() {}
}

#[tokio::test]
async fn apply_guardrail_passes_and_intervenes() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    let check = |text: &str| {
        client
            .apply_guardrail()
            .guardrail_identifier("gr-standin1")
            .guardrail_version("DRAFT")
            .source(GuardrailContentSource::Input)
            .content(GuardrailContentBlock::Text(GuardrailTextBlock::builder().text(text).build().unwrap()))
            .send()
    };
    let output = check("a fox in the snow").await.unwrap();
    assert_eq!(output.action(), &GuardrailAction::None);
    assert!(output.outputs().is_empty());
    assert_eq!(output.usage().unwrap().content_policy_units(), 1);

    stand_in.script(Behaviour::GuardrailIntervene);
    let output = check("something violent").await.unwrap();
    assert_eq!(output.action(), &GuardrailAction::GuardrailIntervened);
    assert_eq!(output.outputs()[0].text(), Some("Sorry, the model cannot answer this question."));
    let filter = &output.assessments()[0].content_policy().unwrap().filters()[0];
    assert_eq!(filter.r#type(), &GuardrailContentFilterType::Violence);
    assert!(filter.detected().unwrap());

    // A version that is neither DRAFT nor a number is refused.
    let error = client
        .apply_guardrail()
        .guardrail_identifier("gr-standin1")
        .guardrail_version("latest")
        .source(GuardrailContentSource::Output)
        .content(GuardrailContentBlock::Text(GuardrailTextBlock::builder().text("x").build().unwrap()))
        .send()
        .await
        .unwrap_err();
    assert!(error.as_service_error().unwrap().is_validation_exception());

    let calls = stand_in.requests();
    assert_eq!(stand_in.calls_to(Operation::ApplyGuardrail), 3);
    assert_eq!(calls[0].model_id, "gr-standin1");
    assert_eq!(calls[0].body, json!({"source": "INPUT", "content": [{"text": {"text": "a fox in the snow"}}]}));
}

#[tokio::test]
async fn fault_modes_reach_the_client_in_bedrocks_own_error_shapes() {
    use crate::support::bedrock::{AwsError, Fault, FaultMode};
    let stand_in = BedrockStandIn::start().await;
    let raw = raw_client(&stand_in).await;
    let body = json!({"prompt": "a fox"});
    let model = "stability.stable-image-core-v1:1";

    // Each error in its documented status, parsed by the SDK into its own variant.
    let cases = [
        (AwsError::Throttling, 429, "ThrottlingException"),
        (AwsError::ModelNotReady, 429, "ModelNotReadyException"),
        (AwsError::InternalServer, 500, "InternalServerException"),
        (AwsError::ServiceUnavailable, 503, "ServiceUnavailableException"),
        (AwsError::ModelTimeout, 408, "ModelTimeoutException"),
    ];
    for (error, status, code) in cases {
        stand_in.storm(FaultMode { operation: Operation::InvokeModel, fault: Fault::Error(error), one_in: 1 });
        let failed = invoke(&raw, model, &body).await.unwrap_err();
        stand_in.calm();
        assert_eq!(failed.raw_response().unwrap().status().as_u16(), status, "{code}");
        let service_error = failed.as_service_error().unwrap_or_else(|| panic!("{code}: {failed:?}"));
        assert_eq!(service_error.code(), Some(code));
        let modelled = matches!(
            service_error,
            InvokeModelError::ThrottlingException(_)
                | InvokeModelError::ModelNotReadyException(_)
                | InvokeModelError::InternalServerException(_)
                | InvokeModelError::ServiceUnavailableException(_)
                | InvokeModelError::ModelTimeoutException(_)
        );
        assert!(modelled, "{code} is parsed into its own variant: {service_error:?}");
        assert!(service_error.message().is_some_and(|message| !message.is_empty()), "{code}");
    }

    // One in three: the first call and every third after it, the others untouched.
    stand_in.storm(FaultMode {
        operation: Operation::InvokeModel,
        fault: Fault::Error(AwsError::Throttling),
        one_in: 3,
    });
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(invoke(&raw, model, &body).await.is_ok());
    }
    stand_in.calm();
    assert_eq!(outcomes, [false, true, true, false, true, true]);
    assert_eq!(stand_in.faults_dealt(Operation::InvokeModel), cases.len() + 2);
    // A storm on one operation leaves the others alone.
    stand_in.storm(FaultMode { operation: Operation::Converse, fault: Fault::Hang, one_in: 1 });
    assert!(invoke(&raw, model, &body).await.is_ok());
    stand_in.calm();

    // A stream that breaks off: the pieces, then an in-stream exception the SDK names...
    stand_in.storm(FaultMode {
        operation: Operation::ConverseStream,
        fault: Fault::StreamException { after: 2, exception: "throttlingException" },
        one_in: 1,
    });
    let mut stream =
        raw.converse_stream().model_id(CHAT_MODEL).messages(user("tell me a story")).send().await.unwrap().stream;
    let mut deltas = 0;
    let error = loop {
        match stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(_))) => deltas += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without the exception"),
            Err(error) => break error,
        }
    };
    assert_eq!(deltas, 2);
    assert!(matches!(error.as_service_error(), Some(ConverseStreamOutputError::ThrottlingException(_))), "{error:?}");
    stand_in.calm();

    // ...or a connection that drops: the pieces, then a transport error, never a clean end.
    stand_in.storm(FaultMode {
        operation: Operation::ConverseStream,
        fault: Fault::StreamDrop { after: 3 },
        one_in: 1,
    });
    let mut stream =
        raw.converse_stream().model_id(CHAT_MODEL).messages(user("tell me a story")).send().await.unwrap().stream;
    let mut deltas = 0;
    let error = loop {
        match stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(_))) => deltas += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("a dropped stream must not end cleanly"),
            Err(error) => break error,
        }
    };
    assert_eq!(deltas, 3);
    assert!(error.as_service_error().is_none(), "a dropped connection is no service error: {error:?}");
    stand_in.calm();

    // A slow answer still comes, late; after a stall, the next stream is whole again.
    stand_in.storm(FaultMode {
        operation: Operation::InvokeModel,
        fault: Fault::Slow(Duration::from_millis(300)),
        one_in: 1,
    });
    assert!(invoke(&raw, model, &body).await.is_ok());
    stand_in.calm();
    let mut stream = raw.converse_stream().model_id(CHAT_MODEL).messages(user("again")).send().await.unwrap().stream;
    while stream.recv().await.unwrap().is_some() {}
}

#[tokio::test]
async fn calls_are_timed_and_images_can_be_answered_at_once_from_a_body_encoded_once() {
    let stand_in = BedrockStandIn::start().await;
    let client = raw_client(&stand_in).await;
    let png_bytes = stand_in.answer_images_at_once();
    assert!((1_000_000..4_000_000).contains(&png_bytes), "about a model's 1024² PNG: {png_bytes} bytes");
    let body = json!({ "prompt": "a heron", "aspect_ratio": "1:1", "output_format": "png" });
    let before = Instant::now();
    let first = invoke(&client, "stability.stable-image-core-v1:1", &body).await.unwrap();
    let after = Instant::now();
    let second = invoke(&client, "stability.stable-image-core-v1:1", &body).await.unwrap();
    assert_eq!(decoded(&first["images"][0]), (1024, 1024, image::ImageFormat::Png, false));
    assert_eq!(first["images"], second["images"], "the same prebuilt picture every time");
    let titan = json!({ "taskType": "TEXT_IMAGE", "textToImageParams": { "text": "a heron" } });
    let answer = invoke(&client, "amazon.titan-image-generator-v2:0", &titan).await.unwrap();
    assert_eq!(answer["images"], first["images"], "in each family's own answer shape");
    let call = &stand_in.requests()[0];
    let answered = call.answered_at.expect("the answer's end is recorded");
    assert!(before <= call.received_at && call.received_at <= answered && answered <= after);

    // A stream's text deltas are timed one by one, and its end after the last.
    stand_in.script(Behaviour::ChatReply("one two three".into()));
    stand_in.script(Behaviour::Delay(Duration::from_millis(30)));
    let mut stream = client.converse_stream().model_id(CHAT_MODEL).messages(user("count")).send().await.unwrap().stream;
    while stream.recv().await.unwrap().is_some() {}
    stand_in.script(Behaviour::Delay(Duration::ZERO));
    let call = stand_in.requests().pop().unwrap();
    let texts: Vec<&str> = call.deltas.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["one ", "two ", "three"]);
    for pair in call.deltas.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= Duration::from_millis(25), "paced by the Delay");
    }
    assert!(call.answered_at.unwrap() >= call.deltas[2].0);
}
