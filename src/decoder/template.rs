//! `message_fields`: the message template of PayloadRegexDecoder, PayloadJsonDecoder and
//! ScribbleDecoder, and the writer of the message a template makes.
//!
//! A template is a table of `name = "value"`. The value may interpolate `%name%`: a capture
//! of the decoder (a regex's named group, a `json_map` name), else a string header of the
//! message being decoded (`Type`, `Logger`, `Hostname`, `Payload`, `EnvVersion`), else the
//! first value of its field of that name; a name none of these has is kept as written. The
//! names `Type`, `Logger`, `Hostname`, `Payload`, `EnvVersion`, `Severity`, `Pid`, `Uuid` and
//! `Timestamp` set headers; any other name adds a string field, and `name|repr` adds the field
//! `name` with representation `repr` (so `Payload|json` is a field, not the header).
//!
//! [`Template::compile`] resolves every `%name%` once at startup; [`Template::render`] writes
//! the values of one record into a reused buffer, and [`write_message`] writes the message:
//! the headers given, else the base message's; the base message's fields, byte for byte;
//! then the template's fields. Nothing is allocated once the buffers have grown.

use std::ops::Range;

use super::{DecodeContext, Decoder};
use crate::message::view::FieldValue;
use crate::message::{wire, IntHeader, MessageView, ProtoView, StrHeader};

/// A decoder that makes one message of each record by writing it over what the record makes
/// without a decoder (PayloadRegexDecoder, PayloadJsonDecoder, ScribbleDecoder). It writes;
/// [`Decoder`] follows: each message is written into a buffer the decoder reuses, bounded by
/// `max_message_size` (past it: `too_large`, nothing routed), then routed, or appended for the
/// next decoder of a MultiDecoder.
pub trait Rewrite {
    /// Appends the message `base` becomes to `out`.
    ///
    /// # Errors
    /// `base` does not decode: a short code for the log.
    fn rewrite(
        &mut self,
        base: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str>;

    /// The decoder's reused buffer and bound.
    fn scratch(&mut self) -> &mut Scratch;
}

/// A [`Rewrite`] decoder's buffer for the message it writes, and the bound on that message.
#[derive(Debug, Default)]
pub struct Scratch {
    message: Vec<u8>,
    bytes_max: usize,
}

impl Scratch {
    /// A buffer for messages of at most `bytes_max` bytes, allocated once.
    pub fn new(bytes_max: usize) -> Scratch {
        Scratch {
            message: Vec::with_capacity(bytes_max),
            bytes_max,
        }
    }
}

/// [`Rewrite::rewrite`], with the message's size bounded.
fn bounded<R: Rewrite>(
    decoder: &mut R,
    base: &MessageView<'_>,
    context: &mut DecodeContext<'_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let start = out.len();
    let bytes_max = decoder.scratch().bytes_max;
    decoder.rewrite(base, context, out)?;
    if out.len() - start > bytes_max {
        out.truncate(start);
        return Err("too_large");
    }
    Ok(())
}

impl<R: Rewrite> Decoder for R {
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        let base = MessageView::Line(context.line(record));
        let mut message = std::mem::take(&mut self.scratch().message);
        message.clear();
        let written = bounded(self, &base, context, &mut message);
        if written.is_ok() {
            // Written here from a valid base: the view stays lazy.
            context
                .router
                .route(&MessageView::Proto(ProtoView::new(&message)));
        }
        self.scratch().message = message;
        written
    }

    fn decode_message(
        &mut self,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        super::try_push_framed(out, |out| bounded(self, message, context, out))
    }
}

/// The most entries a `message_fields` table may have.
pub const TEMPLATE_ENTRIES_MAX: usize = 256;

/// A header a template entry sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A string header.
    Str(StrHeader),
    /// Severity: an integer, or a `severity_map` name.
    Severity,
    /// Pid: an integer (a decimal part is dropped).
    Pid,
    /// Uuid: 16 raw bytes or the 36-character text form.
    Uuid,
    /// Timestamp: read with the decoder's `timestamp_layout`.
    Timestamp,
}

/// What a template entry sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A header.
    Header(Header),
    /// A string field, with its representation.
    Field {
        /// The field's name.
        name: Box<[u8]>,
        /// The field's representation (after `|` in the key), if any.
        representation: Option<Box<[u8]>>,
    },
}

