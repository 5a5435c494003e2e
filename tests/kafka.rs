//! KafkaOutput and KafkaInput against a real Kafka-compatible broker: tansu (in-memory
//! storage), installed by scripts/setup.sh into target/tansu, started by each test on a free
//! loopback port and stopped by it. A missing tansu fails the test, it never skips.
//!
//! Topics are created by the first produce, with 4 partitions; consumers here read all of them.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::util::*;

/// A tansu broker on loopback, killed when dropped.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The tansu binary scripts/install-tansu.sh puts in target/tansu.
fn tansu_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tansu/tansu");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (it installs tansu, the Kafka-compatible broker \
         of these tests)",
        path.display()
    );
    path
}

impl Broker {
    /// Starts tansu on a free port and waits until it accepts connections.
    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    /// Starts tansu on `port` (a restart keeps the port, so clients find it again).
    pub fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut broker = Broker {
            child: None,
            port,
            log: dir.path().join("tansu.log"),
            _dir: dir,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("tansu log");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let port = self.port;
        wait_for(Duration::from_secs(10), "tansu to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// `host:port` for `addrs`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (its memory storage, and every message in it, goes with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// What tansu logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Partitions tansu gives a topic created by its first produce.
pub const PARTITIONS: i32 = 4;

/// A consumer of every partition of `topic` from the start, assigned (no group join).
pub fn consumer(broker: &Broker, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", format!("test-{}", fastrand::u64(..)))
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    consumer
}

/// Reads `topic` until `count` records have come or `quiet` passes without one (or `limit`
/// in all); returns each record's value, by partition.
pub fn consume(
    consumer: &BaseConsumer,
    count: usize,
    quiet: Duration,
    limit: Duration,
) -> BTreeMap<i32, Vec<Vec<u8>>> {
    let mut records: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    let mut seen = 0;
    let start = Instant::now();
    let mut last = Instant::now();
    while seen < count && last.elapsed() < quiet && start.elapsed() < limit {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = message.payload().unwrap_or_default().to_vec();
                records.entry(message.partition()).or_default().push(value);
                seen += 1;
                last = Instant::now();
            }
            Some(Err(error)) => eprintln!("test consumer: {error}"),
            None => {}
        }
    }
    records
}

/// Framed numbered messages `range` with short payloads.
fn numbered(range: std::ops::Range<i64>) -> Vec<u8> {
    let mut stream = Vec::new();
    for n in range {
        stream.extend(frame(&numbered_message(n, &format!("message {n}"))));
    }
    stream
}

/// Sends framed numbered messages to a TcpInput in slices (each its own connection).
fn send_numbered(port: u16, range: std::ops::Range<i64>, slice: i64) {
    let mut first = range.start;
    while first < range.end {
        let last = (first + slice).min(range.end);
        send_tcp(port, &numbered(first..last));
        first = last;
    }
}

fn config(input_port: u16, output: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{input_port}\"\n\
         [Kafka]\ntype = \"KafkaOutput\"\nmessage_matcher = \"TRUE\"\n{output}"
    )
}

/// The sequence numbers of protobuf records, with how often each came.
fn sequences<'a>(values: impl Iterator<Item = &'a Vec<u8>>) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        let n = sequence_of(value).expect("a Heka message with seq");
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

/// Memory delivery: every message reaches the topic once, as the protobuf it arrived as,
/// spread over the topic's partitions; `sent_total` counts the brokers' acknowledgements.
#[test]
fn output_delivers_every_message_as_protobuf_over_all_partitions() {
    const COUNT: i64 = 20_000;
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"{}\"]\ntopic = \"numbers\"\npartitioner = \"RoundRobin\"\n",
        broker.address()
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    send_numbered(port, 0..COUNT, 5000);
    let consumer = consumer(&broker, "numbers");
    let records = consume(
        &consumer,
        COUNT as usize,
        Duration::from_secs(15),
        Duration::from_secs(60),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = sequences(records.values().flatten());
    assert_eq!(
        counts.len(),
        COUNT as usize,
        "{}\n{}",
        daemon.stderr(),
        broker.log()
    );
    assert!(counts.values().all(|&count| count == 1), "no duplicates");
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..COUNT).collect::<Vec<_>>()
    );
    // Round robin: every partition of the 4 holds a quarter.
    assert_eq!(records.len(), 4, "{:?}", records.keys());
    for values in records.values() {
        assert_eq!(values.len(), COUNT as usize / 4);
    }
    // Bytes out as they came in: the record's value is the message as sent.
    let seventh = records
        .values()
        .flatten()
        .find(|value| sequence_of(value) == Some(7));
    assert_eq!(
        payload_of(seventh.expect("message 7")).as_deref(),
        Some(&b"message 7"[..])
    );
    assert_eq!(daemon.counter("Kafka.sent_total"), COUNT as u64);
    assert_eq!(daemon.counter("Kafka.dropped_total"), 0);
}

/// A producer the tests use to write a topic directly.
pub fn producer(broker: &Broker) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("linger.ms", "5")
        .create()
        .expect("test producer")
}

/// Writes `values` to `topic` and waits for the broker's acknowledgements.
pub fn produce_all(producer: &BaseProducer, topic: &str, values: impl Iterator<Item = Vec<u8>>) {
    for value in values {
        let mut record = BaseRecord::<(), Vec<u8>>::to(topic).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}
