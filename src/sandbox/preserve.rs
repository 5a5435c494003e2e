//! `preserve_data = true`: the script's global data saved at clean shutdown and restored at
//! the next start.
//!
//! The file is `<base_dir>/sandbox_preservation/<name>.data` (non-word characters of the
//! name become `_`) for a filter, which runs once per daemon. A decoder or an encoder runs
//! one state per core, so each core keeps its own file, `<name>.<core row>.data`
//! ([`data_path_on_core`]): cores never share or overwrite each other's state. As in Heka,
//! the file is Lua source that rebuilds the globals when run
//! after the script's top level:
//! ```text
//! if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= 3 then return end
//! _G["count"] = 42
//! _G["by_type"] = {}
//! _G["by_type"]["nginx"] = 7
//! _G["alias"] = _G["by_type"]                 -- shared references stay shared
//! if _G["cb"] == nil then _G["cb"] = circular_buffer.new(60, 2, 1) end
//! _G["cb"]:set_header(1, "Requests", "count", "sum")
//! _G["cb"]:fromstring("<current time> <current row> <values...> [<time> <deltas...>]*")
//! ```
//! Saved: numbers, strings, booleans, tables (nested, shared and cyclic references kept) and
//! circular buffers. Skipped: functions, coroutines, other userdata, tables with a
//! metatable, the library and module tables the host installed, `_G`, `_VERSION`.
//! The version line is how `_PRESERVATION_VERSION` works: a script that changes its version
//! discards the old state. Floats are written exactly (shortest round-trip form); NaN and
//! infinities as `0/0`, `1/0`, `-1/0`.
//!
//! Writing goes to `<file>.tmp` then renames, so a crash mid-write leaves the old state.
//! Restoring runs with the instruction hook off and the memory limit raised, as Heka did,
//! and checks the memory limit once done.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mlua::{Lua, Table, Value};

use super::api::Host;
use super::circular_buffer::CircularBuffer;
use super::env::Builtins;
use super::{SandboxError, MEMORY_LIMIT_MAX};

/// The largest preservation file written or read.
pub const DATA_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The deepest table nesting saved.
pub const DEPTH_MAX: usize = 256;
/// The directory under `base_dir`, as Heka named it.
pub const DATA_DIR: &str = "sandbox_preservation";

/// Where `name`'s state is kept (a filter's, or any state not tied to a core).
pub fn data_path(base_dir: &Path, name: &str) -> PathBuf {
    data_path_on_core(base_dir, name, None)
}

/// Where `name`'s state is kept for the core at telemetry row `core_row`
/// (`<name>.<core row>.data`); with no core, as [`data_path`].
pub fn data_path_on_core(base_dir: &Path, name: &str, core_row: Option<usize>) -> PathBuf {
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match core_row {
        Some(row) => base_dir.join(DATA_DIR).join(format!("{file}.{row}.data")),
        None => base_dir.join(DATA_DIR).join(format!("{file}.data")),
    }
}

/// Appends `text` as a Lua double-quoted string literal.
pub fn push_lua_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for (index, &byte) in text.iter().enumerate() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x20..=0x7e => out.push(byte),
            _ => {
                // \ddd must not be followed by a digit that would extend it.
                let next_is_digit = text.get(index + 1).is_some_and(u8::is_ascii_digit);
                if next_is_digit {
                    let _ = write!(out, "\\{byte:03}");
                } else {
                    let _ = write!(out, "\\{byte}");
                }
            }
        }
    }
    out.push(b'"');
}

fn push_number(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Integer(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Number(number) if number.is_nan() => out.extend_from_slice(b"0/0"),
        Value::Number(number) if number.is_infinite() => {
            out.extend_from_slice(if *number > 0.0 { b"1/0" } else { b"-1/0" })
        }
        Value::Number(number) => {
            let _ = write!(out, "{number:e}");
        }
        _ => {}
    }
}

struct Writer<'a> {
    out: Vec<u8>,
    /// Path expression of every table or buffer written, by identity.
    seen: HashMap<usize, Vec<u8>>,
    skip: &'a [usize],
}

