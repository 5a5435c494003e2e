//! KafkaOutput throughput against tansu on the same machine, and the broker's own limit
//! beside it.
//!
//! - **gyges**: a daemon with one ingest core (CPU 0) and the output core (CPU 1, where the
//!   producer and librdkafka's threads run) takes `COUNT` framed ~200-byte messages over one
//!   TCP connection and produces each to a 4-partition topic (ProtobufEncoder, memory
//!   delivery, `required_acks = WaitForLocal`). Timed from the first byte sent to the exit of
//!   the daemon after a stop that waits for every acknowledgement; the rate counts only
//!   acknowledged messages (`sent_total`). Once with the `Random` partitioner (sticky) and
//!   once with `RoundRobin` (a partition per record). The CPU time of the daemon's threads
//!   gives what one ingest core carries per CPU second, apart from the broker.
//! - **librdkafka alone**: the same count of 200-byte records produced by one librdkafka
//!   producer in this process (no gyges), flushed: what the broker and the client take
//!   without gyges in the path; with sticky partitions and with a partition per record.
//!
//! tansu, the bench process and gyges share the machine's cores: the figures are the
//! combination's, not gyges's alone. Median and spread (max - min) of 3 runs. Run with
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
        let broker = Broker { child, port };
        broker.warm_up();
        broker
    }

    /// Waits until the broker has created a topic and acknowledged a record in it. A broker
    /// that listens may not answer yet (a first start on a fresh machine), and a timed run
    /// stops gyges as soon as it has read its input, leaving the brokers only the drain
    /// timeout to acknowledge.
    fn warm_up(&self) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", self.port))
            .create()
            .expect("producer");
        producer
            .send(BaseRecord::<(), [u8]>::to("warm-up").payload(&b"warm-up"[..]))
            .map_err(|(error, _)| error)
            .expect("send the warm-up record");
        producer
            .flush(Duration::from_secs(60))
            .expect("tansu acknowledges a first record within 60 s");
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

/// One gyges run's figures.
struct GygesRun {
    /// Messages per second acknowledged by the broker.
    rate: f64,
    /// Messages acknowledged (`sent_total`).
    sent: u64,
    /// The last lines of the daemon's log, to explain a run that fell short.
    log_tail: String,
    /// CPU seconds of the ingest core's thread, of the output core's, and of librdkafka's.
    cpu: ThreadCpu,
}

/// CPU seconds (utime + stime) of a daemon's threads, in three groups.
#[derive(Clone, Copy, Default)]
struct ThreadCpu {
    ingest: f64,
    output: f64,
    client: f64,
}

impl ThreadCpu {
    /// Groups `threads` (name, seconds): the threads of `gyges-core0…` (glommio adds an id)
    /// ingest, those of `gyges-core1…` own the producer, librdkafka names its own `rdk:…`.
    fn of(threads: &[(String, f64)]) -> ThreadCpu {
        let mut cpu = ThreadCpu::default();
        for (name, seconds) in threads {
            if name.starts_with("gyges-core0") {
                cpu.ingest += seconds;
            } else if name.starts_with("gyges-core1") {
                cpu.output += seconds;
            } else if name.starts_with("rdk:") {
                cpu.client += seconds;
            }
        }
        cpu
    }
}

