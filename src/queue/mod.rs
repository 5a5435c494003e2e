//! Durable disk queues: per-core append-only segment files of Heka-framed, checksummed records,
//! and one checkpointed cursor per consumer.
//!
//! A *source queue* is one directory written by one [`Writer`] on one core; nothing in it is
//! shared with another writer, so no lock is shared between cores. Consumers (outputs,
//! filters) read it through a [`Reader`] each, possibly from other cores, at their own pace;
//! each consumer's position is checkpointed to its own file. Segments are deleted once every
//! consumer's checkpoint has passed them.
//!
//! # Design constraints
//! - **Plain Heka frames.** A segment is a sequence of Heka stream frames; the CRC32C of each
//!   message rides in an extra header field that Heka readers skip ([`record`]). `gyges cat`,
//!   Heka and lua_sandbox read segment files as they are.
//! - **One writer per directory, no shared lock.** The writer and its readers exchange
//!   positions through single-writer atomics ([`shared`]), never through a lock or the disk.
//! - **Bounded.** A segment holds at most `max_file_size` bytes (or one record larger than
//!   that); a queue holds at most `max_buffer_size` bytes and leaves `min_disk_free` bytes on
//!   its disk, then applies its [`FullAction`]. Readers read at most `read_bytes` at once
//!   (more only for a record larger than that). Memory per writer is one batch being framed,
//!   plus, for a durable route, at most [`limits::QUEUE_HANDOFF_RECORDS`] batches handed to
//!   its consumer ([`handoff`]).
//! - **Batched.** [`Writer::append_batch`] frames a whole batch into one buffer and writes it
//!   with one `pwrite` through io_uring; a reader gets many records per read.
//! - **At least once.** After a crash, nothing that [`Writer::append_batch`] returned for is
//!   lost (with `sync = "every_batch"` not even on power loss); a consumer replays at most
//!   what it committed after its last checkpoint (about `checkpoint_interval`).
//! - **Recovery never trusts, never wedges** ([`recovery`]): torn tails are cut and counted,
//!   bad checkpoints fall back to the oldest data, checkpoints into deleted segments move on,
//!   and a consumer that is gone from the config no longer holds data.
//!
//! # On disk
//! ```text
//! <queue_dir>/<queue>/<core>/        one source queue (see `source_dir`)
//!     <N>.log                        segment: records N, N+1, ... (N = first record's seq)
//!     <consumer>.cp                  checkpoint: "gyges-checkpoint 1 segment=<N> offset=<bytes>
//!                                      seq=<n> crc32c=<hex>\n"
//!     <consumer>.cp.tmp              a checkpoint being written (removed at open)
//!
//! struct Segment { records: [Record] }           // append-only, sealed at max_file_size
//! struct Record {                                // a Heka stream frame
//!     0x1E, header_length: u8,
//!     header: { 0x08 message_length: varint, [0x68 messages: varint,] 0x7D crc32c: fixed32 le },
//!     0x1F, message: [u8; message_length],
//! }
//! ```
//!
//! # Sync policies ([`SyncPolicy`])
//! - `none`: the kernel writes pages back when it likes. Survives a crash of gyges (kill -9):
//!   the data is in the page cache. A power loss or kernel crash loses what was not yet written
//!   back (typically up to 30 s) and may leave damaged records, which recovery skips.
//! - `interval` (default): `fdatasync` of the segment being written every `checkpoint_interval`,
//!   and of each segment as it is sealed. Survives a crash of gyges; a power loss loses at most
//!   about one interval of accepted records.
//! - `every_batch`: `fdatasync` before [`Writer::append_batch`] returns, and readers see a
//!   batch only once it is synced. Survives a power loss for every batch that was acknowledged.
//!
//! Checkpoints are synced (file and directory) unless the policy is `none`.
//!
//! # Stopped and removed consumers
//! A consumer holds every segment from its checkpoint on. So that none can pin a queue forever:
//! - a consumer not named when the queue is opened (removed from the config) has its
//!   checkpoint deleted at open ([`recovery`]);
//! - a consumer stopped for good while running is released with [`Writer::forget_consumer`];
//! - with `max_consumer_lag` set, a consumer that falls further behind is moved on to the
//!   newest segments that fit in that many bytes, and the records it skipped are counted as
//!   dropped for it ([`ConsumerCounters::dropped_lag_records`]).
//!
//! Without `max_consumer_lag`, a stalled consumer keeps its data and the queue's
//! `full_action` decides: `block` then pushes back to the senders, which is what `block` is
//! for.
//!
//! # Durable routes
//! The pipeline's durable outputs and filters use a queue per (route, core row) through three
//! pieces, whatever the route delivers to: [`DurableQueue`] ([`append`]) is a core's append
//! side, [`HandleBoard`] ([`board`]) is where the cores publish their queues, and
//! [`Consumer`] ([`consumer`]) reads one queue back into a [`Deliver`] destination with the
//! commit cadence, retries and stop protocol every route shares.

