//! The payload text form of Lua values: what `add_to_payload` and `inject_payload` append.
//!
//! Strings are appended as they are; `true`/`false`/`nil` as words; integers in decimal;
//! floats as lua_sandbox printed them, so dashboards and tests that compare payloads see the
//! same text: `nan`, `inf`, `-inf`; a value within the 32-bit integer range is printed in fixed
//! notation with at most 8 decimals, trailing zeros removed (`1.5`, `3`, `0.33333333`);
//! anything larger with 17 significant digits (`%.17g`). Circular buffers append their
//! `cbuf`/`cbufd` text (see [`super::circular_buffer`]).
//!
//! Invariant: the buffer never grows past the output limit; an append that would pass it
//! fails and leaves the buffer as it was.

use std::io::Write as _;

/// Why an append failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The buffer would pass the output limit.
    Limit,
    /// The value has no payload form (tables, functions, other userdata).
    Unsupported(&'static str),
}

/// Appends `d` in lua_sandbox's number format.
pub fn push_double(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if d < f64::from(i32::MIN) || d > f64::from(i32::MAX) {
        push_g17(out, d);
        return;
    }
    const MAGNITUDE: f64 = 100_000_000.0;
    let negative = d < 0.0;
    let d = d.abs();
    let mut whole = d.trunc() as u64;
    let scaled = (d - d.trunc()) * MAGNITUDE;
    let mut fraction = scaled.trunc() as u64;
    let rest = scaled - scaled.trunc();
    // Round half to even on the eighth decimal.
    if rest > 0.5 || (rest == 0.5 && (fraction == 0 || fraction & 1 == 1)) {
        fraction += 1;
        if fraction >= MAGNITUDE as u64 {
            fraction = 0;
            whole += 1;
        }
    }
    if negative {
        out.push(b'-');
    }
    let _ = write!(out, "{whole}");
    if fraction != 0 {
        let mut digits = [b'0'; 8];
        let mut value = fraction;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        let end = digits
            .iter()
            .rposition(|&digit| digit != b'0')
            .map_or(0, |at| at + 1);
        out.push(b'.');
        out.extend_from_slice(&digits[..end]);
    }
}

/// Appends `d` like C's `%.17g`.
fn push_g17(out: &mut Vec<u8>, d: f64) {
    // `{:.16e}` gives 17 significant digits in scientific form; %g picks the shorter of
    // fixed and scientific and strips trailing zeros.
    let scientific = format!("{d:.16e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        out.extend_from_slice(scientific.as_bytes());
        return;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-5..17).contains(&exponent) {
        let fixed = format!("{:.*}", (16 - exponent).max(0) as usize, d);
        out.extend_from_slice(strip_fraction_zeros(&fixed).as_bytes());
    } else {
        out.extend_from_slice(strip_fraction_zeros(mantissa).as_bytes());
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

fn strip_fraction_zeros(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

/// Appends one Lua value's payload form, failing if the result would pass `limit` bytes.
/// Circular buffers are handled by the caller.
///
/// # Errors
/// [`AppendError::Limit`] or [`AppendError::Unsupported`]; the buffer is unchanged.
pub fn push_value(out: &mut Vec<u8>, value: &mlua::Value, limit: usize) -> Result<(), AppendError> {
    let start = out.len();
    match value {
        mlua::Value::String(text) => {
            let bytes = text.as_bytes();
            if start + bytes.len() > limit {
                return Err(AppendError::Limit);
            }
            out.extend_from_slice(&bytes);
            return Ok(());
        }
        mlua::Value::Integer(number) => {
            let _ = write!(out, "{number}");
        }
        mlua::Value::Number(number) => push_double(out, *number),
        mlua::Value::Boolean(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        mlua::Value::Nil => out.extend_from_slice(b"nil"),
        other => return Err(AppendError::Unsupported(other.type_name())),
    }
    if out.len() > limit {
        out.truncate(start);
        return Err(AppendError::Limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: f64) -> String {
        let mut out = Vec::new();
        push_double(&mut out, d);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_print_as_lua_sandbox_did() {
        let seeds: &[(f64, &str)] = &[
            (0.0, "0"),
            (3.0, "3"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (1.0 / 3.0, "0.33333333"),
            (2.0 / 3.0, "0.66666667"),
            (0.999_999_999, "1"),
            (10002.0, "10002"),
            (2147483647.0, "2147483647"),
            (2147483648.0, "2147483648"),
            (1e20, "1e+20"),
            (1.5e300, "1.5000000000000001e+300"),
            (-2.5e10, "-25000000000"),
            (123456789012.5, "123456789012.5"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(value, expected) in seeds {
            assert_eq!(text(value), expected, "formatting {value:?}");
        }
    }

    #[test]
    fn values_respect_the_limit_and_leave_the_buffer_unchanged() {
        let lua = mlua::Lua::new();
        let mut out = b"abc".to_vec();
        let long = mlua::Value::String(lua.create_string("defgh").unwrap());
        assert_eq!(push_value(&mut out, &long, 7), Err(AppendError::Limit));
        assert_eq!(out, b"abc");
        assert_eq!(
            push_value(&mut out, &mlua::Value::Integer(12345), 7),
            Err(AppendError::Limit)
        );
        assert_eq!(out, b"abc");
        push_value(&mut out, &mlua::Value::Boolean(true), 7).unwrap();
        assert_eq!(out, b"abctrue");
        let table = mlua::Value::Table(lua.create_table().unwrap());
        assert_eq!(
            push_value(&mut out, &table, 100),
            Err(AppendError::Unsupported("table"))
        );
    }
}
