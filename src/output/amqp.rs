//! AMQPOutput: every message it is routed, encoded (ProtobufEncoder by default), published as
//! one AMQP message to `exchange` with `routing_key`, through lapin (`docs/amqp.md`).
//!
//! - **One connection per output**, on the output's owner core (a single writer): the other
//!   cores hand their batches over their rings (memory, best effort) or their disk queues
//!   (durable). lapin's own threads run on the output cores ([`crate::amqp`]).
//! - **Inside a batch** each encoding goes behind a 4-byte length, so the owner cuts the batch
//!   back into messages without decoding anything; the length never leaves the process.
//! - **Publisher confirms** are always on: a message counts as sent when the broker confirmed
//!   it. At most [`AMQP_CONFIRMS_IN_FLIGHT_MAX`] publishes await their confirm; the next one
//!   waits for the oldest.
//! - **The connection** is kept by a task of the owner core: a broker that is down (at
//!   startup too) is a warning, and connecting is tried again with a backoff from
//!   [`AMQP_RECONNECT_MIN`] to [`AMQP_RECONNECT_MAX`].
//! - **Delivery classes.** `memory`: while there is no connection the owner waits, its rings
//!   fill, and ingest waits; a publish the lost connection refused is made again on the next
//!   one; what the broker had not confirmed when the connection was lost is counted as
//!   dropped. `best_effort`: a message that finds no connection is dropped and counted.
//!   `durable`: the owner delivers every core's disk queue; a queue read is committed only
//!   once the broker confirmed each of its messages, and sent again from the last commit
//!   otherwise (duplicates, never a gap).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use lapin::options::BasicPublishOptions;
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::BasicProperties;
use serde::Deserialize;

use super::length_framed::{encodings, LengthFramedKind};
use super::{Batch, Opened, OutputCore, OutputKind, Writers};
use crate::amqp::{Broker, Link};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{
    AMQP_CONFIRMS_IN_FLIGHT_MAX, AMQP_MESSAGE_BYTES_MAX, AMQP_POLL_INTERVAL, AMQP_RECONNECT_MAX,
    AMQP_RECONNECT_MIN, DRAIN_TIMEOUT,
};
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, ReadBatch};
use crate::runtime::backoff::Backoff;
use crate::runtime::stop::LocalStop;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::{Metric, Telemetry};

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["AMQPOutput"],
    plan: plan_amqp_output,
};

/// `AMQPOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAmqpOutput {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// The exchange to declare and publish to.
    pub exchange: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    pub exchange_type: String,
    /// Whether the exchange survives a broker restart (default false).
    pub exchange_durability: Option<bool>,
    /// Whether the broker deletes the exchange when its last queue is unbound (default true).
    pub exchange_auto_delete: Option<bool>,
    /// The routing key of every message (default empty).
    pub routing_key: Option<String>,
    /// Delivery mode 2: the broker writes the message to disk (default false).
    pub persistent: Option<bool>,
    /// The content type of every message (default `application/hekad`).
    pub content_type: Option<String>,
    /// Not available yet (`docs/amqp.md`).
    pub tls: Option<crate::tls::RawTls>,
}

/// AMQPOutput, planned.
#[derive(Debug, Clone)]
pub struct AmqpOutputKind {
    /// The broker and the exchange.
    pub broker: Broker,
    /// `routing_key`.
    pub routing_key: String,
    /// `persistent`.
    pub persistent: bool,
    /// `content_type`.
    pub content_type: String,
}

