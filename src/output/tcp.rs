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
//!
//! With `use_tls`, every connection (memory, durable and acknowledged delivery alike) completes
//! a TLS handshake that verifies the receiver before anything is sent ([`connect`]); a failed
//! handshake counts as a failed connection attempt (`errors_total`) and is retried with the
//! same backoff.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use super::Batch;
use crate::runtime::backoff::Backoff;
use crate::runtime::failure;
use crate::runtime::notify::LocalNotify;
use crate::telemetry::{Metric, Telemetry};
use crate::tls::{TlsClient, TlsStream, Transport};

/// First and longest wait between connection attempts.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);
/// The longest wait between connection attempts: consecutive failures double the wait up to
/// this.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
use crate::limits::DRAIN_TIMEOUT;

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

/// Connects to `plan`'s address; with `use_tls`, also completes the handshake, which
/// verifies the receiver's certificate.
///
/// # Errors
/// The address does not resolve, the connection or the handshake fails or takes too long.
pub(crate) async fn connect(plan: &TcpPlan) -> std::io::Result<Transport> {
    let address = &plan.address;
    let target = address.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
    })?;
    let stream = match plan.local_address {
        Some(local) => gyges_sys::socket::connect_from(local, target, CONNECT_TIMEOUT).await?,
        None => TcpStream::connect_timeout(target, CONNECT_TIMEOUT)
            .await
            .map_err(std::io::Error::from)?,
    };
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    gyges_sys::socket::set_keepalive(&stream, plan.keep_alive)?;
    let Some(tls) = &plan.tls else {
        return Ok(Transport::Plain(stream));
    };
    let connection = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(std::io::Error::other)?;
    let mut stream = TlsStream::new(stream, connection.into());
    stream
        .handshake(crate::limits::TLS_HANDSHAKE_TIMEOUT)
        .await?;
    Ok(Transport::Tls(Box::new(stream)))
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
        let mut stream = match connect(&plan).await {
            Ok(stream) => stream,
            Err(error) => {
                if queue.connected.replace(false) {
                    tracing::warn!(address = %plan.address, %error, "TcpOutput disconnected");
                } else if error.kind() == std::io::ErrorKind::InvalidData {
                    // A TLS refusal (the receiver's certificate does not verify, say) is a
                    // configuration problem: say it at every attempt (backoff-spaced).
                    tracing::warn!(address = %plan.address, %error, "TcpOutput TLS handshake failed");
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
                    stream.close().await;
                    return;
                }
                queue
                    .has_work
                    .wait_timeout(Duration::from_millis(100))
                    .await;
                continue;
            };
            if gyges_sys::socket::peer_closed(stream.tcp()) {
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
                stream.close().await;
                break;
            }
        }
    }
}

/// `TcpOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`]).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpOutput {
    /// `host:port` to send to.
    pub address: String,
    /// The local `ip:port` to connect from (either may be 0: `"10.0.0.5:0"`).
    pub local_address: Option<String>,
    /// Reconnect after this many messages, to rebalance (default 0 = never).
    pub reconnect_after: Option<u64>,
    /// Bytes each core buffers while the receiver is unreachable (default 8 MiB);
    /// past that, messages are dropped and counted.
    pub buffer_size: Option<u64>,
    /// Turn on TCP keep-alive on the connection (default false).
    pub keep_alive: Option<bool>,
    /// Keep-alive idle time in seconds (default 7200, at most one day).
    pub keep_alive_period: Option<u64>,
    /// Connect with TLS (default false), with the `[name.tls]` options.
    pub use_tls: Option<bool>,
    /// `[name.tls]`: the CA the receiver is verified against, its name, a client
    /// certificate, versions (`use_tls`).
    pub tls: Option<crate::tls::RawTls>,
    /// Ask the receiver to acknowledge what it has queued, and commit only then (gyges
    /// receivers; a Heka receiver is sent to unacknowledged). Needs `use_buffering`.
    pub ack: Option<bool>,
    /// Milliseconds to wait for the receiver's welcome and for each acknowledgement.
    pub ack_timeout: Option<u64>,
}

