//! The JSON text the Elasticsearch encoders write, by hand and byte for byte as Heka wrote it.
//!
//! - Strings: `"` and `\` and every control character below U+0020 become `\u00XX` (lower-case
//!   hex), every other character is written as is. Bytes that are not UTF-8 become U+FFFD, one
//!   per byte of the bad sequence, so any message encodes, whatever its bytes.
//! - Doubles: the shortest text that reads back to the same double, in exponent form when the
//!   decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`, `0.0001`, `123456`).
//!   NaN and the infinities have no JSON form and are written `null` (Heka wrote `NaN`,
//!   `+Inf`, which no JSON parser reads).
//! - A field's values: one value alone, an array for two or more, `null` for none.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::encoder::interpolate::push_decimal;
use crate::message::{FieldRef, FieldValue};

const HEX: &[u8; 16] = b"0123456789abcdef";
/// U+FFFD in UTF-8.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends `bytes` as a quoted JSON string.
#[inline]
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    write_string_body(out, bytes);
    out.push(b'"');
}

/// Appends `bytes` escaped for the inside of a JSON string.
pub fn write_string_body(out: &mut Vec<u8>, mut bytes: &[u8]) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => return escape_ascii(out, bytes),
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                escape_ascii(out, valid);
                let bad = error.error_len().unwrap_or(rest.len());
                for _ in 0..bad {
                    out.extend_from_slice(REPLACEMENT);
                }
                bytes = &rest[bad..];
            }
        }
    }
}

/// Escapes the characters JSON needs escaped in valid UTF-8 text.
#[inline]
fn escape_ascii(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (at, &byte) in text.iter().enumerate() {
        if byte < 0x20 || byte == b'"' || byte == b'\\' {
            out.extend_from_slice(&text[start..at]);
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
            start = at + 1;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Appends `bytes` lower-cased (as Elasticsearch requires of an index name) and escaped for
/// the inside of a JSON string; `scratch` is working space.
pub fn write_lowercase_body(out: &mut Vec<u8>, bytes: &[u8], scratch: &mut Vec<u8>) {
    scratch.clear();
    if bytes.is_ascii() {
        scratch.extend(bytes.iter().map(u8::to_ascii_lowercase));
    } else {
        for chunk in bytes.utf8_chunks() {
            let mut buffer = [0u8; 4];
            for character in chunk.valid().chars().flat_map(char::to_lowercase) {
                scratch.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
            }
            for _ in 0..chunk.invalid().len() {
                scratch.extend_from_slice(REPLACEMENT);
            }
        }
    }
    escape_ascii(out, scratch);
}

/// A fixed buffer for `core::fmt` output, so formatting a number allocates nothing.
struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The shortest round-trip digits of a finite `value` and its decimal exponent (of the first
/// digit), with the sign: `(negative, digits, exponent)`.
pub(crate) fn shortest_digits(value: f64) -> (bool, [u8; 24], usize, i32) {
    let mut text = StackText {
        bytes: [0; 64],
        len: 0,
    };
    // `{:e}` prints the shortest round-trip digits, e.g. `-1.2345e-7`, `0e0`, `1e16`.
    let _ = write!(text, "{value:e}");
    let written = &text.bytes[..text.len];
    let negative = written.first() == Some(&b'-');
    let mut digits = [0u8; 24];
    let mut count = 0;
    let mut exponent = 0i32;
    let mut exponent_negative = false;
    let mut in_exponent = false;
    for &byte in written {
        match byte {
            b'e' => in_exponent = true,
            b'-' if in_exponent => exponent_negative = true,
            b'0'..=b'9' if in_exponent => exponent = exponent * 10 + i32::from(byte - b'0'),
            b'0'..=b'9' if count < digits.len() => {
                digits[count] = byte;
                count += 1;
            }
            _ => {}
        }
    }
    if exponent_negative {
        exponent = -exponent;
    }
    (negative, digits, count, exponent)
}

/// Appends a double as Heka's encoders wrote it (Go's `FormatFloat(v, 'g', -1, 64)`), or
/// `null` when it is not finite.
pub fn write_double(value: f64, out: &mut Vec<u8>) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let (negative, digits, count, exponent) = shortest_digits(value);
    let digits = &digits[..count];
    if negative {
        out.push(b'-');
    }
    if !(-4..6).contains(&exponent) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        push_decimal(out, i64::from(magnitude));
        return;
    }
    let point = exponent + 1;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(digits);
        return;
    }
    let point = point as usize;
    if point >= digits.len() {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', point - digits.len()));
    } else {
        out.extend_from_slice(&digits[..point]);
        out.push(b'.');
        out.extend_from_slice(&digits[point..]);
    }
}

/// Appends a raw value (a `raw_bytes_fields` field): the bytes as they are, except that CR
/// and LF become spaces so that the document stays one line of the bulk body, and an empty
/// value becomes `null` so that the key still has a value.
fn write_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    let start = out.len();
    out.extend_from_slice(bytes);
    if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
        for byte in &mut out[start..] {
            if *byte == b'\n' || *byte == b'\r' {
                *byte = b' ';
            }
        }
    }
}

