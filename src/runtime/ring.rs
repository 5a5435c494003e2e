//! Cross-core hand-off: rtrb SPSC rings of batches, the only way cores pass messages.
//!
//! One ring per (producing core, owning core, output). A producer that finds the ring full
//! waits, polling with a short, growing sleep; while it waits, the connection that produced the
//! batch reads nothing more, so TCP pushes back on its sender. Batches leave a core in the order
//! they were taken, even when several tasks of that core ship at once: each push is queued
//! locally first and moved to the ring in FIFO order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use crate::output::Batch;

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
}
