//! The pipeline spine end to end: `gyges run` on loopback, fed by real sockets.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn file_output_config(inputs: &str, path: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n{inputs}\n[FileOutput]\nmessage_matcher = \"TRUE\"\n\
         path = \"{path}\"\nencoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n"
    )
}

fn framed_input(name: &str, port: u16) -> String {
    format!("[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n")
}

fn line_input(name: &str, port: u16) -> String {
    format!(
        "[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\nsplitter = \"TokenSplitter\"\n"
    )
}

fn frames_in(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .map(|bytes| read_frames(&bytes).len())
        .unwrap_or(0)
}

/// Counts each `seq` field and each `line-N` payload in a framed output file.
fn tally(path: &std::path::Path) -> (HashMap<i64, u32>, HashMap<i64, u32>) {
    let bytes = std::fs::read(path).expect("output file");
    let (mut framed, mut lines) = (HashMap::new(), HashMap::new());
    for message in read_frames(&bytes) {
        if let Some(sequence) = sequence_of(message) {
            *framed.entry(sequence).or_default() += 1;
        } else if let Some(payload) = payload_of(message) {
            let text = String::from_utf8_lossy(&payload);
            if let Some(number) = text
                .strip_prefix("line-")
                .and_then(|rest| rest.trim_end().parse().ok())
            {
                *lines.entry(number).or_default() += 1;
            }
        }
    }
    (framed, lines)
}

fn assert_exactly_once(counts: &HashMap<i64, u32>, expected: i64, what: &str) {
    let missing: Vec<i64> = (0..expected)
        .filter(|number| !counts.contains_key(number))
        .take(10)
        .collect();
    let repeated: Vec<(&i64, &u32)> = counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: missing {missing:?} (of {expected})"
    );
    assert!(repeated.is_empty(), "{what}: duplicated {repeated:?}");
    assert_eq!(counts.len() as i64, expected, "{what}: unexpected numbers");
}

