//! AMQPOutput and AMQPInput against a real RabbitMQ (Debian's `rabbitmq-server`, installed by
//! scripts/setup.sh and never run as a service). One broker serves this module: it starts once
//! (it takes seconds) on free loopback ports with its own node name, epmd, data and log
//! directories under a temp dir, and each test uses exchanges and queues of its own. A missing
//! rabbitmq-server fails the tests, it never skips.
//!
//! The broker runs under a small shell that is its process group's leader and reads this test
//! process's pipe: when the tests end (or crash) the pipe closes and the shell kills the whole
//! group (epmd, the Erlang VM and its helpers).
//!
//! A broker that is down is a [`Gate`] in front of the real one: a loopback port that refuses
//! connections while closed and forwards them to the broker while open.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};

use crate::bench_common::pki::make_pki;
use crate::util::*;

/// The server script Debian installs (the one in /usr/sbin switches to the rabbitmq user).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A RabbitMQ node on loopback, killed with its process group when dropped (or when this
/// process ends).
pub struct Broker {
    child: Child,
    /// Closed to make the leader kill the group.
    leash: Option<ChildStdin>,
    pub port: u16,
    /// The AMQPS listener: a certificate for 127.0.0.1 and localhost from the test CA
    /// (`ca.pem` in the broker's directory).
    pub tls_port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a node on free ports and waits until it serves.
    pub fn start() -> Broker {
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} is missing: run scripts/setup.sh (it installs rabbitmq-server)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let (dist, epmd) = (free_port(), free_port());
        let node = format!("gyges-test-{port}@localhost");
        let plugins = dir.path().join("enabled_plugins");
        std::fs::write(&plugins, "[].\n").expect("plugins file");
        let home = dir.path().display().to_string();
        let tls_port = free_port();
        make_pki(dir.path(), &["server"]);
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.ssl.default = {tls_port}\n\
                 ssl_options.cacertfile = {home}/ca.pem\n\
                 ssl_options.certfile = {home}/server.pem\n\
                 ssl_options.keyfile = {home}/server.key\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n"
            ),
        )
        .expect("rabbitmq.conf");
        let leader = "epmd -port \"$ERL_EPMD_PORT\" & \"$1\" & read _ignored; kill -9 0";
        let child = Command::new("sh")
            .args(["-c", leader, "broker", SERVER])
            .env("HOME", &home)
            .current_dir(dir.path())
            .env("ERL_CRASH_DUMP", format!("{home}/erl_crash.dump"))
            .env("ERL_EPMD_PORT", epmd.to_string())
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", format!("{home}/mnesia"))
            .env("RABBITMQ_LOG_BASE", format!("{home}/log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_CONFIG_FILE", format!("{home}/rabbitmq"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                format!("{home}/advanced.config"),
            )
            .env(
                "RABBITMQ_CONF_ENV_FILE",
                format!("{home}/rabbitmq-env.conf"),
            )
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(dir.path().join("server.out")).expect("log"))
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server");
        let mut broker = Broker {
            leash: None,
            child,
            port,
            tls_port,
            dir,
        };
        broker.leash = broker.child.stdin.take();
        // The node opens its AMQP listener last, once it serves.
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rabbitmq did not start: {}",
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        broker
    }

    /// The URL of its default vhost, as guest (allowed from loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The AMQPS URL of its default vhost, as guest.
    pub fn tls_url(&self) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}/%2f", self.tls_port)
    }

    /// The test CA that signed the broker's certificate.
    pub fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// What the node printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut leash) = self.leash.take() {
            let _ = leash.write_all(b"stop\n");
        }
        let _ = self.child.wait();
    }
}

/// The module's broker, started by the first test that asks.
fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(Broker::start)
}

/// A loopback port in front of the broker: refuses connections while closed, forwards them
/// while open; closing it also cuts the connections it forwards.
pub struct Gate {
    pub port: u16,
    target: u16,
    open: Arc<Mutex<Option<Vec<TcpStream>>>>,
}