/// One piece of an entry's value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Text as written.
    Literal(Box<[u8]>),
    /// The decoder's capture of this index.
    Capture(usize),
    /// A string header of the base message.
    Header(StrHeader),
    /// The first value of the base message's field of this name, or `%name%` when absent.
    Field(Box<[u8]>),
}

/// One `name = "value"` of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    target: Target,
    parts: Box<[Part]>,
}

/// A compiled `message_fields` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    entries: Box<[Entry]>,
}

/// The values one record gives a template's entries, in a buffer reused record after record.
#[derive(Debug, Default)]
pub struct Rendered {
    values: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl Rendered {
    /// Entry `index`'s value.
    fn value(&self, index: usize) -> &[u8] {
        self.spans
            .get(index)
            .and_then(|span| self.values.get(span.clone()))
            .unwrap_or_default()
    }
}

/// The header whose name is `name`, if it is one.
fn header_named(name: &str) -> Option<Header> {
    Some(match name {
        "Type" => Header::Str(StrHeader::Type),
        "Logger" => Header::Str(StrHeader::Logger),
        "Hostname" => Header::Str(StrHeader::Hostname),
        "Payload" => Header::Str(StrHeader::Payload),
        "EnvVersion" => Header::Str(StrHeader::EnvVersion),
        "Severity" => Header::Severity,
        "Pid" => Header::Pid,
        "Uuid" => Header::Uuid,
        "Timestamp" => Header::Timestamp,
        _ => return None,
    })
}

impl Template {
    /// Compiles the table `entries`; `capture` gives the index of a decoder's capture name.
    ///
    /// # Errors
    /// More than [`TEMPLATE_ENTRIES_MAX`] entries, a value that is not a string, or an empty
    /// name: a message and the entry's key.
    pub fn compile(
        entries: &toml::Table,
        capture: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, (String, String)> {
        if entries.len() > TEMPLATE_ENTRIES_MAX {
            let message = format!("at most {TEMPLATE_ENTRIES_MAX} entries");
            return Err((String::new(), message));
        }
        let mut compiled = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(value) = value.as_str() else {
                return Err((key.clone(), "a value is a string".to_string()));
            };
            let target = target_of(key).map_err(|message| (key.clone(), message))?;
            compiled.push(Entry {
                target,
                parts: parts_of(value, capture).into(),
            });
        }
        Ok(Template {
            entries: compiled.into(),
        })
    }

    /// A template of `(key, value)` pairs (tests and tools).
    ///
    /// # Errors
    /// As [`Template::compile`].
    pub fn from_pairs(
        pairs: &[(&str, &str)],
        capture: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, (String, String)> {
        let table = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), toml::Value::from(*value)))
            .collect();
        Template::compile(&table, capture)
    }

    /// Whether the template names no capture (a ScribbleDecoder's: its values are fixed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Interpolates every entry for one record into `out`.
    pub fn render<'c>(
        &self,
        capture: &dyn Fn(usize) -> Option<&'c [u8]>,
        base: &MessageView<'_>,
        out: &mut Rendered,
    ) {
        out.values.clear();
        out.spans.clear();
        for entry in self.entries.iter() {
            let start = out.values.len();
            for part in entry.parts.iter() {
                match part {
                    Part::Literal(text) => out.values.extend_from_slice(text),
                    Part::Capture(index) => out
                        .values
                        .extend_from_slice(capture(*index).unwrap_or_default()),
                    Part::Header(header) => {
                        let value = base.str_header(*header).unwrap_or_default();
                        out.values.extend_from_slice(value);
                    }
                    Part::Field(name) => match field_text(base, name) {
                        Some(value) => out.values.extend_from_slice(value),
                        None => {
                            out.values.push(b'%');
                            out.values.extend_from_slice(name);
                            out.values.push(b'%');
                        }
                    },
                }
            }
            out.spans.push(start..out.values.len());
        }
    }

    /// The entries that set headers, with their rendered values.
    pub fn headers<'r>(
        &'r self,
        rendered: &'r Rendered,
    ) -> impl Iterator<Item = (Header, &'r [u8])> + 'r {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| match entry.target {
                Target::Header(header) => Some((header, rendered.value(index))),
                Target::Field { .. } => None,
            })
    }

    /// The entries that add fields, as `(name, representation, value)`.
    pub fn fields<'r>(&'r self, rendered: &'r Rendered) -> impl Iterator<Item = NewField<'r>> + 'r {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| match &entry.target {
                Target::Field {
                    name,
                    representation,
                } => Some(NewField {
                    name,
                    representation: representation.as_deref(),
                    value: rendered.value(index),
                }),
                Target::Header(_) => None,
            })
    }
}

