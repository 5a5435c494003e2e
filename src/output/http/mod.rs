//! HttpOutput, and the delivery it shares with ElasticSearchOutput (`docs/http_output.md`,
//! `docs/elasticsearch.md`): messages are encoded into batches, and a batch is sent as the
//! body of one request (the encodings concatenated), one connection per core ([`client`]).
//!
//! Inside gyges the encodings travel in Heka frames (as FluentForwardOutput's do), so every
//! batch and every disk-queue read can be cut back into its messages: the body is their
//! concatenation, and a request can be answered per message ([`Judge::Bulk`], Elasticsearch's
//! `_bulk` items).
//!
//! Each attempt sends the messages of a batch still pending, at most
//! `max_messages_per_request` of them (0: all), and the answer settles each one:
//! - [`Judge::Status`] (HttpOutput): a 2xx delivers every message of the request; anything
//!   else, a timeout or a lost connection leaves them all pending;
//! - [`Judge::Bulk`] (ElasticSearchOutput, `super::elasticsearch`): a 2xx is read item by
//!   item: a 2xx item is delivered, 429 and 5xx stay pending, any other item is rejected for
//!   good (counted in `rejected_total`, logged rate-limited); a non-2xx answer leaves all
//!   pending.
//!
//! Pending messages are sent again after a backoff ([`HTTP_RETRY_DELAY_MIN`] doubling to
//! [`HTTP_RETRY_DELAY_MAX`], counted in `retries_total`), except with `best_effort`, which
//! drops them (`dropped_total`). Delivery classes:
//! - `memory`: the batches wait in a per-core queue of `buffer_size` bytes; a full queue
//!   makes the core wait (backpressure), while the server is down or slow alike. At stop, the
//!   queue is delivered for [`DRAIN_TIMEOUT`]; what is left is dropped and counted.
//! - `best_effort`: a batch that does not fit the queue, or whose attempt failed, is dropped
//!   and counted; the core never waits.
//! - `durable`: each core's disk-queue consumer offers its reads to a [`HttpDeliver`]; a read
//!   is committed only when every one of its messages is delivered or rejected, so a read
//!   split over several requests, or with items to retry, stays uncommitted (and is sent
//!   again after a kill -9) until all of it is settled.

pub mod client;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use self::client::{Client, ClientPlan, Method, Response, Url};
use super::{Batch, FlushPolicy, Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{
    DRAIN_TIMEOUT, HTTP_CONNECT_TIMEOUT_MS_DEFAULT, HTTP_CONNECT_TIMEOUT_MS_MAX,
    HTTP_OUTPUT_HEADERS_MAX, HTTP_OUTPUT_HEADER_BYTES_MAX, HTTP_RETRY_DELAY_MAX,
    HTTP_RETRY_DELAY_MIN, HTTP_TIMEOUT_MS_DEFAULT, HTTP_TIMEOUT_MS_MAX,
};
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, ReadBatch};
use crate::runtime::backoff::Backoff;
use crate::runtime::notify::LocalNotify;
use crate::runtime::stop::LocalStop;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::{Metric, Telemetry};

/// How an answer settles the messages of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// A 2xx delivers them all; anything else leaves them all pending.
    Status,
    /// Elasticsearch's `_bulk`: each item of a 2xx answer settles its message.
    Bulk,
}

/// What happened to one message of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Done,
    /// To send again.
    Retry,
    /// Refused for good (an Elasticsearch item answered 4xx other than 429).
    Rejected,
}

/// HttpOutput or ElasticSearchOutput, planned: the requests and how they are judged.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    /// `HttpOutput` or `ElasticSearchOutput`.
    pub type_name: &'static str,
    /// How requests are sent.
    pub client: Arc<ClientPlan>,
    /// Compress each request body with gzip (`gzip`).
    pub gzip: bool,
    /// How answers are read.
    pub judge: Judge,
    /// Messages per request at most; 0 is every message of the batch or read.
    pub messages_per_request: usize,
    /// Bytes of batches each core queues with memory delivery (`buffer_size`).
    pub buffer_bytes: usize,
    /// When a partly filled batch is sent (`flush_interval`, `flush_count`).
    pub policy: FlushPolicy,
}

