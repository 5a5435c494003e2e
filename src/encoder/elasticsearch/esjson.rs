//! ESJsonEncoder: a message as a "clean" JSON document for the Elasticsearch `_bulk` API.
//!
//! Options (Heka's names and defaults):
//! - `index` (`heka-%{%Y.%m.%d}`), `type_name` (`message`), `id` (unset),
//!   `es_index_from_timestamp` (false): the action line, see [`super`];
//! - `fields` (all, in this order: Uuid, Timestamp, Type, Logger, Severity, Payload,
//!   EnvVersion, Pid, Hostname, DynamicFields): the parts of the message in the document, in
//!   the order listed (case does not matter; `Fields` is an old name of DynamicFields);
//! - `timestamp` (`%Y-%m-%dT%H:%M:%S`): the strftime format of the Timestamp part, in UTC;
//! - `field_mappings`: a table renaming the parts' keys (`Timestamp = "@timestamp"`);
//! - `dynamic_fields` (all): the dynamic fields to write; `fields` must then list
//!   DynamicFields;
//! - `raw_bytes_fields`: dynamic fields whose string or bytes values are written as they are
//!   (embedded JSON), not as JSON strings;
//! - `replace_dots_with` (`.`): what replaces each `.` in a dynamic field's name.
//!
//! Dynamic fields are written inline, after the parts before DynamicFields in `fields`, in
//! the message's order, one key per field.

use std::sync::Arc;

use super::{plan_common, CommonOptions, DocumentType, EsPlan, Part};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::encoder::EncoderKind;

/// `ESJsonEncoder` as configured.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsJsonEncoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The `_index` template (default `heka-%{%Y.%m.%d}`).
    index: Option<String>,
    /// The `_type` template (default `message`; empty leaves `_type` out).
    type_name: Option<String>,
    /// The `_id` template (default: none, Elasticsearch makes one up).
    id: Option<String>,
    /// The parts of the message in the document, in order.
    fields: Option<Vec<String>>,
    /// The strftime format of the Timestamp part (default `%Y-%m-%dT%H:%M:%S`).
    timestamp: Option<String>,
    /// Dates in templates from the message's Timestamp rather than now (default false).
    es_index_from_timestamp: Option<bool>,
    /// Dynamic fields written as they are (embedded JSON).
    raw_bytes_fields: Option<Vec<String>>,
    /// Keys for the parts, by part name.
    field_mappings: Option<RawFieldMappings>,
    /// The dynamic fields to write (default all).
    dynamic_fields: Option<Vec<String>>,
    /// What replaces each `.` in a dynamic field's name (default `.`).
    replace_dots_with: Option<String>,
}

/// `[name.field_mappings]`: a key for each part of the message.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct RawFieldMappings {
    /// The Timestamp part's key.
    Timestamp: Option<String>,
    /// The Uuid part's key.
    Uuid: Option<String>,
    /// The Type part's key.
    Type: Option<String>,
    /// The Logger part's key.
    Logger: Option<String>,
    /// The Severity part's key.
    Severity: Option<String>,
    /// The Payload part's key.
    Payload: Option<String>,
    /// The EnvVersion part's key.
    EnvVersion: Option<String>,
    /// The Pid part's key.
    Pid: Option<String>,
    /// The Hostname part's key.
    Hostname: Option<String>,
}

