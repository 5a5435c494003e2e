//! FluentForwardInput: the Fluentd Forward protocol v1 server (`docs/fluent.md`).
//!
//! Every ingest core listens on the address with SO_REUSEPORT (TCP for events, UDP for
//! heartbeats). A connection reads into its own buffer and cuts whole top-level msgpack
//! frames from it with a resumable scan ([`msgpack::Scan`]); each frame's events become Heka
//! messages written straight into a reused buffer ([`mapping`]) and routed as lazy views,
//! the way SyslogDecoder routes its messages. Nothing is allocated per event.
//!
//! - **Acks.** A frame whose option has a `chunk` is answered `{"ack": chunk}` after
//!   everything read before it has been routed, shipped and (for durable routes) appended:
//!   [`Shard::settle`], the machinery TcpInput answers acknowledgement marks with, paced
//!   the same way (`docs/ack.md`).
//! - **Handshake.** With `shared_key`, the server sends HELO first and reads nothing but a
//!   PING until it has answered PONG ([`handshake`]); a wrong key is counted
//!   (`auth_failures_total`) and the connection closed.
//! - **Heartbeat.** A UDP datagram on the same port is answered with one `0x00` byte.
//! - **Bad input.** A malformed event is counted (`decode_failures_total`) and the frame goes
//!   on; an oversized one is counted (`oversize_records_total`). A stream that is not
//!   msgpack, or a frame past `max_frame_size`, cannot be resynchronised: the connection is
//!   closed and counted, and logged at most once per [`LOG_INTERVAL`].

pub mod frame;
pub mod handshake;
pub mod mapping;
pub mod msgpack;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpStream, UdpSocket};

use self::frame::{read_frame, FrameBuffers, FrameCounts};
use self::handshake::{Ping, NONCE_BYTES};
use self::msgpack::{Error as PackError, Scan};
use super::InputContext;
use crate::message::{ack, MessageView, ProtoView};
use crate::runtime::failure::{self, PluginId, PluginTask};
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::Metric;

/// `FluentForwardInput`'s own keys (the common input keys are in
/// [`super::plan::RawCommon`]; `splitter` and `decoder` do not apply).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFluentForwardInput {
    /// `host:port` to listen on (TCP for events, UDP for heartbeats).
    pub address: String,
    /// Require the `shared_key` handshake with this key (default: no handshake).
    pub shared_key: Option<String>,
    /// The hostname the handshake's PONG names (default: `[gyges] hostname`).
    pub self_hostname: Option<String>,
    /// Answer UDP heartbeats on the same port (default true).
    pub udp_heartbeat: Option<bool>,
    /// Bytes of one frame at most (default 16 MiB).
    pub max_frame_size: Option<u64>,
    /// Connections accepted per core at once (default 1024).
    pub max_connections: Option<u64>,
    /// Turn on TCP keep-alive on accepted connections (default false).
    pub keep_alive: Option<bool>,
    /// Seconds.
    pub keep_alive_period: Option<u64>,
}

/// FluentForwardInput, planned.
#[derive(Debug, Clone)]
pub struct FluentForwardInputKind {
    /// The resolved `address` every ingest core binds with SO_REUSEPORT.
    pub address: SocketAddr,
    /// `shared_key`, when the handshake is required.
    pub shared_key: Option<Arc<[u8]>>,
    /// The hostname the PONG names.
    pub self_hostname: Arc<[u8]>,
    /// Whether UDP heartbeats are answered.
    pub udp_heartbeat: bool,
    /// Bytes of one frame at most (`max_frame_size`).
    pub frame_bytes_max: usize,
    /// Connections one core keeps open at once.
    pub max_connections: usize,
    /// The keep-alive idle time of accepted connections.
    pub keep_alive: Option<Duration>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["FluentForwardInput"],
        plan: plan_fluent_input,
    };

