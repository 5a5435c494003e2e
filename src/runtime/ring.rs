//! Cross-core hand-off: rtrb SPSC rings of batches, the only way cores pass messages.
//!
//! One ring per (producing core, owning core, output). A producer that finds the ring full
//! waits, polling with a short, growing sleep; while it waits, the connection that produced the
//! batch reads nothing more, so TCP pushes back on its sender. Batches leave a core in the order
//! they were taken, even when several tasks of that core ship at once: each push is queued
//! locally first and moved to the ring in FIFO order. An output with `delivery =
//! "best_effort"` uses [`BatchProducer::try_push`] instead: a batch that would wait is given
//! back, and the caller drops and counts it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;


/// Encoded messages on their way to one destination.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
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

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

/// Shortest and longest sleep of a producer waiting for room, or an owner waiting for work.
pub const POLL_SLEEP_MIN: Duration = Duration::from_micros(20);
pub const POLL_SLEEP_MAX: Duration = Duration::from_millis(1);

/// Creates the two ends of one ring with `slots` batches of room.
pub fn ring(slots: usize) -> (rtrb::Producer<Batch>, rtrb::Consumer<Batch>) {
    rtrb::RingBuffer::new(slots)
}

/// The producing end, owned by one core and shared by that core's tasks.
pub struct BatchProducer {
    ring: RefCell<rtrb::Producer<Batch>>,
    /// Batches taken but not yet in the ring, oldest first.
    pending: RefCell<VecDeque<Batch>>,
    /// Sequence number the next queued batch gets.
    queued: Cell<u64>,
    /// How many batches have entered the ring.
    pushed: Cell<u64>,
}

impl BatchProducer {
    /// Wraps a ring's producer.
    pub fn new(producer: rtrb::Producer<Batch>) -> BatchProducer {
        BatchProducer {
            ring: RefCell::new(producer),
            pending: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            pushed: Cell::new(0),
        }
    }

    fn move_pending(&self) {
        let mut ring = self.ring.borrow_mut();
        let mut pending = self.pending.borrow_mut();
        while let Some(batch) = pending.pop_front() {
            match ring.push(batch) {
                Ok(()) => self.pushed.set(self.pushed.get() + 1),
                Err(rtrb::PushError::Full(batch)) => {
                    pending.push_front(batch);
                    break;
                }
            }
        }
    }

    /// Whether a push now would have to wait.
    pub fn is_congested(&self) -> bool {
        !self.pending.borrow().is_empty() || self.ring.borrow().is_full()
    }

    /// Hands `batch` to the owning core if the ring has room now and no earlier batch is
    /// waiting; otherwise gives it back (for `delivery = "best_effort"`, which drops it).
    ///
    /// # Errors
    /// The batch, when it would have to wait.
    pub fn try_push(&self, batch: Batch) -> Result<(), Batch> {
        if !self.pending.borrow().is_empty() {
            return Err(batch);
        }
        match self.ring.borrow_mut().push(batch) {
            Ok(()) => {
                self.queued.set(self.queued.get() + 1);
                self.pushed.set(self.pushed.get() + 1);
                Ok(())
            }
            Err(rtrb::PushError::Full(batch)) => Err(batch),
        }
    }

    /// Hands `batch` to the owning core, waiting while the ring is full.
    pub async fn push(&self, batch: Batch) {
        let sequence = self.queued.get();
        self.queued.set(sequence + 1);
        self.pending.borrow_mut().push_back(batch);
        let mut sleep = POLL_SLEEP_MIN;
        loop {
            self.move_pending();
            if self.pushed.get() > sequence {
                return;
            }
            glommio::timer::sleep(sleep).await;
            sleep = (sleep * 2).min(POLL_SLEEP_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_arrive_in_order_and_a_full_ring_waits() {
        let (producer, mut consumer) = ring(2);
        let producer = std::rc::Rc::new(BatchProducer::new(producer));
        glommio::LocalExecutorBuilder::default()
            .io_memory(0)
            .make()
            .expect("an executor for the test")
            .run(async move {
                let mut tasks = Vec::new();
                for index in 0..5u8 {
                    let producer = producer.clone();
                    tasks.push(glommio::spawn_local(async move {
                        producer
                            .push(Batch {
                                bytes: vec![index],
                                messages: 1,
                            })
                            .await;
                    }));
                }
                let mut seen = Vec::new();
                while seen.len() < 5 {
                    glommio::timer::sleep(Duration::from_millis(2)).await;
                    while let Ok(batch) = consumer.pop() {
                        seen.push(batch.bytes[0]);
                    }
                    assert!(consumer.slots() <= 2);
                }
                for task in tasks {
                    task.await;
                }
                assert_eq!(seen, vec![0, 1, 2, 3, 4]);
            });
    }

    #[test]
    fn try_push_gives_a_batch_back_when_the_ring_is_full_and_keeps_order() {
        let (producer, mut consumer) = ring(2);
        let producer = BatchProducer::new(producer);
        let batch = |index: u8| Batch {
            bytes: vec![index],
            messages: 1,
        };
        assert!(producer.try_push(batch(0)).is_ok());
        assert!(producer.try_push(batch(1)).is_ok());
        let refused = producer.try_push(batch(2)).expect_err("the ring is full");
        assert_eq!(refused.bytes, vec![2]);
        assert!(producer.is_congested());
        assert_eq!(consumer.pop().map(|batch| batch.bytes), Ok(vec![0]));
        assert!(producer.try_push(batch(3)).is_ok());
        let seen: Vec<u8> = std::iter::from_fn(|| consumer.pop().ok())
            .map(|batch| batch.bytes[0])
            .collect();
        assert_eq!(seen, vec![1, 3]);
    }
}
