//! One queue record: a plain Heka stream frame whose header also carries the CRC32C of the
//! message and, optionally, how many messages the record holds.
//!
//! ```text
//! struct Record {
//!     separator:      u8 = 0x1E,
//!     header_length:  u8,                 // H: bytes of the header protobuf, 7..=22
//!     header: Header {                    // protobuf, H bytes, written in this order:
//!         0x08 message_length: varint,    //   field 1, required; Heka readers want it first
//!         0x68 messages:       varint,    //   field 13, optional: messages in this record
//!         0x7D crc32c:         fixed32,   //   field 15, little endian: CRC32C of `message`
//!     },
//!     unit_separator: u8 = 0x1F,
//!     message:        [u8; message_length],  // the message bytes exactly as appended
//! }
//! ```
//!
//! Why the checksum lives in the header: the frame stays one valid Heka frame, so `gyges cat`,
//! Heka's readers and lua_sandbox's stream reader read a segment file as is. Header field 15 is
//! unknown to them; protobuf decoders skip unknown fields, and lua_sandbox reads only the
//! length. The checksum covers the message only: a damaged length or separator is caught by
//! the framing itself (the message then ends in the wrong place, and its checksum fails).
//!
//! Field 13 is written only when the appender gives a count (a durable output's record is one
//! shipped batch of encoded messages, and says how many, for `sent_total` at delivery). A
//! record without it reads as a count of 0: "not said". Field 14 is reserved (acknowledged
//! forwarding); the parser skips it like any other unknown field.
//!
//! Invariants:
//! - Parsing never panics and never allocates, whatever the bytes.
//! - A record parses only when its framing is exact, its length is in `1..=`
//!   [`MESSAGE_BYTES_CEILING`], and the checksum matches. Anything else is [`Parsed::Corrupt`]
//!   or, when the bytes stop early, [`Parsed::Incomplete`].
//! - [`encode`] followed by [`parse`] returns the message unchanged (tested below).

use std::ops::Range;

use crate::limits::MESSAGE_BYTES_CEILING;
use crate::message::wire;

/// The first byte of every frame.
pub const RECORD_SEPARATOR: u8 = 0x1E;
/// The byte between the header and the message.
pub const UNIT_SEPARATOR: u8 = 0x1F;
/// The header key of `message_length` (field 1, varint).
const KEY_MESSAGE_LENGTH: u8 = 0x08;
/// The header field that carries the checksum. Heka's header uses 1 and 3..=6.
pub const CRC32C_FIELD: u32 = 15;
/// Its key: field 15, wire type fixed32.
const KEY_CRC32C: u8 = ((CRC32C_FIELD as u8) << 3) | wire::WIRE_FIXED32;
/// The optional header field that says how many messages the record holds.
pub const MESSAGES_FIELD: u32 = 13;
/// Its key: field 13, wire type varint.
const KEY_MESSAGES: u8 = ((MESSAGES_FIELD as u8) << 3) | wire::WIRE_VARINT;

/// The most bytes a record adds around its message: separators, header length, header
/// (length, message count, checksum).
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 3 + 1 + 10 + 1 + 10 + 1 + 4;

const _: () = assert!(KEY_CRC32C == 0x7D);
const _: () = assert!(KEY_MESSAGES == 0x68);
const _: () = assert!(RECORD_OVERHEAD_BYTES_MAX <= crate::limits::FRAME_OVERHEAD_BYTES_MAX);

/// What is at the start of some bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole, intact record: `message` indexes the input, `length` is the record's size,
    /// `count` the messages it says it holds (0 when its header does not say).
    Record {
        /// Where the message sits in the bytes given.
        message: Range<usize>,
        /// Bytes of the whole record, framing included: where the next one starts.
        length: usize,
        /// The messages the record's header says it holds; 0 when it does not say.
        count: u64,
    },
    /// The bytes end before the record does; `needed` is the size known so far.
    Incomplete {
        /// Bytes needed from the record's start to learn more (the whole record once its header is
        /// read).
        needed: usize,
    },
    /// Not a record here.
    Corrupt(Corruption),
}

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The first byte is not the record separator 0x1E.
    Separator,
    /// The byte after the header is not the unit separator 0x1F.
    UnitSeparator,
    /// The header protobuf is malformed or has no message_length.
    Header,
    /// The message_length is 0 or above the 64 MiB ceiling.
    Length,
    /// The header has no CRC32C field: not a queue record.
    MissingChecksum,
    /// The message's CRC32C does not match the header's.
    Checksum,
}

