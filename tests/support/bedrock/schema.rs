//! A small JSON checker that words its complaints the way Bedrock's model validators do.
//!
//! Bedrock checks InvokeModel bodies against a JSON schema and answers a 400
//! `ValidationException` such as "Malformed input request: #: extraneous key [foo] is not
//! permitted, please reformat your input and try again." The detail after the JSON pointer
//! follows the wording of the everit JSON-schema validator that those messages come from
//! ("required key [x] not found", "expected maxLength: 512, actual: 600", "6 is not less or
//! equal to 5", "FOO is not a valid enum value", "expected type: String, found: Integer").

use std::io::Cursor;

use base64::Engine;
use image::ImageFormat;
use serde_json::{Map, Value};

/// A rejected request: the message of a 400 `ValidationException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

pub type Checked<T> = Result<T, Invalid>;

/// "Malformed input request: {pointer}: {detail}, please reformat your input and try again."
pub fn malformed(pointer: &str, detail: impl std::fmt::Display) -> Invalid {
    Invalid(format!("Malformed input request: {pointer}: {detail}, please reformat your input and try again."))
}

/// A rule that is not a schema rule, in plain words.
pub fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// The everit name of a JSON value's type.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(number) if number.is_f64() => "BigDecimal",
        Value::Number(_) => "Integer",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn wrong_type(pointer: &str, expected: &str, found: &Value) -> Invalid {
    malformed(pointer, format!("expected type: {expected}, found: {}", type_name(found)))
}

/// One JSON object at a JSON pointer (`#`, `#/imageGenerationConfig`, ...).
#[derive(Debug, Clone)]
pub struct Object<'a> {
    pub pointer: String,
    pub map: &'a Map<String, Value>,
}

impl<'a> Object<'a> {
    /// The request body itself, which must be a JSON object.
    pub fn root(value: &'a Value) -> Checked<Self> {
        Self::at(value, "#".to_string())
    }

    pub fn at(value: &'a Value, pointer: String) -> Checked<Self> {
        match value {
            Value::Object(map) => Ok(Self { pointer, map }),
            other => Err(wrong_type(&pointer, "JSONObject", other)),
        }
    }

    pub fn pointer_to(&self, key: &str) -> String {
        format!("{}/{key}", self.pointer)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Every key must be one of `allowed` ("extraneous key [k] is not permitted").
    pub fn only(&self, allowed: &[&str]) -> Checked<()> {
        match self.map.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(key) => Err(malformed(&self.pointer, format!("extraneous key [{key}] is not permitted"))),
            None => Ok(()),
        }
    }

    /// Rejects a key that the chosen mode does not take.
    pub fn forbid(&self, key: &str) -> Checked<()> {
        if self.has(key) {
            return Err(malformed(&self.pointer, format!("extraneous key [{key}] is not permitted")));
        }
        Ok(())
    }

