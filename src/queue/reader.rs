//! A consumer's cursor over one source queue: reads whole records from where the consumer left
//! off, and checkpoints what the consumer commits.
//!
//! Reads go through the page cache (glommio's buffered reads): a consumer that keeps up reads
//! what the writer has just written without touching the disk; one that falls behind reads
//! from disk at its own pace, the writer unaffected. A reader never reads past the end the
//! writer has published, so it never sees a half-written record. Damaged records (a failed
//! checksum, broken framing) are skipped by resynchronising on the next intact record and
//! counted, never returned.
//!
//! Protocol for a consumer:
//! 1. [`Reader::read`] fills a [`ReadBatch`] (zero when caught up: [`Reader::wait`]);
//! 2. the consumer delivers the batch, then [`Reader::commit`]s [`ReadBatch::end`] — for an
//!    acknowledged output, when the acknowledgement arrives;
//! 3. commits are checkpointed every `checkpoint_interval`, every `cursor_update_count`
//!    records, when the writer is waiting for room, on [`Reader::tick`] and on
//!    [`Reader::close`], with the syncs of the queue's policy; and in between, at most every
//!    [`crate::limits::QUEUE_CHECKPOINT_UNSYNCED_INTERVAL`], without syncs (the page cache keeps it through a
//!    `kill -9`). After a crash the consumer resumes from its last checkpoint: at least once,
//!    replaying about one unsynced interval after a kill, one `checkpoint_interval` after a
//!    power loss.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::io::{BufferedFile, OpenOptions, ReadResult};

use super::checkpoint;
use super::handoff::{self, Front, HandoffConsumer};
use super::record::{self, Step};
use super::segment;
use super::shared::{self, ConsumerSlot, Shared, Tail};
use super::{Position, QueueError, QueueHandle};
use crate::runtime::backoff::Backoff;

/// Reads (or segment changes) one [`Reader::read`] call makes at most before returning, so a
/// long run of damaged bytes cannot hold the executor.
const READ_STEPS_MAX: usize = 64;
/// Shortest and longest sleep of [`Reader::wait`].
const WAIT_SLEEP_MIN: Duration = Duration::from_micros(20);
const WAIT_SLEEP_MAX: Duration = Duration::from_millis(1);

/// The bytes a [`ReadBatch`] indexes: one read of a segment, or a record the writer handed
/// over in memory ([`super::handoff`]).
enum Data {
    Read(ReadResult),
    Handed(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Data::Read(read) => read,
            Data::Handed(bytes) => bytes,
        }
    }
}

/// Records read together: borrowed from one buffer, valid until the next read into the batch.
#[derive(Default)]
pub struct ReadBatch {
    data: Option<Data>,
    messages: Vec<Range<usize>>,
    /// Per record, the messages its header says it holds (0: not said).
    counts: Vec<u64>,
    /// Where the read started: the first record's position, unless damaged bytes came first.
    start: Position,
    end: Position,
}

impl ReadBatch {
    /// An empty batch, to be filled by a reader's reads and reused across them.
    pub fn new() -> ReadBatch {
        ReadBatch::default()
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The `index`-th message.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let range = self.messages.get(index)?.clone();
        self.data.as_deref()?.get(range)
    }

    /// The messages, in queue order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let data: &[u8] = self.data.as_deref().unwrap_or(&[]);
        self.messages
            .iter()
            .filter_map(move |range| data.get(range.clone()))
    }

    /// The messages the `index`-th record says it holds (header field 13); 0 when it does not
    /// say (a queue whose records are single messages, or a record from before the field).
    pub fn count(&self, index: usize) -> Option<u64> {
        self.counts.get(index).copied()
    }

    /// The messages the records say they hold, summed (records that do not say count 0).
    pub fn message_count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The position after the last record: what to commit once the batch is delivered.
    pub fn end(&self) -> Position {
        self.end
    }

    /// The position after the `index`-th record: what to commit once the records up to it
    /// are delivered (a consumer that stops part way through a batch). `None` past the end.
    pub fn end_of(&self, index: usize) -> Option<Position> {
        if index + 1 == self.messages.len() {
            return Some(self.end);
        }
        // A batch comes from one read of one segment; a record ends where its message does.
        let message = self.messages.get(index)?;
        Some(Position {
            segment: self.start.segment,
            offset: self.start.offset + message.end as u64,
            seq: self.start.seq + index as u64 + 1,
        })
    }

    /// Whether the records came from the writer's in-memory hand-off rather than a read of
    /// the segment.
    pub fn is_handed(&self) -> bool {
        matches!(self.data, Some(Data::Handed(_)))
    }

    /// The bytes of a record handed over in memory, taken out of the batch so that a
    /// destination can keep them without a copy (a file write that takes its buffer). The
    /// batch then yields no message bytes any more; its counts and positions stay, so it can
    /// still be committed. `None` for records read from a segment, which stay in place.
    pub fn take_handed(&mut self) -> Option<Vec<u8>> {
        match self.data.take() {
            Some(Data::Handed(bytes)) => Some(bytes),
            other => {
                self.data = other;
                None
            }
        }
    }

    fn clear(&mut self) {
        self.data = None;
        self.messages.clear();
        self.counts.clear();
    }
}

