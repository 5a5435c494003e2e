//! PayloadJsonDecoder: JSONPaths into each record's Payload (`json_map`), and a
//! `message_fields` template that makes the message from what they find (`docs/decoders.md`).
//!
//! A path is `$` then any of `.name`, `['name']` and `[index]`. What a path finds is its
//! capture: a string as it is, a number, boolean, object or array as its JSON text; a path
//! that finds nothing (or `null`) captures nothing, and `%name%` of it interpolates empty. A
//! capture named `Timestamp` is read with `timestamp_layout` in `timestamp_location`, one named
//! `Severity` through `severity_map`, as PayloadRegexDecoder does. A Payload that is not JSON
//! is a decode failure.
//!
//! Per core: the document is parsed with serde_json into a value tree (this allocates per
//! record), each path walks it, and the captures and the message are written into buffers
//! reused record after record.

use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::template::{PayloadPlan, RawPayloadOptions, Rendered, Rewrite, Scratch};
use super::{DecodeContext, Decoder, DecoderBuild, DecoderKind};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::message::{MessageView, StrHeader};

/// The most `json_map` entries.
pub const JSON_MAP_ENTRIES_MAX: usize = 256;

/// `PayloadJsonDecoder` as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayloadJsonDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// Capture names and the JSONPaths that fill them (`Url = "$.request.url"`).
    #[serde(default)]
    json_map: toml::Table,
    /// A `Severity` capture's names and the numbers they stand for (`WARNING = 4`).
    #[serde(default)]
    severity_map: std::collections::BTreeMap<String, i32>,
    /// Fields and headers to set, `%name%` interpolating captures.
    #[serde(default)]
    message_fields: toml::Table,
    /// The Go layout of a `Timestamp` capture; default RFC 3339.
    timestamp_layout: Option<String>,
    /// The zone of a `Timestamp` written without an offset; default UTC.
    timestamp_location: Option<String>,
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(Box<str>),
    Index(usize),
}

/// Compiles a JSONPath of the supported subset.
fn compile_path(path: &str) -> Result<Box<[Step]>, String> {
    let bad = || format!("`{path}`: a path is `$` then `.name`, `['name']` or `[index]` steps");
    let mut rest = path.strip_prefix('$').ok_or_else(bad)?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(Step::Key(after[..end].into()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(bad)?;
            let inside = &after[..end];
            let quoted = inside
                .strip_prefix('\'')
                .and_then(|text| text.strip_suffix('\''))
                .or_else(|| {
                    inside
                        .strip_prefix('"')
                        .and_then(|text| text.strip_suffix('"'))
                });
            let step = match quoted {
                Some(key) => Step::Key(key.into()),
                None => Step::Index(inside.parse().map_err(|_| bad())?),
            };
            steps.push(step);
            rest = &after[end + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(steps.into())
}

/// What `steps` find in `root`.
fn find<'v>(root: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    steps.iter().try_fold(root, |value, step| match step {
        Step::Key(key) => value.get(&**key),
        Step::Index(index) => value.get(*index),
    })
}

