//! KafkaOutput: every message it is routed, encoded (ProtobufEncoder by default), produced as
//! one Kafka record to `topic` (or the topic a `topic_variable` names), through librdkafka
//! (`docs/kafka.md`).
//!
//! - **One producer per output**, on the output's owner core (a single writer): the other
//!   cores hand their batches over their rings (memory, best effort) or their disk queues
//!   (durable). The producer's own threads run on the output cores ([`crate::kafka`]).
//! - **Inside a batch** each message is framed by [`KafkaEncoderKind`]: its payload length,
//!   its key (the `hash_variable` value) and its topic (the `topic_variable` value) go before
//!   the encoding, so the owner cuts the batch back into records without decoding anything.
//!   The frame never leaves the process; the record's value is the encoding, bytes for bytes.
//! - **Partitions** are chosen by gyges ([`PartitionChoice`]): `Random` (sticky: one random
//!   partition for [`KAFKA_STICKY_RECORDS`] records, so requests carry full batches),
//!   `RoundRobin` (each record to the next), or `Hash` of the key (32-bit FNV-1a modulo the partition count, as Heka's client did, so a
//!   key lands on the partition Heka put it on).
//! - **Delivery classes.** `memory`: a full producer queue (`back_pressure_threshold_bytes`)
//!   makes the owner wait, its rings fill, and ingest waits; a message never expires. A
//!   message counts as sent when its broker acknowledged it (`required_acks`).
//!   `best_effort`: a message the full producer cannot take is dropped and counted, and one
//!   unacknowledged after [`KAFKA_MESSAGE_TIMEOUT_MS`] too. `durable`: the owner delivers
//!   every core's disk queue ([`KafkaRecords`]); a queue read is committed only once the
//!   brokers acknowledged each of its messages, and sent again from the last commit when one
//!   of them timed out (duplicates, never a gap).

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Partitioner, Producer as _, ProducerContext,
    PARTITION_UA,
};
use serde::Deserialize;

use super::{Batch, Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::{DeliveryClass, OutputPlan};
use crate::config::{ConfigError, Section};
use crate::kafka::{Brokers, Logged};
use crate::limits::{
    DRAIN_TIMEOUT, KAFKA_BATCH_BYTES_DEFAULT, KAFKA_BUFFERED_BYTES_DEFAULT,
    KAFKA_BUFFERED_BYTES_MAX, KAFKA_BUFFERED_MESSAGES_MAX, KAFKA_LINGER_MS_MAX,
    KAFKA_MESSAGE_BYTES_DEFAULT, KAFKA_MESSAGE_BYTES_MAX, KAFKA_MESSAGE_TIMEOUT_MS,
    KAFKA_POLL_INTERVAL, KAFKA_READS_IN_FLIGHT_MAX, KAFKA_REPORT_EVENTS_PER_LOOK,
    KAFKA_STICKY_RECORDS, KAFKA_TIMEOUT_MS_MAX, KAFKA_TOPIC_BYTES_MAX,
};
use crate::message::{FieldValue, MessageView, StrHeader};
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, Position, ReadBatch};
use crate::telemetry::{Metric, Telemetry};

mod frame;

use frame::topic_of;
pub use frame::{framed, Framed, KafkaEncoderKind};

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["KafkaOutput"],
    plan: plan_kafka_output,
};