/// TcpOutput, planned: its kind.
#[derive(Debug, Clone)]
pub struct TcpPlan {
    /// The `host:port` to connect to, resolved again at each connection attempt.
    pub address: String,
    /// Messages after which the connection is closed and opened again, to rebalance
    /// (`reconnect_after`); 0 never reconnects.
    pub reconnect_after: u64,
    /// Bytes of batches each core queues for the connection (`buffer_size`); when full, a core
    /// waits while connected (drops with best effort) and drops while unreachable.
    pub buffer_bytes: usize,
    /// The keep-alive idle time of the connection (`keep_alive_period`); `None` when
    /// `keep_alive` is off.
    pub keep_alive: Option<Duration>,
    /// `ack = true`: how long to wait for the receiver's welcome and for each
    /// acknowledgement (`ack_timeout`).
    pub ack: Option<Duration>,
    /// `use_tls`: the shared client config and the receiver's name; `None` is plain TCP.
    pub tls: Option<TlsClient>,
    /// `local_address`: the address connections are made from; `None` lets the kernel choose.
    pub local_address: Option<std::net::SocketAddr>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::OutputPlan> =
    crate::component::Registration {
        type_names: &["TcpOutput"],
        plan: plan_tcp_output,
    };

fn plan_tcp_output(
    section: &crate::config::Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<crate::config::plan::OutputPlan, crate::config::ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawTcpOutput = own.parse()?;
    let tls = match (raw.use_tls == Some(true), &raw.tls) {
        (true, Some(tls)) => Some(crate::tls::client(section, tls, &raw.address)?),
        (true, None) => {
            let none = crate::tls::RawTls::default();
            Some(crate::tls::client(section, &none, &raw.address)?)
        }
        (false, Some(_)) => {
            tracing::warn!(section = %section.name, "[{}.tls] is ignored: use_tls is not true", section.name);
            None
        }
        (false, None) => None,
    };
    let local_address = match raw.local_address.as_deref() {
        Some(local) => Some(section.address("local_address", local)?),
        None => None,
    };
    section.destination("address", &raw.address)?;
    let buffer_bytes = buffer_bytes(section, raw.buffer_size, context.global.batch_bytes)?;
    let keep_alive = crate::input::tcp::keep_alive(section, raw.keep_alive, raw.keep_alive_period)?;
    let common = common.with_defaults("ProtobufEncoder", true, true);
    let use_framing = common.use_framing;
    let reconnect_after = raw.reconnect_after.unwrap_or(0);
    if reconnect_after > crate::limits::RECONNECT_AFTER_MAX {
        let message = format!(
            "{reconnect_after} is above {} messages (0 is never)",
            crate::limits::RECONNECT_AFTER_MAX
        );
        return Err(section.error(Some("reconnect_after"), message));
    }
    super::plan::output_plan(section, context, common, |durable| {
        let ack = ack_plan(section, &raw, durable, use_framing)?;
        Ok(std::sync::Arc::new(TcpPlan {
            address: raw.address.clone(),
            reconnect_after,
            buffer_bytes,
            keep_alive,
            ack,
            tls: tls.clone(),
            local_address,
        }))
    })
}

/// A TcpOutput's `ack` and `ack_timeout`: the timeout when acknowledgements are asked for.
/// They need a durable output (the sender commits on acknowledgement) and framing (control
/// frames are frames).
fn ack_plan(
    section: &crate::config::Section,
    raw: &RawTcpOutput,
    durable: bool,
    use_framing: bool,
) -> Result<Option<Duration>, crate::config::ConfigError> {
    if raw.ack != Some(true) {
        if raw.ack_timeout.is_some() {
            return Err(section.error(
                Some("ack_timeout"),
                "is set but ack is not true; set ack = true or remove it",
            ));
        }
        return Ok(None);
    }
    if !durable {
        return Err(section.error(
            Some("ack"),
            "needs use_buffering = true: the sender keeps what is not acknowledged in its queue",
        ));
    }
    if !use_framing {
        return Err(section.error(
            Some("ack"),
            "needs use_framing = true: acknowledgements are asked for with Heka frames",
        ));
    }
    ack_timeout(section, "ack_timeout", raw.ack_timeout).map(Some)
}

/// `buffer_size`: the bytes each core queues for the connection (default
/// `TCP_OUTPUT_BUFFER_BYTES_DEFAULT`), at least one batch of `batch_bytes`.
///
/// # Errors
/// Below one batch or above `TCP_OUTPUT_BUFFER_BYTES_MAX`.
pub fn buffer_bytes(
    section: &crate::config::Section,
    buffer_size: Option<u64>,
    batch_bytes: usize,
) -> Result<usize, crate::config::ConfigError> {
    use crate::limits::{TCP_OUTPUT_BUFFER_BYTES_DEFAULT, TCP_OUTPUT_BUFFER_BYTES_MAX};
    let bytes = buffer_size.unwrap_or(TCP_OUTPUT_BUFFER_BYTES_DEFAULT as u64);
    if bytes < batch_bytes as u64 || bytes > TCP_OUTPUT_BUFFER_BYTES_MAX as u64 {
        let message = format!(
            "{bytes} is outside {batch_bytes}..={TCP_OUTPUT_BUFFER_BYTES_MAX} (at least one batch)"
        );
        return Err(section.error(Some("buffer_size"), message));
    }
    Ok(bytes as usize)
}

/// An acknowledgement timeout in milliseconds, the value of `key` (default
/// `ACK_TIMEOUT_MS_DEFAULT`).
///
/// # Errors
/// Outside `ACK_TIMEOUT_MS_MIN..=ACK_TIMEOUT_MS_MAX`.
pub fn ack_timeout(
    section: &crate::config::Section,
    key: &str,
    millis: Option<u64>,
) -> Result<Duration, crate::config::ConfigError> {
    use crate::limits::{ACK_TIMEOUT_MS_DEFAULT, ACK_TIMEOUT_MS_MAX, ACK_TIMEOUT_MS_MIN};
    let millis = millis.unwrap_or(ACK_TIMEOUT_MS_DEFAULT);
    if !(ACK_TIMEOUT_MS_MIN..=ACK_TIMEOUT_MS_MAX).contains(&millis) {
        let message =
            format!("{millis} is outside {ACK_TIMEOUT_MS_MIN}..={ACK_TIMEOUT_MS_MAX} milliseconds");
        return Err(section.error(Some(key), message));
    }
    Ok(Duration::from_millis(millis))
}

impl TcpPlan {
    /// Starts this core's connection: a queue the sink ships into, and the task that sends it.
    pub fn open_sender(&self, core: &super::OutputCore<'_>) -> super::Opened {
        let queue = TcpQueue::new(self.buffer_bytes, core.best_effort());
        let sender = run_sender(
            queue.clone(),
            self.clone(),
            core.telemetry.clone(),
            core.row,
            core.plugin,
        );
        let task = glommio::spawn_local(sender).detach();
        let closing = queue.clone();
        super::Opened {
            destination: queue,
            tasks: vec![task],
            close: Some(Box::new(move || Box::pin(async move { closing.close() }))),
        }
    }
}

impl super::OutputKind for TcpPlan {
    fn type_name(&self) -> &'static str {
        "TcpOutput"
    }

