//! ElasticSearchOutput through the daemon, against the loopback HTTP server of
//! `http_receiver` answering as Elasticsearch does: bulk bodies checked byte for byte; items
//! answered 400 (rejected and counted, never sent again), 429 and 503 (sent again); a whole
//! request answered 429 or 503, or never answered (a timeout); the durable class through
//! kill -9 with nothing lost; TLS to an https:// server; config errors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::durable::{assert_at_least_once, KillingSender, CHUNK_MESSAGES};
use crate::http_receiver::{bulk_answer, Answer, Receiver, ServerTls};
use crate::util::*;

/// A TcpInput on `port` and an ElasticSearchOutput to `server` with `extra` keys; its
/// encoder writes `{"index":{"_index":"gyges-test","_id":"<seq>"}}` and
/// `{"Type":"test","Payload":"<payload>","seq":<seq>}`.
fn config(port: u16, server: &str, extra: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [EsJson]\ntype = \"ESJsonEncoder\"\nindex = \"gyges-%{{Type}}\"\ntype_name = \"\"\n\
         id = \"%{{seq}}\"\nfields = [\"Type\", \"Payload\", \"DynamicFields\"]\n\
         [Es]\ntype = \"ElasticSearchOutput\"\nmessage_matcher = \"TRUE\"\n\
         server = \"{server}\"\nencoder = \"EsJson\"\nflush_interval = 20\nflush_count = 200\n\
         {extra}"
    )
}

/// The bulk item of message `n` with `payload`, as it must be sent.
fn item(n: i64, payload: &str) -> String {
    format!(
        "{{\"index\":{{\"_index\":\"gyges-test\",\"_id\":\"{n}\"}}}}\n\
         {{\"Type\":\"test\",\"Payload\":\"{payload}\",\"seq\":{n}}}\n"
    )
}

/// The `_id` of an action line.
fn id_of(action: &[u8]) -> i64 {
    let action: serde_json::Value = serde_json::from_slice(action).expect("JSON");
    action["index"]["_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a numeric _id")
}

/// Items answered 2xx, by number, and how many times.
type Delivered = Arc<Mutex<BTreeMap<i64, u64>>>;

#[test]
fn bulk_bodies_are_ndjson_byte_for_byte_with_auth() {
    const COUNT: i64 = 5000;
    let delivered: Delivered = Arc::default();
    let seen = delivered.clone();
    let receiver = Receiver::start(0, None, move |number, request| {
        let body = bulk_answer(request, |_, action, _| {
            *seen.lock().unwrap().entry(id_of(action)).or_default() += 1;
            201
        });
        // Every other answer chunked, as Elasticsearch sends large ones.
        Answer::Status(200, body, number % 2 == 1)
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("http://127.0.0.1:{}", receiver.port);
    let extra = "delivery = \"memory\"\nusername = \"elastic\"\npassword = \"changeme\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &server, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    wait_for(Duration::from_secs(30), "every document", || {
        delivered.lock().unwrap().len() >= COUNT as usize
    });
    daemon.stop();
    let accepted = receiver.accepted();
    let mut numbers = Vec::new();
    for request in &accepted {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/_bulk");
        assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
        // base64("elastic:changeme")
        assert_eq!(
            request.header("authorization"),
            Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
        );
        let lines = request.lines();
        let first = id_of(lines[0]);
        let count = lines.len() as i64 / 2;
        let expected: String = (first..first + count)
            .map(|n| item(n, &format!("msg {n}")))
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&request.body),
            expected,
            "the bulk body, byte for byte"
        );
        numbers.extend(first..first + count);
    }
    assert_eq!(
        numbers,
        (0..COUNT).collect::<Vec<_>>(),
        "each once, in order"
    );
    assert_eq!(daemon.counter("Es.sent_total"), COUNT as u64);
    assert_eq!(daemon.counter("Es.rejected_total"), 0);
    assert_eq!(daemon.counter("Es.retries_total"), 0);
}

