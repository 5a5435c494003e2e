use super::CuckooFilter;
use crate::sandbox::native::Charge;
use crate::sandbox::tests::Harness;
use crate::sandbox::{preserve, Sandbox, SandboxKind};

fn sandbox(harness: &Harness, setup: &str) -> Sandbox {
    let script =
        format!("require 'cuckoo_filter'\n{setup}\nfunction process_message() return 0 end");
    harness.sandbox(SandboxKind::Filter, &script)
}

#[test]
fn add_query_delete_through_lua() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "cf = cuckoo_filter.new(1000)");
    let code = r#"
        assert(cf:add("a") == true)
        assert(cf:add("a") == false, "already present")
        assert(cf:add(12) and cf:query(12) and cf:query(12.0))
        assert(cf:query("a") and not cf:query("b"))
        assert(cf:count() == 2 and tostring(cf:count()) == "2")
        assert(cf:delete("a") == true)
        assert(not cf:query("a"), "deleted")
        assert(cf:delete("a") == false, "nothing left to delete")
        assert(cf:count() == 1 and cf:query(12))
        cf:clear()
        assert(cf:count() == 0 and not cf:query(12))
    "#;
    sandbox.lua.load(code).exec().unwrap();
}

#[test]
fn a_loaded_filter_keeps_every_key_and_deletes_exactly() {
    let mut filter = CuckooFilter::new(100_000.0, Charge::detached(0)).unwrap();
    // 95 % of the 131 072 slots.
    let keys: Vec<String> = (0..124_000).map(|i| format!("key-{i}")).collect();
    let mut added = 0;
    for key in &keys {
        if filter.add(key.as_bytes()) {
            added += 1;
        }
    }
    // Only fingerprint collisions (two keys, one fingerprint, same buckets) are refused.
    assert!(added > 123_900, "{added}");
    assert_eq!(filter.count(), added);
    assert!(
        keys.iter().all(|key| filter.query(key.as_bytes())),
        "no false negatives"
    );
    let false_positives = (0..100_000)
        .filter(|i| filter.query(format!("other-{i}").as_bytes()))
        .count();
    assert!(false_positives < 100, "{false_positives}");
    // Delete the even keys: they go, the odd ones stay.
    for key in keys.iter().step_by(2) {
        filter.delete(key.as_bytes());
    }
    let even_left = keys
        .iter()
        .step_by(2)
        .filter(|key| filter.query(key.as_bytes()))
        .count();
    assert!(even_left < 20, "{even_left} deleted keys still found");
    // A deleted key may take a colliding kept key's fingerprint with it (one fingerprint,
    // one bucket pair): a handful of the 62 000 at this load, never many.
    let odd_lost = keys
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|key| !filter.query(key.as_bytes()))
        .count();
    assert!(odd_lost < 20, "{odd_lost} kept keys lost");
}

#[test]
fn a_full_filter_refuses_new_keys_until_one_is_deleted() {
    let mut filter = CuckooFilter::new(8.0, Charge::detached(0)).unwrap();
    let mut added = Vec::new();
    for i in 0..100 {
        let key = format!("k{i}");
        if filter.add(key.as_bytes()) {
            added.push(key);
        }
    }
    // 2 buckets × 4 slots + the overflow slot.
    assert_eq!(added.len(), 9);
    assert!(added.iter().all(|key| filter.query(key.as_bytes())));
    assert!(!filter.add(b"one more"));
    assert!(filter.delete(added[0].as_bytes()));
    assert!(
        filter.stash.is_none(),
        "the overflow moved into the freed slot"
    );
    assert!(filter.add(b"one more"));
    assert!(added[1..].iter().all(|key| filter.query(key.as_bytes())));
}

#[test]
fn bad_arguments_raise_lua_errors() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "cf = cuckoo_filter.new(16)");
    for (code, expected) in [
        ("cuckoo_filter.new(0)", "items must be >= 1 and <= 2^29"),
        ("cuckoo_filter.new(1e10)", "items must be >= 1 and <= 2^29"),
        ("cuckoo_filter.new(0/0)", "items must be >= 1"),
        ("cf:add({})", "must be a string or number"),
        ("cf:delete(true)", "must be a string or number"),
        ("cf:fromstring('x')", "bytes found: 1"),
        (
            "cf:fromstring(string.rep('\\0', 32) .. '\\1\\0' .. string.rep('\\255', 8))",
            "overflow bucket out of range",
        ),
    ] {
        let error = sandbox.lua.load(code).exec().unwrap_err().to_string();
        assert!(error.contains(expected), "{code}: {error}");
    }
}

#[test]
fn memory_limit_is_enforced() {
    let harness = Harness::new();
    let mut config = harness.config(
        "big",
        "require 'cuckoo_filter' function process_message() cf = cuckoo_filter.new(1e7) return 0 end",
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
}

#[test]
fn preserved_filter_keeps_its_keys_and_overflow() {
    let harness = Harness::new();
    let script =
        "require 'cuckoo_filter' cf = cuckoo_filter.new(8) function process_message() return 0 end";
    let mut config = harness.config("cuckoo", script);
    config.preserve_data = true;
    {
        let mut sandbox =
            Sandbox::new(SandboxKind::Filter, "Cuckoo", &config, &harness.host).unwrap();
        let count: i64 = sandbox
            .lua
            .load("for i = 1, 50 do cf:add('k' .. i) end cf:delete('k1') return cf:count()")
            .eval()
            .unwrap();
        assert!(count >= 8, "{count}");
        sandbox.preserve().unwrap();
    }
    let saved = std::fs::read(preserve::data_path(&harness.host.base_dir, "Cuckoo")).unwrap();
    assert!(String::from_utf8_lossy(&saved).contains("= cuckoo_filter.new(8) end\n"));
    let first = Sandbox::new(SandboxKind::Filter, "Cuckoo", &config, &harness.host).unwrap();
    let code = r#"
        local held = {}
        for i = 1, 50 do if cf:query('k' .. i) then held[#held + 1] = i end end
        return cf:count(), #held
    "#;
    let (count, held): (i64, i64) = first.lua.load(code).eval().unwrap();
    assert_eq!(count, held, "every counted key answers");
    assert!(count >= 8);
}