/// The segment file being read.
struct OpenSegment {
    base: u64,
    file: BufferedFile,
    /// The segment's length once it is known to be sealed.
    sealed_bytes: Option<u64>,
}

/// A checkpoint write that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checkpoint {
    /// With the queue's syncs: by `checkpoint_interval`, `cursor_update_count` or pressure.
    Synced,
    /// Without syncs: by [`crate::limits::QUEUE_CHECKPOINT_UNSYNCED_INTERVAL`], so that a `kill -9` replays
    /// little.
    Unsynced,
}

/// One consumer's reader of one source queue. Used from one core; any core may open it.
pub struct Reader {
    shared: Arc<Shared>,
    slot: usize,
    name: String,
    segment: Option<OpenSegment>,
    /// Where the next record is read from.
    position: Position,
    committed: Position,
    checkpointed: Position,
    /// The position of the last checkpoint written with the queue's syncs.
    synced: Position,
    /// When the checkpoint was last written, synced or not.
    last_checkpoint: Instant,
    /// When it was last written with the queue's syncs.
    last_synced: Instant,
    tail: Tail,
    /// The size the record at `position` needs, when it is larger than `read_bytes`.
    record_bytes: usize,
    /// The consumer's end of the writer's hand-off ring, if the writer hands records to it.
    handoff: Option<HandoffConsumer>,
}

impl Reader {
    /// Opens the reader of `consumer`, at its recovered position.
    ///
    /// # Errors
    /// The consumer is unknown, removed, or already has a reader open.
    pub fn open(handle: &QueueHandle, consumer: &str) -> Result<Reader, QueueError> {
        let shared = handle.shared.clone();
        let Some((slot, state)) = shared.slot(consumer) else {
            return Err(QueueError::UnknownConsumer(consumer.into()));
        };
        if state.removed.load(Ordering::Acquire) {
            return Err(QueueError::ConsumerRemoved(consumer.into()));
        }
        if state.attached.swap(true, Ordering::AcqRel) {
            return Err(QueueError::ConsumerBusy(consumer.into()));
        }
        let committed = shared::position(&state.committed, Position::default());
        let checkpointed = shared::position(&state.checkpointed, committed);
        let tail = shared.tail(Tail::default());
        let handoff = state.handoff.lock().ok().and_then(|mut held| held.take());
        Ok(Reader {
            handoff,
            slot,
            name: consumer.into(),
            segment: None,
            position: committed,
            committed,
            checkpointed,
            synced: checkpointed,
            last_checkpoint: Instant::now(),
            last_synced: Instant::now(),
            tail,
            record_bytes: 0,
            shared,
        })
    }

    fn state(&self) -> &ConsumerSlot {
        &self.shared.consumers[self.slot]
    }

    /// Where the next read starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The last committed position.
    pub fn committed(&self) -> Position {
        self.committed
    }

    /// Moves the read position back to the last commit: what was read but not committed is
    /// read again (a sender whose unacknowledged batches were lost with a connection).
    pub fn rewind(&mut self) {
        self.position = self.committed;
        self.record_bytes = 0;
    }

    /// Whether the writer has published records past this reader's position.
    pub fn has_data(&mut self) -> bool {
        self.tail = self.shared.tail(self.tail);
        let skip = self.state().skip_to_segment.load(Ordering::Acquire);
        self.position.segment < self.tail.segment
            || self.position.offset < self.tail.offset
            || skip > self.position.segment
    }