/// `KafkaOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafkaOutput {
    /// Client id the brokers see (default `gyges`).
    pub id: Option<String>,
    /// Brokers to bootstrap from, each `host:port`.
    pub addrs: Vec<String>,
    /// The topic every message goes to (or `topic_variable`).
    pub topic: Option<String>,
    /// A message variable (`Type`, `Logger`, `Hostname`, `Payload`, `EnvVersion` or
    /// `Fields[name]`) whose value is the topic.
    pub topic_variable: Option<String>,
    /// `Random` (default), `RoundRobin` or `Hash`.
    pub partitioner: Option<String>,
    /// With `Hash`: the message variable whose value is the key.
    pub hash_variable: Option<String>,
    /// `NoResponse`, `WaitForLocal` (default) or `WaitForAll`.
    pub required_acks: Option<String>,
    /// Milliseconds a broker may take to gather the acks a produce request asks for.
    pub timeout: Option<u64>,
    /// `None` (default), `GZIP`, `Snappy`, `LZ4` or `ZSTD`.
    pub compression_codec: Option<String>,
    /// Milliseconds a record may wait for its batch to fill (librdkafka's `linger.ms`;
    /// default 1).
    pub max_buffer_time: Option<u64>,
    /// Bytes of one produce batch at most (librdkafka's `batch.size`).
    pub max_buffered_bytes: Option<u64>,
    /// Bytes the producer holds for the brokers before `memory` delivery waits (and
    /// `best_effort` drops).
    pub back_pressure_threshold_bytes: Option<u64>,
    /// Bytes of one encoded message at most; a longer one is dropped and counted.
    pub max_message_bytes: Option<u64>,
    /// Connect with TLS (`[name.tls]`: root_cafile, cert_file, key_file).
    pub use_tls: Option<bool>,
    /// `[name.tls]`.
    pub tls: Option<crate::tls::RawTls>,
    /// Accepted for Heka compatibility; librdkafka manages metadata refreshes and requests
    /// in flight itself (`docs/kafka.md`).
    pub metadata_retries: Option<u64>,
    /// As `metadata_retries`.
    pub wait_for_election: Option<u64>,
    /// As `metadata_retries`.
    pub background_refresh_frequency: Option<u64>,
    /// As `metadata_retries` (Heka's spelling).
    pub max_open_reqests: Option<u64>,
    /// As `metadata_retries`.
    pub dial_timeout: Option<u64>,
    /// As `metadata_retries`.
    pub read_timeout: Option<u64>,
    /// As `metadata_retries`.
    pub write_timeout: Option<u64>,
    /// As `metadata_retries`.
    pub keepalive: Option<u64>,
}

/// How a record's partition is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// A partition at random, kept for [`KAFKA_STICKY_RECORDS`] records so that each
    /// produce request carries full batches (the sticky partitioning of Kafka's own clients).
    Random,
    /// Each partition in turn.
    RoundRobin,
    /// By the key's hash (`hash_variable`).
    Hash,
}

/// KafkaOutput, planned.
#[derive(Debug, Clone)]
pub struct KafkaOutputKind {
    /// Brokers, client id, TLS.
    pub brokers: Brokers,
    /// The fixed topic, when there is no `topic_variable`.
    pub topic: Option<String>,
    /// How partitions are chosen.
    pub partitioning: Partitioning,
    /// librdkafka producer properties that follow from the options (acks, compression,
    /// batching, buffering bounds), in the order they are set.
    pub properties: Vec<(&'static str, String)>,
    /// The CPUs the producer's threads run on.
    pub client_cpus: Vec<usize>,
}

/// A message variable: what `topic_variable` and `hash_variable` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// A string header.
    Header(StrHeader),
    /// The first value of the first field of that name (`Fields[name]`).
    Field(Box<[u8]>),
}

impl Variable {
    /// Parses `Type`, `Logger`, `Hostname`, `Payload`, `EnvVersion`, `Fields[name]` (or
    /// `Fields[name][0][0]`, the same value).
    pub fn parse(text: &str) -> Option<Variable> {
        let header = match text {
            "Type" => Some(StrHeader::Type),
            "Logger" => Some(StrHeader::Logger),
            "Hostname" => Some(StrHeader::Hostname),
            "Payload" => Some(StrHeader::Payload),
            "EnvVersion" => Some(StrHeader::EnvVersion),
            _ => None,
        };
        if let Some(header) = header {
            return Some(Variable::Header(header));
        }
        let inner = text.strip_prefix("Fields[")?;
        let inner = inner
            .strip_suffix("][0][0]")
            .or_else(|| inner.strip_suffix(']'))?;
        if inner.is_empty() || inner.contains(['[', ']']) {
            return None;
        }
        Some(Variable::Field(inner.as_bytes().into()))
    }