    pub fn required(&self, key: &str) -> Checked<&'a Value> {
        self.map.get(key).ok_or_else(|| malformed(&self.pointer, format!("required key [{key}] not found")))
    }

    pub fn string(&self, key: &str, min: usize, max: usize) -> Checked<Option<&'a str>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        let pointer = self.pointer_to(key);
        let Value::String(text) = value else { return Err(wrong_type(&pointer, "String", value)) };
        let length = text.chars().count();
        if length < min {
            return Err(malformed(&pointer, format!("expected minLength: {min}, actual: {length}")));
        }
        if length > max {
            return Err(malformed(&pointer, format!("expected maxLength: {max}, actual: {length}")));
        }
        Ok(Some(text))
    }

    pub fn required_string(&self, key: &str, min: usize, max: usize) -> Checked<&'a str> {
        self.required(key)?;
        Ok(self.string(key, min, max)?.unwrap_or_default())
    }

    pub fn enumeration(&self, key: &str, allowed: &[&str]) -> Checked<Option<&'a str>> {
        let Some(text) = self.string(key, 0, usize::MAX)? else { return Ok(None) };
        if !allowed.contains(&text) {
            return Err(malformed(&self.pointer_to(key), format!("{text} is not a valid enum value")));
        }
        Ok(Some(text))
    }

    pub fn required_enumeration(&self, key: &str, allowed: &[&str]) -> Checked<&'a str> {
        self.required(key)?;
        Ok(self.enumeration(key, allowed)?.unwrap_or_default())
    }

    /// A whole number within `min..=max`; a fraction is a type error.
    pub fn integer(&self, key: &str, min: i128, max: i128) -> Checked<Option<i128>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        let pointer = self.pointer_to(key);
        let number = match value {
            Value::Number(number) if number.is_i64() => number.as_i64().map(i128::from),
            Value::Number(number) if number.is_u64() => number.as_u64().map(i128::from),
            _ => None,
        };
        let Some(number) = number else { return Err(wrong_type(&pointer, "Integer", value)) };
        if number < min {
            return Err(malformed(&pointer, format!("{number} is not greater or equal to {min}")));
        }
        if number > max {
            return Err(malformed(&pointer, format!("{number} is not less or equal to {max}")));
        }
        Ok(Some(number))
    }

    /// Any number within `min..=max`.
    pub fn number(&self, key: &str, min: f64, max: f64) -> Checked<Option<f64>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        let pointer = self.pointer_to(key);
        let Some(number) = value.as_f64() else { return Err(wrong_type(&pointer, "Number", value)) };
        if number < min {
            return Err(malformed(&pointer, format!("{number} is not greater or equal to {min}")));
        }
        if number > max {
            return Err(malformed(&pointer, format!("{number} is not less or equal to {max}")));
        }
        Ok(Some(number))
    }

    pub fn boolean(&self, key: &str) -> Checked<Option<bool>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        value.as_bool().map(Some).ok_or_else(|| wrong_type(&self.pointer_to(key), "Boolean", value))
    }

    pub fn array(&self, key: &str, min: usize, max: usize) -> Checked<Option<&'a Vec<Value>>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        let pointer = self.pointer_to(key);
        let Value::Array(items) = value else { return Err(wrong_type(&pointer, "JSONArray", value)) };
        if items.len() < min {
            return Err(malformed(&pointer, format!("expected minimum item count: {min}, found: {}", items.len())));
        }
        if items.len() > max {
            return Err(malformed(&pointer, format!("expected maximum item count: {max}, found: {}", items.len())));
        }
        Ok(Some(items))
    }

    pub fn required_array(&self, key: &str, min: usize, max: usize) -> Checked<&'a Vec<Value>> {
        let value = self.required(key)?;
        match self.array(key, min, max)? {
            Some(items) => Ok(items),
            None => Err(wrong_type(&self.pointer_to(key), "JSONArray", value)),
        }
    }

    pub fn object(&self, key: &str) -> Checked<Option<Object<'a>>> {
        let Some(value) = self.map.get(key) else { return Ok(None) };
        Object::at(value, self.pointer_to(key)).map(Some)
    }

    pub fn required_object(&self, key: &str) -> Checked<Object<'a>> {
        let value = self.required(key)?;
        Object::at(value, self.pointer_to(key))
    }

    /// A string that must be base64 of an image in one of `formats`.
    pub fn image(&self, key: &str, formats: &[ImageFormat]) -> Checked<Option<Picture>> {
        let Some(text) = self.string(key, 0, usize::MAX)? else { return Ok(None) };
        decode_image(text, &self.pointer_to(key), formats).map(Some)
    }

    pub fn required_image(&self, key: &str, formats: &[ImageFormat]) -> Checked<Picture> {
        self.required(key)?;
        match self.image(key, formats)? {
            Some(picture) => Ok(picture),
            None => Err(malformed(&self.pointer, format!("required key [{key}] not found"))),
        }
    }
}

/// What a decoded input image turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
    /// The decoded size of the file, in bytes.
    pub bytes: usize,
}

impl Picture {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

pub const PNG_OR_JPEG: &[ImageFormat] = &[ImageFormat::Png, ImageFormat::Jpeg];
pub const PNG_JPEG_OR_WEBP: &[ImageFormat] = &[ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP];

fn format_names(formats: &[ImageFormat]) -> String {
    formats.iter().map(|format| format!("{format:?}").to_uppercase()).collect::<Vec<_>>().join(", ")
}

/// Decodes base64 and the image inside it, for real: a truncated or fake PNG is rejected.
pub fn decode_image(text: &str, pointer: &str, formats: &[ImageFormat]) -> Checked<Picture> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
        return Err(malformed(pointer, "the value is not valid Base64"));
    };
    let format = image::guess_format(&bytes).ok().filter(|format| formats.contains(format));
    let Some(format) = format else {
        return Err(invalid(format!(
            "The image at {pointer} is not in a supported format. Supported formats: {}.",
            format_names(formats)
        )));
    };
    let mut reader = image::ImageReader::new(Cursor::new(&bytes));
    reader.set_format(format);
    match reader.decode() {
        Ok(decoded) => Ok(Picture { width: decoded.width(), height: decoded.height(), format, bytes: bytes.len() }),
        Err(_) => Err(invalid(format!("The image at {pointer} could not be decoded."))),
    }
}
