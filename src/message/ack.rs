//! Control frames of gyges's acknowledgement protocol (`ack = true` on a TcpOutput). The
//! protocol itself, who sends what and when, is described in `docs/ack.md`; this module owns
//! the bytes.
//!
//! A control frame is a Heka stream frame with no message: its header says
//! `message_length = 0` and carries two fields Heka's schema does not define, the kind (field 14)
//! and a value (field 12):
//!
//! ```text
//! 0x1E  H  [0x08 0x00] [0x70 kind] [0x60 value varint]  0x1F        H = 4 + varint length
//! ```
//!
//! Heka's readers and lua_sandbox treat a frame with `message_length = 0` as a bad header: they
//! skip one byte, resynchronise, and count the few bytes as discarded. A sender therefore only
//! sends [`Control::Hello`] to a peer it does not know; everything else goes only to a peer
//! that answered with [`Control::Welcome`]. The hello is made of bytes below `0x1E` after its
//! separator, so such a reader cannot find a false frame inside it.
//!
//! A mark makes the receiving core ship every batch it holds (`Shard::settle`), so a receiver
//! does not take one from just anyone: a mark counts only on a connection that sent a hello
//! first ([`Requests`]), and one connection gets at most
//! [`crate::limits::ACK_SETTLES_PER_SECOND_MAX`] settles a second ([`settle_wait`]); later
//! marks are answered once the interval has passed (acks are cumulative, so one answer covers
//! them all).

use std::time::{Duration, Instant};

use super::framing::{RECORD_SEPARATOR, UNIT_SEPARATOR};
use super::wire;
use crate::limits::ACK_SETTLES_PER_SECOND_MAX;

/// The protocol version this gyges speaks.
pub const VERSION: u64 = 1;

/// The header key of the kind field (field 14, varint).
const KIND_KEY: u8 = 14 << 3;
/// The header key of the value field (field 12, varint).
const VALUE_KEY: u8 = 12 << 3;
/// `message_length = 0`: field 1, varint, value 0.
const EMPTY_LENGTH: [u8; 2] = [0x08, 0x00];

/// The largest control frame: separators, the header length byte, `message_length`, the kind
/// and a ten-byte varint.
pub const CONTROL_BYTES_MAX: usize = 3 + 2 + 2 + 1 + 10;

/// One control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Sender to receiver, first on a connection: "I can ask for acknowledgements".
    Hello {
        /// The sender's protocol version ([`VERSION`]); the receiver answers any version.
        version: u64,
    },
    /// Receiver to sender, the answer to a hello: "I will acknowledge".
    Welcome {
        /// The receiver's protocol version ([`VERSION`]).
        version: u64,
    },
    /// Sender to receiver, after a batch: "acknowledge everything before this mark".
    Mark {
        /// The mark's number: 1, 2, … on each connection, starting over on a reconnect.
        seq: u64,
    },
    /// Receiver to sender: everything before mark `seq` is in the receiver's queues.
    Ack {
        /// The latest mark read; cumulative, so it covers every mark up to `seq`.
        seq: u64,
    },
}

impl Control {
    fn kind_and_value(self) -> (u8, u64) {
        match self {
            Control::Hello { version } => (1, version),
            Control::Welcome { version } => (2, version),
            Control::Mark { seq } => (3, seq),
            Control::Ack { seq } => (4, seq),
        }
    }

    fn from_kind(kind: u64, value: u64) -> Option<Control> {
        Some(match kind {
            1 => Control::Hello { version: value },
            2 => Control::Welcome { version: value },
            3 => Control::Mark { seq: value },
            4 => Control::Ack { seq: value },
            _ => return None,
        })
    }

    /// Appends the frame to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        let (kind, value) = self.kind_and_value();
        let header_bytes = EMPTY_LENGTH.len() + 2 + 1 + wire::varint_len(value);
        out.push(RECORD_SEPARATOR);
        // At most 2 + 2 + 1 + 10 bytes.
        out.push(header_bytes as u8);
        out.extend_from_slice(&EMPTY_LENGTH);
        out.extend_from_slice(&[KIND_KEY, kind, VALUE_KEY]);
        wire::put_varint(out, value);
        out.push(UNIT_SEPARATOR);
    }
}

