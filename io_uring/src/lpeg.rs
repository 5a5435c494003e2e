//! lpeg for the Lua sandbox: Debian's static `liblua5.4-lpeg.a` bound to mlua's Lua state.
//!
//! The archive is linked by `build.rs`; its only entry point is `luaopen_lpeg`, a plain Lua
//! C function. Wrapping a raw C function in mlua is `unsafe` (mlua cannot check what the C
//! code does), which is why this glue lives here rather than in the main crate.
//!
//! Why it is sound: `luaopen_lpeg` uses nothing but the public Lua 5.4 C API, allocates only
//! through the state's allocator (so the sandbox's memory limit covers lpeg's patterns), and
//! reports errors with `lua_error`, which mlua's vendored Lua handles like any other Lua error.
//! It checks at load time (`luaL_checkversion`) that it runs against a 5.4 state with the
//! number sizes it was compiled for, and raises a Lua error rather than misbehaving if not.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::raw::c_int;

use mlua::ffi::lua_State;

extern "C-unwind" {
    /// lpeg's module opener: pushes the `lpeg` table and returns 1.
    fn luaopen_lpeg(state: *mut lua_State) -> c_int;
}

/// The lpeg module opener as a Lua function: calling it returns the `lpeg` table, as
/// `require "lpeg"` would.
///
/// # Errors
/// mlua's error if the function cannot be created (out of memory).
pub fn lpeg_opener(lua: &mlua::Lua) -> mlua::Result<mlua::Function> {
    // SAFETY: `luaopen_lpeg` has the `lua_CFunction` signature and follows the Lua C API
    // contract: it only touches the state through the API, balances the stack, and returns
    // the number of results (1). See the module documentation.
    unsafe { lua.create_c_function(luaopen_lpeg) }
}

/// Installs lpeg as `package.preload.lpeg` in `lua`, so that `require "lpeg"` finds it.
///
/// # Errors
/// mlua's error if `package` is not loaded or the function cannot be created.
pub fn register_lpeg(lua: &mlua::Lua) -> mlua::Result<()> {
    let package: mlua::Table = lua.globals().get("package")?;
    let preload: mlua::Table = package.get("preload")?;
    preload.set("lpeg", lpeg_opener(lua)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpeg_matches_through_require() {
        let lua = mlua::Lua::new();
        register_lpeg(&lua).expect("register");
        let (position, capture): (i64, String) = lua
            .load(
                r#"
                local lpeg = require "lpeg"
                local digits = lpeg.C(lpeg.R("09")^1)
                return lpeg.match(digits * lpeg.Cp(), "12345abc")
                "#,
            )
            .eval()
            .map(|(capture, position): (String, i64)| (position, capture))
            .expect("match");
        assert_eq!(capture, "12345");
        assert_eq!(position, 6);
    }

    #[test]
    fn lpeg_errors_are_lua_errors() {
        let lua = mlua::Lua::new();
        register_lpeg(&lua).expect("register");
        let result = lua
            .load(r#"local lpeg = require "lpeg"; return lpeg.P({})"#)
            .exec();
        assert!(
            result.is_err(),
            "an empty grammar must raise a Lua error, not crash"
        );
    }
}
