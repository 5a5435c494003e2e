//! One Forward-protocol event (a tag, a time and a record map) into a Heka protobuf message,
//! written straight into a reused buffer: the message SyslogDecoder's way, with no
//! intermediate tree.
//!
//! The mapping (`docs/fluent.md`): the tag is Logger; Type is `fluent`; the time is
//! Timestamp; the record's `message` key (or else its `log` key) is Payload; every other key is
//! a field: a string as STRING, a binary or an extension as BYTES, an integer as INTEGER (an
//! unsigned one past `i64::MAX` as DOUBLE), a float as DOUBLE, a boolean as BOOL, a map or an
//! array as STRING holding its JSON text; `nil` values are left out. Hostname is the sender's
//! address.
//!
//! Bounds: the message is at most `max_message_size` bytes ([`EntryError::Oversize`] past
//! it, checked before each write, so neither buffer grows past it by more than one field's
//! header); nested maps and arrays at most [`FLUENT_NESTING_MAX`] deep.

use std::io::Write as _;

use super::msgpack::{Error as PackError, Reader, Value};
use crate::limits::FLUENT_NESTING_MAX;
use crate::message::wire;

/// The Type of every message this input makes.
pub const MESSAGE_TYPE: &[u8] = b"fluent";

/// Why an event made no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// Not an event: a short, static reason (the log's and the tests' label).
    Malformed(&'static str),
    /// The message would pass `max_message_size`.
    Oversize,
}

impl From<PackError> for EntryError {
    fn from(_: PackError) -> EntryError {
        EntryError::Malformed("truncated msgpack")
    }
}

/// What every message of one frame shares, and the buffers it is written with.
pub struct EventWriter<'a> {
    /// The frame's tag: Logger.
    pub tag: &'a [u8],
    /// The sender's address: Hostname.
    pub hostname: &'a [u8],
    /// Largest message, in bytes.
    pub max_message_size: usize,
    /// The message (cleared per event).
    pub out: &'a mut Vec<u8>,
    /// JSON text of nested values (cleared per value).
    pub scratch: &'a mut Vec<u8>,
}

/// Reads an event time: an EventTime extension (type 0, seconds and nanoseconds), an integer
/// of seconds, or a float of seconds; Fluent Bit's `[time, metadata]` pair gives its time.
/// Returns nanoseconds since the epoch.
///
/// # Errors
/// Anything else.
pub fn read_time(reader: &mut Reader<'_>) -> Result<i64, EntryError> {
    let nanoseconds = match reader.value()? {
        Value::Ext(0, data) if data.len() == 8 => {
            let seconds = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let fraction = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            i64::from(seconds) * 1_000_000_000 + i64::from(fraction.min(999_999_999))
        }
        Value::UInt(seconds) => {
            (seconds.min(i64::MAX as u64 / 1_000_000_000) as i64) * 1_000_000_000
        }
        Value::Int(seconds) => {
            seconds.clamp(i64::MIN / 1_000_000_000, i64::MAX / 1_000_000_000) * 1_000_000_000
        }
        Value::Float(seconds) if seconds.is_finite() => (seconds * 1e9) as i64,
        Value::Array(count) if count >= 1 => {
            let time = read_time(reader)?;
            for _ in 1..count {
                reader.skip()?;
            }
            time
        }
        _ => {
            return Err(EntryError::Malformed(
                "the time is not an EventTime or an integer",
            ))
        }
    };
    Ok(nanoseconds)
}

/// Reads one Forward / PackedForward entry, `[time, record]`, and writes its message.
///
/// # Errors
/// The entry is not `[time, map]`, or its message is too large.
pub fn write_entry(
    writer: &mut EventWriter<'_>,
    entry: &mut Reader<'_>,
    uuid: &[u8; 16],
) -> Result<(), EntryError> {
    let Value::Array(count @ 2..) = entry.value()? else {
        return Err(EntryError::Malformed("an entry is not [time, record]"));
    };
    let time = read_time(entry)?;
    let record = entry.object()?;
    for _ in 2..count {
        entry.skip()?;
    }
    writer.write(time, record, uuid)
}

