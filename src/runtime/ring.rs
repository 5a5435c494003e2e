//! Cross-core hand-off: rtrb SPSC rings of batches, the only way cores pass messages.
//!
//! One ring per (producing core, consuming core, destination): toward the core that owns a
//! single-writer file, and toward the core hosting filters (a lane). Each ring has:
//!
//! - a *batch ring* carrying [`Batch`]es from producer to consumer, in order;
//! - a *return ring* carrying emptied buffers back, so the core that allocated a buffer fills
//!   it again ([`BatchProducer::fresh_batch`]) instead of allocating one per batch. It has
//!   [`RETURN_SLOTS_EXTRA`] more slots than the batch ring, enough for every buffer one
//!   shipping task can have away from it; a buffer that finds the return ring full is freed;
//! - two [`Doorbell`]s, one per end, where a task with nothing to do parks.
//!
//! # Waiting without polling
//!
//! A consumer with nothing to read parks on its doorbell until a producer pushes; a producer
//! finding no room parks on its own until the consumer pops; either end going away rings the
//! other one. Parking crosses threads, so it relies on two facts about glommio 0.9:
//!
//! - a glommio `Waker` may be woken from another thread: `RawTask::do_wake` sees that the
//!   calling thread is not the task's executor and queues a clone of the waker on that
//!   executor's `SleepNotifier` (a crossbeam channel), then writes its eventfd if the executor
//!   sleeps; the executor wakes the task from its own thread (`process_foreign_wakes`). This is
//!   how its `shared_channel` wakes a remote executor too;
//! - cloning and dropping such a waker from another thread only touches its atomic reference
//!   count, so the waker may sit in an [`AtomicWaker`] shared by two cores.
//!
//! The race between "the parker finds nothing and parks" and "the other end pushes and looks
//! for a parker" is closed as in Dekker's algorithm. The parker registers its waker, raises
//! `parked`, issues a sequentially consistent fence, and only then looks at the ring again;
//! the other end changes the ring, issues a sequentially consistent fence, and then reads
//! `parked`. Of two SeqCst fences one comes first, so either the parker's second look sees the
//! change, or the other end sees `parked` raised and wakes it. When nobody is parked the other
//! end pays one fence and one plain load per batch; no lock is ever taken. On top of that every
//! park is raced against a fallback timer ([`RING_PARK_WAIT_MIN`] growing to
//! [`RING_PARK_WAIT_MAX`] through a [`Backoff`]), so a wake-up lost to a bug would cost a few
//! ms, never a hang.
//!
//! # Order, backpressure, abandonment
//!
//! Batches leave a core in the order they were taken, even when several tasks of that core
//! ship at once: each push is queued locally first and moved to the ring in FIFO order. A full
//! ring makes the pushing task wait, so the connection that produced the batch reads nothing
//! more and TCP pushes back on its sender. An output with `delivery = "best_effort"` uses
//! [`BatchProducer::try_push`] instead: a batch that would wait is given back, and the caller
//! drops and counts it. A push toward a consumer that is gone fails with [`Abandoned`] (the
//! caller counts the batch as dropped; the producer logs it at most once per
//! [`RING_ABANDONED_LOG_INTERVAL`]); a [`BatchConsumer`] reports the end of its stream once
//! every producer is gone and every ring is empty.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::task::__internal::AtomicWaker;

use super::backoff::Backoff;
use super::notify::LocalNotify;
use crate::limits::{RING_ABANDONED_LOG_INTERVAL, RING_PARK_WAIT_MAX, RING_PARK_WAIT_MIN};

/// How many more buffers a return ring holds than its batch ring holds batches. A producer
/// with one shipping task has at most the ring's `slots` batches, the batch it is pushing and
/// the one the consumer is writing away from it; two more slots let all of them come back
/// plus one spare. So once that producer has had to allocate one buffer more than it could
/// ever have away (the first time its ring filled while the consumer held one), its return
/// ring is never empty when it takes a batch, and a full return ring can no longer free one:
/// it never allocates again.
pub const RETURN_SLOTS_EXTRA: usize = 2;

