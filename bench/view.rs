//! Lazy-view reads and encoder throughput on ~300-byte messages, one core.
//!
//! What the router and the encoders pay per message besides splitting: validating a record
//! (the one top-level scan that builds the view's index), reading a header or a field through
//! the view, and encoding (protobuf passthrough, a line encoded to protobuf, PayloadEncoder).
//! `bench/splitter.rs` already covers the framed protobuf passthrough and PayloadEncoder with
//! `prefix_ts`; the matcher bench covers matcher evaluation.
//!
//! Two messages: `gyges flood`'s 300-byte record (5 headers, 1 field) and an access-log-like
//! message of about 300 bytes with 8 fields, built with prost. "fresh view" rows build a new
//! view per message (the index is part of the cost, as on the data path); "indexed" rows
//! read again from one view. Each row is the median of 5 passes (3 in quick mode), with the spread (slowest - fastest) beside it. Run with
//! `cargo bench --bench view`; the figures go to the `view` section of the report.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{median_of, Mode, Section, Table, Timing};
use gyges::encoder::{Encoder, PayloadEncoder, PayloadOptions, ProtobufEncoder};
use gyges::limits::MESSAGE_BYTES_DEFAULT;
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{FieldValue, LineMeta, LineView, MessageView, ProtoView, StrHeader};
use gyges::tools::flood::Template;
use prost::Message as _;

/// An access-log-like message of about 300 bytes with 8 fields; `status` is the last one.
fn access_log_message() -> Vec<u8> {
    let string = |name: &str, value: &str| Field {
        name: name.into(),
        value_string: vec![value.into()],
        ..Field::default()
    };
    let integer = |name: &str, value: i64| Field {
        name: name.into(),
        value_type: Some(ValueType::Integer as i32),
        value_integer: vec![value],
        ..Field::default()
    };
    let message = Message {
        uuid: vec![7; 16],
        timestamp: 1_700_000_000_123_456_789,
        r#type: Some("nginx.access".into()),
        logger: Some("web-frontend".into()),
        severity: Some(6),
        payload: Some("GET /api/v1/items?page=3 HTTP/1.1".into()),
        hostname: Some("web-07.example.org".into()),
        pid: Some(4242),
        fields: vec![
            string("remote_addr", "203.0.113.42"),
            string("method", "GET"),
            string("path", "/api/v1/items"),
            string(
                "user_agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            ),
            string("request_id", "5f0c2a9e-3b1d-4c8e-9a7f-0d6e1b2c3a4f"),
            integer("bytes_sent", 5123),
            Field {
                name: "duration".into(),
                value_type: Some(ValueType::Double as i32),
                value_double: vec![0.0123],
                ..Field::default()
            },
            integer("status", 200),
        ],
        ..Message::default()
    };
    message.encode_to_vec()
}

/// Adds a row for `count` operations of `bytes_each` bytes that took `seconds`.
fn add_row(table: &mut Table, name: &str, count: u64, bytes_each: usize, timing: Timing) {
    let seconds = timing.median.max(1e-12);
    table.row(vec![
        name.into(),
        format!("{:.1}", seconds / count as f64 * 1e9),
        format!("{:.1}", count as f64 / seconds / 1e6),
        if bytes_each > 0 {
            format!("{:.2}", (count * bytes_each as u64) as f64 / seconds / 1e9)
        } else {
            "–".into()
        },
        timing.spread(),
    ]);
}

/// Reads through fresh and indexed views: validate, headers, fields.
fn view_rows(
    table: &mut Table,
    passes: usize,
    count: u64,
    name: &str,
    message: &[u8],
    field: &[u8],
) {
    let bytes = message.len();
    assert_eq!(
        ProtoView::new(message).validate(),
        Ok(()),
        "{name} is a valid message"
    );
    assert!(
        ProtoView::new(message).field(field, 0).is_some(),
        "{name} has its field"
    );
    let (timing, _) = median_of(passes, || {
        let mut valid = 0u64;
        for _ in 0..count {
            valid += u64::from(ProtoView::new(black_box(message)).validate().is_ok());
        }
        valid
    });
    add_row(
        table,
        &format!("{name}: validate (fresh view)"),
        count,
        bytes,
        timing,
    );
    let (timing, _) = median_of(passes, || {
        let mut total = 0usize;
        for _ in 0..count {
            let view = ProtoView::new(black_box(message));
            total += view.str_header(StrHeader::Type).map_or(0, <[u8]>::len);
        }
        total
    });
    add_row(
        table,
        &format!("{name}: Type header (fresh view)"),
        count,
        bytes,
        timing,
    );
    let (timing, _) = median_of(passes, || {
        let mut total = 0i64;
        for _ in 0..count {
            total ^= ProtoView::new(black_box(message)).timestamp().unwrap_or(0);
        }
        total
    });
    add_row(
        table,
        &format!("{name}: Timestamp (fresh view)"),
        count,
        bytes,
        timing,
    );
    let read_field = |view: &ProtoView<'_>| match view.field(field, 0).and_then(|f| f.value(0)) {
        Some(FieldValue::String(text)) => text.len() as i64,
        Some(FieldValue::Integer(value)) => value,
        _ => 0,
    };
    let (timing, _) = median_of(passes, || {
        let mut total = 0i64;
        for _ in 0..count {
            total += read_field(&ProtoView::new(black_box(message)));
        }
        total
    });
    let field_name = String::from_utf8_lossy(field);
    let fresh = format!("{name}: Fields[{field_name}] (fresh view)");
    add_row(table, &fresh, count, bytes, timing);
    let view = ProtoView::new(message);
    let _ = view.validate();
    let (timing, _) = median_of(passes, || {
        let mut total = 0usize;
        for _ in 0..count {
            total += black_box(&view)
                .str_header(StrHeader::Logger)
                .map_or(0, <[u8]>::len);
        }
        total
    });
    add_row(
        table,
        &format!("{name}: Logger header (indexed)"),
        count,
        0,
        timing,
    );
    let (timing, _) = median_of(passes, || {
        let mut total = 0i64;
        for _ in 0..count {
            total += read_field(black_box(&view));
        }
        total
    });
    add_row(
        table,
        &format!("{name}: Fields[{field_name}] (indexed)"),
        count,
        0,
        timing,
    );
}

