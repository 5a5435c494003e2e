//! Protobuf wire primitives for reading and writing records in place.
//!
//! Reading never allocates and never panics: every function takes a cursor into a borrowed
//! slice and returns `None` when the bytes are truncated or malformed. Writing appends to a
//! caller-owned `Vec<u8>` that the caller recycles.

/// Protobuf wire types (the low three bits of a key).
///
/// Wire type 0: a varint (int32, int64, uint32, bool, enum).
pub const WIRE_VARINT: u8 = 0;
/// Wire type 1: eight little-endian bytes (double, fixed64).
pub const WIRE_FIXED64: u8 = 1;
/// Wire type 2: a varint length, then that many bytes (string, bytes, submessage, packed).
pub const WIRE_LEN: u8 = 2;
/// Wire type 5: four little-endian bytes (float, fixed32).
pub const WIRE_FIXED32: u8 = 5;

/// Reads a varint at `*pos`, advancing it. At most ten bytes are read.
#[inline]
pub fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    // Keys, lengths and small numbers take one byte: keep that path short enough to inline.
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    read_varint_long(bytes, pos)
}

/// `read_varint` for values of two bytes or more.
#[inline(never)]
fn read_varint_long(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    for _ in 0..10 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
    None
}

/// Reads a key, returning `(field number, wire type)`.
#[inline]
pub fn read_key(bytes: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
    let key = read_varint(bytes, pos)?;
    let tag = u32::try_from(key >> 3).ok()?;
    if tag == 0 {
        return None;
    }
    Some((tag, (key & 7) as u8))
}

/// Reads a length-delimited value, returning its `(start, end)` offsets.
#[inline]
pub fn read_len(bytes: &[u8], pos: &mut usize) -> Option<(usize, usize)> {
    let len = usize::try_from(read_varint(bytes, pos)?).ok()?;
    let start = *pos;
    let end = start.checked_add(len)?;
    if end > bytes.len() {
        return None;
    }
    *pos = end;
    Some((start, end))
}

/// Reads eight little-endian bytes.
#[inline]
pub fn read_fixed64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let raw: [u8; 8] = bytes.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(u64::from_le_bytes(raw))
}

/// Skips one value of `wire_type`. Groups (types 3 and 4) are not part of Heka's schema and
/// are rejected.
#[inline]
pub fn skip(bytes: &[u8], pos: &mut usize, wire_type: u8) -> Option<()> {
    match wire_type {
        WIRE_VARINT => read_varint(bytes, pos).map(|_| ()),
        WIRE_FIXED64 => read_fixed64(bytes, pos).map(|_| ()),
        WIRE_LEN => read_len(bytes, pos).map(|_| ()),
        WIRE_FIXED32 => {
            let end = pos.checked_add(4)?;
            if end > bytes.len() {
                return None;
            }
            *pos = end;
            Some(())
        }
        _ => None,
    }
}

/// Appends a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a key.
#[inline]
pub fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited value.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    put_key(out, tag, WIRE_LEN);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends a varint-typed value (int32/int64 sign-extend to ten bytes, as protobuf does).
#[inline]
pub fn put_int(out: &mut Vec<u8>, tag: u32, value: i64) {
    put_key(out, tag, WIRE_VARINT);
    put_varint(out, value as u64);
}

/// The number of bytes `put_varint` writes for `value`.
#[inline]
pub fn varint_len(value: u64) -> usize {
    // ceil(bits / 7), with 0 taking one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_length() {
        for value in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(value));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn truncated_and_overlong_inputs_fail() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80, 0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(read_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(read_len(&[5, 1, 2], &mut pos), None);
        let mut pos = 0;
        assert_eq!(
            read_key(&[0x00], &mut pos),
            None,
            "field number 0 is invalid"
        );
        let mut pos = 0;
        assert_eq!(skip(&[1], &mut pos, 3), None, "groups are rejected");
    }
}