#[test]
fn every_message_arrives_exactly_once_over_four_connections_and_the_line_port() {
    let dir = tempfile::tempdir().unwrap();
    let (framed_port, line_port) = (free_port(), free_port());
    let inputs = framed_input("framed", framed_port) + &line_input("lines", line_port);
    let mut daemon = Daemon::start(
        dir.path(),
        &file_output_config(&inputs, "out.log"),
        &[framed_port, line_port],
    );
    const PER_CONNECTION: i64 = 50_000;
    const LINES: i64 = 200_000;
    let mut senders = Vec::new();
    for connection in 0..4 {
        senders.push(std::thread::spawn(move || {
            let mut bytes = Vec::new();
            for index in 0..PER_CONNECTION {
                let sequence = connection * PER_CONNECTION + index;
                bytes.extend_from_slice(&frame(&numbered_message(sequence, "x")));
            }
            send_tcp(framed_port, &bytes);
        }));
    }
    senders.push(std::thread::spawn(move || {
        let text: String = (0..LINES)
            .map(|number| format!("line-{number}\n"))
            .collect();
        send_tcp(line_port, text.as_bytes());
    }));
    for sender in senders {
        sender.join().unwrap();
    }
    let output = dir.path().join("out.log");
    wait_for(
        Duration::from_secs(60),
        "400000 messages in the file",
        || frames_in(&output) >= 400_000,
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let (framed, lines) = tally(&output);
    assert_exactly_once(&framed, 4 * PER_CONNECTION, "framed messages");
    assert_exactly_once(&lines, LINES, "lines");
    assert_eq!(daemon.counter("FileOutput.sent_total"), 400_000);
    // Four senders, plus the readiness probe of `Daemon::start`.
    assert!(daemon.counter("framed.connections_total") >= 4);
}

#[test]
fn bad_input_is_counted_and_every_valid_message_still_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (framed_port, line_port) = (free_port(), free_port());
    let inputs = framed_input("framed", framed_port) + &line_input("lines", line_port);
    let mut daemon = Daemon::start(
        dir.path(),
        &file_output_config(&inputs, "out.log"),
        &[framed_port, line_port],
    );

    let mut stream = Vec::new();
    stream.extend_from_slice(&frame(&numbered_message(0, "first")));
    // Garbage between frames, including a stray record separator.
    stream.extend_from_slice(b"garbage \x1e\x05 more garbage");
    stream.extend_from_slice(&frame(&numbered_message(1, "after garbage")));
    // A frame header that claims 2 GiB.
    let mut huge = vec![0x08];
    gyges::message::wire::put_varint(&mut huge, 2u64 << 30);
    stream.extend_from_slice(&[0x1e, huge.len() as u8]);
    stream.extend_from_slice(&huge);
    stream.push(0x1f);
    stream.extend_from_slice(&frame(&numbered_message(2, "after a 2 GiB claim")));
    // A well-formed 70 KiB record, over the 64 KiB default.
    stream.extend_from_slice(&frame(&numbered_message(-1, &"z".repeat(70 * 1024))));
    stream.extend_from_slice(&frame(&numbered_message(3, "after an oversize record")));
    // A frame whose body is not a Heka message.
    stream.extend_from_slice(&frame(b"\xff\xfe not protobuf"));
    stream.extend_from_slice(&frame(&numbered_message(4, "after invalid protobuf")));
    // A truncated frame at the end of the connection.
    let truncated = frame(&numbered_message(99, "never complete"));
    stream.extend_from_slice(&truncated[..truncated.len() / 2]);
    send_tcp(framed_port, &stream);
    // The daemon survives: a second connection still works.
    send_tcp(framed_port, &frame(&numbered_message(5, "new connection")));
    // Lines: invalid UTF-8, then valid ones on the same connection.
    let mut lines = b"line-0\n\xff\xfe\xfd not utf-8\n".to_vec();
    lines.extend_from_slice(b"line-1\n");
    send_tcp(line_port, &lines);

    let output = dir.path().join("out.log");
    wait_for(Duration::from_secs(20), "9 messages", || {
        frames_in(&output) >= 9
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let (framed, lines) = tally(&output);
    assert_exactly_once(&framed, 6, "valid framed messages");
    assert_eq!(lines.len(), 2, "valid lines: {lines:?}");
    let stderr = daemon.stderr();
    assert!(
        daemon.counter("framed.discarded_bytes_total") > 0,
        "{stderr}"
    );
    assert_eq!(
        daemon.counter("framed.oversize_records_total"),
        1,
        "{stderr}"
    );
    assert_eq!(
        daemon.counter("framed.decode_failures_total"),
        1,
        "{stderr}"
    );
    assert_eq!(daemon.counter("lines.invalid_utf8_total"), 1, "{stderr}");
    assert_eq!(daemon.counter("lines.records_total"), 3, "{stderr}");

    // `gyges cat --match` reads the same file through the matcher.
    let cat = |expression: &str| {
        let output = Command::new(gyges_binary())
            .args(["cat", "--match", expression])
            .arg(&output)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, printed) = cat("Fields[seq] >= 3 && Logger == 'tests'");
    assert_eq!(code, Some(0));
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(
        printed.lines().all(|line| line.starts_with("{\"uuid\":")),
        "{printed}"
    );
    let (code, printed) = cat("Type == 'lines' && Payload =~ /^line-1/");
    assert_eq!((code, printed.lines().count()), (Some(0), 1), "{printed}");
    assert_eq!(cat("Type ==").0, Some(2), "a bad expression exits 2");
}

#[test]
fn each_kind_of_config_mistake_fails_with_file_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = "[TcpInput]\naddress = \"127.0.0.1:1\"\n";
    let cases = [
        (
            "unknown_key",
            format!("{input}[FileOutput]\npath = \"x\"\nflush_intervall = 5\n"),
            "FileOutput",
            "flush_intervall",
        ),
        (
            "wrong_type",
            format!("{input}[FileOutput]\npath = \"x\"\nflush_interval = \"5\"\n"),
            "FileOutput",
            "flush_interval",
        ),
        (
            "impossible",
            format!("[hekad]\nmax_message_size = 1099511627776\n{input}"),
            "hekad",
            "max_message_size",
        ),
        (
            "bad_matcher",
            format!("{input}[FileOutput]\npath = \"x\"\nmessage_matcher = \"TRUE &&\"\n"),
            "FileOutput",
            "message_matcher",
        ),
        (
            "unknown_type",
            format!("{input}[thing]\ntype = \"FooOutput\"\n"),
            "thing",
            "type",
        ),
        (
            "missing_key",
            format!("{input}[FileOutput]\nencoder = \"PayloadEncoder\"\n"),
            "FileOutput",
            "path",
        ),
    ];
    for (name, text, section, key) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        for verb in ["validate", "run"] {
            let output = Command::new(gyges_binary())
                .args([verb, "-c"])
                .arg(&path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{verb} {name}: {stderr}");
            assert!(
                stderr.contains(&format!("{name}.toml")),
                "{verb} {name}: {stderr}"
            );
            assert!(
                stderr.contains(&format!("[{section}]")),
                "{verb} {name}: {stderr}"
            );
            assert!(
                stderr.contains(&format!("`{key}`")),
                "{verb} {name}: {stderr}"
            );
        }
    }
    let missing = Command::new(gyges_binary())
        .args(["run", "-c", "/no/such/gyges.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/gyges.toml"));
}

#[test]
fn sigterm_under_load_loses_nothing_that_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let line_port = free_port();
    let mut daemon = Daemon::start(
        dir.path(),
        &file_output_config(&line_input("lines", line_port), "out.log"),
        &[line_port],
    );
    let output = dir.path().join("out.log");
    let sender = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", line_port)).unwrap();
        let mut number = 0u64;
        loop {
            let chunk: String = (number..number + 1000)
                .map(|n| format!("line-{n}\n"))
                .collect();
            if stream.write_all(chunk.as_bytes()).is_err() {
                return number;
            }
            number += 1000;
            if number >= 50_000_000 {
                return number;
            }
        }
    });
    wait_for(Duration::from_secs(20), "messages flowing", || {
        frames_in(&output) > 20_000
    });
    let status = daemon.stop();
    assert!(status.success(), "exit {status}: {}", daemon.stderr());
    let _ = sender.join();
    let read = daemon.counter("lines.records_total");
    let written = frames_in(&output) as u64;
    assert!(read > 20_000, "{}", daemon.stderr());
    assert_eq!(written, read, "every record read was written");
    assert_eq!(daemon.counter("FileOutput.sent_total"), read);
    let (_, lines) = tally(&output);
    assert!(lines.values().all(|&count| count == 1), "no duplicates");
}

