//! The Elasticsearch encoders, ESJsonEncoder ([`esjson`]) and ESLogstashV0Encoder
//! ([`logstash`]): each message becomes one `_bulk` API item of two lines, the action and the
//! document.
//!
//! ```text
//! {"index":{"_index":"heka-2013.07.16","_type":"message","_id":"1234"}}\n
//! {"Uuid":"87cf1ac2-…","Timestamp":"2013-07-16T15:49:05","Type":"TEST",…,"status":[200,404]}\n
//! ```
//!
//! Both kinds plan to one [`EsPlan`] and run as one [`EsEncoder`]; they differ in the
//! document's keys (ESLogstashV0Encoder's `@`-prefixed schema with its dynamic fields nested
//! under `@fields`) and in how the document's type is chosen. The action line:
//! - `_index` is the `index` template rendered ([`crate::encoder::interpolate`]) and
//!   lower-cased, as Elasticsearch requires; its dates come from the message's Timestamp with
//!   `es_index_from_timestamp`, else from the time of encoding;
//! - `_type` is the `type_name` template rendered; an empty `type_name` leaves `_type` out
//!   (Elasticsearch 7 deprecated document types and 8 refuses them);
//! - `_id` is the `id` template rendered, left out when `id` is unset or names a field the
//!   message does not have (Elasticsearch then makes one up).
//!
//! The JSON is written by hand ([`json`]), so any message encodes, whatever its bytes.
//! Nothing is allocated per message once the encoder's buffers have grown.

pub mod esjson;
pub mod json;
pub mod logstash;

use super::interpolate::{push_decimal, Missing, Template, TimeSource};
use super::strftime::TsFormat;
use super::{Encode, EncodeFailed, Framing};
use crate::config::{ConfigError, Section};
use crate::limits::{ES_FIELD_NAMES_MAX, ES_TEMPLATE_BYTES_MAX};
use crate::message::view::format_uuid;
use crate::message::{IntHeader, MessageView, StrHeader};

/// One part of the message a document can hold (the `fields` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The Uuid, as 36-character text.
    Uuid,
    /// The Timestamp, formatted by the `timestamp` option.
    Timestamp,
    /// The Type header.
    Type,
    /// The Logger header.
    Logger,
    /// The Severity header, a number (7 when absent).
    Severity,
    /// The Payload.
    Payload,
    /// The EnvVersion header.
    EnvVersion,
    /// The Pid header, a number (0 when absent).
    Pid,
    /// The Hostname header.
    Hostname,
    /// The dynamic fields (those `dynamic_fields` names, or all).
    DynamicFields,
}

impl Part {
    /// Every part, in Heka's default order.
    pub const ALL: [Part; 10] = [
        Part::Uuid,
        Part::Timestamp,
        Part::Type,
        Part::Logger,
        Part::Severity,
        Part::Payload,
        Part::EnvVersion,
        Part::Pid,
        Part::Hostname,
        Part::DynamicFields,
    ];

    /// The name the `fields` option uses (and ESJsonEncoder's default key).
    pub fn name(self) -> &'static str {
        match self {
            Part::Uuid => "Uuid",
            Part::Timestamp => "Timestamp",
            Part::Type => "Type",
            Part::Logger => "Logger",
            Part::Severity => "Severity",
            Part::Payload => "Payload",
            Part::EnvVersion => "EnvVersion",
            Part::Pid => "Pid",
            Part::Hostname => "Hostname",
            Part::DynamicFields => "DynamicFields",
        }
    }

    /// The part a `fields` entry names, in any case; `Fields` is Heka's old name for
    /// `DynamicFields`.
    pub fn from_name(name: &str) -> Option<Part> {
        if name.eq_ignore_ascii_case("Fields") {
            return Some(Part::DynamicFields);
        }
        Part::ALL
            .into_iter()
            .find(|part| part.name().eq_ignore_ascii_case(name))
    }
}

/// Where the document's type (ESLogstashV0Encoder's `@type`) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentType {
    /// The message's Type header (ESJsonEncoder; ESLogstashV0Encoder with `use_message_type`
    /// or an empty `type_name`).
    Message,
    /// The `type_name` template rendered, or as written when it names a missing field.
    TypeName,
}

