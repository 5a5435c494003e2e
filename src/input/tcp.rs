//! TcpInput: one SO_REUSEPORT listener per ingest core; each accepted connection is read,
//! split, decoded and routed on that core.
//!
//! A connection past `max_connections` is closed at once and counted
//! (`refused_connections_total`); failed accepts are counted (`errors_total`). Both are
//! logged at most once per [`LOG_INTERVAL`], with the count since the last line, so a peer
//! connecting in a loop cannot flood the log. Acknowledgement requests are answered as
//! `docs/ack.md` says: a mark only after a hello, and at most
//! [`crate::limits::ACK_SETTLES_PER_SECOND_MAX`] settles a second per connection.
//!
//! The listener and every connection run as this input's [`PluginTask`]s, so a panic names
//! the input; the test-only fault hook fires on a connection's first read.
//!
//! With `use_tls`, each accepted connection first completes a TLS handshake (at most
//! [`crate::limits::TLS_HANDSHAKE_TIMEOUT`]) on its own task, then is read through
//! [`crate::tls::TlsStream`] exactly as a plain one. A failed handshake (a client refused by
//! `client_auth`, a client speaking plain TCP, a timeout) closes the connection and is counted
//! (`tls_handshake_failures_total`) and logged at most once per [`LOG_INTERVAL`].

use std::net::SocketAddr;
use std::rc::Rc;

use glommio::net::TcpStream;
use gyges_sys::socket::Listener;

use std::time::{Duration, Instant};

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::message::{ack, now_ns};
use crate::runtime::failure::{self, PluginId, PluginTask};
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::Metric;
use crate::tls::{TlsStream, Transport};

/// A TcpInput's connection options, as every connection task gets them.
#[derive(Clone)]
pub struct ConnectionOptions {
    /// Connections one core keeps open at once.
    pub max_connections: usize,
    /// The keep-alive idle time, when keep-alive is on.
    pub keep_alive: Option<std::time::Duration>,
    /// The TLS server config, with `use_tls`.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// How long the listener waits after a failed accept (a full descriptor table, say) before
/// accepting again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Binds the input's address on this core.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn bind(address: SocketAddr, receive_buffer: Option<usize>) -> std::io::Result<Listener> {
    gyges_sys::socket::tcp_listener(address, receive_buffer)
}

/// Accepts connections until the core stops, serving each on its own task.
pub async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    listener: Listener,
    options: ConnectionOptions,
) {
    let plugin = failure::register_plugin(&input.plan.name);
    let handshake_log = Rc::new(std::cell::RefCell::new(LogLimit::new(LOG_INTERVAL)));
    let max_connections = options.max_connections;
    let connection = move |shard: Rc<Shard>, input: Rc<InputContext>, stream: TcpStream| {
        let (options, handshake_log) = (options.clone(), handshake_log.clone());
        async move {
            if let Some(idle) = options.keep_alive {
                let _ = gyges_sys::socket::set_keepalive(&stream, Some(idle));
            }
            let transport = match &options.tls {
                None => Some(Transport::Plain(stream)),
                Some(config) => accept_tls(&shard, &input, stream, config, &handshake_log).await,
            };
            if let Some(transport) = transport {
                read_connection(&shard, &input, transport, plugin).await;
            }
        }
    };
    let accept = accept_loop(shard, input, listener, max_connections, connection);
    PluginTask::quiet(plugin, accept).await;
}

