//! Durable filters (`use_buffering = true` or `delivery = "durable"` on a filter): a disk queue
//! per core in place of the filter's lane ring, and consumers on the host core that feed
//! the queued records to the filter exactly as lane batches, committing after processing.
//!
//! Design (see also `docs/architecture.md`, step 7 and "Durable filters"):
//! - **Append side.** On every core, a durable filter has a lane of its own whose target is a
//!   [`FilterQueue`]: this core's queue `source_dir(queue_dir, filter, core row)`. A shipped
//!   lane batch (filter records, the same bytes a ring would carry) becomes one queue record
//!   that starts with a format version byte ([`record::QUEUE_FORMAT_VERSION`], see
//!   [`crate::filter::record`]); a batch larger than the queue's record bound is cut between
//!   filter records. Injected messages that match a durable filter are appended on the core
//!   that routed them (the injecting filter's host), to that core's queue.
//! - **Consume side.** The host task runs one [`DurableSource`] per core row: a queue
//!   [`Consumer`] (under the filter's name) stepped from the host loop, whose destination
//!   runs the lane batches of each read through the filter as a ring's batches would be run,
//!   at most [`TURN_RECORDS_MAX`] messages or about [`TURN_TIME_MAX`] per turn of the host
//!   loop. **Cadence:** once per read (up to the queue's `read_bytes`, 256 KiB by default, so
//!   several lane batches), the source ships every batch this core holds (so what the filter
//!   injected is in its durable queues) and only then commits the end of the read: at least
//!   once. Turns that end inside a read ship only the lanes toward other filters. Commits are
//!   checkpointed every `checkpoint_interval` (or `cursor_update_count` records) and when the
//!   host stops.
//! - **Records of another format.** A queue record whose version byte is not
//!   [`record::QUEUE_FORMAT_VERSION`] is skipped (committed with its read), counted in the
//!   filter's `decode_failures_total` (its messages in `dropped_total`) and logged once per
//!   queue with the queue's directory; never misread, never a panic.
//! - **Records of another configuration.** The filter index inside a queued record is that of
//!   the run that wrote it; the consumer ignores it: every record of a filter's queue is for
//!   that filter.
//! - **A terminated filter** stops reading its queues: what is queued waits for the next start.
//!
//! Stopping (the protocol [`super::filters::run_host`] follows). A source that has data to read
//! counts itself in [`FilterShared::durable_busy`]. Once every core is done, a host raises
//! [`FilterShared::finishing`] when nothing is in flight and no source is busy, or when
//! [`crate::limits::DRAIN_TIMEOUT`] has passed since every core was done. A source reserves one unit of
//! [`FilterShared::in_flight`] *before* it checks `finishing` and holds it until what it read
//! is processed and shipped ([`reserved`]); a host leaves only when `finishing` is up and
//! nothing is in flight ([`hosts_may_leave`]). Both sides use sequentially consistent operations, so a host that leaves has either
//! seen the reservation or the source has seen the flag and left its records on disk. Records
//! not processed by then stay queued for the next start.

use std::cell::Cell;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::filters::{FilterShared, Host};
use super::shard::Shard;
use crate::filter::record::{self, UnknownVersion};
use crate::filter::Emitted;
use crate::output::Batch;
use crate::queue::{
    Consumer, Deliver, Delivered, DurableQueue, HandleBoard, QueueError, QueueOptions, ReadBatch,
    Step,
};
use crate::telemetry::{Metric, Telemetry};

/// What a source processes per turn of the host loop: a read (up to the queue's `read_bytes`
/// of lane batches) can hold thousands of messages, and a slow filter must not hold its core
/// (its inputs, its stop) for all of them. A turn takes steps of [`TURN_STEP_RECORDS`] filter
/// records until [`TURN_RECORDS_MAX`] or [`TURN_TIME_MAX`], whichever comes first; the clock
/// is read once per step.
const TURN_STEP_RECORDS: usize = 8;
const TURN_RECORDS_MAX: usize = 256;
const TURN_TIME_MAX: Duration = Duration::from_millis(2);

