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
//! At least once: the consumer commits a read only after its write (file) or send (TCP)
//! succeeded. A failed delivery rewinds to the last commit and is tried again after a backoff,
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

use std::rc::Rc;
use std::sync::Arc;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::file::FileWriter;
use crate::config::plan::TcpPlan;
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, ReadBatch};
use crate::runtime::stop::LocalStop;
use crate::telemetry::{Metric, Telemetry};

// The append side lives in `queue/`; the output stage still names it from here.
pub use crate::queue::DurableQueue;

/// Where a consumer delivers records.
pub enum Delivery {
    /// A file written by this core's single writer.
    File(Rc<FileWriter>),
    /// This consumer's own connection.
    Tcp {
        plan: TcpPlan,
        stream: Option<TcpStream>,
    },
}

impl Delivery {
    /// Delivers the records of `records` as one stretch of bytes, `bytes` long. A file gets
    /// them in one owned buffer (the one copy an io_uring write needs); a connection gets each
    /// record as it was read.
    async fn write(&mut self, records: &ReadBatch, bytes: usize) -> std::io::Result<()> {
        match self {
            Delivery::File(writer) => {
                let mut owned = Vec::with_capacity(bytes);
                for record in records.iter() {
                    owned.extend_from_slice(record);
                }
                writer.append(owned).await
            }
            Delivery::Tcp { plan, stream } => {
                if stream
                    .as_ref()
                    .is_some_and(gyges_io_uring::socket::peer_closed)
                {
                    *stream = None;
                }
                let connected = match stream.take() {
                    Some(connected) => connected,
                    None => super::tcp::connect(&plan.address, plan.keep_alive).await?,
                };
                let connected = stream.insert(connected);
                for record in records.iter() {
                    if let Err(error) = connected.write_all(record).await {
                        *stream = None;
                        return Err(error);
                    }
                }
                Ok(())
            }
        }
    }

    async fn disconnect(&mut self) {
        if let Delivery::Tcp { stream, .. } = self {
            if let Some(mut connected) = stream.take() {
                let _ = connected.close().await;
            }
        }
    }
}

/// A [`Delivery`] counting what it delivers for its output.
struct Counted {
    delivery: Delivery,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
}

impl Deliver for Counted {
    type Error = std::io::Error;

    async fn deliver(&mut self, records: &ReadBatch) -> std::io::Result<Delivered> {
        let bytes: usize = records.iter().map(<[u8]>::len).sum();
        self.delivery.write(records, bytes).await?;
        let (telemetry, core, plugin) = (&self.telemetry, self.core, self.plugin);
        telemetry.add(core, plugin, Metric::SentBytes, bytes as u64);
        telemetry.add(core, plugin, Metric::Sent, records.message_count());
        Ok(Delivered::Done)
    }

    async fn close(&mut self) {
        self.delivery.disconnect().await;
    }
}

/// Delivers core row `source_row`'s queue (published on `board`) to `delivery` until the core
/// stops and the queue is closed and delivered (or the drain deadline has passed).
pub async fn run_consumer(
    board: Arc<HandleBoard>,
    source_row: usize,
    delivery: Delivery,
    stop: Rc<LocalStop>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    let destination = Counted {
        delivery,
        telemetry: telemetry.clone(),
        core,
        plugin,
    };
    Consumer::new(board, source_row)
        .run(destination, stop, (telemetry, core, plugin))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Batch;
    use crate::queue::{QueueOptions, Reader};
    use crate::runtime::stop::StopFlag;
    use std::time::Duration;

    fn run<T: 'static>(future: impl std::future::Future<Output = T> + 'static) -> T {
        glommio::LocalExecutorBuilder::default()
            .io_memory(0)
            .make()
            .expect("an executor for the test")
            .run(future)
    }

    fn options() -> QueueOptions {
        QueueOptions {
            max_file_size: 4096,
            min_disk_free: 0,
            sync: crate::queue::SyncPolicy::None,
            ..QueueOptions::default()
        }
    }

    /// Batches of `count` lines each, numbered from `first`.
    fn batch(first: usize, count: usize) -> Batch {
        let mut batch = Batch::default();
        for number in first..first + count {
            batch
                .bytes
                .extend_from_slice(format!("line {number}\n").as_bytes());
            batch.messages += 1;
        }
        batch
    }

    /// Appends, delivers to a file, stops cleanly; then a restart finds nothing to replay.
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
                Delivery::File(writer),
                stop.clone(),
                telemetry.clone(),
                0,
                0,
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
            };
            let stop = LocalStop::new();
            let consumer = glommio::spawn_local(run_consumer(
                board,
                0,
                Delivery::Tcp { plan, stream: None },
                stop.clone(),
                telemetry.clone(),
                0,
                0,
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
