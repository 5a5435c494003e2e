//! KafkaInput: consumes a topic through librdkafka on one ingest core; each Kafka record is
//! one stream of its own for the splitter (NullSplitter by default: the record is the
//! message's bytes), then decoded and routed on that core (`docs/kafka.md`).
//!
//! - **Which partitions.** With `partition`, that one partition is assigned (Heka's KafkaInput
//!   read one partition) and `offset_method` says where to start: `Manual` from the group's
//!   committed offset, `Newest` from the end, `Oldest` from the start. Without it the consumer
//!   joins `group` and the group coordinator assigns it partitions (all of them, when it is the
//!   only member); `offset_method` then only says where to start a partition the group has
//!   no committed offset for.
//! - **Offsets are committed only after the records are routed**: an offset is stored when its
//!   record has been handed to the router and this core has shipped its full batches
//!   (`enable.auto.offset.store = false`); librdkafka commits what is stored every second, and
//!   the stop commits the rest synchronously. A crash can deliver the records since the last
//!   commit again; it never skips one.
//! - **One core.** The consumer runs on the input's placement core (`[placement]` in the tuning
//!   profile), else the first ingest core; librdkafka's own threads run on the output cores
//!   ([`crate::kafka`]). Polling never blocks the core: an empty poll waits on a timer.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::config::plan::SplitterPlan;
use crate::kafka::{Brokers, Logged};
use crate::limits::{KAFKA_INPUT_MESSAGES_PER_TURN, KAFKA_POLL_INTERVAL};
use crate::message::now_ns;
use crate::runtime::backoff::Backoff;
use crate::runtime::router::Router;
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::Metric;

/// `KafkaInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafkaInput {
    /// Client id the brokers see (default `gyges`).
    pub id: Option<String>,
    /// Brokers to bootstrap from, each `host:port`.
    pub addrs: Vec<String>,
    /// The topic to consume.
    pub topic: String,
    /// One partition to consume (Heka's KafkaInput); unset: the group assigns partitions.
    pub partition: Option<i32>,
    /// The consumer group that owns the committed offsets (default: the section name).
    pub group: Option<String>,
    /// `Manual` (default), `Newest` or `Oldest`.
    pub offset_method: Option<String>,
    /// Milliseconds a group member may go without polling, and a join may wait for the others
    /// (librdkafka's `max.poll.interval.ms`; default 300000).
    pub rebalance_timeout: Option<u64>,
    /// Bytes one partition's fetch returns at most (librdkafka's `max.partition.fetch.bytes`).
    pub default_fetch_size: Option<u64>,
    /// Bytes a fetch waits for at least (`fetch.min.bytes`).
    pub min_fetch_size: Option<u64>,
    /// Milliseconds a fetch waits for `min_fetch_size` at most (`fetch.wait.max.ms`).
    pub max_wait_time: Option<u64>,
    /// Connect with TLS (`[name.tls]`: root_cafile, cert_file, key_file).
    pub use_tls: Option<bool>,
    /// `[name.tls]`.
    pub tls: Option<crate::tls::RawTls>,
    /// Accepted for Heka compatibility (librdkafka bounds its own queues; `docs/kafka.md`).
    pub event_buffer_size: Option<u64>,
    /// As `event_buffer_size`.
    pub metadata_retries: Option<u64>,
    /// As `event_buffer_size`.
    pub wait_for_election: Option<u64>,
    /// As `event_buffer_size`.
    pub background_refresh_frequency: Option<u64>,
    /// As `event_buffer_size`.
    pub max_open_reqests: Option<u64>,
    /// As `event_buffer_size`.
    pub dial_timeout: Option<u64>,
    /// As `event_buffer_size`.
    pub read_timeout: Option<u64>,
    /// As `event_buffer_size`.
    pub write_timeout: Option<u64>,
    /// As `event_buffer_size`.
    pub keepalive: Option<u64>,
}

