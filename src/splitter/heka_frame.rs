//! HekaFramingSplitter: records are the messages of Heka stream frames
//! ([`crate::message::framing`]), authenticated when signed. It is TcpInput's default.
//!
//! Resync: the splitter scans for the next `0x1E` with `memchr`; bytes before it are
//! garbage, counted in `discarded_bytes`. When the bytes at a `0x1E` are not a well-formed
//! header, that one byte is discarded and the scan goes on from the next one. A header
//! claiming more than the 64 MiB ceiling (say 2 GiB) is corrupt like any other.
//!
//! Oversize: a well-formed header whose `message_length` is above `max_message_size` (and
//! within the ceiling) drops that record alone: its body is skipped as it streams in, over as
//! many reads as it takes, and counted in `oversize_records`/`oversize_bytes`. Nothing of it
//! is buffered, and the next frame is found without scanning the body for a false `0x1E`.
//!
//! Authentication (unless `skip_authentication`): an unsigned frame passes with no signer; a
//! signed one passes only when the [`Verifier`] knows its `"<signer>_<version>"` key and the
//! HMAC matches; otherwise it is dropped and counted in `auth_failures`.
//!
//! Control frames (`message_length = 0` with gyges's control fields, see
//! [`crate::message::ack`]) are not records: they are consumed and noted, and the connection
//! takes them with [`HekaFrameSplitter::take_requests`] after routing what it read. Any other
//! header with `message_length = 0` is a bad header, as in Heka.
//!
//! Limits: a frame is at most `max_message_size + FRAME_OVERHEAD_BYTES_MAX` bytes, which is
//! the most this splitter leaves unconsumed.

use std::sync::Arc;

use memchr::memchr;

use super::{check_message_bytes_max, SplitterError, SplitterStats, Step};
use crate::message::ack::{self, Requests};
use crate::message::framing::RECORD_SEPARATOR;
use crate::message::framing::{parse_header, Authentication, HeaderError, SignerId, Verifier};

/// Splits a Heka-framed stream into its messages.
#[derive(Debug)]
pub struct HekaFrameSplitter {
    verifier: Arc<Verifier>,
    skip_authentication: bool,
    pub(super) message_bytes_max: usize,
    /// Bytes of the frame at the window's start, when its header is read and its message is
    /// not complete yet; 0 otherwise. Saves re-reading the header on every read.
    frame_bytes_pending: usize,
    /// Bytes of a dropped oversize message still to skip.
    skip_bytes: usize,
    pub(super) stats: SplitterStats,
    /// Acknowledgement requests read since the connection last took them.
    requests: Requests,
}

