//! Zero allocations per record on the data path, after warm-up: a counting allocator wraps
//! the system one, and the counts of the measuring thread (or threads) are checked.

use gyges_sys::alloc::{allocations, CountingAllocator};
use std::sync::Arc;

use gyges::encoder::{Encoder, PayloadEncoder, PayloadOptions, ProtobufEncoder};
use gyges::message::framing::{write_frame, HashFunction, Signer, Verifier};
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use gyges::splitter::{HekaFrameSplitter, Splitter, StreamBuffer, TokenSplitter};
use gyges::tools::flood::Template;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Reads `stream` through `buffer` in 4 KiB reads; every record is encoded (framed when
/// `framed`) into `out`, which is cleared when it passes 1 MiB. Returns the records seen.
fn pipeline(
    stream: &[u8],
    buffer: &mut StreamBuffer,
    splitter: &mut Splitter,
    encoder: &mut Encoder,
    signer: Option<&Signer>,
    out: &mut Vec<u8>,
) -> u64 {
    let meta = LineMeta::default();
    let mut records = 0u64;
    let mut at = 0;
    while at < stream.len() {
        let spare = buffer.spare_mut();
        let bytes = spare.len().min(4096).min(stream.len() - at);
        spare[..bytes].copy_from_slice(&stream[at..at + bytes]);
        buffer.commit(bytes);
        at += bytes;
        while let Some(record) = buffer.next_record(splitter) {
            records += 1;
            let view = if matches!(splitter, Splitter::HekaFrame(_)) {
                MessageView::Proto(ProtoView::new(record.bytes))
            } else {
                let timestamp = records as i64 * 1_000_000_000;
                let line = LineView {
                    payload: record.bytes,
                    uuid: [0; 16],
                    timestamp,
                    meta: &meta,
                };
                MessageView::Line(line)
            };
            if out.len() > 1 << 20 {
                out.clear();
            }
            encoder.encode_framed(&view, signer, out).expect("encodes");
        }
    }
    records
}

#[test]
fn splitting_and_encoding_do_not_allocate_per_record() {
    // The counter counts: a fresh vector is one allocation.
    let probe = allocations();
    std::hint::black_box(vec![0u8; 64]);
    assert_eq!(allocations(), probe + 1);

    let signer = Signer::new("ops", 1, HashFunction::Sha1, b"key").expect("signer");
    let template = Template::heka(300, [1; 16]).expect("template");
    let message = &template.record[5..];
    let mut frames = Vec::new();
    for index in 0..20_000 {
        let signing = (index % 2 == 0).then_some(&signer);
        write_frame(&mut frames, message, signing).expect("frame");
    }
    let lines = Template::lines(200)
        .expect("template")
        .record
        .repeat(20_000);

    let verifier = Arc::new(Verifier::new([("ops_1", &b"key"[..])]).expect("keys"));
    let framing = HekaFrameSplitter::new(verifier, false, 65536).expect("splitter");
    let token = TokenSplitter::lines(65536).expect("splitter");
    let prefixed = PayloadOptions {
        prefix_ts: true,
        ..PayloadOptions::default()
    };
    let cases = [
        (
            Splitter::HekaFrame(framing),
            Encoder::Protobuf(ProtobufEncoder::new(65536).expect("encoder")),
            &frames,
        ),
        (
            Splitter::Token(token),
            Encoder::Payload(PayloadEncoder::new(&prefixed, 65536).expect("encoder")),
            &lines,
        ),
    ];
    for (mut splitter, mut encoder, stream) in cases {
        let mut buffer = StreamBuffer::for_splitter(&splitter, 4096).expect("buffer");
        let mut out = Vec::with_capacity(2 << 20);
        // Warm-up: buffers reach their working size.
        let (warm, rest) = stream.split_at(stream.len() / 4);
        pipeline(
            warm,
            &mut buffer,
            &mut splitter,
            &mut encoder,
            Some(&signer),
            &mut out,
        );
        let before = allocations();
        let records = pipeline(
            rest,
            &mut buffer,
            &mut splitter,
            &mut encoder,
            Some(&signer),
            &mut out,
        );
        let allocated = allocations() - before;
        assert!(records > 10_000, "{records}");
        assert_eq!(
            allocated, 0,
            "{allocated} allocations for {records} records"
        );
        assert_eq!(splitter.stats().auth_failures, 0);
    }
}

/// The statistics path: statsd parsing, the ring record both ways, the accumulator, its
/// rollup and StatFilter allocate nothing per stat once names and buffers are warm.
#[test]
fn stats_do_not_allocate_per_stat_after_warm_up() {
    use gyges::message::proto::{Field, Message, ValueType};
    use gyges::stats::accumulator::{Accumulator, AccumulatorSettings, Rollup};
    use gyges::stats::stat_filter::{MetricKind, MetricSettings, StatFilter};
    use gyges::stats::statsd::{encode_stat, parse_datagram, stat_records};
    use prost::Message as _;

    let datagrams: Vec<Vec<u8>> = (0..100)
        .map(|index| {
            format!(
                "api.requests:1|c|@0.5\napi.latency:{}|ms:{}|ms\nqueue.depth:{index}|g\n\
                 queue.depth:+1|g\nusers:user-{}|s\napi.errors:2|c",
                index % 37,
                index % 11,
                index % 13
            )
            .into_bytes()
        })
        .collect();
    let settings = AccumulatorSettings {
        percent_thresholds: vec![50, 90, 99],
        emit_in_fields: true,
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    let mut batch = Vec::with_capacity(1 << 16);
    let mut rollup = Rollup::new();
    let interval = |accumulator: &mut Accumulator, batch: &mut Vec<u8>, rollup: &mut Rollup| {
        let mut stats = 0u64;
        for datagram in &datagrams {
            batch.clear();
            for stat in parse_datagram(datagram) {
                encode_stat(&stat.expect("valid"), batch).expect("fits");
            }
            for stat in stat_records(batch) {
                accumulator.add(&stat).expect("room");
                stats += 1;
            }
        }
        accumulator.flush_into(1_700_000_000_000_000_000, rollup);
        stats
    };
    for _ in 0..3 {
        interval(&mut accumulator, &mut batch, &mut rollup);
    }
    let before = allocations();
    let mut stats = 0;
    for _ in 0..10 {
        stats += interval(&mut accumulator, &mut batch, &mut rollup);
    }
    let allocated = allocations() - before;
    assert_eq!(stats, 10 * 100 * 7);
    assert!(rollup
        .payload()
        .starts_with(b"stats.counters.api.errors.rate 20.000000 "));
    assert_eq!(allocated, 0, "{allocated} allocations for {stats} stats");

    let field = |name: &str, value_type: ValueType| Field {
        name: name.into(),
        value_type: Some(value_type as i32),
        representation: None,
        value_string: vec![],
        value_bytes: vec![],
        value_integer: vec![],
        value_double: vec![],
        value_bool: vec![],
    };
    let message = Message {
        uuid: vec![0; 16],
        timestamp: 1,
        hostname: Some("web.1".into()),
        fields: vec![
            Field {
                value_string: vec!["GET".into()],
                ..field("Method", ValueType::String)
            },
            Field {
                value_integer: vec![1234],
                ..field("Bytes", ValueType::Integer)
            },
        ],
        ..Message::default()
    }
    .encode_to_vec();
    let metric = |id: &str, kind, name: &str, value: &str| MetricSettings {
        id: id.into(),
        kind,
        name: name.into(),
        value: value.into(),
        replace_dot: true,
    };
    let mut filter = StatFilter::new(&[
        metric(
            "bytes",
            MetricKind::Counter,
            "httpd.bytes.%Hostname%",
            "%Bytes%",
        ),
        metric(
            "hits",
            MetricKind::Counter,
            "httpd.hits.%Method%.%Hostname%",
            "1",
        ),
    ])
    .expect("compiles");
    let view = MessageView::Proto(ProtoView::new(&message));
    let mut emitted = 0;
    filter.process(&view, |_| {});
    let before = allocations();
    for _ in 0..10_000 {
        batch.clear();
        emitted += filter.process(&view, |stat| {
            encode_stat(&stat.expect("valid"), &mut batch).expect("fits");
        });
    }
    let allocated = allocations() - before;
    assert_eq!(emitted, 20_000);
    assert_eq!(
        allocated, 0,
        "{allocated} allocations for {emitted} StatFilter stats"
    );
}

/// The syslog parser borrows every part from the line and writes the message into the
/// caller's buffer: parsing and encoding RFC 5424 (escapes included), RFC 3164 and malformed
/// lines allocate nothing once that buffer is warm.
#[test]
fn syslog_parsing_and_encoding_do_not_allocate() {
    use gyges::decoder::syslog::{encode, parse, SyslogContext};

    let lines: [&[u8]; 4] = [
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App \\\"x\\\"\"] \xEF\xBB\xBFAn entry\n",
        b"<86>Dec  2 14:05:01 web1 sshd[31337]: Accepted publickey for bob\n",
        b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console\n",
        b"<999>not syslog\n",
    ];
    let context = SyslogContext::new(1_796_216_400_000_000_000, 3600);
    let mut out = Vec::with_capacity(64 * 1024);
    let before = allocations();
    let mut parsed = 0usize;
    for round in 0..10_000 {
        let line = lines[round % lines.len()];
        parsed += usize::from(parse(line, &context).is_ok());
        if out.len() > 32 * 1024 {
            out.clear();
        }
        encode(line, &context, &[round as u8; 16], &mut out);
    }
    let allocated = allocations() - before;
    assert_eq!(parsed, 7_500, "three of the four lines are syslog");
    assert_eq!(allocated, 0, "{allocated} allocations for 10000 lines");
}

/// From ingest through a ring to the writer: one thread encodes messages into a sink's
/// batches and pushes them into a ring, another pops them, hands each to a writer (a `Vec`
/// standing for the file) and recycles the buffer. After warm-up neither thread allocates,
/// for any number of batches.
///
/// The warm-up makes the consumer hold one batch while the producer fills the ring, so the
/// producer allocates the most buffers one shipping task can ever have away from it plus one
/// (`runtime::ring::RETURN_SLOTS_EXTRA`); from then on its return ring always has one.
#[test]
fn the_ring_hand_off_does_not_allocate_per_batch_after_warm_up() {
    use gyges::limits::{BATCH_BYTES_DEFAULT, RING_SLOTS_DEFAULT};
    use gyges::output::{FlushPolicy, Sink, Target};
    use gyges::runtime::ring::{ring, BatchConsumer, BatchProducer, TryPushError};
    use gyges::telemetry::Telemetry;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const BATCHES: u64 = 300;
    const WARM_BATCHES: u64 = 4 * RING_SLOTS_DEFAULT as u64;
    let template = Template::heka(300, [1; 16]).expect("template");
    let message = template.record[5..].to_vec();
    let (producer, consumer) = ring(RING_SLOTS_DEFAULT);
    let ring_filled = Arc::new(AtomicBool::new(false));

    let filled = ring_filled.clone();
    let writer = std::thread::spawn(move || {
        let mut consumer = BatchConsumer::new(vec![consumer]);
        let mut file = Vec::with_capacity(2 * BATCH_BYTES_DEFAULT);
        let (mut batches, mut messages, mut before) = (0u64, 0u64, None);
        let mut write = |consumer: &mut BatchConsumer, batch: gyges::output::Batch, source| {
            file.clear();
            file.extend_from_slice(&batch.bytes);
            std::hint::black_box(&file);
            messages += batch.messages;
            consumer.recycle(source, batch.bytes);
        };
        loop {
            if batches == WARM_BATCHES && before.is_none() {
                before = Some(allocations());
            }
            match consumer.try_pop() {
                // Warm-up: hold the first batch until the producer finds the ring full.
                Some((batch, source)) if batches == 0 => {
                    while !filled.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    write(&mut consumer, batch, source);
                    batches += 1;
                }
                Some((batch, source)) => {
                    write(&mut consumer, batch, source);
                    batches += 1;
                }
                None if consumer.is_finished() => break,
                None => std::thread::yield_now(),
            }
        }
        let allocated = allocations() - before.unwrap_or(0);
        (batches, messages, allocated)
    });

    let telemetry = Telemetry::new(1, vec!["file".into()]);
    let producer = Rc::new(BatchProducer::new(producer));
    let encoder = Encoder::Protobuf(ProtobufEncoder::new(65536).expect("encoder"));
    let mut sink = Sink::new(
        0,
        Box::new(encoder),
        true,
        (BATCH_BYTES_DEFAULT, 65536),
        FlushPolicy::PROMPT,
        Target::Ring(producer.clone(), false),
    );
    let view = MessageView::Proto(ProtoView::new(&message));
    let (mut sent, mut before) = (0u64, 0);
    for index in 0..BATCHES {
        if index == WARM_BATCHES {
            before = allocations();
        }
        while !sink.is_full() {
            sink.accept(&view, &telemetry, 0);
        }
        let Some((mut batch, Target::Ring(to, _))) = sink.take() else {
            panic!("a full sink for a ring gives a batch for that ring");
        };
        sent += batch.messages;
        loop {
            match to.try_push(batch) {
                Ok(()) => break,
                Err(TryPushError::Full(back)) => {
                    ring_filled.store(true, Ordering::Release);
                    batch = back;
                    std::thread::yield_now();
                }
                Err(TryPushError::Abandoned(_)) => panic!("the writer is alive"),
            }
        }
    }
    let allocated = allocations() - before;
    drop(sink);
    drop(producer);
    let (batches, written, writer_allocated) = writer.join().expect("the writer thread");
    assert_eq!(batches, BATCHES);
    assert_eq!(written, sent);
    assert!(sent > 100 * BATCHES, "{sent} messages");
    assert_eq!(
        allocated,
        0,
        "{allocated} allocations on the producing thread for {} batches",
        BATCHES - WARM_BATCHES
    );
    assert_eq!(
        writer_allocated, 0,
        "{writer_allocated} allocations on the writing thread"
    );
}
