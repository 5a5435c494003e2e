//! The JSON form of a message: one object per message, as `gyges cat` prints it and
//! `gyges inject` and `gyges matcher --message` read it.
//!
//! ```text
//! {"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":1428773426113040228,
//!  "type":"TEST","logger":"GoSpec","severity":6,"payload":"…","env_version":"0.8",
//!  "pid":32157,"hostname":"h1","fields":[{"name":"foo","value_type":"string",
//!  "representation":"","value":["bar"]},{"name":"bytes","value_type":"bytes","value":["ZGF0YQ=="]}]}
//! ```
//! An absent header is an absent key. `value_type` is one of string, bytes, integer, double,
//! bool; bytes values are standard base64; a double JSON has no number for is the string
//! `"NaN"`, `"Infinity"` or `"-Infinity"`. Text that is not UTF-8 is printed lossily.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::proto::{Field, Message, ValueType};
use super::view::{
    format_uuid, parse_uuid, FieldRef, FieldValue, IntHeader, MessageView, StrHeader,
};

/// Why a JSON message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The text is not valid JSON.
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The JSON value is not an object.
    #[error("a message must be a JSON object")]
    NotObject,
    /// The object has a key the message form does not define (a field's key as `fields.<key>`).
    #[error("unknown key `{0}`")]
    UnknownKey(String),
    /// A key's value has the wrong type or form.
    #[error("key `{key}`: {problem}")]
    BadValue {
        /// The key, as in the JSON (`name`, `value`, … for a field's keys).
        key: String,
        /// What was expected, such as `expected a string`.
        problem: &'static str,
    },
}

fn bad(key: &str, problem: &'static str) -> JsonError {
    JsonError::BadValue {
        key: key.to_string(),
        problem,
    }
}

/// Appends one message as a JSON object (no trailing newline).
pub fn write_json(view: &MessageView<'_>, out: &mut Vec<u8>) {
    let mut object = Map::new();
    if let Some(uuid) = view.uuid().and_then(|uuid| <[u8; 16]>::try_from(uuid).ok()) {
        let text = format_uuid(&uuid);
        object.insert(
            "uuid".into(),
            Value::String(String::from_utf8_lossy(&text).into()),
        );
    }
    if let Some(timestamp) = view.timestamp() {
        object.insert("timestamp".into(), Value::from(timestamp));
    }
    let text = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
    let headers = [
        ("type", Some(StrHeader::Type), None),
        ("logger", Some(StrHeader::Logger), None),
        ("severity", None, Some(IntHeader::Severity)),
        ("payload", Some(StrHeader::Payload), None),
        ("env_version", Some(StrHeader::EnvVersion), None),
        ("pid", None, Some(IntHeader::Pid)),
        ("hostname", Some(StrHeader::Hostname), None),
    ];
    for (key, str_header, int_header) in headers {
        if let Some(value) = str_header.and_then(|header| view.str_header(header)) {
            object.insert(key.into(), text(value));
        }
        if let Some(value) = int_header.and_then(|header| view.int_header(header)) {
            object.insert(key.into(), Value::from(value));
        }
    }
    let mut fields = Vec::new();
    view.for_each_field(|field| fields.push(field_json(field)));
    if !fields.is_empty() {
        object.insert("fields".into(), Value::Array(fields));
    }
    // Writing a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(out, &Value::Object(object));
}

