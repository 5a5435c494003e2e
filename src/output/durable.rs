//! Durable outputs (`use_buffering = true`): the delivering end. Every core appends what it
//! ships for the output to its own disk queue ([`crate::queue::DurableQueue`], see
//! `src/queue/append.rs`), and [`crate::queue::Consumer`] tasks read the queues back; this
//! module is what they deliver to: the output's file or its connection.
//!
//! Who consumes what (see also `docs/architecture.md`): the output is each queue's one
//! consumer, under its own name. For a single-writer FileOutput every queue's consumer runs on
//! the owner core and writes through the owner's one file writer (so the file still has one
//! writer); for a `%{core}` FileOutput and for TcpOutput, each core consumes its own queue
//! into its own file or connection. With `ack = true`, a TcpOutput's destination is
//! [`super::acked`]'s instead.
//!
//! Each output kind writes reads into its destination through a [`WriteRecords`] of its own
//! (`output/file.rs`, `output/tcp.rs`), started by [`spawn_consumer`] from its
//! [`super::OutputKind::open_durable`].
//!
//! At least once: the consumer commits a read only after its write (file) or send (TCP)
//! succeeded. A file's consumer keeps up to [`DURABLE_FILE_WRITES_IN_FLIGHT_MAX`] writes in
//! flight ([`WriteRecords::start_write`]): it reads (or takes from the hand-off) the next batch
//! while earlier ones are written, writes land in queue order, and each read is committed once
//! its write and every one before it completed. A failed delivery rewinds to the last commit and is tried again after a backoff,
//! until it succeeds or the stop's drain deadline passes; the records then stay queued for the
//! next start.
//!
//! Limits:
//! - "Written" means handed to the kernel: the output file is not fsynced, so a power loss
//!   may lose file data the queue already counts as delivered. TCP without acknowledgements
//!   cannot see a receiver that dies after reading: that is the ack protocol's job (not here).
//! - Each record says how many messages it holds (queue header field 13, see
//!   [`crate::queue::record`]); delivery counts them in `sent_total`, and the bytes in
//!   `sent_bytes_total`. A record written without the field (before it existed) counts 0
//!   messages.
//! - TcpOutput's `reconnect_after` is not applied to durable delivery.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::component::LocalBoxFuture;
use crate::limits::DURABLE_FILE_WRITES_IN_FLIGHT_MAX;
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, Position, ReadBatch};
use crate::runtime::stop::LocalStop;
use crate::telemetry::{Metric, Telemetry};

/// What an output kind's durable delivery writes a read into: its file, its connection. The
/// kind's module implements it; [`spawn_consumer`] runs it behind a queue consumer.
// Used only within gyges, on one core: its futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait WriteRecords {
    /// Delivers the records of `records`, `bytes` long in all.
    ///
    /// # Errors
    /// The destination refused or was lost; nothing of this read counts as delivered, and the
    /// consumer rewinds and tries again after a backoff.
    async fn write(&mut self, records: &ReadBatch, bytes: usize) -> std::io::Result<()>;

    /// [`WriteRecords::write`] for a writer that may take the batch's bytes without a copy
    /// ([`ReadBatch::take_handed`]); by default it copies as `write` does.
    ///
    /// # Errors
    /// As [`WriteRecords::write`].
    async fn write_owned(&mut self, records: &mut ReadBatch, bytes: usize) -> std::io::Result<()> {
        self.write(records, bytes).await
    }

    /// Starts delivering `records` without waiting for it: the future completes once they are
    /// delivered. Writes started one after the other must land in that order. `None` (the
    /// default): this writer delivers one read at a time, through [`WriteRecords::write_owned`].
    fn start_write(
        &mut self,
        records: &mut ReadBatch,
        bytes: usize,
    ) -> Option<LocalBoxFuture<'static, std::io::Result<()>>> {
        let _ = (records, bytes);
        None
    }

    /// Lets go of the destination at stop (closes a connection).
    async fn disconnect(&mut self) {}
}

/// A [`WriteRecords`] counting what it delivers for its output.
struct Counted<W> {
    writer: W,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
    /// Writes started ([`WriteRecords::start_write`]) and not yet committed, oldest first.
    in_flight: VecDeque<InFlight>,
}

/// A write running as its own task, and what to commit and count once it and every write
/// before it completed.
struct InFlight {
    end: Position,
    bytes: u64,
    messages: u64,
    done: Rc<Cell<bool>>,
    task: glommio::Task<std::io::Result<()>>,
}