pub mod append;
pub mod board;
pub mod checkpoint;
pub mod config;
pub mod consumer;
pub mod handoff;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod shared;
pub mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use append::DurableQueue;
pub use board::HandleBoard;
pub use config::{FullAction, SyncPolicy};
pub use consumer::{Consumer, Deliver, Delivered, Finish, Step, StepError};
pub use reader::{ReadBatch, Reader};
pub use writer::{AppendOutcome, Writer};

use crate::limits;

/// A place in a source queue: the start of the record with sequence number `seq`, `offset`
/// bytes into the segment whose first record is `segment`. Ordered by segment, then offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The sequence number of the segment's first record, which names its file (`<segment>.log`).
    pub segment: u64,
    /// Bytes from the start of that segment file to the record.
    pub offset: u64,
    /// The record's sequence number: records are numbered 0, 1, … across the whole queue.
    pub seq: u64,
}

impl Position {
    pub(crate) fn to_array(self) -> [u64; 3] {
        [self.segment, self.offset, self.seq]
    }

    pub(crate) fn from_array([segment, offset, seq]: [u64; 3]) -> Position {
        Position {
            segment,
            offset,
            seq,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{} (seq {})",
            segment::file_name(self.segment),
            self.offset,
            self.seq
        )
    }
}

/// Everything a source queue needs to know, resolved and checked (see [`config`] for the TOML
/// form and the defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// A segment is sealed when the next record would take it past this many bytes.
    pub max_file_size: u64,
    /// The most bytes the queue's segments may hold; 0 leaves only `min_disk_free` as a bound.
    pub max_buffer_size: u64,
    /// Bytes that must stay free on the queue's file system; 0 turns the check off.
    pub min_disk_free: u64,
    /// What the writer does when a record would cross `max_buffer_size` or `min_disk_free`.
    pub full_action: FullAction,
    /// When segments are `fdatasync`ed (see the module docs' sync policies).
    pub sync: SyncPolicy,
    /// How often readers checkpoint and (`sync = "interval"`) the writer syncs.
    pub checkpoint_interval: Duration,
    /// A reader also checkpoints after this many committed records (0: only by interval).
    pub cursor_update_count: u64,
    /// How often a reader writes its checkpoint without syncs between the synced ones (`None`:
    /// never). Not a config key: [`limits::QUEUE_CHECKPOINT_UNSYNCED_INTERVAL`] in the daemon.
    pub unsynced_checkpoint_interval: Option<Duration>,
    /// A consumer further behind than this many bytes is moved on (0: never).
    pub max_consumer_lag: u64,
    /// The largest message accepted by [`Writer::append_batch`]; larger ones are rejected.
    pub max_message_size: usize,
    /// The most bytes a reader reads at once (one record larger than that is read whole).
    pub read_bytes: usize,
    /// The writer writes its framed records once they reach this many bytes, even in the
    /// middle of a batch.
    pub write_bytes: usize,
    /// Whether segments are written with `O_DIRECT` where the file system takes it
    /// ([`segment::SegmentFile`]); through the page cache when false.
    pub direct_io: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_file_size: limits::QUEUE_FILE_BYTES_DEFAULT,
            max_buffer_size: limits::QUEUE_BUFFER_BYTES_DEFAULT,
            min_disk_free: limits::QUEUE_DISK_FREE_BYTES_DEFAULT,
            full_action: FullAction::Block,
            sync: SyncPolicy::Interval,
            checkpoint_interval: limits::QUEUE_CHECKPOINT_INTERVAL_DEFAULT,
            cursor_update_count: 0,
            unsynced_checkpoint_interval: Some(limits::QUEUE_CHECKPOINT_UNSYNCED_INTERVAL),
            max_consumer_lag: 0,
            max_message_size: limits::MESSAGE_BYTES_DEFAULT,
            read_bytes: limits::QUEUE_READ_BYTES_DEFAULT,
            write_bytes: limits::BATCH_BYTES_DEFAULT,
            direct_io: false,
        }
    }
}