/// Encoded messages on their way to one destination.
#[derive(Debug, Default)]
pub struct Batch {
    /// The encoded messages (or filter records), back to back, as the destination reads them.
    pub bytes: Vec<u8>,
    /// How many messages `bytes` holds.
    pub messages: u64,
}

impl Batch {
    /// An empty batch with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(capacity),
            messages: 0,
        }
    }

    /// An empty batch in a buffer used before (its bytes are cleared, its room kept).
    pub fn from_buffer(mut bytes: Vec<u8>) -> Batch {
        bytes.clear();
        Batch { bytes, messages: 0 }
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

/// Where one end of a ring parks, and how the other end wakes it.
#[derive(Default)]
struct Doorbell {
    /// Raised by a task about to park, lowered by whoever wakes it.
    parked: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Registers the task of `context` and raises `parked`. The caller must look at the ring
    /// again after this returns, and park only if it still has nothing to do.
    fn park(&self, context: &Context<'_>) {
        self.waker.register(context.waker());
        self.parked.store(true, Ordering::Release);
        // Pairs with the fence in `ring`: see the module doc.
        fence(Ordering::SeqCst);
    }

    /// Wakes the parked task, if any. Call it after changing the ring.
    #[inline]
    fn ring(&self) {
        // Pairs with the fence in `park`: see the module doc.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Lowers `parked` once the task no longer waits, sparing the other end a useless wake.
    fn leave(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }
}

/// What both ends of one ring share besides the rings themselves.
#[derive(Default)]
struct Link {
    /// The consumer parks here for a batch or for the end of the stream.
    consumer: Doorbell,
    /// The producer parks here for room or for the consumer's departure.
    producer: Doorbell,
}

/// Which end a [`Departure`] belongs to.
#[derive(Clone, Copy)]
enum End {
    Producer,
    Consumer,
}

/// The last field of each end: when the end is dropped, after its rtrb halves are (fields
/// drop in order), it rings the other end, which then sees it gone without waiting for its
/// fallback timer.
struct Departure {
    link: Arc<Link>,
    end: End,
}

impl Drop for Departure {
    fn drop(&mut self) {
        match self.end {
            End::Producer => self.link.consumer.ring(),
            End::Consumer => self.link.producer.ring(),
        }
    }
}

/// Creates the two ends of one ring with `slots` batches of room (and
/// `slots + RETURN_SLOTS_EXTRA` for returned buffers). Both ends are `Send`: they are made on the control thread and moved to their
/// cores.
///
/// # Panics
/// If `slots` is zero (the plan never allows it).
pub fn ring(slots: usize) -> (RingProducer, RingConsumer) {
    assert!(slots > 0, "a ring holds at least one batch");
    let (batches, batches_out) = rtrb::RingBuffer::new(slots);
    let (returns, returned) = rtrb::RingBuffer::new(slots + RETURN_SLOTS_EXTRA);
    let link = Arc::new(Link::default());
    let producer = RingProducer {
        batches,
        returned,
        departure: Departure {
            link: link.clone(),
            end: End::Producer,
        },
    };
    let consumer = RingConsumer {
        batches: batches_out,
        returns,
        departure: Departure {
            link,
            end: End::Consumer,
        },
    };
    (producer, consumer)
}

/// The producing end of one ring, before it is wrapped in a [`BatchProducer`] on its core.
pub struct RingProducer {
    batches: rtrb::Producer<Batch>,
    returned: rtrb::Consumer<Vec<u8>>,
    departure: Departure,
}

impl RingProducer {
    fn link(&self) -> &Link {
        &self.departure.link
    }

    /// Pushes one batch and wakes the consumer if it is parked.
    fn push(&mut self, batch: Batch) -> Result<(), rtrb::PushError<Batch>> {
        self.batches.push(batch)?;
        self.link().consumer.ring();
        Ok(())
    }

    fn is_abandoned(&self) -> bool {
        self.batches.is_abandoned()
    }
}

/// The consuming end of one ring, before it joins a [`BatchConsumer`] on its core.
pub struct RingConsumer {
    batches: rtrb::Consumer<Batch>,
    returns: rtrb::Producer<Vec<u8>>,
    departure: Departure,
}

impl RingConsumer {
    fn link(&self) -> &Link {
        &self.departure.link
    }

    /// Pops one batch and wakes the producer if it is parked for room.
    fn pop(&mut self) -> Option<Batch> {
        let batch = self.batches.pop().ok()?;
        self.link().producer.ring();
        Some(batch)
    }

    /// Abandoned first, then empty: once the producer is gone nothing more can arrive.
    fn is_finished(&self) -> bool {
        self.batches.is_abandoned() && self.batches.is_empty()
    }
}

/// The consuming core's handle on where a batch came from, to recycle its buffer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source(usize);

/// The consuming end of one or more rings, owned by one task: every place that reads batches
/// from other cores reads them through this.
pub struct BatchConsumer {
    rings: Vec<RingConsumer>,
    /// The ring the next pop looks at first, so one busy ring cannot starve the others.
    next: usize,
    fallback: (Duration, Duration),
}

impl BatchConsumer {
    /// Reads `rings`, parking with the engine's fallback waits.
    pub fn new(rings: Vec<RingConsumer>) -> BatchConsumer {
        BatchConsumer {
            rings,
            next: 0,
            fallback: (RING_PARK_WAIT_MIN, RING_PARK_WAIT_MAX),
        }
    }

    /// The same, with other fallback waits (tests prove wake-ups with a fallback of seconds).
    #[must_use = "the consumer is returned changed"]
    pub fn with_fallback_waits(mut self, min: Duration, max: Duration) -> BatchConsumer {
        self.fallback = (min, max);
        self
    }

    /// A batch, if any ring has one now, and where it came from.
    pub fn try_pop(&mut self) -> Option<(Batch, Source)> {
        let count = self.rings.len();
        for offset in 0..count {
            let index = (self.next + offset) % count;
            if let Some(batch) = self.rings[index].pop() {
                self.next = (index + 1) % count;
                return Some((batch, Source(index)));
            }
        }
        None
    }

    /// Hands an emptied buffer back to the core that filled it; freed if its return ring is
    /// full.
    pub fn recycle(&mut self, source: Source, bytes: Vec<u8>) {
        if let Some(ring) = self.rings.get_mut(source.0) {
            // A full return ring just frees the buffer.
            let _ = ring.returns.push(bytes);
        }
    }

    /// Whether every producer has gone and every ring is empty: nothing more can arrive.
    pub fn is_finished(&self) -> bool {
        self.rings.iter().all(RingConsumer::is_finished)
    }

    /// The next batch, parking while there is none; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<(Batch, Source)> {
        let mut fallback = Backoff::new(self.fallback.0, self.fallback.1);
        loop {
            if let Some(found) = self.try_pop() {
                return Some(found);
            }
            if self.is_finished() {
                return None;
            }
            self.park(fallback.step()).await;
        }
    }

    /// Parks until a batch arrives, the stream ends (unless it had already), or `timeout`
    /// passes.
    pub async fn park(&self, timeout: Duration) {
        let parked = Parked {
            consumer: self,
            finished_before: self.is_finished(),
        };
        futures_lite::future::or(parked, glommio::timer::sleep(timeout)).await;
    }

    /// Batches waiting in the rings now.
    pub fn waiting(&self) -> usize {
        self.rings.iter().map(|ring| ring.batches.slots()).sum()
    }

    /// Batches the rings can hold.
    pub fn capacity(&self) -> usize {
        self.rings
            .iter()
            .map(|ring| ring.batches.buffer().capacity())
            .sum()
    }
}

/// The future of a consumer's park: ready once any ring has news.
struct Parked<'a> {
    consumer: &'a BatchConsumer,
    /// The stream had already ended (or there are no rings): only a batch is news then, so
    /// a caller that also waits for other things does not spin.
    finished_before: bool,
}