impl OutputKind for HttpPlan {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn describe(&self, _: &OutputPlan) -> String {
        let url = &self.client.url;
        let scheme = if url.https { "https" } else { "http" };
        format!(
            "{} {scheme}://{}{} (one connection per core{})",
            self.client.method.name(),
            url.authority(),
            url.target,
            if self.gzip { ", gzip" } else { "" }
        )
    }

    fn writers(&self) -> Writers {
        Writers::EveryCore
    }

    fn flush_policy(&self) -> FlushPolicy {
        self.policy
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let queue = HttpQueue::new(self.buffer_bytes, core.best_effort(), core.stop.clone());
            let sender = Sender::new(self.clone(), core.telemetry.clone(), core.row, core.plugin);
            let run = send_loop(queue.clone(), sender, core.best_effort());
            let run = crate::runtime::failure::plugin_task(&core.output.name, run);
            let task = glommio::spawn_local(run).detach();
            let closing = queue.clone();
            Ok(Opened {
                destination: queue,
                tasks: vec![task],
                close: Some(Box::new(move || Box::pin(async move { closing.close() }))),
            })
        })
    }

    fn open_durable<'a>(
        &'a self,
        core: &'a OutputCore<'a>,
        board: &'a Arc<HandleBoard>,
    ) -> LocalBoxFuture<'a, Result<Vec<glommio::task::JoinHandle<()>>, String>> {
        let deliver = HttpDeliver {
            sender: Sender::new(self.clone(), core.telemetry.clone(), core.row, core.plugin),
            pending: None,
            backoff: Backoff::new(HTTP_RETRY_DELAY_MIN, HTTP_RETRY_DELAY_MAX),
        };
        let counters = (core.telemetry.clone(), core.row, core.plugin);
        let consumer = Consumer::new(board.clone(), core.row);
        let stop = core.stop.clone();
        let run = async move {
            consumer.run(deliver, stop, counters).await;
        };
        let run = crate::runtime::failure::plugin_task(&core.output.name, run);
        let task = glommio::spawn_local(run).detach();
        Box::pin(async move { Ok(vec![task]) })
    }
}

/// The messages of Heka-framed `bytes` (a batch, or a disk-queue record), appended to
/// `items`. Bytes that are not a whole frame end the cut (the sink only writes whole frames).
pub fn cut_frames<'b>(bytes: &'b [u8], items: &mut Vec<&'b [u8]>) {
    let mut at = 0;
    while at < bytes.len() {
        let Ok(Some(header)) = crate::message::framing::parse_header(&bytes[at..]) else {
            return;
        };
        let (start, end) = (at + header.message_start(), at + header.frame_bytes());
        let Some(message) = bytes.get(start..end) else {
            return;
        };
        items.push(message);
        at = end;
    }
}

/// What one attempt settled.
#[derive(Debug, Default, Clone, Copy)]
pub struct Attempt {
    /// Messages delivered.
    pub delivered: u64,
    /// Messages rejected for good.
    pub rejected: u64,
    /// Messages of the request left pending: all of them when it failed as a whole (no
    /// answer, or a non-2xx one), else the items to retry (429, 5xx).
    pub unsettled: u64,
}

/// One core's requests for one output: the client, the buffers, the counters.
pub struct Sender {
    plan: HttpPlan,
    client: Client,
    body: Vec<u8>,
    packed: Vec<u8>,
    response: Response,
    verdicts: Vec<Verdict>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
    failures: LogLimit,
    rejections: LogLimit,
    /// Messages per request since a 413 (Payload Too Large): each 413 halves the request,
    /// down to one message. `usize::MAX` until the first.
    request_cap: usize,
}