impl Corruption {
    /// A low-cardinality label for logs and counters.
    pub fn code(self) -> &'static str {
        match self {
            Corruption::Separator => "separator",
            Corruption::UnitSeparator => "unit_separator",
            Corruption::Header => "header",
            Corruption::Length => "length",
            Corruption::MissingChecksum => "missing_checksum",
            Corruption::Checksum => "checksum",
        }
    }
}

/// The CRC32C the header carries for `message`.
#[inline]
pub fn checksum(message: &[u8]) -> u32 {
    crc32c::crc32c(message)
}

/// The size [`encode`] writes for a message of `message_length` bytes.
#[inline]
pub fn encoded_length(message_length: usize) -> usize {
    encoded_length_counted(message_length, 0)
}

/// The size [`encode_counted`] writes for a message of `message_length` bytes holding `count`
/// messages.
#[inline]
pub fn encoded_length_counted(message_length: usize, count: u64) -> usize {
    3 + header_length(message_length, count) + message_length
}

#[inline]
fn header_length(message_length: usize, count: u64) -> usize {
    let count_bytes = match count {
        0 => 0,
        count => 1 + wire::varint_len(count),
    };
    1 + wire::varint_len(message_length as u64) + count_bytes + 1 + 4
}

/// Appends the record for `message` to `out`, without a message count.
///
/// The caller keeps `message.len()` within `1..=MESSAGE_BYTES_CEILING`; a longer message
/// would still be framed correctly but [`parse`] would reject it.
#[inline]
pub fn encode(message: &[u8], out: &mut Vec<u8>) {
    encode_counted(message, 0, out);
}

/// Appends the record for `message` to `out`, saying it holds `count` messages (header field
/// 13); a count of 0 writes no field, as [`encode`].
#[inline]
pub fn encode_counted(message: &[u8], count: u64, out: &mut Vec<u8>) {
    // Debug-only checks: this runs once per message, and the writer refuses empty and
    // oversized messages before it gets here.
    debug_assert!(!message.is_empty() && message.len() <= MESSAGE_BYTES_CEILING);
    let header = header_length(message.len(), count);
    out.reserve(3 + header + message.len());
    let start = out.len();
    out.push(RECORD_SEPARATOR);
    out.push(header as u8);
    out.push(KEY_MESSAGE_LENGTH);
    wire::put_varint(out, message.len() as u64);
    if count != 0 {
        out.push(KEY_MESSAGES);
        wire::put_varint(out, count);
    }
    out.push(KEY_CRC32C);
    out.extend_from_slice(&checksum(message).to_le_bytes());
    out.push(UNIT_SEPARATOR);
    out.extend_from_slice(message);
    debug_assert_eq!(
        out.len() - start,
        encoded_length_counted(message.len(), count)
    );
}

/// Parses the record at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    let (Some(&first), Some(&header)) = (bytes.first(), bytes.get(1)) else {
        if bytes
            .first()
            .is_some_and(|&first| first != RECORD_SEPARATOR)
        {
            return Parsed::Corrupt(Corruption::Separator);
        }
        return Parsed::Incomplete { needed: 2 };
    };
    if first != RECORD_SEPARATOR {
        return Parsed::Corrupt(Corruption::Separator);
    }
    let header = usize::from(header);
    let message_start = 3 + header;
    if bytes.len() < message_start {
        return Parsed::Incomplete {
            needed: message_start,
        };
    }
    if bytes[message_start - 1] != UNIT_SEPARATOR {
        return Parsed::Corrupt(Corruption::UnitSeparator);
    }
    let Header { length, crc, count } = match parse_header(&bytes[2..message_start - 1]) {
        Ok(fields) => fields,
        Err(corruption) => return Parsed::Corrupt(corruption),
    };
    let Some(crc) = crc else {
        return Parsed::Corrupt(Corruption::MissingChecksum);
    };
    let end = message_start + length;
    let Some(message) = bytes.get(message_start..end) else {
        return Parsed::Incomplete { needed: end };
    };
    if checksum(message) != crc {
        return Parsed::Corrupt(Corruption::Checksum);
    }
    Parsed::Record {
        message: message_start..end,
        length: end,
        count,
    }
}

