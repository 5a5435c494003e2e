use super::BloomFilter;
use crate::sandbox::native::Charge;
use crate::sandbox::tests::Harness;
use crate::sandbox::{preserve, Sandbox, SandboxKind};

fn sandbox(harness: &Harness, setup: &str) -> Sandbox {
    let script =
        format!("require 'bloom_filter'\n{setup}\nfunction process_message() return 0 end");
    harness.sandbox(SandboxKind::Filter, &script)
}

fn error_of(sandbox: &Sandbox, code: &str) -> String {
    match sandbox.lua.load(code).exec() {
        Ok(()) => panic!("{code} should fail"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn added_keys_are_found_and_the_false_positive_rate_holds() {
    let mut filter = BloomFilter::new(100_000.0, 0.01, Charge::detached(0)).unwrap();
    let mut fresh = 0;
    for i in 0..100_000 {
        if filter.add(format!("key{i}").as_bytes()) {
            fresh += 1;
        }
    }
    assert!(
        (0..100_000).all(|i| filter.query(format!("key{i}").as_bytes())),
        "no false negatives"
    );
    // add() returns false only for keys that look present already: about 1 % at most.
    assert!(fresh > 98_000, "{fresh}");
    assert_eq!(filter.count(), fresh);
    let false_positives = (0..100_000)
        .filter(|i| filter.query(format!("other{i}").as_bytes()))
        .count();
    assert!(
        (500..1_500).contains(&false_positives),
        "false positives {false_positives} of 100000 at p = 0.01"
    );
}

#[test]
fn lua_keys_are_found_and_strangers_mostly_not() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "bf = bloom_filter.new(2000, 0.01)");
    let code = r#"
        for i = 1, 2000 do bf:add("key" .. i) end
        for i = 1, 2000 do assert(bf:query("key" .. i), "no false negatives") end
        local false_positives = 0
        for i = 1, 2000 do
            if bf:query("other" .. i) then false_positives = false_positives + 1 end
        end
        return false_positives
    "#;
    let false_positives: i64 = sandbox.lua.load(code).eval().unwrap();
    assert!(
        false_positives < 60,
        "{false_positives} of 2000 at p = 0.01"
    );
}

#[test]
fn add_reports_duplicates_numbers_are_keys_and_clear_empties() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "bf = bloom_filter.new(1000, 0.001)");
    let code = r#"
        assert(bf:add("a") == true)
        assert(bf:add("a") == false, "second add of the same key")
        assert(bf:add(42) == true and bf:query(42) and bf:query(42.0))
        assert(not bf:query("b") and not bf:query(43))
        assert(bf:count() == 2 and tostring(bf:count()) == "2")
        bf:clear()
        assert(bf:count() == 0 and not bf:query("a") and not bf:query(42))
    "#;
    sandbox.lua.load(code).exec().unwrap();
}

#[test]
fn bad_arguments_raise_lua_errors() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "bf = bloom_filter.new(10, 0.1)");
    for (code, expected) in [
        ("bloom_filter.new(0, 0.1)", "items must be >= 1"),
        ("bloom_filter.new(1e12, 0.1)", "items must be >= 1"),
        ("bloom_filter.new(0/0, 0.1)", "items must be >= 1"),
        ("bloom_filter.new(10, 0)", "probability must be > 0 and < 1"),
        ("bloom_filter.new(10, 1)", "probability must be > 0 and < 1"),
        (
            "bloom_filter.new(10, 0/0)",
            "probability must be > 0 and < 1",
        ),
        ("bloom_filter.new(4e9, 1e-300)", "larger than 1 GiB"),
        ("bf:add({})", "must be a string or number"),
        ("bf:query(nil)", "must be a string or number"),
        ("bf:fromstring('abc')", "bytes found: 3"),
    ] {
        let error = error_of(&sandbox, code);
        assert!(error.contains(expected), "{code}: {error}");
    }
}