impl Sender {
    /// The sender of `plan` on core row `core`, counting into `plugin`'s counters.
    pub fn new(plan: HttpPlan, telemetry: Arc<Telemetry>, core: usize, plugin: usize) -> Sender {
        Sender {
            client: Client::new(plan.client.clone()),
            plan,
            body: Vec::new(),
            packed: Vec::new(),
            response: Response::default(),
            verdicts: Vec::new(),
            telemetry,
            core,
            plugin,
            failures: LogLimit::new(LOG_INTERVAL),
            rejections: LogLimit::new(LOG_INTERVAL),
            request_cap: usize::MAX,
        }
    }

    fn count(&self, metric: Metric, count: u64) {
        if count > 0 {
            self.telemetry.add(self.core, self.plugin, metric, count);
        }
    }

    /// Sends the first pending messages (`pending` holds indexes into `items`, in order) in
    /// one request and removes from `pending` those the answer settled.
    pub async fn attempt(&mut self, items: &[&[u8]], pending: &mut Vec<usize>) -> Attempt {
        let take = match self.plan.messages_per_request {
            0 => pending.len(),
            most => most.min(pending.len()),
        }
        .min(self.request_cap);
        self.body.clear();
        for &index in &pending[..take] {
            self.body.extend_from_slice(items[index]);
        }
        let gzip = self.plan.gzip;
        if gzip {
            self.packed.clear();
            gzip_into(&self.body, &mut self.packed);
        }
        let payload = if gzip { &self.packed } else { &self.body };
        let keep_body = self.plan.judge == Judge::Bulk;
        let sent = self
            .client
            .send(payload, gzip, keep_body, &mut self.response)
            .await;
        let bytes = payload.len() as u64;
        if let Err(error) = sent {
            self.failed(&error.to_string(), take);
            return Attempt {
                unsettled: take as u64,
                ..Attempt::default()
            };
        }
        let status = self.response.status;
        if let Some(attempt) = self.refused(status, take, pending) {
            return attempt;
        }
        if !(200..300).contains(&status) {
            let why = format!("answered {status}{}", snippet(&self.response.body));
            self.failed(&why, take);
            return Attempt {
                unsettled: take as u64,
                ..Attempt::default()
            };
        }
        self.count(Metric::SentBytes, bytes);
        self.verdicts.clear();
        if self.plan.judge == Judge::Bulk {
            let (rejections, type_name) = (&mut self.rejections, self.plan.type_name);
            let judged = crate::output::elasticsearch::judge_bulk(
                &self.response.body,
                take,
                &mut self.verdicts,
                &mut |status, reason| rejected(rejections, type_name, status, reason),
            );
            if let Err(why) = judged {
                self.failed(&why, take);
                return Attempt {
                    unsettled: take as u64,
                    ..Attempt::default()
                };
            }
        } else {
            self.verdicts.resize(take, Verdict::Done);
        }
        let mut attempt = Attempt::default();
        let mut verdicts = self.verdicts.iter();
        let mut position = 0;
        pending.retain(|_| {
            position += 1;
            if position > take {
                return true;
            }
            match verdicts.next() {
                Some(Verdict::Done) => attempt.delivered += 1,
                Some(Verdict::Rejected) => attempt.rejected += 1,
                Some(Verdict::Retry) | None => {
                    attempt.unsettled += 1;
                    return true;
                }
            }
            false
        });
        self.count(Metric::Sent, attempt.delivered);
        self.count(Metric::Rejected, attempt.rejected);
        attempt
    }

    /// The answers that settle a request without a 2xx: a 413 for several messages halves the
    /// requests (the messages stay pending); a refusal of the request's content (400, 415,
    /// 422, a 413 for one message) refuses its messages for good. `None` for other answers.
    fn refused(&mut self, status: u16, take: usize, pending: &mut Vec<usize>) -> Option<Attempt> {
        if status == 413 && take > 1 {
            // Too large for the server: the same messages go again in requests half the size.
            self.request_cap = (take / 2).max(1);
            self.failed(
                &format!(
                    "answered 413; requests now carry at most {} messages",
                    self.request_cap
                ),
                take,
            );
            return Some(Attempt {
                unsettled: take as u64,
                ..Attempt::default()
            });
        }
        if matches!(status, 400 | 413 | 415 | 422) {
            // The server refuses what the request carries (a malformed or unprocessable body, a
            // message too large alone): the same messages would be refused again, so they are
            // refused for good, counted and logged, and the rest goes on. Other 4xx (401, 403,
            // 404: credentials or an address being fixed) are retried like a 5xx.
            self.count(Metric::Errors, 1);
            let reason = format!(
                "the request was answered {status}{}",
                snippet(&self.response.body)
            );
            rejected(&mut self.rejections, self.plan.type_name, status, &reason);
            pending.drain(..take);
            self.count(Metric::Rejected, take as u64);
            return Some(Attempt {
                rejected: take as u64,
                ..Attempt::default()
            });
        }
        None
    }

