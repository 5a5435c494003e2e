//! Lua message tables ↔ Heka protobuf: `inject_message`, `encode_message` and
//! `decode_message` meet here; `write_message`'s in-place changes and the restamping of an
//! injected protobuf string are in [`super::rewrite`].
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

use gyges_sys::lua_table::{self, Borrowed, Keys, TableRef, WalkError, WalkKeys};
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

/// The keys a message table is read by, in [`message_keys`] order.
const MESSAGE_KEY_NAMES: [&str; 14] = [
    "Uuid",
    "Timestamp",
    "Type",
    "Logger",
    "Severity",
    "Payload",
    "EnvVersion",
    "Pid",
    "Hostname",
    "Fields",
    "name",
    "value",
    "value_type",
    "representation",
];
const KEY_UUID: usize = 0;
const KEY_TIMESTAMP: usize = 1;
const KEY_TYPE: usize = 2;
const KEY_LOGGER: usize = 3;
const KEY_SEVERITY: usize = 4;
const KEY_PAYLOAD: usize = 5;
const KEY_ENV_VERSION: usize = 6;
const KEY_PID: usize = 7;
const KEY_HOSTNAME: usize = 8;
const KEY_FIELDS: usize = 9;
const KEY_NAME: usize = 10;
const KEY_VALUE: usize = 11;
const KEY_VALUE_TYPE: usize = 12;
const KEY_REPRESENTATION: usize = 13;
const _: () = assert!(KEY_REPRESENTATION + 1 == MESSAGE_KEY_NAMES.len());

/// The key strings [`encode_table`] reads a message table by, made once per sandbox.
///
/// # Errors
/// mlua's error if the strings cannot be created (out of memory).
pub fn message_keys(lua: &Lua) -> mlua::Result<Keys> {
    Keys::new(lua, &MESSAGE_KEY_NAMES)
}

/// The reason a walk stopped, as a Lua error.
fn walk_error(error: WalkError) -> mlua::Error {
    encode_error(&error.to_string())
}

/// A header value from the table, as bytes (numbers are formatted as Lua prints them).
fn text_of<'v>(value: &Borrowed<'v>, key: &str) -> mlua::Result<Option<Cow<'v, [u8]>>> {
    Ok(match value {
        Borrowed::Nil => None,
        Borrowed::String(text) => Some(Cow::Borrowed(text)),
        Borrowed::Integer(number) => Some(Cow::Owned(number.to_string().into_bytes())),
        Borrowed::Number(number) => Some(Cow::Owned(number.to_string().into_bytes())),
        _ => return Err(encode_error(&format!("{key} must be a string"))),
    })
}

fn number_of(value: &Borrowed<'_>, key: &str) -> mlua::Result<Option<i64>> {
    Ok(match value {
        Borrowed::Nil => None,
        Borrowed::Integer(number) => Some(*number),
        Borrowed::Number(number) if number.is_finite() => Some(*number as i64),
        Borrowed::String(text) => {
            let parsed = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
            Some(parsed.ok_or_else(|| encode_error(&format!("{key} must be a number")))?)
        }
        _ => return Err(encode_error(&format!("{key} must be a number"))),
    })
}

/// Appends the protobuf encoding of a message table to `out`. The table is read in place on
/// the Lua stack ([`gyges_sys::lua_table`]) with raw access, by the strings in `keys`
/// ([`message_keys`]).
///
/// # Errors
/// A Lua error naming what could not be encoded.
pub fn encode_table(
    lua: &Lua,
    keys: &Keys,
    table: &Table,
    stamp: &Stamp<'_>,
    uuids: &mut UuidSource,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> mlua::Result<()> {
    lua_table::walk(lua, keys, table, |table, keys| {
        let present = headers_present(&table)?;
        let message = MessageTable {
            table,
            keys,
            present,
        };
        message.encode(stamp, uuids, out, scratch)
    })?
}

/// Which of the top-level keys (`KEY_UUID..=KEY_FIELDS`, one bit each) the table holds, from
/// one `next` traversal: a message table holds a few of the ten, so looking up only those
/// beats a lookup per possible key.
fn headers_present(table: &TableRef<'_>) -> mlua::Result<u16> {
    let mut present = 0u16;
    table
        .for_each(|key, _| {
            if let Borrowed::String(key) = key {
                if let Some(number) = MESSAGE_KEY_NAMES[..=KEY_FIELDS]
                    .iter()
                    .position(|name| name.as_bytes() == key)
                {
                    present |= 1 << number;
                }
            }
            Ok::<(), WalkError>(())
        })
        .map_err(walk_error)?;
    Ok(present)
}

/// A message table on the Lua stack, with the keys to read it by.
struct MessageTable<'s> {
    table: TableRef<'s>,
    keys: WalkKeys<'s>,
    /// The top-level keys the table holds ([`headers_present`]).
    present: u16,
}