/// One gyges run with `partitioner`.
fn gyges_run(
    dir: &std::path::Path,
    broker: &Broker,
    bytes: &[u8],
    topic: &str,
    partitioner: &str,
) -> GygesRun {
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
             addrs = [\"127.0.0.1:{}\"]\ntopic = \"{topic}\"\npartitioner = \"{partitioner}\"\n",
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
    // The threads' CPU, sampled until the daemon exits.
    let pid = daemon.id();
    let sampler = std::thread::spawn(move || {
        let ticks = common::clock_ticks_per_second();
        let mut last = ThreadCpu::default();
        loop {
            let threads = common::thread_cpu_seconds(pid, ticks);
            if threads.is_empty() {
                return last;
            }
            // A thread that has exited drops out of the list: keep the largest reading.
            let now = ThreadCpu::of(&threads);
            last = ThreadCpu {
                ingest: last.ingest.max(now.ingest),
                output: last.output.max(now.output),
                client: last.client.max(now.client),
            };
            std::thread::sleep(Duration::from_millis(20));
        }
    });
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
    let cpu = sampler.join().expect("the sampler");
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
    let lines: Vec<&str> = text.lines().collect();
    let log_tail = lines[lines.len().saturating_sub(40)..].join("\n");
    GygesRun {
        rate: sent as f64 / elapsed,
        sent,
        cpu,
        log_tail,
    }
}

/// One run of librdkafka alone: records per second acknowledged.
fn librdkafka_run(broker: &Broker, count: usize, topic: &str, sticky: bool) -> f64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{}", broker.port))
        .set(
            "sticky.partitioning.linger.ms",
            if sticky { "2" } else { "0" },
        )
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

/// Reads one group's CPU seconds out of a [`ThreadCpu`].
type Pick = fn(&ThreadCpu) -> f64;

/// The target (issue 11): messages per second from one ingest core.
const TARGET_PER_INGEST_CORE: f64 = 1e6;

fn main() {
    let mode = Mode::detect();
    let count = mode.pick(1_000_000, 100_000, 2_000);
    let runs = mode.pick(3, 3, 1);
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = stream(count);
    let (mut sticky, mut round_robin) = (Vec::new(), Vec::new());
    let (mut client_sticky, mut client_spread) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (partitioner, runs) in [("Random", &mut sticky), ("RoundRobin", &mut round_robin)] {
            let topic = format!("gyges-{partitioner}-{run}");
            let outcome = gyges_run(dir.path(), &broker, &bytes, &topic, partitioner);
            assert_eq!(
                outcome.sent, count as u64,
                "every message acknowledged; the daemon's log ends:\n{}",
                outcome.log_tail
            );
            runs.push(outcome);
        }
        let topic = format!("direct-{run}");
        client_sticky.push(librdkafka_run(&broker, count, &topic, true));
        let topic = format!("spread-{run}");
        client_spread.push(librdkafka_run(&broker, count, &topic, false));
    }
    let mut section = Section::new("kafka", "KafkaOutput into tansu on the same machine", mode);
    section.line(format!(
        "{count} messages of {} bytes (protobuf) per run, {runs} runs, round by round; gyges \
         ingests on CPU 0, its producer and librdkafka's threads run on CPU 1; tansu 0.6.0 \
         (memory storage) and the bench share both CPUs. Load average at the end: {}.\n",
        message_bytes(),
        common::load_average()
    ));
    let mut table = Table::new(&["path", "median msg/s", "spread (max - min)"]);
    let rates = |runs: &[GygesRun]| runs.iter().map(|run| run.rate).collect::<Vec<_>>();
    let rows = [
        (
            "gyges TcpInput → KafkaOutput (`Random`, sticky) → tansu, acknowledged",
            rates(&sticky),
        ),
        (
            "the same with `RoundRobin` (a partition per record)",
            rates(&round_robin),
        ),
        (
            "librdkafka producer alone → tansu, sticky partitions (the broker's limit)",
            client_sticky,
        ),
        (
            "librdkafka producer alone, a random partition per record",
            client_spread,
        ),
    ];
    let mut broker_limit = 0.0;
    for (index, (path, values)) in rows.into_iter().enumerate() {
        let (median, spread) = median_spread(values);
        if index == 2 {
            broker_limit = median;
        }
        table.row(vec![
            path.into(),
            common::si(median, 3),
            common::si(spread, 3),
        ]);
    }
    section.table(&table);
    section.line(
        "\nWhere gyges's CPU goes (the `Random` runs; utime + stime per thread from \
         /proc/PID/task, sampled every 20 ms until the daemon exits; median of the runs):\n",
    );
    let mut cpu_table = Table::new(&["thread", "CPU µs per message", "messages per CPU second"]);
    let per_message = |pick: Pick| {
        let values = sticky
            .iter()
            .map(|run| pick(&run.cpu) / run.sent.max(1) as f64 * 1e6)
            .collect::<Vec<_>>();
        median_spread(values).0
    };
    let groups: [(&str, Pick); 3] = [
        (
            "ingest core (`gyges-core0`: read, split, route, encode)",
            |cpu| cpu.ingest,
        ),
        ("output core (`gyges-core1`: the producer's calls)", |cpu| {
            cpu.output
        }),
        ("librdkafka's threads (`rdk:*`, on CPU 1)", |cpu| cpu.client),
    ];
    let mut ingest_capacity = 0.0;
    let mut output_micros = 0.0;
    for (index, (name, pick)) in groups.into_iter().enumerate() {
        let micros = per_message(pick);
        let capacity = 1e6 / micros.max(1e-9);
        if index == 0 {
            ingest_capacity = capacity;
        } else {
            output_micros += micros;
        }
        cpu_table.row(vec![
            name.into(),
            format!("{micros:.3}"),
            common::si(capacity, 3),
        ]);
    }
    section.table(&cpu_table);
    let median_rate = median_spread(rates(&sticky)).0;
    section.line(format!(
        "\nTarget (issue 11): ≥ {} msg/s from one ingest core. The ingest core carries {} msg \
         per CPU second of its own → {}; the output core (the producer's calls and librdkafka's \
         threads together) carries {} per CPU second. End to end, gyges reached {} msg/s, \
         {:.0} % of what librdkafka alone gets through this broker ({} msg/s): on this machine \
         the broker, sharing the two CPUs with gyges, sets the end-to-end rate.",
        common::si(TARGET_PER_INGEST_CORE, 3),
        common::si(ingest_capacity, 3),
        if ingest_capacity >= TARGET_PER_INGEST_CORE {
            "**met**"
        } else {
            "**missed**"
        },
        common::si(1e6 / f64::max(output_micros, 1e-9), 3),
        common::si(median_rate, 3),
        median_rate / broker_limit.max(1e-9) * 100.0,
        common::si(broker_limit, 3),
    ));
    section.publish();
}
