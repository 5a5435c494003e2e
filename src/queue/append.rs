//! The append side of a durable route: one core's queue for one durable output or filter.
//!
//! A [`DurableQueue`] wraps this core's [`Writer`] of `source_dir(queue_dir, route, core row)`
//! for the tasks of its core: they append shipped batches to it (one queue record per batch,
//! saying how many messages it holds), its ticker syncs it by policy, and the core closes it
//! at stop. Nothing in it is shared with another core but the queue's handle, which the core
//! publishes on the route's [`super::HandleBoard`] for the consumers (see [`super::consumer`]).
//!
//! Limits:
//! - A record holds at most `max_message_size` bytes. A batch can outgrow that (it is shipped
//!   after a whole read is routed, and lines grow when encoded as protobuf); it is then cut
//!   into several records at Heka frame boundaries (framed output), else after newlines,
//!   else anywhere: unframed, undelimited bytes have no boundaries. A batch cut into pieces
//!   gives each piece its whole frames or lines, or, when those do not add up, all its
//!   messages to the last piece.
//! - A full queue: `full_action = "block"` makes [`DurableQueue::append`] wait (the core stops
//!   reading: backpressure); `"drop"` drops what does not fit; `"shutdown"` logs one error
//!   (route, limit and values, queue directory) and raises the daemon's [`StopFlag`] with
//!   [`StopFlag::fail`]: the graceful stop SIGTERM gives, then exit status 1. Batches shipped
//!   during that stop do not fit either and are dropped.
//! - `dropped_total` counts the messages of what the queue refused (full with `"drop"` or
//!   `"shutdown"`, a shutdown ending a `"block"` wait, or an I/O error: then the whole batch).
//! - Once the core is stopping and [`DRAIN_TIMEOUT`] has passed, a writer blocked on a full
//!   queue gives up ([`QueueHandle::stop_blocking`]).

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::sync::RwLock;

use super::{FullReason, QueueError, QueueHandle, QueueOptions, Writer};
use crate::limits::{DRAIN_TIMEOUT, DURABLE_APPENDS_IN_FLIGHT_MAX};
use crate::runtime::notify::LocalNotify;
use crate::runtime::ring::Batch;
use crate::runtime::stop::{LocalStop, StopFlag};
use crate::telemetry::{Metric, Telemetry};

/// How often the writer side ticks (interval syncs, disk-free refresh).
const WRITER_TICK: Duration = Duration::from_millis(100);

/// The append side of one core's queue for one durable output or filter.
pub struct DurableQueue {
    /// `None` once closed. The lock serialises appends from this core's tasks.
    writer: RwLock<Option<Writer>>,
    handle: QueueHandle,
    /// The largest record the queue takes; a larger batch is cut into pieces.
    record_bytes_max: usize,
    /// The output's name, for the error a full queue logs.
    output: String,
    /// The daemon's stop flag: a full queue with `full_action = "shutdown"` raises it.
    stop: Arc<StopFlag>,
    /// Whether this queue has reported being full (`shutdown`): it logs the error once.
    full_reported: Cell<bool>,
    /// When a refused batch (`full_action = "drop"`) was last logged, and the batches refused
    /// since: a queue that stays full logs once per [`REFUSED_LOG_INTERVAL`], not per batch.
    refused_logged: Cell<(Option<Instant>, u64)>,
    /// Appends [`DurableQueue::ship`] has started, and how many of them have finished (they
    /// finish in the order they start: each takes the writer's lock first thing).
    shipped: Cell<u64>,
    shipped_done: Cell<u64>,
    /// Notified as each shipped append finishes.
    ship_finished: Rc<LocalNotify>,
}

/// A batch to append: one the queue may keep (and hand to its consumer), or one the caller
/// keeps.
enum Bytes<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Bytes<'_> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Borrowed(bytes) => bytes,
        }
    }
}

