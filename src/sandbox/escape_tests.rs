//! One test per attempt to escape the sandbox or to outrun its limits (issue 13).
//!
//! Each test runs one attempt in a fresh sandbox on a thread of its own and asserts its exact
//! outcome: refused (the name does not exist, or the call says why not), terminated with the
//! limit that stopped it, or bounded (it finishes at once with the harmless answer). After the
//! attempt the host must still be usable: the call came back within [`ATTEMPT_SECONDS_MAX`]
//! (an attempt that holds its thread fails the test instead of hanging it), a terminated
//! sandbox stays terminated with the same reason, the sandbox can be dropped (closing the Lua
//! state runs what finalizers are left), and a neighbour sandbox on the same host runs.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::tests::{run, sample, Harness};
use super::*;

/// How long one attempt may hold its thread, dropping the sandbox included. The limits stop
/// every attempt here in well under a second; the bound is wide for a loaded test machine.
const ATTEMPT_SECONDS_MAX: u64 = 60;

/// The limits the attempts run under: the defaults, but fewer instructions so that a runaway
/// loop ends quickly.
const INSTRUCTIONS: u64 = 1_000_000;

/// What an attempt came to.
#[derive(Debug)]
enum Outcome {
    /// The sandbox did not load: the top level failed.
    NotLoaded(String),
    /// `process_message` came back.
    Called(Result<CallStatus, Terminated>),
}

/// Runs `script` (a whole script) in a fresh filter sandbox on its own thread and checks that
/// the host stays usable; returns what the first `process_message` came to.
fn attempt_script(script: &str, modules: &[(&str, &[u8])]) -> Outcome {
    let source = script.to_string();
    let modules: Vec<(String, Vec<u8>)> = modules
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    let (send, receive) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let harness = Harness::new();
        for (name, bytes) in &modules {
            let path = harness.host.share_dir.join("lua_modules").join(name);
            std::fs::write(path, bytes).expect("module file");
        }
        let config = SandboxConfig {
            instruction_limit: INSTRUCTIONS,
            ..harness.config("attempt", &source)
        };
        let outcome = match Sandbox::new(SandboxKind::Filter, "Attempt", &config, &harness.host) {
            Err(error) => Outcome::NotLoaded(error.to_string()),
            Ok(mut sandbox) => {
                let first = run(&mut sandbox, &sample());
                if let Err(terminated) = &first {
                    assert_eq!(
                        run(&mut sandbox, &sample()).as_ref(),
                        Err(terminated),
                        "a terminated sandbox stays terminated"
                    );
                    assert_eq!(
                        sandbox.termination_reason(),
                        Some(terminated.reason.as_str())
                    );
                }
                drop(sandbox);
                Outcome::Called(first)
            }
        };
        let mut neighbour = harness.sandbox(
            SandboxKind::Filter,
            "n = 0 function process_message() n = n + 1 return 0 end",
        );
        assert_eq!(run(&mut neighbour, &sample()), Ok(CallStatus::Ok));
        let _ = send.send(outcome);
    });
    match receive.recv_timeout(Duration::from_secs(ATTEMPT_SECONDS_MAX)) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "the attempt held its thread for {} s: the limits did not stop it\n{script}",
            started.elapsed().as_secs()
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the attempt's thread panicked: the host is not usable")
        }
    }
}

/// Runs `body` as the body of `process_message` (followed by `return 0`).
fn attempt(body: &str) -> Outcome {
    attempt_script(
        &format!("function process_message()\n{body}\nreturn 0\nend"),
        &[],
    )
}

/// Asserts that `body` terminated the sandbox with a reason containing `reason`.
#[track_caller]
fn assert_terminated(body: &str, reason: &str) {
    match attempt(body) {
        Outcome::Called(Err(terminated)) => assert!(
            terminated.reason.contains(reason),
            "`{body}`: expected `{reason}`, got `{}`",
            terminated.reason
        ),
        other => panic!("`{body}` must be terminated with `{reason}`, got {other:?}"),
    }
}

/// Asserts that `body` ran to its end (`return 0`): the attempt was harmless.
#[track_caller]
fn assert_harmless(body: &str) {
    match attempt(body) {
        Outcome::Called(Ok(CallStatus::Ok)) => {}
        other => panic!("`{body}` must run to its end, got {other:?}"),
    }
}

/// One test per attempt: `name => body, reason`.
macro_rules! terminated {
    ($($name:ident => $body:expr, $reason:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_terminated($body, $reason);
            }
        )*
    };
}

