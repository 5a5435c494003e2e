//! One HttpListenInput connection: requests one after another (keep-alive; pipelined requests
//! wait in the read buffer until their turn), each body streamed through the input's splitter
//! and routed on this core, and each answer written only once what it routed is accepted.
//!
//! ```text
//! raw:  [ consumed | unread: head, body, next request… | spare ]   HTTP_HEAD_BYTES_MAX + read size
//! body: the input's StreamBuffer and splitter, as on a TCP connection
//! ```
//!
//! A request goes:
//! 1. its head is read and checked (`parse::parse_head`); a bad head is answered 400, 431 or
//!    501 and the connection closes;
//! 2. wrong credentials: 401; a method other than POST, PUT, GET, HEAD: 405; GET and HEAD:
//!    200 at once, nothing read; a `Content-Length` over the body bound: 413; a destination
//!    of this core full (`Router::is_congested`): 503. Each of these closes the connection,
//!    since the body was not read (after a bounded linger, so the client reads the answer);
//! 3. `Expect: 100-continue` is answered; the body (Content-Length or chunked) is copied into
//!    the splitter's buffer and each record it yields is routed as it comes; with the
//!    NullSplitter the whole body is one record, routed at its end;
//! 4. the core ships its batches and waits for its durable appends (`Shard::settle`, as a
//!    TcpInput acknowledgement does), then answers 200.

use std::rc::Rc;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::parse::{self, ChunkStep, Chunked, Framing, Head, Method, Settings, Status};
use super::{CoreLogs, MESSAGE_TYPE};
use crate::input::{deliver_record, publish_splitter_stats, InputContext};
use crate::limits::{
    HTTP_BODY_BYTES_MAX, HTTP_HEAD_BYTES_MAX, HTTP_IDLE_TIMEOUT, HTTP_LINGER_BYTES_MAX,
    HTTP_LINGER_TIMEOUT,
};
use crate::message::{now_ns, wire, LineMeta, MessageView, ProtoView};
use crate::runtime::failure::{self, PluginId};
use crate::runtime::shard::Shard;
use crate::splitter::{Splitter, StreamBuffer};
use crate::telemetry::Metric;

