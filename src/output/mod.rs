//! Outputs: where routed messages go, as seen from one core.
//!
//! Each core has one [`Sink`] per output. The router encodes a matching message straight into
//! the sink's current [`Batch`]; a batch is shipped when it is full, when its flush policy is
//! due, and at shutdown. Shipping depends on who owns the destination:
//! - a file this core owns (`%{core}` paths, or any file on the output core): written here,
//!   through io_uring, at an offset reserved when the batch is taken;
//! - a file another core owns: pushed over this core's SPSC ring to the owner
//!   ([`crate::runtime::ring`]); a full ring makes this core wait, so it stops reading its
//!   sockets and TCP pushes back on the senders;
//! - a TCP destination: queued for this core's own connection ([`tcp`]);
//! - stdout ([`log`]);
//! - a durable output's disk queue on this core ([`durable`]), delivered by consumer tasks.
//!
//! Memory per sink is bounded by one batch being filled plus what its destination holds.
//!
//! Delivery classes (`delivery`, `docs/delivery.md`): `memory` waits where a destination is
//! full, as above; `best_effort` never makes the core wait on a destination: a batch for a
//! full ring or a full TCP queue is dropped and counted (`dropped_total`). A file this core
//! writes itself is the core's own io_uring write (to the page cache): the connection that
//! shipped the batch waits for it as with `memory`, while the core serves its other
//! connections; at most [`crate::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX`] such writes
//! are in flight per file, and a batch that would be one more is dropped and counted (a stalled
//! disk makes the core drop, never pile up). `durable` ships to the disk queue.

pub mod acked;
pub mod durable;
pub mod file;
pub mod log;
pub mod tcp;
pub mod udp;

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::plan::{EncoderPlan, GlobalPlan};
use crate::encoder::{Encoder, EncoderError, PayloadEncoder, PayloadOptions, ProtobufEncoder};
use crate::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX as BEST_EFFORT_FILE_WRITES_MAX;
use crate::message::MessageView;
pub use crate::runtime::ring::Batch;
use crate::runtime::ring::{Abandoned, BatchProducer};
use crate::telemetry::{Metric, Telemetry};

/// Room for a batch: it ships once past `batch_bytes`, so it must also hold the record that
/// crosses the line (the largest message, framed) without growing, which would copy it all.
fn batch_capacity(batch_bytes: usize, message_bytes_max: usize) -> usize {
    batch_bytes + message_bytes_max + crate::limits::FRAME_OVERHEAD_BYTES_MAX
}

/// An output's encoder on one core.
pub enum SinkEncoder {
    Builtin(Encoder),
    /// Graphite plaintext lines from `heka.statmetric` messages.
    Carbon,
    /// A Lua encoder and the scratch buffer it writes into.
    #[cfg(feature = "lua")]
    Sandbox(Box<crate::encoder::sandbox::SandboxEncoder>, Vec<u8>),
}

/// Builds the encoder an output's plan names (on the core that will use it: a Lua state
/// stays on its core).
///
/// # Errors
/// An unsupported `ts_format`, a size out of range, or a Lua script that does not load.
pub fn build_encoder(plan: &EncoderPlan, global: &GlobalPlan) -> Result<SinkEncoder, String> {
    let max = global.max_message_size;
    let builtin = match plan {
        EncoderPlan::Protobuf => ProtobufEncoder::new(max).map(Encoder::Protobuf),
        EncoderPlan::Payload {
            append_newlines,
            prefix_ts,
            ts_format,
            ts_from_message,
        } => {
            let options = PayloadOptions {
                append_newlines: *append_newlines,
                prefix_ts: *prefix_ts,
                ts_format: ts_format.clone(),
                ts_from_message: *ts_from_message,
            };
            PayloadEncoder::new(&options, max).map(Encoder::Payload)
        }
        EncoderPlan::Carbon => return Ok(SinkEncoder::Carbon),
        #[cfg(feature = "lua")]
        EncoderPlan::Sandbox { name, config } => {
            let host = crate::config::plan::sandbox_host_info(global);
            return crate::encoder::sandbox::SandboxEncoder::new(name, config, &host)
                .map(|encoder| SinkEncoder::Sandbox(Box::new(encoder), Vec::new()))
                .map_err(|error| error.to_string());
        }
    };
    builtin
        .map(SinkEncoder::Builtin)
        .map_err(|error: EncoderError| error.to_string())
}

