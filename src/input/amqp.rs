//! AMQPInput: consumes a queue bound to an exchange, through lapin, on one ingest core; each
//! AMQP message is one stream of its own for the splitter (NullSplitter by default: the body is
//! the message's bytes), then decoded and routed on that core (`docs/amqp.md`).
//!
//! - **The queue** is declared (`queue`, empty: the broker names it; `queue_durability`,
//!   `queue_exclusive`, `queue_auto_delete`, `queue_ttl` as `x-message-ttl`) and bound to the
//!   declared exchange with `routing_key` on every connection.
//! - **Acknowledgements follow routing**: the deliveries of a turn (at most
//!   [`AMQP_INPUT_MESSAGES_PER_TURN`], and at most `prefetch_count` unacknowledged at the
//!   broker) are routed, this core ships what it holds (to durable routes' disk queues too),
//!   and only then are they acknowledged, with one multiple ack. A crash or a lost connection
//!   makes the broker deliver the unacknowledged ones again; none is skipped.
//! - **One core.** The consumer runs on the input's placement core (`[placement]` in the
//!   tuning profile), else the first ingest core; lapin's threads run on the output cores
//!   ([`crate::amqp`]). A broker that is down is a warning; connecting is tried again with a
//!   backoff.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::QueueDeclareOptions;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Deserialize;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::amqp::{Broker, Link, Prepare};
use crate::config::plan::SplitterPlan;
use crate::limits::{
    AMQP_INPUT_MESSAGES_PER_TURN, AMQP_PREFETCH_MAX, AMQP_RECONNECT_MAX, AMQP_RECONNECT_MIN,
};
use crate::message::now_ns;
use crate::runtime::backoff::Backoff;
use crate::runtime::shard::Shard;
use crate::splitter::{Splitter, StreamBuffer};
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::Metric;

/// `AMQPInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAmqpInput {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// The exchange to declare and bind the queue to.
    pub exchange: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    pub exchange_type: String,
    /// Whether the exchange survives a broker restart (default false).
    pub exchange_durability: Option<bool>,
    /// Whether the broker deletes the exchange when its last queue is unbound (default true).
    pub exchange_auto_delete: Option<bool>,
    /// The binding's routing key (default empty).
    pub routing_key: Option<String>,
    /// Deliveries the broker may have unacknowledged at this input (default 2).
    pub prefetch_count: Option<u64>,
    /// The queue (default empty: the broker names it).
    pub queue: Option<String>,
    /// Whether the queue survives a broker restart (default false).
    pub queue_durability: Option<bool>,
    /// Whether the queue is this connection's alone (default false).
    pub queue_exclusive: Option<bool>,
    /// Whether the broker deletes the queue when its last consumer leaves (default true).
    pub queue_auto_delete: Option<bool>,
    /// Milliseconds a message may wait in the queue (`x-message-ttl`); -1 (default): no bound.
    pub queue_ttl: Option<i64>,
    /// Not available yet (`docs/amqp.md`).
    pub tls: Option<crate::tls::RawTls>,
}

/// AMQPInput, planned.
#[derive(Debug, Clone)]
pub struct AmqpInputKind {
    /// The broker and the exchange.
    pub broker: Broker,
    /// `routing_key`.
    pub routing_key: String,
    /// `prefetch_count`.
    pub prefetch_count: u16,
    /// `queue`.
    pub queue: String,
    /// `queue_durability`, `queue_exclusive`, `queue_auto_delete`.
    pub queue_options: QueueDeclareOptions,
    /// `queue_ttl`, when set.
    pub queue_ttl: Option<u32>,
    /// The CPU whose core runs the consumer.
    pub cpu: usize,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["AMQPInput"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            let raw: RawAmqpInput = own.parse()?;
            let kind = plan_kind(section, context.global, &raw)?;
            let common = common.with_defaults("NullSplitter", &[]);
            super::plan::input_plan(section, context, common, Arc::new(kind))
        },
    };

