//! Encoders: turn a message into the bytes an output writes, appended to its batch buffer.
//!
//! Every encoder works in two steps: `prepare` computes the exact size of the encoding (and
//! caches whatever it needs, such as a formatted timestamp), then `write` appends exactly that
//! many bytes. That is what lets an output's `use_framing` write the Heka frame header first
//! and encode straight into the batch behind it, with no temporary copy
//! ([`crate::message::framing::begin_frame`]).
//!
//! Invariants and limits:
//! - No allocation per message once the batch buffer has grown to its working size.
//! - A framed encoding is at most `max_message_size` bytes, or it is refused
//!   ([`EncodeError::TooLarge`]), since a Heka receiver would drop it anyway.
//! - A message that encodes to nothing (a PayloadEncoder given no Payload) writes nothing,
//!   not even a frame, and is counted in [`EncoderStats::empty_messages`].
//!
//! The built-in encoders dispatch as an enum ([`Encoder`]). The contract
//! ([`crate::component`]): each encoder kind is one module here owning its raw config, its plan
//! (an [`EncoderKind`]) and its per-core build, an [`Encode`]; [`KINDS`] lists them.

pub mod elasticsearch;
pub mod influx;
pub mod interpolate;
pub mod payload;
pub mod protobuf;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod strftime;

pub use payload::{PayloadEncoder, PayloadOptions};
pub use protobuf::ProtobufEncoder;

use std::fmt;
use std::sync::Arc;

use crate::component::{PlanContext, Registration};
use crate::config::plan::GlobalPlan;
use crate::config::{ConfigError, Section};
use crate::limits::MESSAGE_BYTES_CEILING;
use crate::message::framing::{begin_frame, FrameError, Signer};
use crate::message::MessageView;

/// Per-encoder counters, summed across cores by the runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Messages that produced output.
    pub messages: u64,
    /// Bytes appended, framing included.
    pub bytes: u64,
    /// Messages that encoded to nothing (no Payload for a PayloadEncoder).
    pub empty_messages: u64,
    /// Messages refused with an [`EncodeError`].
    pub failures: u64,
}

/// Why one message could not be encoded. The output drops it and counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoding is longer than `max_message_size`, which a Heka receiver would drop.
    #[error("the encoding of {bytes} bytes is above max_message_size ({max} bytes)")]
    TooLarge {
        /// The length of the encoding, in bytes.
        bytes: usize,
        /// The encoder's `max_message_size`, in bytes.
        max: usize,
    },
    /// The Heka frame around the encoding could not be written.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl EncodeError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            EncodeError::TooLarge { .. } => "too_large",
            EncodeError::Frame(error) => error.code(),
        }
    }
}

/// Why an encoder could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// The `max_message_size` given is 0 or above `MESSAGE_BYTES_CEILING`.
    #[error("max_message_size {bytes} is outside 1..={MESSAGE_BYTES_CEILING} bytes")]
    MessageBytesMax {
        /// The refused `max_message_size`, in bytes.
        bytes: usize,
    },
    /// The `ts_format` does not compile.
    #[error(transparent)]
    TsFormat(#[from] strftime::TsFormatError),
}

/// One encoder of any kind.
#[derive(Debug)]
pub enum Encoder {
    /// ProtobufEncoder: the message as Heka's protobuf.
    Protobuf(ProtobufEncoder),
    /// PayloadEncoder: the message's Payload, optionally with a timestamp and a newline.
    Payload(PayloadEncoder),
}

impl Encoder {
    /// Appends the encoding of `message` to `out`. Returns the bytes appended.
    ///
    /// # Errors
    /// None today for unframed output; the signature leaves room for encoders that can fail.
    #[inline]
    pub fn encode(
        &mut self,
        message: &MessageView<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let bytes = self.prepare(message);
        if bytes == 0 {
            self.stats_mut().empty_messages += 1;
            return Ok(0);
        }
        let before = out.len();
        self.write(message, out);
        debug_assert_eq!(out.len() - before, bytes);
        let stats = self.stats_mut();
        stats.messages += 1;
        stats.bytes += bytes as u64;
        Ok(bytes)
    }

