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
//! Dispatch is an enum, not `dyn`, as for splitters.

pub mod payload;
pub mod protobuf;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod strftime;

pub use payload::{PayloadEncoder, PayloadOptions};
pub use protobuf::ProtobufEncoder;

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
    #[error("the encoding of {bytes} bytes is above max_message_size ({max} bytes)")]
    TooLarge { bytes: usize, max: usize },
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
    #[error("max_message_size {bytes} is outside 1..={MESSAGE_BYTES_CEILING} bytes")]
    MessageBytesMax { bytes: usize },
    #[error(transparent)]
    TsFormat(#[from] strftime::TsFormatError),
}

/// One encoder of any kind.
#[derive(Debug)]
pub enum Encoder {
    Protobuf(ProtobufEncoder),
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