#[test]
fn tcp_output_delivers_to_a_second_gyges_across_its_restart() {
    let receiver_dir = tempfile::tempdir().unwrap();
    let sender_dir = tempfile::tempdir().unwrap();
    let (receiver_port, sender_port) = (free_port(), free_port());
    let receiver_config =
        file_output_config(&framed_input("from_relay", receiver_port), "received.log");
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    let sender_config = format!(
        "[hekad]\nstats_interval = 0\n{}\n[relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\n",
        line_input("lines", sender_port)
    );
    let mut sender = Daemon::start(sender_dir.path(), &sender_config, &[sender_port]);
    let received = receiver_dir.path().join("received.log");

    let batch =
        |from: i64, to: i64| -> String { (from..to).map(|n| format!("line-{n}\n")).collect() };
    send_tcp(sender_port, batch(0, 1000).as_bytes());
    wait_for_or_explain(
        Duration::from_secs(20),
        "the first 1000",
        || frames_in(&received) >= 1000,
        || {
            let count = frames_in(&received);
            format!(
                "received {count}\nsender:\n{}\nreceiver:\n{}",
                sender.stderr(),
                receiver.stderr()
            )
        },
    );

    assert!(receiver.stop().success(), "{}", receiver.stderr());
    send_tcp(sender_port, batch(1000, 2000).as_bytes());
    // Let the sender notice the receiver is gone and queue the batch.
    std::thread::sleep(Duration::from_millis(500));
    receiver.restart(&[receiver_port]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while frames_in(&received) < 2000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let count = frames_in(&received);
    if count < 2000 {
        sender.stop();
        panic!(
            "only {count} of 2000 after the restart\nsender:\n{}\nreceiver:\n{}",
            sender.stderr(),
            receiver.stderr()
        );
    }

    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let (_, lines) = tally(&received);
    assert_exactly_once(&lines, 2000, "relayed lines");
    assert_eq!(sender.counter("relay.dropped_total"), 0);
}

/// A plugin that cannot start on a core (an address in use, a file that cannot be opened) fails
/// `gyges run` at startup with one error naming the core, the stage and the plugin section,
/// and exit status 1; the cores that did start are stopped.
#[test]
fn a_plugin_that_cannot_start_names_the_core_the_stage_and_the_plugin() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("its address").port();
    let free = free_port();
    let cases = [
        (
            "busy",
            format!("[hekad]\nstats_interval = 0\n[busy]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n"),
            "input [busy]",
        ),
        (
            "unopenable",
            format!(
                "[hekad]\nstats_interval = 0\n[TcpInput]\naddress = \"127.0.0.1:{free}\"\n\
                 [sink]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\n\
                 path = \"/proc/gyges-cannot-create/out.log\"\n"
            ),
            "output [sink]",
        ),
    ];
    for (name, text, names) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("the config");
        let output = std::process::Command::new(gyges_binary())
            .args(["run", "-c", path.to_str().expect("a UTF-8 path")])
            .env("GYGES_LOG", "error")
            .output()
            .expect("gyges runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(names), "{name}: {stderr}");
        assert!(stderr.contains("core "), "{name} names the core: {stderr}");
    }
    drop(taken);
}