impl QueueOptions {
    /// The largest record the writer can produce (message count field included).
    pub fn record_bytes_max(&self) -> u64 {
        record::encoded_length_counted(self.max_message_size, u64::MAX) as u64
    }

    /// Checks the options for sense.
    ///
    /// # Errors
    /// [`QueueError::Options`] naming the first option that is out of range.
    pub fn validate(&self) -> Result<(), QueueError> {
        let fail = |message: String| Err(QueueError::Options(message));
        if !(limits::QUEUE_FILE_BYTES_MIN..=limits::QUEUE_FILE_BYTES_MAX)
            .contains(&self.max_file_size)
        {
            return fail(format!(
                "max_file_size must be between {} and {} bytes, not {}",
                limits::QUEUE_FILE_BYTES_MIN,
                limits::QUEUE_FILE_BYTES_MAX,
                self.max_file_size
            ));
        }
        if self.max_message_size == 0 || self.max_message_size > limits::MESSAGE_BYTES_CEILING {
            return fail(format!(
                "max_message_size must be between 1 and {} bytes",
                limits::MESSAGE_BYTES_CEILING
            ));
        }
        let floor = 2 * self.max_file_size.max(self.record_bytes_max());
        if self.max_buffer_size != 0 && self.max_buffer_size < floor {
            return fail(format!(
                "max_buffer_size must be 0 or at least twice max_file_size and the largest \
                 record ({floor} bytes), not {}: a smaller queue could never make room",
                self.max_buffer_size
            ));
        }
        let interval = self.checkpoint_interval;
        if interval < limits::QUEUE_CHECKPOINT_INTERVAL_MIN
            || interval > limits::QUEUE_CHECKPOINT_INTERVAL_MAX
        {
            return fail(format!(
                "checkpoint_interval must be between {} and {} ms",
                limits::QUEUE_CHECKPOINT_INTERVAL_MIN.as_millis(),
                limits::QUEUE_CHECKPOINT_INTERVAL_MAX.as_millis()
            ));
        }
        if self.max_consumer_lag != 0 && self.max_consumer_lag < self.max_file_size {
            return fail(format!(
                "max_consumer_lag must be 0 or at least max_file_size ({} bytes)",
                self.max_file_size
            ));
        }
        if !(limits::QUEUE_IO_BYTES_MIN..=limits::QUEUE_IO_BYTES_MAX).contains(&self.read_bytes)
            || !(limits::QUEUE_IO_BYTES_MIN..=limits::QUEUE_IO_BYTES_MAX)
                .contains(&self.write_bytes)
        {
            return fail(format!(
                "read and write sizes must be between {} and {} bytes",
                limits::QUEUE_IO_BYTES_MIN,
                limits::QUEUE_IO_BYTES_MAX
            ));
        }
        Ok(())
    }
}

/// The directory of one source queue: `<queue_dir>/<queue>/<core>`.
pub fn source_dir(queue_dir: &Path, queue: &str, core: usize) -> PathBuf {
    queue_dir.join(queue).join(core.to_string())
}

/// Which limit a full queue reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullReason {
    /// The segments hold `max_buffer_size` bytes.
    BufferSize {
        /// Bytes the segments would hold with the record that did not fit.
        bytes: u64,
        /// The configured `max_buffer_size`.
        max: u64,
    },
    /// The file system has less than `min_disk_free` bytes free.
    DiskFree {
        /// Bytes that would stay free on the file system with the record written.
        free: u64,
        /// The configured `min_disk_free`.
        min: u64,
    },
}

