//! FluentForwardInput's PackedForward rate, per core.
//!
//! 1. **Reader**: one thread runs the input's frame reader (`read_frame`: the msgpack walk and
//!    the Heka message written per event) over in-memory PackedForward frames of 1000 events,
//!    median of 5. This is the parsing and mapping cost alone.
//! 2. **Daemon**: the release `gyges run` under `tuning/single-core.toml` (one core does
//!    everything) with a FluentForwardInput routing every event to a FileOutput
//!    (PayloadEncoder, one line per event) in a temporary directory. One client connection
//!    sends PackedForward frames of 1000 events, each with a `chunk`, keeping at most 64
//!    unacknowledged (a sender with chunks buffered, acks asked for); the clock stops at the
//!    last ack, which the input sends only once every event before it was routed and its
//!    batch shipped. Records/s is events over that time; peak RSS is the daemon's VmHWM.
//!
//! Target (issue 10): at least 2 M records/s per core.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gyges::input::fluent::frame::{read_frame, FrameBuffers};
use gyges::input::fluent::msgpack;
use gyges::message::UuidSource;

const GYGES: &str = env!("CARGO_BIN_EXE_gyges");
const EVENTS_PER_FRAME: usize = 1000;
const TARGET_RECORDS_PER_SECOND: f64 = 2_000_000.0;

/// One PackedForward frame of `EVENTS_PER_FRAME` events (about 120 B each), numbered from
/// `first`, with `chunk` as its ack id when given.
fn packed_frame(first: usize, chunk: Option<&str>) -> Vec<u8> {
    let mut entries = Vec::new();
    for number in first..first + EVENTS_PER_FRAME {
        msgpack::put_array(&mut entries, 2);
        msgpack::put_event_time(&mut entries, 1_700_000_000_000_000_000 + number as i64);
        msgpack::put_map(&mut entries, 5);
        msgpack::put_str(&mut entries, b"message");
        msgpack::put_str(
            &mut entries,
            format!("GET /index.html 200 event {number}").as_bytes(),
        );
        msgpack::put_str(&mut entries, b"host");
        msgpack::put_str(&mut entries, b"web-17.example.com");
        msgpack::put_str(&mut entries, b"status");
        msgpack::put_int(&mut entries, 200);
        msgpack::put_str(&mut entries, b"bytes");
        msgpack::put_int(&mut entries, 5120 + number as i64 % 100);
        msgpack::put_str(&mut entries, b"ok");
        msgpack::put_bool(&mut entries, true);
    }
    let mut frame = Vec::new();
    msgpack::put_array(&mut frame, if chunk.is_some() { 3 } else { 2 });
    msgpack::put_str(&mut frame, b"app.access");
    msgpack::put_bin(&mut frame, &entries);
    if let Some(chunk) = chunk {
        msgpack::put_map(&mut frame, 1);
        msgpack::put_str(&mut frame, b"chunk");
        msgpack::put_str(&mut frame, chunk.as_bytes());
    }
    frame
}

