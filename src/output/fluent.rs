//! FluentForwardOutput: sends to Fluentd, Fluent Bit or a gyges FluentForwardInput in the
//! Forward protocol's PackedForward mode, one connection per core (`docs/fluent.md`).
//!
//! Its encoder ([`FluentEncoderKind`]) writes each message as a Message-mode event,
//! `[tag, EventTime, record]`: the tag is `tag` if configured, else Logger; the record is
//! `message` = Payload plus every field (its first value; all of them as an array when it
//! has several). The events travel in Heka frames inside gyges (so a disk queue can cut its
//! records between them); at the socket, [`repack`] turns a run of events into PackedForward
//! frames, one per run of events with the same tag, `[tag, bin(entries), {"size": n}]`.
//!
//! - **Memory delivery**: the repacked batches go through a TcpOutput queue and sender
//!   (`output/tcp.rs`): reconnects, backpressure and drops are TcpOutput's.
//! - **Durable delivery** (`use_buffering = true`): each core's queue consumer sends every
//!   read as PackedForward frames; with `require_ack_response = true` each frame carries a
//!   `chunk` id and the read is committed only once every one of its chunks is answered
//!   `{"ack": id}` ([`AckedSender`], a [`Deliver`] like `output/acked.rs`'s): a receiver
//!   that dies loses nothing, and what it had not acknowledged is sent again.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::tcp::{TcpPlan, TcpQueue};
use super::{Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::{GlobalPlan, OutputPlan};
use crate::config::{ConfigError, Section};
use crate::encoder::{Encode, EncodeFailed, EncoderKind};
use crate::input::fluent::msgpack::{self, Reader, Scan, Value};
use crate::message::view::{FieldRef, FieldValue, StrHeader};
use crate::message::MessageView;
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, Position, ReadBatch};
use crate::runtime::ring::Batch;
use crate::telemetry::{Metric, Telemetry};

/// `FluentForwardOutput`'s own keys (the common output keys are in
/// [`super::plan::RawCommon`]; `encoder` and `use_framing` do not apply).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFluentForwardOutput {
    /// `host:port` of the Forward receiver.
    pub address: String,
    /// The tag of every event (default: each message's Logger).
    pub tag: Option<String>,
    /// Ask the receiver to acknowledge each chunk, and commit only then (needs
    /// `use_buffering`).
    pub require_ack_response: Option<bool>,
    /// Milliseconds to wait for each acknowledgement (default 10000).
    pub ack_response_timeout: Option<u64>,
    /// Bytes each core buffers for the connection with memory delivery (default 8 MiB).
    pub buffer_size: Option<u64>,
    /// Turn on TCP keep-alive on the connection (default false).
    pub keep_alive: Option<bool>,
    /// Keep-alive idle time in seconds.
    pub keep_alive_period: Option<u64>,
}

/// FluentForwardOutput, planned.
#[derive(Debug, Clone)]
pub struct FluentForwardOutputKind {
    /// The connection (address, queue bound, keep-alive), as a TcpOutput's.
    pub tcp: TcpPlan,
    /// `require_ack_response`: how long to wait for each ack.
    pub ack: Option<Duration>,
}

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["FluentForwardOutput"],
    plan: plan_fluent_output,
};

fn plan_fluent_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawFluentForwardOutput = own.parse()?;
    let why = "FluentForwardOutput writes Forward protocol events itself";
    section.refuse("encoder", common.encoder.is_some(), why)?;
    section.refuse("use_framing", common.use_framing.is_some(), why)?;
    section.destination("address", &raw.address)?;
    let buffer_bytes =
        super::tcp::buffer_bytes(section, raw.buffer_size, context.global.batch_bytes)?;
    let ack_timeout =
        super::tcp::ack_timeout(section, "ack_response_timeout", raw.ack_response_timeout)?;
    if let Some(tag) = &raw.tag {
        if tag.is_empty() || tag.len() > crate::limits::MESSAGE_BYTES_MIN {
            return Err(section.error(Some("tag"), "must be 1 to 1024 bytes".to_string()));
        }
    }
    let keep_alive = crate::input::tcp::keep_alive(section, raw.keep_alive, raw.keep_alive_period)?;
    let encoder = FluentEncoderKind {
        tag: raw.tag.as_deref().map(|tag| Arc::from(tag.as_bytes())),
    };
    let common = super::plan::Common {
        message_matcher: common.message_matcher.as_deref(),
        message_signer: common.message_signer.as_deref(),
        signer: None,
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(encoder)),
        use_framing: true,
        use_buffering: common.use_buffering,
        delivery: common.delivery.as_deref(),
        buffering: common.buffering.as_ref(),
        durable_available: true,
    };
    super::plan::output_plan(section, context, common, |durable| {
        let require_ack = raw.require_ack_response == Some(true);
        if require_ack && !durable {
            return Err(section.error(
                Some("require_ack_response"),
                "needs use_buffering = true: the sender keeps what is not acknowledged in its queue",
            ));
        }
        Ok(Arc::new(FluentForwardOutputKind {
            tcp: TcpPlan {
                address: raw.address.clone(),
                reconnect_after: 0,
                buffer_bytes,
                keep_alive,
                ack: None,
                tls: None,
                local_address: None,
            },
            ack: require_ack.then_some(ack_timeout),
        }))
    })
}