fn plan_amqp_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawAmqpOutput = own.parse()?;
    let broker = crate::amqp::broker(
        section,
        context.global,
        &raw.url,
        (&raw.exchange, &raw.exchange_type),
        (raw.exchange_durability, raw.exchange_auto_delete),
        raw.tls.as_ref(),
    )?;
    let routing_key = raw.routing_key.clone().unwrap_or_default();
    crate::amqp::short_string(section, "routing_key", &routing_key)?;
    let content_type = raw
        .content_type
        .clone()
        .unwrap_or_else(|| "application/hekad".to_string());
    crate::amqp::short_string(section, "content_type", &content_type)?;
    let default = common.with_defaults("ProtobufEncoder", false, true);
    let encoder = match default.encoder {
        super::plan::EncoderChoice::Named { name, default } => {
            crate::encoder::resolve(section, context, name, default)?
        }
        super::plan::EncoderChoice::Fixed(encoder) => encoder,
    };
    let common = super::plan::Common {
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(LengthFramedKind::new(
            encoder,
            AMQP_MESSAGE_BYTES_MAX,
        ))),
        ..default
    };
    let kind = AmqpOutputKind {
        broker,
        routing_key,
        persistent: raw.persistent.unwrap_or(false),
        content_type,
    };
    super::plan::output_plan(section, context, common, |_| Ok(Arc::new(kind)))
}

impl OutputKind for AmqpOutputKind {
    fn type_name(&self) -> &'static str {
        "AMQPOutput"
    }

    fn describe(&self, output: &OutputPlan) -> String {
        format!(
            "amqp {} exchange {} ({}) routing key `{}` (one connection on CPU {}, client threads on {:?})",
            self.broker.shown,
            self.broker.exchange,
            self.broker.exchange_type,
            self.routing_key,
            output.owner_core,
            self.broker.client_cpus
        )
    }

    fn writers(&self) -> Writers {
        Writers::Owner
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let publisher = Rc::new(Publisher::new(self, core));
            let keeper = keep_connected(
                publisher.clone(),
                core.telemetry.clone(),
                core.row,
                core.plugin,
            );
            let keeper = crate::runtime::failure::plugin_task(&core.output.name, keeper);
            let sender = Rc::new(AmqpSender {
                publisher,
                drop_when_down: core.best_effort(),
                stopping_since: Cell::new(None),
            });
            Ok(Opened {
                destination: sender,
                tasks: vec![glommio::spawn_local(keeper).detach()],
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
            // The owner delivers every core's queue through its one connection.
            if core.output.owner_core != core.cpu {
                return Ok(Vec::new());
            }
            let publisher = Rc::new(Publisher::new(self, core));
            let keeper = keep_connected(
                publisher.clone(),
                core.telemetry.clone(),
                core.row,
                core.plugin,
            );
            let keeper = crate::runtime::failure::plugin_task(&core.output.name, keeper);
            let mut tasks = vec![glommio::spawn_local(keeper).detach()];
            for row in 0..core.plan.global.cores.len() {
                let records = AmqpRecords {
                    publisher: publisher.clone(),
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
                tasks.push(glommio::spawn_local(run).detach());
            }
            Ok(tasks)
        })
    }
}

/// The owner core's connection and what it publishes through it.
struct Publisher {
    kind: AmqpOutputKind,
    name: String,
    /// The connection, when there is one that is up.
    link: RefCell<Option<Link>>,
    /// Publishes awaiting their confirm, oldest first, with the bytes each carried.
    confirms: RefCell<VecDeque<(PublisherConfirm, u64)>>,
    stop: Rc<LocalStop>,
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
pub enum AmqpDeliveryError {
    /// No connection to the broker.
    #[error("no connection to the broker")]
    Down,
    /// The broker refused a publish or did not confirm it.
    #[error("the broker did not confirm a publish: {0}")]
    Unconfirmed(String),
}

impl Publisher {
    fn new(kind: &AmqpOutputKind, core: &OutputCore<'_>) -> Publisher {
        Publisher {
            kind: kind.clone(),
            name: core.output.name.clone(),
            link: RefCell::new(None),
            confirms: RefCell::new(VecDeque::with_capacity(AMQP_CONFIRMS_IN_FLIGHT_MAX)),
            stop: core.stop.clone(),
        }
    }

    /// The channel of the connection, if it is up.
    fn channel(&self) -> Option<lapin::Channel> {
        let link = self.link.borrow();
        link.as_ref()
            .filter(|link| link.is_up())
            .map(|link| link.channel.clone())
    }

