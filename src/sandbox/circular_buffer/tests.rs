use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::sandbox::tests::Harness;
use crate::sandbox::{Sandbox, SandboxKind};

fn sandbox(harness: &Harness, setup: &str) -> Sandbox {
    let script =
        format!("require 'circular_buffer'\n{setup}\nfunction process_message() return 0 end");
    harness.sandbox(SandboxKind::Filter, &script)
}

/// Runs `code` in the sandbox and returns what it added to the payload.
fn output(sandbox: &Sandbox, code: &str) -> String {
    sandbox
        .lua
        .load(code)
        .exec()
        .unwrap_or_else(|error| panic!("{code}: {error}"));
    sandbox.host().take_payload()
}

const HEADER3: &str = r#"{"time":TIME,"rows":3,"columns":3,"seconds_per_row":1,"column_info":[{"name":"Add_column","unit":"count","aggregation":"sum"},{"name":"Set_column","unit":"count","aggregation":"sum"},{"name":"Get_column","unit":"count","aggregation":"sum"}],"annotations":[]}"#;

fn header3(time: i64) -> String {
    HEADER3.replace("TIME", &time.to_string())
}

const SETUP3: &str = r#"
data = circular_buffer.new(3, 3, 1)
local ADD = data:set_header(1, "Add column")
local SET = data:set_header(2, "Set column", "count")
local GET = data:set_header(3, "Get column", "count", "sum")
function step(ts)
    if data:add(ts, ADD, 1) then data:set(ts, GET, data:get(ts, ADD)) end
    data:set(ts, SET, 1)
end
"#;

#[test]
fn cbuf_output_matches_the_known_samples() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, SETUP3);
    let empty = format!(
        "{}\nnan\tnan\tnan\nnan\tnan\tnan\nnan\tnan\tnan\n",
        header3(0)
    );
    assert_eq!(output(&sandbox, "add_to_payload(data)"), empty);
    let code =
        "for _, ts in ipairs({0, 1e9, 1e9, 2e9, 2e9, 2e9}) do step(ts) end add_to_payload(data)";
    assert_eq!(
        output(&sandbox, code),
        format!("{}\n1\t1\t1\n2\t1\t2\n3\t1\t3\n", header3(0))
    );
    let code = "step(4e9) add_to_payload(data)";
    assert_eq!(
        output(&sandbox, code),
        format!("{}\n3\t1\t3\nnan\tnan\tnan\n1\t1\t1\n", header3(2))
    );
    let code = "step(10e9) add_to_payload(data)";
    assert_eq!(
        output(&sandbox, code),
        format!("{}\nnan\tnan\tnan\nnan\tnan\tnan\n1\t1\t1\n", header3(8))
    );
}

#[test]
fn cbufd_output_carries_deltas_once() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, SETUP3);
    let code = "for _, ts in ipairs({0, 1e9, 1e9, 2e9, 2e9, 2e9}) do step(ts) end";
    output(&sandbox, code);
    let delta = format!("{}\n0\t1\t1\t1\n1\t2\t1\t2\n2\t3\t1\t3\n", header3(0));
    assert_eq!(
        output(&sandbox, "add_to_payload(data:format('cbufd'))"),
        delta
    );
    assert_eq!(
        output(&sandbox, "add_to_payload(data)"),
        "",
        "no change, no output"
    );
    let full = format!("{}\n1\t1\t1\n2\t1\t2\n3\t1\t3\n", header3(0));
    assert_eq!(
        output(&sandbox, "add_to_payload(data:format('cbuf'))"),
        full
    );

    let sums = r#"{"time":0,"rows":2,"columns":2,"seconds_per_row":1,"column_info":[{"name":"Sum_column","unit":"count","aggregation":"sum"},{"name":"Min","unit":"count","aggregation":"min"}],"annotations":[]}"#;
    let setup = r#"
        cb = circular_buffer.new(2, 2, 1)
        cb:set_header(1, "Sum column")
        cb:set_header(2, "Min", "count", "min")
        cb:format("cbufd")
    "#;
    let sandbox = self::sandbox(&harness, setup);
    let code = "cb:add(0, 1, 2) cb:set(0, 2, 5) add_to_payload(cb)";
    assert_eq!(output(&sandbox, code), format!("{sums}\n0\t2\t5\n"));
    let code = "cb:add(0, 1, 1) cb:set(0, 2, 7) cb:set(0, 2, 4) add_to_payload(cb)";
    assert_eq!(
        output(&sandbox, code),
        format!("{sums}\n0\t1\t4\n"),
        "sum delta since the last output; min keeps the smallest"
    );
    let code = "cb:annotate(1e9, 1, 'info', 'delta anno') add_to_payload(cb)";
    let with_annotation = sums.replace(
        "\"annotations\":[]",
        r#""annotations":[{"x":1000,"col":1,"shortText":"i","text":"delta anno"}]"#,
    );
    assert_eq!(output(&sandbox, code), format!("{with_annotation}\n"));
    assert_eq!(
        output(&sandbox, "add_to_payload(cb)"),
        "",
        "annotations are delta-output once"
    );
}