impl OutputKind for FluentForwardOutputKind {
    fn type_name(&self) -> &'static str {
        "FluentForwardOutput"
    }

    fn describe(&self, _: &OutputPlan) -> String {
        let acked = if self.ack.is_some() {
            ", require_ack_response"
        } else {
            ""
        };
        format!(
            "fluent forward {} (one connection per core{acked})",
            self.tcp.address
        )
    }

    fn writers(&self) -> Writers {
        Writers::EveryCore
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let queue = TcpQueue::new(self.tcp.buffer_bytes, core.best_effort());
            let sender = super::tcp::run_sender(
                queue.clone(),
                self.tcp.clone(),
                core.telemetry.clone(),
                core.row,
                core.plugin,
            );
            let task = glommio::spawn_local(sender).detach();
            let closing = queue.clone();
            Ok(Opened {
                destination: Rc::new(Repacking { queue }),
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
        let sender = AckedSender {
            plan: self.clone(),
            session: None,
            telemetry: core.telemetry.clone(),
            core: core.row,
            plugin: core.plugin,
            frames: Vec::new(),
        };
        let counters = (core.telemetry.clone(), core.row, core.plugin);
        let consumer = Consumer::new(board.clone(), core.row);
        let stop = core.stop.clone();
        let run = async move {
            consumer.run(sender, stop, counters).await;
        };
        let run = crate::runtime::failure::plugin_task(&core.output.name, run);
        let task = glommio::spawn_local(run).detach();
        Box::pin(async move { Ok(vec![task]) })
    }
}

/// The memory path's destination: repacks each batch, then queues it for TcpOutput's sender.
struct Repacking {
    queue: Rc<TcpQueue>,
}

impl super::Destination for Repacking {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        let mut packed = Vec::with_capacity(batch.bytes.len() + 64);
        repack(std::iter::once(&batch.bytes[..]), &mut packed, &mut |_| {
            None
        });
        let batch = Batch {
            bytes: packed,
            messages: batch.messages,
        };
        Box::pin(self.queue.enqueue(batch, telemetry, core, plugin))
    }
}

/// The encoder: `[tag, EventTime, record]` per message.
#[derive(Debug, Clone)]
pub struct FluentEncoderKind {
    /// The configured `tag`; `None` uses each message's Logger.
    pub tag: Option<Arc<[u8]>>,
}

impl EncoderKind for FluentEncoderKind {
    fn type_name(&self) -> &'static str {
        "fluent forward events"
    }

    fn build(&self, _: &GlobalPlan, _: Option<usize>) -> Result<Box<dyn Encode>, String> {
        Ok(Box::new(FluentEncoder {
            tag: self.tag.clone(),
            event: Vec::new(),
        }))
    }
}

/// One core's encoder: the event is written into `event`, then framed into the batch.
struct FluentEncoder {
    tag: Option<Arc<[u8]>>,
    event: Vec<u8>,
}

impl Encode for FluentEncoder {
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: crate::encoder::Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        let before = out.len();
        if let crate::encoder::Framing::None = framing {
            encode_event(message, self.tag.as_deref(), out);
            return Ok(out.len() - before);
        }
        self.event.clear();
        encode_event(message, self.tag.as_deref(), &mut self.event);
        put_frame_header(out, self.event.len());
        out.extend_from_slice(&self.event);
        Ok(out.len() - before)
    }
}

/// Appends an unsigned Heka frame header for a message of `length` bytes.
fn put_frame_header(out: &mut Vec<u8>, length: usize) {
    let varint = crate::message::wire::varint_len(length as u64);
    out.extend_from_slice(&[0x1e, 1 + varint as u8, 0x08]);
    crate::message::wire::put_varint(out, length as u64);
    out.push(0x1f);
}

