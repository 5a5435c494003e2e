//! The lazy, zero-copy view of a message that the matcher, the router and the encoders read.
//!
//! A record that arrived as Heka protobuf is never decoded into owned types on the data path.
//! [`ProtoView`] keeps the bytes and, on first use, scans the top level once to note where each
//! header and each field sits ([`Index`]). Reading a header is then one slice; reading a field
//! walks only that field's submessage. A record that arrived as a plain line (no decoder) is a
//! [`LineView`]: its payload is the line and its other headers come from the input.
//!
//! Invariants:
//! - No method allocates and no method panics, whatever the bytes.
//! - A header that occurs twice reads as its last occurrence, as protobuf decoders do.
//! - A malformed field submessage reads as absent; a malformed top level fails [`ProtoView::validate`].

use std::cell::OnceCell;

use super::wire::{self, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};

/// The number of fields whose position the index remembers; further fields are found by
/// scanning on from the last indexed one.
pub const FIELDS_INDEXED_MAX: usize = 24;

/// A string-typed header. The value is the protobuf field number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrHeader {
    /// The message type (field 3).
    Type = 3,
    /// The name of the producing plugin or program (field 4).
    Logger = 4,
    /// The message body (field 6).
    Payload = 6,
    /// The version of the producer's message format (field 7).
    EnvVersion = 7,
    /// The producing host (field 9).
    Hostname = 9,
}

/// An integer-typed header (besides Timestamp, which has its own accessor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntHeader {
    /// Syslog severity (field 5); absent reads as 7.
    Severity = 5,
    /// The producer's process id (field 8).
    Pid = 8,
}

/// One value of a field, borrowed from the record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// A string value, as UTF-8 bytes (not checked: a matcher compares bytes).
    String(&'a [u8]),
    /// A bytes value.
    Bytes(&'a [u8]),
    /// An integer value.
    Integer(i64),
    /// A double value.
    Double(f64),
    /// A boolean value.
    Bool(bool),
}

/// Why a record is not a valid Heka message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The top-level protobuf is malformed: a bad key, varint or length, or a truncated field.
    #[error("malformed protobuf at the top level")]
    Malformed,
    /// A header has a wire type other than its schema's.
    #[error("a header has the wrong wire type")]
    WrongWireType,
    /// The Uuid header is missing or is not 16 bytes.
    #[error("the required Uuid is missing or not 16 bytes")]
    BadUuid,
    /// The Timestamp header is missing.
    #[error("the required Timestamp is missing")]
    MissingTimestamp,
    /// The record is larger than 4 GiB, beyond what the index's `u32` offsets can hold.
    #[error("the record is larger than 4 GiB")]
    TooLarge,
}

impl DecodeError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            DecodeError::Malformed => "malformed",
            DecodeError::WrongWireType => "wire_type",
            DecodeError::BadUuid => "uuid",
            DecodeError::MissingTimestamp => "timestamp",
            DecodeError::TooLarge => "too_large",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const ABSENT: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };

    fn is_present(self) -> bool {
        self.start != u32::MAX
    }
}

/// Where the headers and fields of a record are. Built once per record by one top-level scan.
#[derive(Debug)]
struct Index {
    /// Indexed by field number 1..=9; for length-delimited headers the value's span, for
    /// varints the span of the varint itself.
    headers: [Span; 10],
    fields: [Span; FIELDS_INDEXED_MAX],
    fields_indexed: u8,
    /// Where to resume scanning for fields past the indexed ones, or 0 if there are none.
    fields_rest_at: u32,
}

/// A lazily indexed Heka message in protobuf form.
pub struct ProtoView<'a> {
    bytes: &'a [u8],
    index: OnceCell<Result<Index, DecodeError>>,
}

