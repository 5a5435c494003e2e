//! Reading a Lua table in place, from the Lua stack, without mlua handles.
//!
//! mlua's safe `Table`/`Value` API turns every string and table it hands out into a reference
//! in its reference thread (a push, a move between threads and a free-list update, then the
//! reverse on drop). For a message table read once per `inject_message` that bookkeeping is
//! most of the cost. [`walk`] instead runs a closure over the table while it sits on the Lua
//! stack and gives it [`Borrowed`] values: numbers and booleans by value, strings as byte
//! slices pointing into Lua's own string objects, tables as [`TableRef`]s that can be read
//! the same way.
//!
//! Why it is sound:
//! - Every value handed out lives in a stack slot that stays put until the closure that
//!   received it returns (each reader pushes, calls, then pops; the closures are higher-ranked
//!   so nothing borrowed escapes). A Lua string's bytes do not move while it is on the stack.
//! - Nothing here can raise a Lua error or allocate: only raw accessors are used (`lua_next`,
//!   `lua_rawget`, `lua_rawgeti`, `lua_rawlen`, `lua_type`, `lua_to*` on values of the
//!   matching type only, so `lua_tolstring` never converts a number in place), keys are
//!   strings made beforehand ([`Keys`]) rather than pushed fresh, and stack space is reserved
//!   with `lua_checkstack`, which reports failure instead of raising (growing the stack may
//!   allocate, but an allocation outside the API's `luaC_checkGC` points runs no collection
//!   step, and an emergency collection runs no finalizers). So no `longjmp` crosses a Rust
//!   frame, no Lua code (no `__gc` metamethod) runs during the walk, and the table cannot
//!   change under a `lua_next` traversal.
//! - Metatables are never consulted (raw access), as with mlua's `raw_get`/`for_each`.
//! - A panic in the closure is caught before it reaches Lua's C frames and resumed after.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mlua::ffi;

/// Stack slots one reader needs at most (`lua_next` holds a key and a value).
const READER_SLOTS: c_int = 2;

/// Key strings made once, so that reading `table[key]` pushes no new string (which could
/// allocate, and so raise a memory error or run the collector, in the middle of a walk). A
/// walk keeps them in a table on the stack and pushes one from there per lookup.
pub struct Keys {
    table: mlua::Table,
    count: usize,
}

impl Keys {
    /// Makes the key strings, in order: `Key` number `i` of a walk is `names[i]`.
    ///
    /// # Errors
    /// mlua's error if the strings or their table cannot be created (out of memory).
    pub fn new(lua: &mlua::Lua, names: &[&str]) -> mlua::Result<Keys> {
        let table = lua.create_table_with_capacity(names.len(), 0)?;
        for name in names {
            table.raw_push(lua.create_string(name)?)?;
        }
        Ok(Keys {
            table,
            count: names.len(),
        })
    }

    /// How many keys there are.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Why a walk could not read a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The Lua stack could not grow for one more nested read (tables nested too deep, or out
    /// of memory).
    StackFull,
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::StackFull => formatter.write_str("Lua stack overflow while reading a table"),
        }
    }
}

impl std::error::Error for WalkError {}

/// A Lua value read in place; valid for the closure that received it.
#[derive(Clone, Copy, Debug)]
pub enum Borrowed<'s> {
    /// `nil` (also an absent key).
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer (Lua 5.4 integer subtype).
    Integer(i64),
    /// A float.
    Number(f64),
    /// A string's bytes, which may hold NULs.
    String(&'s [u8]),
    /// A table, to be read further.
    Table(TableRef<'s>),
    /// Anything else (function, userdata, thread, light userdata), by its Lua type name.
    Other(&'static str),
}

impl Borrowed<'_> {
    /// Whether the value is `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Borrowed::Nil)
    }

    /// The Lua type name, as `type()` gives it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Borrowed::Nil => "nil",
            Borrowed::Boolean(_) => "boolean",
            Borrowed::Integer(_) | Borrowed::Number(_) => "number",
            Borrowed::String(_) => "string",
            Borrowed::Table(_) => "table",
            Borrowed::Other(name) => name,
        }
    }
}

/// One of the [`Keys`] of the current walk.
#[derive(Clone, Copy, Debug)]
pub struct Key<'s> {
    /// Absolute stack index of the keys table.
    table: c_int,
    /// The key's place in the keys table (from 1).
    number: i64,
    _walk: PhantomData<&'s ()>,
}

/// The key strings of the current walk: the [`Keys`] table, on the stack.
#[derive(Clone, Copy, Debug)]
pub struct WalkKeys<'s> {
    /// Absolute stack index of the keys table.
    table: c_int,
    count: usize,
    _walk: PhantomData<&'s ()>,
}

