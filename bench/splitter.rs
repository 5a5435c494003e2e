//! Splitter and encoder throughput on one core: the numbers the ingest path is built on.
//!
//! Corpora are built in memory from `gyges flood`'s templates: 200-byte lines and 300-byte
//! Heka frames, 64 MiB each (8 MiB in quick mode). Each case runs 5 times (3 in quick mode);
//! the median pass is reported, with the spread. Run with `cargo bench --bench splitter`; the figures go to the
//! `splitter` section of the report (see `bench/README.md`).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::{median_of, Mode, Section, Table};

use gyges::decoder::syslog::{encode as encode_syslog, SyslogContext};
use gyges::encoder::{Encoder, PayloadEncoder, PayloadOptions, ProtobufEncoder};
use gyges::limits::{MESSAGE_BYTES_DEFAULT, READ_BUFFER_BYTES_DEFAULT};
use gyges::message::framing::{HashFunction, Signer, Verifier};
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use gyges::splitter::{HekaFrameSplitter, Splitter, StreamBuffer, SyslogSplitter, TokenSplitter};
use gyges::tools::flood::Template;

/// Bytes of each corpus, by mode.
fn corpus_bytes(mode: Mode) -> usize {
    mode.pick(64 << 20, 8 << 20, 1 << 20)
}

fn corpus(record: &[u8], bytes: usize) -> Vec<u8> {
    record.repeat(bytes / record.len())
}

/// Runs `pass` (which returns the records it saw) `passes` times, and adds a row of the median.
fn measure(table: &mut Table, passes: usize, name: &str, bytes: usize, pass: impl FnMut() -> u64) {
    let (timing, records) = median_of(passes, pass);
    let median = timing.median.max(1e-12);
    table.row(vec![
        name.to_string(),
        format!("{:.2}", bytes as f64 / median / 1e9),
        format!("{:.2}", records as f64 / median / 1e6),
        format!("{:.1}", median / records.max(1) as f64 * 1e9),
        timing.spread(),
        records.to_string(),
    ]);
}

/// Feeds `corpus` through a StreamBuffer in reads of `READ_BUFFER_BYTES_DEFAULT`, the way an
/// input does (the copy stands in for the socket read).
fn through_buffer(splitter: &mut Splitter, corpus: &[u8]) -> u64 {
    let mut buffer = StreamBuffer::for_splitter(splitter, READ_BUFFER_BYTES_DEFAULT).unwrap();
    let mut records = 0u64;
    let mut at = 0;
    while at < corpus.len() {
        let spare = buffer.spare_mut();
        let bytes = spare
            .len()
            .min(READ_BUFFER_BYTES_DEFAULT)
            .min(corpus.len() - at);
        spare[..bytes].copy_from_slice(&corpus[at..at + bytes]);
        buffer.commit(bytes);
        at += bytes;
        while let Some(record) = buffer.next_record(splitter) {
            black_box(record.bytes);
            records += 1;
        }
    }
    records
}

