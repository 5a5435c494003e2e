//! One output as seen from one core: the [`Sink`] the router encodes into, its [`FlushPolicy`]
//! and the [`Target`] its batches ship to.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Destination;
use crate::encoder::{Encode, Framing};
use crate::message::framing::Signer;
use crate::message::MessageView;
use crate::queue::DurableQueue;
pub use crate::runtime::ring::Batch;
use crate::runtime::ring::{Abandoned, BatchProducer};
use crate::telemetry::{Metric, Telemetry, SANDBOX_GAUGE_CALLS};

/// Room for a batch: it ships once past `batch_bytes`, so it must also hold the record that
/// crosses the line (the largest message, framed) without growing, which would copy it all.
fn batch_capacity(batch_bytes: usize, message_bytes_max: usize) -> usize {
    batch_bytes + message_bytes_max + crate::limits::FRAME_OVERHEAD_BYTES_MAX
}

/// When a partly filled batch is worth shipping (Heka's flush_interval, flush_count and
/// flush_operator, and gyges's `flush_on_idle`).
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// Time since the last ship after which a partly filled batch is due (`flush_interval`).
    pub interval: Duration,
    /// Messages in a batch that make it due (`flush_count`).
    pub count: u64,
    /// `OR` rather than `AND`.
    pub either: bool,
    /// Also ship a partly filled batch when the input that fed it has read everything there
    /// was (a short read), at most once per [`crate::limits::IDLE_SHIP_GAP`]: a record then
    /// waits for its batch only while more input keeps coming. Under full load every read is
    /// full and batches fill as before.
    pub on_idle: bool,
}

impl FlushPolicy {
    /// Ship as soon as there is anything (TCP and stdout).
    pub const PROMPT: FlushPolicy = FlushPolicy {
        interval: Duration::from_millis(1),
        count: 1,
        either: true,
        on_idle: true,
    };

    /// Whether an input that has drained its source should ship `batch` now.
    fn is_idle_due(&self, batch: &Batch, since_flush: Duration) -> bool {
        self.on_idle
            && !batch.is_empty()
            && (self.either || batch.messages >= self.count)
            && since_flush >= crate::limits::IDLE_SHIP_GAP
    }

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

/// Where a sink's batches go. Cloning it is cheap (reference counts).
#[derive(Clone)]
pub enum Target {
    /// A single-writer destination another core owns: the ring to that core. With `true`
    /// (best effort), a batch that finds the ring full is dropped and counted.
    Ring(Rc<BatchProducer>, bool),
    /// This core's disk queue of a durable output.
    Durable(Rc<DurableQueue>),
    /// A destination this core writes itself (its plugin's [`Destination`]).
    Direct(Rc<dyn Destination>),
}

impl Target {
    /// Whether shipping a batch now would wait: a ring to the owner core with every slot
    /// taken, or a durable queue whose writer is waiting for room (`full_action = "block"`).
    /// A best-effort ring drops instead of waiting, so it never is; a destination this core
    /// writes itself is not asked.
    pub fn is_congested(&self) -> bool {
        match self {
            Target::Ring(producer, false) => producer.is_congested(),
            Target::Ring(_, true) | Target::Direct(_) => false,
            Target::Durable(queue) => queue.is_blocked(),
        }
    }