#[test]
fn storage_is_charged_to_the_memory_limit() {
    let harness = Harness::new();
    let mut config = harness.config(
        "big",
        "require 'bloom_filter' function process_message() bf = bloom_filter.new(1e7, 0.01) return 0 end",
    );
    config.memory_limit = 4 * 1024 * 1024;
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Big", &config, &harness.host).unwrap();
    let record = crate::sandbox::tests::sample();
    let mut sink = Vec::new();
    let view = crate::message::MessageView::Proto(crate::message::ProtoView::new(&record));
    let terminated = sandbox.process_message(&view, &mut sink).unwrap_err();
    assert!(
        terminated.reason.contains("memory_limit exceeded"),
        "{terminated:?}"
    );
    // A filter that fits is counted, and given back when collected.
    let small = harness.sandbox(
        SandboxKind::Filter,
        "require 'bloom_filter' bf = bloom_filter.new(100000, 0.01) function process_message() return 0 end",
    );
    assert!(small.host().native_bytes() > 100_000);
    small.lua.globals().set("bf", mlua::Value::Nil).unwrap();
    small.lua.gc_collect().unwrap();
    small.lua.gc_collect().unwrap();
    assert_eq!(small.host().native_bytes(), 0);
}

#[test]
fn preserved_filter_answers_the_same_after_a_restart() {
    let harness = Harness::new();
    let script = r#"
        require "bloom_filter"
        bf = bloom_filter.new(1000, 0.01)
        function process_message() return 0 end
    "#;
    let mut config = harness.config("bloom", script);
    config.preserve_data = true;
    {
        let mut sandbox =
            Sandbox::new(SandboxKind::Filter, "Bloom", &config, &harness.host).unwrap();
        sandbox
            .lua
            .load(r#"for i = 1, 500 do bf:add("k" .. i) end bf:add(7.5) bf:add("\0\1\255\"")"#)
            .exec()
            .unwrap();
        sandbox.preserve().unwrap();
    }
    let saved = std::fs::read_to_string(preserve::data_path(&harness.host.base_dir, "Bloom"))
        .unwrap_or_default();
    assert!(saved.contains("bloom_filter.new(1000, 1e-2)"), "{saved}");
    let sandbox = Sandbox::new(SandboxKind::Filter, "Bloom", &config, &harness.host).unwrap();
    let check = r#"
        for i = 1, 500 do assert(bf:query("k" .. i), i) end
        assert(bf:query(7.5) and bf:query("\0\1\255\""))
        local misses = 0
        for i = 1, 1000 do if not bf:query("x" .. i) then misses = misses + 1 end end
        return bf:count(), misses
    "#;
    let (count, misses): (i64, i64) = sandbox.lua.load(check).eval().unwrap();
    assert!((495..=502).contains(&count), "{count}");
    assert!(misses > 950, "{misses}");
}

#[test]
fn a_bare_bit_array_restores_with_an_estimated_count() {
    let harness = Harness::new();
    let sandbox = sandbox(
        &harness,
        "bf = bloom_filter.new(1000, 0.01) other = bloom_filter.new(1000, 0.01)",
    );
    let code = r#"
        for i = 1, 300 do bf:add(i) end
        -- Build the bit array alone: drop the 8 count bytes of a preservation string.
        return bf:count()
    "#;
    let count: i64 = sandbox.lua.load(code).eval().unwrap();
    let bits = {
        let data: mlua::AnyUserData = sandbox.lua.globals().get("bf").unwrap();
        let filter = data.borrow::<super::BloomFilter>().unwrap();
        let bytes = filter.to_bytes();
        bytes[..bytes.len() - 8].to_vec()
    };
    let text = sandbox.lua.create_string(&bits).unwrap();
    sandbox.lua.globals().set("bits", text).unwrap();
    let restored: i64 = sandbox
        .lua
        .load("other:fromstring(bits) assert(other:query(1) and other:query(300)) return other:count()")
        .eval()
        .unwrap();
    assert!((restored - count).abs() < 15, "{restored} vs {count}");
}
