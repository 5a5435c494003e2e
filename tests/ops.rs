//! The operator endpoint (`[gyges] http_address`) and `gyges top`, against the real daemon:
//! counters that equal what was sent, the Prometheus format checked by a real parser
//! (`prometheus_client`, Python), `/health` and `/report`, and the endpoint's bounds.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    frame, free_port, numbered_message, run_gyges, send_tcp, wait_for_or_explain, Daemon,
};

/// The endpoint's bounds, as `src/limits.rs` sets them.
const CONNECTIONS_MAX: usize = gyges::limits::OPS_CONNECTIONS_MAX;
const REQUEST_TIMEOUT: Duration = gyges::limits::OPS_REQUEST_TIMEOUT;

/// A daemon with a Heka TCP input, a plain FileOutput and a durable one, and the endpoint.
fn start(dir: &std::path::Path) -> (Daemon, u16, u16) {
    let (http, input) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\nhttp_address = \"127.0.0.1:{http}\"\n\
         min_disk_free = 0\ncheckpoint_interval = 100\n\
         [TcpInput]\naddress = \"127.0.0.1:{input}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"all.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         [Durable]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"durable.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         use_buffering = true\n"
    );
    (Daemon::start(dir, &config, &[http, input]), http, input)
}

/// One raw request; the whole answer (the endpoint closes after it).
fn request(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the endpoint");
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT * 3))
        .expect("timeout");
    stream.write_all(bytes).expect("send the request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// GETs `path`: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let answer = request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    );
    status_and_body(&answer)
}

fn status_and_body(answer: &str) -> (u16, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let code = head.split(' ').nth(1).and_then(|code| code.parse().ok());
    (code.unwrap_or(0), body.to_string())
}

/// `/metrics` parsed by `prometheus_client`'s parser: every sample as `name{labels}` (labels
/// sorted, as the parser gives them) → value. The parser rejects what is not valid text
/// exposition format, and so fails the test.
fn parsed_metrics(port: u16) -> BTreeMap<String, f64> {
    let (code, body) = get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    parse_metrics(&body)
}

/// [`parsed_metrics`], or None while the endpoint answers something else than 200 (it is
/// still counting connections it has not seen closed).
fn parsed_metrics_when_served(port: u16) -> Option<BTreeMap<String, f64>> {
    let (code, body) = get(port, "/metrics");
    (code == 200).then(|| parse_metrics(&body))
}

/// The text exposition format parsed by `prometheus_client`'s parser.
fn parse_metrics(body: &str) -> BTreeMap<String, f64> {
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       out[s.name + '{' + labels + '}'] = s.value\n\
        print(json.dumps(out))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/setup.sh installs it and prometheus-client)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body.as_bytes()).expect("write metrics");
    drop(stdin);
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "prometheus_client rejected /metrics (or is missing: run scripts/setup.sh):\n{}\n{body}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// A metric summed over every series whose labels include `plugin=<plugin>`.
fn sum(metrics: &BTreeMap<String, f64>, name: &str, plugin: &str) -> f64 {
    let prefix = format!("{name}{{");
    let label = format!("plugin={plugin}");
    metrics
        .iter()
        .filter(|(series, _)| series.starts_with(&prefix))
        .filter(|(series, _)| series.contains(&label))
        .map(|(_, value)| value)
        .sum()
}

fn send_numbered(port: u16, from: i64, count: i64) {
    let mut bytes = Vec::new();
    for sequence in from..from + count {
        bytes.extend(frame(&numbered_message(sequence, "ops")));
    }
    send_tcp(port, &bytes);
}