    /// Appends the variable's value in `message`; false when the message has none.
    fn render(&self, message: &MessageView<'_>, out: &mut Vec<u8>) -> bool {
        match self {
            Variable::Header(header) => match message.str_header(*header) {
                Some(value) => {
                    out.extend_from_slice(value);
                    true
                }
                None => false,
            },
            Variable::Field(name) => {
                let Some(value) = message.field(name, 0).and_then(|field| field.value(0)) else {
                    return false;
                };
                match value {
                    FieldValue::String(bytes) | FieldValue::Bytes(bytes) => {
                        out.extend_from_slice(bytes)
                    }
                    FieldValue::Integer(number) => {
                        crate::encoder::interpolate::push_decimal(out, number)
                    }
                    FieldValue::Double(number) => {
                        crate::encoder::elasticsearch::json::write_double(number, out)
                    }
                    FieldValue::Bool(flag) => {
                        out.extend_from_slice(if flag { b"true" } else { b"false" })
                    }
                }
                true
            }
        }
    }
}

fn variable(section: &Section, key: &str, text: &str) -> Result<Variable, ConfigError> {
    Variable::parse(text).ok_or_else(|| {
        section.error(
            Some(key),
            format!(
                "`{text}` is not a message variable (Type, Logger, Hostname, Payload, \
                 EnvVersion or Fields[name])"
            ),
        )
    })
}

fn plan_kafka_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawKafkaOutput = own.parse()?;
    let brokers = crate::kafka::brokers(
        section,
        &raw.addrs,
        (raw.use_tls, raw.tls.as_ref()),
        raw.id.as_deref(),
    )?;
    let (topic, topic_variable) = match (&raw.topic, &raw.topic_variable) {
        (Some(_), Some(_)) => {
            return Err(section.error(
                Some("topic_variable"),
                "give either topic or topic_variable, not both",
            ))
        }
        (None, None) => {
            return Err(section.error(Some("topic"), "needs a topic (or topic_variable)"))
        }
        (Some(topic), None) => {
            check_topic(topic.as_bytes())
                .map_err(|why| section.error(Some("topic"), format!("`{topic}` {why}")))?;
            (Some(topic.clone()), None)
        }
        (None, Some(text)) => (None, Some(variable(section, "topic_variable", text)?)),
    };
    let partitioning = match raw.partitioner.as_deref() {
        None | Some("Random") => Partitioning::Random,
        Some("RoundRobin") => Partitioning::RoundRobin,
        Some("Hash") => Partitioning::Hash,
        Some(other) => {
            return Err(section.error(
                Some("partitioner"),
                format!("`{other}` is not Random, RoundRobin or Hash"),
            ))
        }
    };
    let hash_variable = match (&raw.hash_variable, partitioning) {
        (Some(text), Partitioning::Hash) => Some(variable(section, "hash_variable", text)?),
        (None, Partitioning::Hash) => {
            return Err(section.error(Some("hash_variable"), "the Hash partitioner needs it"))
        }
        (Some(_), _) => {
            return Err(section.error(
                Some("hash_variable"),
                "applies to partitioner = \"Hash\" only",
            ))
        }
        (None, _) => None,
    };
    let message_bytes_max = bounded(
        section,
        "max_message_bytes",
        raw.max_message_bytes,
        (KAFKA_MESSAGE_BYTES_DEFAULT, 1, KAFKA_MESSAGE_BYTES_MAX),
    )?;
    let properties = producer_properties(section, &raw, message_bytes_max)?;
    let default = common.with_defaults("ProtobufEncoder", false, true);
    let encoder = match default.encoder {
        super::plan::EncoderChoice::Named { name, default } => {
            crate::encoder::resolve(section, context, name, default)?
        }
        super::plan::EncoderChoice::Fixed(encoder) => encoder,
    };
    let common = super::plan::Common {
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(KafkaEncoderKind {
            inner: encoder,
            bytes_max: message_bytes_max,
            topic_variable,
            hash_variable,
        })),
        ..default
    };
    let kind = KafkaOutputKind {
        brokers,
        topic,
        partitioning,
        properties,
        client_cpus: crate::kafka::client_cpus(context.global),
    };
    super::plan::output_plan(section, context, common, |_| Ok(Arc::new(kind)))
}

