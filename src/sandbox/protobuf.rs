//! Lua message tables ↔ Heka protobuf: `inject_message`, `encode_message`, `decode_message`
//! and `write_message` all meet here.
//!
//! The message table (Heka's "hash based" and "array based" forms):
//! ```text
//! { Uuid = <16 raw bytes or 36-char text>, Timestamp = <ns>, Type = "", Logger = "",
//!   Severity = 6, Payload = "", EnvVersion = "", Pid = 1, Hostname = "",
//!   Fields = { name = value,                       -- hash form
//!              name = {v1, v2},                    -- repeated values
//!              name = {value = v|{...}, value_type = 2, representation = "ms"} }
//!   Fields = { {name = "n", value = v, value_type = 2, representation = "ms"} } }  -- array form
//! ```
//! Lua numbers are written as DOUBLE unless `value_type = 2` (INTEGER), strings as STRING
//! unless `value_type = 1` (BYTES), booleans as BOOL. Integer, double and bool arrays are
//! written packed. A missing Uuid or Timestamp is generated; [`Stamp`] applies what the host
//! forces (a filter's Logger, Hostname and `heka.sandbox.` Type prefix) or defaults
//! (a decoder copies unset headers from the record it is decoding).
//!
//! `decode_message` returns the array form with every `value` an array, as Heka does.

use std::borrow::Cow;

use mlua::{Lua, Table, Value};

use crate::message::view::{format_uuid, parse_uuid};
use crate::message::{wire, FieldValue, IntHeader, ProtoView, StrHeader, UuidSource};

/// Heka's value type numbers.
///
/// Heka's value type number for strings, the default.
pub const VALUE_TYPE_STRING: i64 = 0;
/// Heka's value type number for bytes.
pub const VALUE_TYPE_BYTES: i64 = 1;
/// Heka's value type number for 64-bit integers.
pub const VALUE_TYPE_INTEGER: i64 = 2;
/// Heka's value type number for doubles.
pub const VALUE_TYPE_DOUBLE: i64 = 3;
/// Heka's value type number for booleans.
pub const VALUE_TYPE_BOOL: i64 = 4;

/// Values one field may carry when built from a table.
pub const FIELD_VALUES_MAX: usize = 65_536;
/// Fields one message may carry when built from a table.
pub const FIELDS_MAX: usize = 65_536;

/// What the host forces or defaults on a message built from a table or protobuf string.
#[derive(Default)]
pub struct Stamp<'a> {
    /// Logger, whatever the script set.
    pub logger: Option<&'a [u8]>,
    /// Hostname, whatever the script set.
    pub hostname: Option<&'a [u8]>,
    /// Prepended to the script's Type.
    pub type_prefix: Option<&'a [u8]>,
    /// Timestamp, Type, Logger, Hostname, Severity and Pid for headers the script left unset.
    pub defaults: Option<&'a ProtoView<'a>>,
    /// A decoder's `tz`: a Timestamp the script set is a wall-clock reading in this zone.
    pub zone: Option<&'a crate::zone::Zone>,
}

/// Why a message could not be built.
fn encode_error(problem: &str) -> mlua::Error {
    mlua::Error::runtime(format!("could not encode protobuf - {problem}"))
}

/// A header value from the table, as bytes (numbers are formatted as Lua prints them). A
/// string is borrowed, not cloned: a clone would take another slot in mlua's reference table.
fn text_of<'v>(value: &'v Value, key: &str) -> mlua::Result<Option<Text<'v>>> {
    Ok(match value {
        Value::Nil => None,
        Value::String(text) => Some(Text::Bytes(text)),
        Value::Integer(number) => Some(Text::Owned(number.to_string())),
        Value::Number(number) => Some(Text::Owned(number.to_string())),
        _ => return Err(encode_error(&format!("{key} must be a string"))),
    })
}

enum Text<'v> {
    Bytes(&'v mlua::LuaString),
    Owned(String),
}

impl Text<'_> {
    fn with<R>(text: &Option<Text<'_>>, visit: impl FnOnce(Option<&[u8]>) -> R) -> R {
        match text {
            None => visit(None),
            Some(Text::Bytes(text)) => visit(Some(&text.as_bytes())),
            Some(Text::Owned(text)) => visit(Some(text.as_bytes())),
        }
    }
}

