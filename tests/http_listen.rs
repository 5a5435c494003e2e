//! HttpListenInput through the daemon, with real clients: curl (lines with a TokenSplitter,
//! `Expect: 100-continue`, request headers and query parameters as fields, 413, 405, GET),
//! Python's `http.client` (keep-alive on one connection, Basic and API credentials), raw
//! sockets (pipelining, malformed requests), a durable route killed with -9 right after each
//! 200, and a full durable queue answered with 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn available(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

fn payloads(path: &Path) -> Vec<String> {
    messages(path)
        .iter()
        .filter_map(|message| message["payload"].as_str())
        .map(|payload| payload.trim_end_matches('\n').to_string())
        .collect()
}

fn with_payload<'a>(messages: &'a [Value], text: &str) -> Option<&'a Value> {
    messages.iter().find(|message| message["payload"] == text)
}

fn file_output(path: &Path) -> String {
    format!(
        "[FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\nuse_framing = true\n\
         flush_interval = 20\n",
        path.display()
    )
}

/// One answer read off a connection.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

/// Reads one answer (status line, headers, `Content-Length` body). `None`: the connection
/// closed first.
fn read_response(reader: &mut BufReader<TcpStream>) -> Option<Response> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
        headers.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Response {
        status,
        headers,
        body,
    })
}

fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let reader = BufReader::new(stream.try_clone().expect("clone"));
    (stream, reader)
}

fn post(body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the peer closed: reads until end of stream (or an error such as a reset).
fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// curl with `args`; returns the status code and the response headers.
fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-S",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = stdout.rsplit('\n').next().unwrap_or("").trim().parse();
    (code.unwrap_or(0), stdout)
}

#[test]
fn curl_lines_arrive_with_request_headers_as_fields() {
    if !available("curl") {
        eprintln!("skipped: curl is not installed (scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (lines_port, whole_port) = (free_port(), free_port());
    let output = dir.path().join("http.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\nmax_message_size = 4096\n\
         [lines]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{lines_port}\"\n\
         splitter = \"TokenSplitter\"\nrequest_headers = [\"X-Tenant\"]\n\
         [lines.headers]\nX-Served-By = [\"gyges\"]\n\
         [whole]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{whole_port}\"\n{}",
        file_output(&output)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[lines_port, whole_port]);
    // 500 lines, over 1 KiB: curl asks `Expect: 100-continue` first. The last has no newline.
    let lines: Vec<String> = (0..500).map(|index| format!("line {index}")).collect();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, lines.join("\n")).expect("write the body");
    let data = format!("@{}", body.display());
    let url = format!("http://127.0.0.1:{lines_port}/ingest?source=curl&note=a%20b");
    let (code, headers) = curl(&["-H", "X-Tenant: acme", "--data-binary", &data, &url]);
    assert_eq!(code, 200, "{headers}");
    assert!(headers.contains("X-Served-By: gyges"), "{headers}");

    let whole = format!("http://127.0.0.1:{whole_port}/");
    let (code, _) = curl(&["--data-binary", "whole body\nsecond line", &whole]);
    assert_eq!(code, 200);
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(5000)).expect("write the big body");
    let big = format!("@{}", big.display());
    let (code, headers) = curl(&["--data-binary", &big, &whole]);
    assert_eq!(code, 413, "over max_message_size: {headers}");
    assert_eq!(curl(&["-X", "DELETE", &whole]).0, 405);
    assert_eq!(curl(&[&whole]).0, 200, "GET answers, reads nothing");

    wait_for(Duration::from_secs(20), "501 messages", || {
        messages(&output).len() >= 501
    });
    let all = messages(&output);
    assert_eq!(all.len(), 501, "{all:?}");
    let received: Vec<&str> = all
        .iter()
        .filter(|message| message["logger"] == "lines")
        .filter_map(|message| message["payload"].as_str())
        .map(|payload| payload.trim_end_matches('\n'))
        .collect();
    assert_eq!(received, lines, "every line, in order, as its own message");
    let first = with_payload(&all, "line 0\n").expect("the first line");
    assert_eq!(first["type"], "heka.httpdata.request");
    assert_eq!(field(first, "X-Tenant"), Some(&Value::from("acme")));
    assert_eq!(field(first, "Path"), Some(&Value::from("/ingest")));
    assert_eq!(field(first, "source"), Some(&Value::from("curl")));
    assert_eq!(field(first, "note"), Some(&Value::from("a b")));
    assert_eq!(field(first, "RemoteAddr"), Some(&Value::from("127.0.0.1")));
    let hostname = first["hostname"].as_str().unwrap_or("");
    assert!(hostname.starts_with("127.0.0.1:"), "the peer: {hostname}");
    let body = with_payload(&all, "whole body\nsecond line").expect("the whole body");
    assert_eq!(body["logger"], "whole");
    assert!(
        field(body, "X-Tenant").is_none(),
        "not asked for on this input"
    );
    daemon.stop();
    assert_eq!(daemon.counter("whole.oversize_records_total"), 1);
    assert_eq!(daemon.counter("lines.records_total"), 500);
}

