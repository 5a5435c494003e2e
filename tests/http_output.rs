//! HttpOutput through the daemon, against the loopback HTTP server of `http_receiver`:
//! batches as request bodies with the configured method, path, headers and basic auth;
//! success only on a 2xx (a 500 or 503 is retried, nothing lost); InfluxDB line protocol to
//! `/write`; the delivery classes with the server down (memory waits and delivers everything,
//! best effort drops and counts, durable keeps it on disk across a kill -9); config errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http_receiver::{Answer, Receiver, Request};
use crate::util::*;

/// A TcpInput on `port` and an HttpOutput to `address` with `extra` keys.
fn config(port: u16, address: &str, extra: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Http]\ntype = \"HttpOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"{address}\"\n{extra}"
    )
}

/// How many times each `msg <n>` line arrived in the accepted requests' bodies.
fn line_counts(requests: &[Request]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        for line in request.lines() {
            let text = std::str::from_utf8(line).expect("UTF-8 line");
            let number: i64 = text
                .strip_prefix("msg ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line `{text}`"));
            *counts.entry(number).or_default() += 1;
        }
    }
    counts
}

fn wait_lines(receiver: &Receiver, count: usize, daemon: &Daemon) {
    wait_for_or_explain(
        Duration::from_secs(30),
        "every message at the server",
        || line_counts(&receiver.accepted()).len() >= count,
        || {
            let seen = line_counts(&receiver.accepted()).len();
            format!("{seen} of {count} arrived\n{}", daemon.stderr())
        },
    );
}