// What the environment does not have: each attempt fails because the name is not there.
terminated! {
    io_is_absent => "io.open('/etc/passwd')", "attempt to index a nil value (global 'io')";
    io_popen_is_absent => "io.popen('id')", "attempt to index a nil value (global 'io')";
    os_execute_is_absent => "os.execute('true')", "attempt to call a nil value (field 'execute')";
    os_exit_is_absent => "os.exit(1)", "attempt to call a nil value (field 'exit')";
    os_remove_is_absent => "os.remove('/tmp/x')", "attempt to call a nil value (field 'remove')";
    os_rename_is_absent =>
        "os.rename('/tmp/x', '/tmp/y')", "attempt to call a nil value (field 'rename')";
    os_getenv_is_absent => "os.getenv('HOME')", "attempt to call a nil value (field 'getenv')";
    os_tmpname_is_absent => "os.tmpname()", "attempt to call a nil value (field 'tmpname')";
    os_setlocale_is_absent =>
        "os.setlocale('C')", "attempt to call a nil value (field 'setlocale')";
    load_is_absent => "load('return 1')()", "attempt to call a nil value (global 'load')";
    load_of_bytecode_is_absent =>
        "load('\\27Lua\\84\\0')", "attempt to call a nil value (global 'load')";
    loadstring_is_absent =>
        "loadstring('return 1')()", "attempt to call a nil value (global 'loadstring')";
    dofile_is_absent => "dofile('/etc/passwd')", "attempt to call a nil value (global 'dofile')";
    loadfile_is_absent =>
        "loadfile('/etc/passwd')", "attempt to call a nil value (global 'loadfile')";
    string_dump_is_absent =>
        "string.dump(function() end)", "attempt to call a nil value (field 'dump')";
    string_dump_through_the_string_metatable_is_absent =>
        "getmetatable('').__index.dump(function() end)",
        "attempt to call a nil value (field 'dump')";
    string_dump_as_a_method_is_absent =>
        "('').dump(function() end)", "attempt to call a nil value (field 'dump')";
    debug_is_absent => "debug.sethook()", "attempt to index a nil value (global 'debug')";
    debug_getinfo_is_absent =>
        "debug.getinfo(1)", "attempt to index a nil value (global 'debug')";
    debug_getregistry_is_absent =>
        "debug.getregistry()", "attempt to index a nil value (global 'debug')";
    package_is_absent =>
        "package.loadlib('libc.so.6', 'system')", "attempt to index a nil value (global 'package')";
    print_is_absent => "print('x')", "attempt to call a nil value (global 'print')";
    coroutines_that_hide_work_are_absent =>
        "coroutine.wrap(function() while true do coroutine.yield() end end)()",
        "attempt to index a nil value (global 'coroutine')";
}

// collectgarbage answers "count" and refuses every option that would steer the collector.
terminated! {
    collectgarbage_collect_is_refused =>
        "collectgarbage()", "collectgarbage() only accepts \"count\" in the sandbox";
    collectgarbage_stop_is_refused =>
        "collectgarbage('stop')", "collectgarbage() only accepts \"count\" in the sandbox";
    collectgarbage_step_is_refused =>
        "collectgarbage('step', 1e9)", "collectgarbage() only accepts \"count\" in the sandbox";
    collectgarbage_incremental_is_refused =>
        "collectgarbage('incremental', 1000, 0)",
        "collectgarbage() only accepts \"count\" in the sandbox";
    collectgarbage_generational_is_refused =>
        "collectgarbage('generational')",
        "collectgarbage() only accepts \"count\" in the sandbox";
}

// `require` loads the built-in modules and Lua source files, nothing else.
terminated! {
    require_of_io_is_refused => "require('io')", "module 'io' not found";
    require_of_debug_is_refused => "require('debug')", "module 'debug' not found";
    require_of_a_dotted_library_name_is_refused =>
        "require('os.execute')", "module 'os.execute' not found";
    require_of_a_path_outside_the_module_directory_is_refused =>
        "require('../../etc/passwd')", "require() invalid module name '../../etc/passwd'";
    require_of_an_absolute_path_is_refused =>
        "require('/etc/passwd')", "require() invalid module name '/etc/passwd'";
    require_of_a_missing_module_is_refused =>
        "require('missing_module')", "module 'missing_module' not found";
}

