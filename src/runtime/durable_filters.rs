//! Durable filters (`use_buffering = true` or `delivery = "durable"` on a filter): a disk queue
//! per core in place of the filter's lane ring, and consumers on the host core that feed
//! the queued records to the filter exactly as lane batches, committing after processing.
//!
//! Design (see also `docs/architecture.md`, step 7 and "Durable filters"):
//! - **Append side.** On every core, a durable filter has a lane of its own whose target is a
//!   [`FilterQueue`]: this core's queue `source_dir(queue_dir, filter, core row)`. A shipped
//!   lane batch (filter records, the same bytes a ring would carry) becomes one queue record;
//!   a batch larger than the queue's record bound is cut between filter records. Injected
//!   messages that match a durable filter are appended on the core that routed them (the
//!   injecting filter's host), to that core's queue.
//! - **Consume side.** The host task runs one [`DurableSource`] per core row. Each reads
//!   records from the filter's checkpoint on (the filter is the queue's one consumer, under
//!   its own name), runs each through the filter as a lane batch would be run (at most
//!   [`TURN_RECORDS_MAX`] messages or about [`TURN_TIME_MAX`] per turn of the host loop), ships every batch this
//!   core holds (so what the filter injected is in its durable queues), and only then commits
//!   the end of the record: at least once. Commits are
//!   checkpointed every `checkpoint_interval` (or `cursor_update_count` records) and when the
//!   host stops.
//! - **Records of another configuration.** The filter index inside a queued record is that of
//!   the run that wrote it; the consumer ignores it: every record of a filter's queue is for
//!   that filter.
//! - **A terminated filter** stops reading its queues: what is queued waits for the next start.
//!
//! Stopping (the protocol [`super::filters::run_host`] follows). A source that has data to read
//! counts itself in [`FilterShared::durable_busy`]. Once every core is done, a host raises
//! [`FilterShared::finishing`] when nothing is in flight and no source is busy, or when
//! [`DRAIN_TIMEOUT`] has passed since every core was done. A source reserves one unit of
//! [`FilterShared::in_flight`] *before* it checks `finishing` and holds it until what it read
//! is processed and shipped; a host leaves only when `finishing` is up and nothing is in
//! flight. Both sides use sequentially consistent operations, so a host that leaves has either
//! seen the reservation or the source has seen the flag and left its records on disk. Records
//! not processed by then stay queued for the next start.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::filters::{filter_record_bytes, FilterShared, Host};
use super::shard::Shard;
use crate::filter::Emitted;
use crate::output::durable::{DurableQueue, HandleBoard};
use crate::output::Batch;
use crate::queue::{QueueError, QueueOptions, ReadBatch, Reader};
use crate::telemetry::{Metric, Telemetry};

pub use crate::output::durable::DRAIN_TIMEOUT;

/// What a source processes per turn of the host loop: a queue record (a lane batch of up to
/// 64 KiB) can hold hundreds of messages, and a slow filter must not hold its core (its
/// inputs, its stop) for all of them. A turn takes steps of [`TURN_STEP_RECORDS`] filter
/// records until [`TURN_RECORDS_MAX`] or [`TURN_TIME_MAX`], whichever comes first; the clock
/// is read once per step.
const TURN_STEP_RECORDS: usize = 8;
const TURN_RECORDS_MAX: usize = 256;
const TURN_TIME_MAX: Duration = Duration::from_millis(2);

/// How long a source waits for its core's queue to be published at startup.
const OPEN_WAIT_MAX: Duration = Duration::from_secs(30);

/// One core's queue for one durable filter: the target of that filter's lane on this core.
pub struct FilterQueue {
    queue: Rc<DurableQueue>,
    /// The largest record the queue takes; a larger lane batch is cut between filter records.
    record_bytes_max: usize,
    telemetry: Arc<Telemetry>,
    /// This core's telemetry row and the filter's plugin index, for what the queue refuses.
    core: usize,
    plugin: usize,
}

impl FilterQueue {
    /// Opens (recovering) core row `row`'s queue of filter `filter` under `queue_dir`.
    ///
    /// # Errors
    /// The queue cannot be opened or recovered.
    pub async fn open(
        queue_dir: &std::path::Path,
        filter: &str,
        row: usize,
        options: &QueueOptions,
        (telemetry, stop): (Arc<Telemetry>, Arc<super::stop::StopFlag>),
        plugin: usize,
    ) -> Result<Rc<FilterQueue>, QueueError> {
        let queue = DurableQueue::open(queue_dir, filter, row, options, stop).await?;
        Ok(Rc::new(FilterQueue {
            queue,
            record_bytes_max: options.max_message_size,
            telemetry,
            core: row,
            plugin,
        }))
    }

    /// The append side, for its ticker and for closing at stop.
    pub fn queue(&self) -> &Rc<DurableQueue> {
        &self.queue
    }

