//! ElasticSearchOutput's encoding and bulk framing rate, one core, into a loopback receiver.
//!
//! One glommio executor pinned to CPU 0 does what one core of the daemon does for the output:
//! encodes ~200-byte messages with ESJsonEncoder, Heka-framed into a batch as the sink writes
//! them, `BATCH` per batch; cuts the batch back into its items; writes them as one `_bulk`
//! request over its kept-alive connection and reads and judges the answer (the output's own
//! [`Sender`]). A plain thread is the receiver: it reads each request by its `Content-Length`,
//! counts its NDJSON lines and answers `{"errors":false}` as Elasticsearch does when every
//! item was taken. Docs/s is documents over the wall time of a run, requests included; the
//! same loop without the requests is reported beside it (encoding and framing alone).
//!
//! Three runs; the report gives the median and the spread (max - min). Target (issue 11):
//! at least 500 k docs/s per core. Run with `cargo bench --bench elasticsearch`.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gyges::config::Section;
use gyges::encoder::elasticsearch::{esjson, EsEncoder};
use gyges::encoder::{Encode, Framing};
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{MessageView, ProtoView};
use gyges::output::http::client::{ClientPlan, Method, Url};
use gyges::output::http::{cut_frames, HttpPlan, Judge, Sender};
use gyges::output::FlushPolicy;
use gyges::telemetry::{Metric, Telemetry};
use prost::Message as _;

const RUNS: usize = 3;
const BATCH: usize = 1000;
const TARGET_DOCS_PER_SECOND: f64 = 500_000.0;

/// A ~200-byte web access message, numbered.
fn message(number: i64) -> Vec<u8> {
    let text = |name: &str, value: &str| Field {
        name: name.into(),
        value_string: vec![value.into()],
        ..Field::default()
    };
    Message {
        uuid: vec![9; 16],
        timestamp: 1_700_000_000_000_000_000 + number,
        r#type: Some("access".into()),
        logger: Some("nginx".into()),
        severity: Some(6),
        payload: Some(format!("GET /catalog/items/{number} HTTP/1.1 200")),
        hostname: Some("web-12.example.net".into()),
        pid: Some(3131),
        fields: vec![
            text("method", "GET"),
            text("route", "/catalog/items"),
            Field {
                name: "status".into(),
                value_type: Some(ValueType::Integer as i32),
                value_integer: vec![200],
                ..Field::default()
            },
            Field {
                name: "seconds".into(),
                value_type: Some(ValueType::Double as i32),
                value_double: vec![0.0042],
                ..Field::default()
            },
        ],
        ..Message::default()
    }
    .encode_to_vec()
}

/// The receiver: answers every bulk request on one kept-alive connection; returns the
/// documents it counted.
fn receiver() -> (u16, std::thread::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let thread = std::thread::spawn(move || {
        let mut documents = 0u64;
        let Ok((mut stream, _)) = listener.accept() else {
            return 0;
        };
        let _ = stream.set_nodelay(true);
        let body = r#"{"took":1,"errors":false,"items":[]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = answer.as_bytes();
        let mut inbox: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let head_end = loop {
                if let Some(at) = inbox.windows(4).position(|window| window == b"\r\n\r\n") {
                    break at + 4;
                }
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return documents,
                    Ok(count) => inbox.extend_from_slice(&buffer[..count]),
                }
            };
            let head = String::from_utf8_lossy(&inbox[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|value| value.trim().parse().ok())
                .expect("a Content-Length");
            while inbox.len() < head_end + length {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return documents,
                    Ok(count) => inbox.extend_from_slice(&buffer[..count]),
                }
            }
            let body = &inbox[head_end..head_end + length];
            documents += memchr::memchr_iter(b'\n', body).count() as u64 / 2;
            inbox.drain(..head_end + length);
            if stream.write_all(answer).is_err() {
                return documents;
            }
        }
    });
    (port, thread)
}

fn es_section() -> Section {
    let mut table: toml::Table = toml::from_str(
        "index = \"%{Type}-%{%Y.%m.%d}\"\nes_index_from_timestamp = true\ntype_name = \"\"",
    )
    .expect("options");
    table.insert("type".into(), "ESJsonEncoder".into());
    Section {
        file: "bench".into(),
        name: "EsJson".into(),
        table,
    }
}