/// One core's queue for one durable filter: the target of that filter's lane on this core.
pub struct FilterQueue {
    queue: Rc<DurableQueue>,
    /// The largest lane batch one queue record takes (the queue's record bound, less the
    /// version byte); a larger lane batch is cut between filter records.
    batch_bytes_max: usize,
    /// The queue record being built (version byte, then the batch), kept for its capacity. A
    /// ship that finds it taken (another task of this core is shipping) builds its own.
    scratch: Cell<Vec<u8>>,
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
            batch_bytes_max: options
                .max_message_size
                .saturating_sub(record::QUEUE_HEADER_BYTES),
            scratch: Cell::new(Vec::new()),
            telemetry,
            core: row,
            plugin,
        }))
    }

    /// The append side, for its ticker and for closing at stop.
    pub fn queue(&self) -> &Rc<DurableQueue> {
        &self.queue
    }

    /// Appends a lane batch as one versioned queue record (or, if it is too large, as several,
    /// each a whole number of filter records); what the queue refuses is counted as dropped
    /// for the filter.
    pub async fn ship(&self, batch: Batch) {
        if batch.bytes.len() <= self.batch_bytes_max {
            self.append(&batch.bytes, batch.messages).await;
            return;
        }
        for piece in record_pieces(&batch.bytes, self.batch_bytes_max) {
            let messages = record::decode(piece).count() as u64;
            if piece.len() > self.batch_bytes_max {
                // One filter record larger than a queue record may be: the queue would cut it
                // where no reader could put it together again, so it is refused here.
                let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
                telemetry.add(core, plugin, Metric::Dropped, messages.max(1));
                continue;
            }
            self.append(piece, messages).await;
        }
    }

    async fn append(&self, lane_batch: &[u8], messages: u64) {
        let mut queued = self.scratch.take();
        queued.clear();
        record::encode_queue_record(&mut queued, lane_batch);
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        self.queue
            .append_bytes(&queued, messages, telemetry, core, plugin)
            .await;
        self.scratch.set(queued);
    }
}

/// `bytes` (whole filter records) cut into pieces of at most `piece_bytes_max`, each a whole
/// number of filter records; a record larger than the bound is a piece of its own (refused by
/// [`FilterQueue::ship`] and counted as dropped).
fn record_pieces(bytes: &[u8], piece_bytes_max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        let end = at + record::record_bytes(&bytes[at..]).unwrap_or(bytes.len() - at);
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

/// Runs `work` under one reserved unit of [`FilterShared::in_flight`], unless filters are
/// finishing; returns what it returned (false when it did not run). The reservation comes
/// first, then the look at the flag, both sequentially consistent: a host that leaves (flag
/// up, nothing in flight) has either seen this reservation or this source has seen the flag.
pub(super) async fn reserved(shared: &FilterShared, work: impl Future<Output = bool>) -> bool {
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let done = match shared.finishing.load(Ordering::SeqCst) {
        true => false,
        false => work.await,
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    done
}

/// The host side of the same protocol: a host may leave once filters are finishing and no
/// unit is in flight (no lane record unprocessed, no source between reservation and release).
pub(super) fn hosts_may_leave(shared: &FilterShared) -> bool {
    shared.finishing.load(Ordering::SeqCst) && shared.in_flight.load(Ordering::SeqCst) <= 0
}

/// Where a source is inside its current read: the queue record, and the bytes of its lane
/// batch already processed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Progress {
    record: usize,
    offset: usize,
}

/// What a durable filter's lane needs from the host core it runs on: the host's own
/// ([`HostCore`]) in production, a recorder in tests.
#[allow(async_fn_in_trait)]
trait LaneHost {
    /// Runs whole filter records (one lane batch's, or part of it) through the filter.
    fn process(&mut self, records: &[u8]);
    /// A queue record of another format version, holding `messages`, is skipped.
    fn skip(&mut self, unknown: UnknownVersion, messages: u64);
    /// Ships the lanes toward other filters (a turn that ends inside a read).
    async fn ship_lanes(&mut self);
    /// Ships every batch the core holds (the end of a read, before its commit).
    async fn ship_all(&mut self);
}

/// A durable filter as a queue destination, for one step of its source: runs the records of
/// a read through the filter, a bounded turn at a time, and once the read is done ships every
/// batch the core holds (so the injections are in their queues) before the consumer commits.
/// One ship and one commit per read, however many queue records (lane batches) it holds.
struct FilterLane<'a, H: LaneHost> {
    host: H,
    progress: &'a mut Progress,
}