/// Appends `message` as `[tag, EventTime, record]`.
pub fn encode_event(message: &MessageView<'_>, tag: Option<&[u8]>, out: &mut Vec<u8>) {
    msgpack::put_array(out, 3);
    let tag = tag
        .or_else(|| message.str_header(StrHeader::Logger))
        .unwrap_or(b"gyges");
    msgpack::put_str(out, tag);
    msgpack::put_event_time(out, message.timestamp().unwrap_or(0));
    let payload = message.str_header(StrHeader::Payload);
    let mut pairs = u32::from(payload.is_some());
    message.for_each_field(|field| pairs += u32::from(field.name().is_some()));
    msgpack::put_map(out, pairs);
    if let Some(payload) = payload {
        msgpack::put_str(out, b"message");
        msgpack::put_str(out, payload);
    }
    message.for_each_field(|field| put_field(out, field));
}

fn put_field(out: &mut Vec<u8>, field: FieldRef<'_>) {
    let Some(name) = field.name() else { return };
    msgpack::put_str(out, name);
    let count = field.values().count();
    if count == 1 {
        put_value(out, field.value(0));
        return;
    }
    msgpack::put_array(out, count as u32);
    for value in field.values() {
        put_value(out, Some(value));
    }
}

fn put_value(out: &mut Vec<u8>, value: Option<FieldValue<'_>>) {
    match value {
        Some(FieldValue::String(text)) => msgpack::put_str(out, text),
        Some(FieldValue::Bytes(bytes)) => msgpack::put_bin(out, bytes),
        Some(FieldValue::Integer(number)) => msgpack::put_int(out, number),
        Some(FieldValue::Double(number)) => msgpack::put_float(out, number),
        Some(FieldValue::Bool(flag)) => msgpack::put_bool(out, flag),
        None => out.push(0xc0),
    }
}

/// Turns Heka-framed events (`[tag, time, record]`, from [`encode_event`]) into PackedForward
/// frames, one per run of events with the same tag, appended to `out`. `chunk` is asked for
/// each frame's chunk id (`None`: no ack asked). Returns the number of frames. Bytes that are
/// not a whole framed event are skipped.
pub fn repack<'r>(
    records: impl Iterator<Item = &'r [u8]>,
    out: &mut Vec<u8>,
    chunk: &mut dyn FnMut(usize) -> Option<[u8; CHUNK_ID_BYTES]>,
) -> usize {
    let mut frames = 0;
    let mut entries: Vec<u8> = Vec::new();
    let mut run: (Option<Vec<u8>>, u32) = (None, 0);
    let mut flush =
        |out: &mut Vec<u8>, tag: &[u8], entries: &mut Vec<u8>, count: u32, frames: &mut usize| {
            let id = chunk(*frames);
            msgpack::put_array(out, 3);
            msgpack::put_str(out, tag);
            msgpack::put_bin(out, entries);
            msgpack::put_map(out, if id.is_some() { 2 } else { 1 });
            msgpack::put_str(out, b"size");
            msgpack::put_int(out, i64::from(count));
            if let Some(id) = id {
                msgpack::put_str(out, b"chunk");
                msgpack::put_str(out, &id);
            }
            entries.clear();
            *frames += 1;
        };
    for record in records {
        let mut at = 0;
        while let Ok(Some(header)) = crate::message::framing::parse_header(&record[at..]) {
            let (start, end) = (at + header.message_start(), at + header.frame_bytes());
            at = end;
            let Some(event) = record.get(start..end) else {
                break;
            };
            let mut reader = Reader::new(event);
            let (Ok(Value::Array(3)), Ok(Value::Str(tag))) = (reader.value(), reader.value())
            else {
                continue;
            };
            if run.0.as_deref() != Some(tag) {
                if let Some(previous) = run.0.take() {
                    flush(out, &previous, &mut entries, run.1, &mut frames);
                }
                run = (Some(tag.to_vec()), 0);
            }
            msgpack::put_array(&mut entries, 2);
            entries.extend_from_slice(reader.rest());
            run.1 += 1;
        }
    }
    if let Some(tag) = run.0.take() {
        flush(out, &tag, &mut entries, run.1, &mut frames);
    }
    frames
}

/// Characters of a chunk id: 16 random bytes in base64.
pub const CHUNK_ID_BYTES: usize = 24;

fn new_chunk_id() -> [u8; CHUNK_ID_BYTES] {
    let mut random = [0u8; 16];
    random.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
    let mut id = [0u8; CHUNK_ID_BYTES];
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(random, &mut id);
    id
}

/// A read sent and not yet acknowledged.
struct Pending {
    /// The chunk ids of its frames still waiting for their ack.
    chunks: Vec<[u8; CHUNK_ID_BYTES]>,
    end: Position,
    messages: u64,
}

