//! The Converse API's shared pieces: JSON documents for tool schemas and inputs, and a call
//! that makes Claude answer through one tool, so its answer parses reliably.

use std::collections::HashMap;

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ImageBlock, ImageFormat, ImageSource, InferenceConfiguration, Message,
    SpecificToolChoice, SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Blob, Document, Number};
use serde_json::Value;

use super::client::{Bedrock, CallContext, error_from_sdk};
use crate::error::{Error, Invalid, Result};
use crate::images::CheckedImage;

/// JSON as the SDK's document type.
pub fn json_to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(flag) => Document::Bool(*flag),
        Value::Number(number) => Document::Number(match (number.as_u64(), number.as_i64(), number.as_f64()) {
            (Some(positive), _, _) => Number::PosInt(positive),
            (None, Some(negative), _) => Number::NegInt(negative),
            (_, _, float) => Number::Float(float.unwrap_or(0.0)),
        }),
        Value::String(text) => Document::String(text.clone()),
        Value::Array(items) => Document::Array(items.iter().map(json_to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter().map(|(key, value)| (key.clone(), json_to_document(value))).collect::<HashMap<_, _>>(),
        ),
    }
}

/// The SDK's document type as JSON.
pub fn document_to_json(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(flag) => Value::Bool(*flag),
        Document::Number(Number::PosInt(number)) => Value::from(*number),
        Document::Number(Number::NegInt(number)) => Value::from(*number),
        Document::Number(Number::Float(number)) => Value::from(*number),
        Document::String(text) => Value::String(text.clone()),
        Document::Array(items) => Value::Array(items.iter().map(document_to_json).collect()),
        Document::Object(map) => {
            Value::Object(map.iter().map(|(key, value)| (key.clone(), document_to_json(value))).collect())
        }
    }
}

/// A tool Claude must answer through.
pub struct ToolAnswer<'a> {
    /// Who answers, as people know it ("the safety check"), for the messages they read.
    pub asked: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub schema: Value,
}

/// Asks `model_id` one question and returns the input it gave the tool: a structured answer.
pub async fn answer_through_tool(
    bedrock: &Bedrock,
    model_id: &str,
    system: &str,
    question: &str,
    image: Option<&CheckedImage>,
    tool: &ToolAnswer<'_>,
    max_tokens: i32,
) -> Result<Value> {
    let build_error = |error| Error::operator("building a Converse request", error);
    let specification = ToolSpecification::builder()
        .name(tool.name)
        .description(tool.description)
        .input_schema(ToolInputSchema::Json(json_to_document(&tool.schema)))
        .build()
        .map_err(build_error)?;
    let choice = ToolChoice::Tool(SpecificToolChoice::builder().name(tool.name).build().map_err(build_error)?);
    let tools = ToolConfiguration::builder()
        .tools(Tool::ToolSpec(specification))
        .tool_choice(choice)
        .build()
        .map_err(build_error)?;
    let mut message = Message::builder().role(ConversationRole::User);
    if let Some(image) = image {
        message = message.content(image_block(image)?);
    }
    let message = message.content(ContentBlock::Text(question.into())).build().map_err(build_error)?;
    let call = CallContext { model: tool.asked, model_id, region: &bedrock.region };
    let timeouts = aws_sdk_bedrockruntime::config::Builder::default().timeout_config(bedrock.text_call_timeouts());
    let output = bedrock
        .runtime
        .converse()
        .model_id(model_id)
        .system(SystemContentBlock::Text(system.into()))
        .messages(message)
        .tool_config(tools)
        .inference_config(InferenceConfiguration::builder().max_tokens(max_tokens).temperature(0.0).build())
        .customize()
        .config_override(timeouts)
        .send()
        .await
        .map_err(|error| error_from_sdk(error, call))?;
    let content = output.output().and_then(|output| output.as_message().ok()).map(|message| message.content());
    let tool_input = content
        .into_iter()
        .flatten()
        .find_map(|block| block.as_tool_use().ok().filter(|tool_use| tool_use.name() == tool.name))
        .map(|tool_use| document_to_json(tool_use.input()));
    tool_input.ok_or_else(|| Error::operator(format!("asking {model_id} through a tool"), "the reply used no tool"))
}

/// The largest image Claude takes on Bedrock, in bytes.
pub const MAX_VISION_BYTES: usize = 3_750_000;

/// An image as a Converse content block, checked against Claude's limits.
pub fn image_block(image: &CheckedImage) -> Result<ContentBlock> {
    if image.bytes().len() > MAX_VISION_BYTES {
        return Err(Invalid::new(format!(
            "the image is {:.1} MB; the assistant looks at images up to 3.75 MB: save it as JPEG or make it smaller",
            image.bytes().len() as f64 / 1_000_000.0
        ))
        .into());
    }
    let format = match image.format() {
        image::ImageFormat::Jpeg => ImageFormat::Jpeg,
        image::ImageFormat::WebP => ImageFormat::Webp,
        _ => ImageFormat::Png,
    };
    let block = ImageBlock::builder()
        .format(format)
        .source(ImageSource::Bytes(Blob::new(image.bytes().to_vec())))
        .build()
        .map_err(|error| Error::operator("building an image block", error))?;
    Ok(ContentBlock::Image(block))
}

/// Text written by a user, as data between `<tag>` and `</tag>`: a JSON string (quotes,
/// backslashes and line breaks escaped) in which `<` and `>` are written `\u003c` and
/// `\u003e`, so no spelling of a closing tag (`</TAG>`, `< /tag >`, …) can appear inside it and
/// end the data early; the instructions tell the model the data is a JSON string.
pub fn as_data(tag: &str, text: &str) -> String {
    let encoded = Value::String(text.to_string()).to_string().replace('<', "\\u003c").replace('>', "\\u003e");
    format!("<{tag}>\n{encoded}\n</{tag}>")
}