fn number_of(value: &Value, key: &str) -> mlua::Result<Option<i64>> {
    Ok(match value {
        Value::Nil => None,
        Value::Integer(number) => Some(*number),
        Value::Number(number) if number.is_finite() => Some(*number as i64),
        Value::String(text) => {
            let parsed = std::str::from_utf8(&text.as_bytes())
                .ok()
                .and_then(|t| t.parse().ok());
            Some(parsed.ok_or_else(|| encode_error(&format!("{key} must be a number")))?)
        }
        _ => return Err(encode_error(&format!("{key} must be a number"))),
    })
}

/// The top-level entries of a message table, read in one pass (message tables hold a few
/// keys, so one `next` walk beats a lookup per possible header).
#[derive(Default)]
struct Entries {
    uuid: Value,
    timestamp: Value,
    type_: Value,
    logger: Value,
    severity: Value,
    payload: Value,
    env_version: Value,
    pid: Value,
    hostname: Value,
    fields: Value,
}

impl Entries {
    fn read(table: &Table) -> mlua::Result<Entries> {
        let mut entries = Entries::default();
        table.for_each::<Value, Value>(|key, value| {
            let Value::String(key) = key else {
                return Ok(());
            };
            let slot = match &*key.as_bytes() {
                b"Uuid" => &mut entries.uuid,
                b"Timestamp" => &mut entries.timestamp,
                b"Type" => &mut entries.type_,
                b"Logger" => &mut entries.logger,
                b"Severity" => &mut entries.severity,
                b"Payload" => &mut entries.payload,
                b"EnvVersion" => &mut entries.env_version,
                b"Pid" => &mut entries.pid,
                b"Hostname" => &mut entries.hostname,
                b"Fields" => &mut entries.fields,
                _ => return Ok(()),
            };
            *slot = value;
            Ok(())
        })?;
        Ok(entries)
    }
}