#[test]
fn require_of_a_c_module_is_refused() {
    // A shared object where a C module would be: `require` looks for `.lua` files only.
    let outcome = attempt_script(
        "function process_message() require('evil') return 0 end",
        &[("evil.so", b"\x7fELF not a real object")],
    );
    match outcome {
        Outcome::Called(Err(terminated)) => {
            assert!(
                terminated.reason.contains("module 'evil' not found"),
                "{terminated:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn require_of_a_bytecode_module_is_refused() {
    // A module file holding a precompiled chunk: modules are loaded as text only.
    let outcome = attempt_script(
        "function process_message() require('compiled') return 0 end",
        &[(
            "compiled.lua",
            b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08",
        )],
    );
    match outcome {
        Outcome::Called(Err(terminated)) => {
            assert!(
                terminated.reason.contains("attempt to load a binary chunk"),
                "{terminated:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn removed_functions_are_not_reachable_through_raw_access() {
    assert_harmless(
        "assert(rawget(_G, 'io') == nil and rawget(_G, 'debug') == nil)
         assert(rawget(_G, 'load') == nil and rawget(_G, 'package') == nil)
         assert(rawget(string, 'dump') == nil and rawget(os, 'execute') == nil)
         assert(rawget(_ENV, 'coroutine') == nil and rawget(_ENV, 'dofile') == nil)
         for name, value in pairs(_G) do
             assert(name ~= 'io' and name ~= 'debug' and name ~= 'package', name)
         end",
    );
}

#[test]
fn what_remains_allowed_still_works() {
    assert_harmless(
        "assert(collectgarbage('count') > 0)
         assert(os.time() > 0 and os.clock() >= 0)
         assert(os.date('%Y', 0) == '1970')
         assert(require('string') == string)",
    );
}

// The instruction limit: loops, in every disguise, are stopped.
terminated! {
    an_endless_loop_is_stopped => "while true do end", "instruction_limit exceeded";
    an_endless_loop_inside_pcall_is_stopped =>
        "while true do pcall(function() while true do end end) end",
        "instruction_limit exceeded";
    an_endless_loop_inside_xpcall_with_a_handler_is_stopped =>
        "xpcall(function() while true do end end, function(e) while true do end end)",
        "instruction_limit exceeded";
    endless_tail_recursion_is_stopped =>
        "local function f() return f() end f()", "instruction_limit exceeded";
    pattern_backtracking_is_stopped =>
        "string.find(string.rep('a', 20000), '.-.-.-.-b')", "instruction_limit exceeded";
    gsub_with_a_looping_replacement_is_stopped =>
        "string.gsub('abc', '%w', function() while true do end end)",
        "instruction_limit exceeded";
    sort_with_a_looping_comparison_is_stopped =>
        "table.sort({3, 2, 1}, function(a, b) while true do end end)",
        "instruction_limit exceeded";
    an_index_metamethod_that_loops_is_stopped =>
        "local t = setmetatable({}, {__index = function() while true do end end}) local x = t.k",
        "instruction_limit exceeded";
    a_close_metamethod_that_loops_is_stopped =>
        "local x <close> = setmetatable({}, {__close = function() while true do end end})",
        "instruction_limit exceeded";
    table_move_over_a_huge_range_is_stopped =>
        "table.move({}, 1, math.maxinteger - 1, 2)", "instruction_limit exceeded";
    table_move_over_a_huge_range_to_another_table_is_stopped =>
        "table.move({}, 1, math.maxinteger - 1, 1, {})", "instruction_limit exceeded";
    table_insert_under_a_huge_length_is_stopped =>
        "table.insert(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1, 'x')",
        "instruction_limit exceeded";
    table_remove_under_a_huge_length_is_stopped =>
        "table.remove(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1)",
        "instruction_limit exceeded";
}

// The memory limit: every way to grow the state is stopped, pcall or not.
terminated! {
    a_string_rep_bomb_is_stopped => "local s = string.rep('x', 1e9)", "memory_limit exceeded";
    a_string_rep_bomb_inside_pcall_is_stopped =>
        "local ok = pcall(string.rep, 'x', 1e9)", "memory_limit exceeded";
    a_string_rep_bomb_of_separators_is_stopped =>
        "local s = string.rep('', 1e9, ',')", "memory_limit exceeded";
    doubling_concatenation_is_stopped =>
        "local s = 'x' while true do s = s .. s end", "memory_limit exceeded";
    a_table_concat_bomb_is_stopped =>
        "local t = {string.rep('x', 1000)} while true do t[#t + 1] = table.concat(t) end",
        "memory_limit exceeded";
    a_huge_array_is_stopped =>
        "local t = {} for i = 1, 1e9 do t[i] = i end", "memory_limit exceeded";
    a_table_of_growing_strings_is_stopped =>
        "t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end", "memory_limit exceeded";
    a_huge_hash_table_is_stopped =>
        "local t = {} local s = string.rep('k', 100) for i = 1, 1e9 do t[s .. i] = i end",
        "memory_limit exceeded";
    a_gsub_bomb_is_stopped =>
        "string.gsub(string.rep('x', 1e5), 'x', string.rep('y', 1000))",
        "memory_limit exceeded";
    a_string_pack_of_a_huge_fixed_size_is_stopped =>
        "string.pack('c2000000000', '')", "memory_limit exceeded";
    a_string_format_bomb_is_stopped =>
        "local s = 'x' while true do s = string.format('%s%s', s, s) end",
        "memory_limit exceeded";
    a_utf8_char_bomb_is_stopped =>
        "local s = utf8.char(0x7FFFFFFF) while true do s = s .. s end", "memory_limit exceeded";
    a_memory_error_caught_in_xpcall_still_terminates =>
        "xpcall(string.rep, function(e) return e end, 'x', 1e9)", "memory_limit exceeded";
}

// Recursion: the Lua stack grows into the memory limit (before Lua's own stack bound at the
// default limit), and the C stack has a bound whose overrun is an error.
terminated! {
    deep_lua_recursion_is_stopped =>
        "local function f(n) return 1 + f(n + 1) end f(1)", "memory_limit exceeded";
    deep_lua_recursion_inside_pcall_is_stopped =>
        "local function f(n) return 1 + f(n + 1) end pcall(f, 1)", "memory_limit exceeded";
    deep_c_recursion_through_metamethods_is_stopped =>
        "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end local x = t.x",
        "stack overflow";
    an_index_chain_loop_is_stopped =>
        "local t = setmetatable({}, {}) getmetatable(t).__index = t local x = t.x",
        "'__index' chain too long; possible loop";
}

// Sizes a script passes to the string and table functions are checked before anything runs.
terminated! {
    string_format_with_a_huge_width_is_refused =>
        "string.format('%099999999d', 1)", "invalid conversion";
    string_format_with_a_huge_precision_is_refused =>
        "string.format('%.99999f', 1)", "invalid conversion";
    string_pack_with_a_huge_integer_size_is_refused =>
        "string.pack('i17', 1)", "out of limits [1,16]";
    string_pack_of_a_length_that_does_not_fit_is_refused =>
        "string.pack('s1', string.rep('x', 300))", "does not fit in given size";
    string_unpack_of_a_huge_length_is_refused =>
        "string.unpack('s4', '\\255\\255\\255\\127')", "data string too short";
    utf8_char_out_of_range_is_refused =>
        "utf8.char(0x80000000)", "value out of range";
    table_unpack_of_a_huge_range_is_refused =>
        "table.unpack({}, 1, 1e8)", "too many results to unpack";
    table_concat_under_a_huge_length_is_refused =>
        "table.concat(setmetatable({}, {__len = function() return math.maxinteger end}))",
        "invalid value (nil) at index 1 in table for 'concat'";
}

#[test]
fn string_rep_of_an_empty_string_is_bounded() {
    // No bytes to copy, so no memory to run out of: Lua's loop would count to 2^63 in C,
    // where the instruction hook never fires.
    assert_harmless(
        "assert(string.rep('', math.maxinteger) == '')
         assert(string.rep('', math.maxinteger, '') == '')
         assert(('').rep('', 1e18) == '')
         assert(string.rep('ab', 3, '-') == 'ab-ab-ab')
         assert(string.rep(5, 2) == '55')
         assert(not pcall(string.rep, '', 1.5))
         assert(not pcall(string.rep, '', 'x'))",
    );
}

#[test]
fn table_move_keeps_its_meaning_over_large_ranges() {
    // Large ranges are moved in bounded steps; the result is Lua's, overlaps included.
    assert_harmless(
        "local n = 100000
         local t = {}
         for i = 1, n do t[i] = i end
         table.move(t, 1, n, 3)
         assert(t[1] == 1 and t[2] == 2 and t[3] == 1 and t[n + 2] == n)
         local u = {}
         for i = 1, n do u[i] = i end
         table.move(u, 3, n, 1)
         assert(u[1] == 3 and u[n - 2] == n and u[n] == n)
         local v = table.move(t, 1, n, 1, {})
         assert(#v == n + 2 - 2 and v[n] == n - 2)
         assert(table.move({1, 2, 3}, 1, 3, 2)[4] == 3)
         assert(not pcall(table.move, {}, 1, math.maxinteger, 2))
         assert(not pcall(table.move, {}, -1, math.maxinteger, 2))",
    );
}

// Finalizers: Lua runs `__gc` with the instruction hook off, so the script may not set one.
#[test]
fn a_gc_metamethod_on_a_table_never_runs() {
    // A table's `__gc` is ignored (as in Lua 5.1, where only userdata had finalizers): the
    // loop would otherwise run with the hook off, in a later call or when the state closes.
    assert_harmless(
        "finalized = false
         local mt = {__gc = function() finalized = true while true do end end}
         setmetatable({}, mt)
         local kept = setmetatable({}, mt)
         assert(getmetatable(kept).__gc ~= nil, 'the field stays readable')
         local s = {} for i = 1, 200000 do s[i % 100] = {} end
         assert(not finalized)",
    );
}

terminated! {
    a_gc_metamethod_set_on_lpegs_metatable_is_refused =>
        "require 'lpeg'
         getmetatable(lpeg.P('a')).__gc = function() while true do end end",
        "the metatable of a userdata is read-only in the sandbox";
    a_gc_metamethod_rawset_on_lpegs_metatable_does_not_reach_it =>
        "require 'lpeg'
         local view = getmetatable(lpeg.P('a'))
         rawset(view, '__gc', function() while true do end end)
         local s = {} for i = 1, 30000 do s[i % 100] = lpeg.P(i % 7) end
         error('collected: ' .. tostring(rawget(view, '__gc') ~= nil))",
        "collected: true";
    a_native_module_metatable_is_hidden =>
        "require 'circular_buffer'
         getmetatable(circular_buffer.new(2, 1, 1)).__gc = function() while true do end end",
        "attempt to index a boolean value";
}

#[test]
fn a_userdata_metatable_can_still_be_read() {
    // `re` reads the lpeg metatable's operators; reading stays allowed.
    assert_harmless(
        "require 'lpeg'
         local mt = getmetatable(lpeg.P('a'))
         assert(mt == getmetatable(lpeg.P('b')), 'one view per metatable')
         assert(type(mt.__add) == 'function')
         assert(lpeg.match(mt.__add(lpeg.P('x'), lpeg.P('a')), 'a') == 2)
         assert(getmetatable(mt) == false)
         assert(not pcall(rawset, getmetatable(mt) or {}, 'x', 1) or true)",
    );
}

// Error values that are tables with metamethods.
terminated! {
    an_error_object_with_a_looping_tostring_is_stopped =>
        "error(setmetatable({}, {__tostring = function() while true do end end}))",
        "instruction_limit exceeded";
    an_error_object_whose_tostring_returns_a_table_terminates =>
        "error(setmetatable({}, {__tostring = function() return {} end}))",
        "'__tostring' must return a string";
    an_error_object_with_an_index_loop_terminates =>
        "local e = setmetatable({}, {}) getmetatable(e).__index = e error(e)",
        "process_message() table: 0x";
}

#[test]
fn a_globals_metatable_that_loops_is_never_run_by_the_host() {
    // The host looks up the entry points with raw access, so a looping `__index` on the
    // globals cannot hold it: the lookup finds nothing, and the load says so.
    match attempt_script(
        "setmetatable(_G, {__index = function() while true do end end})",
        &[],
    ) {
        Outcome::NotLoaded(error) => {
            assert!(
                error.ends_with("does not define process_message()"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    match attempt_script(
        "function process_message() return 0 end
         setmetatable(_G, {__index = function() while true do end end,
                           __newindex = function() while true do end end})",
        &[],
    ) {
        Outcome::Called(Ok(CallStatus::Ok)) => {}
        other => panic!("{other:?}"),
    }
}

// The output limit.
terminated! {
    a_payload_bomb_is_stopped =>
        "for i = 1, 1e6 do add_to_payload(string.rep('y', 1000)) end", "output_limit exceeded";
    a_payload_bomb_inside_pcall_is_stopped =>
        "pcall(add_to_payload, string.rep('y', 100000))", "output_limit exceeded";
}

// Not fixed: lpeg's matcher runs in C (Debian's build), outside the instruction hook, and a
// grammar that backtracks exponentially holds the core (2^40 steps here; 22 levels already
// take 0.3 s). docs/sandbox.md lists it; run with `--ignored` to see it fail.
#[test]
#[ignore = "escape not fixed: lpeg matching is not charged to instruction_limit"]
fn lpeg_exponential_backtracking_is_stopped() {
    assert_terminated(
        "require 'lpeg'
         local p = lpeg.P{ 'S', S = 'a' * lpeg.V'S' * 'b' + 'a' * lpeg.V'S' * 'c' + '' }
         lpeg.match(p, string.rep('a', 40))",
        "instruction_limit exceeded",
    );
}
