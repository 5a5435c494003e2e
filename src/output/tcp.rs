//! TcpOutput: each core keeps its own connection to the destination.
//!
//! Batches wait in a bounded per-core queue. While connected, a full queue makes the cores
//! wait (backpressure to their senders), unless the output has `delivery = "best_effort"`:
//! then a batch that does not fit is dropped and counted, connected or not, and the core never
//! waits. While the destination is unreachable, the queue fills to its bound and then new
//! batches are dropped and counted. The sender reconnects
//! with exponential backoff ([`Backoff`], [`RECONNECT_DELAY_MIN`] to [`RECONNECT_DELAY_MAX`]),
//! and before each batch checks, without blocking, that the
//! receiver has not closed the connection, so a batch is not written into a dead socket.
//! Heka framing without acknowledgements cannot see a receiver that dies after reading a
//! batch and before persisting it; that gap is closed by acknowledged forwarding (see
//! `docs/architecture.md`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::Batch;
use crate::config::plan::TcpPlan;
use crate::runtime::backoff::Backoff;
use crate::runtime::failure;
use crate::runtime::notify::LocalNotify;
use crate::telemetry::{Metric, Telemetry};

/// First and longest wait between connection attempts.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stopping core keeps trying to deliver what is queued.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One core's queue of batches for one TcpOutput.
pub struct TcpQueue {
    batches: RefCell<VecDeque<Batch>>,
    bytes: Cell<usize>,
    bytes_max: usize,
    /// `delivery = "best_effort"`: drop what does not fit instead of waiting.
    drop_when_full: bool,
    connected: Cell<bool>,
    closing: Cell<bool>,
    /// When [`TcpQueue::close`] was called.
    closed_at: Cell<Option<Instant>>,
    has_work: Rc<LocalNotify>,
    has_room: Rc<LocalNotify>,
}

impl TcpQueue {
    /// A queue holding at most about `bytes_max` bytes; with `drop_when_full`, at most
    /// `bytes_max` and producers never wait.
    pub fn new(bytes_max: usize, drop_when_full: bool) -> Rc<TcpQueue> {
        Rc::new(TcpQueue {
            batches: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            bytes_max,
            drop_when_full,
            connected: Cell::new(false),
            closing: Cell::new(false),
            closed_at: Cell::new(None),
            has_work: LocalNotify::new(),
            has_room: LocalNotify::new(),
        })
    }

    /// Queues a batch. Waits while connected and over the bound; drops and counts the batch
    /// when the destination is unreachable (or the output is best effort) and the queue is
    /// full.
    pub async fn enqueue(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let may_wait = self.connected.get() && !self.drop_when_full;
        if !may_wait && self.bytes.get() + batch.bytes.len() > self.bytes_max {
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
            return;
        }
        self.bytes.set(self.bytes.get() + batch.bytes.len());
        self.batches.borrow_mut().push_back(batch);
        self.has_work.notify();
        while self.connected.get() && !self.drop_when_full && self.bytes.get() > self.bytes_max {
            self.has_room.wait_timeout(Duration::from_millis(10)).await;
        }
    }

    fn pop(&self) -> Option<Batch> {
        let batch = self.batches.borrow_mut().pop_front()?;
        self.bytes.set(self.bytes.get() - batch.bytes.len());
        Some(batch)
    }

    fn push_front(&self, batch: Batch) {
        self.bytes.set(self.bytes.get() + batch.bytes.len());
        self.batches.borrow_mut().push_front(batch);
    }

    /// Asks the sender to deliver what is queued and stop.
    pub fn close(&self) {
        self.closing.set(true);
        self.closed_at.set(Some(Instant::now()));
        self.has_work.notify();
    }

    /// Returns once the queue has been closed for [`DRAIN_TIMEOUT`]: a write blocked on a
    /// receiver that accepts but never reads gives up then.
    async fn drain_expired(&self) {
        loop {
            if self
                .closed_at
                .get()
                .is_some_and(|at| at.elapsed() > DRAIN_TIMEOUT)
            {
                return;
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }

    fn drop_all(&self, telemetry: &Telemetry, core: usize, plugin: usize) {
        while let Some(batch) = self.pop() {
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
        }
    }
}

pub(crate) async fn connect(
    address: &str,
    keep_alive: Option<Duration>,
) -> std::io::Result<TcpStream> {
    let target = address.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
    })?;
    let stream = TcpStream::connect_timeout(target, CONNECT_TIMEOUT)
        .await
        .map_err(std::io::Error::from)?;
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    gyges_io_uring::socket::set_keepalive(&stream, keep_alive)?;
    Ok(stream)
}

/// Delivers one core's queue to the destination until the queue is closed and empty (or the
/// drain timeout passes after closing). Runs as the output's plugin task (a panic names it).
pub async fn run_sender(
    queue: Rc<TcpQueue>,
    plan: TcpPlan,
    telemetry: std::sync::Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    let name = telemetry.plugins().get(plugin).cloned().unwrap_or_default();
    let send = send_loop(queue, plan, telemetry, core, plugin);
    failure::plugin_task(&name, send).await;
}

async fn send_loop(
    queue: Rc<TcpQueue>,
    plan: TcpPlan,
    telemetry: std::sync::Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    let mut reconnect = Backoff::new(RECONNECT_DELAY_MIN, RECONNECT_DELAY_MAX);
    let mut closing_since: Option<Instant> = None;
    loop {
        if queue.closing.get() {
            let since = *closing_since.get_or_insert_with(Instant::now);
            if queue.batches.borrow().is_empty() || since.elapsed() > DRAIN_TIMEOUT {
                queue.drop_all(&telemetry, core, plugin);
                return;
            }
        }
        let mut stream = match connect(&plan.address, plan.keep_alive).await {
            Ok(stream) => stream,
            Err(error) => {
                if queue.connected.replace(false) {
                    tracing::warn!(address = %plan.address, %error, "TcpOutput disconnected");
                }
                telemetry.add(core, plugin, Metric::Errors, 1);
                queue.has_room.notify();
                reconnect.wait().await;
                continue;
            }
        };
        queue.connected.set(true);
        reconnect.reset();
        let mut sent_on_connection = 0u64;
        loop {
            let Some(batch) = queue.pop() else {
                if queue.closing.get() {
                    let _ = stream.close().await;
                    return;
                }
                queue
                    .has_work
                    .wait_timeout(Duration::from_millis(100))
                    .await;
                continue;
            };
            if gyges_io_uring::socket::peer_closed(&stream) {
                queue.push_front(batch);
                break;
            }
            let written = futures_lite::future::or(
                async { Some(stream.write_all(&batch.bytes).await) },
                async {
                    queue.drain_expired().await;
                    None
                },
            )
            .await;
            let Some(written) = written else {
                // Stopping, and the receiver has not taken this batch for the drain timeout.
                telemetry.add(core, plugin, Metric::Dropped, batch.messages);
                queue.drop_all(&telemetry, core, plugin);
                return;
            };
            if let Err(error) = written {
                tracing::warn!(address = %plan.address, %error, "TcpOutput write failed; reconnecting");
                telemetry.add(core, plugin, Metric::Errors, 1);
                queue.push_front(batch);
                break;
            }
            telemetry.add(core, plugin, Metric::Sent, batch.messages);
            telemetry.add(core, plugin, Metric::SentBytes, batch.bytes.len() as u64);
            queue.has_room.notify();
            sent_on_connection += batch.messages;
            if plan.reconnect_after > 0 && sent_on_connection >= plan.reconnect_after {
                let _ = stream.close().await;
                break;
            }
        }
    }
}