impl<H: LaneHost> Deliver for FilterLane<'_, H> {
    type Error = std::convert::Infallible;

    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, Self::Error> {
        let (started, mut processed) = (Instant::now(), 0);
        while let Some(queued) = records.get(self.progress.record) {
            let lane_batch = match record::queue_record_body(queued) {
                Ok(lane_batch) => lane_batch,
                Err(unknown) => {
                    let messages = records.count(self.progress.record).unwrap_or(0);
                    self.host.skip(unknown, messages);
                    *self.progress = Progress {
                        record: self.progress.record + 1,
                        offset: 0,
                    };
                    continue;
                }
            };
            let rest = lane_batch.get(self.progress.offset..).unwrap_or_default();
            let step = record::leading_bytes(rest, TURN_STEP_RECORDS);
            self.host.process(&rest[..step]);
            processed += TURN_STEP_RECORDS;
            self.progress.offset += step;
            if step == rest.len() {
                *self.progress = Progress {
                    record: self.progress.record + 1,
                    offset: 0,
                };
            }
            if processed >= TURN_RECORDS_MAX || started.elapsed() >= TURN_TIME_MAX {
                break;
            }
        }
        if self.progress.record < records.len() {
            // More of this read next turn; what was injected toward other filters leaves
            // now, before the reservation that keeps hosts waiting is released.
            self.host.ship_lanes().await;
            return Ok(Delivered::Part);
        }
        *self.progress = Progress::default();
        // Everything the filter injected leaves this core before the consumer commits the
        // read: into a durable output's or filter's queue, it then survives a kill as the
        // read's records would have.
        self.host.ship_all().await;
        Ok(Delivered::Done)
    }
}

/// The host core a durable filter runs on, for one step of one of its sources.
struct HostCore<'a> {
    shard: &'a Shard,
    host: &'a mut Host,
    shared: &'a FilterShared,
    emitted: &'a mut Emitted,
    filter: u16,
    /// Queue records of another format version: logged once per source, with the queue.
    unknown_logged: &'a mut bool,
    queue: &'a std::path::Path,
}

impl LaneHost for HostCore<'_> {
    fn process(&mut self, records: &[u8]) {
        let (shard, shared, only) = (self.shard, self.shared, Some(self.filter));
        super::filters::process_records(shard, self.host, shared, records, only, self.emitted);
    }

    /// Counted (its messages as dropped) and logged once per source.
    fn skip(&mut self, unknown: UnknownVersion, messages: u64) {
        let plugin = self.host.plugin_of(usize::from(self.filter));
        let telemetry = &self.shard.telemetry;
        telemetry.add(self.shard.core, plugin, Metric::DecodeFailures, 1);
        telemetry.add(self.shard.core, plugin, Metric::Dropped, messages);
        if !std::mem::replace(self.unknown_logged, true) {
            tracing::error!(queue = %self.queue.display(), %unknown,
                "durable filter: skipping queue records of an unknown format version \
                 (counted in decode_failures_total; logged once per queue)");
        }
    }

    async fn ship_lanes(&mut self) {
        self.shard.ship_lanes_from_host().await;
    }

    async fn ship_all(&mut self) {
        self.shard.ship_all().await;
    }
}

/// The host's consumer of one core's queue for one of its durable filters.
pub struct DurableSource {
    /// The filter's index among the plan's filters.
    filter: u16,
    consumer: Consumer,
    /// The queue's directory, once open (for logs).
    queue: PathBuf,
    progress: Progress,
    unknown_logged: bool,
    /// Counted in [`FilterShared::durable_busy`].
    busy: bool,
}

