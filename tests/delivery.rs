//! Delivery classes through the daemon: a TcpOutput whose receiver accepts connections but never
//! reads, with `delivery = "best_effort"` (drops, ingest goes on) and `"memory"` (pushes back,
//! drops nothing); and the config errors of the `delivery` key.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// Messages flood sends, of `RECORD_BYTES` each: 80 MB, far more than the kernel buffers
/// between gyges and the receiver hold (its receive buffer is pinned small, see below).
const MESSAGES: u64 = 80_000;
const RECORD_BYTES: usize = 1000;
/// The receiver's SO_RCVBUF: pinned, so the kernel does not grow it to tens of MB.
const RECEIVER_BUFFER_BYTES: usize = 64 * 1024;

/// A receiver that accepts every connection and reads nothing until `start_reading` is set;
/// then it reads each connection to its end, counting bytes.
struct Receiver {
    port: u16,
    start_reading: Arc<AtomicBool>,
    received_bytes: Arc<AtomicU64>,
    connections: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        gyges_sys::socket::set_receive_buffer(&listener, RECEIVER_BUFFER_BYTES)
            .expect("SO_RCVBUF on the receiver");
        let port = listener.local_addr().expect("an address").port();
        let start_reading = Arc::new(AtomicBool::new(false));
        let received_bytes = Arc::new(AtomicU64::new(0));
        let connections: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>> = Arc::default();
        {
            let (start, received, connections) = (
                start_reading.clone(),
                received_bytes.clone(),
                connections.clone(),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    let (start, received) = (start.clone(), received.clone());
                    let reader =
                        std::thread::spawn(move || read_when_told(stream, &start, &received));
                    connections.lock().unwrap().push(reader);
                }
            });
        }
        Receiver {
            port,
            start_reading,
            received_bytes,
            connections,
        }
    }
}

fn read_when_told(mut stream: TcpStream, start: &AtomicBool, received: &AtomicU64) {
    while !start.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut buffer = vec![0u8; 1 << 16];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            return;
        }
        received.fetch_add(read as u64, Ordering::AcqRel);
    }
}

/// TcpInput; a FileOutput taking everything (memory); a TcpOutput with the given delivery
/// class to `receiver_port`, with the smallest queue (one batch).
fn config(input_port: u16, receiver_port: u16, delivery: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nsocket_receive_buffer = 65536\n\
         [TcpInput]\naddress = \"127.0.0.1:{input_port}\"\n\
         [Everything]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"all.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         [Forward]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\nbuffer_size = 262144\n\
         delivery = \"{delivery}\"\n"
    )
}

