//! PayloadRegexDecoder: a regex with named captures over each record's Payload, and a
//! `message_fields` template that makes the message from them (`docs/decoders.md`).
//!
//! The message keeps the record's headers (a line's Uuid, time of reading, Type, Logger and
//! Hostname, and its Payload) unless the template sets them; a capture named `Timestamp` is
//! read with `timestamp_layout` in `timestamp_location`, one named `Severity` through
//! `severity_map`. Only the template's entries become fields, as in Heka: a capture that no
//! entry names is not kept. A record the regex does not match is a decode failure (counted by
//! the input, passed on as it is if the input has `send_decode_failures`).
//!
//! Per core: the regex is cloned, so each core has its own match cache (the regex crate's
//! cache pool is owned by the thread that first uses it), and the capture positions, the
//! rendered values and the message are written into buffers reused record after record.

use std::sync::Arc;

use regex::bytes::{CaptureLocations, Regex, RegexBuilder};
use serde::Deserialize;

use super::template::{PayloadPlan, RawPayloadOptions, Rendered, Rewrite, Scratch};
use super::{DecodeContext, Decoder, DecoderBuild, DecoderKind};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::message::{MessageView, StrHeader};

/// The most bytes a compiled `match_regex` may take (the regex crate's size limit).
pub const REGEX_BYTES_MAX: usize = 1 << 20;

/// `PayloadRegexDecoder` as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayloadRegexDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The regex (RE2 syntax) the Payload must match; `(?P<name>...)` names a capture.
    match_regex: Option<String>,
    /// Log each record that does not match (at debug level; it is counted either way).
    #[serde(default)]
    log_errors: bool,
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