/// Where a partition without a committed offset (or, with `partition`, any) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetMethod {
    /// The group's committed offset (the start when there is none).
    Manual,
    /// The end: only records produced from now on.
    Newest,
    /// The start of what the broker keeps.
    Oldest,
}

/// KafkaInput, planned.
#[derive(Debug, Clone)]
pub struct KafkaInputKind {
    /// Brokers, client id, TLS.
    pub brokers: Brokers,
    /// The topic.
    pub topic: String,
    /// The one partition, if assigned.
    pub partition: Option<i32>,
    /// The consumer group.
    pub group: String,
    /// Where to start.
    pub offset_method: OffsetMethod,
    /// librdkafka consumer properties that follow from the options.
    pub properties: Vec<(&'static str, String)>,
    /// The CPU whose core runs the consumer.
    pub cpu: usize,
    /// The CPUs librdkafka's threads run on.
    pub client_cpus: Vec<usize>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["KafkaInput"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            let raw: RawKafkaInput = own.parse()?;
            let kind = plan_kind(section, context.global, &raw)?;
            let common = common.with_defaults("NullSplitter", &[]);
            super::plan::input_plan(section, context, common, Arc::new(kind))
        },
    };

fn plan_kind(
    section: &crate::config::Section,
    global: &crate::config::plan::GlobalPlan,
    raw: &RawKafkaInput,
) -> Result<KafkaInputKind, crate::config::ConfigError> {
    let brokers = crate::kafka::brokers(
        section,
        &raw.addrs,
        (raw.use_tls, raw.tls.as_ref()),
        raw.id.as_deref(),
    )?;
    if raw.topic.is_empty() || raw.topic.len() > crate::limits::KAFKA_TOPIC_BYTES_MAX {
        return Err(section.error(Some("topic"), "a topic name is 1 to 249 bytes"));
    }
    if raw.partition.is_some_and(|partition| partition < 0) {
        return Err(section.error(Some("partition"), "a partition number is 0 or more"));
    }
    let offset_method = match raw.offset_method.as_deref() {
        None | Some("Manual") => OffsetMethod::Manual,
        Some("Newest") => OffsetMethod::Newest,
        Some("Oldest") => OffsetMethod::Oldest,
        Some(other) => {
            return Err(section.error(
                Some("offset_method"),
                format!("`{other}` is not Manual, Newest or Oldest"),
            ))
        }
    };
    let group = raw.group.clone().unwrap_or_else(|| section.name.clone());
    if group.is_empty() {
        return Err(section.error(Some("group"), "must not be empty"));
    }
    let mut properties = Vec::new();
    let ranges: [(&str, Option<u64>, &'static str, u64, u64); 4] = [
        (
            "rebalance_timeout",
            raw.rebalance_timeout,
            "max.poll.interval.ms",
            1,
            86_400_000,
        ),
        (
            "default_fetch_size",
            raw.default_fetch_size,
            "max.partition.fetch.bytes",
            1,
            1 << 30,
        ),
        (
            "min_fetch_size",
            raw.min_fetch_size,
            "fetch.min.bytes",
            1,
            100_000_000,
        ),
        (
            "max_wait_time",
            raw.max_wait_time,
            "fetch.wait.max.ms",
            0,
            300_000,
        ),
    ];
    for (key, value, property, min, max) in ranges {
        let Some(value) = value else { continue };
        if !(min..=max).contains(&value) {
            return Err(section.error(Some(key), format!("{value} is outside {min} to {max}")));
        }
        properties.push((property, value.to_string()));
        if key == "rebalance_timeout" {
            // librdkafka wants the session timeout no longer than the poll interval.
            properties.push(("session.timeout.ms", value.min(45_000).to_string()));
            let heartbeat = (value.min(45_000) / 3).clamp(1, 3000);
            properties.push(("heartbeat.interval.ms", heartbeat.to_string()));
        }
    }
    let cpu = global
        .placement
        .get(&section.name)
        .copied()
        .or_else(|| global.ingest_cores.first().copied())
        .unwrap_or(global.output_core);
    Ok(KafkaInputKind {
        brokers,
        topic: raw.topic.clone(),
        partition: raw.partition,
        group,
        offset_method,
        properties,
        cpu,
        client_cpus: crate::kafka::client_cpus(global),
    })
}

impl super::InputKind for KafkaInputKind {
    fn type_name(&self) -> &'static str {
        "KafkaInput"
    }

    fn describe(&self) -> String {
        let partitions = match self.partition {
            Some(partition) => format!("partition {partition}"),
            None => format!("the partitions group {} assigns", self.group),
        };
        format!(
            "kafka {} topic {} ({partitions}, on CPU {}, client threads on {:?})",
            self.brokers.bootstrap, self.topic, self.cpu, self.client_cpus
        )
    }

    fn datagrams(&self) -> bool {
        true
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        _receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        if shard.cpu != self.cpu {
            return Ok(());
        }
        let consumer = self
            .consumer(&input.plan.name)
            .map_err(std::io::Error::other)?;
        let consuming = consume(shard.clone(), input, consumer);
        glommio::spawn_local(consuming).detach();
        Ok(())
    }
}

/// The consumer's context: librdkafka's logs as gyges's.
pub struct ConsumerLog {
    logged: Logged,
}

impl rdkafka::client::ClientContext for ConsumerLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, line: &str) {
        self.logged.log(level, facility, line);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logged.error(error, reason);
    }
}

