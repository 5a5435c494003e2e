//! NullSplitter: each read is one record. It is the UDP default, where a read is a datagram.
//!
//! Limits: a read longer than `max_message_size` is dropped and counted as oversize.
//! The caller must split after every read, or two reads become one record.

use super::{check_message_bytes_max, SplitterError, SplitterStats, Step};

/// Takes the whole window as one record.
#[derive(Debug)]
pub struct NullSplitter {
    pub(super) message_bytes_max: usize,
    pub(super) stats: SplitterStats,
}

impl NullSplitter {
    /// A splitter returning each non-empty window whole.
    ///
    /// # Errors
    /// `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(message_bytes_max: usize) -> Result<NullSplitter, SplitterError> {
        Ok(NullSplitter {
            message_bytes_max: check_message_bytes_max(message_bytes_max)?,
            stats: SplitterStats::default(),
        })
    }

    /// See [`super::Splitter::split`].
    #[inline]
    pub fn split(&mut self, window: &[u8]) -> Step {
        let bytes = window.len();
        if bytes == 0 {
            return Step::NeedMore { consumed: 0 };
        }
        if bytes > self.message_bytes_max {
            self.stats.oversize_records += 1;
            self.stats.oversize_bytes += bytes as u64;
            return Step::NeedMore { consumed: bytes };
        }
        self.stats.records += 1;
        self.stats.record_bytes += bytes as u64;
        Step::Record {
            start: 0,
            end: bytes,
            consumed: bytes,
            signer: None,
        }
    }

    /// See [`super::Splitter::end_of_stream`]: whatever is left is one last record.
    pub fn end_of_stream(&mut self, window: &[u8]) -> Step {
        self.split(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_is_one_record() {
        let mut splitter = NullSplitter::new(4).unwrap();
        assert_eq!(splitter.split(b""), Step::NeedMore { consumed: 0 });
        assert_eq!(
            splitter.split(b"a\nb"),
            Step::Record {
                start: 0,
                end: 3,
                consumed: 3,
                signer: None
            }
        );
        assert_eq!(
            splitter.split(b"abcd"),
            Step::Record {
                start: 0,
                end: 4,
                consumed: 4,
                signer: None
            }
        );
        assert_eq!(splitter.split(b"abcde"), Step::NeedMore { consumed: 5 });
        assert_eq!(splitter.stats.records, 2);
        assert_eq!(splitter.stats.record_bytes, 7);
        assert_eq!(splitter.stats.oversize_records, 1);
        assert_eq!(splitter.stats.oversize_bytes, 5);
    }
}
