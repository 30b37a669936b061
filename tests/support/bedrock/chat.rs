//! Converse, ConverseStream and ApplyGuardrail: request checks, replies and event-stream frames.
//!
//! Shapes come from the Bedrock Runtime service model (botocore's bedrock-runtime service-2.json,
//! the same Smithy model as the Rust SDK) and were checked against the deserializers of
//! aws-sdk-bedrockruntime 1.153.0 (`protocol_serde/shape_converse*.rs`, `shape_apply_guardrail.rs`,
//! `event_stream_serde.rs`). Constraint errors are worded the way AWS services word them
//! ("1 validation error detected: Value ... at 'path' failed to satisfy constraint: ..."), and
//! the conversation rules use Bedrock's own sentences.

use std::fmt::Display;
use std::time::Instant;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use aws_smithy_types::str_bytes::StrBytes;
use axum::body::Bytes;
use base64::Engine;
use image::ImageFormat;
use serde_json::{Map, Value, json};

use super::Shaping;
use super::images;
use super::schema::{Checked, Invalid, decode_image, invalid};

/// The id of the toolUse block the stand-in answers with.
pub const TOOL_USE_ID: &str = "tooluse_standin1";

fn constraint(path: &str, value: impl Display, detail: impl Display) -> Invalid {
    invalid(format!("1 validation error detected: Value {value} at '{path}' failed to satisfy constraint: {detail}"))
}

fn not_null(path: &str) -> Invalid {
    constraint(path, "null", "Member must not be null")
}

fn object_at<'a>(value: &'a Value, path: &str) -> Checked<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| constraint(path, format!("'{value}'"), "Member must be a structure"))
}

fn array_at<'a>(value: &'a Value, path: &str) -> Checked<&'a Vec<Value>> {
    value.as_array().ok_or_else(|| constraint(path, format!("'{value}'"), "Member must be a list"))
}

fn string_at<'a>(value: &'a Value, path: &str) -> Checked<&'a str> {
    value.as_str().ok_or_else(|| constraint(path, format!("'{value}'"), "Member must be a string"))
}

fn known_members(map: &Map<String, Value>, path: &str, known: &[&str]) -> Checked<()> {
    match map.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(invalid(format!("Unknown member '{key}' in '{path}'."))),
        None => Ok(()),
    }
}

fn enum_member<'a>(map: &'a Map<String, Value>, key: &str, path: &str, allowed: &[&str]) -> Checked<Option<&'a str>> {
    let Some(value) = map.get(key) else { return Ok(None) };
    let path = format!("{path}{key}");
    let text = string_at(value, &path)?;
    if !allowed.contains(&text) {
        return Err(constraint(
            &path,
            format!("'{text}'"),
            format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
        ));
    }
    Ok(Some(text))
}

/// A union (ContentBlock, SystemContentBlock, ToolChoice, ...): exactly one member set.
fn union_member<'a>(value: &'a Value, path: &str, allowed: &[&str]) -> Checked<(&'a str, &'a Value)> {
    let map = object_at(value, path)?;
    let mut members = map.iter();
    let (Some((name, member)), None) = (members.next(), members.next()) else {
        return Err(invalid(format!("The union at '{path}' must have exactly one member set.")));
    };
    if !allowed.contains(&name.as_str()) {
        return Err(invalid(format!("Unknown member '{name}' in '{path}'.")));
    }
    Ok((name, member))
}

