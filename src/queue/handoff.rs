//! The tail hand-off: a record the writer has just appended, given to the queue's consumer
//! while it is still in memory, so that a consumer that keeps up does not read it back.
//!
//! The queue stays the durable record. The writer hands a record over only once it is in the
//! segment file (synced too, with `sync = "every_batch"`), and before it publishes the new
//! end, so a consumer that keeps up finds it in the ring when it looks. The consumer takes it
//! only when it is exactly the record it would read next (the same sequence number); it then
//! moves its read position past it and commits and checkpoints as after a read. Anything
//! else is read from the segment as before:
//! - a consumer that lags (its next record is older than the ring's oldest) reads the segment
//!   until it reaches what the ring holds; what it has passed in the ring is dropped;
//! - a full ring ([`crate::limits::QUEUE_HANDOFF_RECORDS`]): the writer drops the in-memory
//!   copy, and the consumer reads that record from the segment;
//! - a consumer that rewinds after a failed delivery reads the segment from its last commit;
//! - a batch the writer cut into several records is not handed over at all.
//!
//! So the hand-off changes where the consumer takes the bytes from, never which records it
//! delivers, commits or replays after a `kill -9`: those follow the queue's positions, as
//! for a read.
//!
//! One ring per queue, from its one writer to one consumer (a durable route's queue has one):
//! wait-free SPSC ([`rtrb`]), no lock on the data path. The consumer's end waits in its
//! [`super::shared::ConsumerSlot`] until a reader opens, and goes back there when the reader
//! is dropped (a mutex taken at open and drop only).

use std::fmt;

use super::Position;

/// One record handed from the writer to the consumer.
pub struct Handed {
    /// Where the record starts in its segment, with its sequence number.
    pub start: Position,
    /// Where the next record starts: the position to commit once it is delivered.
    pub end: Position,
    /// The messages it holds (header field 13; 0: not said).
    pub count: u64,
    /// The record's message, exactly as appended (the segment holds it framed and checksummed).
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Handed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Handed")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("count", &self.count)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The writer's end of a hand-off ring.
pub type HandoffProducer = rtrb::Producer<Handed>;
/// The consumer's end of a hand-off ring.
pub type HandoffConsumer = rtrb::Consumer<Handed>;

/// A ring of `slots` records (at least 1).
pub fn ring(slots: usize) -> (HandoffProducer, HandoffConsumer) {
    rtrb::RingBuffer::new(slots.max(1))
}

/// What the consumer does with the ring's oldest record, reading next at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Already read (from the segment) or skipped: drop it and look at the next one.
    Passed,
    /// The record the consumer reads next: take it instead of reading.
    Next,
    /// Newer than the consumer's next record: the consumer lags; read the segment.
    Ahead,
}

/// Where `handed` stands for a consumer whose next record is at `position`.
pub fn front(handed: &Handed, position: Position) -> Front {
    if handed.start.seq < position.seq {
        return Front::Passed;
    }
    // The same sequence number: nothing lies between. The segment may differ when the
    // writer started a new one for this record (the reader is at the old one's end).
    if handed.start.seq == position.seq && position <= handed.start {
        return Front::Next;
    }
    Front::Ahead
}