impl Future for Parked<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.has_news() {
            return Poll::Ready(());
        }
        for ring in &self.consumer.rings {
            ring.link().consumer.park(context);
        }
        // The second look, after the fence: see the module doc.
        if self.has_news() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Parked<'_> {
    /// A batch to read, or the end of the stream. One producer leaving while others stay is
    /// no news: there is nothing to do about it.
    fn has_news(&self) -> bool {
        let rings = &self.consumer.rings;
        let ended = !self.finished_before && self.consumer.is_finished();
        ended || rings.iter().any(|ring| !ring.batches.is_empty())
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        for ring in &self.consumer.rings {
            ring.link().consumer.leave();
        }
    }
}

/// A push toward a consumer that has gone: the batch comes back, for the caller to count as
/// dropped.
#[derive(Debug)]
pub struct Abandoned(pub Batch);

/// Why [`BatchProducer::try_push`] gave a batch back.
#[derive(Debug)]
pub enum TryPushError {
    /// The ring is full, or earlier batches wait for room.
    Full(Batch),
    /// The consumer has gone.
    Abandoned(Batch),
}

impl TryPushError {
    /// The batch given back.
    pub fn into_batch(self) -> Batch {
        match self {
            TryPushError::Full(batch) | TryPushError::Abandoned(batch) => batch,
        }
    }
}

