//! Inputs: sockets each ingest core owns, and what happens to each record they yield.
//!
//! Every TcpInput and UdpInput binds its address on every ingest core with SO_REUSEPORT, so
//! the kernel spreads connections and datagrams across cores. A record is split, decoded,
//! matched and encoded on the core that read it ([`deliver_record`]).
//!
//! The contract ([`crate::component`]): each input kind is one module here owning its raw
//! config, its plan (an [`InputKind`]) and its per-core [`InputKind::start`]; what every input
//! shares (splitter, decoder, signers) is planned once in [`plan`]; [`KINDS`] lists them.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod file_polling;
pub mod fluent;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logstreamer;
pub mod plan;
pub mod statsd;
pub mod syslog;
pub mod tcp;
pub mod udp;

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::component::Registration;
use crate::config::plan::{GlobalPlan, InputPlan, SplitterPlan};
use crate::decoder::{DecodeContext, Decoder, DecoderBuild};
use crate::message::{LineMeta, LineView, MessageView, UuidSource};
use crate::runtime::router::Router;
use crate::runtime::shard::Shard;
use crate::splitter::{
    HekaFrameSplitter, NullSplitter, Splitter, SplitterError, SplitterStats, StreamBuffer,
    SyslogSplitter, TokenSplitter,
};
use crate::telemetry::{Metric, Telemetry};

/// Every input kind, by the Heka type names that select it.
pub static KINDS: &[Registration<InputPlan>] = &[
    tcp::REGISTRATION,
    udp::REGISTRATION,
    statsd::REGISTRATION,
    syslog::REGISTRATION,
    http::REGISTRATION,
    logstreamer::REGISTRATION,
    fluent::REGISTRATION,
    #[cfg(feature = "kafka")]
    kafka::REGISTRATION,
    file_polling::REGISTRATION,
    #[cfg(feature = "amqp")]
    amqp::REGISTRATION,
];

/// One input kind's validated plan, and how each ingest core starts it.
pub trait InputKind: crate::component::AsAny + fmt::Debug + Send + Sync {
    /// The Heka type name.
    fn type_name(&self) -> &'static str;

    /// Where it listens, for `gyges validate`.
    fn describe(&self) -> String;

    /// Whether each read is a whole stream of its own (a datagram): a TokenSplitter then
    /// delivers the text after the last delimiter too.
    fn datagrams(&self) -> bool {
        false
    }

    /// The largest record this input accepts, when the kind sets its own (at most
    /// `[hekad] max_message_size`); `None` means the global one.
    fn max_message_size(&self) -> Option<usize> {
        None
    }

    /// Binds this core's sockets and spawns its tasks on the current executor.
    ///
    /// # Errors
    /// The address cannot be bound (in use, not local, no permission).
    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()>;
}

/// What a core needs to know about one input.
pub struct InputContext {
    /// The input's plugin index in [`Telemetry`].
    pub plugin: usize,
    /// The input's plan: its kind, splitter, decoder and signers.
    pub plan: InputPlan,
    /// Largest record the input's splitters accept, in bytes (`[hekad] max_message_size`); a
    /// longer one is dropped and counted as oversize.
    pub max_message_size: usize,
    /// This core's decoder, when the input has one.
    pub decoder: Option<RefCell<Box<dyn Decoder>>>,
}

impl InputContext {
    /// The context of `plan` on one core, with its own decoder if it has one.
    ///
    /// # Errors
    /// The decoder cannot be built (a Lua script that does not load).
    pub fn new(
        plugin: usize,
        plan: InputPlan,
        global: &GlobalPlan,
        (row, filter_index): (usize, crate::component::FilterIndex<'_>),
    ) -> Result<InputContext, String> {
        let build = DecoderBuild {
            global,
            filter_index,
            row,
        };
        let decoder = match &plan.decoder {
            Some(kind) => {
                let decoder = kind
                    .build(&build)
                    .map_err(|error| format!("decoder {}: {error}", kind.type_name()))?;
                Some(RefCell::new(decoder))
            }
            None => None,
        };
        let max_message_size = plan
            .kind
            .max_message_size()
            .unwrap_or(global.max_message_size);
        Ok(InputContext {
            plugin,
            plan,
            max_message_size,
            decoder,
        })
    }
}

impl InputContext {
    /// A fresh splitter for one connection or socket. A datagram is a whole stream, so on UDP
    /// a TokenSplitter delivers the text after the last delimiter too.
    ///
    /// # Errors
    /// Only for sizes the config loader already rejects.
    pub fn splitter(&self) -> Result<Splitter, SplitterError> {
        let max = self.max_message_size;
        let datagrams = self.plan.kind.datagrams();
        Ok(match &self.plan.splitter {
            SplitterPlan::Token {
                delimiter,
                count,
                deliver_incomplete_final,
            } => {
                let final_record = *deliver_incomplete_final || datagrams;
                Splitter::Token(TokenSplitter::new(*delimiter, *count, final_record, max)?)
            }
            SplitterPlan::HekaFrame {
                skip_authentication,
                ..
            } => Splitter::HekaFrame(HekaFrameSplitter::new(
                self.plan.verifier.clone(),
                *skip_authentication,
                max,
            )?),
            SplitterPlan::Null => Splitter::Null(NullSplitter::new(max)?),
            SplitterPlan::Syslog => Splitter::Syslog(SyslogSplitter::new(max)?),
        })
    }