#[test]
fn annotations_are_escaped_and_age_out() {
    let harness = Harness::new();
    let setup = r#"
        cb = circular_buffer.new(2, 2, 60)
        cb:annotate(0, 1, "info", "annotation\"\t\b\r\n  end")
        cb:annotate(60e9, 2, "alert", "alert")
        cb:annotate(999e9, 2, "alert", "outside the window is ignored")
    "#;
    let sandbox = sandbox(&harness, setup);
    let header = r#"{"time":0,"rows":2,"columns":2,"seconds_per_row":60,"column_info":[{"name":"Column_1","unit":"count","aggregation":"sum"},{"name":"Column_2","unit":"count","aggregation":"sum"}],"annotations":[{"x":0,"col":1,"shortText":"i","text":"annotation\"\t\b\r\n  end"},{"x":60000,"col":2,"shortText":"a","text":"alert"}]}"#;
    assert_eq!(
        output(&sandbox, "add_to_payload(cb)"),
        format!("{header}\nnan\tnan\nnan\tnan\n")
    );
    let header = r#"{"time":60,"rows":2,"columns":2,"seconds_per_row":60,"column_info":[{"name":"Column_1","unit":"count","aggregation":"sum"},{"name":"Column_2","unit":"count","aggregation":"sum"}],"annotations":[{"x":60000,"col":2,"shortText":"a","text":"alert"}]}"#;
    let code = "cb:set(120e9, 1, 0/0) add_to_payload(cb)";
    assert_eq!(
        output(&sandbox, code),
        format!("{header}\nnan\tnan\nnan\tnan\n")
    );
}