/// Why a topic name is refused, if it is.
fn check_topic(topic: &[u8]) -> Result<(), &'static str> {
    if topic.is_empty() || topic.len() > KAFKA_TOPIC_BYTES_MAX {
        return Err("is not 1 to 249 bytes long");
    }
    let allowed = |byte: &u8| byte.is_ascii_alphanumeric() || b"._-".contains(byte);
    if !topic.iter().all(allowed) || topic == b"." || topic == b".." {
        return Err("is not a Kafka topic name (ASCII letters, digits, `.`, `_` and `-`)");
    }
    Ok(())
}

/// `key`'s value, `default` when unset, refused outside `min..=max`.
fn bounded(
    section: &Section,
    key: &str,
    value: Option<u64>,
    (default, min, max): (usize, usize, usize),
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) if (min as u64..=max as u64).contains(&value) => Ok(value as usize),
        Some(value) => Err(section.error(Some(key), format!("{value} is outside {min} to {max}"))),
    }
}

/// librdkafka's producer properties for the section's options.
fn producer_properties(
    section: &Section,
    raw: &RawKafkaOutput,
    message_bytes_max: usize,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let acks = match raw.required_acks.as_deref() {
        Some("NoResponse") => "0",
        None | Some("WaitForLocal") => "1",
        Some("WaitForAll") => "all",
        Some(other) => {
            return Err(section.error(
                Some("required_acks"),
                format!("`{other}` is not NoResponse, WaitForLocal or WaitForAll"),
            ))
        }
    };
    let codec = match raw.compression_codec.as_deref() {
        None | Some("None") => "none",
        Some("GZIP") => "gzip",
        Some("Snappy") => "snappy",
        Some("LZ4") => "lz4",
        Some("ZSTD") => "zstd",
        Some(other) => {
            return Err(section.error(
                Some("compression_codec"),
                format!("`{other}` is not None, GZIP, Snappy, LZ4 or ZSTD"),
            ))
        }
    };
    let timeout = bounded(
        section,
        "timeout",
        raw.timeout,
        (10_000, 1, KAFKA_TIMEOUT_MS_MAX as usize),
    )?;
    let linger = bounded(
        section,
        "max_buffer_time",
        raw.max_buffer_time,
        (1, 0, KAFKA_LINGER_MS_MAX as usize),
    )?;
    let batch = bounded(
        section,
        "max_buffered_bytes",
        raw.max_buffered_bytes,
        (
            KAFKA_BATCH_BYTES_DEFAULT.min(message_bytes_max.max(1)),
            1,
            message_bytes_max,
        ),
    )?;
    let buffered = bounded(
        section,
        "back_pressure_threshold_bytes",
        raw.back_pressure_threshold_bytes,
        (KAFKA_BUFFERED_BYTES_DEFAULT, 1024, KAFKA_BUFFERED_BYTES_MAX),
    )?;
    Ok(vec![
        ("acks", acks.to_string()),
        ("compression.codec", codec.to_string()),
        ("request.timeout.ms", timeout.to_string()),
        ("linger.ms", linger.to_string()),
        ("batch.size", batch.to_string()),
        ("message.max.bytes", (message_bytes_max + 1024).to_string()),
        ("queue.buffering.max.kbytes", (buffered / 1024).to_string()),
        (
            "queue.buffering.max.messages",
            KAFKA_BUFFERED_MESSAGES_MAX.to_string(),
        ),
        // The partitioner is gyges's: librdkafka must call it for keyless records too.
        ("sticky.partitioning.linger.ms", "0".to_string()),
    ])
}

