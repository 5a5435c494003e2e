//! The restricted environment every script runs in, after lua_sandbox's rules.
//!
//! Loaded: the base library, `string`, `table`, `math`, `os` (cut down), `utf8`.
//! Not loaded or removed: `io`, `debug`, `coroutine`, `package`, `dofile`, `loadfile`,
//! `load` (so no bytecode and no source either), `string.dump`, `print`,
//! `os.execute`, `os.exit`, `os.remove`, `os.rename`, `os.getenv`, `os.tmpname`,
//! `os.setlocale`. `collectgarbage` only answers `"count"`.
//!
//! `require(name)` knows `string`, `table`, `math`, `os`, `utf8`, `lpeg`, `re` (Debian's
//! `re.lua`, if installed), `circular_buffer`, `cjson`, the native modules `bloom_filter`,
//! `hyperloglog`, `cuckoo_filter` and `struct`, and plain Lua files
//! `<module_directory>/<name with dots as slashes>.lua`, loaded as text under the same limits.
//! Like Lua 5.1, requiring `lpeg`, `cjson`, `circular_buffer` or a native module also sets the
//! global of that name. C modules are never loaded.
//!
//! Lua 5.1 names that Heka-era scripts use, provided on top of Lua 5.4:
//! `unpack`, `table.getn`, `table.maxn`, `table.foreach`, `table.foreachi`, `math.pow`,
//! `math.log10`, `math.mod`, `math.ldexp`, `math.frexp`, `math.cosh`, `math.sinh`,
//! `math.tanh`, `string.gfind`, `setfenv`/`getfenv` (for Lua functions, through their
//! `_ENV`), and `string.format` accepting a non-integral float for `%d`/`%i`/`%x`/`%X`/
//! `%o`/`%c` (truncated toward zero, as 5.1 did). `os.date` always formats in UTC, as
//! lua_sandbox ran with `TZ=UTC`.
//!
//! What the instruction hook cannot see is closed off in the prelude: a table's `__gc` is
//! ignored and a userdata's metatable is read-only (Lua runs finalizers with the hook off), and
//! the string and table loops that run in C without filling memory (`string.rep` of nothing,
//! `table.move`, `table.insert` and `table.remove` over huge ranges) are cut short or run in Lua
//! above a bound. lpeg's matcher still runs unbounded (docs/sandbox.md).
//!
//! `pcall` and `xpcall` cannot catch a limit overrun: once a limit is passed the error
//! propagates to the host whatever the script does.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value};

use super::api::{Host, ABORT_MEMORY};
use super::SandboxError;

/// The largest plain Lua module `require` reads.
pub const MODULE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Debian's `re` module, shipped with lua-lpeg.
pub const RE_MODULE_PATH: &str = "/usr/share/lua/5.4/re.lua";

/// The key under which the host keeps the tables it installed, so preservation skips them.
#[derive(Default)]
pub(crate) struct Builtins {
    pub(crate) tables: Vec<Table>,
}

/// Lua 5.1 compatibility and the uncatchable-limit `pcall`, written in Lua because they
/// only wrap Lua functions. Runs once at state creation with `check` (a host function) as
/// its argument.
const PRELUDE: &str = r#"
local check = ...
local raw_pcall, raw_xpcall, error, select = pcall, xpcall, error, select
local pack, unpack = table.pack, table.unpack

local function settle(ok, ...)
    if ok then return ok, ... end
    local abort, message = check((...))
    if abort then error(message, 0) end
    return false, message
end
pcall = function(f, ...) return settle(raw_pcall(f, ...)) end
xpcall = function(f, handler, ...)
    local function guarded(e)
        local abort, message = check(e)
        if abort then return message end
        return handler(message)
    end
    return settle(raw_xpcall(f, guarded, ...))
end

_G.unpack = table.unpack
table.getn = function(t) return #t end
table.maxn = function(t)
    local n = 0
    for k in pairs(t) do
        if type(k) == "number" and k > n then n = k end
    end
    return n