/// The producing end, owned by one core and shared by that core's tasks.
pub struct BatchProducer {
    ring: RefCell<RingProducer>,
    /// Batches taken but not yet in the ring, oldest first, with their sequence numbers.
    pending: RefCell<VecDeque<(u64, Batch)>>,
    /// Sequence number the next queued batch gets.
    queued: Cell<u64>,
    /// How many batches have entered the ring.
    pushed: Cell<u64>,
    /// Wakes this core's waiting pushes when one of them moved batches into the ring.
    progress: LocalNotify,
    fallback: (Duration, Duration),
    /// When the consumer's departure was last logged.
    abandoned_logged_at: Cell<Option<Instant>>,
}

impl BatchProducer {
    /// Wraps a ring's producing end, parking with the engine's fallback waits.
    pub fn new(ring: RingProducer) -> BatchProducer {
        BatchProducer {
            ring: RefCell::new(ring),
            pending: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            pushed: Cell::new(0),
            progress: LocalNotify::default(),
            fallback: (RING_PARK_WAIT_MIN, RING_PARK_WAIT_MAX),
            abandoned_logged_at: Cell::new(None),
        }
    }

    /// The same, with other fallback waits (tests prove wake-ups with a fallback of seconds).
    #[must_use = "the producer is returned changed"]
    pub fn with_fallback_waits(mut self, min: Duration, max: Duration) -> BatchProducer {
        self.fallback = (min, max);
        self
    }

    /// An empty batch: in a buffer the consumer gave back when there is one with room for
    /// `capacity` bytes, else newly allocated.
    pub fn fresh_batch(&self, capacity: usize) -> Batch {
        let returned = self.ring.borrow_mut().returned.pop();
        match returned {
            Ok(bytes) if bytes.capacity() >= capacity => Batch::from_buffer(bytes),
            _ => Batch::with_capacity(capacity),
        }
    }

    /// Moves queued batches into the ring while it has room; wakes this core's other waiting
    /// pushes if any moved.
    fn move_pending(&self) {
        let mut ring = self.ring.borrow_mut();
        let mut pending = self.pending.borrow_mut();
        let mut moved = false;
        while let Some((sequence, batch)) = pending.pop_front() {
            match ring.push(batch) {
                Ok(()) => {
                    self.pushed.set(self.pushed.get() + 1);
                    moved = true;
                }
                Err(rtrb::PushError::Full(batch)) => {
                    pending.push_front((sequence, batch));
                    break;
                }
            }
        }
        drop((ring, pending));
        if moved {
            self.progress.notify();
        }
    }

    /// Whether a push now would have to wait.
    pub fn is_congested(&self) -> bool {
        !self.pending.borrow().is_empty() || self.ring.borrow().batches.is_full()
    }

    /// Whether the consumer has gone.
    pub fn is_abandoned(&self) -> bool {
        self.ring.borrow().is_abandoned()
    }

    /// Logs the consumer's departure, at most once per [`RING_ABANDONED_LOG_INTERVAL`].
    fn log_abandoned(&self) {
        let due = self
            .abandoned_logged_at
            .get()
            .is_none_or(|at| at.elapsed() >= RING_ABANDONED_LOG_INTERVAL);
        if due {
            self.abandoned_logged_at.set(Some(Instant::now()));
            tracing::error!("the core consuming a ring has gone; batches toward it are dropped");
        }
    }