impl<'a> ProtoView<'a> {
    /// Wraps a record. Does no work until something is read.
    #[inline]
    pub fn new(bytes: &'a [u8]) -> ProtoView<'a> {
        ProtoView {
            bytes,
            index: OnceCell::new(),
        }
    }

    /// The record's bytes, exactly as they arrived.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Checks the top-level structure and the required headers, building the index that later
    /// reads use.
    ///
    /// # Errors
    /// The first structural problem found; see [`DecodeError`].
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self.index() {
            Ok(_) => Ok(()),
            Err(error) => Err(*error),
        }
    }

    #[inline]
    fn index(&self) -> &Result<Index, DecodeError> {
        self.index.get_or_init(|| build_index(self.bytes))
    }

    #[inline]
    fn header_span(&self, number: usize) -> Option<Span> {
        let index = self.index().as_ref().ok()?;
        let span = index.headers[number];
        span.is_present().then_some(span)
    }

    #[inline]
    fn slice(&self, span: Span) -> &'a [u8] {
        // Spans come from `build_index` over these very bytes, so they are in range.
        &self.bytes[span.start as usize..span.end as usize]
    }

    fn varint_header(&self, number: usize) -> Option<u64> {
        let span = self.header_span(number)?;
        let mut pos = span.start as usize;
        wire::read_varint(self.bytes, &mut pos)
    }

    /// The 16 raw bytes of the Uuid.
    pub fn uuid(&self) -> Option<&'a [u8]> {
        self.header_span(1).map(|span| self.slice(span))
    }

    /// The Timestamp in nanoseconds since the epoch.
    pub fn timestamp(&self) -> Option<i64> {
        self.varint_header(2).map(|value| value as i64)
    }

    /// A string header's bytes (not checked for UTF-8), or `None` when absent.
    #[inline]
    pub fn str_header(&self, header: StrHeader) -> Option<&'a [u8]> {
        self.header_span(header as usize)
            .map(|span| self.slice(span))
    }

    /// An int32 header, or `None` when absent (Severity's schema default is the caller's call).
    pub fn int_header(&self, header: IntHeader) -> Option<i64> {
        // int32 values are sign-extended to 64 bits on the wire; truncate as protobuf does.
        self.varint_header(header as usize)
            .map(|value| i64::from(value as i32))
    }

    /// The `field_index`-th field (0-based) named `name`.
    pub fn field(&self, name: &[u8], field_index: usize) -> Option<FieldRef<'a>> {
        let index = self.index().as_ref().ok()?;
        let indexed = usize::from(index.fields_indexed);
        let mut seen = 0usize;
        // The indexed fields straight from the index (the matcher's hot path), then the rest
        // through the iterator.
        for span in index.fields.get(..indexed)? {
            let field = FieldRef::new(self.slice(*span));
            if field.has_name(name) {
                if seen == field_index {
                    return Some(field);
                }
                seen += 1;
            }
        }
        if index.fields_rest_at == 0 {
            return None;
        }
        for field in self.fields().skip(indexed) {
            if field.has_name(name) {
                if seen == field_index {
                    return Some(field);
                }
                seen += 1;
            }
        }
        None
    }

    /// Every field, in order.
    pub fn fields(&self) -> Fields<'a, '_> {
        Fields {
            view: self,
            next_indexed: 0,
            rest_at: None,
        }
    }
}