/// The PayloadRegexDecoder kind.
#[derive(Debug, Clone)]
pub struct PayloadRegexDecoderKind {
    /// The section's name, for logs.
    name: Arc<str>,
    /// `match_regex`, compiled.
    regex: Regex,
    /// The shared payload-decoder options.
    payload: PayloadPlan,
    /// `log_errors`.
    log_errors: bool,
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn DecoderKind>> = Registration {
    type_names: &["PayloadRegexDecoder"],
    plan: plan_payload_regex,
};

fn plan_payload_regex(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn DecoderKind>, ConfigError> {
    let raw = section.parse::<RawPayloadRegexDecoder>()?;
    let Some(pattern) = raw.match_regex.as_deref() else {
        return Err(section.error(Some("match_regex"), "a PayloadRegexDecoder needs a regex"));
    };
    let regex = RegexBuilder::new(pattern)
        .size_limit(REGEX_BYTES_MAX)
        .build()
        .map_err(|error| section.error(Some("match_regex"), error.to_string()))?;
    let capture = |name: &str| capture_index(&regex, name);
    let options = RawPayloadOptions {
        severity_map: raw.severity_map,
        message_fields: raw.message_fields,
        timestamp_layout: raw.timestamp_layout,
        timestamp_location: raw.timestamp_location,
    };
    let payload = PayloadPlan::plan(section, &options, &capture)?;
    Ok(Arc::new(PayloadRegexDecoderKind {
        name: section.name.as_str().into(),
        regex,
        payload,
        log_errors: raw.log_errors,
    }))
}

/// The index of the capture `name`: a named group, or an unnamed one by its number (`%1%`).
fn capture_index(regex: &Regex, name: &str) -> Option<usize> {
    let mut names = regex.capture_names().enumerate().skip(1);
    if let Some((index, _)) = names.clone().find(|(_, known)| *known == Some(name)) {
        return Some(index);
    }
    let number: usize = name.parse().ok()?;
    names
        .find(|(index, known)| *index == number && known.is_none())
        .map(|(index, _)| index)
}

impl DecoderKind for PayloadRegexDecoderKind {
    fn type_name(&self) -> &'static str {
        "PayloadRegexDecoder"
    }

    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String> {
        // A clone has its own cache pool, owned by this core's thread: no lock when matching.
        let regex = self.regex.clone();
        Ok(Box::new(PayloadRegexDecoder {
            locations: regex.capture_locations(),
            regex,
            kind: self.clone(),
            rendered: Rendered::default(),
            scratch: Scratch::new(build.global.max_message_size),
        }))
    }
}

/// One core's PayloadRegexDecoder.
struct PayloadRegexDecoder {
    kind: PayloadRegexDecoderKind,
    regex: Regex,
    locations: CaptureLocations,
    rendered: Rendered,
    scratch: Scratch,
}

impl Rewrite for PayloadRegexDecoder {
    /// Matches `base`'s Payload and appends the message it makes to `out`.
    fn rewrite(
        &mut self,
        base: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let payload = base.str_header(StrHeader::Payload).unwrap_or_default();
        if self
            .regex
            .captures_read(&mut self.locations, payload)
            .is_none()
        {
            if self.kind.log_errors {
                tracing::debug!(decoder = %self.kind.name, "the payload does not match");
            }
            return Err("no_match");
        }
        let locations = &self.locations;
        let capture = |index: usize| {
            locations
                .get(index)
                .map(|(start, end)| &payload[start..end])
        };
        let uuid = context.uuids.next_uuid();
        let notes = self.kind.payload.write(
            base,
            &capture,
            context.now_ns,
            &uuid,
            &mut self.rendered,
            out,
        )?;
        if self.kind.log_errors && notes != Default::default() {
            tracing::debug!(decoder = %self.kind.name, ?notes, "a capture did not read");
        }
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

    const ACCESS: &str = r#"^(?P<RemoteIP>\S+) \S+ \S+ \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>[^\s]+)[^"]*" (?P<StatusCode>\d{3}) (?P<RequestSize>\d+)"#;

    fn kind(extra: &str) -> Arc<dyn DecoderKind> {
        let text = format!(
            "[access]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '{ACCESS}'\n\
             timestamp_layout = \"02/Jan/2006:15:04:05 -0700\"\n{extra}"
        );
        Harness::plan(&text, "access").expect("plans")
    }

    #[test]
    fn an_access_line_becomes_a_message_of_its_captures() {
        let kind = kind(
            "[access.severity_map]\nGET = 6\n\
             [access.message_fields]\nType = \"nginx.access\"\nUrl|uri = \"%Url%\"\n\
             Status = \"%StatusCode%\"\nFrom = \"%RemoteIP% via %Logger%\"\n",
        );
        let mut harness = Harness::new();
        let line = br#"10.1.2.3 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326"#;
        let messages = harness.decode(&kind, line).expect("decodes");
        assert_eq!(messages.len(), 1);
        let message = Message::decode(&messages[0][..]).expect("a message");
        assert_eq!(message.r#type.as_deref(), Some("nginx.access"));
        assert_eq!(message.timestamp, 971_211_336_000_000_000);
        assert_eq!(
            message.payload.as_deref(),
            Some(std::str::from_utf8(line).unwrap())
        );
        assert_eq!(
            message.logger.as_deref(),
            Some("tcp_in"),
            "kept from the line"
        );
        let fields: Vec<_> = message
            .fields
            .iter()
            .map(|field| {
                (
                    field.name.as_str(),
                    field.representation.as_deref(),
                    field.value_string[0].as_str(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                ("Url", Some("uri"), "/a.gif"),
                ("Status", None, "200"),
                ("From", None, "10.1.2.3 via tcp_in"),
            ],
            "only the template's entries become fields"
        );
    }

    #[test]
    fn severity_maps_names_and_reads_numbers() {
        let kind = Harness::plan(
            "[d]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '^(?P<Severity>\\w+) (?P<Pid>\\d+)'\n\
             [d.severity_map]\nWARNING = 4\n[d.message_fields]\nPid = \"%Pid%\"\n",
            "d",
        )
        .expect("plans");
        let mut harness = Harness::new();
        for (line, severity) in [
            (&b"WARNING 12"[..], Some(4)),
            (b"3 12", Some(3)),
            (b"LOUD 12", None),
        ] {
            let messages = harness.decode(&kind, line).expect("decodes");
            let message = Message::decode(&messages[0][..]).unwrap();
            assert_eq!(message.severity, severity, "{line:?}");
            assert_eq!(message.pid, Some(12));
        }
    }

    #[test]
    fn a_record_that_does_not_match_fails_and_makes_nothing() {
        let kind = kind("");
        let mut harness = Harness::new();
        assert_eq!(
            harness.decode(&kind, b"not an access line"),
            Err("no_match")
        );
        let bad_pid = Harness::plan(
            "[d]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '(?P<x>.*)'\n\
             [d.message_fields]\nPid = \"%x%\"\n",
            "d",
        )
        .unwrap();
        assert_eq!(harness.decode(&bad_pid, b"abc"), Err("bad_pid"));
    }

    #[test]
    fn unnamed_groups_are_numbered() {
        let regex = Regex::new(r"(a)(?P<b>b)(c)").unwrap();
        assert_eq!(capture_index(&regex, "1"), Some(1));
        assert_eq!(capture_index(&regex, "b"), Some(2));
        assert_eq!(capture_index(&regex, "2"), None, "group 2 has a name");
        assert_eq!(capture_index(&regex, "3"), Some(3));
        assert_eq!(capture_index(&regex, "0"), None);
    }
}
