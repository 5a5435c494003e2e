//! ElasticSearchOutput: messages encoded as `_bulk` items (ESJsonEncoder or
//! ESLogstashV0Encoder, `src/encoder/elasticsearch/`) sent to `server/_bulk` as NDJSON
//! (`docs/elasticsearch.md`).
//!
//! The requests, their batching, retries and delivery classes are HttpOutput's
//! ([`super::http`]); what is Elasticsearch's is here: the options (Heka's names), the
//! `application/x-ndjson` body, and [`judge_bulk`], which reads the bulk answer item by item:
//! a 2xx item is delivered, a 429 or 5xx item is sent again, any other item is rejected for
//! good (a document the mapping refuses will never be taken): counted in `rejected_total`
//! and logged, rate-limited, with Elasticsearch's reason. The rest of the batch is never
//! dropped for an item's sake.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::http::{self, HttpPlan, Judge, RawHeader, RawRequest, Verdict};
use crate::component::{PlanContext, Registration};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};

/// Heka's default `server`.
const SERVER_DEFAULT: &str = "http://localhost:9200";
/// Heka's defaults: a batch is sent every second, or at 10 messages.
const FLUSH_INTERVAL_MS_DEFAULT: u64 = 1000;
const FLUSH_COUNT_DEFAULT: u64 = 10;

/// `ElasticSearchOutput`'s own keys (the common output keys are in
/// [`super::plan::RawCommon`]).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawElasticSearchOutput {
    /// `http://` or `https://` address of the cluster (default `http://localhost:9200`);
    /// requests go to its `/_bulk`.
    pub server: Option<String>,
    /// Milliseconds after which a partly filled batch is sent (default 1000).
    pub flush_interval: Option<u64>,
    /// Messages that make a batch due (default 10).
    pub flush_count: Option<u64>,
    /// Milliseconds one connection attempt may take (default 2000).
    pub connect_timeout: Option<u64>,
    /// Milliseconds one bulk request may take (default 10000).
    pub http_timeout: Option<u64>,
    /// Close the connection after each request (default false).
    pub http_disable_keepalives: Option<bool>,
    /// Basic authentication user.
    pub username: Option<String>,
    /// Basic authentication password.
    pub password: Option<String>,
    /// Compress request bodies with gzip (default false).
    pub gzip: Option<bool>,
    /// Documents per bulk request at most (default 0: the whole batch or disk-queue read).
    pub max_messages_per_request: Option<u64>,
    /// Headers sent with every request.
    pub headers: Option<BTreeMap<String, RawHeader>>,
    /// Bytes each core queues with memory delivery (default 8 MiB).
    pub buffer_size: Option<u64>,
    /// `[name.tls]` for an `https://` server.
    pub tls: Option<crate::tls::RawTls>,
}

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["ElasticSearchOutput"],
    plan: plan_elasticsearch_output,
};

fn plan_elasticsearch_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawElasticSearchOutput = own.parse()?;
    let why = "ElasticSearchOutput sends the encodings as NDJSON, unframed";
    section.refuse("use_framing", common.use_framing.is_some(), why)?;
    section.refuse("signer", common.signer.is_some(), why)?;
    let server = raw.server.as_deref().unwrap_or(SERVER_DEFAULT);
    let client = http::plan_client(
        section,
        &RawRequest {
            address: ("server", server),
            path_suffix: "/_bulk",
            method: None,
            headers: raw.headers.as_ref(),
            username: raw.username.as_deref(),
            password: raw.password.as_deref(),
            http_timeout: raw.http_timeout,
            connect_timeout: raw.connect_timeout,
            disable_keepalives: raw.http_disable_keepalives,
            content_type: Some("application/x-ndjson"),
            tls: raw.tls.as_ref(),
        },
    )?;
    let policy = http::flush_policy(
        section,
        raw.flush_interval,
        raw.flush_count,
        (FLUSH_INTERVAL_MS_DEFAULT, FLUSH_COUNT_DEFAULT),
    )?;
    let buffer_bytes =
        super::tcp::buffer_bytes(section, raw.buffer_size, context.global.batch_bytes)?;
    let per_request = http::messages_per_request(section, raw.max_messages_per_request)?;
    let plan = HttpPlan {
        type_name: "ElasticSearchOutput",
        client: Arc::new(client),
        gzip: raw.gzip == Some(true),
        judge: Judge::Bulk,
        messages_per_request: per_request,
        buffer_bytes,
        policy,
    };
    let mut common = common.with_defaults("ESJsonEncoder", true, true);
    common.use_framing = true;
    // Heka buffers an ElasticSearchOutput on disk unless told otherwise.
    if common.use_buffering.is_none() && common.delivery.is_none() {
        common.use_buffering = Some(true);
    }
    super::plan::output_plan(section, context, common, |_| Ok(Arc::new(plan)))
}

