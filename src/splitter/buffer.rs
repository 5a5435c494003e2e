//! StreamBuffer: the bounded read buffer of one connection, and the loop that hands its bytes
//! to a splitter.
//!
//! ```text
//! [ consumed | pending: bytes the splitter has not consumed | spare: the next read goes here ]
//! 0          start                                           end                       capacity
//! ```
//!
//! The input reads into [`StreamBuffer::spare_mut`], calls [`StreamBuffer::commit`] with the
//! byte count, then drains [`StreamBuffer::next_record`] until it returns `None`. Records are
//! slices of the buffer: nothing is copied on the way to the decoder.
//!
//! Invariants and limits:
//! - The capacity is fixed at construction: `max_message_size + FRAME_OVERHEAD_BYTES_MAX`
//!   (Heka's record limit) plus the read size. The buffer never grows.
//! - Splitters leave less than a record limit pending, so after compaction the spare room
//!   is always at least one read size (asserted).
//! - Compaction moves the pending bytes to the front only when the spare room is smaller
//!   than one read; with 64 KiB reads and short records that is one small copy per read,
//!   and for an empty pending region it is free.

use super::{Splitter, SplitterError, Step};
use crate::limits::{FRAME_OVERHEAD_BYTES_MAX, READ_BUFFER_BYTES_MAX, READ_BUFFER_BYTES_MIN};
use crate::message::framing::SignerId;

/// One record, borrowed from the buffer until the next read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's bytes (for framed streams, the message without its framing).
    pub bytes: &'a [u8],
    /// The verified signer of a signed Heka frame.
    pub signer: Option<SignerId>,
}

/// A connection's read buffer; see the module docs.
#[derive(Debug)]
pub struct StreamBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
    read_bytes: usize,
}

