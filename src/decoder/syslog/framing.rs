//! RFC 6587 framing of syslog over TCP, as pure functions for the input that will use them.
//!
//! A connection carries either octet-counted frames (`MSG-LEN SP MSG`, MSG-LEN a decimal
//! without a leading zero) or non-transparent frames (each message ends with `\n`, what a
//! TokenSplitter cuts). RFC 6587 §3.4 lets a receiver tell them apart by the first byte: a
//! digit starts an octet count, `<` starts a message. [`detect`] decides from the first bytes
//! of a connection; [`next_frame`] cuts one octet-counted frame from a buffer.
//!
//! Bounds: a count is at most `SYSLOG_FRAME_LENGTH_DIGITS_MAX` digits and at most the
//! caller's `max_message_size`; a larger count is [`Frame::Invalid`] before anything is
//! allocated or waited for, so a sender cannot make the reader buffer more than one message.

use std::ops::Range;

use crate::limits::{MESSAGE_BYTES_CEILING, SYSLOG_FRAME_LENGTH_DIGITS_MAX};

/// How a connection frames its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `MSG-LEN SP MSG`: cut with [`next_frame`].
    OctetCounting,
    /// Messages end with `\n` (anything not starting with an octet count is read this way).
    NonTransparent,
    /// Only digits so far: wait for more bytes.
    Undecided,
}

/// Decides the framing from the first bytes of a connection. A nonzero digit followed by at
/// most `SYSLOG_FRAME_LENGTH_DIGITS_MAX` digits and a space is an octet count; digits that
/// reach the end of `first_bytes` leave it undecided; anything else is newline framing.
pub fn detect(first_bytes: &[u8]) -> Framing {
    match first_bytes.first() {
        None => return Framing::Undecided,
        Some(b'1'..=b'9') => {}
        Some(_) => return Framing::NonTransparent,
    }
    let digits = first_bytes
        .iter()
        .take(SYSLOG_FRAME_LENGTH_DIGITS_MAX + 1)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits > SYSLOG_FRAME_LENGTH_DIGITS_MAX {
        return Framing::NonTransparent;
    }
    match first_bytes.get(digits) {
        Some(b' ') => Framing::OctetCounting,
        None => Framing::Undecided,
        Some(_) => Framing::NonTransparent,
    }
}

/// One step of cutting octet-counted frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The MSG of the first frame is `buffer[range]`; the frame ends at `range.end`, where the
    /// next one starts.
    Complete(Range<usize>),
    /// The buffer holds the start of a frame that is not all there yet.
    Incomplete,
    /// The buffer does not start with a valid frame; the connection cannot be resynchronised
    /// (octet counting has no marker to search for), so the input closes it.
    Invalid(FrameError),
}

/// Why a buffer does not start with an octet-counted frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame starts with something other than a digit from 1 to 9: there is no octet count.
    #[error("the frame does not start with a nonzero digit")]
    NotALength,
    /// The octet count is followed by a byte other than a digit or the space that must end it.
    #[error("the octet count is not followed by a space")]
    NoSpace,
    /// The octet count has more than `SYSLOG_FRAME_LENGTH_DIGITS_MAX` digits, so no allowed
    /// frame can be that long.
    #[error("the octet count has more digits than any allowed message size")]
    LengthDigits,
    /// The octet count is over `max_message_size`; the frame is refused before its bytes are read.
    #[error("the octet count is larger than max_message_size")]
    TooLarge,
}

impl FrameError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            FrameError::NotALength => "not_a_length",
            FrameError::NoSpace => "no_space",
            FrameError::LengthDigits => "length_digits",
            FrameError::TooLarge => "too_large",
        }
    }
}