    /// Appends a lane batch as one record (or, if it is too large, as several, each a whole
    /// number of filter records); what the queue refuses is counted as dropped for the filter.
    pub async fn ship(&self, batch: Batch) {
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        if batch.bytes.len() <= self.record_bytes_max {
            self.queue.append(batch, telemetry, core, plugin).await;
            return;
        }
        for piece in record_pieces(&batch.bytes, self.record_bytes_max) {
            let messages = super::filters::filter_records(piece).count() as u64;
            let piece = Batch {
                bytes: piece.to_vec(),
                messages,
            };
            self.queue.append(piece, telemetry, core, plugin).await;
        }
    }
}

/// `bytes` (whole filter records) cut into pieces of at most `piece_bytes_max`, each a whole
/// number of filter records; a record larger than the bound is a piece of its own (the queue
/// then refuses it and it is counted as dropped).
fn record_pieces(bytes: &[u8], piece_bytes_max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        let end = at + filter_record_bytes(&bytes[at..]).unwrap_or(bytes.len() - at);
        if end - start > piece_bytes_max && at > start {
            pieces.push(&bytes[start..at]);
            start = at;
        }
        at = end;
    }
    if start < bytes.len() {
        pieces.push(&bytes[start..]);
    }
    pieces
}

/// The bytes of the first `count` filter records of `bytes` (all of them if fewer).
fn chunk_bytes(bytes: &[u8], count: usize) -> usize {
    let mut at = 0;
    for _ in 0..count {
        match bytes.get(at..).and_then(filter_record_bytes) {
            Some(length) => at += length,
            None => return bytes.len(),
        }
    }
    at
}

/// Where a source stands.
enum SourceState {
    /// The core's queue is not published yet.
    Waiting {
        since: Instant,
    },
    Open(Box<Reader>),
    /// Given up (the queue never opened, or the reader could not be opened).
    Done,
}

/// The host's consumer of one core's queue for one of its durable filters.
pub struct DurableSource {
    /// The filter's index among the plan's filters.
    filter: u16,
    /// The filter's name: its queues' directory and their consumer.
    name: String,
    board: Arc<HandleBoard>,
    /// The core row whose queue this is.
    row: usize,
    state: SourceState,
    /// The last read, the index of its next record to process, and how many bytes of that
    /// record are processed already.
    records: ReadBatch,
    next: usize,
    offset: usize,
    /// Counted in [`FilterShared::durable_busy`].
    busy: bool,
}

impl DurableSource {
    /// The consumer of core row `row`'s queue of filter `filter` (named `name`), whose handle
    /// that core publishes on `board`.
    pub fn new(filter: u16, name: &str, board: Arc<HandleBoard>, row: usize) -> DurableSource {
        DurableSource {
            filter,
            name: name.to_string(),
            board,
            row,
            state: SourceState::Waiting {
                since: Instant::now(),
            },
            records: ReadBatch::new(),
            next: 0,
            offset: 0,
            busy: false,
        }
    }

    fn set_busy(&mut self, busy: bool, shared: &FilterShared) {
        if busy != self.busy {
            self.busy = busy;
            match busy {
                true => shared.durable_busy.fetch_add(1, Ordering::SeqCst),
                false => shared.durable_busy.fetch_sub(1, Ordering::SeqCst),
            };
        }
    }

    /// The reader, once the queue is published.
    fn reader(&mut self) -> Option<&mut Reader> {
        if let SourceState::Waiting { since } = self.state {
            self.state = match self.board.get(self.row) {
                Some(handle) => match Reader::open(&handle, &self.name) {
                    Ok(reader) => SourceState::Open(Box::new(reader)),
                    Err(error) => {
                        tracing::error!(queue = %handle.dir().display(), %error,
                            "durable filter: cannot open the queue reader");
                        SourceState::Done
                    }
                },
                None if since.elapsed() > OPEN_WAIT_MAX => {
                    tracing::error!(filter = %self.name, row = self.row,
                        "durable filter: the core's queue never opened");
                    SourceState::Done
                }
                None => return None,
            };
        }
        match &mut self.state {
            SourceState::Open(reader) => Some(reader),
            _ => None,
        }
    }

    /// Runs the next filter records of the next queued record (one lane batch) through the
    /// filter, if there are some and filters are not finishing; ships what it injected and,
    /// at the end of the record, commits. Returns whether it processed anything. At most
    /// [`TURN_RECORDS_MAX`] messages or about [`TURN_TIME_MAX`] per call, so the host goes round its other work (and its
    /// stop checks) between them. A record left part way at stop is not committed: the next
    /// start processes all of it again.
    pub async fn poll(
        &mut self,
        shard: &Shard,
        host: &mut Host,
        shared: &FilterShared,
        emitted: &mut Emitted,
    ) -> bool {
        let terminated = host.is_terminated(usize::from(self.filter));
        let pending = self.next < self.records.len();
        let Some(reader) = self.reader() else {
            return false;
        };
        let has_data = !terminated && (pending || reader.has_data());
        if !has_data {
            if let Err(error) = reader.tick().await {
                tracing::warn!(filter = %self.name, %error, "durable filter checkpoint failed");
            }
            self.set_busy(false, shared);
            return false;
        }
        self.set_busy(true, shared);
        // The reservation first, then the flag: see the module docs.
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let processed = match shared.finishing.load(Ordering::SeqCst) {
            true => false,
            false => self.process_next(shard, host, shared, emitted).await,
        };
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if processed {
            shard.ship_full().await;
        }
        processed
    }