/// What the `message_fields` key `key` sets: a header, or a field with its representation.
///
/// # Errors
/// An empty field name.
pub fn target_of(key: &str) -> Result<Target, String> {
    let (name, representation) = match key.split_once('|') {
        Some((name, representation)) => (name, Some(representation)),
        None => (key, None),
    };
    if name.is_empty() {
        return Err("a field needs a name".to_string());
    }
    Ok(match (representation, header_named(name)) {
        (None, Some(header)) => Target::Header(header),
        _ => Target::Field {
            name: name.as_bytes().into(),
            representation: representation.map(|text| text.as_bytes().into()),
        },
    })
}

/// The first string (or bytes) value of the field `name` of `base`.
fn field_text<'a>(base: &MessageView<'a>, name: &[u8]) -> Option<&'a [u8]> {
    match base.field(name, 0)?.value(0)? {
        FieldValue::String(text) | FieldValue::Bytes(text) => Some(text),
        _ => None,
    }
}

/// The parts of `value`: `%name%` resolved to a capture, a header or a field.
fn parts_of(value: &str, capture: &dyn Fn(&str) -> Option<usize>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let name_length = after
            .find(|character: char| !(character.is_alphanumeric() || character == '_'))
            .unwrap_or(after.len());
        if name_length == 0 || !after[name_length..].starts_with('%') {
            literal.push_str(&rest[..=start]);
            rest = after;
            continue;
        }
        literal.push_str(&rest[..start]);
        if !literal.is_empty() {
            parts.push(Part::Literal(
                std::mem::take(&mut literal).into_bytes().into(),
            ));
        }
        let name = &after[..name_length];
        let part = match (capture(name), header_named(name)) {
            (Some(index), _) => Part::Capture(index),
            (None, Some(Header::Str(header))) => Part::Header(header),
            (None, _) => Part::Field(name.as_bytes().into()),
        };
        parts.push(part);
        rest = &after[name_length + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into_bytes().into()));
    }
    parts
}

/// A string field to add.
#[derive(Clone, Copy, Debug)]
pub struct NewField<'a> {
    /// Its name.
    pub name: &'a [u8],
    /// Its representation, if any.
    pub representation: Option<&'a [u8]>,
    /// Its one string value.
    pub value: &'a [u8],
}

/// Headers to set on the message [`write_message`] writes; `None` keeps the base's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'a> {
    /// Uuid.
    pub uuid: Option<[u8; 16]>,
    /// Timestamp, in nanoseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Type.
    pub type_: Option<&'a [u8]>,
    /// Logger.
    pub logger: Option<&'a [u8]>,
    /// Severity.
    pub severity: Option<i64>,
    /// Payload.
    pub payload: Option<&'a [u8]>,
    /// EnvVersion.
    pub env_version: Option<&'a [u8]>,
    /// Pid.
    pub pid: Option<i64>,
    /// Hostname.
    pub hostname: Option<&'a [u8]>,
}

impl<'a> Headers<'a> {
    /// Sets string header `header` to `value`.
    pub fn set_str(&mut self, header: StrHeader, value: &'a [u8]) {
        let slot = match header {
            StrHeader::Type => &mut self.type_,
            StrHeader::Logger => &mut self.logger,
            StrHeader::Payload => &mut self.payload,
            StrHeader::EnvVersion => &mut self.env_version,
            StrHeader::Hostname => &mut self.hostname,
        };
        *slot = Some(value);
    }
}

/// Reads a Pid or Severity value: a decimal integer that fits an int32, a decimal part
/// dropped (`"1234.0"` is 1234).
pub fn parse_int32(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let whole = text.split_once('.').map_or(text, |(whole, _)| whole);
    whole.parse::<i32>().ok().map(i64::from)
}

