//! Every compile-time bound of gyges, in one place.
//!
//! Each bound is a named `*_MAX` constant with its unit in the name; nothing in gyges is
//! unbounded by default. Relationships between bounds are checked at compile time by the
//! `const` assertions at the bottom of this file.

/// The longest message-matcher expression accepted, in bytes. Longer expressions are a
/// configuration error (lua_sandbox's own limits keep its expressions far below this).
pub const MATCHER_EXPRESSION_BYTES_MAX: usize = 64 * 1024;

/// The most tests (comparisons, TRUE and FALSE) one heka-dialect expression may hold. It also
/// bounds the compiled program: one op per test at most.
pub const MATCHER_TESTS_MAX: usize = 1024;

/// The most tests one lsb-dialect expression may hold, as lua_sandbox allows.
pub const MATCHER_TESTS_LSB_MAX: usize = 128;

/// The most ops in a compiled matcher program; the evaluator runs at most this many steps.
pub const MATCHER_OPS_MAX: usize = MATCHER_TESTS_MAX;

/// The deepest nesting of parentheses in a matcher expression (bounds parser recursion).
pub const MATCHER_NESTING_MAX: usize = 64;

/// The largest field or array index, `Fields[name][field_index][array_index]`, in the heka
/// dialect.
pub const MATCHER_INDEX_MAX: u32 = 65_535;

/// The largest field or array index in the lsb dialect, as lua_sandbox allows.
pub const MATCHER_INDEX_LSB_MAX: u32 = 255;

/// The longest string literal, Lua pattern or field name in the lsb dialect, in bytes, as
/// lua_sandbox allows.
pub const MATCHER_STRING_LSB_BYTES_MAX: usize = 255;

/// The most heap one compiled regular expression may use, in bytes (the regex crate's
/// `size_limit`; its lazy DFA cache gets the same bound).
pub const MATCHER_REGEX_BYTES_MAX: usize = 2 * 1024 * 1024;

const _: () = assert!(MATCHER_TESTS_LSB_MAX <= MATCHER_TESTS_MAX);
const _: () = assert!(MATCHER_INDEX_LSB_MAX <= MATCHER_INDEX_MAX);
// Jump targets are u16 with two values reserved for "accept" and "reject".
const _: () = assert!(MATCHER_OPS_MAX < u16::MAX as usize - 2);
const _: () = assert!(MATCHER_OPS_MAX >= MATCHER_TESTS_MAX);