impl DurableSource {
    /// The consumer of core row `row`'s queue of filter `filter` (named `name`, the board's
    /// route), whose handle that core publishes on `board`.
    pub fn new(filter: u16, name: &str, board: Arc<HandleBoard>, row: usize) -> DurableSource {
        debug_assert_eq!(
            board.name(),
            name,
            "a filter reads its queues under its own name"
        );
        DurableSource {
            filter,
            consumer: Consumer::new(board, row),
            queue: PathBuf::new(),
            progress: Progress::default(),
            unknown_logged: false,
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

    /// Runs the next filter records of its queue through the filter, if there are some and
    /// filters are not finishing (see [`reserved`]); at the end of each read, ships what the
    /// filter injected and commits. Returns whether it processed anything. At most
    /// [`TURN_RECORDS_MAX`] messages or about [`TURN_TIME_MAX`] per call, so the host goes
    /// round its other work (and its stop checks) between them. A read left part way at stop
    /// is not committed: the next start processes all of it again.
    pub async fn poll(
        &mut self,
        shard: &Shard,
        host: &mut Host,
        shared: &FilterShared,
        emitted: &mut Emitted,
    ) -> bool {
        if !self.consumer.try_open(Instant::now()) {
            return false;
        }
        if self.queue.as_os_str().is_empty() {
            if let Some(handle) = self.consumer.handle() {
                self.queue = handle.dir().to_path_buf();
            }
        }
        let terminated = host.is_terminated(usize::from(self.filter));
        if terminated || !self.consumer.has_data() {
            self.consumer.tick().await;
            self.set_busy(false, shared);
            return false;
        }
        self.set_busy(true, shared);
        let processed = reserved(shared, self.step(shard, host, shared, emitted)).await;
        if processed {
            shard.ship_full_from_host().await;
        }
        processed
    }

    /// One consumer step with the filter as its destination.
    async fn step(
        &mut self,
        shard: &Shard,
        host: &mut Host,
        shared: &FilterShared,
        emitted: &mut Emitted,
    ) -> bool {
        let plugin = host.plugin_of(usize::from(self.filter));
        let mut lane = FilterLane {
            host: HostCore {
                shard,
                host,
                shared,
                emitted,
                filter: self.filter,
                unknown_logged: &mut self.unknown_logged,
                queue: &self.queue,
            },
            progress: &mut self.progress,
        };
        match self.consumer.step(&mut lane).await {
            Ok(step) => step == Step::Progress,
            Err(error) => {
                tracing::error!(queue = %self.queue.display(), %error, "durable filter: step failed");
                shard.telemetry.add(shard.core, plugin, Metric::Errors, 1);
                self.progress = Progress::default();
                self.consumer.rewind();
                false
            }
        }
    }

    /// Checkpoints what was committed (the host is stopping).
    pub async fn close(mut self, shared: &FilterShared) {
        self.set_busy(false, shared);
        self.consumer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageView;
    use crate::runtime::filters::{Lane, LaneTarget};

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
        let record = record::HEADER_BYTES + 100;
        for bound in [1, record, record + 1, 5 * record + 3, bytes.len()] {
            let pieces = record_pieces(&bytes, bound);
            assert_eq!(pieces.concat(), bytes, "bound {bound}");
            let counted: usize = pieces
                .iter()
                .map(|piece| record::decode(piece).count())
                .sum();
            assert_eq!(counted, 40, "bound {bound}");
            for piece in &pieces {
                assert_eq!(piece.len() % record, 0, "bound {bound}");
                assert!(piece.len() <= bound.max(record), "bound {bound}");
            }
        }
        assert!(record_pieces(&[], 10).is_empty());
    }

    /// Drives a future that never waits on a timer to completion on the test's executor.
    use crate::testing::run_local as run;

    /// The stop protocol between a source and the hosts, step by step in a fixed order: a
    /// busy source holds finishing off; a reservation holds the hosts (no flag, no leaving)
    /// until it is released; once the flag is up a source's work does not run, its records
    /// stay queued, and the hosts leave.
    #[test]
    fn finishing_waits_for_busy_sources_and_reservations_hold_the_hosts() {
        run(async {
            let shared = FilterShared::new(1);
            let everyone_done_now = Instant::now();
            // 1. A source has records: busy. Nothing is in flight, yet no host finishes.
            shared.durable_busy.fetch_add(1, Ordering::SeqCst);
            super::super::filters::raise_finishing_when_quiet(&shared, everyone_done_now);
            assert!(!shared.finishing.load(Ordering::SeqCst), "a source is busy");
            // 2. The source reserves and works; inside, a host looks: no flag, cannot leave.
            let ran = reserved(&shared, async {
                assert_eq!(shared.in_flight.load(Ordering::SeqCst), 1, "reserved");
                super::super::filters::raise_finishing_when_quiet(&shared, everyone_done_now);
                assert!(
                    !shared.finishing.load(Ordering::SeqCst),
                    "a unit is in flight"
                );
                assert!(!hosts_may_leave(&shared));
                true
            })
            .await;
            assert!(ran);
            assert_eq!(shared.in_flight.load(Ordering::SeqCst), 0, "released");
            // 3. The source is drained: no longer busy. The next host look raises the flag,
            //    and with nothing in flight the hosts may leave.
            shared.durable_busy.fetch_sub(1, Ordering::SeqCst);
            assert!(!hosts_may_leave(&shared), "not finishing yet");
            super::super::filters::raise_finishing_when_quiet(&shared, everyone_done_now);
            assert!(shared.finishing.load(Ordering::SeqCst));
            assert!(hosts_may_leave(&shared));
            // 4. A source that finds records after that: its reservation is taken and given
            //    back, its work never runs (the records stay on disk).
            let ran = reserved(&shared, async { unreachable!("work after finishing") }).await;
            assert!(!ran);
            assert_eq!(shared.in_flight.load(Ordering::SeqCst), 0);
            assert!(hosts_may_leave(&shared));
        });
    }

    /// The drain deadline: a source that stays busy past it no longer holds finishing off,
    /// but a source mid-step still holds the hosts until it releases its unit.
    #[test]
    fn past_the_drain_deadline_busy_sources_no_longer_hold_finishing() {
        run(async {
            let shared = FilterShared::new(1);
            let everyone_done_long_ago = Instant::now()
                .checked_sub(crate::limits::DRAIN_TIMEOUT + Duration::from_secs(1))
                .expect("a past instant");
            shared.durable_busy.fetch_add(1, Ordering::SeqCst);
            let ran = reserved(&shared, async {
                super::super::filters::raise_finishing_when_quiet(&shared, everyone_done_long_ago);
                assert!(
                    !shared.finishing.load(Ordering::SeqCst),
                    "a unit is in flight"
                );
                true
            })
            .await;
            assert!(ran);
            super::super::filters::raise_finishing_when_quiet(&shared, everyone_done_long_ago);
            assert!(
                shared.finishing.load(Ordering::SeqCst),
                "busy, but past the deadline"
            );
            assert!(hosts_may_leave(&shared));
            // A lane record in flight (shipped, not processed) still holds the hosts.
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            assert!(!hosts_may_leave(&shared));
        });
    }

    /// What a lane asked of its host, in order; a ship notes the queue's committed sequence
    /// number at that moment.
    #[derive(Debug, PartialEq, Eq)]
    enum Asked {
        Process(usize),
        Skip(Option<u8>, u64),
        ShipLanes,
        ShipAll { committed: u64 },
    }

    struct Recorder<'a> {
        writer: &'a crate::queue::Writer,
        asked: &'a mut Vec<Asked>,
    }

    impl Recorder<'_> {
        fn committed(&self) -> u64 {
            self.writer.counters().consumers[0].committed.seq
        }
    }