fn build_index(bytes: &[u8]) -> Result<Index, DecodeError> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(DecodeError::TooLarge);
    }
    let mut index = Index {
        headers: [Span::ABSENT; 10],
        fields: [Span::default(); FIELDS_INDEXED_MAX],
        fields_indexed: 0,
        fields_rest_at: 0,
    };
    let mut pos = 0usize;
    while pos < bytes.len() {
        let key_at = pos;
        let (tag, wire_type) = wire::read_key(bytes, &mut pos).ok_or(DecodeError::Malformed)?;
        let expected = match tag {
            1 | 3 | 4 | 6 | 7 | 9 | 10 => Some(WIRE_LEN),
            2 | 5 | 8 => Some(WIRE_VARINT),
            _ => None,
        };
        match expected {
            Some(expected) if expected != wire_type => return Err(DecodeError::WrongWireType),
            None => {
                // An unknown field: skipped, as protobuf decoders do.
                wire::skip(bytes, &mut pos, wire_type).ok_or(DecodeError::Malformed)?;
                continue;
            }
            Some(_) => {}
        }
        let span = if wire_type == WIRE_LEN {
            let (start, end) = wire::read_len(bytes, &mut pos).ok_or(DecodeError::Malformed)?;
            Span {
                start: start as u32,
                end: end as u32,
            }
        } else {
            let start = pos;
            wire::read_varint(bytes, &mut pos).ok_or(DecodeError::Malformed)?;
            Span {
                start: start as u32,
                end: pos as u32,
            }
        };
        if tag == 10 {
            let count = usize::from(index.fields_indexed);
            if count < FIELDS_INDEXED_MAX {
                index.fields[count] = span;
                index.fields_indexed += 1;
            } else if index.fields_rest_at == 0 {
                index.fields_rest_at = key_at as u32;
            }
        } else {
            index.headers[tag as usize] = span;
        }
    }
    let uuid = index.headers[1];
    if !uuid.is_present() || uuid.end - uuid.start != 16 {
        return Err(DecodeError::BadUuid);
    }
    if !index.headers[2].is_present() {
        return Err(DecodeError::MissingTimestamp);
    }
    Ok(index)
}

/// Iterator over a [`ProtoView`]'s fields.
pub struct Fields<'a, 'v> {
    view: &'v ProtoView<'a>,
    next_indexed: usize,
    /// Scan position past the indexed fields, once they are used up.
    rest_at: Option<usize>,
}

impl<'a> Iterator for Fields<'a, '_> {
    type Item = FieldRef<'a>;

    fn next(&mut self) -> Option<FieldRef<'a>> {
        let index = self.view.index().as_ref().ok()?;
        if self.next_indexed < usize::from(index.fields_indexed) {
            let span = index.fields[self.next_indexed];
            self.next_indexed += 1;
            return Some(FieldRef::new(self.view.slice(span)));
        }
        if index.fields_rest_at == 0 {
            return None;
        }
        let bytes = self.view.bytes;
        let pos = self.rest_at.get_or_insert(index.fields_rest_at as usize);
        while *pos < bytes.len() {
            // The top level was validated by `build_index`, so these reads succeed.
            let (tag, wire_type) = wire::read_key(bytes, pos)?;
            if tag == 10 {
                let (start, end) = wire::read_len(bytes, pos)?;
                return Some(FieldRef::new(&bytes[start..end]));
            }
            wire::skip(bytes, pos, wire_type)?;
        }
        None
    }
}

/// One field's submessage, read on demand.
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    bytes: &'a [u8],
}

/// The value type numbers of Heka's schema.
const VALUE_STRING: u64 = 0;
const VALUE_BYTES: u64 = 1;
const VALUE_INTEGER: u64 = 2;
const VALUE_DOUBLE: u64 = 3;
const VALUE_BOOL: u64 = 4;

impl<'a> FieldRef<'a> {
    /// Wraps a field submessage.
    pub fn new(bytes: &'a [u8]) -> FieldRef<'a> {
        FieldRef { bytes }
    }

    /// The raw submessage bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Finds the last occurrence of a singular length-delimited or varint member.
    fn member(&self, wanted: u32) -> Option<(u8, usize, usize)> {
        let mut pos = 0usize;
        let mut found = None;
        while pos < self.bytes.len() {
            let (tag, wire_type) = wire::read_key(self.bytes, &mut pos)?;
            let start = pos;
            wire::skip(self.bytes, &mut pos, wire_type)?;
            if tag == wanted {
                found = Some((wire_type, start, pos));
            }
        }
        found
    }

    /// Whether the field is named `name`; quick when the name comes first with a one-byte
    /// length, as encoders write it.
    #[inline]
    pub fn has_name(&self, name: &[u8]) -> bool {
        let bytes = self.bytes;
        if name.len() < 0x80 && bytes.len() > 1 && bytes[0] == 0x0a {
            if usize::from(bytes[1]) == name.len() {
                // The first byte settles most mismatches without a call to memcmp.
                return bytes.get(2..2 + name.len()).is_some_and(|candidate| {
                    candidate.first() == name.first() && candidate == name
                });
            }
            if bytes[1] < 0x80 {
                return false;
            }
        }
        self.name() == Some(name)
    }

    /// The field's name, or `None` if the submessage is malformed or has none.
    #[inline]
    pub fn name(&self) -> Option<&'a [u8]> {
        // Encoders put the name first; take the fast path when they did.
        let bytes = self.bytes;
        if bytes.first() == Some(&0x0a) {
            let mut pos = 1;
            if let Some((start, end)) = wire::read_len(bytes, &mut pos) {
                return Some(&bytes[start..end]);
            }
        }
        let (wire_type, start, _) = self.member(1)?;
        if wire_type != WIRE_LEN {
            return None;
        }
        let mut pos = start;
        let (start, end) = wire::read_len(bytes, &mut pos)?;
        Some(&bytes[start..end])
    }