fn flood(port: u16) -> Child {
    Command::new(gyges_binary())
        .args([
            "flood",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--format",
            "heka",
        ])
        .args(["--size", &RECORD_BYTES.to_string()])
        .args(["--count", &MESSAGES.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gyges flood")
}

/// The length of flood's framed record of about `RECORD_BYTES` (gyges forwards it unchanged).
fn record_bytes() -> u64 {
    gyges::tools::flood::Template::heka(RECORD_BYTES, [0; 16])
        .expect("a valid flood size")
        .record
        .len() as u64
}

fn frames_in(path: &std::path::Path) -> usize {
    read_frames(&std::fs::read(path).unwrap_or_default()).len()
}

#[test]
fn best_effort_drops_for_a_stuck_receiver_and_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let port = free_port();
    let mut daemon = Daemon::start(
        dir.path(),
        &config(port, receiver.port, "best_effort"),
        &[port],
    );
    let mut sender = flood(port);
    // The sender is never held back by the stuck receiver: it finishes, and the other output
    // gets every message.
    wait_for_or_explain(
        Duration::from_secs(60),
        "flood to finish although the receiver reads nothing",
        || matches!(sender.try_wait(), Ok(Some(_))),
        || daemon.stderr(),
    );
    assert!(sender.wait().unwrap().success(), "flood failed");
    let all = dir.path().join("all.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every message in the FileOutput",
        || frames_in(&all) as u64 >= MESSAGES,
        || daemon.stderr(),
    );
    // Stopping with the receiver still stuck: the blocked write gives up after the drain
    // timeout, and what it held is counted as dropped too.
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(frames_in(&all) as u64, MESSAGES);
    let (sent, dropped) = (
        daemon.counter("Forward.sent_total"),
        daemon.counter("Forward.dropped_total"),
    );
    assert!(dropped > 0, "nothing dropped:\n{}", daemon.stderr());
    assert_eq!(sent + dropped, MESSAGES, "{}", daemon.stderr());
    assert_eq!(daemon.counter("Everything.dropped_total"), 0);
}

#[test]
fn memory_pushes_back_on_a_stuck_receiver_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(port, receiver.port, "memory"), &[port]);
    let mut sender = flood(port);
    let all = dir.path().join("all.log");
    // The pipeline stalls: the FileOutput stops growing while flood still has messages to send.
    let mut last = (u64::MAX, Instant::now());
    wait_for_or_explain(
        Duration::from_secs(60),
        "ingest to stall behind the stuck receiver",
        || {
            assert!(
                matches!(sender.try_wait(), Ok(None)),
                "flood finished: nothing pushed back"
            );
            let size = std::fs::metadata(&all).map_or(0, |metadata| metadata.len());
            if size != last.0 {
                last = (size, Instant::now());
            }
            size > 0 && last.1.elapsed() > Duration::from_secs(1)
        },
        || daemon.stderr(),
    );
    assert!((frames_in(&all) as u64) < MESSAGES);
    // Once the receiver reads, everything goes through, and nothing was dropped.
    receiver.start_reading.store(true, Ordering::Release);
    wait_for_or_explain(
        Duration::from_secs(60),
        "flood to finish once the receiver reads",
        || matches!(sender.try_wait(), Ok(Some(_))),
        || daemon.stderr(),
    );
    assert!(sender.wait().unwrap().success(), "flood failed");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every message at the receiver",
        || receiver.received_bytes.load(Ordering::Acquire) >= MESSAGES * record_bytes(),
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    for reader in receiver.connections.lock().unwrap().drain(..) {
        reader.join().unwrap();
    }
    assert_eq!(
        receiver.received_bytes.load(Ordering::Acquire),
        MESSAGES * record_bytes()
    );
    assert_eq!(frames_in(&all) as u64, MESSAGES);
    assert_eq!(daemon.counter("Forward.sent_total"), MESSAGES);
    assert_eq!(daemon.counter("Forward.dropped_total"), 0);
}

#[test]
fn bad_delivery_values_fail_at_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = "[TcpInput]\naddress = \"127.0.0.1:5565\"\n";
    let file = "[Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"o.log\"\n";
    let cases = [
        (
            "unknown",
            format!("{file}delivery = \"fast\"\n"),
            "Out",
            "delivery",
        ),
        (
            "contradiction",
            format!("{file}delivery = \"best_effort\"\nuse_buffering = true\n"),
            "Out",
            "delivery",
        ),
        (
            "buffering_without_durable",
            format!("{file}delivery = \"memory\"\n[Out.buffering]\nmax_file_size = 1048576\n"),
            "Out",
            "buffering",
        ),
        (
            "log_best_effort",
            "[Log]\ntype = \"LogOutput\"\nmessage_matcher = \"TRUE\"\ndelivery = \"best_effort\"\n"
                .to_string(),
            "Log",
            "delivery",
        ),
        (
            "carbon_durable",
            "[Carbon]\ntype = \"CarbonOutput\"\naddress = \"127.0.0.1:2003\"\n\
             delivery = \"durable\"\n"
                .to_string(),
            "Carbon",
            "delivery",
        ),
    ];
    for (name, text, section, key) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, format!("{input}{text}")).unwrap();
        let output = Command::new(gyges_binary())
            .args(["validate", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        for needle in [
            format!("{name}.toml"),
            format!("[{section}]"),
            format!("`{key}`"),
        ] {
            assert!(stderr.contains(&needle), "{name}: no {needle} in {stderr}");
        }
    }
    // The three classes themselves are accepted where they apply.
    for (name, text) in [
        ("memory", format!("{file}delivery = \"memory\"\n")),
        ("best_effort", format!("{file}delivery = \"best_effort\"\n")),
        ("durable", format!("{file}delivery = \"durable\"\n")),
        (
            "carbon_best_effort",
            "[Carbon]\ntype = \"CarbonOutput\"\naddress = \"127.0.0.1:2003\"\n\
             delivery = \"best_effort\"\n"
                .to_string(),
        ),
    ] {
        let path = dir.path().join(format!("ok_{name}.toml"));
        std::fs::write(&path, format!("{input}{text}")).unwrap();
        let run = run_gyges(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
    }
}
