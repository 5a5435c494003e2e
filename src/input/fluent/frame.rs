//! One Forward-protocol frame (a whole top-level msgpack array) into messages, as a pure
//! function of its bytes: [`read_frame`] tells the mode from the second element, reads the
//! option map first (it says whether a PackedForward chunk is compressed and what to
//! acknowledge), then writes each event's message ([`super::mapping`]) and hands it to the
//! caller's `route`.
//!
//! | mode | frame |
//! |---|---|
//! | Message | `[tag, time, record, option?]` |
//! | Forward | `[tag, [[time, record], ...], option?]` |
//! | PackedForward | `[tag, bin(entries, concatenated), option?]` |
//! | CompressedPackedForward | the same, the bin a gzip stream (one or more members), `option.compressed = "gzip"` |
//!
//! A malformed event is counted and the frame goes on with the next; a frame whose shape is
//! wrong is counted once and yields nothing. Inflation is bounded: the window entries are cut
//! from is `max_message_size` plus one read, and a chunk inflating past
//! [`FLUENT_INFLATED_BYTES_MAX`] is refused from there on (counted as oversize).

use std::io::Read as _;

use super::mapping::{read_time, write_entry, EntryError, EventWriter};
use super::msgpack::{Error as PackError, Reader, Scan, Value};
use crate::limits::{FLUENT_CHUNK_BYTES_MAX, FLUENT_INFLATED_BYTES_MAX};
use crate::message::UuidSource;

/// Bytes inflated at a time into the window.
const INFLATE_STEP_BYTES: usize = 64 * 1024;

/// What a frame yielded, for the counters and the answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Messages routed.
    pub events: u64,
    /// Events (or whole frames) that were not well formed.
    pub malformed: u64,
    /// Events whose message would pass `max_message_size`, and chunks refused for inflating
    /// past the bound.
    pub oversize: u64,
    /// The first reason something was malformed (for the rate-limited log).
    pub reason: Option<&'static str>,
}

impl FrameCounts {
    fn note(&mut self, error: EntryError) {
        match error {
            EntryError::Oversize => self.oversize += 1,
            EntryError::Malformed(reason) => {
                self.malformed += 1;
                self.reason.get_or_insert(reason);
            }
        }
    }
}

/// A frame's option map: what to acknowledge and how the entries are packed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameOption<'a> {
    /// `chunk`: answer `{"ack": chunk}` once the events are queued.
    pub chunk: Option<&'a [u8]>,
    /// `compressed = "gzip"`.
    pub gzip: bool,
}

/// The buffers a connection reuses for every frame.
pub struct FrameBuffers {
    /// The message being written.
    pub message: Vec<u8>,
    /// JSON text of nested values.
    pub scratch: Vec<u8>,
    /// Inflated entries of a compressed chunk.
    pub window: Vec<u8>,
    /// Largest message (`max_message_size`).
    pub max_message_size: usize,
}

impl FrameBuffers {
    /// Buffers for messages of at most `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> FrameBuffers {
        FrameBuffers {
            message: Vec::with_capacity(max_message_size),
            scratch: Vec::new(),
            window: Vec::new(),
            max_message_size,
        }
    }
}

/// Reads a frame's first element when it is a string: the tag, or a handshake message's name.
pub fn frame_name(frame: &[u8]) -> Option<&[u8]> {
    let mut reader = Reader::new(frame);
    let Ok(Value::Array(_)) = reader.value() else {
        return None;
    };
    match reader.value() {
        Ok(Value::Str(name)) => Some(name),
        _ => None,
    }
}

