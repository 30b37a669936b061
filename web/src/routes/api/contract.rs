//! The rules the core checks, written into the OpenAPI document, so the document says exactly
//! what the server accepts: generated clients and fuzzers send what passes, and nothing the
//! document calls valid is refused.
//!
//! `utoipa` derives the document's shapes from the handlers and types; this fills in each
//! field's rule (lengths, patterns, ranges, which models this installation runs) from the
//! core's own definitions (`atelier_shared::request::contract`, built from the very
//! predicates the parsers use) and the installation's [`RequestContract`]. A field that the
//! core reads as text takes a blank value as "not given", and the rules say so.

use atelier_shared::chat::{ChatMode, MAX_MESSAGE_CHARACTERS};
use atelier_shared::gallery::OriginKind;
use atelier_shared::request::contract::{self as rules, RequestContract};
use atelier_shared::request::{EditMode, HexColor, ImageCount, OutpaintDirection};
use serde_json::{Map, Value, json};

/// The document for this installation: the handlers' document with every request rule in.
pub fn document(contract: &RequestContract) -> Value {
    let mut document = serde_json::to_value(super::document()).unwrap_or(Value::Null);
    let schemas = &mut document["components"]["schemas"];
    generate_body(&mut schemas["GenerateBody"], contract);
    check_body(&mut schemas["CheckBody"]);
    settings(&mut schemas["SettingsView"], contract);
    set_property(&mut schemas["RenameSessionBody"], "name", session_name());
    edit_form(&mut schemas["EditForm"], contract);
    describe_form(&mut schemas["DescribeForm"]);
    chat_body(&mut schemas["ChatBody"]);
    set_property(&mut schemas["TurnView"], "speaker", string_with(rules::word_pattern(&["user", "assistant"])));
    set_parameter(&mut document, "/api/images", "get", "cursor", optional_text(rules::image_id_pattern()));
    set_parameter(&mut document, "/api/images", "get", "session", optional_text(rules::session_name_pattern()));
    let sources: Vec<&str> = OriginKind::ALL.iter().map(|origin| origin.as_str()).collect();
    set_parameter(&mut document, "/api/images", "get", "source", optional_text(rules::word_pattern(&sources)));
    // Any page size is taken, and read as at most the largest page.
    set_parameter(
        &mut document,
        "/api/images",
        "get",
        "limit",
        json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
    );
    for method in ["patch", "delete"] {
        set_parameter(&mut document, "/api/sessions/{name}", method, "name", session_name());
    }
    events(&mut document);
    file_parts(&mut document, "/api/edit", "EditForm", &["image", "mask"]);
    file_parts(&mut document, "/api/describe", "DescribeForm", &["image"]);
    document
}

/// A query parameter's text: one of the rule's, or blank (not given).
fn optional_text(pattern: String) -> Value {
    json!({"anyOf": [blank(), string_with(pattern)]})
}

/// Replaces the schema of an operation's parameter.
fn set_parameter(document: &mut Value, path: &str, method: &str, name: &str, rule: Value) {
    if let Some(parameters) = document["paths"][path][method]["parameters"].as_array_mut() {
        for parameter in parameters.iter_mut().filter(|parameter| parameter["name"] == name) {
            parameter["schema"] = rule.clone();
        }
    }
}

/// Server-sent events, described one event at a time as OpenAPI 3.1 does (the event's name
/// and its data, a JSON text of the named schema).
fn events(document: &mut Value) {
    let event = |name: &str, schema: &str| {
        json!({
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": name},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": format!("#/components/schemas/{schema}")},
                },
            },
        })
    };
    document["paths"]["/api/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"] =
        event("job", "JobBody");
    document["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"] =
        json!({"oneOf": [event("text", "ChatTextEvent"), event("done", "ChatReply"), event("error", "ErrorBody")]});
}

fn chat_body(schema: &mut Value) {
    let modes: Vec<&str> = ChatMode::ALL.iter().map(|mode| mode.as_str()).collect();
    let mut aliases = modes.clone();
    aliases.extend(ChatMode::ALIASES.iter().map(|(alias, _)| *alias));
    set_property(schema, "mode", json!({"anyOf": [no_value(), string_with(rules::word_pattern(&aliases))]}));
    set_property(
        schema,
        "message",
        json!({"type": "string", "maxLength": MAX_MESSAGE_CHARACTERS, "pattern": rules::message_pattern()}),
    );
    set_property(schema, "image_id", json!({"anyOf": [no_value(), {"type": "string"}]}));
    schema["additionalProperties"] = json!(false);
}

fn string_with(pattern: String) -> Value {
    json!({"type": "string", "pattern": pattern})
}

fn blank() -> Value {
    json!({"type": "string", "pattern": rules::blank_pattern(), "description": "Empty: not given"})
}

