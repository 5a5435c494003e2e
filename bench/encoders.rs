//! ESJsonEncoder, ESLogstashV0Encoder and SchemaInfluxLineEncoder throughput, one core.
//!
//! One ~200-byte message (5 headers, 4 fields: two strings, an integer, a double) encoded
//! `COUNT` times into a batch buffer that is cleared every 1000 items, as an output's batch
//! is shipped. Each encoder is timed over 3 runs; the report gives the median and the spread
//! (max - min) in items per second. Run with `cargo bench --bench encoders`.

use std::hint::black_box;
use std::time::Instant;

use gyges::config::Section;
use gyges::encoder::elasticsearch::{esjson, logstash, EsEncoder};
use gyges::encoder::influx::{influx_plan, InfluxEncoder};
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{MessageView, ProtoView};
use prost::Message as _;

const COUNT: usize = 1_000_000;
const RUNS: usize = 3;

fn message() -> Vec<u8> {
    let message = Message {
        uuid: vec![7; 16],
        timestamp: 1_700_000_000_123_456_789,
        r#type: Some("nginx.access".into()),
        logger: Some("web-frontend".into()),
        severity: Some(6),
        payload: Some("GET /api/v1/items?page=3 HTTP/1.1 200".into()),
        hostname: Some("web-07.example.org".into()),
        pid: Some(4242),
        fields: vec![
            Field {
                name: "method".into(),
                value_string: vec!["GET".into()],
                ..Field::default()
            },
            Field {
                name: "path".into(),
                value_string: vec!["/api/v1/items".into()],
                ..Field::default()
            },
            Field {
                name: "status".into(),
                value_type: Some(ValueType::Integer as i32),
                value_integer: vec![200],
                ..Field::default()
            },
            Field {
                name: "duration".into(),
                value_type: Some(ValueType::Double as i32),
                value_double: vec![0.0123],
                ..Field::default()
            },
        ],
        ..Message::default()
    };
    message.encode_to_vec()
}

fn section(kind: &str, options: &str) -> Section {
    let mut table: toml::Table = toml::from_str(options).expect("bench options");
    table.insert("type".into(), kind.into());
    Section {
        file: "bench".into(),
        name: "Enc".into(),
        table,
    }
}

/// Items per second of `encode` over `COUNT` messages, and the bytes of one item.
fn run(bytes: &[u8], mut encode: impl FnMut(&MessageView<'_>, &mut Vec<u8>)) -> (f64, usize) {
    let mut out = Vec::with_capacity(1 << 20);
    encode(&MessageView::Proto(ProtoView::new(bytes)), &mut out);
    let item = out.len();
    let start = Instant::now();
    for index in 0..COUNT {
        if index % 1000 == 0 {
            out.clear();
        }
        // A fresh view per message, as on the data path.
        encode(
            &MessageView::Proto(ProtoView::new(black_box(bytes))),
            &mut out,
        );
    }
    black_box(&out);
    (COUNT as f64 / start.elapsed().as_secs_f64(), item)
}

fn main() {
    let bytes = message();
    println!(
        "encoders: {COUNT} items of a {}-byte message per run, {RUNS} runs, one core",
        bytes.len()
    );
    println!("| encoder | item bytes | median items/s | spread (max - min) |");
    println!("|---|---|---|---|");
    let es_plan = esjson::es_json_plan(&section(
        "ESJsonEncoder",
        "index = \"%{Type}-%{%Y.%m.%d}\"\nes_index_from_timestamp = true",
    ))
    .expect("ESJsonEncoder plan");
    let logstash_plan = logstash::logstash_plan(&section("ESLogstashV0Encoder", ""))
        .expect("ESLogstashV0Encoder plan");
    let influx = influx_plan(&section(
        "SchemaInfluxLineEncoder",
        "skip_fields = \"method path\"\ntag_fields = \"Hostname method\"",
    ))
    .expect("SchemaInfluxLineEncoder plan");
    let mut es = EsEncoder::new(&es_plan, 1 << 20).expect("encoder");
    let mut ls = EsEncoder::new(&logstash_plan, 1 << 20).expect("encoder");
    let mut line = InfluxEncoder::new(&influx, 1 << 20).expect("encoder");
    let mut rows: Vec<(&str, Vec<(f64, usize)>)> = vec![
        ("ESJsonEncoder", Vec::new()),
        ("ESLogstashV0Encoder", Vec::new()),
        ("SchemaInfluxLineEncoder (2 points)", Vec::new()),
    ];
    for _ in 0..RUNS {
        rows[0]
            .1
            .push(run(&bytes, |view, out| es.encode(view, out)));
        rows[1]
            .1
            .push(run(&bytes, |view, out| ls.encode(view, out)));
        rows[2]
            .1
            .push(run(&bytes, |view, out| line.encode(view, out)));
    }
    for (name, mut results) in rows {
        results.sort_by(|a, b| a.0.total_cmp(&b.0));
        let spread = results[RUNS - 1].0 - results[0].0;
        println!(
            "| {name} | {} | {:.2} M | {:.2} M |",
            results[0].1,
            results[RUNS / 2].0 / 1e6,
            spread / 1e6
        );
    }
}