fn bounded(
    section: &crate::config::Section,
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<usize, crate::config::ConfigError> {
    if !range.contains(&value) {
        let message = format!("{value} is outside {}..={}", range.start(), range.end());
        return Err(section.error(Some(key), message));
    }
    Ok(value as usize)
}

fn plan_fluent_input(
    section: &crate::config::Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<crate::config::plan::InputPlan, crate::config::ConfigError> {
    use crate::limits::{
        CONNECTIONS_PER_CORE_DEFAULT, CONNECTIONS_PER_CORE_MAX, FLUENT_FRAME_BYTES_DEFAULT,
        FLUENT_FRAME_BYTES_MAX,
    };
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawFluentForwardInput = own.parse()?;
    let why = "FluentForwardInput reads msgpack frames itself";
    section.refuse("splitter", common.splitter.is_some(), why)?;
    section.refuse("decoder", common.decoder.is_some(), why)?;
    let connections = raw
        .max_connections
        .unwrap_or(CONNECTIONS_PER_CORE_DEFAULT as u64);
    let max_connections = bounded(
        section,
        "max_connections",
        connections,
        1..=CONNECTIONS_PER_CORE_MAX as u64,
    )?;
    let frame = raw
        .max_frame_size
        .unwrap_or(FLUENT_FRAME_BYTES_DEFAULT as u64);
    let least = context.global.max_message_size as u64;
    let frame_bytes_max = bounded(
        section,
        "max_frame_size",
        frame,
        least..=FLUENT_FRAME_BYTES_MAX as u64,
    )?;
    if raw.shared_key.as_deref() == Some("") {
        return Err(section.error(Some("shared_key"), "is empty".to_string()));
    }
    let keep_alive = super::tcp::keep_alive(section, raw.keep_alive, raw.keep_alive_period)?;
    let hostname = raw
        .self_hostname
        .unwrap_or_else(|| context.global.hostname.clone());
    let kind = FluentForwardInputKind {
        address: section.address("address", &raw.address)?,
        shared_key: raw.shared_key.map(|key| Arc::from(key.as_bytes())),
        self_hostname: Arc::from(hostname.as_bytes()),
        udp_heartbeat: raw.udp_heartbeat.unwrap_or(true),
        frame_bytes_max,
        max_connections,
        keep_alive,
    };
    let mut common = common;
    common.decoder = Some(String::new());
    let common = common.with_defaults("NullSplitter", &["tcp", "tcp4", "tcp6"]);
    super::plan::input_plan(section, context, common, Arc::new(kind))
}

impl super::InputKind for FluentForwardInputKind {
    fn type_name(&self) -> &'static str {
        "FluentForwardInput"
    }

    fn describe(&self) -> String {
        let heartbeat = if self.udp_heartbeat {
            " (+udp heartbeat)"
        } else {
            ""
        };
        format!("fluent forward tcp {}{heartbeat}", self.address)
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        let listener = super::tcp::bind(self.address, receive_buffer)?;
        if self.udp_heartbeat {
            let socket = UdpSocket::bind(self.address).map_err(std::io::Error::from)?;
            let heartbeat = answer_heartbeats(shard.clone(), input.clone(), socket);
            glommio::spawn_local(heartbeat).detach();
        }
        let serving = serve(shard.clone(), input, listener, Rc::new(self.clone()));
        glommio::spawn_local(serving).detach();
        Ok(())
    }
}

/// Answers each UDP heartbeat with one `0x00` byte, until the core stops.
async fn answer_heartbeats(shard: Rc<Shard>, input: Rc<InputContext>, socket: UdpSocket) {
    let plugin = failure::register_plugin(&input.plan.name);
    let answer = async move {
        let mut buffer = [0u8; 64];
        let mut errors = super::udp::ReceiveErrors::new();
        while !shard.stop.is_stopping() {
            let received = futures_lite::future::or(
                async { Some(socket.recv_from(&mut buffer).await) },
                async {
                    shard.stop.wait().await;
                    None
                },
            )
            .await;
            match received {
                None => break,
                Some(Ok((_, sender))) => {
                    errors.succeeded();
                    let _ = socket.send_to(&[0u8], sender).await;
                }
                Some(Err(error)) => {
                    let (wait, log) = errors.failed(Instant::now());
                    if let Some(failures) = log {
                        tracing::warn!(input = %input.plan.name, %error, failures, "heartbeat receive failed");
                    }
                    futures_lite::future::or(glommio::timer::sleep(wait), shard.stop.wait()).await;
                }
            }
        }
    };
    PluginTask::quiet(plugin, answer).await;
}

/// Accepts connections through TcpInput's accept loop (the connection limit, failed accepts
/// and their logs are the same), serving each with [`Connection::run`].
async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    listener: gyges_sys::socket::Listener,
    kind: Rc<FluentForwardInputKind>,
) {
    let plugin = failure::register_plugin(&input.plan.name);
    let broken_log = Rc::new(std::cell::RefCell::new(LogLimit::new(LOG_INTERVAL)));
    let max_connections = kind.max_connections;
    let serve_one = move |shard: Rc<Shard>, input: Rc<InputContext>, stream| {
        let (kind, broken_log) = (kind.clone(), broken_log.clone());
        async move {
            let mut connection = Connection::new(&shard, &input, &kind, stream);
            let ended = connection.run(plugin).await;
            if let Err(reason) = ended {
                if let Some(count) = broken_log.borrow_mut().note(Instant::now()) {
                    tracing::warn!(input = %input.plan.name, peer = %connection.peer, reason, count, "closing a fluent forward connection");
                }
            }
            let _ = connection.stream.shutdown(std::net::Shutdown::Both).await;
        }
    };
    let accept = super::tcp::accept_loop(shard, input, listener, max_connections, serve_one);
    PluginTask::quiet(plugin, accept).await;
}