/// Python's http.client: five requests on one kept-alive connection, then Basic and API
/// credentials right and wrong.
const CLIENT_SCRIPT: &str = r#"
import base64, http.client, json, sys
open_port, basic_port, api_port = map(int, sys.argv[1:4])
out = {}
connection = http.client.HTTPConnection("127.0.0.1", open_port, timeout=60)
statuses, local_ports = [], set()
for index in range(5):
    connection.request("POST", "/keep", body="keep %d\n" % index)
    response = connection.getresponse()
    response.read()
    statuses.append(response.status)
    local_ports.add(connection.sock.getsockname()[1])
connection.close()
out["keep_alive"] = statuses
out["connections"] = len(local_ports)

def post(port, headers, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return [response.status, response.getheader("WWW-Authenticate")]

def basic(credentials):
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

out["basic_good"] = post(basic_port, basic(b"alice:s3cret"), "basic good")
out["basic_bad"] = post(basic_port, basic(b"alice:wrong"), "basic bad")
out["basic_none"] = post(basic_port, {}, "basic none")
out["api_good"] = post(api_port, {"X-API-Key": "k-123"}, "api good")
out["api_bad"] = post(api_port, {"X-API-Key": "k-124"}, "api bad")
print(json.dumps(out))
"#;

#[test]
fn python_keeps_one_connection_and_credentials_are_checked() {
    if !available("python3") {
        eprintln!("skipped: python3 is not installed (scripts/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (open, basic, api) = (free_port(), free_port(), free_port());
    let output = dir.path().join("http.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [open]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{open}\"\n\
         splitter = \"TokenSplitter\"\n\
         [basic]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{basic}\"\n\
         auth_type = \"Basic\"\nusername = \"alice\"\npassword = \"s3cret\"\n\
         [api]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{api}\"\n\
         auth_type = \"API\"\napi_key = \"k-123\"\n{}",
        file_output(&output)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[open, basic, api]);
    let run = Command::new("python3")
        .args(["-c", CLIENT_SCRIPT])
        .args([open.to_string(), basic.to_string(), api.to_string()])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("the script's JSON");
    assert_eq!(
        result["keep_alive"],
        serde_json::json!([200, 200, 200, 200, 200])
    );
    assert_eq!(result["connections"], 1, "one kept-alive connection");
    assert_eq!(result["basic_good"][0], 200);
    assert_eq!(result["basic_bad"][0], 401);
    assert_eq!(result["basic_bad"][1], "Basic realm=\"gyges\"");
    assert_eq!(result["basic_none"][0], 401);
    assert_eq!(result["api_good"][0], 200);
    assert_eq!(result["api_bad"][0], 401);
    let expected = [
        "keep 0",
        "keep 1",
        "keep 2",
        "keep 3",
        "keep 4",
        "basic good",
        "api good",
    ];
    wait_for(Duration::from_secs(20), "seven messages", || {
        payloads(&output).len() >= expected.len()
    });
    let mut received = payloads(&output);
    received.sort();
    let mut expected: Vec<String> = expected.iter().map(|text| text.to_string()).collect();
    expected.sort();
    assert_eq!(received, expected, "nothing refused got in");
    daemon.stop();
    assert_eq!(daemon.counter("basic.auth_failures_total"), 2);
    assert_eq!(daemon.counter("api.auth_failures_total"), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_a_malformed_one_gets_400() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("http.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [http]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{port}\"\n\
         splitter = \"TokenSplitter\"\n{}",
        file_output(&output)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    // Three requests in one write: Content-Length, chunked, then a GET.
    let (mut stream, mut reader) = connect(port);
    let pipelined = format!(
        "{}POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
         7\r\nsecond\n\r\n6;x=y\r\nthird\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        post("first\n")
    );
    stream.write_all(pipelined.as_bytes()).expect("write");
    for _ in 0..3 {
        let response = read_response(&mut reader).expect("an answer");
        assert_eq!(response.status, 200, "{response:?}");
    }
    // Then garbage on the same connection: 400, and the connection closes.
    stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").expect("write");
    let response = read_response(&mut reader).expect("an answer");
    assert_eq!(response.status, 400);
    assert_eq!(response.body, b"malformed request\n");
    assert!(
        response.headers.contains("Connection: close"),
        "{response:?}"
    );
    assert!(closed(&mut reader), "the connection is closed");
    // Bad chunked framing: 400 too.
    let (mut stream, mut reader) = connect(port);
    let bad_chunk = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX";
    stream.write_all(bad_chunk.as_bytes()).expect("write");
    assert_eq!(read_response(&mut reader).expect("an answer").status, 400);
    // The daemon goes on.
    let (mut stream, mut reader) = connect(port);
    stream.write_all(post("after\n").as_bytes()).expect("write");
    assert_eq!(read_response(&mut reader).expect("an answer").status, 200);
    wait_for(Duration::from_secs(20), "four lines", || {
        payloads(&output).len() >= 4
    });
    // One connection's records keep their order; the last connection may be served by the
    // other core, whose records reach the file in their own time.
    let lines = payloads(&output);
    let first_connection: Vec<&String> = lines.iter().filter(|line| *line != "after").collect();
    assert_eq!(first_connection, ["first", "second", "third"], "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    daemon.stop();
    assert_eq!(daemon.counter("http.bad_requests_total"), 2);
}

#[test]
fn a_durable_route_answers_200_only_once_appended() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let output = dir.path().join("http.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [http]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{port}\"\n\
         splitter = \"TokenSplitter\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{}\"\nuse_framing = true\n\
         flush_interval = 1000\nuse_buffering = true\n",
        output.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let rounds = 6;
    for round in 0..rounds {
        let body: String = (0..50)
            .map(|line| format!("round {round} line {line}\n"))
            .collect();
        // Right after a kill the dead daemon's listener can linger in the SO_REUSEPORT group
        // while the kernel tears its io_uring down, and take a connection it never answers:
        // a client sends again until it has its 200, as any HTTP client would.
        wait_for_or_explain(
            Duration::from_secs(30),
            "a 200",
            || {
                // The port may also be refused for a moment: the restart's own check can have
                // been answered by that lingering listener.
                let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    return false;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                let Ok(reader) = stream.try_clone() else {
                    return false;
                };
                let (mut stream, mut reader) = (stream, BufReader::new(reader));
                let sent = stream.write_all(post(&body).as_bytes()).is_ok();
                sent && read_response(&mut reader).is_some_and(|response| response.status == 200)
            },
            || daemon.stderr(),
        );
        // Acknowledged: killed at once, nothing of it may be lost.
        daemon.kill();
        daemon.restart(&[port]);
    }
    let expected: Vec<String> = (0..rounds)
        .flat_map(|round| (0..50).map(move |line| format!("round {round} line {line}")))
        .collect();
    wait_for_or_explain(
        Duration::from_secs(60),
        "every acknowledged line",
        || {
            let received = payloads(&output);
            expected.iter().all(|line| received.contains(line))
        },
        || daemon.stderr(),
    );
    daemon.stop();
}

/// A durable TcpOutput whose receiver is down and whose queue is tiny: once the queue is full
/// (`full_action = "block"`), requests get 503 and nothing they carried is routed; once the
/// receiver is up, 200 again.
#[test]
fn a_full_durable_queue_gets_503_then_200_once_it_drains() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (port, receiver_port) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\ncores = [0]\ncheckpoint_interval = 100\nbatch_size = 4096\n\
         max_message_size = 2048\nmin_disk_free = 0\n\
         [http]\ntype = \"HttpListenInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         delivery = \"durable\"\n\
         [TcpOutput.buffering]\nmax_file_size = 16384\nmax_buffer_size = 65536\n\
         full_action = \"block\"\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let body = "y".repeat(1500);
    // A client posting on one connection until a request hangs on the full queue.
    let filler = {
        let body = body.clone();
        std::thread::spawn(move || {
            let (mut stream, mut reader) = connect(port);
            let mut accepted = 0;
            loop {
                if stream.write_all(post(&body).as_bytes()).is_err() {
                    return accepted;
                }
                match read_response(&mut reader) {
                    Some(response) if response.status == 200 => accepted += 1,
                    _ => return accepted,
                }
            }
        })
    };
    // Probes on new connections until one is refused: each probe that is not refused is
    // either accepted or stuck behind the full queue itself.
    let mut refused = None;
    wait_for_or_explain(
        Duration::from_secs(60),
        "a 503",
        || {
            let (mut stream, mut reader) = connect(port);
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            stream.write_all(post(&body).as_bytes()).expect("write");
            match read_response(&mut reader) {
                Some(response) if response.status == 503 => {
                    refused = Some(response);
                    true
                }
                _ => false,
            }
        },
        || daemon.stderr(),
    );
    let refused = refused.expect("a 503");
    assert!(refused.headers.contains("Retry-After: 1"), "{refused:?}");
    // The receiver comes up: the queue drains, the stuck request is answered, and new ones
    // get 200.
    let listener = TcpListener::bind(("127.0.0.1", receiver_port)).expect("bind the receiver");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut sink = [0u8; 65536];
                while matches!(stream.read(&mut sink), Ok(count) if count > 0) {}
            });
        }
    });
    wait_for_or_explain(
        Duration::from_secs(60),
        "a 200 after the drain",
        || {
            let (mut stream, mut reader) = connect(port);
            stream.write_all(post(&body).as_bytes()).expect("write");
            read_response(&mut reader).is_some_and(|response| response.status == 200)
        },
        || daemon.stderr(),
    );
    daemon.stop();
    let accepted = filler.join().expect("the filler");
    assert!(accepted > 0, "the queue took requests before it filled");
    assert!(daemon.counter("http.refused_requests_total") >= 1);
}
