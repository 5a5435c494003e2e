//! `struct`: packing Lua values into binary strings and back (the API of Roberto
//! Ierusalimschy's struct library, which lua_sandbox shipped).
//!
//! ```text
//! require "struct"
//! struct.pack(fmt, v1, v2, ...) -> string
//! struct.unpack(fmt, s[, i = 1]) -> v1, v2, ..., next position
//! struct.size(fmt) -> bytes       (an error for formats with s or c0)
//! ```
//! Format options (spaces are ignored):
//! - `<` little-endian, `>` big-endian, `=` native (little-endian here);
//! - `![n]` align fields to at most `n` bytes (1, 2, 4, 8 or 16; `!` alone is 8); alignment
//!   starts at 1 (none); a field of size `k` aligns to `min(k, n)`;
//! - `x` one zero byte (skipped when unpacking);
//! - `b`/`B` signed/unsigned char, `h`/`H` short (2), `l`/`L` long (8), `T` size_t (8),
//!   `i[n]`/`I[n]` an integer of `n` bytes (1..=8, default 4);
//! - `f` float, `d` double;
//! - `s` a zero-terminated string;
//! - `c[n]` `n` bytes (up to 2^30); packing `c0` (or `c`) takes the whole string; unpacking
//!   `c0` takes as many bytes as the value unpacked just before it, which it replaces.
//!
//! Integers are packed from a Lua integer, or a float truncated toward zero, keeping the low
//! `n` bytes (two's complement), as the library did; unpacked unsigned 8-byte values above
//! 2^63 − 1 come back as floats. Left out: integer sizes above 8 bytes (`i9`..`i16`), which
//! are an error. A packed string is bounded by what the sandbox's `memory_limit` leaves.

use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::api::{Host, ABORT_MEMORY};

/// The largest `n` of `c[n]` and of a `!n` alignment digit string.
pub const COUNT_MAX: usize = 1 << 30;
/// The alignment `!` alone means.
const NATIVE_ALIGN: usize = 8;

fn error(function: &str, problem: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("{function}(): {problem}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Pad,
    Int { size: usize, signed: bool },
    Float,
    Double,
    Zstring,
    Chars(usize),
}

/// Reads a format one item at a time, tracking endianness and alignment.
struct Format<'a> {
    text: &'a [u8],
    at: usize,
    little: bool,
    align: usize,
    function: &'static str,
}

impl<'a> Format<'a> {
    fn new(text: &'a [u8], function: &'static str) -> Format<'a> {
        Format {
            text,
            at: 0,
            little: true,
            align: 1,
            function,
        }
    }

    fn number(&mut self) -> mlua::Result<Option<usize>> {
        let start = self.at;
        let mut value: usize = 0;
        while let Some(digit) = self.text.get(self.at).filter(|b| b.is_ascii_digit()) {
            value = value * 10 + usize::from(digit - b'0');
            if value > COUNT_MAX {
                return Err(error(
                    self.function,
                    format!("size in format is larger than {COUNT_MAX}"),
                ));
            }
            self.at += 1;
        }
        Ok((self.at > start).then_some(value))
    }

    /// The next item, or `None` at the end.
    fn next_item(&mut self) -> mlua::Result<Option<Item>> {
        loop {
            let Some(&option) = self.text.get(self.at) else {
                return Ok(None);
            };
            self.at += 1;
            let int = |size, signed| Ok(Some(Item::Int { size, signed }));
            return match option {
                b' ' => continue,
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'!' => {
                    let align = self.number()?.unwrap_or(NATIVE_ALIGN);
                    if !matches!(align, 1 | 2 | 4 | 8 | 16) {
                        return Err(error(self.function, "alignment must be 1, 2, 4, 8 or 16"));
                    }
                    self.align = align;
                    continue;
                }
                b'x' => Ok(Some(Item::Pad)),
                b'b' => int(1, true),
                b'B' => int(1, false),
                b'h' => int(2, true),
                b'H' => int(2, false),
                b'l' => int(8, true),
                b'L' | b'T' => int(8, false),
                b'i' | b'I' => {
                    let size = self.number()?.unwrap_or(4);
                    if !(1..=8).contains(&size) {
                        return Err(error(
                            self.function,
                            format!("integer size {size} is out of range (1..8)"),
                        ));
                    }
                    int(size, option == b'i')
                }
                b'f' => Ok(Some(Item::Float)),
                b'd' => Ok(Some(Item::Double)),
                b's' => Ok(Some(Item::Zstring)),
                b'c' => Ok(Some(Item::Chars(self.number()?.unwrap_or(1)))),
                other => Err(error(
                    self.function,
                    format!("invalid format option '{}'", char::from(other)),
                )),
            };
        }
    }

    /// Padding before an item of `size` bytes at offset `offset`.
    fn padding(&self, item: Item, offset: usize) -> usize {
        let size = match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            _ => return 0,
        };
        let align = size.min(self.align);
        if align <= 1 {
            return 0;
        }
        // Sizes such as 3 align to the largest power of two below them.
        let align = 1 << (usize::BITS - 1 - align.leading_zeros());
        (align - (offset & (align - 1))) & (align - 1)
    }
}