/// Routes the events of one whole frame. Returns its option (what to acknowledge) and counts.
pub fn read_frame<'f>(
    frame: &'f [u8],
    hostname: &[u8],
    buffers: &mut FrameBuffers,
    uuids: &mut UuidSource,
    route: &mut dyn FnMut(&[u8]),
) -> (FrameOption<'f>, FrameCounts) {
    let mut counts = FrameCounts::default();
    let option = match read_shape(frame) {
        Ok(shape) => {
            let mut writer = EventWriter {
                tag: shape.tag,
                hostname,
                max_message_size: buffers.max_message_size,
                out: &mut buffers.message,
                scratch: &mut buffers.scratch,
            };
            match shape.events {
                Events::One { time_ns, record } => {
                    match writer.write(time_ns, record, &uuids.next_uuid()) {
                        Ok(()) => {
                            route(writer.out);
                            counts.events += 1;
                        }
                        Err(error) => counts.note(error),
                    }
                }
                Events::Array { count, entries } => {
                    let mut reader = Reader::new(entries);
                    for _ in 0..count {
                        let mut entry = Reader::new(reader.rest());
                        if reader.skip().is_err() {
                            counts.note(EntryError::Malformed("truncated msgpack"));
                            break;
                        }
                        match write_entry(&mut writer, &mut entry, &uuids.next_uuid()) {
                            Ok(()) => {
                                route(writer.out);
                                counts.events += 1;
                            }
                            Err(error) => counts.note(error),
                        }
                    }
                }
                Events::Packed(packed)
                    if shape.option.gzip || packed.starts_with(&[0x1f, 0x8b]) =>
                {
                    inflate_entries(
                        packed,
                        &mut writer,
                        &mut buffers.window,
                        uuids,
                        route,
                        &mut counts,
                    );
                }
                Events::Packed(packed) => {
                    packed_entries(packed, &mut writer, uuids, route, &mut counts);
                }
            }
            shape.option
        }
        Err(error) => {
            counts.note(error);
            FrameOption::default()
        }
    };
    (option, counts)
}

/// The events of a frame, before they are read.
enum Events<'f> {
    /// Message mode: one event.
    One { time_ns: i64, record: &'f [u8] },
    /// Forward mode: `count` entries, from the array's first element on.
    Array { count: u32, entries: &'f [u8] },
    /// PackedForward: the bin's bytes.
    Packed(&'f [u8]),
}

struct Shape<'f> {
    tag: &'f [u8],
    events: Events<'f>,
    option: FrameOption<'f>,
}

fn read_shape(frame: &[u8]) -> Result<Shape<'_>, EntryError> {
    let mut reader = Reader::new(frame);
    let Value::Array(elements @ 2..=4) = reader.value()? else {
        return Err(EntryError::Malformed(
            "a frame is not an array of 2 to 4 elements",
        ));
    };
    let (Value::Str(tag) | Value::Bin(tag)) = reader.value()? else {
        return Err(EntryError::Malformed("the tag is not a string"));
    };
    let second = reader.clone();
    let (events, used) = match reader.value()? {
        Value::Str(packed) | Value::Bin(packed) => (Events::Packed(packed), 2),
        Value::Array(count) if forward_entries(&reader) => {
            let entries = reader.rest();
            for _ in 0..count {
                reader.skip()?;
            }
            let length = entries.len() - reader.rest().len();
            (
                Events::Array {
                    count,
                    entries: &entries[..length],
                },
                2,
            )
        }
        _ => {
            let mut reader_time = second;
            let time_ns = read_time(&mut reader_time)?;
            reader = reader_time;
            let record = reader.object()?;
            (Events::One { time_ns, record }, 3)
        }
    };
    let option = if elements > used {
        read_option(&mut reader)?
    } else {
        FrameOption::default()
    };
    Ok(Shape {
        tag,
        events,
        option,
    })
}

/// Whether an array after the tag holds entries (Forward mode) rather than being a
/// `[time, metadata]` pair (Message mode with Fluent Bit metadata): entries are arrays.
fn forward_entries(after_header: &Reader<'_>) -> bool {
    let mut peek = after_header.clone();
    !matches!(
        peek.value(),
        Ok(Value::Ext(..) | Value::UInt(_) | Value::Int(_) | Value::Float(_))
    )
}

