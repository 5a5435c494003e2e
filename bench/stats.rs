//! Statistics throughput on one core: statsd parsing into ring records, the accumulator's
//! per-stat path, the rollup, and StatFilter per message.
//!
//! The statsd corpus is 100,000 datagrams of 8 lines over 1,000 distinct names (counters with
//! sample rates, timers, gauges, sets). Each case runs `PASSES` (5) times; the median pass is
//! reported, with the spread. Run with `cargo bench --bench stats`.

#[path = "common/mod.rs"]
mod common;

thread_local! {
    /// The lines this bench reports, gathered for its section of the shared report.
    static REPORT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Prints a line and keeps it for the report.
macro_rules! out {
    ($($argument:tt)*) => {{
        let line = format!($($argument)*);
        println!("{line}");
        REPORT.with(|report| {
            report.borrow_mut().push_str(&line);
            report.borrow_mut().push('\n');
        });
    }};
}

use std::time::Instant;

use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{MessageView, ProtoView};
use gyges::stats::accumulator::{Accumulator, AccumulatorSettings, Rollup};
use gyges::stats::stat_filter::{MetricKind, MetricSettings, StatFilter};
use gyges::stats::statsd::{encode_stat, parse_datagram, stat_records};
use prost::Message as _;

const PASSES: usize = 5;
const DATAGRAMS: usize = 100_000;
const NAMES: usize = 1_000;

/// Runs `pass` (which returns the items it handled) `PASSES` times and prints the median.
fn measure(name: &str, unit: &str, pass: impl FnMut() -> u64) {
    let (timing, items) = common::median_of(PASSES, pass);
    let median = timing.median.max(1e-12);
    out!(
        "{name:<48} {:>7.2} M {unit}/s {:>8.1} ns/{unit} ({items} {unit}, spread {})",
        items as f64 / median / 1e6,
        median * 1e9 / items.max(1) as f64,
        timing.spread(),
    );
}

fn corpus() -> Vec<Vec<u8>> {
    (0..DATAGRAMS)
        .map(|index| {
            let name = index % NAMES;
            format!(
                "app.requests.{name}:1|c|@0.1\napp.latency.{name}:{}|ms\n\
                 app.queue.{name}:{}|g\napp.queue.{name}:+1|g\napp.users.{name}:u{}|s\n\
                 app.errors.{name}:1|c\napp.bytes.{name}:{}|c\napp.db.{name}:{}|ms",
                index % 250,
                index % 90,
                index % 500,
                index % 4096,
                index % 40
            )
            .into_bytes()
        })
        .collect()
}

fn main() {
    // Under `cargo test` (no `--bench` argument) a bench only has to prove it still runs.
    if common::Mode::detect() == common::Mode::Smoke {
        std::env::set_var("GYGES_BENCH_QUICK", "1");
    }
    let datagrams = corpus();
    let bytes: usize = datagrams.iter().map(Vec::len).sum();
    out!("statsd corpus: {DATAGRAMS} datagrams, {bytes} bytes, {NAMES} names per kind");
    let mut batch = Vec::with_capacity(1 << 20);
    measure("statsd parse + encode_stat (ingest core)", "stat", || {
        let mut stats = 0u64;
        for datagram in &datagrams {
            batch.clear();
            for stat in parse_datagram(datagram).flatten() {
                encode_stat(&stat, &mut batch).unwrap();
                stats += 1;
            }
        }
        stats
    });
    let mut records = Vec::new();
    for datagram in &datagrams {
        for stat in parse_datagram(datagram).flatten() {
            encode_stat(&stat, &mut records).unwrap();
        }
    }
    let settings = AccumulatorSettings {
        percent_thresholds: vec![90, 99],
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings.clone(), 1);
    let mut rollup = Rollup::new();
    measure(
        "decode_stat + Accumulator::add (accumulator core)",
        "stat",
        || {
            let mut stats = 0u64;
            for stat in stat_records(&records) {
                accumulator.add(&stat).unwrap();
                stats += 1;
            }
            accumulator.flush_into(0, &mut rollup);
            stats
        },
    );
    for stat in stat_records(&records) {
        accumulator.add(&stat).unwrap();
    }
    let mut fresh = Accumulator::with_seed(settings, 1);
    for stat in stat_records(&records) {
        fresh.add(&stat).unwrap();
    }
    let started = Instant::now();
    fresh.flush_into(0, &mut rollup);
    out!(
        "{:<48} {:>7.2} ms for {} stats, {} lines, {} payload bytes",
        "Accumulator::flush_into (one interval)",
        started.elapsed().as_secs_f64() * 1e3,
        rollup.stats_count(),
        rollup.lines(),
        rollup.payload().len()
    );

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
        r#type: Some("nginx.access".into()),
        hostname: Some("web-01.example.com".into()),
        payload: Some("GET /index.html HTTP/1.1 200 1234".into()),
        fields: vec![
            Field {
                value_string: vec!["GET".into()],
                ..field("Method", ValueType::String)
            },
            Field {
                value_integer: vec![200],
                ..field("Status", ValueType::Integer)
            },
            Field {
                value_integer: vec![1234],
                ..field("Bytes", ValueType::Integer)
            },
            Field {
                value_double: vec![0.023],
                ..field("Seconds", ValueType::Double)
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
            "httpd.%Status%.%Method%.%Hostname%",
            "1",
        ),
        metric(
            "time",
            MetricKind::Timer,
            "httpd.time.%Hostname%",
            "%Seconds%",
        ),
    ])
    .unwrap();
    measure(
        "StatFilter::process, 3 metrics (filter core)",
        "message",
        || {
            let mut messages = 0u64;
            for _ in 0..200_000 {
                let view = MessageView::Proto(ProtoView::new(&message));
                batch.clear();
                filter.process(&view, |stat| {
                    encode_stat(&stat.unwrap(), &mut batch).unwrap();
                });
                messages += 1;
            }
            messages
        },
    );
    let mode = common::Mode::detect();
    let mut section =
        common::Section::new("stats", "Stats (statsd, accumulator, StatFilter)", mode);
    section.line("```");
    section.line(REPORT.with(|report| report.borrow().clone()));
    section.line("```");
    section.publish();
}