impl Gate {
    /// A closed gate toward `target`.
    pub fn closed(target: u16) -> Gate {
        Gate {
            port: free_port(),
            target,
            open: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts listening and forwarding.
    pub fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("gate port");
        listener.set_nonblocking(true).expect("nonblocking");
        *self.open.lock().expect("gate") = Some(Vec::new());
        let (open, target) = (self.open.clone(), self.target);
        std::thread::spawn(move || loop {
            if open.lock().expect("gate").is_none() {
                return;
            }
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            client.set_nonblocking(false).expect("blocking");
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let mut guard = open.lock().expect("gate");
            let Some(streams) = guard.as_mut() else {
                return;
            };
            for (from, to) in [(&client, &server), (&server, &client)] {
                let (mut from, mut to) = (
                    from.try_clone().expect("clone"),
                    to.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
            streams.push(client);
            streams.push(server);
        });
    }

    /// Stops listening and cuts every forwarded connection.
    pub fn close(&self) {
        if let Some(streams) = self.open.lock().expect("gate").take() {
            for stream in streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // The accept loop sees the gate closed within its poll and drops the listener.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// The URL through the gate.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
    }
}

/// A test-side client on the broker.
fn client(broker: &Broker) -> (Connection, lapin::Channel) {
    block_on(async {
        let connection = Connection::connect(&broker.url(), ConnectionProperties::default())
            .await
            .expect("test connection");
        let channel = connection.create_channel().await.expect("test channel");
        (connection, channel)
    })
}

/// Declares `exchange` as gyges declares it by default (direct, transient, auto-delete) and
/// a queue bound to it with `key`.
fn bound_queue(channel: &lapin::Channel, exchange: &str, queue: &str, key: &str) {
    block_on(async {
        let options = ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange,
                ExchangeKind::Direct,
                options,
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        channel
            .queue_declare(queue, QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("queue");
        channel
            .queue_bind(
                queue,
                exchange,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    });
}

/// Takes messages from `queue` until `count` have come or `quiet` passes without one;
/// returns their bodies and content types.
fn consume(
    channel: &lapin::Channel,
    queue: &str,
    count: usize,
    quiet: Duration,
) -> Vec<(Vec<u8>, Option<String>)> {
    let mut bodies = Vec::new();
    let mut last = Instant::now();
    while bodies.len() < count && last.elapsed() < quiet {
        let options = BasicGetOptions { no_ack: true };
        let got = block_on(channel.basic_get(queue, options)).expect("basic.get");
        let Some(message) = got else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        last = Instant::now();
        let delivery = message.delivery;
        let content_type = delivery
            .properties
            .content_type()
            .as_ref()
            .map(|text| text.to_string());
        bodies.push((delivery.data, content_type));
    }
    bodies
}

/// A TcpInput on `port` into an AMQPOutput named `Amqp` with `output` keys.
fn output_config(port: u16, output: &str) -> String {
    format!(
        "[gyges]\nstats_interval = 0\n\
         [In]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Amqp]\ntype = \"AMQPOutput\"\nmessage_matcher = \"TRUE\"\n\
         exchange_type = \"direct\"\n{output}"
    )
}

/// The sequence numbers of protobuf bodies, with how often each came.
fn sequences<'a>(bodies: impl Iterator<Item = &'a [u8]>) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for body in bodies {
        let n = sequence_of(body).expect("a Heka message with seq");
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

fn assert_each_once(counts: &BTreeMap<i64, usize>, count: i64, explain: &dyn Fn() -> String) {
    assert_eq!(counts.len(), count as usize, "{}", explain());
    assert!(counts.values().all(|&seen| seen == 1), "no duplicates");
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..count).collect::<Vec<_>>()
    );
}

/// Memory delivery: every message reaches the bound queue once, as the protobuf it arrived
/// as, with the default content type; `sent_total` counts the broker's confirms.
#[test]
fn output_publishes_every_message_confirmed() {
    const COUNT: i64 = 20_000;
    let broker = broker();
    let (_connection, channel) = client(broker);
    bound_queue(&channel, "out-memory", "out-memory-q", "logs");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"out-memory\"\nrouting_key = \"logs\"\n",
        broker.url()
    );
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    send_numbered_slices(port, 0..COUNT, 5000);
    let bodies = consume(
        &channel,
        "out-memory-q",
        COUNT as usize,
        Duration::from_secs(15),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = sequences(bodies.iter().map(|(body, _)| body.as_slice()));
    assert_each_once(&counts, COUNT, &|| daemon.stderr());
    // Both cores publish, so the queue's order is not the numbers' order.
    let seventh = bodies
        .iter()
        .find(|(body, _)| sequence_of(body) == Some(7))
        .expect("message 7");
    assert_eq!(
        payload_of(&seventh.0).as_deref(),
        Some(&b"message 7"[..]),
        "the body is the message's protobuf, bytes for bytes"
    );
    assert!(bodies
        .iter()
        .all(|(_, content_type)| content_type.as_deref() == Some("application/hekad")));
    assert_eq!(daemon.counter("Amqp.sent_total"), COUNT as u64);
    assert_eq!(daemon.counter("Amqp.dropped_total"), 0);
}

/// A broker that is down when gyges starts is a warning, not a failure: memory delivery waits
/// (retrying the connection) and delivers everything once the broker is there.
#[test]
fn output_waits_for_a_broker_down_at_startup() {
    const COUNT: i64 = 2_000;
    let broker = broker();
    let (_connection, channel) = client(broker);
    bound_queue(&channel, "out-late", "out-late-q", "");
    let gate = Gate::closed(broker.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!("url = \"{}\"\nexchange = \"out-late\"\n", gate.url());
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    send_numbered_slices(port, 0..COUNT, 1000);
    wait_for(Duration::from_secs(10), "the warning", || {
        daemon.stderr().contains("cannot be reached")
    });
    assert_eq!(daemon.counter("Amqp.sent_total"), 0);
    gate.open();
    let bodies = consume(
        &channel,
        "out-late-q",
        COUNT as usize,
        Duration::from_secs(15),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = sequences(bodies.iter().map(|(body, _)| body.as_slice()));
    assert_each_once(&counts, COUNT, &|| daemon.stderr());
    assert_eq!(daemon.counter("Amqp.dropped_total"), 0);
}

/// best_effort: while the broker is down each message is dropped and counted, and the
/// daemon carries on; once it is back, messages flow again.
#[test]
fn best_effort_output_drops_and_counts_while_the_broker_is_down() {
    const COUNT: i64 = 1_000;
    let broker = broker();
    let (_connection, channel) = client(broker);
    bound_queue(&channel, "out-best", "out-best-q", "");
    let gate = Gate::closed(broker.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"out-best\"\ndelivery = \"best_effort\"\n",
        gate.url()
    );
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    wait_for(Duration::from_secs(10), "the warning", || {
        daemon.stderr().contains("cannot be reached")
    });
    send_numbered_slices(port, 0..COUNT, 500);
    // Counters are only reported at stop: give the daemon ample time to route (and drop)
    // what it read while the broker is still down.
    std::thread::sleep(Duration::from_secs(2));
    gate.open();
    wait_for(Duration::from_secs(10), "a connection", || {
        daemon.stderr().contains("amqp: connected")
    });
    send_numbered_slices(port, COUNT..2 * COUNT, 500);
    let bodies = consume(
        &channel,
        "out-best-q",
        COUNT as usize,
        Duration::from_secs(15),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = sequences(bodies.iter().map(|(body, _)| body.as_slice()));
    assert_eq!(counts.len(), COUNT as usize, "{}", daemon.stderr());
    assert_eq!(
        counts.keys().next(),
        Some(&COUNT),
        "the first ones were dropped"
    );
    assert_eq!(daemon.counter("Amqp.dropped_total"), COUNT as u64);
    assert_eq!(daemon.counter("Amqp.sent_total"), COUNT as u64);
}

/// An AMQPInput named `AmqpIn` with `input` keys into a framed FileOutput `out.log`.
fn input_config(input: &str) -> String {
    format!(
        "[gyges]\nstats_interval = 0\n\
         [AmqpIn]\ntype = \"AMQPInput\"\nexchange_type = \"direct\"\n\
         decoder = \"ProtobufDecoder\"\n{input}\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         use_framing = true\n"
    )
}

/// The frames of a framed FileOutput file, their sequence numbers counted.
fn file_sequences(path: &Path) -> BTreeMap<i64, usize> {
    let bytes = std::fs::read(path).unwrap_or_default();
    sequences(read_frames(&bytes).into_iter())
}

/// gyges → RabbitMQ → gyges with 100 k numbered messages: every number arrives once, as the
/// protobuf it left as; the sender counts the broker's confirms, the receiver its deliveries.
/// Both daemons ingest on CPU 0 only, and lapin's threads (I/O loop, reactor, executor) run on
/// the output core, never on an ingest core.
#[test]
fn round_trip_through_rabbitmq_loses_nothing() {
    const COUNT: i64 = 100_000;
    let broker = broker();
    let receiving = tempfile::tempdir().expect("temp dir");
    let input = format!(
        "url = \"{}\"\nexchange = \"rt\"\nrouting_key = \"numbers\"\nqueue = \"rt-q\"\n\
         prefetch_count = 2000\n",
        broker.url()
    );
    let profile = split_profile(receiving.path());
    let tuning = format!("tuning = \"{}\"\n", profile.display());
    let config = input_config(&input).replace("[gyges]\n", &format!("[gyges]\n{tuning}"));
    let mut receiver = Daemon::start(receiving.path(), &config, &[]);
    wait_for(Duration::from_secs(20), "the receiver's queue", || {
        receiver.stderr().contains("amqp: connected")
    });
    let sending = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"rt\"\nrouting_key = \"numbers\"\n",
        broker.url()
    );
    let config = output_config(port, &output).replace("[gyges]\n", &format!("[gyges]\n{tuning}"));
    let mut sender = Daemon::start(sending.path(), &config, &[port]);
    send_numbered_slices(port, 0..COUNT, 10_000);
    let out = receiving.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(90),
        "every message at the receiver",
        || file_sequences(&out).len() >= COUNT as usize,
        || format!("{}\n{}", sender.stderr(), receiver.stderr()),
    );
    for daemon in [&sender, &receiver] {
        let threads = thread_cpus(daemon.child.as_ref().expect("running").id());
        let client: Vec<_> = threads
            .iter()
            .filter(|(name, _)| {
                ["lapin-io-loop", "async-io", "async-global-ex", "blocking-"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            })
            .collect();
        assert!(
            client.iter().any(|(name, _)| name == "lapin-io-loop"),
            "{threads:?}"
        );
        for (name, cpus) in &client {
            assert_eq!(
                cpus, "1",
                "{name} runs on the output core only: {threads:?}"
            );
        }
    }
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let counts = file_sequences(&out);
    assert_each_once(&counts, COUNT, &|| receiver.stderr());
    let bytes = std::fs::read(&out).expect("out");
    let frames = read_frames(&bytes);
    let seventh = frames.iter().find(|frame| sequence_of(frame) == Some(7));
    assert_eq!(
        payload_of(seventh.expect("message 7")).as_deref(),
        Some(&b"message 7"[..])
    );
    assert_eq!(sender.counter("Amqp.sent_total"), COUNT as u64);
    assert_eq!(sender.counter("Amqp.dropped_total"), 0);
    assert_eq!(receiver.counter("AmqpIn.records_total"), COUNT as u64);
}

/// Durable delivery: what is read while the broker cannot be reached stays in the disk queue,
/// across a stop of the daemon, and goes once the broker is there; a connection cut mid-stream
/// sends again from the last commit. Every number arrives (duplicates are allowed and
/// counted), nothing is dropped.
#[test]
fn durable_output_delivers_after_the_broker_comes_back_and_after_a_cut() {
    const PHASE: i64 = 5_000;
    let broker = broker();
    let (_connection, channel) = client(broker);
    bound_queue(&channel, "out-durable", "out-durable-q", "");
    let gate = Gate::closed(broker.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"out-durable\"\ndelivery = \"durable\"\n",
        gate.url()
    );
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    let started = Instant::now();
    send_numbered_slices(port, 0..PHASE, 1000);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "durable ingest does not wait for the broker"
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Amqp.sent_total"), 0);
    gate.open();
    daemon.restart(&[port]);
    send_numbered_slices(port, PHASE..2 * PHASE, 1000);
    gate.close();
    std::thread::sleep(Duration::from_secs(1));
    gate.open();
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts.len() < 2 * PHASE as usize && Instant::now() < deadline {
        let bodies = consume(&channel, "out-durable-q", 1000, Duration::from_secs(1));
        for (n, seen) in sequences(bodies.iter().map(|(body, _)| body.as_slice())) {
            *counts.entry(n).or_insert(0) += seen;
        }
    }
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..2 * PHASE).collect::<Vec<_>>(),
        "{}",
        daemon.stderr()
    );
    let duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!("duplicates after the cut: {duplicates}");
    assert_eq!(
        daemon.counter("Amqp.dropped_total"),
        0,
        "{}",
        daemon.stderr()
    );
    assert!(daemon.counter("Amqp.sent_total") >= 2 * PHASE as u64);
}

/// Publishes numbered messages `range` (unframed protobuf) to `exchange` with `key`.
fn publish_numbered(
    channel: &lapin::Channel,
    exchange: &str,
    key: &str,
    range: std::ops::Range<i64>,
) {
    block_on(async {
        for n in range {
            let body = numbered_message(n, &format!("message {n}"));
            channel
                .basic_publish(
                    exchange,
                    key,
                    lapin::options::BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default(),
                )
                .await
                .expect("publish");
        }
    });
}

/// AMQPInput: a broker out of reach at startup is a warning and the input connects once it
/// can; a connection cut mid-stream is made again, and what was not acknowledged comes again:
/// every number reaches the output (duplicates allowed), none is lost.
#[test]
fn input_connects_late_and_after_a_cut_loses_nothing() {
    const PHASE: i64 = 5_000;
    let broker = broker();
    let (_connection, channel) = client(broker);
    block_on(async {
        let exchange = ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                "in-x",
                ExchangeKind::Direct,
                exchange,
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        let queue = QueueDeclareOptions {
            auto_delete: false,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare("in-q", queue, FieldTable::default())
            .await
            .expect("queue");
        channel
            .queue_bind(
                "in-q",
                "in-x",
                "in",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    });
    publish_numbered(&channel, "in-x", "in", 0..PHASE);
    let gate = Gate::closed(broker.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = format!(
        "url = \"{}\"\nexchange = \"in-x\"\nrouting_key = \"in\"\nqueue = \"in-q\"\n\
         queue_auto_delete = false\nprefetch_count = 500\n",
        gate.url()
    );
    let mut receiver = Daemon::start(dir.path(), &input_config(&input), &[]);
    wait_for(Duration::from_secs(10), "the warning", || {
        receiver.stderr().contains("cannot be reached")
    });
    gate.open();
    let out = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "the first phase",
        || file_sequences(&out).len() >= PHASE as usize,
        || receiver.stderr(),
    );
    gate.close();
    publish_numbered(&channel, "in-x", "in", PHASE..2 * PHASE);
    std::thread::sleep(Duration::from_millis(500));
    gate.open();
    wait_for_or_explain(
        Duration::from_secs(30),
        "the second phase",
        || file_sequences(&out).len() >= 2 * PHASE as usize,
        || receiver.stderr(),
    );
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let counts = file_sequences(&out);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..2 * PHASE).collect::<Vec<_>>()
    );
    assert!(receiver.stderr().contains("connection was lost"));
    assert!(receiver.counter("AmqpIn.records_total") >= 2 * PHASE as u64);
}

/// Memory delivery to a broker that never comes: the stop does not hang; after the drain
/// timeout what could not be published is dropped and counted.
#[test]
fn memory_output_stops_while_the_broker_is_down_counting_what_it_drops() {
    const COUNT: i64 = 100;
    let broker = broker();
    let gate = Gate::closed(broker.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!("url = \"{}\"\nexchange = \"out-never\"\n", gate.url());
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    send_numbered_slices(port, 0..COUNT, 100);
    wait_for(Duration::from_secs(10), "the warning", || {
        daemon.stderr().contains("cannot be reached")
    });
    let started = Instant::now();
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert!(started.elapsed() < Duration::from_secs(30), "the stop ends");
    assert_eq!(daemon.counter("Amqp.sent_total"), 0);
    assert_eq!(
        daemon.counter("Amqp.dropped_total"),
        COUNT as u64,
        "{}",
        daemon.stderr()
    );
}

/// `amqps://` both ways: AMQPOutput and AMQPInput verify the broker's certificate against
/// `tls.root_cafile` and its name against the URL's host, and every message goes round; a
/// config without the CA is refused by the broker's certificate, and nothing is delivered.
#[test]
fn amqps_round_trip_verifies_the_broker() {
    const COUNT: i64 = 2_000;
    let broker = broker();
    let receiving = tempfile::tempdir().expect("temp dir");
    let tls = format!("[AmqpIn.tls]\nroot_cafile = \"{}\"\n", broker.ca());
    let input = format!(
        "url = \"{}\"\nexchange = \"tls-rt\"\nrouting_key = \"numbers\"\nqueue = \"tls-rt-q\"\n\
         prefetch_count = 500\n",
        broker.tls_url()
    );
    let config = format!("{}{tls}", input_config(&input));
    let mut receiver = Daemon::start(receiving.path(), &config, &[]);
    wait_for_or_explain(
        Duration::from_secs(30),
        "the receiver's queue over TLS",
        || receiver.stderr().contains("amqp: connected"),
        || format!("{}\n{}", receiver.stderr(), broker.log()),
    );
    let sending = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"tls-rt\"\nrouting_key = \"numbers\"\n\
         [Amqp.tls]\nroot_cafile = \"{}\"\n",
        broker.tls_url(),
        broker.ca()
    );
    let mut sender = Daemon::start(sending.path(), &output_config(port, &output), &[port]);
    send_numbered_slices(port, 0..COUNT, 1_000);
    let out = receiving.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(60),
        "every message at the receiver",
        || file_sequences(&out).len() >= COUNT as usize,
        || format!("{}\n{}", sender.stderr(), receiver.stderr()),
    );
    assert!(sender.stop().success(), "{}", sender.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    assert_each_once(&file_sequences(&out), COUNT, &|| receiver.stderr());
    assert_eq!(sender.counter("Amqp.sent_total"), COUNT as u64);

    // Without the test CA the broker's certificate does not verify: best_effort drops and
    // counts, and the log says why.
    let (_connection, channel) = client(broker);
    bound_queue(&channel, "tls-untrusted", "tls-untrusted-q", "logs");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let output = format!(
        "url = \"{}\"\nexchange = \"tls-untrusted\"\nrouting_key = \"logs\"\n\
         delivery = \"best_effort\"\n",
        broker.tls_url()
    );
    let mut daemon = Daemon::start(dir.path(), &output_config(port, &output), &[port]);
    send_numbered_slices(port, 0..10, 10);
    wait_for_or_explain(
        Duration::from_secs(20),
        "a refused certificate",
        || daemon.stderr().to_lowercase().contains("certificate"),
        || daemon.stderr(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    assert_eq!(daemon.counter("Amqp.sent_total"), 0);
    assert_eq!(
        daemon.counter("Amqp.dropped_total"),
        10,
        "{}",
        daemon.stderr()
    );
    let bodies = consume(&channel, "tls-untrusted-q", 0, Duration::from_millis(200));
    assert!(bodies.is_empty());
}
