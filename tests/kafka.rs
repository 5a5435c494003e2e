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
    /// The port the broker tells clients to connect to (its own, unless a proxy fronts it).
    advertised: u16,
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
        Broker::start_advertising(port, port)
    }

    /// Starts tansu on `port`, telling clients (in its metadata) to connect to `advertised`.
    pub fn start_advertising(port: u16, advertised: u16) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut broker = Broker {
            child: None,
            port,
            advertised,
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
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
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

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker: a broker that is slow, not gone.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("running");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
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

fn config(input_port: u16, output: &str) -> String {
    config_with(input_port, output, "")
}

/// [`config`] with more `[gyges]` keys.
fn config_with(input_port: u16, output: &str, global: &str) -> String {
    format!(
        "[gyges]\nstats_interval = 0\n{global}\
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
    send_numbered_slices(port, 0..COUNT, 5000);
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

/// Writes `values` to `partition` of `topic` and waits for the broker's acknowledgements.
pub fn produce_all(
    producer: &BaseProducer,
    (topic, partition): (&str, i32),
    values: impl Iterator<Item = Vec<u8>>,
) {
    for value in values {
        let mut record = BaseRecord::<(), Vec<u8>>::to(topic)
            .payload(&value)
            .partition(partition);
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

/// The CPUs each of `pid`'s threads named `rdk:*` (librdkafka's) may run on.
fn librdkafka_threads(pid: u32) -> Vec<(String, String)> {
    thread_cpus(pid)
        .into_iter()
        .filter(|(name, _)| name.starts_with("rdk:"))
        .collect()
}

/// Frames of `path` (a FileOutput with framing), their sequence numbers counted.
fn file_sequences(path: &std::path::Path) -> BTreeMap<i64, usize> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for message in read_frames(&bytes) {
        let n = sequence_of(message).expect("a Heka message with seq");
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

/// The consuming daemon: KafkaInput (all partitions, through a group) into a framed file.
fn consuming_config(broker: &Broker, profile: &std::path::Path, topic: &str) -> String {
    format!(
        "[gyges]\nstats_interval = 0\ntuning = \"{}\"\n\
         [KafkaIn]\ntype = \"KafkaInput\"\naddrs = [\"{}\"]\ntopic = \"{topic}\"\n\
         group = \"roundtrip\"\ndecoder = \"ProtobufDecoder\"\nrebalance_timeout = 3000\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         use_framing = true\n",
        profile.display(),
        broker.address()
    )
}

/// gyges → Kafka → gyges with 1 M numbered messages: every number arrives, once, as the
/// protobuf it left as. The consuming daemon ingests on CPU 0 only, and its librdkafka
/// threads (as the producing daemon's) run on the output core, never on an ingest core.
#[test]
fn round_trip_of_a_million_messages_loses_nothing() {
    const COUNT: i64 = 1_000_000;
    let broker = Broker::start();
    let producing = tempfile::tempdir().expect("temp dir");
    let consuming = tempfile::tempdir().expect("temp dir");
    let profile = split_profile(consuming.path());
    let port = free_port();
    let output = format!(
        "addrs = [\"{}\"]\ntopic = \"roundtrip\"\n",
        broker.address()
    );
    let tuning = format!("tuning = \"{}\"\n", profile.display());
    let mut sender = Daemon::start(
        producing.path(),
        &config_with(port, &output, &tuning),
        &[port],
    );
    let mut receiver = Daemon::start(
        consuming.path(),
        &consuming_config(&broker, &profile, "roundtrip"),
        &[],
    );
    let stream = numbered_frames("message", 0..COUNT);
    let sent_bytes = stream.len() as u64;
    send_tcp(port, &stream);
    let out = consuming.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(120),
        "every message in the consumer's file",
        || std::fs::metadata(&out).map(|meta| meta.len()).unwrap_or(0) >= sent_bytes,
        || format!("{}\n{}", sender.stderr(), receiver.stderr()),
    );
    for daemon in [&sender, &receiver] {
        let pid = daemon.child.as_ref().expect("running").id();
        let threads = librdkafka_threads(pid);
        assert!(!threads.is_empty(), "librdkafka threads are named rdk:*");
        for (name, cpus) in &threads {
            assert_eq!(cpus, "1", "{name} runs on the output core only");
        }
    }
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let counts = file_sequences(&out);
    assert_eq!(counts.len(), COUNT as usize, "{}", receiver.stderr());
    assert_eq!(counts.keys().next_back(), Some(&(COUNT - 1)));
    assert!(counts.values().all(|&count| count == 1), "no duplicates");
    // Bytes in, bytes out: the file holds the frames as they were sent.
    assert_eq!(std::fs::metadata(&out).expect("file").len(), sent_bytes);
    // Every acknowledgement is reported before the stop ends (a regression once left a
    // backlog of unserved delivery reports uncounted).
    assert_eq!(sender.counter("Kafka.sent_total"), COUNT as u64);
    assert_eq!(receiver.counter("KafkaIn.records_total"), COUNT as u64);
}

/// Reads `topic` until every number of `0..count` has come (or `limit` passes); returns how
/// often each came.
fn consume_numbers(
    broker: &Broker,
    topic: &str,
    count: i64,
    limit: Duration,
) -> BTreeMap<i64, usize> {
    let consumer = consumer(broker, topic);
    let mut counts = BTreeMap::new();
    let start = Instant::now();
    while (counts.len() as i64) < count && start.elapsed() < limit {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let n = sequence_of(message.payload().unwrap_or_default()).expect("seq");
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

/// An unreachable broker at startup is a warning, not a failure: memory delivery holds the
/// messages (a small `back_pressure_threshold_bytes` makes ingest wait behind them: the
/// sender cannot finish) and delivers every one, once, when the broker comes up.
#[test]
fn memory_delivery_waits_for_a_broker_that_is_down_at_startup() {
    const COUNT: i64 = 40_000;
    let broker_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"127.0.0.1:{broker_port}\"]\ntopic = \"waiting\"\n\
         back_pressure_threshold_bytes = 1048576\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    // 1 KiB messages: 40 MB, more than the producer, the rings and the sockets hold.
    let stream: Vec<u8> = (0..COUNT)
        .flat_map(|n| frame(&numbered_message(n, &format!("{n:01024}"))))
        .collect();
    let sending = std::thread::spawn(move || send_tcp(port, &stream));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !sending.is_finished(),
        "ingest waits while the broker is down"
    );
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("WARN") && stderr.contains(&broker_port.to_string()),
        "the unreachable broker is a warning naming it:\n{stderr}"
    );
    let broker = Broker::start_on(broker_port);
    sending.join().expect("sender");
    let counts = consume_numbers(&broker, "waiting", COUNT, Duration::from_secs(60));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(counts.len(), COUNT as usize, "{}", daemon.stderr());
    assert!(counts.values().all(|&count| count == 1), "no duplicates");
    assert_eq!(daemon.counter("Kafka.sent_total"), COUNT as u64);
    assert_eq!(daemon.counter("Kafka.dropped_total"), 0);
}

/// Best effort never makes ingest wait: with the broker down, what the producer cannot hold
/// is dropped and counted, and what it held is counted as dropped when it expires or at stop.
/// Every message is accounted for: sent plus dropped is what came in.
#[test]
fn best_effort_drops_and_counts_while_the_broker_is_down() {
    const COUNT: i64 = 50_000;
    let broker_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"127.0.0.1:{broker_port}\"]\ntopic = \"dropping\"\n\
         delivery = \"best_effort\"\nback_pressure_threshold_bytes = 1024\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    let started = Instant::now();
    send_numbered_slices(port, 0..COUNT, COUNT);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ingest did not wait"
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let (sent, dropped) = (
        daemon.counter("Kafka.sent_total"),
        daemon.counter("Kafka.dropped_total"),
    );
    assert_eq!(daemon.counter("In.records_total"), COUNT as u64);
    assert_eq!(sent, 0, "nothing can be sent to a broker that is down");
    assert_eq!(sent + dropped, COUNT as u64, "{}", daemon.stderr());
}

/// Durable delivery through a broker restart, nothing lost.
///
/// tansu keeps its log in memory: a restart empties it. A message the broker acknowledged
/// before the kill is committed out of gyges's disk queue and gone from the broker too, so
/// no sender could deliver it again; only a consumer that read it before the kill has it.
/// The test therefore reads everything phase 1 sent before the kill, keeps sending while the
/// broker is down (phase 2: the daemon keeps ingesting, its disk queue holds the messages, and
/// those librdkafka held when the broker went away stay unacknowledged, so uncommitted), then
/// restarts the broker, creates the topic again (a broker with real storage would still have
/// it, and librdkafka does not produce to a topic the broker says does not exist) and sends
/// phase 3. The union of what was read before the kill and what the new log holds must cover
/// every number; duplicates (a message sent again after an acknowledgement the kill cut off)
/// are allowed and counted.
#[test]
fn durable_delivery_survives_a_broker_restart_mid_stream() {
    const PHASE: i64 = 20_000;
    let mut broker = Broker::start();
    let producing = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"{}\"]\ntopic = \"restart\"\ndelivery = \"durable\"\n",
        broker.address()
    );
    let mut sender = Daemon::start(producing.path(), &config(port, &output), &[port]);
    send_numbered_slices(port, 0..PHASE, 1000);
    let before = consume_numbers(&broker, "restart", PHASE, Duration::from_secs(60));
    assert_eq!(before.len() as i64, PHASE, "{}", sender.stderr());
    broker.kill();
    let started = Instant::now();
    send_numbered_slices(port, PHASE..2 * PHASE, 1000);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "durable ingest does not wait for the broker"
    );
    std::thread::sleep(Duration::from_secs(1));
    broker.restart();
    create_topic(&broker, "restart");
    send_numbered_slices(port, 2 * PHASE..3 * PHASE, 1000);
    let after = consume_numbers(&broker, "restart", 2 * PHASE, Duration::from_secs(90));
    assert!(sender.stop().success(), "{}", sender.stderr());
    let mut counts = before;
    for (n, count) in after {
        *counts.entry(n).or_insert(0) += count;
    }
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..3 * PHASE).collect::<Vec<_>>(),
        "{}",
        sender.stderr()
    );
    let duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!("duplicates after the restart: {duplicates}");
    assert_eq!(
        sender.counter("Kafka.dropped_total"),
        0,
        "{}",
        sender.stderr()
    );
    assert!(sender.counter("Kafka.sent_total") >= 3 * PHASE as u64);
}

/// Creates `topic` with [`PARTITIONS`] partitions.
fn create_topic(broker: &Broker, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let created = futures_lite::future::block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("create topics");
    for result in created {
        result.expect("topic created");
    }
}

/// KafkaInput on one assigned partition (Heka's way), text records without a decoder: each
/// record is one message whose Payload it is. Offsets are committed to the group: a restart
/// with `offset_method = "Manual"` goes on after the last record it routed, so the file gets
/// every record exactly once across the two runs; records on other partitions are not read.
#[test]
fn input_resumes_an_assigned_partition_from_the_committed_offset() {
    const HALF: usize = 1000;
    let broker = Broker::start();
    create_topic(&broker, "text");
    let producer = producer(&broker);
    let lines = |range: std::ops::Range<usize>| range.map(|n| format!("line {n}").into_bytes());
    produce_all(&producer, ("text", 0), lines(0..HALF));
    produce_all(&producer, ("text", 1), lines(50_000..50_010));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[gyges]\nstats_interval = 0\n\
         [KafkaIn]\ntype = \"KafkaInput\"\naddrs = [\"{}\"]\ntopic = \"text\"\n\
         partition = 0\ngroup = \"resume\"\noffset_method = \"Manual\"\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"Logger == 'KafkaIn'\"\n\
         path = \"out.txt\"\nencoder = \"PayloadEncoder\"\n",
        broker.address()
    );
    let out = dir.path().join("out.txt");
    let line_count = || {
        std::fs::read_to_string(&out)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    wait_for_or_explain(
        Duration::from_secs(30),
        "the first half",
        || line_count() == HALF,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    produce_all(&producer, ("text", 0), lines(HALF..2 * HALF));
    daemon.restart(&[]);
    wait_for_or_explain(
        Duration::from_secs(30),
        "the second half",
        || line_count() >= 2 * HALF,
        || daemon.stderr(),
    );
    // A little longer: a replay of the first half would arrive now.
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let text = std::fs::read_to_string(&out).expect("output");
    let expected: Vec<String> = (0..2 * HALF).map(|n| format!("line {n}")).collect();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        expected,
        "in order, once each"
    );
}

/// A broker that stops answering for a while (frozen mid-stream) is only slow: memory
/// delivery holds and waits, then delivers every message once, and drops nothing.
#[test]
fn memory_delivery_rides_out_a_frozen_broker() {
    const COUNT: i64 = 30_000;
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!("addrs = [\"{}\"]\ntopic = \"slow\"\n", broker.address());
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    send_numbered_slices(port, 0..COUNT / 3, 1000);
    broker.freeze(true);
    send_numbered_slices(port, COUNT / 3..2 * COUNT / 3, 1000);
    std::thread::sleep(Duration::from_secs(2));
    broker.freeze(false);
    send_numbered_slices(port, 2 * COUNT / 3..COUNT, 1000);
    let counts = consume_numbers(&broker, "slow", COUNT, Duration::from_secs(60));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(counts.len(), COUNT as usize, "{}", daemon.stderr());
    assert_eq!(daemon.counter("Kafka.dropped_total"), 0);
    assert_eq!(daemon.counter("Kafka.sent_total"), COUNT as u64);
}

/// A TLS front for tansu, whose own TLS options do not work in the version the tests use:
/// Debian's `socat` (installed by scripts/setup.sh) terminates TLS with the test CA's server
/// certificate on one loopback port and passes each connection's plaintext to the broker.
/// librdkafka (OpenSSL) does the client side. Killed when dropped.
struct TlsFront {
    port: u16,
    child: Child,
}

impl TlsFront {
    fn start(port: u16, broker_port: u16, pki: &std::path::Path) -> TlsFront {
        let listen = format!(
            "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
            pki.join("server.pem").display(),
            pki.join("server.key").display()
        );
        let child = Command::new("socat")
            .args([listen, format!("tcp:127.0.0.1:{broker_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/setup.sh installs it)");
        wait_for(Duration::from_secs(10), "socat to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        TlsFront { port, child }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// KafkaOutput and KafkaInput with `use_tls`: librdkafka verifies the broker's certificate
/// against `tls.root_cafile` and carries every record both ways; with a CA that did not sign
/// the broker's certificate nothing is acknowledged and the failure is logged.
#[test]
fn tls_both_ways_verifies_the_broker_and_loses_nothing() {
    const COUNT: i64 = 5_000;
    let pki = tempfile::tempdir().expect("temp dir");
    crate::bench_common::pki::make_pki(pki.path(), &["server"]);
    let (broker_port, front_port) = (free_port(), free_port());
    let broker = Broker::start_advertising(broker_port, front_port);
    let front = TlsFront::start(front_port, broker.port, pki.path());
    let tls = |section: &str, ca: &std::path::Path| {
        format!(
            "use_tls = true\n[{section}.tls]\nroot_cafile = \"{}\"\n",
            ca.display()
        )
    };
    let ca = pki.path().join("ca.pem");
    let producing = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"{}\"]\ntopic = \"secret\"\n{}",
        front.address(),
        tls("Kafka", &ca)
    );
    let mut sender = Daemon::start(producing.path(), &config(port, &output), &[port]);
    let consuming = tempfile::tempdir().expect("temp dir");
    let input = format!(
        "[gyges]\nstats_interval = 0\n\
         [KafkaIn]\ntype = \"KafkaInput\"\naddrs = [\"{}\"]\ntopic = \"secret\"\n\
         group = \"tls\"\ndecoder = \"ProtobufDecoder\"\nrebalance_timeout = 3000\n{}\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         use_framing = true\n",
        front.address(),
        tls("KafkaIn", &ca)
    );
    let mut receiver = Daemon::start(consuming.path(), &input, &[]);
    send_numbered_slices(port, 0..COUNT, 1000);
    let out = consuming.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(90),
        "every message through TLS",
        || file_sequences(&out).len() >= COUNT as usize,
        || {
            format!(
                "{}\n{}\n{}",
                sender.stderr(),
                receiver.stderr(),
                broker.log()
            )
        },
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let counts = file_sequences(&out);
    assert_eq!(counts.len(), COUNT as usize);
    assert!(counts.values().all(|&count| count == 1), "no duplicates");
    assert_eq!(sender.counter("Kafka.sent_total"), COUNT as u64);

    // A CA that did not sign the broker's certificate: every handshake fails, and nothing
    // is acknowledged.
    let other = tempfile::tempdir().expect("temp dir");
    crate::bench_common::pki::make_pki(other.path(), &["server"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "addrs = [\"{}\"]\ntopic = \"untrusted\"\ndelivery = \"best_effort\"\n{}",
        front.address(),
        tls("Kafka", &other.path().join("ca.pem"))
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, &output), &[port]);
    send_numbered_slices(port, 0..10, 10);
    wait_for_or_explain(
        Duration::from_secs(20),
        "a refused certificate",
        || daemon.stderr().contains("certificate verify failed"),
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Kafka.sent_total"), 0);
}

/// A KafkaInput in a group keeps reading through a broker that freezes (SIGSTOP) for longer
/// than the session timeout: it rejoins the group and every record arrives. Records the group
/// had not committed before the freeze may come twice (at least once); they are counted.
#[test]
fn group_input_rides_out_a_frozen_broker() {
    const COUNT: usize = 30_000;
    let broker = Broker::start();
    create_topic(&broker, "frozen");
    let producer = producer(&broker);
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = split_profile(dir.path());
    let mut daemon = Daemon::start(
        dir.path(),
        &consuming_config(&broker, &profile, "frozen"),
        &[],
    );
    let numbered =
        |range: std::ops::Range<usize>| range.map(|n| numbered_message(n as i64, "frozen"));
    let out = dir.path().join("out.log");
    let arrived = || file_sequences(&out).len();
    for partition in 0..PARTITIONS {
        let part = partition as usize;
        produce_all(
            &producer,
            ("frozen", partition),
            numbered(part * COUNT / 12..(part + 1) * COUNT / 12),
        );
    }
    wait_for_or_explain(
        Duration::from_secs(60),
        "the first third before the freeze",
        || arrived() >= COUNT / 3,
        || daemon.stderr(),
    );
    broker.freeze(true);
    std::thread::sleep(Duration::from_secs(5));
    broker.freeze(false);
    for partition in 0..PARTITIONS {
        let part = partition as usize;
        produce_all(
            &producer,
            ("frozen", partition),
            numbered(COUNT / 3 + part * COUNT / 6..COUNT / 3 + (part + 1) * COUNT / 6),
        );
    }
    wait_for_or_explain(
        Duration::from_secs(90),
        "every record after the thaw",
        || arrived() >= COUNT,
        || format!("{} of {COUNT}\n{}", arrived(), daemon.stderr()),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = file_sequences(&out);
    assert_eq!(counts.len(), COUNT);
    assert_eq!(counts.keys().next_back(), Some(&(COUNT as i64 - 1)));
    let duplicates: usize = counts.values().map(|&count| count - 1).sum();
    println!("group through a frozen broker: {COUNT} records, {duplicates} duplicates");
}
