//! Splitters: find the records in a stream of bytes.
//!
//! A splitter is handed a *window*: the bytes of one connection that are not consumed yet.
//! It answers with one [`Step`]:
//!
//! - `Record { start, end, consumed, signer }`: `window[start..end]` is a record; the caller
//!   drops `consumed` bytes (`end <= consumed`) from the front of the window. Bytes before
//!   `start` were garbage or a dropped record, already counted.
//! - `NeedMore { consumed }`: no complete record; drop `consumed` bytes and read more.
//!
//! Invariants every splitter keeps (the tests check them against naive oracles):
//! - The next window starts with the bytes the previous step left, plus whatever was read
//!   since. Splitters keep scan state across calls on that promise, so a record that arrives
//!   in many small reads is scanned once, not once per read.
//! - A record is never longer than `message_bytes_max` (asserted before it is returned).
//! - After `NeedMore`, fewer than `message_bytes_max + FRAME_OVERHEAD_BYTES_MAX` bytes stay
//!   unconsumed, so a bounded buffer ([`buffer::StreamBuffer`]) always has room to read.
//! - No allocation, no panic, whatever the bytes. Bad bytes are counted in
//!   [`SplitterStats`] and skipped; the stream goes on.
//!
//! Dispatch is an enum, not `dyn`: the per-record call is a match the compiler can inline.

pub mod buffer;
pub mod heka_frame;
pub mod null;
pub mod plan;
pub mod syslog;
pub mod token;

pub use buffer::{Record, StreamBuffer};
pub use heka_frame::HekaFrameSplitter;
pub use null::NullSplitter;
pub use syslog::SyslogSplitter;
pub use token::TokenSplitter;

use crate::limits::{MESSAGE_BYTES_CEILING, TOKEN_COUNT_MAX};
use crate::message::framing::{SignerError, SignerId};

/// What a splitter found in a window. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `window[start..end]` is a record; drop `consumed` bytes.
    Record {
        /// Offset in the window of the record's first byte; bytes before it were skipped.
        start: usize,
        /// Offset in the window just past the record's last byte.
        end: usize,
        /// Bytes the caller drops from the front of the window, at least `end`.
        consumed: usize,
        /// The signer whose HMAC verified a signed Heka frame; `None` when the record is
        /// unsigned or was not authenticated (`skip_authentication`, other splitters).
        signer: Option<SignerId>,
    },
    /// No complete record: drop `consumed` bytes, then read more.
    NeedMore {
        /// Bytes the caller drops from the front of the window before reading more.
        consumed: usize,
    },
}

/// Per-splitter counters. Plain integers: the runtime sums them across connections and cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitterStats {
    /// Records returned.
    pub records: u64,
    /// Bytes of the records returned (for framed streams, message bytes only).
    pub record_bytes: u64,
    /// Bytes skipped because they were not part of a record: garbage between frames,
    /// corrupt headers, an incomplete record at the end of a stream.
    pub discarded_bytes: u64,
    /// Records dropped for being longer than `max_message_size`.
    pub oversize_records: u64,
    /// Bytes of those records (framing included).
    pub oversize_bytes: u64,
    /// Signed frames dropped because their signer is unknown or their HMAC does not match.
    pub auth_failures: u64,
}

impl SplitterStats {
    /// Adds another set of counters to this one.
    pub fn add(&mut self, other: &SplitterStats) {
        self.records += other.records;
        self.record_bytes += other.record_bytes;
        self.discarded_bytes += other.discarded_bytes;
        self.oversize_records += other.oversize_records;
        self.oversize_bytes += other.oversize_bytes;
        self.auth_failures += other.auth_failures;
    }
}

/// Why a splitter could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitterError {
    /// The `max_message_size` given is 0 or above `MESSAGE_BYTES_CEILING`.
    #[error("max_message_size {bytes} is outside 1..={MESSAGE_BYTES_CEILING} bytes")]
    MessageBytesMax {
        /// The refused `max_message_size`, in bytes.
        bytes: usize,
    },
    /// A TokenSplitter's `count` is 0 or above `TOKEN_COUNT_MAX`.
    #[error("count {count} is outside 1..={TOKEN_COUNT_MAX}")]
    TokenCount {
        /// The refused delimiter count.
        count: usize,
    },
    /// A stream buffer's read size is outside its bounds.
    #[error("read size {bytes} is outside {min}..={max} bytes")]
    ReadBytes {
        /// The refused read size, in bytes.
        bytes: usize,
        /// The smallest read size accepted (`READ_BUFFER_BYTES_MIN`), in bytes.
        min: usize,
        /// The largest read size accepted (`READ_BUFFER_BYTES_MAX`), in bytes.
        max: usize,
    },
    /// The HMAC signer keys are refused (a bad key name, a key too long, too many keys).
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// Checks a `max_message_size` given to a splitter.
fn check_message_bytes_max(bytes: usize) -> Result<usize, SplitterError> {
    if bytes == 0 || bytes > MESSAGE_BYTES_CEILING {
        return Err(SplitterError::MessageBytesMax { bytes });
    }
    Ok(bytes)
}

