//! The writer of one source queue: frames batches of messages into the tail segment, rotates
//! segments, syncs by policy, applies the full action, moves laggards on and deletes what every
//! consumer has passed.
//!
//! One writer per (core, queue), used only from its core's executor; it shares nothing with
//! other writers. Readers learn where the data ends from [`super::shared::Tail`], published
//! after each write (after its sync, with `sync = "every_batch"`).
//!
//! Per message the writer frames into a reused buffer (no allocation once it has grown); per
//! batch it makes one write ([`SegmentFile::append`]; with `direct_io`, `O_DIRECT` where the
//! file system takes it, so the bytes skip the page cache).
//!
//! With `sync = "interval"` no append waits for the disk: the periodic sync of the tail and the
//! sync of each sealed segment run as background tasks (through a second descriptor), at most
//! [`SYNCS_IN_FLIGHT_MAX`] at once; their failures surface at the next tick or close.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint;
use super::handoff::{self, Handed, HandoffProducer};
use super::record;
use super::recovery::{self, CheckpointState, RecoveryReport};
use super::segment::{self, SegmentFile, SegmentInfo, Segments};
use super::shared::{self, ConsumerSlot, ReaderSettings, Shared, Tail};
use super::{
    ConsumerCounters, FullAction, FullReason, Position, QueueCounters, QueueError, QueueHandle,
    QueueOptions, SyncPolicy,
};
use crate::limits;
use crate::runtime::backoff::Backoff;

/// Shortest and longest sleep of a writer waiting for room (`full_action = "block"`).
const BLOCK_SLEEP_MIN: Duration = Duration::from_millis(1);
const BLOCK_SLEEP_MAX: Duration = Duration::from_millis(10);
/// Background syncs in flight at most; starting one more first waits for the oldest.
pub const SYNCS_IN_FLIGHT_MAX: usize = 4;

/// A sync running as its own task, and whether it has finished.
struct BackgroundSync {
    done: Rc<Cell<bool>>,
    task: glommio::Task<Result<(), QueueError>>,
}

/// What [`Writer::append_batch`] did with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Records written (and, with `sync = "every_batch"`, synced).
    pub appended: u64,
    /// Records dropped because the queue was full (`full_action = "drop"`).
    pub dropped: u64,
    /// Empty or oversized messages refused.
    pub rejected: u64,
    /// The message counts of the dropped and refused records, summed
    /// ([`Writer::append_counted`]; 0 for uncounted records).
    pub refused_count: u64,
}

/// The single writer of one source queue.
pub struct Writer {
    dir: PathBuf,
    options: QueueOptions,
    shared: Arc<Shared>,
    segments: Segments,
    /// The tail segment; `None` only after [`Writer::close`].
    file: Option<SegmentFile>,
    next_seq: u64,
    /// Framed records not yet written, and how many.
    pending: Vec<u8>,
    pending_records: u64,
    /// Bytes in every retained segment, the tail included.
    retained_bytes: u64,
    /// Whether the tail has writes not yet synced, and when it was last synced.
    unsynced: bool,
    last_sync: Instant,
    /// Syncs running in the background, oldest first.
    syncs: VecDeque<BackgroundSync>,
    /// Free bytes on the file system: measured at each tick, lowered by each write since.
    disk_free_bytes: u64,
    counters: QueueCounters,
    report: RecoveryReport,
    /// The hand-off of appended records to the queue's consumer ([`Writer::hand_off_to`]).
    handoff: Option<HandoffProducer>,
    /// Set while [`Writer::append_owned`] appends: its flush leaves publishing the new end to
    /// it, so that the record is in the hand-off ring before readers learn it exists.
    defer_publish: bool,
}