/// The PayloadJsonDecoder kind.
#[derive(Debug, Clone)]
pub struct PayloadJsonDecoderKind {
    paths: Box<[Box<[Step]>]>,
    payload: PayloadPlan,
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn DecoderKind>> = Registration {
    type_names: &["PayloadJsonDecoder"],
    plan: plan_payload_json,
};

fn plan_payload_json(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn DecoderKind>, ConfigError> {
    let raw = section.parse::<RawPayloadJsonDecoder>()?;
    if raw.json_map.len() > JSON_MAP_ENTRIES_MAX {
        let message = format!("at most {JSON_MAP_ENTRIES_MAX} entries");
        return Err(section.error(Some("json_map"), message));
    }
    let mut names = Vec::with_capacity(raw.json_map.len());
    let mut paths = Vec::with_capacity(raw.json_map.len());
    for (name, path) in &raw.json_map {
        let key = format!("json_map.{name}");
        let path = path
            .as_str()
            .ok_or_else(|| section.error(Some(&key), "a path is a string"))?;
        paths.push(compile_path(path).map_err(|message| section.error(Some(&key), message))?);
        names.push(name.clone());
    }
    let capture = |name: &str| names.iter().position(|known| known == name);
    let options = RawPayloadOptions {
        severity_map: raw.severity_map,
        message_fields: raw.message_fields,
        timestamp_layout: raw.timestamp_layout,
        timestamp_location: raw.timestamp_location,
    };
    let payload = PayloadPlan::plan(section, &options, &capture)?;
    Ok(Arc::new(PayloadJsonDecoderKind {
        paths: paths.into(),
        payload,
    }))
}

impl DecoderKind for PayloadJsonDecoderKind {
    fn type_name(&self) -> &'static str {
        "PayloadJsonDecoder"
    }

    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String> {
        Ok(Box::new(PayloadJsonDecoder {
            kind: self.clone(),
            texts: Vec::new(),
            spans: Vec::with_capacity(self.paths.len()),
            rendered: Rendered::default(),
            scratch: Scratch::new(build.global.max_message_size),
        }))
    }
}

/// One core's PayloadJsonDecoder.
struct PayloadJsonDecoder {
    kind: PayloadJsonDecoderKind,
    /// The captures' text, one after another; `spans` says where each is.
    texts: Vec<u8>,
    spans: Vec<Option<Range<usize>>>,
    rendered: Rendered,
    scratch: Scratch,
}

impl Rewrite for PayloadJsonDecoder {
    /// Parses `base`'s Payload, captures the paths, and appends the message.
    fn rewrite(
        &mut self,
        base: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let payload = base.str_header(StrHeader::Payload).unwrap_or_default();
        let document: Value = serde_json::from_slice(payload).map_err(|_| "invalid_json")?;
        self.texts.clear();
        self.spans.clear();
        for steps in self.kind.paths.iter() {
            let start = self.texts.len();
            let span = match find(&document, steps) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => {
                    self.texts.extend_from_slice(text.as_bytes());
                    Some(start..self.texts.len())
                }
                Some(other) => {
                    serde_json::to_writer(&mut self.texts, other).map_err(|_| "invalid_json")?;
                    Some(start..self.texts.len())
                }
            };
            self.spans.push(span);
        }
        let (texts, spans) = (&self.texts, &self.spans);
        let capture = |index: usize| {
            let span = spans.get(index)?.clone()?;
            texts.get(span)
        };
        let uuid = context.uuids.next_uuid();
        let rendered = &mut self.rendered;
        self.kind
            .payload
            .write(base, &capture, context.now_ns, &uuid, rendered, out)?;
        Ok(())
    }

    fn scratch(&mut self) -> &mut Scratch {
        &mut self.scratch
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::decoder::testing::Harness;
    use crate::message::proto::Message;

    #[test]
    fn paths_compile_and_find() {
        let steps = compile_path("$.a['b c'][1].d").unwrap();
        let document: Value = serde_json::json!({"a": {"b c": [0, {"d": "x"}]}});
        assert_eq!(find(&document, &steps), Some(&Value::from("x")));
        assert_eq!(
            find(&document, &compile_path("$").unwrap()),
            Some(&document)
        );
        assert_eq!(find(&document, &compile_path("$.a.z").unwrap()), None);
        for bad in ["a.b", "$.", "$[x]", "$[1", "$..a", "$a"] {
            assert!(compile_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_json_payload_becomes_a_message_of_its_paths() {
        let kind = Harness::plan(
            "[json]\ntype = \"PayloadJsonDecoder\"\n\
             timestamp_layout = \"2006-01-02T15:04:05Z07:00\"\n\
             [json.json_map]\nTimestamp = \"$.time\"\nSeverity = \"$.level\"\n\
             Url = \"$.request.url\"\nStatus = \"$.request.status\"\nTag = \"$.tags[1]\"\n\
             Missing = \"$.nothing\"\n\
             [json.severity_map]\nwarn = 4\n\
             [json.message_fields]\nType = \"app.json\"\nUrl|uri = \"%Url%\"\n\
             Status = \"%Status%\"\nTag = \"%Tag%\"\nMissing = \"[%Missing%]\"\n",
            "json",
        )
        .expect("plans");
        let mut harness = Harness::new();
        let line = br#"{"time":"2026-12-03T12:00:00Z","level":"warn","request":{"url":"/x","status":404},"tags":["a","b"]}"#;
        let messages = harness.decode(&kind, line).expect("decodes");
        let message = Message::decode(&messages[0][..]).unwrap();
        assert_eq!(message.r#type.as_deref(), Some("app.json"));
        assert_eq!(message.timestamp, 1_796_299_200_000_000_000);
        assert_eq!(message.severity, Some(4));
        let fields: Vec<_> = message
            .fields
            .iter()
            .map(|field| (field.name.as_str(), field.value_string[0].as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("Url", "/x"),
                ("Status", "404"),
                ("Tag", "b"),
                ("Missing", "[]")
            ]
        );
        assert_eq!(harness.decode(&kind, b"{not json"), Err("invalid_json"));
    }
}