fn integer_of(value: &Value, function: &str, position: usize) -> mlua::Result<i64> {
    match value {
        Value::Integer(number) => Ok(*number),
        Value::Number(number) if number.is_finite() => Ok(*number as i64),
        Value::String(text) => text
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|number| number.is_finite())
            .map(|number| number as i64)
            .ok_or_else(|| bad_value(function, position, "number expected")),
        _ => Err(bad_value(function, position, "number expected")),
    }
}

fn float_of(value: &Value, function: &str, position: usize) -> mlua::Result<f64> {
    match value {
        Value::Integer(number) => Ok(*number as f64),
        Value::Number(number) => Ok(*number),
        Value::String(text) => text
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_value(function, position, "number expected")),
        _ => Err(bad_value(function, position, "number expected")),
    }
}

fn bad_value(function: &str, position: usize, problem: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{position} to '{function}' ({problem})"
    ))
}

/// `struct.pack`: `values` are the arguments after the format, `budget` the bytes the result
/// may take.
///
/// # Errors
/// A Lua error for a bad format or argument, or [`ABORT_MEMORY`]'s text past `budget`.
pub fn pack(format: &[u8], values: &[Value], budget: usize) -> mlua::Result<Vec<u8>> {
    let mut format = Format::new(format, "pack");
    let mut out = Vec::new();
    let mut taken = 0;
    let mut next = || -> mlua::Result<(usize, &Value)> {
        let value = values
            .get(taken)
            .ok_or_else(|| bad_value("pack", taken + 2, "no value"))?;
        taken += 1;
        Ok((taken + 1, value))
    };
    while let Some(item) = format.next_item()? {
        let padding = format.padding(item, out.len());
        out.resize(out.len() + padding, 0);
        match item {
            Item::Pad => out.push(0),
            Item::Int { size, .. } => {
                let (position, value) = next()?;
                let bytes = integer_of(value, "pack", position)?.to_le_bytes();
                let bytes = &bytes[..size];
                if format.little {
                    out.extend_from_slice(bytes);
                } else {
                    out.extend(bytes.iter().rev());
                }
            }
            Item::Float | Item::Double => {
                let (position, value) = next()?;
                let number = float_of(value, "pack", position)?;
                let mut bytes = if item == Item::Float {
                    (number as f32).to_le_bytes().to_vec()
                } else {
                    number.to_le_bytes().to_vec()
                };
                if !format.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            Item::Zstring | Item::Chars(_) => {
                let (position, value) = next()?;
                let Value::String(text) = value else {
                    return Err(bad_value("pack", position, "string expected"));
                };
                let text = text.as_bytes();
                match item {
                    Item::Chars(size) if size > 0 => {
                        if text.len() < size {
                            return Err(bad_value("pack", position, "string too short"));
                        }
                        check_budget(out.len() + size, budget)?;
                        out.extend_from_slice(&text[..size]);
                    }
                    _ => {
                        check_budget(out.len() + text.len() + 1, budget)?;
                        out.extend_from_slice(&text);
                        if item == Item::Zstring {
                            out.push(0);
                        }
                    }
                }
            }
        }
        check_budget(out.len(), budget)?;
    }
    Ok(out)
}

fn check_budget(bytes: usize, budget: usize) -> mlua::Result<()> {
    if bytes > budget {
        Err(mlua::Error::runtime(ABORT_MEMORY))
    } else {
        Ok(())
    }
}

/// One unpacked value.
#[derive(Debug, PartialEq)]
pub enum Unpacked {
    /// An integer that fits in a Lua integer.
    Integer(i64),
    /// A float, or an unsigned integer above `i64::MAX`.
    Number(f64),
    /// A string.
    Bytes(Vec<u8>),
}

/// `struct.unpack` from the 0-based offset `start`: the values and the 0-based next offset.
///
/// # Errors
/// A Lua error for a bad format or data too short.
pub fn unpack(format: &[u8], data: &[u8], start: usize) -> mlua::Result<(Vec<Unpacked>, usize)> {
    let mut format = Format::new(format, "unpack");
    let mut values = Vec::new();
    let mut at = start;
    let too_short = || error("unpack", "data string too short");
    while let Some(item) = format.next_item()? {
        at += format.padding(item, at);
        match item {
            Item::Pad => {
                if at + 1 > data.len() {
                    return Err(too_short());
                }
                at += 1;
            }
            Item::Int { size, signed } => {
                let bytes = data.get(at..at + size).ok_or_else(too_short)?;
                let mut raw = [0u8; 8];
                if format.little {
                    raw[..size].copy_from_slice(bytes);
                } else {
                    for (index, byte) in bytes.iter().rev().enumerate() {
                        raw[index] = *byte;
                    }
                }
                let unsigned = u64::from_le_bytes(raw);
                let value = if signed {
                    let shift = 64 - 8 * size as u32;
                    Unpacked::Integer(((unsigned << shift) as i64) >> shift)
                } else if let Ok(value) = i64::try_from(unsigned) {
                    Unpacked::Integer(value)
                } else {
                    Unpacked::Number(unsigned as f64)
                };
                values.push(value);
                at += size;
            }
            Item::Float | Item::Double => {
                let size = if item == Item::Float { 4 } else { 8 };
                let bytes = data.get(at..at + size).ok_or_else(too_short)?;
                let mut raw = [0u8; 8];
                raw[..size].copy_from_slice(bytes);
                if !format.little {
                    raw[..size].reverse();
                }
                let number = if size == 4 {
                    f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
                } else {
                    f64::from_le_bytes(raw)
                };
                values.push(Unpacked::Number(number));
                at += size;
            }
            Item::Zstring => {
                let rest = data.get(at..).ok_or_else(too_short)?;
                let end = memchr::memchr(0, rest)
                    .ok_or_else(|| error("unpack", "unfinished string in data"))?;
                values.push(Unpacked::Bytes(rest[..end].to_vec()));
                at += end + 1;
            }
            Item::Chars(size) => {
                let size = if size == 0 {
                    match values.pop() {
                        Some(Unpacked::Integer(length)) if length >= 0 => length as usize,
                        Some(Unpacked::Number(length)) if length >= 0.0 => length as usize,
                        _ => {
                            return Err(error(
                                "unpack",
                                "format 'c0' needs a non-negative length before it",
                            ))
                        }
                    }
                } else {
                    size
                };
                let end = at.checked_add(size).ok_or_else(too_short)?;
                let bytes = data.get(at..end).ok_or_else(too_short)?;
                values.push(Unpacked::Bytes(bytes.to_vec()));
                at = end;
            }
        }
    }
    Ok((values, at))
}

/// `struct.size`.
///
/// # Errors
/// A Lua error for a bad format or one with `s` or `c0`.
pub fn size(format: &[u8]) -> mlua::Result<usize> {
    let mut format = Format::new(format, "size");
    let mut size: usize = 0;
    while let Some(item) = format.next_item()? {
        size += format.padding(item, size);
        size += match item {
            Item::Pad => 1,
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Chars(count) if count > 0 => count,
            Item::Zstring | Item::Chars(_) => {
                return Err(error("size", "options 'c0' and 's' have undefined sizes"))
            }
        };
        if size > COUNT_MAX * 4 {
            return Err(error("size", "format is too large"));
        }
    }
    Ok(size)
}

/// The `struct` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub(crate) fn module(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let pack_host = Rc::clone(host);
    module.raw_set(
        "pack",
        lua.create_function(
            move |lua, (format, values): (mlua::LuaString, MultiValue)| {
                let values: Vec<Value> = values.into_iter().collect();
                let budget = pack_host.native_budget(lua);
                match pack(&format.as_bytes(), &values, budget) {
                    Ok(bytes) => lua.create_string(bytes),
                    Err(error) if error.to_string().contains(ABORT_MEMORY) => {
                        Err(pack_host.abort_with(ABORT_MEMORY))
                    }
                    Err(error) => Err(error),
                }
            },
        )?,
    )?;
    module.raw_set(
        "unpack",
        lua.create_function(
            |lua, (format, data, start): (mlua::LuaString, mlua::LuaString, Option<f64>)| {
                let data = data.as_bytes();
                let start = start.unwrap_or(1.0);
                if !(start >= 1.0 && start <= data.len() as f64 + 1.0) {
                    return Err(bad_value("unpack", 3, "offset out of string"));
                }
                let (values, next) = unpack(&format.as_bytes(), &data, start as usize - 1)?;
                let mut out = Vec::with_capacity(values.len() + 1);
                for value in values {
                    out.push(match value {
                        Unpacked::Integer(number) => Value::Integer(number),
                        Unpacked::Number(number) => Value::Number(number),
                        Unpacked::Bytes(bytes) => Value::String(lua.create_string(bytes)?),
                    });
                }
                out.push(Value::Integer(next as i64 + 1));
                Ok(MultiValue::from_iter(out))
            },
        )?,
    )?;
    module.raw_set(
        "size",
        lua.create_function(|_, format: mlua::LuaString| Ok(size(&format.as_bytes())? as i64))?,
    )?;
    Ok(module)
}

#[cfg(test)]
mod tests;