    /// A request failed as a whole: counted, logged rate-limited, the connection closed.
    fn failed(&mut self, why: &str, messages: usize) {
        self.count(Metric::Errors, 1);
        if let Some(count) = self.failures.note(Instant::now()) {
            let url = &self.plan.client.url;
            tracing::warn!(output = self.plan.type_name, server = %url.address(),
                failures = count, messages, "request failed: {why}; retrying");
        }
    }

    async fn close(&mut self) {
        self.client.drop_connection().await;
    }
}

/// An item was rejected for good: logged rate-limited (counted by the caller).
fn rejected(limit: &mut LogLimit, output: &str, status: u16, reason: &str) {
    if let Some(count) = limit.note(Instant::now()) {
        tracing::warn!(
            output,
            status,
            rejected = count,
            "document rejected: {reason}"
        );
    }
}

/// The start of an error answer's body, for the log.
fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!(": {}", text.trim())
}

/// Compresses `body` with gzip into `out` (fastest level: the body is sent once).
fn gzip_into(body: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    let _ = encoder.finish();
}

/// One core's queue of batches for the memory and best-effort classes.
pub struct HttpQueue {
    batches: RefCell<VecDeque<Batch>>,
    bytes: Cell<usize>,
    bytes_max: usize,
    /// `best_effort`: drop what does not fit instead of waiting.
    drop_when_full: bool,
    closed_at: Cell<Option<Instant>>,
    stop: Rc<LocalStop>,
    has_work: Rc<LocalNotify>,
    has_room: Rc<LocalNotify>,
}

impl HttpQueue {
    /// A queue of about `bytes_max` bytes; with `drop_when_full`, producers never wait.
    pub fn new(bytes_max: usize, drop_when_full: bool, stop: Rc<LocalStop>) -> Rc<HttpQueue> {
        Rc::new(HttpQueue {
            batches: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            bytes_max,
            drop_when_full,
            closed_at: Cell::new(None),
            stop,
            has_work: LocalNotify::new(),
            has_room: LocalNotify::new(),
        })
    }

    /// Queues a batch: waits while the queue is over its bound (memory), or drops and counts
    /// a batch that does not fit (best effort). A stopping core waits at most
    /// [`DRAIN_TIMEOUT`], then queues past the bound (the sender drops what it cannot send).
    pub async fn enqueue(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let full = self.bytes.get() + batch.bytes.len() > self.bytes_max;
        if self.drop_when_full && full && !self.batches.borrow().is_empty() {
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
            return;
        }
        let mut stopping_since = None;
        while !self.drop_when_full && self.bytes.get() + batch.bytes.len() > self.bytes_max {
            if self.batches.borrow().is_empty() {
                break;
            }
            if self.stop.is_stopping() {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() > DRAIN_TIMEOUT {
                    break;
                }
            }
            self.has_room.wait_timeout(Duration::from_millis(10)).await;
        }
        self.bytes.set(self.bytes.get() + batch.bytes.len());
        self.batches.borrow_mut().push_back(batch);
        self.has_work.notify();
    }

    fn pop(&self) -> Option<Batch> {
        let batch = self.batches.borrow_mut().pop_front()?;
        self.bytes.set(self.bytes.get() - batch.bytes.len());
        self.has_room.notify();
        Some(batch)
    }