/// The partial failures Elasticsearch answers with, in one server: items ≡ 3 (mod 10) are
/// refused by the mapping (400) every time; items ≡ 7 (mod 10) get a 429 the first time;
/// the second request is refused as a whole with 429, the fourth with 503, and the sixth is
/// never answered. Returns the items answered 2xx.
fn flaky_elasticsearch(port: u16, tls: Option<ServerTls>) -> (Receiver, Delivered) {
    let delivered: Delivered = Arc::default();
    let seen = delivered.clone();
    let throttled: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let receiver = Receiver::start(port, tls, move |number, request| match number {
        1 => Answer::Status(429, r#"{"error":"too many requests"}"#.into(), false),
        3 => Answer::Status(503, r#"{"error":"unavailable"}"#.into(), true),
        5 => Answer::Hang,
        _ => {
            let body = bulk_answer(request, |_, action, _| {
                let id = id_of(action);
                match id % 10 {
                    3 => 400,
                    7 if throttled.lock().unwrap().insert(id) => 429,
                    _ => {
                        *seen.lock().unwrap().entry(id).or_default() += 1;
                        201
                    }
                }
            });
            Answer::Status(200, body, false)
        }
    });
    (receiver, delivered)
}

fn assert_partial_failures_handled(daemon: &Daemon, delivered: &Delivered, count: i64) {
    let delivered = delivered.lock().unwrap();
    let wanted: Vec<i64> = (0..count).filter(|n| n % 10 != 3).collect();
    assert_eq!(
        delivered.keys().copied().collect::<Vec<_>>(),
        wanted,
        "every document but the refused ones"
    );
    assert!(delivered.values().all(|&times| times == 1), "none twice");
    assert_eq!(daemon.counter("Es.rejected_total"), count as u64 / 10);
    assert_eq!(daemon.counter("Es.sent_total"), wanted.len() as u64);
    assert!(
        daemon.counter("Es.retries_total") >= count as u64 / 10,
        "the 429 items and the failed requests were sent again"
    );
    let errors = daemon.counter("Es.errors_total");
    assert!(errors >= 3, "429, 503 and the timeout: {errors}");
    assert_eq!(daemon.counter("Es.dropped_total"), 0);
    assert!(
        daemon.stderr().contains("mapper_parsing_exception"),
        "the rejection is logged with its reason"
    );
}

#[test]
fn partial_failures_429_503_and_timeouts_are_retried_and_rejections_counted() {
    const COUNT: i64 = 3000;
    let (receiver, delivered) = flaky_elasticsearch(0, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("http://127.0.0.1:{}/", receiver.port);
    // The default class is Heka's: buffered on disk.
    let extra = "http_timeout = 500\ngzip = true\nmax_messages_per_request = 300\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &server, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    let wanted = (COUNT - COUNT / 10) as usize;
    wait_for_or_explain(
        Duration::from_secs(60),
        "every accepted document",
        || delivered.lock().unwrap().len() >= wanted,
        || daemon.stderr(),
    );
    daemon.stop();
    assert_partial_failures_handled(&daemon, &delivered, COUNT);
    assert!(
        dir.path().join("gyges-data/queue/Es/0").exists(),
        "ElasticSearchOutput is buffered on disk by default"
    );
    for request in receiver.accepted() {
        assert_eq!(request.header("content-encoding"), Some("gzip"));
    }
}

#[test]
fn durable_bulk_delivery_loses_nothing_through_kill_9() {
    const CHUNKS: usize = 40;
    const TOTAL: usize = CHUNKS * CHUNK_MESSAGES;
    let delivered: Delivered = Arc::default();
    let seen = delivered.clone();
    let throttled: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    // Items ≡ 7 (mod 10) are throttled once, and every fifth request fails as a whole: reads
    // are often half delivered when the kill lands.
    let receiver = Receiver::start(0, None, move |number, request| {
        if number % 5 == 4 {
            return Answer::Status(503, String::new(), false);
        }
        let body = bulk_answer(request, |_, action, _| {
            let id = id_of(action);
            if id % 10 == 7 && throttled.lock().unwrap().insert(id) {
                return 429;
            }
            *seen.lock().unwrap().entry(id).or_default() += 1;
            201
        });
        Answer::Status(200, body, false)
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("http://127.0.0.1:{}", receiver.port);
    let mut daemon = Daemon::start(
        dir.path(),
        &config(port, &server, "use_buffering = true\n"),
        &[port],
    );
    let sender = KillingSender::start(port, CHUNKS);
    for kill_after in [10, 25] {
        sender.kill_after(kill_after, &mut daemon, &[port], Duration::from_millis(200));
    }
    let (_, resent) = sender.finish();
    wait_for_or_explain(
        Duration::from_secs(60),
        "every document",
        || delivered.lock().unwrap().len() >= TOTAL,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = delivered.lock().unwrap().clone();
    let duplicates = assert_at_least_once(&counts, TOTAL, "durable ElasticSearchOutput");
    println!(
        "durable ElasticSearchOutput: {TOTAL} documents, 2 kills, {resent} resent by the \
         sender, {duplicates} duplicates at the server"
    );
}

#[test]
fn https_server_verified_with_the_tls_options() {
    if !crate::bench_common::pki::openssl_available() {
        panic!("openssl is needed: run scripts/setup.sh");
    }
    const COUNT: i64 = 1000;
    let pki = tempfile::tempdir().expect("temp dir");
    crate::bench_common::pki::make_pki(pki.path(), &["server", "client"]);
    let tls = ServerTls {
        cert: pki.path().join("server.pem"),
        key: pki.path().join("server.key"),
    };
    let (receiver, delivered) = flaky_elasticsearch(0, Some(tls));
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("https://localhost:{}", receiver.port);
    let extra = format!(
        "http_timeout = 500\ndelivery = \"memory\"\nmax_messages_per_request = 300\n[Es.tls]\nroot_cafile = \"{}\"\n",
        pki.path().join("ca.pem").display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &server, &extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    let wanted = (COUNT - COUNT / 10) as usize;
    wait_for_or_explain(
        Duration::from_secs(60),
        "every accepted document over TLS",
        || delivered.lock().unwrap().len() >= wanted,
        || daemon.stderr(),
    );
    daemon.stop();
    assert_partial_failures_handled(&daemon, &delivered, COUNT);

    // A server whose certificate does not verify gets nothing.
    let other = tempfile::tempdir().expect("temp dir");
    crate::bench_common::pki::make_pki(other.path(), &["server"]);
    let (stranger, reached) = flaky_elasticsearch(
        0,
        Some(ServerTls {
            cert: other.path().join("server.pem"),
            key: other.path().join("server.key"),
        }),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("https://localhost:{}", stranger.port);
    let mut daemon = Daemon::start(dir.path(), &config(port, &server, &extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..10));
    wait_for(Duration::from_secs(10), "a refused handshake", || {
        daemon.stderr().contains("request failed")
    });
    daemon.stop();
    assert!(reached.lock().unwrap().is_empty());

    // Without `root_cafile` the system's CAs are used, and they do not know the test CA.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = format!("https://localhost:{}", receiver.port);
    let system = "http_timeout = 500\ndelivery = \"memory\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &server, system), &[port]);
    let before = delivered.lock().unwrap().len();
    send_tcp(port, &numbered_frames("msg", 0..10));
    wait_for(Duration::from_secs(10), "a refused handshake", || {
        daemon.stderr().contains("request failed")
    });
    daemon.stop();
    assert_eq!(delivered.lock().unwrap().len(), before);
    assert_eq!(daemon.counter("Es.sent_total"), 0);
}

#[test]
fn elasticsearch_config_errors_name_the_key() {
    for (extra, key) in [
        ("server = \"127.0.0.1:9200\"\n", "server"),
        ("flush_count = 0\n", "flush_count"),
        ("http_timeout = -1\n", "http_timeout"),
        ("connect_timeout = 100000000\n", "connect_timeout"),
        ("encoder = \"Nope\"\n", "encoder"),
        (
            "server = \"https://localhost:9200\"\n[Es.tls]\nroot_cafile = \"/no/such/ca.pem\"\n",
            "tls.root_cafile",
        ),
        ("index = \"x\"\n", "index"),
    ] {
        let file = temp_file(
            format!("[Es]\ntype = \"ElasticSearchOutput\"\nmessage_matcher = \"TRUE\"\n{extra}")
                .as_bytes(),
        );
        let path = file.path().display().to_string();
        let run = run_gyges(&["validate", "-c", &path]);
        assert_ne!(run.code, Some(0), "{extra} is refused");
        assert!(
            run.stderr.contains("section [Es]")
                && run.stderr.contains(&format!("key `{key}`"))
                && run.stderr.contains(&path),
            "{extra}: the error names file, section and key `{key}`: {}",
            run.stderr
        );
    }
}