/// One connection to the receiver.
struct Session {
    stream: crate::tls::Transport,
    pending: VecDeque<Pending>,
    waiting_since: Instant,
    inbox: Vec<u8>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The receiver closed the connection.
    #[error("the receiver closed the connection")]
    Closed,
    /// No ack in time.
    #[error("no acknowledgement within {0:?}")]
    AckTimeout(Duration),
    /// The receiver sent something that is not `{"ack": id}`.
    #[error("the receiver sent something that is not an acknowledgement")]
    Protocol,
}

/// Durable delivery: each read repacked and sent; committed at once, or with
/// `require_ack_response` once every chunk of it is acknowledged.
struct AckedSender {
    plan: FluentForwardOutputKind,
    session: Option<Session>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
    /// The frames of the read being sent (reused).
    frames: Vec<u8>,
}

/// Bytes read from the receiver at once.
const INBOX_READ_BYTES: usize = 4096;
/// Reads whose acks one connection waits for at most.
const ACK_WINDOW_READS: usize = crate::limits::ACK_WINDOW_BATCHES;

impl AckedSender {
    async fn session(&mut self) -> Result<&mut Session, SessionError> {
        if self.session.is_none() {
            let stream = super::tcp::connect(&self.plan.tcp).await?;
            let timeout = self.plan.ack.unwrap_or(Duration::from_secs(10));
            stream
                .tcp()
                .set_write_timeout(Some(timeout))
                .map_err(std::io::Error::from)?;
            self.session = Some(Session {
                stream,
                pending: VecDeque::with_capacity(ACK_WINDOW_READS),
                waiting_since: Instant::now(),
                inbox: Vec::with_capacity(INBOX_READ_BYTES),
            });
        }
        self.session.as_mut().ok_or(SessionError::Closed)
    }
}

impl AckedSender {
    /// Writes `frames` on the session, opening one if needed.
    async fn write(&mut self, frames: &[u8]) -> Result<(), SessionError> {
        let session = self.session().await?;
        if gyges_sys::socket::peer_closed(session.stream.tcp()) {
            self.session = None;
            return Err(SessionError::Closed);
        }
        session.stream.write_all(frames).await?;
        Ok(())
    }
}

impl Session {
    /// Reads what the receiver sent for at most `wait`; consumes whole acks, returning the
    /// newest read now wholly acknowledged and the messages of every such read.
    async fn receive(&mut self, wait: Duration) -> Result<Option<(Position, u64)>, SessionError> {
        self.stream
            .tcp()
            .set_read_timeout(Some(wait))
            .map_err(std::io::Error::from)?;
        let start = self.inbox.len();
        self.inbox.resize(start + INBOX_READ_BYTES, 0);
        let read = self.stream.read(&mut self.inbox[start..]).await;
        let count = match read {
            Ok(0) => return Err(SessionError::Closed),
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(error) => return Err(error.into()),
        };
        self.inbox.truncate(start + count);
        let mut at = 0;
        while let Ok(length) = Scan::new().resume(&self.inbox[at..]) {
            let mut reader = Reader::new(&self.inbox[at..at + length]);
            at += length;
            let (Ok(Value::Map(1)), Ok(Value::Str(b"ack")), Ok(Value::Str(id))) =
                (reader.value(), reader.value(), reader.value())
            else {
                return Err(SessionError::Protocol);
            };
            for pending in self.pending.iter_mut() {
                pending.chunks.retain(|chunk| chunk.as_slice() != id);
            }
        }
        self.inbox.drain(..at);
        if self.inbox.len() > INBOX_READ_BYTES {
            // No ack is this long: the receiver is not answering acks.
            return Err(SessionError::Protocol);
        }
        let mut newest = None;
        let mut messages = 0;
        while self
            .pending
            .front()
            .is_some_and(|oldest| oldest.chunks.is_empty())
        {
            if let Some(done) = self.pending.pop_front() {
                messages += done.messages;
                newest = Some(done.end);
            }
        }
        Ok(newest.map(|end| (end, messages)))
    }
}

impl Deliver for AckedSender {
    type Error = SessionError;

    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, SessionError> {
        let acked = self.plan.ack.is_some();
        let mut chunks = Vec::new();
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        repack(records.iter(), &mut frames, &mut |_| {
            acked.then(|| {
                let id = new_chunk_id();
                chunks.push(id);
                id
            })
        });
        let (telemetry, core, plugin) = (self.telemetry.clone(), self.core, self.plugin);
        let bytes = frames.len() as u64;
        let written = self.write(&frames).await;
        self.frames = frames;
        written?;
        let session = self.session.as_mut().ok_or(SessionError::Closed)?;
        telemetry.add(core, plugin, Metric::SentBytes, bytes);
        if !acked {
            telemetry.add(core, plugin, Metric::Sent, records.message_count());
            return Ok(Delivered::Done);
        }
        if session.pending.is_empty() {
            session.waiting_since = Instant::now();
        }
        session.pending.push_back(Pending {
            chunks,
            end: records.end(),
            messages: records.message_count(),
        });
        Ok(Delivered::Sent)
    }