    /// Asks the sender to deliver what is queued and stop.
    pub fn close(&self) {
        self.closed_at.set(Some(Instant::now()));
        self.has_work.notify();
    }

    /// Whether the queue was closed more than [`DRAIN_TIMEOUT`] ago.
    fn drain_expired(&self) -> bool {
        self.closed_at
            .get()
            .is_some_and(|at| at.elapsed() > DRAIN_TIMEOUT)
    }
}

impl super::Destination for HttpQueue {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        Box::pin(self.enqueue(batch, telemetry, core, plugin))
    }
}

/// Sends one core's queued batches until the queue is closed and empty (or the drain timeout
/// passed since it was closed: the rest is dropped and counted).
async fn send_loop(queue: Rc<HttpQueue>, mut sender: Sender, best_effort: bool) {
    let mut backoff = Backoff::new(HTTP_RETRY_DELAY_MIN, HTTP_RETRY_DELAY_MAX);
    let mut pending = Vec::new();
    loop {
        let Some(batch) = queue.pop() else {
            if queue.closed_at.get().is_some() {
                break;
            }
            queue
                .has_work
                .wait_timeout(Duration::from_millis(100))
                .await;
            continue;
        };
        let mut items = Vec::with_capacity(usize::try_from(batch.messages).unwrap_or(0));
        cut_frames(&batch.bytes, &mut items);
        pending.clear();
        pending.extend(0..items.len());
        while !pending.is_empty() {
            let attempt = sender.attempt(&items, &mut pending).await;
            if attempt.unsettled == 0 {
                backoff.reset();
                continue;
            }
            if best_effort || queue.drain_expired() {
                // Best effort never waits: what the server did not take is dropped.
                sender.count(Metric::Dropped, pending.len() as u64);
                break;
            }
            sender.count(Metric::Retries, attempt.unsettled);
            backoff.wait().await;
        }
        glommio::yield_if_needed().await;
        if queue.drain_expired() {
            while let Some(rest) = queue.pop() {
                sender.count(Metric::Dropped, rest.messages);
            }
            break;
        }
    }
    sender.close().await;
}

/// Durable delivery: a disk-queue read is sent, in one request or several, and committed
/// only when every message of it is delivered or rejected.
pub struct HttpDeliver {
    sender: Sender,
    /// The messages of the read being delivered that are still pending (indexes into its
    /// messages); `None` between reads.
    pending: Option<Vec<usize>>,
    backoff: Backoff,
}

/// Durable delivery does not fail: what is not settled stays pending, offered again.
#[derive(Debug)]
pub struct NeverFails;

impl std::fmt::Display for NeverFails {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("unreachable")
    }
}

impl Deliver for HttpDeliver {
    type Error = NeverFails;

    /// One attempt at the read's pending messages: [`Delivered::Done`] once none is left,
    /// else [`Delivered::Part`] (after a backoff when the attempt failed or left messages to
    /// retry), so the consumer offers the same read again and commits nothing of it yet.
    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, NeverFails> {
        let mut items = Vec::new();
        for record in records.iter() {
            cut_frames(record, &mut items);
        }
        let mut pending = self
            .pending
            .take()
            .unwrap_or_else(|| (0..items.len()).collect());
        if pending.is_empty() {
            return Ok(Delivered::Done);
        }
        let attempt = self.sender.attempt(&items, &mut pending).await;
        if attempt.unsettled == 0 {
            self.backoff.reset();
        } else {
            self.sender.count(Metric::Retries, attempt.unsettled);
            self.backoff.wait().await;
        }
        if pending.is_empty() {
            return Ok(Delivered::Done);
        }
        self.pending = Some(pending);
        Ok(Delivered::Part)
    }

    async fn reset(&mut self) {
        self.pending = None;
    }

    async fn close(&mut self) {
        self.sender.close().await;
    }
}

/// One configured header's value: a string, or Heka's list of strings (one line each).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum RawHeader {
    /// `Name = "value"`.
    One(String),
    /// `Name = ["value", ...]`.
    Many(Vec<String>),
}