/// Reads a Uuid value: 16 raw bytes, or the 36-character text form.
pub fn parse_uuid(text: &[u8]) -> Option<[u8; 16]> {
    if let Ok(raw) = <[u8; 16]>::try_from(text) {
        return Some(raw);
    }
    crate::message::view::parse_uuid(std::str::from_utf8(text).ok()?)
}

/// Appends the message made of `base`, `headers` over its headers, and `fields` after its
/// own fields. A base without a Uuid gets `fallback_uuid`.
pub fn write_message<'f>(
    base: &MessageView<'_>,
    headers: &Headers<'_>,
    fields: impl Iterator<Item = NewField<'f>>,
    fallback_uuid: &[u8; 16],
    out: &mut Vec<u8>,
) {
    let uuid = headers.uuid.as_ref().map(|uuid| &uuid[..]);
    let uuid = uuid.or_else(|| base.uuid().filter(|uuid| uuid.len() == 16));
    wire::put_bytes(out, 1, uuid.unwrap_or(&fallback_uuid[..]));
    let timestamp = headers.timestamp.or_else(|| base.timestamp()).unwrap_or(0);
    wire::put_int(out, 2, timestamp);
    let put_str = |out: &mut Vec<u8>, header: StrHeader, value: Option<&[u8]>| {
        if let Some(value) = value.or_else(|| base.str_header(header)) {
            wire::put_bytes(out, header as u32, value);
        }
    };
    let put_int = |out: &mut Vec<u8>, header: IntHeader, value: Option<i64>| {
        if let Some(value) = value.or_else(|| base.int_header(header)) {
            wire::put_int(out, header as u32, value);
        }
    };
    put_str(out, StrHeader::Type, headers.type_);
    put_str(out, StrHeader::Logger, headers.logger);
    put_int(out, IntHeader::Severity, headers.severity);
    put_str(out, StrHeader::Payload, headers.payload);
    put_str(out, StrHeader::EnvVersion, headers.env_version);
    put_int(out, IntHeader::Pid, headers.pid);
    put_str(out, StrHeader::Hostname, headers.hostname);
    base.for_each_field(|field| wire::put_bytes(out, 10, field.bytes()));
    for field in fields {
        put_string_field(out, &field);
    }
}