/// When a partly filled batch is worth shipping (Heka's flush_interval, flush_count and
/// flush_operator).
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    pub interval: Duration,
    pub count: u64,
    /// `OR` rather than `AND`.
    pub either: bool,
}

impl FlushPolicy {
    /// Ship as soon as there is anything (TCP and stdout).
    pub const PROMPT: FlushPolicy = FlushPolicy {
        interval: Duration::from_millis(1),
        count: 1,
        either: true,
    };

    fn is_due(&self, batch: &Batch, since_flush: Duration) -> bool {
        if batch.is_empty() {
            return false;
        }
        let interval_due = since_flush >= self.interval;
        let count_due = batch.messages >= self.count;
        if self.either {
            interval_due || count_due
        } else {
            interval_due && count_due
        }
    }
}

/// Where a sink's batches go.
pub enum Target {
    /// A file this core writes itself.
    File(Rc<file::FileWriter>),
    /// A file the output core owns.
    Ring(Rc<BatchProducer>),
    /// This core's connection to a TCP destination.
    Tcp(Rc<tcp::TcpQueue>),
    /// This core's UDP socket toward a destination.
    Udp(Rc<udp::UdpSender>),
    /// Standard output.
    Log,
    /// This core's disk queue of a durable output.
    Durable(Rc<durable::DurableQueue>),
}

/// One output as seen from one core.
pub struct Sink {
    /// The output's plugin index in [`Telemetry`].
    pub plugin: usize,
    encoder: SinkEncoder,
    use_framing: bool,
    batch: Batch,
    batch_bytes: usize,
    message_bytes_max: usize,
    policy: FlushPolicy,
    last_flush: Instant,
    pub target: Target,
    /// `delivery = "best_effort"`: drop a batch rather than wait for its destination.
    drop_when_full: bool,
}

impl Sink {
    /// A sink encoding with `encoder` into batches of about `batch_bytes`, for messages of at
    /// most `message_bytes_max`.
    pub fn new(
        plugin: usize,
        encoder: SinkEncoder,
        use_framing: bool,
        (batch_bytes, message_bytes_max): (usize, usize),
        policy: FlushPolicy,
        target: Target,
    ) -> Sink {
        Sink {
            plugin,
            encoder,
            use_framing,
            batch: Batch::with_capacity(batch_capacity(batch_bytes, message_bytes_max)),
            batch_bytes,
            message_bytes_max,
            policy,
            last_flush: Instant::now(),
            target,
            drop_when_full: false,
        }
    }

    /// `delivery = "best_effort"`: batches that would wait for a full ring, or find the most
    /// writes in flight to a file this core owns, are dropped and counted instead (a TCP queue
    /// is told when built).
    #[must_use = "the sink is returned changed"]
    pub fn dropping_when_full(mut self, drop_when_full: bool) -> Sink {
        self.drop_when_full = drop_when_full;
        self
    }

    /// Encodes one message into the current batch. A message the encoder has nothing for
    /// (PayloadEncoder and no Payload) adds nothing.
    #[inline]
    pub fn accept(&mut self, message: &MessageView<'_>, telemetry: &Telemetry, core: usize) {
        let encoded = match &mut self.encoder {
            SinkEncoder::Builtin(encoder) if self.use_framing => encoder
                .encode_framed(message, None, &mut self.batch.bytes)
                .map_err(|_| ()),
            SinkEncoder::Builtin(encoder) => encoder
                .encode(message, &mut self.batch.bytes)
                .map_err(|_| ()),
            SinkEncoder::Carbon => {
                let before = self.batch.bytes.len();
                crate::stats::carbon::carbon_lines(message, &mut self.batch.bytes);
                Ok(self.batch.bytes.len() - before)
            }
            #[cfg(feature = "lua")]
            SinkEncoder::Sandbox(encoder, scratch) => sandbox_encode(
                encoder,
                scratch,
                message,
                self.use_framing,
                &mut self.batch.bytes,
            ),
        };
        match encoded {
            Ok(0) => {}
            Ok(_) => self.batch.messages += 1,
            Err(()) => telemetry.add(core, self.plugin, Metric::EncodeFailures, 1),
        }
    }

