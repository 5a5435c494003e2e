//! A Heka config directory, as a Heka user has one (`tests/fixtures/heka/`: the global section,
//! then inputs, decoders, filters and outputs in files of their own, with Heka's plugin types
//! and option names and Heka's documented defaults relied on), given to gyges unchanged but for
//! the paths of this machine: `gyges validate` accepts it and lists what gyges takes
//! differently, one line per key, and `gyges run` runs it, taking Heka frames, lines, statsd,
//! HTTP posts and files, while the outputs whose remote ends do not exist (Kafka, RabbitMQ,
//! Elasticsearch, an upstream aggregator) only warn and retry.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::*;

/// The fixture files, with `@TMP@` and `@TESTS@` made this machine's, and `edits` (pairs of
/// text and replacement) applied; written to `<dir>/heka`, which is returned.
fn heka_dir(dir: &Path, edits: &[(String, String)]) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heka");
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let config = dir.join("heka");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::create_dir_all(dir.join("logs")).expect("log dir");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("the fixtures")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for path in names {
        let mut text = std::fs::read_to_string(&path)
            .expect("a fixture")
            .replace("@TMP@", &dir.display().to_string())
            .replace("@TESTS@", &tests.display().to_string());
        for (from, to) in edits {
            text = text.replace(from.as_str(), to);
        }
        std::fs::write(config.join(path.file_name().expect("a name")), text).expect("write");
    }
    config
}

#[test]
fn a_heka_config_directory_validates_and_names_each_difference_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = heka_dir(dir.path(), &[]);
    let run = run_gyges(&["validate", "-c", config.to_str().expect("UTF-8")]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    for section in [
        "[TcpInput] TcpInput",
        "[tcp:5566] TcpInput",
        "[StatsdInput] UdpInput",
        "[apache_log] LogstreamerInput",
        "[http_listen] HttpListenInput",
        "[poll_uptime] FilePollingInput",
        "[from_kafka] KafkaInput",
        "[from_rabbit] AMQPInput",
        "[upstream] TcpOutput",
        "[ElasticSearchOutput] ElasticSearchOutput",
        "[to_kafka] KafkaOutput",
        "[to_rabbit] AMQPOutput",
        "[alert_mail] SmtpOutput",
        "[DashboardOutput] DashboardOutput",
    ] {
        assert!(run.stdout.contains(section), "{section}:\n{}", run.stdout);
    }
    // Go's `:5565` is every interface; the dashboard serves where Heka's did.
    assert!(run.stdout.contains("tcp [::]:5565") || run.stdout.contains("tcp 0.0.0.0:5565"));
    assert!(
        run.stdout.contains("http endpoint 127.0.0.1:4352"),
        "{}",
        run.stdout
    );
    let differences: Vec<&str> = run
        .stdout
        .split("differences from Heka:\n")
        .nth(1)
        .expect("a differences part")
        .lines()
        .collect();
    assert_eq!(
        differences[0],
        "  accepted and ignored (gyges has no pools or channels): maxprocs, poolsize, \
         plugin_chansize, max_pack_idle"
    );
    let keys: Vec<String> = differences[1..]
        .iter()
        .map(|line| {
            let (place, _) = line.split_once(": accepted from Heka;").expect("a notice");
            let section = place.split("section ").nth(1).expect("a section");
            section.replace(", key ", " ")
        })
        .collect();
    assert_eq!(
        keys,
        [
            "[status_counts] `can_exit`",
            "[status_counts] `profile`",
            "[DashboardOutput] `ticker_interval`",
            "[DashboardOutput] `address`",
        ]
    );
}

#[test]
fn a_heka_config_directory_runs_and_every_input_reaches_the_archive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let (heka, lines, statsd, http, dashboard) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let edits = [
        (":5565\"", format!("127.0.0.1:{heka}\"")),
        ("127.0.0.1:5566", format!("127.0.0.1:{lines}")),
        ("\":8125\"", format!("\"127.0.0.1:{statsd}\"")),
        ("127.0.0.1:8325", format!("127.0.0.1:{http}")),
        ("127.0.0.1:4352", format!("127.0.0.1:{dashboard}")),
    ]
    .map(|(from, to)| (from.to_string(), to));
    let config = heka_dir(dir.path(), &edits);
    std::fs::write(
        dir.path().join("logs/access.log"),
        "10.0.0.1 - - [01/Jan/2024:00:00:01 +0000] \"GET /a HTTP/1.1\" 200 1\n",
    )
    .expect("an access log");
    let mut daemon = Daemon::start_config(dir.path(), config, &[heka, lines, http, dashboard]);
    let frames: Vec<u8> = (0..10)
        .flat_map(|n| frame(&numbered_message(n, "framed")))
        .collect();
    send_tcp(heka, &frames);
    send_tcp(lines, b"first line\nsecond line\n");
    UdpSocket::bind("127.0.0.1:0")
        .expect("a socket")
        .send_to(b"gyges.hits:3|c", ("127.0.0.1", statsd))
        .expect("a statsd datagram");
    let mut post = TcpStream::connect(("127.0.0.1", http)).expect("the HTTP listener");
    // ops:s3cret in base64.
    post.write_all(
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Basic b3BzOnMzY3JldA==\r\n\
          Content-Length: 11\r\nConnection: close\r\n\r\nposted body",
    )
    .expect("a POST");
    let archive = |dir: &Path| -> Vec<serde_json::Value> {
        let root = dir.join("archive");
        let Some(path) = find_file(&root, "messages.log") else {
            return Vec::new();
        };
        messages(&path)
    };
    let want = |messages: &[serde_json::Value]| -> Vec<&'static str> {
        let payloads: Vec<String> = messages
            .iter()
            .filter_map(|message| message["payload"].as_str().map(str::to_string))
            .collect();
        let types: Vec<&str> = messages
            .iter()
            .filter_map(|message| message["type"].as_str())
            .collect();
        let mut missing = Vec::new();
        if payloads
            .iter()
            .filter(|payload| *payload == "framed")
            .count()
            < 10
        {
            missing.push("10 Heka frames");
        }
        if !payloads
            .iter()
            .any(|payload| payload.starts_with("second line"))
        {
            missing.push("the lines");
        }
        if !payloads.iter().any(|payload| payload == "posted body") {
            missing.push("the HTTP post");
        }
        if !types.contains(&"heka.statmetric") {
            missing.push("a statmetric");
        }
        if !types.contains(&"apache.access") {
            missing.push("the access log line");
        }
        if !types.contains(&"uptime") {
            missing.push("the polled /proc/uptime");
        }
        missing
    };
    wait_for_or_explain(
        Duration::from_secs(30),
        "every input in the archive",
        || want(&archive(dir.path())).is_empty(),
        || {
            format!(
                "missing {:?}\n{}",
                want(&archive(dir.path())),
                daemon.stderr()
            )
        },
    );
    let health = health(dashboard);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let stderr = daemon.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("section [status_counts], key `profile`: accepted from Heka"),
        "{stderr}"
    );
}

/// The first file called `name` under `root`.
fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|file| file == name) {
            return Some(path);
        }
    }
    None
}

/// The raw answer to `GET /health`.
fn health(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the endpoint");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("a request");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    answer
}