    /// Hands `batch` to the consuming core if the ring has room now and no earlier batch is
    /// waiting; otherwise gives it back (for `delivery = "best_effort"`, which drops it).
    ///
    /// # Errors
    /// The batch, when it would have to wait or the consumer has gone.
    pub fn try_push(&self, batch: Batch) -> Result<(), TryPushError> {
        if self.is_abandoned() {
            self.log_abandoned();
            return Err(TryPushError::Abandoned(batch));
        }
        if !self.pending.borrow().is_empty() {
            return Err(TryPushError::Full(batch));
        }
        match self.ring.borrow_mut().push(batch) {
            Ok(()) => {
                self.queued.set(self.queued.get() + 1);
                self.pushed.set(self.pushed.get() + 1);
                Ok(())
            }
            Err(rtrb::PushError::Full(batch)) => Err(TryPushError::Full(batch)),
        }
    }

    /// Hands `batch` to the consuming core, waiting while the ring is full.
    ///
    /// # Errors
    /// [`Abandoned`], with the batch, when the consumer has gone (now or while waiting).
    pub async fn push(&self, batch: Batch) -> Result<(), Abandoned> {
        let batch = match self.try_push(batch) {
            Ok(()) => return Ok(()),
            Err(TryPushError::Abandoned(batch)) => return Err(Abandoned(batch)),
            Err(TryPushError::Full(batch)) => batch,
        };
        let sequence = self.queued.get();
        self.queued.set(sequence + 1);
        self.pending.borrow_mut().push_back((sequence, batch));
        let mut fallback = Backoff::new(self.fallback.0, self.fallback.1);
        loop {
            self.move_pending();
            if self.pushed.get() > sequence {
                return Ok(());
            }
            if self.is_abandoned() {
                return Err(self.give_back(sequence));
            }
            let room = Room { producer: self };
            let woken = futures_lite::future::or(room, self.progress.wait());
            futures_lite::future::or(woken, glommio::timer::sleep(fallback.step())).await;
        }
    }

    /// Takes the batch queued as `sequence` back out of the queue (its consumer has gone).
    fn give_back(&self, sequence: u64) -> Abandoned {
        self.log_abandoned();
        let mut pending = self.pending.borrow_mut();
        let position = pending.iter().position(|(queued, _)| *queued == sequence);
        let batch = position
            .and_then(|position| pending.remove(position))
            .map(|(_, batch)| batch)
            .unwrap_or_default();
        Abandoned(batch)
    }
}

/// The future of a producer's park: ready once the ring has room or its consumer has gone.
struct Room<'a> {
    producer: &'a BatchProducer,
}

impl Room<'_> {
    fn has_news(&self) -> bool {
        let ring = self.producer.ring.borrow();
        !ring.batches.is_full() || ring.is_abandoned()
    }
}