    /// Delivers `batch`, waiting while the destination is full (best effort: dropping and
    /// counting it instead).
    pub async fn ship(self, batch: Batch, telemetry: &Arc<Telemetry>, core: usize, plugin: usize) {
        match self {
            // A consumer that has gone is logged by the producer (rate-limited).
            Target::Ring(producer, false) => {
                if let Err(Abandoned(batch)) = producer.push(batch).await {
                    telemetry.add(core, plugin, Metric::Dropped, batch.messages);
                }
            }
            Target::Ring(producer, true) => {
                if let Err(refused) = producer.try_push(batch) {
                    let messages = refused.into_batch().messages;
                    telemetry.add(core, plugin, Metric::Dropped, messages);
                }
            }
            Target::Durable(queue) => queue.ship(batch, telemetry, core, plugin).await,
            Target::Direct(destination) => {
                destination.ship(batch, telemetry, core, plugin).await;
            }
        }
    }
}

/// One output as seen from one core.
pub struct Sink {
    /// The output's plugin index in [`Telemetry`].
    pub plugin: usize,
    encoder: Box<dyn Encode>,
    use_framing: bool,
    /// Signs each frame (`[name.signer]`; only with `use_framing`).
    signer: Option<std::sync::Arc<Signer>>,
    batch: Batch,
    batch_bytes: usize,
    message_bytes_max: usize,
    policy: FlushPolicy,
    last_flush: Instant,
    /// An input ran dry while this batch waited, too soon after the last ship to ship it
    /// again ([`crate::limits::IDLE_SHIP_GAP`]): the ticker ships it once the gap has passed
    /// ([`Sink::idle_deadline`]).
    idle_pending: bool,
    /// Messages accepted, wrapping: a Lua encoder's gauges are published every
    /// [`SANDBOX_GAUGE_CALLS`] of them.
    accepted: u32,
    /// Where this sink's batches ship: the owner's ring, this core's destination or disk queue.
    pub target: Target,
}

impl Sink {
    /// A sink encoding with `encoder` into batches of about `batch_bytes`, for messages of at
    /// most `message_bytes_max`.
    pub fn new(
        plugin: usize,
        encoder: Box<dyn Encode>,
        use_framing: bool,
        (batch_bytes, message_bytes_max): (usize, usize),
        policy: FlushPolicy,
        target: Target,
    ) -> Sink {
        Sink {
            plugin,
            encoder,
            use_framing,
            signer: None,
            batch: Batch::with_capacity(batch_capacity(batch_bytes, message_bytes_max)),
            batch_bytes,
            message_bytes_max,
            policy,
            last_flush: Instant::now(),
            idle_pending: false,
            accepted: 0,
            target,
        }
    }

    /// The sink signing each frame with `signer` (an output's `[name.signer]`).
    #[must_use]
    pub fn with_signer(mut self, signer: Option<std::sync::Arc<Signer>>) -> Sink {
        self.signer = signer;
        self
    }

    /// Encodes one message into the current batch. A message the encoder has nothing for
    /// (PayloadEncoder and no Payload) adds nothing.
    #[inline]
    pub fn accept(&mut self, message: &MessageView<'_>, telemetry: &Telemetry, core: usize) {
        let framing = if self.use_framing {
            Framing::Heka(self.signer.as_deref())
        } else {
            Framing::None
        };
        let encoded = self
            .encoder
            .encode_into(message, framing, &mut self.batch.bytes);
        match encoded {
            Ok(0) => {}
            Ok(_) => self.batch.messages += 1,
            Err(_) => telemetry.add(core, self.plugin, Metric::EncodeFailures, 1),
        }
        // The first message and every SANDBOX_GAUGE_CALLS-th after it.
        if self.accepted & (SANDBOX_GAUGE_CALLS - 1) == 0 {
            if let Some(usage) = self.encoder.sandbox_usage() {
                usage.publish(telemetry, core, self.plugin);
            }
        }
        self.accepted = self.accepted.wrapping_add(1);
    }

    /// Whether the current batch should be shipped now.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.batch.bytes.len() >= self.batch_bytes
    }

    /// Whether the flush policy says a partly filled batch should go (the tick asks), including
    /// a batch an input left idle within the gap after the last ship ([`Sink::ran_dry`]).
    pub fn is_due(&self, now: Instant) -> bool {
        let since_flush = now.saturating_duration_since(self.last_flush);
        self.policy.is_due(&self.batch, since_flush)
            || (self.idle_pending && self.policy.is_idle_due(&self.batch, since_flush))
    }

    /// An input has read everything there was ([`FlushPolicy::on_idle`]): whether the batch
    /// should go now. One that must wait for the gap is left to the ticker, which wakes at
    /// [`Sink::idle_deadline`].
    pub fn ran_dry(&mut self, now: Instant) -> bool {
        let since_flush = now.saturating_duration_since(self.last_flush);
        if self.policy.is_idle_due(&self.batch, since_flush) {
            return true;
        }
        let after_gap = since_flush.max(crate::limits::IDLE_SHIP_GAP);
        self.idle_pending |= self.policy.is_idle_due(&self.batch, after_gap);
        false
    }

    /// When a batch an input left idle within the gap ([`Sink::ran_dry`]) becomes due: the
    /// core's ticker wakes then rather than at its next tick.
    pub fn idle_deadline(&self) -> Option<Instant> {
        (self.idle_pending && !self.batch.is_empty())
            .then(|| self.last_flush + crate::limits::IDLE_SHIP_GAP)
    }

