//! KafkaOutput throughput against tansu on the same machine, and the broker's own limit
//! beside it.
//!
//! - **gyges**: a daemon with one ingest core (CPU 0) and the output core (CPU 1, where the
//!   producer and librdkafka's threads run) takes `COUNT` framed ~200-byte messages over one
//!   TCP connection and produces each to a 4-partition topic (ProtobufEncoder, memory
//!   delivery, `required_acks = WaitForLocal`). Timed from the first byte sent to the exit of
//!   the daemon after a stop that waits for every acknowledgement; the rate counts only
//!   acknowledged messages (`sent_total`).
//! - **librdkafka alone**: the same count of 200-byte records produced by one librdkafka
//!   producer in this process (no gyges), flushed: what the broker and the client take
//!   without gyges in the path.
//!
//! tansu, the bench process and gyges share the machine's cores: the figures are the
//! combination's, not gyges's alone. Median and spread (max - min) of `RUNS` runs. Run with
//! `cargo bench --bench kafka`; under `cargo test` it runs once with a few thousand messages.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Mode, Section, Table};
use gyges::message::proto::Message;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

const GYGES: &str = env!("CARGO_BIN_EXE_gyges");

/// A tansu broker on a loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> Broker {
        let tansu = common::repo_root().join("target/tansu/tansu");
        assert!(
            tansu.exists(),
            "{} is missing: run scripts/setup.sh (it installs tansu)",
            tansu.display()
        );
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok(), "tansu");
        Broker { child, port }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn wait_until(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `count` Heka-framed messages whose protobuf is about 200 bytes.
fn stream(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 210);
    for n in 0..count {
        let message = Message {
            uuid: vec![7; 16],
            timestamp: 1_700_000_000_000_000_000 + n as i64,
            r#type: Some("bench.kafka".into()),
            logger: Some("bench".into()),
            hostname: Some("bench-host.example.org".into()),
            payload: Some(format!("{n:0140}")),
            ..Message::default()
        }
        .encode_to_vec();
        // Heka framing: 0x1e, the header's length, the header (field 1: the message
        // length, a varint), 0x1f, the message.
        let mut header = vec![0x08];
        let mut length = message.len();
        while length >= 0x80 {
            header.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        header.push(length as u8);
        out.extend_from_slice(&[0x1e, header.len() as u8]);
        out.extend_from_slice(&header);
        out.push(0x1f);
        out.extend_from_slice(&message);
    }
    out
}

/// Bytes of one message's protobuf.
fn message_bytes() -> usize {
    let framed = stream(1);
    framed.len() - 3 - usize::from(framed[1])
}

/// One gyges run: messages per second acknowledged by the broker, and the count.
fn gyges_run(dir: &std::path::Path, broker: &Broker, bytes: &[u8], topic: &str) -> (f64, u64) {
    let port = free_port();
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        "[[core]]\ncpu = 0\nroles = [\"ingest\"]\n[[core]]\ncpu = 1\nroles = [\"filter\", \"output\"]\n",
    )
    .expect("profile");
    let config = dir.join(format!("{topic}.toml"));
    std::fs::write(
        &config,
        format!(
            "[gyges]\nstats_interval = 0\ntuning = \"{}\"\n\
             [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
             [Kafka]\ntype = \"KafkaOutput\"\nmessage_matcher = \"TRUE\"\n\
             addrs = [\"127.0.0.1:{}\"]\ntopic = \"{topic}\"\n",
            profile.display(),
            broker.port
        ),
    )
    .expect("config");
    let log = dir.join(format!("{topic}.log"));
    let mut daemon = Command::new(GYGES)
        .args(["run", "-c"])
        .arg(&config)
        .current_dir(dir)
        .env("GYGES_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn gyges");
    wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok(), "gyges");
    let start = Instant::now();
    {
        let mut connection = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        connection.write_all(bytes).expect("send");
        // gyges closes its end once it has read ours to the end: then every message is in.
        connection
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        connection
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let _ = connection.read(&mut [0; 16]);
    }
    // The stop ships what was read and waits for the brokers' acknowledgements.
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let status = daemon.wait().expect("wait");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(status.success(), "gyges failed");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let sent = text
        .lines()
        .filter_map(|line| {
            line.split_once("Kafka.sent_total ")
                .map(|(_, value)| value.trim())
        })
        .filter_map(|value| value.parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    (sent as f64 / elapsed, sent)
}

/// One run of librdkafka alone: records per second acknowledged.
fn librdkafka_run(broker: &Broker, count: usize, topic: &str) -> f64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{}", broker.port))
        .set("linger.ms", "1")
        .set("queue.buffering.max.kbytes", "51200")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let value = [b'x'; 200];
    let start = Instant::now();
    for _ in 0..count {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    count as f64 / start.elapsed().as_secs_f64()
}

/// Median and spread of `values`.
fn median_spread(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[values.len() - 1] - values[0],
    )
}

fn main() {
    let mode = Mode::detect();
    let count = mode.pick(1_000_000, 100_000, 2_000);
    let runs = mode.pick(3, 3, 1);
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = stream(count);
    let mut gyges_rates = Vec::new();
    let mut client_rates = Vec::new();
    for run in 0..runs {
        let (rate, sent) = gyges_run(dir.path(), &broker, &bytes, &format!("gyges-{run}"));
        assert_eq!(sent, count as u64, "every message acknowledged");
        gyges_rates.push(rate);
        client_rates.push(librdkafka_run(&broker, count, &format!("direct-{run}")));
    }
    let mut section = Section::new("kafka", "KafkaOutput into tansu on the same machine", mode);
    section.line(format!(
        "{count} messages of {} bytes (protobuf) per run, {runs} runs; gyges ingests on CPU 0, \
         its producer and librdkafka's threads run on CPU 1; tansu 0.6.0 (memory storage) and \
         the bench share both CPUs.\n",
        message_bytes()
    ));
    let mut table = Table::new(&["path", "median msg/s", "spread (max - min)"]);
    let (median, spread) = median_spread(gyges_rates);
    table.row(vec![
        "gyges TcpInput → KafkaOutput → tansu (acknowledged)".into(),
        common::si(median, 3),
        common::si(spread, 3),
    ]);
    let (median, spread) = median_spread(client_rates);
    table.row(vec![
        "librdkafka producer alone → tansu (the broker's limit)".into(),
        common::si(median, 3),
        common::si(spread, 3),
    ]);
    section.table(&table);
    section.publish();
}