/// The connection's unread bytes: a head, a body's framing, requests pipelined after it.
struct RawBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RawBuffer {
    fn new(read_bytes: usize) -> RawBuffer {
        RawBuffer {
            bytes: vec![0; HTTP_HEAD_BYTES_MAX + read_bytes].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn unread(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, count: usize) {
        assert!(
            count <= self.end - self.start,
            "consumed more than was read"
        );
        self.start += count;
    }

    /// Room for the next read, after moving what is unread to the front. The callers read
    /// only while less than a head's bound is unread, so there is always room.
    fn spare_mut(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        assert!(self.end < self.bytes.len(), "a read buffer with no room");
        &mut self.bytes[self.end..]
    }

    fn commit(&mut self, count: usize) {
        assert!(count <= self.bytes.len() - self.end);
        self.end += count;
    }
}

/// How a read ended when it brought no bytes.
enum ReadEnd {
    /// The peer closed, the read failed, the connection was idle too long, or the core stops.
    Gone,
}

/// What became of a request's body.
enum BodyEnd {
    /// Read whole, every record routed.
    Complete,
    /// Over its bound: answered 413.
    TooLarge,
    /// Bad chunked framing: answered 400.
    Malformed(&'static str),
    /// The connection ended first.
    Gone,
}

/// One connection's state.
struct Connection<'a> {
    shard: &'a Shard,
    input: &'a InputContext,
    settings: &'a Settings,
    logs: &'a CoreLogs,
    raw: RawBuffer,
    body: Body,
    response: Vec<u8>,
}

/// The body side: the splitter, its buffer, and what each message made without a decoder is
/// built from.
struct Body {
    splitter: Splitter,
    buffer: StreamBuffer,
    /// NullSplitter: the whole body is one record.
    whole: bool,
    /// Bytes of the current body so far.
    bytes: u64,
    meta: LineMeta,
    /// This process's id, Heka's Pid header (read once: it is a system call).
    pid: i64,
    remote_ip: Vec<u8>,
    /// The current request's fields, encoded.
    fields: Vec<u8>,
    scratch: Vec<u8>,
    /// The message being built for one record.
    message: Vec<u8>,
}

/// Serves one accepted connection until it closes or the core stops.
pub async fn serve(
    shard: &Shard,
    input: &InputContext,
    (settings, logs): (&Settings, &Rc<CoreLogs>),
    mut stream: TcpStream,
    plugin: PluginId,
) {
    let peer = stream.peer_addr().ok().map(crate::input::canonical);
    let Some((splitter, buffer)) = input.stream_parts(shard.read_buffer_bytes) else {
        return;
    };
    let whole = matches!(splitter, Splitter::Null(_));
    let body = Body {
        splitter,
        buffer,
        whole,
        bytes: 0,
        meta: input.line_meta(peer.map(|peer| peer.to_string()).unwrap_or_default()),
        pid: i64::from(std::process::id()),
        remote_ip: peer
            .map(|peer| peer.ip().to_string().into_bytes())
            .unwrap_or_default(),
        // These grow to what the connection's requests need and are reused from then on, so an
        // idle connection holds only its two read buffers.
        fields: Vec::new(),
        scratch: Vec::new(),
        message: Vec::new(),
    };
    let mut connection = Connection {
        shard,
        input,
        settings,
        logs,
        raw: RawBuffer::new(shard.read_buffer_bytes),
        body,
        response: Vec::with_capacity(1024 + settings.response_headers.len()),
    };
    let linger = connection.run(&mut stream, plugin).await;
    if linger && !shard.stop.is_stopping() {
        linger_close(&mut stream, &mut connection.raw).await;
    }
    // Say goodbye now, as TcpInput does: the FIN must not wait for io_uring to let go.
    let _ = stream.shutdown(std::net::Shutdown::Both).await;
}

impl Connection<'_> {
    /// Serves requests until one closes the connection. Returns whether the close follows an
    /// error answer given before the request was read whole (the caller then lingers).
    async fn run(&mut self, stream: &mut TcpStream, plugin: PluginId) -> bool {
        let mut first = true;
        while !self.shard.stop.is_stopping() {
            let head = match self.read_head(stream).await {
                Ok(Some(head)) => head,
                Ok(None) => return false,
                Err(()) => return true,
            };
            if first {
                first = false;
                failure::fault_point(plugin);
            }
            match self.request(stream, head).await {
                Next::KeepGoing => {}
                Next::Close => return false,
                Next::CloseUnread => return true,
            }
        }
        false
    }

    /// Reads until a whole head is unread, and consumes it. `Ok(None)`: the connection ended
    /// (between requests, or within a head). `Err`: a bad head, answered.
    async fn read_head(&mut self, stream: &mut TcpStream) -> Result<Option<Head>, ()> {
        loop {
            let parsed = parse::parse_head(
                self.raw.unread(),
                self.settings,
                &self.body.remote_ip,
                (&mut self.body.fields, &mut self.body.scratch),
            );
            match parsed {
                Ok(Some(head)) => {
                    self.raw.consume(head.consumed);
                    return Ok(Some(head));
                }
                Ok(None) => {}
                Err(refusal) => {
                    self.count(Metric::BadRequests);
                    if let Some(count) = self.logs.bad.borrow_mut().note(Instant::now()) {
                        tracing::warn!(input = %self.input.plan.name, reason = refusal.reason,
                            status = refusal.status.code(), count, "bad HTTP request");
                    }
                    let _ = self.answer(stream, refusal.status, true, false).await;
                    return Err(());
                }
            }
            if self.read(stream).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Reads once into the raw buffer.
    async fn read(&mut self, stream: &mut TcpStream) -> Result<usize, ReadEnd> {
        let shard = self.shard;
        let spare = self.raw.spare_mut();
        let read = futures_lite::future::or(
            async { Some(stream.read(spare).await) },
            futures_lite::future::or(
                async {
                    shard.stop.wait().await;
                    None
                },
                async {
                    glommio::timer::sleep(HTTP_IDLE_TIMEOUT).await;
                    None
                },
            ),
        )
        .await;
        match read {
            Some(Ok(count)) if count > 0 => {
                self.raw.commit(count);
                self.count_by(Metric::BytesRead, count as u64);
                Ok(count)
            }
            Some(Err(error)) => {
                tracing::debug!(input = %self.input.plan.name, %error, "connection read failed");
                Err(ReadEnd::Gone)
            }
            _ => Err(ReadEnd::Gone),
        }
    }

    /// Answers one request whose head was read.
    async fn request(&mut self, stream: &mut TcpStream, head: Head) -> Next {
        if !head.authorized {
            self.count(Metric::AuthFailures);
            if let Some(count) = self.logs.auth.borrow_mut().note(Instant::now()) {
                tracing::warn!(input = %self.input.plan.name, peer = %String::from_utf8_lossy(&self.body.remote_ip),
                    count, "HTTP request refused: bad credentials");
            }
            return self.refuse(stream, Status::Unauthorized).await;
        }
        match head.method {
            Method::Post | Method::Put => {}
            Method::Get | Method::Head => {
                // A health check: nothing is read into the pipeline. A body it announces is
                // not read, so the connection closes after the answer.
                let close = !head.keep_alive || head.framing != Framing::Empty;
                let head_only = head.method == Method::Head;
                let written = self.answer(stream, Status::Ok, close, head_only).await;
                return match (written, close) {
                    (Ok(()), false) => Next::KeepGoing,
                    (Ok(()), true) if head.framing == Framing::Empty => Next::Close,
                    _ => Next::CloseUnread,
                };
            }
            Method::Other => return self.refuse(stream, Status::MethodNotAllowed).await,
        }
        let bound = self.body_bound();
        if let Framing::Length(length) = head.framing {
            if length > bound {
                self.count(Metric::OversizeRecords);
                return self.refuse(stream, Status::PayloadTooLarge).await;
            }
        }
        if self.shard.router.borrow().is_congested() {
            self.count(Metric::RefusedRequests);
            if let Some(count) = self.logs.busy.borrow_mut().note(Instant::now()) {
                tracing::warn!(input = %self.input.plan.name, count,
                    "HTTP request refused with 503: a destination of this core is full");
            }
            return self.refuse(stream, Status::Unavailable).await;
        }
        let expects = head.expect_continue && head.framing != Framing::Empty;
        if expects && stream.write_all(parse::CONTINUE).await.is_err() {
            return Next::Close;
        }
        let end = self.read_body(stream, head.framing, bound).await;
        self.finish(end, stream, head).await
    }

    /// Reads the body through the splitter, routing records as they come.
    async fn read_body(&mut self, stream: &mut TcpStream, framing: Framing, bound: u64) -> BodyEnd {
        self.body.bytes = 0;
        match framing {
            Framing::Empty => BodyEnd::Complete,
            Framing::Length(length) => self.read_length(stream, length).await,
            Framing::Chunked => self.read_chunked(stream, bound).await,
        }
    }

    async fn read_length(&mut self, stream: &mut TcpStream, length: u64) -> BodyEnd {
        let mut left = length;
        while left > 0 {
            if self.raw.unread().is_empty() && self.read(stream).await.is_err() {
                return BodyEnd::Gone;
            }
            let unread = self.raw.unread();
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(unread.len());
            self.body.feed(&unread[..take], self.shard, self.input);
            self.raw.consume(take);
            left -= take as u64;
            self.pace().await;
        }
        BodyEnd::Complete
    }

    async fn read_chunked(&mut self, stream: &mut TcpStream, bound: u64) -> BodyEnd {
        let mut chunked = Chunked::new();
        loop {
            let step = match chunked.step(self.raw.unread()) {
                Ok(step) => step,
                Err(reason) => return BodyEnd::Malformed(reason),
            };
            match step {
                ChunkStep::Data {
                    start,
                    end,
                    consumed,
                } => {
                    if self.body.bytes + (end - start) as u64 > bound {
                        return BodyEnd::TooLarge;
                    }
                    let data = &self.raw.unread()[start..end];
                    self.body.feed(data, self.shard, self.input);
                    self.raw.consume(consumed);
                    self.pace().await;
                }
                ChunkStep::Framing { consumed } => self.raw.consume(consumed),
                ChunkStep::Done { consumed } => {
                    self.raw.consume(consumed);
                    return BodyEnd::Complete;
                }
                ChunkStep::NeedMore => {
                    if self.read(stream).await.is_err() {
                        return BodyEnd::Gone;
                    }
                }
            }
        }
    }

    /// Ships full batches (waiting while destinations are full, as TCP does) and lets the
    /// core's other tasks run.
    async fn pace(&mut self) {
        self.publish_stats();
        self.shard.ship_full().await;
        glommio::yield_if_needed().await;
    }

    /// Ends a request whose body was read (or not): the final record, the settle, the answer.
    async fn finish(&mut self, end: BodyEnd, stream: &mut TcpStream, head: Head) -> Next {
        match end {
            BodyEnd::Complete => {
                self.body.end(self.shard, self.input);
                self.publish_stats();
                // Shipped, and appended where the route is durable: then, and only then, 200.
                self.shard.settle().await;
                let close = !head.keep_alive || self.shard.stop.is_stopping();
                match self.answer(stream, Status::Ok, close, false).await {
                    Ok(()) if !close => Next::KeepGoing,
                    _ => Next::Close,
                }
            }
            BodyEnd::TooLarge => {
                self.publish_stats();
                self.count(Metric::OversizeRecords);
                self.refuse(stream, Status::PayloadTooLarge).await
            }
            BodyEnd::Malformed(reason) => {
                self.publish_stats();
                self.count(Metric::BadRequests);
                if let Some(count) = self.logs.bad.borrow_mut().note(Instant::now()) {
                    tracing::warn!(input = %self.input.plan.name, reason, status = 400, count,
                        "bad HTTP request");
                }
                self.refuse(stream, Status::BadRequest).await
            }
            BodyEnd::Gone => {
                self.publish_stats();
                Next::Close
            }
        }
    }

    fn body_bound(&self) -> u64 {
        match self.body.whole {
            true => self.input.max_message_size as u64,
            false => HTTP_BODY_BYTES_MAX as u64,
        }
    }

    /// Answers with an error status and closes, the request not read whole.
    async fn refuse(&mut self, stream: &mut TcpStream, status: Status) -> Next {
        let _ = self.answer(stream, status, true, false).await;
        Next::CloseUnread
    }

    async fn answer(
        &mut self,
        stream: &mut TcpStream,
        status: Status,
        close: bool,
        head_only: bool,
    ) -> std::io::Result<()> {
        let headers = (
            &self.settings.auth,
            self.settings.response_headers.as_slice(),
        );
        parse::write_response(&mut self.response, status, close, headers, head_only);
        stream.write_all(&self.response).await
    }

    fn publish_stats(&mut self) {
        let (telemetry, core, plugin) = (&self.shard.telemetry, self.shard.core, self.input.plugin);
        publish_splitter_stats(&mut self.body.splitter, telemetry, core, plugin);
    }

    fn count(&self, metric: Metric) {
        self.count_by(metric, 1);
    }

    fn count_by(&self, metric: Metric, count: u64) {
        let (core, plugin) = (self.shard.core, self.input.plugin);
        self.shard.telemetry.add(core, plugin, metric, count);
    }
}

/// What the connection does after a request.
enum Next {
    /// Read the next request.
    KeepGoing,
    /// Close: the request was read whole.
    Close,
    /// Close after an answer given before the request was read whole.
    CloseUnread,
}

impl Body {
    /// Copies body bytes into the splitter's buffer and routes each record they complete.
    fn feed(&mut self, mut bytes: &[u8], shard: &Shard, input: &InputContext) {
        self.bytes += bytes.len() as u64;
        while !bytes.is_empty() {
            let spare = self.buffer.spare_mut();
            let take = spare.len().min(bytes.len());
            spare[..take].copy_from_slice(&bytes[..take]);
            self.buffer.commit(take);
            bytes = &bytes[take..];
            if !self.whole {
                self.route_ready(shard, input);
            }
        }
    }

    /// Routes every complete record in the buffer.
    fn route_ready(&mut self, shard: &Shard, input: &InputContext) {
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        let now = now_ns();
        while let Some(record) = self.buffer.next_record(&mut self.splitter) {
            let record = record.bytes;
            deliver(
                record,
                input,
                (&self.meta, self.pid, &self.fields, &mut self.message),
                now,
                (&mut uuids, &mut router),
                shard,
            );
        }
    }

    /// The body has ended: the final record (the whole body with the NullSplitter, the text
    /// after the last delimiter with a TokenSplitter).
    fn end(&mut self, shard: &Shard, input: &InputContext) {
        if !self.whole {
            self.route_ready(shard, input);
        }
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        if let Some(record) = self.buffer.finish(&mut self.splitter) {
            let record = record.bytes;
            deliver(
                record,
                input,
                (&self.meta, self.pid, &self.fields, &mut self.message),
                now_ns(),
                (&mut uuids, &mut router),
                shard,
            );
        }
    }
}

/// Routes one record: through the input's decoder exactly as a TcpInput record
/// ([`deliver_record`]), or, without one, as a message whose Payload is the record, with
/// Heka's HttpListenInput headers and the request's fields.
fn deliver(
    record: &[u8],
    input: &InputContext,
    (meta, pid, fields, message): (&LineMeta, i64, &[u8], &mut Vec<u8>),
    now: i64,
    (uuids, router): (
        &mut crate::message::UuidSource,
        &mut crate::runtime::router::Router,
    ),
    shard: &Shard,
) {
    let (telemetry, core) = (&shard.telemetry, shard.core);
    if input.decoder.is_some() {
        deliver_record(record, input, meta, now, uuids, router, telemetry, core);
        return;
    }
    telemetry.add(core, input.plugin, Metric::Records, 1);
    crate::input::count_invalid_utf8(record, input, telemetry, core);
    message.clear();
    wire::put_bytes(message, 1, &uuids.next_uuid());
    wire::put_int(message, 2, now);
    wire::put_bytes(message, 3, MESSAGE_TYPE);
    wire::put_bytes(message, 4, &meta.logger);
    wire::put_int(message, 5, 6);
    wire::put_bytes(message, 6, record);
    wire::put_bytes(message, 7, b"1");
    wire::put_int(message, 8, pid);
    wire::put_bytes(message, 9, &meta.hostname);
    message.extend_from_slice(fields);
    router.route(&MessageView::Proto(ProtoView::new(message)));
}

/// After an error answer that closes the connection: stop sending, then read and drop what
/// the client still sends (at most [`HTTP_LINGER_BYTES_MAX`] bytes for at most
/// [`HTTP_LINGER_TIMEOUT`]), so that it reads the answer instead of a reset.
async fn linger_close(stream: &mut TcpStream, raw: &mut RawBuffer) {
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let drain = async {
        let mut dropped = 0;
        while dropped < HTTP_LINGER_BYTES_MAX {
            raw.start = 0;
            raw.end = 0;
            match stream.read(raw.spare_mut()).await {
                Ok(count) if count > 0 => dropped += count,
                _ => return,
            }
        }
    };
    futures_lite::future::or(drain, glommio::timer::sleep(HTTP_LINGER_TIMEOUT)).await;
}
