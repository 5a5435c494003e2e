//! What a source queue's writer and its readers tell each other across cores, without a lock.
//!
//! Each value has exactly one writing side: the [`super::Writer`] publishes where the data
//! ends; each [`super::Reader`] publishes how far its consumer has committed and
//! checkpointed. Values that must be read together (a segment and an offset) sit behind a
//! small sequence lock ([`Published`]): the single writer bumps a version around its stores
//! and a reader retries until it sees the same even version before and after. Nothing here is
//! touched per message: the writer publishes once per appended batch, a reader once per
//! committed batch.

use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::handoff::HandoffConsumer;
use super::Position;

/// How many times a reader retries a [`Published`] snapshot that a store keeps interrupting
/// before it keeps the previous snapshot. A store is a handful of instructions, so this bound
/// is never reached in practice; it exists so that no loop here is unbounded.
const SNAPSHOT_TRIES_MAX: usize = 1024;

/// `N` values written together by one thread and read consistently by others.
#[derive(Debug)]
pub struct Published<const N: usize> {
    version: AtomicU64,
    values: [AtomicU64; N],
}

impl<const N: usize> Published<N> {
    /// Values that start as `values`, at version 0.
    pub fn new(values: [u64; N]) -> Published<N> {
        Published {
            version: AtomicU64::new(0),
            values: values.map(AtomicU64::new),
        }
    }

    /// Replaces the values. Only one thread may ever call this on a given instance.
    pub fn store(&self, values: [u64; N]) {
        let version = self.version.load(Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, value) in self.values.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
        self.version
            .store(version.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of the values, or `None` if stores kept interrupting the read.
    pub fn load(&self) -> Option<[u64; N]> {
        for _ in 0..SNAPSHOT_TRIES_MAX {
            let before = self.version.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let values = std::array::from_fn(|index| self.values[index].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == before {
                return Some(values);
            }
        }
        None
    }
}

/// Where the writer's data ends: every record before it is written and may be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The sequence number the next appended record will get.
    pub next_seq: u64,
    /// The base of the segment being appended to.
    pub segment: u64,
    /// The end of the written bytes in that segment.
    pub offset: u64,
}

/// One consumer's state, shared between its reader and the writer.
#[derive(Debug)]
pub struct ConsumerSlot {
    /// The consumer's name, as configured.
    pub name: String,
    /// Set while a reader is open for this consumer.
    pub attached: AtomicBool,
    /// Set when the consumer was forgotten; it no longer holds segments.
    pub removed: AtomicBool,
    /// Everything before this position is done (reader).
    pub committed: Published<3>,
    /// The position in the last checkpoint written to disk (reader).
    pub checkpointed: Published<3>,
    /// The writer moved this consumer on to the segment with this base because it lagged by
    /// more than `max_consumer_lag` (writer).
    pub skip_to_segment: AtomicU64,
    /// Records the writer skipped for this consumer (writer).
    pub dropped_lag_records: AtomicU64,
    /// Records handed to the consumer (reader).
    pub read_records: AtomicU64,
    /// Damaged bytes the reader stepped over (reader).
    pub corrupt_bytes: AtomicU64,
    /// Records known to be missing between segments, after damage or deletion (reader).
    pub lost_records: AtomicU64,
    /// Records the reader took from the writer's hand-off instead of reading them (reader).
    pub handed_records: AtomicU64,
    /// The consumer's end of the writer's hand-off ring ([`super::handoff`]), while no reader
    /// holds it; `None` when the writer hands nothing to this consumer. Locked only when a
    /// reader opens or is dropped, never per record.
    pub handoff: Mutex<Option<HandoffConsumer>>,
}

impl ConsumerSlot {
    /// A consumer that starts at `position`, committed and checkpointed there, with no reader.
    pub fn new(name: String, position: Position) -> ConsumerSlot {
        let values = position.to_array();
        ConsumerSlot {
            name,
            attached: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            committed: Published::new(values),
            checkpointed: Published::new(values),
            skip_to_segment: AtomicU64::new(0),
            dropped_lag_records: AtomicU64::new(0),
            read_records: AtomicU64::new(0),
            corrupt_bytes: AtomicU64::new(0),
            lost_records: AtomicU64::new(0),
            handed_records: AtomicU64::new(0),
            handoff: Mutex::new(None),
        }
    }
}

/// Settings readers take from the queue they read.
#[derive(Clone, Copy, Debug)]
pub struct ReaderSettings {
    /// How often a reader checkpoints (the queue's `checkpoint_interval`).
    pub checkpoint_interval: Duration,
    /// A reader also checkpoints after this many committed records; 0: only by interval.
    pub cursor_update_count: u64,
    /// How often a reader writes its checkpoint without syncs in between (`None`: never).
    pub unsynced_checkpoint_interval: Option<Duration>,
    /// The most bytes a reader reads at once (the queue's `read_bytes`).
    pub read_bytes: usize,
    /// Whether checkpoint files (and their directory) are synced: false with `sync = "none"`.
    pub sync_checkpoints: bool,
}

/// The state one source queue shares between its writer and its readers.
#[derive(Debug)]
pub struct Shared {
    /// The source queue's directory.
    pub dir: PathBuf,
    /// Where the data ends: `[next_seq, segment, offset]` of a [`Tail`], written by the writer.
    pub tail: Published<3>,
    /// One slot per consumer the queue was opened with, in that order.
    pub consumers: Vec<ConsumerSlot>,
    /// Set while the writer waits for room (`full_action = "block"`): readers then write their
    /// checkpoint as soon as they leave a segment, so the writer can delete it.
    pub pressure: AtomicBool,
    /// Set when the writer has closed the queue.
    pub closed: AtomicBool,
    /// Set to make a writer blocked on a full queue give up (shutdown).
    pub stop_blocking: AtomicBool,
    /// What every reader of this queue is set to.
    pub reader: ReaderSettings,
}

impl Shared {
    /// The writer's last published tail.
    pub fn tail(&self, previous: Tail) -> Tail {
        match self.tail.load() {
            Some([next_seq, segment, offset]) => Tail {
                next_seq,
                segment,
                offset,
            },
            None => previous,
        }
    }

    /// Publishes a new end of the data to the readers. Only the writer calls it.
    pub fn publish_tail(&self, tail: Tail) {
        self.tail.store([tail.next_seq, tail.segment, tail.offset]);
    }

    /// The consumer named `name` and its index, or `None` if the queue has no such consumer.
    pub fn slot(&self, name: &str) -> Option<(usize, &ConsumerSlot)> {
        self.consumers
            .iter()
            .enumerate()
            .find(|(_, slot)| slot.name == name)
    }
}

/// A consistent copy of a published position, or `fallback` when none could be taken.
pub fn position(published: &Published<3>, fallback: Position) -> Position {
    published.load().map_or(fallback, Position::from_array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn snapshots_are_never_torn_across_threads() {
        let published = Arc::new(Published::new([0u64; 3]));
        let writer = {
            let published = published.clone();
            std::thread::spawn(move || {
                for value in 1..=200_000u64 {
                    published.store([value, value * 2, value * 3]);
                }
            })
        };
        let mut last = 0;
        let mut snapshots = 0u64;
        while !writer.is_finished() || snapshots == 0 {
            if let Some([a, b, c]) = published.load() {
                assert_eq!((b, c), (a * 2, a * 3), "a torn snapshot");
                assert!(a >= last, "values only move forward");
                last = a;
                snapshots += 1;
            }
        }
        writer.join().expect("the writer thread");
        assert_eq!(published.load(), Some([200_000, 400_000, 600_000]));
    }
}