impl<W> Counted<W> {
    fn count(&self, bytes: u64, messages: u64) {
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        telemetry.add(core, plugin, Metric::SentBytes, bytes);
        telemetry.add(core, plugin, Metric::Sent, messages);
    }
}

impl<W: WriteRecords> Deliver for Counted<W> {
    type Error = std::io::Error;

    async fn deliver(&mut self, records: &ReadBatch) -> std::io::Result<Delivered> {
        let bytes: usize = records.iter().map(<[u8]>::len).sum();
        self.writer.write(records, bytes).await?;
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        telemetry.add(core, plugin, Metric::SentBytes, bytes as u64);
        telemetry.add(core, plugin, Metric::Sent, records.message_count());
        Ok(Delivered::Done)
    }

    async fn deliver_owned(&mut self, records: &mut ReadBatch) -> std::io::Result<Delivered> {
        // Counted before the writer may take the bytes.
        let bytes: usize = records.iter().map(<[u8]>::len).sum();
        let messages = records.message_count();
        let end = records.end();
        if let Some(write) = self.writer.start_write(records, bytes) {
            let done = Rc::new(Cell::new(false));
            let flag = done.clone();
            let task = glommio::spawn_local(async move {
                let result = write.await;
                flag.set(true);
                result
            });
            self.in_flight.push_back(InFlight {
                end,
                bytes: bytes as u64,
                messages,
                done,
                task,
            });
            return Ok(Delivered::Sent);
        }
        self.writer.write_owned(records, bytes).await?;
        self.count(bytes as u64, messages);
        Ok(Delivered::Done)
    }

    fn has_room(&self) -> bool {
        self.in_flight.len() < DURABLE_FILE_WRITES_IN_FLIGHT_MAX
    }