/// Accepts connections on this core's `listener` until the core stops, and serves each on its
/// own task (one of the input's [`PluginTask`]s) with `connection`. Past `max_connections`
/// open at once, a new connection is closed at once and counted; failed accepts are counted
/// and retried. Both are logged at most once per [`LOG_INTERVAL`]. Every stream input that
/// speaks over TCP (TcpInput, HttpListenInput) accepts through this.
pub async fn accept_loop<F, C>(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    listener: Listener,
    max_connections: usize,
    connection: C,
) where
    C: Fn(Rc<Shard>, Rc<InputContext>, TcpStream) -> F + 'static,
    F: std::future::Future<Output = ()> + 'static,
{
    let plugin = failure::register_plugin(&input.plan.name);
    let open = Rc::new(std::cell::Cell::new(0usize));
    let mut refused_log = LogLimit::new(LOG_INTERVAL);
    let mut failed_log = LogLimit::new(LOG_INTERVAL);
    while !shard.stop.is_stopping() {
        let accepted =
            futures_lite::future::or(async { Some(listener.listener.accept().await) }, async {
                shard.stop.wait().await;
                None
            })
            .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                shard
                    .telemetry
                    .add(shard.core, input.plugin, Metric::Errors, 1);
                if let Some(failures) = failed_log.note(Instant::now()) {
                    tracing::warn!(input = %input.plan.name, %error, failures, "accept failed");
                }
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if open.get() >= max_connections {
            drop(stream);
            shard
                .telemetry
                .add(shard.core, input.plugin, Metric::RefusedConnections, 1);
            if let Some(refused) = refused_log.note(Instant::now()) {
                tracing::warn!(input = %input.plan.name, max_connections, refused, "connection limit reached; closing");
            }
            continue;
        }
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::Connections, 1);
        open.set(open.get() + 1);
        let guard = shard.connection_opened();
        let served = connection(shard.clone(), input.clone(), stream);
        let open = open.clone();
        let connection = async move {
            served.await;
            open.set(open.get() - 1);
            drop(guard);
        };
        glommio::spawn_local(PluginTask::quiet(plugin, connection)).detach();
    }
    // Leave the SO_REUSEPORT group now, so new connections go to whoever still listens.
    listener.stop();
}

/// Runs the TLS handshake of an accepted connection. A failure is counted and logged (rate
/// limited), and the connection closed; a peer that closes without sending a byte (a port
/// probe, a load balancer's health check) is closed quietly.
async fn accept_tls(
    shard: &Shard,
    input: &InputContext,
    stream: TcpStream,
    config: &std::sync::Arc<rustls::ServerConfig>,
    log: &std::cell::RefCell<LogLimit>,
) -> Option<Transport> {
    let peer = stream.peer_addr().ok().map(super::canonical);
    let handshake = match rustls::ServerConnection::new(config.clone()) {
        Ok(connection) => {
            let mut tls = TlsStream::new(stream, connection.into());
            let timeout = crate::limits::TLS_HANDSHAKE_TIMEOUT;
            let done =
                futures_lite::future::or(async { Some(tls.handshake(timeout).await) }, async {
                    shard.stop.wait().await;
                    None
                })
                .await?;
            match done {
                Ok(()) => Ok(tls),
                Err(error)
                    if error.kind() == std::io::ErrorKind::UnexpectedEof
                        && tls.received_nothing() =>
                {
                    return None
                }
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(std::io::Error::other(error)),
    };
    match handshake {
        Ok(tls) => Some(Transport::Tls(Box::new(tls))),
        Err(error) => {
            shard
                .telemetry
                .add(shard.core, input.plugin, Metric::TlsHandshakeFailures, 1);
            if let Some(failures) = log.borrow_mut().note(Instant::now()) {
                tracing::warn!(input = %input.plan.name, peer = ?peer, %error, failures,
                    "TLS handshake failed; connection closed");
            }
            None
        }
    }
}

async fn read_connection(
    shard: &Shard,
    input: &InputContext,
    mut stream: Transport,
    plugin: PluginId,
) {
    let peer = stream
        .tcp()
        .peer_addr()
        .map(|address| super::canonical(address).to_string())
        .unwrap_or_default();
    let meta = input.line_meta(peer);
    let Some((mut splitter, mut buffer)) = input.stream_parts(shard.read_buffer_bytes) else {
        return;
    };
    let mut last_settle = None;
    let mut first_read = true;
    while !shard.stop.is_stopping() {
        let (read, asked) = {
            let spare = buffer.spare_mut();
            let asked = spare.len();
            let read = futures_lite::future::or(async { Some(stream.read(spare).await) }, async {
                shard.stop.wait().await;
                None
            })
            .await;
            (read, asked)
        };
        let count = match read {
            None | Some(Ok(0)) => break,
            Some(Ok(count)) => count,
            Some(Err(error)) => {
                tracing::debug!(input = %input.plan.name, %error, "connection read failed");
                break;
            }
        };
        if first_read {
            first_read = false;
            failure::fault_point(plugin);
        }
        buffer.commit(count);
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::BytesRead, count as u64);
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            let now = now_ns();
            let signers = router.wants_signers();
            while let Some(record) = buffer.next_record(&mut splitter) {
                if signers {
                    router.set_signer(record.signer.and_then(|id| splitter.signer_name(id)));
                }
                deliver_record(
                    record.bytes,
                    input,
                    &meta,
                    now,
                    &mut uuids,
                    &mut router,
                    &shard.telemetry,
                    shard.core,
                );
            }
            if signers {
                // What other inputs on this core route next is not this record's.
                router.set_signer(None);
            }
        }
        publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
        if let Some(requests) = splitter.take_requests() {
            let answered = answer(shard, input, &mut stream, requests, &mut last_settle).await;
            if let Err(error) = answered {
                tracing::debug!(input = %input.plan.name, %error, "acknowledgement failed");
                break;
            }
        }
        if count < asked {
            // The socket had no more: what waits in a partly filled batch need not.
            shard.ship_idle().await;
        } else {
            shard.ship_full().await;
        }
        glommio::yield_if_needed().await;
    }
    // The stream ended: a final record without its delimiter is delivered or counted as
    // discarded, as the splitter is configured.
    if let Some(record) = buffer.finish(&mut splitter) {
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        let (telemetry, core) = (&shard.telemetry, shard.core);
        deliver_record(
            record.bytes,
            input,
            &meta,
            now_ns(),
            &mut uuids,
            &mut router,
            telemetry,
            core,
        );
    }
    publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
    // Say goodbye now. Left to the descriptor's last reference, the FIN can leave after this
    // process has exited (io_uring releases its file references late), and a sender that
    // checks for a closed peer before writing would write into a dead connection meanwhile.
    stream.shutdown().await;
}

