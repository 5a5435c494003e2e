//! `gyges cat`, `gyges inject` and `gyges flood`, run as the user runs them.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gyges::message::framing::write_frame;
use gyges::message::json::read_json;
use gyges::message::{ProtoView, StrHeader};
use gyges::tools::flood::{parse_seq, SequenceCheck};
use prost::Message as _;

use crate::util::{collect_listener, gyges, split_frames};

fn framed_file(payloads: &[&str], garbage: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for payload in payloads {
        let json = format!(r#"{{"payload":"{payload}","type":"test"}}"#);
        let message = read_json(&json)
            .expect("valid JSON message")
            .encode_to_vec();
        write_frame(&mut bytes, &message, None).expect("frame");
        bytes.extend_from_slice(garbage);
    }
    bytes
}

#[test]
fn inject_sends_signed_frames_that_verify() {
    let directory = tempfile::tempdir().expect("temp dir");
    let input = directory.path().join("messages.json");
    let lines = [
        r#"{"payload":"first","type":"t1","severity":3}"#,
        "",
        r#"{"payload":"second","fields":[{"name":"n","value":[1,2]}]}"#,
    ];
    std::fs::write(&input, lines.join("\n")).expect("write input");
    let (address, collected) = collect_listener(1);
    let output = gyges()
        .args(["inject", "--addr", &address.to_string()])
        .arg(&input)
        .args([
            "--signer",
            "ops",
            "--signer-version",
            "2",
            "--hmac-key",
            "secret",
        ])
        .args(["--hmac-hash", "sha1"])
        .output()
        .expect("run gyges inject");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("sent 2 messages"));
    let stream = collected.join().expect("listener").concat();
    let records = split_frames(&stream, &[("ops_2", b"secret")]);
    assert_eq!(records.len(), 2);
    for ((message, signer), expected) in records.iter().zip(["first", "second"]) {
        assert_eq!(signer.as_deref(), Some("ops"));
        let view = ProtoView::new(message);
        assert_eq!(view.validate(), Ok(()));
        assert_eq!(
            view.str_header(StrHeader::Payload),
            Some(expected.as_bytes())
        );
    }
}

#[test]
fn inject_reads_stdin_and_names_a_bad_line() {
    let (address, collected) = collect_listener(1);
    let mut child = gyges()
        .args(["inject", "--addr", &address.to_string(), "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gyges inject");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(b"{\"payload\":\"ok\"}\n{\"pid\":\"not a number\"}\n")
        .expect("write stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("wait for gyges inject");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("pid"),
        "{stderr}"
    );
    // The good line before the bad one was sent.
    let stream = collected.join().expect("listener").concat();
    assert_eq!(split_frames(&stream, &[]).len(), 1);
}

#[test]
fn flood_lines_arrive_exactly_once_over_several_connections() {
    let (address, collected) = collect_listener(3);
    let output = gyges()
        .args(["flood", "--addr", &address.to_string(), "--format", "lines"])
        .args([
            "--count",
            "100000",
            "--connections",
            "3",
            "--size",
            "120",
            "--first-seq",
            "7",
        ])
        .args(["--cpu", "0"])
        .output()
        .expect("run gyges flood");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("100000 messages, 12000000 bytes"),
        "{summary}"
    );
    let mut check = SequenceCheck::new(7, 100_000);
    for connection in collected.join().expect("listener") {
        let mut previous = None;
        for line in connection.split_inclusive(|&byte| byte == b'\n') {
            assert_eq!(line.len(), 120);
            let seq = parse_seq(line).expect("a numbered line");
            // Each connection sends its numbers in order, three apart.
            if let Some(previous) = previous {
                assert_eq!(seq, previous + 3);
            }
            previous = Some(seq);
            check.record(seq);
        }
    }
    assert!(check.is_exactly_once(), "{check:?}");
}

#[test]
fn flood_heka_records_are_valid_and_arrive_exactly_once() {
    let (address, collected) = collect_listener(2);
    let output = gyges()
        .args(["flood", "--addr", &address.to_string(), "--format", "heka"])
        .args(["--count", "20000", "--connections", "2"])
        .output()
        .expect("run gyges flood");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut check = SequenceCheck::new(0, 20_000);
    let mut uuids = std::collections::HashSet::new();
    for connection in collected.join().expect("listener") {
        for (message, _) in split_frames(&connection, &[]) {
            let view = ProtoView::new(&message);
            assert_eq!(view.validate(), Ok(()));
            let payload = view.str_header(StrHeader::Payload).expect("a payload");
            check.record_text(payload);
            assert!(
                uuids.insert(view.uuid().expect("a uuid").to_vec()),
                "uuids are unique"
            );
            assert!(message.len() + 5 <= 300);
        }
    }
    assert!(check.is_exactly_once(), "{check:?}");
}

#[test]
fn flood_keeps_to_its_rate() {
    let (address, collected) = collect_listener(1);
    let started = Instant::now();
    let output = gyges()
        .args(["flood", "--addr", &address.to_string(), "--format", "lines"])
        .args(["--count", "600", "--rate", "2000"])
        .output()
        .expect("run gyges flood");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 600 messages at 2000/s: the last batch is due after 0.29 s.
    assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(
        collected.join().expect("listener").concat().len(),
        600 * 200
    );
}

#[test]
fn flood_fails_clearly_without_a_receiver() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = unused.local_addr().expect("address");
    drop(unused);
    let output = gyges()
        .args(["flood", "--addr", &address.to_string(), "--count", "10"])
        .output()
        .expect("run gyges flood");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("connecting to"));
}

#[test]
fn cat_prints_messages_and_counts_garbage() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("framed.log");
    let mut bytes = b"leading junk".to_vec();
    bytes.extend(framed_file(&["one", "two", "three"], b"\x1e\x00junk"));
    bytes.truncate(bytes.len() - 6);
    std::fs::write(&path, &bytes).expect("write the file");
    let output = gyges()
        .arg("cat")
        .arg(&path)
        .output()
        .expect("run gyges cat");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let payloads: Vec<String> = stdout
        .lines()
        .map(|line| {
            read_json(line)
                .expect("each line is a JSON message")
                .payload
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(payloads, ["one", "two", "three"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 12 leading bytes and two 6-byte runs between the frames.
    assert!(stderr.contains("skipped 24 corrupt bytes"), "{stderr}");
}

#[test]
fn cat_tail_follows_a_growing_file_through_a_partial_frame() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("growing.log");
    let bytes = framed_file(&["first", "second", "third"], b"");
    let first_frame = bytes.len() / 3;
    let cut = first_frame + 7;
    std::fs::write(&path, &bytes[..cut]).expect("write the start");
    let child = gyges()
        .arg("cat")
        .arg(&path)
        .args(["--tail", "--max-messages", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gyges cat");
    std::thread::sleep(Duration::from_millis(300));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open to append");
    file.write_all(&bytes[cut..]).expect("append the rest");
    drop(file);
    let output = wait_with_timeout(child, Duration::from_secs(10));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout
        .lines()
        .nth(1)
        .is_some_and(|line| line.contains(r#""payload":"second""#)));
}

#[test]
fn cat_names_a_missing_file() {
    let output = gyges()
        .args(["cat", "/nonexistent/gyges-file"])
        .output()
        .expect("run gyges cat");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/gyges-file"));
}

fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("the child did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("collect the child's output")
}