fn field_json(field: FieldRef<'_>) -> Value {
    let mut object = Map::new();
    let name = field.name().unwrap_or_default();
    object.insert(
        "name".into(),
        Value::String(String::from_utf8_lossy(name).into_owned()),
    );
    let value_type = ValueType::try_from(field.value_type() as i32).unwrap_or(ValueType::String);
    object.insert("value_type".into(), Value::String(value_type.name().into()));
    if let Some(representation) = field.representation() {
        let text = String::from_utf8_lossy(representation).into_owned();
        object.insert("representation".into(), Value::String(text));
    }
    let values = field
        .values()
        .map(|value| match value {
            FieldValue::String(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
            FieldValue::Bytes(bytes) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            FieldValue::Integer(number) => Value::from(number),
            FieldValue::Double(number) => double_to_json(number),
            FieldValue::Bool(flag) => Value::Bool(flag),
        })
        .collect();
    object.insert("value".into(), Value::Array(values));
    Value::Object(object)
}

/// A double as JSON: a number, or for the values JSON has no number for, the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (as protobuf's own JSON mapping writes them), so
/// that what `gyges cat` prints, `gyges inject` reads back.
fn double_to_json(number: f64) -> Value {
    match serde_json::Number::from_f64(number) {
        Some(number) => Value::Number(number),
        None if number.is_nan() => Value::String("NaN".into()),
        None if number > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// The inverse of [`double_to_json`].
fn double_from_json(item: &Value) -> Option<f64> {
    match item.as_str() {
        Some("NaN") => Some(f64::NAN),
        Some("Infinity") => Some(f64::INFINITY),
        Some("-Infinity") => Some(f64::NEG_INFINITY),
        Some(_) => None,
        None => item.as_f64(),
    }
}

/// Reads one JSON message. A missing `uuid` or `timestamp` is filled in (random, now),
/// since both are required by the schema.
///
/// # Errors
/// Invalid JSON, an unknown key, or a value of the wrong kind, naming the key.
pub fn read_json(text: &str) -> Result<Message, JsonError> {
    let value: Value = serde_json::from_str(text)?;
    from_value(&value)
}

/// Converts a parsed JSON object to a message; see [`read_json`].
///
/// # Errors
/// As [`read_json`].
pub fn from_value(value: &Value) -> Result<Message, JsonError> {
    let object = value.as_object().ok_or(JsonError::NotObject)?;
    let mut message = Message::default();
    let mut uuid = None;
    for (key, value) in object {
        let string = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(key, "expected a string"))
        };
        let int32 = || {
            value
                .as_i64()
                .and_then(|number| i32::try_from(number).ok())
                .ok_or_else(|| bad(key, "expected a 32-bit integer"))
        };
        match key.as_str() {
            "uuid" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| bad(key, "expected a string"))?;
                uuid = Some(
                    parse_uuid(text).ok_or_else(|| bad(key, "expected 36-character UUID text"))?,
                );
            }
            "timestamp" => {
                message.timestamp = value
                    .as_i64()
                    .ok_or_else(|| bad(key, "expected integer nanoseconds"))?;
            }
            "type" => message.r#type = Some(string()?),
            "logger" => message.logger = Some(string()?),
            "severity" => message.severity = Some(int32()?),
            "payload" => message.payload = Some(string()?),
            "env_version" => message.env_version = Some(string()?),
            "pid" => message.pid = Some(int32()?),
            "hostname" => message.hostname = Some(string()?),
            "fields" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| bad(key, "expected an array"))?;
                for item in items {
                    message.fields.push(field_from_value(item)?);
                }
            }
            _ => return Err(JsonError::UnknownKey(key.clone())),
        }
    }
    message.uuid = uuid
        .unwrap_or_else(|| super::UuidSource::new().next_uuid())
        .to_vec();
    if !object.contains_key("timestamp") {
        message.timestamp = super::now_ns();
    }
    Ok(message)
}

fn field_from_value(value: &Value) -> Result<Field, JsonError> {
    let object = value
        .as_object()
        .ok_or_else(|| bad("fields", "expected objects"))?;
    let mut field = Field::default();
    let values = match object.get("value") {
        Some(Value::Array(values)) => values.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    };
    let value_type = match object.get("value_type") {
        Some(name) => name
            .as_str()
            .and_then(ValueType::from_name)
            .ok_or_else(|| {
                bad(
                    "value_type",
                    "expected string, bytes, integer, double or bool",
                )
            })?,
        None => infer_value_type(values.first()),
    };
    for (key, item) in object {
        match key.as_str() {
            "name" => {
                field.name = item
                    .as_str()
                    .ok_or_else(|| bad("name", "expected a string"))?
                    .into();
            }
            "representation" => {
                let text = item
                    .as_str()
                    .ok_or_else(|| bad("representation", "expected a string"))?;
                field.representation = Some(text.into());
            }
            "value" | "value_type" => {}
            _ => return Err(JsonError::UnknownKey(format!("fields.{key}"))),
        }
    }
    field.value_type = Some(value_type as i32);
    for item in &values {
        push_value(&mut field, value_type, item)?;
    }
    Ok(field)
}

fn infer_value_type(first: Option<&Value>) -> ValueType {
    match first {
        Some(Value::Bool(_)) => ValueType::Bool,
        Some(Value::Number(number)) if number.is_i64() => ValueType::Integer,
        Some(Value::Number(_)) => ValueType::Double,
        _ => ValueType::String,
    }
}

fn push_value(field: &mut Field, value_type: ValueType, item: &Value) -> Result<(), JsonError> {
    match value_type {
        ValueType::String => field.value_string.push(
            item.as_str()
                .ok_or_else(|| bad("value", "expected strings"))?
                .into(),
        ),
        ValueType::Bytes => {
            let text = item
                .as_str()
                .ok_or_else(|| bad("value", "expected base64 strings"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad("value", "expected standard base64"))?;
            field.value_bytes.push(bytes);
        }
        ValueType::Integer => field.value_integer.push(
            item.as_i64()
                .ok_or_else(|| bad("value", "expected integers"))?,
        ),
        ValueType::Double => field
            .value_double
            .push(double_from_json(item).ok_or_else(|| {
                bad(
                    "value",
                    "expected numbers (or \"NaN\", \"Infinity\", \"-Infinity\")",
                )
            })?),
        ValueType::Bool => field.value_bool.push(
            item.as_bool()
                .ok_or_else(|| bad("value", "expected booleans"))?,
        ),
    }
    Ok(())
}