impl ConsumerContext for ConsumerLog {}

type KafkaConsumer = BaseConsumer<ConsumerLog>;

impl KafkaInputKind {
    /// Creates the consumer on a thread confined to the output cores, and subscribes or assigns.
    fn consumer(&self, name: &str) -> Result<KafkaConsumer, String> {
        let mut config = self.brokers.client_config();
        let reset = match self.offset_method {
            OffsetMethod::Newest => "latest",
            OffsetMethod::Manual | OffsetMethod::Oldest => "earliest",
        };
        config
            .set("group.id", &self.group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("enable.partition.eof", "false");
        for (key, value) in &self.properties {
            config.set(*key, value);
        }
        let context = ConsumerLog {
            logged: Logged { name: name.into() },
        };
        let consumer = crate::kafka::create_on(&self.client_cpus, move || {
            config.create_with_context::<ConsumerLog, KafkaConsumer>(context)
        })
        .map_err(|error| format!("kafka consumer: {error}"))?;
        match self.partition {
            Some(partition) => {
                let offset = match self.offset_method {
                    OffsetMethod::Manual => Offset::Stored,
                    OffsetMethod::Newest => Offset::End,
                    OffsetMethod::Oldest => Offset::Beginning,
                };
                let mut list = TopicPartitionList::new();
                list.add_partition_offset(&self.topic, partition, offset)
                    .and_then(|()| consumer.assign(&list))
                    .map_err(|error| format!("kafka assign: {error}"))?;
            }
            None => consumer
                .subscribe(&[&self.topic])
                .map_err(|error| format!("kafka subscribe: {error}"))?,
        }
        Ok(consumer)
    }
}

/// Polls and routes until the core stops; then commits what was routed.
async fn consume(shard: Rc<Shard>, input: Rc<InputContext>, consumer: KafkaConsumer) {
    let _guard = shard.connection_opened();
    let null_splitter = matches!(input.plan.splitter, SplitterPlan::Null);
    let Some((mut splitter, mut buffer)) = input.stream_parts(input.max_message_size) else {
        return;
    };
    let meta = input.line_meta(String::new());
    let mut idle = Backoff::new(Duration::from_millis(1), KAFKA_POLL_INTERVAL * 4);
    let mut errors = LogLimit::new(LOG_INTERVAL);
    let (telemetry, core, plugin) = (shard.telemetry.clone(), shard.core, input.plugin);
    while !shard.stop.is_stopping() {
        let mut routed = 0;
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            while routed < KAFKA_INPUT_MESSAGES_PER_TURN {
                let message = match consumer.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        telemetry.add(core, plugin, Metric::Errors, 1);
                        if let Some(count) = errors.note(Instant::now()) {
                            tracing::warn!(input = %input.plan.name, %error, errors = count, "kafka: consume failed; librdkafka retries");
                        }
                        break;
                    }
                };
                routed += 1;
                let payload = message.payload().unwrap_or_default();
                telemetry.add(core, plugin, Metric::BytesRead, payload.len() as u64);
                let (now, router) = (now_ns(), &mut *router);
                if null_splitter {
                    if payload.len() > input.max_message_size {
                        telemetry.add(core, plugin, Metric::OversizeRecords, 1);
                    } else {
                        deliver_record(
                            payload, &input, &meta, now, &mut uuids, router, &telemetry, core,
                        );
                    }
                } else {
                    split_record(
                        payload,
                        &input,
                        (&mut splitter, &mut buffer),
                        &meta,
                        &mut uuids,
                        router,
                        &shard,
                    );
                }
                store(&consumer, &message, &input.plan.name);
            }
        }
        publish_splitter_stats(&mut splitter, &telemetry, core, plugin);
        if routed > 0 {
            idle.reset();
            shard.ship_full().await;
            glommio::yield_if_needed().await;
        } else {
            let wait = idle.step();
            futures_lite::future::or(glommio::timer::sleep(wait), shard.stop.wait()).await;
        }
    }
    shard.ship_present().await;
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing consumed, or no group assignment: nothing to commit is not an error.
        if !matches!(
            error,
            KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)
        ) {
            tracing::warn!(input = %input.plan.name, %error, "kafka: the last offsets were not committed; those records may be read again");
        }
    }
    // Leaving the group can take the broker's timeout: done off the core.
    let leaving = std::thread::Builder::new()
        .name("gyges-kafka-close".into())
        .spawn(move || drop(consumer));
    if let Err(error) = leaving {
        tracing::debug!(%error, "kafka: closing the consumer on this core");
    }
}

