//! The operator's HTTP endpoint (`[gyges] http_address`): `/metrics` (Prometheus text),
//! `/health` (live and ready, as JSON), `/report` (Heka's all-report JSON), and the dashboard
//! page with the JSON it polls ([`super::dashboard`]).
//!
//! It runs on threads of its own, outside the cores' executors: one thread accepts, and each
//! connection gets a short-lived thread that reads one request, answers it and closes. The
//! cores never wait for it and it takes no lock they take: it reads the per-core counter rows
//! (each written by its own core) and the disk queues' published positions. With a tuning
//! profile that leaves cores without the `ingest` role, its threads are confined to those
//! cores; otherwise the kernel schedules them, and on a one-core plan they share the core by
//! preemption (a scrape costs tens of microseconds; `docs/architecture.md` says why threads
//! and not a task on an executor).
//!
//! Bounds (`crate::limits`): [`OPS_CONNECTIONS_MAX`] connections at once (one more is answered
//! 503 and closed); a request head within `HTTP_HEAD_BYTES_MAX` bytes and `HTTP_HEADERS_MAX`
//! lines (past either: 431; malformed: 400; the parser is HttpListenInput's); the whole
//! request within [`OPS_REQUEST_TIMEOUT`] (else 408). One request per connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::dashboard::{self, Board};
use super::exposition::{self, Catalog, QueueSample};
use super::Telemetry;
use crate::input::http::parse::{self, Method};
use crate::limits::{
    HTTP_HEAD_BYTES_MAX, HTTP_LINGER_BYTES_MAX, OPS_CONNECTIONS_MAX, OPS_REQUEST_TIMEOUT,
    OPS_THREAD_STACK_BYTES,
};
use crate::queue::HandleBoard;

/// What the endpoint reads: the counters, the plugins, the queues, and the daemon's state.
#[derive(Debug)]
pub struct EndpointState {
    telemetry: Arc<Telemetry>,
    catalog: Catalog,
    /// Set once every input is bound; cleared when the daemon starts stopping.
    ready: AtomicBool,
    /// The durable outputs' and filters' queue boards, known once the cores have started.
    queues: OnceLock<Vec<(usize, Arc<HandleBoard>)>>,
    started: Instant,
    /// Connections being served now.
    connections: AtomicUsize,
    /// DashboardOutput's graphs, when the plan has one.
    board: Option<Arc<Board>>,
}

impl EndpointState {
    /// The state of a daemon that is starting (not ready); `board` is DashboardOutput's, if
    /// the plan has one.
    pub fn new(
        telemetry: Arc<Telemetry>,
        catalog: Catalog,
        board: Option<Arc<Board>>,
    ) -> Arc<EndpointState> {
        Arc::new(EndpointState {
            telemetry,
            catalog,
            board,
            ready: AtomicBool::new(false),
            queues: OnceLock::new(),
            started: Instant::now(),
            connections: AtomicUsize::new(0),
        })
    }