fn number_in(map: &Map<String, Value>, key: &str, path: &str, min: f64, max: f64) -> Checked<()> {
    let Some(value) = map.get(key) else { return Ok(()) };
    let path = format!("{path}{key}");
    let number = value.as_f64().ok_or_else(|| constraint(&path, format!("'{value}'"), "Member must be a number"))?;
    if number < min {
        return Err(constraint(
            &path,
            format!("'{number}'"),
            format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if number > max {
        return Err(constraint(
            &path,
            format!("'{number}'"),
            format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// An image block's `{format, source: {bytes | s3Location}}`; bytes must be real base64 and,
/// for the formats the `image` crate reads here, an image of the declared format.
fn check_image_block(value: &Value, path: &str, formats: &[&str]) -> Checked<()> {
    let map = object_at(value, path)?;
    known_members(map, path, &["format", "source"])?;
    let format =
        enum_member(map, "format", &format!("{path}."), formats)?.ok_or_else(|| not_null(&format!("{path}.format")))?;
    let source_path = format!("{path}.source");
    let source = map.get("source").ok_or_else(|| not_null(&source_path))?;
    let (kind, member) = union_member(source, &source_path, &["bytes", "s3Location"])?;
    if kind == "bytes" {
        let bytes_path = format!("{source_path}.bytes");
        let text = string_at(member, &bytes_path)?;
        let expected = match format {
            "png" => Some(ImageFormat::Png),
            "jpeg" => Some(ImageFormat::Jpeg),
            "webp" => Some(ImageFormat::WebP),
            _ => None,
        };
        match expected {
            Some(expected) => {
                decode_image(text, &bytes_path, &[expected])?;
            }
            None => {
                if base64::engine::general_purpose::STANDARD.decode(text).is_err() {
                    return Err(invalid(format!("The value at '{bytes_path}' is not valid Base64.")));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Converse and ConverseStream requests

/// How the request lets the model use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    Auto,
    Any,
    Tool(String),
}

/// What a valid Converse request says, as far as the stand-in's answer needs it.
#[derive(Debug, Clone)]
pub struct Conversation {
    last_user_text: String,
    input_tokens: u64,
    /// Tool name and its input JSON schema, in order.
    tools: Vec<(String, Value)>,
    choice: Choice,
}

/// Converse does not serve image models: Bedrock refuses them.
pub fn check_model(model_id: &str) -> Checked<()> {
    if images::family(model_id).is_some() {
        return Err(invalid(
            "This action doesn't support the model that you provided. Try again with a supported text or chat model.",
        ));
    }
    Ok(())
}

/// Checks a Converse or ConverseStream body.
pub fn check_conversation(body: &Value) -> Checked<Conversation> {
    let root = object_at(body, "body")?;
    // The members of ConverseRequest / ConverseStreamRequest in the service model.
    known_members(
        root,
        "body",
        &[
            "messages",
            "system",
            "inferenceConfig",
            "toolConfig",
            "guardrailConfig",
            "additionalModelRequestFields",
            "promptVariables",
            "additionalModelResponseFieldPaths",
            "requestMetadata",
            "performanceConfig",
            "serviceTier",
            "outputConfig",
        ],
    )?;
    let mut input_words = 0;

    // messages: required, starting with a user message and alternating roles.
    let messages = array_at(root.get("messages").ok_or_else(|| not_null("messages"))?, "messages")?;
    if messages.is_empty() {
        return Err(invalid(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ));
    }
    let mut last_user_text = String::new();
    let mut uses_tools = false;
    let mut previous_role = None;
    for (index, message) in messages.iter().enumerate() {
        let path = format!("messages.{index}.member");
        let map = object_at(message, &path)?;
        known_members(map, &path, &["role", "content"])?;
        let role = enum_member(map, "role", &format!("{path}."), &["user", "assistant"])?
            .ok_or_else(|| not_null(&format!("{path}.role")))?;
        if index == 0 && role != "user" {
            return Err(invalid(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
        if previous_role == Some(role) {
            return Err(invalid(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            ));
        }
        previous_role = Some(role);
        let content = array_at(map.get("content").ok_or_else(|| not_null(&format!("{path}.content")))?, &path)?;
        if content.is_empty() {
            return Err(invalid(format!(
                "The content field in the Message object at messages.{index} is empty. Add a ContentBlock object to the content field and try again."
            )));
        }
        let mut texts = Vec::new();
        for (block_index, block) in content.iter().enumerate() {
            let block_path = format!("{path}.content.{block_index}.member");
            let (kind, member) = union_member(
                block,
                &block_path,
                &[
                    "text",
                    "image",
                    "document",
                    "video",
                    "audio",
                    "toolUse",
                    "toolResult",
                    "guardContent",
                    "cachePoint",
                    "reasoningContent",
                    "citationsContent",
                    "searchResult",
                ],
            )?;
            match kind {
                "text" => {
                    let text = string_at(member, &format!("{block_path}.text"))?;
                    if text.trim().is_empty() {
                        return Err(invalid(format!(
                            "The text field in the ContentBlock object at messages.{index}.content.{block_index} is blank. Add text to the text field, and try again."
                        )));
                    }
                    input_words += words(text);
                    texts.push(text);
                }
                "image" => check_image_block(member, &format!("{block_path}.image"), &["png", "jpeg", "gif", "webp"])?,
                "toolUse" => {
                    uses_tools = true;
                    let tool_path = format!("{block_path}.toolUse");
                    let map = object_at(member, &tool_path)?;
                    for key in ["toolUseId", "name", "input"] {
                        map.get(key).ok_or_else(|| not_null(&format!("{tool_path}.{key}")))?;
                    }
                }
                "toolResult" => {
                    uses_tools = true;
                    let tool_path = format!("{block_path}.toolResult");
                    let map = object_at(member, &tool_path)?;
                    map.get("toolUseId").ok_or_else(|| not_null(&format!("{tool_path}.toolUseId")))?;
                    let results = array_at(
                        map.get("content").ok_or_else(|| not_null(&format!("{tool_path}.content")))?,
                        &tool_path,
                    )?;
                    for (result_index, result) in results.iter().enumerate() {
                        let result_path = format!("{tool_path}.content.{result_index}.member");
                        let (kind, member) = union_member(
                            result,
                            &result_path,
                            &["json", "text", "image", "document", "video", "searchResult"],
                        )?;
                        if kind == "text" {
                            input_words += words(string_at(member, &format!("{result_path}.text"))?);
                        }
                    }
                    enum_member(map, "status", &format!("{tool_path}."), &["success", "error"])?;
                }
                _ => {
                    object_at(member, &format!("{block_path}.{kind}"))?;
                }
            }
        }
        if role == "user" {
            last_user_text = texts.last().map(|text| text.to_string()).unwrap_or_default();
        }
    }

    // system: a list of text / guardContent / cachePoint blocks.
    if let Some(system) = root.get("system") {
        for (index, block) in array_at(system, "system")?.iter().enumerate() {
            let path = format!("system.{index}.member");
            let (kind, member) = union_member(block, &path, &["text", "guardContent", "cachePoint"])?;
            if kind == "text" {
                let text = string_at(member, &format!("{path}.text"))?;
                if text.trim().is_empty() {
                    return Err(invalid(format!(
                        "The text field in the SystemContentBlock object at system.{index} is blank. Add text to the text field, and try again."
                    )));
                }
                input_words += words(text);
            }
        }
    }

    // inferenceConfig: maxTokens >= 1, temperature 0-1, topP 0-1, at most 2500 stopSequences.
    if let Some(config) = root.get("inferenceConfig") {
        let map = object_at(config, "inferenceConfig")?;
        known_members(map, "inferenceConfig", &["maxTokens", "temperature", "topP", "stopSequences"])?;
        if let Some(value) = map.get("maxTokens") {
            let tokens = value.as_i64().ok_or_else(|| {
                constraint("inferenceConfig.maxTokens", format!("'{value}'"), "Member must be an integer")
            })?;
            if tokens < 1 {
                return Err(constraint(
                    "inferenceConfig.maxTokens",
                    format!("'{tokens}'"),
                    "Member must have value greater than or equal to 1",
                ));
            }
        }
        number_in(map, "temperature", "inferenceConfig.", 0.0, 1.0)?;
        number_in(map, "topP", "inferenceConfig.", 0.0, 1.0)?;
        if let Some(stops) = map.get("stopSequences") {
            let stops = array_at(stops, "inferenceConfig.stopSequences")?;
            if stops.len() > 2500 {
                return Err(constraint(
                    "inferenceConfig.stopSequences",
                    "",
                    "Member must have length less than or equal to 2500",
                ));
            }
            for (index, stop) in stops.iter().enumerate() {
                let path = format!("inferenceConfig.stopSequences.{index}.member");
                if string_at(stop, &path)?.is_empty() {
                    return Err(constraint(&path, "''", "Member must have length greater than or equal to 1"));
                }
            }
        }
    }

    // toolConfig: tools [{toolSpec {name, description?, inputSchema {json}}} | {cachePoint}], toolChoice.
    let mut tools = Vec::new();
    let mut choice = Choice::Auto;
    match root.get("toolConfig") {
        None if uses_tools => {
            return Err(invalid(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
            ));
        }
        None => {}
        Some(config) => {
            let map = object_at(config, "toolConfig")?;
            known_members(map, "toolConfig", &["tools", "toolChoice"])?;
            let list = array_at(map.get("tools").ok_or_else(|| not_null("toolConfig.tools"))?, "toolConfig.tools")?;
            if list.is_empty() {
                return Err(constraint(
                    "toolConfig.tools",
                    "'[]'",
                    "Member must have length greater than or equal to 1",
                ));
            }
            for (index, tool) in list.iter().enumerate() {
                let path = format!("toolConfig.tools.{index}.member");
                let (kind, member) = union_member(tool, &path, &["toolSpec", "systemTool", "cachePoint"])?;
                if kind != "toolSpec" {
                    continue;
                }
                let spec_path = format!("{path}.toolSpec");
                let spec = object_at(member, &spec_path)?;
                known_members(spec, &spec_path, &["name", "description", "inputSchema", "strict"])?;
                let name_path = format!("{spec_path}.name");
                let name = string_at(spec.get("name").ok_or_else(|| not_null(&name_path))?, &name_path)?;
                let name_ok = (1..=64).contains(&name.chars().count())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !name_ok {
                    return Err(constraint(
                        &name_path,
                        format!("'{name}'"),
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ and have length between 1 and 64",
                    ));
                }
                if tools.iter().any(|(existing, _)| existing == name) {
                    return Err(invalid(format!("The toolConfig field contains the tool name {name} more than once.")));
                }
                if let Some(description) = spec.get("description")
                    && string_at(description, &format!("{spec_path}.description"))?.is_empty()
                {
                    return Err(constraint(
                        &format!("{spec_path}.description"),
                        "''",
                        "Member must have length greater than or equal to 1",
                    ));
                }
                let schema_path = format!("{spec_path}.inputSchema");
                let (_, schema) = union_member(
                    spec.get("inputSchema").ok_or_else(|| not_null(&schema_path))?,
                    &schema_path,
                    &["json"],
                )?;
                object_at(schema, &format!("{schema_path}.json"))?;
                tools.push((name.to_string(), schema.clone()));
            }
            if let Some(tool_choice) = map.get("toolChoice") {
                let (kind, member) = union_member(tool_choice, "toolConfig.toolChoice", &["auto", "any", "tool"])?;
                choice = match kind {
                    "auto" => Choice::Auto,
                    "any" => Choice::Any,
                    _ => {
                        let path = "toolConfig.toolChoice.tool";
                        let name =
                            string_at(object_at(member, path)?.get("name").ok_or_else(|| not_null(path))?, path)?;
                        if !tools.iter().any(|(existing, _)| existing == name) {
                            return Err(invalid(format!(
                                "The tool {name} named in toolChoice is not one of the tools in toolConfig.tools."
                            )));
                        }
                        Choice::Tool(name.to_string())
                    }
                };
            }
        }
    }

    if let Some(guardrail) = root.get("guardrailConfig") {
        let map = object_at(guardrail, "guardrailConfig")?;
        for key in ["guardrailIdentifier", "guardrailVersion"] {
            string_at(map.get(key).ok_or_else(|| not_null(&format!("guardrailConfig.{key}")))?, key)?;
        }
        enum_member(map, "trace", "guardrailConfig.", &["enabled", "disabled", "enabled_full"])?;
        enum_member(map, "streamProcessingMode", "guardrailConfig.", &["sync", "async"])?;
    }
    if let Some(performance) = root.get("performanceConfig") {
        enum_member(
            object_at(performance, "performanceConfig")?,
            "latency",
            "performanceConfig.",
            &["standard", "optimized"],
        )?;
    }

    Ok(Conversation { last_user_text, input_tokens: input_words.max(1), tools, choice })
}

// ---------------------------------------------------------------------------------------------
// Replies

/// The assistant's answer to one call.
#[derive(Debug, Clone)]
pub struct Reply {
    body: ReplyBody,
    stop_reason: String,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Debug, Clone)]
enum ReplyBody {
    Text(String),
    Tool { name: String, input: Value },
}

/// The reply: scripted text or tool use, else a forced tool choice, else "Stand-in reply to: ...".
///
/// When `toolChoice` names a tool (`{"tool":{"name":X}}`) or is `{"any":{}}` (the first tool)
/// and no `ToolUse` or `ChatReply` is scripted, the answer is a toolUse block for that tool whose
/// input is the simplest value valid against the tool's JSON schema (see [`simplest`]).
pub fn reply(conversation: &Conversation, shaping: &Shaping) -> Reply {
    let first_tool = conversation.tools.first().map(|(name, _)| name.clone());
    let forced = match &conversation.choice {
        Choice::Tool(name) => Some(name.clone()),
        Choice::Any => first_tool.clone(),
        Choice::Auto => None,
    };
    let (body, default_stop) = if let Some(input) = &shaping.tool_use {
        let name = forced.or(first_tool).unwrap_or_else(|| "tool".to_string());
        (ReplyBody::Tool { name, input: input.clone() }, "tool_use")
    } else if let (None, Some(name)) = (&shaping.reply, forced) {
        let schema = conversation.tools.iter().find(|(tool, _)| *tool == name).map(|(_, schema)| schema);
        let input = schema.map(|schema| simplest(schema, 0)).unwrap_or_else(|| json!({}));
        (ReplyBody::Tool { name, input }, "tool_use")
    } else {
        let text =
            shaping.reply.clone().unwrap_or_else(|| format!("Stand-in reply to: {}", conversation.last_user_text));
        (ReplyBody::Text(text), "end_turn")
    };
    let stop_reason = shaping.stop_reason.clone().unwrap_or_else(|| default_stop.to_string());
    let output_tokens = match &body {
        ReplyBody::Text(text) => words(text).max(1),
        ReplyBody::Tool { input, .. } => words(&input.to_string()).max(1),
    };
    Reply { body, stop_reason, input_tokens: conversation.input_tokens, output_tokens }
}

/// The simplest value valid against a JSON schema: `const` → it; `enum` → its first value;
/// `anyOf`/`oneOf`/`allOf` → the first alternative; string → "stand-in" (padded to `minLength`);
/// boolean → false; number/integer → `minimum` (or just above `exclusiveMinimum`), else 0;
/// array → [] (or `minItems` simplest items); object → every `required` property, recursively;
/// null → null.
pub fn simplest(schema: &Value, depth: usize) -> Value {
    let Some(map) = schema.as_object() else { return json!({}) };
    if depth > 32 {
        return Value::Null;
    }
    if let Some(constant) = map.get("const") {
        return constant.clone();
    }
    if let Some(first) = map.get("enum").and_then(Value::as_array).and_then(|values| values.first()) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = map.get(key).and_then(Value::as_array).and_then(|alternatives| alternatives.first()) {
            return simplest(first, depth + 1);
        }
    }
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => {
            kinds.iter().filter_map(Value::as_str).find(|kind| *kind != "null").unwrap_or("null")
        }
        _ if map.contains_key("items") => "array",
        _ => "object",
    };
    let bound = |key: &str| map.get(key).and_then(Value::as_f64);
    match kind {
        "string" => {
            let min = bound("minLength").unwrap_or(0.0) as usize;
            let mut text = "stand-in".to_string();
            while text.chars().count() < min {
                text.push('-');
            }
            if let Some(max) = bound("maxLength") {
                text = text.chars().take(max as usize).collect();
            }
            Value::String(text)
        }
        "boolean" => Value::Bool(false),
        "integer" => {
            let value = match (bound("minimum"), bound("exclusiveMinimum"), bound("maximum")) {
                (Some(minimum), _, _) => minimum.ceil() as i64,
                (None, Some(exclusive), _) => exclusive.floor() as i64 + 1,
                (None, None, Some(maximum)) if maximum < 0.0 => maximum.floor() as i64,
                _ => 0,
            };
            json!(value)
        }
        "number" => {
            let value = match (bound("minimum"), bound("exclusiveMinimum"), bound("maximum")) {
                (Some(minimum), _, _) => minimum,
                (None, Some(exclusive), _) => exclusive + 1.0,
                (None, None, Some(maximum)) if maximum < 0.0 => maximum,
                _ => 0.0,
            };
            if value.fract() == 0.0 { json!(value as i64) } else { json!(value) }
        }
        "array" => {
            let count = bound("minItems").unwrap_or(0.0) as usize;
            let item = map.get("items").map(|items| simplest(items, depth + 1)).unwrap_or_else(|| json!("stand-in"));
            Value::Array(vec![item; count])
        }
        "null" => Value::Null,
        _ => {
            let properties = map.get("properties").and_then(Value::as_object);
            let mut object = Map::new();
            for name in map.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                let property = properties.and_then(|properties| properties.get(name));
                object.insert(
                    name.to_string(),
                    property.map(|schema| simplest(schema, depth + 1)).unwrap_or(json!("stand-in")),
                );
            }
            Value::Object(object)
        }
    }
}

fn usage(reply: &Reply) -> Value {
    json!({
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens + reply.output_tokens,
    })
}

/// The Converse response body.
pub fn converse_output(reply: &Reply, latency_ms: u64) -> Value {
    let content = match &reply.body {
        ReplyBody::Text(text) => json!([{ "text": text }]),
        ReplyBody::Tool { name, input } => {
            json!([{ "toolUse": { "toolUseId": TOOL_USE_ID, "name": name, "input": input } }])
        }
    };
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": reply.stop_reason,
        "usage": usage(reply),
        "metrics": { "latencyMs": latency_ms },
    })
}

// ---------------------------------------------------------------------------------------------
// ConverseStream frames

/// One event-stream message of a ConverseStream answer.
#[derive(Debug, Clone)]
pub enum Frame {
    Event(&'static str, Value),
    /// The closing `metadata` event; its latency is measured when it is sent.
    Metadata(Value),
    Exception(&'static str, Value),
}

impl Frame {
    /// The text of a `contentBlockDelta` carrying text; None for every other frame.
    pub fn delta_text(&self) -> Option<String> {
        match self {
            Self::Event("contentBlockDelta", payload) => payload["delta"]["text"].as_str().map(String::from),
            _ => None,
        }
    }

    /// The frame in `application/vnd.amazon.eventstream` encoding (prelude, headers, payload, CRCs).
    pub fn encode(&self, started: Instant) -> Bytes {
        let (headers, payload) = match self {
            Self::Event(kind, payload) => (
                [(":event-type", *kind), (":content-type", "application/json"), (":message-type", "event")],
                payload.clone(),
            ),
            Self::Metadata(usage) => {
                let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                (
                    [(":event-type", "metadata"), (":content-type", "application/json"), (":message-type", "event")],
                    json!({ "usage": usage, "metrics": { "latencyMs": latency } }),
                )
            }
            Self::Exception(kind, payload) => (
                [(":exception-type", *kind), (":content-type", "application/json"), (":message-type", "exception")],
                payload.clone(),
            ),
        };
        let mut message = Message::new(Bytes::from(payload.to_string()));
        for (name, value) in headers {
            message = message.add_header(Header::new(name, HeaderValue::String(StrBytes::from(value.to_string()))));
        }
        let mut buffer = Vec::new();
        match write_message_to(&message, &mut buffer) {
            Ok(()) => Bytes::from(buffer),
            Err(_) => Bytes::new(),
        }
    }
}

/// How a ConverseStream answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// contentBlockStop, messageStop and metadata: the whole reply.
    Complete,
    /// `after` text deltas, then an exception event of this `:exception-type`
    /// (modelStreamErrorException, throttlingException, internalServerException,
    /// serviceUnavailableException or validationException, as the service model lists them).
    Exception { after: usize, exception: &'static str },
    /// `after` text deltas and nothing more: the caller then drops the connection or stalls.
    Cut { after: usize },
}

/// The payload Bedrock puts in an exception event: `message`, and for a model's own stream
/// error the status and message the model gave.
fn exception_payload(exception: &str) -> Value {
    match exception {
        "modelStreamErrorException" => json!({
            "message": "The model stopped while streaming its answer.",
            "originalStatusCode": 500,
            "originalMessage": "Stand-in model failure",
        }),
        "throttlingException" => json!({ "message": "Too many requests, please wait before trying again." }),
        "serviceUnavailableException" => json!({ "message": "Bedrock is unable to process your request." }),
        "internalServerException" => {
            json!({ "message": "The server encountered an internal error while processing the request." })
        }
        _ => json!({ "message": "The stand-in failed the stream." }),
    }
}

/// messageStart, then the reply in several deltas (one per word), contentBlockStop, messageStop
/// and metadata; or, when the answer breaks off, the first deltas and then the `ending`.
pub fn stream_frames(reply: &Reply, ending: Ending) -> Vec<Frame> {
    let mut frames = vec![Frame::Event("messageStart", json!({ "role": "assistant" }))];
    let delta = |delta: Value| Frame::Event("contentBlockDelta", json!({ "contentBlockIndex": 0, "delta": delta }));
    match &reply.body {
        ReplyBody::Text(text) => {
            let mut pieces: Vec<String> = text.split_inclusive(char::is_whitespace).map(str::to_string).collect();
            match ending {
                Ending::Exception { after, exception } => {
                    pieces.resize(after, String::new());
                    frames.extend(pieces.into_iter().map(|piece| delta(json!({ "text": piece }))));
                    frames.push(Frame::Exception(exception, exception_payload(exception)));
                    return frames;
                }
                Ending::Cut { after } => {
                    pieces.resize(after, String::new());
                    frames.extend(pieces.into_iter().map(|piece| delta(json!({ "text": piece }))));
                    return frames;
                }
                Ending::Complete => {}
            }
            if pieces.is_empty() {
                pieces.push(String::new());
            }
            frames.extend(pieces.into_iter().map(|piece| delta(json!({ "text": piece }))));
        }
        ReplyBody::Tool { name, input } => {
            frames.push(Frame::Event(
                "contentBlockStart",
                json!({ "contentBlockIndex": 0, "start": { "toolUse": { "toolUseId": TOOL_USE_ID, "name": name } } }),
            ));
            frames.push(delta(json!({ "toolUse": { "input": input.to_string() } })));
        }
    }
    frames.push(Frame::Event("contentBlockStop", json!({ "contentBlockIndex": 0 })));
    frames.push(Frame::Event("messageStop", json!({ "stopReason": reply.stop_reason })));
    frames.push(Frame::Metadata(usage(reply)));
    frames
}

// ---------------------------------------------------------------------------------------------
// ApplyGuardrail

/// What a valid ApplyGuardrail request holds.
#[derive(Debug, Clone)]
pub struct GuardrailCheck {
    characters: u64,
    images: u64,
}

/// Checks the path parameters and `{source, content, outputScope?}`.
pub fn check_guardrail(identifier: &str, version: &str, body: &Value) -> Checked<GuardrailCheck> {
    if identifier.is_empty() || identifier.chars().count() > 2048 {
        return Err(constraint(
            "guardrailIdentifier",
            format!("'{identifier}'"),
            "Member must have length between 1 and 2048",
        ));
    }
    // The service model's pattern for guardrailVersion: (([1-9][0-9]{0,7})|(DRAFT)).
    let numbered =
        (1..=8).contains(&version.len()) && version.chars().all(|c| c.is_ascii_digit()) && !version.starts_with('0');
    if version != "DRAFT" && !numbered {
        return Err(constraint(
            "guardrailVersion",
            format!("'{version}'"),
            "Member must satisfy regular expression pattern: (([1-9][0-9]{0,7})|(DRAFT))",
        ));
    }
    let root = object_at(body, "body")?;
    known_members(root, "body", &["source", "content", "outputScope"])?;
    enum_member(root, "source", "", &["INPUT", "OUTPUT"])?.ok_or_else(|| not_null("source"))?;
    enum_member(root, "outputScope", "", &["INTERVENTIONS", "FULL"])?;
    let content = array_at(root.get("content").ok_or_else(|| not_null("content"))?, "content")?;
    if content.is_empty() {
        return Err(constraint("content", "'[]'", "Member must have length greater than or equal to 1"));
    }
    let mut check = GuardrailCheck { characters: 0, images: 0 };
    for (index, block) in content.iter().enumerate() {
        let path = format!("content.{index}.member");
        let (kind, member) = union_member(block, &path, &["text", "image"])?;
        if kind == "text" {
            let text_path = format!("{path}.text");
            let map = object_at(member, &text_path)?;
            known_members(map, &text_path, &["text", "qualifiers"])?;
            let text = string_at(map.get("text").ok_or_else(|| not_null(&format!("{text_path}.text")))?, &text_path)?;
            check.characters += text.chars().count() as u64;
            if let Some(qualifiers) = map.get("qualifiers") {
                for (qualifier_index, qualifier) in array_at(qualifiers, &text_path)?.iter().enumerate() {
                    let qualifier_path = format!("{text_path}.qualifiers.{qualifier_index}.member");
                    let value = string_at(qualifier, &qualifier_path)?;
                    if !["grounding_source", "query", "guard_content"].contains(&value) {
                        return Err(constraint(
                            &qualifier_path,
                            format!("'{value}'"),
                            "Member must satisfy enum value set: [grounding_source, query, guard_content]",
                        ));
                    }
                }
            }
        } else {
            check_image_block(member, &format!("{path}.image"), &["png", "jpeg"])?;
            check.images += 1;
        }
    }
    Ok(check)
}

/// The ApplyGuardrail response: NONE, or GUARDRAIL_INTERVENED with a blocked content filter.
pub fn guardrail_output(check: &GuardrailCheck, intervene: bool) -> Value {
    let text_units = check.characters.div_ceil(1000);
    let usage = json!({
        "topicPolicyUnits": text_units,
        "contentPolicyUnits": text_units,
        "wordPolicyUnits": text_units,
        "sensitiveInformationPolicyUnits": text_units,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
        "contentPolicyImageUnits": check.images,
    });
    let coverage = json!({
        "textCharacters": { "guarded": check.characters, "total": check.characters },
        "images": { "guarded": check.images, "total": check.images },
    });
    if !intervene {
        return json!({ "usage": usage, "action": "NONE", "outputs": [], "assessments": [], "guardrailCoverage": coverage });
    }
    json!({
        "usage": usage,
        "action": "GUARDRAIL_INTERVENED",
        "actionReason": "Guardrail blocked.",
        "outputs": [{ "text": "Sorry, the model cannot answer this question." }],
        "assessments": [{
            "contentPolicy": {
                "filters": [{
                    "type": "VIOLENCE",
                    "confidence": "HIGH",
                    "filterStrength": "HIGH",
                    "action": "BLOCKED",
                    "detected": true,
                }],
            },
        }],
        "guardrailCoverage": coverage,
    })
}