fn plan_kind(
    section: &crate::config::Section,
    global: &crate::config::plan::GlobalPlan,
    raw: &RawAmqpInput,
) -> Result<AmqpInputKind, crate::config::ConfigError> {
    let broker = crate::amqp::broker(
        section,
        global,
        &raw.url,
        (&raw.exchange, &raw.exchange_type),
        (raw.exchange_durability, raw.exchange_auto_delete),
        raw.tls.as_ref(),
    )?;
    let routing_key = raw.routing_key.clone().unwrap_or_default();
    crate::amqp::short_string(section, "routing_key", &routing_key)?;
    let queue = raw.queue.clone().unwrap_or_default();
    crate::amqp::short_string(section, "queue", &queue)?;
    let prefetch_count = match raw.prefetch_count {
        None => 2,
        Some(count @ 1..=AMQP_PREFETCH_MAX) => count as u16,
        Some(count) => {
            return Err(section.error(
                Some("prefetch_count"),
                format!("{count} is outside 1 to {AMQP_PREFETCH_MAX}"),
            ))
        }
    };
    let queue_ttl = match raw.queue_ttl {
        None | Some(-1) => None,
        Some(ttl) => Some(u32::try_from(ttl).map_err(|_| {
            section.error(
                Some("queue_ttl"),
                format!("{ttl} is not -1 (no bound) or 0 to {} ms", u32::MAX),
            )
        })?),
    };
    let queue_options = QueueDeclareOptions {
        durable: raw.queue_durability.unwrap_or(false),
        exclusive: raw.queue_exclusive.unwrap_or(false),
        auto_delete: raw.queue_auto_delete.unwrap_or(true),
        ..QueueDeclareOptions::default()
    };
    let cpu = global
        .placement
        .get(&section.name)
        .copied()
        .or_else(|| global.ingest_cores.first().copied())
        .unwrap_or(global.output_core);
    Ok(AmqpInputKind {
        broker,
        routing_key,
        prefetch_count,
        queue,
        queue_options,
        queue_ttl,
        cpu,
    })
}

impl super::InputKind for AmqpInputKind {
    fn type_name(&self) -> &'static str {
        "AMQPInput"
    }

    fn describe(&self) -> String {
        let queue = if self.queue.is_empty() {
            "a queue the broker names"
        } else {
            &self.queue
        };
        format!(
            "amqp {} exchange {} ({}) routing key `{}` into {queue} (on CPU {}, client threads on {:?})",
            self.broker.shown,
            self.broker.exchange,
            self.broker.exchange_type,
            self.routing_key,
            self.cpu,
            self.broker.client_cpus
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
        let consuming = consume(shard.clone(), input, self.clone());
        glommio::spawn_local(consuming).detach();
        Ok(())
    }
}