    fn is_settled(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Commits the writes that completed, oldest first, stopping at the first one still
    /// running; with a `wait`, first waits for the oldest one (a file write always ends).
    async fn settle(&mut self, wait: Duration) -> std::io::Result<Option<Position>> {
        let mut settled = None;
        while let Some(oldest) = self.in_flight.front() {
            if !oldest.done.get() && (wait.is_zero() || settled.is_some()) {
                break;
            }
            let Some(write) = self.in_flight.pop_front() else {
                break;
            };
            write.task.await?;
            self.count(write.bytes, write.messages);
            settled = Some(write.end);
        }
        Ok(settled)
    }

    /// After a failure: lets the writes still running end (their records are read and
    /// written again from the last commit: duplicates, never a gap).
    async fn reset(&mut self) {
        while let Some(write) = self.in_flight.pop_front() {
            let _ = write.task.await;
        }
    }

    async fn close(&mut self) {
        self.reset().await;
        self.writer.disconnect().await;
    }
}

/// Delivers core row `source_row`'s queue (published on `board`) to `writer` until the core
/// stops and the queue is closed and delivered (or the drain deadline has passed).
pub async fn run_consumer<W: WriteRecords>(
    board: Arc<HandleBoard>,
    source_row: usize,
    writer: W,
    stop: Rc<LocalStop>,
    (telemetry, core, plugin): (Arc<Telemetry>, usize, usize),
) {
    let destination = Counted {
        writer,
        telemetry: telemetry.clone(),
        core,
        plugin,
        in_flight: VecDeque::new(),
    };
    Consumer::new(board, source_row)
        .run(destination, stop, (telemetry, core, plugin))
        .await;
}

/// Starts, on this core, the task that delivers core row `source_row`'s queue of
/// `core.output` to `writer`.
pub fn spawn_consumer<W: WriteRecords + 'static>(
    core: &super::OutputCore<'_>,
    board: &Arc<HandleBoard>,
    source_row: usize,
    writer: W,
) -> glommio::task::JoinHandle<()> {
    let counters = (core.telemetry.clone(), core.row, core.plugin);
    let run = run_consumer(
        board.clone(),
        source_row,
        writer,
        core.stop.clone(),
        counters,
    );
    // A panic in it names the output (the failure policy, `runtime/failure.rs`).
    let run = crate::runtime::failure::plugin_task(&core.output.name, run);
    glommio::spawn_local(run).detach()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::file::FileWriter;
    use crate::output::tcp::TcpPlan;
    use crate::queue::DurableQueue;
    use crate::queue::Reader;
    use crate::runtime::stop::StopFlag;
    use std::time::Duration;

    use crate::testing::run_local as run;

    use crate::testing::small_queue_options as options;

    use crate::testing::lines_batch as batch;

    /// Appends, delivers to a file (each batch handed over in memory and written without a
    /// copy), stops cleanly; then a restart finds nothing to replay.
    #[test]
    fn delivers_in_order_and_checkpoints_at_stop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let delivered = run(async move {
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let queue = DurableQueue::open(&root, "out", 0, &options(), StopFlag::new())
                .await
                .expect("open the queue");
            let board = HandleBoard::new("out", 1);
            board.publish(0, queue.handle());
            let path = root.join("out.log");
            let writer = Rc::new(FileWriter::open(&path, 0o644, 0o700).await.expect("file"));
            let stop = LocalStop::new();
            let consumer = glommio::spawn_local(run_consumer(
                board.clone(),
                0,
                crate::output::file::FileRecords(writer),
                stop.clone(),
                (telemetry.clone(), 0, 0),
            ));
            let mut expected = Vec::new();
            for first in (0..2000).step_by(100) {
                let batch = batch(first, 100);
                expected.extend_from_slice(&batch.bytes);
                queue.append(batch, &telemetry, 0, 0).await;
            }
            stop.raise();
            queue.close().await;
            consumer.await;
            // Every batch fits the hand-off ring: each was written from memory, not read back.
            assert_eq!(queue.handle().handed_records(), 20);
            assert_eq!(telemetry.get(0, 0, Metric::Dropped), 0);
            assert_eq!(
                telemetry.get(0, 0, Metric::SentBytes),
                expected.len() as u64
            );
            assert_eq!(
                telemetry.get(0, 0, Metric::Sent),
                2000,
                "messages, from field 13"
            );
            let written = std::fs::read(&path).expect("read the output");
            assert_eq!(written, expected, "every batch, once, in order");
            // Reopened: the clean stop checkpointed the end, so nothing is delivered again.
            let queue = DurableQueue::open(&root, "out", 0, &options(), StopFlag::new())
                .await
                .expect("reopen the queue");
            let mut reader = Reader::open(&queue.handle(), "out").expect("reader");
            let replay = reader.has_data();
            queue.close().await;
            written.len() as u64 + u64::from(replay)
        });
        let lines: usize = (0..2000)
            .map(|number| format!("line {number}\n").len())
            .sum();
        assert_eq!(delivered, lines as u64, "no replay after a clean stop");
    }

    /// A destination that never accepts: nothing is committed, so everything is still queued
    /// for the next start.
    #[test]
    fn undelivered_records_stay_queued() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let lag = run(async move {
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let queue = DurableQueue::open(&root, "out", 0, &options(), StopFlag::new())
                .await
                .expect("open the queue");
            let board = HandleBoard::new("out", 1);
            board.publish(0, queue.handle());
            let plan = TcpPlan {
                address: format!("127.0.0.1:{port}"),
                reconnect_after: 0,
                buffer_bytes: 1 << 20,
                keep_alive: None,
                ack: None,
                tls: None,
                local_address: None,
            };
            let stop = LocalStop::new();
            let consumer = glommio::spawn_local(run_consumer(
                board,
                0,
                crate::output::tcp::TcpRecords::new(plan),
                stop.clone(),
                (telemetry.clone(), 0, 0),
            ));
            queue.append(batch(0, 10), &telemetry, 0, 0).await;
            queue.append(batch(10, 10), &telemetry, 0, 0).await;
            glommio::timer::sleep(Duration::from_millis(200)).await;
            stop.raise();
            queue.close().await;
            consumer.await;
            assert!(telemetry.get(0, 0, Metric::Errors) >= 1);
            assert_eq!(telemetry.get(0, 0, Metric::SentBytes), 0);
            let queue = DurableQueue::open(&root, "out", 0, &options(), StopFlag::new())
                .await
                .expect("reopen the queue");
            let mut reader = Reader::open(&queue.handle(), "out").expect("reader");
            let mut records = ReadBatch::new();
            let read = reader.read(&mut records).await.expect("read");
            let first = records.get(0).map(<[u8]>::to_vec);
            queue.close().await;
            (read, first)
        });
        assert_eq!(lag.0, 2, "both batches are still queued");
        assert_eq!(lag.1, Some(batch(0, 10).bytes));
    }
}
