//! SyslogSplitter: RFC 6587 framing of syslog over TCP, detected per connection.
//!
//! A connection's first bytes decide its framing ([`framing::detect`]): a nonzero digit run
//! ending in a space is an octet count (`MSG-LEN SP MSG`), anything else is newline framing,
//! cut by a [`TokenSplitter`] on `\n`. The decision holds for the connection, so a
//! newline-framed message that happens to start with digits is never read as a count.
//!
//! Records:
//! - an octet-counted record is the MSG alone, without its count; `\n` and `\r` between two
//!   frames (some senders end each frame with one) are skipped and not counted;
//! - a newline-framed record keeps its `\n`, which the SyslogDecoder ignores; the text after
//!   the last `\n` when the connection closes is delivered too, as a sender that closes
//!   after its last message need not end it with a newline.
//!
//! Limits and bad bytes:
//! - an octet count over `max_message_size` is dropped whole by its length, without
//!   buffering it, and counted as oversize; the next frame is read after it;
//! - a newline-framed record over `max_message_size` is dropped and counted as the
//!   TokenSplitter does;
//! - bytes where an octet count should be and is not (`framing::FrameError`) cannot be
//!   resynchronised by length: the splitter counts them as discarded through the next `\n`,
//!   then decides the framing again from the bytes after it.

use super::{SplitterError, Step, TokenSplitter};
use crate::decoder::syslog::framing::{self, Frame, FrameError, Framing};
use crate::limits::SYSLOG_FRAME_LENGTH_DIGITS_MAX;

/// Splits one syslog TCP connection's stream.
#[derive(Debug)]
pub struct SyslogSplitter {
    state: State,
    /// Cuts newline-framed records once the connection is found to use them. Its limit and
    /// counters are this splitter's, whichever framing the connection uses.
    pub(super) lines: TokenSplitter,
}

/// Where the splitter is in the connection's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The framing is not known yet: at the start, or after a resynchronisation.
    Undecided,
    /// Frames are `MSG-LEN SP MSG`.
    OctetCounting,
    /// Records end with `\n`.
    NonTransparent,
    /// Dropping the rest of an over-size octet-counted frame: this many bytes are left.
    SkipBytes(usize),
    /// Discarding bytes through the next `\n` after a bad octet count.
    SkipLine,
}