impl AmqpInputKind {
    /// Declares and binds the queue on a new channel and starts consuming it.
    fn prepare(&self) -> Prepare {
        let kind = self.clone();
        Box::new(move |channel: lapin::Channel| {
            Box::pin(async move {
                channel
                    .basic_qos(kind.prefetch_count, BasicQosOptions::default())
                    .await?;
                let mut arguments = FieldTable::default();
                if let Some(ttl) = kind.queue_ttl {
                    arguments.insert("x-message-ttl".into(), AMQPValue::LongUInt(ttl));
                }
                let queue = channel
                    .queue_declare(&kind.queue, kind.queue_options, arguments)
                    .await?;
                let name = queue.name().as_str().to_string();
                channel
                    .queue_bind(
                        &name,
                        &kind.broker.exchange,
                        &kind.routing_key,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                let consumer = channel
                    .basic_consume(
                        &name,
                        "gyges",
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                Ok(Some(consumer))
            })
        })
    }
}

/// Connects (again, with a backoff, while the broker is down) and serves the deliveries until
/// the core stops.
async fn consume(shard: Rc<Shard>, input: Rc<InputContext>, kind: AmqpInputKind) {
    let _guard = shard.connection_opened();
    let mut backoff = Backoff::new(AMQP_RECONNECT_MIN, AMQP_RECONNECT_MAX);
    let mut warnings = LogLimit::new(LOG_INTERVAL);
    let name = input.plan.name.clone();
    let Some((mut splitter, mut buffer)) = input.stream_parts(input.max_message_size) else {
        return;
    };
    while !shard.stop.is_stopping() {
        let connected = crate::amqp::connect(&kind.broker, &name, false, Some(kind.prepare()));
        let mut link = match connected.await {
            Ok(link) => link,
            Err(error) => {
                shard
                    .telemetry
                    .add(shard.core, input.plugin, Metric::Errors, 1);
                let wait = backoff.step();
                if let Some(count) = warnings.note(Instant::now()) {
                    tracing::warn!(input = %name, broker = %kind.broker.shown, %error, attempts = count, "amqp: the broker cannot be reached; trying again in {wait:?}");
                }
                futures_lite::future::or(glommio::timer::sleep(wait), shard.stop.wait()).await;
                continue;
            }
        };
        tracing::info!(input = %name, broker = %kind.broker.shown, "amqp: connected");
        backoff.reset();
        if let Some(consumer) = link.consumer.take() {
            let parts = (&mut splitter, &mut buffer);
            serve(&shard, &input, &link, consumer, parts).await;
        }
        if !shard.stop.is_stopping() {
            tracing::warn!(input = %name, broker = %kind.broker.shown, "amqp: the connection was lost; connecting again (unacknowledged deliveries come again)");
        }
        crate::amqp::close(link);
    }
}

/// Routes the deliveries of `consumer` turn by turn, acknowledging each turn once it is
/// shipped; returns at stop or when the connection is lost.
async fn serve(
    shard: &Rc<Shard>,
    input: &Rc<InputContext>,
    link: &Link,
    mut consumer: lapin::Consumer,
    (splitter, buffer): (&mut Splitter, &mut StreamBuffer),
) {
    let null_splitter = matches!(input.plan.splitter, SplitterPlan::Null);
    let meta = input.line_meta(String::new());
    let (telemetry, core, plugin) = (shard.telemetry.clone(), shard.core, input.plugin);
    let mut turn: Vec<Delivery> = Vec::with_capacity(AMQP_INPUT_MESSAGES_PER_TURN);
    loop {
        let first = futures_lite::future::or(async { Some(consumer.next().await) }, async {
            shard.stop.wait().await;
            None
        })
        .await;
        let Some(Some(Ok(first))) = first else {
            // The stop, or the stream ended with the connection.
            return;
        };
        turn.push(first);
        while turn.len() < AMQP_INPUT_MESSAGES_PER_TURN {
            match futures_lite::future::poll_once(consumer.next()).await {
                Some(Some(Ok(delivery))) => turn.push(delivery),
                _ => break,
            }
        }
        let last_tag = turn.last().map_or(0, |delivery| delivery.delivery_tag);
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            for delivery in turn.drain(..) {
                let body = &delivery.data;
                telemetry.add(core, plugin, Metric::BytesRead, body.len() as u64);
                let (now, router) = (now_ns(), &mut *router);
                if !null_splitter {
                    super::kafka::split_record(
                        body,
                        input,
                        (&mut *splitter, &mut *buffer),
                        &meta,
                        &mut uuids,
                        router,
                        shard,
                    );
                } else if body.len() > input.max_message_size {
                    telemetry.add(core, plugin, Metric::OversizeRecords, 1);
                } else {
                    deliver_record(
                        body, input, &meta, now, &mut uuids, router, &telemetry, core,
                    );
                }
            }
        }
        publish_splitter_stats(splitter, &telemetry, core, plugin);
        shard.ship_present().await;
        let ack = BasicAckOptions { multiple: true };
        if let Err(error) = link.channel.basic_ack(last_tag, ack).await {
            tracing::debug!(input = %input.plan.name, %error, "amqp: an acknowledgement failed");
            return;
        }
        glommio::yield_if_needed().await;
    }
}