#[test]
fn metrics_count_exactly_what_was_sent_while_it_is_scraped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut daemon, http, input) = start(dir.path());
    let mut sent = 0i64;
    for batch in [1, 250, 1000, 3] {
        send_numbered(input, sent, batch);
        sent += batch;
        let expected = sent as f64;
        let last = std::cell::RefCell::new(BTreeMap::new());
        wait_for_or_explain(
            Duration::from_secs(10),
            "the counters to reach what was sent",
            || {
                let metrics = parsed_metrics(http);
                let reached = sum(&metrics, "gyges_records_total", "TcpInput") == expected
                    && sum(&metrics, "gyges_sent_total", "FileOutput") == expected
                    && sum(&metrics, "gyges_sent_total", "Durable") == expected
                    && sum(&metrics, "gyges_queue_lag_records", "Durable") == 0.0;
                *last.borrow_mut() = metrics;
                reached
            },
            || format!("{:#?}", last.borrow()),
        );
        let last = last.into_inner();
        // Nothing was counted twice or dropped, and the counters never run ahead.
        assert_eq!(sum(&last, "gyges_matched_total", "FileOutput"), expected);
        assert_eq!(sum(&last, "gyges_dropped_total", "FileOutput"), 0.0);
        assert_eq!(sum(&last, "gyges_decode_failures_total", "TcpInput"), 0.0);
    }
    let metrics = parsed_metrics(http);
    // Labelled by plugin, type, core and (outputs) delivery class; one series per core.
    let cores = metrics
        .keys()
        .filter(|series| series.starts_with("gyges_records_total{"))
        .count();
    assert!(cores >= 1);
    let durable = "gyges_sent_total{core=";
    let labelled = metrics
        .keys()
        .filter(|series| series.starts_with(durable))
        .filter(|series| series.contains("delivery=durable,plugin=Durable,type=FileOutput"))
        .count();
    assert_eq!(labelled, cores, "{metrics:#?}");
    assert!(metrics
        .keys()
        .any(|series| series.starts_with("gyges_queue_bytes{")));
    assert_eq!(metrics.get("gyges_ready{}"), Some(&1.0));
    // An input has no output counters.
    assert_eq!(sum(&metrics, "gyges_sent_total", "TcpInput"), 0.0);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn report_and_top_show_the_same_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut daemon, http, input) = start(dir.path());
    send_numbered(input, 0, 777);
    wait_for_or_explain(
        Duration::from_secs(10),
        "777 sent by the FileOutput",
        || sum(&parsed_metrics(http), "gyges_sent_total", "FileOutput") == 777.0,
        || get(http, "/metrics").1,
    );
    let (code, body) = get(http, "/report");
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("/report is JSON");
    let input_report = &report["inputs"][0];
    assert_eq!(input_report["Name"], "TcpInput");
    assert_eq!(input_report["records_total"]["value"], 777);
    assert_eq!(input_report["records_total"]["representation"], "count");
    let outputs = report["outputs"].as_array().expect("outputs");
    let names: Vec<&str> = outputs.iter().filter_map(|o| o["Name"].as_str()).collect();
    assert_eq!(names, ["FileOutput", "Durable"]);
    assert_eq!(outputs[1]["sent_total"]["value"], 777);
    assert_eq!(outputs[1]["Delivery"], "durable");
    assert_eq!(outputs[1]["QueueLagRecords"]["value"], 0);
    assert!(report["filters"].as_array().is_some_and(Vec::is_empty));

    let address = format!("127.0.0.1:{http}");
    let top = run_gyges(&["top", "--once", "--addr", &address, "--interval-ms", "100"]);
    assert_eq!(top.code, Some(0), "{}", top.stderr);
    let lines: Vec<&str> = top.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "a heading, the columns, three plugins:\n{}",
        top.stdout
    );
    assert!(lines[0].contains(": ready;"), "{}", top.stdout);
    for plugin in ["TcpInput", "FileOutput", "Durable"] {
        let row = lines
            .iter()
            .find(|line| line.starts_with(&format!("{plugin} ")))
            .unwrap_or_else(|| panic!("no row for {plugin}:\n{}", top.stdout));
        let columns: Vec<&str> = row.split_whitespace().collect();
        // PLUGIN TYPE MSG/S MB/S MESSAGES DROPPED FAILED QUEUE_LAG
        assert_eq!(columns[4], "777", "{row}");
        assert_eq!(columns[2], "0.0", "nothing sent during the frame: {row}");
        let lag = if plugin == "Durable" { "0" } else { "-" };
        assert_eq!(columns[7], lag, "{row}");
    }
    let down = run_gyges(&["top", "--once", "--addr", "127.0.0.1:1"]);
    assert_eq!(down.code, Some(1));
    assert!(down.stderr.contains("cannot scrape"), "{}", down.stderr);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn health_is_ready_while_serving_and_503_once_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (http, input) = (free_port(), free_port());
    // A TcpOutput whose destination never answers: at stop its queue keeps the core
    // draining (up to its drain timeout), while the endpoint still answers.
    let dead = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\nhttp_address = \"127.0.0.1:{http}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{input}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{dead}\"\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[http, input]);
    // The input's port accepts as soon as a core has bound it; ready follows once every core
    // has reported its inputs started, a moment later.
    let mut body = String::new();
    wait_for_or_explain(
        Duration::from_secs(10),
        "/health to answer 200",
        || {
            let (code, answer) = get(http, "/health");
            body = answer;
            code == 200
        },
        || daemon.stderr(),
    );
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (health["live"].as_bool(), health["ready"].as_bool()),
        (Some(true), Some(true))
    );
    send_numbered(input, 0, 50);
    wait_for_or_explain(
        Duration::from_secs(10),
        "the TcpOutput to hold the 50 messages",
        || sum(&parsed_metrics(http), "gyges_matched_total", "TcpOutput") == 50.0,
        || get(http, "/metrics").1,
    );
    let child = daemon.child.as_ref().expect("running");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = None;
    while Instant::now() < deadline {
        let (code, body) = get(http, "/health");
        if code == 503 {
            seen = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = seen.unwrap_or_else(|| panic!("no 503 while stopping:\n{}", daemon.stderr()));
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (health["live"].as_bool(), health["ready"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(parsed_metrics(http).get("gyges_ready{}"), Some(&0.0));
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
}

#[test]
fn bad_requests_get_a_4xx_and_never_stall_the_endpoint_or_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut daemon, http, input) = start(dir.path());

    // A head over 16 KiB, and one with too many lines: 431.
    let mut oversized = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    oversized.resize(20 * 1024, b'a');
    oversized.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_and_body(&request(http, &oversized)).0, 431);
    let many: String = (0..100).map(|n| format!("X-{n}: v\r\n")).collect();
    let many = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
    assert_eq!(status_and_body(&request(http, many.as_bytes())).0, 431);
    // Malformed: 400. Other methods: 405. Unknown paths: 404. HEAD: no body.
    assert_eq!(
        status_and_body(&request(http, b"\x01\x02 / HTTP/1.1\r\n\r\n")).0,
        400
    );
    let post = b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(status_and_body(&request(http, post)).0, 405);
    assert_eq!(get(http, "/nope").0, 404);
    let head = request(http, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status_and_body(&head), (200, String::new()));

    // A request that never completes is answered 408 once its time is up.
    let started = Instant::now();
    let slow = request(http, b"GET /metrics HTTP/1.1\r\nHost: slow");
    let took = started.elapsed();
    assert_eq!(status_and_body(&slow).0, 408, "{slow}");
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(100),
        "{took:?}"
    );
    assert!(took < REQUEST_TIMEOUT * 3, "{took:?}");

    // Connections past the bound are answered 503 at once, while the idle ones wait.
    let holding = Instant::now();
    let idle: Vec<TcpStream> = (0..CONNECTIONS_MAX)
        .map(|_| TcpStream::connect(("127.0.0.1", http)).expect("connect"))
        .collect();
    // Let the endpoint accept them all before the next one.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (code, body) = get(http, "/metrics");
    let held = started.duration_since(holding);
    assert_eq!(
        code,
        503,
        "after holding {held:?}: {}\n{}",
        daemon.stderr(),
        &body[..body.len().min(200)]
    );
    assert!(started.elapsed() < REQUEST_TIMEOUT, "refused at once");
    // Meanwhile the pipeline runs as before.
    send_numbered(input, 0, 100);
    drop(idle);
    // Once the idle ones are gone (closed by the client or timed out), it serves again.
    wait_for_or_explain(
        Duration::from_secs(10),
        "the endpoint to serve again with the 100 messages counted",
        || {
            parsed_metrics_when_served(http)
                .is_some_and(|metrics| sum(&metrics, "gyges_sent_total", "FileOutput") == 100.0)
        },
        || daemon.stderr(),
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn an_address_in_use_fails_startup_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let config = format!(
        "[hekad]\nhttp_address = \"127.0.0.1:{port}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{}\"\n",
        free_port()
    );
    let path = dir.path().join("gyges.toml");
    std::fs::write(&path, config).expect("write config");
    let run = run_gyges(&["run", "-c", path.to_str().expect("utf-8 path")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("http_address"), "{}", run.stderr);
}