    /// Reads more records if the last read is used up, then processes the next filter records
    /// of the current one, ships what the filter injected, and commits a finished record.
    async fn process_next(
        &mut self,
        shard: &Shard,
        host: &mut Host,
        shared: &FilterShared,
        emitted: &mut Emitted,
    ) -> bool {
        let SourceState::Open(reader) = &mut self.state else {
            return false;
        };
        if self.next >= self.records.len() {
            (self.next, self.offset) = (0, 0);
            match reader.read(&mut self.records).await {
                Ok(0) => return false,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(filter = %self.name, %error,
                        "durable filter: queue read failed");
                    let plugin = host.plugin_of(usize::from(self.filter));
                    shard.telemetry.add(shard.core, plugin, Metric::Errors, 1);
                    return false;
                }
            }
        }
        let index = self.next;
        let Some(record) = self.records.get(index) else {
            return false;
        };
        let rest = record.get(self.offset..).unwrap_or_default();
        let (started, mut chunk) = (Instant::now(), 0);
        for _ in 0..TURN_RECORDS_MAX / TURN_STEP_RECORDS {
            let step = chunk_bytes(&rest[chunk..], TURN_STEP_RECORDS);
            let bytes = &rest[chunk..chunk + step];
            super::filters::process_records(shard, host, shared, bytes, Some(self.filter), emitted);
            chunk += step;
            if chunk == rest.len() || started.elapsed() >= TURN_TIME_MAX {
                break;
            }
        }
        if chunk < rest.len() {
            // More of this record next turn; what was injected toward other filters leaves
            // now, before the reservation that keeps hosts waiting is released.
            self.offset += chunk;
            shard.ship_lanes().await;
            return true;
        }
        self.next += 1;
        self.offset = 0;
        // Everything the filter injected leaves this core before the commit: into a durable
        // output's or filter's queue, it then survives a kill as the record would have.
        shard.ship_all().await;
        if let Some(position) = self.records.end_of(index) {
            if let Err(error) = reader.commit(position).await {
                tracing::warn!(filter = %self.name, %error, "durable filter checkpoint failed");
            }
        }
        true
    }

    /// Checkpoints what was committed (the host is stopping).
    pub async fn close(mut self, shared: &FilterShared) {
        self.set_busy(false, shared);
        if let SourceState::Open(reader) = std::mem::replace(&mut self.state, SourceState::Done) {
            if let Err(error) = reader.close().await {
                tracing::error!(filter = %self.name, %error,
                    "durable filter: final checkpoint failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageView;
    use crate::runtime::filters::{filter_records, Lane, LaneTarget};

    fn lane_bytes(count: usize, message_bytes: usize) -> Vec<u8> {
        let inbox = Rc::new(super::super::filters::Inbox::default());
        let mut lane = Lane::new(LaneTarget::Local(inbox), 1);
        for number in 0..count {
            let message = vec![number as u8; message_bytes];
            let view = crate::message::ProtoView::new(&message);
            lane.push(3, 0, &MessageView::Proto(view));
        }
        lane.take()
            .map(|(batch, _)| batch.bytes)
            .unwrap_or_default()
    }

    #[test]
    fn pieces_are_whole_filter_records_and_rebuild_the_batch() {
        let bytes = lane_bytes(40, 100);
        let record = 7 + 100;
        for bound in [1, record, record + 1, 5 * record + 3, bytes.len()] {
            let pieces = record_pieces(&bytes, bound);
            assert_eq!(pieces.concat(), bytes, "bound {bound}");
            let counted: usize = pieces
                .iter()
                .map(|piece| filter_records(piece).count())
                .sum();
            assert_eq!(counted, 40, "bound {bound}");
            for piece in &pieces {
                assert_eq!(piece.len() % record, 0, "bound {bound}");
                assert!(piece.len() <= bound.max(record), "bound {bound}");
            }
        }
        assert!(record_pieces(&[], 10).is_empty());
    }

    #[test]
    fn chunks_end_after_whole_filter_records() {
        let bytes = lane_bytes(10, 50);
        let record = 7 + 50;
        assert_eq!(chunk_bytes(&bytes, 0), 0);
        assert_eq!(chunk_bytes(&bytes, 3), 3 * record);
        assert_eq!(chunk_bytes(&bytes, 10), bytes.len());
        assert_eq!(chunk_bytes(&bytes, 64), bytes.len());
        // A torn record at the end goes with the last chunk (the filter skips it).
        assert_eq!(chunk_bytes(&bytes[..bytes.len() - 1], 64), bytes.len() - 1);
        assert_eq!(chunk_bytes(&[], 4), 0);
    }
}