fn main() {
    let mode = Mode::detect();
    let corpus_bytes = corpus_bytes(mode);
    let passes = mode.pick(5, 3, 1);
    let lines = corpus(&Template::lines(200).unwrap().record, corpus_bytes);
    let heka_template = Template::heka(300, [1; 16]).unwrap();
    let frames = corpus(&heka_template.record, corpus_bytes);
    let signer = Signer::new("ops", 1, HashFunction::Md5, b"key").unwrap();
    let mut signed = Vec::new();
    let message = &heka_template.record[5..];
    while signed.len() < corpus_bytes {
        gyges::message::framing::write_frame(&mut signed, message, Some(&signer)).unwrap();
    }
    let mut section = Section::new("splitter", "Splitters and encoders, one core", mode);
    section.line(format!(
        "In memory, one thread: {} MiB corpora built from `gyges flood`'s templates, median of \
         {passes} passes (spread: slowest - fastest, as a share of the median); splitters are fed through a StreamBuffer in reads of {} bytes, as an \
         input does (the copy stands in for the socket read).\n",
        corpus_bytes >> 20,
        READ_BUFFER_BYTES_DEFAULT
    ));
    let mut table = Table::new(&[
        "case",
        "GB/s",
        "M records/s",
        "ns/record",
        "spread",
        "records",
    ]);

    let mut token = Splitter::Token(TokenSplitter::lines(MESSAGE_BYTES_DEFAULT).unwrap());
    measure(
        &mut table,
        passes,
        "token, 200 B lines, via StreamBuffer",
        lines.len(),
        || through_buffer(&mut token, &lines),
    );

    let verifier = Arc::new(Verifier::new([("ops_1", &b"key"[..])]).unwrap());
    let mut framing = Splitter::HekaFrame(
        HekaFrameSplitter::new(verifier.clone(), false, MESSAGE_BYTES_DEFAULT).unwrap(),
    );
    measure(
        &mut table,
        passes,
        "heka framing, 300 B frames, via StreamBuffer",
        frames.len(),
        || through_buffer(&mut framing, &frames),
    );
    measure(
        &mut table,
        passes,
        "heka framing, 300 B frames, HMAC-MD5 verified",
        signed.len(),
        || through_buffer(&mut framing, &signed),
    );

    let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(MESSAGE_BYTES_DEFAULT).unwrap());
    let mut out = Vec::with_capacity(2 * corpus_bytes);
    let count = corpus_bytes / message.len();
    measure(
        &mut table,
        passes,
        "protobuf encoder, framed, 295 B messages",
        count * heka_template.record.len(),
        || {
            out.clear();
            for _ in 0..count {
                encoder
                    .encode_framed(&MessageView::Proto(ProtoView::new(message)), None, &mut out)
                    .unwrap();
            }
            count as u64
        },
    );

    let meta = LineMeta::default();
    let mut payload = Encoder::Payload(
        PayloadEncoder::new(
            &PayloadOptions {
                prefix_ts: true,
                ..PayloadOptions::default()
            },
            MESSAGE_BYTES_DEFAULT,
        )
        .unwrap(),
    );
    let line = &lines[..200];
    let count = corpus_bytes / line.len();
    measure(
        &mut table,
        passes,
        "payload encoder, prefix_ts, 200 B lines",
        count * line.len(),
        || {
            out.clear();
            for index in 0..count {
                let view = LineView {
                    payload: line,
                    uuid: [0; 16],
                    timestamp: index as i64 * 1000,
                    meta: &meta,
                };
                payload.encode(&MessageView::Line(view), &mut out).unwrap();
            }
            count as u64
        },
    );
    syslog_rows(&mut table, passes, corpus_bytes, &mut out);
    section.table(&table);
    section.publish();
}

/// The SyslogInput's per-record work on 200-byte octet-counted RFC 5424 messages (case 5 of
/// the e2e bench): RFC 6587 framing alone, then framing with the parse and the message write
/// of the SyslogDecoder (no routing).
fn syslog_rows(table: &mut Table, passes: usize, corpus_bytes: usize, out: &mut Vec<u8>) {
    let stream = corpus(&Template::syslog(200).unwrap().record, corpus_bytes);
    let mut framing = Splitter::Syslog(SyslogSplitter::new(MESSAGE_BYTES_DEFAULT).unwrap());
    measure(
        table,
        passes,
        "syslog framing, 200 B octet-counted 5424, via StreamBuffer",
        stream.len(),
        || through_buffer(&mut framing, &stream),
    );
    let context = SyslogContext {
        received_ns: 1_764_684_301_000_000_000,
        year: 2026,
        month: 12,
        utc_offset_seconds: 0,
    };
    let mut buffer = StreamBuffer::for_splitter(&framing, READ_BUFFER_BYTES_DEFAULT).unwrap();
    measure(
        table,
        passes,
        "syslog framing + parse + message write, 200 B 5424",
        stream.len(),
        || {
            let mut records = 0u64;
            for chunk in stream.chunks(READ_BUFFER_BYTES_DEFAULT) {
                buffer.spare_mut()[..chunk.len()].copy_from_slice(chunk);
                buffer.commit(chunk.len());
                while let Some(record) = buffer.next_record(&mut framing) {
                    out.clear();
                    black_box(encode_syslog(record.bytes, &context, &[0; 16], out));
                    records += 1;
                }
            }
            records
        },
    );
}