/// What a receiver has been asked on one connection since it last looked. Marks are
/// cumulative, so only the latest one matters; the size is fixed whatever the sender sends.
///
/// A mark counts only once the connection has sent a hello (in an earlier frame): a peer that
/// never said hello is not an acknowledging gyges sender, and its marks are counted in
/// `marks_ignored` and otherwise ignored (no settle, no ack).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// A hello's version: answer with a welcome.
    pub hello: Option<u64>,
    /// The latest mark: acknowledge it once everything read before it is queued.
    pub mark: Option<u64>,
    /// Marks read before any hello on this connection.
    pub marks_ignored: u64,
    /// Whether this connection has sent a hello; kept across [`Requests::take`].
    greeted: bool,
}

impl Requests {
    /// Notes a control frame read from a sender. Frames a sender never sends (a welcome, an
    /// ack) are ignored, and so are marks before a hello (counted).
    pub fn note(&mut self, control: Control) {
        match control {
            Control::Hello { version } => {
                self.hello = Some(version);
                self.greeted = true;
            }
            Control::Mark { seq } if self.greeted => {
                self.mark = Some(self.mark.map_or(seq, |mark| mark.max(seq)));
            }
            Control::Mark { .. } => self.marks_ignored = self.marks_ignored.saturating_add(1),
            Control::Welcome { .. } | Control::Ack { .. } => {}
        }
    }

    /// What was asked, leaving nothing but whether the connection said hello; `None` when
    /// nothing was.
    pub fn take(&mut self) -> Option<Requests> {
        let greeted = self.greeted;
        let requests = std::mem::replace(
            self,
            Requests {
                greeted,
                ..Requests::default()
            },
        );
        let asked = requests.hello.is_some() || requests.mark.is_some();
        (asked || requests.marks_ignored > 0).then_some(requests)
    }
}

/// The shortest time between two settles on one connection.
pub const SETTLE_INTERVAL_MIN: Duration =
    Duration::from_nanos(1_000_000_000 / ACK_SETTLES_PER_SECOND_MAX);

/// How long a connection whose last settle was at `last` waits before settling again at
/// `now`: zero when [`SETTLE_INTERVAL_MIN`] has passed (or it never settled).
pub fn settle_wait(last: Option<Instant>, now: Instant) -> Duration {
    match last {
        Some(last) => SETTLE_INTERVAL_MIN.saturating_sub(now.saturating_duration_since(last)),
        None => Duration::ZERO,
    }
}

/// What [`parse`] found at the start of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A control frame of `bytes` bytes.
    Control {
        /// The control frame read.
        control: Control,
        /// Bytes of the frame, separators included: how far to advance the window.
        bytes: usize,
    },
    /// The window ends inside what may be a control frame.
    Incomplete,
    /// Not a control frame.
    Not,
}