/// The fields of a record header gyges reads.
struct Header {
    length: usize,
    crc: Option<u32>,
    /// Field 13; 0 when absent.
    count: u64,
}

/// Reads the message length, CRC32C and message count from a header protobuf. Other fields
/// (Heka's HMAC fields, field 14) are skipped; the first byte must be the `message_length`
/// key, as Heka requires.
fn parse_header(header: &[u8]) -> Result<Header, Corruption> {
    if header.first() != Some(&KEY_MESSAGE_LENGTH) {
        return Err(Corruption::Header);
    }
    let mut length = None;
    let mut crc = None;
    let mut count = 0;
    let mut pos = 0;
    while pos < header.len() {
        let (tag, wire_type) = wire::read_key(header, &mut pos).ok_or(Corruption::Header)?;
        match (tag, wire_type) {
            (1, wire::WIRE_VARINT) => {
                length = Some(wire::read_varint(header, &mut pos).ok_or(Corruption::Header)?);
            }
            (CRC32C_FIELD, wire::WIRE_FIXED32) => {
                let raw = header.get(pos..pos + 4).ok_or(Corruption::Header)?;
                crc = Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]));
                pos += 4;
            }
            (MESSAGES_FIELD, wire::WIRE_VARINT) => {
                count = wire::read_varint(header, &mut pos).ok_or(Corruption::Header)?;
            }
            (_, wire_type) => wire::skip(header, &mut pos, wire_type).ok_or(Corruption::Header)?,
        }
    }
    let length = length.ok_or(Corruption::Header)?;
    if length == 0 || length > MESSAGE_BYTES_CEILING as u64 {
        return Err(Corruption::Length);
    }
    Ok(Header {
        length: length as usize,
        crc,
        count,
    })
}

/// One step of a walk over queue bytes, from [`step`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A record: its message, where the next record starts, and the messages it says it
    /// holds (0: not said).
    Record {
        /// Where the message sits in the bytes given.
        message: Range<usize>,
        /// Where the next record (or damage) starts.
        next: usize,
        /// The messages the record's header says it holds; 0 when it does not say.
        count: u64,
    },
    /// Damaged bytes up to `next`, where the next candidate record starts (or the end).
    Skip {
        /// Where the next candidate record starts, or the end of the bytes.
        next: usize,
    },
    /// The record at `at` goes past the bytes given; read at least `needed` bytes from `at`.
    NeedMore {
        /// Where the record starts.
        at: usize,
        /// Bytes to read from `at` to get further: the record's size when known.
        needed: usize,
    },
    /// Nothing left.
    End,
}

/// Walks one step from `at`. `complete` says the bytes run to the end of what can be read: then
/// a record that would run past them is damage, not a record still to come.
///
/// After damage, the walk resumes at the next `0x1E` that starts an intact record (or, when
/// more bytes may come, one that could), as Heka's readers resynchronise.
pub fn step(bytes: &[u8], at: usize, complete: bool) -> Step {
    let Some(rest) = bytes.get(at..).filter(|rest| !rest.is_empty()) else {
        return Step::End;
    };
    match parse(rest) {
        Parsed::Record {
            message,
            length,
            count,
        } => Step::Record {
            message: at + message.start..at + message.end,
            next: at + length,
            count,
        },
        Parsed::Incomplete { needed } if !complete => Step::NeedMore { at, needed },
        Parsed::Incomplete { .. } | Parsed::Corrupt(_) => Step::Skip {
            next: resync(bytes, at + 1, complete),
        },
    }
}

/// The first offset at or after `from` where a record starts (or may start, when `complete` is
/// false), or `bytes.len()` when there is none.
fn resync(bytes: &[u8], from: usize, complete: bool) -> usize {
    let mut at = from;
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| memchr::memchr(RECORD_SEPARATOR, rest))
    {
        let candidate = at + found;
        match parse(&bytes[candidate..]) {
            Parsed::Record { .. } => return candidate,
            Parsed::Incomplete { .. } if !complete => return candidate,
            _ => at = candidate + 1,
        }
    }
    bytes.len()
}