    /// Waits until there is something to read, the writer closes, or `timeout` passes.
    /// Returns whether there is something to read.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(WAIT_SLEEP_MIN, WAIT_SLEEP_MAX);
        loop {
            if self.has_data() {
                return true;
            }
            if self.shared.closed.load(Ordering::Acquire) || Instant::now() >= deadline {
                return false;
            }
            backoff.wait_until(deadline).await;
        }
    }

    /// Reads the next records into `batch` (replacing what it held) and returns how many.
    /// Zero means the reader is at the end of the published data.
    ///
    /// # Errors
    /// The consumer was removed, or a segment cannot be read.
    pub async fn read(&mut self, batch: &mut ReadBatch) -> Result<usize, QueueError> {
        batch.clear();
        if self.state().removed.load(Ordering::Acquire) {
            return Err(QueueError::ConsumerRemoved(self.name.clone()));
        }
        self.follow_skip();
        // A consumer that is caught up commits nothing new, yet a writer waiting for room may
        // need its checkpoint: reading is its chance to write it.
        self.checkpoint_if_due().await?;
        for _ in 0..READ_STEPS_MAX {
            self.tail = self.shared.tail(self.tail);
            // After the tail: the writer hands a record over before it publishes it, so a
            // record the tail shows is in the ring if it was handed over. Looked at on every
            // step, as a step may wait (opening a new segment) while the writer appends.
            if self.take_handed(batch) {
                self.close_passed_segment().await;
                return Ok(batch.len());
            }
            if self.position.segment > self.tail.segment {
                return Ok(0);
            }
            let Some(limit) = self.readable_end().await? else {
                self.next_segment()?;
                continue;
            };
            if self.position.offset >= limit {
                if self.position.segment < self.tail.segment {
                    self.next_segment()?;
                    continue;
                }
                return Ok(0);
            }
            if self.read_once(limit, batch).await? {
                return Ok(batch.len());
            }
        }
        Ok(0)
    }

    /// Takes the record the reader would read next from the writer's hand-off, if it is
    /// there, dropping what the reader has already passed. Returns whether `batch` got it.
    fn take_handed(&mut self, batch: &mut ReadBatch) -> bool {
        let Some(ring) = self.handoff.as_mut() else {
            return false;
        };
        loop {
            let Ok(front) = ring.peek() else {
                return false;
            };
            match handoff::front(front, self.position) {
                Front::Passed => drop(ring.pop()),
                Front::Ahead => return false,
                Front::Next => break,
            }
        }
        let Ok(handed) = ring.pop() else {
            return false;
        };
        batch.messages.push(0..handed.bytes.len());
        batch.counts.push(handed.count);
        batch.data = Some(Data::Handed(handed.bytes));
        batch.start = handed.start;
        batch.end = handed.end;
        self.position = handed.end;
        self.record_bytes = 0;
        let state = self.state();
        state.read_records.fetch_add(1, Ordering::Relaxed);
        state.handed_records.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Where the readable bytes of the current segment end, or `None` if its file is gone.
    async fn readable_end(&mut self) -> Result<Option<u64>, QueueError> {
        let sealed = self.position.segment < self.tail.segment;
        let path = segment::path(&self.shared.dir, self.position.segment);
        let Some(segment) = self.open_segment().await? else {
            return Ok(None);
        };
        if !sealed {
            return Ok(Some(self.tail.offset));
        }
        if let Some(bytes) = segment.sealed_bytes {
            return Ok(Some(bytes));
        }
        let bytes = match segment.file.file_size().await {
            Ok(bytes) => bytes,
            Err(error) => {
                let error = std::io::Error::from(error);
                if error.kind() == std::io::ErrorKind::NotFound {
                    // Pruned since it was opened: as gone as a segment that cannot be opened.
                    self.close_segment().await;
                    return Ok(None);
                }
                return Err(QueueError::io("stat segment", &path, error));
            }
        };
        segment.sealed_bytes = Some(bytes);
        Ok(Some(bytes))
    }

    async fn open_segment(&mut self) -> Result<Option<&mut OpenSegment>, QueueError> {
        let base = self.position.segment;
        if self.segment.as_ref().map(|segment| segment.base) != Some(base) {
            self.close_segment().await;
            let path = segment::path(&self.shared.dir, base);
            match OpenOptions::new().read(true).buffered_open(&path).await {
                Ok(file) => {
                    self.segment = Some(OpenSegment {
                        base,
                        file,
                        sealed_bytes: None,
                    })
                }
                Err(error) => {
                    let error = std::io::Error::from(error);
                    if error.kind() == std::io::ErrorKind::NotFound {
                        return Ok(None);
                    }
                    return Err(QueueError::io("open segment", &path, error));
                }
            }
        }
        Ok(self.segment.as_mut())
    }

    /// Closes the segment file the reader has moved past by taking handed records: a
    /// consumer that keeps up takes every record from the hand-off and may not read a file
    /// again for a long time, and a pruned segment's space comes back only when it is closed.
    async fn close_passed_segment(&mut self) {
        if self
            .segment
            .as_ref()
            .is_some_and(|open| open.base != self.position.segment)
        {
            self.close_segment().await;
        }
    }

    /// Closes the segment file being read, and waits for the close: a pruned segment's disk
    /// space comes back only when its last descriptor is closed, and a file merely dropped
    /// is closed whenever its executor next submits I/O.
    async fn close_segment(&mut self) {
        if let Some(open) = self.segment.take() {
            if let Err(error) = open.file.close().await {
                tracing::debug!(queue = %self.shared.dir.display(), %error,
                    "closing a read segment failed");
            }
        }
    }

    /// One read at the current position, up to `limit`. Returns whether `batch` got records.
    async fn read_once(&mut self, limit: u64, batch: &mut ReadBatch) -> Result<bool, QueueError> {
        let started = self.position;
        let read_bytes = self.shared.reader.read_bytes.max(self.record_bytes);
        let wanted = (limit - self.position.offset).min(read_bytes as u64) as usize;
        let offset = self.position.offset;
        let Some(segment) = self.segment.as_ref() else {
            return Ok(false);
        };
        let data = segment
            .file
            .read_at(offset, wanted)
            .await
            .map_err(|error| {
                let path = segment::path(&self.shared.dir, segment.base);
                QueueError::io("read segment", &path, error.into())
            })?;
        // Short only at the end of a sealed segment's file.
        let complete = offset + data.len() as u64 >= limit || data.len() < wanted;
        let (mut at, mut skipped) = (0usize, 0u64);
        loop {
            match record::step(&data, at, complete) {
                Step::Record {
                    message,
                    next,
                    count,
                } => {
                    batch.messages.push(message);
                    batch.counts.push(count);
                    at = next;
                }
                Step::Skip { next } => {
                    skipped += (next - at) as u64;
                    at = next;
                }
                Step::NeedMore { at: from, needed } => {
                    if from == 0 {
                        self.record_bytes = needed;
                    }
                    break;
                }
                Step::End => break,
            }
        }
        let records = batch.messages.len() as u64;
        if records > 0 {
            self.record_bytes = 0;
        }
        if skipped > 0 {
            self.state()
                .corrupt_bytes
                .fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(
                queue = %self.shared.dir.display(),
                consumer = %self.name,
                segment = %segment::file_name(self.position.segment),
                offset,
                skipped_bytes = skipped,
                "skipped damaged bytes in the queue"
            );
        }
        self.position.offset += at as u64;
        self.position.seq += records;
        if complete && data.len() < wanted && self.position.segment < self.tail.segment {
            // The sealed segment ended early: nothing more will come from it.
            self.position.offset = limit;
        }
        self.state()
            .read_records
            .fetch_add(records, Ordering::Relaxed);
        if records == 0 {
            return Ok(false);
        }
        batch.data = Some(Data::Read(data));
        batch.start = started;
        batch.end = self.position;
        Ok(true)
    }

    /// Moves to the oldest segment after the current one.
    fn next_segment(&mut self) -> Result<(), QueueError> {
        let dir = &self.shared.dir;
        let segments = segment::list(dir).map_err(|error| QueueError::io("list", dir, error))?;
        let current = self.position.segment;
        let Some(next) = segments.iter().find(|segment| segment.base > current) else {
            return Ok(());
        };
        if next.base > self.position.seq {
            let lost = next.base - self.position.seq;
            self.state().lost_records.fetch_add(lost, Ordering::Relaxed);
            tracing::warn!(
                queue = %dir.display(),
                consumer = %self.name,
                lost_records = lost,
                "records missing before segment {}",
                segment::file_name(next.base)
            );
        }
        self.position = Position {
            segment: next.base,
            offset: 0,
            seq: next.base,
        };
        // The old segment's file is closed by the next `open_segment`.
        Ok(())
    }

    /// Jumps to where the writer moved this consumer (`max_consumer_lag`); the writer counted
    /// what was skipped.
    fn follow_skip(&mut self) {
        let skip = self.state().skip_to_segment.load(Ordering::Acquire);
        if skip <= self.position.segment {
            return;
        }
        self.position = Position {
            segment: skip,
            offset: 0,
            seq: skip,
        };
        // The old segment's file is closed by the next `open_segment`.
        if self.committed < self.position {
            self.committed = self.position;
            self.state().committed.store(self.committed.to_array());
        }
    }

    /// Records that the consumer is done with everything before `position` (the
    /// [`ReadBatch::end`] of a delivered batch), and checkpoints if one is due. Positions
    /// older than the last commit are ignored.
    ///
    /// # Errors
    /// A due checkpoint could not be written; the commit itself is kept and the checkpoint
    /// is tried again on the next commit or tick.
    pub async fn commit(&mut self, position: Position) -> Result<(), QueueError> {
        if position > self.committed {
            self.committed = position;
            self.state().committed.store(position.to_array());
        }
        self.checkpoint_if_due().await
    }

    /// Which checkpoint is due now, if any.
    fn checkpoint_due(&self) -> Option<Checkpoint> {
        if self.committed == self.synced {
            return None;
        }
        // Commits the checkpoint file does not hold yet (it may hold them unsynced).
        let fresh = self.committed != self.checkpointed;
        let settings = &self.shared.reader;
        let count = settings.cursor_update_count;
        let by_count =
            fresh && count > 0 && self.committed.seq.saturating_sub(self.checkpointed.seq) >= count;
        let by_pressure = fresh
            && self.shared.pressure.load(Ordering::Acquire)
            && self.committed.segment > self.checkpointed.segment;
        if by_count || by_pressure || self.last_synced.elapsed() >= settings.checkpoint_interval {
            return Some(Checkpoint::Synced);
        }
        let unsynced = settings.unsynced_checkpoint_interval?;
        (fresh && self.last_checkpoint.elapsed() >= unsynced).then_some(Checkpoint::Unsynced)
    }

    async fn checkpoint_if_due(&mut self) -> Result<(), QueueError> {
        match self.checkpoint_due() {
            Some(Checkpoint::Synced) => self.checkpoint().await,
            Some(Checkpoint::Unsynced) => self.store(false).await,
            None => Ok(()),
        }
    }

    /// Checkpoints if one is due by time. Call it about every `checkpoint_interval` (and, for
    /// the unsynced cadence, more often).
    ///
    /// # Errors
    /// The checkpoint could not be written.
    pub async fn tick(&mut self) -> Result<(), QueueError> {
        self.checkpoint_if_due().await
    }

    /// Writes the committed position to the consumer's checkpoint now, if it moved, with the
    /// queue's syncs.
    ///
    /// # Errors
    /// The checkpoint could not be written; the previous one stays in place.
    pub async fn checkpoint(&mut self) -> Result<(), QueueError> {
        let sync = self.shared.reader.sync_checkpoints;
        self.store(sync).await
    }

    /// Writes the committed position to the checkpoint file, synced or not. A synced write
    /// is made even when an unsynced one already holds the position.
    async fn store(&mut self, sync: bool) -> Result<(), QueueError> {
        let done = if sync { self.synced } else { self.checkpointed };
        if self.committed == done || self.state().removed.load(Ordering::Acquire) {
            return Ok(());
        }
        checkpoint::store(&self.shared.dir, &self.name, self.committed, sync).await?;
        self.checkpointed = self.committed;
        self.state().checkpointed.store(self.committed.to_array());
        let now = Instant::now();
        self.last_checkpoint = now;
        if sync || !self.shared.reader.sync_checkpoints {
            self.synced = self.committed;
            self.last_synced = now;
        }
        Ok(())
    }

    /// Checkpoints what was committed and releases the consumer for another reader.
    ///
    /// # Errors
    /// The checkpoint could not be written.
    pub async fn close(mut self) -> Result<(), QueueError> {
        self.close_segment().await;
        self.checkpoint().await
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The hand-off ring waits for the consumer's next reader.
        if let Some(ring) = self.handoff.take() {
            if let Ok(mut held) = self.state().handoff.lock() {
                *held = Some(ring);
            }
        }
        self.state().attached.store(false, Ordering::Release);
    }
}
