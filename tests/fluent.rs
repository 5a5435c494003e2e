//! FluentForwardInput through the daemon: the `fluent-logger` Python package sends events; the
//! recorded fixture of each mode (`tests/fixtures/fluent/`) arrives byte-exact and its chunk
//! is acknowledged; the `shared_key` handshake accepts the right key and refuses a wrong one;
//! a UDP heartbeat is answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use gyges::input::fluent::handshake::hex_digest;
use gyges::input::fluent::msgpack::{self, Reader, Value};
use serde_json::Value as Json;

use crate::util::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fluent");

/// A daemon with a FluentForwardInput on `port` writing every `fluent` message to a framed
/// file; `extra` is added to the input's section. The file's `flush_interval` is ten minutes
/// away: what arrives is written because the input's read came back short (`flush_on_idle`).
fn start(dir: &std::path::Path, port: u16, extra: &str) -> (Daemon, std::path::PathBuf) {
    let output = dir.join("fluent.log");
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [forward]\ntype = \"FluentForwardInput\"\naddress = \"127.0.0.1:{port}\"\n{extra}\n\
         [FileOutput]\nmessage_matcher = \"Type == 'fluent'\"\npath = \"{}\"\n\
         use_framing = true\nflush_interval = 600000\n",
        output.display()
    );
    (Daemon::start(dir, &config, &[port]), output)
}

fn python_with(module: &str) {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "python3 with `{module}` is needed: run scripts/setup.sh"
    );
}

/// Reads one msgpack object from `stream` (the answers are small).
fn read_object(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Ok(length) = msgpack::Scan::new().resume(&bytes) {
            assert_eq!(length, bytes.len());
            return bytes;
        }
        stream.read_exact(&mut byte).expect("an answer");
        bytes.push(byte[0]);
    }
}

fn ack_of(answer: &[u8]) -> Vec<u8> {
    let mut reader = Reader::new(answer);
    assert_eq!(reader.value(), Ok(Value::Map(1)));
    assert_eq!(reader.value(), Ok(Value::Str(b"ack")));
    match reader.value() {
        Ok(Value::Str(chunk)) => chunk.to_vec(),
        other => panic!("not an ack: {other:?}"),
    }
}