    /// A fresh splitter and its bounded buffer, read `read_bytes` at a time. A failure (only
    /// for sizes the config loader already rejects) is logged.
    pub fn stream_parts(&self, read_bytes: usize) -> Option<(Splitter, StreamBuffer)> {
        let parts = self.splitter().and_then(|splitter| {
            StreamBuffer::for_splitter(&splitter, read_bytes).map(|buffer| (splitter, buffer))
        });
        match parts {
            Ok(parts) => Some(parts),
            Err(error) => {
                tracing::error!(input = %self.plan.name, %error, "cannot build the splitter");
                None
            }
        }
    }

    /// Per-connection headers for records without a decoder.
    pub fn line_meta(&self, hostname: String) -> LineMeta {
        LineMeta {
            type_: self.plan.name.as_bytes().into(),
            logger: self.plan.name.as_bytes().into(),
            hostname: hostname.into_bytes().into_boxed_slice(),
        }
    }
}

/// Decodes one record and routes the message.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn deliver_record(
    record: &[u8],
    input: &InputContext,
    meta: &LineMeta,
    now_ns: i64,
    uuids: &mut UuidSource,
    router: &mut Router,
    telemetry: &Telemetry,
    core: usize,
) {
    telemetry.add(core, input.plugin, Metric::Records, 1);
    if let Some(decoder) = &input.decoder {
        let mut context = DecodeContext {
            router,
            telemetry,
            core,
            plugin: input.plugin,
            meta,
            now_ns,
            uuids,
        };
        let Err(code) = decoder.borrow_mut().decode(record, &mut context) else {
            return;
        };
        telemetry.add(core, input.plugin, Metric::DecodeFailures, 1);
        if input.plan.log_decode_failures {
            tracing::debug!(input = %input.plan.name, code, "decode failure");
        }
        if !input.plan.send_decode_failures {
            return;
        }
        let line = context.line(record);
        route_line(line, record, input, context.router, telemetry, core);
        return;
    }
    let line = LineView {
        payload: record,
        uuid: uuids.next_uuid(),
        timestamp: now_ns,
        meta,
    };
    route_line(line, record, input, router, telemetry, core);
}

/// Routes the message a record makes without a decoder (its Payload is the record).
#[inline]
fn route_line(
    line: LineView<'_>,
    record: &[u8],
    input: &InputContext,
    router: &mut Router,
    telemetry: &Telemetry,
    core: usize,
) {
    count_invalid_utf8(record, input, telemetry, core);
    router.route(&MessageView::Line(line));
}

/// Counts a record that becomes a Payload as it is but is not UTF-8 (`invalid_utf8_total`).
/// Bytes in, bytes out: the record is passed on unchanged, but an operator can see that a
/// source sends text that is not UTF-8. ASCII, the common case, is checked with SIMD.
#[inline]
pub fn count_invalid_utf8(record: &[u8], input: &InputContext, telemetry: &Telemetry, core: usize) {
    if !record.is_ascii() && std::str::from_utf8(record).is_err() {
        telemetry.add(core, input.plugin, Metric::InvalidUtf8, 1);
    }
}

/// Adds what a splitter counted since the last call to the input's counters.
pub fn publish_splitter_stats(
    splitter: &mut Splitter,
    telemetry: &Telemetry,
    core: usize,
    plugin: usize,
) {
    let stats: SplitterStats = splitter.take_stats();
    let counts = [
        (Metric::DiscardedBytes, stats.discarded_bytes),
        (Metric::OversizeRecords, stats.oversize_records),
        (Metric::AuthFailures, stats.auth_failures),
    ];
    for (metric, count) in counts {
        if count > 0 {
            telemetry.add(core, plugin, metric, count);
        }
    }
}

/// A sender's address as messages and logs carry it: an IPv4 sender that reached a dual-stack
/// socket (Heka's `:5565`) as `[::ffff:192.0.2.1]:p` is written `192.0.2.1:p`, as it would be
/// on an IPv4 socket.
pub fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}