    /// Appends `message` as one Heka frame (signed when `signer` is given): the header first,
    /// then the encoding written in place behind it. Returns the bytes appended.
    ///
    /// # Errors
    /// The encoding is above `max_message_size`; `out` is left as it was.
    pub fn encode_framed(
        &mut self,
        message: &MessageView<'_>,
        signer: Option<&Signer>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let bytes = self.prepare(message);
        if bytes == 0 {
            self.stats_mut().empty_messages += 1;
            return Ok(0);
        }
        let max = self.message_bytes_max();
        if bytes > max {
            self.stats_mut().failures += 1;
            return Err(EncodeError::TooLarge { bytes, max });
        }
        let before = out.len();
        let framed = begin_frame(out, bytes, signer).and_then(|frame| {
            self.write(message, out);
            frame.finish(out)
        });
        if let Err(error) = framed {
            self.stats_mut().failures += 1;
            return Err(error.into());
        }
        let appended = out.len() - before;
        let stats = self.stats_mut();
        stats.messages += 1;
        stats.bytes += appended as u64;
        Ok(appended)
    }

    /// The exact size `write` will append; 0 means "nothing to write".
    #[inline]
    fn prepare(&mut self, message: &MessageView<'_>) -> usize {
        match self {
            Encoder::Protobuf(encoder) => encoder.prepare(message),
            Encoder::Payload(encoder) => encoder.prepare(message),
        }
    }

    #[inline]
    fn write(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        match self {
            Encoder::Protobuf(encoder) => encoder.write(message, out),
            Encoder::Payload(encoder) => encoder.write(message, out),
        }
    }

    fn message_bytes_max(&self) -> usize {
        match self {
            Encoder::Protobuf(encoder) => encoder.message_bytes_max,
            Encoder::Payload(encoder) => encoder.message_bytes_max,
        }
    }

    fn stats_mut(&mut self) -> &mut EncoderStats {
        match self {
            Encoder::Protobuf(encoder) => &mut encoder.stats,
            Encoder::Payload(encoder) => &mut encoder.stats,
        }
    }

    /// The counters since the last [`Encoder::take_stats`].
    pub fn stats(&self) -> &EncoderStats {
        match self {
            Encoder::Protobuf(encoder) => &encoder.stats,
            Encoder::Payload(encoder) => &encoder.stats,
        }
    }

    /// Returns the counters and zeroes them.
    pub fn take_stats(&mut self) -> EncoderStats {
        std::mem::take(self.stats_mut())
    }
}

/// Checks a `max_message_size` given to an encoder.
fn check_message_bytes_max(bytes: usize) -> Result<usize, EncoderError> {
    if bytes == 0 || bytes > MESSAGE_BYTES_CEILING {
        return Err(EncoderError::MessageBytesMax { bytes });
    }
    Ok(bytes)
}

/// Every encoder kind a section can name, by the Heka type names that select it.
#[cfg(feature = "lua")]
pub static KINDS: &[Registration<Arc<dyn EncoderKind>>] = &[
    protobuf::REGISTRATION,
    payload::REGISTRATION,
    sandbox::REGISTRATION,
    elasticsearch::esjson::REGISTRATION,
    elasticsearch::logstash::REGISTRATION,
    influx::REGISTRATION,
];
/// Every encoder kind a section can name, by the Heka type names that select it.
#[cfg(not(feature = "lua"))]
pub static KINDS: &[Registration<Arc<dyn EncoderKind>>] = &[
    protobuf::REGISTRATION,
    payload::REGISTRATION,
    elasticsearch::esjson::REGISTRATION,
    elasticsearch::logstash::REGISTRATION,
    influx::REGISTRATION,
];

