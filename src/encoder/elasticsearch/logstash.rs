//! ESLogstashV0Encoder: a message as a Logstash "v0" document (the schema Kibana's early
//! Logstash dashboards read) for the Elasticsearch `_bulk` API.
//!
//! The parts of the message and their keys: Uuid `@uuid`, Timestamp `@timestamp`, Type
//! `@type`, Logger `@logger`, Severity `@severity`, Payload `@message`, EnvVersion
//! `@envversion`, Pid `@pid`, Hostname `@source_host`, and the dynamic fields in an object
//! under `@fields`.
//!
//! Options: those of ESJsonEncoder ([`super::esjson`]) but `field_mappings`, with `index`
//! defaulting to `logstash-%{%Y.%m.%d}`, and `use_message_type` (false): `@type` is the
//! message's Type with it (or with an empty `type_name`), else the `type_name` template
//! rendered (as written when it names a field the message lacks), as Heka chose.

use std::sync::Arc;

use super::{plan_common, CommonOptions, DocumentType, EsPlan, Part};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::encoder::EncoderKind;

/// `ESLogstashV0Encoder` as configured.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogstashV0Encoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The `_index` template (default `logstash-%{%Y.%m.%d}`).
    index: Option<String>,
    /// The `_type` template (default `message`; empty leaves `_type` out).
    type_name: Option<String>,
    /// `@type` is the message's Type rather than `type_name` (default false).
    use_message_type: Option<bool>,
    /// The `_id` template (default: none, Elasticsearch makes one up).
    id: Option<String>,
    /// The parts of the message in the document, in order.
    fields: Option<Vec<String>>,
    /// The strftime format of `@timestamp` (default `%Y-%m-%dT%H:%M:%S`).
    timestamp: Option<String>,
    /// Dates in templates from the message's Timestamp rather than now (default false).
    es_index_from_timestamp: Option<bool>,
    /// Dynamic fields written as they are (embedded JSON).
    raw_bytes_fields: Option<Vec<String>>,
    /// The dynamic fields to write (default all).
    dynamic_fields: Option<Vec<String>>,
    /// What replaces each `.` in a dynamic field's name (default `.`).
    replace_dots_with: Option<String>,
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn EncoderKind>> = Registration {
    type_names: &["ESLogstashV0Encoder"],
    plan: plan_logstash,
};

fn plan_logstash(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn EncoderKind>, ConfigError> {
    Ok(Arc::new(logstash_plan(section)?))
}

/// The Logstash v0 key of each part.
fn key(part: Part) -> &'static str {
    match part {
        Part::Uuid => "@uuid",
        Part::Timestamp => "@timestamp",
        Part::Type => "@type",
        Part::Logger => "@logger",
        Part::Severity => "@severity",
        Part::Payload => "@message",
        Part::EnvVersion => "@envversion",
        Part::Pid => "@pid",
        Part::Hostname => "@source_host",
        Part::DynamicFields => "@fields",
    }
}