    /// Takes the current batch, leaving an empty one, and the target to ship it to.
    pub fn take(&mut self) -> Option<(Batch, Target)> {
        self.last_flush = Instant::now();
        self.idle_pending = false;
        if self.batch.is_empty() {
            return None;
        }
        let capacity = batch_capacity(self.batch_bytes, self.message_bytes_max);
        // A ring gives back the buffers its consumer has written: fill one of them again.
        let fresh = match &self.target {
            Target::Ring(producer, _) => producer.fresh_batch(capacity),
            _ => Batch::with_capacity(capacity),
        };
        let batch = std::mem::replace(&mut self.batch, fresh);
        Some((batch, self.target.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::OneByte;

    fn batch_of(messages: u64) -> Batch {
        let mut batch = Batch::with_capacity(64);
        batch
            .bytes
            .resize(usize::try_from(messages).expect("small") * 10, b'x');
        batch.messages = messages;
        batch
    }

    const GAP: Duration = crate::limits::IDLE_SHIP_GAP;

    struct Nowhere;

    impl Destination for Nowhere {
        fn ship<'a>(
            &'a self,
            _: Batch,
            _: &'a Telemetry,
            _: usize,
            _: usize,
        ) -> crate::component::LocalBoxFuture<'a, ()> {
            Box::pin(async {})
        }
    }

    /// A sink with one message in its batch, its last ship just now.
    fn sink_holding_one(on_idle: bool) -> (Sink, Instant) {
        let policy = FlushPolicy {
            interval: Duration::from_secs(600),
            count: 1,
            either: false,
            on_idle,
        };
        let target = Target::Direct(Rc::new(Nowhere));
        let mut sink = Sink::new(0, Box::new(OneByte), false, (4096, 1024), policy, target);
        let telemetry = Telemetry::new(1, vec!["out".to_string()]);
        let message = MessageView::Proto(crate::message::ProtoView::new(&[]));
        sink.accept(&message, &telemetry, 0);
        (sink, Instant::now())
    }

    /// An input that runs dry within the gap after the last ship leaves the batch to the
    /// ticker, which ships it once the gap has passed, not after `flush_interval`.
    #[test]
    fn a_batch_held_back_by_the_gap_ships_on_the_tick_after_it() {
        let (mut sink, now) = sink_holding_one(true);
        assert_eq!(sink.idle_deadline(), None, "no input has run dry yet");
        assert!(!sink.ran_dry(now), "within the gap");
        let deadline = sink.idle_deadline().expect("held back by the gap");
        assert!(
            deadline > now && deadline <= now + GAP,
            "due when the gap ends"
        );
        assert!(
            sink.is_due(deadline),
            "the ticker woken at the deadline ships it"
        );
        assert!(!sink.is_due(now), "the tick waits for the gap too");
        assert!(sink.is_due(now + GAP), "the tick ships it after the gap");
        assert!(sink.take().is_some());
        assert!(
            !sink.is_due(Instant::now() + GAP),
            "nothing left, nothing pending"
        );
        assert_eq!(sink.idle_deadline(), None, "shipped: no wake-up wanted");
    }

    #[test]
    fn without_on_idle_a_dry_input_leaves_the_batch_to_its_interval() {
        let (mut sink, now) = sink_holding_one(false);
        assert!(!sink.ran_dry(now + GAP));
        assert_eq!(
            sink.idle_deadline(),
            None,
            "nothing for the ticker to wake for"
        );
        assert!(!sink.is_due(now + GAP));
        assert!(sink.is_due(now + Duration::from_secs(600)));
    }

    #[test]
    fn an_idle_ship_needs_the_policy_a_batch_and_the_gap() {
        let policy = FlushPolicy::PROMPT;
        assert!(policy.is_idle_due(&batch_of(1), GAP));
        assert!(!policy.is_idle_due(&batch_of(0), GAP), "nothing to ship");
        assert!(
            !policy.is_idle_due(&batch_of(1), GAP - Duration::from_micros(1)),
            "shipped less than a gap ago"
        );
        let off = FlushPolicy {
            on_idle: false,
            ..policy
        };
        assert!(!off.is_idle_due(&batch_of(1), Duration::from_secs(5)));
    }

    /// With `flush_operator = "AND"` the batch must also hold `flush_count` messages; the
    /// interval is what idle replaces.
    #[test]
    fn an_idle_ship_keeps_flush_count_under_and() {
        let policy = FlushPolicy {
            interval: Duration::from_secs(60),
            count: 5,
            either: false,
            on_idle: true,
        };
        assert!(!policy.is_idle_due(&batch_of(4), GAP));
        assert!(policy.is_idle_due(&batch_of(5), GAP));
        let either = FlushPolicy {
            either: true,
            ..policy
        };
        assert!(either.is_idle_due(&batch_of(1), GAP));
    }
}