impl HekaFrameSplitter {
    /// A splitter checking signed frames against `verifier` (shared by an input's
    /// connections) unless `skip_authentication`.
    ///
    /// # Errors
    /// `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(
        verifier: Arc<Verifier>,
        skip_authentication: bool,
        message_bytes_max: usize,
    ) -> Result<HekaFrameSplitter, SplitterError> {
        Ok(HekaFrameSplitter {
            verifier,
            skip_authentication,
            message_bytes_max: check_message_bytes_max(message_bytes_max)?,
            frame_bytes_pending: 0,
            skip_bytes: 0,
            stats: SplitterStats::default(),
            requests: Requests::default(),
        })
    }

    /// The name of a signer this splitter verified.
    pub fn signer_name(&self, id: SignerId) -> Option<&[u8]> {
        self.verifier.signer_name(id)
    }

    /// The acknowledgement requests read since the last call, if any.
    pub fn take_requests(&mut self) -> Option<Requests> {
        self.requests.take()
    }

    /// See [`super::Splitter::split`].
    #[inline]
    pub fn split(&mut self, window: &[u8]) -> Step {
        let mut start = 0;
        // Each turn either returns or moves `start` forward by at least one byte.
        loop {
            if self.skip_bytes > 0 {
                let skipped = self.skip_bytes.min(window.len() - start);
                self.skip_bytes -= skipped;
                self.stats.oversize_bytes += skipped as u64;
                start += skipped;
                if self.skip_bytes > 0 {
                    return Step::NeedMore {
                        consumed: window.len(),
                    };
                }
            }
            if self.frame_bytes_pending > 0 {
                if window.len() - start < self.frame_bytes_pending {
                    return Step::NeedMore { consumed: start };
                }
                self.frame_bytes_pending = 0;
            }
            let Some(offset) = memchr(RECORD_SEPARATOR, &window[start..]) else {
                self.stats.discarded_bytes += (window.len() - start) as u64;
                return Step::NeedMore {
                    consumed: window.len(),
                };
            };
            self.stats.discarded_bytes += offset as u64;
            start += offset;
            let header = match parse_header(&window[start..]) {
                Ok(Some(header)) => header,
                Ok(None) => return Step::NeedMore { consumed: start },
                // A control frame has no message (module docs).
                Err(HeaderError::EmptyMessage) => {
                    if let ack::Parsed::Control { control, bytes } = ack::parse(&window[start..]) {
                        self.requests.note(control);
                        start += bytes;
                        continue;
                    }
                    self.stats.discarded_bytes += 1;
                    start += 1;
                    continue;
                }
                Err(_) => {
                    self.stats.discarded_bytes += 1;
                    start += 1;
                    continue;
                }
            };
            let message_length = header.message_length as usize;
            if message_length > self.message_bytes_max {
                self.stats.oversize_records += 1;
                self.stats.oversize_bytes += header.message_start() as u64;
                start += header.message_start();
                self.skip_bytes = message_length;
                continue;
            }
            let frame_bytes = header.frame_bytes();
            if window.len() - start < frame_bytes {
                self.frame_bytes_pending = frame_bytes;
                return Step::NeedMore { consumed: start };
            }
            let message_start = start + header.message_start();
            let end = start + frame_bytes;
            let signer = if self.skip_authentication {
                None
            } else {
                match self
                    .verifier
                    .authenticate(&header, &window[message_start..end])
                {
                    Authentication::Unsigned => None,
                    Authentication::Verified(id) => Some(id),
                    Authentication::Rejected(_) => {
                        self.stats.auth_failures += 1;
                        start = end;
                        continue;
                    }
                }
            };
            self.stats.records += 1;
            self.stats.record_bytes += message_length as u64;
            return Step::Record {
                start: message_start,
                end,
                consumed: end,
                signer,
            };
        }
    }

    /// See [`super::Splitter::end_of_stream`]: an incomplete frame is discarded.
    pub fn end_of_stream(&mut self, window: &[u8]) -> Step {
        let bytes = window.len() as u64;
        if self.skip_bytes > 0 {
            self.stats.oversize_bytes += bytes;
        } else {
            self.stats.discarded_bytes += bytes;
        }
        self.skip_bytes = 0;
        self.frame_bytes_pending = 0;
        Step::NeedMore {
            consumed: window.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::framing::{write_frame, HashFunction, Signer};
    use crate::splitter::testutil::split_chunked;
    use crate::splitter::Splitter;
    use proptest::prelude::*;

    fn frame(message: &[u8], signer: Option<&Signer>) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, message, signer).unwrap();
        out
    }

    fn new_splitter(max: usize) -> Splitter {
        let verifier = Verifier::new([("ops_1", &b"key"[..])]).unwrap();
        Splitter::HekaFrame(HekaFrameSplitter::new(Arc::new(verifier), false, max).unwrap())
    }

    fn ops() -> Signer {
        Signer::new("ops", 1, HashFunction::Sha1, b"key").unwrap()
    }

    #[test]
    fn frames_split_at_every_chunk_size() {
        let messages: [&[u8]; 4] = [b"one", b"two\x1e\x1f", &[0x1e; 40], b"4"];
        let stream: Vec<u8> = messages
            .iter()
            .flat_map(|message| frame(message, None))
            .collect();
        for chunk in 1..=stream.len() {
            let mut splitter = new_splitter(64);
            let records = split_chunked(&mut splitter, &stream, &[chunk]);
            assert_eq!(records, messages, "chunk {chunk}");
            assert_eq!(splitter.stats().discarded_bytes, 0);
        }
    }

    #[test]
    fn garbage_between_frames_is_skipped_and_counted() {
        let mut stream = b"junk".to_vec();
        stream.extend(frame(b"first", None));
        // A record separator with a bad header, then one with no unit separator.
        stream.extend_from_slice(b"\x1e\x02\x10\x05\x1f..");
        stream.extend_from_slice(b"\x1e\x02\x08\x05\x00");
        stream.extend(frame(b"second", None));
        stream.extend_from_slice(b"trailing \x1e\x05");
        for chunk in [1, 2, 5, 1000] {
            let mut splitter = new_splitter(64);
            let records = split_chunked(&mut splitter, &stream, &[chunk]);
            assert_eq!(
                records,
                vec![b"first".to_vec(), b"second".to_vec()],
                "chunk {chunk}"
            );
            // Everything but the two frames (5 + 6 bytes of message, 5 of framing each).
            assert_eq!(splitter.stats().discarded_bytes as usize, stream.len() - 21);
        }
    }

    #[test]
    fn a_two_gib_claim_is_corrupt_and_the_stream_resyncs() {
        let mut stream = b"\x1e\x06\x08\x80\x80\x80\x80\x08\x1f".to_vec();
        stream.extend(frame(b"after", None));
        let mut splitter = new_splitter(64);
        assert_eq!(
            split_chunked(&mut splitter, &stream, &[3]),
            vec![b"after".to_vec()]
        );
        assert_eq!(splitter.stats().discarded_bytes, 9);
        assert_eq!(splitter.stats().oversize_records, 0);
    }

    #[test]
    fn an_oversize_record_is_dropped_across_reads_and_the_next_ones_come_out() {
        let big = vec![0x1e; 5000];
        let mut stream = frame(b"before", None);
        stream.extend(frame(&big, None));
        stream.extend(frame(b"after", None));
        stream.extend(frame(b"again", Some(&ops())));
        for chunks in [&[1usize][..], &[7, 300], &[100_000]] {
            let mut splitter = new_splitter(100);
            let records = split_chunked(&mut splitter, &stream, chunks);
            assert_eq!(
                records,
                vec![b"before".to_vec(), b"after".to_vec(), b"again".to_vec()]
            );
            let stats = splitter.stats();
            assert_eq!(stats.oversize_records, 1);
            assert_eq!(stats.oversize_bytes as usize, frame(&big, None).len());
            assert_eq!(stats.discarded_bytes, 0);
        }
    }

    #[test]
    fn a_truncated_frame_takes_the_bytes_after_it() {
        // A frame cut short swallows the start of the next one, as in Heka; the frame after
        // that is recovered by the resync.
        let mut stream = frame(b"0123456789", None);
        stream.truncate(8);
        stream.extend(frame(b"swallowed", None));
        stream.extend(frame(b"recovered", None));
        let mut splitter = new_splitter(64);
        let records = split_chunked(&mut splitter, &stream, &[4]);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1], b"recovered");
        // A frame cut short at the end of the stream is discarded.
        let mut cut_short = new_splitter(64);
        assert!(split_chunked(&mut cut_short, &stream[..8], &[4]).is_empty());
        assert_eq!(cut_short.stats().discarded_bytes, 8);
    }

    #[test]
    fn authentication() {
        let wrong_key = Signer::new("ops", 1, HashFunction::Sha1, b"not the key").unwrap();
        let unknown = Signer::new("dev", 1, HashFunction::Md5, b"key").unwrap();
        let mut stream = frame(b"signed", Some(&ops()));
        stream.extend(frame(b"forged", Some(&wrong_key)));
        stream.extend(frame(b"stranger", Some(&unknown)));
        stream.extend(frame(b"unsigned", None));
        let mut checked = new_splitter(64);
        let records = split_chunked(&mut checked, &stream, &[1000]);
        assert_eq!(records, vec![b"signed".to_vec(), b"unsigned".to_vec()]);
        assert_eq!(checked.stats().auth_failures, 2);

        let Step::Record {
            signer: Some(id), ..
        } = checked.split(&frame(b"x", Some(&ops())))
        else {
            panic!("a signed frame should verify");
        };
        assert_eq!(checked.signer_name(id), Some(&b"ops"[..]));

        let verifier = Arc::new(Verifier::default());
        let mut unchecked =
            Splitter::HekaFrame(HekaFrameSplitter::new(verifier, true, 64).unwrap());
        assert_eq!(split_chunked(&mut unchecked, &stream, &[1000]).len(), 4);
        assert_eq!(unchecked.stats().auth_failures, 0);
    }

    /// One piece of a generated stream.
    #[derive(Clone, Debug)]
    enum Piece {
        /// A valid frame: its message must come out exactly once.
        Frame(Vec<u8>),
        /// A frame above max_message_size: dropped.
        Oversize(usize),
        /// A frame with a bad signature: dropped.
        Forged(Vec<u8>),
        /// Garbage: bytes without 0x1E, and record separators whose next bytes reject them
        /// at once (so garbage never claims the bytes of the frame after it).
        Garbage(Vec<u8>),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        let message = proptest::collection::vec(any::<u8>(), 1..200);
        let clean = any::<u8>().prop_filter("no separator", |byte| *byte != RECORD_SEPARATOR);
        let bad_start = (
            clean.clone(),
            clean.clone().prop_filter("not 0x08", |byte| *byte != 8),
        )
            .prop_map(|(length, first)| vec![RECORD_SEPARATOR, length, first]);
        let garbage = proptest::collection::vec(
            prop_oneof![clean.prop_map(|byte| vec![byte]), bad_start],
            1..20,
        )
        .prop_map(|parts| Piece::Garbage(parts.concat()));
        prop_oneof![
            4 => message.clone().prop_map(Piece::Frame),
            1 => (201usize..2000).prop_map(Piece::Oversize),
            1 => message.prop_map(Piece::Forged),
            2 => garbage,
        ]
    }

    proptest! {
        #[test]
        fn every_valid_frame_comes_out_exactly_once(
            pieces in proptest::collection::vec(piece(), 0..30),
            chunks in proptest::collection::vec(1usize..500, 1..6),
        ) {
            let forger = Signer::new("ops", 1, HashFunction::Sha1, b"wrong").unwrap();
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            let mut oversize = 0;
            for piece in &pieces {
                match piece {
                    Piece::Frame(message) => {
                        stream.extend(frame(message, None));
                        expected.push(message.clone());
                    }
                    Piece::Oversize(bytes) => {
                        stream.extend(frame(&vec![RECORD_SEPARATOR; *bytes], None));
                        oversize += 1;
                    }
                    Piece::Forged(message) => stream.extend(frame(message, Some(&forger))),
                    Piece::Garbage(bytes) => stream.extend_from_slice(bytes),
                }
            }
            let mut splitter = new_splitter(200);
            let records = split_chunked(&mut splitter, &stream, &chunks);
            prop_assert_eq!(records, expected);
            prop_assert_eq!(splitter.stats().oversize_records, oversize);
        }

        #[test]
        fn no_bytes_panic_or_break_the_bounds(
            stream in proptest::collection::vec(
                prop_oneof![Just(RECORD_SEPARATOR), Just(0x1f), Just(0x08), any::<u8>()], 0..2000),
            chunks in proptest::collection::vec(1usize..300, 1..6),
        ) {
            let mut splitter = new_splitter(64);
            for record in split_chunked(&mut splitter, &stream, &chunks) {
                prop_assert!(!record.is_empty() && record.len() <= 64);
            }
        }
    }
}