/// Records/s of the frame reader on one thread, the median of 5 passes.
fn reader_rate(frames: usize) -> (f64, usize) {
    let corpus: Vec<Vec<u8>> = (0..frames)
        .map(|index| packed_frame(index * EVENTS_PER_FRAME, None))
        .collect();
    let mut buffers = FrameBuffers::new(64 * 1024);
    let mut uuids = UuidSource::with_seed(7);
    let mut rates = Vec::new();
    let mut bytes_total = 0usize;
    for _ in 0..5 {
        let mut routed = 0usize;
        bytes_total = 0;
        let start = Instant::now();
        for frame in &corpus {
            let mut route = |message: &[u8]| {
                routed += 1;
                bytes_total += message.len();
            };
            let _ = read_frame(frame, b"10.0.0.1", &mut buffers, &mut uuids, &mut route);
        }
        let rate = routed as f64 / start.elapsed().as_secs_f64();
        assert_eq!(routed, frames * EVENTS_PER_FRAME);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    (
        rates[rates.len() / 2],
        bytes_total / (frames * EVENTS_PER_FRAME),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Reads one `{"ack": id}` answer.
fn read_ack(stream: &mut TcpStream) {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while msgpack::Scan::new().resume(&answer).is_err() {
        stream.read_exact(&mut byte).expect("an ack");
        answer.push(byte[0]);
    }
}

/// One daemon run: records/s from the first byte to the last ack, and peak RSS in KiB.
fn daemon_rate(frames: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [forward]\ntype = \"FluentForwardInput\"\naddress = \"127.0.0.1:{port}\"\n\
         udp_heartbeat = false\n\
         [PayloadEncoder]\nappend_newlines = true\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         encoder = \"PayloadEncoder\"\n"
    );
    std::fs::write(dir.path().join("gyges.toml"), config).expect("write the config");
    let tuning = common::repo_root().join("tuning/single-core.toml");
    let mut daemon = Command::new(GYGES)
        .args(["run", "-c", "gyges.toml", "--tuning"])
        .arg(&tuning)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gyges");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("gyges did not listen: {error}"),
        }
    };
    stream.set_nodelay(true).expect("nodelay");
    let corpus: Vec<Vec<u8>> = (0..frames)
        .map(|index| packed_frame(index * EVENTS_PER_FRAME, Some(&format!("c{index}"))))
        .collect();
    const WINDOW: usize = 64;
    let start = Instant::now();
    let mut acked = 0;
    for (index, frame) in corpus.iter().enumerate() {
        if index >= acked + WINDOW {
            read_ack(&mut stream);
            acked += 1;
        }
        stream.write_all(frame).expect("send");
    }
    while acked < frames {
        read_ack(&mut stream);
        acked += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    drop(stream);
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    ((frames * EVENTS_PER_FRAME) as f64 / elapsed, rss_kib)
}

fn main() {
    let mode = common::Mode::detect();
    let mut section = common::Section::new(
        "fluent",
        "Fluentd Forward: PackedForward records/s per core",
        mode,
    );
    let reader_frames = mode.pick(2000, 200, 20);
    let (reader, message_bytes) = reader_rate(reader_frames);
    section.line(format!(
        "Reader: `read_frame` on one thread over {reader_frames} PackedForward frames of \
         {EVENTS_PER_FRAME} events (message + 4 fields, {message_bytes} B Heka message each), \
         median of 5.\n"
    ));
    let daemon_frames = mode.pick(4000, 400, 20);
    let runs = mode.pick(3, 1, 1);
    let mut rates: Vec<(f64, u64)> = (0..runs).map(|_| daemon_rate(daemon_frames)).collect();
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = rates[rates.len() / 2];
    let (low, high) = (rates[0].0, rates[rates.len() - 1].0);
    section.line(format!(
        "Daemon: release `gyges run --tuning tuning/single-core.toml` (one core), \
         FluentForwardInput → FileOutput (PayloadEncoder), one connection sending \
         {daemon_frames} frames × {EVENTS_PER_FRAME} events with a chunk each, 64 unacknowledged \
         at most; timed to the last ack. {runs} runs: median, and the lowest and highest.\n"
    ));
    let mut table = common::Table::new(&[
        "case",
        "records/s per core",
        "spread",
        "peak RSS",
        "target ≥ 2 M/s",
    ]);
    let verdict = |rate: f64| {
        let margin = (rate / TARGET_RECORDS_PER_SECOND - 1.0) * 100.0;
        if margin >= 0.0 {
            format!("met, +{margin:.0} %")
        } else {
            format!("missed, {margin:.0} %")
        }
    };
    table.row(vec![
        "reader (parse + map, 1 thread)".into(),
        format!("{:.2} M", reader / 1e6),
        String::new(),
        String::new(),
        verdict(reader),
    ]);
    table.row(vec![
        "daemon, single core, acked".into(),
        format!("{:.2} M", median.0 / 1e6),
        format!("{:.2}–{:.2} M", low / 1e6, high / 1e6),
        format!("{} MiB", median.1 / 1024),
        verdict(median.0),
    ]);
    section.table(&table);
    section.publish();
}