impl RawFieldMappings {
    fn key(&self, part: Part) -> String {
        let mapped = match part {
            Part::Timestamp => &self.Timestamp,
            Part::Uuid => &self.Uuid,
            Part::Type => &self.Type,
            Part::Logger => &self.Logger,
            Part::Severity => &self.Severity,
            Part::Payload => &self.Payload,
            Part::EnvVersion => &self.EnvVersion,
            Part::Pid => &self.Pid,
            Part::Hostname => &self.Hostname,
            Part::DynamicFields => &None,
        };
        mapped.clone().unwrap_or_else(|| part.name().to_string())
    }
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn EncoderKind>> = Registration {
    type_names: &["ESJsonEncoder"],
    plan: plan_es_json,
};

fn plan_es_json(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn EncoderKind>, ConfigError> {
    Ok(Arc::new(es_json_plan(section)?))
}

/// Checks an ESJsonEncoder section and builds its plan.
///
/// # Errors
/// An unknown key or part, a list or text above its limit, a strftime format gyges cannot
/// render, or `dynamic_fields` without DynamicFields in `fields`.
pub fn es_json_plan(section: &Section) -> Result<EsPlan, ConfigError> {
    let raw: RawEsJsonEncoder = section.parse()?;
    let common = CommonOptions {
        index: raw.index,
        type_name: raw.type_name,
        id: raw.id,
        fields: raw.fields,
        timestamp: raw.timestamp,
        es_index_from_timestamp: raw.es_index_from_timestamp,
        raw_bytes_fields: raw.raw_bytes_fields,
        dynamic_fields: raw.dynamic_fields,
        replace_dots_with: raw.replace_dots_with,
    };
    let parts = plan_common(section, &common)?;
    let mappings = raw.field_mappings.unwrap_or_default();
    let plan = EsPlan {
        kind: "ESJsonEncoder",
        index: common.index.unwrap_or_else(|| "heka-%{%Y.%m.%d}".into()),
        type_name: common.type_name.unwrap_or_else(|| "message".into()),
        id: common.id,
        es_index_from_timestamp: common.es_index_from_timestamp.unwrap_or(false),
        parts: parts
            .into_iter()
            .map(|part| (part, mappings.key(part)))
            .collect(),
        timestamp: common
            .timestamp
            .unwrap_or_else(|| "%Y-%m-%dT%H:%M:%S".into()),
        raw_bytes_fields: common.raw_bytes_fields.unwrap_or_default(),
        dynamic_fields: common.dynamic_fields.unwrap_or_default(),
        replace_dots_with: common.replace_dots_with.unwrap_or_else(|| ".".into()),
        document_type: DocumentType::Message,
        nested_fields: None,
    };
    super::check_formats(section, &plan)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{encode, encode_with, lines, plan_section, sample};
    use super::*;

    fn plan(options: &str) -> EsPlan {
        plan_section("ESJsonEncoder", options)
    }

    #[test]
    fn the_default_document_byte_for_byte() {
        let (action, document) = lines(&encode(&plan(""), &sample()));
        let today = super::super::tests::today("%Y.%m.%d");
        assert_eq!(
            action,
            format!(r#"{{"index":{{"_index":"heka-{today}","_type":"message"}}}}"#)
        );
        assert_eq!(
            document,
            concat!(
                r#"{"Uuid":"87cf1ac2-e810-4ddf-a02d-a5ce44d13a85","Timestamp":"2013-07-16T15:49:05","#,
                r#""Type":"TEST","Logger":"GoSpec","Severity":6,"Payload":"Test Payload","#,
                r#""EnvVersion":"0.8","Pid":14098,"Hostname":"hostname","#,
                r#""\u0022foo":"bar\u000a","\u0022number":64,"#,
                "\"\u{FFFD}\":\"\u{FFFD}\",",
                r#""idField":"1234","#,
                r#""test_raw_field_bytes_array":["eyJhc2RmIjoxMjN9","eyJqa2w7IjoxMjN9"],"#,
                r#""byteArray":["YXNkZg==","amtsOw=="],"integerArray":[22,80,3000],"#,
                r#""doubleArray":[42,19101.3],"boolArray":[true,false,false,false,true],"#,
                r#""test_raw_field_string":"{\u0022asdf\u0022:123}","#,
                r#""test_raw_field_bytes":"{\u0022asdf\u0022:123}","#,
                r#""test_raw_field_string_array":["{\u0022asdf\u0022:123}","{\u0022jkl;\u0022:123}"],"#,
                r#""stringArray":["asdf","jkl;","push","pull"]}"#
            )
        );
    }

    #[test]
    fn raw_bytes_fields_are_written_as_they_are() {
        let plan = plan(
            r#"raw_bytes_fields = ["test_raw_field_string", "test_raw_field_bytes",
               "test_raw_field_string_array", "test_raw_field_bytes_array"]"#,
        );
        let (_, document) = lines(&encode(&plan, &sample()));
        let value: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(value["test_raw_field_string"]["asdf"], 123);
        assert_eq!(value["test_raw_field_bytes"]["asdf"], 123);
        assert_eq!(value["test_raw_field_string_array"][1]["jkl;"], 123);
        assert_eq!(value["test_raw_field_bytes_array"][0]["asdf"], 123);
        assert_eq!(value["stringArray"][3], "pull");
    }

    #[test]
    fn index_type_and_id_interpolate_at_the_message_time() {
        let plan = plan(
            r#"index = "%{Type}-%{Hostname}-%{%Y.%m.%d}"
               type_name = "%{Logger}-%{Severity}"
               id = "%{idField}"
               es_index_from_timestamp = true"#,
        );
        let (action, _) = lines(&encode(&plan, &sample()));
        assert_eq!(
            action,
            r#"{"index":{"_index":"test-hostname-2013.07.16","_type":"GoSpec-6","_id":"1234"}}"#
        );
        // An id naming a missing field is left out; the index keeps the name.
        let plan = plan_section(
            "ESJsonEncoder",
            r#"index = "x-%{nope}"
               type_name = ""
               id = "%{idFail}""#,
        );
        let (action, _) = lines(&encode(&plan, &sample()));
        assert_eq!(action, r#"{"index":{"_index":"x-nope"}}"#);
    }

    #[test]
    fn fields_order_mappings_and_dynamic_fields() {
        let plan = plan(
            r#"fields = ["payload", "DynamicFields", "severity", "timestamp"]
               dynamic_fields = ["idField", "boolArray", "absent"]
               timestamp = "%Y/%m/%d %H:%M:%S %z"
               [field_mappings]
               Timestamp = "@timestamp"
               Severity = "level""#,
        );
        let (_, document) = lines(&encode(&plan, &sample()));
        assert_eq!(
            document,
            concat!(
                r#"{"Payload":"Test Payload","idField":"1234","#,
                r#""boolArray":[true,false,false,false,true],"level":6,"#,
                r#""@timestamp":"2013/07/16 15:49:05 +0000"}"#
            )
        );
        // Dynamic fields first, and a message with none of them: no stray comma.
        let plan = plan_section(
            "ESJsonEncoder",
            r#"fields = ["DynamicFields", "Pid"]
               dynamic_fields = ["absent"]"#,
        );
        let (_, document) = lines(&encode(&plan, &sample()));
        assert_eq!(document, r#"{"Pid":14098}"#);
    }

    #[test]
    fn replace_dots_with_renames_dynamic_fields_only() {
        let plan = plan(
            r#"fields = ["Type", "DynamicFields"]
               dynamic_fields = ["a.b.c"]
               replace_dots_with = "_"
               [field_mappings]
               Type = "x.y""#,
        );
        let bytes = encode_with(&plan, |message| {
            message.fields.push(crate::message::proto::Field {
                name: "a.b.c".into(),
                value_string: vec!["v".into()],
                ..Default::default()
            });
        });
        assert_eq!(lines(&bytes).1, r#"{"x.y":"TEST","a_b_c":"v"}"#);
    }

    #[test]
    fn config_errors_name_the_key() {
        for (options, key) in [
            (r#"fields = ["Nope"]"#, "fields"),
            (
                r#"fields = ["Type"]
                   dynamic_fields = ["a"]"#,
                "dynamic_fields",
            ),
            (r#"index = "%{%Q}""#, "index"),
            (r#"timestamp = "%Q""#, "timestamp"),
            ("[field_mappings]\nNope = \"x\"", "field_mappings"),
            ("bogus = 1", "bogus"),
        ] {
            let error = super::super::tests::plan_error("ESJsonEncoder", options);
            assert!(
                error
                    .key
                    .as_deref()
                    .is_some_and(|found| found.starts_with(key)),
                "{options}: {error}"
            );
        }
    }
}