impl fmt::Display for FullReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FullReason::BufferSize { bytes, max } => {
                write!(formatter, "{bytes} bytes queued, max_buffer_size is {max}")
            }
            FullReason::DiskFree { free, min } => {
                write!(
                    formatter,
                    "{free} bytes free on disk, min_disk_free is {min}"
                )
            }
        }
    }
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, such as `list` or `read checkpoint`.
        op: &'static str,
        /// The file or directory it was done on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The queue is full and its `full_action` is `shutdown`.
    #[error(
        "the queue is full ({reason}) and its full_action is \"shutdown\" \
         ({appended} records of the batch were appended)"
    )]
    Full {
        /// Which limit the queue reached.
        reason: FullReason,
        /// Records of the batch appended before the queue was found full.
        appended: u64,
    },
    /// The writer was told to stop ([`QueueHandle::stop_blocking`]) while waiting for room.
    #[error(
        "stopped while waiting for room in a full queue \
         ({appended} records of the batch were appended)"
    )]
    Stopped {
        /// Records of the batch appended before the writer stopped waiting.
        appended: u64,
    },
    /// An option is out of range; the text names it.
    #[error("invalid queue options: {0}")]
    Options(String),
    /// A reader was asked for a consumer the queue was not opened with.
    #[error("consumer {0:?} is not one of this queue's consumers")]
    UnknownConsumer(String),
    /// The consumer already has a reader open; each consumer has at most one.
    #[error("consumer {0:?} already has a reader open")]
    ConsumerBusy(String),
    /// The consumer was forgotten ([`Writer::forget_consumer`]); its reader reads no more.
    #[error("consumer {0:?} was removed from the queue")]
    ConsumerRemoved(String),
    /// The writer has no open segment to append to or sync; a guard, since a writer keeps its
    /// segment open until [`Writer::close`].
    #[error("the queue's writer is closed")]
    Closed,
}

impl QueueError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> QueueError {
        QueueError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A low-cardinality label for counters.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Io { .. } => "io",
            QueueError::Full { .. } => "full",
            QueueError::Stopped { .. } => "stopped",
            QueueError::Options(_) => "options",
            QueueError::UnknownConsumer(_) => "unknown_consumer",
            QueueError::ConsumerBusy(_) => "consumer_busy",
            QueueError::ConsumerRemoved(_) => "consumer_removed",
            QueueError::Closed => "closed",
        }
    }
}

/// A `Send` handle on an open source queue, for opening readers on any core and for asking a
/// blocked writer to give up at shutdown.
#[derive(Clone, Debug)]
pub struct QueueHandle {
    shared: Arc<shared::Shared>,
}