impl MessageTable<'_> {
    /// Reads a top-level entry (`key` one of `KEY_UUID..=KEY_FIELDS`) and passes it to `read`;
    /// an absent one is `nil` without a lookup.
    fn header<R>(
        &self,
        key: usize,
        read: impl for<'v> FnOnce(Borrowed<'v>) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        if self.present & (1 << key) == 0 {
            return read(Borrowed::Nil);
        }
        self.with(&self.table, key, read)
    }

    /// Reads `table[key]` (`key` one of the `KEY_*` numbers) and passes it to `read`.
    fn with<R>(
        &self,
        table: &TableRef<'_>,
        key: usize,
        read: impl for<'v> FnOnce(Borrowed<'v>) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        table
            .with_key(self.keys.key(key), read)
            .map_err(walk_error)?
    }

    /// A text header, passed to `write` as bytes (or `None` when absent).
    fn with_text(
        &self,
        key: usize,
        name: &str,
        write: impl FnOnce(Option<&[u8]>),
    ) -> mlua::Result<()> {
        self.header(key, |value| {
            write(text_of(&value, name)?.as_deref());
            Ok(())
        })
    }

    fn number(&self, key: usize, name: &str) -> mlua::Result<Option<i64>> {
        self.header(key, |value| number_of(&value, name))
    }

    fn encode(
        &self,
        stamp: &Stamp<'_>,
        uuids: &mut UuidSource,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> mlua::Result<()> {
        let uuid = self.header(KEY_UUID, |value| {
            Ok(match value {
                Borrowed::String(text) if text.len() == 16 => {
                    let mut uuid = [0u8; 16];
                    uuid.copy_from_slice(text);
                    uuid
                }
                Borrowed::String(text) => std::str::from_utf8(text)
                    .ok()
                    .and_then(parse_uuid)
                    .unwrap_or_else(|| uuids.next_uuid()),
                _ => uuids.next_uuid(),
            })
        })?;
        wire::put_bytes(out, 1, &uuid);
        let defaults = stamp.defaults;
        let timestamp = match self.number(KEY_TIMESTAMP, "Timestamp")? {
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
        self.with_text(KEY_TYPE, "Type", |value| {
            let value = value.or_else(|| default_str(StrHeader::Type));
            put_prefixed(out, 3, stamp.type_prefix, value);
        })?;
        match stamp.logger {
            Some(logger) => wire::put_bytes(out, 4, logger),
            None => self.with_text(KEY_LOGGER, "Logger", |value| {
                if let Some(value) = value.or_else(|| default_str(StrHeader::Logger)) {
                    wire::put_bytes(out, 4, value);
                }
            })?,
        }
        let default_int = |header: IntHeader| defaults.and_then(|view| view.int_header(header));
        let severity = self.number(KEY_SEVERITY, "Severity")?;
        if let Some(severity) = severity.or_else(|| default_int(IntHeader::Severity)) {
            wire::put_int(out, 5, i64::from(severity as i32));
        }
        self.with_text(KEY_PAYLOAD, "Payload", |value| {
            if let Some(value) = value {
                wire::put_bytes(out, 6, value);
            }
        })?;
        self.with_text(KEY_ENV_VERSION, "EnvVersion", |value| {
            if let Some(value) = value {
                wire::put_bytes(out, 7, value);
            }
        })?;
        let pid = self.number(KEY_PID, "Pid")?;
        if let Some(pid) = pid.or_else(|| default_int(IntHeader::Pid)) {
            wire::put_int(out, 8, i64::from(pid as i32));
        }
        match stamp.hostname {
            Some(hostname) => wire::put_bytes(out, 9, hostname),
            None => self.with_text(KEY_HOSTNAME, "Hostname", |value| {
                if let Some(value) = value.or_else(|| default_str(StrHeader::Hostname)) {
                    wire::put_bytes(out, 9, value);
                }
            })?,
        }
        self.header(KEY_FIELDS, |fields| match fields {
            Borrowed::Nil => Ok(()),
            Borrowed::Table(fields) => self.encode_fields(&fields, out, scratch),
            _ => Err(encode_error("Fields must be a table")),
        })
    }

    fn encode_fields(
        &self,
        fields: &TableRef<'_>,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> mlua::Result<()> {
        let array_form = fields
            .with_index(1, |first| matches!(first, Borrowed::Table(_)))
            .map_err(walk_error)?;
        if array_form {
            // Array form: {{name = ..., value = ...}, ...}
            let count = fields.raw_len();
            if count > FIELDS_MAX {
                return Err(encode_error("too many fields"));
            }
            for index in 1..=count {
                fields
                    .with_index(index as i64, |entry| {
                        let Borrowed::Table(entry) = entry else {
                            return Err(encode_error("array form Fields entries must be tables"));
                        };
                        self.with(&entry, KEY_NAME, |name| {
                            let Borrowed::String(name) = name else {
                                return Err(encode_error(
                                    "array form Fields entries need a string name",
                                ));
                            };
                            self.encode_field(name, Borrowed::Table(entry), true, out, scratch)
                        })
                    })
                    .map_err(walk_error)??;
            }
            return Ok(());
        }
        let mut count = 0usize;
        fields
            .for_each(|key, value| {
                count += 1;
                if count > FIELDS_MAX {
                    return Err(Walked::Lua(encode_error("too many fields")));
                }
                let Borrowed::String(name) = key else {
                    return Err(Walked::Lua(encode_error("field names must be strings")));
                };
                self.encode_field(name, value, false, out, scratch)
                    .map_err(Walked::Lua)
            })
            .map_err(Walked::into_lua)
    }

    /// Encodes one field from its table value. `object` says the value is an array-form entry
    /// (which always carries `value`).
    fn encode_field(
        &self,
        name: &[u8],
        value: Borrowed<'_>,
        object: bool,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> mlua::Result<()> {
        let Borrowed::Table(table) = value else {
            return write_field(name, value, None, None, out, scratch);
        };
        if !object && self.with(&table, KEY_VALUE, |value| Ok(value.is_nil()))? {
            return write_field(name, value, None, None, out, scratch);
        }
        let value_type = self.with(&table, KEY_VALUE_TYPE, |value_type| match value_type {
            Borrowed::Nil => Ok(None),
            Borrowed::Integer(number) => Ok(Some(number)),
            Borrowed::Number(number) => Ok(Some(number as i64)),
            _ => Err(encode_error("value_type must be a number")),
        })?;
        self.with(&table, KEY_REPRESENTATION, |representation| {
            let representation = match representation {
                Borrowed::Nil => None,
                Borrowed::String(text) => Some(text),
                _ => return Err(encode_error("representation must be a string")),
            };
            self.with(&table, KEY_VALUE, |values| {
                write_field(name, values, value_type, representation, out, scratch)
            })
        })
    }
}

/// An error out of a `for_each` walk: the encoder's own, or the walk's.
enum Walked {
    Lua(mlua::Error),
    Walk(WalkError),
}

impl From<WalkError> for Walked {
    fn from(error: WalkError) -> Walked {
        Walked::Walk(error)
    }
}

impl Walked {
    fn into_lua(self) -> mlua::Error {
        match self {
            Walked::Lua(error) => error,
            Walked::Walk(error) => walk_error(error),
        }
    }
}

/// Writes one field: its name, type, representation and values (`values` is one value or an
/// array of them).
fn write_field(
    name: &[u8],
    values: Borrowed<'_>,
    value_type: Option<i64>,
    representation: Option<&[u8]>,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> mlua::Result<()> {
    scratch.clear();
    wire::put_bytes(scratch, 1, name);
    let items = match values {
        Borrowed::Table(array) => {
            let count = array.raw_len();
            Items::Array(array, count)
        }
        single => Items::One(single),
    };
    let value_type = match value_type {
        Some(value_type) => value_type,
        None => infer_value_type(&items)?,
    };
    if !(VALUE_TYPE_STRING..=VALUE_TYPE_BOOL).contains(&value_type) {
        return Err(encode_error("value_type must be 0..=4"));
    }
    if value_type != VALUE_TYPE_STRING {
        wire::put_int(scratch, 2, value_type);
    }
    if let Some(representation) = representation {
        wire::put_bytes(scratch, 3, representation);
    }
    if let Items::Array(_, count) = items {
        if count > FIELD_VALUES_MAX {
            return Err(encode_error("too many values in a field"));
        }
    }
    put_values(scratch, value_type, &items)?;
    wire::put_bytes(out, 10, scratch);
    Ok(())
}

/// A field's values: one value, or an array table and its length.
enum Items<'s> {
    One(Borrowed<'s>),
    Array(TableRef<'s>, usize),
}

impl Items<'_> {
    /// Calls `visit` with each value, in order.
    fn each(&self, mut visit: impl FnMut(Borrowed<'_>) -> mlua::Result<()>) -> mlua::Result<()> {
        match self {
            Items::One(value) => visit(*value),
            Items::Array(array, count) => {
                for index in 1..=*count {
                    array
                        .with_index(index as i64, &mut visit)
                        .map_err(walk_error)??;
                }
                Ok(())
            }
        }
    }
}

fn infer_value_type(items: &Items<'_>) -> mlua::Result<i64> {
    let infer = |first: Borrowed<'_>| -> mlua::Result<i64> {
        Ok(match first {
            Borrowed::String(_) | Borrowed::Nil => VALUE_TYPE_STRING,
            Borrowed::Integer(_) | Borrowed::Number(_) => VALUE_TYPE_DOUBLE,
            Borrowed::Boolean(_) => VALUE_TYPE_BOOL,
            _ => return Err(encode_error("unsupported field value type")),
        })
    };
    match items {
        Items::One(value) => infer(*value),
        Items::Array(array, _) => array.with_index(1, infer).map_err(walk_error)?,
    }
}

fn put_values(field: &mut Vec<u8>, value_type: i64, items: &Items<'_>) -> mlua::Result<()> {
    let mismatch = || encode_error("field values do not match the value_type");
    match value_type {
        VALUE_TYPE_STRING | VALUE_TYPE_BYTES => {
            let tag = if value_type == VALUE_TYPE_STRING {
                4
            } else {
                5
            };
            items.each(|item| {
                match item {
                    Borrowed::String(text) => wire::put_bytes(field, tag, text),
                    Borrowed::Integer(number) => {
                        wire::put_bytes(field, tag, number.to_string().as_bytes())
                    }
                    Borrowed::Number(number) => {
                        wire::put_bytes(field, tag, number.to_string().as_bytes())
                    }
                    Borrowed::Nil => {}
                    _ => return Err(mismatch()),
                }
                Ok(())
            })?;
        }
        VALUE_TYPE_INTEGER | VALUE_TYPE_BOOL => {
            // Two passes (length, then values) so the packed run needs no buffer.
            let varint = |item: Borrowed<'_>| -> mlua::Result<Option<u64>> {
                Ok(match (value_type, item) {
                    (VALUE_TYPE_INTEGER, Borrowed::Integer(number)) => Some(number as u64),
                    (VALUE_TYPE_INTEGER, Borrowed::Number(number)) => Some(number as i64 as u64),
                    (VALUE_TYPE_BOOL, Borrowed::Boolean(flag)) => Some(u64::from(flag)),
                    (_, Borrowed::Nil) => None,
                    _ => return Err(mismatch()),
                })
            };
            let mut length = 0usize;
            items.each(|item| {
                if let Some(number) = varint(item)? {
                    length += wire::varint_len(number);
                }
                Ok(())
            })?;
            if length > 0 {
                let tag = if value_type == VALUE_TYPE_INTEGER {
                    6
                } else {
                    8
                };
                wire::put_key(field, tag, wire::WIRE_LEN);
                wire::put_varint(field, length as u64);
                items.each(|item| {
                    if let Some(number) = varint(item)? {
                        wire::put_varint(field, number);
                    }
                    Ok(())
                })?;
            }
        }
        _ => {
            let double = |item: Borrowed<'_>| -> mlua::Result<Option<f64>> {
                Ok(match item {
                    Borrowed::Integer(number) => Some(number as f64),
                    Borrowed::Number(number) => Some(number),
                    Borrowed::Nil => None,
                    _ => return Err(mismatch()),
                })
            };
            let mut count = 0usize;
            items.each(|item| {
                count += usize::from(double(item)?.is_some());
                Ok(())
            })?;
            if count > 0 {
                wire::put_key(field, 7, wire::WIRE_LEN);
                wire::put_varint(field, (count * 8) as u64);
                items.each(|item| {
                    if let Some(number) = double(item)? {
                        field.extend_from_slice(&number.to_le_bytes());
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

pub(super) fn put_prefixed(
    out: &mut Vec<u8>,
    tag: u32,
    prefix: Option<&[u8]>,
    value: Option<&[u8]>,
) {
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