/// A validated Elasticsearch encoder: the options of either kind.
#[derive(Clone, Debug)]
pub struct EsPlan {
    /// The kind's Heka type name.
    pub kind: &'static str,
    /// The `_index` template (`index`).
    pub index: String,
    /// The `_type` template (`type_name`); empty leaves `_type` out.
    pub type_name: String,
    /// The `_id` template (`id`), if any.
    pub id: Option<String>,
    /// Dates in templates from the message's Timestamp rather than now.
    pub es_index_from_timestamp: bool,
    /// The document's parts in order, each with its key.
    pub parts: Vec<(Part, String)>,
    /// The strftime format of the Timestamp part (`timestamp`).
    pub timestamp: String,
    /// Dynamic fields written as they are, not as JSON strings (`raw_bytes_fields`).
    pub raw_bytes_fields: Vec<String>,
    /// The dynamic fields to write; empty means all (`dynamic_fields`).
    pub dynamic_fields: Vec<String>,
    /// What replaces each `.` in a dynamic field's name (`replace_dots_with`, default `.`).
    pub replace_dots_with: String,
    /// Where the Type part's value comes from.
    pub document_type: DocumentType,
    /// The dynamic fields nested in an object under this key (`@fields`), or inline.
    pub nested_fields: Option<&'static str>,
}

/// The options both kinds share, as configured.
pub(crate) struct CommonOptions {
    pub index: Option<String>,
    pub type_name: Option<String>,
    pub id: Option<String>,
    pub fields: Option<Vec<String>>,
    pub timestamp: Option<String>,
    pub es_index_from_timestamp: Option<bool>,
    pub raw_bytes_fields: Option<Vec<String>>,
    pub dynamic_fields: Option<Vec<String>>,
    pub replace_dots_with: Option<String>,
}