    fn has_room(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.pending.len() < ACK_WINDOW_READS)
    }

    fn is_settled(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.pending.is_empty())
    }

    async fn settle(&mut self, wait: Duration) -> Result<Option<Position>, SessionError> {
        let timeout = self.plan.ack.unwrap_or(Duration::from_secs(10));
        let Some(session) = self.session.as_mut() else {
            return Ok(None);
        };
        if let Some((end, messages)) = session.receive(wait).await? {
            self.telemetry.add(self.core, self.plugin, Metric::Acks, 1);
            self.telemetry
                .add(self.core, self.plugin, Metric::Sent, messages);
            session.waiting_since = Instant::now();
            return Ok(Some(end));
        }
        if session.waiting_since.elapsed() > timeout {
            return Err(SessionError::AckTimeout(timeout));
        }
        Ok(None)
    }

    async fn reset(&mut self) {
        if let Some(mut lost) = self.session.take() {
            let _ = lost.stream.close().await;
        }
    }

    async fn close(&mut self) {
        self.reset().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::fluent::frame::{read_frame, FrameBuffers};
    use crate::message::{ProtoView, UuidSource};

    /// Encodes messages as the output does, repacks them, and reads the frames back with the
    /// input's reader: the same events, tags grouped in runs.
    #[test]
    fn repacked_events_read_back_as_the_same_messages() {
        let mut framed = Vec::new();
        let mut uuids = UuidSource::with_seed(3);
        for (number, logger) in [(0, "a"), (1, "a"), (2, "b"), (3, "a")] {
            let mut buffers = FrameBuffers::new(65536);
            let mut frame = Vec::new();
            msgpack::put_array(&mut frame, 3);
            msgpack::put_str(&mut frame, logger.as_bytes());
            msgpack::put_int(&mut frame, 1_700_000_000 + number);
            msgpack::put_map(&mut frame, 2);
            msgpack::put_str(&mut frame, b"message");
            msgpack::put_str(&mut frame, format!("m{number}").as_bytes());
            msgpack::put_str(&mut frame, b"n");
            msgpack::put_int(&mut frame, number);
            read_frame(&frame, b"h", &mut buffers, &mut uuids, &mut |message| {
                let mut event = Vec::new();
                encode_event(
                    &MessageView::Proto(ProtoView::new(message)),
                    None,
                    &mut event,
                );
                put_frame_header(&mut framed, event.len());
                framed.extend_from_slice(&event);
            });
        }
        let mut packed = Vec::new();
        let mut ids = 0;
        let frames = repack(std::iter::once(&framed[..]), &mut packed, &mut |_| {
            ids += 1;
            Some([b'x'; CHUNK_ID_BYTES])
        });
        assert_eq!((frames, ids), (3, 3), "runs a, b, a");
        let mut reader = Reader::new(&packed);
        let mut seen = Vec::new();
        let mut buffers = FrameBuffers::new(65536);
        while let Ok(frame) = reader.object() {
            let (option, _) = read_frame(frame, b"h", &mut buffers, &mut uuids, &mut |message| {
                let view = ProtoView::new(message);
                let logger = view.str_header(StrHeader::Logger).map(<[u8]>::to_vec);
                let payload = view.str_header(StrHeader::Payload).map(<[u8]>::to_vec);
                let n = match view.field(b"n", 0).and_then(|field| field.value(0)) {
                    Some(FieldValue::Integer(n)) => Some(n),
                    _ => None,
                };
                seen.push((logger, payload, n, view.timestamp()));
            });
            assert_eq!(option.chunk, Some(&[b'x'; CHUNK_ID_BYTES][..]));
        }
        assert_eq!(seen.len(), 4);
        for (number, (logger, payload, n, time)) in seen.iter().enumerate() {
            let expected = if number == 2 { "b" } else { "a" };
            assert_eq!(logger.as_deref(), Some(expected.as_bytes()));
            assert_eq!(payload.as_deref(), Some(format!("m{number}").as_bytes()));
            assert_eq!(*n, Some(number as i64));
            assert_eq!(*time, Some((1_700_000_000 + number as i64) * 1_000_000_000));
        }
    }
}