/// Appends a STRING field with one value (STRING is the schema's default value type, so it
/// is not written).
fn put_string_field(out: &mut Vec<u8>, field: &NewField<'_>) {
    fn member_bytes(length: usize) -> usize {
        1 + wire::varint_len(length as u64) + length
    }
    let mut size = member_bytes(field.name.len()) + member_bytes(field.value.len());
    if let Some(representation) = field.representation {
        size += member_bytes(representation.len());
    }
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, size as u64);
    wire::put_bytes(out, 1, field.name);
    if let Some(representation) = field.representation {
        wire::put_bytes(out, 3, representation);
    }
    wire::put_bytes(out, 4, field.value);
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::{Field, Message};
    use crate::message::{LineMeta, LineView, ProtoView};

    fn captures(name: &str) -> Option<usize> {
        ["Url", "Status"].iter().position(|known| *known == name)
    }

    #[test]
    fn values_interpolate_captures_headers_and_fields() {
        let template = Template::from_pairs(
            &[
                ("Type", "%Type%.decoded"),
                ("Url|uri", "%Url%"),
                ("Both", "%Status%:%Url%:100%:%%:%Nope%"),
                ("From", "%user%"),
                ("Payload|json", "{}"),
            ],
            &captures,
        )
        .expect("compiles");
        let original = Message {
            uuid: vec![7; 16],
            timestamp: 5,
            r#type: Some("nginx".into()),
            fields: vec![Field {
                name: "user".into(),
                value_string: vec!["ann".into()],
                ..Field::default()
            }],
            ..Message::default()
        }
        .encode_to_vec();
        let base = MessageView::Proto(ProtoView::new(&original));
        let values: [&[u8]; 2] = [b"/a?b", b"404"];
        let mut rendered = Rendered::default();
        template.render(&|index| values.get(index).copied(), &base, &mut rendered);
        let headers: Vec<_> = template.headers(&rendered).collect();
        assert_eq!(
            headers,
            vec![(Header::Str(StrHeader::Type), &b"nginx.decoded"[..])]
        );
        let fields: Vec<_> = template
            .fields(&rendered)
            .map(|field| (field.name, field.representation, field.value))
            .collect();
        assert_eq!(
            fields,
            vec![
                (&b"Url"[..], Some(&b"uri"[..]), &b"/a?b"[..]),
                (b"Both", None, b"404:/a?b:100%:%%:%Nope%"),
                (b"From", None, b"ann"),
                (b"Payload", Some(b"json"), b"{}"),
            ]
        );
    }

    #[test]
    fn the_written_message_keeps_the_base_and_adds_the_template() {
        let meta = LineMeta {
            type_: b"tcp".to_vec().into(),
            logger: b"tcp".to_vec().into(),
            hostname: b"h1".to_vec().into(),
        };
        let line = LineView {
            payload: b"GET /",
            uuid: [3; 16],
            timestamp: 42,
            meta: &meta,
        };
        let headers = Headers {
            severity: Some(4),
            type_: Some(b"access"),
            ..Headers::default()
        };
        let field = NewField {
            name: b"Url",
            representation: Some(b"uri"),
            value: b"/",
        };
        let mut out = Vec::new();
        let base = MessageView::Line(line);
        write_message(&base, &headers, [field].into_iter(), &[9; 16], &mut out);
        let message = Message::decode(&out[..]).expect("a valid message");
        assert_eq!(message.uuid, vec![3; 16]);
        assert_eq!(message.timestamp, 42);
        assert_eq!(message.r#type.as_deref(), Some("access"));
        assert_eq!(message.logger.as_deref(), Some("tcp"));
        assert_eq!(message.hostname.as_deref(), Some("h1"));
        assert_eq!(message.payload.as_deref(), Some("GET /"));
        assert_eq!(message.severity, Some(4));
        assert_eq!(message.fields.len(), 1);
        assert_eq!(message.fields[0].representation.as_deref(), Some("uri"));
        assert!(ProtoView::new(&out).validate().is_ok());
        // Rewriting the result again keeps its field and adds the next.
        let mut again = Vec::new();
        let base = MessageView::Proto(ProtoView::new(&out));
        write_message(
            &base,
            &Headers::default(),
            [field].into_iter(),
            &[9; 16],
            &mut again,
        );
        let message = Message::decode(&again[..]).expect("a valid message");
        assert_eq!(message.fields.len(), 2);
        assert_eq!(message.severity, Some(4));
    }

    #[test]
    fn bad_tables_and_values() {
        let mut table = toml::Table::new();
        table.insert("n".into(), toml::Value::Integer(1));
        assert_eq!(Template::compile(&table, &captures).unwrap_err().0, "n");
        assert!(Template::from_pairs(&[("|x", "v")], &captures).is_err());
        assert_eq!(parse_int32(b"1234.9"), Some(1234));
        assert_eq!(parse_int32(b"x"), None);
        assert_eq!(parse_int32(b"99999999999"), None);
        assert_eq!(parse_uuid(&[1; 16]), Some([1; 16]));
        assert_eq!(parse_uuid(b"not a uuid"), None);
    }
}

/// The options PayloadRegexDecoder and PayloadJsonDecoder share, planned: the template, the
/// severity names, and how a `Timestamp` is read.
#[derive(Debug, Clone)]
pub struct PayloadPlan {
    /// `message_fields`.
    pub template: Template,
    /// `severity_map`: a `Severity` value's name and its number.
    pub severity_map: Box<[(Box<[u8]>, i64)]>,
    /// `timestamp_layout`.
    pub layout: crate::calendar::go_layout::GoLayout,
    /// `timestamp_location`; `None` is UTC.
    pub location: Option<crate::zone::Zone>,
    /// The index of the capture named `Timestamp`, if any.
    pub timestamp_capture: Option<usize>,
    /// The index of the capture named `Severity`, if any.
    pub severity_capture: Option<usize>,
}

/// The default `timestamp_layout`: RFC 3339.
pub const TIMESTAMP_LAYOUT_DEFAULT: &str = "2006-01-02T15:04:05Z07:00";

/// The shared keys of a payload decoder's section, as configured (each decoder's raw struct
/// has them as its own keys, so that a type error names its key's full path).
#[derive(Debug, Default)]
pub struct RawPayloadOptions {
    /// A `Severity` capture's names and the numbers they stand for (`WARNING = 4`).
    pub severity_map: std::collections::BTreeMap<String, i32>,
    /// Fields and headers to set, `%name%` interpolating captures.
    pub message_fields: toml::Table,
    /// The Go layout of a `Timestamp` capture; default RFC 3339.
    pub timestamp_layout: Option<String>,
    /// The zone of a `Timestamp` written without an offset; default UTC.
    pub timestamp_location: Option<String>,
}