#[test]
fn the_module_api_behaves_as_documented() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "");
    let script = r#"
        assert(circular_buffer.version() == "1.0.2")
        local errors = {
            function() circular_buffer.new(1, 1, 1) end,
            function() circular_buffer.new(2, 0, 1) end,
            function() circular_buffer.new(2, 257, 1) end,
            function() circular_buffer.new(2, 1, 0) end,
            function() circular_buffer.new(2, 1, 1):set(0, 2, 1) end,
            function() circular_buffer.new(2, 1, 1):set(0, 0, 1) end,
            function() circular_buffer.new(2, 1, 1):get(0) end,
            function() circular_buffer.new(2, 1, 1):get_range(1, 2e9, 1e9) end,
            function() circular_buffer.new(2, 1, 1):format("x") end,
            function() circular_buffer.new(2, 1, 1):set_header(1, "n", "u", "avg") end,
            function() local cb = circular_buffer.new(2, 1, 1) cb:set(0, 1, 1) cb:set(0, 1, 0/0) end,
            function() local cb = circular_buffer.new(2, 1, 1) cb:set(0, 1, 1) cb:add(0, 1, 0/0) end,
            function() local cb = circular_buffer.new(2, 1, 1) cb:set(0, 1, 1/0) cb:add(0, 1, -1/0) end,
            function() circular_buffer.new(2, 1, 1):fromstring("1 0 1") end,
        }
        for i, f in ipairs(errors) do assert(not pcall(f), "error case " .. i) end

        local stats = circular_buffer.new(5, 1, 1)
        for i = 1, 5 do stats:set(i * 1e9, 1, i) end
        local a = stats:get_range(1)
        assert(#a == 5 and a[1] == 1 and a[5] == 5)
        a = stats:get_range(1, 3e9, 4e9)
        assert(#a == 2 and a[1] == 3 and a[2] == 4)
        a = stats:get_range(1, 3e9)
        assert(#a == 3 and a[3] == 5)
        assert(stats:get_range(1, 11e9, 14e9) == nil)
        a = stats:get_range_delta(1)
        assert(#a == 5 and a[2] == 2)
        assert(stats:compute("sum", 1) == 15)
        assert(stats:compute("avg", 1) == 3)
        assert(stats:compute("min", 1, 2e9, 4e9) == 2)
        assert(stats:compute("max", 1) == 5)
        assert(math.abs(stats:compute("sd", 1) - math.sqrt(2)) < 1e-12)
        assert(stats:compute("sum", 1, 20e9, 21e9) == nil)
        assert(not pcall(stats.compute, stats, "median", 1))

        local cb = circular_buffer.new(2, 1, 1)
        assert(cb:current_time() == 1e9)
        local nan = cb:get(0, 1)
        assert(nan ~= nan)
        assert(cb:set(0, 1, 1) == 1 and cb:get_delta(0, 1) == 1)
        cb:reset_delta()
        local d = cb:get_delta(0, 1)
        assert(d ~= d)
        local rows, columns, spr = circular_buffer.new(10, 1, 1):get_configuration()
        assert(rows == 10 and columns == 1 and spr == 1)
        local h = circular_buffer.new(10, 1, 1)
        assert(h:set_header(1, "widget-name!!_long_long", "m/s*x$", "max") == 1)
        local name, unit, method = h:get_header(1)
        assert(name == "widget_name___l" and unit == "m/s*x_" and method == "max", name .. unit)
        local w = circular_buffer.new(10, 1, 1)
        assert(not w:get(10e9, 1), "beyond the end")
        w:set(20e9, 1, 1)
        assert(not w:get(10e9, 1), "before the start")
        assert(w:add(5e9, 1, 1) == nil, "writes before the window are ignored")
        local far = circular_buffer.new(3, 1, 60)
        assert(far:get(-1e300, 1) == nil and far:get(1e300, 1) == nil and far:get(0/0, 1) ~= nil)
        assert(far:add(1e300, 1, 1) == 1, "far-future times clamp instead of overflowing")
        assert(far:current_time() > 0 and far:add(-1e300, 1, 1) == nil)
        assert(not pcall(circular_buffer.new, 2, 1, 1e12))
        local adv = circular_buffer.new(2, 1, 1)
        local v = adv:set(3e9, 1, 0/0)
        assert(v ~= v and adv:current_time() == 3e9)
    "#;
    sandbox.lua.load(script).exec().unwrap();
}

/// What Heka's scripts, written for Lua 5.1, do with the module and 5.4 alone would refuse or
/// answer differently: a filter using each of these would have been terminated or misread.
#[test]
fn heka_scripts_get_lua_5_1_integers_and_computes_row_count() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "");
    let script = r#"
        local cb = circular_buffer.new(5.9, 2.2, 1)
        local rows, columns = cb:get_configuration()
        assert(rows == 5 and columns == 2, rows .. " " .. columns)
        local column = 10 / 4
        assert(cb:add(1e9, column, 3) == 3, "column 2.5 is column 2")
        assert(cb:get(1e9, 2) == 3)
        assert(cb:set(1e9, "1", 7) == 7, "a numeric string column")
        assert(cb:get(1e9, 1.99) == 7)
        assert(cb:set_header(1.5, "load") == 1)
        assert(not pcall(cb.add, cb, 1e9, 0/0, 1), "NaN is no column")
        assert(not pcall(cb.add, cb, 1e9, "x", 1), "nor is a word")
        assert(not pcall(cb.add, cb, 1e9, 3.5, 1), "column 3 is out of range")

        local stats = circular_buffer.new(5, 1, 1)
        for i = 1, 3 do stats:set(i * 1e9, 1, i) end
        stats:set(5e9, 1, 4)
        local sum, active = stats:compute("sum", 1)
        assert(sum == 10 and active == 4, sum .. " " .. active)
        local avg, n = stats:compute("avg", 1, 1e9, 3e9)
        assert(avg == 2 and n == 3)
        local none, no_rows = stats:compute("sum", 1, 20e9, 21e9)
        assert(none == nil and no_rows == nil)
    "#;
    sandbox
        .lua
        .load(script)
        .exec()
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn storage_is_charged_to_the_memory_limit() {
    let harness = Harness::new();
    let mut config = harness.config("big", "require 'circular_buffer' function process_message() cb = circular_buffer.new(1e6, 10, 1) return 0 end");
    config.memory_limit = 1024 * 1024;
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Big", &config, &harness.host).unwrap();
    let record = crate::sandbox::tests::sample();
    let mut sink = Vec::new();
    let view = crate::message::MessageView::Proto(crate::message::ProtoView::new(&record));
    let terminated = sandbox.process_message(&view, &mut sink).unwrap_err();
    assert!(
        terminated.reason.contains("memory_limit exceeded"),
        "{terminated:?}"
    );
}

/// The oracle: a map from row start time to value, and the newest row seen.
fn oracle_add(
    model: &mut BTreeMap<i64, f64>,
    newest: &mut i64,
    rows: i64,
    spr: i64,
    time: i64,
    value: f64,
) -> Option<f64> {
    let row_time = time - time % spr;
    if row_time > *newest {
        *newest = row_time;
    }
    if row_time <= *newest - rows * spr {
        return None;
    }
    let cell = model.entry(row_time).or_insert(0.0);
    *cell += value;
    Some(*cell)
}

proptest! {
    #[test]
    fn add_matches_a_naive_window(ops in proptest::collection::vec((0i64..60, 1u8..10), 1..60)) {
        let harness = Harness::new();
        let sandbox = sandbox(&harness, "cb = circular_buffer.new(5, 1, 2)");
        let add: mlua::Function = sandbox.lua.load("return function(t, v) return cb:add(t * 1e9, 1, v) end").eval().unwrap();
        let get: mlua::Function = sandbox.lua.load("return function(t) return cb:get(t * 1e9, 1) end").eval().unwrap();
        let mut model = BTreeMap::new();
        let mut newest = 8; // the buffer starts with rows 0..=8 s
        for (time, value) in ops {
            let expected = oracle_add(&mut model, &mut newest, 5, 2, time, f64::from(value));
            let got: Option<f64> = add.call((time, value)).unwrap();
            prop_assert_eq!(got, expected, "add at {}", time);
        }
        for time in (newest - 8..=newest).step_by(2) {
            let got: Option<f64> = get.call(time).unwrap();
            let expected = model.get(&time).copied();
            match expected {
                Some(value) => prop_assert_eq!(got, Some(value)),
                None => prop_assert!(got.is_some_and(f64::is_nan), "unset row {} reads {:?}", time, got),
            }
        }
    }
}

/// `cb:mannwhitneyu` as lua_sandbox documents it: U1 and the one-sided p-value over two time
/// ranges, nil outside the buffer or without variance, errors for bad arguments.
#[test]
fn mannwhitneyu_answers_as_documented() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "");
    let script = r#"
        local data = {15309,14092,13661,13412,14205,15042,14142,13820,14917,13953,14320,14472,
            15133,13790,14539,14129,14363,14202,13841,13610,13759,14428,14851,13838,13819,14468,
            14989,15557,14380,13500,14818,14632,13631,14663,14532,14188,14537,14109,13925,15022}
        local cb = circular_buffer.new(40, 1, 1)
        for i, v in ipairs(data) do cb:set(i * 1e9, 1, v) end
        local u, p = cb:mannwhitneyu(1, 1e9, 20e9, 21e9, 40e9)
        assert(u == 171 and math.floor(p * 100000) == 22037, u .. " " .. p)
        u, p = cb:mannwhitneyu(1, 1e9, 20e9, 21e9, 40e9, false)
        assert(u == 171 and math.floor(p * 100000) == 21638, u .. " " .. p)
        assert(cb:mannwhitneyu(1, 41e9, 60e9, 61e9, 80e9) == nil, "outside the buffer")
        local empty = circular_buffer.new(20, 1, 1)
        assert(empty:mannwhitneyu(1, 0, 9e9, 10e9, 19e9) == nil, "all NaN: no variance")
        local errors = {
            function() cb:mannwhitneyu() end,
            function() cb:mannwhitneyu(nil, 0, 0, 0, 0) end,
            function() cb:mannwhitneyu(0, 0, 0, 0, 0) end,
            function() cb:mannwhitneyu(1, 0, 5e9, 2e9, 7e9) end,
            function() cb:mannwhitneyu(1, 5e9, 0, 7e9, 9e9) end,
        }
        for i, f in ipairs(errors) do assert(not pcall(f), "error case " .. i) end
    "#;
    sandbox.lua.load(script).exec().unwrap();
}