/// Encodes `count` messages into a buffer cleared every 256 KiB, as a batch is.
fn encode_row(
    table: &mut Table,
    passes: usize,
    count: u64,
    name: &str,
    encoder: &mut Encoder,
    framed: bool,
    message: &MessageView<'_>,
) {
    let mut out = Vec::with_capacity(512 * 1024);
    let mut encoded = 0usize;
    let (timing, _) = median_of(passes, || {
        encoded = 0;
        for _ in 0..count {
            let written = if framed {
                encoder.encode_framed(black_box(message), None, &mut out)
            } else {
                encoder.encode(black_box(message), &mut out)
            };
            encoded = written.unwrap_or(0);
            if out.len() >= 256 * 1024 {
                out.clear();
            }
        }
        out.len()
    });
    assert!(encoded > 0, "{name} encodes to something");
    add_row(
        table,
        &format!("{name} ({encoded} B out)"),
        count,
        encoded,
        timing,
    );
}

fn main() {
    let mode = Mode::detect();
    let passes = mode.pick(5, 3, 1);
    let count = mode.pick(10_000_000u64, 1_000_000, 10_000);
    let flood_record = Template::heka(300, [1; 16])
        .expect("a 300 B template")
        .record;
    let framing_bytes = flood_record.len() - flood_message_len(&flood_record);
    let flood_message = &flood_record[framing_bytes..];
    let access_log = access_log_message();

    let mut section = Section::new("view", "Lazy-view reads and encoders, one core", mode);
    section.line(format!(
        "One thread, {count} operations per row, median of {passes} passes. Messages: `gyges flood`'s \
         record ({} B message: 5 headers, Payload, 1 field `seq`) and an access-log message \
         ({} B: 8 headers, 8 fields, `status` last). Output rows write into a buffer cleared \
         every 256 KiB, as a batch is.\n",
        flood_message.len(),
        access_log.len()
    ));
    let mut table = Table::new(&["operation", "ns/op", "M ops/s", "GB/s", "spread"]);
    view_rows(
        &mut table,
        passes,
        count,
        "flood msg",
        flood_message,
        b"seq",
    );
    view_rows(
        &mut table,
        passes,
        count,
        "access log",
        &access_log,
        b"status",
    );
    section.table(&table);

    let mut table = Table::new(&["encoder", "ns/op", "M ops/s", "GB/s", "spread"]);
    let mut protobuf = Encoder::Protobuf(ProtobufEncoder::new(MESSAGE_BYTES_DEFAULT).expect("ok"));
    let proto = MessageView::Proto(ProtoView::new(&access_log));
    encode_row(
        &mut table,
        passes,
        count,
        "ProtobufEncoder, passthrough",
        &mut protobuf,
        false,
        &proto,
    );
    let line = Template::lines(200).expect("a 200 B line").record;
    let meta = LineMeta {
        type_: b"LineInput".to_vec().into(),
        logger: b"LineInput".to_vec().into(),
        hostname: b"127.0.0.1:40312".to_vec().into(),
    };
    let line_view = MessageView::Line(LineView {
        payload: &line,
        uuid: [3; 16],
        timestamp: 1_700_000_000_123_456_789,
        meta: &meta,
    });
    encode_row(
        &mut table,
        passes,
        count,
        "ProtobufEncoder, 200 B line",
        &mut protobuf,
        false,
        &line_view,
    );
    encode_row(
        &mut table,
        passes,
        count,
        "ProtobufEncoder, 200 B line, framed",
        &mut protobuf,
        true,
        &line_view,
    );
    let payload_options = |append_newlines: bool| PayloadOptions {
        append_newlines,
        ..PayloadOptions::default()
    };
    let mut payload = Encoder::Payload(
        PayloadEncoder::new(&payload_options(false), MESSAGE_BYTES_DEFAULT).expect("ok"),
    );
    encode_row(
        &mut table,
        passes,
        count,
        "PayloadEncoder, 200 B line as is",
        &mut payload,
        false,
        &line_view,
    );
    let mut payload = Encoder::Payload(
        PayloadEncoder::new(&payload_options(true), MESSAGE_BYTES_DEFAULT).expect("ok"),
    );
    encode_row(
        &mut table,
        passes,
        count,
        "PayloadEncoder, protobuf Payload + newline",
        &mut payload,
        false,
        &proto,
    );
    section.table(&table);
    section.publish();
}

/// The length of the message inside a frame (the frame header's message_length).
fn flood_message_len(record: &[u8]) -> usize {
    match gyges::message::framing::parse_header(record) {
        Ok(Some(header)) => record.len() - header.message_start(),
        _ => record.len(),
    }
}