/// What a payload decoder noticed but did not fail on, for its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// A `Timestamp` did not follow the layout: the message keeps its time of reading.
    pub timestamp_unread: bool,
    /// A `Severity` capture was neither in `severity_map` nor a number: left unset.
    pub severity_unread: bool,
}

impl PayloadPlan {
    /// Plans the shared options of `section`; `capture` gives a capture name's index.
    ///
    /// # Errors
    /// A bad layout, zone or template entry, naming its key.
    pub fn plan(
        section: &crate::config::Section,
        raw: &RawPayloadOptions,
        capture: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<PayloadPlan, crate::config::ConfigError> {
        let template =
            Template::compile(&raw.message_fields, capture).map_err(|(key, message)| {
                let key = if key.is_empty() {
                    "message_fields".to_string()
                } else {
                    format!("message_fields.{key}")
                };
                section.error(Some(&key), message)
            })?;
        let layout = raw
            .timestamp_layout
            .as_deref()
            .unwrap_or(TIMESTAMP_LAYOUT_DEFAULT);
        let layout = crate::calendar::go_layout::GoLayout::compile(layout)
            .map_err(|message| section.error(Some("timestamp_layout"), message))?;
        let location = match raw.timestamp_location.as_deref() {
            None | Some("UTC") => None,
            Some(name) => Some(
                crate::zone::Zone::load(name)
                    .map_err(|message| section.error(Some("timestamp_location"), message))?,
            ),
        };
        let severity_map = raw
            .severity_map
            .iter()
            .map(|(name, number)| (name.as_bytes().into(), i64::from(*number)))
            .collect();
        Ok(PayloadPlan {
            template,
            severity_map,
            layout,
            location,
            timestamp_capture: capture("Timestamp"),
            severity_capture: capture("Severity"),
        })
    }

    /// A severity value: its `severity_map` number, else the number it is.
    fn severity(&self, text: &[u8]) -> Option<i64> {
        self.severity_map
            .iter()
            .find(|(name, _)| &name[..] == text)
            .map(|(_, number)| *number)
            .or_else(|| parse_int32(text))
    }

    /// Appends the message `base` and `capture` make. `fallback_uuid` is the Uuid of a base
    /// without one.
    ///
    /// # Errors
    /// A template's Severity, Pid or Uuid value that does not read as one.
    pub fn write<'c>(
        &self,
        base: &MessageView<'_>,
        capture: &dyn Fn(usize) -> Option<&'c [u8]>,
        now_ns: i64,
        fallback_uuid: &[u8; 16],
        rendered: &mut Rendered,
        out: &mut Vec<u8>,
    ) -> Result<Notes, &'static str> {
        let mut notes = Notes::default();
        let mut headers = Headers::default();
        let location = self.location.as_ref();
        if let Some(text) = self.timestamp_capture.and_then(capture) {
            match self.layout.parse(text, location, now_ns) {
                Ok(timestamp) => headers.timestamp = Some(timestamp),
                Err(_) => notes.timestamp_unread = true,
            }
        }
        if let Some(text) = self.severity_capture.and_then(capture) {
            headers.severity = self.severity(text);
            notes.severity_unread = headers.severity.is_none();
        }
        self.template.render(capture, base, rendered);
        for (header, value) in self.template.headers(rendered) {
            match header {
                Header::Str(header) => headers.set_str(header, value),
                Header::Severity => {
                    headers.severity = Some(self.severity(value).ok_or("bad_severity")?)
                }
                Header::Pid => headers.pid = Some(parse_int32(value).ok_or("bad_pid")?),
                Header::Uuid => headers.uuid = Some(parse_uuid(value).ok_or("bad_uuid")?),
                Header::Timestamp => match self.layout.parse(value, location, now_ns) {
                    Ok(timestamp) => headers.timestamp = Some(timestamp),
                    Err(_) => notes.timestamp_unread = true,
                },
            }
        }
        write_message(
            base,
            &headers,
            self.template.fields(rendered),
            fallback_uuid,
            out,
        );
        Ok(notes)
    }
}