end
table.foreach = function(t, f)
    for k, v in pairs(t) do
        local r = f(k, v)
        if r ~= nil then return r end
    end
end
table.foreachi = function(t, f)
    for i = 1, #t do
        local r = f(i, t[i])
        if r ~= nil then return r end
    end
end
math.pow = function(x, y) return x ^ y end
math.log10 = function(x) return math.log(x, 10) end
math.mod = math.fmod
math.ldexp = function(m, e) return m * 2.0 ^ e end
math.frexp = function(x)
    if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x, 0 end
    local e = math.floor(math.log(math.abs(x), 2)) + 1
    local m = x / 2.0 ^ e
    if math.abs(m) >= 1 then m = m / 2; e = e + 1 end
    if math.abs(m) < 0.5 then m = m * 2; e = e - 1 end
    return m, e
end
math.cosh = function(x) return (math.exp(x) + math.exp(-x)) / 2 end
math.sinh = function(x) return (math.exp(x) - math.exp(-x)) / 2 end
math.tanh = function(x)
    local a, b = math.exp(x), math.exp(-x)
    return (a - b) / (a + b)
end
string.gfind = string.gmatch

local format, gsub, gmatch, floor, ceil, mtype = string.format, string.gsub,
    string.gmatch, math.floor, math.ceil, math.type
local integer_conversions = { d = true, i = true, x = true, X = true, o = true, c = true }
local function format51(fmt, ...)
    local args = pack(...)
    local position = 0
    for conversion in gmatch(gsub(fmt, "%%%%", ""), "%%[-+ #0]*%d*%.?%d*(%a)") do
        position = position + 1
        local v = args[position]
        if integer_conversions[conversion] and mtype(v) == "float" and v == v
            and v ~= 1/0 and v ~= -1/0 then
            args[position] = v >= 0 and floor(v) or ceil(v)
        end
    end
    return format(fmt, unpack(args, 1, args.n))
end
string.format = function(fmt, ...)
    local ok, text = raw_pcall(format, fmt, ...)
    if ok then return text end
    return format51(fmt, ...)
end

local date = os.date
os.date = function(fmt, t)
    if type(fmt) == "string" and fmt:sub(1, 1) ~= "!" then fmt = "!" .. fmt end
    if fmt == nil then fmt = "!%c" end
    return date(fmt, t)
end

-- Finalizers run with the instruction hook off, so a script may not install one. A table's
-- `__gc` is ignored, as in Lua 5.1 where only userdata had finalizers: the table is given its
-- metatable while the field is away, so the collector never marks it (the field stays
-- readable). A userdata's metatable is read through a read-only view, so its `__gc` (and the
-- rest) cannot be replaced; `re` still reads lpeg's operators through it.
local raw_getmetatable, raw_setmetatable = getmetatable, setmetatable
local rawget, rawset, type = rawget, rawset, type
setmetatable = function(t, mt)
    local gc = type(mt) == "table" and rawget(mt, "__gc")
    if gc == nil or gc == false then return raw_setmetatable(t, mt) end
    rawset(mt, "__gc", nil)
    local ok, result = raw_pcall(raw_setmetatable, t, mt)
    rawset(mt, "__gc", gc)
    if not ok then error(result, 2) end
    return result
end
local function read_only()
    error("the metatable of a userdata is read-only in the sandbox", 2)
end
local views = raw_setmetatable({}, { __mode = "k" })
getmetatable = function(value)
    local mt = raw_getmetatable(value)
    if type(value) ~= "userdata" or type(mt) ~= "table" then return mt end
    local view = views[mt]
    if view == nil then
        view = raw_setmetatable({}, { __index = mt, __newindex = read_only, __metatable = false })
        views[mt] = view
    end
    return view
end

