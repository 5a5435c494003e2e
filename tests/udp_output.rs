//! UdpOutput through the daemon: each numbered message arrives as one datagram, over UDP and
//! over a Unix datagram socket; oversized messages and a missing receiver are counted.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::util::*;

fn config(port: u16, output: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Influx]\ntype = \"SchemaInfluxLineEncoder\"\n\
         [Influx.config]\ntag_fields = \"Type Logger\"\n\
         [Payload]\ntype = \"PayloadEncoder\"\n\
         [Udp]\ntype = \"UdpOutput\"\nmessage_matcher = \"TRUE\"\n{output}"
    )
}

/// Framed numbered messages `range`, each with a payload of `payload_bytes(n)` bytes.
fn numbered(range: std::ops::Range<i64>, payload_bytes: impl Fn(i64) -> usize) -> Vec<u8> {
    let mut stream = Vec::new();
    for n in range {
        let payload = format!("{n:0width$}", width = payload_bytes(n));
        stream.extend(frame(&numbered_message(n, &payload)));
    }
    stream
}

/// Receives datagrams until `count` have come or `timeout` passes without one.
fn receive(
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    count: usize,
) -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    let mut buffer = vec![0; 70_000];
    while datagrams.len() < count {
        match recv(&mut buffer) {
            Ok(bytes) => datagrams.push(buffer[..bytes].to_vec()),
            Err(_) => break,
        }
    }
    datagrams
}

/// A UDP receiver on loopback whose socket buffer holds every datagram of a test even while
/// the reading thread waits for a CPU on a loaded machine (UDP has no backpressure).
fn udp_receiver() -> UdpSocket {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    gyges_sys::socket::set_receive_buffer(&receiver, 4 << 20).expect("SO_RCVBUF");
    receiver
}