impl Writer<'_> {
    fn key(&self, parent: &[u8], key: &Value) -> Option<Vec<u8>> {
        let mut path = parent.to_vec();
        path.push(b'[');
        match key {
            Value::String(text) => push_lua_string(&text.as_bytes(), &mut path),
            Value::Integer(_) | Value::Number(_) => {
                if matches!(key, Value::Number(number) if number.is_nan()) {
                    return None;
                }
                push_number(key, &mut path);
            }
            Value::Boolean(flag) => path.extend_from_slice(if *flag { b"true" } else { b"false" }),
            _ => return None,
        }
        path.push(b']');
        Some(path)
    }

    fn entry(&mut self, path: Vec<u8>, value: &Value, depth: usize) -> Result<(), String> {
        if self.out.len() > DATA_BYTES_MAX {
            return Err(format!("state is larger than {DATA_BYTES_MAX} bytes"));
        }
        match value {
            Value::Integer(_) | Value::Number(_) => {
                self.assign(&path, |out| push_number(value, out))
            }
            Value::String(text) => self.assign(&path, |out| push_lua_string(&text.as_bytes(), out)),
            Value::Boolean(flag) => self.assign(&path, |out| {
                out.extend_from_slice(if *flag { b"true" } else { b"false" })
            }),
            Value::Table(table) => {
                let identity = table.to_pointer() as usize;
                if self.skip.contains(&identity) || table.metatable().is_some() {
                    return Ok(());
                }
                if let Some(seen) = self.seen.get(&identity).cloned() {
                    self.assign(&path, |out| out.extend_from_slice(&seen));
                    return Ok(());
                }
                if depth >= DEPTH_MAX {
                    return Err(format!("tables nest deeper than {DEPTH_MAX}"));
                }
                self.seen.insert(identity, path.clone());
                self.assign(&path, |out| out.extend_from_slice(b"{}"));
                self.table(table, &path, depth + 1)?;
            }
            Value::UserData(data) => {
                let identity = data.to_pointer() as usize;
                if let Some(seen) = self.seen.get(&identity).cloned() {
                    if data.is::<CircularBuffer>() || super::native::is_native(data) {
                        self.assign(&path, |out| out.extend_from_slice(&seen));
                    }
                    return Ok(());
                }
                if let Ok(mut buffer) = data.borrow_mut::<CircularBuffer>() {
                    let key = String::from_utf8_lossy(&path).into_owned();
                    buffer.serialize(&key, &mut self.out);
                    self.seen.insert(identity, path);
                } else {
                    let key = String::from_utf8_lossy(&path).into_owned();
                    if super::native::serialize(data, &key, &mut self.out) {
                        self.seen.insert(identity, path);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn assign(&mut self, path: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
        self.out.extend_from_slice(path);
        self.out.extend_from_slice(b" = ");
        value(&mut self.out);
        self.out.push(b'\n');
    }

    fn table(&mut self, table: &Table, path: &[u8], depth: usize) -> Result<(), String> {
        for pair in table.pairs::<Value, Value>() {
            let (key, value) = pair.map_err(|error| error.to_string())?;
            if depth == 1 {
                if let Value::String(name) = &key {
                    if matches!(
                        &*name.as_bytes(),
                        b"_G" | b"_VERSION" | b"_PRESERVATION_VERSION"
                    ) {
                        continue;
                    }
                }
            }
            if let Some(child) = self.key(path, &key) {
                self.entry(child, &value, depth)?;
            }
        }
        Ok(())
    }
}

/// Serialises the globals to Lua source.
///
/// # Errors
/// A description of what could not be saved.
pub fn serialize(lua: &Lua) -> Result<Vec<u8>, String> {
    let globals = lua.globals();
    let version = match globals.raw_get::<Value>("_PRESERVATION_VERSION") {
        Ok(Value::Integer(version)) => version,
        Ok(Value::Number(version)) => version as i64,
        _ => 0,
    };
    let skip: Vec<usize> = lua
        .app_data_ref::<Builtins>()
        .map(|builtins| {
            builtins
                .tables
                .iter()
                .map(|table| table.to_pointer() as usize)
                .collect()
        })
        .unwrap_or_default();
    let mut writer = Writer {
        out: Vec::with_capacity(4096),
        seen: HashMap::new(),
        skip: &skip,
    };
    let _ = writeln!(
        writer.out,
        "if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= {version} then return end"
    );
    writer
        .seen
        .insert(globals.to_pointer() as usize, b"_G".to_vec());
    writer.table(&globals, b"_G", 1)?;
    Ok(writer.out)
}

/// Writes the state to `path` (atomically).
///
/// # Errors
/// [`SandboxError::Preservation`] if serialising or writing fails.
pub(crate) fn save(lua: &Lua, host: &Host, path: &Path) -> Result<(), SandboxError> {
    let error = |message: String| SandboxError::Preservation {
        path: path.to_path_buf(),
        message,
    };
    host.suspend_limits(true);
    let result = serialize(lua);
    host.suspend_limits(false);
    let data = result.map_err(error)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
    }
    let temporary = path.with_extension("data.tmp");
    std::fs::write(&temporary, &data).map_err(|e| error(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| error(e.to_string()))?;
    Ok(())
}

/// Runs a saved state, if there is one, in the freshly loaded script.
///
/// # Errors
/// [`SandboxError::Preservation`] if the file cannot be read, fails to run, or leaves the
/// sandbox over its memory limit.
pub(crate) fn restore(lua: &Lua, host: &Host, path: &Path) -> Result<(), SandboxError> {
    let error = |message: String| SandboxError::Preservation {
        path: path.to_path_buf(),
        message,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(error(e.to_string())),
    };
    if metadata.len() > DATA_BYTES_MAX as u64 {
        return Err(error(format!("larger than {DATA_BYTES_MAX} bytes")));
    }
    let source = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    host.suspend_limits(true);
    let limit = host.memory_limit.saturating_sub(host.native_bytes()).max(1);
    let _ = lua.set_memory_limit(MEMORY_LIMIT_MAX);
    let result = lua
        .load(&source[..])
        .set_name(format!("@{}", path.display()))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .exec();
    host.suspend_limits(false);
    let collected = lua.gc_collect();
    let used = lua.used_memory() + host.native_bytes();
    let limit = host
        .memory_limit
        .saturating_sub(host.native_bytes())
        .max(1)
        .min(limit.max(1));
    let _ = lua.set_memory_limit(limit);
    result.map_err(|e| error(super::lua_error_text(&e)))?;
    collected.map_err(|e| error(super::lua_error_text(&e)))?;
    if used > host.memory_limit {
        return Err(error(format!(
            "restored state uses {used} bytes, over memory_limit {}",
            host.memory_limit
        )));
    }
    Ok(())
}