    fn describe(&self, _: &crate::config::plan::OutputPlan) -> String {
        let tls = if self.tls.is_some() { ", TLS" } else { "" };
        format!("{} (one connection per core{tls})", self.address)
    }

    fn writers(&self) -> super::Writers {
        super::Writers::EveryCore
    }

    fn open<'a>(
        &'a self,
        core: &'a super::OutputCore<'a>,
    ) -> crate::component::LocalBoxFuture<'a, Result<super::Opened, String>> {
        Box::pin(async move { Ok(self.open_sender(core)) })
    }

    fn open_durable<'a>(
        &'a self,
        core: &'a super::OutputCore<'a>,
        board: &'a std::sync::Arc<crate::queue::HandleBoard>,
    ) -> crate::component::LocalBoxFuture<'a, Result<Vec<glommio::task::JoinHandle<()>>, String>>
    {
        // Each core delivers its own queue over its own connection; with `ack = true`, through
        // the acknowledging sender, which commits only what the receiver acknowledged.
        let task = if self.ack.is_some() {
            let (telemetry, stop) = (core.telemetry.clone(), core.stop.clone());
            let acked = super::acked::run_consumer(
                board.clone(),
                core.row,
                self.clone(),
                stop,
                telemetry,
                core.row,
                core.plugin,
            );
            let acked = crate::runtime::failure::plugin_task(&core.output.name, acked);
            glommio::spawn_local(acked).detach()
        } else {
            let records = TcpRecords::new(self.clone());
            super::durable::spawn_consumer(core, board, core.row, records)
        };
        Box::pin(async move { Ok(vec![task]) })
    }
}

/// Durable delivery over this core's own connection: each record of a read as it was read.
pub struct TcpRecords {
    plan: TcpPlan,
    stream: Option<Transport>,
}

impl TcpRecords {
    /// Delivery to `plan`'s address, connecting when first needed.
    pub fn new(plan: TcpPlan) -> TcpRecords {
        TcpRecords { plan, stream: None }
    }
}

impl super::durable::WriteRecords for TcpRecords {
    async fn write(
        &mut self,
        records: &crate::queue::ReadBatch,
        _bytes: usize,
    ) -> std::io::Result<()> {
        if self
            .stream
            .as_ref()
            .is_some_and(|stream| gyges_sys::socket::peer_closed(stream.tcp()))
        {
            self.stream = None;
        }
        let connected = match self.stream.take() {
            Some(connected) => connected,
            None => connect(&self.plan).await?,
        };
        let connected = self.stream.insert(connected);
        for record in records.iter() {
            if let Err(error) = connected.write_all(record).await {
                self.stream = None;
                return Err(error);
            }
        }
        Ok(())
    }

    async fn disconnect(&mut self) {
        if let Some(mut connected) = self.stream.take() {
            connected.close().await;
        }
    }
}

impl super::Destination for TcpQueue {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> crate::component::LocalBoxFuture<'a, ()> {
        Box::pin(self.enqueue(batch, telemetry, core, plugin))
    }
}