-- Lua loops of the string and table libraries run in C, where the instruction hook never
-- fires. Most are bounded by the memory they fill; these are not, so they are cut short or
-- done in Lua above a bound.
local tointeger, ult, min = math.tointeger, math.ult, math.min
local rep, move, insert, remove = string.rep, table.move, table.insert, table.remove
-- Elements the table functions shift or move in one C loop; more are moved in Lua.
local C_LOOP_MAX = 4096

-- `string.rep` of nothing copies no bytes, so nothing bounds its loop: answer at once.
string.rep = function(s, n, sep)
    if s == "" and (sep == nil or sep == "") and tointeger(n) then return "" end
    return rep(s, n, sep)
end

-- `table.move` of a long range moves it C_LOOP_MAX elements at a time, in the order Lua
-- would (backwards when the destination overlaps past the start), after Lua's own checks.
table.move = function(a1, f, e, t, a2)
    local first, last, to = tointeger(f), tointeger(e), tointeger(t)
    if not (first and last and to) or last < first or last - first < C_LOOP_MAX then
        return move(a1, f, e, t, a2)
    end
    move(a1, 1, 0, 1, a2) -- Lua's checks of the tables, on an empty range.
    if not (first > 0 or last < math.maxinteger + first) then
        error("bad argument #3 to 'move' (too many elements to move)", 2)
    end
    local n = last - first + 1
    if to > math.maxinteger - n + 1 then
        error("bad argument #4 to 'move' (destination wrap around)", 2)
    end
    local destination = a2
    if destination == nil then destination = a1 end
    if to > last or to <= first or (a2 ~= nil and a1 ~= a2) then
        for start = 0, n - 1, C_LOOP_MAX do
            local count = min(C_LOOP_MAX, n - start)
            move(a1, first + start, first + start + count - 1, to + start, destination)
        end
    else
        for stop = n, 1, -C_LOOP_MAX do
            local count = min(C_LOOP_MAX, stop)
            local start = stop - count
            move(a1, first + start, first + stop - 1, to + start, destination)
        end
    end
    return destination
end