/// Stores the offset after `message` for the next commit.
fn store(consumer: &KafkaConsumer, message: &BorrowedMessage<'_>, name: &str) {
    if let Err(error) = consumer.store_offset_from_message(message) {
        tracing::debug!(input = %name, %error, "kafka: offset not stored");
    }
}

/// Splits one record with the input's splitter (the record is a whole stream) and routes what
/// it yields.
pub(super) fn split_record(
    payload: &[u8],
    input: &InputContext,
    (splitter, buffer): (
        &mut crate::splitter::Splitter,
        &mut crate::splitter::StreamBuffer,
    ),
    meta: &crate::message::LineMeta,
    uuids: &mut crate::message::UuidSource,
    router: &mut Router,
    shard: &Shard,
) {
    let (telemetry, core) = (&shard.telemetry, shard.core);
    let spare = buffer.spare_mut();
    if payload.len() > spare.len() {
        telemetry.add(core, input.plugin, Metric::OversizeRecords, 1);
        return;
    }
    spare[..payload.len()].copy_from_slice(payload);
    buffer.commit(payload.len());
    let now = now_ns();
    let signers = router.wants_signers();
    let mut deliver = |bytes: &[u8], signer: Option<&[u8]>, router: &mut Router| {
        if signers {
            router.set_signer(signer);
        }
        deliver_record(bytes, input, meta, now, uuids, router, telemetry, core);
    };
    while let Some(record) = buffer.next_record(splitter) {
        let signer = record.signer.and_then(|id| splitter.signer_name(id));
        deliver(record.bytes, signer, router);
    }
    if let Some(record) = buffer.finish(splitter) {
        deliver(record.bytes, None, router);
    }
    if signers {
        router.set_signer(None);
    }
}