impl OutputKind for KafkaOutputKind {
    fn type_name(&self) -> &'static str {
        "KafkaOutput"
    }

    fn describe(&self, output: &OutputPlan) -> String {
        let topic = self.topic.as_deref().unwrap_or("(topic_variable)");
        format!(
            "kafka {} topic {topic} ({:?} partitions, one producer on CPU {}, client threads on {:?})",
            self.brokers.bootstrap, self.partitioning, output.owner_core, self.client_cpus
        )
    }

    fn writers(&self) -> Writers {
        Writers::Owner
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let timeout = match core.output.delivery {
                DeliveryClass::BestEffort => KAFKA_MESSAGE_TIMEOUT_MS,
                // Never expire: memory delivery waits for the brokers.
                _ => 0,
            };
            let producer = self.producer(&core.output.name, timeout)?;
            let sender = Rc::new(KafkaSender {
                producer,
                topic: self.topic.clone(),
                drop_when_full: core.best_effort(),
                stop: core.stop.clone(),
                stopping_since: Cell::new(None),
                untracked: Arc::new(Track::new(0)),
            });
            let poll = poll_until_drained(
                sender.clone(),
                core.telemetry.clone(),
                core.row,
                core.plugin,
            );
            let poll = crate::runtime::failure::plugin_task(&core.output.name, poll);
            Ok(Opened {
                destination: sender,
                tasks: vec![glommio::spawn_local(poll).detach()],
                close: None,
            })
        })
    }

    fn open_durable<'a>(
        &'a self,
        core: &'a OutputCore<'a>,
        board: &'a Arc<HandleBoard>,
    ) -> LocalBoxFuture<'a, Result<Vec<glommio::task::JoinHandle<()>>, String>> {
        Box::pin(async move {
            // The owner delivers every core's queue through its one producer.
            if core.output.owner_core != core.cpu {
                return Ok(Vec::new());
            }
            let producer = Rc::new(self.producer(&core.output.name, KAFKA_MESSAGE_TIMEOUT_MS)?);
            let rows = 0..core.plan.global.cores.len();
            let spawn = |row| {
                let records = KafkaRecords {
                    producer: producer.clone(),
                    topic: self.topic.clone(),
                    pending: VecDeque::with_capacity(KAFKA_READS_IN_FLIGHT_MAX),
                    telemetry: core.telemetry.clone(),
                    core: core.row,
                    plugin: core.plugin,
                };
                let counters = (core.telemetry.clone(), core.row, core.plugin);
                let stop = core.stop.clone();
                let consumer = Consumer::new(board.clone(), row);
                let run = async move {
                    consumer.run(records, stop, counters).await;
                };
                let run = crate::runtime::failure::plugin_task(&core.output.name, run);
                glommio::spawn_local(run).detach()
            };
            Ok(rows.map(spawn).collect())
        })
    }
}

/// The producer type: gyges's context and partitioner.
type Producer = BaseProducer<OutputContext, PartitionChoice>;

impl KafkaOutputKind {
    /// Creates the producer on a thread confined to the output cores; messages unacknowledged
    /// after `message_timeout_ms` fail (0: never).
    fn producer(&self, name: &str, message_timeout_ms: u64) -> Result<Producer, String> {
        let mut config = self.brokers.client_config();
        for (key, value) in &self.properties {
            config.set(*key, value);
        }
        config
            .set("message.timeout.ms", message_timeout_ms.to_string())
            .set("enable.idempotence", "false");
        let context = OutputContext {
            logged: Logged { name: name.into() },
            reports: AtomicU64::new(0),
            partitioner: PartitionChoice {
                partitioning: self.partitioning,
                next: AtomicU32::new(0),
                sticky: AtomicU64::new(0),
            },
        };
        crate::kafka::create_on(&self.client_cpus, move || {
            config.create_with_context::<OutputContext, Producer>(context)
        })
        .map_err(|error| format!("kafka producer: {error}"))
    }
}

/// The producer's context: logging, partitioning and delivery reports.
pub struct OutputContext {
    logged: Logged,
    /// Delivery reports served so far: [`serve_reports`] polls while it grows.
    reports: AtomicU64,
    partitioner: PartitionChoice,
}

impl rdkafka::client::ClientContext for OutputContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, line: &str) {
        self.logged.log(level, facility, line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logged.error(error, reason);
    }
}

impl ProducerContext<PartitionChoice> for OutputContext {
    type DeliveryOpaque = Arc<Track>;