fn write_value(out: &mut Vec<u8>, value: FieldValue<'_>, raw: bool, in_array: bool) {
    match value {
        FieldValue::String(bytes) if raw => write_raw(out, bytes),
        FieldValue::String(bytes) => write_string(out, bytes),
        FieldValue::Bytes(bytes) if raw => write_raw(out, bytes),
        // Heka's rule, kept: a lone bytes value is written as text, each value of a bytes
        // array in standard base64.
        FieldValue::Bytes(bytes) if in_array => {
            out.push(b'"');
            let start = out.len();
            let engine = &base64::engine::general_purpose::STANDARD;
            out.resize(
                start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
                0,
            );
            let written = engine.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        FieldValue::Bytes(bytes) => write_string(out, bytes),
        FieldValue::Integer(number) => push_decimal(out, number),
        FieldValue::Double(number) => write_double(number, out),
        FieldValue::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
    }
}

/// Appends a field's values: the value alone, an array of two or more, or `null`.
pub fn write_field_values(out: &mut Vec<u8>, field: &FieldRef<'_>, raw: bool) {
    let mut values = field.values();
    let Some(first) = values.next() else {
        out.extend_from_slice(b"null");
        return;
    };
    let Some(second) = values.next() else {
        write_value(out, first, raw, false);
        return;
    };
    out.push(b'[');
    write_value(out, first, raw, true);
    out.push(b',');
    write_value(out, second, raw, true);
    for value in values {
        out.push(b',');
        write_value(out, value, raw, true);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, bytes);
        out
    }

    fn double(value: f64) -> String {
        let mut out = Vec::new();
        write_double(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_as_heka_did() {
        assert_eq!(
            string(b"hello\"bar"),
            br#""hello\u0022bar""#.to_vec(),
            "quote"
        );
        assert_eq!(
            string(b"world\nfoo\\"),
            br#""world\u000afoo\u005c""#.to_vec()
        );
        assert_eq!(
            string(b"\x00\x1f\x7f"),
            br#""\u0000\u001f"#.iter().chain(b"\x7f\"").copied().collect::<Vec<u8>>()
        );
        assert_eq!(string("/é€😀".as_bytes()), "\"/é€😀\"".as_bytes());
    }

    #[test]
    fn invalid_utf8_is_one_replacement_per_byte() {
        assert_eq!(string(b"\xa3"), "\"\u{FFFD}\"".as_bytes());
        // A truncated three-byte sequence then ASCII: two bytes, two replacements.
        assert_eq!(string(b"\xe2\x82A"), "\"\u{FFFD}\u{FFFD}A\"".as_bytes());
        assert_eq!(string(b"ok\xff"), "\"ok\u{FFFD}\"".as_bytes());
    }

    #[test]
    fn lowercase_index_names() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        write_lowercase_body(&mut out, b"Heka-WEB\"1", &mut scratch);
        assert_eq!(out, br#"heka-web\u00221"#);
        out.clear();
        write_lowercase_body(&mut out, "ÉTÉ-\u{ff}".as_bytes(), &mut scratch);
        assert_eq!(out, "été-ÿ".as_bytes());
    }

    #[test]
    fn doubles_are_go_shortest_g() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (42.0, "42"),
            (19101.3, "19101.3"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e100, "1e+100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ];
        for (value, text) in cases {
            assert_eq!(double(*value), *text, "{value}");
        }
    }
}