impl SyslogSplitter {
    /// A splitter for one connection, returning records of at most `message_bytes_max` bytes.
    ///
    /// # Errors
    /// `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(message_bytes_max: usize) -> Result<SyslogSplitter, SplitterError> {
        Ok(SyslogSplitter {
            state: State::Undecided,
            lines: TokenSplitter::new(b'\n', 1, true, message_bytes_max)?,
        })
    }

    /// See [`super::Splitter::split`].
    #[inline]
    pub fn split(&mut self, window: &[u8]) -> Step {
        let mut start = 0;
        // Each turn returns, or moves `start` forward, or leaves a skipping state for one that
        // reads bytes; so the loop ends.
        loop {
            let rest = &window[start..];
            match self.state {
                State::NonTransparent => return self.split_lines(window, start),
                State::Undecided => match framing::detect(rest) {
                    Framing::Undecided => return Step::NeedMore { consumed: start },
                    Framing::OctetCounting => self.state = State::OctetCounting,
                    Framing::NonTransparent => self.state = State::NonTransparent,
                },
                State::SkipBytes(left) => {
                    let skipped = left.min(rest.len());
                    self.lines.stats.oversize_bytes += skipped as u64;
                    start += skipped;
                    if skipped < left {
                        self.state = State::SkipBytes(left - skipped);
                        return Step::NeedMore { consumed: start };
                    }
                    self.state = State::OctetCounting;
                }
                State::SkipLine => match memchr::memchr(b'\n', rest) {
                    Some(offset) => {
                        self.lines.stats.discarded_bytes += offset as u64 + 1;
                        start += offset + 1;
                        self.state = State::Undecided;
                    }
                    None => {
                        self.lines.stats.discarded_bytes += rest.len() as u64;
                        return Step::NeedMore {
                            consumed: window.len(),
                        };
                    }
                },
                State::OctetCounting => {
                    let separators = rest
                        .iter()
                        .take_while(|&&byte| byte == b'\n' || byte == b'\r')
                        .count();
                    start += separators;
                    let rest = &window[start..];
                    match framing::next_frame(rest, self.lines.message_bytes_max) {
                        Frame::Incomplete => return Step::NeedMore { consumed: start },
                        Frame::Complete(frame) => {
                            self.lines.stats.records += 1;
                            self.lines.stats.record_bytes += frame.len() as u64;
                            return Step::Record {
                                start: start + frame.start,
                                end: start + frame.end,
                                consumed: start + frame.end,
                                signer: None,
                            };
                        }
                        Frame::Invalid(FrameError::TooLarge) => {
                            self.lines.stats.oversize_records += 1;
                            self.state = State::SkipBytes(oversize_frame_bytes(rest));
                        }
                        Frame::Invalid(_) => {
                            self.state = State::SkipLine;
                        }
                    }
                }
            }
        }
    }

    /// Newline framing: the token splitter cuts the window after `start`.
    fn split_lines(&mut self, window: &[u8], start: usize) -> Step {
        match self.lines.split(&window[start..]) {
            Step::Record {
                start: record_start,
                end,
                consumed,
                signer,
            } => Step::Record {
                start: start + record_start,
                end: start + end,
                consumed: start + consumed,
                signer,
            },
            Step::NeedMore { consumed } => Step::NeedMore {
                consumed: start + consumed,
            },
        }
    }

    /// See [`super::Splitter::end_of_stream`]: a newline-framed connection's last line is a
    /// record; any other unfinished bytes are counted (oversize or discarded).
    pub fn end_of_stream(&mut self, window: &[u8]) -> Step {
        let state = std::mem::replace(&mut self.state, State::Undecided);
        let bytes = window.len();
        match state {
            State::NonTransparent => return self.lines.end_of_stream(window),
            State::SkipBytes(_) => self.lines.stats.oversize_bytes += bytes as u64,
            State::Undecided | State::OctetCounting | State::SkipLine => {
                let separators = window.iter().all(|&byte| byte == b'\n' || byte == b'\r');
                if !separators {
                    self.lines.stats.discarded_bytes += bytes as u64;
                }
            }
        }
        Step::NeedMore { consumed: bytes }
    }
}