    /// Publishes one message; returns its confirm.
    async fn publish(
        &self,
        channel: &lapin::Channel,
        value: &[u8],
    ) -> lapin::Result<PublisherConfirm> {
        let mut properties =
            BasicProperties::default().with_content_type(self.kind.content_type.as_str().into());
        if self.kind.persistent {
            properties = properties.with_delivery_mode(2);
        }
        channel
            .basic_publish(
                &self.kind.broker.exchange,
                &self.kind.routing_key,
                BasicPublishOptions::default(),
                value,
                properties,
            )
            .await
    }

    /// Counts the confirms that have come (all of them, waiting, when `wait`; else only
    /// those already there, and when the window is full, the oldest, waiting for it).
    async fn reap(&self, wait: bool, telemetry: &Telemetry, core: usize, plugin: usize) {
        let (mut sent, mut bytes, mut lost) = (0, 0, 0);
        loop {
            let front = self.confirms.borrow_mut().pop_front();
            let Some((mut confirm, size)) = front else {
                break;
            };
            let full = self.confirms.borrow().len() + 1 >= AMQP_CONFIRMS_IN_FLIGHT_MAX;
            let result = if wait || full {
                Some((&mut confirm).await)
            } else {
                futures_lite::future::poll_once(&mut confirm).await
            };
            match result {
                None => {
                    self.confirms.borrow_mut().push_front((confirm, size));
                    break;
                }
                Some(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => {
                    sent += 1;
                    bytes += size;
                }
                Some(Ok(Confirmation::Nack(_)) | Err(_)) => lost += 1,
            }
        }
        if sent > 0 {
            telemetry.add(core, plugin, Metric::Sent, sent);
            telemetry.add(core, plugin, Metric::SentBytes, bytes);
        }
        if lost > 0 {
            tracing::warn!(output = %self.name, lost, "amqp: the broker did not confirm messages (nacked, or the connection was lost); they are counted as dropped");
            telemetry.add(core, plugin, Metric::Errors, lost);
            telemetry.add(core, plugin, Metric::Dropped, lost);
        }
    }

    /// Drops a connection found down (its confirms fail by themselves).
    fn forget_link(&self) {
        let link = self.link.borrow_mut().take();
        if let Some(link) = link {
            crate::amqp::close(link);
        }
    }
}

/// Keeps the owner's connection up until the core stops; then, once nothing ships any more,
/// waits for the outstanding confirms (the drain timeout at most) and closes it.
async fn keep_connected(
    publisher: Rc<Publisher>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    let mut backoff = Backoff::new(AMQP_RECONNECT_MIN, AMQP_RECONNECT_MAX);
    let mut warnings = LogLimit::new(LOG_INTERVAL);
    let name = publisher.name.clone();
    let shown = publisher.kind.broker.shown.clone();
    while !publisher.stop.is_stopping() {
        publisher.reap(false, &telemetry, core, plugin).await;
        let up = publisher.link.borrow().as_ref().is_some_and(Link::is_up);
        if up {
            futures_lite::future::or(
                glommio::timer::sleep(AMQP_POLL_INTERVAL),
                publisher.stop.wait(),
            )
            .await;
            continue;
        }
        publisher.forget_link();
        match crate::amqp::connect(&publisher.kind.broker, &name, true, None).await {
            Ok(link) => {
                tracing::info!(output = %name, broker = %shown, "amqp: connected");
                backoff.reset();
                *publisher.link.borrow_mut() = Some(link);
            }
            Err(error) => {
                let wait = backoff.step();
                if let Some(count) = warnings.note(Instant::now()) {
                    tracing::warn!(output = %name, broker = %shown, %error, attempts = count, "amqp: the broker cannot be reached; trying again in {wait:?}");
                }
                futures_lite::future::or(glommio::timer::sleep(wait), publisher.stop.wait()).await;
            }
        }
    }
    // Once nothing ships any more, the broker has the drain timeout to confirm the rest.
    let since = Instant::now();
    while Rc::strong_count(&publisher) > 1 && since.elapsed() < DRAIN_TIMEOUT * 3 {
        publisher.reap(false, &telemetry, core, plugin).await;
        glommio::timer::sleep(AMQP_POLL_INTERVAL).await;
    }
    let drained = futures_lite::future::or(
        async {
            publisher.reap(true, &telemetry, core, plugin).await;
            true
        },
        async {
            glommio::timer::sleep(DRAIN_TIMEOUT).await;
            false
        },
    )
    .await;
    if !drained {
        let lost = publisher.confirms.borrow().len() as u64;
        tracing::warn!(output = %name, lost, "amqp: messages the broker did not confirm within the drain timeout are counted as dropped");
        telemetry.add(core, plugin, Metric::Dropped, lost);
        publisher.confirms.borrow_mut().clear();
    }
    publisher.forget_link();
}

/// The owner core's destination (memory and best-effort delivery).
struct AmqpSender {
    publisher: Rc<Publisher>,
    drop_when_down: bool,
    /// When this core's stop was first seen while waiting for a connection.
    stopping_since: Cell<Option<Instant>>,
}

impl AmqpSender {
    /// Whether a wait for the connection should end: the core has been stopping for longer
    /// than the drain timeout.
    fn give_up(&self) -> bool {
        if !self.publisher.stop.is_stopping() {
            return false;
        }
        let since = self.stopping_since.get().unwrap_or_else(|| {
            let now = Instant::now();
            self.stopping_since.set(Some(now));
            now
        });
        since.elapsed() > DRAIN_TIMEOUT
    }