/// Bytes of answers a connection holds while its settle interval runs; past it the
/// connection waits for the interval instead of reading on.
const REPLY_BYTES_MAX: usize = 64 * 1024;

/// What ended a connection's wait.
enum Event {
    /// The read finished.
    Read(std::io::Result<usize>),
    /// Acks are waiting and the settle interval is over.
    AckDue,
    /// The core is stopping.
    Stopped,
}

/// Where a connection's handshake stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// HELO sent with this nonce: only a PING may come.
    AwaitingPing([u8; NONCE_BYTES]),
    /// Events may come.
    Transport,
}

/// One accepted connection: its buffer, where the frame being read starts, and its replies.
struct Connection<'s> {
    shard: &'s Shard,
    input: &'s InputContext,
    kind: &'s FluentForwardInputKind,
    stream: TcpStream,
    peer: String,
    buffer: Vec<u8>,
    /// Bytes read into `buffer`.
    filled: usize,
    /// Where the next frame starts in `buffer`.
    start: usize,
    scan: Scan,
    frames: FrameBuffers,
    /// Answers to send: PONGs and acks.
    reply: Vec<u8>,
    /// `reply` holds acks: settle before sending it.
    acks: u64,
    phase: Phase,
    last_settle: Option<Instant>,
}

impl<'s> Connection<'s> {
    fn new(
        shard: &'s Shard,
        input: &'s InputContext,
        kind: &'s FluentForwardInputKind,
        stream: TcpStream,
    ) -> Connection<'s> {
        let peer = stream
            .peer_addr()
            .map(|address| address.ip().to_canonical().to_string())
            .unwrap_or_default();
        if let Some(idle) = kind.keep_alive {
            let _ = gyges_sys::socket::set_keepalive(&stream, Some(idle));
        }
        Connection {
            shard,
            input,
            kind,
            stream,
            peer,
            buffer: vec![0u8; shard.read_buffer_bytes],
            filled: 0,
            start: 0,
            scan: Scan::new(),
            frames: FrameBuffers::new(input.max_message_size),
            reply: Vec::new(),
            acks: 0,
            phase: Phase::Transport,
            last_settle: None,
        }
    }

    fn count(&self, metric: Metric, value: u64) {
        if value > 0 {
            let shard = self.shard;
            shard
                .telemetry
                .add(shard.core, self.input.plugin, metric, value);
        }
    }

    /// Reads and answers until the peer closes or the core stops. An error says why the
    /// connection had to be closed.
    async fn run(&mut self, plugin: PluginId) -> Result<(), &'static str> {
        if self.kind.shared_key.is_some() {
            let mut nonce = [0u8; NONCE_BYTES];
            nonce.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
            handshake::helo(&nonce, &mut self.reply);
            self.phase = Phase::AwaitingPing(nonce);
            self.send_reply().await.map_err(|_| "write failed")?;
        }
        let mut first_read = true;
        while !self.shard.stop.is_stopping() {
            self.make_room()?;
            let asked = self.buffer.len() - self.filled;
            let count = match self.read_or_ack_due().await {
                Event::Stopped | Event::Read(Ok(0) | Err(_)) => break,
                Event::Read(Ok(count)) => count,
                Event::AckDue => {
                    self.answer(true).await.map_err(|_| "write failed")?;
                    continue;
                }
            };
            if first_read {
                first_read = false;
                failure::fault_point(plugin);
            }
            self.filled += count;
            self.count(Metric::BytesRead, count as u64);
            let cut = self.cut_frames();
            // Answer what was read before the error too (a PONG refusal, acks); acks wait for
            // the settle interval unless the connection is closing.
            self.answer(cut.is_err())
                .await
                .map_err(|_| "write failed")?;
            cut?;
            if count < asked {
                // The socket had no more (see `Shard::ship_idle`).
                self.shard.ship_idle().await;
            } else {
                self.shard.ship_full().await;
            }
            glommio::yield_if_needed().await;
        }
        if self.filled > self.start {
            self.count(Metric::DiscardedBytes, (self.filled - self.start) as u64);
        }
        // Chunks read before the end are acknowledged (the peer may still read).
        let _ = self.answer(true).await;
        Ok(())
    }

    /// Reads more, unless the core stops or acks are waiting and their settle is due.
    async fn read_or_ack_due(&mut self) -> Event {
        let due = (self.acks > 0).then(|| ack::settle_wait(self.last_settle, Instant::now()));
        let spare = &mut self.buffer[self.filled..];
        let stop = &self.shard.stop;
        let stream = &mut self.stream;
        let read = async { Event::Read(stream.read(spare).await) };
        let other = async {
            match due {
                Some(wait) => {
                    futures_lite::future::or(
                        async {
                            glommio::timer::sleep(wait).await;
                            Event::AckDue
                        },
                        async {
                            stop.wait().await;
                            Event::Stopped
                        },
                    )
                    .await
                }
                None => {
                    stop.wait().await;
                    Event::Stopped
                }
            }
        };
        futures_lite::future::or(read, other).await
    }

    /// Makes room to read: moves a partial frame to the front, or grows the buffer up to
    /// `max_frame_size` (plus one read) while a large frame arrives; shrinks it back once idle.
    fn make_room(&mut self) -> Result<(), &'static str> {
        let base = self.shard.read_buffer_bytes;
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
            if self.buffer.len() > 4 * base {
                self.buffer = vec![0u8; base];
            }
            return Ok(());
        }
        if self.filled < self.buffer.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
            return Ok(());
        }
        let limit = self.kind.frame_bytes_max + base;
        if self.buffer.len() >= limit {
            self.count(Metric::OversizeRecords, 1);
            return Err("a frame is larger than max_frame_size");
        }
        let grown = (self.buffer.len() * 2).min(limit);
        self.buffer.resize(grown, 0);
        Ok(())
    }

    /// Routes every whole frame in the buffer, noting what to answer.
    fn cut_frames(&mut self) -> Result<(), &'static str> {
        let shard = self.shard;
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        let mut totals = FrameCounts::default();
        let result = loop {
            let pending = &self.buffer[self.start..self.filled];
            let length = match self.scan.resume(pending) {
                Ok(length) => length,
                Err(PackError::Incomplete) => break Ok(()),
                Err(PackError::Malformed) => {
                    totals.malformed += 1;
                    break Err("the stream is not msgpack");
                }
            };
            let frame = &self.buffer[self.start..self.start + length];
            self.start += length;
            self.scan = Scan::new();
            if let Phase::AwaitingPing(nonce) = self.phase {
                let key = self.kind.shared_key.as_deref().unwrap_or_default();
                let hostname = &self.kind.self_hostname;
                match handshake::answer_ping(frame, (&nonce, key, hostname), &mut self.reply) {
                    Ping::Accepted => self.phase = Phase::Transport,
                    Ping::Refused(reason) => {
                        shard
                            .telemetry
                            .add(shard.core, self.input.plugin, Metric::AuthFailures, 1);
                        break Err(reason);
                    }
                }
                continue;
            }
            let mut route = |message: &[u8]| {
                router.route(&MessageView::Proto(ProtoView::new(message)));
            };
            let (option, counts) = read_frame(
                frame,
                self.peer.as_bytes(),
                &mut self.frames,
                &mut uuids,
                &mut route,
            );
            if let Some(chunk) = option.chunk {
                msgpack::put_map(&mut self.reply, 1);
                msgpack::put_str(&mut self.reply, b"ack");
                msgpack::put_str(&mut self.reply, chunk);
                self.acks += 1;
            }
            totals.events += counts.events;
            totals.malformed += counts.malformed;
            totals.oversize += counts.oversize;
            totals.reason = totals.reason.or(counts.reason);
        };
        drop((router, uuids));
        self.count(Metric::Records, totals.events);
        self.count(Metric::DecodeFailures, totals.malformed);
        self.count(Metric::OversizeRecords, totals.oversize);
        if let Some(reason) = totals.reason {
            if self.input.plan.log_decode_failures {
                tracing::debug!(input = %self.input.plan.name, reason, "malformed fluent event");
            }
        }
        if self.scan.walked() > self.kind.frame_bytes_max {
            self.count(Metric::OversizeRecords, 1);
            return Err("a frame is larger than max_frame_size");
        }
        result
    }

    /// Sends the PONG and acks noted; acks only after the core has settled (everything read
    /// before them shipped and appended), at most [`ack::SETTLE_INTERVAL_MIN`] apart.
    async fn answer(&mut self, force: bool) -> std::io::Result<()> {
        if self.reply.is_empty() {
            return Ok(());
        }
        if self.acks > 0 {
            let wait = ack::settle_wait(self.last_settle, Instant::now());
            if !wait.is_zero() {
                // Not yet: keep reading, and answer when the interval is over (the read loop
                // races its read with that), unless the answers pile up or the connection is
                // closing; then wait out the interval here, reading nothing meanwhile.
                if !force && self.reply.len() < REPLY_BYTES_MAX {
                    return Ok(());
                }
                futures_lite::future::or(glommio::timer::sleep(wait), self.shard.stop.wait()).await;
            }
            self.last_settle = Some(Instant::now());
            self.shard.settle().await;
            self.count(Metric::Acks, self.acks);
            self.acks = 0;
        }
        self.send_reply().await
    }

    async fn send_reply(&mut self) -> std::io::Result<()> {
        let written = self.stream.write_all(&self.reply).await;
        self.reply.clear();
        written
    }
}

#[cfg(test)]
mod tests;