-- `table.insert` and `table.remove` shift every element after the position; under a huge
-- length (a `__len`, or a table whose border is far out) the shift is done in Lua.
table.insert = function(t, ...)
    if select('#', ...) ~= 2 or type(t) ~= "table" then return insert(t, ...) end
    local pos, value = ...
    local position, length = tointeger(pos), tointeger(#t)
    if not (position and length) then return insert(t, pos, value) end
    local e = length + 1
    if not ult(position - 1, e) or not ult(C_LOOP_MAX, e - position) then
        return insert(t, pos, value)
    end
    for i = e, position + 1, -1 do t[i] = t[i - 1] end
    t[position] = value
end
table.remove = function(t, ...)
    if type(t) ~= "table" then return remove(t, ...) end
    local size = tointeger(#t)
    local pos = ...
    local position = size
    if pos ~= nil then position = tointeger(pos) end
    if not (size and position) or position >= size or ult(size, position - 1)
        or not ult(C_LOOP_MAX, size - position) then
        return remove(t, ...)
    end
    local value = t[position]
    for i = position, size - 1 do t[i] = t[i + 1] end
    t[size] = nil
    return value
end
"#;

/// Creates the Lua state with the restricted environment, the count hook and the memory
/// limit. The API functions are installed separately ([`super::api::install`]).
///
/// # Errors
/// [`SandboxError::Lua`] if the state cannot be set up.
pub(crate) fn new_state(host: &Rc<Host>, module_directory: &Path) -> Result<Lua, SandboxError> {
    let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::OS | StdLib::UTF8;
    let lua = Lua::new_with(libs, LuaOptions::new())?;
    let globals = lua.globals();
    for name in [
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "print",
        "collectgarbage",
        "require",
    ] {
        globals.raw_set(name, Value::Nil)?;
    }
    let string: Table = globals.raw_get("string")?;
    string.raw_set("dump", Value::Nil)?;
    let os: Table = globals.raw_get("os")?;
    for name in [
        "execute",
        "exit",
        "remove",
        "rename",
        "getenv",
        "tmpname",
        "setlocale",
    ] {
        os.raw_set(name, Value::Nil)?;
    }
    let check_host = Rc::clone(host);
    // Tells the pcall wrappers whether an error is a limit overrun (not catchable), and turns
    // host errors (userdata) into the plain strings Heka-era scripts expect.
    let check = lua.create_function(move |lua, error: Value| {
        let message = match &error {
            Value::Error(inner) => {
                if is_memory_error(inner) {
                    let _ = check_host.abort_with(ABORT_MEMORY);
                }
                Value::String(lua.create_string(super::lua_error_text(inner))?)
            }
            Value::String(text) if &*text.as_bytes() == b"not enough memory" => {
                let _ = check_host.abort_with(ABORT_MEMORY);
                error.clone()
            }
            _ => error.clone(),
        };
        Ok((check_host.aborted(), message))
    })?;
    super::pattern::install(&lua, host, &string)?;
    lua.load(PRELUDE).set_name("=prelude").call::<()>(check)?;
    globals.raw_set("collectgarbage", collectgarbage(&lua)?)?;
    globals.raw_set("setfenv", setfenv(&lua)?)?;
    globals.raw_set("getfenv", getfenv(&lua)?)?;
    let mut builtins = Builtins::default();
    for name in ["string", "table", "math", "os", "utf8"] {
        builtins.tables.push(globals.raw_get(name)?);
    }
    builtins.tables.push(globals.clone());
    let libraries: Vec<(String, Table)> = ["string", "table", "math", "os", "utf8"]
        .iter()
        .map(|name| Ok((name.to_string(), globals.raw_get::<Table>(*name)?)))
        .collect::<mlua::Result<_>>()?;
    lua.set_app_data(builtins);
    globals.raw_set(
        "require",
        require(&lua, host, module_directory.to_path_buf(), libraries)?,
    )?;
    let hook_host = Rc::clone(host);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(host.hook_interval),
        move |_, _| hook_host.on_hook(),
    )?;
    lua.set_memory_limit(host.memory_limit)?;
    Ok(lua)
}

fn is_memory_error(error: &mlua::Error) -> bool {
    match error {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory_error(cause)
        }
        _ => false,
    }
}

fn collectgarbage(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, option: Option<mlua::LuaString>| {
        let option = option.as_ref().map(|text| text.as_bytes().to_vec());
        match option.as_deref() {
            Some(b"count") => Ok(lua.used_memory() as f64 / 1024.0),
            _ => Err(mlua::Error::runtime(
                "collectgarbage() only accepts \"count\" in the sandbox",
            )),
        }
    })
}

/// Lua 5.1's `setfenv(f, table)`: `f` is a Lua function or a stack level (1 = the caller).
/// Works through the function's `_ENV` upvalue, so it affects every closure sharing it.
fn setfenv(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, (target, env): (Value, Table)| {
        let function = target_function(lua, &target, "setfenv")?;
        if !function.set_environment(env)? {
            return Err(mlua::Error::runtime(
                "setfenv() the function has no environment to set",
            ));
        }
        Ok(function)
    })
}

/// Lua 5.1's `getfenv(f)`.
fn getfenv(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, target: Option<Value>| {
        let target = target.unwrap_or(Value::Integer(1));
        let function = target_function(lua, &target, "getfenv")?;
        Ok(function.environment().unwrap_or_else(|| lua.globals()))
    })
}

