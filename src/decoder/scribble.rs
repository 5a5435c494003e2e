//! ScribbleDecoder: sets fixed `message_fields` on every message (tagging), most often as the
//! last decoder of a MultiDecoder chain (`cascade_strategy = "all"`).
//!
//! Bytes in, bytes out: the message is rewritten, not decoded. Its headers are kept unless an
//! entry sets them, its fields are copied byte for byte, and the entries' fields are appended.
//! Alone behind an input, the record is a line (its Payload); behind a ProtobufDecoder in a
//! MultiDecoder, it is the Heka message that decoder checked. Values are taken as written (no
//! `%name%` interpolation, as in Heka); header values are read once, at startup.

use std::sync::Arc;

use serde::Deserialize;

use super::template::{
    parse_int32, parse_uuid, target_of, Header, Headers, NewField, Rewrite, Scratch, Target,
};
use super::{DecodeContext, Decoder, DecoderBuild, DecoderKind};
use crate::calendar::go_layout::GoLayout;
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::message::{MessageView, StrHeader};

/// `ScribbleDecoder` as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScribbleDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The fields and headers to set, `name = "value"` (`name|repr` for a representation).
    #[serde(default)]
    message_fields: toml::Table,
}

/// The ScribbleDecoder kind: the headers and fields it sets, read at startup.
#[derive(Debug, Clone, Default)]
pub struct ScribbleDecoderKind {
    strings: Vec<(StrHeader, Box<[u8]>)>,
    severity: Option<i64>,
    pid: Option<i64>,
    uuid: Option<[u8; 16]>,
    timestamp: Option<i64>,
    fields: Vec<FixedField>,
}

/// A field every message gets: name, representation, value.
type FixedField = (Box<[u8]>, Option<Box<[u8]>>, Box<[u8]>);

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn DecoderKind>> = Registration {
    type_names: &["ScribbleDecoder"],
    plan: plan_scribble,
};

fn plan_scribble(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn DecoderKind>, ConfigError> {
    let raw = section.parse::<RawScribbleDecoder>()?;
    if raw.message_fields.len() > super::template::TEMPLATE_ENTRIES_MAX {
        let max = super::template::TEMPLATE_ENTRIES_MAX;
        return Err(section.error(Some("message_fields"), format!("at most {max} entries")));
    }
    let mut kind = ScribbleDecoderKind::default();
    for (key, value) in &raw.message_fields {
        let path = format!("message_fields.{key}");
        let error = |message: &str| section.error(Some(&path), message.to_string());
        let value = value.as_str().ok_or_else(|| error("a value is a string"))?;
        let bytes = value.as_bytes();
        match target_of(key).map_err(|message| error(&message))? {
            Target::Header(Header::Str(header)) => kind.strings.push((header, bytes.into())),
            Target::Header(Header::Severity) => {
                kind.severity = Some(parse_int32(bytes).ok_or_else(|| error("not a number"))?);
            }
            Target::Header(Header::Pid) => {
                kind.pid = Some(parse_int32(bytes).ok_or_else(|| error("not a number"))?);
            }
            Target::Header(Header::Uuid) => {
                kind.uuid = Some(parse_uuid(bytes).ok_or_else(|| error("not a UUID"))?);
            }
            Target::Header(Header::Timestamp) => {
                let layout = GoLayout::compile(super::template::TIMESTAMP_LAYOUT_DEFAULT)
                    .map_err(|message| error(&message))?;
                let timestamp = layout.parse(bytes, None, 0);
                kind.timestamp = Some(timestamp.map_err(|_| error("not an RFC 3339 time"))?);
            }
            Target::Field {
                name,
                representation,
            } => kind.fields.push((name, representation, bytes.into())),
        }
    }
    Ok(Arc::new(kind))
}

impl DecoderKind for ScribbleDecoderKind {
    fn type_name(&self) -> &'static str {
        "ScribbleDecoder"
    }

    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String> {
        Ok(Box::new(ScribbleDecoder {
            kind: self.clone(),
            scratch: Scratch::new(build.global.max_message_size),
        }))
    }
}

/// One core's ScribbleDecoder.
struct ScribbleDecoder {
    kind: ScribbleDecoderKind,
    scratch: Scratch,
}

impl Rewrite for ScribbleDecoder {
    /// Appends `base` with the kind's headers and fields.
    fn rewrite(
        &mut self,
        base: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let kind = &self.kind;
        let mut headers = Headers {
            uuid: kind.uuid,
            timestamp: kind.timestamp,
            severity: kind.severity,
            pid: kind.pid,
            ..Headers::default()
        };
        for (header, value) in &kind.strings {
            headers.set_str(*header, value);
        }
        let fields = kind
            .fields
            .iter()
            .map(|(name, representation, value)| NewField {
                name,
                representation: representation.as_deref(),
                value,
            });
        let uuid = context.uuids.next_uuid();
        super::template::write_message(base, &headers, fields, &uuid, out);
        Ok(())
    }

    fn scratch(&mut self) -> &mut Scratch {
        &mut self.scratch
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use crate::decoder::testing::Harness;
    use crate::message::proto::Message;

    #[test]
    fn every_message_gets_the_fields_and_headers() {
        let kind = Harness::plan(
            "[tag]\ntype = \"ScribbleDecoder\"\n[tag.message_fields]\n\
             Type = \"tagged\"\nSeverity = \"2\"\nenv = \"prod\"\nurl|uri = \"%not_interpolated%\"\n",
            "tag",
        )
        .expect("plans");
        let mut harness = Harness::new();
        let messages = harness.decode(&kind, b"a line").expect("decodes");
        let message = Message::decode(&messages[0][..]).unwrap();
        assert_eq!(message.r#type.as_deref(), Some("tagged"));
        assert_eq!(message.severity, Some(2));
        assert_eq!(message.payload.as_deref(), Some("a line"));
        assert_eq!(message.hostname.as_deref(), Some("h1"));
        assert_eq!(message.fields.len(), 2);
        assert_eq!(message.fields[0].name, "env");
        assert_eq!(message.fields[1].value_string, vec!["%not_interpolated%"]);
        assert_eq!(message.fields[1].representation.as_deref(), Some("uri"));
    }
}