impl EventWriter<'_> {
    /// Writes the message of the event `(time_ns, record)` into `out`.
    ///
    /// # Errors
    /// `record` is not a map (or holds a malformed value), or the message is too large.
    pub fn write(
        &mut self,
        time_ns: i64,
        record: &[u8],
        uuid: &[u8; 16],
    ) -> Result<(), EntryError> {
        self.out.clear();
        if record.len() > self.max_message_size {
            return Err(EntryError::Oversize);
        }
        let mut reader = Reader::new(record);
        let Value::Map(pairs) = reader.value()? else {
            return Err(EntryError::Malformed("the record is not a map"));
        };
        let payload_key = find_payload_key(reader.clone(), pairs)?;
        wire::put_bytes(self.out, 1, uuid);
        wire::put_int(self.out, 2, time_ns);
        wire::put_bytes(self.out, 3, MESSAGE_TYPE);
        self.room(self.tag.len() + self.hostname.len() + 20)?;
        wire::put_bytes(self.out, 4, self.tag);
        let mut fields = reader.clone();
        if let Some(key) = payload_key {
            let mut values = reader;
            for _ in 0..pairs {
                let name = values.value()?;
                if name == Value::Str(key) {
                    self.write_payload(&mut values)?;
                    break;
                }
                values.skip()?;
            }
        }
        wire::put_bytes(self.out, 9, self.hostname);
        for _ in 0..pairs {
            let name = match fields.value()? {
                Value::Str(name) | Value::Bin(name) => Some(name),
                _ => None,
            };
            match name {
                Some(name) if Some(name) != payload_key => self.write_field(name, &mut fields)?,
                _ => fields.skip()?,
            }
        }
        // Each write above checked its room with the member's overhead; checked again here
        // so that no message past the bound is ever routed.
        self.room(0)?;
        Ok(())
    }

    fn room(&self, extra: usize) -> Result<(), EntryError> {
        if self.out.len() + extra > self.max_message_size {
            return Err(EntryError::Oversize);
        }
        Ok(())
    }

    fn write_payload(&mut self, values: &mut Reader<'_>) -> Result<(), EntryError> {
        let saved = values.clone();
        match values.value()? {
            Value::Str(text) | Value::Bin(text) => {
                self.room(text.len() + self.hostname.len() + 12)?;
                wire::put_bytes(self.out, 6, text);
            }
            Value::Nil => {}
            _ => {
                let mut whole = saved;
                let nested = whole.object()?;
                *values = whole;
                self.json_of(nested)?;
                self.room(self.scratch.len() + self.hostname.len() + 12)?;
                wire::put_bytes(self.out, 6, self.scratch);
            }
        }
        Ok(())
    }

    /// Writes one field named `name` from the value at `values`.
    fn write_field(&mut self, name: &[u8], values: &mut Reader<'_>) -> Result<(), EntryError> {
        let saved = values.clone();
        let value = values.value()?;
        self.room(name.len() + 32)?;
        match value {
            Value::Nil => {}
            Value::Str(text) => {
                self.room(name.len() + text.len() + 32)?;
                put_bytes_field(self.out, name, 0, text);
            }
            Value::Bin(bytes) | Value::Ext(_, bytes) => {
                self.room(name.len() + bytes.len() + 32)?;
                put_bytes_field(self.out, name, VALUE_BYTES, bytes);
            }
            Value::Int(number) => put_integer_field(self.out, name, number),
            Value::UInt(number) => match i64::try_from(number) {
                Ok(number) => put_integer_field(self.out, name, number),
                Err(_) => put_double_field(self.out, name, number as f64),
            },
            Value::Float(number) => put_double_field(self.out, name, number),
            Value::Bool(flag) => put_bool_field(self.out, name, flag),
            Value::Array(_) | Value::Map(_) => {
                let mut whole = saved;
                let nested = whole.object()?;
                *values = whole;
                self.json_of(nested)?;
                self.room(name.len() + self.scratch.len() + 32)?;
                put_bytes_field(self.out, name, 0, self.scratch);
            }
        }
        Ok(())
    }

    /// Renders the whole object `bytes` as JSON text into `scratch`.
    fn json_of(&mut self, bytes: &[u8]) -> Result<(), EntryError> {
        self.scratch.clear();
        let mut reader = Reader::new(bytes);
        json_value(&mut reader, self.scratch, self.max_message_size, 0)
    }
}