    /// The channel to publish on: waits for one (memory) unless giving up; `None` when there
    /// is none to take (best effort) or the wait was given up.
    async fn channel(&self) -> Option<lapin::Channel> {
        loop {
            if let Some(channel) = self.publisher.channel() {
                return Some(channel);
            }
            if self.drop_when_down || self.give_up() {
                return None;
            }
            glommio::timer::sleep(AMQP_POLL_INTERVAL).await;
        }
    }

    async fn send(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let publisher = &self.publisher;
        let mut dropped = 0;
        for value in encodings(&batch.bytes) {
            loop {
                let Some(channel) = self.channel().await else {
                    dropped += 1;
                    break;
                };
                match publisher.publish(&channel, value).await {
                    Ok(confirm) => {
                        publisher
                            .confirms
                            .borrow_mut()
                            .push_back((confirm, value.len() as u64));
                        if publisher.confirms.borrow().len() >= AMQP_CONFIRMS_IN_FLIGHT_MAX {
                            publisher.reap(false, telemetry, core, plugin).await;
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "amqp: a publish failed; the connection is made again");
                        publisher.forget_link();
                    }
                }
            }
        }
        if dropped > 0 {
            telemetry.add(core, plugin, Metric::Dropped, dropped);
        }
        publisher.reap(false, telemetry, core, plugin).await;
    }
}

impl super::Destination for AmqpSender {
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

/// Durable delivery of one source queue through the owner's connection: every message of a
/// read is published, then every confirm awaited, before the read is committed.
struct AmqpRecords {
    publisher: Rc<Publisher>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
}

impl Deliver for AmqpRecords {
    type Error = AmqpDeliveryError;

    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, AmqpDeliveryError> {
        let publisher = &self.publisher;
        let Some(channel) = publisher.channel() else {
            // The consumer waits and offers the read again.
            glommio::timer::sleep(AMQP_POLL_INTERVAL * 10).await;
            return Err(AmqpDeliveryError::Down);
        };
        let mut confirms = Vec::new();
        let mut bytes = 0;
        for record in records.iter() {
            for value in encodings(record) {
                let confirm = publisher.publish(&channel, value).await.map_err(|error| {
                    publisher.forget_link();
                    AmqpDeliveryError::Unconfirmed(error.to_string())
                })?;
                bytes += value.len() as u64;
                confirms.push(confirm);
            }
        }
        let sent = confirms.len() as u64;
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(_) | Confirmation::NotRequested) => {}
                Ok(Confirmation::Nack(_)) => {
                    return Err(AmqpDeliveryError::Unconfirmed("nack".into()))
                }
                Err(error) => {
                    publisher.forget_link();
                    return Err(AmqpDeliveryError::Unconfirmed(error.to_string()));
                }
            }
        }
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        telemetry.add(core, plugin, Metric::Sent, sent);
        telemetry.add(core, plugin, Metric::SentBytes, bytes);
        Ok(Delivered::Done)
    }
}