    /// The value type number (0 = string when absent). Unknown numbers are returned as they are.
    pub fn value_type(&self) -> u64 {
        match self.member(2) {
            Some((WIRE_VARINT, start, _)) => {
                let mut pos = start;
                wire::read_varint(self.bytes, &mut pos).unwrap_or(VALUE_STRING)
            }
            _ => VALUE_STRING,
        }
    }

    /// The representation string, if any.
    pub fn representation(&self) -> Option<&'a [u8]> {
        let (wire_type, start, _) = self.member(3)?;
        if wire_type != WIRE_LEN {
            return None;
        }
        let mut pos = start;
        let (start, end) = wire::read_len(self.bytes, &mut pos)?;
        Some(&self.bytes[start..end])
    }

    /// The `array_index`-th value (0-based) of the active value array.
    pub fn value(&self, array_index: usize) -> Option<FieldValue<'a>> {
        if let Some(value) = self.canonical_value(array_index) {
            return value;
        }
        let Some((value_type, first_at)) = self.first_value() else {
            // Malformed: the general path reads up to the malformation.
            return self.values().nth(array_index);
        };
        let first_at = first_at?;
        if array_index == 0 {
            if let Some(value) = self.decode_first(value_type, first_at) {
                return Some(value);
            }
        }
        Values {
            bytes: self.bytes,
            pos: first_at,
            value_type,
            packed: None,
        }
        .nth(array_index)
    }

    /// The value when the submessage has the layout encoders write, every length in one byte:
    /// name, value type, optional representation, then the active array's members and nothing
    /// else (so no later value type can override the one read). `None` when the layout is
    /// anything else; the caller then takes the general path.
    #[inline]
    fn canonical_value(&self, array_index: usize) -> Option<Option<FieldValue<'a>>> {
        let bytes = self.bytes;
        // One-byte lengths: the length byte, when below 0x80, is the length.
        let short_len = |at: usize| {
            bytes
                .get(at)
                .copied()
                .filter(|&len| len < 0x80)
                .map(usize::from)
        };
        if bytes.first() != Some(&0x0a) {
            return None;
        }
        let mut pos = 2 + short_len(1)?;
        let mut value_type = VALUE_STRING;
        if bytes.get(pos) == Some(&0x10) {
            value_type = short_len(pos + 1)? as u64;
            pos += 2;
        }
        if bytes.get(pos) == Some(&0x1a) {
            pos += 2 + short_len(pos + 1)?;
        }
        match value_type {
            VALUE_STRING | VALUE_BYTES => {
                // Unpacked: one member per value, all with the active tag, to the end.
                let key = ((4 + value_type as u8) << 3) | WIRE_LEN;
                let mut found = None;
                let mut index = 0usize;
                while pos < bytes.len() {
                    if bytes.get(pos) != Some(&key) {
                        return None;
                    }
                    let start = pos + 2;
                    let end = start + short_len(pos + 1)?;
                    let value = bytes.get(start..end)?;
                    if index == array_index {
                        found = Some(if value_type == VALUE_STRING {
                            FieldValue::String(value)
                        } else {
                            FieldValue::Bytes(value)
                        });
                    }
                    index += 1;
                    pos = end;
                }
                Some(found)
            }
            VALUE_INTEGER | VALUE_DOUBLE | VALUE_BOOL => {
                // Packed: at most one run, which ends the submessage.
                if pos == bytes.len() {
                    return Some(None);
                }
                let key = ((4 + value_type as u8) << 3) | WIRE_LEN;
                if bytes.get(pos) != Some(&key) || pos + 2 + short_len(pos + 1)? != bytes.len() {
                    return None;
                }
                let mut at = pos + 2;
                if value_type == VALUE_DOUBLE {
                    // Past the run's end, or in a partial last value, there is no value.
                    let start = at.checked_add(array_index.checked_mul(8)?)?;
                    let Some(raw) = bytes.get(start..start.checked_add(8)?) else {
                        return Some(None);
                    };
                    let raw: [u8; 8] = raw.try_into().ok()?;
                    return Some(Some(FieldValue::Double(f64::from_le_bytes(raw))));
                }
                for _ in 0..array_index {
                    wire::read_varint(bytes, &mut at)?;
                    if at == bytes.len() {
                        return Some(None);
                    }
                }
                let number = wire::read_varint(bytes, &mut at)?;
                Some(Some(if value_type == VALUE_INTEGER {
                    FieldValue::Integer(number as i64)
                } else {
                    FieldValue::Bool(number != 0)
                }))
            }
            _ => None,
        }
    }

    /// One pass over a well-formed submessage: the value type (its last occurrence wins, as in
    /// [`FieldRef::value_type`]) and where the first member of the active value array starts,
    /// if there is one. `None` when the submessage is malformed.
    fn first_value(&self) -> Option<(u64, Option<usize>)> {
        let bytes = self.bytes;
        let mut pos = 0usize;
        let mut value_type = VALUE_STRING;
        // Where the first member with each of tags 4 (strings) to 8 (bools) starts, plus one.
        let mut first = [0u32; 5];
        while pos < bytes.len() {
            let key_at = pos;
            let (tag, wire_type) = wire::read_key(bytes, &mut pos)?;
            if tag == 2 && wire_type == WIRE_VARINT {
                value_type = wire::read_varint(bytes, &mut pos)?;
                continue;
            }
            wire::skip(bytes, &mut pos, wire_type)?;
            match tag {
                2 => value_type = VALUE_STRING,
                4..=8 => {
                    let slot = &mut first[tag as usize - 4];
                    if *slot == 0 {
                        // Submessages are < 4 GiB: the record they sit in is.
                        *slot = key_at as u32 + 1;
                    }
                }
                _ => {}
            }
        }
        let first_at = match first.get(value_type as usize) {
            Some(&at) if at > 0 => Some(at as usize - 1),
            _ => None,
        };
        Some((value_type, first_at))
    }

    /// The first value when its member, at `key_at`, has the usual encoding; else `None`.
    fn decode_first(&self, value_type: u64, key_at: usize) -> Option<FieldValue<'a>> {
        let bytes = self.bytes;
        let mut pos = key_at;
        let (_, wire_type) = wire::read_key(bytes, &mut pos)?;
        match (value_type, wire_type) {
            (VALUE_STRING, WIRE_LEN) => {
                let (start, end) = wire::read_len(bytes, &mut pos)?;
                Some(FieldValue::String(&bytes[start..end]))
            }
            (VALUE_BYTES, WIRE_LEN) => {
                let (start, end) = wire::read_len(bytes, &mut pos)?;
                Some(FieldValue::Bytes(&bytes[start..end]))
            }
            (VALUE_INTEGER | VALUE_BOOL, WIRE_LEN | WIRE_VARINT) => {
                let mut end = usize::MAX;
                if wire_type == WIRE_LEN {
                    let (start, run_end) = wire::read_len(bytes, &mut pos)?;
                    (pos, end) = (start, run_end);
                }
                let number = wire::read_varint(bytes, &mut pos)?;
                if pos > end {
                    return None;
                }
                Some(if value_type == VALUE_INTEGER {
                    FieldValue::Integer(number as i64)
                } else {
                    FieldValue::Bool(number != 0)
                })
            }
            (VALUE_DOUBLE, WIRE_LEN | WIRE_FIXED64) => {
                let mut end = usize::MAX;
                if wire_type == WIRE_LEN {
                    let (start, run_end) = wire::read_len(bytes, &mut pos)?;
                    (pos, end) = (start, run_end);
                }
                let bits = wire::read_fixed64(bytes, &mut pos)?;
                (pos <= end).then_some(FieldValue::Double(f64::from_bits(bits)))
            }
            _ => None,
        }
    }

    /// The values of the active array, in order.
    pub fn values(&self) -> Values<'a> {
        let value_type = self.value_type();
        Values {
            bytes: self.bytes,
            pos: 0,
            value_type,
            packed: None,
        }
    }
}

