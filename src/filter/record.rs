//! The filter record: the one format in which a routed message travels to a filter, over a
//! lane ring, through a host's local inbox, or inside a durable filter's disk queue.
//!
//! This module is the format's one owner: the lanes encode with [`encode`] and
//! [`encode_raw`], the hosts decode with [`decode`], and the durable filters frame a lane batch
//! as a queue record with [`encode_queue_record`] and check it with [`queue_record_body`].
//!
//! ```text
//! struct FilterRecord {
//!     length: u32 le,            // bytes of `message`
//!     filter: u16 le,            // the filter's index among the plan's filters
//!     loops: u8,                 // loop depth; top bit (STAT_RECORD) marks a stat record
//!     message: [u8; length],     // Heka protobuf (or, for a stat record, the stat record)
//! }
//! struct LaneBatch { records: [FilterRecord] }           // what a lane ships at once
//! struct FilterQueueRecord {                             // one disk-queue record per batch
//!     version: u8,               // QUEUE_FORMAT_VERSION
//!     batch: LaneBatch,
//! }
//! ```
//!
//! Decoding never trusts the bytes: a record whose length runs past the end of the batch ends
//! the batch (it is a torn tail, not a message), and a queue record of another version is
//! refused as a whole, never guessed at. Neither ever panics (a property test feeds both
//! arbitrary bytes).

use crate::message::{encode_line, encoded_line_len, MessageView};

/// The loop-byte flag of a stat record (for a StatAccumInput) instead of a message.
pub const STAT_RECORD: u8 = 0x80;
/// Header bytes of one filter record: length, filter index, loop byte.
pub const HEADER_BYTES: usize = 4 + 2 + 1;
/// The version byte every durable filter queue record starts with. A reader refuses any
/// other: records written by a gyges that lays out lane batches differently are skipped and
/// counted, not misread.
pub const QUEUE_FORMAT_VERSION: u8 = 1;
/// Bytes a queue record adds in front of its lane batch.
pub const QUEUE_HEADER_BYTES: usize = 1;

// A message fits in the length field (messages are bounded far below 4 GiB).
const _: () = assert!(crate::limits::MESSAGE_BYTES_CEILING < u32::MAX as usize / 2);

/// One decoded filter record, borrowed from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterRecord<'a> {
    /// The filter index the writer gave it.
    pub filter: u16,
    /// The loop depth, with [`STAT_RECORD`] set for a stat record.
    pub loops: u8,
    /// The routed message as Heka protobuf, or for a stat record the stat record itself.
    pub message: &'a [u8],
}

fn encode_header(out: &mut Vec<u8>, filter: u16, loops: u8, length: usize) {
    // Bounded by the constant assertion above: a message never reaches 2 GiB.
    let length = length as u32;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&filter.to_le_bytes());
    out.push(loops);
}

/// Appends `message` as a filter record for filter `filter` at loop depth `loops`. A line is
/// encoded as Heka protobuf in place (the form the filter reads it in), without a copy.
#[inline]
pub fn encode(out: &mut Vec<u8>, filter: u16, loops: u8, message: &MessageView<'_>) {
    match message {
        MessageView::Proto(view) => encode_raw(out, filter, loops, view.bytes()),
        MessageView::Line(line) => {
            let length = encoded_line_len(line);
            encode_header(out, filter, loops, length);
            let start = out.len();
            encode_line(line, out);
            // The header promised `length` bytes; a mismatch would shift every later record.
            debug_assert_eq!(out.len() - start, length, "encoded_line_len disagrees");
        }
    }
}

/// Appends `message` (already encoded: Heka protobuf, or a stat record with `loops` carrying
/// [`STAT_RECORD`]) as a filter record for filter `filter`.
#[inline]
pub fn encode_raw(out: &mut Vec<u8>, filter: u16, loops: u8, message: &[u8]) {
    encode_header(out, filter, loops, message.len());
    out.extend_from_slice(message);
}

/// The length of the filter record at the start of `bytes`, header included, if it is whole.
pub fn record_bytes(bytes: &[u8]) -> Option<usize> {
    let length = u32::from_le_bytes(*bytes.first_chunk::<4>()?) as usize;
    let end = HEADER_BYTES.checked_add(length)?;
    (end <= bytes.len()).then_some(end)
}

/// Iterates the filter records of a lane batch. Stops at the first record that is not whole
/// (a torn tail): what follows it cannot be found.
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = FilterRecord<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (header, after) = rest.split_first_chunk::<HEADER_BYTES>()?;
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let message = after.get(..length)?;
        rest = &after[length..];
        Some(FilterRecord {
            filter: u16::from_le_bytes([header[4], header[5]]),
            loops: header[6],
            message,
        })
    })
}

/// The bytes of the first `count` filter records of `bytes` (all of them if fewer; a torn
/// tail goes with the last).
pub fn leading_bytes(bytes: &[u8], count: usize) -> usize {
    let mut at = 0;
    for _ in 0..count {
        match bytes.get(at..).and_then(record_bytes) {
            Some(length) => at += length,
            None => return bytes.len(),
        }
    }
    at
}

/// Appends the queue record of lane batch `batch` (whole filter records) to `out`: the
/// version byte, then the batch as it is.
pub fn encode_queue_record(out: &mut Vec<u8>, batch: &[u8]) {
    out.push(QUEUE_FORMAT_VERSION);
    out.extend_from_slice(batch);
}

/// A queue record this gyges cannot read: it starts with version `found` (`None`: the record
/// is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("filter queue record of format version {found:?}; this gyges reads version {QUEUE_FORMAT_VERSION}")]
pub struct UnknownVersion {
    /// The version byte the record starts with; `None` when the record is empty.
    pub found: Option<u8>,
}

