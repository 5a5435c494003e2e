//! Rewriting a message's protobuf without decoding it to a table: the headers a filter's
//! `inject_message` forces on a protobuf string ([`restamp`]), and `write_message`'s change of
//! one header or one field ([`rewrite_header`], [`rewrite_field`]). Everything else is copied
//! byte for byte.

use super::protobuf::{put_prefixed, Stamp};
use super::protobuf::{
    VALUE_TYPE_BOOL, VALUE_TYPE_BYTES, VALUE_TYPE_DOUBLE, VALUE_TYPE_INTEGER, VALUE_TYPE_STRING,
};
use crate::message::{wire, FieldValue, IntHeader, ProtoView, StrHeader};

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