    /// Whether the current batch should be shipped now.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.batch.bytes.len() >= self.batch_bytes
    }

    /// Whether the flush policy says a partly filled batch should go.
    pub fn is_due(&self, now: Instant) -> bool {
        self.policy
            .is_due(&self.batch, now.saturating_duration_since(self.last_flush))
    }

    /// Takes the current batch, leaving an empty one, and the target to ship it to.
    pub fn take(&mut self) -> Option<(Batch, ShipTo)> {
        self.last_flush = Instant::now();
        if self.batch.is_empty() {
            return None;
        }
        let capacity = batch_capacity(self.batch_bytes, self.message_bytes_max);
        // A ring gives back the buffers its consumer has written: fill one of them again.
        let fresh = match &self.target {
            Target::Ring(producer) => producer.fresh_batch(capacity),
            _ => Batch::with_capacity(capacity),
        };
        let batch = std::mem::replace(&mut self.batch, fresh);
        let to = match &self.target {
            Target::File(writer) => ShipTo::File(writer.clone(), self.drop_when_full),
            Target::Ring(producer) => ShipTo::Ring(producer.clone(), self.drop_when_full),
            Target::Tcp(queue) => ShipTo::Tcp(queue.clone()),
            Target::Udp(sender) => ShipTo::Udp(sender.clone()),
            Target::Log => ShipTo::Log,
            Target::Durable(queue) => ShipTo::Durable(queue.clone()),
        };
        Some((batch, to))
    }
}

/// A batch's destination, detached from the sink so the router can be used while it ships.
pub enum ShipTo {
    /// With `true` (best effort): dropped if the most writes are in flight.
    File(Rc<file::FileWriter>, bool),
    /// With `true` (best effort): dropped if the ring is full.
    Ring(Rc<BatchProducer>, bool),
    Tcp(Rc<tcp::TcpQueue>),
    Udp(Rc<udp::UdpSender>),
    Log,
    Durable(Rc<durable::DurableQueue>),
}

impl ShipTo {
    /// Delivers `batch`, waiting while the destination is full (best effort: dropping and
    /// counting it instead).
    pub async fn ship(self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        match self {
            ShipTo::File(writer, false) => writer.write(batch, telemetry, core, plugin).await,
            ShipTo::File(writer, true) if writer.in_flight() >= BEST_EFFORT_FILE_WRITES_MAX => {
                telemetry.add(core, plugin, Metric::Dropped, batch.messages);
            }
            ShipTo::File(writer, true) => writer.write(batch, telemetry, core, plugin).await,
            // A consumer that has gone is logged by the producer (rate-limited).
            ShipTo::Ring(producer, false) => {
                if let Err(Abandoned(batch)) = producer.push(batch).await {
                    telemetry.add(core, plugin, Metric::Dropped, batch.messages);
                }
            }
            ShipTo::Ring(producer, true) => {
                if let Err(refused) = producer.try_push(batch) {
                    let messages = refused.into_batch().messages;
                    telemetry.add(core, plugin, Metric::Dropped, messages);
                }
            }
            ShipTo::Tcp(queue) => queue.enqueue(batch, telemetry, core, plugin).await,
            ShipTo::Udp(sender) => sender.send(batch, telemetry, core, plugin).await,
            ShipTo::Log => log::write(batch, telemetry, core, plugin),
            ShipTo::Durable(queue) => queue.append(batch, telemetry, core, plugin).await,
        }
    }
}

/// Runs a Lua encoder and appends its bytes (framed if asked). A terminated encoder fails
/// every message from then on; the failures are counted.
#[cfg(feature = "lua")]
fn sandbox_encode(
    encoder: &mut crate::encoder::sandbox::SandboxEncoder,
    scratch: &mut Vec<u8>,
    message: &MessageView<'_>,
    use_framing: bool,
    out: &mut Vec<u8>,
) -> Result<usize, ()> {
    use crate::encoder::sandbox::Encoded;
    match encoder.encode(message, scratch) {
        Ok(Encoded::Bytes) if use_framing => {
            let before = out.len();
            crate::message::framing::write_frame(out, scratch, None).map_err(|_| ())?;
            Ok(out.len() - before)
        }
        Ok(Encoded::Bytes) => {
            out.extend_from_slice(scratch);
            Ok(scratch.len())
        }
        Ok(Encoded::Skipped) => Ok(0),
        Ok(Encoded::Failed) | Err(_) => Err(()),
    }
}
