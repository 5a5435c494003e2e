//! `cjson`: JSON for scripts, with lua-cjson's names and defaults.
//!
//! - `cjson.encode(value)`: tables whose keys are exactly `1..n` become arrays, other tables
//!   objects (keys must be strings or numbers); an empty table is `{}`; integers print
//!   exactly, floats with 14 significant digits (`%.14g`); NaN and infinities are errors;
//!   `cjson.null` is `null`; strings are escaped but not checked for UTF-8; `/` is escaped
//!   as `\/`, as lua-cjson does.
//! - `cjson.decode(text)`: objects and arrays become tables, `null` becomes `cjson.null`,
//!   integers stay integers.
//!
//! Limits: nesting deeper than [`DEPTH_MAX`] is an error both ways (which also stops
//! self-referencing tables), and encoded output is capped at [`ENCODED_BYTES_MAX`].

use std::io::Write as _;

use mlua::{LightUserData, Lua, Table, Value};

/// Nesting depth cjson accepts (lua-cjson's default is 1000; serde_json's parser stops at
/// 128, so gyges uses that bound both ways).
pub const DEPTH_MAX: usize = 128;
/// The largest string `cjson.encode` produces.
pub const ENCODED_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `cjson.null`: a light userdata holding the null pointer, as lua-cjson uses.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(value: &Value) -> bool {
    matches!(value, Value::LightUserData(data) if data.0.is_null())
}

/// The `cjson` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.raw_set(
        "encode",
        lua.create_function(|lua, value: Value| {
            let mut out = Vec::with_capacity(128);
            encode_value(&value, 0, &mut out).map_err(mlua::Error::runtime)?;
            lua.create_string(out)
        })?,
    )?;
    module.raw_set(
        "decode",
        lua.create_function(|lua, text: mlua::LuaString| {
            let parsed: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|error| mlua::Error::runtime(format!("Expected JSON: {error}")))?;
            decode_value(lua, &parsed)
        })?,
    )?;
    module.raw_set("null", null())?;
    Ok(module)
}

/// Appends the JSON text of a Lua value.
///
/// # Errors
/// A description of the first value that has no JSON form.
pub fn encode_value(value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if out.len() > ENCODED_BYTES_MAX {
        return Err(format!(
            "Cannot serialise: output exceeds {ENCODED_BYTES_MAX} bytes"
        ));
    }
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        value if is_null(value) => out.extend_from_slice(b"null"),
        Value::Boolean(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Integer(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Number(number) => encode_number(*number, out)?,
        Value::String(text) => encode_string(&text.as_bytes(), out),
        Value::Table(table) => {
            if depth >= DEPTH_MAX {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                ));
            }
            encode_table(table, depth + 1, out)?;
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

fn encode_number(number: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !number.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".to_string());
    }
    if number.fract() == 0.0 && number.abs() < 1e14 {
        let _ = write!(out, "{}", number as i64);
        return Ok(());
    }
    // %.14g: 14 significant digits, the shorter of fixed and scientific forms.
    let scientific = format!("{number:.13e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |text: &str| -> String {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text.to_string()
        }
    };
    if (-5..14).contains(&exponent) {
        let fixed = format!("{:.*}", (13 - exponent).max(0) as usize, number);
        out.extend_from_slice(trim(&fixed).as_bytes());
    } else {
        out.extend_from_slice(trim(mantissa).as_bytes());
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
    Ok(())
}

fn encode_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in text {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            byte if byte < 0x20 || byte == 0x7f => {
                let _ = write!(out, "\\u{byte:04x}");
            }
            byte => out.push(byte),
        }
    }
    out.push(b'"');
}

fn encode_table(table: &Table, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let length = table.raw_len();
    let mut count = 0usize;
    let mut array = true;
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|error| error.to_string())?;
        count += 1;
        let in_range = match key {
            Value::Integer(index) => index >= 1 && index as usize <= length,
            _ => false,
        };
        array &= in_range;
    }
    if count > 0 && array && count == length {
        out.push(b'[');
        for index in 1..=length {
            if index > 1 {
                out.push(b',');
            }
            let value: Value = table.raw_get(index).map_err(|error| error.to_string())?;
            encode_value(&value, depth, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|error| error.to_string())?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &key {
            Value::String(text) => encode_string(&text.as_bytes(), out),
            Value::Integer(number) => encode_string(number.to_string().as_bytes(), out),
            Value::Number(number) => {
                let mut text = Vec::new();
                encode_number(*number, &mut text)?;
                encode_string(&text, out);
            }
            other => {
                return Err(format!(
                    "Cannot serialise {}: table key must be a number or string",
                    other.type_name()
                ))
            }
        }
        out.push(b':');
        encode_value(&value, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Converts parsed JSON to Lua.
///
/// # Errors
/// mlua's error (out of memory).
pub fn decode_value(lua: &Lua, value: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match value {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(flag) => Value::Boolean(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => Value::Integer(integer),
            None => Value::Number(number.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(text) => Value::String(lua.create_string(text)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for item in items {
                table.raw_push(decode_value(lua, item)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(members) => {
            let table = lua.create_table_with_capacity(0, members.len())?;
            for (key, item) in members {
                table.raw_set(key.as_str(), decode_value(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cjson", module(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn encodes_like_lua_cjson() {
        let lua = lua();
        let seeds: &[(&str, &str)] = &[
            ("{}", "{}"),
            ("{1, 2, 3}", "[1,2,3]"),
            ("{a = 1}", r#"{"a":1}"#),
            ("{[1] = 'x', [3] = 'y'}", r#"{"1":"x","3":"y"}"#),
            ("{'a/b', 'q\"'}", r#"["a\/b","q\""]"#),
            ("{1.5, 0.1, 1e20, 3.0}", "[1.5,0.1,1e+20,3]"),
            ("{true, false, cjson.null}", "[true,false,null]"),
            ("{x = {y = {}}}", r#"{"x":{"y":{}}}"#),
            ("'\\1\\n'", r#""\u0001\n""#),
        ];
        for (source, expected) in seeds {
            let encoded: String = lua
                .load(format!("return cjson.encode({source})"))
                .eval()
                .unwrap();
            assert_eq!(&encoded, expected, "encoding {source}");
        }
    }

    #[test]
    fn rejects_what_json_cannot_say() {
        let lua = lua();
        for source in [
            "0/0",
            "1/0",
            "print",
            "{[true] = 1}",
            "(function() local t = {} t.t = t return t end)()",
        ] {
            let result = lua
                .load(format!("return cjson.encode({source})"))
                .eval::<String>();
            assert!(result.is_err(), "{source} must not encode");
        }
        assert!(lua
            .load("return cjson.decode('{')")
            .eval::<Value>()
            .is_err());
    }

    #[test]
    fn round_trips() {
        let lua = lua();
        let ok: bool = lua
            .load(
                r#"
                local text = '{"a":[1,2.5,"x",true,null],"b":{"c":-7}}'
                local t = cjson.decode(text)
                assert(t.a[1] == 1 and math.type(t.a[1]) == "integer")
                assert(t.a[2] == 2.5 and t.a[3] == "x" and t.a[4] == true)
                assert(t.a[5] == cjson.null)
                assert(t.b.c == -7)
                local again = cjson.decode(cjson.encode(t))
                return again.a[2] == 2.5 and again.b.c == -7 and again.a[5] == cjson.null
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
    }
}