/// Answers an acknowledging sender (`docs/ack.md`): a hello gets a welcome; a mark (after a
/// hello) gets its ack once everything read before it has been shipped and, for durable
/// routes, appended to this core's queues. Settles on one connection are spaced by
/// [`ack::SETTLE_INTERVAL_MIN`]: a mark that comes sooner waits (and the connection with it,
/// so a peer flooding marks is read no faster). Marks before a hello are only counted.
async fn answer(
    shard: &Shard,
    input: &InputContext,
    stream: &mut Transport,
    requests: ack::Requests,
    last_settle: &mut Option<Instant>,
) -> std::io::Result<()> {
    if requests.marks_ignored > 0 {
        let ignored = requests.marks_ignored;
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::MarksIgnored, ignored);
    }
    let mut reply = Vec::with_capacity(2 * ack::CONTROL_BYTES_MAX);
    if requests.hello.is_some() {
        ack::Control::Welcome {
            version: ack::VERSION,
        }
        .encode(&mut reply);
    }
    if let Some(seq) = requests.mark {
        let wait = ack::settle_wait(*last_settle, Instant::now());
        if !wait.is_zero() {
            futures_lite::future::or(glommio::timer::sleep(wait), shard.stop.wait()).await;
        }
        *last_settle = Some(Instant::now());
        shard.settle().await;
        ack::Control::Ack { seq }.encode(&mut reply);
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::Acks, 1);
    }
    stream.write_all(&reply).await
}

/// `TcpInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]): it
/// listens for TCP connections on every ingest core.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpInput {
    /// `host:port` to listen on.
    pub address: String,
    /// Serve TLS (default false), with the `[name.tls]` options.
    pub use_tls: Option<bool>,
    /// `[name.tls]`: the certificate, key, client verification and versions (`use_tls`).
    pub tls: Option<crate::tls::RawTls>,
    /// Turn on TCP keep-alive on accepted connections (default false).
    pub keep_alive: Option<bool>,
    /// Seconds.
    pub keep_alive_period: Option<u64>,
    /// Connections accepted per core at once (default 1024).
    pub max_connections: Option<u64>,
}

/// TcpInput, planned: where it listens and how it treats connections.
#[derive(Debug, Clone)]
pub struct TcpInputKind {
    /// The resolved `address` every ingest core binds with SO_REUSEPORT.
    pub address: std::net::SocketAddr,
    /// Connections one core keeps open at once (`max_connections`); one more is closed at once
    /// and counted as refused.
    pub max_connections: usize,
    /// The keep-alive idle time of accepted connections (`keep_alive_period`); `None` when
    /// `keep_alive` is off.
    pub keep_alive: Option<std::time::Duration>,
    /// The TLS config every core's connections share (`use_tls`); `None` serves plain TCP.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["TcpInput"],
        plan: plan_tcp_input,
    };