/// The length of a frame whose count is over the limit (digits, space and MSG), read from
/// `frame`, which [`framing::next_frame`] found to start with a well-formed count.
fn oversize_frame_bytes(frame: &[u8]) -> usize {
    let digits = frame
        .iter()
        .take(SYSLOG_FRAME_LENGTH_DIGITS_MAX)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    let length = frame[..digits].iter().fold(0usize, |length, &digit| {
        length * 10 + usize::from(digit - b'0')
    });
    digits + 1 + length
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitter::testutil::split_chunked;
    use crate::splitter::Splitter;

    fn splitter(max: usize) -> Splitter {
        Splitter::Syslog(SyslogSplitter::new(max).unwrap())
    }

    fn octet(messages: &[&[u8]]) -> Vec<u8> {
        let mut stream = Vec::new();
        for message in messages {
            stream.extend_from_slice(format!("{} ", message.len()).as_bytes());
            stream.extend_from_slice(message);
        }
        stream
    }

    #[test]
    fn octet_counted_frames_become_their_messages_however_the_stream_is_chunked() {
        let messages: [&[u8]; 3] = [
            b"<13>1 - host app - - - one",
            b"<13>1 - host app - - - two\nwith a newline inside",
            b"<13>Dec  2 14:05:01 host tag: three",
        ];
        let stream = octet(&messages);
        for chunks in [&[1usize][..], &[2, 7], &[5, 1, 13], &[4096]] {
            let mut splitter = splitter(1024);
            let records = split_chunked(&mut splitter, &stream, chunks);
            assert_eq!(records, messages.map(<[u8]>::to_vec), "chunks {chunks:?}");
            assert_eq!(splitter.stats().discarded_bytes, 0);
        }
    }

    #[test]
    fn newline_framed_connections_keep_the_line_end_and_deliver_the_last_line() {
        let stream = b"<13>Dec  2 14:05:01 host tag: one\n123 starts with digits\nlast";
        let mut splitter = splitter(1024);
        let records = split_chunked(&mut splitter, stream, &[3, 11]);
        assert_eq!(
            records,
            vec![
                b"<13>Dec  2 14:05:01 host tag: one\n".to_vec(),
                b"123 starts with digits\n".to_vec(),
                b"last".to_vec(),
            ]
        );
    }

    #[test]
    fn line_ends_between_octet_counted_frames_are_skipped_and_not_counted() {
        let stream = b"3 one\n3 two\r\n5 three\n";
        let mut splitter = splitter(1024);
        let records = split_chunked(&mut splitter, stream, &[1]);
        assert_eq!(
            records,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        let stats = splitter.take_stats();
        assert_eq!((stats.discarded_bytes, stats.records), (0, 3));
    }

    #[test]
    fn an_over_size_count_is_skipped_by_its_length_and_the_next_frame_is_read() {
        let big = vec![b'x'; 100];
        let stream = octet(&[b"<13>1 small", &big, b"<13>1 after"]);
        for chunks in [&[1usize][..], &[7], &[4096]] {
            let mut splitter = splitter(50);
            let records = split_chunked(&mut splitter, &stream, chunks);
            assert_eq!(
                records,
                vec![b"<13>1 small".to_vec(), b"<13>1 after".to_vec()]
            );
            let stats = splitter.take_stats();
            assert_eq!(stats.oversize_records, 1);
            assert_eq!(stats.oversize_bytes, 104, "`100 ` and its 100 bytes");
        }
    }

    #[test]
    fn a_bad_count_discards_through_the_next_line_end_and_framing_is_decided_again() {
        // `12x` has no space after its digits: the line is discarded, and the connection is
        // found to be newline-framed from the next byte on.
        let stream = b"5 first12x garbage\n<13>Dec  2 14:05:01 host tag: next\n";
        let mut splitter = splitter(1024);
        let records = split_chunked(&mut splitter, stream, &[2]);
        assert_eq!(
            records,
            vec![
                b"first".to_vec(),
                b"<13>Dec  2 14:05:01 host tag: next\n".to_vec()
            ]
        );
        assert_eq!(splitter.take_stats().discarded_bytes, 12);
    }

    #[test]
    fn a_truncated_frame_at_close_is_counted_as_discarded() {
        let mut splitter = splitter(1024);
        let records = split_chunked(&mut splitter, b"3 one10 cut", &[4096]);
        assert_eq!(records, vec![b"one".to_vec()]);
        assert_eq!(splitter.take_stats().discarded_bytes, 6);
    }

    #[test]
    fn random_and_truncated_streams_never_panic_and_records_stay_in_bounds() {
        // A deterministic generator: digits, spaces and line ends are common, so that counts,
        // near-counts and resynchronisation are all exercised.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789  \n\r<>x";
        for _ in 0..2000 {
            let length = (next() % 200) as usize;
            let stream: Vec<u8> = (0..length)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let max = 1 + (next() % 40) as usize;
            let chunk = 1 + (next() % 17) as usize;
            let mut splitter = splitter(max);
            let records = split_chunked(&mut splitter, &stream, &[chunk]);
            let stats = splitter.take_stats();
            let delivered: usize = records.iter().map(Vec::len).sum();
            assert!(records.iter().all(|record| record.len() <= max));
            assert!(delivered as u64 + stats.discarded_bytes <= stream.len() as u64 * 2);
        }
    }
}