/// The keys HttpOutput and ElasticSearchOutput share: how requests are sent.
pub struct RawRequest<'a> {
    /// The address key's name and value (`address`, `server`).
    pub address: (&'static str, &'a str),
    /// The path appended to the address's (ElasticSearchOutput's `/_bulk`).
    pub path_suffix: &'a str,
    /// `method`.
    pub method: Option<&'a str>,
    /// `headers`.
    pub headers: Option<&'a BTreeMap<String, RawHeader>>,
    /// `username`.
    pub username: Option<&'a str>,
    /// `password`.
    pub password: Option<&'a str>,
    /// `http_timeout`, milliseconds.
    pub http_timeout: Option<u64>,
    /// `connect_timeout`, milliseconds.
    pub connect_timeout: Option<u64>,
    /// `http_disable_keepalives`.
    pub disable_keepalives: Option<bool>,
    /// `Content-Type` the kind sends unless `headers` sets one.
    pub content_type: Option<&'a str>,
    /// `[name.tls]`.
    pub tls: Option<&'a crate::tls::RawTls>,
}

/// Headers gyges writes itself: refused in `headers`.
const OWN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "content-encoding",
];

/// Plans how requests are sent.
///
/// # Errors
/// A bad address, method, header, timeout or TLS option; the error names its key.
pub fn plan_client(section: &Section, raw: &RawRequest<'_>) -> Result<ClientPlan, ConfigError> {
    let (key, address) = raw.address;
    let mut url = Url::parse(address).map_err(|why| section.error(Some(key), why))?;
    if !raw.path_suffix.is_empty() {
        let path = url.target.split('?').next().unwrap_or("/");
        url.target = format!("{}{}", path.trim_end_matches('/'), raw.path_suffix);
    }
    let method = match raw.method {
        None => Method::Post,
        Some(name) => Method::from_name(name).ok_or_else(|| {
            section.error(Some("method"), format!("`{name}` is not POST, PUT or GET"))
        })?,
    };
    let timeout = millis(
        section,
        "http_timeout",
        raw.http_timeout,
        HTTP_TIMEOUT_MS_DEFAULT,
        HTTP_TIMEOUT_MS_MAX,
    )?;
    let connect_timeout = millis(
        section,
        "connect_timeout",
        raw.connect_timeout,
        HTTP_CONNECT_TIMEOUT_MS_DEFAULT,
        HTTP_CONNECT_TIMEOUT_MS_MAX,
    )?;
    let keep_alive = raw.disable_keepalives != Some(true);
    let mut lines = header_lines(section, raw.headers)?;
    if raw.content_type.is_some() && !has_header(raw.headers, "content-type") {
        let content_type = raw.content_type.unwrap_or_default();
        lines.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    match (raw.username, raw.password) {
        (Some(user), password) => {
            if user.contains(':') {
                return Err(section.error(Some("username"), "a user name cannot hold `:`"));
            }
            let pair = format!("{user}:{}", password.unwrap_or_default());
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            lines.extend_from_slice(format!("Authorization: Basic {token}\r\n").as_bytes());
        }
        (None, Some(_)) => {
            return Err(section.error(Some("password"), "is set without username"));
        }
        (None, None) => {}
    }
    if !keep_alive {
        lines.extend_from_slice(b"Connection: close\r\n");
    }
    let tls = match (url.https, raw.tls) {
        (true, tls) => {
            // A public endpoint verifies against the system's CAs; `root_cafile` names a
            // private one instead.
            let none = crate::tls::RawTls::default();
            let tls = tls.unwrap_or(&none);
            let side = section.plugin_type().unwrap_or("HttpOutput");
            Some(crate::tls::client_with_system_roots(
                section,
                tls,
                &url.address(),
                side,
            )?)
        }
        (false, Some(_)) => {
            return Err(section.error(
                Some("tls"),
                format!("is set but {key} is not an https:// address"),
            ));
        }
        (false, None) => None,
    };
    Ok(ClientPlan {
        url,
        method,
        tls,
        connect_timeout,
        timeout,
        keep_alive,
        header_lines: lines,
    })
}

fn has_header(headers: Option<&BTreeMap<String, RawHeader>>, name: &str) -> bool {
    headers.is_some_and(|headers| headers.keys().any(|key| key.eq_ignore_ascii_case(name)))
}

/// The configured `headers` as request lines.
fn header_lines(
    section: &Section,
    headers: Option<&BTreeMap<String, RawHeader>>,
) -> Result<Vec<u8>, ConfigError> {
    let mut lines = Vec::new();
    let Some(headers) = headers else {
        return Ok(lines);
    };
    if headers.len() > HTTP_OUTPUT_HEADERS_MAX {
        let message = format!("more than {HTTP_OUTPUT_HEADERS_MAX} headers");
        return Err(section.error(Some("headers"), message));
    }
    for (name, value) in headers {
        let key = format!("headers.{name}");
        let token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(section.error(Some(&key), "is not a header name"));
        }
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(section.error(Some(&key), "is written by gyges itself"));
        }
        let values = match value {
            RawHeader::One(value) => std::slice::from_ref(value),
            RawHeader::Many(values) => values.as_slice(),
        };
        for value in values {
            if value
                .bytes()
                .any(|byte| byte < b' ' && byte != b'\t' || byte == 0x7f)
            {
                return Err(section.error(Some(&key), "has control characters"));
            }
            if name.len() + value.len() > HTTP_OUTPUT_HEADER_BYTES_MAX {
                let message = format!("is over {HTTP_OUTPUT_HEADER_BYTES_MAX} bytes");
                return Err(section.error(Some(&key), message));
            }
            lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    Ok(lines)
}

/// A duration in milliseconds, the value of `key`: `default` when absent, 1 to `max`.
fn millis(
    section: &Section,
    key: &str,
    value: Option<u64>,
    default: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or(default);
    if !(1..=max).contains(&value) {
        let message = format!("{value} is outside 1..={max} milliseconds");
        return Err(section.error(Some(key), message));
    }
    Ok(Duration::from_millis(value))
}

/// `flush_interval` (milliseconds) and `flush_count`: a partly filled batch is sent when
/// either is reached.
///
/// # Errors
/// Out of bounds.
pub fn flush_policy(
    section: &Section,
    interval: Option<u64>,
    count: Option<u64>,
    (default_interval, default_count): (u64, u64),
) -> Result<FlushPolicy, ConfigError> {
    use crate::limits::{FLUSH_COUNT_MAX, FLUSH_INTERVAL_MS_MAX};
    let interval = interval.unwrap_or(default_interval);
    if interval > FLUSH_INTERVAL_MS_MAX {
        let message = format!("{interval} is above {FLUSH_INTERVAL_MS_MAX} ms");
        return Err(section.error(Some("flush_interval"), message));
    }
    let count = count.unwrap_or(default_count);
    if !(1..=FLUSH_COUNT_MAX).contains(&count) {
        let message = format!("{count} is outside 1..={FLUSH_COUNT_MAX}");
        return Err(section.error(Some("flush_count"), message));
    }
    Ok(FlushPolicy {
        interval: Duration::from_millis(interval.max(1)),
        count,
        either: true,
        // A request per read would defeat the batching a bulk API is for.
        on_idle: false,
    })
}

/// `max_messages_per_request`: messages per request at most (0, the default: no bound but
/// the batch's or the disk-queue read's bytes).
///
/// # Errors
/// Above [`crate::limits::FLUSH_COUNT_MAX`].
pub fn messages_per_request(section: &Section, value: Option<u64>) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(0);
    if value > crate::limits::FLUSH_COUNT_MAX {
        let message = format!("{value} is above {}", crate::limits::FLUSH_COUNT_MAX);
        return Err(section.error(Some("max_messages_per_request"), message));
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// `HttpOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`];
/// `use_framing` does not apply: the body is the encodings).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpOutput {
    /// `http://` or `https://` URL requests go to.
    pub address: String,
    /// `POST` (default), `PUT` or `GET`.
    pub method: Option<String>,
    /// Headers sent with every request: `Name = "value"` or `Name = ["v1", "v2"]`.
    pub headers: Option<BTreeMap<String, RawHeader>>,
    /// Basic authentication user.
    pub username: Option<String>,
    /// Basic authentication password.
    pub password: Option<String>,
    /// Milliseconds one request may take (default 10000).
    pub http_timeout: Option<u64>,
    /// Milliseconds one connection attempt may take (default 2000).
    pub connect_timeout: Option<u64>,
    /// Close the connection after each request (default false).
    pub http_disable_keepalives: Option<bool>,
    /// Milliseconds after which a partly filled batch is sent (default 0: at once).
    pub flush_interval: Option<u64>,
    /// Messages that make a batch due (default 1: at once).
    pub flush_count: Option<u64>,
    /// Messages per request at most (default 0: the whole batch).
    pub max_messages_per_request: Option<u64>,
    /// Compress request bodies with gzip (default false).
    pub gzip: Option<bool>,
    /// Bytes each core queues with memory delivery (default 8 MiB).
    pub buffer_size: Option<u64>,
    /// `[name.tls]` for an `https://` address.
    pub tls: Option<crate::tls::RawTls>,
}

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["HttpOutput"],
    plan: plan_http_output,
};