impl<'s> WalkKeys<'s> {
    /// Key number `number` (from 0, as given to [`Keys::new`]).
    ///
    /// # Panics
    /// If `number` is not below [`Keys::count`]: a programmer error.
    pub fn key(&self, number: usize) -> Key<'s> {
        assert!(number < self.count, "key {number} of {}", self.count);
        Key {
            table: self.table,
            number: number as i64 + 1,
            _walk: PhantomData,
        }
    }
}

/// A table on the Lua stack, read with raw access (metatables are ignored).
#[derive(Clone, Copy, Debug)]
pub struct TableRef<'s> {
    state: *mut ffi::lua_State,
    /// Absolute stack index of the table.
    index: c_int,
    _walk: PhantomData<&'s ()>,
}

impl TableRef<'_> {
    /// The table's border, as `rawlen` (the `#` operator without `__len`).
    pub fn raw_len(&self) -> usize {
        // SAFETY: `index` is an absolute index of a table that stays on the stack while this
        // `TableRef` is usable; `lua_rawlen` neither raises nor allocates.
        unsafe { ffi::lua_rawlen(self.state, self.index) }
    }

    /// Reads `table[index]` (raw) and passes it to `read`.
    ///
    /// # Errors
    /// [`WalkError::StackFull`] if the stack cannot hold one more value.
    pub fn with_index<R>(
        &self,
        index: i64,
        read: impl for<'v> FnOnce(Borrowed<'v>) -> R,
    ) -> Result<R, WalkError> {
        reserve(self.state)?;
        // SAFETY: a slot is reserved; `lua_rawgeti` on a table pushes one value without
        // raising or allocating.
        unsafe { ffi::lua_rawgeti(self.state, self.index, index) };
        Ok(read_top(self.state, read))
    }

    /// Reads `table[key]` (raw) and passes it to `read`.
    ///
    /// # Errors
    /// [`WalkError::StackFull`] if the stack cannot hold one more value.
    pub fn with_key<R>(
        &self,
        key: Key<'_>,
        read: impl for<'v> FnOnce(Borrowed<'v>) -> R,
    ) -> Result<R, WalkError> {
        reserve(self.state)?;
        // SAFETY: a slot is reserved; `lua_rawgeti` pushes the key string from the keys table
        // (on the stack for the whole walk), and `lua_rawget` replaces it with the value; a
        // string key never makes either raise or allocate.
        unsafe {
            ffi::lua_rawgeti(self.state, key.table, key.number);
            ffi::lua_rawget(self.state, self.index);
        }
        Ok(read_top(self.state, read))
    }

    /// Calls `visit(key, value)` for every entry, in `next` order, until it returns an error.
    ///
    /// # Errors
    /// The first error `visit` returns, or [`WalkError::StackFull`] (converted into `E`) if
    /// the stack cannot hold a key and a value.
    pub fn for_each<E: From<WalkError>>(
        &self,
        mut visit: impl for<'v> FnMut(Borrowed<'v>, Borrowed<'v>) -> Result<(), E>,
    ) -> Result<(), E> {
        reserve(self.state)?;
        // SAFETY: two slots are reserved. `lua_next` pops the key and pushes the next key and
        // value; the table is not changed during the traversal (nothing here writes to Lua,
        // allocates or runs Lua code), so the key is always valid and `lua_next` cannot raise.
        unsafe { ffi::lua_pushnil(self.state) };
        // SAFETY: as above.
        while unsafe { ffi::lua_next(self.state, self.index) } != 0 {
            // SAFETY: the key and value are the top two slots; they stay there until `visit`
            // returns (its own reads push above them and pop back).
            let result = unsafe {
                let top = ffi::lua_gettop(self.state);
                visit(borrow(self.state, top - 1), borrow(self.state, top))
            };
            // SAFETY: pops the value, leaving the key for the next `lua_next`.
            unsafe { ffi::lua_settop(self.state, -2) };
            if let Err(error) = result {
                // SAFETY: pops the key that `lua_next` would have consumed.
                unsafe { ffi::lua_settop(self.state, -2) };
                return Err(error);
            }
        }
        Ok(())
    }
}

/// Makes room for one reader's values.
fn reserve(state: *mut ffi::lua_State) -> Result<(), WalkError> {
    // SAFETY: `lua_checkstack` reports failure with 0 rather than raising.
    if unsafe { ffi::lua_checkstack(state, READER_SLOTS) } == 0 {
        return Err(WalkError::StackFull);
    }
    Ok(())
}