    /// Runs on the owner core, inside `poll`.
    fn delivery(&self, result: &DeliveryResult<'_>, track: Arc<Track>) {
        self.reports.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(message) => track.delivered(message.payload_len() as u64),
            Err((error, _)) => track.failed(error),
        }
    }

    fn get_custom_partitioner(&self) -> Option<&PartitionChoice> {
        Some(&self.partitioner)
    }
}

/// gyges's partitioner (librdkafka calls it from its own threads too).
pub struct PartitionChoice {
    partitioning: Partitioning,
    /// RoundRobin's next turn.
    next: AtomicU32,
    /// Random's sticky choice: the partition in the high 32 bits, the records it still takes
    /// in the low 32.
    sticky: AtomicU64,
}

impl PartitionChoice {
    /// Random's partition: the sticky one while it has records left, else a new random one.
    /// The producer's thread calls this for almost every record and librdkafka's own thread
    /// only for records produced before the topic's metadata arrived, so a lost race between
    /// the two costs at most one extra switch, never a record.
    fn sticky_random(&self, partition_count: i32) -> i32 {
        let current = self.sticky.load(Ordering::Relaxed);
        let (partition, left) = ((current >> 32) as i32, current as u32);
        if left > 0 && partition < partition_count {
            self.sticky.store(current - 1, Ordering::Relaxed);
            return partition;
        }
        let partition = fastrand::i32(0..partition_count);
        let left = KAFKA_STICKY_RECORDS - 1;
        self.sticky.store(
            ((partition as u64) << 32) | u64::from(left),
            Ordering::Relaxed,
        );
        partition
    }
}

impl Partitioner for PartitionChoice {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partition_count: i32,
        _available: impl Fn(i32) -> bool,
    ) -> i32 {
        if partition_count <= 0 {
            return PARTITION_UA;
        }
        match self.partitioning {
            Partitioning::Random => self.sticky_random(partition_count),
            Partitioning::RoundRobin => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                (turn % partition_count as u32) as i32
            }
            Partitioning::Hash => hash_partition(key.unwrap_or_default(), partition_count),
        }
    }
}

/// The partition of `key`: its 32-bit FNV-1a hash, read as signed, modulo the count, made
/// positive (what Heka's Kafka client computed).
pub fn hash_partition(key: &[u8], partition_count: i32) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in key {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash as i32) % partition_count).abs()
}

/// What became of the messages of one send: counted by delivery reports, on the owner core.
#[derive(Debug, Default)]
pub struct Track {
    /// Messages not reported yet (durable reads only).
    remaining: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    /// Messages that failed for good (dropped and counted).
    dropped: AtomicU64,
    /// A message timed out or was purged: durable delivery sends the read again.
    retry: AtomicBool,
}

impl Track {
    fn new(messages: u64) -> Track {
        Track {
            remaining: AtomicU64::new(messages),
            ..Track::default()
        }
    }

    fn delivered(&self, bytes: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.delivered_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.remaining.fetch_sub(1, Ordering::Release);
    }

    fn failed(&self, error: &KafkaError) {
        let retry = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::PurgeQueue
                    | RDKafkaErrorCode::PurgeInflight
            )
        );
        if retry {
            self.retry.store(true, Ordering::Relaxed);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.remaining.fetch_sub(1, Ordering::Release);
    }

    /// Takes the counts reported since the last take: (delivered, bytes, failed or timed out).
    fn take(&self) -> (u64, u64, u64) {
        (
            self.delivered.swap(0, Ordering::Relaxed),
            self.delivered_bytes.swap(0, Ordering::Relaxed),
            self.dropped.swap(0, Ordering::Relaxed),
        )
    }
}

/// Adds what `track` counted since the last call to the output's counters.
fn publish(track: &Track, telemetry: &Telemetry, core: usize, plugin: usize) {
    let (delivered, bytes, dropped) = track.take();
    if delivered > 0 {
        telemetry.add(core, plugin, Metric::Sent, delivered);
        telemetry.add(core, plugin, Metric::SentBytes, bytes);
    }
    if dropped > 0 {
        telemetry.add(core, plugin, Metric::Errors, dropped);
        telemetry.add(core, plugin, Metric::Dropped, dropped);
    }
}

