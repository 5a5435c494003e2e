//! Decoders: turn a record into a message the router can read.
//!
//! - [`protobuf`]: the record is a Heka protobuf message; it is checked, never decoded.
//! - `sandbox` (feature `lua`): a Lua decoder, one Lua state per core.
//! - [`payload_regex`], [`payload_json`]: a regex or JSONPaths over the Payload, and a
//!   [`template`] (`message_fields`) that makes the message; [`scribble`]: fixed fields.
//! - [`multi`]: several decoders, first-wins or chained through [`Decoder::decode_message`].
//! - [`statsd`]: StatsdInput's parser; its stats go to a StatAccumInput's core.
//! - no decoder: the record becomes the Payload of a message the input fills in (Uuid,
//!   Timestamp, Type and Logger = the input's name, Hostname = the sender), as Heka does.
//!
//! The contract ([`crate::component`]): each decoder kind is one module here owning its raw
//! config, its plan (a [`DecoderKind`]) and its per-core build, a [`Decoder`]; [`KINDS`] lists
//! the kinds a section can name.

pub mod multi;
pub mod payload_json;
pub mod payload_regex;
pub mod protobuf;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod scribble;
pub mod statsd;
pub mod syslog;
pub mod template;
#[cfg(test)]
pub mod testing;

use std::fmt;
use std::sync::Arc;

use crate::component::{PlanContext, Registration};
use crate::config::plan::{GlobalPlan, SplitterPlan};
use crate::config::{ConfigError, Section};
use crate::message::{LineMeta, LineView, MessageView, UuidSource};
use crate::runtime::router::Router;
use crate::telemetry::Telemetry;

/// Every decoder kind a section can name, by the Heka type names that select it.
#[cfg(feature = "lua")]
pub static KINDS: &[Registration<Arc<dyn DecoderKind>>] = &[
    protobuf::REGISTRATION,
    sandbox::REGISTRATION,
    syslog::decoder::REGISTRATION,
    payload_regex::REGISTRATION,
    scribble::REGISTRATION,
    multi::REGISTRATION,
    payload_json::REGISTRATION,
];
/// Every decoder kind a section can name, by the Heka type names that select it.
#[cfg(not(feature = "lua"))]
pub static KINDS: &[Registration<Arc<dyn DecoderKind>>] = &[
    protobuf::REGISTRATION,
    syslog::decoder::REGISTRATION,
    payload_regex::REGISTRATION,
    scribble::REGISTRATION,
    multi::REGISTRATION,
    payload_json::REGISTRATION,
];

/// One decoder kind's validated plan, and how a core builds its decoder.
pub trait DecoderKind: crate::component::AsAny + fmt::Debug + Send + Sync {
    /// The Heka type name (or what `gyges validate` shows for it).
    fn type_name(&self) -> &'static str;

    /// The StatAccumInput this decoder sends stats to, if it does.
    fn stat_accumulator(&self) -> Option<&str> {
        None
    }

    /// Whether it runs Lua (a SandboxDecoder, or a MultiDecoder with one): its input then
    /// shows the `sandbox_*` gauges.
    fn sandboxed(&self) -> bool {
        false
    }

    /// Builds the decoder of one core.
    ///
    /// # Errors
    /// The decoder cannot start (a Lua script that does not load, a filter it names that
    /// does not exist).
    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String>;
}

/// What a decoder's per-core build is given.
pub struct DecoderBuild<'a> {
    /// The global plan: message size, inject bounds, hostname and directories for the decoder.
    pub global: &'a GlobalPlan,
    /// The index of the filter named so, if any (a StatAccumInput).
    pub filter_index: crate::component::FilterIndex<'a>,
    /// This core's row.
    pub row: usize,
}

/// What a decoder needs for one record besides its bytes: where to route, what to count, and
/// the headers of the message the record makes without a decoder.
pub struct DecodeContext<'a> {
    /// This core's router, which matches each decoded message and hands it to its outputs and
    /// filters.
    pub router: &'a mut Router,
    /// The counters the decoder adds to.
    pub telemetry: &'a Telemetry,
    /// This core's row in [`Telemetry`] (its position in the plan's core list, not the CPU).
    pub core: usize,
    /// The input's plugin index in [`Telemetry`].
    pub plugin: usize,
    /// The connection's Type, Logger and Hostname for a message made without a decoder.
    pub meta: &'a LineMeta,
    /// When the record was read, in nanoseconds since the Unix epoch: the Timestamp of a
    /// message made without a decoder.
    pub now_ns: i64,
    /// This core's UUID generator, for the Uuid of each message the record makes.
    pub uuids: &'a mut UuidSource,
}

