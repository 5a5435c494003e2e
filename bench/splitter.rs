//! Splitter and encoder throughput on one core: the numbers the ingest path is built on.
//!
//! Corpora are built in memory from `gyges flood`'s templates: 200-byte lines and 300-byte
//! Heka frames, 64 MiB each. Each case runs `PASSES` (5) times; the best pass is reported.
//! Run with `cargo bench --bench splitter`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use gyges::encoder::{Encoder, PayloadEncoder, PayloadOptions, ProtobufEncoder};
use gyges::limits::{MESSAGE_BYTES_DEFAULT, READ_BUFFER_BYTES_DEFAULT};
use gyges::message::framing::{HashFunction, Signer, Verifier};
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use gyges::splitter::{HekaFrameSplitter, Splitter, StreamBuffer, TokenSplitter};
use gyges::tools::flood::Template;

const CORPUS_BYTES: usize = 64 << 20;
const PASSES: usize = 5;

fn corpus(record: &[u8]) -> Vec<u8> {
    record.repeat(CORPUS_BYTES / record.len())
}

/// Runs `pass` (which returns the records it saw) and prints the best of `PASSES`.
fn measure(name: &str, bytes: usize, mut pass: impl FnMut() -> u64) {
    let mut best = f64::MAX;
    let mut records = 0;
    for _ in 0..PASSES {
        let started = Instant::now();
        records = black_box(pass());
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{name:<44} {:>6.2} GB/s {:>6.2} M records/s ({records} records, {bytes} B)",
        bytes as f64 / best / 1e9,
        records as f64 / best / 1e6,
    );
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
    let lines = corpus(&Template::lines(200).unwrap().record);
    let heka_template = Template::heka(300, [1; 16]).unwrap();
    let frames = corpus(&heka_template.record);
    let signer = Signer::new("ops", 1, HashFunction::Md5, b"key").unwrap();
    let mut signed = Vec::new();
    let message = &heka_template.record[5..];
    while signed.len() < CORPUS_BYTES {
        gyges::message::framing::write_frame(&mut signed, message, Some(&signer)).unwrap();
    }
    println!(
        "gyges splitter bench: {} MiB corpora, read size {} bytes",
        CORPUS_BYTES >> 20,
        READ_BUFFER_BYTES_DEFAULT
    );

    let mut token = Splitter::Token(TokenSplitter::lines(MESSAGE_BYTES_DEFAULT).unwrap());
    measure("token, 200 B lines, via StreamBuffer", lines.len(), || {
        through_buffer(&mut token, &lines)
    });

    let verifier = Arc::new(Verifier::new([("ops_1", &b"key"[..])]).unwrap());
    let mut framing = Splitter::HekaFrame(
        HekaFrameSplitter::new(verifier.clone(), false, MESSAGE_BYTES_DEFAULT).unwrap(),
    );
    measure(
        "heka framing, 300 B frames, via StreamBuffer",
        frames.len(),
        || through_buffer(&mut framing, &frames),
    );
    measure(
        "heka framing, 300 B frames, HMAC-MD5 verified",
        signed.len(),
        || through_buffer(&mut framing, &signed),
    );

    let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(MESSAGE_BYTES_DEFAULT).unwrap());
    let mut out = Vec::with_capacity(2 * CORPUS_BYTES);
    let count = CORPUS_BYTES / message.len();
    measure(
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
    let count = CORPUS_BYTES / line.len();
    measure(
        "payload encoder, prefix_ts, 200 B lines",
        CORPUS_BYTES,
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
}