    impl LaneHost for Recorder<'_> {
        fn process(&mut self, records: &[u8]) {
            self.asked
                .push(Asked::Process(record::decode(records).count()));
        }

        fn skip(&mut self, unknown: UnknownVersion, messages: u64) {
            self.asked.push(Asked::Skip(unknown.found, messages));
        }

        async fn ship_lanes(&mut self) {
            self.asked.push(Asked::ShipLanes);
        }

        async fn ship_all(&mut self) {
            let committed = self.committed();
            self.asked.push(Asked::ShipAll { committed });
        }
    }

    /// A queue record (current version unless `version` says otherwise) of `count` filter
    /// records.
    fn queue_record(version: u8, count: usize) -> Vec<u8> {
        let mut queued = Vec::new();
        record::encode_queue_record(&mut queued, &lane_bytes(count, 20));
        queued[0] = version;
        queued
    }

    /// Plants `records` in a fresh queue, then steps one source's consumer with a recording
    /// host until it has delivered everything; returns what the host was asked and the
    /// committed sequence number after each step.
    fn step_through(records: Vec<Vec<u8>>) -> (Vec<Asked>, Vec<u64>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        run(async move {
            let options = QueueOptions {
                min_disk_free: 0,
                sync: crate::queue::SyncPolicy::None,
                ..QueueOptions::default()
            };
            let name = "Numbered".to_string();
            let mut writer = crate::queue::Writer::open(&root, &options, &[name])
                .await
                .expect("open the queue");
            let counted = records.iter().map(|queued| (queued.as_slice(), 1));
            writer.append_counted(counted).await.expect("append");
            let board = HandleBoard::new("Numbered", 1);
            board.publish(0, writer.handle());
            let mut consumer = Consumer::new(board, 0);
            assert!(consumer.try_open(Instant::now()));
            let (mut asked, mut commits, mut progress) =
                (Vec::new(), Vec::new(), Progress::default());
            for _ in 0..100 {
                if !consumer.has_data() {
                    break;
                }
                let host = Recorder {
                    writer: &writer,
                    asked: &mut asked,
                };
                let mut lane = FilterLane {
                    host,
                    progress: &mut progress,
                };
                assert_eq!(consumer.step(&mut lane).await.ok(), Some(Step::Progress));
                commits.push(writer.counters().consumers[0].committed.seq);
            }
            consumer.close().await;
            writer.close().await.expect("close");
            (asked, commits)
        })
    }

    /// Several lane batches in one read: each is processed, then one ship of everything,
    /// and only then the commit of the whole read.
    #[test]
    fn a_read_is_shipped_once_and_committed_after_the_ship() {
        let version = record::QUEUE_FORMAT_VERSION;
        let (asked, commits) = step_through(vec![
            queue_record(version, 2),
            queue_record(version, 3),
            queue_record(version, 1),
        ]);
        assert_eq!(
            asked,
            [
                Asked::Process(2),
                Asked::Process(3),
                Asked::Process(1),
                Asked::ShipAll { committed: 0 },
            ]
        );
        assert_eq!(commits, [3], "one step, one commit past all three records");
    }

    /// A lane batch longer than a turn: turns that end inside the read ship only the lanes and
    /// commit nothing; the last ships everything, then the read is committed.
    #[test]
    fn turns_inside_a_read_ship_lanes_and_commit_nothing() {
        let count = TURN_RECORDS_MAX + 44;
        let (asked, commits) =
            step_through(vec![queue_record(record::QUEUE_FORMAT_VERSION, count)]);
        let processed: usize = asked
            .iter()
            .map(|asked| match asked {
                Asked::Process(records) => *records,
                _ => 0,
            })
            .sum();
        assert_eq!(processed, count);
        assert!(commits.len() >= 2, "at least two turns: {commits:?}");
        let (last, earlier) = commits.split_last().expect("steps");
        assert!(earlier.iter().all(|&seq| seq == 0), "{commits:?}");
        assert_eq!(*last, 1);
        assert_eq!(asked.last(), Some(&Asked::ShipAll { committed: 0 }));
        let ships_all = asked
            .iter()
            .filter(|asked| matches!(asked, Asked::ShipAll { .. }));
        assert_eq!(ships_all.count(), 1);
        let ships_lanes = asked.iter().filter(|asked| **asked == Asked::ShipLanes);
        assert_eq!(
            ships_lanes.count(),
            commits.len() - 1,
            "one per unfinished turn"
        );
    }

    /// A queue record of another version is skipped (with its message count), the records
    /// around it are processed, and the commit covers all of them.
    #[test]
    fn records_of_another_version_are_skipped_and_committed_with_their_read() {
        let version = record::QUEUE_FORMAT_VERSION;
        let (asked, commits) = step_through(vec![
            queue_record(version, 2),
            queue_record(version + 1, 5),
            queue_record(version, 1),
        ]);
        assert_eq!(
            asked,
            [
                Asked::Process(2),
                Asked::Skip(Some(version + 1), 1),
                Asked::Process(1),
                Asked::ShipAll { committed: 0 },
            ]
        );
        assert_eq!(commits, [3]);
    }
}
