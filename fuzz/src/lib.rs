//! What the fuzz targets share: walking every accessor of a message, and cutting an input
//! into a stream and the read sizes it arrives in.
//!
//! Each target is one parser reachable from the network or the config (docs/fuzzing.md).
//! A target asserts the parser's contract (no panic, records within bounds, output that is
//! itself valid), so a crash means a broken promise, not only a panic.

use gyges::message::view::FieldValue;
use gyges::message::{IntHeader, MessageView, ProtoView, StrHeader};

/// Reads every header, every field and every value of `view`, the way the matcher, the
/// encoders and `gyges cat` do; returns how many values it saw (so nothing is optimised out).
pub fn walk(view: &MessageView<'_>) -> usize {
    let mut seen = 0;
    seen += usize::from(view.uuid().is_some());
    seen += usize::from(view.timestamp().is_some());
    for header in [
        StrHeader::Type,
        StrHeader::Logger,
        StrHeader::Payload,
        StrHeader::EnvVersion,
        StrHeader::Hostname,
    ] {
        seen += view.str_header(header).map_or(0, <[u8]>::len);
    }
    for header in [IntHeader::Severity, IntHeader::Pid] {
        seen += usize::from(view.int_header(header).is_some());
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    view.for_each_field(|field| {
        seen += field.representation().map_or(0, <[u8]>::len);
        let _ = field.value_type();
        for value in field.values() {
            seen += value_len(&value);
        }
        for index in 0..3 {
            if let Some(value) = field.value(index) {
                seen += value_len(&value);
            }
        }
        if let Some(name) = field.name() {
            names.push(name.to_vec());
        }
    });
    for name in &names {
        for index in 0..2 {
            if let Some(field) = view.field(name, index) {
                assert!(field.has_name(name), "field() returned another name");
                seen += 1;
            }
        }
    }
    seen
}

fn value_len(value: &FieldValue<'_>) -> usize {
    match value {
        FieldValue::String(bytes) | FieldValue::Bytes(bytes) => bytes.len(),
        FieldValue::Integer(_) | FieldValue::Double(_) | FieldValue::Bool(_) => 1,
    }
}

/// A record the decoders say is a message: it must validate, and every accessor must answer.
pub fn check_message(bytes: &[u8]) {
    let view = ProtoView::new(bytes);
    if let Err(error) = view.validate() {
        panic!("a parser produced an invalid message: {}", error.code());
    }
    walk(&MessageView::Proto(view));
}

/// Cuts `data` into the read sizes a stream arrives in (from its first bytes, each 1..=256)
/// and the stream itself (the rest).
pub fn chunks_and_stream(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let count = usize::from(data.first().copied().unwrap_or(0) % 8);
    let sizes_end = (1 + count).min(data.len());
    let mut sizes: Vec<usize> = data[1.min(data.len())..sizes_end]
        .iter()
        .map(|&byte| usize::from(byte) + 1)
        .collect();
    if sizes.is_empty() {
        sizes.push(4096);
    }
    (sizes, &data[sizes_end..])
}