/// Reads the control frame at the start of `window`.
pub fn parse(window: &[u8]) -> Parsed {
    match window.first() {
        None => return Parsed::Incomplete,
        Some(&RECORD_SEPARATOR) => {}
        Some(_) => return Parsed::Not,
    }
    let Some(&header_bytes) = window.get(1) else {
        return Parsed::Incomplete;
    };
    let header_bytes = usize::from(header_bytes);
    if header_bytes > CONTROL_BYTES_MAX - 3 {
        return Parsed::Not;
    }
    let frame_bytes = 3 + header_bytes;
    let Some(frame) = window.get(..frame_bytes) else {
        return Parsed::Incomplete;
    };
    if frame[frame_bytes - 1] != UNIT_SEPARATOR {
        return Parsed::Not;
    }
    let header = &frame[2..frame_bytes - 1];
    let (mut length, mut kind, mut value) = (None, None, None);
    let mut position = 0;
    while position < header.len() {
        let Some((tag, wire_type)) = wire::read_key(header, &mut position) else {
            return Parsed::Not;
        };
        if wire_type != 0 {
            return Parsed::Not;
        }
        let Some(number) = wire::read_varint(header, &mut position) else {
            return Parsed::Not;
        };
        match tag {
            1 => length = Some(number),
            14 => kind = Some(number),
            12 => value = Some(number),
            _ => return Parsed::Not,
        }
    }
    match (length, kind, value) {
        (Some(0), Some(kind), Some(value)) => match Control::from_kind(kind, value) {
            Some(control) => Parsed::Control {
                control,
                bytes: frame_bytes,
            },
            None => Parsed::Not,
        },
        _ => Parsed::Not,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::framing::{parse_header, HeaderError};

    #[test]
    fn every_control_round_trips() {
        for control in [
            Control::Hello { version: VERSION },
            Control::Welcome { version: VERSION },
            Control::Mark { seq: 0 },
            Control::Mark { seq: 300 },
            Control::Ack { seq: u64::MAX },
        ] {
            let mut bytes = Vec::new();
            control.encode(&mut bytes);
            assert!(bytes.len() <= CONTROL_BYTES_MAX);
            bytes.extend_from_slice(b"after");
            assert_eq!(
                parse(&bytes),
                Parsed::Control {
                    control,
                    bytes: bytes.len() - 5
                }
            );
            // Every prefix is incomplete, never mistaken for something else.
            for cut in 0..bytes.len() - 5 {
                assert_eq!(
                    parse(&bytes[..cut]),
                    Parsed::Incomplete,
                    "{control:?} {cut}"
                );
            }
        }
    }

    #[test]
    fn marks_count_only_after_a_hello_and_the_hello_is_remembered() {
        let mut requests = Requests::default();
        requests.note(Control::Mark { seq: 5 });
        requests.note(Control::Mark { seq: 6 });
        let taken = requests.take().expect("ignored marks are reported");
        assert_eq!((taken.mark, taken.marks_ignored), (None, 2));
        assert_eq!(requests.take(), None, "nothing new");
        requests.note(Control::Hello { version: VERSION });
        requests.note(Control::Mark { seq: 7 });
        requests.note(Control::Mark { seq: 3 });
        let taken = requests.take().expect("a hello and a mark");
        assert_eq!((taken.hello, taken.mark), (Some(VERSION), Some(7)));
        // The hello holds for the rest of the connection.
        requests.note(Control::Mark { seq: 8 });
        let taken = requests.take().expect("a mark");
        assert_eq!(
            (taken.hello, taken.mark, taken.marks_ignored),
            (None, Some(8), 0)
        );
    }

    #[test]
    fn settles_are_spaced_by_the_interval() {
        let now = Instant::now();
        assert_eq!(settle_wait(None, now), Duration::ZERO);
        assert_eq!(settle_wait(Some(now), now), SETTLE_INTERVAL_MIN);
        let half = SETTLE_INTERVAL_MIN / 2;
        assert_eq!(
            settle_wait(Some(now), now + half),
            SETTLE_INTERVAL_MIN - half
        );
        let later = now + SETTLE_INTERVAL_MIN * 3;
        assert_eq!(settle_wait(Some(now), later), Duration::ZERO);
        assert!(!SETTLE_INTERVAL_MIN.is_zero());
    }

    #[test]
    fn a_heka_reader_sees_a_bad_header_and_no_false_frame_in_a_hello() {
        let mut hello = Vec::new();
        Control::Hello { version: VERSION }.encode(&mut hello);
        // Exactly what Heka's readers resync on: message_length 0.
        assert_eq!(parse_header(&hello), Err(HeaderError::EmptyMessage));
        assert!(!hello[1..].contains(&RECORD_SEPARATOR));
    }

    #[test]
    fn messages_and_garbage_are_not_controls() {
        let mut frame = Vec::new();
        crate::message::framing::write_frame(&mut frame, b"a message", None).expect("frame");
        assert_eq!(parse(&frame), Parsed::Not);
        assert_eq!(parse(b"plain line\n"), Parsed::Not);
        // An unknown kind, an unknown field, a length that is not 0.
        for header in [
            &[0x08, 0x00, 0x70, 0x09, 0x60, 0x01][..],
            &[0x08, 0x00, 0x70, 0x03, 0x58, 0x01],
            &[0x08, 0x01, 0x70, 0x03, 0x60, 0x01],
        ] {
            let mut bytes = vec![RECORD_SEPARATOR, header.len() as u8];
            bytes.extend_from_slice(header);
            bytes.push(UNIT_SEPARATOR);
            assert_eq!(parse(&bytes), Parsed::Not, "{header:?}");
        }
    }
}