#[test]
fn fluent_logger_events_become_fluent_messages() {
    python_with("fluent.sender");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let (mut daemon, output) = start(dir.path(), port, "");
    let script = format!(
        "from fluent import sender\n\
         logger = sender.FluentSender('app', host='127.0.0.1', port={port}, nanosecond_precision=True)\n\
         for number in range(200):\n\
         \x20   assert logger.emit('web', {{'message': 'hello %d' % number, 'number': number, 'ok': True, 'ctx': {{'a': [1, 2]}}}}), logger.last_error\n\
         logger.close()\n"
    );
    let sent = Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(sent.success());
    wait_for(Duration::from_secs(20), "200 messages", || {
        messages(&output).len() >= 200
    });
    let status = daemon.stop();
    assert!(status.success());
    let messages = messages(&output);
    assert_eq!(messages.len(), 200);
    for (number, message) in messages.iter().enumerate() {
        assert_eq!(message["type"], "fluent");
        assert_eq!(message["logger"], "app.web");
        assert_eq!(message["hostname"], "127.0.0.1");
        assert_eq!(message["payload"], format!("hello {number}"));
        assert_eq!(field(message, "number"), Some(&Json::from(number)));
        assert_eq!(field(message, "ok"), Some(&Json::from(true)));
        assert_eq!(field(message, "ctx"), Some(&Json::from(r#"{"a":[1,2]}"#)));
    }
    assert_eq!(daemon.counter("forward.records_total"), 200);
    assert_eq!(daemon.counter("forward.decode_failures_total"), 0);
}

#[test]
fn each_mode_fixture_arrives_and_its_chunk_is_acknowledged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let (mut daemon, output) = start(dir.path(), port, "");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    for (name, chunk) in [
        ("message.bin", None),
        ("forward.bin", Some("Zm9yd2FyZC1jaHVuaw==")),
        ("packed.bin", Some("cGFja2VkLWNodW5r")),
        ("compressed.bin", Some("Y29tcHJlc3NlZC1jaHVuaw==")),
    ] {
        let frame = std::fs::read(format!("{FIXTURES}/{name}")).expect("a fixture");
        stream.write_all(&frame).expect("send");
        if let Some(chunk) = chunk {
            let answer = read_object(&mut stream);
            assert_eq!(ack_of(&answer), chunk.as_bytes(), "{name}");
            // Acknowledged: already handed to the output (its batch shipped).
        }
    }
    // A broken stream (0xc1 is no msgpack) is closed and counted; nothing else is lost.
    stream.write_all(&[0xc1, 0x00]).expect("send");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without an answer");
    wait_for(Duration::from_secs(20), "10 messages", || {
        messages(&output).len() >= 10
    });
    assert!(daemon.stop().success());
    let messages = messages(&output);
    assert_eq!(messages.len(), 10, "1 + 3 × 3 events");
    for message in &messages {
        assert_eq!(message["logger"], "app.web");
        assert_eq!(field(message, "host"), Some(&Json::from("web-1")));
        assert_eq!(
            field(message, "http"),
            Some(&Json::from(r#"{"method":"GET","path":"/a\"b"}"#))
        );
    }
    assert_eq!(messages[0]["payload"], "event 0");
    assert_eq!(messages[9]["payload"], "event 2");
    assert_eq!(daemon.counter("forward.acks_total"), 3);
    assert_eq!(daemon.counter("forward.decode_failures_total"), 1);
}

/// Connects, reads the HELO and answers a PING made with `key`; returns the stream and the
/// PONG.
fn handshake(port: u16, key: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let helo = read_object(&mut stream);
    let mut reader = Reader::new(&helo);
    assert_eq!(reader.value(), Ok(Value::Array(2)));
    assert_eq!(reader.value(), Ok(Value::Str(b"HELO")));
    let Ok(Value::Map(pairs)) = reader.value() else {
        panic!("HELO options")
    };
    let mut nonce = Vec::new();
    for _ in 0..pairs {
        let key = reader.value().expect("a key");
        let value = reader.value().expect("a value");
        if let (Value::Str(b"nonce"), Value::Bin(bytes) | Value::Str(bytes)) = (key, value) {
            nonce = bytes.to_vec();
        }
    }
    assert_eq!(nonce.len(), 16);
    let mut ping = Vec::new();
    msgpack::put_array(&mut ping, 6);
    msgpack::put_str(&mut ping, b"PING");
    msgpack::put_str(&mut ping, b"client.example");
    msgpack::put_str(&mut ping, b"pepper");
    msgpack::put_str(
        &mut ping,
        &hex_digest(&[b"pepper", b"client.example", &nonce, key]),
    );
    msgpack::put_str(&mut ping, b"");
    msgpack::put_str(&mut ping, b"");
    stream.write_all(&ping).expect("send the PING");
    let pong = read_object(&mut stream);
    let mut reader = Reader::new(&pong);
    assert_eq!(reader.value(), Ok(Value::Array(5)));
    assert_eq!(reader.value(), Ok(Value::Str(b"PONG")));
    if key == b"s3cret" {
        assert_eq!(reader.value(), Ok(Value::Bool(true)));
        assert_eq!(reader.value(), Ok(Value::Str(b"")));
        assert_eq!(reader.value(), Ok(Value::Str(b"gyges.example")));
        let expected = hex_digest(&[b"pepper", b"gyges.example", &nonce, b"s3cret"]);
        assert_eq!(
            reader.value(),
            Ok(Value::Str(&expected[..])),
            "the server proves the key"
        );
    }
    (stream, pong)
}

#[test]
fn shared_key_handshake_accepts_the_right_key_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let extra = "shared_key = \"s3cret\"\nself_hostname = \"gyges.example\"";
    let (mut daemon, output) = start(dir.path(), port, extra);
    let (mut stream, _) = handshake(port, b"s3cret");
    let frame = std::fs::read(format!("{FIXTURES}/packed.bin")).expect("a fixture");
    stream.write_all(&frame).expect("send");
    assert_eq!(ack_of(&read_object(&mut stream)), b"cGFja2VkLWNodW5r");

    let (mut refused, pong) = handshake(port, b"wrong");
    let mut reader = Reader::new(&pong);
    reader.value().expect("array");
    reader.value().expect("PONG");
    assert_eq!(reader.value(), Ok(Value::Bool(false)));
    let _ = refused.write_all(&frame);
    let mut rest = Vec::new();
    let _ = refused.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed, no ack");

    // Events before the PING are refused too.
    let mut early = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    early
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _helo = read_object(&mut early);
    let _ = early.write_all(&frame);
    let mut rest = Vec::new();
    let _ = early.read_to_end(&mut rest);
    let mut reader = Reader::new(&rest);
    assert_eq!(reader.value(), Ok(Value::Array(5)));
    assert_eq!(reader.value(), Ok(Value::Str(b"PONG")));
    assert_eq!(
        reader.value(),
        Ok(Value::Bool(false)),
        "refused, then closed with no ack"
    );
    assert_eq!(reader.value(), Ok(Value::Str(b"malformed PING")));

    wait_for(Duration::from_secs(20), "3 messages", || {
        messages(&output).len() >= 3
    });
    assert!(daemon.stop().success());
    assert_eq!(messages(&output).len(), 3, "only the authenticated frame");
    assert_eq!(daemon.counter("forward.auth_failures_total"), 2);
    assert_eq!(daemon.counter("forward.acks_total"), 1);
}

#[test]
fn a_udp_heartbeat_is_answered_on_the_same_port() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let (mut daemon, _) = start(dir.path(), port, "");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut answer = [0xffu8; 8];
    let mut answered = None;
    for _ in 0..40 {
        socket.send_to(&[0], ("127.0.0.1", port)).expect("send");
        if let Ok((count, _)) = socket.recv_from(&mut answer) {
            answered = Some(count);
            break;
        }
    }
    assert_eq!(answered, Some(1));
    assert_eq!(answer[0], 0);
    assert!(daemon.stop().success());
}

/// gyges → FluentForwardOutput (durable, `require_ack_response`) → gyges FluentForwardInput
/// (durable FileOutput), with the receiver killed with -9 twice mid-stream: every numbered
/// message arrives, as a `fluent` message whose `seq` field and Payload survived the trip.
#[test]
fn gyges_to_gyges_round_trip_loses_nothing_across_receiver_kills() {
    const CHUNKS: i64 = 30;
    const CHUNK_MESSAGES: i64 = 200;
    const TOTAL: i64 = CHUNKS * CHUNK_MESSAGES;
    let (forwarder_dir, receiver_dir) = (
        tempfile::tempdir().expect("a temporary directory"),
        tempfile::tempdir().expect("a temporary directory"),
    );
    let (forwarder_port, receiver_port) = (free_port(), free_port());
    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [forward]\ntype = \"FluentForwardInput\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         [FileOutput]\nmessage_matcher = \"Type == 'fluent'\"\npath = \"in.log\"\n\
         use_framing = true\nflush_interval = 20\nuse_buffering = true\n"
    );
    let forwarder_config = format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{forwarder_port}\"\n\
         [upstream]\ntype = \"FluentForwardOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\nuse_buffering = true\n\
         require_ack_response = true\nack_response_timeout = 2000\n"
    );
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    let mut forwarder = Daemon::start(forwarder_dir.path(), &forwarder_config, &[forwarder_port]);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            for chunk in 0..CHUNKS {
                let mut bytes = Vec::new();
                for number in chunk * CHUNK_MESSAGES..(chunk + 1) * CHUNK_MESSAGES {
                    bytes.extend(frame(&numbered_message(number, &format!("m{number}"))));
                }
                send_tcp(forwarder_port, &bytes);
                sent.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let output = receiver_dir.path().join("in.log");
    let arrived = || {
        let bytes = std::fs::read(&output).unwrap_or_default();
        let mut seen: Vec<i64> = read_frames(&bytes)
            .into_iter()
            .filter_map(sequence_of)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    for kill_after in [8, 18] {
        wait_for(Duration::from_secs(60), "the stream to progress", || {
            sent.load(std::sync::atomic::Ordering::Acquire) >= kill_after
        });
        receiver.kill();
        std::thread::sleep(Duration::from_millis(150));
        receiver.restart(&[receiver_port]);
    }
    sender.join().expect("the sender");
    wait_for_or_explain(
        Duration::from_secs(90),
        "every number at the receiver",
        || arrived().len() as i64 >= TOTAL,
        || {
            format!(
                "{} of {TOTAL} arrived\nforwarder:\n{}\nreceiver:\n{}",
                arrived().len(),
                forwarder.stderr(),
                receiver.stderr()
            )
        },
    );
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    assert_eq!(arrived(), (0..TOTAL).collect::<Vec<_>>());
    let bytes = std::fs::read(&output).expect("the receiver's output");
    let first = read_frames(&bytes)[0];
    let number = sequence_of(first).expect("a seq field");
    assert_eq!(payload_of(first), Some(format!("m{number}").into_bytes()));
    let view = gyges::message::ProtoView::new(first);
    use gyges::message::view::StrHeader;
    assert_eq!(view.str_header(StrHeader::Logger), Some(&b"tests"[..]));
    assert_eq!(view.str_header(StrHeader::Type), Some(&b"fluent"[..]));
    assert!(forwarder.counter("upstream.acks_total") > 0);
    assert!(
        forwarder.stderr().contains("retrying from the last commit"),
        "the kills landed mid-stream: a connection was lost and its reads sent again"
    );
}

/// Memory delivery (no disk queue): FluentForwardOutput with a fixed `tag` sends PackedForward
/// through TcpOutput's sender; the receiving FluentForwardInput gets every message under it.
#[test]
fn memory_delivery_with_a_fixed_tag_arrives_under_that_tag() {
    let (forwarder_dir, receiver_dir) = (
        tempfile::tempdir().expect("a temporary directory"),
        tempfile::tempdir().expect("a temporary directory"),
    );
    let (forwarder_port, receiver_port) = (free_port(), free_port());
    let (mut receiver, output) = start(receiver_dir.path(), receiver_port, "");
    let forwarder_config = format!(
        "[hekad]\nstats_interval = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{forwarder_port}\"\n\
         [upstream]\ntype = \"FluentForwardOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\ntag = \"relay.in\"\n"
    );
    let mut forwarder = Daemon::start(forwarder_dir.path(), &forwarder_config, &[forwarder_port]);
    let mut bytes = Vec::new();
    for number in 0..500 {
        bytes.extend(frame(&numbered_message(number, &format!("m{number}"))));
    }
    send_tcp(forwarder_port, &bytes);
    wait_for(Duration::from_secs(30), "500 messages", || {
        messages(&output).len() >= 500
    });
    assert!(forwarder.stop().success());
    assert!(receiver.stop().success());
    let messages = messages(&output);
    assert_eq!(messages.len(), 500);
    for (number, message) in messages.iter().enumerate() {
        assert_eq!(message["logger"], "relay.in");
        assert_eq!(message["payload"], format!("m{number}"));
        assert_eq!(field(message, "seq"), Some(&Json::from(number)));
    }
}