/// Appends the protobuf encoding of a message table to `out`.
///
/// # Errors
/// A Lua error naming what could not be encoded.
pub fn encode_table(
    table: &Table,
    stamp: &Stamp<'_>,
    uuids: &mut UuidSource,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> mlua::Result<()> {
    let entries = Entries::read(table)?;
    let uuid = match &entries.uuid {
        Value::String(text) if text.as_bytes().len() == 16 => {
            let mut uuid = [0u8; 16];
            uuid.copy_from_slice(&text.as_bytes());
            uuid
        }
        Value::String(text) => std::str::from_utf8(&text.as_bytes())
            .ok()
            .and_then(parse_uuid)
            .unwrap_or_else(|| uuids.next_uuid()),
        _ => uuids.next_uuid(),
    };
    wire::put_bytes(out, 1, &uuid);
    let defaults = stamp.defaults;
    let timestamp = match number_of(&entries.timestamp, "Timestamp")? {
        Some(timestamp) => match stamp.zone {
            Some(zone) => zone.wall_to_utc_ns(timestamp),
            None => timestamp,
        },
        None => defaults
            .and_then(|view| view.timestamp())
            .unwrap_or_else(crate::message::now_ns),
    };
    wire::put_int(out, 2, timestamp);
    let default_str = |header: StrHeader| defaults.and_then(|view| view.str_header(header));
    Text::with(&text_of(&entries.type_, "Type")?, |value| {
        let value = value.or_else(|| default_str(StrHeader::Type));
        put_prefixed(out, 3, stamp.type_prefix, value);
    });
    match stamp.logger {
        Some(logger) => wire::put_bytes(out, 4, logger),
        None => Text::with(&text_of(&entries.logger, "Logger")?, |value| {
            if let Some(value) = value.or_else(|| default_str(StrHeader::Logger)) {
                wire::put_bytes(out, 4, value);
            }
        }),
    }
    let default_int = |header: IntHeader| defaults.and_then(|view| view.int_header(header));
    let severity = number_of(&entries.severity, "Severity")?;
    if let Some(severity) = severity.or_else(|| default_int(IntHeader::Severity)) {
        wire::put_int(out, 5, i64::from(severity as i32));
    }
    Text::with(&text_of(&entries.payload, "Payload")?, |value| {
        if let Some(value) = value {
            wire::put_bytes(out, 6, value);
        }
    });
    Text::with(&text_of(&entries.env_version, "EnvVersion")?, |value| {
        if let Some(value) = value {
            wire::put_bytes(out, 7, value);
        }
    });
    if let Some(pid) = number_of(&entries.pid, "Pid")?.or_else(|| default_int(IntHeader::Pid)) {
        wire::put_int(out, 8, i64::from(pid as i32));
    }
    match stamp.hostname {
        Some(hostname) => wire::put_bytes(out, 9, hostname),
        None => Text::with(&text_of(&entries.hostname, "Hostname")?, |value| {
            if let Some(value) = value.or_else(|| default_str(StrHeader::Hostname)) {
                wire::put_bytes(out, 9, value);
            }
        }),
    }
    match entries.fields {
        Value::Nil => Ok(()),
        Value::Table(fields) => encode_fields(&fields, out, scratch),
        _ => Err(encode_error("Fields must be a table")),
    }
}

fn put_prefixed(out: &mut Vec<u8>, tag: u32, prefix: Option<&[u8]>, value: Option<&[u8]>) {
    match (prefix, value) {
        (None, None) => {}
        (None, Some(value)) => wire::put_bytes(out, tag, value),
        (Some(prefix), value) => {
            let value = value.unwrap_or_default();
            wire::put_key(out, tag, wire::WIRE_LEN);
            wire::put_varint(out, (prefix.len() + value.len()) as u64);
            out.extend_from_slice(prefix);
            out.extend_from_slice(value);
        }
    }
}

fn encode_fields(fields: &Table, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> mlua::Result<()> {
    if let Value::Table(_) = fields.raw_get::<Value>(1)? {
        // Array form: {{name = ..., value = ...}, ...}
        let count = fields.raw_len();
        if count > FIELDS_MAX {
            return Err(encode_error("too many fields"));
        }
        for index in 1..=count {
            let Value::Table(entry) = fields.raw_get::<Value>(index)? else {
                return Err(encode_error("array form Fields entries must be tables"));
            };
            let Value::String(name) = entry.raw_get::<Value>("name")? else {
                return Err(encode_error("array form Fields entries need a string name"));
            };
            encode_field(
                &name.as_bytes(),
                &Value::Table(entry.clone()),
                true,
                out,
                scratch,
            )?;
        }
        return Ok(());
    }
    let mut count = 0usize;
    fields.for_each::<Value, Value>(|key, value| {
        count += 1;
        if count > FIELDS_MAX {
            return Err(encode_error("too many fields"));
        }
        let Value::String(name) = key else {
            return Err(encode_error("field names must be strings"));
        };
        encode_field(&name.as_bytes(), &value, false, out, scratch)
    })
}

/// Encodes one field from its table value. `object` says the value is an array-form entry
/// (which always carries `value`).
fn encode_field(
    name: &[u8],
    value: &Value,
    object: bool,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> mlua::Result<()> {
    let (values, value_type, representation) = match value {
        Value::Table(table) if object || !table.raw_get::<Value>("value")?.is_nil() => {
            let value_type = match table.raw_get::<Value>("value_type")? {
                Value::Nil => None,
                Value::Integer(number) => Some(number),
                Value::Number(number) => Some(number as i64),
                _ => return Err(encode_error("value_type must be a number")),
            };
            let representation = match table.raw_get::<Value>("representation")? {
                Value::Nil => None,
                Value::String(text) => Some(text),
                _ => return Err(encode_error("representation must be a string")),
            };
            (
                Cow::Owned(table.raw_get::<Value>("value")?),
                value_type,
                representation,
            )
        }
        other => (Cow::Borrowed(other), None, None),
    };
    scratch.clear();
    wire::put_bytes(scratch, 1, name);
    let write_values = |value_type: i64, scratch: &mut Vec<u8>| match &*values {
        Value::Table(array) => {
            let count = array.raw_len();
            if count > FIELD_VALUES_MAX {
                return Err(encode_error("too many values in a field"));
            }
            let mut items = Vec::with_capacity(count);
            for index in 1..=count {
                items.push(array.raw_get::<Value>(index)?);
            }
            put_values(scratch, value_type, &items)
        }
        single => put_values(scratch, value_type, std::slice::from_ref(single)),
    };
    let value_type = match value_type {
        Some(value_type) => value_type,
        None => infer_value_type(&values)?,
    };
    if !(VALUE_TYPE_STRING..=VALUE_TYPE_BOOL).contains(&value_type) {
        return Err(encode_error("value_type must be 0..=4"));
    }
    if value_type != VALUE_TYPE_STRING {
        wire::put_int(scratch, 2, value_type);
    }
    if let Some(representation) = &representation {
        wire::put_bytes(scratch, 3, &representation.as_bytes());
    }
    write_values(value_type, scratch)?;
    wire::put_bytes(out, 10, scratch);
    Ok(())
}

fn infer_value_type(values: &Value) -> mlua::Result<i64> {
    let element;
    let first = match values {
        Value::Table(array) => {
            element = array.raw_get::<Value>(1)?;
            &element
        }
        // Borrowed: a clone would take another slot in mlua's reference table.
        other => other,
    };
    Ok(match first {
        Value::String(_) | Value::Nil => VALUE_TYPE_STRING,
        Value::Integer(_) | Value::Number(_) => VALUE_TYPE_DOUBLE,
        Value::Boolean(_) => VALUE_TYPE_BOOL,
        _ => return Err(encode_error("unsupported field value type")),
    })
}

fn put_values(field: &mut Vec<u8>, value_type: i64, items: &[Value]) -> mlua::Result<()> {
    let mismatch = || encode_error("field values do not match the value_type");
    match value_type {
        VALUE_TYPE_STRING | VALUE_TYPE_BYTES => {
            let tag = if value_type == VALUE_TYPE_STRING {
                4
            } else {
                5
            };
            for item in items {
                match item {
                    Value::String(text) => wire::put_bytes(field, tag, &text.as_bytes()),
                    Value::Integer(number) => {
                        wire::put_bytes(field, tag, number.to_string().as_bytes())
                    }
                    Value::Number(number) => {
                        wire::put_bytes(field, tag, number.to_string().as_bytes())
                    }
                    Value::Nil => {}
                    _ => return Err(mismatch()),
                }
            }
        }
        VALUE_TYPE_INTEGER | VALUE_TYPE_BOOL => {
            // Two passes (length, then values) so the packed run needs no buffer.
            let varint = |item: &Value| -> mlua::Result<Option<u64>> {
                Ok(match (value_type, item) {
                    (VALUE_TYPE_INTEGER, Value::Integer(number)) => Some(*number as u64),
                    (VALUE_TYPE_INTEGER, Value::Number(number)) => Some(*number as i64 as u64),
                    (VALUE_TYPE_BOOL, Value::Boolean(flag)) => Some(u64::from(*flag)),
                    (_, Value::Nil) => None,
                    _ => return Err(mismatch()),
                })
            };
            let mut length = 0usize;
            for item in items {
                if let Some(number) = varint(item)? {
                    length += wire::varint_len(number);
                }
            }
            if length > 0 {
                let tag = if value_type == VALUE_TYPE_INTEGER {
                    6
                } else {
                    8
                };
                wire::put_key(field, tag, wire::WIRE_LEN);
                wire::put_varint(field, length as u64);
                for item in items {
                    if let Some(number) = varint(item)? {
                        wire::put_varint(field, number);
                    }
                }
            }
        }
        _ => {
            let double = |item: &Value| -> mlua::Result<Option<f64>> {
                Ok(match item {
                    Value::Integer(number) => Some(*number as f64),
                    Value::Number(number) => Some(*number),
                    Value::Nil => None,
                    _ => return Err(mismatch()),
                })
            };
            let mut count = 0usize;
            for item in items {
                count += usize::from(double(item)?.is_some());
            }
            if count > 0 {
                wire::put_key(field, 7, wire::WIRE_LEN);
                wire::put_varint(field, (count * 8) as u64);
                for item in items {
                    if let Some(number) = double(item)? {
                        field.extend_from_slice(&number.to_le_bytes());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Appends a STRING field (Heka's `payload_type`/`payload_name`, `plugin`).
pub fn put_string_field(
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
    name: &[u8],
    value: &[u8],
    representation: &[u8],
) {
    scratch.clear();
    wire::put_bytes(scratch, 1, name);
    if !representation.is_empty() {
        wire::put_bytes(scratch, 3, representation);
    }
    wire::put_bytes(scratch, 4, value);
    wire::put_bytes(out, 10, scratch);
}

/// Appends an INTEGER field with one value.
pub fn put_integer_field(
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
    name: &[u8],
    value: i64,
    representation: &str,
) {
    scratch.clear();
    wire::put_bytes(scratch, 1, name);
    wire::put_int(scratch, 2, VALUE_TYPE_INTEGER);
    if !representation.is_empty() {
        wire::put_bytes(scratch, 3, representation.as_bytes());
    }
    wire::put_key(scratch, 6, wire::WIRE_LEN);
    wire::put_varint(scratch, wire::varint_len(value as u64) as u64);
    wire::put_varint(scratch, value as u64);
    wire::put_bytes(out, 10, scratch);
}

/// Re-encodes a protobuf message under `stamp` (a filter's forced headers); its fields are
/// copied as they are. The message must be valid.
pub fn restamp(view: &ProtoView<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    let headers = Headers::from_view(view);
    let type_ = headers.type_;
    let logger = stamp.logger.or(headers.logger);
    let hostname = stamp.hostname.or(headers.hostname);
    let headers = Headers {
        logger,
        hostname,
        type_: None,
        ..headers
    };
    headers.write(out, |out| put_prefixed(out, 3, stamp.type_prefix, type_));
    for field in view.fields() {
        wire::put_bytes(out, 10, field.bytes());
    }
}

/// A message's headers, borrowed.
#[derive(Clone, Copy, Default)]
struct Headers<'a> {
    uuid: Option<&'a [u8]>,
    timestamp: Option<i64>,
    type_: Option<&'a [u8]>,
    logger: Option<&'a [u8]>,
    severity: Option<i64>,
    payload: Option<&'a [u8]>,
    env_version: Option<&'a [u8]>,
    pid: Option<i64>,
    hostname: Option<&'a [u8]>,
}

impl<'a> Headers<'a> {
    fn from_view(view: &ProtoView<'a>) -> Headers<'a> {
        Headers {
            uuid: view.uuid(),
            timestamp: view.timestamp(),
            type_: view.str_header(StrHeader::Type),
            logger: view.str_header(StrHeader::Logger),
            severity: view.int_header(IntHeader::Severity),
            payload: view.str_header(StrHeader::Payload),
            env_version: view.str_header(StrHeader::EnvVersion),
            pid: view.int_header(IntHeader::Pid),
            hostname: view.str_header(StrHeader::Hostname),
        }
    }

    /// Writes the headers in schema order; `write_type` writes the Type slot.
    fn write(&self, out: &mut Vec<u8>, write_type: impl FnOnce(&mut Vec<u8>)) {
        if let Some(uuid) = self.uuid {
            wire::put_bytes(out, 1, uuid);
        }
        if let Some(timestamp) = self.timestamp {
            wire::put_int(out, 2, timestamp);
        }
        if let Some(type_) = self.type_ {
            wire::put_bytes(out, 3, type_);
        }
        write_type(out);
        let strings = [(4, self.logger)];
        for (tag, value) in strings {
            if let Some(value) = value {
                wire::put_bytes(out, tag, value);
            }
        }
        if let Some(severity) = self.severity {
            wire::put_int(out, 5, severity);
        }
        for (tag, value) in [(6, self.payload), (7, self.env_version)] {
            if let Some(value) = value {
                wire::put_bytes(out, tag, value);
            }
        }
        if let Some(pid) = self.pid {
            wire::put_int(out, 8, pid);
        }
        if let Some(hostname) = self.hostname {
            wire::put_bytes(out, 9, hostname);
        }
    }
}

/// A header that `write_message` sets.
pub enum HeaderChange<'a> {
    /// A new Uuid, as its 16 raw bytes.
    Uuid([u8; 16]),
    /// A new Timestamp, in nanoseconds since the Unix epoch.
    Timestamp(i64),
    /// A new value for a text header (Type, Logger, Payload, EnvVersion or Hostname).
    Text(StrHeader, &'a [u8]),
    /// A new Severity or Pid.
    Int(IntHeader, i64),
}

/// Rewrites `view` into `out` with one header changed.
pub fn rewrite_header(view: &ProtoView<'_>, change: &HeaderChange<'_>, out: &mut Vec<u8>) {
    let mut headers = Headers::from_view(view);
    match change {
        HeaderChange::Uuid(uuid) => headers.uuid = Some(uuid),
        HeaderChange::Timestamp(timestamp) => headers.timestamp = Some(*timestamp),
        HeaderChange::Text(header, value) => {
            let slot = match header {
                StrHeader::Type => &mut headers.type_,
                StrHeader::Logger => &mut headers.logger,
                StrHeader::Payload => &mut headers.payload,
                StrHeader::EnvVersion => &mut headers.env_version,
                StrHeader::Hostname => &mut headers.hostname,
            };
            *slot = Some(value);
        }
        HeaderChange::Int(IntHeader::Severity, value) => headers.severity = Some(*value),
        HeaderChange::Int(IntHeader::Pid, value) => headers.pid = Some(*value),
    }
    headers.write(out, |_| {});
    for field in view.fields() {
        wire::put_bytes(out, 10, field.bytes());
    }
}

/// A field that `write_message` sets or deletes.
pub struct FieldChange<'a> {
    /// The field's name.
    pub name: &'a [u8],
    /// Which field of that name, counting from 0; one past the last adds a field.
    pub field_index: usize,
    /// Which value of the field's array, counting from 0; one past the last appends.
    pub array_index: usize,
    /// `None` deletes: the value at `array_index` if `array_index_given`, else the field.
    pub value: Option<FieldValue<'a>>,
    /// Whether the script gave an array index: then a `None` value deletes that value, else the
    /// whole field.
    pub array_index_given: bool,
    /// The representation to set; `None` keeps the field's own (none for a new field).
    pub representation: Option<&'a [u8]>,
}

/// Rewrites `view` into `out` with one field changed.
///
/// # Errors
/// A static description when the indexes do not address a field or value.
pub fn rewrite_field(
    view: &ProtoView<'_>,
    change: &FieldChange<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), &'static str> {
    Headers::from_view(view).write(out, |_| {});
    let mut seen = 0usize;
    let mut done = false;
    for field in view.fields() {
        if field.name() != Some(change.name) || done {
            wire::put_bytes(out, 10, field.bytes());
            continue;
        }
        if seen != change.field_index {
            seen += 1;
            wire::put_bytes(out, 10, field.bytes());
            continue;
        }
        done = true;
        let mut values: Vec<FieldValue<'_>> = field.values().collect();
        let mut value_type = field.value_type() as i64;
        match change.value {
            None if !change.array_index_given => continue,
            None => {
                if change.array_index >= values.len() {
                    return Err("bad array index");
                }
                values.remove(change.array_index);
            }
            Some(value) => {
                let value = coerce(value, value_type);
                if change.array_index < values.len() {
                    values[change.array_index] = value;
                } else if change.array_index == values.len() {
                    values.push(value);
                } else {
                    return Err("bad array index");
                }
                let new_type = value_type_of(&value);
                if new_type != value_type {
                    if values.len() > 1 {
                        return Err("value type does not match the field's other values");
                    }
                    value_type = new_type;
                }
            }
        }
        let representation = change.representation.or(field.representation());
        put_field(
            scratch,
            out,
            change.name,
            value_type,
            representation,
            &values,
        );
    }
    if !done {
        match change.value {
            Some(value) if seen == change.field_index && change.array_index == 0 => {
                let value_type = value_type_of(&value);
                put_field(
                    scratch,
                    out,
                    change.name,
                    value_type,
                    change.representation,
                    &[value],
                );
            }
            Some(_) => return Err("bad field index"),
            None => {}
        }
    }
    Ok(())
}

/// A number written into an INTEGER field stays an integer when it is integral.
fn coerce(value: FieldValue<'_>, value_type: i64) -> FieldValue<'_> {
    match value {
        FieldValue::Double(number)
            if value_type == VALUE_TYPE_INTEGER
                && number.fract() == 0.0
                && number.abs() < 9.2e18 =>
        {
            FieldValue::Integer(number as i64)
        }
        FieldValue::String(text) if value_type == VALUE_TYPE_BYTES => FieldValue::Bytes(text),
        other => other,
    }
}

fn value_type_of(value: &FieldValue<'_>) -> i64 {
    match value {
        FieldValue::String(_) => VALUE_TYPE_STRING,
        FieldValue::Bytes(_) => VALUE_TYPE_BYTES,
        FieldValue::Integer(_) => VALUE_TYPE_INTEGER,
        FieldValue::Double(_) => VALUE_TYPE_DOUBLE,
        FieldValue::Bool(_) => VALUE_TYPE_BOOL,
    }
}

fn put_field(
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
    name: &[u8],
    value_type: i64,
    representation: Option<&[u8]>,
    values: &[FieldValue<'_>],
) {
    scratch.clear();
    wire::put_bytes(scratch, 1, name);
    if value_type != VALUE_TYPE_STRING {
        wire::put_int(scratch, 2, value_type);
    }
    if let Some(representation) = representation {
        wire::put_bytes(scratch, 3, representation);
    }
    let mut packed = Vec::new();
    for value in values {
        match value {
            FieldValue::String(text) => wire::put_bytes(scratch, 4, text),
            FieldValue::Bytes(bytes) => wire::put_bytes(scratch, 5, bytes),
            FieldValue::Integer(number) => wire::put_varint(&mut packed, *number as u64),
            FieldValue::Double(number) => packed.extend_from_slice(&number.to_le_bytes()),
            FieldValue::Bool(flag) => wire::put_varint(&mut packed, u64::from(*flag)),
        }
    }
    if !packed.is_empty() {
        let tag = match value_type {
            VALUE_TYPE_INTEGER => 6,
            VALUE_TYPE_DOUBLE => 7,
            _ => 8,
        };
        wire::put_bytes(scratch, tag, &packed);
    }
    wire::put_bytes(out, 10, scratch);
}

/// Converts one field value to Lua.
pub fn field_value_to_lua(lua: &Lua, value: FieldValue<'_>) -> mlua::Result<Value> {
    Ok(match value {
        FieldValue::String(text) | FieldValue::Bytes(text) => {
            Value::String(lua.create_string(text)?)
        }
        FieldValue::Integer(number) => Value::Integer(number),
        FieldValue::Double(number) => Value::Number(number),
        FieldValue::Bool(flag) => Value::Boolean(flag),
    })
}

/// `decode_message`: a protobuf message as an array-form table.
///
/// # Errors
/// A Lua error if the bytes are not a valid Heka message.
pub fn decode_to_table(lua: &Lua, bytes: &[u8]) -> mlua::Result<Table> {
    let view = ProtoView::new(bytes);
    view.validate()
        .map_err(|error| mlua::Error::runtime(format!("decode_message() failed: {error}")))?;
    let table = lua.create_table_with_capacity(0, 10)?;
    if let Some(uuid) = view.uuid() {
        table.raw_set("Uuid", lua.create_string(uuid)?)?;
    }
    if let Some(timestamp) = view.timestamp() {
        table.raw_set("Timestamp", timestamp)?;
    }
    let strings = [
        ("Type", StrHeader::Type),
        ("Logger", StrHeader::Logger),
        ("Payload", StrHeader::Payload),
        ("EnvVersion", StrHeader::EnvVersion),
        ("Hostname", StrHeader::Hostname),
    ];
    for (key, header) in strings {
        if let Some(value) = view.str_header(header) {
            table.raw_set(key, lua.create_string(value)?)?;
        }
    }
    for (key, header) in [("Severity", IntHeader::Severity), ("Pid", IntHeader::Pid)] {
        if let Some(value) = view.int_header(header) {
            table.raw_set(key, value)?;
        }
    }
    let mut fields: Option<Table> = None;
    for field in view.fields() {
        let entry = lua.create_table_with_capacity(0, 4)?;
        entry.raw_set("name", lua.create_string(field.name().unwrap_or_default())?)?;
        entry.raw_set("value_type", field.value_type() as i64)?;
        if let Some(representation) = field.representation() {
            entry.raw_set("representation", lua.create_string(representation)?)?;
        }
        let values = lua.create_table()?;
        for value in field.values() {
            values.raw_push(field_value_to_lua(lua, value)?)?;
        }
        entry.raw_set("value", values)?;
        let list = match &fields {
            Some(list) => list,
            None => fields.insert(lua.create_table()?),
        };
        list.raw_push(entry)?;
    }
    if let Some(list) = fields {
        table.raw_set("Fields", list)?;
    }
    Ok(table)
}

/// Appends §1.2 stream framing (unsigned) around `message` to `out`.
pub fn frame(message: &[u8], out: &mut Vec<u8>) {
    let mut header = [0u8; 11];
    header[0] = 0x08;
    let mut length = message.len() as u64;
    let mut at = 1;
    while length >= 0x80 {
        header[at] = (length as u8) | 0x80;
        length >>= 7;
        at += 1;
    }
    header[at] = length as u8;
    at += 1;
    out.push(0x1e);
    out.push(at as u8);
    out.extend_from_slice(&header[..at]);
    out.push(0x1f);
    out.extend_from_slice(message);
}

/// The 36-character text of a raw Uuid, for messages.
pub fn uuid_text(uuid: &[u8]) -> Option<[u8; 36]> {
    <[u8; 16]>::try_from(uuid)
        .ok()
        .map(|uuid| format_uuid(&uuid))
}