impl StreamBuffer {
    /// A buffer for records of at most `message_bytes_max` bytes, read `read_bytes` at a time.
    ///
    /// # Errors
    /// `read_bytes` outside `READ_BUFFER_BYTES_MIN..=READ_BUFFER_BYTES_MAX`, or
    /// `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(message_bytes_max: usize, read_bytes: usize) -> Result<StreamBuffer, SplitterError> {
        let message_bytes_max = super::check_message_bytes_max(message_bytes_max)?;
        if !(READ_BUFFER_BYTES_MIN..=READ_BUFFER_BYTES_MAX).contains(&read_bytes) {
            return Err(SplitterError::ReadBytes {
                bytes: read_bytes,
                min: READ_BUFFER_BYTES_MIN,
                max: READ_BUFFER_BYTES_MAX,
            });
        }
        let capacity = message_bytes_max + FRAME_OVERHEAD_BYTES_MAX + read_bytes;
        Ok(StreamBuffer {
            bytes: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            read_bytes,
        })
    }

    /// A buffer sized for `splitter`'s records.
    ///
    /// # Errors
    /// As [`StreamBuffer::new`].
    pub fn for_splitter(
        splitter: &Splitter,
        read_bytes: usize,
    ) -> Result<StreamBuffer, SplitterError> {
        StreamBuffer::new(splitter.message_bytes_max(), read_bytes)
    }

    /// The fixed capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes read but not yet consumed by the splitter.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// The room for the next read: at least one read size. Compacts first if needed.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.bytes.len() - self.end < self.read_bytes {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Splitters leave less than one record limit pending (module docs).
        assert!(self.bytes.len() - self.end >= self.read_bytes);
        &mut self.bytes[self.end..]
    }

    /// Records that `bytes` bytes were read into [`StreamBuffer::spare_mut`].
    ///
    /// # Panics
    /// If `bytes` is more than the spare room: the caller read past the slice it was given.
    pub fn commit(&mut self, bytes: usize) {
        assert!(
            bytes <= self.bytes.len() - self.end,
            "committed more than was read"
        );
        self.end += bytes;
    }

    /// Forgets the pending bytes, for a reader that will read them again from its source later
    /// (a tail reader at a range still being written). Call only between records, where the
    /// splitter holds nothing of them.
    pub fn unread(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The next complete record, or `None` when the splitter needs more bytes.
    #[inline]
    pub fn next_record(&mut self, splitter: &mut Splitter) -> Option<Record<'_>> {
        let window = &self.bytes[self.start..self.end];
        match splitter.split(window) {
            Step::Record {
                start,
                end,
                consumed,
                signer,
            } => {
                let base = self.start;
                self.start += consumed;
                Some(Record {
                    bytes: &self.bytes[base + start..base + end],
                    signer,
                })
            }
            Step::NeedMore { consumed } => {
                self.start += consumed;
                None
            }
        }
    }

    /// Ends the stream: returns the final incomplete record if the splitter delivers one, and
    /// leaves the buffer empty for the next connection. Call once `next_record` is `None`.
    pub fn finish(&mut self, splitter: &mut Splitter) -> Option<Record<'_>> {
        let window = &self.bytes[self.start..self.end];
        let base = self.start;
        self.start = 0;
        self.end = 0;
        match splitter.end_of_stream(window) {
            Step::Record {
                start, end, signer, ..
            } => Some(Record {
                bytes: &self.bytes[base + start..base + end],
                signer,
            }),
            Step::NeedMore { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::framing::{write_frame, Verifier};
    use crate::splitter::{HekaFrameSplitter, TokenSplitter};
    use std::sync::Arc;

    /// Reads `stream` through a buffer in `read` sized pieces (capped by the spare room).
    fn read_all(
        buffer: &mut StreamBuffer,
        splitter: &mut Splitter,
        stream: &[u8],
        read: usize,
    ) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let spare = buffer.spare_mut();
            let bytes = read.min(spare.len()).min(stream.len() - at);
            spare[..bytes].copy_from_slice(&stream[at..at + bytes]);
            buffer.commit(bytes);
            at += bytes;
            while let Some(record) = buffer.next_record(splitter) {
                records.push(record.bytes.to_vec());
            }
        }
        if let Some(record) = buffer.finish(splitter) {
            records.push(record.bytes.to_vec());
        }
        records
    }

    #[test]
    fn lines_through_a_small_buffer() {
        let mut splitter = Splitter::Token(TokenSplitter::new(b'\n', 1, true, 1000).unwrap());
        let mut buffer = StreamBuffer::for_splitter(&splitter, 512).unwrap();
        assert_eq!(buffer.capacity(), 1000 + 258 + 512);
        let lines: Vec<Vec<u8>> = (0..2000)
            .map(|index| format!("line {index} {}\n", "x".repeat(index % 900)).into_bytes())
            .collect();
        let mut stream = lines.concat();
        stream.extend_from_slice(b"no newline at the end");
        for read in [1, 100, 512, 4096] {
            let records = read_all(&mut buffer, &mut splitter, &stream, read);
            assert_eq!(records.len(), 2001, "read {read}");
            assert_eq!(records.concat(), stream);
        }
    }

    #[test]
    fn frames_of_the_largest_size_fit() {
        let max = 2000;
        let verifier = Arc::new(Verifier::default());
        let mut splitter =
            Splitter::HekaFrame(HekaFrameSplitter::new(verifier, false, max).unwrap());
        let mut buffer = StreamBuffer::for_splitter(&splitter, 512).unwrap();
        let mut stream = Vec::new();
        let messages: Vec<Vec<u8>> = (1..=max)
            .step_by(333)
            .chain([max, max, max + 1])
            .map(|len| vec![7; len])
            .collect();
        for message in &messages {
            write_frame(&mut stream, message, None).unwrap();
        }
        for read in [1, 511, 512, 100_000] {
            let records = read_all(&mut buffer, &mut splitter, &stream, read);
            assert_eq!(records, messages[..messages.len() - 1], "read {read}");
        }
    }

    proptest::proptest! {
        /// Lines of random lengths (some oversize) through a buffer read in random sizes:
        /// the records are the lines within the limit, in order, and the buffer never fails
        /// to offer room.
        #[test]
        fn random_lines_through_random_reads(
            lengths in proptest::collection::vec(0usize..1300, 0..200),
            read in 512usize..3000,
        ) {
            let max = 1000;
            let mut splitter = Splitter::Token(TokenSplitter::lines(max).unwrap());
            let mut buffer = StreamBuffer::for_splitter(&splitter, 512).unwrap();
            let lines: Vec<Vec<u8>> = lengths
                .iter()
                .map(|&length| {
                    let mut line = vec![b'x'; length];
                    line.push(b'\n');
                    line
                })
                .collect();
            let expected: Vec<Vec<u8>> =
                lines.iter().filter(|line| line.len() <= max).cloned().collect();
            let records = read_all(&mut buffer, &mut splitter, &lines.concat(), read);
            proptest::prop_assert_eq!(records, expected);
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(matches!(
            StreamBuffer::new(1000, 10),
            Err(SplitterError::ReadBytes { bytes: 10, .. })
        ));
        assert!(matches!(
            StreamBuffer::new(0, 4096),
            Err(SplitterError::MessageBytesMax { bytes: 0 })
        ));
    }
}