/// A partly filled batch is written as soon as its connection (or datagram socket) has
/// nothing more to read, even with a `flush_interval` of ten minutes; `flush_on_idle = false`
/// keeps it for the interval (or the stop), as Heka did.
#[test]
fn a_partly_filled_batch_is_written_when_its_input_runs_dry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, udp_port) = (free_port(), free_port());
    let output = |name: &str, extra: &str| {
        format!(
            "[{name}]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"{name}.log\"\n\
             flush_interval = 600000\n{extra}"
        )
    };
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}\
         [Datagrams]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:{udp_port}\"\n{}{}",
        framed_input("In", port),
        output("Prompt", ""),
        output("Held", "flush_on_idle = false\n")
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let frames: Vec<u8> = (0..3)
        .flat_map(|n| frame(&numbered_message(n, "idle")))
        .collect();
    stream.write_all(&frames).expect("send");
    let (prompt, held) = (dir.path().join("Prompt.log"), dir.path().join("Held.log"));
    wait_for(Duration::from_secs(10), "3 frames in Prompt.log", || {
        frames_in(&prompt) == 3
    });
    // A socket that has no more datagrams ships on idle too.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    for n in 0..3 {
        let datagram = format!("datagram {n}\n");
        udp.send_to(datagram.as_bytes(), ("127.0.0.1", udp_port))
            .expect("send");
    }
    wait_for(Duration::from_secs(10), "3 datagrams in Prompt.log", || {
        frames_in(&prompt) == 6
    });
    // The connection is still open and the interval far off: the held batch is not written.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(frames_in(&held), 0, "flush_on_idle = false wrote early");
    drop(stream);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(frames_in(&held), 6, "the stop writes the held batch");
}