impl Future for Room<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.has_news() {
            return Poll::Ready(());
        }
        self.producer.ring.borrow().link().producer.park(context);
        // The second look, after the fence: see the module doc.
        if self.has_news() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.producer.ring.borrow().link().producer.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::sync::mpsc;

    /// A fallback so long that a test finishing well within it proves a wake-up did the work.
    const LONG: Duration = Duration::from_secs(10);
    /// Far below [`LONG`], far above a wake-up's latency even on a loaded machine.
    const PROMPT: Duration = Duration::from_secs(2);

    fn run<T>(future: impl Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::default()
            .io_memory(0)
            .make()
            .expect("an executor for the test")
            .run(future)
    }

    fn batch(index: u8) -> Batch {
        Batch {
            bytes: vec![index],
            messages: 1,
        }
    }

    #[test]
    fn batches_from_concurrent_pushes_arrive_in_order_then_the_stream_ends() {
        let (producer, consumer) = ring(2);
        let consuming = std::thread::spawn(move || {
            run(async move {
                let mut consumer = BatchConsumer::new(vec![consumer]);
                let mut seen = Vec::new();
                while let Some((batch, _)) = consumer.next().await {
                    seen.push(batch.bytes[0]);
                    assert!(consumer.waiting() <= 2);
                }
                assert!(consumer.is_finished());
                seen
            })
        });
        run(async move {
            let producer = Rc::new(BatchProducer::new(producer));
            let tasks: Vec<_> = (0..200u8)
                .map(|index| {
                    let producer = producer.clone();
                    glommio::spawn_local(async move { producer.push(batch(index)).await })
                })
                .collect();
            for task in tasks {
                assert!(task.await.is_ok());
            }
        });
        let seen = consuming.join().expect("the consumer thread");
        assert_eq!(seen, (0..200u8).collect::<Vec<_>>());
    }

    #[test]
    fn a_parked_consumer_is_woken_by_a_push_from_another_thread() {
        let (producer, consumer) = ring(4);
        let (parking, parked) = mpsc::channel();
        let consuming = std::thread::spawn(move || {
            run(async move {
                let mut consumer =
                    BatchConsumer::new(vec![consumer]).with_fallback_waits(LONG, LONG);
                let _ = parking.send(());
                let found = consumer.next().await.map(|(batch, _)| batch.bytes);
                (found, Instant::now())
            })
        });
        parked.recv().expect("the consumer starts");
        // Long enough for the consumer to be parked, not merely about to park.
        std::thread::sleep(Duration::from_millis(50));
        let producer = BatchProducer::new(producer);
        let pushed_at = Instant::now();
        assert!(producer.try_push(batch(7)).is_ok());
        let (found, woken_at) = consuming.join().expect("the consumer thread");
        assert_eq!(found, Some(vec![7]));
        assert!(woken_at.duration_since(pushed_at) < PROMPT);
    }

    #[test]
    fn a_parked_consumer_sees_the_end_of_its_stream_at_once_and_then_parks_for_real() {
        let (producer, consumer) = ring(4);
        let leaving = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(producer);
            Instant::now()
        });
        let (end, ended_at, parked_for) = run(async move {
            let mut consumer = BatchConsumer::new(vec![consumer]).with_fallback_waits(LONG, LONG);
            let end = consumer.next().await.is_none();
            let ended_at = Instant::now();
            // Ended already: only a batch would be news, so a park lasts its whole timeout
            // (a host that also waits for its inbox and timers must not spin).
            let started = Instant::now();
            consumer.park(Duration::from_millis(30)).await;
            let nothing = BatchConsumer::new(Vec::new());
            nothing.park(Duration::from_millis(30)).await;
            (end, ended_at, started.elapsed())
        });
        let left_at = leaving.join().expect("the producer thread");
        assert!(end);
        assert!(ended_at.duration_since(left_at) < PROMPT);
        assert!(parked_for >= Duration::from_millis(60), "{parked_for:?}");
    }

    #[test]
    fn a_producer_waiting_for_room_is_woken_by_a_pop_from_another_thread() {
        let (producer, consumer) = ring(1);
        let (full, filled) = mpsc::channel();
        let consuming = std::thread::spawn(move || {
            let mut consumer = BatchConsumer::new(vec![consumer]);
            filled.recv().expect("the producer fills the ring");
            std::thread::sleep(Duration::from_millis(50));
            let popped_at = Instant::now();
            let first = consumer.try_pop().map(|(batch, _)| batch.bytes);
            (first, popped_at, consumer)
        });
        let (pushed, room_at) = run(async move {
            let producer = BatchProducer::new(producer).with_fallback_waits(LONG, LONG);
            assert!(producer.push(batch(1)).await.is_ok());
            assert!(producer.is_congested());
            let _ = full.send(());
            let pushed = producer.push(batch(2)).await.is_ok();
            (pushed, Instant::now())
        });
        let (first, popped_at, mut consumer) = consuming.join().expect("the consumer thread");
        assert!(pushed);
        assert_eq!(first, Some(vec![1]));
        assert!(room_at.duration_since(popped_at) < PROMPT);
        assert_eq!(
            consumer.try_pop().map(|(batch, _)| batch.bytes),
            Some(vec![2])
        );
    }

    #[test]
    fn buffers_go_back_to_their_producer_and_a_full_return_ring_frees_them() {
        let (first, first_out) = ring(1);
        let (second, second_out) = ring(2);
        let (first, second) = (BatchProducer::new(first), BatchProducer::new(second));
        let mut consumer = BatchConsumer::new(vec![first_out, second_out]);
        let mut sent = Vec::new();
        for index in 0..1 {
            let mut fresh = first.fresh_batch(1024);
            fresh.bytes.push(index);
            fresh.messages = 1;
            sent.push(fresh.bytes.as_ptr());
            assert!(first.try_push(fresh).is_ok());
        }
        assert!(second.try_push(batch(9)).is_ok());
        let mut held = Vec::new();
        while let Some((batch, source)) = consumer.try_pop() {
            held.push((batch.bytes, source));
        }
        assert_eq!(held.len(), 2);
        // Three more buffers for the first producer: its return ring (1 + 2 slots) has room
        // for two of them besides its own.
        for _ in 0..3 {
            let extra = Vec::with_capacity(1024);
            sent.push(extra.as_ptr());
            held.push((extra, held[0].1));
        }
        for (bytes, source) in held {
            consumer.recycle(source, bytes);
        }
        let again: Vec<_> = (0..4).map(|_| first.fresh_batch(1024)).collect();
        let pointers: Vec<_> = again.iter().map(|batch| batch.bytes.as_ptr()).collect();
        assert_eq!(pointers[..3], sent[..3]);
        assert!(again
            .iter()
            .all(|batch| batch.bytes.is_empty() && batch.is_empty()));
        // The fourth was freed: this one is new (the three above are still alive, so it
        // cannot share their addresses).
        assert!(!pointers[..3].contains(&pointers[3]));
        // The second producer's buffer went back to it, not to the first; too small for a
        // batch of 1024 bytes, it is not reused.
        assert_eq!(second.fresh_batch(1).bytes.capacity(), 1);
        assert!(second.fresh_batch(1024).bytes.capacity() >= 1024);
    }

    #[test]
    fn a_push_toward_a_consumer_that_has_gone_fails_and_gives_the_batch_back() {
        let (producer, consumer) = ring(1);
        let producer = BatchProducer::new(producer).with_fallback_waits(LONG, LONG);
        assert!(producer.try_push(batch(1)).is_ok());
        let leaving = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(consumer);
            Instant::now()
        });
        // The ring is full: this push parks, and the consumer's departure wakes it.
        let (result, failed_at) = run(async {
            let result = producer.push(batch(2)).await;
            (result, Instant::now())
        });
        let left_at = leaving.join().expect("the consumer thread");
        let Err(Abandoned(back)) = result else {
            panic!("a push toward a consumer that has gone must fail");
        };
        assert_eq!(back.bytes, vec![2]);
        assert!(failed_at.duration_since(left_at) < PROMPT);
        assert!(producer.is_abandoned());
        match producer.try_push(batch(3)) {
            Err(TryPushError::Abandoned(back)) => assert_eq!(back.bytes, vec![3]),
            other => panic!("expected an abandoned push, got {other:?}"),
        }
        let pushed = run(async { producer.push(batch(4)).await });
        assert!(matches!(pushed, Err(Abandoned(back)) if back.bytes == vec![4]));
    }

    #[test]
    fn try_push_gives_a_batch_back_when_the_ring_is_full_and_keeps_order() {
        let (producer, consumer) = ring(2);
        let producer = BatchProducer::new(producer);
        let mut consumer = BatchConsumer::new(vec![consumer]);
        assert!(producer.try_push(batch(0)).is_ok());
        assert!(producer.try_push(batch(1)).is_ok());
        match producer.try_push(batch(2)) {
            Err(TryPushError::Full(refused)) => assert_eq!(refused.bytes, vec![2]),
            other => panic!("expected a full ring, got {other:?}"),
        }
        assert!(producer.is_congested());
        assert_eq!(
            consumer.try_pop().map(|(batch, _)| batch.bytes),
            Some(vec![0])
        );
        assert!(producer.try_push(batch(3)).is_ok());
        let seen: Vec<u8> = std::iter::from_fn(|| consumer.try_pop())
            .map(|(batch, _)| batch.bytes[0])
            .collect();
        assert_eq!(seen, vec![1, 3]);
        assert!(!consumer.is_finished());
        drop(producer);
        assert!(consumer.is_finished());
    }
}