impl Writer {
    /// Opens (creating if needed) the source queue in `dir` for the named consumers, after
    /// recovering it (see [`super::recovery`]). Consumers with a checkpoint in `dir` but not
    /// in `consumers` are forgotten.
    ///
    /// # Errors
    /// Invalid options or consumer names, or a file that cannot be read, repaired or created.
    pub async fn open(
        dir: &Path,
        options: &QueueOptions,
        consumers: &[String],
    ) -> Result<Writer, QueueError> {
        options.validate()?;
        validate_consumers(consumers)?;
        let sync = options.sync != SyncPolicy::None;
        let recovered = recovery::recover(dir, consumers, options.read_bytes, sync).await?;
        let mut counters = QueueCounters::default();
        count_recovery(&recovered.report, &mut counters);
        let slots = consumers
            .iter()
            .zip(&recovered.positions)
            .map(|(name, &position)| ConsumerSlot::new(name.clone(), position))
            .collect();
        let tail = recovered
            .segments
            .tail()
            .unwrap_or(SegmentInfo { base: 0, bytes: 0 });
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            tail: shared::Published::new([recovered.next_seq, tail.base, tail.bytes]),
            consumers: slots,
            pressure: Default::default(),
            closed: Default::default(),
            stop_blocking: Default::default(),
            reader: ReaderSettings {
                checkpoint_interval: options.checkpoint_interval,
                cursor_update_count: options.cursor_update_count,
                unsynced_checkpoint_interval: options.unsynced_checkpoint_interval,
                read_bytes: options.read_bytes,
                sync_checkpoints: sync,
            },
        });
        let file = SegmentFile::open(dir, tail.base, tail.bytes, options.direct_io).await?;
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            options: options.clone(),
            shared,
            retained_bytes: recovered.segments.total_bytes(),
            segments: recovered.segments,
            file: Some(file),
            next_seq: recovered.next_seq,
            pending: Vec::with_capacity(options.write_bytes + options.record_bytes_max() as usize),
            pending_records: 0,
            unsynced: false,
            last_sync: Instant::now(),
            syncs: VecDeque::new(),
            disk_free_bytes: u64::MAX,
            counters,
            report: recovered.report,
            handoff: None,
            defer_publish: false,
        };
        writer.refresh_disk_free();
        writer.release().await?;
        tracing::info!(
            queue = %dir.display(),
            segments = writer.segments.len(),
            bytes = writer.retained_bytes,
            next_seq = writer.next_seq,
            consumers = consumers.len(),
            "queue open"
        );
        Ok(writer)
    }

    /// A handle for opening readers (on any core) and for shutdown.
    pub fn handle(&self) -> QueueHandle {
        QueueHandle {
            shared: self.shared.clone(),
        }
    }

    /// What recovery found and did when the queue was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence number the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends one message. See [`Writer::append_batch`].
    ///
    /// # Errors
    /// As [`Writer::append_batch`].
    pub async fn append(&mut self, message: &[u8]) -> Result<AppendOutcome, QueueError> {
        self.append_batch([message]).await
    }

    /// Appends already-encoded messages, in order, each as one checksummed record. Returns
    /// once they are written (synced too with `sync = "every_batch"`) and visible to readers.
    ///
    /// When the queue is full: `drop` drops (and counts) the records that do not fit; `block`
    /// waits for consumers to free room, for as long as it takes or until
    /// [`QueueHandle::stop_blocking`]; `shutdown` returns [`QueueError::Full`].
    ///
    /// # Errors
    /// [`QueueError::Full`], [`QueueError::Stopped`], or an I/O error, in which case the
    /// records of the failed write are not in the queue (earlier writes of the batch are, and
    /// the error's context says how many) and the next batch is written where they would
    /// have been.
    pub async fn append_batch<'m, I>(&mut self, messages: I) -> Result<AppendOutcome, QueueError>
    where
        I: IntoIterator<Item = &'m [u8]>,
    {
        self.append_counted(messages.into_iter().map(|message| (message, 0)))
            .await
    }

    /// As [`Writer::append_batch`], each record also saying how many messages it holds
    /// (header field 13, see [`record`]); a count of 0 writes no count. For records that are
    /// batches of messages, such as a durable output's.
    ///
    /// # Errors
    /// As [`Writer::append_batch`].
    pub async fn append_counted<'m, I>(&mut self, records: I) -> Result<AppendOutcome, QueueError>
    where
        I: IntoIterator<Item = (&'m [u8], u64)>,
    {
        if self.file.is_none() {
            return Err(QueueError::Closed);
        }
        let mut outcome = AppendOutcome::default();
        for (message, count) in records {
            if message.is_empty() || message.len() > self.options.max_message_size {
                outcome.rejected += 1;
                outcome.refused_count += count;
                self.counters.rejected_records += 1;
                continue;
            }
            let length = record::encoded_length_counted(message.len(), count) as u64;
            if let Some(reason) = self.full_reason(length) {
                match self.options.full_action {
                    FullAction::Drop => {
                        outcome.dropped += 1;
                        outcome.refused_count += count;
                        self.counters.dropped_full_records += 1;
                        continue;
                    }
                    FullAction::Shutdown => {
                        self.flush(&mut outcome).await?;
                        return Err(QueueError::Full {
                            reason,
                            appended: outcome.appended,
                        });
                    }
                    FullAction::Block => {
                        self.flush(&mut outcome).await?;
                        self.wait_for_room(length, &outcome).await?;
                    }
                }
            }
            if self.needs_rotation(length) {
                self.flush(&mut outcome).await?;
                self.rotate().await?;
            }
            record::encode_counted(message, count, &mut self.pending);
            self.pending_records += 1;
            if self.pending.len() >= self.options.write_bytes {
                self.flush(&mut outcome).await?;
            }
        }
        self.flush(&mut outcome).await?;
        Ok(outcome)
    }

    /// From now on, hands the records appended with [`Writer::append_owned`] to consumer
    /// `consumer` through a ring of `slots` records ([`handoff`]), so that a reader of that
    /// consumer which keeps up takes them from memory instead of reading them back. Returns
    /// whether the queue has that consumer. A reader already open keeps reading the segments
    /// only; the next one opened takes the ring.
    pub fn hand_off_to(&mut self, consumer: &str, slots: usize) -> bool {
        let Some((_, slot)) = self.shared.slot(consumer) else {
            return false;
        };
        let (producer, receiver) = handoff::ring(slots);
        let Ok(mut held) = slot.handoff.lock() else {
            return false;
        };
        *held = Some(receiver);
        self.handoff = Some(producer);
        true
    }

    /// Appends `message` as one record holding `count` messages, as
    /// [`Writer::append_counted`] does, then hands it (the buffer itself, no copy) to the
    /// consumer set with [`Writer::hand_off_to`], before readers see the new end. A full ring
    /// frees the buffer instead: the consumer then reads that record from the segment.
    ///
    /// # Errors
    /// As [`Writer::append_batch`]; nothing is handed over then.
    pub async fn append_owned(
        &mut self,
        message: Vec<u8>,
        count: u64,
    ) -> Result<AppendOutcome, QueueError> {
        if self.handoff.is_none() {
            return self.append_counted([(message.as_slice(), count)]).await;
        }
        let length = record::encoded_length_counted(message.len(), count) as u64;
        let appended_before = self.counters.appended_records;
        self.defer_publish = true;
        let result = self.append_counted([(message.as_slice(), count)]).await;
        self.defer_publish = false;
        let appended = self.counters.appended_records - appended_before;
        if let (Ok(outcome), Some(file)) = (&result, self.file.as_ref()) {
            if outcome.appended == 1 && appended == 1 && file.length >= length {
                let end = Position {
                    segment: file.base,
                    offset: file.length,
                    seq: self.next_seq,
                };
                let start = Position {
                    offset: file.length - length,
                    seq: self.next_seq - 1,
                    ..end
                };
                let handed = Handed {
                    start,
                    end,
                    count,
                    bytes: message,
                };
                if let Some(producer) = self.handoff.as_mut() {
                    // A full ring: the consumer lags and reads the segment; free the copy.
                    let _ = producer.push(handed);
                }
            }
        }
        // Whatever happened, readers learn the end as it now is.
        self.publish();
        result
    }

    fn tail_length(&self) -> u64 {
        self.file.as_ref().map_or(0, |file| file.length) + self.pending.len() as u64
    }

    fn needs_rotation(&self, length: u64) -> bool {
        let tail = self.tail_length();
        tail > 0 && tail + length > self.options.max_file_size
    }

    /// Which limit a record of `length` bytes would cross, if any.
    fn full_reason(&self, length: u64) -> Option<FullReason> {
        let queued = self.retained_bytes + self.pending.len() as u64 + length;
        let max = self.options.max_buffer_size;
        if max != 0 && queued > max {
            return Some(FullReason::BufferSize { bytes: queued, max });
        }
        let min = self.options.min_disk_free;
        let free = self
            .disk_free_bytes
            .saturating_sub(self.pending.len() as u64 + length);
        (min != 0 && free < min).then_some(FullReason::DiskFree { free, min })
    }

    async fn wait_for_room(
        &mut self,
        length: u64,
        outcome: &AppendOutcome,
    ) -> Result<(), QueueError> {
        let started = Instant::now();
        self.counters.blocked_waits += 1;
        self.shared.pressure.store(true, Ordering::Release);
        let mut backoff = Backoff::new(BLOCK_SLEEP_MIN, BLOCK_SLEEP_MAX);
        let result = loop {
            if let Err(error) = self.maintain().await {
                break Err(error);
            }
            if self.full_reason(length).is_none() {
                break Ok(());
            }
            if self.shared.stop_blocking.load(Ordering::Acquire) {
                break Err(QueueError::Stopped {
                    appended: outcome.appended,
                });
            }
            backoff.wait().await;
        };
        self.shared.pressure.store(false, Ordering::Release);
        self.counters.blocked_ms += started.elapsed().as_millis() as u64;
        result
    }

    /// Writes the framed records, syncs by policy, and publishes the new end.
    async fn flush(&mut self, outcome: &mut AppendOutcome) -> Result<(), QueueError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(QueueError::Closed);
        };
        let records = std::mem::take(&mut self.pending_records);
        let length = self.pending.len() as u64;
        file.append(&mut self.pending).await?;
        // The records are in the file from here on, whatever happens to the sync.
        let file_length = file.length;
        self.segments.set_tail_bytes(file_length);
        self.retained_bytes += length;
        self.disk_free_bytes = self.disk_free_bytes.saturating_sub(length);
        self.next_seq += records;
        self.counters.appended_records += records;
        self.counters.appended_bytes += length;
        self.unsynced = true;
        if self.options.sync == SyncPolicy::EveryBatch {
            // Readers see the batch only once it is on the device.
            self.sync_tail().await?;
        }
        outcome.appended += records;
        if !self.defer_publish {
            self.publish();
        }
        Ok(())
    }

    fn publish(&self) {
        let (segment, offset) = self
            .file
            .as_ref()
            .map_or((0, 0), |file| (file.base, file.length));
        self.shared.publish_tail(Tail {
            next_seq: self.next_seq,
            segment,
            offset,
        });
    }

    /// Seals the tail and starts segment `next_seq`. The sealed segment is synced (and the
    /// directory, for the new name) by policy: inline for `every_batch`, in the background for
    /// `interval`.
    async fn rotate(&mut self) -> Result<(), QueueError> {
        // Cut the old tail to its length before a newer segment exists: from then on readers
        // and recovery take its end from its file.
        if let Some(old) = self.file.as_mut() {
            old.seal().await?;
        }
        let new = SegmentFile::create(&self.dir, self.next_seq, self.options.direct_io).await?;
        let old = self.file.replace(new);
        let unsynced = std::mem::replace(&mut self.unsynced, false);
        self.segments.push(SegmentInfo {
            base: self.next_seq,
            bytes: 0,
        });
        self.counters.segments_created += 1;
        self.publish();
        let Some(old) = old else {
            return Ok(());
        };
        match self.options.sync {
            SyncPolicy::None => old.close().await,
            SyncPolicy::EveryBatch => {
                old.close().await?;
                self.counters.fsyncs += 1;
                segment::sync_dir(&self.dir).await
            }
            SyncPolicy::Interval => {
                self.counters.fsyncs += 1 + u64::from(unsynced);
                let dir = self.dir.clone();
                self.start_background(async move {
                    if unsynced {
                        old.sync().await?;
                    }
                    old.close().await?;
                    segment::sync_dir(&dir).await
                })
                .await
            }
        }
    }

    /// Runs `work` as a background task, first waiting for the oldest one if
    /// [`SYNCS_IN_FLIGHT_MAX`] are running.
    async fn start_background<F>(&mut self, work: F) -> Result<(), QueueError>
    where
        F: Future<Output = Result<(), QueueError>> + 'static,
    {
        let mut result = Ok(());
        if self.syncs.len() >= SYNCS_IN_FLIGHT_MAX {
            if let Some(oldest) = self.syncs.pop_front() {
                result = oldest.task.await;
            }
        }
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let task = glommio::spawn_local(async move {
            let result = work.await;
            flag.set(true);
            result
        });
        self.syncs.push_back(BackgroundSync { done, task });
        result
    }

    /// Collects the finished background syncs (with `all`, waits for every one), returning the
    /// first failure.
    async fn collect_background(&mut self, all: bool) -> Result<(), QueueError> {
        let mut first_error = None;
        while self
            .syncs
            .front()
            .is_some_and(|sync| all || sync.done.get())
        {
            let Some(sync) = self.syncs.pop_front() else {
                break;
            };
            if let Err(error) = sync.task.await {
                tracing::error!(queue = %self.dir.display(), %error, "a background sync failed");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Periodic work; call it about every `checkpoint_interval` (more often is fine):
    /// - `sync = "interval"`: syncs the tail if it has unsynced writes and the interval passed;
    /// - measures the free disk space;
    /// - moves on consumers that lag by more than `max_consumer_lag`;
    /// - deletes the segments every consumer's checkpoint has passed.
    ///
    /// # Errors
    /// A sync or a deletion failed.
    pub async fn tick(&mut self) -> Result<(), QueueError> {
        if self.file.is_none() {
            return Err(QueueError::Closed);
        }
        self.maintain().await
    }

    async fn maintain(&mut self) -> Result<(), QueueError> {
        self.collect_background(false).await?;
        let interval_due = self.last_sync.elapsed() >= self.options.checkpoint_interval;
        if self.options.sync == SyncPolicy::Interval && self.unsynced && interval_due {
            if let Some(work) = self.file.as_ref().map(SegmentFile::sync_in_background) {
                self.counters.fsyncs += 1;
                self.unsynced = false;
                self.last_sync = Instant::now();
                self.start_background(work).await?;
            }
        }
        self.refresh_disk_free();
        self.move_laggards_on();
        self.release().await
    }

    /// Syncs everything written so far now, whatever the policy, and waits for the syncs
    /// running in the background.
    ///
    /// # Errors
    /// A sync failed.
    pub async fn sync(&mut self) -> Result<(), QueueError> {
        self.sync_tail().await?;
        self.collect_background(true).await
    }

    async fn sync_tail(&mut self) -> Result<(), QueueError> {
        let Some(file) = self.file.as_ref() else {
            return Err(QueueError::Closed);
        };
        file.sync().await?;
        self.counters.fsyncs += 1;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn refresh_disk_free(&mut self) {
        if self.options.min_disk_free == 0 {
            return;
        }
        match gyges_sys::file::disk_space(&self.dir) {
            Ok(space) => self.disk_free_bytes = space.available_bytes,
            Err(error) => {
                let queue = self.dir.display();
                tracing::warn!(%queue, %error, "cannot measure free disk space")
            }
        }
    }

    /// Where a consumer stands for retention: its checkpoint, or where the writer moved it.
    fn retained_from(&self, slot: &ConsumerSlot) -> Position {
        let checkpointed = shared::position(&slot.checkpointed, Position::default());
        let skip = slot.skip_to_segment.load(Ordering::Acquire);
        if skip > checkpointed.segment {
            Position {
                segment: skip,
                offset: 0,
                seq: skip,
            }
        } else {
            checkpointed
        }
    }

    /// Deletes the oldest segments while every consumer's checkpoint has passed them. The tail
    /// is never deleted.
    async fn release(&mut self) -> Result<(), QueueError> {
        while self.segments.len() > 1 {
            let Some(oldest) = self.segments.oldest() else {
                break;
            };
            let needed = self
                .shared
                .consumers
                .iter()
                .filter(|slot| !slot.removed.load(Ordering::Acquire))
                .any(|slot| !self.segments.is_passed(oldest, self.retained_from(slot)));
            if needed {
                break;
            }
            let path = segment::path(&self.dir, oldest.base);
            match glommio::io::remove(&path).await {
                Ok(()) => {}
                Err(error) => {
                    let error = std::io::Error::from(error);
                    if error.kind() != std::io::ErrorKind::NotFound {
                        return Err(QueueError::io("delete segment", &path, error));
                    }
                }
            }
            self.segments.pop_oldest();
            self.retained_bytes -= oldest.bytes;
            self.disk_free_bytes = self.disk_free_bytes.saturating_add(oldest.bytes);
            self.counters.segments_deleted += 1;
        }
        Ok(())
    }

    /// With `max_consumer_lag` set, moves each consumer that lags by more than that to the
    /// oldest segment from which the rest of the data fits in it, counting what it skips.
    fn move_laggards_on(&mut self) {
        let lag_max = self.options.max_consumer_lag;
        if lag_max == 0 {
            return;
        }
        for slot in &self.shared.consumers {
            if slot.removed.load(Ordering::Acquire) {
                continue;
            }
            let committed = shared::position(&slot.committed, Position::default());
            let skip = slot.skip_to_segment.load(Ordering::Acquire);
            let from = if skip > committed.segment {
                Position {
                    segment: skip,
                    offset: 0,
                    seq: skip,
                }
            } else {
                committed
            };
            if self.segments.bytes_after(from) <= lag_max {
                continue;
            }
            let Some(target) = self.keep_from(lag_max) else {
                continue;
            };
            if target.base <= from.segment {
                continue;
            }
            let skipped = target.base.saturating_sub(from.seq);
            slot.dropped_lag_records
                .fetch_add(skipped, Ordering::Relaxed);
            slot.skip_to_segment.store(target.base, Ordering::Release);
            tracing::warn!(
                queue = %self.dir.display(),
                consumer = %slot.name,
                skipped_records = skipped,
                to = %segment::file_name(target.base),
                "consumer lagged by more than max_consumer_lag; moved it on"
            );
        }
    }

    /// The oldest segment from which the data fits in `bytes_max` (the tail at least).
    fn keep_from(&self, bytes_max: u64) -> Option<SegmentInfo> {
        let mut kept = 0u64;
        let mut oldest_kept = self.segments.tail();
        for segment in self.segments.iter().rev() {
            kept += segment.bytes;
            if kept > bytes_max {
                break;
            }
            oldest_kept = Some(*segment);
        }
        oldest_kept
    }

    /// Forgets a consumer for good (a plugin stopped and removed while running): its
    /// checkpoint is deleted and it no longer holds any segment. Its reader, if open, fails
    /// from then on with [`QueueError::ConsumerRemoved`].
    ///
    /// # Errors
    /// Unknown consumer, or its checkpoint cannot be deleted.
    pub async fn forget_consumer(&mut self, name: &str) -> Result<(), QueueError> {
        let Some((_, slot)) = self.shared.slot(name) else {
            return Err(QueueError::UnknownConsumer(name.into()));
        };
        slot.removed.store(true, Ordering::Release);
        let path = checkpoint::path(&self.dir, name);
        if let Err(error) = std::fs::remove_file(&path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                return Err(QueueError::io("remove checkpoint", &path, error));
            }
        }
        tracing::info!(queue = %self.dir.display(), consumer = name, "consumer forgotten");
        self.counters.consumers_forgotten += 1;
        self.release().await
    }

    /// A snapshot of the counters, with each consumer's lag.
    pub fn counters(&self) -> QueueCounters {
        let mut counters = self.counters.clone();
        counters.retained_segments = self.segments.len() as u64;
        counters.retained_bytes = self.retained_bytes;
        counters.disk_free_bytes = self.disk_free_bytes;
        counters.consumers = self
            .shared
            .consumers
            .iter()
            .map(|slot| self.consumer_counters(slot))
            .collect();
        counters
    }

    fn consumer_counters(&self, slot: &ConsumerSlot) -> ConsumerCounters {
        let committed = shared::position(&slot.committed, Position::default());
        let from = recovery::normalize(&self.segments, committed.max(self.retained_from(slot)));
        ConsumerCounters {
            name: slot.name.clone(),
            committed,
            checkpointed: shared::position(&slot.checkpointed, Position::default()),
            lag_bytes: self.segments.bytes_after(from),
            lag_records: self.next_seq.saturating_sub(from.seq),
            read_records: slot.read_records.load(Ordering::Relaxed),
            handed_records: slot.handed_records.load(Ordering::Relaxed),
            corrupt_bytes_skipped: slot.corrupt_bytes.load(Ordering::Relaxed),
            lost_records: slot.lost_records.load(Ordering::Relaxed),
            dropped_lag_records: slot.dropped_lag_records.load(Ordering::Relaxed),
            removed: slot.removed.load(Ordering::Relaxed),
        }
    }

    /// Closes the queue cleanly: syncs the tail (unless `sync = "none"`) and closes it. Readers
    /// see the queue closed and checkpoint on their own close.
    ///
    /// # Errors
    /// The sync or the close failed.
    pub async fn close(mut self) -> Result<(), QueueError> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        self.shared.closed.store(true, Ordering::Release);
        let background = self.collect_background(true).await;
        file.seal().await?;
        if self.options.sync != SyncPolicy::None && self.unsynced {
            file.sync().await?;
        }
        file.close().await?;
        background
    }
}

fn validate_consumers(consumers: &[String]) -> Result<(), QueueError> {
    if consumers.len() > limits::QUEUE_CONSUMERS_MAX {
        return Err(QueueError::Options(format!(
            "{} consumers, at most {} per queue",
            consumers.len(),
            limits::QUEUE_CONSUMERS_MAX
        )));
    }
    for (index, name) in consumers.iter().enumerate() {
        if name.is_empty() || name.len() > checkpoint::NAME_BYTES_MAX {
            return Err(QueueError::Options(format!(
                "consumer name {name:?} must have 1 to {} bytes",
                checkpoint::NAME_BYTES_MAX
            )));
        }
        if consumers[..index].contains(name) {
            return Err(QueueError::Options(format!(
                "consumer {name:?} named twice"
            )));
        }
    }
    Ok(())
}

fn count_recovery(report: &RecoveryReport, counters: &mut QueueCounters) {
    counters.torn_records_cut = report.tail.torn_records;
    counters.torn_bytes_cut = report.tail.torn_bytes;
    counters.corrupt_bytes_at_open = report.tail.corrupt_bytes;
    counters.consumers_forgotten = report.forgotten.len() as u64;
    for (_, state) in &report.checkpoints {
        match state {
            CheckpointState::Loaded => {}
            CheckpointState::Missing => counters.checkpoints_missing += 1,
            CheckpointState::Corrupt(_) => counters.checkpoints_corrupt += 1,
            CheckpointState::MovedToNextSegment { .. } | CheckpointState::ClampedToEnd { .. } => {
                counters.checkpoints_moved += 1
            }
        }
    }
}