/// Checks the shared options and returns the parts named by `fields`, in order.
pub(crate) fn plan_common(
    section: &Section,
    options: &CommonOptions,
) -> Result<Vec<Part>, ConfigError> {
    for (key, value) in [
        ("index", &options.index),
        ("type_name", &options.type_name),
        ("id", &options.id),
        ("timestamp", &options.timestamp),
        ("replace_dots_with", &options.replace_dots_with),
    ] {
        if let Some(value) = value {
            if value.len() > ES_TEMPLATE_BYTES_MAX {
                return Err(section.error(
                    Some(key),
                    format!(
                        "{} bytes is above the limit of {ES_TEMPLATE_BYTES_MAX}",
                        value.len()
                    ),
                ));
            }
        }
    }
    for (key, list) in [
        ("fields", &options.fields),
        ("raw_bytes_fields", &options.raw_bytes_fields),
        ("dynamic_fields", &options.dynamic_fields),
    ] {
        let count = list.as_ref().map_or(0, Vec::len);
        if count > ES_FIELD_NAMES_MAX {
            return Err(section.error(
                Some(key),
                format!("{count} names is above the limit of {ES_FIELD_NAMES_MAX}"),
            ));
        }
    }
    let parts = match &options.fields {
        None => Part::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|name| {
                Part::from_name(name).ok_or_else(|| {
                    let choices: Vec<&str> = Part::ALL.iter().map(|part| part.name()).collect();
                    section.error(
                        Some("fields"),
                        format!("`{name}` is not one of {}", choices.join(", ")),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let listed = options
        .dynamic_fields
        .as_ref()
        .is_some_and(|list| !list.is_empty());
    if listed && !parts.contains(&Part::DynamicFields) {
        return Err(section.error(
            Some("dynamic_fields"),
            "`fields` must list DynamicFields when `dynamic_fields` is set",
        ));
    }
    Ok(parts)
}

/// Compiles the plan's templates and timestamp format once, so that one gyges cannot render
/// fails at startup naming its key.
pub(crate) fn check_formats(section: &Section, plan: &EsPlan) -> Result<(), ConfigError> {
    let templates = [
        ("index", Some(&plan.index)),
        ("type_name", Some(&plan.type_name)),
        ("id", plan.id.as_ref()),
    ];
    for (key, text) in templates {
        if let Some(text) = text {
            Template::new(text, Missing::Name, json::write_double)
                .map_err(|error| section.error(Some(key), error.to_string()))?;
        }
    }
    TsFormat::new(&plan.timestamp)
        .map_err(|error| section.error(Some("timestamp"), error.to_string()))?;
    Ok(())
}

impl super::EncoderKind for EsPlan {
    fn type_name(&self) -> &'static str {
        self.kind
    }

    fn build(
        &self,
        global: &crate::config::plan::GlobalPlan,
        _: Option<usize>,
    ) -> Result<Box<dyn Encode>, String> {
        EsEncoder::new(self, global.max_message_size)
            .map(|encoder| Box::new(encoder) as Box<dyn Encode>)
            .map_err(|error| error.to_string())
    }
}

/// The Timestamp part's format and its text, cached for the second it was made for.
#[derive(Debug)]
struct CachedTime {
    format: TsFormat,
    second: Option<i64>,
    text: Vec<u8>,
}

/// One core's Elasticsearch encoder.
#[derive(Debug)]
pub struct EsEncoder {
    index: Template,
    type_name: Option<Template>,
    id: Option<Template>,
    time: TimeSource,
    /// Each part with its key, already quoted and followed by `:`.
    parts: Box<[(Part, Box<[u8]>)]>,
    timestamp: CachedTime,
    raw_bytes_fields: Box<[Box<[u8]>]>,
    dynamic_fields: Box<[Box<[u8]>]>,
    replace_dots_with: Option<Box<[u8]>>,
    document_type: DocumentType,
    /// `"@fields":{` for nested dynamic fields.
    nested_fields: Option<Box<[u8]>>,
    scratch: Vec<u8>,
    lowercase: Vec<u8>,
    framed: Vec<u8>,
    message_bytes_max: usize,
}

fn key_bytes(key: &str) -> Box<[u8]> {
    let mut bytes = Vec::with_capacity(key.len() + 3);
    json::write_string(&mut bytes, key.as_bytes());
    bytes.push(b':');
    bytes.into()
}

fn nonempty(text: Option<&String>) -> Option<&str> {
    text.map(String::as_str).filter(|text| !text.is_empty())
}

fn names(list: &[String]) -> Box<[Box<[u8]>]> {
    list.iter().map(|name| name.as_bytes().into()).collect()
}

impl EsEncoder {
    /// The encoder `plan` describes; framed encodings above `message_bytes_max` are refused.
    ///
    /// # Errors
    /// A strftime format gyges cannot render, in a template or in `timestamp`.
    pub fn new(
        plan: &EsPlan,
        message_bytes_max: usize,
    ) -> Result<EsEncoder, super::strftime::TsFormatError> {
        let template = |text: &str| Template::new(text, Missing::Name, json::write_double);
        Ok(EsEncoder {
            index: template(&plan.index)?,
            type_name: nonempty(Some(&plan.type_name)).map(template).transpose()?,
            id: nonempty(plan.id.as_ref()).map(template).transpose()?,
            time: if plan.es_index_from_timestamp {
                TimeSource::Message
            } else {
                TimeSource::Now
            },
            parts: plan
                .parts
                .iter()
                .map(|(part, key)| (*part, key_bytes(key)))
                .collect(),
            timestamp: CachedTime {
                format: TsFormat::new(&plan.timestamp)?,
                second: None,
                text: Vec::with_capacity(64),
            },
            raw_bytes_fields: names(&plan.raw_bytes_fields),
            dynamic_fields: names(&plan.dynamic_fields),
            replace_dots_with: (plan.replace_dots_with != ".")
                .then(|| plan.replace_dots_with.as_bytes().into()),
            document_type: plan.document_type,
            nested_fields: plan.nested_fields.map(|key| {
                let mut bytes = key_bytes(key).into_vec();
                bytes.push(b'{');
                bytes.into()
            }),
            scratch: Vec::with_capacity(256),
            lowercase: Vec::with_capacity(256),
            framed: Vec::new(),
            message_bytes_max,
        })
    }

    /// Appends the bulk item for `message`: the action line and the document line.
    pub fn encode(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        self.write_action(message, out);
        self.write_document(message, out);
    }

    fn write_action(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"index":{"_index":""#);
        self.scratch.clear();
        self.index.render(message, self.time, &mut self.scratch);
        json::write_lowercase_body(out, &self.scratch, &mut self.lowercase);
        out.push(b'"');
        if let Some(type_name) = &mut self.type_name {
            out.extend_from_slice(br#","_type":""#);
            self.scratch.clear();
            type_name.render(message, self.time, &mut self.scratch);
            json::write_string_body(out, &self.scratch);
            out.push(b'"');
        }
        if let Some(id) = &mut self.id {
            self.scratch.clear();
            if id.render(message, self.time, &mut self.scratch) {
                out.extend_from_slice(br#","_id":""#);
                json::write_string_body(out, &self.scratch);
                out.push(b'"');
            }
        }
        out.extend_from_slice(b"}}\n");
    }

    fn write_document(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for index in 0..self.parts.len() {
            let part = self.parts[index].0;
            if part == Part::DynamicFields {
                first = self.write_dynamic_fields(message, first, out);
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.parts[index].1);
            self.write_part(part, message, out);
        }
        out.extend_from_slice(b"}\n");
    }

    fn write_part(&mut self, part: Part, message: &MessageView<'_>, out: &mut Vec<u8>) {
        let text = |header| message.str_header(header).unwrap_or(b"");
        match part {
            Part::Uuid => {
                out.push(b'"');
                if let Some(uuid) = message
                    .uuid()
                    .and_then(|uuid| <[u8; 16]>::try_from(uuid).ok())
                {
                    out.extend_from_slice(&format_uuid(&uuid));
                }
                out.push(b'"');
            }
            Part::Timestamp => {
                let second = message.timestamp().unwrap_or(0).div_euclid(1_000_000_000);
                let cache = &mut self.timestamp;
                if cache.second != Some(second) {
                    cache.text.clear();
                    cache.format.format(second, &mut cache.text);
                    cache.second = Some(second);
                }
                json::write_string(out, &cache.text);
            }
            Part::Type => self.write_type(message, out),
            Part::Logger => json::write_string(out, text(StrHeader::Logger)),
            Part::Severity => {
                push_decimal(out, message.int_header(IntHeader::Severity).unwrap_or(7))
            }
            Part::Payload => json::write_string(out, text(StrHeader::Payload)),
            Part::EnvVersion => json::write_string(out, text(StrHeader::EnvVersion)),
            Part::Pid => push_decimal(out, message.int_header(IntHeader::Pid).unwrap_or(0)),
            Part::Hostname => json::write_string(out, text(StrHeader::Hostname)),
            // Written by `write_dynamic_fields`.
            Part::DynamicFields => {}
        }
    }

    /// The Type part: the message's Type, or ESLogstashV0Encoder's rendered `type_name`
    /// (as written when it names a field the message lacks).
    fn write_type(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        let template = match (self.document_type, &mut self.type_name) {
            (DocumentType::TypeName, Some(template)) => template,
            _ => {
                let value = message.str_header(StrHeader::Type).unwrap_or(b"");
                return json::write_string(out, value);
            }
        };
        self.scratch.clear();
        let complete = template.render(message, self.time, &mut self.scratch);
        if complete && !self.scratch.is_empty() {
            json::write_string(out, &self.scratch);
        } else {
            json::write_string(out, template.text());
        }
    }

    /// Writes the dynamic fields, inline or nested; returns the new `first` (whether nothing
    /// has been written in the document yet).
    fn write_dynamic_fields(
        &mut self,
        message: &MessageView<'_>,
        mut first: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        if let Some(key) = &self.nested_fields {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(key);
        }
        let nested = self.nested_fields.is_some();
        let mut first_field = if nested { true } else { first };
        let scratch = &mut self.scratch;
        let only = &self.dynamic_fields;
        let raw = &self.raw_bytes_fields;
        let replace_dots_with = self.replace_dots_with.as_deref();
        message.for_each_field(|field| {
            let Some(name) = field.name() else {
                return;
            };
            if !only.is_empty() && !only.iter().any(|wanted| wanted[..] == *name) {
                return;
            }
            if !first_field {
                out.push(b',');
            }
            first_field = false;
            write_field_key(out, name, replace_dots_with, scratch);
            let is_raw = raw.iter().any(|wanted| wanted[..] == *name);
            json::write_field_values(out, &field, is_raw);
        });
        if nested {
            out.push(b'}');
            first = false;
        } else {
            first = first_field;
        }
        first
    }
}

fn write_field_key(
    out: &mut Vec<u8>,
    name: &[u8],
    replace_dots_with: Option<&[u8]>,
    scratch: &mut Vec<u8>,
) {
    match replace_dots_with {
        Some(replacement) if memchr::memchr(b'.', name).is_some() => {
            scratch.clear();
            for (index, piece) in name.split(|&byte| byte == b'.').enumerate() {
                if index > 0 {
                    scratch.extend_from_slice(replacement);
                }
                scratch.extend_from_slice(piece);
            }
            json::write_string(out, scratch);
        }
        _ => json::write_string(out, name),
    }
    out.push(b':');
}

impl Encode for EsEncoder {
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        match framing {
            Framing::None => {
                let before = out.len();
                self.encode(message, out);
                Ok(out.len() - before)
            }
            Framing::Heka(signer) => {
                let mut framed = std::mem::take(&mut self.framed);
                framed.clear();
                self.encode(message, &mut framed);
                let result = if framed.len() > self.message_bytes_max {
                    Err(EncodeFailed)
                } else {
                    let before = out.len();
                    crate::message::framing::write_frame(out, &framed, signer)
                        .map(|()| out.len() - before)
                        .map_err(|_| EncodeFailed)
                };
                self.framed = framed;
                result
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::{Field, Message};
    use crate::message::ProtoView;

    /// Today (UTC) in `format`.
    pub fn today(format: &str) -> String {
        let mut out = Vec::new();
        TsFormat::new(format)
            .unwrap()
            .format(crate::message::now_ns() / 1_000_000_000, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn field(name: &str, value_type: i32) -> Field {
        Field {
            name: name.into(),
            value_type: Some(value_type),
            ..Field::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> Field {
        Field {
            value_string: values.iter().map(|value| value.to_string()).collect(),
            ..field(name, 0)
        }
    }

    fn bytes(name: &str, values: &[&str]) -> Field {
        Field {
            value_bytes: values
                .iter()
                .map(|value| value.as_bytes().to_vec())
                .collect(),
            ..field(name, 1)
        }
    }

    /// The message of Heka's own encoder tests: every value type, arrays, funny names.
    pub fn sample_message() -> Message {
        Message {
            uuid: crate::message::view::parse_uuid("87cf1ac2-e810-4ddf-a02d-a5ce44d13a85")
                .unwrap()
                .to_vec(),
            // 2013-07-16T15:49:05Z
            timestamp: 1_373_989_745_000_000_000,
            r#type: Some("TEST".into()),
            logger: Some("GoSpec".into()),
            severity: Some(6),
            payload: Some("Test Payload".into()),
            env_version: Some("0.8".into()),
            pid: Some(14098),
            hostname: Some("hostname".into()),
            fields: vec![
                strings("\"foo", &["bar\n"]),
                Field {
                    value_integer: vec![64],
                    ..field("\"number", 2)
                },
                // Both bytes become 0xa3 (not UTF-8) in `sample`.
                strings("~", &["~"]),
                strings("idField", &["1234"]),
                bytes(
                    "test_raw_field_bytes_array",
                    &[r#"{"asdf":123}"#, r#"{"jkl;":123}"#],
                ),
                bytes("byteArray", &["asdf", "jkl;"]),
                Field {
                    value_integer: vec![22, 80, 3000],
                    ..field("integerArray", 2)
                },
                Field {
                    value_double: vec![42.0, 19101.3],
                    ..field("doubleArray", 3)
                },
                Field {
                    value_bool: vec![true, false, false, false, true],
                    ..field("boolArray", 4)
                },
                strings("test_raw_field_string", &[r#"{"asdf":123}"#]),
                bytes("test_raw_field_bytes", &[r#"{"asdf":123}"#]),
                strings(
                    "test_raw_field_string_array",
                    &[r#"{"asdf":123}"#, r#"{"jkl;":123}"#],
                ),
                strings("stringArray", &["asdf", "jkl;", "push", "pull"]),
            ],
        }
    }

    fn to_bytes(message: &Message) -> Vec<u8> {
        let mut bytes = message.encode_to_vec();
        for byte in bytes.iter_mut() {
            if *byte == b'~' {
                *byte = 0xa3;
            }
        }
        bytes
    }

    /// The sample's bytes.
    pub fn sample() -> Vec<u8> {
        to_bytes(&sample_message())
    }

    /// The sample changed by `change`, as bytes.
    pub fn sample_with(change: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut message = sample_message();
        change(&mut message);
        to_bytes(&message)
    }

    fn section(kind: &str, options: &str) -> Section {
        let mut table: toml::Table = toml::from_str(options).unwrap();
        table.insert("type".into(), toml::Value::String(kind.into()));
        Section {
            file: "test.toml".into(),
            name: "Enc".into(),
            table,
        }
    }

    /// Plans a section of `kind` with `options` (TOML).
    pub fn plan_section(kind: &str, options: &str) -> EsPlan {
        let section = section(kind, options);
        let planned = match kind {
            "ESJsonEncoder" => esjson::es_json_plan(&section),
            _ => logstash::logstash_plan(&section),
        };
        planned.unwrap()
    }

    /// The error planning a section of `kind` with `options`.
    pub fn plan_error(kind: &str, options: &str) -> ConfigError {
        let section = section(kind, options);
        let planned = match kind {
            "ESJsonEncoder" => esjson::es_json_plan(&section),
            _ => logstash::logstash_plan(&section),
        };
        match planned {
            Ok(_) => panic!("expected an error for {options}"),
            Err(error) => error,
        }
    }

    /// Encodes message `bytes` with `plan`.
    pub fn encode(plan: &EsPlan, bytes: &[u8]) -> Vec<u8> {
        let mut encoder = EsEncoder::new(plan, 1 << 20).unwrap();
        let mut out = Vec::new();
        let view = MessageView::Proto(ProtoView::new(bytes));
        encoder.encode_into(&view, Framing::None, &mut out).unwrap();
        out
    }

    /// Encodes the sample changed by `change` with `plan`.
    pub fn encode_with(plan: &EsPlan, change: impl FnOnce(&mut Message)) -> Vec<u8> {
        encode(plan, &sample_with(change))
    }

    /// The two lines of one bulk item, checked to be exactly two newline-terminated lines.
    pub fn lines(bytes: &[u8]) -> (String, String) {
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 output");
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert!(text.ends_with('\n') && lines.len() == 2, "{text}");
        (lines[0].to_string(), lines[1].to_string())
    }

    #[test]
    fn plain_lines_have_headers_from_their_input() {
        let meta = crate::message::LineMeta {
            type_: (*b"line").into(),
            logger: (*b"TcpInput").into(),
            hostname: (*b"10.0.0.1").into(),
        };
        let line = crate::message::LineView {
            payload: b"GET / \"quoted\"",
            uuid: [0; 16],
            timestamp: 0,
            meta: &meta,
        };
        let plan = plan_section("ESJsonEncoder", "index = \"%{Logger}\"");
        let mut encoder = EsEncoder::new(&plan, 1 << 20).unwrap();
        let mut out = Vec::new();
        encoder.encode(&MessageView::Line(line), &mut out);
        let (action, document) = lines(&out);
        assert_eq!(
            action,
            r#"{"index":{"_index":"tcpinput","_type":"message"}}"#
        );
        assert_eq!(
            document,
            concat!(
                r#"{"Uuid":"00000000-0000-0000-0000-000000000000","Timestamp":"1970-01-01T00:00:00","#,
                r#""Type":"line","Logger":"TcpInput","Severity":7,"Payload":"GET / \u0022quoted\u0022","#,
                r#""EnvVersion":"","Pid":0,"Hostname":"10.0.0.1"}"#
            )
        );
    }

    #[test]
    fn framed_items_round_trip_and_big_ones_are_refused() {
        let plan = plan_section("ESJsonEncoder", "");
        let bytes = sample();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        let mut plain = Vec::new();
        EsEncoder::new(&plan, 1 << 20)
            .unwrap()
            .encode(&view, &mut plain);
        let mut framed = Vec::new();
        let mut encoder = EsEncoder::new(&plan, plain.len()).unwrap();
        let written = encoder
            .encode_into(&view, Framing::Heka(None), &mut framed)
            .unwrap();
        assert_eq!(written, framed.len());
        assert!(framed.ends_with(&plain));
        let mut small = EsEncoder::new(&plan, plain.len() - 1).unwrap();
        let mut out = b"kept".to_vec();
        assert_eq!(
            small.encode_into(&view, Framing::Heka(None), &mut out),
            Err(EncodeFailed)
        );
        assert_eq!(out, b"kept");
    }

    #[test]
    fn nothing_is_allocated_per_message_once_warm() {
        let plan = plan_section("ESJsonEncoder", "id = \"%{idField}\"");
        let bytes = sample();
        let mut encoder = EsEncoder::new(&plan, 1 << 20).unwrap();
        let mut out = Vec::with_capacity(1 << 16);
        for _ in 0..3 {
            out.clear();
            encoder.encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out);
        }
        let capacities = (out.capacity(), encoder.scratch.capacity());
        for _ in 0..100 {
            out.clear();
            encoder.encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out);
        }
        assert_eq!(capacities, (out.capacity(), encoder.scratch.capacity()));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn any_field() -> impl Strategy<Value = Field> {
            let name = proptest::collection::vec(any::<u8>(), 0..12);
            (name, 0..5i32, 0..4usize, any::<u64>()).prop_map(|(name, value_type, count, seed)| {
                let mut rng = fastrand::Rng::with_seed(seed);
                let text = |rng: &mut fastrand::Rng| -> String {
                    (0..rng.usize(0..10))
                        .map(|_| char::from_u32(rng.u32(0..0x11000)).unwrap_or('\u{7f}'))
                        .collect()
                };
                let mut field = Field {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    value_type: Some(value_type),
                    ..Field::default()
                };
                for _ in 0..count {
                    match value_type {
                        0 => field.value_string.push(text(&mut rng)),
                        1 => field
                            .value_bytes
                            .push((0..rng.usize(0..10)).map(|_| rng.u8(..)).collect()),
                        2 => field.value_integer.push(rng.i64(..)),
                        3 => field.value_double.push(f64::from_bits(rng.u64(..))),
                        _ => field.value_bool.push(rng.bool()),
                    }
                }
                field
            })
        }

        fn any_text() -> impl Strategy<Value = Option<Vec<u8>>> {
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
        }

        proptest! {
            #[test]
            fn every_item_is_two_lines_of_json(
                fields in proptest::collection::vec(any_field(), 0..6),
                payload in any_text(),
                logger in any_text(),
                timestamp in any::<i64>(),
                severity in proptest::option::of(any::<i32>()),
                logstash in any::<bool>(),
            ) {
                // Text headers get arbitrary bytes, appended at the wire level.
                let message = Message {
                    uuid: vec![7; 16],
                    timestamp,
                    severity,
                    fields,
                    ..Message::default()
                };
                let mut bytes = message.encode_to_vec();
                if let Some(payload) = &payload {
                    crate::message::wire::put_bytes(&mut bytes, 6, payload);
                }
                if let Some(logger) = &logger {
                    crate::message::wire::put_bytes(&mut bytes, 4, logger);
                }
                let kind = if logstash { "ESLogstashV0Encoder" } else { "ESJsonEncoder" };
                let plan = plan_section(kind, "id = \"%{Logger}\"\nreplace_dots_with = \"_\"");
                let out = encode(&plan, &bytes);
                let text = std::str::from_utf8(&out).expect("always UTF-8");
                let lines: Vec<&str> = text.split_terminator('\n').collect();
                prop_assert_eq!(lines.len(), 2, "{}", text);
                prop_assert!(text.ends_with('\n'));
                for line in lines {
                    let value: serde_json::Value = serde_json::from_str(line)
                        .map_err(|error| TestCaseError::fail(format!("{error}: {line}")))?;
                    prop_assert!(value.is_object());
                }
            }
        }
    }
}