/// The start of a bulk answer: whether any item failed.
#[derive(serde::Deserialize)]
struct Summary {
    #[serde(default)]
    errors: bool,
}

/// A bulk answer's items, read when some failed.
#[derive(serde::Deserialize)]
struct Items {
    items: Vec<BTreeMap<String, Item>>,
}

/// One item: `{"index": {"status": 201, ...}}`.
#[derive(serde::Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads a 2xx bulk answer to `count` documents into one verdict each (appended to
/// `verdicts`); `rejected` is told the status and reason of each rejected item.
///
/// # Errors
/// The body is not a bulk answer, or has not one item per document: the caller retries the
/// whole request.
pub fn judge_bulk(
    body: &[u8],
    count: usize,
    verdicts: &mut Vec<Verdict>,
    rejected: &mut dyn FnMut(u16, &str),
) -> Result<(), String> {
    let summary: Summary = serde_json::from_slice(body)
        .map_err(|error| format!("the answer is not a bulk answer: {error}"))?;
    if !summary.errors {
        verdicts.resize(verdicts.len() + count, Verdict::Done);
        return Ok(());
    }
    let items: Items = serde_json::from_slice(body)
        .map_err(|error| format!("the bulk answer's items do not read: {error}"))?;
    if items.items.len() != count {
        return Err(format!(
            "the bulk answer has {} items for {count} documents",
            items.items.len()
        ));
    }
    for item in &items.items {
        let Some(item) = item.values().next() else {
            return Err("a bulk answer item is empty".into());
        };
        let verdict = match item.status {
            200..=299 => Verdict::Done,
            429 | 500.. => Verdict::Retry,
            status => {
                rejected(status, &reason(item.error.as_ref()));
                Verdict::Rejected
            }
        };
        verdicts.push(verdict);
    }
    Ok(())
}

/// `type: reason` of an item's error.
fn reason(error: Option<&serde_json::Value>) -> String {
    let Some(error) = error else {
        return "no reason given".into();
    };
    let field = |name: &str| error.get(name).and_then(serde_json::Value::as_str);
    match (field("type"), field("reason")) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        (Some(kind), None) => kind.to_string(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_answer_settles_each_document() {
        let mut verdicts = Vec::new();
        let mut reasons = Vec::new();
        let body = br#"{"took":3,"errors":true,"items":[
            {"index":{"_index":"a","status":201}},
            {"index":{"_index":"a","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},
            {"create":{"_index":"a","status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"index":{"_index":"a","status":503}},
            {"index":{"_index":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"dup"}}}
        ]}"#;
        judge_bulk(body, 5, &mut verdicts, &mut |status, why| {
            reasons.push(format!("{status} {why}"));
        })
        .expect("reads");
        assert_eq!(
            verdicts,
            [
                Verdict::Done,
                Verdict::Rejected,
                Verdict::Retry,
                Verdict::Retry,
                Verdict::Rejected
            ]
        );
        assert_eq!(
            reasons,
            [
                "400 mapper_parsing_exception: bad",
                "409 version_conflict_engine_exception: dup"
            ]
        );
    }

    #[test]
    fn an_answer_without_errors_delivers_everything() {
        let mut verdicts = Vec::new();
        judge_bulk(
            br#"{"took":1,"errors":false,"items":[]}"#,
            3,
            &mut verdicts,
            &mut |_, _| {},
        )
        .expect("reads");
        assert_eq!(verdicts, [Verdict::Done; 3]);
    }

    #[test]
    fn answers_that_do_not_match_their_request_are_errors() {
        let mut verdicts = Vec::new();
        let mut never = |_: u16, _: &str| panic!("nothing is rejected");
        assert!(judge_bulk(b"<html>", 1, &mut verdicts, &mut never).is_err());
        let one = br#"{"errors":true,"items":[{"index":{"status":400}}]}"#;
        assert!(judge_bulk(one, 2, &mut verdicts, &mut never).is_err());
        assert!(verdicts.is_empty());
    }
}