/// Passes the value on top of the stack to `read`, then pops it.
fn read_top<R>(state: *mut ffi::lua_State, read: impl for<'v> FnOnce(Borrowed<'v>) -> R) -> R {
    // SAFETY: the caller pushed the value; it stays on top until `read` returns.
    let result = unsafe { read(borrow(state, ffi::lua_gettop(state))) };
    // SAFETY: pops the value pushed by the caller.
    unsafe { ffi::lua_settop(state, -2) };
    result
}

/// The value at absolute stack index `index`.
///
/// # Safety
/// `index` must be a valid slot of `state`'s current frame, and the value must stay in it for
/// the lifetime `'v` the caller gives the result.
unsafe fn borrow<'v>(state: *mut ffi::lua_State, index: c_int) -> Borrowed<'v> {
    // SAFETY: `index` is valid (the caller's contract); each accessor is used only on a value
    // of its own type, so none converts, allocates or raises.
    unsafe {
        match ffi::lua_type(state, index) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Borrowed::Nil,
            ffi::LUA_TBOOLEAN => Borrowed::Boolean(ffi::lua_toboolean(state, index) != 0),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(state, index) != 0 => {
                Borrowed::Integer(ffi::lua_tointegerx(state, index, std::ptr::null_mut()))
            }
            ffi::LUA_TNUMBER => {
                Borrowed::Number(ffi::lua_tonumberx(state, index, std::ptr::null_mut()))
            }
            ffi::LUA_TSTRING => {
                let mut length = 0usize;
                let data = ffi::lua_tolstring(state, index, &mut length);
                Borrowed::String(std::slice::from_raw_parts(data.cast::<u8>(), length))
            }
            ffi::LUA_TTABLE => Borrowed::Table(TableRef {
                state,
                index,
                _walk: PhantomData,
            }),
            ffi::LUA_TFUNCTION => Borrowed::Other("function"),
            ffi::LUA_TUSERDATA => Borrowed::Other("userdata"),
            ffi::LUA_TLIGHTUSERDATA => Borrowed::Other("userdata"),
            ffi::LUA_TTHREAD => Borrowed::Other("thread"),
            _ => Borrowed::Other("unknown"),
        }
    }
}