fn target_function(lua: &Lua, target: &Value, name: &str) -> mlua::Result<Function> {
    match target {
        Value::Function(function) => Ok(function.clone()),
        Value::Integer(_) | Value::Number(_) => {
            let level = match target {
                Value::Integer(level) => *level,
                Value::Number(level) => *level as i64,
                _ => 1,
            };
            let level = usize::try_from(level)
                .ok()
                .filter(|level| *level >= 1)
                .ok_or_else(|| mlua::Error::runtime(format!("{name}() level must be >= 1")))?;
            // Level 0 is this host function; level 1 is its Lua caller.
            lua.inspect_stack(level, |debug| debug.function())
                .ok_or_else(|| mlua::Error::runtime(format!("{name}() invalid level")))
        }
        _ => Err(mlua::Error::runtime(format!(
            "{name}() expects a function or a level"
        ))),
    }
}

fn require(
    lua: &Lua,
    host: &Rc<Host>,
    module_directory: PathBuf,
    libraries: Vec<(String, Table)>,
) -> mlua::Result<Function> {
    let loaded = lua.create_table()?;
    let host = Rc::clone(host);
    lua.create_function(move |lua, name: mlua::LuaString| {
        let name = name.to_str()?.to_string();
        let cached = loaded.raw_get::<Value>(name.as_str())?;
        if !cached.is_nil() {
            return Ok(cached);
        }
        if let Some((_, table)) = libraries.iter().find(|(library, _)| *library == name) {
            return Ok(Value::Table(table.clone()));
        }
        let (value, global) = match name.as_str() {
            "lpeg" => (
                gyges_sys::lpeg::lpeg_opener(lua)?.call::<Value>("lpeg")?,
                true,
            ),
            "circular_buffer" => (
                Value::Table(super::circular_buffer::module(lua, &host)?),
                true,
            ),
            "cjson" => (Value::Table(super::cjson::module(lua)?), true),
            "hyperloglog" => (Value::Table(super::hyperloglog::module(lua, &host)?), true),
            "cuckoo_filter" => (
                Value::Table(super::cuckoo_filter::module(lua, &host)?),
                true,
            ),
            "struct" => (Value::Table(super::struct_pack::module(lua, &host)?), true),
            "bloom_filter" => (Value::Table(super::bloom_filter::module(lua, &host)?), true),
            "re" => (
                load_module_file(lua, "re", Path::new(RE_MODULE_PATH))?,
                false,
            ),
            _ => {
                let path = module_path(&module_directory, &name)?;
                (load_module_file(lua, &name, &path)?, false)
            }
        };
        let value = if value.is_nil() {
            Value::Boolean(true)
        } else {
            value
        };
        if global {
            lua.globals().raw_set(name.as_str(), value.clone())?;
        }
        if let Value::Table(table) = &value {
            if let Some(mut builtins) = lua.app_data_mut::<Builtins>() {
                builtins.tables.push(table.clone());
            }
        }
        loaded.raw_set(name.as_str(), value.clone())?;
        Ok(value)
    })
}

/// `<dir>/<a/b/c>.lua` for module `a.b.c`; names are restricted to letters, digits, `_`
/// and single dots, so a name cannot leave the directory.
fn module_path(directory: &Path, name: &str) -> mlua::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        });
    if !valid {
        return Err(mlua::Error::runtime(format!(
            "require() invalid module name '{name}'"
        )));
    }
    let mut path = directory.to_path_buf();
    for part in name.split('.') {
        path.push(part);
    }
    path.set_extension("lua");
    Ok(path)
}

fn load_module_file(lua: &Lua, name: &str, path: &Path) -> mlua::Result<Value> {
    let not_found = || mlua::Error::runtime(format!("require() module '{name}' not found"));
    let metadata = std::fs::metadata(path).map_err(|_| not_found())?;
    if !metadata.is_file() {
        return Err(not_found());
    }
    if metadata.len() > MODULE_BYTES_MAX {
        return Err(mlua::Error::runtime(format!(
            "require() module '{name}' is larger than {MODULE_BYTES_MAX} bytes"
        )));
    }
    let source = std::fs::read(path).map_err(|_| not_found())?;
    lua.load(&source[..])
        .set_name(format!("@{}", path.display()))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .set_environment(lua.globals())
        .call::<Value>(name)
}