fn no_value() -> Value {
    json!({"type": "null"})
}

/// One of the rules, or nothing given (absent, null or blank).
fn optional(rule: Value) -> Value {
    json!({"anyOf": [no_value(), blank(), rule]})
}

fn prompt() -> Value {
    json!({"type": "string", "maxLength": rules::PROMPT_MAX_LENGTH, "pattern": rules::prompt_pattern()})
}

fn session_name() -> Value {
    string_with(rules::session_name_pattern())
}

/// A whole number as JSON or as text: `low..=high`.
fn whole_number(low: u64, high: u64) -> Value {
    json!({"anyOf": [
        no_value(),
        blank(),
        {"type": "integer", "minimum": low, "maximum": high},
        string_with(rules::whole_number_text_pattern(low, high)),
    ]})
}

/// Keeps a property's description and example, replacing its rule.
fn set_property(schema: &mut Value, name: &str, rule: Value) {
    let property = &mut schema["properties"][name];
    let mut replaced = match rule {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for kept in ["description", "example", "format", "contentMediaType"] {
        if let Some(value) = property.get(kept) {
            replaced.insert(kept.into(), value.clone());
        }
    }
    *property = Value::Object(replaced);
}

fn models(names: &[String]) -> Value {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    json!({"type": "string", "pattern": rules::exact_name_pattern(&names)})
}

/// Names either rule or "none", for settings that can be cleared.
fn or_none(rule: Value) -> Value {
    json!({"anyOf": [rule, string_with(rules::word_pattern(&[atelier_shared::request::NONE_WORD]))]})
}

fn generate_body(schema: &mut Value, contract: &RequestContract) {
    let limits = contract.limits;
    set_property(schema, "prompt", prompt());
    set_property(schema, "negative_prompt", optional(prompt()));
    set_property(schema, "model", optional(models(&contract.generation_models)));
    set_property(schema, "aspect", optional(string_with(rules::aspect_pattern())));
    set_property(schema, "size", optional(string_with(rules::size_pattern(limits.largest_side))));
    set_property(schema, "seed", whole_number(0, u64::from(u32::MAX)));
    set_property(schema, "count", whole_number(1, u64::from(ImageCount::MAX)));
    set_property(schema, "style", optional(string_with(rules::style_pattern())));
    set_property(
        schema,
        "colors",
        json!({"anyOf": [
            no_value(),
            {"type": "array", "maxItems": HexColor::MAX_PALETTE, "items": string_with(rules::color_pattern())},
            string_with(rules::palette_pattern()),
        ]}),
    );
    let knob = |taken: bool| {
        if taken {
            json!({"anyOf": [no_value(), blank(), {"type": "number"}, {"type": "string"}]})
        } else {
            json!({"anyOf": [no_value(), blank()], "description": "No model of this installation takes it: leave it out"})
        }
    };
    set_property(schema, "cfg_scale", knob(limits.cfg_scale));
    set_property(schema, "steps", knob(limits.steps));
    set_property(schema, "session", optional(session_name()));
    // An aspect ratio and a size together say the shape twice.
    let given = json!({"type": "string", "pattern": rules::not_blank_pattern()});
    schema["not"] = json!({"required": ["aspect", "size"], "properties": {"aspect": given, "size": given}});
    schema["additionalProperties"] = json!(false);
}

fn check_body(schema: &mut Value) {
    set_property(schema, "prompt", prompt());
    schema["additionalProperties"] = json!(false);
}

fn settings(schema: &mut Value, contract: &RequestContract) {
    set_property(schema, "model", optional(or_none(models(&contract.generation_models))));
    set_property(schema, "aspect", optional(or_none(string_with(rules::aspect_pattern()))));
    set_property(schema, "style", optional(string_with(rules::style_pattern())));
    set_property(schema, "negative_prompt", optional(prompt()));
    schema["additionalProperties"] = json!(false);
}

/// An image id for the forms' examples.
const EXAMPLE_ID: &str = "01J9ZQ3V8X6K4M2N1P0R7S5T3W";

/// An uploaded image part: a file the server reads as PNG, JPEG or WebP.
fn file() -> Value {
    json!({"type": "string", "format": "binary"})
}

/// The image a form works on: an upload or a gallery image's id, exactly one of them (a blank
/// `image_id` is not given).
fn one_source() -> Value {
    let given = json!({"type": "string", "pattern": rules::not_blank_pattern()});
    json!({"oneOf": [
        {"required": ["image"], "properties": {"image_id": blank()}},
        {"required": ["image_id"], "properties": {"image_id": given}, "not": {"required": ["image"]}},
    ]})
}

/// Says which content types a form's file parts take, and gives the form schema's example for
/// the whole body.
fn file_parts(document: &mut Value, path: &str, form: &str, parts: &[&str]) {
    let example = document["components"]["schemas"][form]["examples"][0].clone();
    let content = &mut document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"];
    content["example"] = example;
    for part in parts {
        content["encoding"][*part] = json!({"contentType": "image/png, image/jpeg, image/webp"});
    }
}

fn describe_form(schema: &mut Value) {
    set_property(schema, "image", file());
    set_property(schema, "image_id", optional_text(rules::image_id_pattern()));
    schema["allOf"] = json!([one_source()]);
    schema["examples"] = json!([{"image_id": EXAMPLE_ID}]);
    schema["additionalProperties"] = json!(false);
}

fn edit_form(schema: &mut Value, contract: &RequestContract) {
    let (region_modes, other_modes): (Vec<EditMode>, Vec<EditMode>) =
        EditMode::ALL.into_iter().partition(|mode| mode.needs_region());
    let words = |modes: &[EditMode]| {
        let mut words: Vec<&str> = modes.iter().map(|mode| mode.as_str()).collect();
        words.extend(EditMode::ALIASES.iter().filter(|(_, mode)| modes.contains(mode)).map(|(alias, _)| *alias));
        rules::word_pattern(&words)
    };
    // The fields every edit takes, each with its rule.
    set_property(schema, "mode", string_with(words(&EditMode::ALL)));
    set_property(schema, "image", file());
    set_property(schema, "image_id", optional_text(rules::image_id_pattern()));
    set_property(schema, "mask", file());
    set_property(schema, "prompt", optional_text_rule(prompt()));
    set_property(schema, "negative_prompt", optional_text_rule(prompt()));
    set_property(schema, "mask_prompt", optional_text_rule(prompt()));
    set_property(schema, "model", optional_text_rule(models(&contract.edit_models)));
    set_property(schema, "seed", optional_text(rules::seed_pattern()));
    set_property(schema, "similarity", optional_text(rules::similarity_pattern()));
    let directions: Vec<&str> = OutpaintDirection::WORDS.iter().map(|(word, _)| *word).collect();
    set_property(schema, "direction", optional_text(rules::word_pattern(&directions)));
    set_property(schema, "session", optional_text_rule(session_name()));
    if let Some(mode) = schema["properties"]["mode"].as_object_mut() {
        mode.remove("example");
    }
    let every_field =
        json!({"type": "object", "properties": schema["properties"].clone(), "additionalProperties": false});

    // Then one plain variant per way a form can be right: the source (an upload, or a gallery
    // image's id), the mode (inpaint, replace and recolor need a prompt and a region; the others
    // take them freely) and the region (a mask image, or at most a mask prompt). The variants
    // exclude each other, so exactly one fits a right form; being plain objects, they read
    // (and generate) without a search through combinations.
    let variant = |modes: &[EditMode], upload: bool, mask: bool| {
        let mut variant = every_field.clone();
        let mut required = vec!["mode"];
        set_property(&mut variant, "mode", string_with(words(modes)));
        let (kept, dropped) = if upload { ("image", "image_id") } else { ("image_id", "image") };
        required.push(kept);
        if let Some(properties) = variant["properties"].as_object_mut() {
            properties.remove(dropped);
            if !mask {
                properties.remove("mask");
            }
        }
        if !upload {
            set_property(&mut variant, "image_id", string_with(rules::image_id_pattern()));
        }
        // A file part's type is the form's own (above); a variant says only whether it is there.
        for part in ["image", "mask"] {
            if let Some(file) = variant["properties"].get_mut(part) {
                *file = json!({});
            }
        }
        let needs_region = modes.iter().all(|mode| mode.needs_region());
        if mask {
            required.push("mask");
            set_property(&mut variant, "mask_prompt", blank());
        } else if needs_region {
            required.push("mask_prompt");
            set_property(&mut variant, "mask_prompt", prompt());
        }
        if needs_region {
            required.push("prompt");
            set_property(&mut variant, "prompt", prompt());
        }
        variant["required"] = json!(required);
        variant
    };
    let mut variants = Vec::new();
    for modes in [&region_modes, &other_modes] {
        for upload in [true, false] {
            for mask in [true, false] {
                variants.push(variant(modes, upload, mask));
            }
        }
    }
    // The fields stay listed on the form itself too (tools read a multipart form's parts there).
    schema["required"] = json!(["mode"]);
    schema["additionalProperties"] = json!(false);
    schema["oneOf"] = json!(variants);
    // A whole example, so that nobody (nor a fuzzer's examples) puts the fields' own examples
    // together into a form the rules refuse.
    schema["examples"] = json!([{"mode": "variation", "image_id": EXAMPLE_ID, "similarity": "0.7"}]);
}

/// A multipart text field: blank (not given) or the rule's.
fn optional_text_rule(rule: Value) -> Value {
    json!({"anyOf": [blank(), rule]})
}
