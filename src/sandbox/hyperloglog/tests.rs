use super::{HyperLogLog, DENSE_BYTES};
use crate::sandbox::native::Charge;
use crate::sandbox::tests::Harness;
use crate::sandbox::{preserve, Sandbox, SandboxKind};

fn sandbox(harness: &Harness, setup: &str) -> Sandbox {
    let script = format!("require 'hyperloglog'\n{setup}\nfunction process_message() return 0 end");
    harness.sandbox(SandboxKind::Filter, &script)
}

fn relative_error(estimate: u64, truth: u64) -> f64 {
    (estimate as f64 - truth as f64).abs() / truth as f64
}

#[test]
fn estimate_is_within_two_percent_for_a_million_distinct_keys() {
    let mut hll = HyperLogLog::new(Charge::detached(0));
    let mut checkpoints = Vec::new();
    for i in 1..=1_000_000u64 {
        hll.add(format!("key-{i}").as_bytes());
        if matches!(i, 10 | 1_000 | 30_000 | 100_000 | 1_000_000) {
            checkpoints.push((i, hll.count()));
        }
    }
    for (truth, estimate) in checkpoints {
        let tolerance = if truth <= 1_000 { 0.01 } else { 0.02 };
        assert!(
            relative_error(estimate, truth) < tolerance,
            "{estimate} for {truth} distinct keys"
        );
    }
    // Adding the same keys again changes nothing.
    let before = hll.count();
    for i in 1..=1_000u64 {
        assert!(!hll.add(format!("key-{i}").as_bytes()));
    }
    assert_eq!(hll.count(), before);
}

#[test]
fn lua_api_add_count_clear_merge() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "a = hyperloglog.new() b = hyperloglog.new()");
    let code = r#"
        assert(a:count() == 0)
        assert(a:add("x") == true)
        assert(a:add("x") == false, "a repeated key leaves the estimate")
        assert(a:count() == 1 and tostring(a:count()) == "1")
        for i = 1, 20000 do a:add(i) end
        for i = 10001, 30000 do b:add(i) end
        local ca, cb = a:count(), b:count()
        a:merge(b)
        a:merge(a)
        local union = a:count()
        b:clear()
        return ca, cb, union, b:count()
    "#;
    let (ca, cb, union, cleared): (u64, u64, u64, u64) = sandbox.lua.load(code).eval().unwrap();
    assert!(relative_error(ca, 20_001) < 0.03, "{ca}");
    assert!(relative_error(cb, 20_000) < 0.03, "{cb}");
    assert!(relative_error(union, 30_001) < 0.03, "{union}");
    assert_eq!(cleared, 0);
}

#[test]
fn bad_arguments_raise_lua_errors() {
    let harness = Harness::new();
    let sandbox = sandbox(&harness, "h = hyperloglog.new()");
    for (code, expected) in [
        ("h:add({})", "must be a string or number"),
        ("h:add()", "must be a string or number"),
        ("h:merge(5)", "hyperloglog expected"),
        ("h:merge(io)", "hyperloglog expected"),
        ("h:fromstring('HYLL')", "dense HYLL form"),
        ("h:fromstring(string.rep('x', 12304))", "dense HYLL form"),
    ] {
        let error = sandbox.lua.load(code).exec().unwrap_err().to_string();
        assert!(error.contains(expected), "{code}: {error}");
    }
}

#[test]
fn dense_form_round_trips_every_register_value() {
    let mut hll = HyperLogLog::new(Charge::detached(0));
    for (index, register) in hll.registers.iter_mut().enumerate() {
        *register = (index * 7 % 64) as u8;
    }
    let bytes = hll.to_bytes();
    assert_eq!(bytes.len(), DENSE_BYTES);
    assert_eq!(&bytes[..5], b"HYLL\0");
    let mut copy = HyperLogLog::new(Charge::detached(0));
    copy.restore(&bytes).unwrap();
    assert_eq!(copy.registers, hll.registers);
    // Register 1 = 7 sits in bits 6..12: the top two bits of byte 0, the low four of byte 1.
    assert_eq!(bytes[16] >> 6, 7 & 3);
    assert_eq!(bytes[17] & 15, 7 >> 2);
}

#[test]
fn memory_limit_is_enforced() {
    let harness = Harness::new();
    let mut config = harness.config(
        "many",
        "require 'hyperloglog' all = {} function process_message() for i = 1, 1000 do all[i] = hyperloglog.new() end return 0 end",
    );
    config.memory_limit = 1024 * 1024;
    let mut sandbox = Sandbox::new(SandboxKind::Filter, "Many", &config, &harness.host).unwrap();
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
fn preserved_estimator_keeps_its_count() {
    let harness = Harness::new();
    let script =
        "require 'hyperloglog' hll = hyperloglog.new() function process_message() return 0 end";
    let mut config = harness.config("hll", script);
    config.preserve_data = true;
    let before: u64 = {
        let mut sandbox = Sandbox::new(SandboxKind::Filter, "Hll", &config, &harness.host).unwrap();
        let count = sandbox
            .lua
            .load("for i = 1, 5000 do hll:add('u' .. i) end return hll:count()")
            .eval()
            .unwrap();
        sandbox.preserve().unwrap();
        count
    };
    let saved = std::fs::read(preserve::data_path(&harness.host.base_dir, "Hll")).unwrap();
    assert!(String::from_utf8_lossy(&saved).contains("= hyperloglog.new() end\n"));
    let sandbox = Sandbox::new(SandboxKind::Filter, "Hll", &config, &harness.host).unwrap();
    let (after, grew): (u64, bool) = sandbox
        .lua
        .load("return hll:count(), hll:add('u1')")
        .eval()
        .unwrap();
    assert_eq!(after, before);
    assert!(!grew, "a key added before the restart is still counted");
    assert!(relative_error(after, 5_000) < 0.03, "{after}");
}
