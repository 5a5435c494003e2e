//! Inputs: sockets each ingest core owns, and what happens to each record they yield.
//!
//! Every TcpInput and UdpInput binds its address on every ingest core with SO_REUSEPORT, so
//! the kernel spreads connections and datagrams across cores. A record is split, decoded,
//! matched and encoded on the core that read it ([`deliver_record`]).

pub mod tcp;
pub mod udp;

use crate::config::plan::{DecoderPlan, InputKind, InputPlan, SplitterPlan};
use crate::decoder;
use crate::message::{LineMeta, LineView, MessageView, UuidSource};
use crate::runtime::router::Router;
use crate::splitter::{
    HekaFrameSplitter, NullSplitter, Splitter, SplitterError, SplitterStats, StreamBuffer,
    TokenSplitter,
};
use crate::telemetry::{Metric, Telemetry};

/// What a core needs to know about one input.
pub struct InputContext {
    /// The input's plugin index in [`Telemetry`].
    pub plugin: usize,
    pub plan: InputPlan,
    pub max_message_size: usize,
    /// This core's Lua decoder, when the input has one.
    #[cfg(feature = "lua")]
    pub sandbox: Option<std::cell::RefCell<crate::decoder::sandbox::SandboxDecoder>>,
    /// Where a decoder writes what it makes (Lua messages, stat records).
    pub scratch: std::cell::RefCell<Vec<u8>>,
    /// A StatsdInput's StatAccumInput, as a filter index.
    pub statsd_accumulator: Option<u16>,
}

impl InputContext {
    /// The context of `plan` on one core, with its own Lua decoder if it has one.
    ///
    /// # Errors
    /// The Lua decoder's script does not load.
    pub fn new(
        plugin: usize,
        plan: InputPlan,
        global: &crate::config::plan::GlobalPlan,
        filter_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<InputContext, String> {
        let statsd_accumulator = match &plan.decoder {
            DecoderPlan::Statsd { accumulator, .. } => {
                let index = filter_index(accumulator)
                    .ok_or_else(|| format!("no StatAccumInput named `{accumulator}`"))?;
                Some(index as u16)
            }
            _ => None,
        };
        #[cfg(feature = "lua")]
        let sandbox = match &plan.decoder {
            DecoderPlan::Sandbox { name, config } => {
                let host = crate::config::plan::sandbox_host_info(global);
                let decoder = crate::decoder::sandbox::SandboxDecoder::new(name, config, &host)
                    .map_err(|error| format!("decoder [{name}]: {error}"))?;
                Some(std::cell::RefCell::new(decoder))
            }
            _ => None,
        };
        Ok(InputContext {
            plugin,
            plan,
            max_message_size: global.max_message_size,
            #[cfg(feature = "lua")]
            sandbox,
            scratch: std::cell::RefCell::new(Vec::new()),
            statsd_accumulator,
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
        let datagrams = matches!(self.plan.kind, InputKind::Udp { .. });
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
            } => Splitter::HekaFrame(HekaFrameSplitter::new(
                self.plan.verifier.clone(),
                *skip_authentication,
                max,
            )?),
            SplitterPlan::Null => Splitter::Null(NullSplitter::new(max)?),
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
    let as_line = match input.plan.decoder {
        DecoderPlan::Protobuf => match decoder::protobuf::decode(record) {
            Ok(view) => {
                router.route(&MessageView::Proto(view));
                return;
            }
            Err(error) => {
                telemetry.add(core, input.plugin, Metric::DecodeFailures, 1);
                if input.plan.log_decode_failures {
                    tracing::debug!(input = %input.plan.name, code = error.code(), "decode failure");
                }
                input.plan.send_decode_failures
            }
        },
        DecoderPlan::None => true,
        DecoderPlan::Statsd {
            datagram_bytes_max, ..
        } => {
            let datagram = &record[..record.len().min(datagram_bytes_max)];
            statsd_decode(datagram, input, router, telemetry, core);
            return;
        }
        #[cfg(feature = "lua")]
        DecoderPlan::Sandbox { .. } => {
            let line = LineView {
                payload: record,
                uuid: uuids.next_uuid(),
                timestamp: now_ns,
                meta,
            };
            if sandbox_decode(&MessageView::Line(line), input, router, telemetry, core) {
                return;
            }
            input.plan.send_decode_failures
        }
    };
    if as_line {
        // Bytes in, bytes out: the record is passed on as it is, but an operator can see that
        // a source sends text that is not UTF-8. ASCII, the common case, is checked with SIMD.
        if !record.is_ascii() && std::str::from_utf8(record).is_err() {
            telemetry.add(core, input.plugin, Metric::InvalidUtf8, 1);
        }
        let line = LineView {
            payload: record,
            uuid: uuids.next_uuid(),
            timestamp: now_ns,
            meta,
        };
        router.route(&MessageView::Line(line));
    }
}

/// Runs the input's Lua decoder on one record and routes what it makes. Returns false when the
/// record failed to decode (counted here).
#[cfg(feature = "lua")]
fn sandbox_decode(
    view: &MessageView<'_>,
    input: &InputContext,
    router: &mut Router,
    telemetry: &Telemetry,
    core: usize,
) -> bool {
    use crate::decoder::sandbox::Decoded;
    let Some(decoder) = &input.sandbox else {
        return false;
    };
    let mut scratch = input.scratch.borrow_mut();
    scratch.clear();
    let decoded = decoder.borrow_mut().decode(view, &mut scratch);
    match decoded {
        Ok(Decoded::Original) => {
            router.route(view);
            true
        }
        Ok(Decoded::Messages(_)) => {
            for message in crate::sandbox::injected_records(&scratch) {
                match decoder::protobuf::decode(message) {
                    Ok(injected) => router.route(&MessageView::Proto(injected)),
                    Err(_) => telemetry.add(core, input.plugin, Metric::DecodeFailures, 1),
                }
            }
            true
        }
        Ok(Decoded::Failed) | Err(_) => {
            telemetry.add(core, input.plugin, Metric::DecodeFailures, 1);
            false
        }
    }
}

/// Parses a statsd datagram and sends each stat to the input's StatAccumInput, on its core.
fn statsd_decode(
    datagram: &[u8],
    input: &InputContext,
    router: &mut Router,
    telemetry: &Telemetry,
    core: usize,
) {
    let Some(accumulator) = input.statsd_accumulator else {
        return;
    };
    let mut record = input.scratch.borrow_mut();
    for parsed in crate::stats::parse_datagram(datagram) {
        record.clear();
        let encoded = parsed
            .map_err(|_| ())
            .and_then(|stat| crate::stats::encode_stat(&stat, &mut record).map_err(|_| ()));
        match encoded {
            Ok(()) => router.push_stat(accumulator, &record),
            Err(()) => telemetry.add(core, input.plugin, Metric::DecodeFailures, 1),
        }
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