/// Which key is the Payload: `message` if the record has one, else `log`, else none.
fn find_payload_key(
    mut reader: Reader<'_>,
    pairs: u32,
) -> Result<Option<&'static [u8]>, EntryError> {
    let mut found: Option<&'static [u8]> = None;
    for _ in 0..pairs {
        match reader.value()? {
            Value::Str(b"message") => return Ok(Some(b"message")),
            Value::Str(b"log") => found = Some(b"log"),
            _ => {}
        }
        reader.skip()?;
    }
    Ok(found)
}

const VALUE_BYTES: u64 = 1;

fn len_member_bytes(length: usize) -> usize {
    1 + wire::varint_len(length as u64) + length
}

/// A STRING (`value_type` 0, not written) or BYTES field with one value.
fn put_bytes_field(out: &mut Vec<u8>, name: &[u8], value_type: u64, value: &[u8]) {
    let typed = if value_type == 0 { 0 } else { 2 };
    let submessage = len_member_bytes(name.len()) + typed + len_member_bytes(value.len());
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage as u64);
    wire::put_bytes(out, 1, name);
    if value_type != 0 {
        wire::put_int(out, 2, value_type as i64);
        wire::put_bytes(out, 5, value);
    } else {
        wire::put_bytes(out, 4, value);
    }
}

fn put_integer_field(out: &mut Vec<u8>, name: &[u8], value: i64) {
    let value_bytes = wire::varint_len(value as u64);
    let submessage = len_member_bytes(name.len()) + 2 + len_member_bytes(value_bytes);
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage as u64);
    wire::put_bytes(out, 1, name);
    wire::put_int(out, 2, 2);
    wire::put_key(out, 6, wire::WIRE_LEN);
    wire::put_varint(out, value_bytes as u64);
    wire::put_varint(out, value as u64);
}

fn put_double_field(out: &mut Vec<u8>, name: &[u8], value: f64) {
    let submessage = len_member_bytes(name.len()) + 2 + len_member_bytes(8);
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage as u64);
    wire::put_bytes(out, 1, name);
    wire::put_int(out, 2, 3);
    wire::put_bytes(out, 7, &value.to_le_bytes());
}

fn put_bool_field(out: &mut Vec<u8>, name: &[u8], value: bool) {
    let submessage = len_member_bytes(name.len()) + 2 + len_member_bytes(1);
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage as u64);
    wire::put_bytes(out, 1, name);
    wire::put_int(out, 2, 4);
    wire::put_bytes(out, 8, &[u8::from(value)]);
}

/// Appends one value as JSON, at most `max` bytes in all and `FLUENT_NESTING_MAX` deep.
fn json_value(
    reader: &mut Reader<'_>,
    out: &mut Vec<u8>,
    max: usize,
    depth: usize,
) -> Result<(), EntryError> {
    if depth > FLUENT_NESTING_MAX {
        return Err(EntryError::Malformed("nested deeper than the bound"));
    }
    if out.len() + 32 > max {
        return Err(EntryError::Oversize);
    }
    match reader.value()? {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
        Value::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Value::UInt(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Float(number) if number.is_finite() => {
            let _ = write!(out, "{number}");
        }
        Value::Float(_) => out.extend_from_slice(b"null"),
        Value::Str(text) | Value::Bin(text) | Value::Ext(_, text) => json_string(text, out, max)?,
        Value::Array(count) => {
            out.push(b'[');
            for index in 0..count {
                if index > 0 {
                    out.push(b',');
                }
                json_value(reader, out, max, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Map(count) => {
            out.push(b'{');
            for index in 0..count {
                if index > 0 {
                    out.push(b',');
                }
                match reader.value()? {
                    Value::Str(key) | Value::Bin(key) => json_string(key, out, max)?,
                    Value::Int(number) => {
                        let _ = write!(out, "\"{number}\"");
                    }
                    Value::UInt(number) => {
                        let _ = write!(out, "\"{number}\"");
                    }
                    _ => {
                        return Err(EntryError::Malformed(
                            "a map key is not a string or a number",
                        ))
                    }
                }
                out.push(b':');
                json_value(reader, out, max, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends `text` as a JSON string; bytes that are not UTF-8 become U+FFFD.
fn json_string(text: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), EntryError> {
    let text = String::from_utf8_lossy(text);
    let escaped: usize = text
        .bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum();
    if out.len() + escaped + 2 > max {
        return Err(EntryError::Oversize);
    }
    out.push(b'"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{byte:04x}");
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
    Ok(())
}