/// Cuts the first octet-counted frame from `buffer`. A count over `max_message_size` is
/// [`Frame::Invalid`] as soon as its digits are read, without waiting for its bytes.
///
/// # Panics
/// If `max_message_size` is over `MESSAGE_BYTES_CEILING`: the configuration refuses that, so
/// it is a bug.
pub fn next_frame(buffer: &[u8], max_message_size: usize) -> Frame {
    assert!(max_message_size <= MESSAGE_BYTES_CEILING);
    match buffer.first() {
        None => return Frame::Incomplete,
        Some(b'1'..=b'9') => {}
        Some(_) => return Frame::Invalid(FrameError::NotALength),
    }
    let mut length = 0usize;
    let mut digits = 0usize;
    loop {
        match buffer.get(digits) {
            None => return Frame::Incomplete,
            Some(b' ') => break,
            Some(&byte @ b'0'..=b'9') => {
                if digits == SYSLOG_FRAME_LENGTH_DIGITS_MAX {
                    return Frame::Invalid(FrameError::LengthDigits);
                }
                length = length * 10 + usize::from(byte - b'0');
                digits += 1;
            }
            Some(_) => return Frame::Invalid(FrameError::NoSpace),
        }
    }
    if length > max_message_size {
        return Frame::Invalid(FrameError::TooLarge);
    }
    let start = digits + 1;
    let end = start + length;
    if buffer.len() < end {
        return Frame::Incomplete;
    }
    let frame = start..end;
    assert!(frame.len() <= max_message_size);
    Frame::Complete(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MESSAGE_BYTES_DEFAULT;

    #[test]
    fn detect_tells_octet_counting_from_newline_framing() {
        assert_eq!(detect(b"57 <13>1 - - - - - - hi"), Framing::OctetCounting);
        assert_eq!(detect(b"1 x"), Framing::OctetCounting);
        assert_eq!(
            detect(b"<13>Oct 11 22:14:15 host tag: hi\n"),
            Framing::NonTransparent
        );
        assert_eq!(
            detect(b"Oct 11 22:14:15 host tag: hi\n"),
            Framing::NonTransparent
        );
        assert_eq!(
            detect(b"0 x"),
            Framing::NonTransparent,
            "MSG-LEN has no leading zero"
        );
        assert_eq!(detect(b"12a"), Framing::NonTransparent);
        assert_eq!(
            detect(b"123456789 x"),
            Framing::NonTransparent,
            "nine digits is no count"
        );
        assert_eq!(detect(b""), Framing::Undecided);
        assert_eq!(detect(b"12345"), Framing::Undecided);
    }

    #[test]
    fn next_frame_cuts_consecutive_frames() {
        let stream = b"5 hello11 <13>1 - - -3 abc";
        let mut at = 0;
        let mut messages = Vec::new();
        while let Frame::Complete(range) = next_frame(&stream[at..], MESSAGE_BYTES_DEFAULT) {
            messages.push(&stream[at + range.start..at + range.end]);
            at += range.end;
        }
        assert_eq!(messages, [&b"hello"[..], b"<13>1 - - -", b"abc"]);
        assert_eq!(at, stream.len());
        assert_eq!(next_frame(b"", 1024), Frame::Incomplete);
    }

    #[test]
    fn next_frame_waits_for_partial_frames_and_refuses_bad_ones() {
        assert_eq!(next_frame(b"12", 1024), Frame::Incomplete);
        assert_eq!(next_frame(b"12 short", 1024), Frame::Incomplete);
        assert_eq!(
            next_frame(b"0 x", 1024),
            Frame::Invalid(FrameError::NotALength)
        );
        assert_eq!(
            next_frame(b"<13>x", 1024),
            Frame::Invalid(FrameError::NotALength)
        );
        assert_eq!(
            next_frame(b"12x", 1024),
            Frame::Invalid(FrameError::NoSpace)
        );
        assert_eq!(
            next_frame(b"1025 ", 1024),
            Frame::Invalid(FrameError::TooLarge)
        );
        assert_eq!(next_frame(b"1024 ", 1024), Frame::Incomplete);
        // Refused from the digits alone: no byte of the claimed message is awaited.
        assert_eq!(
            next_frame(b"999999999", 1024),
            Frame::Invalid(FrameError::LengthDigits)
        );
        assert_eq!(
            next_frame(b"99999999 ", MESSAGE_BYTES_CEILING),
            Frame::Invalid(FrameError::TooLarge)
        );
    }
}