fn plan_tcp_input(
    section: &crate::config::Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<crate::config::plan::InputPlan, crate::config::ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawTcpInput = own.parse()?;
    let max_connections = max_connections(section, raw.max_connections)?;
    let tls = server_tls(section, raw.use_tls, raw.tls.as_ref())?;
    let keep_alive = keep_alive(section, raw.keep_alive, raw.keep_alive_period)?;
    let kind = TcpInputKind {
        address: section.address("address", &raw.address)?,
        max_connections,
        keep_alive,
        tls,
    };
    let common = common.with_defaults("HekaFramingSplitter", &["tcp", "tcp4", "tcp6"]);
    super::plan::input_plan(section, context, common, std::sync::Arc::new(kind))
}

/// The TLS server config of `use_tls` and `[name.tls]`; `None` without `use_tls` (a `[name.tls]`
/// table alone is ignored, with a warning).
///
/// # Errors
/// As [`crate::tls::server`]: a missing or mismatched certificate or key, a bad option.
pub fn server_tls(
    section: &crate::config::Section,
    use_tls: Option<bool>,
    tls: Option<&crate::tls::RawTls>,
) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, crate::config::ConfigError> {
    match (use_tls == Some(true), tls) {
        (true, tls) => Ok(Some(crate::tls::server(
            section,
            tls.unwrap_or(&Default::default()),
        )?)),
        (false, Some(_)) => {
            tracing::warn!(section = %section.name, "[{}.tls] is ignored: use_tls is not true", section.name);
            Ok(None)
        }
        (false, None) => Ok(None),
    }
}

/// `max_connections` (connections one core keeps open at once, default
/// [`crate::limits::CONNECTIONS_PER_CORE_DEFAULT`]), bounded.
///
/// # Errors
/// 0, or above [`crate::limits::CONNECTIONS_PER_CORE_MAX`].
pub fn max_connections(
    section: &crate::config::Section,
    max_connections: Option<u64>,
) -> Result<usize, crate::config::ConfigError> {
    use crate::limits::{CONNECTIONS_PER_CORE_DEFAULT, CONNECTIONS_PER_CORE_MAX};
    let count = max_connections.unwrap_or(CONNECTIONS_PER_CORE_DEFAULT as u64);
    if count == 0 || count > CONNECTIONS_PER_CORE_MAX as u64 {
        let message = format!("{count} is outside 1..={CONNECTIONS_PER_CORE_MAX}");
        return Err(section.error(Some("max_connections"), message));
    }
    Ok(count as usize)
}

/// `keep_alive` and `keep_alive_period` (seconds, Heka's default 7200), bounded.
///
/// # Errors
/// A period of 0 or above [`crate::limits::KEEP_ALIVE_SECONDS_MAX`].
pub fn keep_alive(
    section: &crate::config::Section,
    enabled: Option<bool>,
    period: Option<u64>,
) -> Result<Option<std::time::Duration>, crate::config::ConfigError> {
    use crate::limits::{KEEP_ALIVE_SECONDS_DEFAULT, KEEP_ALIVE_SECONDS_MAX};
    let seconds = period.unwrap_or(KEEP_ALIVE_SECONDS_DEFAULT);
    if !(1..=KEEP_ALIVE_SECONDS_MAX).contains(&seconds) {
        let message = format!("{seconds} is outside 1..={KEEP_ALIVE_SECONDS_MAX} seconds");
        return Err(section.error(Some("keep_alive_period"), message));
    }
    Ok((enabled == Some(true)).then(|| std::time::Duration::from_secs(seconds)))
}

impl super::InputKind for TcpInputKind {
    fn type_name(&self) -> &'static str {
        "TcpInput"
    }

    fn describe(&self) -> String {
        let tls = if self.tls.is_some() { " (TLS)" } else { "" };
        format!("tcp {}{tls}", self.address)
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        let listener = bind(self.address, receive_buffer)?;
        let options = ConnectionOptions {
            max_connections: self.max_connections,
            keep_alive: self.keep_alive,
            tls: self.tls.clone(),
        };
        glommio::spawn_local(serve(shard.clone(), input, listener, options)).detach();
        Ok(())
    }
}