fn plan_http_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawHttpOutput = own.parse()?;
    section.refuse(
        "use_framing",
        common.use_framing.is_some(),
        "HttpOutput sends the encodings as the request body, unframed",
    )?;
    section.refuse(
        "signer",
        common.signer.is_some(),
        "HttpOutput sends the encodings unframed: there is no frame header to sign",
    )?;
    let client = plan_client(
        section,
        &RawRequest {
            address: ("address", &raw.address),
            path_suffix: "",
            method: raw.method.as_deref(),
            headers: raw.headers.as_ref(),
            username: raw.username.as_deref(),
            password: raw.password.as_deref(),
            http_timeout: raw.http_timeout,
            connect_timeout: raw.connect_timeout,
            disable_keepalives: raw.http_disable_keepalives,
            content_type: None,
            tls: raw.tls.as_ref(),
        },
    )?;
    let policy = flush_policy(section, raw.flush_interval, raw.flush_count, (0, 1))?;
    let buffer_bytes =
        super::tcp::buffer_bytes(section, raw.buffer_size, context.global.batch_bytes)?;
    let per_request = messages_per_request(section, raw.max_messages_per_request)?;
    let plan = HttpPlan {
        type_name: "HttpOutput",
        client: Arc::new(client),
        gzip: raw.gzip == Some(true),
        judge: Judge::Status,
        messages_per_request: per_request,
        buffer_bytes,
        policy,
    };
    let mut common = common.with_defaults("PayloadEncoder", true, true);
    // The encodings travel framed inside gyges; the body is their concatenation.
    common.use_framing = true;
    super::plan::output_plan(section, context, common, |_| Ok(Arc::new(plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cut_back_into_their_messages() {
        let mut framed = Vec::new();
        for message in [&b"first\n"[..], b"2", b"third"] {
            let varint = crate::message::wire::varint_len(message.len() as u64);
            framed.extend_from_slice(&[0x1e, 1 + varint as u8, 0x08]);
            crate::message::wire::put_varint(&mut framed, message.len() as u64);
            framed.push(0x1f);
            framed.extend_from_slice(message);
        }
        let mut items = Vec::new();
        cut_frames(&framed, &mut items);
        assert_eq!(items, vec![&b"first\n"[..], b"2", b"third"]);
        items.clear();
        cut_frames(&framed[..framed.len() - 1], &mut items);
        assert_eq!(items.len(), 2, "a torn last frame is left out");
    }

    #[test]
    fn gzip_bodies_inflate_back() {
        use std::io::Read as _;
        let mut packed = Vec::new();
        gzip_into(b"{\"a\":1}\n", &mut packed);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut plain)
            .expect("inflates");
        assert_eq!(plain, "{\"a\":1}\n");
    }
}