/// One splitter of any kind.
#[derive(Debug)]
pub enum Splitter {
    /// TokenSplitter: records end with the `count`th delimiter byte.
    Token(TokenSplitter),
    /// HekaFramingSplitter: records are Heka stream frames, optionally signed.
    HekaFrame(HekaFrameSplitter),
    /// NullSplitter: every read (a datagram) is one record.
    Null(NullSplitter),
    /// SyslogSplitter: RFC 6587 octet counting or newline framing, decided per connection.
    Syslog(SyslogSplitter),
}

impl Splitter {
    /// Finds the next record in `window`. See the module docs for the contract.
    #[inline]
    pub fn split(&mut self, window: &[u8]) -> Step {
        let step = match self {
            Splitter::Token(splitter) => splitter.split(window),
            Splitter::HekaFrame(splitter) => splitter.split(window),
            Splitter::Null(splitter) => splitter.split(window),
            Splitter::Syslog(splitter) => splitter.split(window),
        };
        if let Step::Record {
            start,
            end,
            consumed,
            ..
        } = step
        {
            // The pair of the decoder's entry check: no record above the configured limit.
            assert!(start <= end && end <= consumed && consumed <= window.len());
            assert!(end - start <= self.message_bytes_max());
        }
        step
    }

    /// Ends the stream: call once `split` has returned `NeedMore` for `window`. Returns the
    /// final incomplete record when the splitter delivers one (a TokenSplitter with
    /// `deliver_incomplete_final`), otherwise counts the bytes as discarded. Either way the
    /// whole window is consumed and the splitter is ready for a new stream.
    pub fn end_of_stream(&mut self, window: &[u8]) -> Step {
        match self {
            Splitter::Token(splitter) => splitter.end_of_stream(window),
            Splitter::HekaFrame(splitter) => splitter.end_of_stream(window),
            Splitter::Null(splitter) => splitter.end_of_stream(window),
            Splitter::Syslog(splitter) => splitter.end_of_stream(window),
        }
    }

    /// The acknowledgement requests a Heka-framed stream carried since the last call.
    pub fn take_requests(&mut self) -> Option<crate::message::ack::Requests> {
        match self {
            Splitter::HekaFrame(splitter) => splitter.take_requests(),
            Splitter::Token(_) | Splitter::Null(_) | Splitter::Syslog(_) => None,
        }
    }

    /// The counters since the last [`Splitter::take_stats`].
    pub fn stats(&self) -> &SplitterStats {
        match self {
            Splitter::Token(splitter) => &splitter.stats,
            Splitter::HekaFrame(splitter) => &splitter.stats,
            Splitter::Null(splitter) => &splitter.stats,
            Splitter::Syslog(splitter) => &splitter.lines.stats,
        }
    }

    /// Returns the counters and zeroes them, for a periodic flush into per-core totals.
    pub fn take_stats(&mut self) -> SplitterStats {
        let stats = match self {
            Splitter::Token(splitter) => &mut splitter.stats,
            Splitter::HekaFrame(splitter) => &mut splitter.stats,
            Splitter::Null(splitter) => &mut splitter.stats,
            Splitter::Syslog(splitter) => &mut splitter.lines.stats,
        };
        std::mem::take(stats)
    }

    /// The largest record this splitter returns.
    #[inline]
    pub fn message_bytes_max(&self) -> usize {
        match self {
            Splitter::Token(splitter) => splitter.message_bytes_max,
            Splitter::HekaFrame(splitter) => splitter.message_bytes_max,
            Splitter::Null(splitter) => splitter.message_bytes_max,
            Splitter::Syslog(splitter) => splitter.lines.message_bytes_max,
        }
    }

    /// The name of a signer this splitter verified.
    pub fn signer_name(&self, id: SignerId) -> Option<&[u8]> {
        match self {
            Splitter::HekaFrame(splitter) => splitter.signer_name(id),
            Splitter::Token(_) | Splitter::Null(_) | Splitter::Syslog(_) => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::{Splitter, Step};

    /// Feeds `stream` to `splitter` in chunks whose sizes cycle through `chunk_sizes`, the way
    /// a [`super::StreamBuffer`] does, and collects each record with its end-of-stream one.
    pub fn split_chunked(
        splitter: &mut Splitter,
        stream: &[u8],
        chunk_sizes: &[usize],
    ) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut chunk = 0;
        loop {
            loop {
                match splitter.split(&pending) {
                    Step::Record {
                        start,
                        end,
                        consumed,
                        ..
                    } => {
                        records.push(pending[start..end].to_vec());
                        pending.drain(..consumed);
                    }
                    Step::NeedMore { consumed } => {
                        pending.drain(..consumed);
                        break;
                    }
                }
            }
            if fed == stream.len() {
                break;
            }
            let size = chunk_sizes[chunk % chunk_sizes.len()].max(1);
            chunk += 1;
            let next = (fed + size).min(stream.len());
            pending.extend_from_slice(&stream[fed..next]);
            fed = next;
        }
        if let Step::Record { start, end, .. } = splitter.end_of_stream(&pending) {
            records.push(pending[start..end].to_vec());
        }
        records
    }
}