fn read_option<'f>(reader: &mut Reader<'f>) -> Result<FrameOption<'f>, EntryError> {
    let mut option = FrameOption::default();
    let pairs = match reader.value()? {
        Value::Map(pairs) => pairs,
        Value::Nil => return Ok(option),
        _ => return Err(EntryError::Malformed("the option is not a map")),
    };
    for _ in 0..pairs {
        let key = reader.value()?;
        match (key, reader.value()?) {
            (Value::Str(b"chunk"), Value::Str(chunk) | Value::Bin(chunk)) => {
                if chunk.len() > FLUENT_CHUNK_BYTES_MAX {
                    return Err(EntryError::Malformed("the chunk id is too long"));
                }
                option.chunk = Some(chunk);
            }
            (Value::Str(b"compressed"), Value::Str(b"gzip")) => option.gzip = true,
            (_, Value::Array(_) | Value::Map(_)) => {
                return Err(EntryError::Malformed("an option value is a container"))
            }
            _ => {}
        }
    }
    Ok(option)
}

/// The entries of a PackedForward bin, each routed as it is read.
fn packed_entries(
    packed: &[u8],
    writer: &mut EventWriter<'_>,
    uuids: &mut UuidSource,
    route: &mut dyn FnMut(&[u8]),
    counts: &mut FrameCounts,
) {
    let mut reader = Reader::new(packed);
    while !reader.rest().is_empty() {
        let mut entry = Reader::new(reader.rest());
        if reader.skip().is_err() {
            counts.note(EntryError::Malformed("a packed entry is truncated"));
            return;
        }
        match write_entry(writer, &mut entry, &uuids.next_uuid()) {
            Ok(()) => {
                route(writer.out);
                counts.events += 1;
            }
            Err(error) => counts.note(error),
        }
    }
}

/// The entries of a gzip-compressed PackedForward bin: inflated a step at a time into a
/// window of `max_message_size` plus a step, whole entries cut from its front.
fn inflate_entries(
    packed: &[u8],
    writer: &mut EventWriter<'_>,
    window: &mut Vec<u8>,
    uuids: &mut UuidSource,
    route: &mut dyn FnMut(&[u8]),
    counts: &mut FrameCounts,
) {
    let capacity = writer.max_message_size + INFLATE_STEP_BYTES;
    window.clear();
    window.resize(capacity, 0);
    let mut inflater = flate2::bufread::MultiGzDecoder::new(packed);
    let (mut filled, mut inflated_total) = (0usize, 0usize);
    loop {
        let read = inflater.read(&mut window[filled..]);
        let count = match read {
            Ok(count) => count,
            Err(_) => {
                counts.note(EntryError::Malformed("the chunk is not valid gzip"));
                break;
            }
        };
        filled += count;
        inflated_total += count;
        if inflated_total > FLUENT_INFLATED_BYTES_MAX {
            counts.oversize += 1;
            break;
        }
        let mut start = 0;
        while start < filled {
            match Scan::new().resume(&window[start..filled]) {
                Ok(length) => {
                    let mut entry = Reader::new(&window[start..start + length]);
                    start += length;
                    match write_entry(writer, &mut entry, &uuids.next_uuid()) {
                        Ok(()) => {
                            route(writer.out);
                            counts.events += 1;
                        }
                        Err(error) => counts.note(error),
                    }
                }
                Err(PackError::Incomplete) => break,
                Err(PackError::Malformed) => {
                    counts.note(EntryError::Malformed("a packed entry is not msgpack"));
                    return;
                }
            }
        }
        window.copy_within(start..filled, 0);
        filled -= start;
        if count == 0 {
            if filled > 0 {
                counts.note(EntryError::Malformed("a packed entry is truncated"));
            }
            break;
        }
        if filled == capacity {
            // One entry larger than the window: nothing after it can be found.
            counts.oversize += 1;
            break;
        }
    }
    window.clear();
}