impl<'a> DecodeContext<'a> {
    /// The message `record` makes without a decoder: the record is its Payload.
    pub fn line<'r>(&mut self, record: &'r [u8]) -> LineView<'r>
    where
        'a: 'r,
    {
        LineView {
            payload: record,
            uuid: self.uuids.next_uuid(),
            timestamp: self.now_ns,
            meta: self.meta,
        }
    }
}

/// One core's decoder of one input.
///
/// Two entry points: [`Decoder::decode`] takes the record an input split and routes what it
/// makes; [`Decoder::decode_message`] takes a message (what the decoder before it in a
/// MultiDecoder chain made, or the message a record makes without a decoder) and appends what
/// it makes to a buffer instead of routing it, so that a MultiDecoder can feed it to the next
/// decoder. Both fail alike on the same input and make the same messages.
pub trait Decoder {
    /// Decodes one record and routes what it makes.
    ///
    /// # Errors
    /// The record does not decode: a short code for the log (the caller counts it, and sends
    /// the record on as a plain payload if the input says so).
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut DecodeContext<'_>,
    ) -> Result<(), &'static str>;

    /// Decodes `message` and appends each message it makes to `out` as a record in the
    /// [`crate::filter::injected_records`] framing (a little-endian `u32` length, then Heka
    /// protobuf). Routes nothing; `context` gives the clock, the UUIDs and the counters.
    ///
    /// # Errors
    /// As [`Decoder::decode`]; `out` is then left as it was. The default refuses: a decoder
    /// that cannot take a message (StatsdInput's parser) cannot be a MultiDecoder sub.
    fn decode_message(
        &mut self,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let _ = (message, context, out);
        Err("not_chainable")
    }
}

/// Appends one record in the [`crate::filter::injected_records`] framing, its bytes written by
/// `write`: the length is patched in after.
pub fn push_framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

/// As [`push_framed`] for a writer that may fail: on failure `out` is left as it was.
///
/// # Errors
/// `write`'s.
pub fn try_push_framed(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if let Err(code) = write(out) {
        out.truncate(start);
        return Err(code);
    }
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    Ok(())
}

/// Appends `message` unchanged as one record (a line is encoded as the message it makes).
pub fn push_message(out: &mut Vec<u8>, message: &MessageView<'_>) {
    match message {
        MessageView::Proto(view) => crate::filter::push_record(out, view.bytes()),
        MessageView::Line(line) => push_framed(out, |out| crate::message::encode_line(line, out)),
    }
}

/// Routes every record of `records` (the [`crate::filter::injected_records`] framing); one
/// that is not a valid message is counted as a decode failure and dropped.
pub fn route_records(records: &[u8], context: &mut DecodeContext<'_>) {
    for record in crate::filter::injected_records(records) {
        match protobuf::decode(record) {
            Ok(view) => context.router.route(&MessageView::Proto(view)),
            Err(_) => context.telemetry.add(
                context.core,
                context.plugin,
                crate::telemetry::Metric::DecodeFailures,
                1,
            ),
        }
    }
}

/// The decoder an input names with `decoder`: a section of that name, or a kind of that type
/// with its default options. With no `decoder`, Heka framing implies ProtobufDecoder and other
/// splitters none; `decoder = ""` is none.
///
/// # Errors
/// No such section or type, or the decoder's section is wrong.
pub fn resolve(
    input: &Section,
    context: &PlanContext<'_>,
    name: Option<&str>,
    splitter: &SplitterPlan,
) -> Result<Option<Arc<dyn DecoderKind>>, ConfigError> {
    let name = match name {
        None if matches!(splitter, SplitterPlan::HekaFrame { .. }) => "ProtobufDecoder",
        None | Some("") => return Ok(None),
        Some(name) => name,
    };
    let (section, synthetic) = match context.sections.get(name) {
        Some(section) => ((*section).clone(), false),
        None => (Section::synthetic(input, name), true),
    };
    let type_name = if synthetic {
        name
    } else {
        section.plugin_type()?
    };
    let Some(registration) = Registration::find(KINDS, type_name) else {
        return Err(input.error(Some("decoder"), format!("no decoder named `{name}`")));
    };
    let kind = (registration.plan)(&section, context).map_err(|error| {
        if synthetic {
            input.error(
                Some("decoder"),
                format!("`{name}` needs its own section: {error}"),
            )
        } else {
            error
        }
    })?;
    Ok(Some(kind))
}