fn plan(port: u16) -> HttpPlan {
    let client = ClientPlan {
        url: Url::parse(&format!("http://127.0.0.1:{port}/_bulk")).expect("url"),
        method: Method::Post,
        tls: None,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        keep_alive: true,
        header_lines: b"Content-Type: application/x-ndjson\r\n".to_vec(),
    };
    HttpPlan {
        type_name: "ElasticSearchOutput",
        client: Arc::new(client),
        gzip: false,
        judge: Judge::Bulk,
        messages_per_request: 0,
        buffer_bytes: 8 << 20,
        policy: FlushPolicy::PROMPT,
    }
}

/// One run: `count` documents encoded and framed, and sent when `port` is given. Returns
/// docs/s and the bytes of one bulk item.
async fn run(messages: &[Vec<u8>], count: usize, port: Option<u16>) -> (f64, usize) {
    let es_plan = esjson::es_json_plan(&es_section()).expect("ESJsonEncoder plan");
    let mut encoder = EsEncoder::new(&es_plan, 1 << 20).expect("encoder");
    let telemetry = Telemetry::new(1, vec!["es".into()]);
    let mut sender = port.map(|port| Sender::new(plan(port), telemetry.clone(), 0, 0));
    let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut pending = Vec::with_capacity(BATCH);
    let mut item_bytes = 0;
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        batch.clear();
        let take = BATCH.min(count - done);
        for index in 0..take {
            let bytes = &messages[(done + index) % messages.len()];
            let view = MessageView::Proto(ProtoView::new(bytes));
            let _ = encoder.encode_into(&view, Framing::Heka(None), &mut batch);
        }
        let mut items = Vec::with_capacity(take);
        cut_frames(&batch, &mut items);
        item_bytes = items.first().map_or(0, |item| item.len());
        if let Some(sender) = sender.as_mut() {
            pending.clear();
            pending.extend(0..items.len());
            let attempt = sender.attempt(&items, &mut pending).await;
            assert!(
                pending.is_empty(),
                "the receiver took everything: {attempt:?}"
            );
        } else {
            std::hint::black_box(&items);
        }
        done += take;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    if port.is_some() {
        assert_eq!(telemetry.get(0, 0, Metric::Sent), count as u64);
    }
    (rate, item_bytes)
}

/// Median and spread of `rates`.
fn summary(mut rates: Vec<f64>) -> (f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[rates.len() - 1] - rates[0])
}

fn main() {
    let mode = common::Mode::detect();
    let count = mode.pick(2_000_000, 200_000, 5_000);
    let messages: Vec<Vec<u8>> = (0..1000).map(message).collect();
    let mut framing_only = Vec::new();
    let mut sent = Vec::new();
    let mut item = 0;
    let mut received = 0;
    for _ in 0..RUNS {
        let (port, server) = receiver();
        let messages = messages.clone();
        // The executor pins the thread that makes it: a thread of its own, so that the main
        // thread, and the receivers it starts, stay free to run on the other core.
        let rates = std::thread::spawn(move || {
            glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
                .io_memory(0)
                .make()
                .expect("executor")
                .run(async move {
                    let alone = run(&messages, count, None).await;
                    let bulk = run(&messages, count, Some(port)).await;
                    (alone, bulk)
                })
        })
        .join()
        .expect("the core's thread");
        received += server.join().expect("receiver");
        framing_only.push(rates.0 .0);
        sent.push(rates.1 .0);
        item = rates.1 .1;
    }
    assert_eq!(
        received,
        (count * RUNS) as u64,
        "every document reached the receiver"
    );
    let (alone_median, alone_spread) = summary(framing_only);
    let (median, spread) = summary(sent);
    let mut section = common::Section::with_command(
        "elasticsearch",
        "cargo bench --bench elasticsearch",
        "ElasticSearchOutput: encoding and bulk framing, one core",
        mode,
    );
    section.line(format!(
        "{count} documents per run ({item}-byte bulk items, {BATCH} per request), {RUNS} runs, \
         one glommio core (CPU 0); the loopback receiver is a thread on the other core."
    ));
    let mut table = common::Table::new(&["what", "median docs/s", "spread (max - min)"]);
    table.row(vec![
        "ESJsonEncoder, framed into batches and cut into items".into(),
        common::si(alone_median, 3),
        common::si(alone_spread, 2),
    ]);
    table.row(vec![
        "the same, sent as `_bulk` requests and judged".into(),
        common::si(median, 3),
        common::si(spread, 2),
    ]);
    section.table(&table);
    section.line(format!(
        "Target (issue 11): {} docs/s per core: {}.",
        common::si(TARGET_DOCS_PER_SECOND, 3),
        if median >= TARGET_DOCS_PER_SECOND {
            "met"
        } else {
            "NOT met"
        }
    ));
    section.publish();
}