/// How often a queue that keeps refusing batches says so.
const REFUSED_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl DurableQueue {
    /// Opens (recovering) core row `row`'s queue of output `output` under `queue_dir`. A full
    /// queue with `full_action = "shutdown"` stops the daemon through `stop`.
    ///
    /// # Errors
    /// The queue cannot be opened or recovered.
    pub async fn open(
        queue_dir: &Path,
        output: &str,
        row: usize,
        options: &QueueOptions,
        stop: Arc<StopFlag>,
    ) -> Result<Rc<DurableQueue>, QueueError> {
        // Relative to the working directory; made absolute because the queue opens its
        // directory through io_uring, which does not resolve relative directory paths.
        let queue_dir = match queue_dir.is_absolute() {
            true => queue_dir.to_path_buf(),
            false => std::env::current_dir()
                .map_err(|error| QueueError::io("find the working directory", queue_dir, error))?
                .join(queue_dir),
        };
        // Without `.` components (`./gyges-data`), for the paths in logs.
        let queue_dir: std::path::PathBuf = queue_dir.components().collect();
        let dir = crate::queue::source_dir(&queue_dir, output, row);
        // The output is the queue's one consumer, under its own name (as `gyges queue`
        // expects of a durable section).
        let mut writer = Writer::open(&dir, options, &[output.to_string()]).await?;
        // A consumer that keeps up takes each batch from memory, not from the segment.
        writer.hand_off_to(output, crate::limits::QUEUE_HANDOFF_RECORDS);
        let handle = writer.handle();
        Ok(Rc::new(DurableQueue {
            writer: RwLock::new(Some(writer)),
            handle,
            record_bytes_max: options.max_message_size,
            output: output.to_string(),
            stop,
            full_reported: Cell::new(false),
            refused_logged: Cell::new((None, 0)),
            shipped: Cell::new(0),
            shipped_done: Cell::new(0),
            ship_finished: LocalNotify::new(),
        }))
    }

    /// A handle for readers on any core.
    pub fn handle(&self) -> QueueHandle {
        self.handle.clone()
    }

    /// Appends a shipped batch as one record (saying how many messages it holds); what the
    /// queue refuses is counted as dropped. A queue full with `full_action = "shutdown"` stops
    /// the daemon.
    pub async fn append(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let messages = batch.messages;
        let bytes = Bytes::Owned(batch.bytes);
        self.append_inner(bytes, messages, telemetry, core, plugin)
            .await;
    }

    /// Starts appending `batch` ([`DurableQueue::append`]) as a task of its own and returns
    /// once it has started, so the caller reads and routes on while the write is in flight;
    /// batches shipped one after the other are appended in that order. At most
    /// [`DURABLE_APPENDS_IN_FLIGHT_MAX`] run at once: the next ship waits for the oldest
    /// (backpressure, as a blocking append gives). [`DurableQueue::settled`] waits for them.
    pub async fn ship(
        self: &Rc<Self>,
        batch: Batch,
        telemetry: &Arc<Telemetry>,
        core: usize,
        plugin: usize,
    ) {
        while self.shipped.get() - self.shipped_done.get() >= DURABLE_APPENDS_IN_FLIGHT_MAX as u64 {
            self.ship_finished.wait().await;
        }
        self.shipped.set(self.shipped.get() + 1);
        let queue = Rc::clone(self);
        let telemetry = Arc::clone(telemetry);
        glommio::spawn_local(async move {
            queue.append(batch, &telemetry, core, plugin).await;
            queue.shipped_done.set(queue.shipped_done.get() + 1);
            queue.ship_finished.notify();
        })
        .detach();
    }

    /// [`DurableQueue::append`] for a batch the caller keeps: `bytes` holding `messages`.
    pub async fn append_bytes(
        &self,
        bytes: &[u8],
        messages: u64,
        telemetry: &Telemetry,
        core: usize,
        plugin: usize,
    ) {
        self.append_inner(Bytes::Borrowed(bytes), messages, telemetry, core, plugin)
            .await;
    }

    /// Appends a batch; an owned one that fits one record is handed to the consumer after
    /// its append ([`Writer::append_owned`]).
    async fn append_inner(
        &self,
        bytes: Bytes<'_>,
        messages: u64,
        telemetry: &Telemetry,
        core: usize,
        plugin: usize,
    ) {
        let Ok(mut guard) = self.writer.write().await else {
            telemetry.add(core, plugin, Metric::Dropped, messages);
            return;
        };
        let Some(writer) = guard.as_mut() else {
            telemetry.add(core, plugin, Metric::Dropped, messages);
            return;
        };
        let (result, counts) = if bytes.len() <= self.record_bytes_max {
            let result = match bytes {
                Bytes::Owned(owned) => writer.append_owned(owned, messages).await,
                Bytes::Borrowed(bytes) => writer.append_counted([(bytes, messages)]).await,
            };
            (result, vec![messages])
        } else {
            let bytes = bytes.as_slice();
            // Rare: a batch grows past its size by what one read adds. Cut it, at message
            // boundaries where they can be seen.
            let pieces = pieces(bytes, self.record_bytes_max);
            let counts = piece_counts(&pieces, messages);
            let records = pieces.iter().copied().zip(counts.iter().copied());
            (writer.append_counted(records).await, counts)
        };
        // Messages in the pieces after the first `appended` ones: not in the queue.
        let lost = |appended: u64| -> u64 {
            let appended = usize::try_from(appended).unwrap_or(usize::MAX);
            counts.iter().skip(appended).sum()
        };
        match result {
            Ok(outcome) if outcome.appended == counts.len() as u64 => {}
            Ok(outcome) => {
                let (logged_at, refused) = self.refused_logged.get();
                if logged_at.is_none_or(|at| at.elapsed() >= REFUSED_LOG_INTERVAL) {
                    tracing::warn!(
                        route = %self.output,
                        queue = %self.handle.dir().display(),
                        dropped = outcome.dropped,
                        rejected = outcome.rejected,
                        batches_refused_since_last_report = refused + 1,
                        "durable queue refused a batch (dropped_total counts the messages)"
                    );
                    self.refused_logged.set((Some(Instant::now()), 0));
                } else {
                    self.refused_logged.set((logged_at, refused + 1));
                }
                telemetry.add(core, plugin, Metric::Dropped, outcome.refused_count);
            }
            Err(QueueError::Full { reason, appended }) => {
                telemetry.add(core, plugin, Metric::Dropped, lost(appended));
                self.full(reason);
            }
            Err(error) => {
                let appended = match &error {
                    QueueError::Stopped { appended } => *appended,
                    _ => 0,
                };
                tracing::error!(route = %self.output, queue = %self.handle.dir().display(),
                    %error, "durable queue append failed; batch dropped");
                telemetry.add(core, plugin, Metric::Errors, 1);
                telemetry.add(core, plugin, Metric::Dropped, lost(appended));
            }
        }
    }

    /// Whether the writer is waiting for room in a full queue (`full_action = "block"`): an
    /// append now would wait too.
    pub fn is_blocked(&self) -> bool {
        self.handle
            .shared
            .pressure
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until every append that started before this call has finished (appends take the
    /// writer's lock in the order they start). A batch shipped here before the call is then in
    /// the queue, as far as the sync policy puts it.
    pub async fn settled(&self) {
        let shipped = self.shipped.get();
        while self.shipped_done.get() < shipped {
            self.ship_finished.wait().await;
        }
        drop(self.writer.write().await);
    }

    /// The queue is full and its `full_action` is `shutdown`: logs it (once) and stops the
    /// daemon, which then exits with a non-zero status.
    fn full(&self, reason: FullReason) {
        if self.full_reported.replace(true) {
            tracing::debug!(route = %self.output, "durable queue still full; batch dropped");
            return;
        }
        let limit = match reason {
            FullReason::BufferSize { .. } => "max_buffer_size",
            FullReason::DiskFree { .. } => "min_disk_free",
        };
        let message = format!(
            "output [{}]: durable queue {} is full ({reason}) and full_action is \"shutdown\": \
             stopping gyges; what the queue accepted stays on disk for the next start",
            self.output,
            self.handle.dir().display()
        );
        tracing::error!(route = %self.output, limit, "{message}");
        self.stop.fail(message);
    }

    /// Ticks the writer (interval syncs) until it is closed; once the core is stopping and
    /// [`DRAIN_TIMEOUT`] has passed, makes a writer blocked on a full queue give up.
    pub async fn run_ticker(self: Rc<Self>, stop: Rc<LocalStop>) {
        let mut stopping_since: Option<Instant> = None;
        loop {
            glommio::timer::sleep(WRITER_TICK).await;
            if stop.is_stopping() {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() > DRAIN_TIMEOUT {
                    self.handle.stop_blocking();
                }
            }
            // A writer busy appending (or blocked) is not ticked now; it syncs on its own.
            let Ok(mut guard) = self.writer.try_write() else {
                continue;
            };
            let Some(writer) = guard.as_mut() else {
                return;
            };
            if let Err(error) = writer.tick().await {
                tracing::warn!(queue = %self.handle.dir().display(), %error, "queue tick failed");
            }
        }
    }

    /// Closes the writer (syncing it): readers then see the end of the queue.
    pub async fn close(&self) {
        self.handle.stop_blocking();
        // Shipped appends still running finish first (a blocked one gives up: stop_blocking).
        self.settled().await;
        let Ok(mut guard) = self.writer.write().await else {
            return;
        };
        if let Some(writer) = guard.take() {
            // What the queue cost this core (the bench reads it): bytes and fsyncs.
            let counters = writer.counters();
            let consumer = |read: fn(&super::ConsumerCounters) -> u64| -> u64 {
                counters.consumers.iter().map(read).sum()
            };
            tracing::info!(queue = %self.handle.dir().display(),
                appended_records = counters.appended_records,
                appended_bytes = counters.appended_bytes, fsyncs = counters.fsyncs,
                read_records = consumer(|c| c.read_records),
                handed_records = consumer(|c| c.handed_records),
                "durable queue closed");
            if let Err(error) = writer.close().await {
                tracing::error!(queue = %self.handle.dir().display(), %error,
                    "closing the durable queue failed");
            }
        }
    }
}

/// `bytes` cut into pieces of at most `piece_bytes_max` (at least 1), each ending at a message
/// boundary where one can be seen: after a whole Heka frame when the bytes are framed, else
/// after a newline, else anywhere (unframed, undelimited bytes have no boundaries to keep).
fn pieces(bytes: &[u8], piece_bytes_max: usize) -> Vec<&[u8]> {
    let piece_bytes_max = piece_bytes_max.max(1);
    let mut pieces = Vec::with_capacity(bytes.len() / piece_bytes_max + 1);
    let mut rest = bytes;
    while !rest.is_empty() {
        let cut = next_cut(rest, piece_bytes_max);
        let (piece, after) = rest.split_at(cut);
        pieces.push(piece);
        rest = after;
    }
    pieces
}

/// How many of a batch's `messages` each piece holds: its whole Heka frames, else its lines,
/// when those add up to `messages`; otherwise (boundaries that cannot be seen) every message
/// is put on the last piece, so that the counts still add up once the whole batch is
/// delivered.
fn piece_counts(pieces: &[&[u8]], messages: u64) -> Vec<u64> {
    let seen: Vec<u64> = pieces
        .iter()
        .map(|piece| {
            let mut frames = 0;
            let mut at = 0;
            while let Some(end) = frame_end(piece, at) {
                frames += 1;
                at = end;
            }
            match at == piece.len() && frames > 0 {
                true => frames,
                false => memchr::memchr_iter(b'\n', piece).count() as u64,
            }
        })
        .collect();
    if seen.iter().sum::<u64>() == messages {
        return seen;
    }
    let mut counts = vec![0; pieces.len()];
    if let Some(last) = counts.last_mut() {
        *last = messages;
    }
    counts
}

/// The length of the next piece of `bytes` (see [`pieces`]); between 1 and `piece_bytes_max`.
fn next_cut(bytes: &[u8], piece_bytes_max: usize) -> usize {
    if bytes.len() <= piece_bytes_max {
        return bytes.len();
    }
    let mut at = 0;
    while let Some(end) = frame_end(bytes, at) {
        if end > piece_bytes_max {
            break;
        }
        at = end;
    }
    if at > 0 {
        return at;
    }
    match memchr::memrchr(b'\n', &bytes[..piece_bytes_max]) {
        Some(newline) => newline + 1,
        None => piece_bytes_max,
    }
}

/// The end of the whole Heka frame starting at `at`, if one does.
fn frame_end(bytes: &[u8], at: usize) -> Option<usize> {
    if *bytes.get(at)? != 0x1e {
        return None;
    }
    let header_length = usize::from(*bytes.get(at + 1)?);
    let header = bytes.get(at + 2..at + 2 + header_length)?;
    if header.first() != Some(&0x08) || *bytes.get(at + 2 + header_length)? != 0x1f {
        return None;
    }
    let mut position = 1;
    let length = usize::try_from(crate::message::wire::read_varint(header, &mut position)?).ok()?;
    let end = (at + 3 + header_length).checked_add(length)?;
    (end <= bytes.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{ReadBatch, Reader};

    use crate::testing::run_local as run;

    use crate::testing::small_queue_options as options;

    fn framed(message: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        crate::message::framing::write_frame(&mut bytes, message, None).expect("frame");
        bytes
    }

    #[test]
    fn pieces_are_bounded_and_keep_message_boundaries() {
        // Framed: 30 frames of 100-byte messages, cut between frames.
        let mut stream = Vec::new();
        for number in 0..30u8 {
            stream.extend(framed(&[number; 100]));
        }
        let frame_bytes = framed(&[0; 100]).len();
        for bound in [
            frame_bytes,
            frame_bytes + 1,
            3 * frame_bytes + 7,
            stream.len(),
        ] {
            let cut = pieces(&stream, bound);
            assert_eq!(cut.concat(), stream, "bound {bound}");
            for piece in &cut {
                assert!(
                    piece.len() <= bound && piece.len() % frame_bytes == 0,
                    "bound {bound}"
                );
            }
        }
        // Lines: cut after newlines.
        let lines: Vec<u8> = (0..100)
            .flat_map(|n| format!("line {n}\n").into_bytes())
            .collect();
        let cut = pieces(&lines, 50);
        assert_eq!(cut.concat(), lines);
        assert!(cut
            .iter()
            .all(|piece| piece.len() <= 50 && piece.ends_with(b"\n")));
        // Neither: cut anywhere, bounded; and degenerate bounds still terminate.
        let blob = vec![7u8; 1000];
        let cut = pieces(&blob, 300);
        assert_eq!(
            cut.iter().map(|piece| piece.len()).collect::<Vec<_>>(),
            [300, 300, 300, 100]
        );
        assert_eq!(pieces(&blob, 0).len(), 1000);
        assert!(pieces(&[], 10).is_empty());
    }

    #[test]
    fn piece_counts_follow_frames_or_lines_and_always_add_up() {
        let mut framed_stream = Vec::new();
        for number in 0..10u8 {
            framed_stream.extend(framed(&[number; 50]));
        }
        let frame_bytes = framed(&[0; 50]).len();
        let cut = pieces(&framed_stream, 3 * frame_bytes);
        assert_eq!(piece_counts(&cut, 10), [3, 3, 3, 1]);
        let lines: Vec<u8> = (0..10)
            .flat_map(|n| format!("line {n}\n").into_bytes())
            .collect();
        let cut = pieces(&lines, 14);
        assert_eq!(piece_counts(&cut, 10).iter().sum::<u64>(), 10);
        assert!(piece_counts(&cut, 10).iter().all(|&count| count == 2));
        // Boundaries that do not add up: everything on the last piece.
        let blob = vec![7u8; 1000];
        assert_eq!(piece_counts(&pieces(&blob, 300), 4), [0, 0, 0, 4]);
        assert!(piece_counts(&[], 0).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn pieces_rebuild_the_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            bound in 1usize..400,
        ) {
            let cut = pieces(&bytes, bound);
            proptest::prop_assert_eq!(cut.concat(), bytes.clone());
            proptest::prop_assert!(cut.iter().all(|piece| !piece.is_empty() && piece.len() <= bound));
        }
    }

    use crate::testing::lines_batch as batch;

    /// Reads every message `out` has queued in `queue`, then closes it.
    async fn queued_messages_then_close(queue: &DurableQueue) -> u64 {
        let mut reader = Reader::open(&queue.handle(), "out").expect("reader");
        let mut records = ReadBatch::new();
        let mut queued = 0;
        while reader.has_data() {
            reader.read(&mut records).await.expect("read");
            queued += records.message_count();
        }
        drop(reader);
        queue.close().await;
        queued
    }

    /// A full queue with `full_action = "shutdown"`: the first refused batch stops the daemon
    /// (the flag carries the reason), what was accepted stays, the rest is counted as dropped.
    #[test]
    fn a_full_queue_with_shutdown_stops_the_daemon() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let (reason, dropped, queued) = run(async move {
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let options = QueueOptions {
                max_buffer_size: 8192,
                max_message_size: 1024,
                full_action: crate::queue::FullAction::Shutdown,
                ..options()
            };
            let stop = StopFlag::new();
            let queue = DurableQueue::open(&root, "out", 0, &options, stop.clone())
                .await
                .expect("open the queue");
            let mut first = 0;
            while !stop.is_raised() && first < 10_000 {
                queue.append(batch(first, 20), &telemetry, 0, 0).await;
                first += 20;
            }
            // Another batch after the stop: dropped too, and not reported again.
            queue.append(batch(first, 20), &telemetry, 0, 0).await;
            let queued = queued_messages_then_close(&queue).await;
            let dropped = telemetry.get(0, 0, Metric::Dropped);
            (stop.failure(), dropped, (queued, first as u64 + 20))
        });
        let reason = reason.expect("the stop flag carries the reason");
        assert!(
            reason.contains("output [out]")
                && reason.contains("max_buffer_size is 8192")
                && reason.contains("shutdown"),
            "{reason}"
        );
        let (queued, offered) = queued;
        assert!(queued > 0);
        assert_eq!(dropped, 40, "the refused batch and the one after it");
        assert_eq!(queued + dropped, offered, "every message queued or counted");
    }

    /// Shipped batches are appended in the order they were shipped, and `settled` waits for
    /// every append shipped before it, even ones whose task has not run yet.
    #[test]
    fn shipped_batches_are_appended_in_order_and_settled_waits_for_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let (appended_at_settle, read, expected, dropped) = run(async move {
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let queue = DurableQueue::open(&root, "out", 0, &options(), StopFlag::new())
                .await
                .expect("open the queue");
            let next_seq = |queue: &Rc<DurableQueue>| {
                let guard = queue.writer.try_read().expect("no append holds the writer");
                guard.as_ref().map_or(0, Writer::next_seq)
            };
            let first_seq = next_seq(&queue);
            let mut expected = Vec::new();
            // Up to the bound no ship waits: `settled` comes right after the last ship.
            for number in 0..DURABLE_APPENDS_IN_FLIGHT_MAX {
                let batch = batch(number * 10, 10);
                expected.extend_from_slice(&batch.bytes);
                queue.ship(batch, &telemetry, 0, 0).await;
            }
            queue.settled().await;
            let appended_at_settle = next_seq(&queue) - first_seq;
            // Many more than the bound: ships wait for appends, and the order still holds.
            let shipped = 4 * DURABLE_APPENDS_IN_FLIGHT_MAX;
            for number in DURABLE_APPENDS_IN_FLIGHT_MAX..shipped {
                let batch = batch(number * 10, 10);
                expected.extend_from_slice(&batch.bytes);
                queue.ship(batch, &telemetry, 0, 0).await;
            }
            queue.settled().await;
            let mut reader = Reader::open(&queue.handle(), "out").expect("reader");
            let mut records = ReadBatch::new();
            let mut read = Vec::new();
            while reader.has_data() {
                reader.read(&mut records).await.expect("read");
                for record in records.iter() {
                    read.extend_from_slice(record);
                }
            }
            drop(reader);
            queue.close().await;
            let dropped = telemetry.get(0, 0, Metric::Dropped);
            (
                (appended_at_settle, DURABLE_APPENDS_IN_FLIGHT_MAX as u64),
                read,
                expected,
                dropped,
            )
        });
        assert_eq!(
            appended_at_settle.0, appended_at_settle.1,
            "settled waited for every append"
        );
        assert_eq!(read, expected, "every batch once, in the order shipped");
        assert_eq!(dropped, 0);
    }

    /// A writer that cannot append (a full queue with `full_action = "block"`) holds at most
    /// [`DURABLE_APPENDS_IN_FLIGHT_MAX`] shipped batches: the next ship waits (backpressure)
    /// instead of piling batches up in memory; closing the queue releases them, counted.
    #[test]
    fn ships_wait_once_the_appends_in_flight_reach_their_bound() {
        const BATCHES: usize = 200;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let options = QueueOptions {
            max_buffer_size: 8192,
            max_message_size: 1024,
            full_action: crate::queue::FullAction::Block,
            ..options()
        };
        let reopen = options.clone();
        let (returned, blocked, queued, dropped) = run(async move {
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let queue = DurableQueue::open(&root, "out", 0, &options, StopFlag::new())
                .await
                .expect("open the queue");
            let returned = Rc::new(Cell::new(0usize));
            let shipper = {
                let (queue, telemetry, returned) =
                    (queue.clone(), telemetry.clone(), returned.clone());
                glommio::spawn_local(async move {
                    for number in 0..BATCHES {
                        queue.ship(batch(number * 20, 20), &telemetry, 0, 0).await;
                        returned.set(returned.get() + 1);
                    }
                })
            };
            // The queue fills within a few dozen batches; then nothing moves.
            glommio::timer::sleep(Duration::from_millis(300)).await;
            let (returned, blocked) = (returned.get(), queue.is_blocked());
            // Close: the blocked append gives up, the rest find the queue closed; all counted.
            queue.close().await;
            shipper.await;
            // The last ships' appends (after the close: dropped) have finished.
            queue.settled().await;
            let dropped = telemetry.get(0, 0, Metric::Dropped);
            let queue = DurableQueue::open(&root, "out", 0, &reopen, StopFlag::new())
                .await
                .expect("reopen the queue");
            let queued = queued_messages_then_close(&queue).await;
            (returned, blocked, queued, dropped)
        });
        assert!(blocked, "the queue filled");
        let appended_batches = usize::try_from(queued / 20).expect("small");
        assert!(appended_batches > 0 && appended_batches < BATCHES);
        assert_eq!(
            returned,
            appended_batches + DURABLE_APPENDS_IN_FLIGHT_MAX,
            "ships returned for the appended batches and the ones in flight, then waited"
        );
        assert_eq!(
            queued + dropped,
            20 * BATCHES as u64,
            "every message queued or counted"
        );
    }
}