/// The lane batch inside queue record `record`, once its version byte is checked.
///
/// # Errors
/// [`UnknownVersion`] when the record is empty or of another version.
pub fn queue_record_body(record: &[u8]) -> Result<&[u8], UnknownVersion> {
    match record.split_first() {
        Some((&QUEUE_FORMAT_VERSION, batch)) => Ok(batch),
        Some((&found, _)) => Err(UnknownVersion { found: Some(found) }),
        None => Err(UnknownVersion { found: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seeds: the boundaries of the header and of the length field.
    #[test]
    fn seeds_decode_as_written_and_torn_tails_end_the_batch() {
        let mut bytes = Vec::new();
        encode_raw(&mut bytes, 3, 0, b"abc");
        encode_raw(&mut bytes, 0xFFFF, STAT_RECORD | 5, b"");
        encode_raw(&mut bytes, 1, 255, &[0; 300]);
        let records: Vec<FilterRecord<'_>> = decode(&bytes).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(
            (records[0].filter, records[0].loops, records[0].message),
            (3, 0, &b"abc"[..])
        );
        assert_eq!(
            (records[1].filter, records[1].loops),
            (0xFFFF, STAT_RECORD | 5)
        );
        assert!(records[1].message.is_empty());
        assert_eq!(records[2].message.len(), 300);
        assert_eq!(record_bytes(&bytes), Some(HEADER_BYTES + 3));
        // Torn: every cut inside the last record loses that record only.
        for cut in bytes.len() - 300 - HEADER_BYTES + 1..bytes.len() {
            assert_eq!(decode(&bytes[..cut]).count(), 2, "cut at {cut}");
        }
        assert_eq!(record_bytes(&[1, 0, 0]), None);
        assert_eq!(record_bytes(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0]), None);
        assert_eq!(leading_bytes(&bytes, 2), 2 * HEADER_BYTES + 3);
        assert_eq!(leading_bytes(&bytes, 9), bytes.len());
        assert_eq!(leading_bytes(&bytes[..bytes.len() - 1], 9), bytes.len() - 1);
        assert_eq!(leading_bytes(&[], 4), 0);
    }

    #[test]
    fn lines_are_encoded_as_protobuf_with_a_matching_length() {
        let meta = crate::message::LineMeta {
            logger: b"logger".to_vec().into(),
            ..crate::message::LineMeta::default()
        };
        let line = crate::message::LineView {
            payload: b"hello",
            uuid: [1; 16],
            timestamp: 5,
            meta: &meta,
        };
        let mut bytes = Vec::new();
        encode(&mut bytes, 7, 2, &MessageView::Line(line));
        let record = decode(&bytes).next().expect("one record");
        assert_eq!(record_bytes(&bytes), Some(bytes.len()));
        assert_eq!((record.filter, record.loops), (7, 2));
        let view = crate::message::ProtoView::new(record.message);
        assert_eq!(
            view.str_header(crate::message::StrHeader::Payload),
            Some(&b"hello"[..])
        );
        assert_eq!(view.timestamp(), Some(5));
    }

    #[test]
    fn queue_records_carry_and_check_the_version() {
        let mut batch = Vec::new();
        encode_raw(&mut batch, 0, 0, b"message");
        let mut record = Vec::new();
        encode_queue_record(&mut record, &batch);
        assert_eq!(record[0], QUEUE_FORMAT_VERSION);
        assert_eq!(queue_record_body(&record), Ok(&batch[..]));
        record[0] = QUEUE_FORMAT_VERSION + 1;
        assert_eq!(
            queue_record_body(&record),
            Err(UnknownVersion {
                found: Some(QUEUE_FORMAT_VERSION + 1)
            })
        );
        assert_eq!(queue_record_body(&[]), Err(UnknownVersion { found: None }));
        // A batch written before the version byte existed starts with its first record's
        // length: refused unless that length's low byte happens to be the version.
        let mut legacy = Vec::new();
        encode_raw(&mut legacy, 0, 0, &[0; 2]);
        assert!(queue_record_body(&legacy).is_err());
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_back_every_record(
            records in proptest::collection::vec(
                (any::<u16>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)),
                0..20,
            ),
        ) {
            let mut batch = Vec::new();
            for (filter, loops, message) in &records {
                encode_raw(&mut batch, *filter, *loops, message);
            }
            let mut record = Vec::new();
            encode_queue_record(&mut record, &batch);
            let body = queue_record_body(&record);
            prop_assert_eq!(body, Ok(&batch[..]));
            let decoded: Vec<(u16, u8, Vec<u8>)> = decode(&batch)
                .map(|record| (record.filter, record.loops, record.message.to_vec()))
                .collect();
            prop_assert_eq!(decoded, records.clone());
            prop_assert_eq!(leading_bytes(&batch, records.len()), batch.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut seen = 0;
            for record in decode(&bytes) {
                seen += HEADER_BYTES + record.message.len();
            }
            prop_assert!(seen <= bytes.len());
            if let Some(length) = record_bytes(&bytes) {
                prop_assert!(length >= HEADER_BYTES && length <= bytes.len());
            }
            prop_assert!(leading_bytes(&bytes, 8) <= bytes.len());
            if let Ok(body) = queue_record_body(&bytes) {
                prop_assert_eq!(body.len() + QUEUE_HEADER_BYTES, bytes.len());
                prop_assert!(decode(body).count() <= body.len() / HEADER_BYTES);
            }
        }
    }
}