/// Runs `read` over `table` in place, with `keys` available as [`Key`]s.
///
/// # Errors
/// mlua's error if the arguments cannot be pushed or the stack cannot grow (before `read`
/// runs). What `read` itself reports is in `R`.
///
/// # Panics
/// A panic in `read` is resumed once Lua's frames are left.
pub fn walk<R>(
    lua: &mlua::Lua,
    keys: &Keys,
    table: &mlua::Table,
    read: impl for<'s> FnOnce(TableRef<'s>, WalkKeys<'s>) -> R,
) -> mlua::Result<R> {
    let outcome: Cell<Option<std::thread::Result<R>>> = Cell::new(None);
    let body = |state: *mut ffi::lua_State| {
        // Stack on entry: 1 = the keys table, 2 = the table to read.
        let table = TableRef {
            state,
            index: 2,
            _walk: PhantomData,
        };
        let keys = WalkKeys {
            table: 1,
            count: keys.count,
            _walk: PhantomData,
        };
        outcome.set(Some(catch_unwind(AssertUnwindSafe(|| read(table, keys)))));
        // SAFETY: clears what this frame pushed; `exec_raw` restores the caller's stack.
        unsafe { ffi::lua_settop(state, 0) };
    };
    // SAFETY: `body` only calls Lua API functions that neither raise nor allocate (see the
    // module documentation), so no Lua error unwinds through it, and it catches panics itself.
    unsafe { lua.exec_raw::<()>((&keys.table, table), body)? };
    match outcome.into_inner() {
        Some(Ok(result)) => Ok(result),
        Some(Err(panic)) => resume_unwind(panic),
        None => Err(mlua::Error::StackError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value read from a walk, owned, for comparing.
    #[derive(Debug, PartialEq)]
    enum Owned {
        Nil,
        Boolean(bool),
        Integer(i64),
        Number(f64),
        String(Vec<u8>),
        Table(Vec<(Owned, Owned)>),
        Other(&'static str),
    }

    fn own(value: Borrowed<'_>) -> Owned {
        match value {
            Borrowed::Nil => Owned::Nil,
            Borrowed::Boolean(flag) => Owned::Boolean(flag),
            Borrowed::Integer(number) => Owned::Integer(number),
            Borrowed::Number(number) => Owned::Number(number),
            Borrowed::String(bytes) => Owned::String(bytes.to_vec()),
            Borrowed::Table(table) => {
                let mut entries = Vec::new();
                table
                    .for_each::<WalkError>(|key, value| {
                        entries.push((own(key), own(value)));
                        Ok(())
                    })
                    .expect("walk");
                entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
                Owned::Table(entries)
            }
            Borrowed::Other(name) => Owned::Other(name),
        }
    }

    fn table(lua: &mlua::Lua, source: &str) -> mlua::Table {
        lua.load(source).eval().expect("table")
    }

    #[test]
    fn every_type_nested_tables_and_nul_bytes_are_read_in_place() {
        let lua = mlua::Lua::new();
        let keys = Keys::new(&lua, &["name"]).expect("keys");
        let value = table(
            &lua,
            r#"return {name = "a\0b", n = 1.5, i = 7, t = true, inner = {1, {x = "y"}},
                       f = print, [3] = "three"}"#,
        );
        let read = walk(&lua, &keys, &value, |table, _| own(Borrowed::Table(table))).unwrap();
        let Owned::Table(entries) = read else {
            panic!("not a table: {read:?}");
        };
        let get = |key: &str| {
            entries
                .iter()
                .find(|(name, _)| *name == Owned::String(key.as_bytes().to_vec()))
                .map(|(_, value)| value)
        };
        assert_eq!(get("name"), Some(&Owned::String(b"a\0b".to_vec())));
        assert_eq!(get("n"), Some(&Owned::Number(1.5)));
        assert_eq!(get("i"), Some(&Owned::Integer(7)));
        assert_eq!(get("t"), Some(&Owned::Boolean(true)));
        assert_eq!(get("f"), Some(&Owned::Other("function")));
        assert!(entries.contains(&(Owned::Integer(3), Owned::String(b"three".to_vec()))));
        assert_eq!(
            get("inner"),
            Some(&Owned::Table(vec![
                (Owned::Integer(1), Owned::Integer(1)),
                (
                    Owned::Integer(2),
                    Owned::Table(vec![(
                        Owned::String(b"x".to_vec()),
                        Owned::String(b"y".to_vec())
                    )])
                ),
            ]))
        );
    }

    #[test]
    fn keys_indexes_and_lengths_are_raw() {
        let lua = mlua::Lua::new();
        let keys = Keys::new(&lua, &["value", "missing"]).expect("keys");
        let value = table(
            &lua,
            r#"local t = setmetatable({value = 1, 10, 20, 30},
                   {__index = function() return "meta" end, __len = function() return 99 end})
               return t"#,
        );
        let read = walk(&lua, &keys, &value, |table, keys| {
            let value = table.with_key(keys.key(0), own).unwrap();
            let missing = table.with_key(keys.key(1), own).unwrap();
            let second = table.with_index(2, own).unwrap();
            let beyond = table.with_index(9, own).unwrap();
            (value, missing, second, beyond, table.raw_len())
        })
        .unwrap();
        assert_eq!(
            read,
            (
                Owned::Integer(1),
                Owned::Nil,
                Owned::Integer(20),
                Owned::Nil,
                3
            )
        );
    }

    #[test]
    fn the_stack_is_balanced_and_errors_stop_the_traversal() {
        let lua = mlua::Lua::new();
        let keys = Keys::new(&lua, &[]).expect("keys");
        let value = table(&lua, "return {1, 2, 3, 4, 5}");
        for _ in 0..10_000 {
            let mut seen = 0;
            let result = walk(&lua, &keys, &value, |table, _| {
                table.for_each(|_, _| {
                    seen += 1;
                    if seen == 2 {
                        Err(WalkError::StackFull)
                    } else {
                        Ok(())
                    }
                })
            })
            .unwrap();
            assert_eq!(result, Err(WalkError::StackFull));
            assert_eq!(seen, 2);
        }
        // Ten thousand walks that each left a slot behind would have overflowed the stack;
        // the state still works.
        let sum: i64 = lua
            .load("local s = 0 for _, v in ipairs(...) do s = s + v end return s")
            .call(&value)
            .unwrap();
        assert_eq!(sum, 15);
    }

    #[test]
    fn a_panic_in_the_reader_is_resumed_outside_lua() {
        let lua = mlua::Lua::new();
        let keys = Keys::new(&lua, &[]).expect("keys");
        let value = table(&lua, "return {}");
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            walk(&lua, &keys, &value, |_, _| panic!("reader panicked"))
        }));
        assert!(result.is_err());
        assert_eq!(lua.load("return 1 + 1").eval::<i64>().unwrap(), 2);
    }
}