/// One encoder kind's validated plan, and how a core builds its encoder.
pub trait EncoderKind: crate::component::AsAny + fmt::Debug + Send + Sync {
    /// The Heka type name (or what `gyges validate` shows for it).
    fn type_name(&self) -> &'static str;

    /// Whether it runs Lua (a SandboxEncoder, or one wrapped): its output then shows the
    /// `sandbox_*` gauges.
    fn sandboxed(&self) -> bool {
        false
    }

    /// Builds the encoder of the core in row `core_row` (a Lua state stays on its core; its
    /// preserved data is that core's), or, with `None`, off any core (the check at startup).
    ///
    /// # Errors
    /// An option the encoder cannot honour, or a script that does not load.
    fn build(
        &self,
        global: &GlobalPlan,
        core_row: Option<usize>,
    ) -> Result<Box<dyn Encode>, String>;
}

/// The failure of one message's encoding (counted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeFailed;

/// How an output frames each encoding.
#[derive(Debug, Clone, Copy)]
pub enum Framing<'a> {
    /// Bare encodings (`use_framing = false`).
    None,
    /// One Heka stream frame per encoding (`use_framing`), signed with the output's signer
    /// when it has one (`[name.signer]`).
    Heka(Option<&'a Signer>),
}

/// One core's encoder of one output.
pub trait Encode {
    /// Appends `message`'s encoding to `out`, framed as `framing` says, and returns the bytes
    /// added: 0 when the message encodes to nothing.
    ///
    /// # Errors
    /// The message cannot be encoded; nothing is appended.
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed>;

    /// A Lua encoder's resource use, published as gauges on its output's row.
    fn sandbox_usage(&self) -> Option<crate::filter::SandboxUsage> {
        None
    }
}

impl Encode for Encoder {
    #[inline]
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        let encoded = match framing {
            Framing::Heka(signer) => self.encode_framed(message, signer, out),
            Framing::None => self.encode(message, out),
        };
        encoded.map_err(|_| EncodeFailed)
    }
}

/// The type of the encoder an output names with `encoder` (or its `default`): a section's
/// `type`, or the name itself (an unknown name or a bad `type` is reported by [`resolve`]).
pub fn type_of<'a>(
    context: &'a PlanContext<'_>,
    name: Option<&'a str>,
    default: &'a str,
) -> &'a str {
    let name = name.unwrap_or(default);
    context
        .sections
        .get(name)
        .and_then(|section| section.plugin_type().ok())
        .unwrap_or(name)
}

/// The encoder an output names with `encoder` (or its `default`): a section of that name, or,
/// with no such section, a kind of that type with its default options. The encoder is built
/// once here, so an option it cannot honour fails at startup.
///
/// # Errors
/// No such section or type, a bad option, or a script that does not load.
pub fn resolve(
    output: &Section,
    context: &PlanContext<'_>,
    name: Option<&str>,
    default: &str,
) -> Result<Arc<dyn EncoderKind>, ConfigError> {
    let name = name.unwrap_or(default);
    let unknown = || output.error(Some("encoder"), format!("no encoder named `{name}`"));
    let (section, synthetic) = match context.sections.get(name) {
        Some(section) => ((*section).clone(), false),
        None => (Section::synthetic(output, name), true),
    };
    let type_name = if synthetic {
        name
    } else {
        section.plugin_type()?
    };
    let registration = match Registration::find(KINDS, type_name) {
        Some(registration) => registration,
        None if synthetic => return Err(unknown()),
        None => return Err(section.error(Some("type"), format!("`{type_name}` is not an encoder"))),
    };
    let kind = (registration.plan)(&section, context).map_err(|error| {
        if synthetic {
            output.error(
                Some("encoder"),
                format!("`{name}` needs its own section: {error}"),
            )
        } else {
            error
        }
    })?;
    kind.build(context.global, None).map_err(|message| {
        if synthetic {
            output.error(Some("encoder"), message)
        } else {
            section.error(None, message)
        }
    })?;
    Ok(kind)
}
