//! TokenSplitter: a record ends after `count` occurrences of a one-byte delimiter (default
//! one `\n`). The record keeps its delimiters, as Heka's does, so a PayloadEncoder with
//! `append_newlines` writes lines back with a second `\n` exactly as Heka would.
//!
//! Limits: a record (delimiters included) of more than `max_message_size` bytes is dropped
//! and counted as oversize; the splitter skips through its last delimiter, however many reads
//! that takes, and the stream goes on. The search uses `memchr` (SIMD) and resumes where the
//! previous call stopped, so each byte is scanned once however the record is chunked.

use memchr::memchr;

use super::{check_message_bytes_max, SplitterError, SplitterStats, Step};
use crate::limits::TOKEN_COUNT_MAX;

/// Splits on a one-byte delimiter.
#[derive(Debug)]
pub struct TokenSplitter {
    delimiter: u8,
    count: usize,
    deliver_incomplete_final: bool,
    pub(super) message_bytes_max: usize,
    /// Bytes at the window's start already searched for the current record.
    scanned: usize,
    /// Delimiters of the current record found within `scanned`.
    found: usize,
    /// Delimiters still to skip of a record being dropped for its size; 0 when not dropping.
    skip_delimiters: usize,
    pub(super) stats: SplitterStats,
}

impl TokenSplitter {
    /// A splitter for records ending in `count` delimiters. `deliver_incomplete_final` returns
    /// the bytes after the last delimiter as a record when the stream ends.
    ///
    /// # Errors
    /// `count` outside `1..=TOKEN_COUNT_MAX` or `message_bytes_max` outside
    /// `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(
        delimiter: u8,
        count: usize,
        deliver_incomplete_final: bool,
        message_bytes_max: usize,
    ) -> Result<TokenSplitter, SplitterError> {
        if count == 0 || count > TOKEN_COUNT_MAX {
            return Err(SplitterError::TokenCount { count });
        }
        Ok(TokenSplitter {
            delimiter,
            count,
            deliver_incomplete_final,
            message_bytes_max: check_message_bytes_max(message_bytes_max)?,
            scanned: 0,
            found: 0,
            skip_delimiters: 0,
            stats: SplitterStats::default(),
        })
    }

    /// Heka's default: one `\n`, no incomplete final record.
    ///
    /// # Errors
    /// As [`TokenSplitter::new`].
    pub fn lines(message_bytes_max: usize) -> Result<TokenSplitter, SplitterError> {
        TokenSplitter::new(b'\n', 1, false, message_bytes_max)
    }

    /// See [`super::Splitter::split`].
    #[inline]
    pub fn split(&mut self, window: &[u8]) -> Step {
        let mut start = 0;
        // Each turn either returns or moves `start` past a dropped record, so the loop ends.
        loop {
            if self.skip_delimiters > 0 {
                match self.skip(&window[start..]) {
                    Some(skipped) => start += skipped,
                    None => {
                        return Step::NeedMore {
                            consumed: window.len(),
                        }
                    }
                }
            }
            let mut position = start + self.scanned;
            while self.found < self.count {
                match memchr(self.delimiter, &window[position..]) {
                    Some(offset) => {
                        position += offset + 1;
                        self.found += 1;
                    }
                    None => {
                        // All of the window is searched; the next call resumes at its end.
                        position = window.len();
                        break;
                    }
                }
            }
            if self.found == self.count {
                self.found = 0;
                self.scanned = 0;
                let bytes = position - start;
                if bytes > self.message_bytes_max {
                    self.stats.oversize_records += 1;
                    self.stats.oversize_bytes += bytes as u64;
                    start = position;
                    continue;
                }
                self.stats.records += 1;
                self.stats.record_bytes += bytes as u64;
                return Step::Record {
                    start,
                    end: position,
                    consumed: position,
                    signer: None,
                };
            }
            let pending = window.len() - start;
            if pending >= self.message_bytes_max {
                // The record is already longer than allowed: drop what is here, skip the rest.
                self.stats.oversize_records += 1;
                self.stats.oversize_bytes += pending as u64;
                self.skip_delimiters = self.count - self.found;
                self.found = 0;
                self.scanned = 0;
                return Step::NeedMore {
                    consumed: window.len(),
                };
            }
            self.scanned = position - start;
            return Step::NeedMore { consumed: start };
        }
    }

    /// Skips through the remaining delimiters of a dropped record. Returns the bytes skipped
    /// when its end is in `window`, `None` (with all of `window` counted) when it is not.
    fn skip(&mut self, window: &[u8]) -> Option<usize> {
        let mut position = 0;
        while self.skip_delimiters > 0 {
            match memchr(self.delimiter, &window[position..]) {
                Some(offset) => {
                    position += offset + 1;
                    self.skip_delimiters -= 1;
                }
                None => {
                    self.stats.oversize_bytes += window.len() as u64;
                    return None;
                }
            }
        }
        self.stats.oversize_bytes += position as u64;
        Some(position)
    }

    /// See [`super::Splitter::end_of_stream`].
    pub fn end_of_stream(&mut self, window: &[u8]) -> Step {
        let dropping = self.skip_delimiters > 0;
        self.skip_delimiters = 0;
        self.found = 0;
        self.scanned = 0;
        let bytes = window.len();
        if dropping {
            self.stats.oversize_bytes += bytes as u64;
        } else if self.deliver_incomplete_final && bytes > 0 && bytes <= self.message_bytes_max {
            self.stats.records += 1;
            self.stats.record_bytes += bytes as u64;
            return Step::Record {
                start: 0,
                end: bytes,
                consumed: bytes,
                signer: None,
            };
        } else {
            self.stats.discarded_bytes += bytes as u64;
        }
        Step::NeedMore { consumed: bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitter::testutil::split_chunked;
    use crate::splitter::Splitter;
    use proptest::prelude::*;

    fn new_splitter(count: usize, incomplete_final: bool, max: usize) -> Splitter {
        Splitter::Token(TokenSplitter::new(b'\n', count, incomplete_final, max).unwrap())
    }

    /// The oracle: records are the pieces of `stream` that end in `count` delimiters, kept
    /// when no longer than `max`; the tail is a record only with `incomplete_final`, and only
    /// when shorter than `max` (at `max` bytes without its end it is already oversize).
    fn oracle(stream: &[u8], count: usize, incomplete_final: bool, max: usize) -> Vec<Vec<u8>> {
        let lines: Vec<&[u8]> = stream.split_inclusive(|&byte| byte == b'\n').collect();
        let mut records = Vec::new();
        for group in lines.chunks(count) {
            let record = group.concat();
            let complete = group.len() == count && record.ends_with(b"\n");
            let keep = if complete {
                record.len() <= max
            } else {
                incomplete_final && record.len() < max
            };
            if keep {
                records.push(record);
            }
        }
        records
    }

    struct Seed {
        stream: &'static [u8],
        count: usize,
        max: usize,
        records: &'static [&'static [u8]],
    }

    const SEEDS: &[Seed] = &[
        Seed {
            stream: b"",
            count: 1,
            max: 64,
            records: &[],
        },
        Seed {
            stream: b"a\nb\n",
            count: 1,
            max: 64,
            records: &[b"a\n", b"b\n"],
        },
        // Empty records keep their delimiter.
        Seed {
            stream: b"\n\n\n",
            count: 1,
            max: 64,
            records: &[b"\n", b"\n", b"\n"],
        },
        // The tail after the last delimiter is not a record.
        Seed {
            stream: b"a\nbc",
            count: 1,
            max: 64,
            records: &[b"a\n"],
        },
        Seed {
            stream: b"a\nb\nc\n",
            count: 2,
            max: 64,
            records: &[b"a\nb\n"],
        },
        // Exactly max is kept, one more is dropped, and the stream goes on.
        Seed {
            stream: b"abc\nabcd\nx\n",
            count: 1,
            max: 4,
            records: &[b"abc\n", b"x\n"],
        },
        Seed {
            stream: b"0123456789abcdef\nok\n0123456789\n",
            count: 1,
            max: 4,
            records: &[b"ok\n"],
        },
        Seed {
            stream: b"1\n2\n3\n4\n5\n6\n",
            count: 3,
            max: 6,
            records: &[b"1\n2\n3\n", b"4\n5\n6\n"],
        },
        Seed {
            stream: b"1\n22\n3\n4\n5\n6\n",
            count: 3,
            max: 6,
            records: &[b"4\n5\n6\n"],
        },
    ];

    #[test]
    fn seeds_at_every_chunk_size() {
        for (index, seed) in SEEDS.iter().enumerate() {
            for chunk in 1..=seed.stream.len().max(1) + 1 {
                let mut splitter = new_splitter(seed.count, false, seed.max);
                let records = split_chunked(&mut splitter, seed.stream, &[chunk]);
                assert_eq!(records, seed.records, "seed {index}, chunk {chunk}");
                let expected = oracle(seed.stream, seed.count, false, seed.max);
                assert_eq!(records, expected, "oracle disagrees on seed {index}");
            }
        }
    }

    #[test]
    fn a_record_split_at_every_offset() {
        let stream = b"first line\nsecond, longer line\nthird\n";
        for cut in 0..=stream.len() {
            let mut splitter = new_splitter(1, false, 64);
            let mut records = Vec::new();
            let mut pending = stream[..cut].to_vec();
            for part in [&stream[cut..], &b""[..]] {
                while let Step::Record {
                    start,
                    end,
                    consumed,
                    ..
                } = splitter.split(&pending)
                {
                    records.push(pending[start..end].to_vec());
                    pending.drain(..consumed);
                }
                pending.extend_from_slice(part);
            }
            assert_eq!(records.concat(), stream, "cut at {cut}");
        }
    }

    #[test]
    fn oversize_lines_are_counted_and_skipped_across_many_reads() {
        let mut stream = b"ok\n".to_vec();
        stream.extend(std::iter::repeat_n(b'x', 10_000));
        stream.extend_from_slice(b"\nstill ok\n");
        let mut splitter = new_splitter(1, false, 100);
        let records = split_chunked(&mut splitter, &stream, &[7, 64, 3]);
        assert_eq!(records, vec![b"ok\n".to_vec(), b"still ok\n".to_vec()]);
        let stats = splitter.stats();
        assert_eq!(stats.oversize_records, 1);
        assert_eq!(stats.oversize_bytes, 10_001);
        assert_eq!(stats.records, 2);
        assert_eq!(stats.record_bytes, 12);
    }

    #[test]
    fn the_final_incomplete_record() {
        let mut kept = new_splitter(1, true, 64);
        assert_eq!(
            split_chunked(&mut kept, b"a\nlast", &[3]),
            vec![b"a\n".to_vec(), b"last".to_vec()]
        );
        let mut dropped = new_splitter(1, false, 64);
        assert_eq!(
            split_chunked(&mut dropped, b"a\nlast", &[3]),
            vec![b"a\n".to_vec()]
        );
        assert_eq!(dropped.stats().discarded_bytes, 4);
    }

    #[test]
    fn a_scan_resumes_where_it_stopped() {
        let mut splitter = TokenSplitter::lines(1024).unwrap();
        assert_eq!(splitter.split(b"abc"), Step::NeedMore { consumed: 0 });
        assert_eq!(splitter.scanned, 3);
        // The first three bytes are not searched again, so a delimiter planted there (a
        // broken caller) is not seen: proof the scan resumed.
        assert_eq!(splitter.split(b"\nbcdef"), Step::NeedMore { consumed: 0 });
        let step = splitter.split(b"abcdef\n");
        assert_eq!(
            step,
            Step::Record {
                start: 0,
                end: 7,
                consumed: 7,
                signer: None
            }
        );
    }

    #[test]
    fn bad_options_are_refused() {
        assert_eq!(
            TokenSplitter::new(b'\n', 0, false, 10).unwrap_err(),
            SplitterError::TokenCount { count: 0 }
        );
        assert!(TokenSplitter::new(b'\n', TOKEN_COUNT_MAX + 1, false, 10).is_err());
        assert_eq!(
            TokenSplitter::new(b'\n', 1, false, 0).unwrap_err(),
            SplitterError::MessageBytesMax { bytes: 0 }
        );
    }

    proptest! {
        #[test]
        fn agrees_with_the_slice_split_oracle(
            stream in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()],
                0..600,
            ),
            chunks in proptest::collection::vec(1usize..80, 1..8),
            count in 1usize..4,
            max in 1usize..40,
            incomplete_final in any::<bool>(),
        ) {
            let mut splitter = new_splitter(count, incomplete_final, max);
            let records = split_chunked(&mut splitter, &stream, &chunks);
            prop_assert_eq!(records, oracle(&stream, count, incomplete_final, max));
        }
    }
}