#[test]
fn each_message_is_one_datagram_over_udp() {
    const COUNT: i64 = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = udp_receiver();
    receiver
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let target = receiver.local_addr().expect("address");
    let port = free_port();
    let output = format!("address = \"{target}\"\n");
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    let reader =
        std::thread::spawn(move || receive(|buffer| receiver.recv(buffer), COUNT as usize));
    // Sent in slices, so the receiver's socket buffer never has to hold them all.
    for slice in (0..COUNT).step_by(200) {
        send_tcp(
            port,
            &numbered(slice..slice + 200, |n| (n % 50) as usize + 1),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let datagrams = reader.join().expect("reader");
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    // The default encoder: each datagram is one whole protobuf message, as sent.
    let sequences: BTreeSet<i64> = datagrams
        .iter()
        .map(|datagram| sequence_of(datagram).expect("a message with seq"))
        .collect();
    assert_eq!(datagrams.len(), COUNT as usize, "{}", daemon.stderr());
    assert_eq!(sequences, (0..COUNT).collect::<BTreeSet<_>>());
    for datagram in &datagrams {
        let n = sequence_of(datagram).expect("seq");
        let payload = payload_of(datagram).expect("payload");
        assert_eq!(
            payload,
            format!("{n:0width$}", width = (n % 50) as usize + 1).as_bytes()
        );
    }
    assert_eq!(daemon.counter("Udp.sent_total"), COUNT as u64);
    assert_eq!(daemon.counter("Udp.dropped_total"), 0);
}

#[test]
fn influx_lines_over_udp() {
    const COUNT: i64 = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = udp_receiver();
    receiver
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let target = receiver.local_addr().expect("address");
    let port = free_port();
    let output = format!("address = \"{target}\"\nencoder = \"Influx\"\n");
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    let reader =
        std::thread::spawn(move || receive(|buffer| receiver.recv(buffer), COUNT as usize));
    send_tcp(port, &numbered(0..COUNT, |_| 4));
    let datagrams = reader.join().expect("reader");
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(datagrams.len(), COUNT as usize, "{}", daemon.stderr());
    let mut values = BTreeSet::new();
    for datagram in &datagrams {
        // The message's one dynamic field is one point: a datagram of one line.
        let line = std::str::from_utf8(datagram).expect("UTF-8 line");
        let rest = line
            .strip_prefix("seq,Type=test,Logger=tests value=")
            .expect("the seq point with its tags");
        let (value, timestamp) = rest.trim_end().split_once(' ').expect("value and time");
        let value: f64 = value.parse().expect("a number");
        assert_eq!(timestamp, "1700000000000", "{line:?}");
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        values.insert(value as i64);
    }
    assert_eq!(values, (0..COUNT).collect::<BTreeSet<_>>());
}

#[test]
fn payloads_over_unixgram_and_oversized_messages_counted() {
    const COUNT: i64 = 600;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("payload.sock");
    let receiver = UnixDatagram::bind(&path).expect("bind receiver");
    receiver
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let port = free_port();
    let output = format!(
        "net = \"unixgram\"\naddress = \"{}\"\nencoder = \"Payload\"\nmax_message_size = 200\n",
        path.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    // Every third payload is longer than max_message_size: it is dropped and counted.
    let length = |n: i64| if n % 3 == 0 { 300 } else { 8 };
    let expected: BTreeSet<i64> = (0..COUNT).filter(|n| n % 3 != 0).collect();
    let wanted = expected.len();
    let reader = std::thread::spawn(move || receive(|buffer| receiver.recv(buffer), wanted));
    send_tcp(port, &numbered(0..COUNT, length));
    let datagrams = reader.join().expect("reader");
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(datagrams.len(), wanted, "{}", daemon.stderr());
    let mut payloads = BTreeSet::new();
    for datagram in &datagrams {
        // PayloadEncoder: the payload and its newline, one per datagram.
        let text = std::str::from_utf8(datagram).expect("UTF-8 payload");
        let number = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("a newline at the end: {text:?}"));
        assert_eq!(number.len(), 8, "{text:?}");
        payloads.insert(number.parse::<i64>().expect("a number"));
    }
    assert_eq!(payloads, expected);
    assert_eq!(
        daemon.counter("Udp.encode_failures_total"),
        (COUNT as u64).div_ceil(3),
        "one per oversized message"
    );
    assert_eq!(daemon.counter("Udp.sent_total"), wanted as u64);
}

#[test]
fn a_missing_receiver_is_counted_and_the_output_recovers_when_it_binds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("late.sock");
    let port = free_port();
    let output = format!(
        "net = \"unixgram\"\naddress = \"{}\"\nencoder = \"Payload\"\n",
        path.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    send_tcp(port, &numbered(0..100, |_| 10));
    // Nothing listens yet: each send fails, is counted, and the daemon carries on. (The
    // counts below hold however many of these the daemon has sent before the receiver binds.)
    std::thread::sleep(Duration::from_secs(1));
    let receiver = UnixDatagram::bind(&path).expect("bind receiver");
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    send_tcp(port, &numbered(100..200, |_| 10));
    // Until 5 s pass with nothing more: an early message sent late would come too.
    let datagrams = receive(|buffer| receiver.recv(buffer), 200);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let payloads: Vec<i64> = datagrams
        .iter()
        .map(|datagram| {
            let text = String::from_utf8_lossy(datagram);
            text.trim_end().parse().expect("a numbered payload")
        })
        .collect();
    let late: BTreeSet<i64> = payloads.iter().copied().filter(|n| *n >= 100).collect();
    assert_eq!(
        late,
        (100..200).collect::<BTreeSet<_>>(),
        "every message once it listens"
    );
    let early = payloads.len() - late.len();
    let dropped = daemon.counter("Udp.dropped_total");
    assert!(dropped > 0, "{}", daemon.stderr());
    assert_eq!(
        dropped as usize + early,
        100,
        "each early message sent or counted"
    );
    assert_eq!(daemon.counter("Udp.errors_total"), dropped);
    assert_eq!(daemon.counter("Udp.sent_total"), 100 + early as u64);
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        ("net = \"tcp\"\naddress = \"127.0.0.1:1\"\n", "net"),
        ("address = \"127.0.0.1\"\n", "address"),
        (
            "address = \"127.0.0.1:1\"\nmax_message_size = 65508\n",
            "max_message_size",
        ),
        (
            "address = \"127.0.0.1:1\"\nmax_message_size = 0\n",
            "max_message_size",
        ),
        (
            "net = \"unixgram\"\naddress = \"/tmp/x\"\nlocal_address = \"127.0.0.1:0\"\n",
            "local_address",
        ),
        (
            "address = \"127.0.0.1:1\"\ndelivery = \"durable\"\n",
            "delivery",
        ),
        ("address = \"127.0.0.1:1\"\nencoder = \"Nope\"\n", "encoder"),
        ("address = \"127.0.0.1:1\"\nwhat = 1\n", "what"),
    ];
    for (output, key) in cases {
        let file = temp_file(config(1, output).as_bytes());
        let run = run_gyges(&["validate", "-c", file.path().to_str().expect("path")]);
        assert_ne!(run.code, Some(0), "{output} validated");
        assert!(
            run.stderr.contains("[Udp]") && run.stderr.contains(key),
            "{output}: {}",
            run.stderr
        );
    }
    // A host name that does not resolve yet still validates: each core resolves it when it opens.
    let file = temp_file(config(1, "address = \"no-such-host.invalid:8089\"\n").as_bytes());
    let run = run_gyges(&["validate", "-c", file.path().to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn a_receiver_whose_name_does_not_resolve_is_a_warning_and_the_daemon_runs_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = "address = \"no-such-host.invalid:8089\"\n\
                  [All]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"all.log\"\n";
    let mut daemon = Daemon::start(dir.path(), &config(port, output), &[port]);
    send_tcp(port, &numbered(0..50, |_| 4));
    let path = dir.path().join("all.log");
    wait_for(
        Duration::from_secs(30),
        "every message in the FileOutput",
        || messages(&path).len() == 50,
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let log = daemon.stderr();
    assert!(log.contains("no-such-host.invalid:8089"), "{log}");
    assert_eq!(daemon.counter("Udp.dropped_total"), 50, "{log}");
    assert_eq!(daemon.counter("Udp.errors_total"), 50, "{log}");
}