    /// Marks the daemon ready (every input bound) or not (stopping).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Gives the endpoint the queue boards, once the cores have started (a second call is
    /// ignored).
    pub fn set_queues(&self, queues: Vec<(usize, Arc<HandleBoard>)>) {
        let _ = self.queues.set(queues);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Every core's queue of every durable plugin, as of now.
    fn queue_samples(&self) -> Vec<QueueSample> {
        let Some(boards) = self.queues.get() else {
            return Vec::new();
        };
        let mut samples = Vec::new();
        for (plugin, board) in boards {
            for row in 0..self.catalog.cores.len() {
                if let Some(handle) = board.get(row) {
                    let lag = handle.lag();
                    samples.push(QueueSample {
                        plugin: *plugin,
                        row,
                        retained_bytes: lag.retained_bytes,
                        consumers: lag.consumers,
                    });
                }
            }
        }
        samples
    }
}

/// Binds `address` and starts serving on threads of its own, confined to `cpus` when not
/// empty. Returns the bound address (the port, when `address` asked for port 0).
///
/// # Errors
/// The address cannot be bound, or the thread cannot be started.
pub fn start(
    address: SocketAddr,
    state: Arc<EndpointState>,
    cpus: Vec<usize>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("gyges-http".into())
        .stack_size(OPS_THREAD_STACK_BYTES)
        .spawn(move || {
            if !cpus.is_empty() {
                if let Err(error) = gyges_sys::thread::set_current_affinity(&cpus) {
                    tracing::warn!(%error, ?cpus, "http endpoint: cannot confine its threads");
                }
            }
            accept_loop(&listener, &state);
        })?;
    Ok(bound)
}

/// Accepts forever (the process ends it), handing each connection to a thread of its own
/// while fewer than [`OPS_CONNECTIONS_MAX`] are being served.
fn accept_loop(listener: &TcpListener, state: &Arc<EndpointState>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::debug!(%error, "http endpoint: accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let accepted = Instant::now();
        if state.connections.fetch_add(1, Ordering::AcqRel) >= OPS_CONNECTIONS_MAX {
            state.connections.fetch_sub(1, Ordering::AcqRel);
            // The answer is small enough for the socket's buffer: this does not block.
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let body = "too many connections\n";
            let _ = answer(&stream, 503, "text/plain; charset=utf-8", body, false);
            continue;
        }
        let guard = ConnectionGuard(state.clone());
        let spawned = std::thread::Builder::new()
            .name("gyges-http-conn".into())
            .stack_size(OPS_THREAD_STACK_BYTES)
            .spawn(move || {
                serve(&stream, &guard.0, accepted + OPS_REQUEST_TIMEOUT);
            });
        if let Err(error) = spawned {
            // The guard went with the closure and was dropped: the count is already right.
            tracing::warn!(%error, "http endpoint: cannot start a connection thread");
        }
    }
}

/// Counts a connection as served until dropped.
struct ConnectionGuard(Arc<EndpointState>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What reading a request head came to.
enum HeadRead {
    /// A head was read: its method and path.
    Request(Method, String),
    /// It was refused: status code and reason.
    Refused(u16, &'static str),
    /// The client closed, or the read failed: nothing to answer.
    Gone,
}

/// Serves one request on `stream` and closes it, all before `deadline`.
fn serve(stream: &TcpStream, state: &EndpointState, deadline: Instant) {
    let request = read_request(stream, deadline);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(remaining.max(Duration::from_millis(1))));
    let text = "text/plain; charset=utf-8";
    match request {
        HeadRead::Gone => {}
        HeadRead::Refused(code, reason) => {
            let _ = answer(stream, code, text, &format!("{reason}\n"), false);
            linger(stream, deadline);
        }
        HeadRead::Request(method, path) => {
            let head_only = method == Method::Head;
            if !matches!(method, Method::Get | Method::Head) {
                let _ = answer(stream, 405, text, "use GET or HEAD\n", false);
                return;
            }
            let (code, content_type, body) = route(state, &path);
            let _ = answer(stream, code, content_type, &body, head_only);
        }
    }
}

/// Reads one request head, within [`HTTP_HEAD_BYTES_MAX`] bytes and before `deadline`.
fn read_request(mut stream: &TcpStream, deadline: Instant) -> HeadRead {
    let mut head = vec![0u8; HTTP_HEAD_BYTES_MAX];
    let mut filled = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return HeadRead::Refused(408, "request timeout");
        }
        if stream.set_read_timeout(Some(remaining)).is_err() {
            return HeadRead::Gone;
        }
        match stream.read(&mut head[filled..]) {
            Ok(0) => return HeadRead::Gone,
            Ok(count) => filled += count,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return HeadRead::Refused(408, "request timeout")
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return HeadRead::Gone,
        }
        match parse::parse_target(&head[..filled]) {
            Ok(Some(target)) => return HeadRead::Request(target.method, target.path.to_string()),
            // A full buffer is always refused by the parser, so this loop always ends.
            Ok(None) => {}
            Err(refusal) => return HeadRead::Refused(refusal.status.code(), refusal.reason),
        }
    }
}

/// The answer to a GET of `path`: status, content type and body.
fn route(state: &EndpointState, path: &str) -> (u16, &'static str, String) {
    match path {
        "/metrics" => {
            let queues = state.queue_samples();
            let body =
                exposition::prometheus(&state.telemetry, &state.catalog, &queues, state.is_ready());
            (200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        "/report" => {
            let queues = state.queue_samples();
            let body = exposition::report(&state.telemetry, &state.catalog, &queues);
            (200, "application/json", body)
        }
        "/health" => {
            let ready = state.is_ready();
            let body = serde_json::json!({
                "live": true,
                "ready": ready,
                "uptime_seconds": state.started.elapsed().as_secs(),
            });
            let code = if ready { 200 } else { 503 };
            (code, "application/json", format!("{body}\n"))
        }
        "/" | "/dashboard" => (200, "text/html; charset=utf-8", dashboard::PAGE_HTML.into()),
        "/dashboard.js" => (
            200,
            "text/javascript; charset=utf-8",
            dashboard::PAGE_JS.into(),
        ),
        "/dashboard.css" => (200, "text/css; charset=utf-8", dashboard::PAGE_CSS.into()),
        "/plugins.json" => {
            let queues = state.queue_samples();
            let body = dashboard::plugins_json(&state.telemetry, &state.catalog, &queues);
            (200, "application/json", body)
        }
        "/graphs.json" => (
            200,
            "application/json",
            dashboard::graphs_json(state.board.as_deref()),
        ),
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: try /dashboard, /metrics, /health or /report\n".into(),
        ),
    }
}

/// Writes a whole answer, with `Connection: close`; the body is left out for HEAD.
fn answer(
    mut stream: &TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// After an error answer, reads and throws away what the client still sends (at most
/// `HTTP_LINGER_BYTES_MAX`, until `deadline`), so it reads the answer rather than a reset.
fn linger(mut stream: &TcpStream, deadline: Instant) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < HTTP_LINGER_BYTES_MAX {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(count) => drained += count,
        }
    }
}