/// The number of frames that start in `bytes`, counted by following their header lengths, for
/// reporting what a torn tail held. Damaged frames count as one each.
pub fn count_frames(bytes: &[u8]) -> u64 {
    let mut count = 0u64;
    let mut at = 0usize;
    while at < bytes.len() {
        count += 1;
        let rest = &bytes[at..];
        let header = rest.get(1).map(|&header| usize::from(header));
        let length = header.and_then(|header| {
            let fields = rest.get(2..2 + header)?;
            parse_header(fields)
                .ok()
                .map(|fields| 3 + header + fields.length)
        });
        match length {
            Some(length) if rest[0] == RECORD_SEPARATOR => at += length,
            _ => break,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(message, &mut out);
        out
    }

    #[test]
    fn a_record_is_a_heka_frame_with_the_length_first() {
        let bytes = record(&[0xAB; 100]);
        assert_eq!(&bytes[..4], &[0x1E, 7, 0x08, 100]);
        assert_eq!(bytes[4], 0x7D);
        assert_eq!(&bytes[5..9], &checksum(&[0xAB; 100]).to_le_bytes());
        assert_eq!(bytes[9], 0x1F);
        assert_eq!(bytes.len(), encoded_length(100));
        // What Heka's header decoder needs: byte 2 is 0x08, the length follows.
        let header = proto_header(&bytes);
        assert_eq!(header.message_length, 100);
    }

    fn proto_header(bytes: &[u8]) -> crate::message::proto::Header {
        use prost::Message as _;
        let length = usize::from(bytes[1]);
        crate::message::proto::Header::decode(&bytes[2..2 + length]).expect("a Heka header")
    }

    #[test]
    fn seeds() {
        let good = record(b"hello");
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut bad_unit = good.clone();
        bad_unit[9] = 0;
        let mut bad_key = good.clone();
        bad_key[2] = 0x10;
        let no_crc = [0x1E, 2, 0x08, 1, 0x1F, b'x'];
        let zero_length = [0x1E, 7, 0x08, 0, 0x7D, 0, 0, 0, 0, 0x1F];
        let seeds: &[(&[u8], Parsed)] = &[
            (&[], Parsed::Incomplete { needed: 2 }),
            (&[0x1E], Parsed::Incomplete { needed: 2 }),
            (&[0x00], Parsed::Corrupt(Corruption::Separator)),
            (&[0x1E, 7, 0x08], Parsed::Incomplete { needed: 10 }),
            (&good[..12], Parsed::Incomplete { needed: 15 }),
            (&flipped, Parsed::Corrupt(Corruption::Checksum)),
            (&bad_unit, Parsed::Corrupt(Corruption::UnitSeparator)),
            (&bad_key, Parsed::Corrupt(Corruption::Header)),
            (&no_crc, Parsed::Corrupt(Corruption::MissingChecksum)),
            (&zero_length, Parsed::Corrupt(Corruption::Length)),
            (
                &good,
                Parsed::Record {
                    message: 10..15,
                    length: 15,
                    count: 0,
                },
            ),
        ];
        for (bytes, expected) in seeds {
            assert_eq!(&parse(bytes), expected, "{bytes:02x?}");
        }
    }

    #[test]
    fn hmac_fields_in_the_header_are_skipped() {
        // A header with an hmac_signer (field 4) between the length and the checksum.
        let message = b"signed";
        let mut header = vec![0x08, message.len() as u8, 0x22, 2, b'h', b'i', 0x7D];
        header.extend_from_slice(&checksum(message).to_le_bytes());
        let mut bytes = vec![0x1E, header.len() as u8];
        bytes.extend_from_slice(&header);
        bytes.push(0x1F);
        bytes.extend_from_slice(message);
        assert!(matches!(parse(&bytes), Parsed::Record { .. }));
    }

    #[test]
    fn a_counted_record_says_its_messages_and_stays_a_heka_frame() {
        let mut bytes = Vec::new();
        encode_counted(&[0xCD; 300], 1234, &mut bytes);
        // Length (300 = 2-byte varint), then field 13 (0x68) = 1234, then the checksum.
        assert_eq!(&bytes[..5], &[0x1E, 11, 0x08, 0xAC, 0x02]);
        assert_eq!(&bytes[5..8], &[0x68, 0xD2, 0x09]);
        assert_eq!(bytes[8], 0x7D);
        assert_eq!(bytes.len(), encoded_length_counted(300, 1234));
        assert_eq!(
            parse(&bytes),
            Parsed::Record {
                message: 14..314,
                length: 314,
                count: 1234
            }
        );
        // Heka's header decoder skips field 13.
        assert_eq!(proto_header(&bytes).message_length, 300);
        // A count of 0 writes the same bytes as an uncounted record.
        let mut zero = Vec::new();
        encode_counted(b"same", 0, &mut zero);
        assert_eq!(zero, record(b"same"));
        assert!(matches!(parse(&zero), Parsed::Record { count: 0, .. }));
        // The largest count fits the header-length byte and the overhead bound.
        let mut huge = Vec::new();
        encode_counted(&[1; 1], u64::MAX, &mut huge);
        assert_eq!(huge.len() - 1, RECORD_OVERHEAD_BYTES_MAX - 10 + 1);
        assert!(matches!(
            parse(&huge),
            Parsed::Record {
                count: u64::MAX,
                ..
            }
        ));
    }

    #[test]
    fn field_14_is_skipped() {
        // Reserved for acknowledged forwarding: a varint field 14 between length and checksum.
        let message = b"acked";
        let mut header = vec![0x08, message.len() as u8, 0x70, 0x05, 0x7D];
        header.extend_from_slice(&checksum(message).to_le_bytes());
        let mut bytes = vec![0x1E, header.len() as u8];
        bytes.extend_from_slice(&header);
        bytes.push(0x1F);
        bytes.extend_from_slice(message);
        assert!(matches!(parse(&bytes), Parsed::Record { count: 0, .. }));
    }

    #[test]
    fn the_walk_skips_damage_and_finds_the_next_record() {
        let mut bytes = record(b"one");
        let second = bytes.len();
        bytes.extend_from_slice(&record(b"two"));
        let third = bytes.len();
        bytes.extend_from_slice(&record(b"three"));
        bytes[second + 11] ^= 0xFF; // inside "two"
        let Step::Record { next, .. } = step(&bytes, 0, true) else {
            panic!("first record")
        };
        assert_eq!(next, second);
        assert_eq!(step(&bytes, second, true), Step::Skip { next: third });
        assert!(matches!(step(&bytes, third, true), Step::Record { .. }));
        // A torn last record: damage when complete, more to read otherwise.
        let torn = &bytes[..bytes.len() - 2];
        assert_eq!(step(torn, third, true), Step::Skip { next: torn.len() });
        assert!(matches!(
            step(torn, third, false),
            Step::NeedMore { at, .. } if at == third
        ));
        assert_eq!(step(&bytes, bytes.len(), true), Step::End);
        assert_eq!(count_frames(&bytes[third..third + 4]), 1);
        assert_eq!(count_frames(&bytes[second..]), 2);
    }

    proptest! {
        #[test]
        fn encode_then_walk_returns_every_message(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..400), 0..20),
        ) {
            let mut bytes = Vec::new();
            for message in &messages {
                encode(message, &mut bytes);
            }
            let mut at = 0;
            let mut seen = Vec::new();
            loop {
                match step(&bytes, at, true) {
                    Step::Record { message, next, .. } => {
                        seen.push(bytes[message].to_vec());
                        at = next;
                    }
                    Step::End => break,
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(seen, messages);
        }

        #[test]
        fn damage_never_panics_and_never_invents_a_record(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..200), 1..10),
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
            cut in any::<usize>(),
        ) {
            let mut bytes = Vec::new();
            for message in &messages {
                encode(message, &mut bytes);
            }
            for (at, mask) in flips {
                let at = at % bytes.len();
                bytes[at] ^= mask;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let mut at = 0;
            let mut steps = 0;
            loop {
                steps += 1;
                prop_assert!(steps <= bytes.len() + 1, "the walk always advances");
                match step(&bytes, at, true) {
                    Step::Record { message, next, .. } => {
                        // Every record found is one that was written (CRC32C over random
                        // damage could collide, but not with these few flips).
                        prop_assert!(messages.iter().any(|m| m[..] == bytes[message.clone()]));
                        prop_assert!(next > at);
                        at = next;
                    }
                    Step::Skip { next } => {
                        prop_assert!(next > at);
                        at = next;
                    }
                    Step::End => break,
                    Step::NeedMore { .. } => prop_assert!(false, "complete walks never wait"),
                }
            }
        }
    }
}