/// Hands `message` to the producer, waiting (polling) while its queue is full unless
/// `drop_when_full`. Returns whether librdkafka took it; one it refused is counted by the
/// caller.
async fn produce(
    producer: &Producer,
    message: &Framed<'_>,
    topic: &str,
    track: &Arc<Track>,
    (drop_when_full, give_up): (bool, &dyn Fn() -> bool),
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::with_opaque_to(topic, track.clone()).payload(message.value);
    if let Some(key) = message.key {
        record = record.key(key);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if !drop_when_full && !give_up() =>
            {
                record = back;
                serve_reports(producer);
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Serves the delivery reports librdkafka has ready. A poll that does not wait serves at most
/// one report event, so this polls again while the last poll served reports, up to
/// [`KAFKA_REPORT_EVENTS_PER_LOOK`] events, so that a backlog cannot hold the core.
fn serve_reports(producer: &Producer) {
    let reports = &producer.context().reports;
    for _ in 0..KAFKA_REPORT_EVENTS_PER_LOOK {
        let before = reports.load(Ordering::Relaxed);
        producer.poll(Duration::ZERO);
        if reports.load(Ordering::Relaxed) == before {
            return;
        }
    }
}

/// The owner core's destination (memory and best-effort delivery).
struct KafkaSender {
    producer: Producer,
    topic: Option<String>,
    drop_when_full: bool,
    stop: Rc<crate::runtime::stop::LocalStop>,
    /// When this core's stop was first seen while waiting on a full producer.
    stopping_since: Cell<Option<Instant>>,
    /// Counts of memory and best-effort deliveries.
    untracked: Arc<Track>,
}

impl KafkaSender {
    /// Whether a wait on the full producer should end: the core has been stopping for
    /// longer than the drain timeout.
    fn give_up(&self) -> bool {
        if !self.stop.is_stopping() {
            return false;
        }
        let since = self.stopping_since.get().unwrap_or_else(|| {
            let now = Instant::now();
            self.stopping_since.set(Some(now));
            now
        });
        since.elapsed() > DRAIN_TIMEOUT
    }

    async fn send(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let (mut refused, mut full) = (0, 0);
        let give_up = || self.give_up();
        for message in framed(&batch.bytes) {
            let Some(topic) = topic_of(&message, self.topic.as_deref()) else {
                refused += 1;
                continue;
            };
            let policy = (self.drop_when_full, &give_up as &dyn Fn() -> bool);
            match produce(&self.producer, &message, topic, &self.untracked, policy).await {
                Ok(()) => {}
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => full += 1,
                Err(error) => {
                    refused += 1;
                    tracing::debug!(%error, "kafka: a message was refused");
                }
            }
        }
        if refused + full > 0 {
            telemetry.add(core, plugin, Metric::Dropped, refused + full);
            telemetry.add(core, plugin, Metric::Errors, refused);
        }
        serve_reports(&self.producer);
        publish(&self.untracked, telemetry, core, plugin);
    }
}

impl super::Destination for KafkaSender {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        Box::pin(self.send(batch, telemetry, core, plugin))
    }
}

/// Serves the producer's delivery reports until the core stops, then until nothing can ship
/// any more (the sink and the ring drain have let go of the sender: this task holds the last
/// reference) and the brokers have answered for every message, or the drain timeout has
/// passed: what is still unanswered then is counted as dropped.
async fn poll_until_drained(
    sender: Rc<KafkaSender>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    while !sender.stop.is_stopping() {
        serve_reports(&sender.producer);
        publish(&sender.untracked, &telemetry, core, plugin);
        futures_lite::future::or(
            glommio::timer::sleep(KAFKA_POLL_INTERVAL),
            sender.stop.wait(),
        )
        .await;
    }
    // Set once nothing ships any more; the brokers then have the drain timeout to answer.
    let mut shipping_done_at: Option<Instant> = None;
    loop {
        serve_reports(&sender.producer);
        publish(&sender.untracked, &telemetry, core, plugin);
        let in_flight = sender.producer.in_flight_count();
        if Rc::strong_count(&sender) == 1 {
            let since = *shipping_done_at.get_or_insert_with(Instant::now);
            if in_flight == 0 {
                return;
            }
            if since.elapsed() > DRAIN_TIMEOUT {
                let lost = u64::try_from(in_flight).unwrap_or(0);
                tracing::warn!(
                    lost,
                    "kafka: messages the brokers did not acknowledge within the drain \
                     timeout are counted as dropped"
                );
                telemetry.add(core, plugin, Metric::Dropped, lost);
                return;
            }
        }
        glommio::timer::sleep(KAFKA_POLL_INTERVAL).await;
    }
}

/// A queue read sent and not yet wholly acknowledged.
struct PendingRead {
    track: Arc<Track>,
    /// The queue position after the read: committed once every message is acknowledged.
    end: Position,
}

/// Why a durable delivery is tried again from the last commit.
#[derive(Debug, thiserror::Error)]
pub enum KafkaDeliveryError {
    /// A message was not acknowledged within [`KAFKA_MESSAGE_TIMEOUT_MS`].
    #[error("a message was not acknowledged in time; sending again from the last commit")]
    TimedOut,
}

/// Durable delivery of one source queue through the owner's producer.
struct KafkaRecords {
    producer: Rc<Producer>,
    topic: Option<String>,
    pending: VecDeque<PendingRead>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
}

impl KafkaRecords {
    /// Moves the fully answered reads at the front out; returns the newest end.
    fn take_answered(&mut self) -> Result<Option<Position>, KafkaDeliveryError> {
        let mut newest = None;
        while let Some(front) = self.pending.front() {
            if front.track.retry.load(Ordering::Relaxed) {
                return Err(KafkaDeliveryError::TimedOut);
            }
            if front.track.remaining.load(Ordering::Acquire) > 0 {
                break;
            }
            if let Some(read) = self.pending.pop_front() {
                publish(&read.track, &self.telemetry, self.core, self.plugin);
                newest = Some(read.end);
            }
        }
        Ok(newest)
    }
}

impl Deliver for KafkaRecords {
    type Error = KafkaDeliveryError;

    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, KafkaDeliveryError> {
        let messages: u64 = records
            .iter()
            .map(|record| framed(record).count() as u64)
            .sum();
        let track = Arc::new(Track::new(messages));
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        let never = || false;
        for record in records.iter() {
            for message in framed(record) {
                let topic = topic_of(&message, self.topic.as_deref());
                let produced = match topic {
                    Some(topic) => {
                        let policy = (false, &never as &dyn Fn() -> bool);
                        produce(&self.producer, &message, topic, &track, policy).await
                    }
                    None => Err(KafkaError::MessageProduction(
                        RDKafkaErrorCode::InvalidTopic,
                    )),
                };
                if let Err(error) = produced {
                    // Refused for good (too large, a bad topic): it will never go; count it.
                    tracing::debug!(%error, "kafka: a queued message was refused");
                    telemetry.add(core, plugin, Metric::Errors, 1);
                    telemetry.add(core, plugin, Metric::Dropped, 1);
                    track.remaining.fetch_sub(1, Ordering::Release);
                }
            }
        }
        self.pending.push_back(PendingRead {
            track,
            end: records.end(),
        });
        serve_reports(&self.producer);
        Ok(Delivered::Sent)
    }

    fn has_room(&self) -> bool {
        self.pending.len() < KAFKA_READS_IN_FLIGHT_MAX
    }

    fn is_settled(&self) -> bool {
        self.pending.is_empty()
    }

    async fn settle(&mut self, wait: Duration) -> Result<Option<Position>, KafkaDeliveryError> {
        serve_reports(&self.producer);
        if let Some(end) = self.take_answered()? {
            return Ok(Some(end));
        }
        glommio::timer::sleep(wait.min(KAFKA_POLL_INTERVAL)).await;
        serve_reports(&self.producer);
        self.take_answered()
    }

    async fn reset(&mut self) {
        // What is still in flight is answered later into tracks nobody reads: those messages
        // may reach the brokers twice (sent again from the last commit), never not at all.
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests;