/// Checks an ESLogstashV0Encoder section and builds its plan.
///
/// # Errors
/// As [`super::esjson::es_json_plan`].
pub fn logstash_plan(section: &Section) -> Result<EsPlan, ConfigError> {
    let raw: RawLogstashV0Encoder = section.parse()?;
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
    let type_name = common.type_name.unwrap_or_else(|| "message".into());
    let document_type = if raw.use_message_type.unwrap_or(false) || type_name.is_empty() {
        DocumentType::Message
    } else {
        DocumentType::TypeName
    };
    let plan = EsPlan {
        kind: "ESLogstashV0Encoder",
        index: common
            .index
            .unwrap_or_else(|| "logstash-%{%Y.%m.%d}".into()),
        type_name,
        id: common.id,
        es_index_from_timestamp: common.es_index_from_timestamp.unwrap_or(false),
        parts: parts
            .into_iter()
            .map(|part| (part, key(part).to_string()))
            .collect(),
        timestamp: common
            .timestamp
            .unwrap_or_else(|| "%Y-%m-%dT%H:%M:%S".into()),
        raw_bytes_fields: common.raw_bytes_fields.unwrap_or_default(),
        dynamic_fields: common.dynamic_fields.unwrap_or_default(),
        replace_dots_with: common.replace_dots_with.unwrap_or_else(|| ".".into()),
        document_type,
        nested_fields: Some(key(Part::DynamicFields)),
    };
    super::check_formats(section, &plan)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        encode, encode_with, lines, plan_error, plan_section, sample, today,
    };

    const KIND: &str = "ESLogstashV0Encoder";

    #[test]
    fn the_default_document_byte_for_byte() {
        let plan = plan_section(KIND, r#"dynamic_fields = ["idField", "integerArray"]"#);
        let (action, document) = lines(&encode(&plan, &sample()));
        let today = today("%Y.%m.%d");
        assert_eq!(
            action,
            format!(r#"{{"index":{{"_index":"logstash-{today}","_type":"message"}}}}"#)
        );
        assert_eq!(
            document,
            concat!(
                r#"{"@uuid":"87cf1ac2-e810-4ddf-a02d-a5ce44d13a85","@timestamp":"2013-07-16T15:49:05","#,
                r#""@type":"message","@logger":"GoSpec","@severity":6,"@message":"Test Payload","#,
                r#""@envversion":"0.8","@pid":14098,"@source_host":"hostname","#,
                r#""@fields":{"idField":"1234","integerArray":[22,80,3000]}}"#
            )
        );
    }

    #[test]
    fn every_field_under_fields_and_raw_values() {
        let plan = plan_section(
            KIND,
            r#"raw_bytes_fields = ["test_raw_field_string", "test_raw_field_bytes_array"]"#,
        );
        let (_, document) = lines(&encode(&plan, &sample()));
        let value: serde_json::Value = serde_json::from_str(&document).unwrap();
        let fields = value["@fields"].as_object().unwrap();
        assert_eq!(fields.len(), 13);
        assert_eq!(fields["\"foo"], "bar\n");
        assert_eq!(fields["\u{FFFD}"], "\u{FFFD}");
        assert_eq!(fields["test_raw_field_string"]["asdf"], 123);
        assert_eq!(fields["test_raw_field_bytes_array"][1]["jkl;"], 123);
        assert_eq!(fields["doubleArray"][1], 19101.3);
        assert_eq!(value.as_object().unwrap().len(), 10);
    }

    #[test]
    fn type_rules() {
        let encoded = |options: &str| {
            let (action, document) = lines(&encode(&plan_section(KIND, options), &sample()));
            let value: serde_json::Value = serde_json::from_str(&document).unwrap();
            (action, value["@type"].as_str().unwrap().to_string())
        };
        // type_name rendered for both _type and @type.
        let (action, type_) = encoded(r#"type_name = "%{Type}-%{Hostname}""#);
        assert!(action.contains(r#""_type":"TEST-hostname""#), "{action}");
        assert_eq!(type_, "TEST-hostname");
        // use_message_type: @type is the message's Type.
        assert_eq!(encoded("use_message_type = true").1, "TEST");
        // An empty type_name: no _type, and @type is the message's Type.
        let (action, type_) = encoded(r#"type_name = """#);
        assert!(!action.contains("_type"), "{action}");
        assert_eq!(type_, "TEST");
        // A missing field: @type as written, _type with the name.
        let (action, type_) = encoded(r#"type_name = "t-%{nope}""#);
        assert!(action.contains(r#""_type":"t-nope""#), "{action}");
        assert_eq!(type_, "t-%{nope}");
    }

    #[test]
    fn fields_subset_dots_and_errors() {
        let plan = plan_section(
            KIND,
            r#"fields = ["Fields", "Payload"]
               dynamic_fields = ["a.b"]
               replace_dots_with = "__""#,
        );
        let bytes = encode_with(&plan, |message| {
            message.fields.push(crate::message::proto::Field {
                name: "a.b".into(),
                value_integer: vec![1],
                value_type: Some(2),
                ..Default::default()
            });
        });
        assert_eq!(
            lines(&bytes).1,
            r#"{"@fields":{"a__b":1},"@message":"Test Payload"}"#
        );
        let error = plan_error(KIND, "[field_mappings]\nType = \"x\"");
        assert_eq!(error.key.as_deref(), Some("field_mappings"), "{error}");
        let error = plan_error(KIND, r#"id = "%{%Q}""#);
        assert_eq!(error.key.as_deref(), Some("id"), "{error}");
    }
}