/// A FileOutput with no encoder and no `use_framing` writes Heka frames, as Heka documents for
/// ProtobufEncoder, so that `gyges cat` reads every message back.
#[test]
fn a_file_output_left_to_its_defaults_can_be_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n",
        framed_input("In", port)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let stream: Vec<u8> = (0..100)
        .flat_map(|n| frame(&numbered_message(n, "defaults")))
        .collect();
    send_tcp(port, &stream);
    let path = dir.path().join("out.log");
    wait_for(Duration::from_secs(30), "100 frames in out.log", || {
        frames_in(&path) == 100
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let read = messages(&path);
    assert_eq!(read.len(), 100);
    let mut sequences: Vec<i64> = read
        .iter()
        .map(|message| field(message, "seq").and_then(|v| v.as_i64()).expect("seq"))
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_heka_config_with_its_parser_quirks_and_common_keys_runs_and_says_what_differs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [tcp:{port}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\ncan_exit = false\n\
         [tcp:{port}.retries]\nmax_delay = \"30s\"\ndelay = \"250ms\"\nmax_retries = -1\n\
         [file:all]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         ticker_interval = 1\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let stream: Vec<u8> = (0..50)
        .flat_map(|n| frame(&numbered_message(n, "quirks")))
        .collect();
    send_tcp(port, &stream);
    let path = dir.path().join("out.log");
    wait_for(Duration::from_secs(30), "50 frames in out.log", || {
        frames_in(&path) == 50
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let stderr = daemon.stderr();
    for key in ["can_exit", "retries"] {
        let line = format!("section [tcp:{port}], key `{key}`: accepted from Heka;");
        assert_eq!(stderr.matches(&line).count(), 1, "{key}: {stderr}");
    }
    let line = "section [file:all], key `ticker_interval`: accepted from Heka;";
    assert_eq!(stderr.matches(line).count(), 1, "{stderr}");
}

#[test]
fn validate_loads_every_sandbox_script_and_its_requires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).expect("modules dir");
    std::fs::write(modules.join("helper.lua"), "return { one = 1 }\n").expect("module");
    let script = dir.path().join("filter.lua");
    std::fs::write(
        &script,
        "local helper = require 'helper'\nfunction process_message() return 0 end\n",
    )
    .expect("script");
    let config = |module_directory: &std::path::Path| {
        format!(
            "[TcpInput]\naddress = \"127.0.0.1:1\"\n\
             [counter]\ntype = \"SandboxFilter\"\nmessage_matcher = \"TRUE\"\n\
             filename = \"{}\"\nmodule_directory = \"{}\"\n",
            script.display(),
            module_directory.display()
        )
    };
    let good = dir.path().join("good.toml");
    std::fs::write(&good, config(&modules)).expect("config");
    let run = run_gyges(&["validate", "-c", good.to_str().expect("utf-8")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, config(&dir.path().join("elsewhere"))).expect("config");
    let run = run_gyges(&["validate", "-c", bad.to_str().expect("utf-8")]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains("section [counter], key `filename`") && run.stderr.contains("helper"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_go_style_address_listens_on_ipv4_and_ipv6_and_names_ipv4_senders_plainly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = file_output_config(
        &format!(
            "[Lines]\ntype = \"TcpInput\"\naddress = \":{port}\"\nsplitter = \"TokenSplitter\"\n\
             [Datagrams]\ntype = \"UdpInput\"\naddress = \":{port}\"\n"
        ),
        "out.log",
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    send_tcp(port, b"over ipv4\n");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    udp.send_to(b"datagram over ipv4\n", ("127.0.0.1", port))
        .expect("send");
    let ipv6 = TcpStream::connect(("::1", port)).map(|mut stream| {
        stream.write_all(b"over ipv6\n").expect("write");
    });
    let expected = if ipv6.is_ok() { 3 } else { 2 };
    let path = dir.path().join("out.log");
    wait_for(Duration::from_secs(30), "every message in out.log", || {
        frames_in(&path) == expected
    });
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let read = messages(&path);
    let hostname_of = |payload: &str| {
        let message = read
            .iter()
            .find(|message| message["payload"].as_str() == Some(&format!("{payload}\n")))
            .unwrap_or_else(|| panic!("no `{payload}` in {read:?}"));
        message["hostname"].as_str().unwrap_or_default().to_string()
    };
    for payload in ["over ipv4", "datagram over ipv4"] {
        let hostname = hostname_of(payload);
        assert!(hostname.starts_with("127.0.0.1:"), "{payload}: {hostname}");
    }
    if ipv6.is_ok() {
        let hostname = hostname_of("over ipv6");
        assert!(hostname.starts_with("[::1]:"), "{hostname}");
    }
}

#[test]
fn a_tcp_output_connects_from_its_local_address() {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let receiver = listener.local_addr().expect("address");
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let accepting = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !done.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        readers.push(std::thread::spawn(move || {
                            let mut bytes = Vec::new();
                            let _ = stream.read_to_end(&mut bytes);
                            (peer, bytes)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            readers
                .into_iter()
                .map(|reader| reader.join().expect("reader"))
                .collect::<Vec<_>>()
        })
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n{}\
         [Forward]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"{receiver}\"\n\
         local_address = \"127.0.0.2:0\"\n",
        framed_input("In", port)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let stream: Vec<u8> = (0..20)
        .flat_map(|n| frame(&numbered_message(n, "from a local address")))
        .collect();
    send_tcp(port, &stream);
    // What was read is routed and flushed at stop; the pause lets the input read it all.
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    done.store(true, Ordering::Release);
    let connections = accepting.join().expect("accepting thread");
    assert!(!connections.is_empty(), "{}", daemon.stderr());
    let mut sequences = Vec::new();
    for (peer, bytes) in &connections {
        assert_eq!(peer.ip().to_string(), "127.0.0.2", "{peer}");
        sequences.extend(read_frames(bytes).iter().filter_map(|m| sequence_of(m)));
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (0..20).collect::<Vec<_>>());
}

/// The `core="N"` values of `metric` for plugin `plugin` in a `/metrics` answer.
fn per_core(metrics: &str, metric: &str, plugin: &str) -> HashMap<String, u64> {
    let prefix = format!("{metric}{{plugin=\"{plugin}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let core = line.split("core=\"").nth(1)?.split('"').next()?.to_string();
            let value = line.rsplit(' ').next()?.parse().ok()?;
            Some((core, value))
        })
        .collect()
}

/// Under two ingest cores, one memory FileOutput is appended to by both cores (each counts
/// what it wrote itself; nothing crosses a ring), and every line arrives whole, exactly once,
/// with no hole left in the file.
#[test]
fn two_cores_append_to_one_file_and_every_line_arrives_whole_exactly_once() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        eprintln!("skipped: needs two cores");
        return;
    }
    const PER_CONNECTION: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let (port, http) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\ncores = [0, 1]\noutput_core = 1\n\
         http_address = \"127.0.0.1:{http}\"\n{}\
         [LinePayload]\ntype = \"PayloadEncoder\"\nappend_newlines = false\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         encoder = \"LinePayload\"\nflush_interval = 20\n",
        line_input("In", port)
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    // Connections until both cores have read lines (the kernel spreads them), at least 8.
    let mut connections = 0;
    loop {
        let metrics = scrape_metrics(http);
        let records = per_core(&metrics, "gyges_records_total", "In");
        let both = records.len() == 2 && records.values().all(|count| *count > 0);
        if (both && connections >= 8) || connections == 64 {
            break;
        }
        let first = connections * PER_CONNECTION;
        let text: String = (first..first + PER_CONNECTION)
            .map(|number| format!("line-{number:<8} of a connection's numbered lines\n"))
            .collect();
        send_tcp(port, text.as_bytes());
        connections += 1;
        let sent = connections * PER_CONNECTION;
        wait_for(Duration::from_secs(30), "the lines counted", || {
            let metrics = scrape_metrics(http);
            per_core(&metrics, "gyges_records_total", "In")
                .values()
                .sum::<u64>() as usize
                >= sent
        });
    }
    let expected = connections * PER_CONNECTION;
    let output = dir.path().join("out.log");
    wait_for(Duration::from_secs(60), "every line written", || {
        let metrics = scrape_metrics(http);
        per_core(&metrics, "gyges_sent_total", "Out")
            .values()
            .sum::<u64>() as usize
            >= expected
    });
    let metrics = scrape_metrics(http);
    let matched = per_core(&metrics, "gyges_matched_total", "Out");
    let sent = per_core(&metrics, "gyges_sent_total", "Out");
    assert_eq!(matched.len(), 2, "{metrics}");
    for (core, count) in &matched {
        assert!(*count > 0, "core {core} read nothing: {matched:?}");
        assert_eq!(
            sent.get(core),
            Some(count),
            "core {core} wrote its own lines"
        );
    }
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let bytes = std::fs::read(&output).expect("output file");
    assert!(!bytes.contains(&0), "no hole of zeros in the file");
    let mut counts: HashMap<i64, u32> = HashMap::new();
    for line in bytes
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let text = std::str::from_utf8(line).expect("a whole line");
        let number = text
            .strip_prefix("line-")
            .and_then(|rest| rest.strip_suffix(" of a connection's numbered lines"))
            .and_then(|number| number.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("not a whole line: {text:?}"));
        *counts.entry(number).or_default() += 1;
    }
    assert_exactly_once(&counts, expected as i64, "lines");
}