#[test]
fn http_output_sends_batches_with_its_method_headers_and_auth_and_retries_failures() {
    const COUNT: i64 = 3000;
    // Every third request fails, alternating 500 and 503; the retries go through.
    let receiver = Receiver::start(0, None, |number, _| match number % 6 {
        2 => Answer::Status(500, "boom".into(), false),
        5 => Answer::Status(503, String::new(), true),
        _ => Answer::Status(204, String::new(), false),
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let address = format!("http://127.0.0.1:{}/ingest/v1?tenant=a", receiver.port);
    let extra = "method = \"PUT\"\nusername = \"gyges\"\npassword = \"s3cret\"\n\
                 flush_count = 50\nflush_interval = 20\nmax_messages_per_request = 250\n\
                 [Http.headers]\nX-Team = \"logs\"\nContent-Type = \"text/plain\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    wait_lines(&receiver, COUNT as usize, &daemon);
    daemon.stop();
    let accepted = receiver.accepted();
    let counts = line_counts(&accepted);
    assert_eq!(counts.len(), COUNT as usize);
    assert!(
        counts.values().all(|&count| count == 1),
        "each message once"
    );
    assert!(
        accepted.len() >= COUNT as usize / 250,
        "at most 250 per request"
    );
    assert!(accepted.iter().all(|request| request.lines().len() <= 250));
    for request in &accepted {
        assert_eq!(request.method, "PUT");
        assert_eq!(request.target, "/ingest/v1?tenant=a");
        assert_eq!(
            request.header("host"),
            Some(&*format!("127.0.0.1:{}", receiver.port))
        );
        assert_eq!(request.header("x-team"), Some("logs"));
        assert_eq!(request.header("content-type"), Some("text/plain"));
        // base64("gyges:s3cret")
        assert_eq!(
            request.header("authorization"),
            Some("Basic Z3lnZXM6czNjcmV0")
        );
        assert_eq!(
            request
                .header("content-length")
                .map(|n| n.parse::<usize>().ok()),
            Some(Some(request.body.len()))
        );
    }
    assert!(
        receiver.requests.load(Ordering::Acquire) > accepted.len(),
        "some requests were refused and retried"
    );
    assert_eq!(daemon.counter("Http.sent_total"), COUNT as u64);
    assert!(daemon.counter("Http.retries_total") > 0);
    assert!(daemon.counter("Http.errors_total") > 0);
    assert_eq!(daemon.counter("Http.dropped_total"), 0);
    assert!(
        receiver.connections.load(Ordering::Acquire) < accepted.len(),
        "the connection is kept alive between requests"
    );
}

/// A 413 halves the requests until the server takes them; a client error (here 400 for the
/// request holding `msg 500`) refuses that request's messages for good, counted, and the rest
/// goes on: nothing waits forever on an answer that cannot change.
#[test]
fn a_413_halves_the_requests_and_a_client_error_is_refused_for_good() {
    const COUNT: i64 = 1000;
    let receiver = Receiver::start(0, None, |_, request| {
        let lines = request.lines();
        if lines.len() > 60 {
            Answer::Status(413, "too large".into(), false)
        } else if lines.iter().any(|line| *line == b"msg 500") {
            Answer::Status(400, "bad document".into(), false)
        } else {
            Answer::Status(204, String::new(), false)
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let address = format!("http://127.0.0.1:{}/", receiver.port);
    let extra = "flush_count = 250\nflush_interval = 20\nmax_messages_per_request = 250\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    wait_for_or_explain(
        Duration::from_secs(30),
        "every message sent or refused",
        || line_counts(&receiver.accepted()).len() >= COUNT as usize - 31,
        || daemon.stderr(),
    );
    std::thread::sleep(Duration::from_millis(300));
    daemon.stop();
    let accepted = receiver.accepted();
    let counts = line_counts(&accepted);
    assert!(accepted.iter().all(|request| request.lines().len() <= 60));
    assert!(
        counts.values().all(|&count| count == 1),
        "each message once"
    );
    assert!(!counts.contains_key(&500), "the refused request's messages");
    let rejected = daemon.counter("Http.rejected_total");
    assert!(
        (1..=31).contains(&rejected),
        "one request of at most 31 refused: {rejected}"
    );
    assert_eq!(counts.len() as u64 + rejected, COUNT as u64);
    assert_eq!(daemon.counter("Http.sent_total"), counts.len() as u64);
    assert_eq!(daemon.counter("Http.dropped_total"), 0);
    assert!(daemon.stderr().contains("413"), "{}", daemon.stderr());
}

#[test]
fn influx_lines_go_to_the_write_endpoint_gzip_compressed() {
    const COUNT: i64 = 500;
    let receiver = Receiver::start(0, None, |_, _| Answer::Status(204, String::new(), false));
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let address = format!(
        "http://localhost:{}/write?db=metrics&precision=s",
        receiver.port
    );
    let extra = "encoder = \"Influx\"\ngzip = true\nflush_interval = 20\nflush_count = 100\n\
                 http_disable_keepalives = true\n\
                 [Influx]\ntype = \"SchemaInfluxLineEncoder\"\ntag_fields = \"Type Logger\"\n\
                 timestamp_precision = \"s\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    wait_for(Duration::from_secs(30), "every point", || {
        receiver
            .accepted()
            .iter()
            .map(|request| request.lines().len())
            .sum::<usize>()
            >= COUNT as usize
    });
    daemon.stop();
    let mut values = Vec::new();
    for request in receiver.accepted() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/write?db=metrics&precision=s");
        assert_eq!(request.header("content-encoding"), Some("gzip"));
        assert_eq!(request.header("connection"), Some("close"));
        assert!(request.wire_bytes < request.body.len(), "compressed");
        for line in request.lines() {
            let line = std::str::from_utf8(line).expect("UTF-8");
            // seq,Type=test,Logger=tests value=<n>.000000 1700000000
            let rest = line
                .strip_prefix("seq,Type=test,Logger=tests value=")
                .unwrap_or_else(|| panic!("line `{line}`"));
            let (value, time) = rest.split_once(' ').expect("a timestamp");
            assert_eq!(time, "1700000000");
            values.push(value.parse::<f64>().expect("a number") as i64);
        }
    }
    values.sort_unstable();
    assert_eq!(values, (0..COUNT).collect::<Vec<_>>());
    assert!(
        receiver.connections.load(Ordering::Acquire) >= receiver.accepted().len(),
        "http_disable_keepalives: a connection per request"
    );
}

#[test]
fn memory_delivery_waits_for_a_server_that_is_down_and_loses_nothing() {
    const COUNT: i64 = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server_port = free_port();
    let address = format!("http://127.0.0.1:{server_port}/");
    let extra = "delivery = \"memory\"\nflush_count = 100\nflush_interval = 20\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    std::thread::sleep(Duration::from_millis(1500));
    let receiver = Receiver::start(server_port, None, |_, _| {
        Answer::Status(200, "ok".into(), false)
    });
    wait_lines(&receiver, COUNT as usize, &daemon);
    daemon.stop();
    let counts = line_counts(&receiver.accepted());
    assert_eq!(counts.len(), COUNT as usize);
    assert!(counts.values().all(|&count| count == 1));
    assert_eq!(daemon.counter("Http.dropped_total"), 0);
    assert_eq!(daemon.counter("Http.sent_total"), COUNT as u64);
    assert!(
        daemon.counter("Http.errors_total") > 0,
        "the refused connections"
    );
}

#[test]
fn best_effort_delivery_drops_and_counts_while_the_server_refuses() {
    const COUNT: i64 = 2000;
    let refusing = Arc::new(AtomicUsize::new(1));
    let flag = refusing.clone();
    let receiver = Receiver::start(0, None, move |_, _| {
        if flag.load(Ordering::Acquire) == 1 {
            Answer::Status(503, "busy".into(), false)
        } else {
            Answer::Status(200, String::new(), false)
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let address = format!("http://127.0.0.1:{}/", receiver.port);
    let extra = "delivery = \"best_effort\"\nflush_count = 100\nflush_interval = 20\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    // Nothing waits: every message is dropped and counted while the server says 503.
    wait_for(Duration::from_secs(30), "the drops to be counted", || {
        receiver.requests.load(Ordering::Acquire) > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    refusing.store(0, Ordering::Release);
    send_tcp(port, &numbered_frames("msg", COUNT..COUNT + 100));
    wait_lines(&receiver, 100, &daemon);
    daemon.stop();
    let counts = line_counts(&receiver.accepted());
    assert!(
        (COUNT..COUNT + 100).all(|n| counts.get(&n) == Some(&1)),
        "the messages sent once the server took them again"
    );
    let dropped = daemon.counter("Http.dropped_total");
    let sent = daemon.counter("Http.sent_total");
    assert_eq!(sent, counts.values().sum::<usize>() as u64);
    assert_eq!(
        dropped + sent,
        COUNT as u64 + 100,
        "every message sent or dropped"
    );
    assert!(dropped > 0);
    assert_eq!(
        daemon.counter("Http.retries_total"),
        0,
        "best effort does not retry"
    );
}

#[test]
fn durable_delivery_keeps_messages_on_disk_across_a_kill_until_the_server_returns() {
    const COUNT: i64 = 3000;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server_port = free_port();
    let address = format!("http://127.0.0.1:{server_port}/bulk");
    let extra = "use_buffering = true\nflush_count = 100\nflush_interval = 20\n\
                 max_messages_per_request = 70\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, &address, extra), &[port]);
    send_tcp(port, &numbered_frames("msg", 0..COUNT));
    std::thread::sleep(Duration::from_millis(1000));
    daemon.kill();
    // Back with the server up: everything queued before the kill is delivered, in order.
    let receiver = Receiver::start(server_port, None, |number, _| {
        if number % 4 == 1 {
            Answer::Status(502, String::new(), false)
        } else {
            Answer::Status(201, String::new(), false)
        }
    });
    daemon.restart(&[port]);
    wait_lines(&receiver, COUNT as usize, &daemon);
    daemon.stop();
    let accepted = receiver.accepted();
    let counts = line_counts(&accepted);
    assert_eq!(counts.len(), COUNT as usize, "nothing lost");
    assert!(accepted.iter().all(|request| request.lines().len() <= 70));
    let order: Vec<i64> = accepted
        .iter()
        .flat_map(|request| request.lines())
        .map(|line| {
            std::str::from_utf8(&line[4..])
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1)
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "delivered in order");
    assert!(daemon.counter("Http.retries_total") > 0);
}

#[test]
fn http_output_config_errors_name_the_key() {
    for (extra, key) in [
        ("address = \"localhost:9200\"\n", "address"),
        ("address = \"http://h:99999/\"\n", "address"),
        ("address = \"http://h/\"\nmethod = \"DELETE\"\n", "method"),
        (
            "address = \"http://h/\"\nhttp_timeout = -5\n",
            "http_timeout",
        ),
        (
            "address = \"http://h/\"\nhttp_timeout = 0\n",
            "http_timeout",
        ),
        (
            "address = \"http://h/\"\nencoder = \"NoSuchEncoder\"\n",
            "encoder",
        ),
        ("address = \"http://h/\"\npassword = \"x\"\n", "password"),
        (
            "address = \"http://h/\"\nuse_framing = true\n",
            "use_framing",
        ),
        (
            "address = \"http://h/\"\n[Http.headers]\nContent-Length = \"5\"\n",
            "headers.Content-Length",
        ),
        (
            "address = \"http://h/\"\n[Http.tls]\nroot_cafile = \"x\"\n",
            "tls",
        ),
        (
            "address = \"https://h/\"\n[Http.tls]\nroot_cafile = \"/no/such/ca.pem\"\n",
            "tls.root_cafile",
        ),
    ] {
        let file = temp_file(
            format!("[Http]\ntype = \"HttpOutput\"\nmessage_matcher = \"TRUE\"\n{extra}")
                .as_bytes(),
        );
        let path = file.path().display().to_string();
        let run = run_gyges(&["validate", "-c", &path]);
        assert_ne!(run.code, Some(0), "{extra} is refused");
        assert!(
            run.stderr.contains("section [Http]")
                && run.stderr.contains(&format!("key `{key}`"))
                && run.stderr.contains(&path),
            "{extra}: the error names file, section and key `{key}`: {}",
            run.stderr
        );
    }
}

#[test]
fn an_unreachable_server_at_startup_is_a_warning_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let address = "http://no-such-host.invalid:9200/";
    let mut daemon = Daemon::start(
        dir.path(),
        &config(port, address, "flush_interval = 20\n"),
        &[port],
    );
    send_tcp(port, &numbered_frames("msg", 0..10));
    wait_for(Duration::from_secs(10), "a logged failure", || {
        daemon.stderr().contains("request failed")
    });
    let status = daemon.stop();
    assert!(status.success(), "a clean stop: {}", daemon.stderr());
    assert_eq!(
        daemon.counter("Http.dropped_total"),
        10,
        "dropped at the drain deadline"
    );
}