impl QueueHandle {
    /// Records the queue's readers took from the writer's in-memory hand-off instead of
    /// reading them from the segments ([`handoff`]), over all consumers, since the queue opened.
    pub fn handed_records(&self) -> u64 {
        self.shared
            .consumers
            .iter()
            .map(|slot| {
                slot.handed_records
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum()
    }

    /// The source queue's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The consumers this queue keeps cursors for.
    pub fn consumers(&self) -> impl Iterator<Item = &str> {
        self.shared
            .consumers
            .iter()
            .filter(|slot| !slot.removed.load(std::sync::atomic::Ordering::Acquire))
            .map(|slot| slot.name.as_str())
    }

    /// Each live consumer's lag behind the writer, and the bytes the queue keeps on disk, as
    /// of now: read from the published positions and the segment files' sizes (a segment
    /// that cannot be listed counts 0 bytes). For the operator endpoint; not for the data path.
    pub fn lag(&self) -> QueueLag {
        use std::sync::atomic::Ordering;
        let tail = self.shared.tail(shared::Tail::default());
        let segments = segment::list(&self.shared.dir).unwrap_or_default();
        let retained_bytes = segments.iter().map(|segment| segment.bytes).sum();
        let consumers = self.shared.consumers.iter();
        let consumers = consumers.filter(|slot| !slot.removed.load(Ordering::Acquire));
        let consumers = consumers
            .map(|slot| {
                let committed = shared::position(&slot.committed, Position::default());
                let bytes = segments
                    .iter()
                    .filter(|segment| (committed.segment..=tail.segment).contains(&segment.base))
                    .map(|segment| {
                        let end = if segment.base == tail.segment {
                            tail.offset
                        } else {
                            segment.bytes
                        };
                        let start = if segment.base == committed.segment {
                            committed.offset
                        } else {
                            0
                        };
                        end.saturating_sub(start)
                    })
                    .sum();
                (
                    slot.name.clone(),
                    tail.next_seq.saturating_sub(committed.seq),
                    bytes,
                )
            })
            .collect();
        QueueLag {
            retained_bytes,
            consumers,
        }
    }

    /// Whether the queue's writer has closed: once a reader has no data, nothing more comes.
    pub fn is_closed(&self) -> bool {
        self.shared
            .closed
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes a writer waiting for room (`full_action = "block"`) return
    /// [`QueueError::Stopped`], now and from then on. For shutdown.
    pub fn stop_blocking(&self) {
        self.shared
            .stop_blocking
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A queue's backlog as of one moment ([`QueueHandle::lag`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueLag {
    /// Bytes in the segment files on disk.
    pub retained_bytes: u64,
    /// Per live consumer: its name, then the records and bytes from its committed position to
    /// the end of the data.
    pub consumers: Vec<(String, u64, u64)>,
}

/// What a queue has done, for telemetry and `gyges queue`. A snapshot; all counts are totals
/// since the queue was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Records appended to segments.
    pub appended_records: u64,
    /// Bytes written to segments, framing included.
    pub appended_bytes: u64,
    /// Empty or oversized messages refused by [`Writer::append_batch`].
    pub rejected_records: u64,
    /// Records dropped because the queue was full and `full_action = "drop"`.
    pub dropped_full_records: u64,
    /// Times the writer waited for room (`full_action = "block"`), and for how long.
    pub blocked_waits: u64,
    /// Milliseconds the writer spent waiting for room, in total.
    pub blocked_ms: u64,
    /// `fdatasync` calls made on segments.
    pub fsyncs: u64,
    /// Segment files created since the queue was opened.
    pub segments_created: u64,
    /// Segment files deleted once every consumer had passed them.
    pub segments_deleted: u64,
    /// Segments on disk now.
    pub retained_segments: u64,
    /// Bytes in the segments on disk now.
    pub retained_bytes: u64,
    /// The writer's estimate of free bytes on the queue's file system.
    pub disk_free_bytes: u64,
    /// Recovery at open: torn records cut from the tail, and their bytes.
    pub torn_records_cut: u64,
    /// Bytes cut from the tail at open, with the torn records.
    pub torn_bytes_cut: u64,
    /// Recovery at open: damaged bytes found inside the tail segment (kept, skipped).
    pub corrupt_bytes_at_open: u64,
    /// Consumers that had no checkpoint at open and start at the oldest segment.
    pub checkpoints_missing: u64,
    /// Consumers whose checkpoint was damaged at open and start at the oldest segment.
    pub checkpoints_corrupt: u64,
    /// Checkpoints moved to the next segment or to the end of the data.
    pub checkpoints_moved: u64,
    /// Consumers whose checkpoint was deleted: at open (not configured) or by
    /// [`Writer::forget_consumer`].
    pub consumers_forgotten: u64,
    /// Each configured consumer, in the order the queue was opened with.
    pub consumers: Vec<ConsumerCounters>,
}

/// One consumer of a queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerCounters {
    /// The consumer's name, as given when the queue was opened (also its checkpoint's file name).
    pub name: String,
    /// Where the consumer has committed to: everything before it was delivered.
    pub committed: Position,
    /// The position last written to the consumer's checkpoint file; a restart resumes from it.
    pub checkpointed: Position,
    /// Bytes and records from the committed position to the end of the data.
    pub lag_bytes: u64,
    /// Records from the committed position to the end of the data.
    pub lag_records: u64,
    /// Records the consumer's reader has read since the queue was opened, replays included.
    pub read_records: u64,
    /// Of those, the records taken from the writer's in-memory hand-off instead of the
    /// segment ([`handoff`]).
    pub handed_records: u64,
    /// Damaged bytes the reader skipped.
    pub corrupt_bytes_skipped: u64,
    /// Records found missing between segments (damage, or a deleted segment).
    pub lost_records: u64,
    /// Records skipped because the consumer lagged by more than `max_consumer_lag`.
    pub dropped_lag_records: u64,
    /// Whether the consumer was forgotten ([`Writer::forget_consumer`]) and holds no data.
    pub removed: bool,
}

#[cfg(test)]
mod tests;