/// Iterator over a field's active values. Packed and unpacked encodings are both accepted.
pub struct Values<'a> {
    bytes: &'a [u8],
    pos: usize,
    value_type: u64,
    /// The remaining span of a packed run being read.
    packed: Option<(usize, usize)>,
}

impl<'a> Values<'a> {
    fn tag(&self) -> Option<u32> {
        Some(match self.value_type {
            VALUE_STRING => 4,
            VALUE_BYTES => 5,
            VALUE_INTEGER => 6,
            VALUE_DOUBLE => 7,
            VALUE_BOOL => 8,
            _ => return None,
        })
    }

    fn scalar(&self, pos: &mut usize, wire_type: u8) -> Option<FieldValue<'a>> {
        match (self.value_type, wire_type) {
            (VALUE_INTEGER, WIRE_VARINT) => Some(FieldValue::Integer(wire::read_varint(
                self.bytes, pos,
            )? as i64)),
            (VALUE_BOOL, WIRE_VARINT) => {
                Some(FieldValue::Bool(wire::read_varint(self.bytes, pos)? != 0))
            }
            (VALUE_DOUBLE, WIRE_FIXED64) => Some(FieldValue::Double(f64::from_bits(
                wire::read_fixed64(self.bytes, pos)?,
            ))),
            _ => None,
        }
    }

    fn next_packed(&mut self) -> Option<FieldValue<'a>> {
        let (mut pos, end) = self.packed?;
        if pos >= end {
            self.packed = None;
            return None;
        }
        let wire_type = if self.value_type == VALUE_DOUBLE {
            WIRE_FIXED64
        } else {
            WIRE_VARINT
        };
        let value = self.scalar(&mut pos, wire_type);
        if value.is_none() || pos > end {
            // A malformed packed run ends the values.
            self.pos = self.bytes.len();
            self.packed = None;
            return None;
        }
        self.packed = Some((pos, end));
        value
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = FieldValue<'a>;

    fn next(&mut self) -> Option<FieldValue<'a>> {
        if self.packed.is_some() {
            if let Some(value) = self.next_packed() {
                return Some(value);
            }
        }
        let wanted = self.tag()?;
        while self.pos < self.bytes.len() {
            let (tag, wire_type) = wire::read_key(self.bytes, &mut self.pos)?;
            if tag != wanted {
                wire::skip(self.bytes, &mut self.pos, wire_type)?;
                continue;
            }
            if wire_type == WIRE_LEN {
                let (start, end) = wire::read_len(self.bytes, &mut self.pos)?;
                match self.value_type {
                    VALUE_STRING => return Some(FieldValue::String(&self.bytes[start..end])),
                    VALUE_BYTES => return Some(FieldValue::Bytes(&self.bytes[start..end])),
                    _ => {
                        self.packed = Some((start, end));
                        if let Some(value) = self.next_packed() {
                            return Some(value);
                        }
                        continue;
                    }
                }
            }
            let mut pos = self.pos;
            let value = self.scalar(&mut pos, wire_type);
            self.pos = pos;
            match value {
                Some(value) => return Some(value),
                None => wire::skip(self.bytes, &mut self.pos, wire_type)?,
            }
        }
        None
    }
}

/// Headers that an input gives every plain-line record of one connection or socket.
#[derive(Clone, Debug, Default)]
pub struct LineMeta {
    /// Type (Heka sets the input's name).
    pub type_: Box<[u8]>,
    /// Logger (the input's name).
    pub logger: Box<[u8]>,
    /// Hostname (the sender's address).
    pub hostname: Box<[u8]>,
}

/// A record that arrived as a plain line: Payload is the line, the rest comes from the input.
#[derive(Clone, Copy, Debug)]
pub struct LineView<'a> {
    /// The line, without its delimiter.
    pub payload: &'a [u8],
    /// A type-4 UUID the input drew for this line.
    pub uuid: [u8; 16],
    /// When the input read the line, in nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// The input's headers (Type, Logger, Hostname) shared by every line of the connection.
    pub meta: &'a LineMeta,
}

/// A message as the matcher and encoders see it.
// The proto view carries its index inline: a view lives on the stack for one record, and
// boxing the index would allocate per record.
#[allow(clippy::large_enum_variant)]
pub enum MessageView<'a> {
    /// A record in Heka protobuf, read lazily.
    Proto(ProtoView<'a>),
    /// A plain line with its input's headers.
    Line(LineView<'a>),
}

impl<'a> MessageView<'a> {
    /// The 16 raw Uuid bytes.
    #[inline]
    pub fn uuid(&self) -> Option<&[u8]> {
        match self {
            MessageView::Proto(view) => view.uuid(),
            MessageView::Line(line) => Some(&line.uuid),
        }
    }

    /// Timestamp in ns since the epoch.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        match self {
            MessageView::Proto(view) => view.timestamp(),
            MessageView::Line(line) => Some(line.timestamp),
        }
    }

    /// A string header, or `None` when absent.
    #[inline]
    pub fn str_header(&self, header: StrHeader) -> Option<&'a [u8]> {
        match self {
            MessageView::Proto(view) => view.str_header(header),
            MessageView::Line(line) => match header {
                StrHeader::Payload => Some(line.payload),
                StrHeader::Type => Some(&line.meta.type_),
                StrHeader::Logger => Some(&line.meta.logger),
                StrHeader::Hostname => Some(&line.meta.hostname),
                StrHeader::EnvVersion => None,
            },
        }
    }

    /// Severity or Pid, or `None` when absent.
    #[inline]
    pub fn int_header(&self, header: IntHeader) -> Option<i64> {
        match self {
            MessageView::Proto(view) => view.int_header(header),
            MessageView::Line(_) => None,
        }
    }

    /// The `field_index`-th field named `name`. Lines have no fields.
    #[inline]
    pub fn field(&self, name: &[u8], field_index: usize) -> Option<FieldRef<'a>> {
        match self {
            MessageView::Proto(view) => view.field(name, field_index),
            MessageView::Line(_) => None,
        }
    }

    /// Every field, in order (none for lines).
    pub fn for_each_field(&self, mut visit: impl FnMut(FieldRef<'a>)) {
        if let MessageView::Proto(view) = self {
            view.fields().for_each(&mut visit);
        }
    }
}

/// Formats 16 Uuid bytes as the 36-character text form `8-4-4-4-12`, lower-case hex.
pub fn format_uuid(uuid: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (index, byte) in uuid.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    text
}

/// Parses the 36-character text form back to 16 bytes.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&at| bytes[at] != b'-') {
        return None;
    }
    let mut uuid = [0u8; 16];
    let mut digits = bytes.iter().filter(|&&byte| byte != b'-');
    for slot in uuid.iter_mut() {
        let high = (*digits.next()? as char).to_digit(16)?;
        let low = (*digits.next()? as char).to_digit(16)?;
        *slot = (high * 16 + low) as u8;
    }
    Some(uuid)
}
